//! `detector run --metrics ADDR` serves Prometheus metrics, liveness and readiness:
//! - `/readyz` and `/healthz` answer 200 once the daemon is ready; an unknown path 404;
//! - `/metrics` parses as Prometheus text, carries the build's identity, and its counters move
//!   with an attack: a JVM's shell killed in enforce mode adds one
//!   `detector_alerts_total{rule="jvm_shell_spawn",severity="critical",action="killed"}`, the
//!   exec events grow, and the running JVM is counted in `detector_jvms`;
//! - the stdout sink's deliveries show in `detector_sink_alerts_total`.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use integration_tests::{
    alert, require_kernel_support, Detector, JavaProgram, Mode, Policy, ScratchDir, TestCgroup,
};
use prometheus_parse::{Sample, Scrape, Value};

/// `GET path` over HTTP/1.0: (status, body).
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("sending the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("reading the response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn scrape(addr: SocketAddr) -> Scrape {
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text format")
}

fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s: &&Sample| {
            s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
        })
        .map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

#[test]
fn metrics_health_and_readiness_follow_an_attack() {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new("metrics");
    let scratch = ScratchDir::new("metrics");
    let policy = Policy::new(Mode::Enforce);
    let detector = Detector::start_with(&policy.to_toml(), policy.mode(), &cgroup, |l| {
        l.args(["--metrics", "127.0.0.1:0"])
    });
    let logs = detector.logs();
    let addr: SocketAddr = logs
        .lines()
        .find_map(|l| l.split("on http://").nth(1))
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metrics address in the log:\n{logs}"));

    assert_eq!(get(addr, "/readyz").0, 200);
    assert_eq!(get(addr, "/healthz").0, 200);
    assert_eq!(get(addr, "/nothing").0, 404);

    let before = scrape(addr);
    assert!(
        before
            .samples
            .iter()
            .any(|s| s.metric == "detector_build_info" && s.labels.get("aya").is_some()),
        "no build info: {:?}",
        before.samples
    );
    let shell_killed = [
        ("rule", "jvm_shell_spawn"),
        ("severity", "critical"),
        ("action", "killed"),
    ];
    assert_eq!(value(&before, "detector_alerts_total", &shell_killed), None);
    let execs_before = value(&before, "detector_events_total", &[("kind", "exec")]).unwrap_or(0.0);

    // The attack's last stage: a JVM's shell, killed. The JVM stays up a few seconds.
    let running = JavaProgram::new("SpawnShell")
        .arg(scratch.file("canary"))
        .arg("4")
        .current_dir(scratch.path())
        .spawn_in_cgroup(&cgroup);
    let found = detector.wait_for_alerts(
        alert::shell_spawn_from(u64::from(running.pid())),
        1,
        integration_tests::ALERT_TIMEOUT,
    );
    assert_eq!(alert::action(&found[0]), Some("killed"));
    // The counters the tick copies are at most a second old.
    std::thread::sleep(Duration::from_millis(1500));

    let after = scrape(addr);
    assert_eq!(
        value(&after, "detector_alerts_total", &shell_killed),
        Some(1.0),
        "{:?}",
        after.samples
    );
    let execs_after = value(&after, "detector_events_total", &[("kind", "exec")]).unwrap_or(0.0);
    assert!(
        execs_after >= execs_before + 2.0,
        "exec events {execs_before} -> {execs_after}"
    );
    assert_eq!(
        value(&after, "detector_ring_buffer_size_bytes", &[]),
        Some(f64::from(4u32 << 20)),
        "{:?}",
        after.samples
    );
    assert!(
        value(&after, "detector_ring_buffer_used_max_bytes", &[]).is_some_and(|n| n > 0.0),
        "the ring buffer's fill level was never seen above 0: {:?}",
        after.samples
    );
    assert!(
        value(&after, "detector_jvms", &[]).is_some_and(|n| n >= 1.0),
        "the running JVM is not counted: {:?}",
        after.samples
    );
    assert_eq!(
        value(
            &after,
            "detector_sink_alerts_total",
            &[("sink", "stdout"), ("outcome", "sent")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &after,
            "detector_kernel_lost_events_total",
            &[("kind", "exec")]
        ),
        Some(0.0)
    );
    assert_eq!(get(addr, "/healthz").0, 200);
    let run = running.wait(integration_tests::PROGRAM_TIMEOUT);
    run.assert_success();
}
