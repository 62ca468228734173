//! A Slack incoming webhook: `text` (the notification and the fallback) and Block Kit `blocks`
//! a person reads in the channel: what happened, which JVM, which host and pod, what was done.
//!
//! Slack's limits (Block Kit reference): a `header` holds 150 characters of plain text, a
//! section's text 3000, a field 2000, and a message at most 10 fields. User text is escaped
//! (`&`, `<`, `>`), so a command line cannot mention `@channel` or forge a link.

use serde_json::{json, Value};

use super::{
    message::{network_line, Message, Resolution},
    pagerduty::truncate,
};
use crate::{alert::Alert, vocab::Action};

const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;
const FIELD_MAX: usize = 2000;

/// Slack's mrkdwn escaping of `&`, `<` and `>`.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Inline code: backticks in the text would end it early, so they become quotes.
fn code(text: &str, max: usize) -> String {
    format!("`{}`", truncate(&escape(&text.replace('`', "'")), max - 2))
}

fn action_text(action: Action) -> &'static str {
    match action {
        Action::Reported => "reported (monitor mode: it ran)",
        Action::Blocked => "blocked in the kernel before it happened",
        Action::Killed => "killed before its first instruction",
        Action::Frozen => "frozen (SIGSTOP) for a human to look at",
    }
}

/// The message for `message`.
pub(crate) fn message(message: &Message) -> Option<Value> {
    Some(match message {
        Message::Alert(alert) => alert_message(alert),
        Message::Resolve(resolution) => resolve_message(resolution),
    })
}

fn field(label: &str, value: String) -> Value {
    json!({"type": "mrkdwn", "text": truncate(&format!("*{label}*\n{value}"), FIELD_MAX)})
}

fn alert_message(alert: &Alert) -> Value {
    let severity = serde_json::to_value(alert.severity)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let rule = alert.rule.as_str();
    let text = truncate(
        &escape(&format!(
            "[{severity}] {rule} on {}: {}",
            alert.host, alert.summary
        )),
        SECTION_MAX,
    );

    let mut fields = vec![
        field("What", format!("`{rule}` ({severity})")),
        field("Action", escape(action_text(alert.action))),
        field("Host", escape(&alert.host)),
    ];
    if let Some(jvm) = &alert.jvm {
        fields.push(field(
            "JVM",
            format!(
                "pid {}: {}",
                jvm.pid,
                code(&jvm.argv.join(" "), FIELD_MAX - 40)
            ),
        ));
    }
    if let Some(process) = &alert.process {
        fields.push(field(
            "Process",
            format!(
                "pid {}: {}",
                process.pid,
                code(&process.argv.join(" "), FIELD_MAX - 40)
            ),
        ));
    }
    if let Some(network) = &alert.network {
        fields.push(field("Network", escape(&network_line(network))));
    }
    if let Some(where_) = alert.workload() {
        fields.push(field("Pod / container", escape(&where_)));
    }
    fields.truncate(10);

    json!({
        "text": text,
        "blocks": [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": truncate(&format!("{} {rule} on {}", severity.to_uppercase(), alert.host), HEADER_MAX),
                }
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": truncate(&escape(&alert.summary), SECTION_MAX)}
            },
            {"type": "section", "fields": fields},
            {
                "type": "context",
                "elements": [{
                    "type": "mrkdwn",
                    "text": truncate(&escape(&format!("incident {} · {}", alert.incident_id, alert.time)), SECTION_MAX),
                }]
            }
        ]
    })
}

fn resolve_message(resolution: &Resolution) -> Value {
    let text = truncate(
        &escape(&format!(
            "Resolved: incident {} on {}: {}",
            resolution.incident_id, resolution.host, resolution.summary
        )),
        SECTION_MAX,
    );
    json!({
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::tests::sample_alert;

    #[test]
    fn alert_message_says_what_where_and_what_was_done() {
        let msg = message(&Message::Alert(Box::new(sample_alert()))).expect("sent");
        assert_eq!(
            msg["text"],
            "[critical] jvm_shell_spawn on node-1: java (pid 4242) spawned a shell: /bin/sh -c id"
        );
        let blocks = msg["blocks"].as_array().expect("blocks");
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["type"], "plain_text");
        assert_eq!(
            blocks[0]["text"]["text"],
            "CRITICAL jvm_shell_spawn on node-1"
        );
        assert_eq!(blocks[1]["text"]["type"], "mrkdwn");
        let fields: Vec<&str> = blocks[2]["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .map(|f| f["text"].as_str().expect("text"))
            .collect();
        assert_eq!(
            fields,
            [
                "*What*\n`jvm_shell_spawn` (critical)",
                "*Action*\nreported (monitor mode: it ran)",
                "*Host*\nnode-1",
                "*JVM*\npid 4242: `java -jar app.jar`",
                "*Process*\npid 4250: `/bin/sh -c id`",
                "*Pod / container*\npod shop/shop-7d9f, container app (image registry.example/shop:1.2)",
            ]
        );
        assert_eq!(blocks[3]["type"], "context");
    }

    #[test]
    fn user_text_is_escaped_and_cut() {
        let mut alert = sample_alert();
        alert.summary = format!("<!channel> & `x` {}", "y".repeat(5000));
        if let Some(p) = alert.process.as_mut() {
            p.argv = vec![
                "sh".to_owned(),
                "-c".to_owned(),
                "echo `id` <@U1>".to_owned(),
            ];
        }
        let msg = message(&Message::Alert(Box::new(alert))).expect("sent");
        let text = msg["text"].as_str().expect("text");
        assert!(text.contains("&lt;!channel&gt; &amp;"), "{text}");
        assert!(!text.contains('<'));
        assert!(text.chars().count() <= SECTION_MAX);
        let section = msg["blocks"][1]["text"]["text"].as_str().expect("text");
        assert!(section.chars().count() <= SECTION_MAX);
        let process = msg["blocks"][2]["fields"][4]["text"]
            .as_str()
            .expect("text");
        assert_eq!(
            process,
            "*Process*\npid 4250: `sh -c echo 'id' &lt;@U1&gt;`"
        );
    }

    #[test]
    fn resolution_is_one_line() {
        let msg = message(&Message::Resolve(Resolution {
            incident_id: "abc".to_owned(),
            host: "node-1".to_owned(),
            time: "t".to_owned(),
            summary: "JVM exited".to_owned(),
        }))
        .expect("sent");
        assert_eq!(msg["text"], "Resolved: incident abc on node-1: JVM exited");
    }
}
