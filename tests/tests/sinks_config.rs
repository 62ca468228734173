//! `detector check-config` rejects malformed `[[sinks]]` with the file, the line and the key,
//! and `detector run` refuses to start when a sink's secret is missing, naming the sink and
//! the key but never a value.

use std::process::{Command, Output};

use integration_tests::{detector_binary, require_kernel_support, ScratchDir, TestCgroup};

fn detector(args: &[&str]) -> Output {
    Command::new(detector_binary())
        .args(args)
        .output()
        .expect("running the detector binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Writes `policy`, runs `check-config` on it, and expects exit 2 with `file:expected` on
/// stderr.
fn rejected(scratch: &ScratchDir, policy: &str, expected: &str) {
    let file = scratch.file("policy.toml");
    std::fs::write(&file, policy).expect("write policy");
    let out = detector(&["check-config", file.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(2), "accepted:\n{policy}");
    let stderr = text(&out.stderr);
    let wanted = format!("{}:{expected}", file.display());
    assert!(
        stderr.contains(&wanted),
        "wanted {wanted:?} in: {stderr}\npolicy:\n{policy}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
}

#[test]
fn check_config_names_file_line_and_key_of_a_bad_sink() {
    let scratch = ScratchDir::new("sinks-config");
    rejected(
        &scratch,
        "mode = \"monitor\"\n\n[[sinks]]\ntype = \"webhook\"\nurl = \"hooks.example.com/x\"\n",
        "5: sinks[0].url: \"hooks.example.com/x\" is not a URL",
    );
    rejected(
        &scratch,
        "[[sinks]]\ntype = \"stdout\"\n\n[[sinks]]\ntype = \"pagerduty\"\nname = \"oncall\"\n",
        "4: sinks[1].routing_key_env: missing;",
    );
    rejected(
        &scratch,
        "[[sinks]]\ntype = \"slack\"\nwebhook_url_env = \"SLACK_URL\"\nchannel = \"#sec\"\n",
        "4:1: sinks[0].channel: unknown field `channel`",
    );
    rejected(
        &scratch,
        "[[sinks]]\ntype = \"syslog\"\nurl = \"http://127.0.0.1:514/\"\n",
        "3: sinks[0].url: a syslog sink has no `url`",
    );
    rejected(
        &scratch,
        "[[sinks]]\ntype = \"webhook\"\nurl = \"https://x.example/\"\ngive_up_after = \"forever\"\n",
        "4: sinks[0].give_up_after: \"forever\" is not a duration",
    );
}

#[test]
fn check_config_accepts_sinks_and_lists_them() {
    let scratch = ScratchDir::new("sinks-config-ok");
    let file = scratch.file("policy.toml");
    std::fs::write(
        &file,
        "[[sinks]]\ntype = \"stdout\"\n\n[[sinks]]\ntype = \"pagerduty\"\nname = \"oncall\"\n\
         routing_key_env = \"PD_KEY\"\nmin_severity = \"high\"\n",
    )
    .expect("write policy");
    // check-config does not need the secret itself: it may run where the daemon's
    // environment is not.
    let out = detector(&["check-config", file.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .trim_end()
            .ends_with("; sinks: stdout, oncall (pagerduty)"),
        "{stdout}"
    );
}

#[test]
fn run_refuses_to_start_without_a_sink_secret() {
    if !require_kernel_support() {
        return;
    }
    let scratch = ScratchDir::new("sinks-config-secret");
    let file = scratch.file("policy.toml");
    std::fs::write(
        &file,
        "[[sinks]]\ntype = \"stdout\"\n\n[[sinks]]\ntype = \"pagerduty\"\nname = \"oncall\"\n\
         routing_key_env = \"DETECTOR_TEST_UNSET_ROUTING_KEY\"\n",
    )
    .expect("write policy");
    let cgroup = TestCgroup::new("sinks-config-secret");
    let out = Command::new(detector_binary())
        .arg("run")
        .arg("--config")
        .arg(&file)
        .arg("--cgroup")
        .arg(cgroup.path())
        .env_remove("DETECTOR_TEST_UNSET_ROUTING_KEY")
        .output()
        .expect("running the detector");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let cause: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("detector: "))
        .collect();
    assert_eq!(cause.len(), 1, "{stderr}");
    assert!(
        cause[0].contains(
            "sink \"oncall\": sinks[1].routing_key_env: the environment variable \
             DETECTOR_TEST_UNSET_ROUTING_KEY is not set"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("detector ready"), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
}
