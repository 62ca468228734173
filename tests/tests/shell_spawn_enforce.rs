//! Enforce mode kills the shell a JVM spawns before it can act.
//!
//! A JVM runs `/bin/sh -c "echo pwned > CANARY"`. Proves: exactly one `jvm_shell_spawn` alert
//! with `action` "killed"; the JVM saw its child die of SIGKILL (exit code 137); the shell never
//! wrote the canary; no events were lost.

use integration_tests::{
    alert, assert_nothing_lost, require_kernel_support, Detector, JavaProgram, Mode, Policy,
    ScratchDir, TestCgroup,
};

#[test]
fn shell_spawned_by_jvm_is_killed_before_it_acts() {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new("shell-enforce");
    let scratch = ScratchDir::new("shell-enforce");
    let mut detector = Detector::with_policy(&Policy::new(Mode::Enforce), &cgroup);

    let canary = scratch.file("canary");
    let run = JavaProgram::new("SpawnShell")
        .arg(&canary)
        .current_dir(scratch.path())
        .run_in_cgroup(&cgroup);
    run.assert_success();
    assert_eq!(
        run.expect_child_exit("shell"),
        128 + 9,
        "the shell was not SIGKILLed:\n{run}"
    );

    let found = alert::expect_only_alert(&detector, alert::shell_spawn_from(run.jvm_pid()));
    alert::assert_shell_spawn_alert(&found, Mode::Enforce.expected_action());
    alert::assert_from_jvm(&found, &run, "SpawnShell");
    alert::assert_shell_process(&found);
    assert_eq!(
        alert::process_pid(&found),
        Some(run.expect_child_pid("shell")),
        "{}",
        alert::pretty(&found)
    );
    assert!(
        !canary.exists(),
        "the killed shell still wrote {}:\n{run}",
        canary.display()
    );

    assert_nothing_lost(&detector.stop());
}
