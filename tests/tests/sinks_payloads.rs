//! The PagerDuty and Slack sinks speak their services' public formats.
//!
//! A PagerDuty-shaped receiver (answers 202 like the Events API v2) and a Slack-shaped one
//! (answers `ok` like an incoming webhook) stand in for the services; the routing key comes
//! from an environment variable and the Slack URL from a file, as in production. One JVM runs
//! perl (an interpreter: severity high) and then a shell (critical): two alerts, one incident.
//! Proves, for every alert the stdout sink printed: one PagerDuty event with exactly the
//! Events API v2 fields and types (`routing_key`, `event_action` "trigger", `dedup_key` = the
//! incident id, `payload.summary` at most 1024 characters, `source` = host, `severity` mapped
//! critical→critical and high→error, `timestamp`, `component` = the JVM, `class` = the rule,
//! `custom_details` = the whole alert), and one Slack message with a `text` fallback and
//! `blocks` within Block Kit's limits that name the rule, the JVM, the host and the action;
//! neither secret appears in the daemon's logs.

use integration_tests::{
    alert, assert_nothing_lost,
    receivers::{sink_count, toml_str, HttpReceiver, Received, Reply, DELIVERY_TIMEOUT},
    require_kernel_support, Detector, JavaProgram, Mode, Policy, ScratchDir, TestCgroup,
    ALERT_TIMEOUT, SETTLE_TIME,
};
use serde_json::Value;

const ROUTING_KEY_ENV: &str = "DETECTOR_TEST_PAGERDUTY_ROUTING_KEY";
const ROUTING_KEY: &str = "R0ut1ngK3yF0rTh3T3st5ink5Payl0ad";
const SLACK_PATH: &str = "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX";

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

fn pagerduty_severity(ours: &str) -> &'static str {
    match ours {
        "critical" => "critical",
        "high" => "error",
        "medium" => "warning",
        "low" => "info",
        other => panic!("not a contract severity: {other}"),
    }
}

fn check_pagerduty_event(request: &Received, alert: &Value) {
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v2/enqueue");
    assert_eq!(request.header("Content-Type"), Some("application/json"));
    let event = request.json();
    for key in keys(&event) {
        assert!(
            [
                "routing_key",
                "event_action",
                "dedup_key",
                "payload",
                "client",
                "client_url",
                "images",
                "links"
            ]
            .contains(&key),
            "not an Events API v2 field: {key}\n{event:#}"
        );
    }
    assert_eq!(event["routing_key"], ROUTING_KEY);
    assert_eq!(event["event_action"], "trigger");
    assert_eq!(
        event["dedup_key"], alert["incident_id"],
        "one incident, one page"
    );
    let payload = &event["payload"];
    assert_eq!(
        keys(payload),
        [
            "class",
            "component",
            "custom_details",
            "severity",
            "source",
            "summary",
            "timestamp"
        ],
        "{payload:#}"
    );
    let summary = payload["summary"].as_str().expect("summary is a string");
    assert!(
        !summary.is_empty() && summary.chars().count() <= 1024,
        "summary: 1 to 1024 characters: {summary}"
    );
    assert!(
        summary.contains(alert["summary"].as_str().expect("summary")),
        "{summary}"
    );
    assert_eq!(payload["source"], alert["host"]);
    assert_eq!(
        payload["severity"],
        pagerduty_severity(alert["severity"].as_str().expect("severity"))
    );
    assert_eq!(payload["timestamp"], alert["time"]);
    assert_eq!(payload["component"], alert["jvm"]["exe"]);
    assert_eq!(payload["class"], alert["rule"]);
    assert_eq!(&payload["custom_details"], alert, "the whole alert record");
}

fn check_slack_message(request: &Received, alert: &Value) {
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, SLACK_PATH);
    assert_eq!(request.header("Content-Type"), Some("application/json"));
    let message = request.json();
    assert_eq!(keys(&message), ["blocks", "text"], "{message:#}");
    let text = message["text"].as_str().expect("text is a string");
    let rule = alert["rule"].as_str().expect("rule");
    let host = alert["host"].as_str().expect("host");
    assert!(text.contains(rule) && text.contains(host), "{text}");
    let blocks = message["blocks"].as_array().expect("blocks is a list");
    assert!(!blocks.is_empty() && blocks.len() <= 50);
    let mut all_text = String::new();
    for block in blocks {
        match block["type"].as_str() {
            Some("header") => {
                assert_eq!(block["text"]["type"], "plain_text");
                let t = block["text"]["text"].as_str().expect("header text");
                assert!(t.chars().count() <= 150, "{t}");
                all_text.push_str(t);
            }
            Some("section") => {
                if let Some(t) = block.get("text") {
                    assert_eq!(t["type"], "mrkdwn");
                    let t = t["text"].as_str().expect("section text");
                    assert!(t.chars().count() <= 3000);
                    all_text.push_str(t);
                }
                if let Some(fields) = block.get("fields") {
                    let fields = fields.as_array().expect("fields is a list");
                    assert!(fields.len() <= 10);
                    for f in fields {
                        assert_eq!(f["type"], "mrkdwn");
                        let t = f["text"].as_str().expect("field text");
                        assert!(t.chars().count() <= 2000);
                        all_text.push_str(t);
                        all_text.push('\n');
                    }
                }
            }
            Some("context") => {
                for e in block["elements"].as_array().expect("elements") {
                    all_text.push_str(e["text"].as_str().unwrap_or_default());
                }
            }
            other => panic!("unexpected block type {other:?}: {block}"),
        }
    }
    let jvm_pid = alert["jvm"]["pid"].as_u64().expect("jvm pid").to_string();
    for needle in [rule, host, jvm_pid.as_str(), "reported"] {
        assert!(
            all_text.contains(needle),
            "the message does not say {needle:?}:\n{all_text}"
        );
    }
}

#[test]
fn pagerduty_and_slack_payloads_match_the_public_formats() {
    if !require_kernel_support() {
        return;
    }
    let pagerduty = HttpReceiver::start(Vec::new(), Reply::pagerduty_accepted());
    let slack = HttpReceiver::start(Vec::new(), Reply::slack_ok());
    let scratch = ScratchDir::new("sinks-payloads");
    let slack_url_file = scratch.file("slack-url");
    std::fs::write(&slack_url_file, slack.url(SLACK_PATH)).expect("writing the Slack URL");
    // The test is the only thread of this test binary; the daemon inherits the variable.
    std::env::set_var(ROUTING_KEY_ENV, ROUTING_KEY);
    let policy = format!(
        "{}\n[delivery]\nspool_dir = {}\n\n[[sinks]]\ntype = \"stdout\"\n\n[[sinks]]\n\
         type = \"pagerduty\"\nname = \"oncall\"\nrouting_key_env = {}\nurl = {}\n\n\
         [[sinks]]\ntype = \"slack\"\nwebhook_url_file = {}\n",
        Policy::new(Mode::Monitor).to_toml(),
        toml_str(&scratch.file("spool").to_string_lossy()),
        toml_str(ROUTING_KEY_ENV),
        toml_str(&pagerduty.url("/v2/enqueue")),
        toml_str(&slack_url_file.to_string_lossy()),
    );
    let cgroup = TestCgroup::new("sinks-payloads");
    let mut detector = Detector::start(&policy, Mode::Monitor, &cgroup);

    let run = JavaProgram::new("AllowedChild")
        .arg(scratch.file("perl-canary"))
        .arg(scratch.file("marker-canary"))
        .current_dir(scratch.path())
        .run_in_cgroup(&cgroup);
    run.assert_success();
    detector.wait_for_alerts(alert::shell_spawn_from(run.jvm_pid()), 2, ALERT_TIMEOUT);
    let printed = detector.alerts_after(SETTLE_TIME);
    let severities: Vec<&str> = printed
        .iter()
        .filter_map(|a| a["severity"].as_str())
        .collect();
    assert!(
        severities.contains(&"high") && severities.contains(&"critical"),
        "perl (high) and the shell (critical): {}",
        alert::list(&printed)
    );

    let events = pagerduty.wait_for(|_| true, printed.len(), DELIVERY_TIMEOUT);
    let messages = slack.wait_for(|_| true, printed.len(), DELIVERY_TIMEOUT);
    for (i, alert) in printed.iter().enumerate() {
        check_pagerduty_event(&events[i], alert);
        check_slack_message(&messages[i], alert);
    }

    // The JVM has exited, so its incident is closed: PagerDuty gets a resolve with the same
    // dedup_key (after every alert), Slack a "resolved" message.
    let incident = printed[0]["incident_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let events = pagerduty.wait_for(|_| true, printed.len() + 1, DELIVERY_TIMEOUT);
    let resolve = events[printed.len()].json();
    assert_eq!(resolve["event_action"], "resolve", "{resolve}");
    assert_eq!(resolve["dedup_key"], incident.as_str(), "{resolve}");
    assert_eq!(resolve["routing_key"], ROUTING_KEY);
    let messages = slack.wait_for(|_| true, printed.len() + 1, DELIVERY_TIMEOUT);
    let resolved = String::from_utf8_lossy(&messages[printed.len()].body).to_lowercase();
    assert!(resolved.contains("resolved"), "{resolved}");

    let stats = detector.stop();
    assert_nothing_lost(&stats);
    for sink in ["oncall", "slack"] {
        assert_eq!(
            sink_count(&stats, sink, "sent"),
            printed.len() as u64 + 1,
            "alerts and the resolution: {stats}"
        );
    }
    assert_eq!(
        pagerduty.requests().len(),
        printed.len() + 1,
        "nothing sent twice"
    );
    assert_eq!(
        slack.requests().len(),
        printed.len() + 1,
        "nothing sent twice"
    );
    let logs = detector.logs();
    assert!(!logs.contains(ROUTING_KEY), "routing key logged:\n{logs}");
    assert!(!logs.contains(SLACK_PATH), "Slack URL logged:\n{logs}");
}
