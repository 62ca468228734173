//! LDAP on a port nobody configured is still LDAP: the detector recognises it by its first
//! bytes, not only by port.
//!
//! A JVM looks up `ldap://127.0.0.1:10389/x` against a silent server. Port 10389 is not an
//! LDAP port and loopback is allowed by default, so the connect itself passes; the JVM's first
//! payload is an LDAP bind request.
//! Proves: exactly one `jvm_ldap_egress` alert naming the JVM, with `network`
//! {tcp, 127.0.0.1, 10389, ldap, recognised by payload}. Monitor: "reported" and the server
//! received the bind. Enforce: "blocked", and although the TCP handshake may complete, the
//! server receives not one byte: the socket's packets are dropped from the first payload on
//! (the JVM's lookup times out). No events were lost.

use integration_tests::{
    alert::{self, Network},
    assert_nothing_lost_with_egress, require_kernel_support, Detector, JavaProgram, Mode, Policy,
    TcpServer, TestCgroup, LDAP_BIND_REQUEST, LOOPBACK_V4, SERVER_TIMEOUT,
};

fn ldap_on_a_non_standard_port(mode: Mode) {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new(&format!("egress-ldap-payload-{}", mode.as_str()));
    let server = TcpServer::silent(LOOPBACK_V4, 10389);
    let mut detector = Detector::with_policy(&Policy::new(mode), &cgroup);

    let run = JavaProgram::new("JndiLookup")
        .arg("ldap://127.0.0.1:10389/x")
        .run_in_cgroup(&cgroup);
    run.assert_success();
    // The connect is allowed in both modes: only the payload gives LDAP away.
    run.assert_not_denied("lookup");
    assert!(
        run.value("lookup-error").is_some(),
        "a lookup against the silent server cannot succeed:\n{run}"
    );

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
            dst_port: 10389,
            protocol: Some("ldap"),
            recognised_by: Some("payload"),
        },
    );
    match mode {
        Mode::Monitor => {
            let bind = LDAP_BIND_REQUEST.len() as u64;
            let (tally, reached) = server.wait_for(|t| t.bytes >= bind, SERVER_TIMEOUT);
            assert!(
                reached,
                "monitor mode must let the bind reach the server ({tally:?}):\n{run}"
            );
        }
        Mode::Enforce => {
            // The JVM has exited (after its 2 s read timeout): whatever it could send has
            // arrived by now.
            assert_eq!(
                server.bytes(),
                0,
                "the blocked socket still delivered bytes to {server:?}:\n{run}"
            );
        }
    }

    assert_nothing_lost_with_egress(&detector.stop());
}

#[test]
fn ldap_payload_on_other_port_is_reported_in_monitor_mode() {
    ldap_on_a_non_standard_port(Mode::Monitor);
}

#[test]
fn ldap_payload_on_other_port_is_dropped_in_enforce_mode() {
    ldap_on_a_non_standard_port(Mode::Enforce);
}
