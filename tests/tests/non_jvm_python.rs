//! Shells spawned by something other than a JVM are not this rule's business.
//!
//! Inside the test cgroup, `python3 -c 'import subprocess; subprocess.run(["/bin/sh", "-c", ...])'`
//! spawns a shell; then a marker JVM spawns one. Proves: the only alert is the marker JVM's,
//! so the detector was watching the cgroup and let the Python-spawned shell pass.

use std::process::Command;

use integration_tests::{
    alert, assert_nothing_lost, python3, require_kernel_support, spawn_in_cgroup, Detector,
    JavaProgram, Mode, Policy, ScratchDir, TestCgroup, PROGRAM_TIMEOUT,
};

#[test]
fn shell_spawned_by_python_raises_no_alert() {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new("non-jvm-python");
    let scratch = ScratchDir::new("non-jvm-python");
    let mut detector = Detector::with_policy(&Policy::new(Mode::Monitor), &cgroup);

    let canary = scratch.file("python-canary");
    let script = format!(
        "import subprocess; subprocess.run(['/bin/sh', '-c', \"echo ran > '{}'\"], check=True)",
        canary.display()
    );
    let mut python = Command::new(python3());
    python.args(["-c", &script]).current_dir(scratch.path());
    let run = spawn_in_cgroup(python, &cgroup).wait(PROGRAM_TIMEOUT);
    run.assert_success();
    assert!(canary.exists(), "python's shell did not run:\n{run}");

    let marker = scratch.file("marker");
    let marker_run = JavaProgram::new("SpawnShell")
        .arg(&marker)
        .current_dir(scratch.path())
        .run_in_cgroup(&cgroup);
    marker_run.assert_success();
    assert!(
        marker.exists(),
        "the marker shell did not run:\n{marker_run}"
    );

    let found = alert::expect_only_alert(&detector, alert::shell_spawn_from(marker_run.jvm_pid()));
    alert::assert_shell_spawn_alert(&found, Mode::Monitor.expected_action());
    alert::assert_from_jvm(&found, &marker_run, "SpawnShell");
    assert_eq!(
        alert::process_pid(&found),
        Some(marker_run.expect_child_pid("shell")),
        "{}",
        alert::pretty(&found)
    );

    assert_nothing_lost(&detector.stop());
}
