//! The detector's kernel programs.
//!
//! Three BTF tracepoints (`tp_btf`) on the scheduler's process life-cycle keep a map of
//! *lineages*: every JVM (an exec of a configured launcher) and every process descending
//! from it, keyed by tgid, carries the JVM's tgid and start time. Because the taint is
//! copied at fork, in the kernel, a grandchild shell is attributed to its JVM even when
//! the shell in between has already exited, and nothing depends on userspace keeping up.
//!
//! Non-JVM work costs one hash lookup per fork/exit and one lookup of `comm` per exec.
//!
//! Why `tp_btf` and not the classic `tracepoint/sched/*`: the raw tracepoints hand us the
//! `task_struct` and `linux_binprm` pointers, which lets us tell a new thread from a new
//! process at fork, read the process start time that `/proc/PID/stat` reports, and look at
//! the executed file itself (memfd), without tracefs. Member offsets come from the running
//! kernel's BTF via the `CONFIG` map (see `detector/src/sensors/btf.rs`).
#![no_std]
#![no_main]

mod egress;
mod floor;
mod ingress;

use aya_ebpf::{
    helpers::{
        bpf_get_current_ancestor_cgroup_id, bpf_get_current_cgroup_id, bpf_get_current_comm,
        bpf_get_current_pid_tgid, bpf_get_current_uid_gid, bpf_get_smp_processor_id,
        bpf_ktime_get_boot_ns, bpf_probe_read_kernel, bpf_probe_read_user_buf, bpf_send_signal,
        generated::bpf_probe_read_kernel_str,
    },
    macros::{btf_tracepoint, map},
    maps::{lpm_trie::Key, Array, HashMap, LpmTrie, PerCpuArray, RingBuf},
    programs::BtfTracePointContext,
};
use detector_common::{
    fnv1a_at, AllowKey, Config, EventHeader, ExecEvent, ExitEvent, ForkEvent, KernelOffsets,
    Lineage, PrefixKey, TaskInfo, ARGS_LEN, CFG_F_ENFORCE, CFG_F_JVM_PATHS, CFG_F_SCOPED,
    CLASS_MEMFD, CLASS_NONE, CLASS_WRITABLE_DIR, EVENT_EXEC, EVENT_EXIT, EVENT_FORK, EVENT_KINDS,
    EXEC_F_ALLOWED, EXEC_F_ARGS_TRUNCATED, EXEC_F_JVM, EXEC_F_KILLED, EXEC_F_KILL_FAILED,
    EXEC_F_MEMFD, LOSS_LINEAGE_FULL, NAME_LEN, PATH_LEN, PREFIX_LEN, SIGKILL,
};

// === maps ===

/// Every event, in order. 8 MiB holds several thousand exec events if userspace stalls.
#[map]
pub(crate) static EVENTS: RingBuf = RingBuf::with_byte_size(8 << 20, 0);

/// Per-CPU counters of what could not be recorded: slot `EVENT_*` counts failed ring
/// buffer reserves of that kind, slot `LOSS_LINEAGE_FULL` failed `LINEAGE` inserts.
#[map]
static LOSS: PerCpuArray<u64> = PerCpuArray::with_max_entries(EVENT_KINDS, 0);

#[map]
pub(crate) static CONFIG: Array<Config> = Array::with_max_entries(1, 0);

/// tgid → lineage, for every JVM and JVM descendant alive.
#[map]
pub(crate) static LINEAGE: HashMap<u32, Lineage> = HashMap::with_max_entries(65536, 0);

/// Basenames of JVM launchers (matched on `comm`, which exec sets to the basename).
#[map]
static JVM_NAMES: HashMap<[u8; NAME_LEN], u32> = HashMap::with_max_entries(256, 0);

/// FNV-1a of full launcher paths.
#[map]
static JVM_PATHS: HashMap<u64, u32> = HashMap::with_max_entries(256, 0);

/// Basename → `CLASS_*` (shells, interpreters, downloaders).
#[map]
static EXEC_CLASS: HashMap<[u8; NAME_LEN], u32> = HashMap::with_max_entries(1024, 0);

/// World-writable directory prefixes (e.g. "/tmp/").
#[map]
static WRITABLE_DIRS: LpmTrie<PrefixKey, u32> = LpmTrie::with_max_entries(64, 0);

/// Programs allowed in every JVM lineage (`jvm_tgid` 0) or in one JVM's.
#[map]
static EXEC_ALLOW: HashMap<AllowKey, u32> = HashMap::with_max_entries(4096, 0);

/// The exec event is too large for the 512-byte BPF stack: it is built here, per CPU.
#[map]
static SCRATCH: PerCpuArray<ExecEvent> = PerCpuArray::with_max_entries(1, 0);

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

// === exec ===

fn try_exec(ctx: &BtfTracePointContext) -> Result<(), i64> {
    let Some(cfg) = CONFIG.get(0) else {
        return Ok(());
    };
    let off = &cfg.offsets;
    let tgid = current_tgid();
    // The process's own entry: it was copied from its parent at fork.
    // A plain value and a flag, not an Option: LLVM spills the payload of a `None` as an
    // uninitialised register, which the verifier refuses ("R8 !read_ok").
    let (tracked, inherited) = match unsafe { LINEAGE.get(tgid) } {
        Some(l) => (true, *l),
        None => (false, Lineage::default()),
    };

    // Fast path for everything that is neither a JVM nor in a JVM's lineage.
    let comm = bpf_get_current_comm().map_err(i64::from)?;
    // Compare the loaded value, not the pointer: LLVM would otherwise fold the two null
    // checks into `ptr | ptr`, which the verifier rejects ("pointer |= pointer prohibited").
    let by_name = unsafe { JVM_NAMES.get(comm_key(&comm)) }.is_some_and(|v| *v != 0);
    let bprm: *const u8 = ctx.arg(2);
    if !tracked && !by_name && cfg.flags & CFG_F_JVM_PATHS == 0 {
        return Ok(());
    }

    let Some(ev) = SCRATCH.get_ptr_mut(0) else {
        return Ok(());
    };
    let ev = unsafe { &mut *ev };
    let task: *const u8 = ctx.arg(0);

    ev.filename_len = read_str(read_ptr(bprm, off.bprm_filename)?, &mut ev.filename);
    let is_jvm = by_name
        || (cfg.flags & CFG_F_JVM_PATHS != 0
            && unsafe { JVM_PATHS.get(path_hash(&ev.filename, ev.filename_len)) }
                .is_some_and(|v| *v != 0));
    if !tracked && !is_jvm {
        return Ok(());
    }

    let info = task_info(task, off)?;
    let lineage = if is_jvm {
        // A JVM (even one started by another JVM) is the root of its own lineage: a child
        // is attributed to the nearest JVM above it.
        if cfg.flags & CFG_F_SCOPED != 0 && !tracked && !in_scope(cfg) {
            return Ok(());
        }
        let own = Lineage {
            jvm_tgid: tgid,
            depth: 0,
            jvm_start_ns: info.start_ns,
        };
        if LINEAGE.insert(tgid, own, 0).is_err() {
            count_loss(LOSS_LINEAGE_FULL);
        }
        own
    } else {
        inherited
    };

    ev.header = header(EVENT_EXEC);
    ev.task = info;
    ev.lineage = lineage;
    ev.flags = if is_jvm { EXEC_F_JVM } else { 0 };
    ev.class = CLASS_NONE;

    let interp = read_ptr(bprm, off.bprm_interp)?;
    ev.interp_len = if interp == read_ptr(bprm, off.bprm_filename)? {
        0
    } else {
        read_str(interp, &mut ev.interp)
    };
    read_args(task, off, ev);

    if is_memfd(bprm, off) {
        ev.flags |= EXEC_F_MEMFD;
    }
    if !is_jvm {
        ev.class = classify(ev);
        if ev.class != CLASS_NONE {
            if allowed(ev) {
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

    ev._pad = 0;
    if EVENTS.output::<ExecEvent>(&*ev, 0).is_err() {
        count_loss(EVENT_EXEC);
    }
    Ok(())
}

/// `CLASS_*` of the program `ev` describes: by basename, by the basename of a script's
/// interpreter, by a world-writable directory prefix, or as an anonymous memory file.
/// `detector/src/policy` implements the same order for monitor mode and replay.
#[inline(always)]
fn classify(ev: &mut ExecEvent) -> u32 {
    let class = class_of_name(&mut ev._pad, &ev.filename, ev.filename_len);
    if class != CLASS_NONE {
        return class;
    }
    if ev.interp_len > 0 {
        let class = class_of_name(&mut ev._pad, &ev.interp, ev.interp_len);
        if class != CLASS_NONE {
            return class;
        }
    }
    let mut prefix = Key::new(0, [0u8; PREFIX_LEN]);
    let n = ev.filename_len as usize;
    let n = if n > PREFIX_LEN { PREFIX_LEN } else { n };
    for i in 0..PREFIX_LEN {
        if i >= n {
            break;
        }
        prefix.data[i] = ev.filename[i];
    }
    prefix.prefix_len = (n * 8) as u32;
    if WRITABLE_DIRS.get(&prefix).is_some() {
        return CLASS_WRITABLE_DIR;
    }
    if ev.flags & EXEC_F_MEMFD != 0 && unsafe { EXEC_CLASS.get(memfd_key()) }.is_some() {
        return CLASS_MEMFD;
    }
    CLASS_NONE
}

/// The `EXEC_CLASS` entry userspace sets when the policy watches memfd execs.
#[inline(always)]
fn memfd_key() -> [u8; NAME_LEN] {
    let mut key = [0u8; NAME_LEN];
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
fn class_of_name(slot: &mut u32, path: &[u8; PATH_LEN], len: u32) -> u32 {
    let start = opaque(slot, basename_start(path, len), PATH_LEN - 1);
    let mut key = name_at(path, start, len);
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

/// Whether an allowlist entry covers the program, by full path or basename, for every
/// JVM or for this one.
#[inline(always)]
fn allowed(ev: &mut ExecEvent) -> bool {
    let start = opaque(
        &mut ev._pad,
        basename_start(&ev.filename, ev.filename_len),
        PATH_LEN - 1,
    );
    let by_path = path_hash(&ev.filename, ev.filename_len);
    let by_name = name_hash(&ev.filename, start, ev.filename_len);
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
fn read_args(task: *const u8, off: &KernelOffsets, ev: &mut ExecEvent) {
    ev.args_len = 0;
    let Ok(mm) = read_ptr(task, off.task_mm) else {
        return;
    };
    let (Ok(start), Ok(end)) = (unsafe { read::<u64>(mm, off.mm_arg_start) }, unsafe {
        read::<u64>(mm, off.mm_arg_end)
    }) else {
        return;
    };
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

/// Whether the file being executed is an anonymous memory file: its dentry is named
/// "memfd:<name>" whatever path (`/proc/self/fd/N`, `/dev/fd/N`) execve was given.
#[inline(always)]
fn is_memfd(bprm: *const u8, off: &KernelOffsets) -> bool {
    let Ok(file) = read_ptr(bprm, off.bprm_file) else {
        return false;
    };
    let Ok(dentry) = read_ptr(file, off.file_dentry) else {
        return false;
    };
    let Ok(name) = read_ptr(dentry, off.dentry_name) else {
        return false;
    };
    match unsafe { bpf_probe_read_kernel(name as *const [u8; 6]) } {
        Ok(prefix) => &prefix == b"memfd:",
        Err(_) => false,
    }
}

// === fork and exit ===

fn try_fork(ctx: &BtfTracePointContext) -> Result<(), i64> {
    let tgid = current_tgid();
    let Some(parent) = (unsafe { LINEAGE.get(tgid) }).copied() else {
        return Ok(());
    };
    let Some(cfg) = CONFIG.get(0) else {
        return Ok(());
    };
    let off = &cfg.offsets;
    let child: *const u8 = ctx.arg(1);
    let child_tgid = unsafe { read::<i32>(child, off.task_tgid) }? as u32;
    if child_tgid == tgid {
        // A new thread of a tracked process: the process's entry covers it.
        return Ok(());
    }
    let lineage = Lineage {
        depth: parent.depth + 1,
        ..parent
    };
    if LINEAGE.insert(child_tgid, lineage, 0).is_err() {
        count_loss(LOSS_LINEAGE_FULL);
    }
    let ev = ForkEvent {
        header: header(EVENT_FORK),
        child: task_info(child, off)?,
        lineage,
    };
    if EVENTS.output::<ForkEvent>(&ev, 0).is_err() {
        count_loss(EVENT_FORK);
    }
    Ok(())
}

fn try_exit(ctx: &BtfTracePointContext) -> Result<(), i64> {
    let tgid = current_tgid();
    let Some(lineage) = (unsafe { LINEAGE.get(tgid) }).copied() else {
        return Ok(());
    };
    let Some(cfg) = CONFIG.get(0) else {
        return Ok(());
    };
    let task: *const u8 = ctx.arg(0);
    // Only the last thread of the process ends its lineage. Kernels before 6.13 pass the
    // tracepoint the task alone (no `group_dead` argument), so read what `do_exit` derives
    // `group_dead` from: it has already decremented `signal->live` when the tracepoint
    // fires, and the last thread brings it to zero. One code path for every kernel.
    let signal = read_ptr(task, cfg.offsets.task_signal)?;
    let live = unsafe { read::<i32>(signal, cfg.offsets.signal_live) }?;
    if live != 0 {
        return Ok(());
    }
    let _ = LINEAGE.remove(tgid);
    let ev = ExitEvent {
        header: header(EVENT_EXIT),
        task: task_info(task, &cfg.offsets)?,
        lineage,
        exit_code: unsafe { read::<i32>(task, cfg.offsets.task_exit_code) }.unwrap_or(0) as u32,
        _pad: 0,
    };
    if EVENTS.output::<ExitEvent>(&ev, 0).is_err() {
        count_loss(EVENT_EXIT);
    }
    Ok(())
}

// === helpers ===

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

/// Identity of `task`; credentials, cgroup and comm are the current task's, which is
/// `task` itself at exec and exit and the parent (whose they are copies of) at fork.
#[inline(always)]
fn task_info(task: *const u8, off: &KernelOffsets) -> Result<TaskInfo, i64> {
    let pid = unsafe { read::<i32>(task, off.task_pid) }? as u32;
    let tgid = unsafe { read::<i32>(task, off.task_tgid) }? as u32;
    let parent = read_ptr(task, off.task_real_parent)?;
    let ppid = unsafe { read::<i32>(parent, off.task_tgid) }.unwrap_or(0) as u32;
    let leader = read_ptr(task, off.task_group_leader)?;
    let start_ns = unsafe { read::<u64>(leader, off.task_start_boottime) }?;
    let uid_gid = bpf_get_current_uid_gid();
    Ok(TaskInfo {
        pid,
        tgid,
        ppid,
        uid: uid_gid as u32,
        gid: (uid_gid >> 32) as u32,
        _pad: 0,
        start_ns,
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
    })
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

/// Whether the current task is inside the configured scope cgroup (or below it).
#[inline(always)]
fn in_scope(cfg: &Config) -> bool {
    let ancestor = unsafe { bpf_get_current_ancestor_cgroup_id(cfg.scope_level as i32) };
    ancestor == cfg.scope_cgroup_id
}

#[inline(always)]
pub(crate) fn count_loss(slot: u32) {
    if let Some(counter) = LOSS.get_ptr_mut(slot) {
        unsafe { *counter += 1 };
    }
}

#[inline(always)]
unsafe fn read<T>(base: *const u8, offset: u32) -> Result<T, i64> {
    unsafe { bpf_probe_read_kernel(base.add(offset as usize) as *const T) }.map_err(i64::from)
}

#[inline(always)]
fn read_ptr(base: *const u8, offset: u32) -> Result<*const u8, i64> {
    unsafe { read::<*const u8>(base, offset) }
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

#[inline(always)]
fn comm_key(comm: &[u8; 16]) -> [u8; NAME_LEN] {
    let mut key = [0u8; NAME_LEN];
    key[..16].copy_from_slice(comm);
    key
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

/// Index just past the last '/' of `path[..len]`.
///
/// Scans backwards and stops at the first '/': a forward scan that remembers the last
/// slash gives the verifier one state per possible position and blows its budget.
#[inline(always)]
fn basename_start(path: &[u8; PATH_LEN], len: u32) -> usize {
    let len = len as usize;
    for i in 0..PATH_LEN {
        if i >= len {
            break;
        }
        let j = (len - 1 - i) & (PATH_LEN - 1);
        if path[j] == b'/' {
            return j + 1;
        }
    }
    0
}

/// The NUL-padded key of the basename starting at `start`, cut at `NAME_LEN`.
#[inline(always)]
fn name_at(path: &[u8; PATH_LEN], start: usize, len: u32) -> [u8; NAME_LEN] {
    let mut key = [0u8; NAME_LEN];
    for (i, k) in key.iter_mut().enumerate() {
        let j = start + i;
        if j >= len as usize {
            break;
        }
        *k = path[j & (PATH_LEN - 1)];
    }
    key
}

/// Drops a version suffix ("python3.11" → "python"), as `policy::strip_version` does.
/// Returns false when there was none or nothing would be left.
#[inline(always)]
fn strip_version(key: &mut [u8; NAME_LEN]) -> bool {
    let mut len = 0;
    for (i, &c) in key.iter().enumerate() {
        if c == 0 {
            break;
        }
        len = i + 1;
    }
    let mut keep = len;
    for _ in 0..NAME_LEN {
        if keep == 0 {
            break;
        }
        let c = key[(keep - 1) & (NAME_LEN - 1)];
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

#[inline(always)]
fn name_hash(path: &[u8; PATH_LEN], start: usize, len: u32) -> u64 {
    fnv1a_at(path, start, len as usize)
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
