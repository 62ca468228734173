//! Where alerts go: the [`Dispatcher`] the pipeline hands every alert to, and one sender per
//! `[[sinks]]` entry of the policy.
//!
//! The detection path never waits on a sink. [`Dispatcher::send`] puts the alert on each
//! matching sink's bounded queue and returns; a task per sink (`delivery`) takes it from
//! there: it formats it for the receiver (`webhook`, `pagerduty`, `slack`, `alertmanager`,
//! `syslog`, `file`), sends it (`http` for the four HTTP sinks), retries with backoff, and
//! leaves what it cannot deliver in the on-disk `spool`, which the next start sends first.
//! A full queue spills into the spool too; an alert is counted `dropped` only when even the
//! spool cannot take it. `stdout` keeps its own writer thread, as it always had.
//!
//! Guarantees (docs/sinks.md): at least once per sink, in order per sink (so per incident),
//! with a stable idempotency key per alert ([`alert_id`]) for receivers to drop the duplicates
//! a restart can cause. Secrets are read once, here, at start; they are never logged and
//! never put in an alert.

mod alertmanager;
mod backoff;
mod dedup;
mod delivery;
mod error;
mod file;
mod http;
mod message;
mod pagerduty;
mod slack;
mod spool;
pub mod stdout;
mod syslog;
mod webhook;

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

use serde::Serialize;
use tokio::sync::{mpsc, watch};

pub use error::SinkError;
pub use message::{alert_id, Envelope, Message, Resolution};

use crate::{
    alert::Alert,
    policy::{DeliveryPolicy, SinkPolicy, SinkTarget},
};
use delivery::{Counters, SinkShared, Worker};
use spool::Spool;
use stdout::StdoutSink;

/// How long [`Dispatcher::shutdown`] keeps trying to deliver before it spools the rest.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Counters of one sink, as the `detector stats` line shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SinkStats {
    /// Delivered (for stdout: handed to the writer).
    pub sent: u64,
    /// Attempts after a failed one.
    pub retried: u64,
    /// Alerts given up on (refused, or still failing after `give_up_after`); they stay in the
    /// spool.
    pub failed: u64,
    /// Alerts written to the spool (queue full, given up, or still queued at shutdown).
    pub spooled: u64,
    /// Alerts lost: the queue was full and the spool could not take them either.
    pub dropped: u64,
    /// Alerts not sent because they repeated one already sent (`dedup_window`).
    pub deduplicated: u64,
}

/// Hands alerts to the sinks; owned by the pipeline.
#[derive(Debug)]
pub struct Dispatcher {
    sinks: Vec<SinkHandle>,
    /// Alerts handed to [`send`](Self::send).
    alerts: u64,
    /// The deadline after which the senders stop trying and spool what they hold.
    stop: watch::Sender<Option<tokio::time::Instant>>,
}

#[derive(Debug)]
struct SinkHandle {
    policy: SinkPolicy,
    inlet: Inlet,
}

#[derive(Debug)]
enum Inlet {
    Stdout {
        sink: StdoutSink,
        writer: tokio::task::JoinHandle<std::io::Result<()>>,
    },
    Queued {
        tx: mpsc::Sender<Envelope>,
        shared: Arc<SinkShared>,
        next_seq: u64,
        task: tokio::task::JoinHandle<()>,
    },
}

impl Dispatcher {
    /// Reads every sink's secrets, opens the spool and starts one sender per sink. Must be
    /// called inside the tokio runtime. Spooled alerts from an earlier run go first.
    pub fn start(sinks: &[SinkPolicy], delivery: &DeliveryPolicy) -> Result<Dispatcher, SinkError> {
        let (stop, stop_rx) = watch::channel(None);
        warn_orphaned_spools(&delivery.spool_dir, sinks);
        let mut handles = Vec::with_capacity(sinks.len());
        for policy in sinks {
            let inlet = match &policy.target {
                SinkTarget::Stdout => {
                    let (sink, writer) = StdoutSink::start();
                    Inlet::Stdout { sink, writer }
                }
                target => {
                    let settings = policy.delivery(&delivery.defaults);
                    let transport = delivery::Transport::new(&policy.name, target, &settings)?;
                    let spool = Spool::new(&delivery.spool_dir, &policy.name);
                    let spooled = spool.scan().map_err(|source| SinkError::Spool {
                        sink: policy.name.clone(),
                        dir: spool.dir().to_owned(),
                        source,
                    })?;
                    let next_seq = spooled.last().map_or(1, |last| last + 1);
                    if !spooled.is_empty() {
                        tracing::info!(
                            sink = policy.name.as_str(),
                            "{} undelivered alert(s) in the spool from an earlier run; sending them first",
                            spooled.len()
                        );
                    }
                    let shared = Arc::new(SinkShared::new(policy.name.clone(), spool, spooled));
                    let (tx, rx) = mpsc::channel(settings.queue);
                    let worker = Worker::new(
                        Arc::clone(&shared),
                        transport,
                        rx,
                        stop_rx.clone(),
                        settings,
                    );
                    Inlet::Queued {
                        tx,
                        shared,
                        next_seq,
                        task: tokio::spawn(worker.run()),
                    }
                }
            };
            handles.push(SinkHandle {
                policy: policy.clone(),
                inlet,
            });
        }
        Ok(Dispatcher {
            sinks: handles,
            alerts: 0,
            stop,
        })
    }

    /// Hands `alert` to every sink whose filter it passes; never blocks on a sink.
    pub fn send(&mut self, alert: &Alert) {
        self.alerts += 1;
        let mut message: Option<(Message, String)> = None;
        for handle in &mut self.sinks {
            if !handle.policy.accepts(alert.rule, alert.severity) {
                continue;
            }
            match &mut handle.inlet {
                Inlet::Stdout { sink, .. } => sink.send(alert.clone()),
                Inlet::Queued {
                    tx,
                    shared,
                    next_seq,
                    ..
                } => {
                    let (message, id) = message.get_or_insert_with(|| {
                        let message = Message::Alert(Box::new(alert.clone()));
                        let id = alert_id(&message);
                        (message, id)
                    });
                    let envelope = Envelope {
                        seq: *next_seq,
                        id: id.clone(),
                        message: message.clone(),
                    };
                    *next_seq += 1;
                    shared.enqueue(tx, envelope);
                }
            }
        }
    }

    /// Tells the sinks that track incidents (PagerDuty, Slack) that `resolution.incident_id`
    /// is over; after every alert of it, in order.
    pub fn resolve(&mut self, resolution: &Resolution) {
        let message = Message::Resolve(resolution.clone());
        let id = alert_id(&message);
        for handle in &mut self.sinks {
            if let Inlet::Queued {
                tx,
                shared,
                next_seq,
                ..
            } = &mut handle.inlet
            {
                if !matches!(
                    handle.policy.target,
                    SinkTarget::PagerDuty { .. } | SinkTarget::Slack { .. }
                ) {
                    continue;
                }
                let envelope = Envelope {
                    seq: *next_seq,
                    id: id.clone(),
                    message: message.clone(),
                };
                *next_seq += 1;
                shared.enqueue(tx, envelope);
            }
        }
    }

    /// Alerts handed to [`send`](Self::send).
    pub fn alerts(&self) -> u64 {
        self.alerts
    }

    /// Alerts lost, over all sinks.
    pub fn dropped(&self) -> u64 {
        self.stats().values().map(|s| s.dropped).sum()
    }

    /// Every sink's counters, by name.
    pub fn stats(&self) -> BTreeMap<String, SinkStats> {
        self.sinks
            .iter()
            .map(|h| {
                let stats = match &h.inlet {
                    Inlet::Stdout { sink, .. } => SinkStats {
                        sent: sink.sent(),
                        dropped: sink.dropped(),
                        ..SinkStats::default()
                    },
                    Inlet::Queued { shared, .. } => shared.counters.snapshot(),
                };
                (h.policy.name.clone(), stats)
            })
            .collect()
    }

    /// Stops accepting, keeps delivering for at most `grace`, then spools whatever is left
    /// and returns the final counters. Fails only when writing to stdout failed, as the
    /// daemon always did.
    pub async fn shutdown(self, grace: Duration) -> Result<BTreeMap<String, SinkStats>, SinkError> {
        let Dispatcher { sinks, stop, .. } = self;
        let _ = stop.send(Some(tokio::time::Instant::now() + grace));
        let mut stats = BTreeMap::new();
        let mut stdout_error = None;
        for handle in sinks {
            let name = handle.policy.name;
            match handle.inlet {
                Inlet::Stdout { sink, writer } => {
                    let (sent, dropped) = (sink.sent(), sink.dropped());
                    drop(sink);
                    match writer.await {
                        Ok(Ok(())) => {}
                        Ok(Err(source)) => stdout_error = Some(SinkError::Stdout { source }),
                        Err(e) => {
                            stdout_error = Some(SinkError::Stdout {
                                source: std::io::Error::other(e.to_string()),
                            })
                        }
                    }
                    stats.insert(
                        name,
                        SinkStats {
                            sent,
                            dropped,
                            ..SinkStats::default()
                        },
                    );
                }
                Inlet::Queued {
                    tx, shared, task, ..
                } => {
                    drop(tx);
                    if let Err(e) = task.await {
                        tracing::error!(sink = name.as_str(), "sender task failed: {e}");
                    }
                    let pending = shared.pending();
                    if pending > 0 {
                        tracing::warn!(
                            sink = name.as_str(),
                            "{pending} undelivered alert(s) left in the spool ({}); they are sent when the detector starts again",
                            shared.spool.dir().display()
                        );
                    }
                    stats.insert(name, shared.counters.snapshot());
                }
            }
        }
        match stdout_error {
            Some(e) => Err(e),
            None => Ok(stats),
        }
    }
}

/// A spool directory whose sink is gone from the policy holds alerts nobody will send: say so.
fn warn_orphaned_spools(spool_dir: &Path, sinks: &[SinkPolicy]) {
    let Ok(entries) = std::fs::read_dir(spool_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if sinks.iter().any(|s| s.name == name) {
            continue;
        }
        let count = Spool::new(spool_dir, &name).scan().map_or(0, |s| s.len());
        if count > 0 {
            tracing::warn!(
                "{count} undelivered alert(s) in {} belong to a sink named {name:?}, which the \
                 policy no longer has; add it back to deliver them",
                entry.path().display()
            );
        }
    }
}

impl Counters {
    fn snapshot(&self) -> SinkStats {
        let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        SinkStats {
            sent: get(&self.sent),
            retried: get(&self.retried),
            failed: get(&self.failed),
            spooled: get(&self.spooled),
            dropped: get(&self.dropped),
            deduplicated: get(&self.deduplicated),
        }
    }
}

#[cfg(test)]
mod tests;
