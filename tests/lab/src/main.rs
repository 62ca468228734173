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
//! and benign scenarios must work and raise nothing high or critical. The victim runs the
//! genuine log4j-core 2.14.1 (testkit's `log4j`); each attack runs in monitor and enforce
//! mode twice, with the victim JVM started after the detector and before it.
//!
//! - scenarios.rs: the scenarios and their expectations, as data;
//! - servers.rs: compiling tests/lab/java, the jpackage app image, the server JVMs and what
//!   reached them;
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
    scenarios::{
        Column, Kind, Mode, Scenario, Start, Variant, COLUMNS, OWN_RESOLVER, PENDING_RULES,
        SCENARIOS,
    },
    servers::{AppImage, Classes, Servers},
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

/// When the victim JVMs of the attacks start, relative to the detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StartArg {
    /// After the detector (the kernel sees the JVM's exec).
    After,
    /// Before the detector (it finds the JVM in /proc).
    Before,
    /// Both, one run each.
    Both,
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
    /// When the attacks' victim JVMs start in monitor and enforce mode: after the detector,
    /// before it, or both (benign programs always start after it).
    #[arg(long, value_enum, default_value_t = StartArg::Both)]
    start: StartArg,
    /// Also fail when a pending rule (`PENDING_RULES`: none at present) is missing in monitor
    /// mode; without it they are only reported.
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
    columns: Vec<Column>,
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
        let columns = COLUMNS
            .into_iter()
            .filter(|c| match self.mode {
                ModeArg::None => c.mode.is_none(),
                ModeArg::Monitor => c.mode == Some(Mode::Monitor),
                ModeArg::Enforce => c.mode == Some(Mode::Enforce),
                ModeArg::All => true,
            })
            .filter(|c| match (c.mode, self.start) {
                (None, _) | (_, StartArg::Both) => true,
                (Some(_), StartArg::After) => c.start == Start::After,
                (Some(_), StartArg::Before) => c.start == Start::Before,
            })
            .collect();
        Ok(LabOpts {
            scenarios,
            columns,
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
    let detector = if opts.columns.iter().any(|c| c.mode.is_some()) {
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
    let log4j = testkit::log4j::ensure().context("the genuine log4j 2.14.1")?;
    println!(
        "==> lab: compiling tests/lab/java against log4j 2.14.1 (logs and runs in {})",
        dir.display()
    );
    let classes = Classes::compile(&javac, &sources.join("java"), &dir.join("classes"), &log4j)?;
    let wants = |variant: Variant| {
        opts.scenarios
            .iter()
            .any(|s| matches!(&s.kind, Kind::Attack(a) if a.variant == variant))
    };
    // Packaging runs while the servers start.
    let packaging = wants(Variant::Jpackage).then(|| {
        let (classes, dir) = (classes.clone(), dir.clone());
        std::thread::spawn(move || {
            AppImage::build(&classes, &log4j, &dir, &run::VULNERABLE_JVM_FLAGS)
        })
    });
    println!("==> lab: starting the servers (LDAP :1389 :10389, RMI :1099, class :8180, DNS :5353 and {OWN_RESOLVER}:53, listener :4444, web :8280)");
    let servers = Servers::start(&java, &classes, &dir)?;
    let app_image = match packaging {
        Some(build) => Some(
            build
                .join()
                .map_err(|_| anyhow::anyhow!("packaging the app image panicked"))??,
        ),
        None => None,
    };

    let lab = Lab {
        dir: dir.clone(),
        policy: sources.join("policy.toml"),
        sources,
        classes: &classes,
        app_image: app_image.as_ref(),
        own_resolver: servers.own_resolver(),
        events: servers.log(),
        java,
        javac,
        python,
        detector,
    };
    let mut outcomes: Vec<Outcome> = Vec::new();
    let plan: Vec<(Column, &'static Scenario)> = opts
        .columns
        .iter()
        .flat_map(|&c| {
            opts.scenarios
                .iter()
                .filter(move |s| c.runs(s))
                .map(move |&s| (c, s))
        })
        .collect();
    let mut early = None;
    for (i, &(column, scenario)) in plan.iter().enumerate() {
        let this = early.take();
        // The next victim to predate its detector starts while this run goes on.
        early = plan
            .get(i + 1)
            .and_then(|&(c, s)| run::start_early(&lab, s, c));
        let observation = run::run(&lab, scenario, column, this);
        let outcome = report::evaluate(scenario, column, &observation);
        println!(
            "==> lab: [{}] {}: {} ({})",
            column.name(),
            scenario.name,
            outcome.cell,
            fmt_duration(outcome.took)
        );
        outcomes.push(outcome);
    }
    drop(servers);

    println!();
    print!("{}", report::table(&outcomes, &opts.columns));
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
                outcome.column.name(),
                outcome.scenario.name,
                reasons.join("; "),
                outcome.dir.display()
            );
        }
    }
    if let Some(missing) = report::missing_summary(&outcomes) {
        println!(
            "\n{missing}: rules the detector does not raise yet ({}); {}",
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

    use super::{LabArgs, COLUMNS};

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
        let opts = args.resolve().expect("resolves");
        assert_eq!(opts.columns, [COLUMNS[0]]);
        let args = LabArgs::try_parse_from(["lab", "--mode", "enforce", "--start", "before"])
            .expect("parses");
        let opts = args.resolve().expect("resolves");
        assert_eq!(opts.columns, [COLUMNS[4]]);
        let args = LabArgs::try_parse_from(["lab", "--scenario", "nope"]).expect("parses");
        assert!(args.resolve().is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory as _;
        LabArgs::command().debug_assert();
    }
}
