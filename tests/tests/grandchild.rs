//! A shell started by a shell is still charged to the JVM at the top.
//!
//! The JVM runs `sh -c 'echo outer-pid $$; sh -c "echo inner-pid $$; echo pwned > CANARY"; ...'`;
//! the inner shell is a real fork of the outer one (different pids, checked). Proves: both
//! shells alert; the inner shell's alert names the JVM as `jvm.pid` although its parent is the
//! outer shell, and its `ancestry` lists the outer shell before the JVM.

use integration_tests::{
    alert, assert_nothing_lost, require_kernel_support, Detector, JavaProgram, Mode, Policy,
    ScratchDir, TestCgroup, ALERT_TIMEOUT, SETTLE_TIME,
};

#[test]
fn grandchild_shell_is_attributed_to_the_jvm() {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new("grandchild");
    let scratch = ScratchDir::new("grandchild");
    let mut detector = Detector::with_policy(&Policy::new(Mode::Monitor), &cgroup);

    let canary = scratch.file("canary");
    let run = JavaProgram::new("Grandchild")
        .arg(&canary)
        .current_dir(scratch.path())
        .run_in_cgroup(&cgroup);
    run.assert_success();
    assert_eq!(
        run.expect_child_exit("shell"),
        0,
        "the shells failed:\n{run}"
    );
    assert!(canary.exists(), "the inner shell did not run:\n{run}");
    let reported = |what: &str| -> u64 {
        let prefix = format!("{what} ");
        let line = run
            .child_output("shell")
            .into_iter()
            .find_map(|l| l.strip_prefix(prefix.as_str()));
        line.and_then(|pid| pid.parse().ok())
            .unwrap_or_else(|| panic!("no `{what} N` from the shells:\n{run}"))
    };
    let (outer, inner) = (reported("outer-pid"), reported("inner-pid"));
    assert_eq!(
        outer,
        run.expect_child_pid("shell"),
        "the outer shell is not the JVM's child:\n{run}"
    );
    assert_ne!(
        outer, inner,
        "the outer shell exec'd the inner one in place; no grandchild:\n{run}"
    );

    let jvm = run.jvm_pid();
    detector.wait_for_alerts(alert::shell_spawn_from(jvm), 2, ALERT_TIMEOUT);
    let alerts = detector.alerts_after(SETTLE_TIME);
    assert_eq!(
        alerts.len(),
        2,
        "expected one alert per shell:\n{}",
        detector.logs()
    );
    for found in &alerts {
        alert::assert_shell_spawn_alert(found, Mode::Monitor.expected_action());
        alert::assert_from_jvm(found, &run, "Grandchild");
        alert::assert_shell_process(found);
    }
    let by_pid = |pid: u64| {
        alerts
            .iter()
            .find(|a| alert::process_pid(a) == Some(pid))
            .unwrap_or_else(|| panic!("no alert for pid {pid}:\n{}", alert::list(&alerts)))
    };
    by_pid(outer);
    let inner_alert = by_pid(inner);

    let ancestry = alert::ancestry_pids(inner_alert);
    let position = |pid: u64| ancestry.iter().position(|&p| p == pid);
    match (position(outer), position(jvm)) {
        (Some(o), Some(j)) => assert!(
            o < j,
            "ancestry is not nearest-first:\n{}",
            alert::pretty(inner_alert)
        ),
        _ => panic!(
            "ancestry lacks the outer shell {outer} or the JVM {jvm}:\n{}",
            alert::pretty(inner_alert)
        ),
    }

    assert_nothing_lost(&detector.stop());
}
