//! `cargo xtask bench connect`: what the running daemon costs programs that open TCP
//! connections, and whether the kernel drops connect events when a JVM connects fast.
//!
//! The egress programs (`cgroup/connect4|6`, `cgroup/sendmsg4|6`, `cgroup_skb/egress`) run
//! on every connect and every packet in the cgroup, JVM or not. A non-JVM program should pay
//! only the lineage lookup that lets it through; a JVM also pays the allowlist lookup and the
//! socket it leaves for payload inspection. Both are timed on loopback, where a connect is
//! cheapest and the programs' share of it therefore largest:
//!
//! 1. non-JVM: this process connects to its own listener `--connects` times;
//! 2. JVM: a Java program connects to the same listener and times its own loop, so JVM
//!    start-up is not measured.
//!
//! Then the loss check: with loopback taken out of the allowlist every JVM connect becomes a
//! connect event (and an alert), and the daemon must receive all of them.

use std::{
    fs,
    io::{self, Write as _},
    mem,
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    os::fd::AsRawFd as _,
    path::Path,
    process::{Command, Stdio},
    ptr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context as _, Result};

use super::{
    check_rounds, compile_java, daemon_binary, java, per_op_us, start_daemon, Medians, Samples,
    ScratchDir, Side, SETTLE,
};
use crate::Workspace;

/// Goal for the attached/detached ratio of a non-JVM program's connects: the programs should
/// let it through after one map lookup.
const NON_JVM_RATIO_GOAL: f64 = 1.03;
/// Goal for a JVM's connects, which are classified and remembered for payload inspection.
const JVM_RATIO_GOAL: f64 = 1.10;
/// Listen backlog: deep enough that the accept thread never makes a connect wait.
const BACKLOG: libc::c_int = 4096;

/// The Java connect storm: `java ConnectStorm PORT N` connects to 127.0.0.1:PORT N times, one
/// after the other, and prints the nanoseconds the loop took.
///
/// Java's `Socket` opens an AF_INET6 socket (`java.net.preferIPv4Stack` is false by default)
/// and connects it to `::ffff:127.0.0.1`, so these connects go through the `connect6` program
/// with a v4-mapped address, not through `connect4` as the non-JVM storm's do.
const STORM_CLASS: &str = "ConnectStorm";
const STORM_JAVA: &str = r#"import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;

public final class ConnectStorm {
    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        int n = Integer.parseInt(args[1]);
        InetSocketAddress target =
            new InetSocketAddress(InetAddress.getByAddress(new byte[] {127, 0, 0, 1}), port);
        long started = System.nanoTime();
        for (int i = 0; i < n; i++) {
            Socket socket = new Socket();
            // Close with RST, so no TIME_WAIT piles up over thousands of connects.
            socket.setSoLinger(true, 0);
            socket.connect(target);
            socket.close();
        }
        System.out.println(System.nanoTime() - started);
    }
}
"#;

/// The loss check's policy: every JVM connect to loopback is outside the allowlist, so each
/// one is reported. The one rule keeps the allowlist non-empty without matching anything
/// local (192.0.2.0/24 is TEST-NET-1, RFC 5737).
const LOSS_POLICY: &str = r#"[[egress.allow]]
cidrs = ["192.0.2.0/24"]
reason = "bench: loopback deliberately not allowlisted"
[egress]
report_unexpected = true
"#;

// === options ===

/// Options of `bench connect`.
#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// Timed rounds, alternating detached and attached; even [default: 10, --quick: 4].
    #[arg(long)]
    rounds: Option<u32>,
    /// Loopback connects by this (non-JVM) process per timed round [default: 50000,
    /// --quick: 2000]. One takes about 15 µs: far fewer and noise dominates.
    #[arg(long)]
    connects: Option<u32>,
    /// Loopback connects by the JVM per timed round [default: 20000, --quick: 1000].
    #[arg(long)]
    jvm_connects: Option<u32>,
    /// Loopback connects by the JVM in the loss check [default: 20000, --quick: 2000].
    #[arg(long)]
    loss_connects: Option<u32>,
    /// A short smoke run (4 rounds of 2000 + 1000 connects, 2000 in the loss check); explicit
    /// flags still win.
    #[arg(long)]
    quick: bool,
}

/// Validated options of `bench connect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOpts {
    rounds: u32,
    connects: u32,
    jvm_connects: u32,
    loss_connects: u32,
}

impl ConnectOpts {
    pub fn quick() -> Self {
        Self {
            rounds: 4,
            connects: 2000,
            jvm_connects: 1000,
            loss_connects: 2000,
        }
    }

    fn full() -> Self {
        Self {
            rounds: 10,
            connects: 50_000,
            jvm_connects: 20_000,
            loss_connects: 20_000,
        }
    }
}

impl ConnectArgs {
    pub fn resolve(&self) -> Result<ConnectOpts> {
        let defaults = if self.quick {
            ConnectOpts::quick()
        } else {
            ConnectOpts::full()
        };
        let opts = ConnectOpts {
            rounds: self.rounds.unwrap_or(defaults.rounds),
            connects: self.connects.unwrap_or(defaults.connects),
            jvm_connects: self.jvm_connects.unwrap_or(defaults.jvm_connects),
            loss_connects: self.loss_connects.unwrap_or(defaults.loss_connects),
        };
        check_rounds(opts.rounds)?;
        ensure!(opts.connects > 0, "--connects must be at least 1");
        ensure!(opts.jvm_connects > 0, "--jvm-connects must be at least 1");
        ensure!(opts.loss_connects > 0, "--loss-connects must be at least 1");
        Ok(opts)
    }
}

// === the benchmark ===

/// Runs the benchmark; errors on failures, on any lost kernel event and on missing connect
/// events, never on the ratios.
pub fn connect(ws: &Workspace, opts: &ConnectOpts, build_first: bool) -> Result<()> {
    let bin = daemon_binary(ws, build_first)?;
    let dir = ScratchDir::create("connect")?;
    compile_java(dir.path(), STORM_CLASS, STORM_JAVA)?;
    let server = LoopbackServer::start()?;

    println!(
        "==> bench: {} rounds of {} non-JVM then {} JVM sequential connects to {}, alternating detached/attached",
        opts.rounds, opts.connects, opts.jvm_connects, server.addr
    );
    // Warm the page cache, the allocator and the JVM's class data; not timed.
    non_jvm_storm(server.addr, (opts.connects / 10).max(1))?;
    jvm_storm(dir.path(), server.addr, (opts.jvm_connects / 10).max(1))?;

    let mut non_jvm = Samples::default();
    let mut jvm = Samples::default();
    let mut failures = Vec::new();
    for round in 1..=opts.rounds {
        let side = Side::of_round(round);
        let daemon = match side {
            Side::Attached => Some(start_daemon(&bin, None, None)?),
            Side::Detached => None,
        };
        thread::sleep(SETTLE);
        let non_jvm_took = non_jvm_storm(server.addr, opts.connects)?;
        let jvm_took = jvm_storm(dir.path(), server.addr, opts.jvm_connects)?;
        non_jvm.push(side, non_jvm_took);
        jvm.push(side, jvm_took);
        let head = format!(
            "==> bench: round {round}/{} {}: non-JVM {:.3}s ({:.1} µs/connect), JVM {:.3}s ({:.1} µs/connect)",
            opts.rounds,
            side.label(),
            non_jvm_took.as_secs_f64(),
            per_op_us(non_jvm_took, opts.connects),
            jvm_took.as_secs_f64(),
            per_op_us(jvm_took, opts.jvm_connects),
        );
        match daemon {
            Some(mut daemon) => {
                let stats = daemon.stop()?;
                println!(
                    "{head}; daemon saw {} events{}, lost {}",
                    stats.events,
                    stats
                        .connect_events
                        .map(|n| format!(" ({n} connect)"))
                        .unwrap_or_default(),
                    stats.loss_line()
                );
                if stats.total_lost() > 0 {
                    failures.push(format!("round {round} lost {}", stats.loss_line()));
                }
            }
            None => println!("{head}"),
        }
    }
    report_ratio(
        "non-JVM",
        &non_jvm.medians()?,
        opts.connects,
        NON_JVM_RATIO_GOAL,
    );
    report_ratio("JVM", &jvm.medians()?, opts.jvm_connects, JVM_RATIO_GOAL);

    failures.extend(loss_check(
        &bin,
        dir.path(),
        server.addr,
        opts.loss_connects,
    )?);
    server.stop();
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    Ok(())
}

fn report_ratio(who: &str, medians: &Medians, connects: u32, goal: f64) {
    for (side, took) in [
        ("detached", medians.detached),
        ("attached", medians.attached),
    ] {
        println!(
            "{who} {side} median: {:.3}s ({:.1} µs/connect)",
            took.as_secs_f64(),
            per_op_us(took, connects)
        );
    }
    println!(
        "connect ratio, {who} (attached/detached): {:.3}  (goal <= {goal:.2})",
        medians.ratio()
    );
}

/// The JVM storm, as fast as it goes, with the daemon reporting every connect. Returns what
/// failed: lost kernel events, or fewer connect events than connects.
fn loss_check(bin: &Path, dir: &Path, addr: SocketAddr, connects: u32) -> Result<Vec<String>> {
    let policy = dir.join("loss-policy.toml");
    fs::write(&policy, LOSS_POLICY).with_context(|| format!("writing {}", policy.display()))?;
    let rejection = check_config(bin, &policy)?;
    if let Some(why) = &rejection {
        println!(
            "==> bench: this daemon does not support egress yet: it rejects the loss-check policy ({why}); \
             running the JVM storm under the built-in policy, judging kernel loss only"
        );
    }
    let config = rejection.is_none().then_some(policy.as_path());

    let mut daemon = start_daemon(bin, config, None)?;
    thread::sleep(SETTLE);
    println!(
        "==> bench: loss check: java {STORM_CLASS} {connects} (daemon attached{})",
        if config.is_some() {
            ", loopback not allowlisted"
        } else {
            ""
        }
    );
    let took = jvm_storm(dir, addr, connects)?;
    println!(
        "==> bench: loss check: {connects} JVM connects in {:.3}s ({:.1} µs/connect)",
        took.as_secs_f64(),
        per_op_us(took, connects)
    );
    let stats = daemon.stop()?;

    let mut failures = Vec::new();
    match (stats.connect_events, rejection.is_none()) {
        (Some(received), true) => {
            println!("connect events received vs connects made: {received} / {connects}");
            if received < u64::from(connects) {
                failures.push(format!(
                    "the daemon received {received} connect events for {connects} JVM connects"
                ));
            }
        }
        (None, true) => println!(
            "connect events received vs connects made: not judged: this daemon does not support \
             egress yet (its stats have no \"connect_events\")"
        ),
        (_, false) => println!(
            "connect events received vs connects made: not judged: this daemon does not support \
             egress yet"
        ),
    }
    println!("kernel loss: {} (goal: 0)", stats.loss_line());
    if !stats.counts_loss_of("connect") || !stats.counts_loss_of("payload") {
        println!("note: this daemon does not report connect or payload loss counters");
    }
    if stats.total_lost() > 0 {
        failures.push(format!(
            "the kernel lost events in the loss check: {}",
            stats.loss_line()
        ));
    }
    Ok(failures)
}

/// `detector check-config FILE`: `None` if the daemon accepts the policy, else why not.
fn check_config(bin: &Path, policy: &Path) -> Result<Option<String>> {
    let out = Command::new(bin)
        .arg("check-config")
        .arg(policy)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} check-config", bin.display()))?;
    if out.status.success() {
        return Ok(None);
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    Ok(Some(if text.is_empty() {
        format!("check-config: {}", out.status)
    } else {
        format!("check-config: {}: {text}", out.status)
    }))
}

/// Connects to `addr` `n` times from this process, one after the other, closing each
/// connection with RST; returns how long that took.
pub(super) fn non_jvm_storm(addr: SocketAddr, n: u32) -> Result<Duration> {
    let started = Instant::now();
    for i in 1..=n {
        let stream =
            TcpStream::connect(addr).with_context(|| format!("connect {i} of {n} to {addr}"))?;
        reset_on_close(&stream).context("setting SO_LINGER {1, 0}")?;
        drop(stream);
    }
    Ok(started.elapsed())
}

/// SO_LINGER {on, 0 s}: close() sends RST and frees the port at once instead of leaving the
/// connection in TIME_WAIT, where tens of thousands of them would exhaust ephemeral ports.
/// (std's `set_linger` is unstable, and socket2 is not worth a dependency for one call.)
fn reset_on_close(stream: &TcpStream) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the fd is an open socket owned by `stream`; the option value points to a live
    // `linger` and the length passed is its size.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            ptr::from_ref(&linger).cast(),
            mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Runs the Java storm with `n` connects to `addr` and returns the time of its connect loop.
fn jvm_storm(dir: &Path, addr: SocketAddr, n: u32) -> Result<Duration> {
    let out = java(dir, STORM_CLASS)
        .arg(addr.port().to_string())
        .arg(n.to_string())
        .output()
        .context("running java (is openjdk-17-jdk-headless installed? `cargo xtask setup`)")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // Whatever went wrong is on stderr (a Java stack trace); let the user see it.
        let _ = io::stderr().write_all(&out.stderr);
        bail!("the JVM connect storm failed ({})", out.status);
    }
    loop_time(&stdout)
}

/// The storm's last stdout line: the connect loop's time in nanoseconds.
fn loop_time(stdout: &str) -> Result<Duration> {
    let line = stdout
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .context("the JVM connect storm printed nothing")?;
    let nanos = line
        .parse()
        .with_context(|| format!("the JVM connect storm printed `{line}`, not nanoseconds"))?;
    Ok(Duration::from_nanos(nanos))
}

// === impl LoopbackServer ===

/// A TCP listener on 127.0.0.1 (ephemeral port) whose thread accepts and closes every
/// connection, for both storms to connect to.
#[derive(Debug)]
pub(super) struct LoopbackServer {
    pub(super) addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl LoopbackServer {
    pub(super) fn start() -> Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .context("listening on 127.0.0.1 (ephemeral port)")?;
        // std listens with a backlog of 128; listen() again on a listening socket only
        // changes the backlog (the kernel caps it at net.core.somaxconn).
        // SAFETY: listen has no memory-safety preconditions; the fd is owned by `listener`.
        if unsafe { libc::listen(listener.as_raw_fd(), BACKLOG) } != 0 {
            return Err(io::Error::last_os_error()).context("enlarging the listen backlog");
        }
        let addr = listener
            .local_addr()
            .context("reading the listener's address")?;
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = thread::Builder::new()
            .name("bench-accept".to_owned())
            .spawn({
                let stop = Arc::clone(&stop);
                move || {
                    for conn in listener.incoming() {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        // A connection reset before we got to it is an error here; either
                        // way there is nothing to do but close it.
                        drop(conn);
                    }
                }
            })
            .context("starting the accept thread")?;
        Ok(Self {
            addr,
            stop,
            acceptor: Some(acceptor),
        })
    }

    /// Stops and joins the accept thread.
    fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.stop.store(true, Ordering::Relaxed);
        // Wake the thread from accept(). If that fails it stays blocked: leave it, rather
        // than hang; it ends with the process.
        if TcpStream::connect(self.addr).is_ok() {
            let _ = acceptor.join();
        }
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_and_explicit_options() {
        let args = ConnectArgs {
            rounds: None,
            connects: None,
            jvm_connects: None,
            loss_connects: Some(7),
            quick: true,
        };
        assert_eq!(
            args.resolve().expect("valid"),
            ConnectOpts {
                rounds: 4,
                connects: 2000,
                jvm_connects: 1000,
                loss_connects: 7,
            }
        );
        let defaults = ConnectArgs {
            rounds: None,
            connects: None,
            jvm_connects: None,
            loss_connects: None,
            quick: false,
        };
        assert_eq!(defaults.resolve().expect("valid"), ConnectOpts::full());
        let odd = ConnectArgs {
            rounds: Some(5),
            ..defaults
        };
        assert!(odd.resolve().is_err());
        let none = ConnectArgs {
            rounds: None,
            connects: Some(0),
            jvm_connects: None,
            loss_connects: None,
            quick: false,
        };
        assert!(none.resolve().is_err());
    }

    #[test]
    fn loop_time_is_the_last_line() {
        assert_eq!(
            loop_time("Picked up JAVA_TOOL_OPTIONS: -Xmx1g\n123456789\n\n").expect("parses"),
            Duration::from_nanos(123_456_789)
        );
        assert!(loop_time("").is_err());
        assert!(loop_time("12.5\n").is_err());
    }

    #[test]
    fn a_failing_check_config_is_a_rejection() {
        let policy = Path::new("/nonexistent/policy.toml");
        assert_eq!(
            check_config(Path::new("/bin/true"), policy).expect("runs"),
            None
        );
        let why = check_config(Path::new("/bin/false"), policy)
            .expect("runs")
            .expect("rejected");
        assert!(why.starts_with("check-config: exit status: 1"), "{why}");
        assert!(check_config(Path::new("/nonexistent/detector"), policy).is_err());
    }

    #[test]
    fn loopback_storm_connects_and_resets() {
        let server = LoopbackServer::start().expect("listens");
        assert!(server.addr.ip().is_loopback());
        non_jvm_storm(server.addr, 200).expect("200 connects");
        server.stop();
    }
}
