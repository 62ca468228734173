//! The LDAP callback over IPv6 is caught like the IPv4 one.
//!
//! A JVM looks up `ldap://[::1]:1389/x` against a silent server on `::1`.
//! Proves: exactly one `jvm_ldap_egress` alert naming the JVM, with `network`
//! {tcp, ::1, 1389, ldap, recognised by port} (a real IPv6 address, not shown as IPv4).
//! Monitor: "reported" and the server accepted the connection. Enforce: "blocked", the `::1`
//! server accepted nothing and the lookup failed with EPERM. No events were lost.

use integration_tests::{
    alert::{self, Network},
    assert_nothing_lost_with_egress, require_kernel_support, Detector, JavaProgram, Mode, Policy,
    TcpServer, TestCgroup, LOOPBACK_V6, SERVER_TIMEOUT,
};

fn ldap_lookup_over_ipv6(mode: Mode) {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new(&format!("egress-ipv6-{}", mode.as_str()));
    let server = TcpServer::silent(LOOPBACK_V6, 1389);
    let mut detector = Detector::with_policy(&Policy::new(mode), &cgroup);

    let run = JavaProgram::new("JndiLookup")
        .arg("ldap://[::1]:1389/x")
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
            dst_ip: "::1",
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
fn ipv6_ldap_lookup_is_reported_in_monitor_mode() {
    ldap_lookup_over_ipv6(Mode::Monitor);
}

#[test]
fn ipv6_ldap_lookup_is_blocked_in_enforce_mode() {
    ldap_lookup_over_ipv6(Mode::Enforce);
}
