//! `cargo xtask bench exec`: what the running daemon costs a program that spawns processes,
//! and whether the kernel drops events when a JVM spawns fast.
//!
//! The cost is measured on a NON-JVM program (this one): the kernel programs still run on
//! every exec, fork and exit, but should drop those events early because no JVM is in the
//! lineage.

use std::{
    path::Path,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context as _, Result};

use super::{
    check_rounds, compile_java, daemon_binary, java, per_op_us, start_daemon, Samples, ScratchDir,
    Side, Stats, SETTLE,
};
use crate::Workspace;

/// The goal for the attached/detached ratio of median round times.
const RATIO_GOAL: f64 = 1.02;

/// A JVM that runs /bin/true in a loop: each child is a JVM descendant, so every exec, fork
/// and exit reaches the daemon. /bin/true is not a shell, so the default policy raises nothing.
const STORM_CLASS: &str = "Storm";
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
        check_rounds(opts.rounds)?;
        ensure!(opts.spawns > 0, "--spawns must be at least 1");
        ensure!(opts.jvm_spawns > 0, "--jvm-spawns must be at least 1");
        Ok(opts)
    }
}

// === the benchmark ===

/// Runs the benchmark; errors on failures and on any lost kernel event, never on the ratio.
pub fn exec(ws: &Workspace, opts: &ExecOpts, build_first: bool) -> Result<()> {
    let bin = daemon_binary(ws, build_first)?;

    println!(
        "==> bench: {} rounds of {} sequential /bin/true spawns, alternating detached/attached",
        opts.rounds, opts.spawns
    );
    // Warm the page cache and the allocator; not timed.
    spawn_storm((opts.spawns / 10).max(1))?;

    let mut samples = Samples::default();
    let mut losses = Vec::new();
    for round in 1..=opts.rounds {
        let side = Side::of_round(round);
        let daemon = match side {
            Side::Attached => Some(start_daemon(&bin, None, None)?),
            Side::Detached => None,
        };
        thread::sleep(SETTLE);
        let took = spawn_storm(opts.spawns)?;
        samples.push(side, took);
        let per_spawn = per_op_us(took, opts.spawns);
        let head = format!(
            "==> bench: round {round}/{} {}: {:.3}s ({per_spawn:.0} µs/spawn",
            opts.rounds,
            side.label(),
            took.as_secs_f64()
        );
        match daemon {
            Some(mut daemon) => {
                let stats = daemon.stop()?;
                println!(
                    "{head}; daemon saw {} events, lost {})",
                    stats.events,
                    stats.loss_line()
                );
                if stats.total_lost() > 0 {
                    losses.push(format!("round {round}: {}", stats.loss_line()));
                }
            }
            None => println!("{head})"),
        }
    }
    let medians = samples.medians()?;
    println!(
        "detached median: {:.3}s ({:.0} µs/spawn)",
        medians.detached.as_secs_f64(),
        per_op_us(medians.detached, opts.spawns)
    );
    println!(
        "attached median: {:.3}s ({:.0} µs/spawn)",
        medians.attached.as_secs_f64(),
        per_op_us(medians.attached, opts.spawns)
    );
    println!(
        "exec spawn ratio (attached/detached): {:.3}  (goal <= {RATIO_GOAL})",
        medians.ratio()
    );

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
pub(super) fn spawn_storm(n: u32) -> Result<Duration> {
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
    let dir = ScratchDir::create("exec")?;
    compile_java(dir.path(), STORM_CLASS, STORM_JAVA)?;

    let mut daemon = start_daemon(bin, None, None)?;
    thread::sleep(SETTLE);
    println!("==> bench: JVM storm: java {STORM_CLASS} {n} (daemon attached)");
    let started = Instant::now();
    let status = java(dir.path(), STORM_CLASS)
        .arg(n.to_string())
        .stdout(Stdio::null())
        .status()
        .context("running java (is openjdk-17-jdk-headless installed? `cargo xtask setup`)")?;
    ensure!(status.success(), "the JVM storm failed ({status})");
    println!(
        "==> bench: JVM storm took {:.3}s ({:.0} µs/spawn)",
        started.elapsed().as_secs_f64(),
        per_op_us(started.elapsed(), n)
    );
    Ok(daemon.stop()?)
}

#[cfg(test)]
mod tests {
    use super::*;

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
