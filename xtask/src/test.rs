//! `cargo xtask test`: the one test command, and all CI runs.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::{
    bench, build, fmt_duration, fuzz, image, kernels, lab, lint, package, run_step, setup,
    Workspace,
};

type Step = fn(&Workspace) -> Result<()>;

/// In order; each step assumes the ones before it passed.
const STEPS: [(&str, Step); 9] = [
    ("setup", |_| setup::setup()),
    ("lint", lint::lint),
    // The daemon, the Debian package of it that tests/tests/package.rs installs and the image
    // tests/tests/kubernetes.rs runs.
    ("build", |ws| {
        build::build(ws, false)?;
        package::package(ws, true)?;
        image::image(ws, true).map(drop)
    }),
    // The unit tests replay every seed and every crash the fuzzer ever found
    // (fuzz/regressions/); this runs each fuzz target for a few seconds more.
    ("unit tests", unit_tests),
    ("fuzz", |ws| {
        fuzz::fuzz(ws, None, fuzz::TEST_SECONDS, fuzz::Profile::Dev)
    }),
    ("integration tests", integration_tests),
    // A subset of the integration tests in Debian's 5.10, 6.1 and 6.12 kernels (QEMU).
    ("kernel matrix", |ws| {
        kernels::kernels(ws, &kernels::KernelsOpts::for_test())
    }),
    // The Log4Shell lab, every scenario in every mode (tests/lab/README.md).
    // Strict: the detector side of issue 4 has landed, so every expected rule must fire.
    // `--no-build`: the build step has just built the daemon.
    ("lab", |ws| {
        lab::lab(ws, &["--no-build".into(), "--strict".into()])
    }),
    // Smoke runs: they fail on errors and lost kernel events, never on the cost ratios or
    // the kernel-cost goals.
    ("bench", |ws| {
        bench::exec(ws, &bench::ExecOpts::quick(), false)?;
        bench::connect(ws, &bench::ConnectOpts::quick(), false)?;
        bench::kernel(ws, &bench::KernelOpts::quick(), false)
    }),
];

pub fn test(ws: &Workspace) -> Result<()> {
    let started = Instant::now();
    let mut done: Vec<(&str, Duration)> = Vec::new();
    for (name, step) in STEPS {
        println!("==> test: step `{name}`");
        let step_started = Instant::now();
        let result = step(ws);
        let took = step_started.elapsed();
        if let Err(err) = result {
            println!(
                "==> test: FAILED at `{name}` after {} (total {}){}",
                fmt_duration(took),
                fmt_duration(started.elapsed()),
                summary(&done)
            );
            return Err(err).with_context(|| format!("test step `{name}` failed"));
        }
        println!("==> test: step `{name}` passed in {}", fmt_duration(took));
        done.push((name, took));
    }
    println!(
        "==> test: all {} steps passed in {}{}",
        done.len(),
        fmt_duration(started.elapsed()),
        summary(&done)
    );
    Ok(())
}

fn unit_tests(ws: &Workspace) -> Result<()> {
    run_step(
        "test",
        ws.host_cargo()
            .args(["test", "--workspace", "--exclude", "integration-tests"]),
    )
}

/// The real daemon against the real kernel: they need root, and run one at a time because
/// kernel state (tracepoints, cgroup programs) is shared.
fn integration_tests(ws: &Workspace) -> Result<()> {
    let bin = ws.daemon_bin(false);
    let bin = bin
        .canonicalize()
        .with_context(|| format!("locating the daemon binary {}", bin.display()))?;
    run_step(
        "test",
        ws.host_cargo()
            .args([
                "test",
                "--release",
                "-p",
                "integration-tests",
                "--",
                "--test-threads=1",
            ])
            .env("DETECTOR_BIN", bin)
            .env("DETECTOR_DEB", package::path(ws)?),
    )
}

/// ` (setup 0.2s, lint 41.0s, ...)`, or nothing when no step has finished.
fn summary(done: &[(&str, Duration)]) -> String {
    if done.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = done
        .iter()
        .map(|(name, took)| format!("{name} {}", fmt_duration(*took)))
        .collect();
    format!(" ({})", parts.join(", "))
}
