//! Receiver down, daemon restarted, receiver up: no alert is lost.
//!
//! The webhook's receiver is down (nothing listens on its port) while two JVMs each start a
//! shell that starts a shell. The daemon is stopped: it spends its grace period retrying,
//! then leaves every undelivered alert in the alert journal. The receiver comes up and the
//! daemon starts again with the same policy. Proves: the first run delivered nothing and kept
//! every alert (stats and journal agree); the second run delivers every one of them (same
//! bodies, same order, counted) before anything else, and leaves the journal empty.

use integration_tests::{
    alert, assert_nothing_lost,
    receivers::{
        free_port, journal_segments, sink_count, toml_str, HttpReceiver, Reply, DELIVERY_TIMEOUT,
    },
    require_kernel_support, Detector, JavaProgram, Mode, Policy, ScratchDir, TestCgroup,
    ALERT_TIMEOUT, SETTLE_TIME,
};
use serde_json::Value;

#[test]
fn spooled_alerts_are_delivered_after_a_restart() {
    if !require_kernel_support() {
        return;
    }
    let scratch = ScratchDir::new("sinks-restart");
    let spool_dir = scratch.file("spool");
    let port = free_port();
    let policy = format!(
        "{}\n[delivery]\nspool_dir = {}\n\n[[sinks]]\ntype = \"stdout\"\n\n[[sinks]]\n\
         type = \"webhook\"\nname = \"hook\"\nurl = {}\ndedup_window = \"0s\"\n",
        Policy::new(Mode::Monitor).to_toml(),
        toml_str(&spool_dir.to_string_lossy()),
        toml_str(&format!("http://127.0.0.1:{port}/alerts")),
    );
    let cgroup = TestCgroup::new("sinks-restart");

    // Run 1: the receiver is down.
    let mut detector = Detector::start(&policy, Mode::Monitor, &cgroup);
    for i in 0..2 {
        let run = JavaProgram::new("Grandchild")
            .arg(scratch.file(&format!("canary-{i}")))
            .current_dir(scratch.path())
            .run_in_cgroup(&cgroup);
        run.assert_success();
        detector.wait_for_alerts(alert::shell_spawn_from(run.jvm_pid()), 2, ALERT_TIMEOUT);
    }
    let printed = detector.alerts_after(SETTLE_TIME);
    assert!(printed.len() >= 4, "{}", alert::list(&printed));
    let stats = detector.stop();
    assert_nothing_lost(&stats);
    let count = printed.len() as u64;
    assert_eq!(sink_count(&stats, "hook", "sent"), 0, "{stats}");
    assert_eq!(sink_count(&stats, "hook", "spooled"), count, "{stats}");
    assert_eq!(sink_count(&stats, "hook", "dropped"), 0, "{stats}");
    assert!(sink_count(&stats, "hook", "retried") >= 1, "{stats}");
    assert!(
        !journal_segments(&spool_dir).is_empty(),
        "the undelivered alerts are kept in the journal"
    );

    // Run 2: the receiver is up; no new alerts are raised.
    let receiver = HttpReceiver::start_on(port, Vec::new(), Reply::status(200));
    let mut detector = Detector::start(&policy, Mode::Monitor, &cgroup);
    let accepted = receiver.wait_for(|r| r.accepted(), printed.len(), DELIVERY_TIMEOUT);
    let received: Vec<Value> = accepted.iter().map(|r| r.json()).collect();
    assert_eq!(
        received,
        printed,
        "the spooled alerts, in the order they were raised; received:\n{}",
        alert::list(&received)
    );
    let stats = detector.stop();
    assert_nothing_lost(&stats);
    assert_eq!(sink_count(&stats, "hook", "sent"), count, "{stats}");
    assert_eq!(sink_count(&stats, "hook", "spooled"), 0, "{stats}");
    assert_eq!(sink_count(&stats, "hook", "failed"), 0, "{stats}");
    assert_eq!(
        stats["alerts"], 0,
        "run 2 raised no alert of its own: {stats}"
    );
    assert!(
        detector.alerts().is_empty(),
        "spooled alerts are not printed again on stdout"
    );
    assert_eq!(
        receiver.requests().len(),
        printed.len(),
        "each alert once: {:#?}",
        receiver.requests().len()
    );
    assert!(
        journal_segments(&spool_dir).is_empty(),
        "the journal is empty once everything is delivered"
    );
}
