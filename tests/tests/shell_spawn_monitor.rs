//! Monitor mode reports the Log4Shell payload shape and lets it run.
//!
//! A JVM runs `/bin/sh -c "echo pwned > CANARY"` through `Runtime.exec` (jspawnhelper on JDK 17).
//! Proves: exactly one `jvm_shell_spawn` alert, with every contract field well-formed
//! (`schema`, RFC 3339 `time`, `severity` high/critical, `action` "reported", ...), naming the
//! shell as `process` (same pid the JVM saw) and the JVM as `jvm`; the shell still ran (the
//! canary exists); no events were lost.

use integration_tests::{
    alert, assert_nothing_lost, require_kernel_support, Detector, JavaProgram, Mode, Policy,
    ScratchDir, TestCgroup,
};

#[test]
fn shell_spawned_by_jvm_is_reported_and_runs() {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new("shell-monitor");
    let scratch = ScratchDir::new("shell-monitor");
    let mut detector = Detector::with_policy(&Policy::new(Mode::Monitor), &cgroup);

    let canary = scratch.file("canary");
    let run = JavaProgram::new("SpawnShell")
        .arg(&canary)
        .current_dir(scratch.path())
        .run_in_cgroup(&cgroup);
    run.assert_success();
    assert_eq!(
        run.expect_child_exit("shell"),
        0,
        "the shell failed:\n{run}"
    );

    let found = alert::expect_only_alert(&detector, alert::shell_spawn_from(run.jvm_pid()));
    alert::assert_shell_spawn_alert(&found, Mode::Monitor.expected_action());
    alert::assert_from_jvm(&found, &run, "SpawnShell");
    alert::assert_shell_process(&found);
    assert_eq!(
        alert::process_pid(&found),
        Some(run.expect_child_pid("shell")),
        "{}",
        alert::pretty(&found)
    );
    assert!(
        alert::process_mentions(&found, &canary.to_string_lossy()),
        "the alert's argv does not carry the shell command:\n{}",
        alert::pretty(&found)
    );
    assert!(
        canary.exists(),
        "monitor mode must not stop the shell, but {} is missing:\n{run}",
        canary.display()
    );

    assert_nothing_lost(&detector.stop());
}
