//! A JNDI `ldap://` lookup is the Log4Shell callback: reported in monitor mode, stopped at
//! `connect()` in enforce mode.
//!
//! A JVM runs `new InitialContext(env).lookup("ldap://127.0.0.1:1389/x")` against a silent
//! server on loopback (loopback is allowed by default, but never on an LDAP port).
//! Proves: exactly one `jvm_ldap_egress` alert (severity high) naming the JVM, with `network`
//! {tcp, 127.0.0.1, 1389, ldap, recognised by port}. Monitor: `action` "reported" and the
//! server accepted the connection. Enforce: `action` "blocked", the server accepted nothing and
//! the JVM's lookup failed with `Operation not permitted` (EPERM) in its cause chain. No events
//! were lost.

use integration_tests::{
    alert::{self, Network},
    assert_nothing_lost_with_egress, require_kernel_support, Detector, JavaProgram, Mode, Policy,
    TcpServer, TestCgroup, LOOPBACK_V4, SERVER_TIMEOUT,
};

fn ldap_lookup(mode: Mode) {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new(&format!("egress-ldap-{}", mode.as_str()));
    let server = TcpServer::silent(LOOPBACK_V4, 1389);
    let mut detector = Detector::with_policy(&Policy::new(mode), &cgroup);

    let run = JavaProgram::new("JndiLookup")
        .arg("ldap://127.0.0.1:1389/x")
        .run_in_cgroup(&cgroup);
    run.assert_success();

    let found = alert::expect_only_alert(
        &detector,
        alert::rule_from(alert::LDAP_EGRESS, run.jvm_pid()),
    );
    alert::assert_egress_alert(&found, alert::LDAP_EGRESS, mode.egress_action());
    alert::assert_egress_from_jvm(&found, &run, "JndiLookup");
    alert::assert_network(
        &found,
        &Network {
            transport: "tcp",
            dst_ip: "127.0.0.1",
            dst_port: 1389,
            protocol: Some("ldap"),
            recognised_by: Some("port"),
        },
    );
    match mode {
        Mode::Monitor => {
            run.assert_not_denied("lookup");
            let (tally, reached) = server.wait_for(|t| t.accepted >= 1, SERVER_TIMEOUT);
            assert!(
                reached,
                "monitor mode must let the lookup reach the server ({tally:?}):\n{run}"
            );
        }
        Mode::Enforce => {
            run.assert_denied("lookup");
            assert_eq!(
                server.accepted(),
                0,
                "the blocked lookup still reached {server:?}:\n{run}"
            );
        }
    }

    assert_nothing_lost_with_egress(&detector.stop());
}

#[test]
fn ldap_lookup_is_reported_in_monitor_mode() {
    ldap_lookup(Mode::Monitor);
}

#[test]
fn ldap_lookup_is_blocked_at_connect_in_enforce_mode() {
    ldap_lookup(Mode::Enforce);
}
