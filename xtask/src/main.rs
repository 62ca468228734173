//! Developer tasks for the detector, run as `cargo xtask <task>` (an alias in
//! `.cargo/config.toml`):
//!
//! - `setup`: install what building and testing need on a Debian 12 machine (idempotent).
//! - `build [--debug]`: build the daemon, with the kernel programs embedded.
//! - `run -- <detector args>`: build, then replace this process with the daemon.
//! - `lint`: rustfmt and clippy over the workspace, then over the eBPF crate with Debian's clippy.
//! - `test`: the one test command (CI runs only this): setup, lint, build, unit tests,
//!   a short fuzzing run, integration tests, the kernel matrix, the lab, and a quick benchmark
//!   smoke run.
//! - `bench exec`: what the attached daemon costs a non-JVM program that spawns processes,
//!   and whether the kernel loses events under a JVM spawn storm.
//! - `bench connect`: what the attached daemon costs loopback connects by a non-JVM program
//!   and by a JVM, and whether the kernel loses events or connect events under a JVM connect
//!   storm.
//! - `bench kernel`: the kernel programs' own run time per operation (the kernel's BPF
//!   statistics) for the detector, a bpftrace reference and empty programs on the same hooks.
//! - `kernels`: the kernel matrix: Debian's 5.10, 6.1 and 6.12 kernels booted in QEMU, each
//!   running a subset of the integration tests; prints a table.
//! - `package [--no-build]`: the Debian package (target/debian/detector_<version>_<arch>.deb).
//! - `image [--no-build]`: the OCI image of the Kubernetes DaemonSet (`localhost/detector:<version>`).
//! - `fuzz [TARGET] [--seconds N]`: the libFuzzer targets of the parsers of untrusted bytes
//!   (`fuzz/`), built with cargo-fuzz, each run for N seconds.
//! - `lab`: the Log4Shell lab (tests/lab/README.md): real attacks on a vulnerable JVM, with
//!   no detector, in monitor and in enforce mode, and benign programs; prints a table.

mod bench;
mod build;
mod fuzz;
mod image;
mod kernels;
mod lab;
mod lint;
mod package;
mod setup;
mod test;

use std::{
    env,
    ffi::{OsStr, OsString},
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};
// Shared with the lab and the integration tests.
use testkit::{command_line, fmt_duration, is_root};

/// Set-up, build, run, lint, test and benchmark tasks for the detector.
#[derive(Debug, Parser)]
#[command(name = "xtask", bin_name = "cargo xtask", version)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Install the build and test prerequisites on Debian 12 (apt packages, bpf-linker).
    ///
    /// Idempotent: installs only what is missing. Installing packages needs root.
    Setup,
    /// Build the daemon (release unless --debug) with the kernel programs embedded.
    Build {
        /// Build the debug profile instead of release.
        #[arg(long)]
        debug: bool,
    },
    /// Build the daemon in release mode, then run it in place of this process.
    ///
    /// Example: `cargo xtask run -- run --mode monitor`.
    Run {
        /// Arguments for `detector`, after `--`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Check formatting and run clippy (warnings are errors), host crates and eBPF crate.
    Lint,
    /// Build the Debian package: target/debian/detector_<version>_<arch>.deb (the binary,
    /// the systemd unit, /etc/detector/policy.toml as a conffile, maintainer scripts).
    ///
    /// Install it with `apt install ./target/debian/detector_<version>_<arch>.deb`; see
    /// docs/operations.md.
    Package {
        /// Package target/release/detector as it is instead of building it first.
        #[arg(long)]
        no_build: bool,
    },
    /// Build the OCI image the Kubernetes DaemonSet runs (deploy/kubernetes): the binary, its
    /// shared libraries, CA certificates and the default policy, imported into Podman as
    /// localhost/detector:<version> and saved to target/image/detector-<version>.oci.tar.
    ///
    /// Needs root and Podman (installed if missing); pulls nothing from a registry.
    Image {
        /// Use target/release/detector as it is instead of building it first.
        #[arg(long)]
        no_build: bool,
    },
    /// Run everything CI runs: setup, lint, build, unit tests, a short fuzzing run,
    /// integration tests, kernel matrix, lab, bench smoke run.
    ///
    /// Needs root: the integration tests and the benchmark load kernel programs.
    Test,
    /// Fuzz the parsers of untrusted bytes (ring-buffer records, JNDI lookups and HTTP
    /// requests, LDAP, JRMP, DNS, probe windows, policy files, recordings) with libFuzzer.
    ///
    /// Builds fuzz/ with cargo-fuzz (installed by `cargo xtask setup`), then runs each target
    /// (or TARGET) for --seconds; new inputs go to target/fuzz/work/, crashes to
    /// target/fuzz/work/artifacts/<target>/. Fails on a crash. See docs/development.md.
    Fuzz(fuzz::FuzzArgs),
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        bench: Bench,
    },
    /// The Log4Shell lab: real attacks on a vulnerable JVM over loopback, proven to work with
    /// no detector, reported in monitor mode and blocked in enforce mode; benign programs
    /// that must stay quiet. Prints a table; fails if an obligation is broken.
    ///
    /// Builds the daemon (unless --no-build) and the lab's runner (tests/lab), then runs the
    /// runner with the remaining arguments (`cargo xtask lab --help` lists them). Needs root
    /// (cgroups, kernel programs). See tests/lab/README.md.
    #[command(disable_help_flag = true)]
    Lab {
        /// `--no-build`, and the lab runner's options (`--scenario`, `--mode`, `--strict`,
        /// `--keep`, `--list`, `--help`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// The kernel matrix: boots Debian's 5.10, 6.1 and 6.12 kernels in QEMU (software
    /// emulation) with this machine's root file system and runs, in each, the integration
    /// tests that prove attach, shell report and kill, LDAP denial, jndi_probe and no loss.
    /// Prints a table; fails if any kernel cannot be fetched, booted or passes not every check.
    ///
    /// Needs root; kernels are cached in /var/cache/detector-kernels. See docs/development.md.
    Kernels(kernels::KernelsArgs),
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Cost of the attached daemon on process spawning by a non-JVM program, and kernel
    /// event loss under a JVM spawn storm (fails if any event was lost).
    Exec(bench::ExecArgs),
    /// Cost of the attached daemon on loopback connects by a non-JVM program and by a JVM,
    /// and kernel event loss under a JVM connect storm (fails if any event was lost, or if
    /// the daemon received fewer connect events than the JVM made connects).
    Connect(bench::ConnectArgs),
    /// BPF run time per operation (kernel.bpf_stats_enabled) of the detector, of a bpftrace
    /// JVM-lineage script and of empty programs on the detector's hooks, on four fixed
    /// workloads; compared with the goals of issue 8 (fails on errors, never on the goals).
    Kernel(bench::KernelArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ws = match Workspace::locate() {
        Ok(ws) => ws,
        Err(err) => return report(&err),
    };
    let result = match cli.task {
        Task::Setup => setup::setup(),
        Task::Build { debug } => build::build(&ws, debug).map(|_| ()),
        Task::Run { args } => build::run(&ws, &args),
        Task::Lint => lint::lint(&ws),
        Task::Package { no_build } => package::package(&ws, no_build).map(drop),
        Task::Image { no_build } => image::image(&ws, no_build).map(drop),
        Task::Test => test::test(&ws),
        Task::Fuzz(args) => fuzz::fuzz(
            &ws,
            args.target.as_deref(),
            args.seconds,
            if args.dev {
                fuzz::Profile::Dev
            } else {
                fuzz::Profile::Release
            },
        ),
        Task::Bench {
            bench: Bench::Exec(args),
        } => args
            .resolve()
            .and_then(|opts| bench::exec(&ws, &opts, true)),
        Task::Bench {
            bench: Bench::Connect(args),
        } => args
            .resolve()
            .and_then(|opts| bench::connect(&ws, &opts, true)),
        Task::Bench {
            bench: Bench::Kernel(args),
        } => args
            .resolve()
            .and_then(|opts| bench::kernel(&ws, &opts, true)),
        Task::Lab { args } => lab::lab(&ws, &args),
        Task::Kernels(args) => kernels::kernels(&ws, &args.resolve()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(&err),
    }
}

/// Prints an error once, with its chain of causes.
fn report(err: &anyhow::Error) -> ExitCode {
    eprintln!("error: {err:#}");
    ExitCode::FAILURE
}

// === impl Workspace ===

/// Where things are in the repository.
#[derive(Debug)]
struct Workspace {
    root: PathBuf,
    target_dir: PathBuf,
}

impl Workspace {
    fn locate() -> Result<Self> {
        // xtask/ is a direct child of the workspace root.
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("xtask's manifest directory has no parent")?
            .to_path_buf();
        // Same rule as cargo: CARGO_TARGET_DIR wins, relative to where we were started.
        let target_dir = match env::var_os("CARGO_TARGET_DIR") {
            Some(dir) => env::current_dir()
                .context("reading the current directory")?
                .join(dir),
            None => root.join("target"),
        };
        Ok(Self { root, target_dir })
    }

    /// The cargo that runs us (the workspace's rustup toolchain), for host-side builds.
    fn host_cargo(&self) -> Command {
        let mut cmd = Command::new(host_cargo_program());
        cmd.current_dir(&self.root);
        cmd
    }

    fn daemon_bin(&self, debug: bool) -> PathBuf {
        let profile = if debug { "debug" } else { "release" };
        self.target_dir.join(profile).join("detector")
    }
}

// === running commands ===

/// The cargo that runs us: `cargo run` sets CARGO to the toolchain's own binary.
fn host_cargo_program() -> OsString {
    env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"))
}

/// Runs `cmd` to completion, announcing it as a step of `task`; a non-zero exit is an error.
fn run_step(task: &str, cmd: &mut Command) -> Result<()> {
    let line = command_line(cmd);
    println!("==> {task}: {line}");
    let status = cmd.status().with_context(|| format!("starting `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Whether `program args` starts and exits 0, with its output discarded.
fn succeeds(program: impl AsRef<OsStr>, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_passes_daemon_flags_through() {
        let cli = Cli::try_parse_from(["xtask", "run", "--", "run", "--mode", "monitor"])
            .expect("parses");
        let Task::Run { args } = cli.task else {
            panic!("not run: {cli:?}")
        };
        assert_eq!(args, ["run", "--mode", "monitor"]);
    }

    #[test]
    fn lab_passes_its_arguments_to_the_runner() {
        let cli = Cli::try_parse_from([
            "xtask",
            "lab",
            "--scenario",
            "ldap-shell",
            "--no-build",
            "--mode",
            "none",
            "--help",
        ])
        .expect("parses");
        let Task::Lab { args } = cli.task else {
            panic!("not lab: {cli:?}")
        };
        assert_eq!(
            args,
            [
                "--scenario",
                "ldap-shell",
                "--no-build",
                "--mode",
                "none",
                "--help"
            ]
        );
    }

    #[test]
    fn fuzz_takes_a_target_and_seconds() {
        let cli =
            Cli::try_parse_from(["xtask", "fuzz", "ldap", "--seconds", "60"]).expect("parses");
        let Task::Fuzz(args) = cli.task else {
            panic!("not fuzz: {cli:?}")
        };
        assert_eq!(args.target.as_deref(), Some("ldap"));
        assert_eq!(args.seconds, 60);
        let cli = Cli::try_parse_from(["xtask", "fuzz"]).expect("parses");
        let Task::Fuzz(args) = cli.task else {
            panic!("not fuzz: {cli:?}")
        };
        assert_eq!(args.target, None);
    }

    #[test]
    fn kernels_take_series() {
        let cli = Cli::try_parse_from(["xtask", "kernels", "--kernel", "5.10", "--kernel", "6.12"])
            .expect("parses");
        let Task::Kernels(_) = cli.task else {
            panic!("not kernels: {cli:?}")
        };
        assert!(Cli::try_parse_from(["xtask", "kernels", "--kernel", "4.19"]).is_err());
    }
}
