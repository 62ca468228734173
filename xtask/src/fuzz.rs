//! `cargo xtask fuzz [TARGET] [--seconds N]`: the libFuzzer targets of `fuzz/` (one per parser
//! of untrusted bytes; bodies in detector/src/fuzz_targets.rs), built with cargo-fuzz and
//! run for a bounded time each. A short run of every target is a step of `cargo xtask test`.
//!
//! cargo-fuzz needs unstable compiler flags (`-Cpasses=sancov-module`, `-Zsanitizer`): they
//! are unlocked on the workspace's rustup toolchain with `RUSTC_BOOTSTRAP=1`, for this build
//! only, rather than with a nightly toolchain that this machine cannot download. No address
//! sanitizer: the code under test is safe Rust but for one length-checked read in `decode`,
//! and ASan would double the build, which the test step cannot afford; panics, overflows
//! (the targets build with overflow checks and debug assertions) and the targets' own
//! assertions are what is caught.
//!
//! Each run fuzzes into `target/fuzz/work/corpus/<target>/`, seeded from the checked-in
//! `fuzz/corpus/<target>/` (never written to), and leaves crashes in
//! `target/fuzz/work/artifacts/<target>/`; see docs/development.md, "Fuzzing".

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{bail, Context as _, Result};

use crate::{fmt_duration, host_cargo_program, run_step, setup, Workspace};

/// What the fuzz targets are built for (cargo-fuzz's default).
const TRIPLE: &str = "x86_64-unknown-linux-gnu";

/// Seconds per target in `cargo xtask test`: a smoke run (every seed, then new inputs) that
/// keeps the whole test command well under 30 minutes; long runs are `cargo xtask fuzz`.
pub const TEST_SECONDS: u64 = 4;

/// How the targets are built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Optimised (cargo-fuzz's default, one codegen unit): ~10x the executions per second,
    /// for real fuzzing; a build from scratch takes about twice as long.
    Release,
    /// Unoptimised: what `cargo xtask test` builds, to keep its fuzz step within minutes
    /// on a fresh CI checkout; enough to run every seed and a few thousand mutations.
    Dev,
}

impl Profile {
    fn dir(self) -> &'static str {
        match self {
            Profile::Release => "release",
            Profile::Dev => "debug",
        }
    }
}

/// Arguments of `cargo xtask fuzz`.
#[derive(Debug, clap::Args)]
pub struct FuzzArgs {
    /// Fuzz only this target (default: every target in fuzz/fuzz_targets/, one after another).
    pub target: Option<String>,
    /// Seconds to fuzz each target.
    #[arg(long, default_value_t = 300)]
    pub seconds: u64,
    /// Build unoptimised, as `cargo xtask test` does (quicker to build, ~10x slower to run).
    #[arg(long)]
    pub dev: bool,
}

/// One target's run, from libFuzzer's output.
#[derive(Debug, Default)]
struct RunStats {
    execs: Option<u64>,
    execs_per_sec: Option<u64>,
    /// Coverage: edges (`cov`) and features (`ft`) at the end.
    cov: Option<u64>,
    ft: Option<u64>,
    corpus: Option<String>,
    peak_rss_mb: Option<u64>,
}

/// Builds the fuzz targets, then fuzzes `target` (or every target) for `seconds` each. Fails
/// when a target crashed, with where its input is and how to keep it as a regression.
pub fn fuzz(ws: &Workspace, target: Option<&str>, seconds: u64, profile: Profile) -> Result<()> {
    ensure_cargo_fuzz()?;
    let fuzz_dir = ws.root.join("fuzz");
    let all = targets(&fuzz_dir)?;
    let chosen: Vec<String> = match target {
        Some(name) if all.iter().any(|t| t == name) => vec![name.to_owned()],
        Some(name) => bail!("no fuzz target {name:?}; there are: {}", all.join(", ")),
        None => all,
    };
    build(ws, &fuzz_dir, profile)?;
    let bin_dir = fuzz_target_dir(ws).join(TRIPLE).join(profile.dir());
    let work = fuzz_target_dir(ws).join("work");
    let mut failed = Vec::new();
    let mut rows = Vec::new();
    for name in &chosen {
        let started = Instant::now();
        match run_one(&bin_dir, &work, &fuzz_dir, name, seconds) {
            Ok(stats) => rows.push((name.as_str(), stats, started.elapsed())),
            Err(err) => {
                eprintln!("==> fuzz: {name}: {err:#}");
                failed.push(name.as_str());
            }
        }
    }
    println!(
        "==> fuzz: {:<12} {:>10} {:>8} {:>6} {:>6} {:>14} {:>8}",
        "target", "runs", "exec/s", "cov", "ft", "corpus", "rss MB"
    );
    let show = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
    for (name, s, took) in &rows {
        println!(
            "==> fuzz: {name:<12} {:>10} {:>8} {:>6} {:>6} {:>14} {:>8}  ({})",
            show(s.execs),
            show(s.execs_per_sec),
            show(s.cov),
            show(s.ft),
            s.corpus.as_deref().unwrap_or("?"),
            show(s.peak_rss_mb),
            fmt_duration(*took),
        );
    }
    if !failed.is_empty() {
        bail!(
            "fuzz targets failed: {}. Fix the parser, then keep each input as a regression: \
             copy it to fuzz/regressions/<target>/ (docs/development.md, \"Fuzzing\")",
            failed.join(", ")
        );
    }
    Ok(())
}

/// cargo-fuzz, installed by `cargo xtask setup`. Missing under `CI=true` is a failure (the
/// setup step must have installed it); elsewhere it is installed, as the build tools are.
fn ensure_cargo_fuzz() -> Result<()> {
    if setup::cargo_fuzz_version().as_deref() == Some(setup::CARGO_FUZZ_VERSION) {
        return Ok(());
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        bail!(
            "CI=true but cargo-fuzz {} is not installed: `cargo xtask setup` installs it",
            setup::CARGO_FUZZ_VERSION
        );
    }
    setup::install_cargo_fuzz()
}

/// The targets: `fuzz/fuzz_targets/<name>.rs`, sorted.
fn targets(fuzz_dir: &Path) -> Result<Vec<String>> {
    let dir = fuzz_dir.join("fuzz_targets");
    let mut names = Vec::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "rs") {
            if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                names.push(stem.to_owned());
            }
        }
    }
    names.sort();
    if names.is_empty() {
        bail!("no fuzz targets in {}", dir.display());
    }
    Ok(names)
}

fn fuzz_target_dir(ws: &Workspace) -> PathBuf {
    ws.target_dir.join("fuzz")
}

/// `cargo fuzz build`: every target, with overflow checks and debug assertions.
fn build(ws: &Workspace, fuzz_dir: &Path, profile: Profile) -> Result<()> {
    let mut cmd = Command::new(host_cargo_program());
    cmd.current_dir(fuzz_dir)
        .args(["fuzz", "build", "--sanitizer", "none", "--debug-assertions"]);
    if profile == Profile::Dev {
        cmd.arg("--dev");
    }
    cmd.arg("--target-dir")
        .arg(fuzz_target_dir(ws))
        // Unstable flags on the rustup toolchain (see the module comment).
        .env("RUSTC_BOOTSTRAP", "1")
        // The parsers need no kernel programs; the daemon's build makes those.
        .env("DETECTOR_SKIP_EBPF_BUILD", "1");
    run_step("fuzz", &mut cmd)
}

/// Fuzzes one target for `seconds`; its output goes to `work/logs/<name>.log`.
fn run_one(
    bin_dir: &Path,
    work: &Path,
    fuzz_dir: &Path,
    name: &str,
    seconds: u64,
) -> Result<RunStats> {
    let corpus = work.join("corpus").join(name);
    let artifacts = work.join("artifacts").join(name);
    let logs = work.join("logs");
    for dir in [&corpus, &artifacts, &logs] {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let log_path = logs.join(format!("{name}.log"));
    let log =
        fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let mut cmd = Command::new(bin_dir.join(name));
    // New inputs go to the first directory only: the checked-in seeds stay as they are.
    cmd.arg(&corpus)
        .arg(fuzz_dir.join("corpus").join(name))
        .arg(format!("-max_total_time={seconds}"))
        // An input that takes a second is a bug in a parser that sees every packet.
        .arg("-timeout=10")
        .arg("-rss_limit_mb=2048")
        .arg("-print_final_stats=1")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .stdout(log.try_clone()?)
        .stderr(log);
    println!(
        "==> fuzz: {name} for {seconds}s (log: {})",
        log_path.display()
    );
    let status = cmd
        .status()
        .with_context(|| format!("starting fuzz target {name}: was it built?"))?;
    let output = fs::read_to_string(&log_path).unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = output.lines().rev().take(40).collect();
        for line in tail.iter().rev() {
            eprintln!("    {line}");
        }
        let crashes: Vec<String> = fs::read_dir(&artifacts)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path().display().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        bail!(
            "{status}; inputs kept: {}; reproduce with `{} INPUT`",
            if crashes.is_empty() {
                "none".to_owned()
            } else {
                crashes.join(" ")
            },
            bin_dir.join(name).display()
        );
    }
    Ok(stats(&output))
}

/// What libFuzzer printed of the run: its last status line and its final statistics.
fn stats(output: &str) -> RunStats {
    let mut s = RunStats::default();
    let number = |text: &str| text.trim().parse::<u64>().ok();
    if let Some(line) = output.lines().rev().find(|l| l.contains(" cov: ")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let after = |key: &str| {
            words
                .iter()
                .position(|w| *w == key)
                .and_then(|i| words.get(i + 1))
                .copied()
        };
        s.cov = after("cov:").and_then(number);
        s.ft = after("ft:").and_then(number);
        s.corpus = after("corp:").map(str::to_owned);
    }
    for line in output.lines() {
        if let Some((key, value)) = line.split_once(": ") {
            match key.trim() {
                "stat::number_of_executed_units" => s.execs = number(value),
                "stat::average_exec_per_sec" => s.execs_per_sec = number(value),
                "stat::peak_rss_mb" => s.peak_rss_mb = number(value),
                _ => {}
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzer_statistics() {
        let output = "#1024\tpulse  cov: 10 ft: 12 corp: 3/20b exec/s: 512 rss: 30Mb\n\
            #2048\tNEW    cov: 1060 ft: 2084 corp: 325/184Kb lim: 1216 exec/s: 22616 rss: 29Mb L: 208/1197 MS: 5\n\
            Done 2048 runs in 1 second(s)\n\
            stat::number_of_executed_units: 2048\n\
            stat::average_exec_per_sec:     2048\n\
            stat::new_units_added:          3\n\
            stat::peak_rss_mb:              31\n";
        let s = stats(output);
        assert_eq!(s.cov, Some(1060));
        assert_eq!(s.ft, Some(2084));
        assert_eq!(s.corpus.as_deref(), Some("325/184Kb"));
        assert_eq!(s.execs, Some(2048));
        assert_eq!(s.execs_per_sec, Some(2048));
        assert_eq!(s.peak_rss_mb, Some(31));
    }

    #[test]
    fn every_target_is_found() {
        let fuzz_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
        let names = targets(&fuzz_dir).expect("targets");
        assert!(names.iter().any(|n| n == "ldap"), "{names:?}");
    }
}
