//! The syslog sink's alerts reach a real journald with the identifier and PID it files them
//! under, so `journalctl -t detector` finds them.
//!
//! systemd-journald (the host's own binary) runs in a private mount namespace with tmpfs on
//! `/run/systemd` and `/run/log`: it binds its `dev-log` socket and keeps a volatile journal
//! there, apart from whatever logging this host runs. The daemon's syslog sink points at that
//! socket through `/proc/<journald>/root`. A JVM spawns a shell (monitor mode): the journal
//! must hold one entry with `SYSLOG_IDENTIFIER=detector`, `SYSLOG_PID` = the daemon's pid,
//! the priority and facility of a critical alert on `auth`, and the very alert the stdout sink
//! printed as `MESSAGE`. (With RFC 5424 framing journald stores no identifier: the test fails.)

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use integration_tests::{
    alert, assert_nothing_lost, find_on_path, receivers::toml_str, require_kernel_support,
    Detector, Mode, Policy, ScratchDir, TestCgroup, ALERT_TIMEOUT,
};
use serde_json::Value;

const JOURNALD: &str = "/lib/systemd/systemd-journald";

/// journald in a mount namespace of its own; killed on drop.
struct Journald {
    child: Child,
}

impl Journald {
    fn start() -> Self {
        assert!(
            Path::new(JOURNALD).is_file() && find_on_path("journalctl").is_some(),
            "{JOURNALD} and journalctl (Debian package systemd) are needed: run `cargo xtask setup`"
        );
        // `exec`: the child's pid is journald's, and /proc/<pid>/root sees its mounts.
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "set -e; mkdir -p /run/systemd /run/log; \
                 mount -t tmpfs tmpfs /run/systemd; mount -t tmpfs tmpfs /run/log; \
                 exec {JOURNALD}"
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("unshare runs");
        let journald = Journald { child };
        let socket = journald.socket();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "journald did not create {}",
                socket.display()
            );
            thread::sleep(Duration::from_millis(50));
        }
        journald
    }

    fn root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.child.id()))
    }

    fn socket(&self) -> PathBuf {
        self.root().join("run/systemd/journal/dev-log")
    }

    /// The entries filed under identifier `detector`, as journalctl's JSON.
    fn entries(&self) -> Vec<Value> {
        let out = Command::new("journalctl")
            .arg("-D")
            .arg(self.root().join("run/log/journal"))
            .args(["-t", "detector", "-o", "json", "--no-pager"])
            .output()
            .expect("journalctl runs");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Journald {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn alerts_reach_journald_under_the_detector_identifier() {
    if !require_kernel_support() {
        return;
    }
    let journald = Journald::start();
    let cgroup = TestCgroup::new("syslog-journald");
    let scratch = ScratchDir::new("syslog-journald");
    let policy = Policy::new(Mode::Monitor);
    let toml = format!(
        "{}\n[[sinks]]\ntype = \"stdout\"\n\n[[sinks]]\ntype = \"syslog\"\nsocket = {}\n",
        policy.to_toml(),
        toml_str(&journald.socket().to_string_lossy())
    );
    let mut detector = Detector::start(&toml, Mode::Monitor, &cgroup);
    let daemon_pid = detector.pid().expect("the daemon runs");

    let printed = alert::spawn_shell_alert(&detector, &cgroup, &scratch);

    let deadline = Instant::now() + ALERT_TIMEOUT;
    let entry = loop {
        if let Some(entry) = journald.entries().into_iter().next() {
            break entry;
        }
        assert!(
            Instant::now() < deadline,
            "journald filed nothing under identifier `detector`; daemon logs:\n{}",
            detector.logs()
        );
        thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(entry["SYSLOG_IDENTIFIER"], "detector", "{entry:#}");
    assert_eq!(entry["SYSLOG_PID"], daemon_pid.to_string(), "{entry:#}");
    // critical → 2 (crit); the default facility is auth (4).
    assert_eq!(entry["PRIORITY"], "2", "{entry:#}");
    assert_eq!(entry["SYSLOG_FACILITY"], "4", "{entry:#}");
    let message: Value = entry["MESSAGE"]
        .as_str()
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or_else(|| panic!("MESSAGE is not the alert's JSON: {entry:#}"));
    assert_eq!(
        message, printed,
        "the journal holds the alert stdout printed"
    );

    assert_nothing_lost(&detector.stop());
}
