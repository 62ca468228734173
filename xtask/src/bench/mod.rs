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
//! absorb outliers. This module holds what they share: the rounds and their medians, and how
//! they start the daemon and compile their Java programs with the shared harness (`testkit`).

mod connect;
mod exec;
mod kernel;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{bail, ensure, Context as _, Result};
use testkit::{java::Javac, Detector, Launch, Mode};
pub(crate) use testkit::{ScratchDir, Stats};

pub use connect::{connect, ConnectArgs, ConnectOpts};
pub use exec::{exec, ExecArgs, ExecOpts};
pub use kernel::{kernel, KernelArgs, KernelOpts};

use crate::{build, is_root, Workspace};

/// Quiet time before each timed round, so start-up or shut-down work of the daemon (or its
/// absence) does not land in a measurement.
const SETTLE: Duration = Duration::from_millis(250);
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
    let javac = Javac::new(Path::new("javac"), &[], dir).args([&file]);
    println!("==> bench: {}", javac.command_line());
    javac
        .run()
        .with_context(|| format!("compiling the JVM program {class}"))
}

/// `java -cp DIR CLASS`, with stdin closed; the caller adds arguments and output handling.
fn java(dir: &Path, class: &str) -> Command {
    testkit::java::java("java", dir, class)
}

/// `detector run --mode monitor` (with the built-in policy unless a `--config` is given),
/// scoped with `--cgroup` if one is given: the socket programs then run only for sockets of
/// that cgroup. Alerts are discarded, so reading them costs the measurement nothing.
fn start_daemon(bin: &Path, config: Option<&Path>, cgroup: Option<&Path>) -> Result<Detector> {
    let mut launch = Launch::new(bin, Mode::Monitor).discard_alerts();
    if let Some(config) = config {
        launch = launch.config(config);
    }
    if let Some(cgroup) = cgroup {
        launch = launch.cgroup(cgroup);
    }
    Ok(launch.start()?)
}

#[cfg(test)]
mod tests {
    use super::*;

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
