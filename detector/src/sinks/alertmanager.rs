//! Prometheus Alertmanager, API v2: `POST <url>/api/v2/alerts` with a list of one
//! `postableAlert` per alert: `labels` (what identifies it: `alertname` = the rule, `severity`,
//! `host`, `incident_id`, `action`, and the container and pod when known), `annotations`
//! (`summary`, a `description` for people, the alert record as JSON) and `startsAt`.
//!
//! Two alerts with the same labels are one alert to Alertmanager, which is what its grouping
//! and silences expect: repeated shells of one incident update one alert. No `endsAt` is sent,
//! so Alertmanager resolves the alert itself after its `resolve_timeout` (5 minutes by
//! default) without news; resolutions are not sent.

use serde_json::{json, Map, Value};

use super::message::{network_line, Message};
use crate::alert::Alert;

/// Label names Alertmanager accepts: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The labels of `alert`; empty values are left out (Alertmanager treats them as absent).
pub(crate) fn labels(alert: &Alert) -> Map<String, Value> {
    let severity = serde_json::to_value(alert.severity).unwrap_or(Value::Null);
    let action = serde_json::to_value(alert.action).unwrap_or(Value::Null);
    let mut labels = Map::new();
    let mut put = |name: &str, value: Value| {
        debug_assert!(valid_label_name(name), "{name}");
        if value.as_str().is_some_and(|v| !v.is_empty()) {
            labels.insert(name.to_owned(), value);
        }
    };
    put("alertname", alert.rule.as_str().into());
    put("severity", severity);
    put("host", alert.host.clone().into());
    put("incident_id", alert.incident_id.clone().into());
    put("action", action);
    put("source", "detector".into());
    if let Some(c) = &alert.container {
        put("container_id", c.id.clone().unwrap_or_default().into());
        put("container", c.name.clone().unwrap_or_default().into());
        put("image", c.image.clone().unwrap_or_default().into());
    }
    if let Some(k) = &alert.kubernetes {
        put("pod", k.pod.clone().unwrap_or_default().into());
        put("namespace", k.namespace.clone().unwrap_or_default().into());
        put("pod_uid", k.uid.clone().unwrap_or_default().into());
    }
    labels
}

/// What a person reads: the JVM, the process, the network, each on a line.
fn description(alert: &Alert) -> String {
    let mut lines = vec![alert.summary.clone()];
    if let Some(jvm) = &alert.jvm {
        lines.push(format!("JVM: pid {} {}", jvm.pid, jvm.argv.join(" ")));
    }
    if let Some(p) = &alert.process {
        lines.push(format!("Process: pid {} {}", p.pid, p.argv.join(" ")));
    }
    if let Some(n) = &alert.network {
        lines.push(format!("Network: {}", network_line(n)));
    }
    if let Some(workload) = alert.workload() {
        lines.push(format!("Where: {workload}"));
    }
    if let Some(c) = &alert.container {
        lines.push(format!("Cgroup: {}", c.cgroup));
    }
    lines.join("\n")
}

/// The request body for `message`: alerts only.
pub(crate) fn alerts(message: &Message) -> Option<Value> {
    let Message::Alert(alert) = message else {
        return None;
    };
    Some(json!([{
        "labels": labels(alert),
        "annotations": {
            "summary": alert.summary,
            "description": description(alert),
            "alert": serde_json::to_string(alert).unwrap_or_default(),
        },
        "startsAt": alert.time,
    }]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::{tests::sample_alert, Resolution};

    #[test]
    fn postable_alerts_shape() {
        let alert = sample_alert();
        let body = alerts(&Message::Alert(Box::new(alert.clone()))).expect("sent");
        let list = body.as_array().expect("a list");
        assert_eq!(list.len(), 1);
        let a = &list[0];
        assert_eq!(
            a["labels"],
            json!({
                "alertname": "jvm_shell_spawn",
                "severity": "critical",
                "host": "node-1",
                "incident_id": alert.incident_id,
                "action": "reported",
                "source": "detector",
                "container_id": "4b1c9a7e2f6d8b0a3c5e7f9a1b3d5f7e9a0c2e4f6a8b0c1d3e5f7a9b1c3d5e7f",
                "container": "app",
                "image": "registry.example/shop:1.2",
                "pod": "shop-7d9f",
                "namespace": "shop",
                "pod_uid": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
            })
        );
        assert_eq!(a["annotations"]["summary"], alert.summary);
        let description = a["annotations"]["description"].as_str().expect("text");
        assert!(
            description.contains("JVM: pid 4242 java -jar app.jar"),
            "{description}"
        );
        assert!(
            description.contains(
                "Where: pod shop/shop-7d9f, container app (image registry.example/shop:1.2)"
            ),
            "{description}"
        );
        let record: Alert =
            serde_json::from_str(a["annotations"]["alert"].as_str().expect("json text"))
                .expect("the alert record");
        assert_eq!(record, alert);
        assert_eq!(a["startsAt"], alert.time);
        assert!(a.get("endsAt").is_none());
        for name in a["labels"].as_object().expect("labels").keys() {
            assert!(valid_label_name(name), "{name}");
        }
    }

    #[test]
    fn unknown_container_parts_are_left_out() {
        let mut alert = sample_alert();
        if let Some(c) = alert.container.as_mut() {
            c.id = None;
            c.name = None;
        }
        alert.kubernetes.as_mut().expect("sample").pod = None;
        let labels = labels(&alert);
        assert!(!labels.contains_key("pod"));
        assert!(!labels.contains_key("container"));
        assert!(!labels.contains_key("container_id"));
        assert!(labels.contains_key("namespace"));
        alert.container = None;
        alert.kubernetes = None;
        assert_eq!(super::labels(&alert).len(), 6);
    }

    #[test]
    fn label_names() {
        assert!(valid_label_name("alertname"));
        assert!(valid_label_name("_x1"));
        assert!(!valid_label_name("1x"));
        assert!(!valid_label_name("pod-uid"));
        assert!(!valid_label_name(""));
    }

    #[test]
    fn resolutions_are_not_sent() {
        assert!(alerts(&Message::Resolve(Resolution {
            incident_id: "a".to_owned(),
            host: "h".to_owned(),
            time: "t".to_owned(),
            summary: "s".to_owned(),
        }))
        .is_none());
    }
}
