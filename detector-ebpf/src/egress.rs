//! Outbound traffic of JVM lineages: the step of a Log4Shell attack that can be stopped
//! before anything is downloaded.
//!
//! - `cgroup/connect4|6` and `cgroup/sendmsg4|6` see every `connect()` and unconnected
//!   `sendto()` in the scope cgroup. The first thing they do is look up the caller's
//!   lineage; everything that is not a JVM or a JVM descendant returns "allow" at once.
//!   For a JVM they classify the destination by port, check the allowlist and the
//!   quarantine, deny (EPERM, before any packet leaves) or allow, report what is not
//!   allowlisted, and remember the socket (by cookie) so its first payload is inspected.
//! - `cgroup_skb/egress` looks at packets of remembered sockets only: the first one that
//!   carries data is classified (LDAP, JRMP, DNS: `detector_common::classify_payload`) and
//!   the socket is forgotten, so the cost is bounded to one payload per socket. In
//!   enforce mode, LDAP or JRMP found this way on a non-standard port gets every data
//!   segment of that socket dropped: the server sees a handshake, never a request.

use aya_ebpf::{
    helpers::{bpf_get_socket_cookie, bpf_skb_load_bytes},
    macros::{cgroup_skb, cgroup_sock_addr, map},
    maps::{lpm_trie::Key, Array, HashMap, LpmTrie, LruHashMap, PerCpuArray},
    programs::{SkBuffContext, SockAddrContext},
    EbpfContext,
};
use detector_common::{
    config::{CFG_F_BLOCK_LDAP_RMI, CFG_F_BLOCK_UNEXPECTED, CFG_F_ENFORCE, CFG_F_QUARANTINE},
    egress::{
        classify_payload, ConnectEvent, NetAllow, NetKey, PayloadEvent, Watch, ALLOW_F_ANY_PORT,
        HOOK_CONNECT, HOOK_SENDMSG, NET_F_ALLOWED, NET_F_BLOCKED, NET_F_QUARANTINED, NET_F_SENT,
        NET_F_V4, PROTO_DNS, PROTO_LDAP, PROTO_NONE, PROTO_RMI, SAMPLE_LEN, TRANSPORT_TCP,
        TRANSPORT_UDP,
    },
    event::{EVENT_CONNECT, EVENT_PAYLOAD},
    lineage::Lineage,
};

use crate::{count_loss, current_tgid, header, load_len, task_info_current, CONFIG, EVENTS};

// === maps ===

/// Destination port → `PROTO_*` (LDAP, RMI and DNS ports from the policy; `PROTO_NONE`
/// elsewhere). An array: one inlined access per JVM connect instead of a hash lookup.
#[map]
static PORT_CLASS: Array<u32> = Array::with_max_entries(1 << 16, 0);

/// Egress allowlist: JVM (0 = all) + address prefix → ports.
#[map]
static NET_ALLOW: LpmTrie<NetKey, NetAllow> = LpmTrie::with_max_entries(4096, 0);

/// Quarantined JVMs (tgid → start time): their lineage may only reach the allowlist.
#[map]
static QUARANTINE: HashMap<u32, u64> = HashMap::with_max_entries(4096, 0);

/// Sockets of JVM lineages: their first outbound payload is inspected here (then
/// `NET_F_SENT` is set), their first inbound data packets in `ingress`, and their packets
/// dropped both ways once `NET_F_BLOCKED` is set (LDAP, JRMP or class bytes, enforce mode).
/// One map, so a connect costs one insert and a packet of any other socket one lookup.
/// LRU: sockets that are gone age out.
#[map]
pub(crate) static WATCH: LruHashMap<u64, Watch> = LruHashMap::with_max_entries(16384, 0);

/// The payload event is too large for the BPF stack.
#[map]
static PAYLOAD_SCRATCH: PerCpuArray<PayloadEvent> = PerCpuArray::with_max_entries(1, 0);

const ALLOW_NONE: u32 = 0;
/// Covered by an any-port entry: allowed, but the payload is still inspected.
const ALLOW_WATCHED: u32 = 1;
/// The port is listed explicitly: trusted, not inspected.
const ALLOW_EXPLICIT: u32 = 2;

// === entry points ===

#[cgroup_sock_addr(connect4)]
pub fn connect4(ctx: SockAddrContext) -> i32 {
    on_egress(&ctx, false, HOOK_CONNECT)
}

#[cgroup_sock_addr(connect6)]
pub fn connect6(ctx: SockAddrContext) -> i32 {
    on_egress(&ctx, true, HOOK_CONNECT)
}

#[cgroup_sock_addr(sendmsg4)]
pub fn sendmsg4(ctx: SockAddrContext) -> i32 {
    on_egress(&ctx, false, HOOK_SENDMSG)
}

#[cgroup_sock_addr(sendmsg6)]
pub fn sendmsg6(ctx: SockAddrContext) -> i32 {
    on_egress(&ctx, true, HOOK_SENDMSG)
}

#[cgroup_skb(egress)]
pub fn egress_payload(ctx: SkBuffContext) -> i32 {
    // A packet the program cannot parse is let through: the hook only observes.
    try_payload(&ctx).unwrap_or(1)
}

// === connect and sendmsg ===

/// Returns 1 to let the call proceed, 0 to fail it with EPERM.
#[inline(always)]
fn on_egress(ctx: &SockAddrContext, v6: bool, hook: u32) -> i32 {
    let tgid = current_tgid();
    // Value, not pointer, checks: see `try_exec` on LLVM folding null checks.
    let (tracked, lineage) = match crate::lineage_of(tgid) {
        Some(l) => (true, l),
        None => (false, Lineage::default()),
    };
    if !tracked {
        return 1;
    }
    let Some(cfg) = CONFIG.get(0) else {
        return 1;
    };
    let sa = unsafe { &*ctx.sock_addr };
    let port = u16::from_be(sa.user_port as u16);
    let transport = if sa.protocol == TRANSPORT_UDP {
        TRANSPORT_UDP
    } else {
        TRANSPORT_TCP
    };

    let mut addr = [0u8; 16];
    let mut flags = 0;
    if v6 {
        for (i, word) in sa.user_ip6.iter().enumerate() {
            let b = word.to_ne_bytes();
            addr[i * 4] = b[0];
            addr[i * 4 + 1] = b[1];
            addr[i * 4 + 2] = b[2];
            addr[i * 4 + 3] = b[3];
        }
        // A dual-stack socket given an IPv4-mapped address is IPv4 traffic.
        if addr[..10].iter().all(|&b| b == 0) && addr[10] == 0xff && addr[11] == 0xff {
            flags |= NET_F_V4;
        }
    } else {
        let b = sa.user_ip4.to_ne_bytes();
        addr[10] = 0xff;
        addr[11] = 0xff;
        addr[12] = b[0];
        addr[13] = b[1];
        addr[14] = b[2];
        addr[15] = b[3];
        flags |= NET_F_V4;
    }

    let port_class = PORT_CLASS.get(u32::from(port)).map_or(PROTO_NONE, |c| *c);
    let dangerous = port_class == PROTO_LDAP || port_class == PROTO_RMI;
    let mut allow = allowlisted(lineage.jvm_tgid, &addr, port, dangerous);
    // DNS is always inspected: the query name is what exfiltration hides in.
    if allow == ALLOW_EXPLICIT && port_class == PROTO_DNS {
        allow = ALLOW_WATCHED;
    }
    let quarantined = unsafe { QUARANTINE.get(lineage.jvm_tgid) }
        .is_some_and(|start| *start == lineage.jvm_start_ns);
    if quarantined {
        flags |= NET_F_QUARANTINED;
    }
    if allow != ALLOW_NONE {
        flags |= NET_F_ALLOWED;
    }

    let enforce = cfg.flags & CFG_F_ENFORCE != 0;
    let block = enforce
        && allow == ALLOW_NONE
        && (quarantined
            || (dangerous && cfg.flags & CFG_F_BLOCK_LDAP_RMI != 0)
            || cfg.flags & CFG_F_BLOCK_UNEXPECTED != 0);
    if block {
        flags |= NET_F_BLOCKED;
        if dangerous && cfg.flags & CFG_F_QUARANTINE != 0 && !quarantined {
            // The JVM just tried the JNDI step: from now on its whole lineage may only
            // reach the allowlist, without waiting for userspace.
            if QUARANTINE
                .insert(lineage.jvm_tgid, lineage.jvm_start_ns, 0)
                .is_err()
            {
                count_loss(EVENT_CONNECT);
            }
        }
    }

    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    if allow == ALLOW_NONE || block {
        emit_connect(
            &lineage, &addr, port, transport, hook, port_class, flags, cookie,
        );
    }
    if !block && allow != ALLOW_EXPLICIT {
        let watch = Watch {
            lineage,
            tgid,
            transport,
            addr,
            port,
            scanned: 0,
            flags,
        };
        // Best effort: an LRU map evicts rather than fails; a failure only means this
        // socket's payload goes uninspected, which the connect event already covers.
        let _ = WATCH.insert(cookie, watch, 0);
    }
    if block {
        0
    } else {
        1
    }
}

/// Whether the allowlist covers the destination: an entry that lists the port, or (for a
/// port not recognised as LDAP or RMI) an any-port entry; for this JVM's own entries
/// first, then every JVM's.
#[inline(always)]
fn allowlisted(jvm_tgid: u32, addr: &[u8; 16], port: u16, dangerous: bool) -> u32 {
    let mut best = ALLOW_NONE;
    for scope in [jvm_tgid, 0] {
        let mut data = [0u8; 20];
        let t = scope.to_be_bytes();
        data[0] = t[0];
        data[1] = t[1];
        data[2] = t[2];
        data[3] = t[3];
        data[4..].copy_from_slice(addr);
        let Some(entry) = NET_ALLOW.get(Key::new(160, data)) else {
            continue;
        };
        for (i, p) in entry.ports.iter().enumerate() {
            if (i as u32) < entry.nports && *p == port {
                return ALLOW_EXPLICIT;
            }
        }
        if entry.flags & ALLOW_F_ANY_PORT != 0 && !dangerous {
            best = ALLOW_WATCHED;
        }
    }
    best
}

#[expect(
    clippy::too_many_arguments,
    reason = "inlined; a struct would only be copied again"
)]
#[inline(always)]
fn emit_connect(
    lineage: &Lineage,
    addr: &[u8; 16],
    port: u16,
    transport: u32,
    hook: u32,
    port_class: u32,
    flags: u32,
    cookie: u64,
) {
    let Ok(task) = task_info_current() else {
        return;
    };
    let ev = ConnectEvent {
        header: header(EVENT_CONNECT),
        task,
        lineage: *lineage,
        addr: *addr,
        port,
        _pad0: 0,
        transport,
        hook,
        port_class,
        flags,
        _pad1: 0,
        cookie,
    };
    if EVENTS.output::<ConnectEvent>(&ev, 0).is_err() {
        count_loss(EVENT_CONNECT);
    }
}

// === first payload ===

fn try_payload(ctx: &SkBuffContext) -> Result<i32, i64> {
    // Headers first: a handshake or a bare ACK carries nothing to inspect or drop, and
    // returns before the socket lookup (most packets of a connection are such).
    // cgroup skb programs see the packet from its network header.
    let first: u8 = ctx.load(0)?;
    let (l4_at, l4_proto) = match first >> 4 {
        4 => (((first & 0x0f) as usize) * 4, ctx.load::<u8>(9)?),
        6 => (40, ctx.load::<u8>(6)?),
        _ => return Ok(1),
    };
    let payload_at = match u32::from(l4_proto) {
        TRANSPORT_TCP => {
            let data_off: u8 = ctx.load(l4_at + 12)?;
            l4_at + ((data_off >> 4) as usize) * 4
        }
        TRANSPORT_UDP => l4_at + 8,
        _ => return Ok(1),
    };
    if payload_at >= ctx.len() as usize {
        return Ok(1);
    }

    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    let Some(watch) = (unsafe { WATCH.get(cookie) }).copied() else {
        return Ok(1);
    };
    if watch.flags & NET_F_BLOCKED != 0 {
        return Ok(0);
    }
    if watch.flags & NET_F_SENT != 0 {
        return Ok(1);
    }

    // Only the first payload is inspected; the entry stays for the inbound side.
    if let Some(w) = WATCH.get_ptr_mut(cookie) {
        unsafe { (*w).flags |= NET_F_SENT };
    }

    let Some(ev) = PAYLOAD_SCRATCH.get_ptr_mut(0) else {
        return Ok(1);
    };
    let ev = unsafe { &mut *ev };
    // Zero what the classifier may look at beyond a short payload.
    for b in ev.sample[..32].iter_mut() {
        *b = 0;
    }
    // The helper refuses a length the verifier cannot prove is in [1, SAMPLE_LEN]. LLVM
    // knows n >= 1 here and would drop a plain check, so the value goes through memory
    // (volatile, opaque to LLVM) and comes back bounded by arithmetic the verifier follows.
    let avail = (ctx.len() as usize).saturating_sub(payload_at);
    let n = if avail > SAMPLE_LEN {
        SAMPLE_LEN
    } else {
        avail
    };
    let n = load_len(&mut ev.sample_len, n, SAMPLE_LEN);
    let rc = unsafe {
        bpf_skb_load_bytes(
            ctx.as_ptr() as *const _,
            (payload_at & 0xfff) as u32,
            ev.sample.as_mut_ptr().cast(),
            n as u32,
        )
    };
    if rc != 0 {
        return Ok(1);
    }
    let udp = u32::from(l4_proto) == TRANSPORT_UDP;
    let class = classify_payload(&ev.sample, n, udp);
    if class == PROTO_NONE {
        return Ok(1);
    }

    let mut flags = watch.flags;
    let mut verdict = 1;
    if let Some(cfg) = CONFIG.get(0) {
        let enforce = cfg.flags & CFG_F_ENFORCE != 0;
        if enforce
            && cfg.flags & CFG_F_BLOCK_LDAP_RMI != 0
            && (class == PROTO_LDAP || class == PROTO_RMI)
        {
            // Watched sockets are never explicitly allowlisted, and LDAP/RMI needs an
            // explicit port: drop this packet, the retransmissions, everything after.
            flags |= NET_F_BLOCKED;
            let _ = WATCH.insert(
                cookie,
                Watch {
                    flags: flags | NET_F_SENT,
                    ..watch
                },
                0,
            );
            verdict = 0;
            if cfg.flags & CFG_F_QUARANTINE != 0 {
                let _ = QUARANTINE.insert(watch.lineage.jvm_tgid, watch.lineage.jvm_start_ns, 0);
            }
        }
    }

    ev.header = header(EVENT_PAYLOAD);
    ev.lineage = watch.lineage;
    ev.tgid = watch.tgid;
    ev.class = class;
    ev.cookie = cookie;
    ev.addr = watch.addr;
    ev.port = watch.port;
    ev._pad0 = 0;
    ev.transport = u32::from(l4_proto);
    ev.flags = flags;
    ev.sample_len = n as u32;
    if EVENTS.output::<PayloadEvent>(&*ev, 0).is_err() {
        count_loss(EVENT_PAYLOAD);
    }
    Ok(verdict)
}
