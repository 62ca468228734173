//! The Log4Shell lab (tests/lab/README.md), launched by `cargo xtask lab`, which builds the
//! daemon and this runner and passes its arguments on. A real reproduction on
//! loopback - a vulnerable app whose logging performs JNDI lookups, rogue LDAP and RMI
//! servers handing out references to a class server, payload classes that run a shell, curl,
//! a reverse shell, python or a dropped binary, and a DNS-exfiltration variant - run once per
//! mode:
//!
//! - `none`: no detector; every attack must achieve code execution (or exfiltration);
//! - `monitor`: each attack must raise its expected rules and exactly one `exploit_chain`;
//! - `enforce`: no attack may get anywhere (the JNDI step is denied in the kernel);
//!
//! and benign scenarios must work and raise nothing high or critical.
//!
//! - scenarios.rs: the scenarios and their expectations, as data;
//! - servers.rs: compiling tests/lab/java, the server JVMs and what reached them;
//! - the per-run cgroup and `detector run` on it come from the shared harness (`testkit`);
//! - run.rs: one scenario in one mode, as an observation;
//! - report.rs: the verdicts and the table.

mod report;
mod run;
mod scenarios;
mod servers;

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    time::Instant,
};

use anyhow::{bail, ensure, Context as _, Result};
use clap::Parser as _;
use testkit::{cgroup, fmt_duration, is_root, java::require_on_path};

use self::{
    report::Outcome,
    run::Lab,
    scenarios::{column_name, Column, Mode, Scenario, COLUMNS, PENDING_RULES, SCENARIOS},
    servers::{Classes, Servers},
};

fn main() -> ExitCode {
    let args = LabArgs::parse();
    match args.resolve().and_then(|opts| lab(&opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Which modes to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    /// No detector: proves that every attack works.
    None,
    /// The detector reports: every attack raises its rules.
    Monitor,
    /// The detector blocks: no attack gets anywhere.
    Enforce,
    /// none, monitor and enforce, in that order.
    All,
}

/// The Log4Shell lab: real attacks on a vulnerable JVM over loopback, proven to work with
/// no detector, reported in monitor mode and blocked in enforce mode; benign programs that
/// must stay quiet. Prints a table; fails if an obligation is broken.
///
/// Needs root (cgroups, kernel programs). See tests/lab/README.md.
#[derive(Debug, clap::Parser)]
#[command(name = "lab", bin_name = "cargo xtask lab")]
pub struct LabArgs {
    /// Run only this scenario (repeat for several); `--list` names them all.
    #[arg(long = "scenario", value_name = "NAME")]
    scenarios: Vec<String>,
    /// Which modes to run the scenarios in.
    #[arg(long, value_enum, default_value_t = ModeArg::All)]
    mode: ModeArg,
    /// Also fail when a rule the detector does not raise yet is missing in monitor mode
    /// (jndi_probe, jvm_class_download, exploit_chain); without it they are only reported.
    #[arg(long)]
    strict: bool,
    /// The daemon binary (`cargo xtask lab` passes the one it built); default: DETECTOR_BIN,
    /// else target/release/detector.
    #[arg(long, value_name = "PATH")]
    detector: Option<PathBuf>,
    /// Keep the run directory (logs, alerts, canaries of every run) even when all passed.
    #[arg(long)]
    keep: bool,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
}

/// Validated `lab` options.
#[derive(Debug)]
pub struct LabOpts {
    scenarios: Vec<&'static Scenario>,
    modes: Vec<Column>,
    strict: bool,
    detector: Option<PathBuf>,
    keep: bool,
    list: bool,
}

impl LabArgs {
    pub fn resolve(self) -> Result<LabOpts> {
        let scenarios = if self.scenarios.is_empty() {
            SCENARIOS.iter().collect()
        } else {
            let mut chosen = Vec::new();
            for name in &self.scenarios {
                let Some(scenario) = scenarios::find(name) else {
                    let names: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
                    bail!(
                        "no scenario {name:?}; the scenarios are: {}",
                        names.join(", ")
                    );
                };
                chosen.push(scenario);
            }
            chosen
        };
        let modes = match self.mode {
            ModeArg::None => vec![None],
            ModeArg::Monitor => vec![Some(Mode::Monitor)],
            ModeArg::Enforce => vec![Some(Mode::Enforce)],
            ModeArg::All => COLUMNS.to_vec(),
        };
        Ok(LabOpts {
            scenarios,
            modes,
            strict: self.strict,
            detector: self.detector,
            keep: self.keep,
            list: self.list,
        })
    }
}

fn lab(opts: &LabOpts) -> Result<()> {
    if opts.list {
        for scenario in SCENARIOS {
            println!("{:<20} {}", scenario.name, scenario.what);
        }
        return Ok(());
    }
    ensure!(
        is_root(),
        "the lab runs each scenario in its own cgroup and loads the detector's kernel programs: \
         run it as root"
    );
    let started = Instant::now();
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("lab");
    let java = require_on_path("java")?;
    let javac = require_on_path("javac")?;
    let python = real_python()?;
    let detector = if opts.modes.iter().any(Option::is_some) {
        let bin = match &opts.detector {
            Some(bin) => bin.clone(),
            None => testkit::daemon::binary()?,
        };
        ensure!(
            bin.is_file(),
            "no detector binary at {}: run `cargo xtask build`",
            bin.display()
        );
        Some(bin)
    } else {
        None
    };

    cgroup::remove_stale();
    let dir = env::temp_dir().join(format!("detector-lab-{}", std::process::id()));
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    println!(
        "==> lab: compiling tests/lab/java (logs and runs in {})",
        dir.display()
    );
    let classes = Classes::compile(&javac, &sources.join("java"), &dir.join("classes"))?;
    println!("==> lab: starting the servers (LDAP :1389 :10389, RMI :1099, class :8180, DNS :5353, listener :4444, web :8280)");
    let servers = Servers::start(&java, &classes, &dir)?;

    let lab = Lab {
        dir: dir.clone(),
        policy: sources.join("policy.toml"),
        sources,
        classes: &classes,
        events: servers.log(),
        java,
        javac,
        python,
        detector,
    };
    let mut outcomes: Vec<Outcome> = Vec::new();
    for &mode in &opts.modes {
        for &scenario in &opts.scenarios {
            let observation = run::run(&lab, scenario, mode);
            let outcome = report::evaluate(scenario, mode, &observation);
            println!(
                "==> lab: [{}] {}: {} ({})",
                column_name(mode),
                scenario.name,
                outcome.cell,
                fmt_duration(outcome.took)
            );
            outcomes.push(outcome);
        }
    }
    drop(servers);

    println!();
    print!("{}", report::table(&outcomes, &opts.modes));
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| !o.passed(opts.strict)).collect();
    if !failed.is_empty() {
        println!("\nFailures:");
        for outcome in &failed {
            let mut reasons = outcome.failures.clone();
            if opts.strict && !outcome.missing.is_empty() {
                reasons.push(format!(
                    "--strict: no alert for {}",
                    outcome.missing.join(", ")
                ));
            }
            println!(
                "  ✗ [{}] {}: {}\n      logs: {}",
                column_name(outcome.mode),
                outcome.scenario.name,
                reasons.join("; "),
                outcome.dir.display()
            );
        }
    }
    if let Some(missing) = report::missing_summary(&outcomes) {
        println!(
            "\n{missing}: rules the detector does not raise yet (issue 4: {}); {}",
            PENDING_RULES.join(", "),
            if opts.strict {
                "failures with --strict"
            } else {
                "reported only, pass --strict to fail on them"
            }
        );
    }
    println!(
        "\n==> lab: {} run(s), {} failed, in {}",
        outcomes.len(),
        failed.len(),
        fmt_duration(started.elapsed())
    );
    if failed.is_empty() {
        if opts.keep {
            println!(
                "==> lab: logs, alerts and canaries kept in {}",
                dir.display()
            );
        } else {
            fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        Ok(())
    } else {
        bail!(
            "{} of {} lab run(s) failed; logs kept in {}",
            failed.len(),
            outcomes.len(),
            dir.display()
        )
    }
}

/// The interpreter behind `python3` (`sys.executable`): a pyenv shim is a bash script, whose
/// extra processes are not what the benign scenario means to run.
fn real_python() -> Result<PathBuf> {
    let python = require_on_path("python3")?;
    let output = Command::new(&python)
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    ensure!(
        output.status.success(),
        "{} failed: {output:?}",
        python.display()
    );
    let real = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    ensure!(
        Path::new(&real).is_file(),
        "python3 reports a missing executable {}",
        real.display()
    );
    Ok(real)
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::LabArgs;

    #[test]
    fn lab_takes_scenarios_and_a_mode() {
        let args = LabArgs::try_parse_from([
            "lab",
            "--scenario",
            "ldap-shell",
            "--scenario",
            "dns-exfil",
            "--mode",
            "none",
        ])
        .expect("parses");
        assert!(args.resolve().is_ok());
        let args = LabArgs::try_parse_from(["lab", "--scenario", "nope"]).expect("parses");
        assert!(args.resolve().is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory as _;
        LabArgs::command().debug_assert();
    }
}
