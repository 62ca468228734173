//! The pager: PagerDuty Events API v2 (`POST https://events.pagerduty.com/v2/enqueue`).
//!
//! Every alert is a `trigger` whose `dedup_key` is the incident id, so all alerts about one
//! attacked JVM land in one PagerDuty incident: one attack is one page. A [`Resolution`]
//! sends `resolve` with the same key. Fields, after PagerDuty's "Send an Alert Event"
//! reference: `payload.summary` (at most 1024 characters), `source` (the host), `severity`
//! (`critical`, `error`, `warning` or `info`), `timestamp`, `component` (the JVM), `group`
//! (the container or pod), `class` (the rule) and `custom_details` (the whole alert record).

use serde_json::{json, Map, Value};

use super::message::{Message, Resolution};
use crate::{alert::Alert, vocab::Severity};

/// PagerDuty's limit on `payload.summary`, in characters.
pub(crate) const SUMMARY_MAX: usize = 1024;

/// Our severity on PagerDuty's scale.
pub(crate) fn severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "critical",
        Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "info",
    }
}

/// `text`, cut to at most `max` characters (the last one an ellipsis when cut).
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The event for `message`.
pub(crate) fn event(message: &Message, routing_key: &str) -> Option<Value> {
    Some(match message {
        Message::Alert(alert) => trigger(alert, routing_key),
        Message::Resolve(resolution) => resolve(resolution, routing_key),
    })
}

fn trigger(alert: &Alert, routing_key: &str) -> Value {
    let mut payload = Map::new();
    payload.insert(
        "summary".to_owned(),
        truncate(
            &format!(
                "{} on {}: {}",
                alert.rule.as_str(),
                alert.host,
                alert.summary
            ),
            SUMMARY_MAX,
        )
        .into(),
    );
    payload.insert("source".to_owned(), alert.host.clone().into());
    payload.insert("severity".to_owned(), severity(alert.severity).into());
    payload.insert("timestamp".to_owned(), alert.time.clone().into());
    if let Some(jvm) = &alert.jvm {
        payload.insert("component".to_owned(), jvm.exe.clone().into());
    }
    // A pod or a container, not a host cgroup (a systemd service is not a group of its own).
    let contained =
        alert.kubernetes.is_some() || alert.container.as_ref().is_some_and(|c| c.id.is_some());
    if let Some(group) = alert.workload().filter(|_| contained) {
        payload.insert("group".to_owned(), group.into());
    }
    payload.insert("class".to_owned(), alert.rule.as_str().into());
    payload.insert(
        "custom_details".to_owned(),
        serde_json::to_value(alert).unwrap_or(Value::Null),
    );
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert.incident_id,
        "payload": payload,
        "client": "detector",
    })
}

fn resolve(resolution: &Resolution, routing_key: &str) -> Value {
    json!({
        "routing_key": routing_key,
        "event_action": "resolve",
        "dedup_key": resolution.incident_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::tests::sample_alert;

    #[test]
    fn trigger_has_the_events_v2_shape() {
        let alert = sample_alert();
        let event = event(&Message::Alert(Box::new(alert.clone())), "R0UT1NGKEY").expect("sent");
        let keys: Vec<&str> = event
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "client",
                "dedup_key",
                "event_action",
                "payload",
                "routing_key"
            ]
        );
        assert_eq!(event["routing_key"], "R0UT1NGKEY");
        assert_eq!(event["event_action"], "trigger");
        assert_eq!(event["dedup_key"], alert.incident_id);
        let p = &event["payload"];
        assert_eq!(
            p["summary"],
            "jvm_shell_spawn on node-1: java (pid 4242) spawned a shell: /bin/sh -c id"
        );
        assert_eq!(p["source"], "node-1");
        assert_eq!(p["severity"], "critical");
        assert_eq!(p["timestamp"], alert.time);
        assert_eq!(
            p["component"],
            "/usr/lib/jvm/java-17-openjdk-amd64/bin/java"
        );
        assert_eq!(
            p["group"],
            "pod shop/shop-7d9f, container app (image registry.example/shop:1.2)"
        );
        assert_eq!(p["class"], "jvm_shell_spawn");
        assert_eq!(
            p["custom_details"],
            serde_json::to_value(&alert).expect("json")
        );
    }

    #[test]
    fn optional_fields_are_left_out_when_unknown() {
        let mut alert = sample_alert();
        alert.jvm = None;
        alert.container = None;
        let event = event(&Message::Alert(Box::new(alert)), "k").expect("sent");
        assert!(event["payload"].get("component").is_none());
        assert!(event["payload"].get("group").is_none());
    }

    #[test]
    fn severities_map_to_pagerduty_levels() {
        assert_eq!(severity(Severity::Critical), "critical");
        assert_eq!(severity(Severity::High), "error");
        assert_eq!(severity(Severity::Medium), "warning");
        assert_eq!(severity(Severity::Low), "info");
    }

    #[test]
    fn summary_is_at_most_1024_characters() {
        let mut alert = sample_alert();
        alert.summary = "é".repeat(5000);
        let event = event(&Message::Alert(Box::new(alert)), "k").expect("sent");
        let summary = event["payload"]["summary"].as_str().expect("string");
        assert_eq!(summary.chars().count(), SUMMARY_MAX);
        assert!(summary.ends_with('…'));
        assert_eq!(truncate("short", 1024), "short");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }

    #[test]
    fn resolution_resolves_the_incident() {
        let event = event(
            &Message::Resolve(Resolution {
                incident_id: "be2ca6590428fb93".to_owned(),
                host: "node-1".to_owned(),
                time: "2026-01-01T12:00:00.000000Z".to_owned(),
                summary: "the JVM exited".to_owned(),
            }),
            "k",
        )
        .expect("sent");
        assert_eq!(
            event,
            json!({"routing_key": "k", "event_action": "resolve", "dedup_key": "be2ca6590428fb93"})
        );
    }
}
