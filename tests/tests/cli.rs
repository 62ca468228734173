//! The command-line contract (docs/contract.md): exit codes and error messages that
//! scripts rely on.
//!
//! Proves: `check-config` exits 0 with a one-line summary for a good file and 2 with an error
//! naming the file, the line and the key for a bad one; bad usage exits 2; `run` as a
//! non-root user exits 1 with a one-line cause before touching the kernel.

use std::process::{Command, Output};

use integration_tests::{detector_binary, workspace_root, ScratchDir};

fn detector(args: &[&str]) -> Output {
    Command::new(detector_binary())
        .args(args)
        .output()
        .expect("running the detector binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_config_accepts_the_shipped_default_policy() {
    let file = workspace_root().join("detector/policy/default.toml");
    let out = detector(&["check-config", file.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "one-line summary: {stdout}");
    assert!(
        stdout.contains("ok: mode monitor; 1 JVM launcher"),
        "{stdout}"
    );
}

#[test]
fn check_config_names_file_line_and_key() {
    let scratch = ScratchDir::new("cli-bad-policy");
    let file = scratch.file("policy.toml");
    std::fs::write(
        &file,
        "mode = \"monitor\"\n\n[[exec.allow]]\nprograms = [\"bin/git\"]\n",
    )
    .expect("write policy");
    let out = detector(&["check-config", file.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(2), "stdout: {}", text(&out.stdout));
    let stderr = text(&out.stderr);
    let expected = format!("{}:4: exec.allow[0].programs:", file.display());
    assert!(
        stderr.contains(&expected),
        "wanted {expected:?} in: {stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout: {}",
        text(&out.stdout)
    );

    std::fs::write(&file, "mode = \"monitor\"\nmodee = 1\n").expect("write policy");
    let out = detector(&["check-config", file.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("policy.toml:2:") && stderr.contains("modee"),
        "{stderr}"
    );
}

#[test]
fn bad_usage_exits_2() {
    let out = detector(&["run", "--mode", "bogus"]);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", text(&out.stderr));
    let out = detector(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn run_as_non_root_fails_with_one_line_cause() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // Already unprivileged: run it directly.
        let out = detector(&["run"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out.stderr).contains("lacks CAP_BPF"));
        return;
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(detector_binary())
        .arg("run")
        .output()
        .expect("setpriv (util-linux) runs the detector as nobody");
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let cause: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("detector: "))
        .collect();
    assert_eq!(cause.len(), 1, "{stderr}");
    assert!(
        cause[0].contains("lacks CAP_BPF (load the kernel programs"),
        "{stderr}"
    );
    assert!(cause[0].contains("run it as root, or grant"), "{stderr}");

    // With some capabilities, the cause names exactly the missing ones needed to start.
    let caps = "-all,+bpf,+perfmon,+kill";
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(format!("--inh-caps={caps}"))
        .arg(format!("--ambient-caps={caps}"))
        .arg("--")
        .arg(detector_binary())
        .arg("run")
        .output()
        .expect("setpriv (util-linux) runs the detector with capabilities");
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let cause = stderr
        .lines()
        .find(|l| l.starts_with("detector: "))
        .unwrap_or_default();
    assert!(
        cause.contains("lacks CAP_NET_ADMIN (") && cause.contains("CAP_SYS_PTRACE ("),
        "{stderr}"
    );
    assert!(
        !cause.contains("CAP_BPF") && !cause.contains("CAP_KILL"),
        "{stderr}"
    );
}

#[test]
fn version_names_the_commit_the_date_and_aya() {
    let out = detector(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    let version = text(&out.stdout);
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(integration_tests::workspace_root())
        .output()
        .expect("git runs");
    let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    assert!(!head.is_empty(), "not a git checkout");
    assert!(version.starts_with("detector "), "{version}");
    // The binary under test may predate the newest commit; it must name a commit of this
    // repository.
    let commit = version
        .lines()
        .find_map(|l| l.strip_prefix("commit: "))
        .unwrap_or_else(|| panic!("no commit line: {version}"));
    let known = Command::new("git")
        .args(["cat-file", "-e"])
        .arg(format!(
            "{}^{{commit}}",
            commit.trim_end_matches("-modified")
        ))
        .current_dir(integration_tests::workspace_root())
        .status()
        .expect("git runs");
    assert!(
        known.success(),
        "{commit} is not a commit here (HEAD is {head})"
    );
    let lock = std::fs::read_to_string(integration_tests::workspace_root().join("Cargo.lock"))
        .expect("Cargo.lock");
    let aya = lock
        .split("[[package]]")
        .find(|p| p.contains("\nname = \"aya\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .expect("aya in Cargo.lock")
        .trim_matches('"');
    assert!(version.contains(&format!("\naya: {aya}\n")), "{version}");
    assert!(
        version.lines().any(|l| l.starts_with("built: 20")),
        "no build date: {version}"
    );
    // `-V` stays one line, for scripts.
    let short = detector(&["-V"]);
    assert_eq!(text(&short.stdout).lines().count(), 1);
}

#[test]
fn log_formats() {
    let scratch = integration_tests::ScratchDir::new("log-format");
    let empty = scratch.file("empty.jsonl");
    std::fs::write(&empty, "").expect("writing an empty recording");
    let empty = empty.to_str().expect("utf-8 path");

    // json: every stderr line is one JSON object with a level and a message.
    let out = detector(&["--log-format", "json", "replay", empty]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(!stderr.trim().is_empty(), "no log lines");
    for line in stderr.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v["level"].is_string() && v["fields"]["message"].is_string(),
            "{line}"
        );
    }

    // text off a terminal: no colour escapes.
    let out = detector(&["--log-format", "text", "replay", empty]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("0 alerts") && !stderr.contains('\u{1b}'),
        "{stderr:?}"
    );

    // journald where there is no journal: text, and says so.
    if !std::path::Path::new("/run/systemd/journal/socket").exists() {
        let out = detector(&["--log-format", "journald", "replay", empty]);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("the journal is not reachable") && stderr.contains("0 alerts"),
            "{stderr}"
        );
    }

    let out = detector(&["--log-format", "xml", "replay", empty]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn doctor_says_whether_run_starts_here() {
    if !integration_tests::require_kernel_support() {
        return;
    }
    let out = detector(&["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    assert_eq!(report["runs"], true, "{report:#}");
    let status = |name: &str| -> String {
        report["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == name))
            .and_then(|c| c["status"].as_str())
            .unwrap_or("absent")
            .to_owned()
    };
    assert_eq!(status("programs"), "ok", "{report:#}");
    assert_eq!(status("CAP_BPF"), "ok", "{report:#}");
    assert!(report["enforcement"]
        .as_str()
        .is_some_and(|e| e.contains("bpf_send_signal")));

    // Without privileges: the missing capabilities fail, the programs are not tried, exit 1.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(detector_binary())
        .arg("doctor")
        .output()
        .expect("setpriv runs the detector as nobody");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let screen = text(&out.stdout);
    assert!(screen.contains("FAIL  CAP_BPF"), "{screen}");
    assert!(
        screen.contains("not tried: fix the lines above first"),
        "{screen}"
    );
    assert!(screen.contains("will not start here"), "{screen}");
}
