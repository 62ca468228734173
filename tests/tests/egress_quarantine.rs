//! Quarantine: once a JVM is caught reaching for LDAP, the rest of its egress outside the
//! allowlist is denied too, so code already running in it cannot call out another way.
//!
//! Enforce mode; `block_unexpected = false`, `quarantine = true`; the only `[[egress.allow]]`
//! rule is `cidrs = ["192.0.2.0/24"]`, so 127.0.0.1:18080 is unexpected but not blocked as
//! such. First a control JVM sends `GET /` to 127.0.0.1:18080; then the `Sequence` JVM looks
//! up `ldap://127.0.0.1:1389/x` and sends the same `GET /`.
//! Proves: the control's request goes through, with a `jvm_unexpected_egress` alert "reported";
//! the Sequence JVM's lookup is denied (EPERM, `jvm_ldap_egress` "blocked", the LDAP server
//! accepted nothing) and so is its HTTP connect afterwards (EPERM, `jvm_unexpected_egress`
//! "blocked", the HTTP server accepted only the control's connection). Exactly those three
//! alerts. No events were lost.

use integration_tests::{
    alert::{self, Network},
    assert_nothing_lost_with_egress, require_kernel_support, Detector, JavaProgram, Mode, Policy,
    TcpServer, TestCgroup, LOOPBACK_V4,
};
use serde_json::Value;

#[test]
fn caught_jvm_is_quarantined() {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new("egress-quarantine");
    let directory = TcpServer::silent(LOOPBACK_V4, 1389);
    let http = TcpServer::http(LOOPBACK_V4, 18080);
    let policy = Policy::new(Mode::Enforce)
        .block_unexpected(false)
        .quarantine(true)
        .allow_egress(None, &["192.0.2.0/24"], &[]);
    let mut detector = Detector::with_policy(&policy, &cgroup);

    let control = JavaProgram::new("HttpGet")
        .arg("http://127.0.0.1:18080/")
        .run_in_cgroup(&cgroup);
    control.assert_success();
    assert_eq!(
        control.value("http-status"),
        Some("HTTP/1.0 200 OK"),
        "without quarantine the unexpected connect must go through:\n{control}"
    );
    assert_eq!(http.accepted(), 1, "{http:?}:\n{control}");

    let run = JavaProgram::new("Sequence")
        .arg("ldap://127.0.0.1:1389/x")
        .arg("http://127.0.0.1:18080/")
        .run_in_cgroup(&cgroup);
    run.assert_success();
    run.assert_denied("lookup");
    run.assert_denied("connect");
    assert_eq!(
        directory.accepted(),
        0,
        "the blocked lookup still reached {directory:?}:\n{run}"
    );
    assert_eq!(
        http.accepted(),
        1,
        "the quarantined JVM still reached {http:?}:\n{run}"
    );

    let http_from = |jvm: u64| {
        move |a: &Value| {
            alert::rule_from(alert::UNEXPECTED_EGRESS, jvm)(a) && alert::dst_port(a) == Some(18080)
        }
    };
    let control_http = http_from(control.jvm_pid());
    let ldap = alert::rule_from(alert::LDAP_EGRESS, run.jvm_pid());
    let quarantined_http = http_from(run.jvm_pid());
    let found = alert::expect_only_alerts(&detector, &[&control_http, &ldap, &quarantined_http]);

    let http_network = Network {
        transport: "tcp",
        dst_ip: "127.0.0.1",
        dst_port: 18080,
        protocol: None,
        recognised_by: None,
    };
    alert::assert_egress_alert(&found[0], alert::UNEXPECTED_EGRESS, "reported");
    alert::assert_egress_from_jvm(&found[0], &control, "HttpGet");
    alert::assert_network(&found[0], &http_network);

    alert::assert_egress_alert(&found[1], alert::LDAP_EGRESS, "blocked");
    alert::assert_egress_from_jvm(&found[1], &run, "Sequence");
    alert::assert_network(
        &found[1],
        &Network {
            transport: "tcp",
            dst_ip: "127.0.0.1",
            dst_port: 1389,
            protocol: Some("ldap"),
            recognised_by: Some("port"),
        },
    );

    alert::assert_egress_alert(&found[2], alert::UNEXPECTED_EGRESS, "blocked");
    alert::assert_egress_from_jvm(&found[2], &run, "Sequence");
    alert::assert_network(&found[2], &http_network);

    assert_nothing_lost_with_egress(&detector.stop());
}
