//! `cargo xtask bench exec`: what the running daemon costs a program that spawns processes,
//! and whether the kernel drops events when a JVM spawns fast.
//!
//! The cost is measured on a NON-JVM program (this one): the kernel programs still run on
//! every exec, fork and exit, but should drop those events early because no JVM is in the
//! lineage. Timed rounds alternate detached (no daemon) and attached (daemon started and
//! ready), so slow drifts of the machine hit both sides alike; medians absorb outliers.

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

use crate::{build, fmt_duration, is_root, run_step, Workspace};

/// How long the daemon may take to attach every kernel program.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the daemon may take to stop after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Quiet time before each timed round, so start-up or shut-down work of the daemon (or its
/// absence) does not land in a measurement.
const SETTLE: Duration = Duration::from_millis(250);
/// The goal for the attached/detached ratio of median round times.
const RATIO_GOAL: f64 = 1.02;
/// The loss counters the daemon must report, in the order we print them.
const LOSS_KINDS: [&str; 3] = ["exec", "fork", "exit"];

/// A JVM that runs /bin/true in a loop: each child is a JVM descendant, so every exec, fork
/// and exit reaches the daemon. /bin/true is not a shell, so the default policy raises nothing.
const STORM_JAVA: &str = r#"public final class Storm {
    public static void main(String[] args) throws Exception {
        int n = Integer.parseInt(args[0]);
        ProcessBuilder pb = new ProcessBuilder("/bin/true")
            .redirectOutput(ProcessBuilder.Redirect.DISCARD)
            .redirectError(ProcessBuilder.Redirect.DISCARD);
        for (int i = 0; i < n; i++) {
            int rc = pb.start().waitFor();
            if (rc != 0) {
                System.err.println("/bin/true exited with " + rc);
                System.exit(1);
            }
        }
    }
}
"#;

// === options ===

/// Options of `bench exec`.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Timed rounds, alternating detached and attached; even [default: 10, --quick: 4].
    #[arg(long)]
    rounds: Option<u32>,
    /// `/bin/true` spawns per timed round [default: 2000, --quick: 300].
    #[arg(long)]
    spawns: Option<u32>,
    /// `/bin/true` spawns by the JVM in the event-loss check [default: 2000, --quick: 200].
    #[arg(long)]
    jvm_spawns: Option<u32>,
    /// A short smoke run (4 rounds of 300 spawns, 200 JVM spawns); explicit flags still win.
    #[arg(long)]
    quick: bool,
}

/// Validated options of `bench exec`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOpts {
    rounds: u32,
    spawns: u32,
    jvm_spawns: u32,
}

impl ExecOpts {
    pub fn quick() -> Self {
        Self {
            rounds: 4,
            spawns: 300,
            jvm_spawns: 200,
        }
    }

    fn full() -> Self {
        Self {
            rounds: 10,
            spawns: 2000,
            jvm_spawns: 2000,
        }
    }
}

impl ExecArgs {
    pub fn resolve(&self) -> Result<ExecOpts> {
        let defaults = if self.quick {
            ExecOpts::quick()
        } else {
            ExecOpts::full()
        };
        let opts = ExecOpts {
            rounds: self.rounds.unwrap_or(defaults.rounds),
            spawns: self.spawns.unwrap_or(defaults.spawns),
            jvm_spawns: self.jvm_spawns.unwrap_or(defaults.jvm_spawns),
        };
        ensure!(
            opts.rounds >= 2 && opts.rounds.is_multiple_of(2),
            "--rounds must be even and at least 2 (half detached, half attached), not {}",
            opts.rounds
        );
        ensure!(opts.spawns > 0, "--spawns must be at least 1");
        ensure!(opts.jvm_spawns > 0, "--jvm-spawns must be at least 1");
        Ok(opts)
    }
}

// === the benchmark ===

/// Runs the benchmark; errors on failures and on any lost kernel event, never on the ratio.
pub fn exec(ws: &Workspace, opts: &ExecOpts, build_first: bool) -> Result<()> {
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

    println!(
        "==> bench: {} rounds of {} sequential /bin/true spawns, alternating detached/attached",
        opts.rounds, opts.spawns
    );
    // Warm the page cache and the allocator; not timed.
    spawn_storm((opts.spawns / 10).max(1))?;

    let mut detached = Vec::new();
    let mut attached = Vec::new();
    let mut losses = Vec::new();
    for round in 1..=opts.rounds {
        let is_attached = round.is_multiple_of(2);
        let daemon = if is_attached {
            Some(Daemon::start(&bin)?)
        } else {
            None
        };
        thread::sleep(SETTLE);
        let took = spawn_storm(opts.spawns)?;
        let mode = if is_attached { "attached" } else { "detached" };
        let per_spawn = per_spawn_us(took, opts.spawns);
        match daemon {
            Some(daemon) => {
                let stats = daemon.stop()?;
                println!(
                    "==> bench: round {round}/{} {mode}: {:.3}s ({per_spawn:.0} µs/spawn; daemon saw {} events, lost {})",
                    opts.rounds,
                    took.as_secs_f64(),
                    stats.events,
                    stats.loss_line()
                );
                if stats.total_lost() > 0 {
                    losses.push(format!("round {round}: {}", stats.loss_line()));
                }
                attached.push(took);
            }
            None => {
                println!(
                    "==> bench: round {round}/{} {mode}: {:.3}s ({per_spawn:.0} µs/spawn)",
                    opts.rounds,
                    took.as_secs_f64()
                );
                detached.push(took);
            }
        }
    }
    let detached_median = median(&detached).context("no detached rounds")?;
    let attached_median = median(&attached).context("no attached rounds")?;
    let ratio = attached_median.as_secs_f64() / detached_median.as_secs_f64();
    println!(
        "detached median: {:.3}s ({:.0} µs/spawn)",
        detached_median.as_secs_f64(),
        per_spawn_us(detached_median, opts.spawns)
    );
    println!(
        "attached median: {:.3}s ({:.0} µs/spawn)",
        attached_median.as_secs_f64(),
        per_spawn_us(attached_median, opts.spawns)
    );
    println!("exec spawn ratio (attached/detached): {ratio:.3}  (goal <= {RATIO_GOAL})");

    let jvm_storm = jvm_storm(&bin, opts.jvm_spawns)?;
    println!(
        "kernel loss after storm: {} (goal: 0)",
        jvm_storm.loss_line()
    );
    println!(
        "events during the JVM storm: {} ({} JVM spawns of /bin/true)",
        jvm_storm.events, opts.jvm_spawns
    );
    if jvm_storm.total_lost() > 0 {
        losses.push(format!("JVM storm: {}", jvm_storm.loss_line()));
    }
    if !losses.is_empty() {
        bail!("the kernel lost events: {}", losses.join("; "));
    }
    Ok(())
}

/// Spawns `/bin/true` `n` times, one after the other, and returns how long that took.
fn spawn_storm(n: u32) -> Result<Duration> {
    let started = Instant::now();
    for _ in 0..n {
        let status = Command::new("/bin/true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("spawning /bin/true")?;
        ensure!(status.success(), "/bin/true failed ({status})");
    }
    Ok(started.elapsed())
}

/// With the daemon attached, a JVM spawns `/bin/true` `n` times; returns the daemon's
/// counters once it has stopped.
fn jvm_storm(bin: &Path, n: u32) -> Result<Stats> {
    let dir = ScratchDir::create()?;
    let source = dir.path.join("Storm.java");
    fs::write(&source, STORM_JAVA).with_context(|| format!("writing {}", source.display()))?;
    run_step(
        "bench",
        Command::new("javac").arg("-d").arg(&dir.path).arg(&source),
    )
    .context("compiling the JVM storm program (javac is in openjdk-17-jdk-headless: `cargo xtask setup`)")?;

    let daemon = Daemon::start(bin)?;
    thread::sleep(SETTLE);
    println!("==> bench: JVM storm: java Storm {n} (daemon attached)");
    let started = Instant::now();
    let status = Command::new("java")
        .arg("-cp")
        .arg(&dir.path)
        .arg("Storm")
        .arg(n.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .context("running java (is openjdk-17-jdk-headless installed? `cargo xtask setup`)")?;
    ensure!(status.success(), "the JVM storm failed ({status})");
    println!(
        "==> bench: JVM storm took {:.3}s ({:.0} µs/spawn)",
        started.elapsed().as_secs_f64(),
        per_spawn_us(started.elapsed(), n)
    );
    daemon.stop()
}

fn per_spawn_us(took: Duration, spawns: u32) -> f64 {
    took.as_secs_f64() * 1e6 / f64::from(spawns)
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

// === impl Daemon ===

/// `detector run --mode monitor` with the built-in policy, between `detector ready` and SIGTERM.
/// Alerts (stdout) are discarded; stderr is kept for its stats line and for errors.
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
    fn start(bin: &Path) -> Result<Self> {
        let mut child = Command::new(bin)
            .args(["run", "--mode", "monitor"])
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

/// The daemon's counters, from `{"events":123,"lost":{"exec":0,"fork":0,"exit":0},"alerts":0}`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stats {
    events: u64,
    /// Every counter in `lost`, in the order printed.
    lost: Vec<(String, u64)>,
}

impl Stats {
    /// Reads the few numbers we need from the stats object. A hand-rolled reader keeps
    /// xtask free of a JSON dependency; it accepts the flat shape above, with any spacing.
    fn parse(json: &str) -> Result<Self> {
        let events = number_after_key(json, "events").context("no \"events\" number")?;
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
        for kind in LOSS_KINDS {
            ensure!(
                lost.iter().any(|(key, _)| key == kind),
                "no \"{kind}\" counter in \"lost\""
            );
        }
        // The counters we promise first, then any others the daemon adds.
        lost.sort_by_key(|(key, _)| {
            LOSS_KINDS
                .iter()
                .position(|kind| kind == key)
                .unwrap_or(LOSS_KINDS.len())
        });
        Ok(Self { events, lost })
    }

    fn total_lost(&self) -> u64 {
        self.lost.iter().map(|(_, count)| count).sum()
    }

    /// `exec=0 fork=0 exit=0`.
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

/// A private temporary directory for the JVM program, removed on drop.
#[derive(Debug)]
struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    fn create() -> Result<Self> {
        let path = env::temp_dir().join(format!("detector-bench-{}", process::id()));
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
        assert_eq!(stats.total_lost(), 2);
        assert_eq!(stats.loss_line(), "exec=0 fork=2 exit=0");
    }

    #[test]
    fn stats_tolerate_spacing_prefixes_and_new_counters() {
        let line = r#"2026-01-01T00:00:00Z INFO detector stats { "lost" : { "connect": 1, "exit": 0, "exec": 0, "fork": 0 }, "events" : 7 }"#;
        let stats = Stats::parse(stats_json(line).expect("a stats line")).expect("parses");
        assert_eq!(stats.events, 7);
        assert_eq!(stats.loss_line(), "exec=0 fork=0 exit=0 connect=1");
    }

    #[test]
    fn stats_without_a_loss_counter_are_rejected() {
        assert!(Stats::parse(r#"{"events":1,"lost":{"exec":0,"fork":0}}"#).is_err());
        assert!(Stats::parse(r#"{"events":1}"#).is_err());
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
    fn quick_and_explicit_options() {
        let args = ExecArgs {
            rounds: None,
            spawns: Some(50),
            jvm_spawns: None,
            quick: true,
        };
        let opts = args.resolve().expect("valid");
        assert_eq!(
            opts,
            ExecOpts {
                rounds: 4,
                spawns: 50,
                jvm_spawns: 200
            }
        );
        let odd = ExecArgs {
            rounds: Some(3),
            spawns: None,
            jvm_spawns: None,
            quick: false,
        };
        assert!(odd.resolve().is_err());
    }
}
