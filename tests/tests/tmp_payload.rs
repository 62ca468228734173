//! A JVM that drops an executable into /tmp and runs it is caught, whatever the executable is.
//!
//! `script`: the JVM writes `#!/bin/sh` + `echo pwned > CANARY` to a fresh file directly in
//! /tmp and executes it; the kernel may be seen exec'ing the /tmp path or /bin/sh, so the class
//! may be `writable_dir` or `shell`, but the alert must name the /tmp path.
//! `elf`: the JVM copies `/usr/bin/touch` (harmless by name) into /tmp and runs it; only its
//! location gives it away, so the class must be `writable_dir`.
//! Both run in monitor mode: exactly one alert each, and the payload ran.

use std::path::Path;

use integration_tests::{
    alert, assert_nothing_lost, require_kernel_support, unique_name, Detector, JavaProgram, Mode,
    Policy, RemoveOnDrop, ScratchDir, TestCgroup,
};
use serde_json::Value;

/// Runs `TmpPayload <kind>` in monitor mode, checks what every variant must satisfy, and
/// returns the single alert (`None` if the machine cannot run the test).
fn run_payload(kind: &str) -> Option<Value> {
    if !require_kernel_support() {
        return None;
    }
    let cgroup = TestCgroup::new(&format!("tmp-payload-{kind}"));
    let scratch = ScratchDir::new(&format!("tmp-payload-{kind}"));
    let mut detector = Detector::with_policy(&Policy::new(Mode::Monitor), &cgroup);

    // Directly in /tmp, not $TMPDIR: /tmp is what the default writable-dir rule names.
    let payload = Path::new("/tmp").join(unique_name(&format!("payload-{kind}")));
    let _cleanup = RemoveOnDrop(payload.clone());
    let canary = scratch.file("canary");
    let run = JavaProgram::new("TmpPayload")
        .arg(kind)
        .arg(&payload)
        .arg(&canary)
        .current_dir(scratch.path())
        .run_in_cgroup(&cgroup);
    run.assert_success();
    assert_eq!(
        run.expect_child_exit("payload"),
        0,
        "the payload failed:\n{run}"
    );
    assert!(canary.exists(), "the payload did not run:\n{run}");

    let payload_pid = run.expect_child_pid("payload");
    let found = alert::expect_only_alert(&detector, |a| {
        alert::shell_spawn_from(run.jvm_pid())(a) && alert::process_pid(a) == Some(payload_pid)
    });
    alert::assert_shell_spawn_alert(&found, Mode::Monitor.expected_action());
    alert::assert_from_jvm(&found, &run, "TmpPayload");
    assert!(
        alert::process_mentions(&found, &payload.to_string_lossy()),
        "neither process.exe nor process.argv names the payload {}:\n{}",
        payload.display(),
        alert::pretty(&found)
    );

    assert_nothing_lost(&detector.stop());
    Some(found)
}

#[test]
fn shell_script_dropped_in_tmp_is_reported() {
    let Some(found) = run_payload("script") else {
        return;
    };
    assert!(
        matches!(alert::class(&found), Some("writable_dir" | "shell")),
        "class is neither writable_dir nor shell:\n{}",
        alert::pretty(&found)
    );
}

#[test]
fn copied_binary_in_tmp_is_reported_as_writable_dir() {
    let Some(found) = run_payload("elf") else {
        return;
    };
    assert_eq!(
        alert::class(&found),
        Some("writable_dir"),
        "{}",
        alert::pretty(&found)
    );
}
