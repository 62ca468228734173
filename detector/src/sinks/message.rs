//! What travels to a sink (an alert, or the news that an incident is over), as queued and as
//! spooled, with its stable id; and the shapes the formats give it. The bottom of `sinks`: the
//! formats, the spool, the transports and the dispatcher all build on it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::alert::{Alert, NetworkInfo};

/// What travels to a sink: an alert, or the news that an incident is over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Message {
    Alert(Box<Alert>),
    Resolve(Resolution),
}

/// An incident is closed: the sinks that track incidents (PagerDuty, Slack) say so.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    pub incident_id: String,
    pub host: String,
    /// RFC 3339, like an alert's `time`.
    pub time: String,
    /// Why it is over, in one sentence.
    pub summary: String,
}

/// One message on its way to one sink, as queued and as spooled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Order of the message among all messages to this sink, across restarts.
    pub seq: u64,
    /// The idempotency key ([`alert_id`]).
    pub id: String,
    #[serde(flatten)]
    pub message: Message,
}

/// A stable id for a message: the same alert always gets the same id, and any difference in
/// it (time, process, rule, ...) gives another. The first 128 bits of SHA-256 over its JSON.
pub fn alert_id(message: &Message) -> String {
    let json = serde_json::to_vec(message).unwrap_or_default();
    let digest = Sha256::digest(&json);
    hex(&digest[..16])
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The `network` block on one line for people: `tcp 10.0.0.5:1389 (ldap)`, or for inbound
/// traffic `tcp from 203.0.113.7 to port 8080`. Read through JSON, so that it keeps working as
/// the block gains keys.
pub(crate) fn network_line(network: &NetworkInfo) -> String {
    let v = serde_json::to_value(network).unwrap_or_default();
    let text = |key: &str| match v.get(key) {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let transport = text("transport").unwrap_or_default();
    let port = text("dst_port").unwrap_or_default();
    let mut line = match (text("direction").as_deref(), text("src_ip"), text("dst_ip")) {
        (Some("inbound"), Some(src), _) => format!("{transport} from {src} to port {port}"),
        (_, _, Some(dst)) => format!("{transport} {dst}:{port}"),
        _ => format!("{transport} port {port}"),
    };
    if let Some(protocol) = text("protocol") {
        line.push_str(&format!(" ({protocol})"));
    }
    line
}

/// One request: the body and the headers besides `Content-Type`.
pub(crate) struct Request {
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
}
