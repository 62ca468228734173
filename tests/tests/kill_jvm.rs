//! With `[response] kill_jvm = true`, enforce mode takes down the compromised JVM itself.
//!
//! The JVM spawns `/bin/sh -c ...` and would then sleep 20 s. Proves: the alert says "killed",
//! and the JVM dies of SIGKILL within 5 s of the alert instead of finishing its sleep.

use std::time::Duration;

use integration_tests::{
    alert, assert_nothing_lost, require_kernel_support, Detector, JavaProgram, Mode, Policy,
    ScratchDir, TestCgroup, PROGRAM_TIMEOUT,
};

/// How soon after its alert the JVM must be gone.
const KILL_DEADLINE: Duration = Duration::from_secs(5);

#[test]
fn jvm_that_spawned_a_shell_is_killed() {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new("kill-jvm");
    let scratch = ScratchDir::new("kill-jvm");
    let mut detector = Detector::with_policy(&Policy::new(Mode::Enforce).kill_jvm(true), &cgroup);

    let canary = scratch.file("canary");
    let mut jvm = JavaProgram::new("SpawnShell")
        .arg(&canary)
        .arg("20")
        .current_dir(scratch.path())
        .spawn_in_cgroup(&cgroup);
    let jvm_pid = u64::from(jvm.pid());

    // The wait includes JVM start-up, hence the program timeout rather than the alert timeout.
    detector.wait_for_alerts(alert::shell_spawn_from(jvm_pid), 1, PROGRAM_TIMEOUT);
    let Some(run) = jvm.wait_timeout(KILL_DEADLINE) else {
        panic!(
            "the JVM is still alive {KILL_DEADLINE:?} after the alert\nstdout so far:\n{}\n{}",
            jvm.stdout_so_far(),
            detector.logs()
        );
    };
    assert_eq!(
        run.killed_by(),
        Some(libc::SIGKILL),
        "the JVM was not SIGKILLed:\n{run}"
    );
    assert_eq!(
        run.value("slept"),
        None,
        "the JVM finished its sleep:\n{run}"
    );

    let found = alert::expect_only_alert(&detector, alert::shell_spawn_from(jvm_pid));
    alert::assert_shell_spawn_alert(&found, Mode::Enforce.expected_action());
    alert::assert_from_jvm(&found, &run, "SpawnShell");
    alert::assert_shell_process(&found);

    assert_nothing_lost(&detector.stop());
}
