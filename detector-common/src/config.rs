//! What the daemon hands every program before and after loading: the `CONFIG` map entry and
//! its `CFG_F_*` flags (one bit space for all programs), and the kernel structure offsets.

use crate::exec::{LAUNCHER_SLOTS, WRITABLE_SLOTS};
use bytemuck::{Pod, Zeroable};

/// Kill classified, non-allowlisted programs in a JVM lineage at exec.
pub const CFG_F_ENFORCE: u32 = 1 << 0;
/// Only JVMs started inside the scope cgroup (`scope_cgroup_id` at `scope_level`) are tracked.
pub const CFG_F_SCOPED: u32 = 1 << 1;
/// The `JVM_PATHS` map is not empty: an exec whose `comm` matches the basename of a launcher
/// path (`Config::launchers`, `LAUNCHER_F_PATH`) hashes its path and looks it up.
pub const CFG_F_JVM_PATHS: u32 = 1 << 2;
/// Enforce: deny LDAP and RMI egress outside the allowlist.
pub const CFG_F_BLOCK_LDAP_RMI: u32 = 1 << 3;
/// Enforce: deny all egress outside the allowlist.
pub const CFG_F_BLOCK_UNEXPECTED: u32 = 1 << 4;
/// Enforce: quarantine a JVM in the kernel when it is blocked on LDAP or RMI.
pub const CFG_F_QUARANTINE: u32 = 1 << 5;
/// Enforce: drop a response that carries Java class bytes on a JVM's outbound connection.
pub const CFG_F_BLOCK_CLASS: u32 = 1 << 6;
/// More launcher names than `Config::launchers` holds: execs look `comm` up in `JVM_NAMES`.
pub const CFG_F_LAUNCHER_MAP: u32 = 1 << 7;
/// The world-writable directories do not fit `Config::writable`: execs look their path up
/// in the `WRITABLE_DIRS` trie instead.
pub const CFG_F_WRITABLE_MAP: u32 = 1 << 8;
/// Recognise JVMs by the `libjvm.so` they load (`dlopen`, `JNI_CreateJavaVM` uprobes), not
/// only by their launcher's name (policy `jvm.recognise_libjvm`).
pub const CFG_F_LIBJVM: u32 = 1 << 9;

/// The one entry of the `CONFIG` array map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
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

/// Byte offsets of the kernel structure members the programs read.
///
/// The daemon reads them from the running kernel's BTF (`/sys/kernel/btf/vmlinux`) at
/// start-up and writes them into the programs' read-only data (the `OFFSETS` global) before
/// loading: Rust eBPF has no CO-RE relocations, so this is how the programs stay correct
/// across kernel builds. Read-only data is constant to the verifier, which is what lets the
/// programs dereference the typed `task_struct`/`linux_binprm` pointers the BTF tracepoints
/// hand them with plain loads instead of a `bpf_probe_read_kernel` call per field.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
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
