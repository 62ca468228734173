//! Inbound inspection covers whole request heads: big ones, ones split over packets, and
//! every request of a keep-alive connection.
//!
//! A JVM serving HTTP (`InboundServer`) receives, in monitor mode:
//! - a lookup in a header after ~12 KB of padding headers (what attackers send to slip past
//!   a WAF, and what big cookies look like);
//! - a lookup split over two TCP segments, once inside the lookup and once right after
//!   its `$`;
//! - a lookup in the second request of a keep-alive connection.
//!
//! Each must raise its own `jndi_probe`. A request head past the 64 KiB bound must be counted
//! as uninspected on the stats line, and large benign requests (URL-encoded cookies, a
//! body) must raise nothing.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    thread,
    time::{Duration, Instant},
};

use integration_tests::{
    alert, assert_nothing_lost, require_kernel_support, scaled, Detector, JavaProgram, Mode,
    RunningProgram, TestCgroup,
};
use serde_json::Value;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The JVM serving HTTP (`InboundServer`) and its port.
struct Server {
    port: u16,
    program: RunningProgram,
}

impl Server {
    fn connect(&mut self) -> TcpStream {
        let conn = TcpStream::connect(("127.0.0.1", self.port)).unwrap_or_else(|e| {
            // Say why: the JVM died, or stopped listening while running.
            panic!(
                "connect to the JVM on port {}: {e}\n{}",
                self.port,
                self.program.report()
            )
        });
        conn.set_nodelay(true).expect("TCP_NODELAY");
        conn.set_read_timeout(Some(scaled(Duration::from_secs(10))))
            .expect("set a read timeout");
        conn
    }

    /// One request on its own connection, written in the given pieces (separate segments).
    fn request_in_pieces(&mut self, pieces: &[&[u8]]) {
        let mut conn = self.connect();
        for (i, piece) in pieces.iter().enumerate() {
            if i > 0 {
                // Long enough for the previous segment to arrive on its own.
                thread::sleep(Duration::from_millis(100));
            }
            conn.write_all(piece).expect("send a piece of the request");
        }
        read_response(&mut conn);
    }

    fn quit(mut self) {
        self.request_in_pieces(&[b"GET /quit HTTP/1.1\r\nHost: shop\r\n\r\n"]);
        let run = self.program.wait(scaled(Duration::from_secs(20)));
        assert!(run.stdout.contains("done"), "{run}");
    }
}

/// A daemon watching `cgroup` in monitor mode, and a JVM serving HTTP inside it, once it
/// listens.
fn start(name: &str) -> (TestCgroup, Detector, Server) {
    let cgroup = TestCgroup::new(name);
    let detector = Detector::start("mode = \"monitor\"\n", Mode::Monitor, &cgroup);
    let port = free_port();
    let program = JavaProgram::new("InboundServer")
        .arg(port.to_string())
        .spawn_in_cgroup(&cgroup);
    program.wait_for_output("listening", Duration::from_secs(20));
    (cgroup, detector, Server { port, program })
}

/// Reads one `ok` response (the server always sends `Content-Length: 2`).
fn read_response(conn: &mut TcpStream) {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"\r\n\r\nok") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// `n` bytes of headers that look like a browser's: long cookies, URL-encoded values.
fn padding(n: usize) -> String {
    let mut headers = String::new();
    let mut i = 0;
    while headers.len() < n {
        headers.push_str(&format!(
            "X-Pad-{i}: session%3D{i:08x}%26theme%3Ddark%20mode%2Fv2 abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n"
        ));
        i += 1;
    }
    headers
}

fn probes(detector: &Detector) -> Vec<Value> {
    detector
        .alerts()
        .into_iter()
        .filter(|a| alert::rule(a) == Some("jndi_probe"))
        .collect()
}

/// Waits until a `jndi_probe` names `target`; panics with every alert otherwise.
fn wait_for_probe(detector: &Detector, target: &str) -> Value {
    let deadline = Instant::now() + scaled(Duration::from_secs(15));
    loop {
        if let Some(found) = probes(detector).into_iter().find(|a| {
            a["summary"]
                .as_str()
                .is_some_and(|s| s.contains(&format!("${{jndi:ldap://127.0.0.1:1389/{target}}}")))
        }) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no jndi_probe for {target}: {}",
            alert::list(&detector.alerts())
        );
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn lookups_anywhere_in_a_request_head_are_found() {
    if !require_kernel_support() {
        return;
    }
    let (_cgroup, mut detector, mut server) = start("inbound-large");

    // After ~12 KB of other headers, in one write (one or several segments).
    let padded = format!(
        "GET /padded HTTP/1.1\r\nHost: shop\r\n{}X-Api-Version: ${{jndi:ldap://127.0.0.1:1389/Padded}}\r\n\r\n",
        padding(12 * 1024)
    );
    server.request_in_pieces(&[padded.as_bytes()]);
    let padded = wait_for_probe(&detector, "Padded");
    assert_eq!(padded["network"]["direction"], "inbound");
    let summary = padded["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("X-Api-Version"), "{summary}");

    // Split inside the lookup, then right after its `$`.
    server.request_in_pieces(&[
        b"GET /split HTTP/1.1\r\nHost: shop\r\nUser-Agent: ${jndi:ld",
        b"ap://127.0.0.1:1389/Split}\r\n\r\n",
    ]);
    wait_for_probe(&detector, "Split");
    server.request_in_pieces(&[
        b"GET /split-dollar HTTP/1.1\r\nHost: shop\r\nReferer: $",
        b"{jndi:ldap://127.0.0.1:1389/SplitDollar}\r\n\r\n",
    ]);
    wait_for_probe(&detector, "SplitDollar");

    // The second request of a keep-alive connection, after a padded benign first one.
    let mut conn = server.connect();
    let first = format!(
        "GET /first HTTP/1.1\r\nHost: shop\r\n{}\r\n",
        padding(4 * 1024)
    );
    conn.write_all(first.as_bytes()).expect("first request");
    read_response(&mut conn);
    conn.write_all(
        b"GET /second HTTP/1.1\r\nHost: shop\r\nX-Forwarded-For: ${jndi:ldap://127.0.0.1:1389/KeepAlive}\r\n\r\n",
    )
    .expect("second request");
    read_response(&mut conn);
    drop(conn);
    wait_for_probe(&detector, "KeepAlive");

    server.quit();
    let stats = detector.stop();
    assert_eq!(stats["inbound_uninspected"], 0, "{stats}");
    assert_nothing_lost(&stats);
}

#[test]
fn oversized_heads_are_counted_and_large_benign_requests_raise_nothing() {
    if !require_kernel_support() {
        return;
    }
    let (_cgroup, mut detector, mut server) = start("inbound-large-benign");

    // Benign: big URL-encoded headers, a body, and a keep-alive repeat.
    let mut conn = server.connect();
    for _ in 0..3 {
        let body = "q=%24%7Bnot-a-lookup%7D&name=caf%C3%A9".repeat(200);
        let request = format!(
            "POST /form HTTP/1.1\r\nHost: shop\r\n{}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            padding(20 * 1024),
            body.len()
        );
        conn.write_all(request.as_bytes()).expect("benign request");
        read_response(&mut conn);
    }
    drop(conn);

    // Past the bound: 70 KB of headers, the lookup after them.
    let oversized = format!(
        "GET /oversized HTTP/1.1\r\nHost: shop\r\n{}X-Late: ${{jndi:ldap://127.0.0.1:1389/Late}}\r\n\r\n",
        padding(70 * 1024)
    );
    server.request_in_pieces(&[oversized.as_bytes()]);

    server.quit();
    let stats = detector.stop();
    let alerts = detector.alerts();
    assert!(
        probes(&detector).is_empty(),
        "nothing to report: {}",
        alert::list(&alerts)
    );
    assert!(
        stats["inbound_uninspected"].as_u64() >= Some(1),
        "the oversized head is counted: {stats}"
    );
    assert_nothing_lost(&stats);
}
