//! `cargo xtask bench`: what the running daemon costs the programs on the machine, and
//! whether the kernel drops events when a JVM is busy.
//!
//! - `exec` (exec.rs): process spawning by a non-JVM program; event loss under a JVM spawn
//!   storm.
//! - `connect` (connect.rs): loopback connects by a non-JVM program and by a JVM; event loss
//!   and connect events under a JVM connect storm with loopback not allowlisted.
//! - `kernel` (kernel.rs): the kernel programs' own run time per operation, from the
//!   kernel's BPF statistics, for the detector, a bpftrace reference and empty programs.
//!
//! `exec` and `connect` measure the same way: timed rounds alternate detached (no daemon) and attached
//! (daemon started and ready), so slow drifts of the machine hit both sides alike; medians
//! absorb outliers. This module holds what they share: the daemon's life cycle and its
//! `detector stats` line, the rounds and their medians, and compiling the Java programs.

mod connect;
mod exec;
mod kernel;

use std::{
    env, fs,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{self, Child, Command, ExitStatus, Stdio},
    sync::mpsc::{self, Receiver, RecvTimeoutError},
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context as _, Result};

pub use connect::{connect, ConnectArgs, ConnectOpts};
pub use exec::{exec, ExecArgs, ExecOpts};
pub use kernel::{kernel, KernelArgs, KernelOpts};

use crate::{build, fmt_duration, is_root, run_step, Workspace};

/// How long the daemon may take to attach every kernel program.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the daemon may take to stop after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Quiet time before each timed round, so start-up or shut-down work of the daemon (or its
/// absence) does not land in a measurement.
const SETTLE: Duration = Duration::from_millis(250);
/// The loss counters every daemon reports; a stats line without one of them is an error.
const REQUIRED_LOSS_KINDS: [&str; 3] = ["exec", "fork", "exit"];
/// The order loss counters are printed in; counters not listed here follow, by name.
const LOSS_ORDER: [&str; 6] = ["exec", "fork", "exit", "connect", "payload", "lineage"];

/// The daemon binary to benchmark: built first (release) unless `build_first` is false, as in
/// `cargo xtask test`, whose build step has just built it.
fn daemon_binary(ws: &Workspace, build_first: bool) -> Result<PathBuf> {
    if !is_root() {
        bail!("the benchmark starts the daemon, which loads kernel programs: run it as root");
    }
    let bin = if build_first {
        build::build(ws, false)?
    } else {
        ws.daemon_bin(false)
    };
    ensure!(
        bin.is_file(),
        "no daemon binary at {}: run `cargo xtask build`",
        bin.display()
    );
    Ok(bin)
}

// === rounds ===

/// `--rounds` must split evenly between the two sides.
fn check_rounds(rounds: u32) -> Result<()> {
    ensure!(
        rounds >= 2 && rounds.is_multiple_of(2),
        "--rounds must be even and at least 2 (half detached, half attached), not {rounds}"
    );
    Ok(())
}

/// Whether the daemon runs during a timed round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Detached,
    Attached,
}

impl Side {
    /// Rounds count from 1 and alternate, detached first.
    fn of_round(round: u32) -> Self {
        if round.is_multiple_of(2) {
            Self::Attached
        } else {
            Self::Detached
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Detached => "detached",
            Self::Attached => "attached",
        }
    }
}

/// The timed rounds of one measurement, by side.
#[derive(Debug, Default)]
struct Samples {
    detached: Vec<Duration>,
    attached: Vec<Duration>,
}

impl Samples {
    fn push(&mut self, side: Side, took: Duration) {
        match side {
            Side::Detached => self.detached.push(took),
            Side::Attached => self.attached.push(took),
        }
    }

    fn medians(&self) -> Result<Medians> {
        Ok(Medians {
            detached: median(&self.detached).context("no detached rounds")?,
            attached: median(&self.attached).context("no attached rounds")?,
        })
    }
}

/// Median round times of both sides.
#[derive(Debug, Clone, Copy)]
struct Medians {
    detached: Duration,
    attached: Duration,
}

impl Medians {
    /// What the attached daemon costs: attached / detached.
    fn ratio(&self) -> f64 {
        self.attached.as_secs_f64() / self.detached.as_secs_f64()
    }
}

fn median(samples: &[Duration]) -> Option<Duration> {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let mid = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        len if len % 2 == 1 => Some(sorted[mid]),
        _ => Some((sorted[mid - 1] + sorted[mid]) / 2),
    }
}

/// Microseconds per operation.
fn per_op_us(took: Duration, ops: u32) -> f64 {
    took.as_secs_f64() * 1e6 / f64::from(ops)
}

// === Java programs ===

/// Writes `{class}.java` into `dir` and compiles it there with javac.
fn compile_java(dir: &Path, class: &str, source: &str) -> Result<()> {
    let file = dir.join(format!("{class}.java"));
    fs::write(&file, source).with_context(|| format!("writing {}", file.display()))?;
    run_step("bench", Command::new("javac").arg("-d").arg(dir).arg(&file)).with_context(|| {
        format!(
            "compiling the JVM program {class} (javac is in openjdk-17-jdk-headless: `cargo xtask setup`)"
        )
    })
}

/// `java -cp DIR CLASS`, with stdin closed; the caller adds arguments and output handling.
fn java(dir: &Path, class: &str) -> Command {
    let mut cmd = Command::new("java");
    cmd.arg("-cp").arg(dir).arg(class).stdin(Stdio::null());
    cmd
}

// === impl Daemon ===

/// `detector run --mode monitor` (with the built-in policy unless a `--config` is given),
/// between `detector ready` and SIGTERM. Alerts (stdout) are discarded; stderr is kept for its
/// stats line and for errors.
#[derive(Debug)]
struct Daemon {
    child: Child,
    /// Every stderr line, once stderr closes.
    stderr: Option<JoinHandle<Vec<String>>>,
    /// Each stderr line as it arrives.
    lines: Receiver<String>,
    stopped: bool,
}

impl Daemon {
    fn start(bin: &Path, config: Option<&Path>) -> Result<Self> {
        Self::start_with(bin, config, None)
    }

    /// Like `start`, scoped with `--cgroup` to JVMs started inside `cgroup`; the socket
    /// programs then run only for sockets of that cgroup.
    fn start_scoped(bin: &Path, cgroup: &Path) -> Result<Self> {
        Self::start_with(bin, None, Some(cgroup))
    }

    fn start_with(bin: &Path, config: Option<&Path>, cgroup: Option<&Path>) -> Result<Self> {
        let mut cmd = Command::new(bin);
        cmd.args(["run", "--mode", "monitor"]);
        if let Some(config) = config {
            cmd.arg("--config").arg(config);
        }
        if let Some(cgroup) = cgroup {
            cmd.arg("--cgroup").arg(cgroup);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {} run", bin.display()))?;
        let stderr = child
            .stderr
            .take()
            .context("the daemon's stderr is not piped")?;
        let (tx, lines) = mpsc::channel();
        let reader = thread::spawn(move || {
            let mut all = Vec::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // The receiver may be gone once the daemon is ready; we still keep the line.
                let _ = tx.send(line.clone());
                all.push(line);
            }
            all
        });
        let mut daemon = Self {
            child,
            stderr: Some(reader),
            lines,
            stopped: false,
        };
        daemon.wait_ready()?;
        Ok(daemon)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.trim_end().ends_with("detector ready") => return Ok(()),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    let (_, tail) = self.kill();
                    bail!(
                        "the daemon printed no `detector ready` within {}{tail}",
                        fmt_duration(READY_TIMEOUT)
                    );
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let (status, tail) = self.kill();
                    bail!("the daemon exited before `detector ready` ({status}){tail}");
                }
            }
        }
    }

    /// SIGTERM, wait for a clean exit, and read the counters from the `detector stats` line.
    fn stop(mut self) -> Result<Stats> {
        let pid = libc::pid_t::try_from(self.child.id()).context("daemon pid out of range")?;
        // SAFETY: kill has no memory-safety preconditions; the pid is our own unreaped child,
        // so it cannot have been recycled for another process.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            let err = std::io::Error::last_os_error();
            let (_, tail) = self.kill();
            bail!("sending SIGTERM to the daemon: {err}{tail}");
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().context("waiting for the daemon")? {
                break status;
            }
            if Instant::now() >= deadline {
                let (_, tail) = self.kill();
                bail!(
                    "the daemon did not stop within {} of SIGTERM{tail}",
                    fmt_duration(STOP_TIMEOUT)
                );
            }
            thread::sleep(Duration::from_millis(20));
        };
        self.stopped = true;
        let lines = self.collect_stderr();
        ensure!(
            status.success(),
            "the daemon did not stop cleanly ({status}){}",
            tail(&lines)
        );
        let json = lines
            .iter()
            .rev()
            .find_map(|line| stats_json(line))
            .with_context(|| {
                format!(
                    "the daemon printed no `detector stats` line{}",
                    tail(&lines)
                )
            })?;
        Stats::parse(json).with_context(|| format!("reading the daemon's stats {json}"))
    }

    /// For an error message: whether the daemon is still running, and if not how it ended
    /// and the end of its stderr.
    fn state(&mut self) -> String {
        match self.child.try_wait() {
            Ok(None) => "; the daemon is still running".to_owned(),
            Ok(Some(status)) => {
                self.stopped = true;
                format!(
                    "; the daemon exited ({status}){}",
                    tail(&self.collect_stderr())
                )
            }
            Err(err) => format!("; waiting for the daemon failed: {err}"),
        }
    }

    /// Kills the daemon and returns how it ended and the end of its stderr, for error messages.
    fn kill(&mut self) -> (String, String) {
        let _ = self.child.kill();
        let status = self.child.wait().map_or_else(
            |err| format!("wait failed: {err}"),
            |status: ExitStatus| status.to_string(),
        );
        self.stopped = true;
        (status, tail(&self.collect_stderr()))
    }

    fn collect_stderr(&mut self) -> Vec<String> {
        self.stderr
            .take()
            .and_then(|reader| reader.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Daemon {
    /// Never leave a daemon behind on an error path.
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The last lines of the daemon's stderr, ready to append to an error message.
fn tail(lines: &[String]) -> String {
    const KEEP: usize = 20;
    if lines.is_empty() {
        return "; it printed nothing on stderr".to_owned();
    }
    let start = lines.len().saturating_sub(KEEP);
    format!("; its stderr ends with:\n  {}", lines[start..].join("\n  "))
}

/// The JSON object of a `detector stats {...}` line (possibly behind a log prefix).
fn stats_json(line: &str) -> Option<&str> {
    let rest = &line[line.find("detector stats ")? + "detector stats ".len()..];
    Some(rest[rest.find('{')?..].trim_end())
}

// === impl Stats ===

/// The daemon's counters, from a line such as
/// `{"events":123,"connect_events":4,...,"lost":{"exec":0,"fork":0,"exit":0,"connect":0},...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stats {
    events: u64,
    /// Connect events received; `None` from a daemon without egress sensors.
    connect_events: Option<u64>,
    /// Every counter in `lost`, in the order printed.
    lost: Vec<(String, u64)>,
}

impl Stats {
    /// Reads the few numbers we need from the stats object. A hand-rolled reader keeps
    /// xtask free of a JSON dependency; it accepts the flat shape above, with any spacing,
    /// in any key order, and ignores keys it does not know.
    fn parse(json: &str) -> Result<Self> {
        let events = number_after_key(json, "events").context("no \"events\" number")?;
        let connect_events = match value_after_key(json, "connect_events") {
            None => None,
            Some(_) => Some(
                number_after_key(json, "connect_events")
                    .context("\"connect_events\" is not a number")?,
            ),
        };
        let lost_obj = object_after_key(json, "lost").context("no \"lost\" object")?;
        let mut lost = Vec::new();
        for pair in lost_obj
            .split(',')
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
        {
            let (key, value) = pair
                .split_once(':')
                .with_context(|| format!("`{pair}` in \"lost\" is not key:value"))?;
            let value = value
                .trim()
                .parse()
                .with_context(|| format!("`{pair}` in \"lost\" is not a count"))?;
            lost.push((key.trim().trim_matches('"').to_owned(), value));
        }
        for kind in REQUIRED_LOSS_KINDS {
            ensure!(
                lost.iter().any(|(key, _)| key == kind),
                "no \"{kind}\" counter in \"lost\""
            );
        }
        lost.sort_by(|(a, _), (b, _)| {
            let rank = |key: &String| {
                LOSS_ORDER
                    .iter()
                    .position(|kind| kind == key)
                    .unwrap_or(LOSS_ORDER.len())
            };
            rank(a).cmp(&rank(b)).then_with(|| a.cmp(b))
        });
        Ok(Self {
            events,
            connect_events,
            lost,
        })
    }

    fn total_lost(&self) -> u64 {
        self.lost.iter().map(|(_, count)| count).sum()
    }

    /// Whether the daemon counts losses of this kind at all.
    fn counts_loss_of(&self, kind: &str) -> bool {
        self.lost.iter().any(|(key, _)| key == kind)
    }

    /// `exec=0 fork=0 exit=0 connect=0 payload=0 lineage=0`.
    fn loss_line(&self) -> String {
        let parts: Vec<String> = self
            .lost
            .iter()
            .map(|(key, count)| format!("{key}={count}"))
            .collect();
        parts.join(" ")
    }
}

/// The text after `"key"` and its colon, trimmed.
fn value_after_key<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let quoted = format!("\"{key}\"");
    let rest = &json[json.find(&quoted)? + quoted.len()..];
    Some(rest.trim_start().strip_prefix(':')?.trim_start())
}

fn number_after_key(json: &str, key: &str) -> Option<u64> {
    let value = value_after_key(json, key)?;
    let end = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    value[..end].parse().ok()
}

/// The inside of a flat object value: `{"a":1}` gives `"a":1`.
fn object_after_key<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let value = value_after_key(json, key)?.strip_prefix('{')?;
    Some(&value[..value.find('}')?])
}

// === impl ScratchDir ===

/// A private temporary directory for a benchmark's files, removed on drop.
#[derive(Debug)]
struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// `$TMPDIR/detector-bench-{name}-{pid}`.
    fn create(name: &str) -> Result<Self> {
        let path = env::temp_dir().join(format!("detector-bench-{name}-{}", process::id()));
        // A leftover from an earlier run with the same pid is ours to replace.
        if path.exists() {
            fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
        }
        fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self { path })
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Err(err) = fs::remove_dir_all(&self.path) {
            eprintln!("warning: removing {}: {err}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_line_is_read() {
        let line =
            r#"detector stats {"events":123,"lost":{"exec":0,"fork":2,"exit":0},"alerts":0}"#;
        let stats = Stats::parse(stats_json(line).expect("a stats line")).expect("parses");
        assert_eq!(stats.events, 123);
        assert_eq!(stats.connect_events, None);
        assert_eq!(stats.total_lost(), 2);
        assert_eq!(stats.loss_line(), "exec=0 fork=2 exit=0");
        assert!(!stats.counts_loss_of("connect"));
    }

    #[test]
    fn stats_of_a_daemon_with_egress_are_read() {
        let line = concat!(
            r#"detector stats {"events":40012,"connect_events":20003,"payload_events":0,"#,
            r#""decode_errors":0,"alerts":20003,"alerts_dropped":0,"jvms_seeded":1,"#,
            r#""table_evicted_live":0,"lost":{"connect":0,"exec":0,"exit":0,"fork":0,"#,
            r#""lineage":0,"payload":3}}"#
        );
        let stats = Stats::parse(stats_json(line).expect("a stats line")).expect("parses");
        // "connect_events" and "payload_events" must not be mistaken for "events".
        assert_eq!(stats.events, 40012);
        assert_eq!(stats.connect_events, Some(20003));
        assert_eq!(stats.total_lost(), 3);
        assert_eq!(
            stats.loss_line(),
            "exec=0 fork=0 exit=0 connect=0 payload=3 lineage=0"
        );
        assert!(stats.counts_loss_of("connect"));
    }

    #[test]
    fn stats_tolerate_spacing_prefixes_and_new_counters() {
        let line = r#"2026-01-01T00:00:00Z INFO detector stats { "lost" : { "zeta": 4, "connect": 1, "exit": 0, "exec": 0, "fork": 0 }, "connect_events" : 9, "events" : 7 }"#;
        let stats = Stats::parse(stats_json(line).expect("a stats line")).expect("parses");
        assert_eq!(stats.events, 7);
        assert_eq!(stats.connect_events, Some(9));
        assert_eq!(stats.loss_line(), "exec=0 fork=0 exit=0 connect=1 zeta=4");
    }

    #[test]
    fn malformed_stats_are_rejected() {
        assert!(Stats::parse(r#"{"events":1,"lost":{"exec":0,"fork":0}}"#).is_err());
        assert!(Stats::parse(r#"{"events":1}"#).is_err());
        assert!(Stats::parse(
            r#"{"events":1,"connect_events":null,"lost":{"exec":0,"fork":0,"exit":0}}"#
        )
        .is_err());
        assert!(Stats::parse(r#"{"events":1,"lost":{"exec":0,"fork":0,"exit":-1}}"#).is_err());
        assert!(stats_json("detector ready").is_none());
    }

    #[test]
    fn medians() {
        let ms = Duration::from_millis;
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[ms(3), ms(1), ms(2)]), Some(ms(2)));
        assert_eq!(
            median(&[ms(4), ms(1), ms(2), ms(3)]),
            Some(Duration::from_micros(2500))
        );
    }

    #[test]
    fn rounds_alternate_detached_first() {
        let sides: Vec<Side> = (1..=4).map(Side::of_round).collect();
        assert_eq!(
            sides,
            [
                Side::Detached,
                Side::Attached,
                Side::Detached,
                Side::Attached
            ]
        );
        let ms = Duration::from_millis;
        let mut samples = Samples::default();
        for (round, took) in (1..=4).zip([ms(100), ms(110), ms(300), ms(120)]) {
            samples.push(Side::of_round(round), took);
        }
        let medians = samples.medians().expect("both sides");
        assert_eq!(medians.detached, ms(200));
        assert_eq!(medians.attached, ms(115));
        assert!((medians.ratio() - 0.575).abs() < 1e-9);
        assert!(Samples::default().medians().is_err());
        assert!(check_rounds(4).is_ok());
        assert!(check_rounds(3).is_err());
        assert!(check_rounds(0).is_err());
    }
}
