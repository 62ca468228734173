//! One sender per sink: takes messages from the sink's queue (then from its spool), sends
//! them one at a time in order, retries, gives up, spools.
//!
//! Order: the queue holds older messages than the spool while the sink is in "overflow"
//! (set when the queue was full, or at start with a spool left by an earlier run). In
//! overflow every new message goes to the spool, behind the others, until the sender has
//! emptied it; so messages leave in the order they were raised. A message given up on stays
//! in the spool ("parked") and is tried again after the sink's next successful delivery, or at
//! the next start, out of order then.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex, MutexGuard,
    },
    time::Duration,
};

use tokio::{
    sync::{mpsc, watch},
    time::Instant,
};

use super::{
    backoff::{backoff, jitter, RateLimit},
    dedup::Dedup,
    error::{Failure, SinkError},
    file::FileSink,
    http::HttpSink,
    message::Envelope,
    spool::{Spool, SpoolReadError},
    syslog::SyslogSink,
};
use crate::policy::{SinkDelivery, SinkTarget};

/// The counters of one sink.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub sent: AtomicU64,
    pub retried: AtomicU64,
    pub failed: AtomicU64,
    pub spooled: AtomicU64,
    pub dropped: AtomicU64,
    pub deduplicated: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What the dispatcher and the sender of one sink share.
#[derive(Debug)]
pub(crate) struct SinkShared {
    pub name: String,
    pub counters: Counters,
    pub spool: Spool,
    state: Mutex<SpoolState>,
}

#[derive(Debug)]
struct SpoolState {
    /// New messages go to the spool, behind the ones there.
    overflow: bool,
    /// Sequence numbers in the spool.
    entries: BTreeSet<u64>,
}

impl SinkShared {
    pub(crate) fn new(name: String, spool: Spool, spooled: Vec<u64>) -> Self {
        SinkShared {
            name,
            counters: Counters::default(),
            spool,
            state: Mutex::new(SpoolState {
                overflow: !spooled.is_empty(),
                entries: spooled.into_iter().collect(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, SpoolState> {
        // Every critical section leaves the state consistent; a panic elsewhere does not
        // make it wrong.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Messages waiting in the spool.
    pub(crate) fn pending(&self) -> usize {
        self.state().entries.len()
    }

    /// The dispatcher's side: queue `envelope`, or spool it when the queue is full or the
    /// spool holds older messages. Never waits on the sender.
    pub(crate) fn enqueue(&self, tx: &mpsc::Sender<Envelope>, envelope: Envelope) {
        let mut state = self.state();
        let envelope = if state.overflow {
            envelope
        } else {
            match tx.try_send(envelope) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(envelope)) => {
                    tracing::warn!(
                        sink = self.name.as_str(),
                        "queue full; alerts go to the spool until the sink catches up"
                    );
                    state.overflow = true;
                    envelope
                }
                Err(mpsc::error::TrySendError::Closed(envelope)) => envelope,
            }
        };
        // Not synced: this runs on the detection path. The rename makes it whole or absent.
        self.spool_locked(&mut state, &envelope, false);
    }

    fn spool(&self, envelope: &Envelope, sync: bool) {
        let mut state = self.state();
        self.spool_locked(&mut state, envelope, sync);
    }

    fn spool_locked(&self, state: &mut SpoolState, envelope: &Envelope, sync: bool) {
        if state.entries.contains(&envelope.seq) {
            return;
        }
        match self.spool.write(envelope, sync) {
            Ok(()) => {
                state.entries.insert(envelope.seq);
                bump(&self.counters.spooled);
            }
            Err(e) => {
                bump(&self.counters.dropped);
                tracing::error!(
                    sink = self.name.as_str(),
                    id = envelope.id.as_str(),
                    "alert lost: cannot write it to the spool {}: {e}",
                    self.spool.dir().display()
                );
            }
        }
    }

    fn delivered_from_spool(&self, seq: u64) {
        if let Err(e) = self.spool.remove(seq) {
            tracing::error!(
                sink = self.name.as_str(),
                "cannot remove a delivered alert from the spool (it will be sent again at the \
                 next start): {e}"
            );
        }
        self.state().entries.remove(&seq);
    }
}

/// How a sink sends one message.
#[derive(Debug)]
pub(crate) enum Transport {
    File(FileSink),
    Http(Box<HttpSink>),
    Syslog(SyslogSink),
}

impl Transport {
    /// Reads the sink's secrets and sets it up; `Stdout` is not a transport.
    pub(crate) fn new(
        sink: &str,
        target: &SinkTarget,
        delivery: &SinkDelivery,
    ) -> Result<Transport, SinkError> {
        Ok(match target {
            SinkTarget::Stdout => {
                return Err(SinkError::BadSecret {
                    sink: sink.to_owned(),
                    key: "type".to_owned(),
                    message: "stdout has its own writer".to_owned(),
                })
            }
            SinkTarget::File {
                path,
                max_bytes,
                keep,
            } => Transport::File(FileSink::new(path.clone(), *max_bytes, *keep)),
            SinkTarget::Syslog {
                socket,
                facility,
                format,
            } => Transport::Syslog(SyslogSink::new(socket.clone(), *facility, *format)),
            _ => Transport::Http(Box::new(HttpSink::new(sink, target, delivery)?)),
        })
    }

    /// Sends one message; `Ok` when delivered, or when the sink has no use for it (a
    /// resolution to a sink that does not track incidents).
    async fn deliver(&mut self, envelope: &Envelope) -> Result<(), Failure> {
        match self {
            Transport::File(sink) => sink.deliver(envelope).await,
            Transport::Http(sink) => sink.deliver(envelope).await,
            Transport::Syslog(sink) => sink.deliver(envelope).await,
        }
    }
}

/// How one message ended.
enum Outcome {
    Delivered,
    /// Refused for good (`permanent`) or still failing after `give_up_after`.
    GaveUp {
        permanent: bool,
    },
    /// Shutdown's deadline passed first.
    Stopped,
}

/// The sending task of one sink.
pub(crate) struct Worker {
    shared: std::sync::Arc<SinkShared>,
    transport: Transport,
    rx: mpsc::Receiver<Envelope>,
    stop: watch::Receiver<Option<Instant>>,
    delivery: SinkDelivery,
    rate: RateLimit,
    dedup: Dedup,
    /// Spooled messages given up on in this run, and whether for good.
    parked: BTreeMap<u64, bool>,
    /// The queue is closed (shutdown).
    closed: bool,
}

impl Worker {
    pub(crate) fn new(
        shared: std::sync::Arc<SinkShared>,
        transport: Transport,
        rx: mpsc::Receiver<Envelope>,
        stop: watch::Receiver<Option<Instant>>,
        delivery: SinkDelivery,
    ) -> Self {
        // The local file is a record: every alert goes in, however repetitive.
        let window = match transport {
            Transport::File(_) => Duration::ZERO,
            _ => delivery.dedup_window,
        };
        Worker {
            shared,
            transport,
            rx,
            stop,
            rate: RateLimit::new(delivery.rate_per_minute, std::time::Instant::now()),
            dedup: Dedup::new(window),
            delivery,
            parked: BTreeMap::new(),
            closed: false,
        }
    }

    fn name(&self) -> &str {
        &self.shared.name
    }

    pub(crate) async fn run(mut self) {
        while let Some((envelope, from_spool)) = self.next().await {
            let now = std::time::Instant::now();
            if self.dedup.is_duplicate(&envelope, now) {
                bump(&self.shared.counters.deduplicated);
                tracing::debug!(
                    sink = self.name(),
                    id = envelope.id.as_str(),
                    "repeat of an alert already sent for this incident; not sent again"
                );
                if from_spool {
                    self.shared.delivered_from_spool(envelope.seq);
                }
                continue;
            }
            match self.deliver(&envelope).await {
                Outcome::Delivered => {
                    bump(&self.shared.counters.sent);
                    self.dedup.record(&envelope, std::time::Instant::now());
                    if from_spool {
                        self.shared.delivered_from_spool(envelope.seq);
                    }
                    // The receiver is back: what was given up on for a passing failure gets
                    // another chance.
                    self.parked.retain(|_, permanent| *permanent);
                }
                Outcome::GaveUp { permanent } => {
                    bump(&self.shared.counters.failed);
                    if !from_spool {
                        self.shared.spool(&envelope, true);
                    }
                    self.parked.insert(envelope.seq, permanent);
                }
                Outcome::Stopped => {
                    if !from_spool {
                        self.shared.spool(&envelope, true);
                    }
                    break;
                }
            }
        }
        // Shutdown: whatever is still queued goes to the spool, in order.
        self.rx.close();
        while let Ok(envelope) = self.rx.try_recv() {
            self.shared.spool(&envelope, true);
        }
    }

    fn past_deadline(&self) -> bool {
        self.stop
            .borrow()
            .is_some_and(|deadline| Instant::now() >= deadline)
    }

    /// The next message to send: the queue first, then the spool (see the module docs);
    /// `None` once shut down and nothing is left, or shutdown's deadline passed.
    async fn next(&mut self) -> Option<(Envelope, bool)> {
        loop {
            if self.past_deadline() {
                return None;
            }
            match self.rx.try_recv() {
                Ok(envelope) => return Some((envelope, false)),
                Err(mpsc::error::TryRecvError::Disconnected) => self.closed = true,
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
            let spooled = {
                let mut state = self.shared.state();
                let next = state
                    .entries
                    .iter()
                    .copied()
                    .find(|seq| !self.parked.contains_key(seq));
                if next.is_none() {
                    // Caught up: new messages may use the queue again. Checked under the
                    // lock, so no message spooled meanwhile is overtaken.
                    state.overflow = false;
                }
                next
            };
            if let Some(seq) = spooled {
                match self.shared.spool.read(seq) {
                    Ok(envelope) => return Some((envelope, true)),
                    Err(e) => self.unreadable(seq, &e),
                }
                continue;
            }
            if self.closed {
                return None;
            }
            tokio::select! {
                received = self.rx.recv() => match received {
                    Some(envelope) => return Some((envelope, false)),
                    None => self.closed = true,
                },
                () = deadline(&mut self.stop) => {}
            }
        }
    }

    fn unreadable(&mut self, seq: u64, error: &SpoolReadError) {
        bump(&self.shared.counters.failed);
        let aside = self.shared.spool.set_aside(seq);
        tracing::error!(
            sink = self.name(),
            "spooled alert {seq} cannot be read back, set aside{}: {error}",
            aside
                .map(|p| format!(" as {}", p.display()))
                .unwrap_or_default()
        );
        self.shared.state().entries.remove(&seq);
    }

    /// Sends one message, retrying transient failures until `give_up_after`.
    async fn deliver(&mut self, envelope: &Envelope) -> Outcome {
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            while let Some(wait) = self.rate.take(std::time::Instant::now()) {
                if !self.sleep(wait).await {
                    return Outcome::Stopped;
                }
            }
            let result = tokio::select! {
                result = self.transport.deliver(envelope) => result,
                () = deadline(&mut self.stop) => return Outcome::Stopped,
            };
            let (reason, after) = match result {
                Ok(()) => {
                    if attempt > 0 {
                        tracing::info!(
                            sink = self.name(),
                            id = envelope.id.as_str(),
                            "delivered after {attempt} retries"
                        );
                    }
                    return Outcome::Delivered;
                }
                Err(Failure::Permanent { reason }) => {
                    tracing::error!(
                        sink = self.name(),
                        id = envelope.id.as_str(),
                        "alert refused, not retried (kept in the spool for the next start): {reason}"
                    );
                    return Outcome::GaveUp { permanent: true };
                }
                Err(Failure::Transient { reason, after }) => (reason, after),
            };
            attempt += 1;
            let wait = after.unwrap_or_else(|| backoff(attempt, jitter()));
            if started.elapsed() + wait > self.delivery.give_up_after {
                tracing::error!(
                    sink = self.name(),
                    id = envelope.id.as_str(),
                    "giving up after {attempt} attempts in {:?} (kept in the spool; tried again \
                     after the next successful delivery or at the next start): {reason}",
                    started.elapsed()
                );
                return Outcome::GaveUp { permanent: false };
            }
            bump(&self.shared.counters.retried);
            if attempt == 1 || attempt.is_multiple_of(10) {
                tracing::warn!(
                    sink = self.name(),
                    id = envelope.id.as_str(),
                    attempt,
                    "delivery failed, retrying in {wait:.1?}: {reason}"
                );
            }
            if !self.sleep(wait).await {
                return Outcome::Stopped;
            }
        }
    }

    /// Sleeps for `wait`; `false` when shutdown's deadline came first.
    async fn sleep(&mut self, wait: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(wait) => true,
            () = deadline(&mut self.stop) => false,
        }
    }
}

/// Resolves when shutdown's deadline has passed (never, while there is none).
async fn deadline(stop: &mut watch::Receiver<Option<Instant>>) {
    loop {
        let current = *stop.borrow_and_update();
        match current {
            Some(at) => return tokio::time::sleep_until(at).await,
            None => {
                if stop.changed().await.is_err() {
                    // The dispatcher is gone without a deadline: wait forever; the runtime
                    // ends the task.
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}
