//! One sender per sink: takes messages from the sink's queue (then from its backlog in the
//! journal), sends them one at a time in order, retries, gives up, acknowledges.
//!
//! Every message is in the journal before it reaches the queue (`journal`); what a sink
//! delivers it acknowledges there. A message that does not fit the queue, or is given up on,
//! or is still queued at shutdown joins the sink's backlog: its sequence number, read back
//! from the journal when its turn comes (counted `spooled`).
//!
//! Order: the queue holds older messages than the backlog while the sink is in "overflow"
//! (set when the queue was full, or at start with messages left by an earlier run). In
//! overflow every new message goes to the backlog, behind the others, until the sender has
//! emptied it; so messages leave in the order they were raised. A message given up on stays
//! in the backlog ("parked") and is tried again after the sink's next successful delivery, or
//! at the next start, out of order then.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
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
    journal::{Journal, ReadError},
    message::Envelope,
    stdout::StdoutSink,
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
    pub journal: Arc<Journal>,
    state: Mutex<Backlog>,
}

#[derive(Debug)]
struct Backlog {
    /// New messages go to the backlog, behind the ones there.
    overflow: bool,
    /// Sequence numbers of messages to read back from the journal.
    entries: BTreeSet<u64>,
}

impl SinkShared {
    pub(crate) fn new(name: String, journal: Arc<Journal>, backlog: Vec<u64>) -> Self {
        SinkShared {
            name,
            counters: Counters::default(),
            journal,
            state: Mutex::new(Backlog {
                overflow: !backlog.is_empty(),
                entries: backlog.into_iter().collect(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, Backlog> {
        // Every critical section leaves the state consistent; a panic elsewhere does not
        // make it less so.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Messages waiting in the backlog.
    pub(crate) fn pending(&self) -> usize {
        self.state().entries.len()
    }

    /// The dispatcher's side: queue `envelope` (already journaled), or put it in the backlog
    /// when the queue is full or the backlog holds older messages. Never waits on the sender.
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
                        "queue full; alerts wait in the journal until the sink catches up"
                    );
                    state.overflow = true;
                    envelope
                }
                Err(mpsc::error::TrySendError::Closed(envelope)) => envelope,
            }
        };
        self.spool_locked(&mut state, &envelope);
    }

    fn spool(&self, envelope: &Envelope) {
        let mut state = self.state();
        self.spool_locked(&mut state, envelope);
    }

    /// Leaves `envelope` to the backlog: it is read back from the journal when its turn
    /// comes. One the journal does not hold (its write failed, or it was evicted) is lost.
    fn spool_locked(&self, state: &mut Backlog, envelope: &Envelope) {
        if state.entries.contains(&envelope.seq) {
            return;
        }
        if self.journal.holds(envelope.seq) {
            state.entries.insert(envelope.seq);
            bump(&self.counters.spooled);
        } else {
            bump(&self.counters.dropped);
            tracing::error!(
                sink = self.name.as_str(),
                id = envelope.id.as_str(),
                "alert lost: it is not in the journal {} (not written, or evicted) and cannot \
                 be kept in memory",
                self.journal.dir().display()
            );
        }
    }

    /// The sink is done with `seq` (delivered, a repeat, or unreadable).
    fn done(&self, seq: u64, from_backlog: bool) {
        self.journal.ack(&self.name, seq);
        if from_backlog {
            self.state().entries.remove(&seq);
        }
    }
}

/// How a sink sends one message.
#[derive(Debug)]
pub(crate) enum Transport {
    Stdout(StdoutSink),
    File(FileSink),
    Http(Box<HttpSink>),
    Syslog(SyslogSink),
}

impl Transport {
    /// Reads the sink's secrets and sets it up.
    pub(crate) fn new(
        sink: &str,
        target: &SinkTarget,
        delivery: &SinkDelivery,
    ) -> Result<Transport, SinkError> {
        Ok(match target {
            SinkTarget::Stdout => Transport::Stdout(StdoutSink::new()),
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
            Transport::Stdout(sink) => sink.deliver(envelope).await,
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
        // The local file and stdout are records: every alert goes in, however repetitive,
        // and as fast as it comes.
        let (window, rate) = match transport {
            Transport::File(_) | Transport::Stdout(_) => (Duration::ZERO, 0),
            _ => (delivery.dedup_window, delivery.rate_per_minute),
        };
        Worker {
            shared,
            transport,
            rx,
            stop,
            rate: RateLimit::new(rate, std::time::Instant::now()),
            dedup: Dedup::new(window),
            delivery,
            parked: BTreeMap::new(),
            closed: false,
        }
    }

    fn name(&self) -> &str {
        &self.shared.name
    }

    /// Runs until shutdown; returns the error that stopped the stdout sink, if any.
    pub(crate) async fn run(mut self) -> Option<std::io::Error> {
        while let Some((envelope, from_spool)) = self.next().await {
            let now = std::time::Instant::now();
            if self.dedup.is_duplicate(&envelope, now) {
                bump(&self.shared.counters.deduplicated);
                tracing::debug!(
                    sink = self.name(),
                    id = envelope.id.as_str(),
                    "repeat of an alert already sent for this incident; not sent again"
                );
                self.shared.done(envelope.seq, from_spool);
                continue;
            }
            match self.deliver(&envelope).await {
                Outcome::Delivered => {
                    bump(&self.shared.counters.sent);
                    self.dedup.record(&envelope, std::time::Instant::now());
                    self.shared.done(envelope.seq, from_spool);
                    // The receiver is back: what was given up on for a passing failure gets
                    // another chance.
                    self.parked.retain(|_, permanent| *permanent);
                }
                Outcome::GaveUp { permanent } => {
                    bump(&self.shared.counters.failed);
                    if !from_spool {
                        self.shared.spool(&envelope);
                    }
                    self.parked.insert(envelope.seq, permanent);
                }
                Outcome::Stopped => {
                    if !from_spool {
                        self.shared.spool(&envelope);
                    }
                    break;
                }
            }
        }
        // Shutdown: whatever is still queued stays in the journal for the next start.
        self.rx.close();
        while let Ok(envelope) = self.rx.try_recv() {
            self.shared.spool(&envelope);
        }
        match &mut self.transport {
            Transport::Stdout(sink) => sink.take_error(),
            _ => None,
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
                match self.shared.journal.read(seq) {
                    Ok(Some(envelope)) => return Some((envelope, true)),
                    // Evicted (counted then): nothing to send.
                    Ok(None) => {
                        self.shared.state().entries.remove(&seq);
                    }
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

    fn unreadable(&mut self, seq: u64, error: &ReadError) {
        bump(&self.shared.counters.dropped);
        tracing::error!(
            sink = self.name(),
            "alert lost: journaled alert {seq} cannot be read back: {error}"
        );
        self.shared.done(seq, true);
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
                        "alert refused, not retried (kept in the journal for the next start): {reason}"
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
                    "giving up after {attempt} attempts in {:?} (kept in the journal; tried again \
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
