//! A connect outside the egress allowlist is reported, and denied when the policy says so.
//!
//! Policy: the only `[[egress.allow]]` rule is `cidrs = ["192.0.2.0/24"]`, which replaces the
//! built-in loopback rule. A JVM opens a plain socket to 127.0.0.1:18080 and sends
//! `GET / HTTP/1.0`: nothing LDAP, RMI or DNS about it.
//! Proves: exactly one `jvm_unexpected_egress` alert (severity medium) naming the JVM, with
//! `network` {tcp, 127.0.0.1, 18080} and no `protocol` or `recognised_by`. The policy sets
//! `block_unexpected = true` in both modes. Monitor: "reported" and the server answered (monitor
//! mode never blocks). Enforce: "blocked", the connect failed with EPERM and the server accepted
//! nothing. No events were lost.

use integration_tests::{
    alert::{self, Network},
    assert_nothing_lost_with_egress, require_kernel_support, Detector, JavaProgram, Mode, Policy,
    TcpServer, TestCgroup, LOOPBACK_V4,
};

fn connect_outside_the_allowlist(mode: Mode) {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new(&format!("egress-unexpected-{}", mode.as_str()));
    let server = TcpServer::http(LOOPBACK_V4, 18080);
    let policy =
        Policy::new(mode)
            .block_unexpected(true)
            .allow_egress(None, &["192.0.2.0/24"], &[]);
    let mut detector = Detector::with_policy(&policy, &cgroup);

    let run = JavaProgram::new("HttpGet")
        .arg("http://127.0.0.1:18080/")
        .run_in_cgroup(&cgroup);
    run.assert_success();

    let found = alert::expect_only_alert(
        &detector,
        alert::rule_from(alert::UNEXPECTED_EGRESS, run.jvm_pid()),
    );
    alert::assert_egress_alert(&found, alert::UNEXPECTED_EGRESS, mode.egress_action());
    alert::assert_egress_from_jvm(&found, &run, "HttpGet");
    alert::assert_network(
        &found,
        &Network {
            transport: "tcp",
            dst_ip: "127.0.0.1",
            dst_port: 18080,
            protocol: None,
            recognised_by: None,
        },
    );
    match mode {
        Mode::Monitor => {
            assert_eq!(
                run.value("http-status"),
                Some("HTTP/1.0 200 OK"),
                "monitor mode must let the request through:\n{run}"
            );
            assert_eq!(server.accepted(), 1, "{server:?}:\n{run}");
        }
        Mode::Enforce => {
            run.assert_denied("connect");
            assert_eq!(
                server.accepted(),
                0,
                "the blocked connect still reached {server:?}:\n{run}"
            );
        }
    }

    assert_nothing_lost_with_egress(&detector.stop());
}

#[test]
fn unexpected_egress_is_reported_in_monitor_mode() {
    connect_outside_the_allowlist(Mode::Monitor);
}

#[test]
fn unexpected_egress_is_blocked_when_the_policy_says_so() {
    connect_outside_the_allowlist(Mode::Enforce);
}
