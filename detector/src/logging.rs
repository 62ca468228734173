//! Where the daemon's logs go and in what shape (`--log-format`).
//!
//! - `text`: one human line per event; colour only when stderr is a terminal (journald and log
//!   shippers would store the escape sequences verbatim).
//! - `json`: one JSON object per line (`timestamp`, `level`, `target`, `fields`), for log
//!   shippers.
//! - `journald`: native journal entries with structured fields (`PRIORITY`, `TARGET`, the
//!   event's fields in upper case) and `SYSLOG_IDENTIFIER=detector`, so
//!   `journalctl -t detector` and `journalctl -u detector -p warning` find them.
//! - `auto` (the default): `journald` when stderr is the journal (systemd sets
//!   `JOURNAL_STREAM` to the device and inode of the stream it connected), else `text`.
//!
//! The lines scripts wait for (`detector ready`, `detector stats {…}`) are not log events:
//! they are written to stderr as they are, in every format.

use std::io::IsTerminal as _;

use tracing_subscriber::{
    layer::SubscriberExt as _, util::SubscriberInitExt as _, EnvFilter, Layer,
};

/// The `--log-format` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// `journald` under systemd (stderr is the journal), `text` otherwise.
    #[default]
    Auto,
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
    /// Native journal entries with structured fields.
    Journald,
}

/// Whether `JOURNAL_STREAM` (`DEVICE:INODE`) names the stream stderr is, as `sd_journal_stream_fd`
/// documents: a service whose stderr was redirected elsewhere keeps the variable but not the
/// stream.
pub fn is_journal_stream(journal_stream: Option<&str>, stderr: Option<(u64, u64)>) -> bool {
    let (Some(var), Some((dev, ino))) = (journal_stream, stderr) else {
        return false;
    };
    let Some((d, i)) = var.split_once(':') else {
        return false;
    };
    d.parse() == Ok(dev) && i.parse() == Ok(ino)
}

fn stderr_dev_ino() -> Option<(u64, u64)> {
    let st = rustix::fs::fstat(std::io::stderr()).ok()?;
    Some((st.st_dev, st.st_ino))
}

/// What `auto` means here.
pub fn resolve(format: LogFormat) -> LogFormat {
    match format {
        LogFormat::Auto => {
            let var = std::env::var("JOURNAL_STREAM").ok();
            if is_journal_stream(var.as_deref(), stderr_dev_ino()) {
                LogFormat::Journald
            } else {
                LogFormat::Text
            }
        }
        other => other,
    }
}

/// Installs the global subscriber: `DETECTOR_LOG` filters (default `info`).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("DETECTOR_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let text = || {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .boxed()
    };
    let mut fallback = None;
    let layer = match resolve(format) {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Journald => match tracing_journald::layer() {
            Ok(layer) => layer.with_syslog_identifier("detector".to_owned()).boxed(),
            Err(e) => {
                fallback = Some(e);
                text()
            }
        },
        LogFormat::Auto | LogFormat::Text => text(),
    };
    tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .init();
    if let Some(e) = fallback {
        tracing::warn!("the journal is not reachable ({e}); logging text to stderr");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_stream_must_be_stderr_itself() {
        assert!(is_journal_stream(Some("8:1234"), Some((8, 1234))));
        assert!(!is_journal_stream(Some("8:1234"), Some((8, 999))));
        assert!(!is_journal_stream(Some("8:1234"), None));
        assert!(!is_journal_stream(None, Some((8, 1234))));
        assert!(!is_journal_stream(Some("garbage"), Some((8, 1234))));
        assert!(!is_journal_stream(Some("8:x"), Some((8, 1234))));
    }

    #[test]
    fn auto_is_text_off_the_journal() {
        // The test's stderr is not a journal stream whatever JOURNAL_STREAM says.
        assert_eq!(resolve(LogFormat::Json), LogFormat::Json);
        if std::env::var_os("JOURNAL_STREAM").is_none() {
            assert_eq!(resolve(LogFormat::Auto), LogFormat::Text);
        }
    }
}
