//! Syslog: one RFC 5424 message per alert over the local datagram socket (`/dev/log`, where
//! journald or rsyslog listen):
//!
//! ```text
//! <PRI>1 TIMESTAMP HOST detector PID ALERT - {"schema":"detector.alert/v1",...}
//! ```
//!
//! PRI is the facility (`auth` unless the policy says otherwise) times 8 plus the severity:
//! `critical` → 2 (crit), `high` → 3 (err), `medium` → 4 (warning), `low` → 5 (notice).
//! TIMESTAMP is the alert's time (RFC 3339 with microseconds, as RFC 5424 allows).

use std::path::PathBuf;

use tokio::net::UnixDatagram;

use super::{
    error::Failure,
    message::{Envelope, Message},
};
use crate::{alert::Alert, vocab::Severity};

/// RFC 5424's APP-NAME and MSGID.
const APP_NAME: &str = "detector";
const MSG_ID: &str = "ALERT";

/// Our severity as an RFC 5424 severity code.
pub(crate) fn severity_code(severity: Severity) -> u8 {
    match severity {
        Severity::Critical => 2,
        Severity::High => 3,
        Severity::Medium => 4,
        Severity::Low => 5,
    }
}

/// A header field: printable US-ASCII without spaces, at most `max` long, `-` when empty.
fn header_field(text: &str, max: usize) -> String {
    let field: String = text
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if field.is_empty() {
        "-".to_owned()
    } else {
        field
    }
}

/// The RFC 5424 message for `alert`, from process `pid`.
pub(crate) fn format(alert: &Alert, facility: u8, pid: u32) -> String {
    let pri = u32::from(facility) * 8 + u32::from(severity_code(alert.severity));
    let json = serde_json::to_string(alert).unwrap_or_default();
    format!(
        "<{pri}>1 {} {} {APP_NAME} {pid} {MSG_ID} - {json}",
        header_field(&alert.time, 64),
        header_field(&alert.host, 255),
    )
}

#[derive(Debug)]
pub(crate) struct SyslogSink {
    socket: PathBuf,
    facility: u8,
    /// Opened on first use, and again after an error.
    sock: Option<UnixDatagram>,
}

impl SyslogSink {
    pub(crate) fn new(socket: PathBuf, facility: u8) -> Self {
        SyslogSink {
            socket,
            facility,
            sock: None,
        }
    }

    pub(crate) async fn deliver(&mut self, envelope: &Envelope) -> Result<(), Failure> {
        let Message::Alert(alert) = &envelope.message else {
            return Ok(());
        };
        let line = format(alert, self.facility, std::process::id());
        let transient = |e: std::io::Error| Failure::Transient {
            reason: format!("{}: {e}", self.socket.display()),
            after: None,
        };
        if self.sock.is_none() {
            self.sock = Some(UnixDatagram::unbound().map_err(transient)?);
        }
        let Some(sock) = &self.sock else {
            return Ok(());
        };
        match sock.send_to(line.as_bytes(), &self.socket).await {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => Err(Failure::Permanent {
                reason: format!(
                    "{}: the alert ({} bytes) is larger than the socket accepts",
                    self.socket.display(),
                    line.len()
                ),
            }),
            Err(e) => {
                self.sock = None;
                Err(transient(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::tests::{sample_alert, sample_envelope};

    #[test]
    fn rfc5424_header_and_json_message() {
        let alert = sample_alert();
        let line = format(&alert, 4, 321);
        let json = serde_json::to_string(&alert).expect("json");
        assert_eq!(
            line,
            format!("<34>1 {} node-1 detector 321 ALERT - {json}", alert.time)
        );
        let mut low = alert.clone();
        low.severity = Severity::Low;
        assert!(format(&low, 16, 1).starts_with("<133>1 "));
    }

    #[test]
    fn header_fields_have_no_spaces() {
        assert_eq!(header_field("my host", 255), "myhost");
        assert_eq!(header_field("", 255), "-");
        assert_eq!(header_field("héllo", 255), "hllo");
        assert_eq!(header_field(&"a".repeat(300), 255).len(), 255);
    }

    #[tokio::test]
    async fn sends_to_a_datagram_socket() {
        let dir = std::env::temp_dir().join(format!("detector-syslog-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("log");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).expect("bind");
        let mut sink = SyslogSink::new(path.clone(), 4);
        sink.deliver(&sample_envelope()).await.expect("sent");
        let mut buf = vec![0; 65_536];
        let n = server.recv(&mut buf).await.expect("received");
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("<34>1 "), "{text}");
        assert!(text.ends_with('}'), "{text}");
        drop(server);
        let _ = std::fs::remove_file(&path);
        // Nobody listening: worth retrying later.
        assert!(matches!(
            sink.deliver(&sample_envelope()).await,
            Err(Failure::Transient { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
