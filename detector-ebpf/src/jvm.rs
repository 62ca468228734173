//! JVMs that no launcher exec reveals: a native launcher that embeds the JVM (a jpackage app
//! image's `bin/<app>`, Tomcat's jsvc, install4j/launch4j, any JNI host) is recognised by
//! what it loads rather than by its name.
//!
//! - `dlopen` (libc; uprobe + uretprobe): a call whose path's basename is `libjvm.so` is
//!   remembered per thread at entry; when it returns a handle, the calling process becomes
//!   the root of a JVM lineage. libjvm's own initialisers run inside that call, the JVM is
//!   created after it: no application code has run yet.
//! - `JNI_CreateJavaVM` (uprobe in each `libjvm.so` the daemon knows of): catches launchers
//!   linked with `-ljvm`, which never call `dlopen`. At entry, before the JVM exists.
//!
//! Both make the process a root exactly as `sched_process_exec` does for a launcher (the
//! same `Lineage`, the same `EVENT_EXEC` record, with `EXEC_F_JVM` and `recognised_by`), so
//! everything downstream treats it as any other JVM. A process that already is a JVM root
//! (every `java` launcher also dlopens libjvm) is left alone after one lookup.
//!
//! Cost: only processes that call `dlopen` pay, a uprobe trap at entry and at return, a
//! string read at entry, and a hash lookup at return; nothing else on the host changes.

use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_probe_read_user_buf,
        generated::{bpf_get_current_task, bpf_probe_read_user_str},
    },
    macros::{map, uprobe, uretprobe},
    maps::{LruHashMap, PerCpuArray},
    programs::{ProbeContext, RetProbeContext},
};
use detector_common::{
    config::{CFG_F_LIBJVM, CFG_F_SCOPED},
    event::EVENT_EXEC,
    exec::{ExecEvent, CLASS_NONE, EXEC_F_JVM, JVM_BY_DLOPEN, JVM_BY_JNI_CREATE, LIBJVM_NAME},
    lineage::Lineage,
    COMM_LEN, PATH_LEN,
};

use crate::{
    count_loss, current_tgid, header, in_scope, lineage_of, probe, task_info_current, track,
    wake_flag, CONFIG, EVENTS,
};

/// Threads inside a `dlopen` of a `libjvm.so`, by pid_tgid, until it returns. Entries of
/// threads that die inside the call stay until the map is full; then the oldest go (LRU).
#[map]
static DLOPEN_LIBJVM: LruHashMap<u64, u32> = LruHashMap::with_max_entries(1024, 0);

/// The start event of an embedded JVM, built per CPU (too large for the stack); not the exec
/// program's scratch, which a preempted exec on this CPU may still be filling.
#[map]
static JVM_SCRATCH: PerCpuArray<ExecEvent> = PerCpuArray::with_max_entries(1, 0);

/// The path `dlopen` was given, per CPU.
#[map]
static DLOPEN_PATH: PerCpuArray<[u8; PATH_LEN]> = PerCpuArray::with_max_entries(1, 0);

#[uprobe]
pub fn libjvm_dlopen(ctx: ProbeContext) -> u32 {
    match try_dlopen(&ctx) {
        Ok(()) | Err(_) => 0,
    }
}

#[uretprobe]
pub fn libjvm_dlopen_ret(ctx: RetProbeContext) -> u32 {
    match try_dlopen_ret(&ctx) {
        Ok(()) | Err(_) => 0,
    }
}

#[uprobe]
pub fn libjvm_create_vm(_ctx: ProbeContext) -> u32 {
    match root_this_process(JVM_BY_JNI_CREATE) {
        Ok(()) | Err(_) => 0,
    }
}

/// Whether the calling process already is the root of a JVM lineage.
#[inline(always)]
fn already_root(tgid: u32) -> bool {
    lineage_of(tgid).is_some_and(|l| l.jvm_tgid == tgid && l.depth == 0)
}

fn try_dlopen(ctx: &ProbeContext) -> Result<(), i64> {
    let tgid = current_tgid();
    if already_root(tgid) {
        return Ok(());
    }
    let Some(cfg) = CONFIG.get(0) else {
        return Ok(());
    };
    if cfg.flags & CFG_F_LIBJVM == 0 {
        return Ok(());
    }
    let path: *const u8 = ctx.arg(0).ok_or(0i64)?;
    if path.is_null() {
        return Ok(());
    }
    let Some(buf) = DLOPEN_PATH.get_ptr_mut(0) else {
        return Ok(());
    };
    let buf = unsafe { &mut *buf };
    // Only its length is used: the name is compared from a second, short read at its end.
    let n =
        unsafe { bpf_probe_read_user_str(buf.as_mut_ptr().cast(), PATH_LEN as u32, path.cast()) };
    // A path of PATH_LEN bytes or more was cut: its end is unknown (the daemon's /proc scan
    // still finds that JVM, late).
    if n <= 0 || n as usize >= PATH_LEN {
        return Ok(());
    }
    let len = (n - 1) as usize;
    let name_len = LIBJVM_NAME.len();
    if len < name_len {
        return Ok(());
    }
    // The last `name_len + 1` bytes, '/' and the basename (a bare basename gets its '/'
    // here), compared as two words: no loop, no memcmp for the verifier to walk.
    let mut tail = [0u8; 16];
    let read = if len == name_len {
        tail[0] = b'/';
        unsafe { bpf_probe_read_user_buf(path, &mut tail[1..LIBJVM_NAME.len() + 1]) }
    } else {
        let at = unsafe { path.add(len - name_len - 1) };
        unsafe { bpf_probe_read_user_buf(at, &mut tail[..LIBJVM_NAME.len() + 1]) }
    };
    let matches = read.is_ok() && words(&tail) == LIBJVM_TAIL;
    if matches {
        let _ = DLOPEN_LIBJVM.insert(bpf_get_current_pid_tgid(), 1, 0);
    }
    Ok(())
}

/// `/libjvm.so`, NUL-padded to 16 bytes, as two native-endian words.
const LIBJVM_TAIL: [u64; 2] = {
    let mut bytes = [0u8; 16];
    bytes[0] = b'/';
    let mut i = 0;
    while i < LIBJVM_NAME.len() {
        bytes[i + 1] = LIBJVM_NAME[i];
        i += 1;
    }
    words(&bytes)
};

#[inline(always)]
const fn words(b: &[u8; 16]) -> [u64; 2] {
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    let mut i = 0;
    while i < 8 {
        lo[i] = b[i];
        hi[i] = b[i + 8];
        i += 1;
    }
    [u64::from_ne_bytes(lo), u64::from_ne_bytes(hi)]
}

fn try_dlopen_ret(ctx: &RetProbeContext) -> Result<(), i64> {
    let id = bpf_get_current_pid_tgid();
    if unsafe { DLOPEN_LIBJVM.get(id) }.is_none() {
        return Ok(());
    }
    let _ = DLOPEN_LIBJVM.remove(id);
    let handle: u64 = ctx.ret();
    if handle == 0 {
        return Ok(());
    }
    root_this_process(JVM_BY_DLOPEN)
}

/// Makes the calling process the root of its own JVM lineage, as `sched_process_exec` does
/// for a launcher, and tells the daemon with an exec record (no path or arguments: the
/// daemon reads them from /proc).
fn root_this_process(recognised_by: u32) -> Result<(), i64> {
    let tgid = current_tgid();
    let tracked = lineage_of(tgid);
    if tracked.is_some_and(|l| l.jvm_tgid == tgid && l.depth == 0) {
        return Ok(());
    }
    let Some(cfg) = CONFIG.get(0) else {
        return Ok(());
    };
    if cfg.flags & CFG_F_LIBJVM == 0 {
        return Ok(());
    }
    let task = unsafe { bpf_get_current_task() } as *const u8;
    if cfg.flags & CFG_F_SCOPED != 0 && tracked.is_none() && !in_scope(cfg, task) {
        return Ok(());
    }
    let mut info = task_info_current()?;
    // The socket hooks' identity lacks these two; here the task can be read.
    let leader: *const u8 = unsafe { probe(task, off!(task_group_leader)) }?;
    info.start_ns = unsafe { probe(leader, off!(task_start_boottime)) }?;
    let parent: *const u8 = unsafe { probe(task, off!(task_real_parent)) }?;
    let ppid: i32 = unsafe { probe(parent, off!(task_tgid)) }?;
    info.ppid = ppid as u32;
    let lineage = Lineage {
        jvm_tgid: tgid,
        depth: 0,
        jvm_start_ns: info.start_ns,
    };
    track(tgid, lineage);

    let Some(ev) = JVM_SCRATCH.get_ptr_mut(0) else {
        return Ok(());
    };
    let ev = unsafe { &mut *ev };
    ev.header = header(EVENT_EXEC);
    info.comm = bpf_get_current_comm().unwrap_or([0; COMM_LEN]);
    ev.task = info;
    ev.lineage = lineage;
    ev.flags = EXEC_F_JVM;
    ev.class = CLASS_NONE;
    ev.filename_len = 0;
    ev.interp_len = 0;
    ev.args_len = 0;
    ev.recognised_by = recognised_by;
    if EVENTS.output::<ExecEvent>(&*ev, wake_flag(true)).is_err() {
        count_loss(EVENT_EXEC);
    }
    Ok(())
}
