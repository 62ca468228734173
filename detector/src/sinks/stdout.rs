//! JSON lines on standard output (the default sink). Logs go to stderr, so stdout carries
//! nothing but alerts and can be piped straight into `jq` or a log shipper.
//!
//! A sink like the others (queue, journal, acknowledgements): a line counts as delivered once
//! written and flushed, so after a crash the next start prints again what was not; the line
//! is then the same alert, with the same id. Writing happens on tokio's blocking pool (stdout
//! can block on a slow pipe), never on the detection thread.

use std::{
    io::{self, Write as _},
    sync::{Arc, Mutex},
};

use super::{
    error::Failure,
    message::{Envelope, Message},
};

#[derive(Debug, Default)]
pub(crate) struct StdoutSink {
    /// The first write error: stdout is gone for good (a closed pipe); the daemon reports it
    /// at exit, as it always did.
    error: Arc<Mutex<Option<io::Error>>>,
}

impl StdoutSink {
    pub(crate) fn new() -> Self {
        StdoutSink::default()
    }

    pub(crate) async fn deliver(&mut self, envelope: &Envelope) -> Result<(), Failure> {
        let Message::Alert(alert) = &envelope.message else {
            return Ok(());
        };
        if let Some(e) = &*self.error.lock().unwrap_or_else(|p| p.into_inner()) {
            return Err(Failure::Permanent {
                reason: format!("stdout failed earlier: {e}"),
            });
        }
        let mut line = serde_json::to_vec(alert).unwrap_or_default();
        line.push(b'\n');
        let written = tokio::task::spawn_blocking(move || {
            let mut out = io::stdout().lock();
            out.write_all(&line)?;
            out.flush()
        })
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e.to_string())));
        match written {
            Ok(()) => Ok(()),
            Err(e) => {
                let reason = format!("writing to stdout: {e}");
                let mut error = self.error.lock().unwrap_or_else(|p| p.into_inner());
                error.get_or_insert(e);
                Err(Failure::Permanent { reason })
            }
        }
    }

    /// The write error that stopped this sink, if any.
    pub(crate) fn take_error(&mut self) -> Option<io::Error> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}
