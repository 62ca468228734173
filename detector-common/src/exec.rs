//! The sched tracepoints' exec side (`sched_process_exec`, fork and exit records): program
//! classes, exec flags, the inline launcher and writable-directory compares, and the keys of
//! the exec maps.

use crate::event::{EventHeader, TaskInfo};
use crate::lineage::Lineage;
use crate::{ARGS_LEN, COMM_LEN, NAME_LEN, PATH_LEN, PREFIX_LEN};
use bytemuck::{Pod, Zeroable};

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
/// `ExecEvent::recognised_by` of an event that is not a JVM's start.
pub const JVM_BY_NONE: u32 = 0;
/// A JVM recognised at exec: `comm` is a configured launcher name.
pub const JVM_BY_LAUNCHER_NAME: u32 = 1;
/// A JVM recognised at exec: the executed path is a configured launcher path.
pub const JVM_BY_LAUNCHER_PATH: u32 = 2;
/// A JVM recognised when it `dlopen()`ed a `libjvm.so` (the uprobe on libc's `dlopen`):
/// the event comes from the process's first thread that did, not from an exec, and carries
/// no path or arguments (the daemon reads them from /proc).
pub const JVM_BY_DLOPEN: u32 = 3;
/// A JVM recognised when it called `JNI_CreateJavaVM` in a `libjvm.so` the daemon probes
/// (a launcher linked with `-ljvm`); no path or arguments either.
pub const JVM_BY_JNI_CREATE: u32 = 4;
/// Recognised by the daemon alone, in `/proc/PID/maps` (never sent by the kernel).
pub const JVM_BY_PROC_MAPS: u32 = 5;
/// The basename the `dlopen` uprobe looks for: HotSpot's library, and OpenJ9's redirector
/// (`lib/default/libjvm.so`, which loads `libj9vm29.so`).
pub const LIBJVM_NAME: &[u8] = b"libjvm.so";
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
/// `SIGKILL`, as the kernel numbers it.
pub const SIGKILL: u32 = 9;
/// Launcher names compared inline with `comm` at every exec (`Config::launchers`): a few
/// register compares instead of a hash lookup, on the path every non-JVM exec takes.
pub const LAUNCHER_SLOTS: usize = 8;
/// `Config::launcher_paths` bit `1 << i`: entry `i` is the basename of a launcher *path*,
/// confirmed by the hash of the whole path (`JVM_PATHS`); otherwise a launcher name.
pub const LAUNCHER_F_PATH: u32 = 1;
/// World-writable directory prefixes compared inline with an exec's path
/// (`Config::writable`): an LPM trie lookup costs more than the rest of a JVM child's exec.
pub const WRITABLE_SLOTS: usize = 4;
/// Bytes of a prefix compared inline (three words); longer ones use the trie.
pub const WRITABLE_LEN: usize = 24;

/// `EVENT_EXEC`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
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
    /// `JVM_BY_*`: how a JVM was recognised (with `EXEC_F_JVM`), `JVM_BY_NONE` otherwise.
    pub recognised_by: u32,
    /// `bprm->filename`: the path as passed to execve.
    pub filename: [u8; PATH_LEN],
    /// `bprm->interp`: the interpreter of a `#!` script, when it differs from `filename`.
    pub interp: [u8; PATH_LEN],
    /// The first bytes of the argument vector, NUL-separated.
    pub args: [u8; ARGS_LEN],
}

/// `EVENT_FORK`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct ForkEvent {
    pub header: EventHeader,
    /// The new process.
    pub child: TaskInfo,
    /// The lineage it inherited from its parent.
    pub lineage: Lineage,
}

/// `EVENT_EXIT`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
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

/// [`comm_key`] as the two native-endian words `Config::launchers` holds.
pub fn comm_words(key: &[u8; COMM_LEN]) -> [u64; 2] {
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    lo.copy_from_slice(&key[..8]);
    hi.copy_from_slice(&key[8..]);
    [u64::from_ne_bytes(lo), u64::from_ne_bytes(hi)]
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

/// Key of the `WRITABLE_DIRS` LPM trie: a path prefix.
pub type PrefixKey = [u8; PREFIX_LEN];

/// Key of the `EXEC_ALLOW` map: a program allowed in every JVM lineage (`jvm_tgid` 0) or in one.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct AllowKey {
    /// 0 for every JVM, else the JVM the entry is for.
    pub jvm_tgid: u32,
    /// Explicit padding.
    pub _pad: u32,
    /// [`fnv1a`] of the program's full path or basename.
    pub hash: u64,
}
