//! The shipped systemd unit, `deploy/systemd/detector.service`:
//! - `systemd-analyze verify` finds nothing wrong with it (offline, in a scratch root holding
//!   the unit, the binary as `/usr/bin/detector` and this host's system units);
//! - its exposure score (`systemd-analyze security`) stays at or below the documented 3.0;
//! - it runs the daemon as `Type=notify` with a watchdog the daemon can serve, with the same
//!   capabilities ambient and in the bounding set, and without new privileges;
//! - with exactly those capabilities, as an unprivileged user (`setpriv`, as systemd's
//!   `DynamicUser=` would), the daemon starts and kills a JVM's shell in enforce mode.

use std::{path::PathBuf, process::Command};

use integration_tests::{
    alert, assert_nothing_lost, detector_binary, find_on_path, require_kernel_support,
    workspace_root, Detector, JavaProgram, Mode, Policy, ScratchDir, TestCgroup,
};

fn unit_text() -> String {
    let path = workspace_root().join("deploy/systemd/detector.service");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The value of `Key=` in the unit (the last assignment, as systemd reads it).
fn setting(unit: &str, key: &str) -> Option<String> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .next_back()
        .map(str::to_owned)
}

fn systemd_analyze() -> PathBuf {
    find_on_path("systemd-analyze").unwrap_or_else(|| {
        panic!("systemd-analyze (Debian package systemd) is needed: run `cargo xtask setup`")
    })
}

/// The programs of the unit's `Exec*=` lines (`ExecStart`, `ExecReload`, ...), as absolute
/// paths.
fn exec_programs(unit: &str) -> Vec<String> {
    unit.lines()
        .filter(|l| l.starts_with("Exec"))
        .filter_map(|l| l.split_once('=')?.1.split_whitespace().next())
        .map(|p| p.trim_start_matches(['-', '@', ':', '+', '!']).to_owned())
        .filter(|p| p.starts_with('/'))
        .collect()
}

/// A scratch root: the unit, every program its `Exec*=` lines run (the detector under test as
/// `/usr/bin/detector`, the others from this host), the host's system units.
fn scratch_root() -> ScratchDir {
    let root = ScratchDir::new("unit-root");
    let r = root.path();
    for dir in ["etc/systemd/system", "usr/lib/systemd"] {
        std::fs::create_dir_all(r.join(dir)).expect("scratch root dirs");
    }
    let unit = unit_text();
    let programs = exec_programs(&unit);
    assert!(
        programs.iter().any(|p| p == "/usr/bin/detector"),
        "{programs:?}"
    );
    for program in programs {
        let source = if program == "/usr/bin/detector" {
            detector_binary()
        } else {
            PathBuf::from(&program)
        };
        let target = r.join(program.trim_start_matches('/'));
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).expect("scratch root dirs");
        }
        std::fs::copy(&source, &target)
            .unwrap_or_else(|e| panic!("copying {} for the unit: {e}", source.display()));
    }
    std::fs::write(r.join("etc/systemd/system/detector.service"), unit).expect("writing the unit");
    let copied = Command::new("cp")
        .arg("-a")
        .arg("/lib/systemd/system")
        .arg(r.join("usr/lib/systemd/"))
        .status()
        .expect("cp runs");
    assert!(copied.success(), "copying /lib/systemd/system failed");
    root
}

#[test]
fn the_unit_verifies_and_is_hardened() {
    let root = scratch_root();
    let out = Command::new(systemd_analyze())
        .arg("verify")
        .arg(format!("--root={}", root.path().display()))
        .args(["--man=no", "detector.service"])
        .output()
        .expect("systemd-analyze runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {said}"
    );

    let out = Command::new(systemd_analyze())
        .args(["security", "--offline=true", "--no-pager"])
        .arg(format!("--root={}", root.path().display()))
        .arg("detector.service")
        .output()
        .expect("systemd-analyze security runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| l.split("exposure level for detector.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no exposure score in:\n{text}"));
    assert!(score <= 3.0, "exposure {score} > 3.0:\n{text}");
    eprintln!("systemd-analyze security: exposure {score}");

    let unit = unit_text();
    assert_eq!(setting(&unit, "Type").as_deref(), Some("notify"));
    assert_eq!(setting(&unit, "NoNewPrivileges").as_deref(), Some("yes"));
    let watchdog = setting(&unit, "WatchdogSec").expect("WatchdogSec");
    let secs: u64 = watchdog
        .trim_end_matches('s')
        .parse()
        .expect("WatchdogSec in seconds");
    // The daemon pings from a one-second tick and warns below 3 s (`service::MIN_WATCHDOG`);
    // a unit must leave it room for a busy second or two.
    assert!(
        secs >= 10,
        "WatchdogSec={watchdog} leaves a one-second tick too little room"
    );
    assert_eq!(
        setting(&unit, "AmbientCapabilities"),
        setting(&unit, "CapabilityBoundingSet"),
        "the ambient set and the bounding set differ"
    );
}

/// The unit's capabilities as setpriv writes them: `-all,+bpf,+perfmon,...`.
fn setpriv_caps(unit: &str) -> String {
    let caps = setting(unit, "AmbientCapabilities").expect("AmbientCapabilities");
    let names: Vec<String> = caps
        .split_whitespace()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_ascii_lowercase()))
        .collect();
    assert!(!names.is_empty(), "no capabilities in the unit");
    format!("-all,{}", names.join(","))
}

#[test]
fn with_only_the_units_capabilities_it_kills_a_jvms_shell() {
    if !require_kernel_support() {
        return;
    }
    let caps = setpriv_caps(&unit_text());
    let cgroup = TestCgroup::new("unit-capabilities");
    let scratch = ScratchDir::new("unit-capabilities");
    let policy = Policy::new(Mode::Enforce);
    let mut detector = Detector::start_with(&policy.to_toml(), policy.mode(), &cgroup, |l| {
        l.wrapped_in([
            "setpriv".to_owned(),
            "--reuid=65534".to_owned(),
            "--regid=65534".to_owned(),
            "--clear-groups".to_owned(),
            format!("--inh-caps={caps}"),
            format!("--ambient-caps={caps}"),
            format!("--bounding-set={caps}"),
            "--no-new-privs".to_owned(),
            "--".to_owned(),
        ])
    });
    // It really runs unprivileged: not as root, with no capability beyond the unit's.
    let logs = detector.logs();
    assert!(!logs.contains("running without"), "{logs}");

    let canary = scratch.file("canary");
    let run = JavaProgram::new("SpawnShell")
        .arg(&canary)
        .current_dir(scratch.path())
        .run_in_cgroup(&cgroup);
    run.assert_success();
    assert_eq!(run.expect_child_exit("shell"), 128 + 9, "{run}");
    let found = alert::expect_only_alert(&detector, alert::shell_spawn_from(run.jvm_pid()));
    alert::assert_shell_spawn_alert(&found, Mode::Enforce.expected_action());
    assert!(!canary.exists(), "the killed shell wrote its canary");
    assert_nothing_lost(&detector.stop());
}
