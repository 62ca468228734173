//! A JVM running an ordinary program is not an incident.
//!
//! `new ProcessBuilder("/usr/bin/id").start()`: `id` is no shell, interpreter or downloader and
//! lives outside the writable dirs. The same JVM then runs the marker shell. Proves: the only
//! alert is the marker's — so the JVM was being tracked while `id` ran, and `id` raised nothing.

use integration_tests::{
    alert, assert_nothing_lost, require_kernel_support, Detector, JavaProgram, Mode, Policy,
    ScratchDir, TestCgroup,
};

#[test]
fn ordinary_child_of_jvm_raises_no_alert() {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new("processbuilder-benign");
    let scratch = ScratchDir::new("processbuilder-benign");
    let mut detector = Detector::with_policy(&Policy::new(Mode::Monitor), &cgroup);

    let marker = scratch.file("marker");
    let run = JavaProgram::new("SpawnId")
        .arg(&marker)
        .current_dir(scratch.path())
        .run_in_cgroup(&cgroup);
    run.assert_success();
    assert_eq!(run.expect_child_exit("id"), 0, "id failed:\n{run}");
    assert!(
        run.child_output("id").iter().any(|l| l.starts_with("uid=")),
        "id printed nothing:\n{run}"
    );
    assert_eq!(
        run.expect_child_exit("marker"),
        0,
        "the marker shell failed:\n{run}"
    );
    assert!(marker.exists(), "the marker shell did not run:\n{run}");

    let marker_pid = run.expect_child_pid("marker");
    let found = alert::expect_only_alert(&detector, |a| {
        alert::shell_spawn_from(run.jvm_pid())(a) && alert::process_pid(a) == Some(marker_pid)
    });
    alert::assert_shell_spawn_alert(&found, Mode::Monitor.expected_action());
    alert::assert_from_jvm(&found, &run, "SpawnId");
    alert::assert_shell_process(&found);

    assert_nothing_lost(&detector.stop());
}
