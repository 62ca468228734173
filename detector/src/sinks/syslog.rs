//! Syslog: one message per alert over a local datagram socket (`/dev/log`, where journald or
//! rsyslog listen), framed as syslog(3) frames it (RFC 3164, the default) or as RFC 5424:
//!
//! ```text
//! <PRI>Nov 23 01:04:22 detector[PID]: {"schema":"detector.alert/v1",...}
//! <PRI>1 TIMESTAMP HOST detector PID ALERT - {"schema":"detector.alert/v1",...}
//! ```
//!
//! journald reads the identifier (`journalctl -t detector`) and the PID only from the first
//! form; it takes an RFC 5424 header for part of the message.
//!
//! PRI is the facility (`auth` unless the policy says otherwise) times 8 plus the severity:
//! `critical` → 2 (crit), `high` → 3 (err), `medium` → 4 (warning), `low` → 5 (notice).
//! The timestamp is the alert's time: RFC 3339 with microseconds in RFC 5424, UTC
//! `Mmm dd hh:mm:ss` in RFC 3164 (which has no zone; receivers stamp their own time anyway).

use std::{path::PathBuf, time::SystemTime};

use tokio::net::UnixDatagram;

use super::{
    error::Failure,
    message::{Envelope, Message},
};
use crate::{alert::Alert, policy::SyslogFormat, timefmt::rfc3339_seconds, vocab::Severity};

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

/// The message for `alert`, from process `pid`.
pub(crate) fn format(alert: &Alert, facility: u8, pid: u32, framing: SyslogFormat) -> String {
    let pri = u32::from(facility) * 8 + u32::from(severity_code(alert.severity));
    let json = serde_json::to_string(alert).unwrap_or_default();
    match framing {
        SyslogFormat::Rfc3164 => {
            let stamp = rfc3164_timestamp(&alert.time).unwrap_or_else(|| {
                rfc3164_timestamp(&rfc3339_seconds(SystemTime::now())).unwrap_or_default()
            });
            format!("<{pri}>{stamp} {APP_NAME}[{pid}]: {json}")
        }
        SyslogFormat::Rfc5424 => format!(
            "<{pri}>1 {} {} {APP_NAME} {pid} {MSG_ID} - {json}",
            header_field(&alert.time, 64),
            header_field(&alert.host, 255),
        ),
    }
}

/// `2026-11-23T01:04:22.304226Z` as `Nov 23 01:04:22` (the day space-padded: `Nov  3`), or
/// `None` if `rfc3339` does not start with a date and time.
fn rfc3164_timestamp(rfc3339: &str) -> Option<String> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month: usize = rfc3339.get(5..7)?.parse().ok()?;
    let day: u8 = rfc3339.get(8..10)?.parse().ok()?;
    let time = rfc3339.get(11..19)?;
    let well_formed = rfc3339.get(4..5) == Some("-")
        && rfc3339.get(10..11) == Some("T")
        && time.bytes().enumerate().all(|(i, b)| match i {
            2 | 5 => b == b':',
            _ => b.is_ascii_digit(),
        });
    let name = MONTHS.get(month.checked_sub(1)?)?;
    (well_formed && (1..=31).contains(&day)).then(|| format!("{name} {day:>2} {time}"))
}

#[derive(Debug)]
pub(crate) struct SyslogSink {
    socket: PathBuf,
    facility: u8,
    framing: SyslogFormat,
    /// Opened on first use, and again after an error.
    sock: Option<UnixDatagram>,
}

impl SyslogSink {
    pub(crate) fn new(socket: PathBuf, facility: u8, framing: SyslogFormat) -> Self {
        SyslogSink {
            socket,
            facility,
            framing,
            sock: None,
        }
    }

    pub(crate) async fn deliver(&mut self, envelope: &Envelope) -> Result<(), Failure> {
        let Message::Alert(alert) = &envelope.message else {
            return Ok(());
        };
        let line = format(alert, self.facility, std::process::id(), self.framing);
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

    /// What journald's `syslog_parse_identifier` takes from a datagram on /dev/log: after
    /// `<PRI>`, an RFC 3164 timestamp (15 characters and a space) if there is one, then the
    /// identifier up to `[`, the PID up to `]`, and `: ` before the message.
    fn journald_fields(datagram: &str) -> Option<(u32, &str, &str, &str)> {
        let (pri, rest) = datagram.strip_prefix('<')?.split_once('>')?;
        let rest = match rest.get(..16) {
            Some(stamp) if stamp.as_bytes()[15] == b' ' && stamp.as_bytes()[9] == b':' => {
                &rest[16..]
            }
            _ => rest,
        };
        let (identifier, rest) = rest.split_once('[')?;
        let (pid, message) = rest.split_once("]: ")?;
        Some((pri.parse().ok()?, identifier, pid, message))
    }

    #[test]
    fn rfc3164_is_what_journald_parses_an_identifier_from() {
        let alert = sample_alert();
        let line = format(&alert, 4, 321, SyslogFormat::Rfc3164);
        let json = serde_json::to_string(&alert).expect("json");
        let (pri, identifier, pid, message) = journald_fields(&line).expect(&line);
        assert_eq!((pri, identifier, pid), (34, "detector", "321"), "{line}");
        assert_eq!(message, json);
        // The RFC 5424 form loses the identifier there: that is why it is not the default.
        let line = format(&alert, 4, 321, SyslogFormat::Rfc5424);
        assert_ne!(
            journald_fields(&line).map(|f| f.1),
            Some("detector"),
            "{line}"
        );
    }

    #[test]
    fn rfc3164_timestamps() {
        assert_eq!(
            rfc3164_timestamp("2026-11-23T01:04:22.304226Z").as_deref(),
            Some("Nov 23 01:04:22")
        );
        assert_eq!(
            rfc3164_timestamp("2026-01-03T21:00:09Z").as_deref(),
            Some("Jan  3 21:00:09")
        );
        for bad in [
            "",
            "2026-13-01T00:00:00Z",
            "2026-11-23 01:04:22",
            "2026-11-2xT01:04:22",
            "2026-11-23T01-04-22Z",
            "é",
        ] {
            assert_eq!(rfc3164_timestamp(bad), None, "{bad:?}");
        }
        // An alert whose time can't be read still gets a well-formed header (now).
        let mut alert = sample_alert();
        alert.time = "garbage".to_owned();
        let line = format(&alert, 4, 1, SyslogFormat::Rfc3164);
        assert!(
            journald_fields(&line).is_some_and(|f| f.1 == "detector"),
            "{line}"
        );
    }

    #[test]
    fn rfc5424_header_and_json_message() {
        let alert = sample_alert();
        let line = format(&alert, 4, 321, SyslogFormat::Rfc5424);
        let json = serde_json::to_string(&alert).expect("json");
        assert_eq!(
            line,
            format!("<34>1 {} node-1 detector 321 ALERT - {json}", alert.time)
        );
        let mut low = alert.clone();
        low.severity = Severity::Low;
        assert!(format(&low, 16, 1, SyslogFormat::Rfc5424).starts_with("<133>1 "));
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
        let mut sink = SyslogSink::new(path.clone(), 4, SyslogFormat::Rfc3164);
        sink.deliver(&sample_envelope()).await.expect("sent");
        let mut buf = vec![0; 65_536];
        let n = server.recv(&mut buf).await.expect("received");
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(
            text.starts_with("<34>") && text.contains(" detector["),
            "{text}"
        );
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
