//! SIGHUP (`systemctl reload`) takes a new policy without detaching anything, refuses a bad
//! one and keeps the running one, while a JVM keeps starting programs.
//!
//! Enforce mode; policy A allows no shell, policy B allows `/bin/sh` for every JVM. While a
//! JVM starts `/bin/true` in a loop (a stream of lineage events):
//! 1. under A, a JVM's shell is killed (`jvm_shell_spawn`, killed);
//! 2. B is written and SIGHUP sent: the daemon says it reloaded; a JVM's shell now runs
//!    (writes its canary) and raises nothing;
//! 3. a policy with an error is written and SIGHUP sent: refused, with the file, line and key;
//!    the shell still runs (B is still enforced);
//! 4. A again: the shell is killed again.
//!
//! At the end the stats line counts 2 reloads and 1 failure, the loop's children all exited
//! 0, and no event of any kind was lost.

use std::time::Duration;

use integration_tests::{
    alert, assert_nothing_lost, require_kernel_support, Detector, JavaProgram, Mode, Policy,
    ScratchDir, TestCgroup, PROGRAM_TIMEOUT,
};

const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);

fn shell(
    cgroup: &TestCgroup,
    scratch: &ScratchDir,
    name: &str,
) -> (integration_tests::ProgramRun, bool) {
    let canary = scratch.file(name);
    let run = JavaProgram::new("SpawnShell")
        .arg(&canary)
        .current_dir(scratch.path())
        .run_in_cgroup(cgroup);
    run.assert_success();
    (run, canary.exists())
}

#[test]
fn sighup_reloads_a_good_policy_and_refuses_a_bad_one_without_losing_events() {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new("reload");
    let scratch = ScratchDir::new("reload");
    let strict = Policy::new(Mode::Enforce);
    let lenient = Policy::new(Mode::Enforce).allow(None, &["/bin/sh", "sh"]);
    let mut detector = Detector::with_policy(&strict, &cgroup);
    let config = detector.config_path();

    let storm = JavaProgram::new("SpawnLoop")
        .arg("15000")
        .spawn_in_cgroup(&cgroup);

    // 1. Policy A.
    let (run, wrote) = shell(&cgroup, &scratch, "canary-1");
    assert_eq!(run.expect_child_exit("shell"), 128 + 9, "{run}");
    assert!(!wrote, "A allows no shell");
    let killed =
        detector.wait_for_alerts(alert::shell_spawn_from(run.jvm_pid()), 1, RELOAD_TIMEOUT);
    assert_eq!(alert::action(&killed[0]), Some("killed"));

    // 2. Policy B.
    std::fs::write(&config, lenient.to_toml()).expect("writing policy B");
    detector.signal(libc::SIGHUP);
    detector.wait_for_log("reloaded ", 1, RELOAD_TIMEOUT);
    let (run, wrote) = shell(&cgroup, &scratch, "canary-2");
    assert_eq!(run.expect_child_exit("shell"), 0, "{run}");
    assert!(
        wrote,
        "B allows /bin/sh, yet the shell did not write its canary:\n{run}"
    );

    // 3. A broken policy: refused, B stays.
    std::fs::write(
        &config,
        format!("{}\n[exec]\nshells = \"not a list\"\n", lenient.to_toml()),
    )
    .expect("writing a broken policy");
    detector.signal(libc::SIGHUP);
    detector.wait_for_log(
        "reload refused, the running policy stays",
        1,
        RELOAD_TIMEOUT,
    );
    let logs = detector.logs();
    assert!(
        logs.contains("policy.toml:") && logs.contains("shells"),
        "{logs}"
    );
    let (run, wrote) = shell(&cgroup, &scratch, "canary-3");
    assert_eq!(run.expect_child_exit("shell"), 0, "{run}");
    assert!(
        wrote,
        "after a refused reload B must still be in force:\n{run}"
    );

    // 4. Policy A again.
    std::fs::write(&config, strict.to_toml()).expect("writing policy A");
    detector.signal(libc::SIGHUP);
    detector.wait_for_log("reloaded ", 2, RELOAD_TIMEOUT);
    let (run, wrote) = shell(&cgroup, &scratch, "canary-4");
    assert_eq!(run.expect_child_exit("shell"), 128 + 9, "{run}");
    assert!(!wrote, "A is back: the shell must be killed");

    let storm = storm.wait(PROGRAM_TIMEOUT);
    storm.assert_success();
    assert_eq!(storm.value("failed"), Some("0"), "{storm}");
    let spawned: u64 = storm.expect_number("spawned").try_into().unwrap_or(0);
    assert!(
        spawned > 50,
        "the loop started only {spawned} programs:\n{storm}"
    );

    // Only the two kills raised alerts: the allowed shells did not.
    let alerts = detector.alerts_after(integration_tests::SETTLE_TIME);
    assert_eq!(alerts.len(), 2, "{}", detector.logs());
    let stats = detector.stop();
    assert_eq!(stats["reloads"], 2, "{stats}");
    assert_eq!(stats["reload_failures"], 1, "{stats}");
    assert_nothing_lost(&stats);
}
