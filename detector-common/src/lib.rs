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
/// Number of slots in the per-CPU loss counter array (indexed by event kind).
pub const EVENT_KINDS: u32 = 4;
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
/// The `JVM_PATHS` map is not empty: execs outside a lineage must hash their path.
pub const CFG_F_JVM_PATHS: u32 = 1 << 2;

/// `SIGKILL`, as the kernel numbers it.
pub const SIGKILL: u32 = 9;

/// Byte offsets of the kernel structure members the programs read.
///
/// The daemon reads them from the running kernel's BTF (`/sys/kernel/btf/vmlinux`) at
/// start-up; Rust eBPF has no CO-RE relocations, so this is how the programs stay correct
/// across kernel builds.
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
    /// Where to find what the programs read in kernel structures.
    pub offsets: KernelOffsets,
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
    unsafe impl aya::Pod for Lineage {}
    unsafe impl aya::Pod for AllowKey {}
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
    fn layouts_have_no_hidden_padding() {
        use core::mem::size_of;
        assert_eq!(size_of::<TaskInfo>(), 4 * 6 + 8 + 8 + COMM_LEN);
        assert_eq!(size_of::<EventHeader>(), 16);
        assert_eq!(size_of::<Lineage>(), 16);
        assert_eq!(size_of::<Config>(), 16 + size_of::<KernelOffsets>());
        assert_eq!(size_of::<Config>() % 8, 0);
        assert_eq!(
            size_of::<ExecEvent>(),
            16 + size_of::<TaskInfo>() + 16 + 24 + 2 * PATH_LEN + ARGS_LEN
        );
        assert_eq!(size_of::<ExitEvent>(), 16 + size_of::<TaskInfo>() + 16 + 8);
    }

    #[test]
    fn name_key_pads_and_cuts() {
        let k = name_key(b"java");
        assert_eq!(&k[..5], b"java\0");
        let long = [b'x'; 40];
        assert_eq!(name_key(&long), [b'x'; NAME_LEN]);
    }
}
