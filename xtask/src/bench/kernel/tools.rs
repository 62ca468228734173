//! The two tools besides the detector: the bpftrace reference, and the floor's empty
//! programs.

use std::{
    fs::{self, File},
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc::{Receiver, RecvTimeoutError},
    thread::{self, JoinHandle},
    time::Instant,
};

use anyhow::{bail, ensure, Context as _, Result};
use aya::{
    programs::{
        cgroup_skb::CgroupSkbAttachType, links::CgroupAttachMode, BtfTracePoint, CgroupSkb,
        CgroupSockAddr,
    },
    Btf, Ebpf, EbpfLoader,
};

use super::{line_reader, stats::ProgStats, START_TIMEOUT};
use crate::command_line;

/// Where bpftrace finds tracepoints; mounted for the bpftrace run if no tracefs is.
const TRACEFS: &str = "/sys/kernel/tracing";

/// The bpftrace reference: the lineage of every JVM (tainted at the exec of `java`, copied
/// at fork, dropped at exit), reporting what the detector reports of it — every program a
/// JVM descendant executes, with its path, and every connect of the lineage — as a
/// monitoring script written with bpftrace would, one line each (the bench drains them), and
/// a count of the connects for the sanity check. The map is keyed by thread id at fork and
/// exit (threads are tasks too) and looked up by process id at exec and connect, where the
/// process's own entry is the one that matters. BEGIN runs once every probe is attached: its
/// line says the measurement may start.
pub(super) const BPFTRACE_SCRIPT: &str = r#"
BEGIN { printf("bench: attached\n"); }
tracepoint:sched:sched_process_exec /comm == "java"/ { @jvm[pid] = 1; }
tracepoint:sched:sched_process_exec /@jvm[pid] && comm != "java"/ { printf("exec %d %s\n", pid, str(args->filename)); }
tracepoint:sched:sched_process_fork /@jvm[pid]/ { @jvm[args->child_pid] = 1; }
tracepoint:sched:sched_process_exit /@jvm[tid]/ { delete(@jvm[tid]); }
tracepoint:syscalls:sys_enter_connect /@jvm[pid]/ { printf("connect %d\n", pid); @connects = count(); }
END { clear(@jvm); }
"#;

/// The floor's programs (detector-ebpf/src/floor.rs) and their hooks.
const FLOOR_TRACEPOINTS: [(&str, &str); 3] = [
    ("floor_fork", "sched_process_fork"),
    ("floor_exec", "sched_process_exec"),
    ("floor_exit", "sched_process_exit"),
];
const FLOOR_SOCK_ADDR: [&str; 4] = [
    "floor_connect4",
    "floor_connect6",
    "floor_sendmsg4",
    "floor_sendmsg6",
];
/// Attached before the JVM workloads only, as the daemon attaches its packet programs to a
/// cgroup once a JVM runs in it.
const FLOOR_PACKET: [(&str, CgroupSkbAttachType); 2] = [
    ("floor_egress", CgroupSkbAttachType::Egress),
    ("floor_ingress", CgroupSkbAttachType::Ingress),
];

// === impl Tracefs ===

/// tracefs at /sys/kernel/tracing for bpftrace's tracepoints, unmounted on drop if we
/// mounted it (the detector itself needs none: its tracepoints are BTF ones).
#[derive(Debug)]
pub(super) struct Tracefs {
    mounted_here: bool,
}

impl Tracefs {
    pub(super) fn mount_if_absent() -> Result<Self> {
        let mounts = fs::read_to_string("/proc/mounts").context("reading /proc/mounts")?;
        if mounts
            .lines()
            .any(|line| line.split_whitespace().nth(2) == Some("tracefs"))
        {
            return Ok(Self {
                mounted_here: false,
            });
        }
        let target = std::ffi::CString::new(TRACEFS).context("tracefs path")?;
        let fstype = c"tracefs";
        // SAFETY: every pointer is a valid NUL-terminated string that outlives the call; no
        // data argument.
        let rc = unsafe {
            libc::mount(
                fstype.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("mounting tracefs at {TRACEFS} for bpftrace"));
        }
        Ok(Self { mounted_here: true })
    }
}

impl Drop for Tracefs {
    fn drop(&mut self) {
        if !self.mounted_here {
            return;
        }
        let Ok(target) = std::ffi::CString::new(TRACEFS) else {
            return;
        };
        // SAFETY: `target` is a valid NUL-terminated path.
        if unsafe { libc::umount(target.as_ptr()) } != 0 {
            eprintln!(
                "warning: unmounting {TRACEFS}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

// === impl Bpftrace ===

/// `bpftrace FILE`, from the line its BEGIN probe prints (every probe attached) to SIGINT.
/// Its stderr is kept for error messages: on a good run it holds only bpftrace's complaint
/// that it could not raise RLIMIT_MEMLOCK, which kernels since 5.11 no longer use for BPF.
#[derive(Debug)]
pub(super) struct Bpftrace {
    child: Child,
    lines: Receiver<String>,
    reader: Option<JoinHandle<()>>,
    stderr: Option<JoinHandle<Vec<String>>>,
    stopped: bool,
}

impl Bpftrace {
    pub(super) fn start(script: &Path) -> Result<Self> {
        let mut cmd = Command::new("bpftrace");
        cmd.arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().with_context(|| {
            format!(
                "starting `{}` (bpftrace is installed by `cargo xtask setup`)",
                command_line(&cmd)
            )
        })?;
        let stdout = child
            .stdout
            .take()
            .context("bpftrace's stdout is not piped")?;
        let (lines, reader) = line_reader(stdout);
        let stderr = child
            .stderr
            .take()
            .context("bpftrace's stderr is not piped")?;
        let stderr = thread::spawn(move || {
            BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .collect()
        });
        let mut bpftrace = Self {
            child,
            lines,
            reader: Some(reader),
            stderr: Some(stderr),
            stopped: false,
        };
        bpftrace.wait_attached()?;
        Ok(bpftrace)
    }

    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_attached(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.trim() == "bench: attached" => break,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    self.stopped = true;
                    bail!("bpftrace did not attach in time{}", self.stderr_tail());
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().context("waiting for bpftrace")?;
                    self.stopped = true;
                    bail!(
                        "bpftrace exited ({status}) before attaching{}",
                        self.stderr_tail()
                    );
                }
            }
        }
        let programs = ProgStats::read(self.pid())?.0.len();
        // Four tracepoints, plus BEGIN and END.
        ensure!(
            programs >= 4,
            "bpftrace holds {programs} programs, not the script's four tracepoints and more"
        );
        Ok(())
    }

    /// SIGINT, and the `@connects` count it prints on the way out.
    pub(super) fn stop(mut self) -> Result<u64> {
        let pid = libc::pid_t::try_from(self.child.id()).context("bpftrace pid out of range")?;
        // SAFETY: kill has no memory-safety preconditions; the pid is our own unreaped child.
        if unsafe { libc::kill(pid, libc::SIGINT) } != 0 {
            bail!("SIGINT to bpftrace: {}", std::io::Error::last_os_error());
        }
        let status = self.child.wait().context("waiting for bpftrace")?;
        self.stopped = true;
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        ensure!(
            status.success(),
            "bpftrace did not stop cleanly ({status}){}",
            self.stderr_tail()
        );
        let connects = self
            .lines
            .try_iter()
            .find_map(|line| line.trim().strip_prefix("@connects:")?.trim().parse().ok())
            .unwrap_or(0);
        Ok(connects)
    }

    /// The end of bpftrace's stderr, for an error message; only once it has exited.
    fn stderr_tail(&mut self) -> String {
        let lines = self
            .stderr
            .take()
            .and_then(|reader| reader.join().ok())
            .unwrap_or_default();
        testkit::daemon::tail(&lines)
    }
}

impl Drop for Bpftrace {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// === impl Floor ===

/// The floor's programs, loaded by this process from the built object and attached to the
/// same hooks as the detector's; dropping it detaches and unloads them.
pub(super) struct Floor {
    ebpf: Ebpf,
    cgroup: File,
}

impl std::fmt::Debug for Floor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Floor").finish_non_exhaustive()
    }
}

impl Floor {
    pub(super) fn load(object: &Path, cgroup: &Path) -> Result<Self> {
        let bytes = fs::read(object).with_context(|| format!("reading {}", object.display()))?;
        let btf = Btf::from_sys_fs().context("reading the kernel's BTF")?;
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .load(&bytes)
            .with_context(|| format!("loading {}", object.display()))?;
        for (name, tracepoint) in FLOOR_TRACEPOINTS {
            let prog: &mut BtfTracePoint = program(&mut ebpf, name)?
                .try_into()
                .with_context(|| format!("{name} is not a tp_btf program"))?;
            prog.load(tracepoint, &btf)
                .with_context(|| format!("loading {name}"))?;
            prog.attach().with_context(|| format!("attaching {name}"))?;
        }
        let cgroup = File::open(cgroup).with_context(|| format!("opening {}", cgroup.display()))?;
        for name in FLOOR_SOCK_ADDR {
            let prog: &mut CgroupSockAddr = program(&mut ebpf, name)?
                .try_into()
                .with_context(|| format!("{name} is not a cgroup_sock_addr program"))?;
            prog.load().with_context(|| format!("loading {name}"))?;
            prog.attach(&cgroup, CgroupAttachMode::Single)
                .with_context(|| format!("attaching {name}"))?;
        }
        for (name, _) in FLOOR_PACKET {
            let prog: &mut CgroupSkb = program(&mut ebpf, name)?
                .try_into()
                .with_context(|| format!("{name} is not a cgroup_skb program"))?;
            prog.load().with_context(|| format!("loading {name}"))?;
        }
        Ok(Self { ebpf, cgroup })
    }

    pub(super) fn attach_packet(&mut self) -> Result<()> {
        for (name, direction) in FLOOR_PACKET {
            let prog: &mut CgroupSkb = program(&mut self.ebpf, name)?
                .try_into()
                .with_context(|| format!("{name} is not a cgroup_skb program"))?;
            prog.attach(&self.cgroup, direction, CgroupAttachMode::Single)
                .with_context(|| format!("attaching {name}"))?;
        }
        Ok(())
    }
}

fn program<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut aya::programs::Program> {
    ebpf.program_mut(name).with_context(|| {
        format!("no program {name} in the kernel object: rebuild it with `cargo xtask build`")
    })
}
