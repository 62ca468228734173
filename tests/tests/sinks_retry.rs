//! A webhook receiver that fails, then recovers: every alert still arrives, once, in order per
//! incident, signed.
//!
//! Three JVMs each start a shell that starts a shell (two alerts per JVM, one incident per
//! JVM). The receiver answers the first request with 500 and the second with 429 and
//! `Retry-After: 1`, then 200. Proves: the refused requests were retries of the same alert
//! (same `Idempotency-Key`); every alert the stdout sink printed was accepted by the receiver
//! exactly once, with the body byte-for-byte the alert record, in the order of the stdout
//! sink within each incident; every accepted request carries a valid
//! `X-Detector-Signature: sha256=<HMAC-SHA256 of the body>` and the configured header; the
//! stats count the retries and nothing failed, spooled or dropped.

use std::time::Duration;

use integration_tests::{
    alert, assert_nothing_lost,
    receivers::{hmac_signature, sink_count, toml_str, HttpReceiver, Reply, DELIVERY_TIMEOUT},
    require_kernel_support, Detector, JavaProgram, Mode, Policy, ScratchDir, TestCgroup,
    ALERT_TIMEOUT, SETTLE_TIME,
};
use serde_json::Value;

const HMAC_KEY: &str = "test-key-for-the-webhook-signature";

#[test]
fn webhook_retries_until_every_alert_arrives_in_order_and_signed() {
    if !require_kernel_support() {
        return;
    }
    let receiver = HttpReceiver::start(
        vec![
            Reply::status(500),
            Reply::RetryAfter {
                status: 429,
                seconds: 1,
            },
        ],
        Reply::status(200),
    );
    let scratch = ScratchDir::new("sinks-retry");
    let key_file = scratch.file("hmac.key");
    std::fs::write(&key_file, format!("{HMAC_KEY}\n")).expect("writing the key file");
    let policy = format!(
        "{}\n[delivery]\nspool_dir = {}\n\n[[sinks]]\ntype = \"stdout\"\n\n[[sinks]]\n\
         type = \"webhook\"\nname = \"hook\"\nurl = {}\nheaders = {{ \"X-Team\" = \"sec\" }}\n\
         hmac_key_file = {}\ndedup_window = \"0s\"\n",
        Policy::new(Mode::Monitor).to_toml(),
        toml_str(&scratch.file("spool").to_string_lossy()),
        toml_str(&receiver.url("/hooks/detector")),
        toml_str(&key_file.to_string_lossy()),
    );
    let cgroup = TestCgroup::new("sinks-retry");
    let mut detector = Detector::start(&policy, Mode::Monitor, &cgroup);

    for i in 0..3 {
        let canary = scratch.file(&format!("canary-{i}"));
        let run = JavaProgram::new("Grandchild")
            .arg(&canary)
            .current_dir(scratch.path())
            .run_in_cgroup(&cgroup);
        run.assert_success();
        detector.wait_for_alerts(alert::shell_spawn_from(run.jvm_pid()), 2, ALERT_TIMEOUT);
    }
    // What the stdout sink printed is what the webhook must get.
    let printed = detector.alerts_after(SETTLE_TIME);
    assert!(printed.len() >= 6, "{}", alert::list(&printed));

    let accepted = receiver.wait_for(|r| r.accepted(), printed.len(), DELIVERY_TIMEOUT);
    let all = receiver.requests();
    assert!(
        !all[0].accepted() && !all[1].accepted() && all[2].accepted(),
        "the script: 500, 429, then 200"
    );
    let key = |i: usize| all[i].header("Idempotency-Key").map(str::to_owned);
    assert!(key(0).is_some(), "no Idempotency-Key:\n{}", all[0]);
    assert_eq!(
        key(0),
        key(1),
        "the 429 was not a retry of the refused alert"
    );
    assert_eq!(
        key(1),
        key(2),
        "the accepted request was not the retried alert"
    );

    for request in &accepted {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/hooks/detector");
        assert_eq!(request.header("Content-Type"), Some("application/json"));
        assert_eq!(request.header("X-Team"), Some("sec"), "{request}");
        assert_eq!(
            request.header("X-Detector-Signature"),
            Some(hmac_signature(HMAC_KEY.as_bytes(), &request.body).as_str()),
            "the signature is not the HMAC-SHA256 of the body:\n{request}"
        );
    }
    let received: Vec<Value> = accepted.iter().map(|r| r.json()).collect();
    assert_eq!(
        received.len(),
        printed.len(),
        "each alert accepted exactly once; received:\n{}\nprinted:\n{}",
        alert::list(&received),
        alert::list(&printed)
    );
    let mut keys: Vec<&str> = accepted
        .iter()
        .filter_map(|r| r.header("Idempotency-Key"))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), printed.len(), "one idempotency key per alert");

    // In order per incident, and the same alerts.
    let incidents: Vec<&str> = printed
        .iter()
        .filter_map(|a| a["incident_id"].as_str())
        .collect();
    for incident in &incidents {
        let of = |alerts: &[Value]| -> Vec<Value> {
            alerts
                .iter()
                .filter(|a| a["incident_id"].as_str() == Some(incident))
                .cloned()
                .collect()
        };
        assert_eq!(
            of(&received),
            of(&printed),
            "incident {incident}: the webhook got other alerts, or in another order"
        );
    }

    let stats = detector.stop();
    assert_eq!(sink_count(&stats, "hook", "sent"), printed.len() as u64);
    assert!(sink_count(&stats, "hook", "retried") >= 2, "{stats}");
    for counter in ["failed", "spooled", "dropped", "deduplicated"] {
        assert_eq!(sink_count(&stats, "hook", counter), 0, "{counter}: {stats}");
    }
    assert_eq!(sink_count(&stats, "stdout", "sent"), printed.len() as u64);
    assert_eq!(stats["alerts"], printed.len() as u64, "{stats}");
    assert!(
        !detector.logs().contains(HMAC_KEY),
        "the HMAC key was logged:\n{}",
        detector.logs()
    );
    assert_nothing_lost(&stats);
    // Two refusals, then one request per alert: nothing sent twice, nothing after the stop.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(receiver.requests().len(), printed.len() + 2);
}
