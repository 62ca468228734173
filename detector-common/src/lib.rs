//! Types shared by the kernel programs (`detector-ebpf`) and the daemon (`detector`).
//!
//! Everything here crosses the user/kernel boundary byte for byte, so every type is
//! `#[repr(C)]`, `Copy`, has explicit padding, and uses `u32` flags rather than `bool`.
//! A change to a layout here is a change to both sides: the daemon's decoder checks sizes.
#![no_std]

/// Bytes of `task->comm` (`TASK_COMM_LEN`).
pub const COMM_LEN: usize = 16;
/// Bytes of an executed path captured in the kernel (`bprm->filename`, `bprm->interp`).
pub const PATH_LEN: usize = 256;
/// Bytes of the argument vector captured in the kernel (NUL-separated, as in `/proc/PID/cmdline`).
pub const ARGS_LEN: usize = 512;
/// Bytes of a basename used as a map key (launcher names, program classes).
pub const NAME_LEN: usize = 32;
/// Bytes of a path prefix in the world-writable-directory LPM trie.
pub const PREFIX_LEN: usize = 64;

// === event kinds ===

/// A process in a tracked lineage (or a JVM launcher) executed a program.
pub const EVENT_EXEC: u32 = 1;
/// A process in a tracked lineage created a child process (threads are not reported).
pub const EVENT_FORK: u32 = 2;
/// A process in a tracked lineage exited (the whole thread group).
pub const EVENT_EXIT: u32 = 3;
/// A process in a tracked lineage connected a socket or sent a datagram to an address
/// outside the allowlist (or was denied doing so).
pub const EVENT_CONNECT: u32 = 4;
/// The first payload a tracked process sent on a socket looked like LDAP, JRMP or DNS.
pub const EVENT_PAYLOAD: u32 = 5;
/// Bytes arriving at a JVM's cgroup looked like a lookup string (`${`, `%24`, `\u0024`) on
/// an inbound connection, or like a Java class file on a JVM's outbound connection.
pub const EVENT_INBOUND: u32 = 6;
/// Number of slots in the per-CPU loss counter array (indexed by event kind).
pub const EVENT_KINDS: u32 = 7;
/// Slot of the loss counter array that counts processes that could not be added to the
/// lineage map because it was full (their descendants go untracked).
pub const LOSS_LINEAGE_FULL: u32 = 0;

// === exec flags ===

/// The executed program is a JVM launcher: it starts a new tracked lineage.
pub const EXEC_F_JVM: u32 = 1 << 0;
/// The kernel sent SIGKILL to the new program before its first instruction.
pub const EXEC_F_KILLED: u32 = 1 << 1;
/// The executed file is an anonymous memory file (`memfd_create`).
pub const EXEC_F_MEMFD: u32 = 1 << 2;
/// The argument vector was longer than [`ARGS_LEN`] and is cut.
pub const EXEC_F_ARGS_TRUNCATED: u32 = 1 << 3;
/// The program matched a global or per-JVM allowlist entry in the kernel.
pub const EXEC_F_ALLOWED: u32 = 1 << 4;
/// `bpf_send_signal` failed; the program was meant to die but may have run.
pub const EXEC_F_KILL_FAILED: u32 = 1 << 5;

// === program classes (what the kernel recognised the executed program as) ===

/// Nothing suspicious.
pub const CLASS_NONE: u32 = 0;
/// A command shell (sh, bash, dash, busybox, ...).
pub const CLASS_SHELL: u32 = 1;
/// A script interpreter (python, perl, ruby, node, php, ...).
pub const CLASS_INTERPRETER: u32 = 2;
/// A downloader or network tool (curl, wget, nc, socat, ...).
pub const CLASS_DOWNLOADER: u32 = 3;
/// Any program run from a world-writable directory (/tmp, /var/tmp, /dev/shm).
pub const CLASS_WRITABLE_DIR: u32 = 4;
/// A program run from an anonymous memory file.
pub const CLASS_MEMFD: u32 = 5;

// === config flags ===

/// Kill classified, non-allowlisted programs in a JVM lineage at exec.
pub const CFG_F_ENFORCE: u32 = 1 << 0;
/// Only JVMs started inside the scope cgroup (`scope_cgroup_id` at `scope_level`) are tracked.
pub const CFG_F_SCOPED: u32 = 1 << 1;
/// The `JVM_PATHS` map is not empty: an exec whose `comm` matches the basename of a launcher
/// path (`Config::launchers`, `LAUNCHER_F_PATH`) hashes its path and looks it up.
pub const CFG_F_JVM_PATHS: u32 = 1 << 2;
/// More launcher names than `Config::launchers` holds: execs look `comm` up in `JVM_NAMES`.
pub const CFG_F_LAUNCHER_MAP: u32 = 1 << 7;
/// The world-writable directories do not fit `Config::writable`: execs look their path up
/// in the `WRITABLE_DIRS` trie instead.
pub const CFG_F_WRITABLE_MAP: u32 = 1 << 8;

/// World-writable directory prefixes compared inline with an exec's path
/// (`Config::writable`): an LPM trie lookup costs more than the rest of a JVM child's exec.
pub const WRITABLE_SLOTS: usize = 4;
/// Bytes of a prefix compared inline (three words); longer ones use the trie.
pub const WRITABLE_LEN: usize = 24;

// === JVM launchers ===

/// Launcher names compared inline with `comm` at every exec (`Config::launchers`): a few
/// register compares instead of a hash lookup, on the path every non-JVM exec takes.
pub const LAUNCHER_SLOTS: usize = 8;
/// `Config::launcher_paths` bit `1 << i`: entry `i` is the basename of a launcher *path*,
/// confirmed by the hash of the whole path (`JVM_PATHS`); otherwise a launcher name.
pub const LAUNCHER_F_PATH: u32 = 1;

// === lineage table ===

/// Slots of the direct-mapped lineage table (`LINEAGE`), indexed by `tgid & (LINEAGE_SLOTS - 1)`.
///
/// Why not a hash map: every fork, exec, exit, connect and sendmsg on the host asks "is this
/// process in a JVM lineage?". A slot indexed by the tgid answers with one inlined array
/// access that usually hits the cache (tgids are handed out in sequence), where a hash
/// lookup costs a bucket walk into cold memory — measured at ~300 ns per lookup here. Two
/// tracked tgids that share a slot are rare (they are `LINEAGE_SLOTS` apart); the second
/// goes to `LINEAGE_OVERFLOW` and the slot counts it in `overflow`.
pub const LINEAGE_SLOTS: u32 = 1 << 16;
/// Lines of the tracked-count filter (`TRACKED`): each a cache line of 16 counters, and
/// counter `tgid & (16 * TRACKED_LINES - 1)` counts the tracked tgids that map to it.
///
/// Why a second array in front of `LINEAGE`: the question is asked for every process on
/// the host, and right after fork the new tgid's 32-byte slot is a cache miss (~150 ns
/// measured at exec). Sixteen counters per cache line make consecutive tgids share a line,
/// so the answer "not tracked" almost always comes from cache.
pub const TRACKED_LINES: u32 = 1 << 14;
/// Counters per `TRACKED` line.
pub const TRACKED_LANES: u32 = 16;
/// Entries of the overflow hash map for tgids whose slot is taken.
pub const LINEAGE_OVERFLOW_ENTRIES: u32 = 16384;
/// Where `tgid` is counted in `TRACKED`: (line, lane).
#[inline(always)]
pub fn tracked_index(tgid: u32) -> (u32, usize) {
    (
        (tgid / TRACKED_LANES) & (TRACKED_LINES - 1),
        (tgid % TRACKED_LANES) as usize,
    )
}

/// `BPF_F_MMAPABLE`: the daemon maps the lineage table to update it with atomic
/// instructions, as the kernel programs do.
pub const BPF_F_MMAPABLE: u32 = 1 << 10;

// === network ===

/// No protocol recognised.
pub const PROTO_NONE: u32 = 0;
/// LDAP (the JNDI `ldap://` and `ldaps://` providers).
pub const PROTO_LDAP: u32 = 1;
/// Java RMI (JRMP, the JNDI `rmi://` provider).
pub const PROTO_RMI: u32 = 2;
/// DNS (a name lookup, or the JNDI `dns://` provider).
pub const PROTO_DNS: u32 = 3;

/// `IPPROTO_TCP`.
pub const TRANSPORT_TCP: u32 = 6;
/// `IPPROTO_UDP`.
pub const TRANSPORT_UDP: u32 = 17;

/// The event comes from `connect()`.
pub const HOOK_CONNECT: u32 = 1;
/// The event comes from `sendmsg()`/`sendto()` on an unconnected datagram socket.
pub const HOOK_SENDMSG: u32 = 2;

/// Denied in the kernel (connect failed with EPERM, or the packet was dropped).
pub const NET_F_BLOCKED: u32 = 1 << 0;
/// The JVM's lineage is quarantined.
pub const NET_F_QUARANTINED: u32 = 1 << 1;
/// The address is IPv4 (in `addr` as an IPv4-mapped IPv6 address), including an
/// IPv4-mapped address given to an IPv6 socket.
pub const NET_F_V4: u32 = 1 << 2;
/// An allowlist entry covered the destination for any port (the payload is still inspected).
pub const NET_F_ALLOWED: u32 = 1 << 3;
/// `Watch::flags`: the socket's first outbound payload has been inspected (its responses
/// may still be).
pub const NET_F_SENT: u32 = 1 << 4;

/// Bytes of a payload sample sent to userspace.
pub const SAMPLE_LEN: usize = 256;

/// `InboundEvent::kind`: a possible JNDI lookup in a request a JVM received.
pub const INBOUND_PROBE: u32 = 1;
/// `InboundEvent::kind`: Java class bytes (`CAFEBABE`) a JVM received on a connection it made.
pub const INBOUND_CLASS: u32 = 2;
/// Bytes of an inbound sample sent to userspace.
pub const INBOUND_SAMPLE_LEN: usize = 512;
/// Bytes of each packet's payload the inbound scan looks at.
pub const INBOUND_SCAN_LEN: usize = 1024;
/// Data packets inspected per connection, at most (per direction of interest).
pub const INBOUND_PACKETS: u16 = 4;
/// Enforce: drop a response that carries Java class bytes on a JVM's outbound connection.
pub const CFG_F_BLOCK_CLASS: u32 = 1 << 6;

/// `NetAllow::flags`: the entry allows every port (LDAP and RMI ports excepted).
pub const ALLOW_F_ANY_PORT: u32 = 1 << 0;
/// Ports one allowlist entry names at most.
pub const ALLOW_PORTS: usize = 8;

/// `CFG_F_*` bits for the egress programs, in `Config::flags`.
/// Enforce: deny LDAP and RMI egress outside the allowlist.
pub const CFG_F_BLOCK_LDAP_RMI: u32 = 1 << 3;
/// Enforce: deny all egress outside the allowlist.
pub const CFG_F_BLOCK_UNEXPECTED: u32 = 1 << 4;
/// Enforce: quarantine a JVM in the kernel when it is blocked on LDAP or RMI.
pub const CFG_F_QUARANTINE: u32 = 1 << 5;

/// `SIGKILL`, as the kernel numbers it.
pub const SIGKILL: u32 = 9;

/// Byte offsets of the kernel structure members the programs read.
///
/// The daemon reads them from the running kernel's BTF (`/sys/kernel/btf/vmlinux`) at
/// start-up and writes them into the programs' read-only data (the `OFFSETS` global) before
/// loading: Rust eBPF has no CO-RE relocations, so this is how the programs stay correct
/// across kernel builds. Read-only data is constant to the verifier, which is what lets the
/// programs dereference the typed `task_struct`/`linux_binprm` pointers the BTF tracepoints
/// hand them with plain loads instead of a `bpf_probe_read_kernel` call per field.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelOffsets {
    /// `task_struct.pid`
    pub task_pid: u32,
    /// `task_struct.tgid`
    pub task_tgid: u32,
    /// `task_struct.real_parent`
    pub task_real_parent: u32,
    /// `task_struct.group_leader`
    pub task_group_leader: u32,
    /// `task_struct.start_boottime`
    pub task_start_boottime: u32,
    /// `task_struct.mm`
    pub task_mm: u32,
    /// `task_struct.exit_code`
    pub task_exit_code: u32,
    /// `mm_struct.arg_start`
    pub mm_arg_start: u32,
    /// `mm_struct.arg_end`
    pub mm_arg_end: u32,
    /// `linux_binprm.file`
    pub bprm_file: u32,
    /// `linux_binprm.filename`
    pub bprm_filename: u32,
    /// `linux_binprm.interp`
    pub bprm_interp: u32,
    /// `file.f_path` + `path.dentry`
    pub file_dentry: u32,
    /// `dentry.d_name` + `qstr.name`
    pub dentry_name: u32,
    /// `task_struct.signal`
    pub task_signal: u32,
    /// `signal_struct.live` (an `atomic_t`: its counter is its first member)
    pub signal_live: u32,
    /// `task_struct.cgroups`
    pub task_cgroups: u32,
    /// `css_set.dfl_cgrp`
    pub css_set_dfl_cgrp: u32,
    /// `cgroup.level`
    pub cgroup_level: u32,
    /// `cgroup.self.parent` (the parent's `self`, which is its first member)
    pub cgroup_parent: u32,
    /// `cgroup.kn`
    pub cgroup_kn: u32,
    /// `kernfs_node.id` (the cgroup id)
    pub kernfs_node_id: u32,
    /// `task_struct.comm`
    pub task_comm: u32,
    /// Explicit padding.
    pub _pad: u32,
}

/// The one entry of the `CONFIG` array map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// `CFG_F_*` bits.
    pub flags: u32,
    /// Depth of the scope cgroup below the cgroup v2 root (root = 0).
    pub scope_level: u32,
    /// Cgroup v2 id (the directory's inode number) of the scope.
    pub scope_cgroup_id: u64,
    /// JVM launcher basenames as `comm` holds them (NUL-padded, at most 15 bytes), as
    /// two native-endian words each; the first `n_launchers` are used.
    pub launchers: [[u64; 2]; LAUNCHER_SLOTS],
    /// Entries of `launchers` in use.
    pub n_launchers: u32,
    /// Bit `i`: `launchers[i]` comes from a launcher path (`LAUNCHER_F_PATH`).
    pub launcher_paths: u32,
    /// World-writable directory prefixes as three native-endian words each (NUL-padded);
    /// the first `n_writable` are used.
    pub writable: [[u64; 3]; WRITABLE_SLOTS],
    /// For each prefix, the mask of its bytes in the three words.
    pub writable_masks: [[u64; 3]; WRITABLE_SLOTS],
    /// Entries of `writable` in use.
    pub n_writable: u32,
    /// Explicit padding.
    pub _pad: u32,
}

/// One slot of the lineage table (`LINEAGE`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineageSlot {
    /// The tracked process whose lineage this is; 0 when the slot is free.
    pub tgid: u32,
    /// Explicit padding.
    pub _pad: u32,
    /// Tracked processes of this slot kept in `LINEAGE_OVERFLOW` instead (changed only with
    /// atomic adds, by the kernel and the daemon alike; 64 bits because that is the atomic
    /// width the eBPF target offers).
    pub overflow: u64,
    /// The lineage of `tgid`.
    pub lineage: Lineage,
}

/// The `comm` key of a program name, as the kernel sees it after exec: the basename cut at
/// 15 bytes and NUL-padded (`TASK_COMM_LEN`). Keys of `EXEC_CLASS` and `JVM_NAMES`.
pub fn comm_key(name: &[u8]) -> [u8; COMM_LEN] {
    let mut key = [0u8; COMM_LEN];
    let n = if name.len() < COMM_LEN - 1 {
        name.len()
    } else {
        COMM_LEN - 1
    };
    key[..n].copy_from_slice(&name[..n]);
    key
}

/// A directory prefix as `Config::writable` holds it: three native-endian words and their
/// byte mask; `None` if it is longer than [`WRITABLE_LEN`].
pub fn prefix_words(prefix: &[u8]) -> Option<([u64; 3], [u64; 3])> {
    if prefix.len() > WRITABLE_LEN {
        return None;
    }
    let mut bytes = [0u8; WRITABLE_LEN];
    let mut mask = [0u8; WRITABLE_LEN];
    bytes[..prefix.len()].copy_from_slice(prefix);
    for m in mask.iter_mut().take(prefix.len()) {
        *m = 0xff;
    }
    let word = |b: &[u8; WRITABLE_LEN], i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[i * 8..i * 8 + 8]);
        u64::from_ne_bytes(w)
    };
    Some((
        [word(&bytes, 0), word(&bytes, 1), word(&bytes, 2)],
        [word(&mask, 0), word(&mask, 1), word(&mask, 2)],
    ))
}

/// [`comm_key`] as the two native-endian words `Config::launchers` holds.
pub fn comm_words(key: &[u8; COMM_LEN]) -> [u64; 2] {
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    lo.copy_from_slice(&key[..8]);
    hi.copy_from_slice(&key[8..]);
    [u64::from_ne_bytes(lo), u64::from_ne_bytes(hi)]
}

/// Which JVM a process descends from: the value of the `LINEAGE` map, keyed by tgid.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lineage {
    /// Thread-group id of the JVM at the root of this lineage.
    pub jvm_tgid: u32,
    /// 0 for the JVM itself, 1 for its children, and so on.
    pub depth: u32,
    /// The JVM's start time (ns since boot, `task->start_boottime`): with `jvm_tgid` it
    /// names the JVM even after its PID is reused.
    pub jvm_start_ns: u64,
}

/// Identity and credentials of a task, captured in the kernel when the event happened.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskInfo {
    /// Thread id.
    pub pid: u32,
    /// Process id.
    pub tgid: u32,
    /// Process id of the real parent.
    pub ppid: u32,
    /// Real user id.
    pub uid: u32,
    /// Real group id.
    pub gid: u32,
    /// Explicit padding.
    pub _pad: u32,
    /// Process start time (ns since boot, the thread-group leader's `start_boottime`).
    pub start_ns: u64,
    /// Cgroup v2 id.
    pub cgroup_id: u64,
    /// `task->comm`, NUL-padded.
    pub comm: [u8; COMM_LEN],
}

/// First bytes of every event in the ring buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventHeader {
    /// `EVENT_*`.
    pub kind: u32,
    /// CPU the event was captured on.
    pub cpu: u32,
    /// When (ns since boot).
    pub time_ns: u64,
}

/// `EVENT_EXEC`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ExecEvent {
    pub header: EventHeader,
    /// The task after exec.
    pub task: TaskInfo,
    /// The lineage the task belongs to (for a JVM launcher: itself, depth 0).
    pub lineage: Lineage,
    /// `EXEC_F_*`.
    pub flags: u32,
    /// `CLASS_*` the kernel gave the program.
    pub class: u32,
    /// Bytes used in `filename`.
    pub filename_len: u32,
    /// Bytes used in `interp` (0 when it equals `filename`).
    pub interp_len: u32,
    /// Bytes used in `args`.
    pub args_len: u32,
    /// Explicit padding.
    pub _pad: u32,
    /// `bprm->filename`: the path as passed to execve.
    pub filename: [u8; PATH_LEN],
    /// `bprm->interp`: the interpreter of a `#!` script, when it differs from `filename`.
    pub interp: [u8; PATH_LEN],
    /// The first bytes of the argument vector, NUL-separated.
    pub args: [u8; ARGS_LEN],
}

/// `EVENT_FORK`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForkEvent {
    pub header: EventHeader,
    /// The new process.
    pub child: TaskInfo,
    /// The lineage it inherited from its parent.
    pub lineage: Lineage,
}

/// `EVENT_EXIT`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitEvent {
    pub header: EventHeader,
    /// The process that ended.
    pub task: TaskInfo,
    /// The lineage it belonged to.
    pub lineage: Lineage,
    /// `task->exit_code` (wait status: exit status << 8, or the signal number).
    pub exit_code: u32,
    /// Explicit padding.
    pub _pad: u32,
}

/// `EVENT_CONNECT`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectEvent {
    pub header: EventHeader,
    pub task: TaskInfo,
    pub lineage: Lineage,
    /// Destination, IPv6 or IPv4-mapped (`NET_F_V4`), network byte order.
    pub addr: [u8; 16],
    /// Destination port, host byte order.
    pub port: u16,
    /// Explicit padding.
    pub _pad0: u16,
    /// `TRANSPORT_*`.
    pub transport: u32,
    /// `HOOK_*`.
    pub hook: u32,
    /// `PROTO_*` the destination port is configured as.
    pub port_class: u32,
    /// `NET_F_*`.
    pub flags: u32,
    /// Explicit padding.
    pub _pad1: u32,
    /// Socket cookie: ties a later `PayloadEvent` to this connect.
    pub cookie: u64,
}

/// `EVENT_PAYLOAD`: emitted from the egress packet path, where the current task may not
/// be the sender, so identity comes from what the connect hook recorded.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PayloadEvent {
    pub header: EventHeader,
    pub lineage: Lineage,
    /// Process that connected the socket.
    pub tgid: u32,
    /// `PROTO_*` recognised in the payload.
    pub class: u32,
    pub cookie: u64,
    pub addr: [u8; 16],
    pub port: u16,
    pub _pad0: u16,
    pub transport: u32,
    /// `NET_F_*`.
    pub flags: u32,
    /// Bytes used in `sample`.
    pub sample_len: u32,
    /// The start of the payload (after the TCP or UDP header).
    pub sample: [u8; SAMPLE_LEN],
}

/// What the connect hooks remember about a tracked socket until its first payload.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Watch {
    pub lineage: Lineage,
    pub tgid: u32,
    pub transport: u32,
    pub addr: [u8; 16],
    pub port: u16,
    /// Data packets of the response already scanned for class bytes.
    pub scanned: u16,
    /// `NET_F_*` of the connect.
    pub flags: u32,
}

/// `EVENT_INBOUND`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct InboundEvent {
    pub header: EventHeader,
    /// `INBOUND_*`.
    pub kind: u32,
    /// For `INBOUND_CLASS`: the process that made the connection.
    pub tgid: u32,
    /// Cgroup v2 id of the receiving socket (probes are attributed to its JVM by the daemon).
    pub cgroup_id: u64,
    /// For `INBOUND_CLASS`: the lineage of the process that made the connection.
    pub lineage: Lineage,
    /// `NET_F_*` (`NET_F_V4`, `NET_F_BLOCKED`).
    pub flags: u32,
    /// Offset of the match in `sample`.
    pub match_at: u32,
    pub cookie: u64,
    /// The remote end (IPv6 or IPv4-mapped), network byte order.
    pub remote_addr: [u8; 16],
    /// Host byte order.
    pub remote_port: u16,
    /// Host byte order.
    pub local_port: u16,
    /// Bytes used in `sample`.
    pub sample_len: u32,
    /// Payload bytes from shortly before the match.
    pub sample: [u8; INBOUND_SAMPLE_LEN],
}

/// Key of the `NET_ALLOW` LPM trie: the JVM (0 = every JVM, big-endian so it is a prefix)
/// followed by the IPv6 or IPv4-mapped address.
pub type NetKey = [u8; 20];

/// Value of the `NET_ALLOW` LPM trie.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetAllow {
    /// `ALLOW_F_*`.
    pub flags: u32,
    /// How many of `ports` are used.
    pub nports: u32,
    /// Ports allowed explicitly (LDAP and RMI ports are only ever allowed this way).
    pub ports: [u16; ALLOW_PORTS],
}

/// Which protocol the first bytes of a payload belong to (`PROTO_*`). Written for the
/// verifier (fixed-size buffer, bounded constant indices) and used unchanged by the daemon,
/// so the kernel and userspace can never disagree about a payload.
///
/// - JRMP: the magic `JRMI` every Java RMI connection starts with.
/// - LDAP: a BER SEQUENCE (`0x30`, short or long length) whose first element is the
///   INTEGER message id (1–4 bytes), followed by a bind (`0x60`), search (`0x63`),
///   extended (`0x77`) or unbind (`0x42`) request: what JNDI's LDAP provider sends first.
/// - DNS: a standard query with one question and no answers (over TCP, after the 2-byte
///   length prefix), whose first label is 1–63 bytes.
#[inline(always)]
pub fn classify_payload(sample: &[u8; SAMPLE_LEN], len: usize, udp: bool) -> u32 {
    if len >= 4 && sample[0] == b'J' && sample[1] == b'R' && sample[2] == b'M' && sample[3] == b'I'
    {
        return PROTO_RMI;
    }
    if !udp && len >= 7 && sample[0] == 0x30 {
        let hdr = match sample[1] {
            n if n < 0x80 => 2,
            0x81 => 3,
            0x82 => 4,
            0x83 => 5,
            0x84 => 6,
            _ => 0,
        };
        if hdr != 0 && sample[hdr & 7] == 0x02 {
            let id_len = sample[(hdr + 1) & 7] as usize;
            let tag_at = hdr + 2 + id_len;
            if (1..=4).contains(&id_len) && tag_at < len {
                let tag = sample[tag_at & 15];
                if tag == 0x60 || tag == 0x63 || tag == 0x77 || tag == 0x42 {
                    return PROTO_LDAP;
                }
            }
        }
    }
    let base = if udp { 0 } else { 2 };
    if len >= base + 17 {
        let b = |i: usize| sample[(base + i) & 31];
        let query = b(2) & 0x80 == 0 && (b(2) >> 3) & 0x0f == 0;
        let counts = b(4) == 0
            && b(5) == 1
            && b(6) == 0
            && b(7) == 0
            && b(8) == 0
            && b(9) == 0
            && b(10) == 0
            && b(11) <= 1;
        let label = b(12);
        if query && counts && (1..=63).contains(&label) {
            return PROTO_DNS;
        }
    }
    PROTO_NONE
}

/// Key of the `WRITABLE_DIRS` LPM trie: a path prefix.
pub type PrefixKey = [u8; PREFIX_LEN];

/// Key of the `EXEC_ALLOW` map: a program allowed in every JVM lineage (`jvm_tgid` 0) or in one.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AllowKey {
    /// 0 for every JVM, else the JVM the entry is for.
    pub jvm_tgid: u32,
    /// Explicit padding.
    pub _pad: u32,
    /// [`fnv1a`] of the program's full path or basename.
    pub hash: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a (64-bit) of `bytes` up to the first NUL: cheap enough for the kernel's bounded
/// loops, identical on both sides, and used to key paths that do not fit a fixed key.
#[inline(always)]
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = FNV_OFFSET;
    for &b in bytes {
        if b == 0 {
            break;
        }
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// [`fnv1a`] of `path[start..end]`, written for the verifier: an index loop with a
/// masked index, because it cannot follow a slice iterator's bounds through the loop.
#[inline(always)]
pub fn fnv1a_at(path: &[u8; PATH_LEN], start: usize, end: usize) -> u64 {
    let mut hash = FNV_OFFSET;
    for i in 0..PATH_LEN {
        let j = start + i;
        if j >= end || j >= PATH_LEN {
            break;
        }
        let b = path[j & (PATH_LEN - 1)];
        if b == 0 {
            break;
        }
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// FNV-1a (64-bit) of all of `bytes`, NULs included (for userspace keys, not paths).
pub fn fnv1a_bytes(bytes: &[u8]) -> u64 {
    let mut hash = FNV_OFFSET;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// The key under which a basename is stored in the `EXEC_CLASS` and `JVM_NAMES` maps:
/// NUL-padded, cut at [`NAME_LEN`].
pub fn name_key(name: &[u8]) -> [u8; NAME_LEN] {
    let mut key = [0u8; NAME_LEN];
    let n = if name.len() < NAME_LEN {
        name.len()
    } else {
        NAME_LEN
    };
    key[..n].copy_from_slice(&name[..n]);
    key
}

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: every type below is repr(C), Copy, has no padding the compiler adds
    // (padding is explicit) and every bit pattern is valid.
    unsafe impl aya::Pod for Config {}
    unsafe impl aya::Pod for KernelOffsets {}
    unsafe impl aya::Pod for LineageSlot {}
    unsafe impl aya::Pod for Lineage {}
    unsafe impl aya::Pod for AllowKey {}
    unsafe impl aya::Pod for NetAllow {}
    unsafe impl aya::Pod for Watch {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_reference_vectors() {
        // Reference values of FNV-1a 64 (draft-eastlake-fnv).
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
        // Stops at the first NUL, as the kernel's fixed buffers are NUL-padded.
        assert_eq!(fnv1a(b"foobar\0junk"), fnv1a(b"foobar"));
    }

    #[test]
    fn fnv_at_hashes_the_same_bytes_as_fnv() {
        let mut path = [0u8; PATH_LEN];
        path[..12].copy_from_slice(b"/usr/bin/git");
        assert_eq!(fnv1a_at(&path, 0, 12), fnv1a(b"/usr/bin/git"));
        assert_eq!(fnv1a_at(&path, 9, 12), fnv1a(b"git"));
        assert_eq!(fnv1a_at(&path, 12, 12), fnv1a(b""));
        let full = [b'a'; PATH_LEN];
        assert_eq!(fnv1a_at(&full, 0, 999), fnv1a(&full));
    }

    #[test]
    fn comm_keys_are_cut_as_the_kernel_cuts_comm() {
        assert_eq!(&comm_key(b"java")[..5], b"java\0");
        let long = comm_key(b"x86_64-linux-gnu-python3.11");
        assert_eq!(&long[..15], b"x86_64-linux-gn");
        assert_eq!(long[15], 0);
        let words = comm_words(&comm_key(b"java"));
        assert_eq!(words[0], u64::from_ne_bytes(*b"java\0\0\0\0"));
        assert_eq!(words[1], 0);
    }

    /// What the exec program does with `Config::writable`, on plain data.
    fn starts_with_prefix(path: &[u8], prefix: &[u8]) -> bool {
        let (words, masks) = prefix_words(prefix).expect("fits");
        let mut buf = [0xaau8; WRITABLE_LEN]; // stale bytes past the NUL, as in the kernel
        let n = path.len().min(WRITABLE_LEN);
        buf[..n].copy_from_slice(&path[..n]);
        if n < WRITABLE_LEN {
            buf[n] = 0;
        }
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&buf[i * 8..i * 8 + 8]);
            u64::from_ne_bytes(w)
        };
        (0..3).all(|i| (word(i) ^ words[i]) & masks[i] == 0)
    }

    #[test]
    fn writable_prefixes_match_as_the_trie_did() {
        assert!(starts_with_prefix(b"/tmp/x", b"/tmp/"));
        assert!(starts_with_prefix(
            b"/tmp/a/very/long/path/to/a/binary",
            b"/tmp/"
        ));
        assert!(starts_with_prefix(b"/var/tmp/payload", b"/var/tmp/"));
        assert!(!starts_with_prefix(b"/tmpfoo/x", b"/tmp/"));
        assert!(!starts_with_prefix(b"/tmp", b"/tmp/"));
        assert!(!starts_with_prefix(b"/usr/bin/true", b"/tmp/"));
        assert!(starts_with_prefix(
            b"/a/b/c/d/e/f/g/h/i/j/k/l/x",
            b"/a/b/c/d/e/f/g/h/i/j/k/l"
        ));
        assert!(prefix_words(b"/a/directory/longer/than/24/bytes/").is_none());
    }

    #[test]
    fn layouts_have_no_hidden_padding() {
        use core::mem::size_of;
        assert_eq!(size_of::<TaskInfo>(), 4 * 6 + 8 + 8 + COMM_LEN);
        assert_eq!(size_of::<EventHeader>(), 16);
        assert_eq!(size_of::<Lineage>(), 16);
        assert_eq!(
            size_of::<Config>(),
            16 + 16 * LAUNCHER_SLOTS + 8 + 48 * WRITABLE_SLOTS + 8
        );
        assert_eq!(size_of::<Config>() % 8, 0);
        assert_eq!(size_of::<KernelOffsets>(), 4 * 24);
        assert_eq!(size_of::<LineageSlot>(), 32);
        assert_eq!(LINEAGE_SLOTS as usize * size_of::<LineageSlot>() % 4096, 0);
        assert_eq!(
            size_of::<ExecEvent>(),
            16 + size_of::<TaskInfo>() + 16 + 24 + 2 * PATH_LEN + ARGS_LEN
        );
        assert_eq!(size_of::<ExitEvent>(), 16 + size_of::<TaskInfo>() + 16 + 8);
        assert_eq!(size_of::<InboundEvent>(), 88 + INBOUND_SAMPLE_LEN);
        assert_eq!(size_of::<Watch>(), 48);
    }

    fn sample(bytes: &[u8]) -> ([u8; SAMPLE_LEN], usize) {
        let mut s = [0u8; SAMPLE_LEN];
        s[..bytes.len()].copy_from_slice(bytes);
        (s, bytes.len())
    }

    #[test]
    fn classifies_jrmp_ldap_and_dns() {
        let (s, n) = sample(b"JRMI\x00\x02\x4b");
        assert_eq!(classify_payload(&s, n, false), PROTO_RMI);
        // An LDAPv3 anonymous simple bind, message id 1.
        let (s, n) = sample(&[
            0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00,
        ]);
        assert_eq!(classify_payload(&s, n, false), PROTO_LDAP);
        // A search request with a long-form length and a 2-byte message id.
        let (s, n) = sample(&[0x30, 0x81, 0x90, 0x02, 0x02, 0x01, 0x00, 0x63, 0x81, 0x89]);
        assert_eq!(classify_payload(&s, n, false), PROTO_LDAP);
        // A DNS query for "a.example" over UDP, and the same over TCP.
        let dns = [
            0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 7, b'e', b'x', b'a', b'm',
            b'p', b'l', b'e', 0, 0, 1, 0, 1,
        ];
        let (s, n) = sample(&dns);
        assert_eq!(classify_payload(&s, n, true), PROTO_DNS);
        let mut tcp = [0u8; 29];
        tcp[1] = dns.len() as u8;
        tcp[2..].copy_from_slice(&dns);
        let (s, n) = sample(&tcp);
        assert_eq!(classify_payload(&s, n, false), PROTO_DNS);
    }

    #[test]
    fn leaves_other_traffic_alone() {
        for bytes in [
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
            &[0x30, 0x05, 0x02, 0x01, 0x01, 0x61, 0x00][..], // a bind *response*
            &b"JRM"[..],
            &[][..],
        ] {
            let (s, n) = sample(bytes);
            assert_eq!(classify_payload(&s, n, false), PROTO_NONE, "{bytes:?}");
        }
        // A DNS *response* is not a query.
        let (s, n) = sample(&[
            0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 1, b'a', 0, 0, 1, 0, 1,
        ]);
        assert_eq!(classify_payload(&s, n, true), PROTO_NONE);
    }

    #[test]
    fn name_key_pads_and_cuts() {
        let k = name_key(b"java");
        assert_eq!(&k[..5], b"java\0");
        let long = [b'x'; 40];
        assert_eq!(name_key(&long), [b'x'; NAME_LEN]);
    }
}
