//! A JVM that was running before the detector started is tracked all the same: its shell
//! is killed before it acts.
//!
//! The JVM starts first and waits; the detector starts (seeding the JVM from /proc into the
//! kernel's lineage table), then the JVM runs `/bin/sh -c "echo pwned > CANARY"`. Proves:
//! the daemon seeded the JVM; one `jvm_shell_spawn` alert, "killed", naming the JVM; the
//! shell died of SIGKILL and never wrote the canary; nothing was lost.

use integration_tests::{
    alert, assert_nothing_lost, require_kernel_support, Detector, JavaProgram, Mode, Policy,
    ScratchDir, TestCgroup,
};

#[test]
fn shell_of_a_jvm_started_before_the_detector_is_killed() {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new("seeded-enforce");
    let scratch = ScratchDir::new("seeded-enforce");
    let canary = scratch.file("canary");
    let go = scratch.file("go");

    let jvm = JavaProgram::new("WaitThenShell")
        .arg(&canary)
        .arg(&go)
        .current_dir(scratch.path())
        .spawn_in_cgroup(&cgroup);
    jvm.wait_until_started();

    let mut detector = Detector::with_policy(&Policy::new(Mode::Enforce), &cgroup);
    let run = jvm.go(&go);
    run.assert_shell_killed(&canary);

    let found = alert::expect_only_alert(&detector, alert::shell_spawn_from(run.jvm_pid()));
    alert::assert_shell_spawn_alert(&found, Mode::Enforce.expected_action());
    let stats = detector.stop();
    assert!(
        stats["jvms_seeded"].as_u64().unwrap_or(0) >= 1,
        "the daemon did not seed the running JVM: {stats}"
    );
    assert_nothing_lost(&stats);
}
