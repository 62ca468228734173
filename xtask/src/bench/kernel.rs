//! `cargo xtask bench kernel`: what the detector's kernel programs themselves cost per
//! operation, measured by the kernel (issue 8).
//!
//! With `kernel.bpf_stats_enabled` on, the kernel adds up, per program, how often it ran
//! (`run_cnt`) and for how long (`run_time_ns`). We read both from `/proc/PID/fdinfo` of the
//! program fds a tool holds, before and after a fixed number of operations, sum the deltas
//! over all of the tool's programs and divide by the operations: nanoseconds of BPF per
//! operation. No wall clock: the numbers do not depend on how busy the machine is, only on
//! what the programs do (and on how many other processes trip the global hooks meanwhile,
//! which the runs/op column shows).
//!
//! Three tools, each measured alone on the same four workloads:
//!
//! - the detector: the real daemon, scoped with `--cgroup` to a cgroup this benchmark creates;
//! - bpftrace: a JVM-lineage script on four tracepoints, the reference to beat;
//! - the floor: empty programs on the detector's hooks (`detector-ebpf/src/floor.rs`).
//!
//! Every workload runs inside that cgroup: the socket programs (the detector's and the
//! floor's) are attached to it, so a connect from outside it would cost them nothing. This
//! process joins it for the non-JVM workloads and its JVMs are started there.
//!
//! The JVM workloads run in one JVM each that warms up, prints `ready`, waits for a line on
//! stdin, does its operations, prints `done` and waits again: the snapshots bracket the
//! operations alone, not the JVM's start-up or exit.
//!
//! - stats.rs: the statistics switch, and the counters read from a tool's program fds;
//! - tools.rs: the bpftrace reference and the floor.

mod stats;
mod tools;

use std::{
    collections::BTreeMap,
    fs,
    io::{BufRead as _, BufReader, Write as _},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{self, Child, ChildStdin, ChildStdout, Command, Stdio},
    sync::mpsc::{self, Receiver, RecvTimeoutError},
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context as _, Result};
use serde_json::{json, Value};

use self::{
    stats::{program_names, Counters, Delta, ProgStats, StatsSwitch},
    tools::{Bpftrace, Floor, Tracefs, BPFTRACE_SCRIPT},
};

use super::{
    compile_java,
    connect::{non_jvm_storm, LoopbackServer},
    daemon_binary,
    exec::spawn_storm,
    java, start_daemon, ScratchDir, SETTLE,
};
use testkit::Cgroup;

use crate::Workspace;

/// How long bpftrace may take to attach, and a JVM to warm up.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The JVM workloads: `java KernelBench spawn N` or `java KernelBench connect PORT N`.
const JAVA_CLASS: &str = "KernelBench";
const JAVA_SOURCE: &str = r#"import com.sun.net.httpserver.HttpServer;
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;

public final class KernelBench {
    interface Op {
        void run() throws Exception;
    }

    public static void main(String[] args) throws Exception {
        final Op op;
        final int n;
        if (args[0].equals("serve")) {
            // The requests come from the benchmark: serve until told to stop.
            HttpServer server = HttpServer.create(
                new InetSocketAddress(InetAddress.getByAddress(new byte[] {127, 0, 0, 1}),
                    Integer.parseInt(args[1])), 0);
            server.createContext("/", exchange -> {
                try (InputStream body = exchange.getRequestBody()) {
                    body.readAllBytes();
                }
                exchange.sendResponseHeaders(200, 2);
                exchange.getResponseBody().write("ok".getBytes());
                exchange.close();
            });
            server.start();
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
            System.out.println("ready");
            System.out.flush();
            in.readLine();
            server.stop(0);
            System.out.println("done");
            System.out.flush();
            in.readLine();
            return;
        }
        if (args[0].equals("spawn")) {
            n = Integer.parseInt(args[1]);
            ProcessBuilder pb = new ProcessBuilder("/bin/true")
                .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(ProcessBuilder.Redirect.DISCARD);
            op = () -> {
                int rc = pb.start().waitFor();
                if (rc != 0) {
                    throw new IllegalStateException("/bin/true exited with " + rc);
                }
            };
        } else {
            int port = Integer.parseInt(args[1]);
            n = Integer.parseInt(args[2]);
            InetSocketAddress target =
                new InetSocketAddress(InetAddress.getByAddress(new byte[] {127, 0, 0, 1}), port);
            op = () -> {
                Socket socket = new Socket();
                // Close with RST, so no TIME_WAIT piles up over thousands of connects.
                socket.setSoLinger(true, 0);
                socket.connect(target);
                socket.close();
            };
        }
        // Class loading, the JIT and the process reaper's threads settle here, unmeasured.
        for (int i = 0; i < Math.max(1, n / 10); i++) {
            op.run();
        }
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        System.out.println("ready");
        System.out.flush();
        in.readLine();
        for (int i = 0; i < n; i++) {
            op.run();
        }
        System.out.println("done");
        System.out.flush();
        in.readLine();
    }
}
"#;

// === workloads ===

/// The fixed workloads, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    Spawn,
    Connect,
    JvmSpawn,
    JvmConnect,
    /// HTTP requests with a large head, sent by this process to a JVM's server.
    JvmInbound,
}

/// Bytes of each `JvmInbound` request head: a large one (cookies, tokens), all of it
/// inspected.
const INBOUND_HEAD_BYTES: usize = 16 * 1024;

impl Workload {
    const ALL: [Self; 5] = [
        Self::Spawn,
        Self::Connect,
        Self::JvmSpawn,
        Self::JvmConnect,
        Self::JvmInbound,
    ];

    fn key(self) -> &'static str {
        match self {
            Self::Spawn => "spawn",
            Self::Connect => "connect",
            Self::JvmSpawn => "jvm_spawn",
            Self::JvmConnect => "jvm_connect",
            Self::JvmInbound => "jvm_inbound",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Spawn => "posix_spawn(/bin/true) + wait, non-JVM parent",
            Self::Connect => "loopback TCP connect, non-JVM process",
            Self::JvmSpawn => "ProcessBuilder(\"/bin/true\").start().waitFor() in a JVM",
            Self::JvmConnect => "loopback TCP connect from a JVM thread",
            Self::JvmInbound => "16 KiB HTTP request head to a JVM's server (keep-alive)",
        }
    }

    /// The issue's goal for the detector, in BPF nanoseconds per operation.
    fn goal_ns(self) -> f64 {
        match self {
            Self::Spawn => 250.0,
            Self::Connect => 60.0,
            Self::JvmSpawn => 5000.0,
            Self::JvmConnect => 1000.0,
            // 1 µs per KiB inspected.
            Self::JvmInbound => 16_000.0,
        }
    }

    /// Program runs every tool must show per operation, or its programs did not see the
    /// workload: a spawn is at least a fork, an exec and an exit; a connect at least one
    /// connect hook.
    fn min_runs_per_op(self) -> u64 {
        match self {
            Self::Spawn | Self::JvmSpawn => 3,
            Self::Connect | Self::JvmConnect => 1,
            // Only the detector and the floor have a program on the JVM's packets.
            Self::JvmInbound => 0,
        }
    }

    /// Program runs per operation the workload itself makes, where every tool's are known:
    /// a spawn is one fork, one exit and one exec (two from a JVM, whose ProcessBuilder
    /// starts `jspawnhelper`, which execs the program); a connect from this process trips
    /// one connect hook. (A JVM's connect also runs the packet programs, a varying number of
    /// times.) More runs than that come from other processes on the machine-wide hooks.
    fn expected_runs_per_op(self, tool: Tool) -> Option<f64> {
        match (self, tool) {
            (Self::Spawn, _) => Some(3.0),
            (Self::Connect, _) | (Self::JvmConnect, Tool::Bpftrace) => Some(1.0),
            (Self::JvmSpawn, _) => Some(4.0),
            (Self::JvmConnect | Self::JvmInbound, _) => None,
        }
    }

    fn is_jvm(self) -> bool {
        matches!(self, Self::JvmSpawn | Self::JvmConnect | Self::JvmInbound)
    }
}

// === options ===

/// Options of `bench kernel`.
#[derive(Debug, clap::Args)]
pub struct KernelArgs {
    /// Rounds; each measures every tool once, and the tables show the median [default: 5,
    /// --quick: 1].
    #[arg(long)]
    rounds: Option<u32>,
    /// `/bin/true` spawns by this (non-JVM) process [default: 2000, --quick: 200].
    #[arg(long)]
    spawns: Option<u32>,
    /// Loopback connects by this (non-JVM) process [default: 20000, --quick: 2000].
    #[arg(long)]
    connects: Option<u32>,
    /// `/bin/true` spawns by the JVM [default: 2000, --quick: 200].
    #[arg(long)]
    jvm_spawns: Option<u32>,
    /// Loopback connects by the JVM [default: 20000, --quick: 2000].
    #[arg(long)]
    jvm_connects: Option<u32>,
    /// 16 KiB HTTP requests to the JVM [default: 2000, --quick: 200].
    #[arg(long)]
    jvm_requests: Option<u32>,
    /// A short smoke run (one round, a tenth of the operations); explicit flags still win.
    #[arg(long)]
    quick: bool,
}

/// Validated options of `bench kernel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelOpts {
    rounds: u32,
    spawns: u32,
    connects: u32,
    jvm_spawns: u32,
    jvm_connects: u32,
    jvm_requests: u32,
}

impl KernelOpts {
    pub fn quick() -> Self {
        Self {
            rounds: 1,
            spawns: 200,
            connects: 2000,
            jvm_spawns: 200,
            jvm_connects: 2000,
            jvm_requests: 200,
        }
    }

    fn full() -> Self {
        Self {
            // Each run's time includes whatever the CPU went through meanwhile (cache
            // misses after other work, a vCPU descheduled by the host): on a busy machine
            // single rounds of the same tool differ by up to 2x; the median of five holds.
            rounds: 5,
            spawns: 2000,
            connects: 20_000,
            jvm_spawns: 2000,
            jvm_connects: 20_000,
            jvm_requests: 2000,
        }
    }

    fn ops(&self, workload: Workload) -> u32 {
        match workload {
            Workload::Spawn => self.spawns,
            Workload::Connect => self.connects,
            Workload::JvmSpawn => self.jvm_spawns,
            Workload::JvmConnect => self.jvm_connects,
            Workload::JvmInbound => self.jvm_requests,
        }
    }
}

impl KernelArgs {
    pub fn resolve(&self) -> Result<KernelOpts> {
        let defaults = if self.quick {
            KernelOpts::quick()
        } else {
            KernelOpts::full()
        };
        let opts = KernelOpts {
            rounds: self.rounds.unwrap_or(defaults.rounds),
            spawns: self.spawns.unwrap_or(defaults.spawns),
            connects: self.connects.unwrap_or(defaults.connects),
            jvm_spawns: self.jvm_spawns.unwrap_or(defaults.jvm_spawns),
            jvm_connects: self.jvm_connects.unwrap_or(defaults.jvm_connects),
            jvm_requests: self.jvm_requests.unwrap_or(defaults.jvm_requests),
        };
        ensure!(opts.rounds > 0, "--rounds must be at least 1");
        for workload in Workload::ALL {
            ensure!(
                opts.ops(workload) > 0,
                "every workload needs at least one operation ({} has 0)",
                workload.key()
            );
        }
        Ok(opts)
    }
}

// === the benchmark ===

/// The tools, in the order they are measured and printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Detector,
    Bpftrace,
    Floor,
}

impl Tool {
    const ALL: [Self; 3] = [Self::Detector, Self::Bpftrace, Self::Floor];

    fn key(self) -> &'static str {
        match self {
            Self::Detector => "detector",
            Self::Bpftrace => "bpftrace",
            Self::Floor => "floor",
        }
    }
}

/// Runs the benchmark; errors when a tool's programs cannot be found or did not run, never
/// on the goals.
pub fn kernel(ws: &Workspace, opts: &KernelOpts, build_first: bool) -> Result<()> {
    let bin = daemon_binary(ws, build_first)?;
    let object = ebpf_object(ws)?;
    let dir = ScratchDir::create("kernel")?;
    compile_java(dir.path(), JAVA_CLASS, JAVA_SOURCE)?;
    let server = LoopbackServer::start()?;
    testkit::cgroup::remove_stale();
    let cgroup = Cgroup::create("bench-kernel")?;
    let _stats = StatsSwitch::on()?;

    let bench = Bench {
        opts,
        cgroup: &cgroup,
        java_dir: dir.path(),
        addr: server.addr,
    };
    // The tools take turns within each round, so a slow drift of the machine (frequency,
    // caches, other load) hits all of them alike.
    let mut results = Vec::new();
    for round in 1..=opts.rounds {
        for tool in Tool::ALL {
            println!(
                "==> bench: kernel: round {round}/{}: {}",
                opts.rounds,
                tool.key()
            );
            let runs = match tool {
                Tool::Detector => measure_detector(&bench, &bin)?,
                Tool::Bpftrace => measure_bpftrace(&bench, dir.path())?,
                Tool::Floor => measure_floor(&bench, &object)?,
            };
            results.extend(runs.into_iter().map(|m| (tool, m)));
        }
    }
    report(opts, &results);
    Ok(())
}

/// What the workloads need, shared by every tool's run.
#[derive(Debug)]
struct Bench<'a> {
    opts: &'a KernelOpts,
    cgroup: &'a Cgroup,
    java_dir: &'a Path,
    addr: SocketAddr,
}

/// The kernel object `detector/build.rs` built (it embeds a copy in the daemon).
fn ebpf_object(ws: &Workspace) -> Result<PathBuf> {
    let object = ws
        .target_dir
        .join("ebpf/bpfel-unknown-none/release/detector");
    ensure!(
        object.is_file(),
        "no kernel object at {}: run `cargo xtask build`",
        object.display()
    );
    Ok(object)
}

fn measure_detector(bench: &Bench<'_>, bin: &Path) -> Result<Vec<Measured>> {
    let mut daemon = start_daemon(bin, None, Some(bench.cgroup.path()))?;
    thread::sleep(SETTLE);
    let runs =
        match bench.run_workloads(
            daemon.pid().context("the daemon is not running")?,
            || Ok(()),
        ) {
            Ok(runs) => runs,
            Err(err) => bail!("{err:#}{}", daemon.state()),
        };
    let stats = daemon.stop()?;
    // The JVM's children are in its lineage: fork, exec (twice, with jspawnhelper) and exit
    // events. Far fewer means the daemon did not track the JVM and the numbers would flatter it.
    let jvm_spawns = u64::from(bench.opts.jvm_spawns);
    ensure!(
        stats.events >= 3 * jvm_spawns,
        "the detector received {} events for {jvm_spawns} JVM spawns: it did not track the JVM",
        stats.events
    );
    if stats.total_lost() > 0 {
        println!("note: the detector lost events: {}", stats.loss_line());
    }
    Ok(runs)
}

fn measure_bpftrace(bench: &Bench<'_>, dir: &Path) -> Result<Vec<Measured>> {
    let _tracefs = Tracefs::mount_if_absent()?;
    let script = dir.join("lineage.bt");
    fs::write(&script, BPFTRACE_SCRIPT).with_context(|| format!("writing {}", script.display()))?;
    let bpftrace = Bpftrace::start(&script)?;
    thread::sleep(SETTLE);
    let runs = bench.run_workloads(bpftrace.pid(), || Ok(()))?;
    let connects = bpftrace.stop()?;
    // The script must have seen the JVM's connects, or it did not follow the lineage and
    // its cost is not that of the job.
    let jvm_connects = u64::from(bench.opts.jvm_connects);
    ensure!(
        connects >= jvm_connects,
        "bpftrace counted {connects} JVM connects for {jvm_connects}: its script did not track the JVM"
    );
    Ok(runs)
}

fn measure_floor(bench: &Bench<'_>, object: &Path) -> Result<Vec<Measured>> {
    let mut floor = Floor::load(object, bench.cgroup.path())?;
    thread::sleep(SETTLE);
    bench.run_workloads(process::id(), || floor.attach_packet())
}

impl Bench<'_> {
    /// Runs every workload inside the cgroup and measures the programs `pid` holds;
    /// `before_jvm` runs once, before the first JVM workload.
    fn run_workloads(
        &self,
        pid: u32,
        mut before_jvm: impl FnMut() -> Result<()>,
    ) -> Result<Vec<Measured>> {
        let names = program_names(pid)?;
        let mut runs = Vec::new();
        let mut jvm_ready = false;
        for workload in Workload::ALL {
            if workload.is_jvm() && !jvm_ready {
                before_jvm()?;
                jvm_ready = true;
            }
            let ops = self.opts.ops(workload);
            let delta = if workload.is_jvm() {
                self.jvm_workload(pid, workload, ops)?
            } else {
                self.own_workload(pid, workload, ops)?
            };
            let measured = Measured::new(workload, ops, delta, &names);
            measured.check()?;
            println!(
                "==> bench: {}: {ops} ops, {:.0} ns/op{}, {:.2} program runs/op",
                workload.key(),
                measured.ns_per_op(),
                per_kib(workload, measured.ns_per_op()),
                measured.runs_per_op()
            );
            runs.push(measured);
        }
        Ok(runs)
    }

    /// A non-JVM workload, run by this process from inside the cgroup.
    fn own_workload(&self, pid: u32, workload: Workload, ops: u32) -> Result<Delta> {
        let _inside = Joined::enter(self.cgroup)?;
        let op = |n| -> Result<()> {
            match workload {
                Workload::Spawn => spawn_storm(n).map(drop),
                _ => non_jvm_storm(self.addr, n).map(drop),
            }
        };
        // Warm the page cache and the allocator; not measured.
        op((ops / 10).max(1))?;
        let before = ProgStats::read(pid)?;
        op(ops)?;
        let after = ProgStats::read(pid)?;
        after.since(&before)
    }

    /// A JVM workload: one JVM started inside the cgroup, measured between its `ready`
    /// and `done`.
    fn jvm_workload(&self, pid: u32, workload: Workload, ops: u32) -> Result<Delta> {
        let mut cmd = java(self.java_dir, JAVA_CLASS);
        if workload == Workload::JvmInbound {
            return self.inbound_workload(pid, cmd, ops);
        }
        match workload {
            Workload::JvmSpawn => cmd.args(["spawn".to_owned(), ops.to_string()]),
            _ => cmd.args([
                "connect".to_owned(),
                self.addr.port().to_string(),
                ops.to_string(),
            ]),
        };
        self.cgroup.enter_before_exec(&mut cmd);
        let mut jvm = JvmWorkload::start(&mut cmd)?;
        jvm.expect("ready")?;
        let before = ProgStats::read(pid)?;
        jvm.go()?;
        jvm.expect("done")?;
        let after = ProgStats::read(pid)?;
        jvm.finish()?;
        after.since(&before)
    }
}

impl Bench<'_> {
    /// `JvmInbound`: a JVM serving HTTP inside the cgroup; this process, outside it, sends
    /// the requests over one keep-alive connection, so only the JVM's side is inspected.
    fn inbound_workload(&self, pid: u32, mut cmd: Command, ops: u32) -> Result<Delta> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free port")?
            .port();
        cmd.args(["serve".to_owned(), port.to_string()]);
        self.cgroup.enter_before_exec(&mut cmd);
        let mut jvm = JvmWorkload::start(&mut cmd)?;
        jvm.expect("ready")?;
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port))
            .with_context(|| format!("connecting to the JVM's server on port {port}"))?;
        conn.set_nodelay(true).context("TCP_NODELAY")?;
        let request = large_request();
        // The JIT and the server's threads settle here, unmeasured.
        send_requests(&mut conn, &request, (ops / 10).max(1))?;
        let before = ProgStats::read(pid)?;
        send_requests(&mut conn, &request, ops)?;
        let after = ProgStats::read(pid)?;
        drop(conn);
        jvm.go()?;
        jvm.expect("done")?;
        jvm.finish()?;
        after.since(&before)
    }
}

/// A GET whose head is `INBOUND_HEAD_BYTES` long: cookies and URL-encoded values, no lookup.
fn large_request() -> Vec<u8> {
    let mut head = "GET /bench HTTP/1.1\r\nHost: bench\r\n".to_owned();
    let mut i = 0;
    while head.len() < INBOUND_HEAD_BYTES - 64 {
        head.push_str(&format!(
            "X-Pad-{i}: session%3D{i:08x}%26theme%3Ddark; abcdefghijklmnopqrstuvwxyz0123456789\r\n"
        ));
        i += 1;
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Sends `request` `n` times on `conn`, reading each `ok` response.
fn send_requests(conn: &mut std::net::TcpStream, request: &[u8], n: u32) -> Result<()> {
    use std::io::Read as _;
    let mut buf = [0u8; 4096];
    for _ in 0..n {
        conn.write_all(request)
            .context("sending a request to the JVM")?;
        let mut got = 0usize;
        let mut tail = Vec::new();
        while !tail.ends_with(b"\r\n\r\nok") {
            let read = conn.read(&mut buf).context("reading the JVM's response")?;
            ensure!(read > 0, "the JVM closed the connection");
            got += read;
            tail.extend_from_slice(&buf[..read]);
            ensure!(got < 1 << 16, "the JVM's response does not end as expected");
        }
    }
    Ok(())
}

/// `, N ns/KiB` for workloads measured per request head.
fn per_kib(workload: Workload, ns_per_op: f64) -> String {
    if workload == Workload::JvmInbound {
        format!(
            ", {:.0} ns/KiB",
            ns_per_op / (INBOUND_HEAD_BYTES / 1024) as f64
        )
    } else {
        String::new()
    }
}

// === a measurement ===

/// One tool on one workload.
#[derive(Debug)]
struct Measured {
    workload: Workload,
    ops: u32,
    /// (program name, its counters' deltas), by program id.
    programs: Vec<(String, Counters)>,
}

impl Measured {
    fn new(workload: Workload, ops: u32, delta: Delta, names: &BTreeMap<u32, String>) -> Self {
        let programs = delta
            .into_iter()
            .map(|(id, counters)| {
                let name = names
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| format!("prog {id}"));
                (name, counters)
            })
            .collect();
        Self {
            workload,
            ops,
            programs,
        }
    }

    fn total(&self) -> Counters {
        self.programs
            .iter()
            .fold(Counters::default(), |sum, (_, c)| Counters {
                ns: sum.ns + c.ns,
                runs: sum.runs + c.runs,
            })
    }

    fn ns_per_op(&self) -> f64 {
        self.total().ns as f64 / f64::from(self.ops)
    }

    fn runs_per_op(&self) -> f64 {
        self.total().runs as f64 / f64::from(self.ops)
    }

    /// Programs that ran less than the workload makes them run were not measuring it.
    fn check(&self) -> Result<()> {
        let total = self.total();
        let needed = self.workload.min_runs_per_op() * u64::from(self.ops);
        ensure!(
            total.runs >= needed,
            "{}: the programs ran {} times for {} operations (at least {needed} expected): \
             are they attached, and are the statistics on?",
            self.workload.key(),
            total.runs,
            self.ops
        );
        ensure!(
            total.ns > 0 || total.runs == 0,
            "{}: the programs ran {} times in 0 ns: kernel.bpf_stats_enabled is off",
            self.workload.key(),
            total.runs
        );
        Ok(())
    }
}

// === the report ===

fn report(opts: &KernelOpts, results: &[(Tool, Measured)]) {
    let combined = |tool: Tool, workload: Workload| {
        let samples: Vec<&Measured> = results
            .iter()
            .filter(|(t, m)| *t == tool && m.workload == workload)
            .map(|(_, m)| m)
            .collect();
        Combined::of(&samples)
    };
    let mut summary = serde_json::Map::new();
    summary.insert("rounds".to_owned(), json!(opts.rounds));
    let mut table = Vec::new();
    let mut busy = Vec::new();
    for workload in Workload::ALL {
        let ops = opts.ops(workload);
        let tools = Tool::ALL.map(|tool| combined(tool, workload));
        let [detector, bpftrace, _] = &tools;
        let goal = workload.goal_ns();
        let met = detector.as_ref().map(|d| d.median <= goal);
        let below = detector
            .as_ref()
            .zip(bpftrace.as_ref())
            .map(|(d, b)| d.median < b.median);

        println!();
        println!(
            "{} — {ops} ops, median of {} round(s){}",
            workload.title(),
            opts.rounds,
            detector
                .as_ref()
                .map(|d| per_kib(workload, d.median))
                .unwrap_or_default()
        );
        println!(
            "  {:<10} {:>9} {:>17} {:>8}  goals",
            "tool", "ns/op", "range", "runs/op"
        );
        let mut row = serde_json::Map::new();
        row.insert("ops".to_owned(), json!(ops));
        for (tool, c) in Tool::ALL.iter().zip(&tools) {
            let Some(c) = c else { continue };
            let goals = match tool {
                Tool::Detector => format!(
                    "<= {} ns/op: {}; below bpftrace: {}",
                    fmt_ns(goal),
                    verdict(met),
                    verdict(below)
                ),
                _ => String::new(),
            };
            println!(
                "  {:<10} {:>9} {:>17} {:>8.2}  {goals}",
                tool.key(),
                fmt_ns(c.median),
                format!("{}–{}", fmt_ns(c.min), fmt_ns(c.max)),
                c.runs_per_op
            );
            row.insert(tool.key().to_owned(), json!(round1(c.median)));
            row.insert(
                format!("{}_runs_per_op", tool.key()),
                json!((c.runs_per_op * 100.0).round() / 100.0),
            );
            if let Some(expected) = workload.expected_runs_per_op(*tool) {
                // 2% slack: a few runs from the machine's own background are expected.
                if c.runs_per_op > expected * 1.02 {
                    busy.push(format!(
                        "{} {} {:.2} > {expected}",
                        tool.key(),
                        workload.key(),
                        c.runs_per_op
                    ));
                }
            }
            row.insert(
                format!("{}_range", tool.key()),
                json!([round1(c.min), round1(c.max)]),
            );
        }
        row.insert("goal_ns".to_owned(), json!(goal));
        row.insert("goal_met".to_owned(), json!(met));
        row.insert("below_bpftrace".to_owned(), json!(below));
        if let Some(d) = detector {
            breakdown(d, opts.rounds);
            let programs: Vec<Value> = d
                .programs
                .iter()
                .filter(|(_, c)| c.runs > 0)
                .map(|(name, c)| json!({"program": name, "runs": c.runs, "ns": c.ns}))
                .collect();
            row.insert("detector_programs".to_owned(), Value::Array(programs));
        }
        summary.insert(workload.key().to_owned(), Value::Object(row));
        let cells = tools.each_ref().map(|c| {
            c.as_ref()
                .map_or_else(|| "-".to_owned(), |c| fmt_ns(c.median))
        });
        table.push((workload, cells, goal, met, below));
    }

    println!();
    println!(
        "BPF ns per operation (run_time_ns delta / operations, median of {} round(s)):",
        opts.rounds
    );
    println!(
        "  {:<12} {:>9} {:>9} {:>9} {:>9}  {:<8} below bpftrace",
        "workload", "detector", "bpftrace", "floor", "goal", "goal met"
    );
    for (workload, [detector, bpftrace, floor], goal, met, below) in table {
        println!(
            "  {:<12} {:>9} {:>9} {:>9} {:>9}  {:<8} {}",
            workload.key(),
            detector,
            bpftrace,
            floor,
            format!("<= {}", fmt_ns(goal)),
            verdict(met),
            verdict(below)
        );
    }
    if !busy.is_empty() {
        println!(
            "note: more program runs per operation than the workload makes ({}): other \
             processes tripped the machine-wide hooks meanwhile, and their runs are in these \
             numbers; run again on a quiet machine",
            busy.join(", ")
        );
    }
    summary.insert("busy".to_owned(), json!(!busy.is_empty()));
    println!();
    println!("bench kernel summary {}", Value::Object(summary));
}

/// One tool on one workload over every round.
#[derive(Debug)]
struct Combined {
    median: f64,
    min: f64,
    max: f64,
    runs_per_op: f64,
    /// Per program name, summed over the rounds (program ids change from round to round).
    programs: Vec<(String, Counters)>,
}

impl Combined {
    fn of(samples: &[&Measured]) -> Option<Self> {
        let mut ns: Vec<f64> = samples.iter().map(|m| m.ns_per_op()).collect();
        ns.sort_by(f64::total_cmp);
        let mid = ns.len() / 2;
        let median = match ns.len() {
            0 => return None,
            len if len % 2 == 1 => ns[mid],
            _ => (ns[mid - 1] + ns[mid]) / 2.0,
        };
        let ops: u64 = samples.iter().map(|m| u64::from(m.ops)).sum();
        let runs: u64 = samples.iter().map(|m| m.total().runs).sum();
        let mut programs: Vec<(String, Counters)> = Vec::new();
        for (name, c) in samples.iter().flat_map(|m| &m.programs) {
            match programs.iter_mut().find(|(n, _)| n == name) {
                Some((_, sum)) => {
                    sum.ns += c.ns;
                    sum.runs += c.runs;
                }
                None => programs.push((name.clone(), *c)),
            }
        }
        Some(Self {
            median,
            min: ns[0],
            max: ns[ns.len() - 1],
            runs_per_op: runs as f64 / ops as f64,
            programs,
        })
    }
}

/// The detector's programs on one workload: where its nanoseconds go.
fn breakdown(c: &Combined, rounds: u32) {
    let total = c.programs.iter().map(|(_, c)| c.ns).sum::<u64>().max(1) as f64;
    println!("  detector programs, summed over {rounds} round(s):");
    println!(
        "    {:<20} {:>9} {:>9} {:>7}",
        "program", "runs", "ns/run", "share"
    );
    for (name, c) in &c.programs {
        if c.runs == 0 {
            continue;
        }
        println!(
            "    {:<20} {:>9} {:>9} {:>6.1}%",
            name,
            c.runs,
            fmt_ns(c.ns as f64 / c.runs as f64),
            c.ns as f64 * 100.0 / total
        );
    }
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "NOT MET",
        None => "-",
    }
}

/// `68,700` or `78`: whole nanoseconds with thousands separators.
fn fmt_ns(ns: f64) -> String {
    let whole = format!("{:.0}", ns.max(0.0));
    let mut out = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

// === impl Joined ===

/// This process inside the benchmark's cgroup; back in its own cgroup on drop. Must be
/// dropped before the cgroup, whose drop kills whatever is still inside.
#[derive(Debug)]
struct Joined {
    home: PathBuf,
}

impl Joined {
    fn enter(cgroup: &Cgroup) -> Result<Self> {
        let own = fs::read_to_string("/proc/self/cgroup").context("reading /proc/self/cgroup")?;
        let path = own
            .lines()
            .find_map(|line| line.strip_prefix("0::"))
            .context("this process is in no cgroup v2 (no `0::` line in /proc/self/cgroup)")?;
        let mount = testkit::cgroup::cgroup2_mount()?;
        let home = mount
            .join(path.trim_start_matches('/'))
            .join("cgroup.procs");
        move_self(&cgroup.path().join("cgroup.procs"))?;
        Ok(Self { home })
    }
}

impl Drop for Joined {
    fn drop(&mut self) {
        if let Err(err) = move_self(&self.home) {
            eprintln!("warning: leaving the benchmark's cgroup: {err:#}");
        }
    }
}

/// Moves this whole process (every thread) into the cgroup of `procs`.
fn move_self(procs: &Path) -> Result<()> {
    fs::write(procs, process::id().to_string())
        .with_context(|| format!("moving this process to {}", procs.display()))
}

// === impl JvmWorkload ===

/// A running `KernelBench`: its stdout, line by line, and its stdin to say go.
#[derive(Debug)]
struct JvmWorkload {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    reader: Option<JoinHandle<()>>,
}

impl JvmWorkload {
    fn start(cmd: &mut Command) -> Result<Self> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("running java (is openjdk-17-jdk-headless installed? `cargo xtask setup`)")?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .context("the JVM's stdout is not piped")?;
        let (lines, reader) = line_reader(stdout);
        Ok(Self {
            child,
            stdin,
            lines,
            reader: Some(reader),
        })
    }

    /// Waits for `word` alone on a line (other lines, e.g. `Picked up JAVA_TOOL_OPTIONS`,
    /// are skipped).
    fn expect(&mut self, word: &str) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.trim() == word => return Ok(()),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => bail!("the JVM printed no `{word}` in time"),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().context("waiting for the JVM")?;
                    bail!("the JVM exited ({status}) before printing `{word}`");
                }
            }
        }
    }

    fn go(&mut self) -> Result<()> {
        let stdin = self.stdin.as_mut().context("the JVM's stdin is closed")?;
        stdin
            .write_all(b"\n")
            .and_then(|()| stdin.flush())
            .context("telling the JVM to go")
    }

    /// Lets the JVM exit, and checks that it did so cleanly.
    fn finish(mut self) -> Result<()> {
        drop(self.stdin.take());
        let status = self.child.wait().context("waiting for the JVM")?;
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        ensure!(status.success(), "the JVM workload failed ({status})");
        Ok(())
    }
}

impl Drop for JvmWorkload {
    fn drop(&mut self) {
        if self.reader.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends each line of `stdout` as it arrives.
fn line_reader(stdout: ChildStdout) -> (Receiver<String>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (rx, reader)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_cover_every_program() {
        let c = |ns, runs| Counters { ns, runs };
        let before = ProgStats(BTreeMap::from([(1, c(100, 2)), (2, c(0, 0))]));
        let after = ProgStats(BTreeMap::from([
            (1, c(350, 5)),
            (2, c(40, 1)),
            (3, c(7, 1)),
        ]));
        let delta = after.since(&before).expect("valid");
        assert_eq!(
            delta,
            BTreeMap::from([(1, c(250, 3)), (2, c(40, 1)), (3, c(7, 1))])
        );
        assert!(before.since(&after).is_err());
        let shrunk = ProgStats(BTreeMap::from([(1, c(350, 5))]));
        assert!(shrunk.since(&before).is_err());

        let names = BTreeMap::from([(1, "sched_process_exec".to_owned())]);
        let m = Measured::new(Workload::Connect, 4, delta, &names);
        assert_eq!(m.total(), c(297, 5));
        assert!((m.ns_per_op() - 74.25).abs() < 1e-9);
        assert_eq!(m.programs[0].0, "sched_process_exec");
        assert_eq!(m.programs[1].0, "prog 2");
        assert!(m.check().is_ok());
        let m = Measured::new(Workload::Spawn, 4, BTreeMap::from([(1, c(9, 11))]), &names);
        assert!(m.check().is_err(), "3 runs per spawn are the least");
    }

    #[test]
    fn nanoseconds_read_well() {
        assert_eq!(fmt_ns(68_700.4), "68,700");
        assert_eq!(fmt_ns(78.0), "78");
        assert_eq!(fmt_ns(1_234_567.0), "1,234,567");
        assert_eq!(fmt_ns(999.6), "1,000");
    }

    #[test]
    fn quick_and_explicit_options() {
        let args = KernelArgs {
            rounds: None,
            spawns: Some(5),
            connects: None,
            jvm_spawns: None,
            jvm_connects: None,
            jvm_requests: None,
            quick: true,
        };
        let opts = args.resolve().expect("valid");
        assert_eq!(opts.ops(Workload::Spawn), 5);
        assert_eq!(opts.ops(Workload::JvmConnect), 2000);
        assert_eq!(opts.ops(Workload::JvmInbound), 200);
        assert_eq!(opts.rounds, 1);
        let zero = KernelArgs {
            rounds: None,
            spawns: None,
            connects: Some(0),
            jvm_spawns: None,
            jvm_connects: None,
            jvm_requests: None,
            quick: false,
        };
        assert!(zero.resolve().is_err());
    }
}
