//! JSON lines on standard output (the default sink). Logs go to stderr, so stdout carries
//! nothing but alerts and can be piped straight into `jq` or a log shipper.

use std::io::Write;

use tokio::sync::mpsc;

use crate::alert::Alert;

/// Alerts waiting to be written, at most; past that they are counted as dropped.
const QUEUE: usize = 65_536;

/// Handle the pipeline sends alerts to; a task of its own writes them.
#[derive(Debug)]
pub struct StdoutSink {
    tx: mpsc::Sender<Alert>,
    dropped: u64,
    sent: u64,
}

impl StdoutSink {
    /// Starts the writer on a blocking thread (stdout writes can block on a slow pipe).
    pub fn start() -> (StdoutSink, tokio::task::JoinHandle<std::io::Result<()>>) {
        let (tx, mut rx) = mpsc::channel::<Alert>(QUEUE);
        let writer = tokio::task::spawn_blocking(move || {
            let stdout = std::io::stdout();
            while let Some(alert) = rx.blocking_recv() {
                let mut out = stdout.lock();
                serde_json::to_writer(&mut out, &alert)?;
                out.write_all(b"\n")?;
                out.flush()?;
            }
            Ok(())
        });
        (
            StdoutSink {
                tx,
                dropped: 0,
                sent: 0,
            },
            writer,
        )
    }

    /// Queues an alert; never blocks the caller.
    pub fn send(&mut self, alert: Alert) {
        match self.tx.try_send(alert) {
            Ok(()) => self.sent += 1,
            Err(e) => {
                self.dropped += 1;
                tracing::error!(
                    dropped = self.dropped,
                    "stdout sink queue full, alert dropped: {e}"
                );
            }
        }
    }

    /// Alerts handed to the writer.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Alerts that could not be queued.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}
