//! The daemon speaks systemd's notification protocol (`Type=notify`, `WatchdogSec=`), to a
//! real datagram socket the test binds, as systemd's would be:
//! - `READY=1` (with a `STATUS=`) only once it is ready, i.e. after `detector ready`;
//! - `WATCHDOG=1` at half the `WATCHDOG_USEC` interval, from its event loop, for as long as it
//!   runs (at least three pings in 3.5 s with a 2 s watchdog);
//! - `STOPPING=1` on SIGTERM, before it exits;
//! - a `WATCHDOG_PID` naming another process turns the pings off (the watchdog is not ours).

use std::{
    os::unix::net::UnixDatagram,
    time::{Duration, Instant},
};

use integration_tests::{require_kernel_support, Detector, Mode, Policy, ScratchDir, TestCgroup};

/// Every message that arrives within `window`.
fn messages(socket: &UnixDatagram, window: Duration) -> Vec<String> {
    let end = Instant::now() + window;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .expect("read timeout");
        match socket.recv(&mut buf) {
            Ok(n) => out.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => break,
        }
    }
    out
}

fn start(cgroup: &TestCgroup, socket: &std::path::Path, watchdog_pid: Option<u32>) -> Detector {
    let policy = Policy::new(Mode::Monitor);
    Detector::start_with(&policy.to_toml(), policy.mode(), cgroup, |launch| {
        let launch = launch
            .env("NOTIFY_SOCKET", socket)
            .env("WATCHDOG_USEC", "2000000");
        match watchdog_pid {
            Some(pid) => launch.env("WATCHDOG_PID", pid.to_string()),
            None => launch,
        }
    })
}

#[test]
fn ready_watchdog_and_stopping_reach_the_notify_socket() {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new("systemd-notify");
    let scratch = ScratchDir::new("systemd-notify");
    let path = scratch.file("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("binding the notify socket");

    // `start` returns once the daemon printed `detector ready`.
    let mut detector = start(&cgroup, &path, None);
    let first = messages(&socket, Duration::from_millis(3500));
    let ready = first.first().cloned().unwrap_or_default();
    assert!(
        ready.starts_with("READY=1\nSTATUS=watching"),
        "the first message is not READY=1 with a status: {first:?}\n{}",
        detector.logs()
    );
    let pings = first.iter().filter(|m| *m == "WATCHDOG=1").count();
    assert!(
        pings >= 3,
        "{pings} watchdog pings in 3.5 s with WATCHDOG_USEC=2s: {first:?}"
    );

    detector.stop();
    let last = messages(&socket, Duration::from_millis(200));
    assert!(
        last.iter().any(|m| m.starts_with("STOPPING=1\nSTATUS=")),
        "no STOPPING=1 after SIGTERM: {last:?}"
    );
}

#[test]
fn a_watchdog_meant_for_another_process_is_not_pinged() {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new("systemd-notify-other");
    let scratch = ScratchDir::new("systemd-notify-other");
    let path = scratch.file("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("binding the notify socket");

    // PID 1 is never the daemon.
    let mut detector = start(&cgroup, &path, Some(1));
    let seen = messages(&socket, Duration::from_millis(2500));
    assert!(
        seen.first().is_some_and(|m| m.starts_with("READY=1")),
        "{seen:?}"
    );
    assert!(
        !seen.iter().any(|m| m == "WATCHDOG=1"),
        "pinged a watchdog that is not ours: {seen:?}"
    );
    detector.stop();
}
