//! `kill -9` loses no alert: the alert journal is replayed, per sink, at the next start.
//!
//! - Webhook down → alerts → `kill -9` → restart with the same journal → receiver up: every
//!   alert the first run raised is delivered, each under a stable `Idempotency-Key` (a
//!   duplicate only ever with the key of its first copy), and the journal is empty after a
//!   clean stop.
//! - Stdout stalled (a one-page pipe nobody reads) → alerts → `kill -9` → restart: every alert
//!   the first run journaled but could not print is printed by the second run, the same
//!   record; nothing is printed that the first run did not raise.

use std::{collections::BTreeMap, io::Read as _, os::fd::AsRawFd as _};

use integration_tests::{
    alert,
    receivers::{
        free_port, journal_segments, sink_count, toml_str, HttpReceiver, Received, Reply,
        DELIVERY_TIMEOUT,
    },
    require_kernel_support, Detector, JavaProgram, Mode, Policy, ScratchDir, TestCgroup,
    ALERT_TIMEOUT, SETTLE_TIME,
};
use serde_json::Value;

/// The policy: stdout and a webhook `hook` at `port`, journal in `spool_dir`.
fn policy(spool_dir: &std::path::Path, port: u16) -> String {
    format!(
        "{}\n[delivery]\nspool_dir = {}\n\n[[sinks]]\ntype = \"stdout\"\n\n[[sinks]]\n\
         type = \"webhook\"\nname = \"hook\"\nurl = {}\ndedup_window = \"0s\"\n",
        Policy::new(Mode::Monitor).to_toml(),
        toml_str(&spool_dir.to_string_lossy()),
        toml_str(&format!("http://127.0.0.1:{port}/alerts")),
    )
}

/// Two JVMs each start a shell that starts a shell; returns their pids.
fn raise_alerts(scratch: &ScratchDir, cgroup: &TestCgroup) -> Vec<u64> {
    (0..2)
        .map(|i| {
            let run = JavaProgram::new("Grandchild")
                .arg(scratch.file(&format!("canary-{i}")))
                .current_dir(scratch.path())
                .run_in_cgroup(cgroup);
            run.assert_success();
            run.jvm_pid()
        })
        .collect()
}

/// Every body the receiver accepted has one key, and distinct bodies distinct keys.
fn keys_by_body(requests: &[Received]) -> BTreeMap<String, String> {
    let mut keys: BTreeMap<String, String> = BTreeMap::new();
    for r in requests.iter().filter(|r| r.accepted()) {
        let key = r
            .header("Idempotency-Key")
            .unwrap_or_else(|| panic!("no Idempotency-Key:\n{r}"))
            .to_owned();
        let body = r.json().to_string();
        let first = keys.entry(body).or_insert_with(|| key.clone());
        assert_eq!(*first, key, "a duplicate under another key:\n{r}");
    }
    let mut distinct: Vec<&String> = keys.values().collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        keys.len(),
        "two alerts share a key: {keys:#?}"
    );
    keys
}

#[test]
fn webhook_down_kill_9_restart_up_delivers_every_alert() {
    if !require_kernel_support() {
        return;
    }
    let scratch = ScratchDir::new("sinks-crash");
    let spool_dir = scratch.file("journal");
    let port = free_port();
    let policy = policy(&spool_dir, port);
    let cgroup = TestCgroup::new("sinks-crash");

    // Run 1: the receiver is down; the daemon dies by SIGKILL, retrying.
    let mut detector = Detector::start(&policy, Mode::Monitor, &cgroup);
    for jvm in raise_alerts(&scratch, &cgroup) {
        detector.wait_for_alerts(alert::shell_spawn_from(jvm), 2, ALERT_TIMEOUT);
    }
    let printed = detector.alerts_after(SETTLE_TIME);
    assert!(printed.len() >= 4, "{}", alert::list(&printed));
    detector.kill_now();
    assert!(
        !journal_segments(&spool_dir).is_empty(),
        "the killed daemon left its journal"
    );

    // Run 2: the receiver is up; no new alerts are raised.
    let receiver = HttpReceiver::start_on(port, Vec::new(), Reply::status(200));
    let mut detector = Detector::start(&policy, Mode::Monitor, &cgroup);
    let accepted = receiver.wait_for(|r| r.accepted(), printed.len(), DELIVERY_TIMEOUT);
    let received: Vec<Value> = accepted.iter().map(Received::json).collect();
    for alert in &printed {
        assert!(
            received.contains(alert),
            "an alert of the killed run was not delivered: {alert}\nreceived:\n{}",
            alert::list(&received)
        );
    }
    for body in &received {
        assert!(
            printed.contains(body),
            "delivered, but the killed run never raised it: {body}"
        );
    }
    let again = detector.alerts_after(SETTLE_TIME);
    for line in &again {
        assert!(
            printed.contains(line),
            "run 2 printed an alert run 1 did not raise: {line}"
        );
    }
    let stats = detector.stop();
    let keys = keys_by_body(&receiver.requests());
    assert_eq!(keys.len(), printed.len(), "one key per alert: {keys:#?}");
    assert_eq!(
        stats["alerts"], 0,
        "run 2 raised no alert of its own: {stats}"
    );
    assert!(
        sink_count(&stats, "hook", "sent") >= printed.len() as u64,
        "{stats}"
    );
    for counter in ["dropped", "evicted"] {
        assert_eq!(sink_count(&stats, "hook", counter), 0, "{stats}");
        assert_eq!(sink_count(&stats, "stdout", counter), 0, "{stats}");
    }
    assert_eq!(stats["journal_corrupt"], 0, "{stats}");
    assert!(
        journal_segments(&spool_dir).is_empty(),
        "the journal is empty once everything is delivered: {:?}",
        journal_segments(&spool_dir)
    );
}

#[test]
fn stdout_stalled_kill_9_restart_prints_what_was_not_printed() {
    if !require_kernel_support() {
        return;
    }
    let scratch = ScratchDir::new("sinks-crash-stdout");
    let spool_dir = scratch.file("journal");
    // The webhook is up: it shows which alerts run 1 raised while stdout is stuck.
    let receiver = HttpReceiver::start(Vec::new(), Reply::status(200));
    let policy = policy(&spool_dir, receiver.port());
    let cgroup = TestCgroup::new("sinks-crash-stdout");

    // Run 1: stdout is a one-page pipe that nobody reads while the daemon runs.
    let (mut reader, writer) = std::io::pipe().expect("pipe");
    // SAFETY: fcntl on a pipe we own; F_SETPIPE_SZ takes an int and touches no memory of ours.
    let size = unsafe { libc::fcntl(writer.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    assert!(
        size > 0,
        "F_SETPIPE_SZ: {}",
        std::io::Error::last_os_error()
    );
    let mut detector = Detector::start_with(&policy, Mode::Monitor, &cgroup, |launch| {
        launch.stdout_to(writer.into())
    });
    raise_alerts(&scratch, &cgroup);
    let _ = receiver.wait_for(|r| r.accepted(), 4, ALERT_TIMEOUT);
    std::thread::sleep(SETTLE_TIME);
    let raised: Vec<Value> = receiver
        .requests()
        .iter()
        .filter(|r| r.accepted())
        .map(Received::json)
        .collect();
    assert!(raised.len() >= 4, "{}", alert::list(&raised));
    detector.kill_now();
    // What run 1 managed to print: the complete lines in the pipe.
    let mut out = Vec::new();
    reader.read_to_end(&mut out).expect("reading the pipe");
    let text = String::from_utf8_lossy(&out);
    let printed: Vec<Value> = text
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .map(|l| serde_json::from_str(l).expect("a JSON alert line"))
        .collect();
    let unprinted: Vec<&Value> = raised.iter().filter(|a| !printed.contains(a)).collect();
    assert!(
        !unprinted.is_empty(),
        "the stalled pipe took every alert ({} bytes); nothing to replay",
        out.len()
    );

    // Run 2: stdout is read again.
    let mut detector = Detector::start(&policy, Mode::Monitor, &cgroup);
    detector.wait_for_alerts(|_| true, unprinted.len(), DELIVERY_TIMEOUT);
    let again = detector.alerts_after(SETTLE_TIME);
    for alert in &unprinted {
        assert!(
            again.contains(alert),
            "journaled but never printed, and not printed after the restart: {alert}\n\
             run 2 printed:\n{}",
            alert::list(&again)
        );
    }
    for line in &again {
        assert!(
            raised.contains(line),
            "run 2 printed an alert run 1 did not raise: {line}"
        );
    }
    let stats = detector.stop();
    assert_eq!(
        stats["alerts"], 0,
        "run 2 raised no alert of its own: {stats}"
    );
    assert_eq!(sink_count(&stats, "stdout", "dropped"), 0, "{stats}");
    keys_by_body(&receiver.requests());
    assert!(
        journal_segments(&spool_dir).is_empty(),
        "the journal is empty once everything is delivered: {:?}",
        journal_segments(&spool_dir)
    );
}
