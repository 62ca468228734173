//! The detector's kernel programs.
//!
//! Three BTF tracepoints (`tp_btf`) on the scheduler's process life-cycle keep a map of
//! *lineages*: every JVM (an exec of a configured launcher) and every process descending
//! from it, keyed by tgid, carries the JVM's tgid and start time. Because the taint is
//! copied at fork, in the kernel, a grandchild shell is attributed to its JVM even when
//! the shell in between has already exited, and nothing depends on userspace keeping up.
//!
//! Non-JVM work costs one array access per fork/exit (the direct-mapped `LINEAGE`) and,
//! per exec, a compare of `comm` with the launcher names held in `CONFIG`.
//!
//! Why `tp_btf` and not the classic `tracepoint/sched/*`: the raw tracepoints hand us the
//! `task_struct` and `linux_binprm` pointers, which lets us tell a new thread from a new
//! process at fork, read the process start time that `/proc/PID/stat` reports, and look at
//! the executed file itself (memfd), without tracefs. Member offsets come from the running
//! kernel's BTF via the `CONFIG` map (see `detector/src/sensors/btf.rs`).
#![no_std]
#![no_main]
// `atomic_add`: the only way to an atomic add on this target (built with RUSTC_BOOTSTRAP).
#![feature(core_intrinsics)]
#![expect(internal_features, reason = "atomic_xadd, see atomic_add")]

mod egress;
mod floor;
mod ingress;

use aya_ebpf::{
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
        bpf_get_current_uid_gid, bpf_get_smp_processor_id, bpf_ktime_get_boot_ns,
        bpf_probe_read_kernel, bpf_probe_read_user_buf, bpf_send_signal,
        generated::bpf_probe_read_kernel_str,
    },
    macros::{btf_tracepoint, map},
    maps::{lpm_trie::Key, Array, HashMap, LpmTrie, PerCpuArray, RingBuf},
    programs::BtfTracePointContext,
};
use detector_common::{
    config::{
        Config, KernelOffsets, CFG_F_ENFORCE, CFG_F_JVM_PATHS, CFG_F_LAUNCHER_MAP, CFG_F_SCOPED,
        CFG_F_WRITABLE_MAP,
    },
    event::{
        EventHeader, TaskInfo, EVENTS_BYTES, EVENT_EXEC, EVENT_EXIT, EVENT_FORK, EVENT_KINDS,
        LOSS_LINEAGE_FULL,
    },
    exec::{
        AllowKey, ExecEvent, ExitEvent, ForkEvent, PrefixKey, CLASS_MEMFD, CLASS_NONE,
        CLASS_WRITABLE_DIR, EXEC_F_ALLOWED, EXEC_F_ARGS_TRUNCATED, EXEC_F_JVM, EXEC_F_KILLED,
        EXEC_F_KILL_FAILED, EXEC_F_MEMFD, JVM_BY_LAUNCHER_NAME, JVM_BY_LAUNCHER_PATH, JVM_BY_NONE,
        LAUNCHER_SLOTS, SIGKILL, WRITABLE_SLOTS,
    },
    hash::fnv1a_at,
    lineage::{
        tracked_index, Lineage, LineageSlot, BPF_F_MMAPABLE, LINEAGE_OVERFLOW_ENTRIES,
        LINEAGE_SLOTS, TRACKED_LANES, TRACKED_LINES,
    },
    ARGS_LEN, COMM_LEN, PATH_LEN, PREFIX_LEN,
};

// === read-only data ===

/// Where the members the programs read sit in this kernel's structures: written by the
/// daemon into the object's read-only data before loading (`EbpfLoader::set_global`), so
/// the verifier sees constants (see `KernelOffsets`).
#[unsafe(no_mangle)]
static OFFSETS: KernelOffsets = KernelOffsets {
    task_pid: 0,
    task_tgid: 0,
    task_real_parent: 0,
    task_group_leader: 0,
    task_start_boottime: 0,
    task_mm: 0,
    task_exit_code: 0,
    mm_arg_start: 0,
    mm_arg_end: 0,
    bprm_file: 0,
    bprm_filename: 0,
    bprm_interp: 0,
    file_dentry: 0,
    dentry_name: 0,
    task_signal: 0,
    signal_live: 0,
    task_cgroups: 0,
    css_set_dfl_cgrp: 0,
    cgroup_level: 0,
    cgroup_parent: 0,
    cgroup_kn: 0,
    kernfs_node_id: 0,
    task_comm: 0,
    _pad: 0,
};

/// `OFFSETS.$field`, read so that LLVM cannot fold the zero it was compiled with.
macro_rules! off {
    ($field:ident) => {{
        // SAFETY: a read of a static.
        #[allow(unused_unsafe)]
        let value =
            unsafe { core::ptr::read_volatile(core::ptr::addr_of!($crate::OFFSETS.$field)) };
        value as usize
    }};
}

// After `off!`, which it uses.
mod jvm;

/// Non-zero: read `task->comm` with two plain loads; zero: with `bpf_get_current_comm`.
/// Set by the daemon before load from the kernel version (`sensors::kernel`): 5.10's
/// verifier accepts the loads, but they do not read the name (seen on Debian's 5.10.0-32).
#[unsafe(no_mangle)]
static COMM_BY_LOAD: u32 = 0;

/// The current task's `comm` as two native-endian words.
#[inline(always)]
fn current_comm(task: *const u8) -> Result<(u64, u64), i64> {
    // SAFETY: a read of a static.
    if unsafe { core::ptr::read_volatile(core::ptr::addr_of!(COMM_BY_LOAD)) } != 0 {
        let lo: u64 = unsafe { field(task, off!(task_comm)) };
        let hi: u64 = unsafe { field(task, off!(task_comm) + 8) };
        return Ok((lo, hi));
    }
    let comm = bpf_get_current_comm().map_err(i64::from)?;
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    lo.copy_from_slice(&comm[..8]);
    hi.copy_from_slice(&comm[8..]);
    Ok((u64::from_ne_bytes(lo), u64::from_ne_bytes(hi)))
}

// === maps ===

/// Every event, in order. 4 MiB holds ~3,000 exec events (or ~40,000 fork and exit events)
/// if userspace stalls. Its pages count in the daemon's resident memory twice (the kernel
/// maps the data area twice, so that a record that wraps reads as one), hence not more.
#[map]
pub(crate) static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTES, 0);

/// Per-CPU counters of what could not be recorded: slot `EVENT_*` counts failed ring
/// buffer reserves of that kind, slot `LOSS_LINEAGE_FULL` failed lineage inserts.
#[map]
static LOSS: PerCpuArray<u64> = PerCpuArray::with_max_entries(EVENT_KINDS, 0);

#[map]
pub(crate) static CONFIG: Array<Config> = Array::with_max_entries(1, 0);

/// The lineage of every JVM and JVM descendant alive, direct-mapped by tgid (see
/// `LINEAGE_SLOTS` for why); the daemon maps it to seed processes that predate it.
#[map]
static LINEAGE: Array<LineageSlot> = Array::with_max_entries(LINEAGE_SLOTS, BPF_F_MMAPABLE);

/// How many tracked tgids map to each counter (see `TRACKED_LINES` for why); the daemon
/// maps it to count the processes it seeds.
#[map]
static TRACKED: Array<[u32; TRACKED_LANES as usize]> =
    Array::with_max_entries(TRACKED_LINES, BPF_F_MMAPABLE);

/// Tracked tgids whose `LINEAGE` slot holds another tgid.
#[map]
static LINEAGE_OVERFLOW: HashMap<u32, Lineage> =
    HashMap::with_max_entries(LINEAGE_OVERFLOW_ENTRIES, 0);

/// Launcher names beyond the ones `Config::launchers` holds (`CFG_F_LAUNCHER_MAP`), by `comm`.
#[map]
static JVM_NAMES: HashMap<[u8; COMM_LEN], u32> = HashMap::with_max_entries(256, 0);

/// FNV-1a of full launcher paths.
#[map]
static JVM_PATHS: HashMap<u64, u32> = HashMap::with_max_entries(256, 0);

/// Program name as `comm` holds it → `CLASS_*` (shells, interpreters, downloaders).
#[map]
static EXEC_CLASS: HashMap<[u8; COMM_LEN], u32> = HashMap::with_max_entries(1024, 0);

/// World-writable directory prefixes (e.g. "/tmp/").
#[map]
static WRITABLE_DIRS: LpmTrie<PrefixKey, u32> = LpmTrie::with_max_entries(64, 0);

/// Programs allowed in every JVM lineage (`jvm_tgid` 0) or in one JVM's.
#[map]
static EXEC_ALLOW: HashMap<AllowKey, u32> = HashMap::with_max_entries(4096, 0);

/// The exec event is too large for the 512-byte BPF stack: it is built here, per CPU.
#[map]
pub(crate) static SCRATCH: PerCpuArray<ExecEvent> = PerCpuArray::with_max_entries(1, 0);

// === entry points ===

#[btf_tracepoint(function = "sched_process_exec")]
pub fn sched_process_exec(ctx: BtfTracePointContext) -> i32 {
    match try_exec(&ctx) {
        Ok(()) | Err(_) => 0,
    }
}

#[btf_tracepoint(function = "sched_process_fork")]
pub fn sched_process_fork(ctx: BtfTracePointContext) -> i32 {
    match try_fork(&ctx) {
        Ok(()) | Err(_) => 0,
    }
}

#[btf_tracepoint(function = "sched_process_exit")]
pub fn sched_process_exit(ctx: BtfTracePointContext) -> i32 {
    match try_exit(&ctx) {
        Ok(()) | Err(_) => 0,
    }
}

// === lineage table ===

/// The lineage `tgid` belongs to, if any. For a process outside every JVM lineage — nearly
/// all of them — this is one array access and a compare.
#[inline(always)]
pub(crate) fn lineage_of(tgid: u32) -> Option<Lineage> {
    let (line, lane) = tracked_index(tgid);
    let counts = TRACKED.get(line)?;
    if counts[lane & (TRACKED_LANES as usize - 1)] == 0 {
        return None;
    }
    let slot = LINEAGE.get(tgid & (LINEAGE_SLOTS - 1))?;
    if slot.tgid == tgid {
        return Some(slot.lineage);
    }
    if slot.overflow == 0 {
        return None;
    }
    unsafe { LINEAGE_OVERFLOW.get(tgid) }.copied()
}

/// Starts (or replaces) the lineage of `tgid`.
#[inline(always)]
pub(crate) fn track(tgid: u32, lineage: Lineage) {
    let Some(slot) = LINEAGE.get_ptr_mut(tgid & (LINEAGE_SLOTS - 1)) else {
        return;
    };
    let slot = unsafe { &mut *slot };
    if slot.tgid == tgid {
        slot.lineage = lineage;
        return;
    }
    if slot.tgid == 0 {
        // The lineage first, then the tgid that makes it visible, then the count that
        // makes the slot worth reading.
        slot.lineage = lineage;
        slot.tgid = tgid;
        count_tracked(tgid, 1);
        return;
    }
    const BPF_NOEXIST: u64 = 1;
    match LINEAGE_OVERFLOW.insert(tgid, lineage, BPF_NOEXIST) {
        Ok(()) => {
            atomic_add(&mut slot.overflow, 1);
            count_tracked(tgid, 1);
        }
        // Already there (a JVM exec in a tracked process): replace it, the count stays.
        Err(_) if unsafe { LINEAGE_OVERFLOW.get(tgid) }.is_some() => {
            let _ = LINEAGE_OVERFLOW.insert(tgid, lineage, 0);
        }
        Err(_) => count_loss(LOSS_LINEAGE_FULL),
    }
}

/// Ends the lineage of `tgid` (its last thread exited).
#[inline(always)]
fn untrack(tgid: u32) {
    let Some(slot) = LINEAGE.get_ptr_mut(tgid & (LINEAGE_SLOTS - 1)) else {
        return;
    };
    let slot = unsafe { &mut *slot };
    if slot.tgid == tgid {
        slot.tgid = 0;
        count_tracked(tgid, u32::MAX);
    } else if slot.overflow != 0 && LINEAGE_OVERFLOW.remove(tgid).is_ok() {
        atomic_add(&mut slot.overflow, u64::MAX);
        count_tracked(tgid, u32::MAX);
    }
}

/// Adds `delta` (wrapping: `u32::MAX` is -1) to the `TRACKED` counter of `tgid`.
#[inline(always)]
fn count_tracked(tgid: u32, delta: u32) {
    let (line, lane) = tracked_index(tgid);
    if let Some(counts) = TRACKED.get_ptr_mut(line) {
        let counts = unsafe { &mut *counts };
        let counter = &mut counts[lane & (TRACKED_LANES as usize - 1)];
        unsafe {
            core::intrinsics::atomic_xadd::<u32, u32, { core::intrinsics::AtomicOrdering::Relaxed }>(
                counter, delta,
            )
        };
    }
}

/// `*counter += delta` (wrapping) as one atomic instruction: the daemon updates the same
/// counters from userspace. The result is unused, so this is the plain `BPF_XADD` every
/// supported kernel has (fetching variants need 5.12).
#[inline(always)]
pub(crate) fn atomic_add(counter: &mut u64, delta: u64) {
    // `AtomicU64::fetch_add` is not offered for this target (it has no fetching atomics
    // before `-mcpu=v3`); the intrinsic with its result dropped lowers to `BPF_XADD`.
    unsafe {
        core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(
            counter, delta,
        )
    };
}

// === exec ===

/// What `comm` says about a new program: not a launcher, a launcher by name, or the
/// basename of a launcher path (to be confirmed by the path's hash).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Launcher {
    No,
    Name,
    PathCandidate,
}

/// Compares `comm` with the launcher names in `cfg` (a few register compares: every exec on
/// the host passes here), or looks it up in `JVM_NAMES` when there are more of them.
#[inline(always)]
fn launcher(cfg: &Config, lo: u64, hi: u64) -> Launcher {
    if cfg.flags & CFG_F_LAUNCHER_MAP != 0 {
        let mut comm = [0u8; COMM_LEN];
        comm[..8].copy_from_slice(&lo.to_ne_bytes());
        comm[8..].copy_from_slice(&hi.to_ne_bytes());
        return if unsafe { JVM_NAMES.get(comm) }.is_some_and(|v| *v != 0) {
            Launcher::Name
        } else {
            Launcher::No
        };
    }
    let mut found = Launcher::No;
    for i in 0..LAUNCHER_SLOTS {
        if i as u32 >= cfg.n_launchers {
            break;
        }
        if cfg.launchers[i][0] == lo && cfg.launchers[i][1] == hi {
            if cfg.launcher_paths & (1 << i) == 0 {
                return Launcher::Name;
            }
            found = Launcher::PathCandidate;
        }
    }
    found
}

fn try_exec(ctx: &BtfTracePointContext) -> Result<(), i64> {
    let tgid = current_tgid();
    // The process's own lineage: it was copied from its parent at fork.
    // A plain value and a flag, not an Option: LLVM spills the payload of a `None` as an
    // uninitialised register, which the verifier refuses ("R8 !read_ok").
    let (tracked, inherited) = match lineage_of(tgid) {
        Some(l) => (true, l),
        None => (false, Lineage::default()),
    };
    let Some(cfg) = CONFIG.get(0) else {
        return Ok(());
    };
    // exec set `comm` to the basename of the path execve was given (cut at 15 bytes). Two
    // plain loads from the task, not the helper's copy: every exec on the host runs this.
    let task: *const u8 = ctx.arg(0);
    let (comm_lo, comm_hi) = current_comm(task)?;
    let launcher = launcher(cfg, comm_lo, comm_hi);
    // Fast path for everything that is neither a JVM nor in a JVM's lineage.
    if !tracked && launcher == Launcher::No {
        return Ok(());
    }

    let Some(ev) = SCRATCH.get_ptr_mut(0) else {
        return Ok(());
    };
    let ev = unsafe { &mut *ev };
    let bprm: *const u8 = ctx.arg(2);
    let mut comm = [0u8; COMM_LEN];
    comm[..8].copy_from_slice(&comm_lo.to_ne_bytes());
    comm[8..].copy_from_slice(&comm_hi.to_ne_bytes());

    let filename: *const u8 = unsafe { field(bprm, off!(bprm_filename)) };
    ev.filename_len = read_str(filename, &mut ev.filename);
    let mut is_jvm = launcher == Launcher::Name;
    if launcher == Launcher::PathCandidate && cfg.flags & CFG_F_JVM_PATHS != 0 {
        is_jvm = unsafe { JVM_PATHS.get(path_hash(&ev.filename, ev.filename_len)) }
            .is_some_and(|v| *v != 0);
    }
    if !tracked && !is_jvm {
        return Ok(());
    }

    let info = task_info(task, &comm);
    let lineage = if is_jvm {
        // A JVM (even one started by another JVM) is the root of its own lineage: a child
        // is attributed to the nearest JVM above it.
        if cfg.flags & CFG_F_SCOPED != 0 && !tracked && !in_scope(cfg, task) {
            return Ok(());
        }
        let own = Lineage {
            jvm_tgid: tgid,
            depth: 0,
            jvm_start_ns: info.start_ns,
        };
        track(tgid, own);
        own
    } else {
        inherited
    };

    ev.header = header(EVENT_EXEC);
    ev.task = info;
    ev.lineage = lineage;
    ev.flags = if is_jvm { EXEC_F_JVM } else { 0 };
    ev.class = CLASS_NONE;

    let interp: *const u8 = unsafe { field(bprm, off!(bprm_interp)) };
    let script = interp != filename;
    ev.interp_len = if script {
        read_str(interp, &mut ev.interp)
    } else {
        0
    };
    read_args(task, ev);

    // The file being run: the interpreter for a script (binfmt_script swapped it in).
    let file: *const u8 = unsafe { field(bprm, off!(bprm_file)) };
    let dentry: *const u8 = unsafe { field(file, off!(file_dentry)) };
    let name: *const u8 = unsafe { field(dentry, off!(dentry_name)) };
    // Zeroed first: the helper stops at the NUL, and the bytes after it are part of the key.
    let mut file_name = [0u8; COMM_LEN];
    unsafe {
        bpf_probe_read_kernel_str(file_name.as_mut_ptr().cast(), COMM_LEN as u32, name.cast())
    };
    if file_name.starts_with(b"memfd:") {
        ev.flags |= EXEC_F_MEMFD;
    }
    if !is_jvm {
        ev.class = classify(cfg, ev, &comm, script, &file_name);
        if ev.class != CLASS_NONE {
            if allowed(ev, &comm) {
                ev.flags |= EXEC_F_ALLOWED;
            } else if cfg.flags & CFG_F_ENFORCE != 0 {
                // The new program has not run a single instruction yet: SIGKILL is
                // delivered on the way back to user space from execve.
                ev.flags |= if unsafe { bpf_send_signal(SIGKILL) } == 0 {
                    EXEC_F_KILLED
                } else {
                    EXEC_F_KILL_FAILED
                };
            }
        }
    }

    ev.recognised_by = match (is_jvm, launcher) {
        (false, _) => JVM_BY_NONE,
        (true, Launcher::Name) => JVM_BY_LAUNCHER_NAME,
        (true, _) => JVM_BY_LAUNCHER_PATH,
    };
    // Routine events do not wake the daemon (a wake-up is an interrupt per event); it
    // drains on a short timer. What it must act on wakes it at once.
    let wake = wake_flag(ev.class != CLASS_NONE || is_jvm);
    if EVENTS.output::<ExecEvent>(&*ev, wake).is_err() {
        count_loss(EVENT_EXEC);
    }
    Ok(())
}

/// `bpf_ringbuf_output` flags for a record: wake the daemon for what it must act on, or
/// when a megabyte is waiting; otherwise leave it to the daemon's drain timer
/// (`sensors::DRAIN_INTERVAL`), since a wake-up costs an interrupt per record.
#[inline(always)]
pub(crate) fn wake_flag(important: bool) -> u64 {
    const BPF_RB_NO_WAKEUP: u64 = 1;
    const BPF_RB_AVAIL_DATA: u64 = 0;
    if important || EVENTS.query(BPF_RB_AVAIL_DATA) > 1 << 20 {
        0
    } else {
        BPF_RB_NO_WAKEUP
    }
}

/// `CLASS_*` of the new program: by its name (`comm`, version-stripped), for a script by
/// the name of its interpreter's file, by a world-writable directory prefix of the path
/// execve was given, or as an anonymous memory file. `detector/src/policy` implements the
/// same order for monitor mode and replay.
///
/// Names come from `comm` and the file's dentry, not from scanning the path for its last
/// '/': the scan was the bulk of what the verifier had to walk, and what kernels before 6.2
/// refused ("The sequence of 8193 jumps is too complex").
#[inline(always)]
fn classify(
    cfg: &Config,
    ev: &mut ExecEvent,
    comm: &[u8; COMM_LEN],
    script: bool,
    file_name: &[u8; COMM_LEN],
) -> u32 {
    let class = class_of_name(*comm);
    if class != CLASS_NONE {
        return class;
    }
    if script {
        let mut name = *file_name;
        // The dentry name may be longer than the key: cut it as `comm` would be.
        name[COMM_LEN - 1] = 0;
        let class = class_of_name(name);
        if class != CLASS_NONE {
            return class;
        }
    }
    if in_writable_dir(cfg, ev) {
        return CLASS_WRITABLE_DIR;
    }
    if ev.flags & EXEC_F_MEMFD != 0 && unsafe { EXEC_CLASS.get(memfd_key()) }.is_some() {
        return CLASS_MEMFD;
    }
    CLASS_NONE
}

/// Whether the path execve was given starts with a world-writable directory: compared with
/// the prefixes in `cfg` word by word (an LPM trie lookup costs more than the rest of a JVM
/// child's exec), or looked up in `WRITABLE_DIRS` when they do not fit.
#[inline(always)]
fn in_writable_dir(cfg: &Config, ev: &ExecEvent) -> bool {
    if cfg.flags & CFG_F_WRITABLE_MAP != 0 {
        // LPM compares only the first `prefix_len` bits, so the bytes beyond the path's end
        // (left from an earlier event) do not matter: a straight copy, no loop to verify.
        let mut prefix = Key::new(0, [0u8; PREFIX_LEN]);
        let src: &[u8; PREFIX_LEN] = unsafe { &*(ev.filename.as_ptr() as *const [u8; PREFIX_LEN]) };
        prefix.data = *src;
        let n = ev.filename_len as usize;
        prefix.prefix_len = (if n > PREFIX_LEN { PREFIX_LEN } else { n } * 8) as u32;
        return WRITABLE_DIRS.get(&prefix).is_some();
    }
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&ev.filename[i * 8..i * 8 + 8]);
        u64::from_ne_bytes(w)
    };
    // Bytes past the path's end are zero only up to its NUL; the mask covers no more than
    // the prefix, and a path shorter than the prefix differs at its NUL.
    let path = [word(0), word(1), word(2)];
    for i in 0..WRITABLE_SLOTS {
        if i as u32 >= cfg.n_writable {
            break;
        }
        let p = &cfg.writable[i];
        let m = &cfg.writable_masks[i];
        if ((path[0] ^ p[0]) & m[0]) | ((path[1] ^ p[1]) & m[1]) | ((path[2] ^ p[2]) & m[2]) == 0 {
            return true;
        }
    }
    false
}

/// The `EXEC_CLASS` entry userspace sets when the policy watches memfd execs.
#[inline(always)]
fn memfd_key() -> [u8; COMM_LEN] {
    let mut key = [0u8; COMM_LEN];
    // "/memfd" cannot be a basename (it has a slash), so it cannot clash with a program.
    key[0] = b'/';
    key[1] = b'm';
    key[2] = b'e';
    key[3] = b'm';
    key[4] = b'f';
    key[5] = b'd';
    key
}

#[inline(always)]
fn class_of_name(mut key: [u8; COMM_LEN]) -> u32 {
    if let Some(class) = unsafe { EXEC_CLASS.get(key) } {
        return *class;
    }
    if strip_version(&mut key) {
        if let Some(class) = unsafe { EXEC_CLASS.get(key) } {
            return *class;
        }
    }
    CLASS_NONE
}

/// Whether an allowlist entry covers the program, by full path or by name, for every JVM
/// or for this one.
#[inline(always)]
fn allowed(ev: &mut ExecEvent, comm: &[u8; COMM_LEN]) -> bool {
    let by_path = path_hash(&ev.filename, ev.filename_len);
    let by_name = detector_common::hash::fnv1a(comm);
    for jvm_tgid in [0, ev.lineage.jvm_tgid] {
        for hash in [by_path, by_name] {
            let key = AllowKey {
                jvm_tgid,
                _pad: 0,
                hash,
            };
            if unsafe { EXEC_ALLOW.get(key) }.is_some() {
                return true;
            }
        }
    }
    false
}

/// Reads the new program's argument vector (it sits at the top of the fresh stack).
#[inline(always)]
fn read_args(task: *const u8, ev: &mut ExecEvent) {
    ev.args_len = 0;
    let mm: *const u8 = unsafe { field(task, off!(task_mm)) };
    if mm.is_null() {
        return;
    }
    let start: u64 = unsafe { field(mm, off!(mm_arg_start)) };
    let end: u64 = unsafe { field(mm, off!(mm_arg_end)) };
    if end <= start {
        return;
    }
    let mut len = (end - start) as usize;
    if len > ARGS_LEN {
        len = ARGS_LEN;
        ev.flags |= EXEC_F_ARGS_TRUNCATED;
    }
    // The explicit bound keeps the verifier sure the read fits the buffer.
    if len == 0 || len > ARGS_LEN {
        return;
    }
    if unsafe { bpf_probe_read_user_buf(start as *const u8, &mut ev.args[..len]) }.is_ok() {
        ev.args_len = len as u32;
    }
}

// === fork and exit ===

fn try_fork(ctx: &BtfTracePointContext) -> Result<(), i64> {
    let tgid = current_tgid();
    let Some(parent) = lineage_of(tgid) else {
        return Ok(());
    };
    let child: *const u8 = ctx.arg(1);
    let child_tgid: i32 = unsafe { field(child, off!(task_tgid)) };
    let child_tgid = child_tgid as u32;
    if child_tgid == tgid {
        // A new thread of a tracked process: the process's entry covers it.
        return Ok(());
    }
    let lineage = Lineage {
        depth: parent.depth + 1,
        ..parent
    };
    track(child_tgid, lineage);
    let comm = bpf_get_current_comm().unwrap_or([0; COMM_LEN]);
    let ev = ForkEvent {
        header: header(EVENT_FORK),
        child: task_info(child, &comm),
        lineage,
    };
    if EVENTS.output::<ForkEvent>(&ev, wake_flag(false)).is_err() {
        count_loss(EVENT_FORK);
    }
    Ok(())
}

fn try_exit(ctx: &BtfTracePointContext) -> Result<(), i64> {
    let tgid = current_tgid();
    let Some(lineage) = lineage_of(tgid) else {
        return Ok(());
    };
    let task: *const u8 = ctx.arg(0);
    // Only the last thread of the process ends its lineage. Kernels before 6.13 pass the
    // tracepoint the task alone (no `group_dead` argument), so read what `do_exit` derives
    // `group_dead` from: it has already decremented `signal->live` when the tracepoint
    // fires, and the last thread brings it to zero. One code path for every kernel.
    let signal: *const u8 = unsafe { field(task, off!(task_signal)) };
    let live: i32 = unsafe { field(signal, off!(signal_live)) };
    if live != 0 {
        return Ok(());
    }
    untrack(tgid);
    let comm = bpf_get_current_comm().unwrap_or([0; COMM_LEN]);
    let exit_code: i32 = unsafe { field(task, off!(task_exit_code)) };
    let ev = ExitEvent {
        header: header(EVENT_EXIT),
        task: task_info(task, &comm),
        lineage,
        exit_code: exit_code as u32,
        _pad: 0,
    };
    // The JVM itself exiting ends an incident: worth a wake-up; its children are routine.
    let wake = wake_flag(lineage.depth == 0);
    if EVENTS.output::<ExitEvent>(&ev, wake).is_err() {
        count_loss(EVENT_EXIT);
    }
    Ok(())
}

// === helpers ===

/// Member at `offset` of a kernel structure the tracepoint handed us (or one reached from
/// it). A plain load: the pointer is typed by BTF and the offset a verifier-known constant,
/// so the verifier checks it against the structure and the JIT guards it against faults
/// (a faulting read yields zero), as it does for CO-RE field accesses in C programs.
#[inline(always)]
unsafe fn field<T: Copy>(base: *const u8, offset: usize) -> T {
    unsafe { core::ptr::read(base.add(offset) as *const T) }
}

#[inline(always)]
pub(crate) fn current_tgid() -> u32 {
    (bpf_get_current_pid_tgid() >> 32) as u32
}

#[inline(always)]
pub(crate) fn header(kind: u32) -> EventHeader {
    EventHeader {
        kind,
        cpu: unsafe { bpf_get_smp_processor_id() },
        time_ns: unsafe { bpf_ktime_get_boot_ns() },
    }
}

/// Identity of `task`; credentials, cgroup and `comm` are the current task's, which is
/// `task` itself at exec and exit and the parent (whose they are copies of) at fork.
#[inline(always)]
fn task_info(task: *const u8, comm: &[u8; COMM_LEN]) -> TaskInfo {
    let pid: i32 = unsafe { field(task, off!(task_pid)) };
    let tgid: i32 = unsafe { field(task, off!(task_tgid)) };
    let parent: *const u8 = unsafe { field(task, off!(task_real_parent)) };
    let ppid: i32 = unsafe { field(parent, off!(task_tgid)) };
    let leader: *const u8 = unsafe { field(task, off!(task_group_leader)) };
    let start_ns: u64 = unsafe { field(leader, off!(task_start_boottime)) };
    let uid_gid = bpf_get_current_uid_gid();
    TaskInfo {
        pid: pid as u32,
        tgid: tgid as u32,
        ppid: ppid as u32,
        uid: uid_gid as u32,
        gid: (uid_gid >> 32) as u32,
        _pad: 0,
        start_ns,
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
        comm: *comm,
    }
}

/// Identity of the current task from the helpers every program type may call (the
/// socket hooks cannot read `task_struct`): no parent and no start time, which the
/// daemon fills in from its process table.
#[inline(always)]
pub(crate) fn task_info_current() -> Result<TaskInfo, i64> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let uid_gid = bpf_get_current_uid_gid();
    Ok(TaskInfo {
        pid: pid_tgid as u32,
        tgid: (pid_tgid >> 32) as u32,
        ppid: 0,
        uid: uid_gid as u32,
        gid: (uid_gid >> 32) as u32,
        _pad: 0,
        start_ns: 0,
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
    })
}

/// Whether `task` (the current task) is inside the configured scope cgroup or below it.
///
/// `bpf_get_current_ancestor_cgroup_id` would say so in one call, but tracing programs may
/// call it only from 6.x on; this walks the same chain (the task's default-hierarchy cgroup,
/// up through its parents to the scope's level) on every kernel. It runs once per JVM exec.
#[inline(always)]
pub(crate) fn in_scope(cfg: &Config, task: *const u8) -> bool {
    let level = cfg.scope_level;
    let Ok(cset) = (unsafe { probe::<*const u8>(task, off!(task_cgroups)) }) else {
        return false;
    };
    let Ok(mut cgrp) = (unsafe { probe::<*const u8>(cset, off!(css_set_dfl_cgrp)) }) else {
        return false;
    };
    let Ok(mut at) = (unsafe { probe::<i32>(cgrp, off!(cgroup_level)) }) else {
        return false;
    };
    if at < level as i32 {
        return false;
    }
    // Cgroup trees are shallow; a deeper task is simply not matched.
    for _ in 0..MAX_CGROUP_DEPTH {
        if at <= level as i32 {
            break;
        }
        let Ok(parent) = (unsafe { probe::<*const u8>(cgrp, off!(cgroup_parent)) }) else {
            return false;
        };
        cgrp = parent;
        at -= 1;
    }
    if at != level as i32 {
        return false;
    }
    let Ok(kn) = (unsafe { probe::<*const u8>(cgrp, off!(cgroup_kn)) }) else {
        return false;
    };
    unsafe { probe::<u64>(kn, off!(kernfs_node_id)) }.is_ok_and(|id| id == cfg.scope_cgroup_id)
}

/// Levels `in_scope` climbs at most.
const MAX_CGROUP_DEPTH: usize = 32;

/// `bpf_probe_read_kernel` of the member at `offset`: for pointers whose BTF type the
/// verifier does not know (the cgroup walk goes from `self`, a `cgroup_subsys_state`, to
/// the `cgroup` around it).
#[inline(always)]
pub(crate) unsafe fn probe<T>(base: *const u8, offset: usize) -> Result<T, i64> {
    unsafe { bpf_probe_read_kernel(base.add(offset) as *const T) }.map_err(i64::from)
}

#[inline(always)]
pub(crate) fn count_loss(slot: u32) {
    if let Some(counter) = LOSS.get_ptr_mut(slot) {
        unsafe { *counter += 1 };
    }
}

/// Copies a kernel string; returns its length without the NUL (0 on failure).
#[inline(always)]
fn read_str(src: *const u8, dst: &mut [u8; PATH_LEN]) -> u32 {
    let n =
        unsafe { bpf_probe_read_kernel_str(dst.as_mut_ptr().cast(), PATH_LEN as u32, src.cast()) };
    if n <= 0 {
        dst[0] = 0;
        return 0;
    }
    (n - 1) as u32
}

/// `value & mask`, through map memory (`slot` must live in a map value): the verifier does
/// not track what a program stores in a map, so every caller's precise constant becomes one
/// bounded unknown and the states that differed only in it merge. Volatile, or LLVM would
/// see through it.
///
/// Why it is needed: a loop that leaves at a different iteration for every input (the
/// basename scan, a payload scan) hands each later instruction a different constant, and
/// every later loop would be verified once per constant — past the verifier's budget.
#[inline(always)]
pub(crate) fn opaque(slot: &mut u32, value: usize, mask: usize) -> usize {
    unsafe {
        core::ptr::write_volatile(slot, value as u32);
        core::ptr::read_volatile(slot) as usize & mask
    }
}

/// `n` (in [1, `max`], `max` a power of two) in a form the verifier can prove is in that
/// range: what `bpf_skb_load_bytes` demands of its length. LLVM drops a plain check that
/// earlier branches make redundant, hence [`opaque`] and arithmetic the verifier follows.
#[inline(always)]
pub(crate) fn load_len(slot: &mut u32, n: usize, max: usize) -> usize {
    (opaque(slot, n, usize::MAX).wrapping_sub(1) & (max - 1)) + 1
}

/// Drops a version suffix ("python3.11" → "python"), as `policy::strip_version` does.
/// Returns false when there was none or nothing would be left.
#[inline(always)]
fn strip_version(key: &mut [u8; COMM_LEN]) -> bool {
    let mut len = 0;
    for (i, &c) in key.iter().enumerate() {
        if c == 0 {
            break;
        }
        len = i + 1;
    }
    let mut keep = len;
    for _ in 0..COMM_LEN {
        if keep == 0 {
            break;
        }
        let c = key[(keep - 1) & (COMM_LEN - 1)];
        if c.is_ascii_digit() || c == b'.' {
            keep -= 1;
        } else {
            break;
        }
    }
    if keep == 0 || keep == len {
        return false;
    }
    for (i, c) in key.iter_mut().enumerate() {
        if i >= keep {
            *c = 0;
        }
    }
    true
}

#[inline(always)]
fn path_hash(path: &[u8; PATH_LEN], len: u32) -> u64 {
    fnv1a_at(path, 0, len as usize)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // Nothing can panic at run time: the verifier rejects a program with a reachable panic.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
