//! `detector`: catches and stops Log4Shell-style exploitation of JVMs with eBPF.
//!
//! Exit codes (docs/contract.md): 0 clean stop, 1 runtime failure, 2 bad usage or
//! bad config. Logs go to stderr; alerts to the sinks (stdout by default).

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand, ValueEnum};
use detector::{
    daemon::{self, RunOptions},
    policy::{Mode, Policy, PolicyError},
};

/// `detector --version`: what was built, from which commit, when, with which aya.
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\ncommit: ",
    env!("DETECTOR_GIT_COMMIT"),
    "\nbuilt: ",
    env!("DETECTOR_BUILD_DATE"),
    " (the commit's date, so a rebuild is identical)",
    "\naya: ",
    env!("DETECTOR_AYA_VERSION"),
    "\nkernel floor: 5.8 (BPF ring buffer, BTF tracepoints)"
);

/// eBPF runtime detector for Log4Shell-style exploitation of Java services.
///
/// Watches every JVM on the host and its descendants; reports (monitor) or kills in the
/// kernel (enforce) shells, interpreters, downloaders and dropped binaries they execute.
#[derive(Debug, Parser)]
#[command(name = "detector", version, long_version = LONG_VERSION, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format: `auto` is `journald` when stderr is the journal (under systemd), else
    /// `text`; `json` is one object per line. `DETECTOR_LOG` sets the level (default info).
    #[arg(long, value_enum, global = true, default_value = "auto")]
    log_format: detector::logging::LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load the kernel programs and watch JVMs until SIGINT or SIGTERM (needs root).
    ///
    /// Prints `detector ready` on stderr once every program is attached; alerts are JSON
    /// lines on stdout.
    Run {
        /// Policy file (TOML); without it the built-in default policy is used.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Override the policy's mode.
        #[arg(long, value_enum)]
        mode: Option<CliMode>,
        /// Track only JVMs started in this cgroup v2 directory (or below it). Default:
        /// the whole host (the cgroup v2 root).
        #[arg(long, value_name = "PATH")]
        cgroup: Option<PathBuf>,
        /// Also write every decoded kernel event to FILE (JSON lines) for `detector replay`.
        #[arg(long, value_name = "FILE")]
        record: Option<PathBuf>,
        /// Serve Prometheus metrics (/metrics), liveness (/healthz) and readiness (/readyz) on
        /// ADDR, e.g. `127.0.0.1:9464`. Default: not served.
        #[arg(long, value_name = "ADDR")]
        metrics: Option<std::net::SocketAddr>,
    },
    /// Validate a policy file: exit 0 with a one-line summary, or 2 with the error.
    CheckConfig {
        /// The policy file.
        file: PathBuf,
    },
    /// Run the rules over events recorded with `run --record`; print the alerts they raise.
    Replay {
        /// The recorded events (JSON lines).
        file: PathBuf,
        /// Policy file to judge them with; default: the built-in policy.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Watch the JVMs for a while and write a suggested allowlist policy (needs root).
    ///
    /// Prints `detector learning` on stderr once attached. After the duration, or on SIGINT
    /// or SIGTERM, writes the egress and the programs each application used as commented
    /// TOML for review (LDAP, RMI, shells and the like commented out with a warning), and
    /// a one-line summary on stderr.
    Learn {
        /// How long to watch: a number and a unit (s, m, h, d), e.g. `10m`, `1h30m`.
        #[arg(long, value_name = "D", value_parser = detector::learn::parse_duration)]
        duration: std::time::Duration,
        /// Learn only from JVMs started in this cgroup v2 directory (or below it). Default:
        /// the whole host.
        #[arg(long, value_name = "PATH")]
        cgroup: Option<PathBuf>,
        /// The policy to start from (its lists, and its allow rules, which the suggestion
        /// keeps); default: the built-in policy.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Where to write the suggested policy; default: stdout.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Show what this host allows: kernel, BTF, cgroup v2, each hook, the capabilities held;
    /// then load and attach every program for a moment (needs the same privileges as `run`).
    ///
    /// Exits 0 when `detector run` will start here, 1 when it will not (the FAIL lines say
    /// why).
    Doctor {
        /// One JSON object instead of the screen.
        #[arg(long)]
        json: bool,
        /// Skip loading the programs (only look).
        #[arg(long)]
        no_load: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum CliMode {
    /// Report only.
    Monitor,
    /// Kill offending programs in the kernel at exec.
    Enforce,
}

impl From<CliMode> for Mode {
    fn from(m: CliMode) -> Self {
        match m {
            CliMode::Monitor => Mode::Monitor,
            CliMode::Enforce => Mode::Enforce,
        }
    }
}

/// Failures, by exit code.
enum Failure {
    /// Exit 2.
    Config(PolicyError),
    /// Exit 1.
    Runtime(anyhow::Error),
}

fn load_policy(config: Option<&PathBuf>) -> Result<Policy, Failure> {
    match config {
        Some(path) => Policy::load(path).map_err(Failure::Config),
        None => Ok(Policy::builtin()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    detector::logging::init(cli.log_format);

    let result = match cli.command {
        Command::CheckConfig { file } => match Policy::load(&file) {
            Ok(policy) => {
                println!("{}: ok: {}", file.display(), policy.summary());
                Ok(())
            }
            Err(e) => Err(Failure::Config(e)),
        },
        Command::Doctor { json, no_load } => {
            let report = detector::doctor::examine(!no_load);
            if json {
                match serde_json::to_string_pretty(&report) {
                    Ok(text) => println!("{text}"),
                    Err(e) => eprintln!("detector: {e}"),
                }
            } else {
                print!("{}", report.text());
            }
            if report.runs {
                Ok(())
            } else {
                Err(Failure::Runtime(anyhow::anyhow!(
                    "this host cannot run the detector (see the FAIL lines)"
                )))
            }
        }
        Command::Replay { file, config } => load_policy(config.as_ref()).and_then(|policy| {
            daemon::replay(&file, policy)
                .map(|n| tracing::info!("{n} alerts"))
                .map_err(Failure::Runtime)
        }),
        Command::Run {
            config,
            mode,
            cgroup,
            record,
            metrics,
        } => load_policy(config.as_ref()).and_then(|mut policy| {
            if let Some(mode) = mode {
                policy.mode = mode.into();
            }
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Failure::Runtime(e.into()))?;
            runtime
                .block_on(daemon::run(RunOptions {
                    policy,
                    config,
                    mode: mode.map(Mode::from),
                    metrics,
                    cgroup,
                    record,
                }))
                .map_err(Failure::Runtime)
        }),
        Command::Learn {
            duration,
            cgroup,
            config,
            output,
        } => load_policy(config.as_ref()).and_then(|policy| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Failure::Runtime(e.into()))?;
            runtime
                .block_on(detector::learn::run(detector::learn::LearnOptions {
                    policy,
                    duration,
                    cgroup,
                    output,
                }))
                .map_err(Failure::Runtime)
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(e)) => {
            eprintln!("detector: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("detector: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
