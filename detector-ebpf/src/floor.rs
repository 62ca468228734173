//! Empty programs on the detector's hooks, for `cargo xtask bench kernel`: what merely
//! attaching a program there costs (the kernel's dispatch and, with statistics on, its
//! bookkeeping), the floor under which no detector on these hooks can go.
//!
//! The daemon never loads them: `detector/src/sensors/` loads programs by name, and none
//! of these names is on its lists. The benchmark loads them from the built object itself.

use aya_ebpf::{
    macros::{btf_tracepoint, cgroup_skb, cgroup_sock_addr},
    programs::{BtfTracePointContext, SkBuffContext, SockAddrContext},
};

#[btf_tracepoint(function = "sched_process_fork")]
pub fn floor_fork(_ctx: BtfTracePointContext) -> i32 {
    0
}

#[btf_tracepoint(function = "sched_process_exec")]
pub fn floor_exec(_ctx: BtfTracePointContext) -> i32 {
    0
}

#[btf_tracepoint(function = "sched_process_exit")]
pub fn floor_exit(_ctx: BtfTracePointContext) -> i32 {
    0
}

// The socket hooks return 1, "let the call or the packet through", as the detector's do
// for everything they do not block.

#[cgroup_sock_addr(connect4)]
pub fn floor_connect4(_ctx: SockAddrContext) -> i32 {
    1
}

#[cgroup_sock_addr(connect6)]
pub fn floor_connect6(_ctx: SockAddrContext) -> i32 {
    1
}

#[cgroup_sock_addr(sendmsg4)]
pub fn floor_sendmsg4(_ctx: SockAddrContext) -> i32 {
    1
}

#[cgroup_sock_addr(sendmsg6)]
pub fn floor_sendmsg6(_ctx: SockAddrContext) -> i32 {
    1
}

#[cgroup_skb(egress)]
pub fn floor_egress(_ctx: SkBuffContext) -> i32 {
    1
}

#[cgroup_skb(ingress)]
pub fn floor_ingress(_ctx: SkBuffContext) -> i32 {
    1
}
