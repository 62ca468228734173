//! Where alerts go: the [`Dispatcher`] the pipeline hands every alert to, and one sender per
//! `[[sinks]]` entry of the policy.
//!
//! Every alert is first appended to the write-ahead `journal` on disk, then put on each
//! matching sink's bounded queue; the detection path never waits on a sink nor on the disk
//! (the journal's `fsync` runs on a thread of its own). A task per sink (`delivery`) takes it
//! from there: it formats it for the receiver (`stdout`, `webhook`, `pagerduty`, `slack`,
//! `alertmanager`, `syslog`, `file`), sends it (`http` for the four HTTP sinks), retries with
//! backoff, and acknowledges it in the journal once delivered. What a sink has not
//! acknowledged when the daemon stops — cleanly, or by `kill -9` — the next start sends
//! first. A full queue leaves the alert in the journal until the sender gets to it.
//!
//! Guarantees (docs/sinks.md): at least once per sink, in order per sink (so per incident),
//! with a stable idempotency key per alert ([`alert_id`], kept in the journal) for receivers
//! to drop the duplicates a restart can cause. Secrets are read once, here, at start; they are
//! never logged and never put in an alert.

mod alertmanager;
mod backoff;
mod dedup;
mod delivery;
mod error;
mod file;
mod http;
mod journal;
mod message;
mod pagerduty;
mod slack;
mod spool;
mod stdout;
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
pub use journal::JournalError;
pub use message::{alert_id, Envelope, Message, Resolution};

use crate::{
    alert::Alert,
    policy::{DeliveryPolicy, SinkPolicy, SinkTarget},
};
use delivery::{Counters, SinkShared, Worker};
use journal::{Journal, Limits};
use spool::Spool;

/// How long [`Dispatcher::shutdown`] keeps trying to deliver before it leaves the rest to the
/// journal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Counters of one sink, as the `detector stats` line shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SinkStats {
    /// Delivered (for stdout: written).
    pub sent: u64,
    /// Attempts after a failed one.
    pub retried: u64,
    /// Alerts given up on (refused, or still failing after `give_up_after`); they stay in the
    /// journal.
    pub failed: u64,
    /// Alerts left to the journal's backlog (queue full, given up, or still queued at
    /// shutdown).
    pub spooled: u64,
    /// Alerts lost: the queue was full and the journal did not hold them, or they could not be
    /// read back from it.
    pub dropped: u64,
    /// Alerts not sent because they repeated one already sent (`dedup_window`).
    pub deduplicated: u64,
    /// Undelivered alerts removed from the journal to keep it under `journal_max_bytes`.
    pub evicted: u64,
}

/// Hands alerts to the sinks; owned by the pipeline.
#[derive(Debug)]
pub struct Dispatcher {
    sinks: Vec<SinkHandle>,
    /// Alerts handed to [`send`](Self::send).
    alerts: u64,
    /// The deadline after which the senders stop trying and leave the rest to the journal.
    stop: watch::Sender<Option<tokio::time::Instant>>,
    journal: Arc<Journal>,
    /// The journal's `fsync` thread.
    sync: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug)]
struct SinkHandle {
    policy: SinkPolicy,
    tx: mpsc::Sender<Envelope>,
    shared: Arc<SinkShared>,
    /// Returns the error that stopped stdout, if any.
    task: tokio::task::JoinHandle<Option<std::io::Error>>,
}

impl Dispatcher {
    /// Reads every sink's secrets, opens the journal and starts one sender per sink. Must be
    /// called inside the tokio runtime. What an earlier run left undelivered goes first.
    ///
    /// A journal that cannot be opened (directory not writable, held by another daemon) is
    /// logged and the sinks run from memory only: alerts still flow.
    pub fn start(sinks: &[SinkPolicy], delivery: &DeliveryPolicy) -> Result<Dispatcher, SinkError> {
        let (stop, stop_rx) = watch::channel(None);
        let names: Vec<String> = sinks.iter().map(|s| s.name.clone()).collect();
        let limits = Limits::new(delivery.journal_max_bytes);
        let (journal, mut pending, sync) = match Journal::open(&delivery.spool_dir, &names, limits)
        {
            Ok(opened) => {
                let sync = match opened.journal.start_sync() {
                    Ok(thread) => Some(thread),
                    Err(e) => {
                        tracing::error!(
                            "alert journal: cannot start its sync thread ({e}); it is synced \
                             only at exit"
                        );
                        None
                    }
                };
                (opened.journal, opened.pending, sync)
            }
            Err(e) => {
                tracing::error!(
                    "{e}; alerts are delivered from memory only: what a crash or a full queue \
                     catches is lost (counted `dropped`)"
                );
                (
                    Journal::disabled(&delivery.spool_dir, &names),
                    BTreeMap::new(),
                    None,
                )
            }
        };
        migrate_spools(&delivery.spool_dir, sinks, &journal, &mut pending);
        let mut handles = Vec::with_capacity(sinks.len());
        for policy in sinks {
            let settings = policy.delivery(&delivery.defaults);
            let transport = delivery::Transport::new(&policy.name, &policy.target, &settings)?;
            let backlog = pending.remove(&policy.name).unwrap_or_default();
            if !backlog.is_empty() {
                tracing::info!(
                    sink = policy.name.as_str(),
                    "{} undelivered alert(s) in the journal from an earlier run; sending them first",
                    backlog.len()
                );
            }
            let shared = Arc::new(SinkShared::new(
                policy.name.clone(),
                Arc::clone(&journal),
                backlog,
            ));
            let (tx, rx) = mpsc::channel(settings.queue);
            let worker = Worker::new(
                Arc::clone(&shared),
                transport,
                rx,
                stop_rx.clone(),
                settings,
            );
            handles.push(SinkHandle {
                policy: policy.clone(),
                tx,
                shared,
                task: tokio::spawn(worker.run()),
            });
        }
        Ok(Dispatcher {
            sinks: handles,
            alerts: 0,
            stop,
            journal,
            sync,
        })
    }

    /// Hands `alert` to every sink whose filter it passes; never blocks on a sink.
    pub fn send(&mut self, alert: &Alert) {
        self.alerts += 1;
        let targets: Vec<usize> = (0..self.sinks.len())
            .filter(|&i| {
                self.sinks
                    .get(i)
                    .is_some_and(|h| h.policy.accepts(alert.rule, alert.severity))
            })
            .collect();
        self.dispatch(&targets, Message::Alert(Box::new(alert.clone())));
    }

    /// Tells the sinks that track incidents (PagerDuty, Slack) that `resolution.incident_id`
    /// is over; after every alert of it, in order.
    pub fn resolve(&mut self, resolution: &Resolution) {
        let targets: Vec<usize> = (0..self.sinks.len())
            .filter(|&i| {
                self.sinks.get(i).is_some_and(|h| {
                    matches!(
                        h.policy.target,
                        SinkTarget::PagerDuty { .. } | SinkTarget::Slack { .. }
                    )
                })
            })
            .collect();
        self.dispatch(&targets, Message::Resolve(resolution.clone()));
    }

    /// Journals `message` for the sinks `targets`, then queues it for each.
    fn dispatch(&mut self, targets: &[usize], message: Message) {
        if targets.is_empty() {
            return;
        }
        let id = alert_id(&message);
        let names: Vec<&str> = targets
            .iter()
            .filter_map(|&i| self.sinks.get(i).map(|h| h.policy.name.as_str()))
            .collect();
        // A failed write is logged by the journal; the message still goes out from memory.
        let (seq, _written) = self.journal.append(&names, &id, &message);
        for &i in targets {
            if let Some(handle) = self.sinks.get(i) {
                let envelope = Envelope {
                    seq,
                    id: id.clone(),
                    message: message.clone(),
                };
                handle.shared.enqueue(&handle.tx, envelope);
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

    /// Torn or corrupt records the journal skipped when it was opened.
    pub fn journal_corrupt(&self) -> u64 {
        self.journal.corrupt()
    }

    /// Every sink's counters, by name.
    pub fn stats(&self) -> BTreeMap<String, SinkStats> {
        self.sinks
            .iter()
            .map(|h| (h.policy.name.clone(), self.sink_stats(&h.shared)))
            .collect()
    }

    fn sink_stats(&self, shared: &SinkShared) -> SinkStats {
        SinkStats {
            evicted: self.journal.evicted(&shared.name),
            ..shared.counters.snapshot()
        }
    }

    /// Stops accepting, keeps delivering for at most `grace`, then leaves whatever is left to
    /// the journal (synced) and returns the final counters. Fails only when writing to stdout
    /// failed, as the daemon always did.
    pub async fn shutdown(self, grace: Duration) -> Result<BTreeMap<String, SinkStats>, SinkError> {
        let Dispatcher {
            sinks,
            stop,
            journal,
            sync,
            ..
        } = self;
        let _ = stop.send(Some(tokio::time::Instant::now() + grace));
        let mut shared = Vec::with_capacity(sinks.len());
        let mut stdout_error = None;
        for handle in sinks {
            let name = handle.policy.name;
            drop(handle.tx);
            match handle.task.await {
                Ok(None) => {}
                Ok(Some(source)) => stdout_error = Some(SinkError::Stdout { source }),
                Err(e) => tracing::error!(sink = name.as_str(), "sender task failed: {e}"),
            }
            let pending = handle.shared.pending();
            if pending > 0 {
                tracing::warn!(
                    sink = name.as_str(),
                    "{pending} undelivered alert(s) left in the journal ({}); they are sent \
                     when the detector starts again",
                    journal.dir().display()
                );
            }
            shared.push((name, handle.shared));
        }
        // The journal's last sync, off the runtime's worker threads.
        let closing = Arc::clone(&journal);
        if let Err(e) = tokio::task::spawn_blocking(move || closing.close(sync)).await {
            tracing::error!("alert journal: closing it failed: {e}");
        }
        let stats = shared
            .into_iter()
            .map(|(name, shared)| {
                let stats = SinkStats {
                    evicted: journal.evicted(&name),
                    ..shared.counters.snapshot()
                };
                (name, stats)
            })
            .collect();
        match stdout_error {
            Some(e) => Err(e),
            None => Ok(stats),
        }
    }
}

/// Moves what the spool of earlier detector versions holds (`<spool_dir>/<sink>/<seq>.json`)
/// into the journal, in order, for the sinks the policy still has; one whose sink is gone is
/// reported and left where it is.
fn migrate_spools(
    spool_dir: &Path,
    sinks: &[SinkPolicy],
    journal: &Journal,
    pending: &mut BTreeMap<String, Vec<u64>>,
) {
    let Ok(entries) = std::fs::read_dir(spool_dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let spool = Spool::new(spool_dir, &name);
        let seqs = match spool.scan() {
            Ok(seqs) => seqs,
            Err(e) => {
                tracing::error!("cannot read the old spool {}: {e}", spool.dir().display());
                continue;
            }
        };
        if seqs.is_empty() {
            continue;
        }
        if !sinks.iter().any(|s| s.name == name) {
            tracing::warn!(
                "{} undelivered alert(s) in {} belong to a sink named {name:?}, which the \
                 policy no longer has; add it back to deliver them",
                seqs.len(),
                spool.dir().display()
            );
            continue;
        }
        let mut moved = 0;
        for seq in seqs {
            let envelope = match spool.read(seq) {
                Ok(envelope) => envelope,
                Err(e) => {
                    let aside = spool.set_aside(seq);
                    tracing::error!(
                        sink = name.as_str(),
                        "spooled alert {seq} cannot be read back, set aside{}: {e}",
                        aside
                            .map(|p| format!(" as {}", p.display()))
                            .unwrap_or_default()
                    );
                    continue;
                }
            };
            let (new, written) = journal.append(&[name.as_str()], &envelope.id, &envelope.message);
            if written.is_err() {
                // Left in the old spool for the next start.
                break;
            }
            pending.entry(name.clone()).or_default().push(new);
            moved += 1;
            if let Err(e) = spool.remove(seq) {
                tracing::error!(
                    sink = name.as_str(),
                    "cannot remove a spooled alert moved into the journal (it will be sent \
                     twice): {e}"
                );
            }
        }
        tracing::info!(
            sink = name.as_str(),
            "moved {moved} undelivered alert(s) from the old spool {} into the journal",
            spool.dir().display()
        );
        // Empty now, unless something was left or set aside.
        let _ = std::fs::remove_dir(spool.dir());
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
            evicted: 0,
        }
    }
}

#[cfg(test)]
mod tests;
