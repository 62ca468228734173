//! Egress that is no attack raises nothing, and is not blocked.
//!
//! - An allowlisted directory: with `[[egress.allow]] app = "JndiLookup", cidrs =
//!   ["127.0.0.1/32"], ports = [1389]`, that application's LDAP lookup to 127.0.0.1:1389 (an
//!   LDAP port, which a rule must name explicitly) reaches the server.
//! - With the built-in policy: an HTTP request from a JVM to 127.0.0.1:18080 (loopback is
//!   allowed on ordinary ports), and an LDAP bind to 127.0.0.1:1389 sent by Python, which is no
//!   JVM, from inside the test cgroup.
//!
//! Each is followed by the marker (a JVM spawning a shell). Proves, in monitor and in enforce
//! mode: the servers received every connection and byte, no connect was denied, and the only
//! alert is the marker's, so the detector was watching and let the benign egress pass. No
//! events were lost.

use integration_tests::{
    alert, assert_nothing_lost_with_egress, python_ldap_bind, require_kernel_support,
    spawn_in_cgroup, Detector, JavaProgram, Mode, Policy, ScratchDir, TcpServer, TestCgroup,
    LDAP_BIND_REQUEST, LOOPBACK_V4, PROGRAM_TIMEOUT, SERVER_TIMEOUT,
};

/// Runs the marker JVM and asserts its shell alert is the only alert of the test.
fn expect_only_the_marker(
    detector: &Detector,
    cgroup: &TestCgroup,
    scratch: &ScratchDir,
    mode: Mode,
) {
    let canary = scratch.file("marker");
    let marker = JavaProgram::new("SpawnShell")
        .arg(&canary)
        .current_dir(scratch.path())
        .run_in_cgroup(cgroup);
    marker.assert_success();
    let shell_pid = marker.expect_child_pid("shell");
    let found = alert::expect_only_alert(detector, |a| {
        alert::shell_spawn_from(marker.jvm_pid())(a) && alert::process_pid(a) == Some(shell_pid)
    });
    alert::assert_shell_spawn_alert(&found, mode.expected_action());
    alert::assert_from_jvm(&found, &marker, "SpawnShell");
}

fn allowlisted_directory(mode: Mode) {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new(&format!("egress-allowlisted-{}", mode.as_str()));
    let scratch = ScratchDir::new(&format!("egress-allowlisted-{}", mode.as_str()));
    let directory = TcpServer::silent(LOOPBACK_V4, 1389);
    let policy = Policy::new(mode).allow_egress(Some("JndiLookup"), &["127.0.0.1/32"], &[1389]);
    let mut detector = Detector::with_policy(&policy, &cgroup);

    let run = JavaProgram::new("JndiLookup")
        .arg("ldap://127.0.0.1:1389/x")
        .run_in_cgroup(&cgroup);
    run.assert_success();
    run.assert_not_denied("lookup");
    let bind = LDAP_BIND_REQUEST.len() as u64;
    let (tally, reached) = directory.wait_for(|t| t.bytes >= bind, SERVER_TIMEOUT);
    assert!(
        reached && tally.accepted == 1,
        "the allowlisted lookup did not reach the directory ({tally:?}):\n{run}"
    );

    expect_only_the_marker(&detector, &cgroup, &scratch, mode);
    assert_nothing_lost_with_egress(&detector.stop());
}

fn loopback_http_and_non_jvm_ldap(mode: Mode) {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new(&format!("egress-benign-{}", mode.as_str()));
    let scratch = ScratchDir::new(&format!("egress-benign-{}", mode.as_str()));
    let http = TcpServer::http(LOOPBACK_V4, 18080);
    let directory = TcpServer::silent(LOOPBACK_V4, 1389);
    let mut detector = Detector::with_policy(&Policy::new(mode), &cgroup);

    let run = JavaProgram::new("HttpGet")
        .arg("http://127.0.0.1:18080/")
        .run_in_cgroup(&cgroup);
    run.assert_success();
    assert_eq!(
        run.value("http-status"),
        Some("HTTP/1.0 200 OK"),
        "the HTTP request did not complete:\n{run}"
    );
    assert_eq!(http.accepted(), 1, "{http:?}:\n{run}");

    let python = spawn_in_cgroup(python_ldap_bind(directory.addr()), &cgroup).wait(PROGRAM_TIMEOUT);
    python.assert_success();
    let bind = LDAP_BIND_REQUEST.len() as u64;
    let (tally, reached) = directory.wait_for(|t| t.bytes >= bind, SERVER_TIMEOUT);
    assert!(
        reached && tally.accepted == 1,
        "python's LDAP bind did not reach the server ({tally:?}):\n{python}"
    );

    expect_only_the_marker(&detector, &cgroup, &scratch, mode);
    assert_nothing_lost_with_egress(&detector.stop());
}

#[test]
fn allowlisted_directory_raises_nothing_in_monitor_mode() {
    allowlisted_directory(Mode::Monitor);
}

#[test]
fn allowlisted_directory_is_not_blocked_in_enforce_mode() {
    allowlisted_directory(Mode::Enforce);
}

#[test]
fn loopback_http_and_non_jvm_ldap_raise_nothing_in_monitor_mode() {
    loopback_http_and_non_jvm_ldap(Mode::Monitor);
}

#[test]
fn loopback_http_and_non_jvm_ldap_are_not_blocked_in_enforce_mode() {
    loopback_http_and_non_jvm_ldap(Mode::Enforce);
}
