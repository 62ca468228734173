//! `run --record FILE` then `replay FILE`: the engine judges recorded events without a
//! kernel, so a policy can be tried on yesterday's events.
//!
//! Proves: replaying a recording of a JVM spawning a shell raises the same alert (rule, JVM,
//! process, event time) as the live run did; replaying it with a policy that allows the
//! shell for that application raises none. The same holds for a JVM that was running before
//! the detector started: its exec, made up from /proc, is recorded as seeded and learned by
//! the replay as by the run.

use std::{ffi::OsStr, process::Command, time::Duration};

use integration_tests::{
    alert, assert_nothing_lost, detector_binary, require_kernel_support, Detector, JavaProgram,
    Mode, Policy, ScratchDir, TestCgroup,
};
use serde_json::Value;

fn replay(recording: &std::path::Path, policy: Option<&std::path::Path>) -> Vec<Value> {
    let mut command = Command::new(detector_binary());
    command.arg("replay").arg(recording);
    if let Some(p) = policy {
        command.arg("--config").arg(p);
    }
    let out = command.output().expect("running detector replay");
    assert!(
        out.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("replay printed non-JSON {l:?}: {e}"))
        })
        .collect()
}

/// `detector run --mode monitor --record RECORDING` on `cgroup`.
fn recording_detector(cgroup: &TestCgroup, recording: &std::path::Path) -> Detector {
    let policy = Policy::new(Mode::Monitor);
    Detector::start_with_args(
        &policy.to_toml(),
        policy.mode(),
        cgroup,
        &[OsStr::new("--record"), recording.as_os_str()],
    )
}

/// Replaying `recording` with the built-in policy raises one alert, `live` again.
fn assert_replay_repeats(recording: &std::path::Path, live: &Value) {
    let replayed = replay(recording, None);
    assert_eq!(
        replayed.len(),
        1,
        "replay alerts:\n{}",
        alert::list(&replayed)
    );
    let again = &replayed[0];
    for key in [
        "rule",
        "severity",
        "summary",
        "action",
        "time",
        "incident_id",
        "class",
    ] {
        assert_eq!(
            again[key], live[key],
            "{key} differs:\nlive {live}\nreplay {again}"
        );
    }
    assert_eq!(again["process"]["pid"], live["process"]["pid"]);
    assert_eq!(again["jvm"]["pid"], live["jvm"]["pid"]);
}

#[test]
fn replay_reproduces_live_alerts_and_honours_a_new_policy() {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new("record-replay");
    let scratch = ScratchDir::new("record-replay");
    let recording = scratch.file("events.jsonl");
    let mut detector = recording_detector(&cgroup, &recording);
    let run = JavaProgram::new("SpawnShell")
        .arg(scratch.file("canary"))
        .current_dir(scratch.path())
        .run_in_cgroup(&cgroup);
    run.assert_success();
    let live = alert::expect_only_alert(&detector, alert::shell_spawn_from(run.jvm_pid()));
    assert_nothing_lost(&detector.stop());

    assert_replay_repeats(&recording, &live);

    let allowing = scratch.file("allow-sh.toml");
    std::fs::write(
        &allowing,
        "[[exec.allow]]\napp = \"SpawnShell\"\nprograms = [\"/bin/sh\"]\n",
    )
    .expect("write policy");
    let replayed = replay(&recording, Some(&allowing));
    assert!(
        replayed.is_empty(),
        "allowed shell still alerted:\n{}",
        alert::list(&replayed)
    );
}

#[test]
fn replay_of_a_jvm_started_before_the_detector_reproduces_its_alerts() {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new("record-replay-seeded");
    let scratch = ScratchDir::new("record-replay-seeded");
    let recording = scratch.file("events.jsonl");
    let go = scratch.file("go");
    let mut jvm = JavaProgram::new("WaitThenShell")
        .arg(scratch.file("canary"))
        .arg(&go)
        .current_dir(scratch.path())
        .spawn_in_cgroup(&cgroup);
    jvm.wait_until_started();

    let mut detector = recording_detector(&cgroup, &recording);
    std::fs::write(&go, b"go").expect("writing the go file");
    let run = jvm
        .wait_timeout(Duration::from_secs(120))
        .expect("the JVM finished");
    run.assert_success();
    let live = alert::expect_only_alert(&detector, alert::shell_spawn_from(run.jvm_pid()));
    let stats = detector.stop();
    assert!(
        stats["jvms_seeded"].as_u64().unwrap_or(0) >= 1,
        "the daemon did not seed the running JVM: {stats}"
    );
    assert_nothing_lost(&stats);

    let text = std::fs::read_to_string(&recording).expect("reading the recording");
    let seeded: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["seeded"] == true)
        .collect();
    assert!(
        seeded
            .iter()
            .any(|r| r["kind"] == "exec" && r["task"]["tgid"] == run.jvm_pid()),
        "the recording holds no seeded exec of JVM {}:\n{text}",
        run.jvm_pid()
    );
    assert_replay_repeats(&recording, &live);
}
