//! An `[[exec.allow]]` rule lets one application run one program, and nothing more.
//!
//! Policy: `app = "AllowedChild"`, `programs = ["/usr/bin/perl"]`. The JVM runs
//! `/usr/bin/perl -e 'open(F,">CANARY");print F "ok"'` (perl is an interpreter, so it would
//! alert without the rule), then the marker shell, which the rule does not cover.
//! Proves, in monitor and in enforce mode: perl raises no alert and is not killed (the canary
//! says "ok"); the marker from the same JVM still alerts (and is killed in enforce mode), so the
//! JVM was tracked and the rule is no blanket pass.

use integration_tests::{
    alert, assert_nothing_lost, require_kernel_support, Detector, JavaProgram, Mode, Policy,
    ScratchDir, TestCgroup,
};

fn allowed_perl_is_left_alone(mode: Mode) {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new(&format!("allowlisted-{}", mode.as_str()));
    let scratch = ScratchDir::new(&format!("allowlisted-{}", mode.as_str()));
    let policy = Policy::new(mode).allow(Some("AllowedChild"), &["/usr/bin/perl"]);
    let mut detector = Detector::with_policy(&policy, &cgroup);

    let canary = scratch.file("canary");
    let marker = scratch.file("marker");
    let run = JavaProgram::new("AllowedChild")
        .arg(&canary)
        .arg(&marker)
        .current_dir(scratch.path())
        .run_in_cgroup(&cgroup);
    run.assert_success();
    assert_eq!(
        run.expect_child_exit("perl"),
        0,
        "perl did not run to completion:\n{run}"
    );
    let written = std::fs::read_to_string(&canary).unwrap_or_default();
    assert_eq!(
        written,
        "ok",
        "perl did not write {}:\n{run}",
        canary.display()
    );
    match mode {
        Mode::Monitor => {
            assert_eq!(
                run.expect_child_exit("marker"),
                0,
                "the marker shell failed:\n{run}"
            );
            assert!(marker.exists(), "the marker shell did not run:\n{run}");
        }
        Mode::Enforce => {
            assert_eq!(
                run.expect_child_exit("marker"),
                128 + 9,
                "the marker shell was not SIGKILLed:\n{run}"
            );
            assert!(
                !marker.exists(),
                "the killed marker shell still wrote {}:\n{run}",
                marker.display()
            );
        }
    }

    let marker_pid = run.expect_child_pid("marker");
    let found = alert::expect_only_alert(&detector, |a| {
        alert::shell_spawn_from(run.jvm_pid())(a) && alert::process_pid(a) == Some(marker_pid)
    });
    alert::assert_shell_spawn_alert(&found, mode.expected_action());
    alert::assert_from_jvm(&found, &run, "AllowedChild");
    alert::assert_shell_process(&found);

    assert_nothing_lost(&detector.stop());
}

#[test]
fn allowlisted_child_is_not_reported_in_monitor_mode() {
    allowed_perl_is_left_alone(Mode::Monitor);
}

#[test]
fn allowlisted_child_is_not_killed_in_enforce_mode() {
    allowed_perl_is_left_alone(Mode::Enforce);
}
