//! The write-ahead alert journal: every message is appended here before any sink sees it,
//! and each sink's deliveries are appended as acknowledgements, so that a restarted daemon
//! (after a clean stop, a crash or `kill -9`) sends each sink exactly what it had not
//! delivered, with the same idempotency key.
//!
//! Layout: `<spool_dir>/<segment:020>.seg` files, appended to in order, and
//! `<spool_dir>/journal.lock`, which one daemon holds while it runs. A segment starts with
//! [`MAGIC`]; then records, each `[length u32 LE][CRC-32 u32 LE][JSON]`: a message (its
//! sequence number, id, the sinks it goes to, the message) or an acknowledgement (a sink and
//! a sequence number). A crash mid-write leaves a torn record at a segment's tail: the
//! length and checksum find it, it is counted and skipped, and appends go on in a new
//! segment.
//!
//! Durability: an append is one `write(2)`, done by the caller (it only copies into the page
//! cache, so a `kill -9` right after it loses nothing); a dedicated thread `fsync`s every
//! [`SYNC_INTERVAL`] or every [`SYNC_RECORDS`] records (group commit), so that the event loop
//! never waits on the disk. A power loss can lose the last [`SYNC_INTERVAL`] of alerts.
//!
//! Bounded: segments roll over at a fraction of `max_bytes`; a segment whose messages every
//! sink has acknowledged, and every one before it, is deleted; when an append would take the
//! journal past `max_bytes`, the oldest segment goes, undelivered messages and all, counted
//! per sink as `evicted`. Only a prefix is ever deleted, because a segment holds the
//! acknowledgements of messages in the segments before it.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    io::{self, Write as _},
    os::unix::fs::{DirBuilderExt as _, FileExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    time::Duration,
};

use serde::{Deserialize, Serialize};

use super::message::{Envelope, Message};

/// The first bytes of every segment: the format and its version.
pub(crate) const MAGIC: &[u8; 8] = b"DETJRN1\n";
/// `[length][crc]` before each record.
const HEADER: usize = 8;
/// A length above this is not a record (a torn or foreign header), whatever the checksum.
const MAX_RECORD: u32 = 16 << 20;
/// The longest a written record waits for `fsync`.
pub(crate) const SYNC_INTERVAL: Duration = Duration::from_millis(50);
/// Records written since the last `fsync` that wake the sync thread before the interval.
const SYNC_RECORDS: u64 = 256;
const SEGMENT_SUFFIX: &str = ".seg";
const LOCK_FILE: &str = "journal.lock";

/// The limit of a journal that could not be opened (it holds nothing); the policy's default is
/// in `policy/default.toml`.
pub(crate) const DEFAULT_MAX_BYTES: u64 = 256 << 20;

/// One record, as its JSON.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Record {
    Message(Stored),
    Ack { sink: String, seq: u64 },
}

#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    /// The sinks the message goes to.
    sinks: Vec<String>,
    #[serde(flatten)]
    envelope: Envelope,
}

/// The journal could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The directory or a segment could not be created, read or locked.
    #[error("alert journal {}: {what}: {source}", dir.display())]
    Io {
        /// The journal's directory.
        dir: PathBuf,
        /// What was being done.
        what: String,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// Another process holds the journal's lock.
    #[error(
        "alert journal {}: another detector holds {LOCK_FILE}; two daemons cannot share one \
         spool_dir",
        dir.display()
    )]
    Locked {
        /// The journal's directory.
        dir: PathBuf,
    },
}

/// A message could not be read back.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("reading {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} at offset {offset}: {message}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        message: String,
    },
}

/// Sizes: the limit, and where a segment rolls over.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub max_bytes: u64,
    pub segment_bytes: u64,
}

impl Limits {
    /// Segments of a sixteenth of the limit (64 KiB to 16 MiB): eviction frees a small part
    /// at a time, and there are few files.
    pub(crate) fn new(max_bytes: u64) -> Limits {
        Limits {
            max_bytes,
            segment_bytes: (max_bytes / 16).clamp(64 << 10, 16 << 20),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Journal {
    dir: PathBuf,
    inner: Mutex<Inner>,
    wake: Condvar,
}

/// What a freshly opened journal holds.
#[derive(Debug)]
pub(crate) struct Opened {
    pub journal: Arc<Journal>,
    /// Per sink of the policy, the messages it has not acknowledged, oldest first.
    pub pending: BTreeMap<String, Vec<u64>>,
}

#[derive(Debug)]
struct Inner {
    /// The policy's sinks; a message's `pending` holds indexes into this.
    sinks: Vec<String>,
    limits: Limits,
    /// `None`: the journal could not be opened; appends fail, the rest does nothing.
    lock: Option<fs::File>,
    segments: BTreeMap<u64, Segment>,
    /// The segment appended to, opened for appending; `None` until the first append, and after
    /// a write failed.
    current: Option<(u64, Arc<fs::File>)>,
    next_segment: u64,
    /// Messages some sink has not acknowledged.
    index: BTreeMap<u64, Entry>,
    next_seq: u64,
    total_bytes: u64,
    /// Records written since the last sync, and segments closed since then.
    unsynced: u64,
    to_sync: Vec<Arc<fs::File>>,
    sync_dir: bool,
    /// Per sink index: messages evicted undelivered.
    evicted: Vec<u64>,
    /// Torn or corrupt records found when opening.
    corrupt: u64,
    /// A write or sync failure was logged; cleared by the next success (one log per outage).
    write_failing: bool,
    sync_failing: bool,
    closing: bool,
}

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    bytes: u64,
    /// Message sequence numbers in this segment.
    seqs: Vec<u64>,
    /// How many of them some sink has not acknowledged.
    live: usize,
}

#[derive(Debug)]
struct Entry {
    segment: u64,
    offset: u64,
    len: u32,
    /// Sink indexes that have not acknowledged it.
    pending: BTreeSet<usize>,
}

fn segment_name(id: u64) -> String {
    format!("{id:020}{SEGMENT_SUFFIX}")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `[length][crc][json]`.
fn encode(record: &Record) -> Vec<u8> {
    // Serialising plain data to memory cannot fail.
    let json = serde_json::to_vec(record).unwrap_or_default();
    let len = u32::try_from(json.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(HEADER + json.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&json).to_le_bytes());
    out.extend_from_slice(&json);
    out
}

/// What one position of a segment holds.
#[derive(Debug)]
enum Parsed {
    /// A whole record (`Err`: its checksum is right but it is not a record this detector
    /// reads) and its length on disk.
    Record(Result<Record, String>, usize),
    /// A torn or corrupt header or body: nothing after it can be trusted.
    Torn(String),
}

fn parse_at(bytes: &[u8]) -> Parsed {
    let Some((header, rest)) = bytes.split_first_chunk::<HEADER>() else {
        return Parsed::Torn(format!("{} byte(s) of a record header", bytes.len()));
    };
    let [l0, l1, l2, l3, c0, c1, c2, c3] = *header;
    let len = u32::from_le_bytes([l0, l1, l2, l3]);
    let crc = u32::from_le_bytes([c0, c1, c2, c3]);
    if len > MAX_RECORD {
        return Parsed::Torn(format!("a record length of {len} bytes"));
    }
    let Some(body) = rest.get(..len as usize) else {
        return Parsed::Torn(format!(
            "a record of {len} bytes with {} written",
            rest.len()
        ));
    };
    if crc32fast::hash(body) != crc {
        return Parsed::Torn("a record whose checksum does not match".to_owned());
    }
    Parsed::Record(
        serde_json::from_slice(body).map_err(|e| e.to_string()),
        HEADER + len as usize,
    )
}

fn io_error(dir: &Path, what: impl Into<String>) -> impl FnOnce(io::Error) -> JournalError + '_ {
    let what = what.into();
    move |source| JournalError::Io {
        dir: dir.to_owned(),
        what,
        source,
    }
}

impl Journal {
    /// Opens (creating it, mode 0700) the journal in `dir` for `sinks`, reads what earlier runs
    /// left, and starts a new segment on the next append. Call [`start_sync`](Self::start_sync)
    /// next.
    pub(crate) fn open(
        dir: &Path,
        sinks: &[String],
        limits: Limits,
    ) -> Result<Opened, JournalError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_error(dir, "creating the directory"))?;
        let lock = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(dir.join(LOCK_FILE))
            .map_err(io_error(dir, format!("opening {LOCK_FILE}")))?;
        match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(JournalError::Locked {
                    dir: dir.to_owned(),
                })
            }
            Err(e) => return Err(io_error(dir, format!("locking {LOCK_FILE}"))(e.into())),
        }
        let mut ids = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_error(dir, "listing the directory"))? {
            let entry = entry.map_err(io_error(dir, "listing the directory"))?;
            if let Some(id) = entry.file_name().to_str().and_then(parse_segment_name) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        let mut inner = Inner::new(sinks.to_vec(), limits, Some(lock));
        let mut orphans: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
        for id in ids {
            let path = dir.join(segment_name(id));
            let bytes =
                fs::read(&path).map_err(io_error(dir, format!("reading {}", path.display())))?;
            inner.load_segment(id, path, &bytes, &mut orphans);
            inner.next_segment = id + 1;
        }
        for (sink, seqs) in &orphans {
            if !seqs.is_empty() {
                tracing::warn!(
                    "{} undelivered alert(s) in the journal {} were for a sink named {sink:?}, \
                     which the policy no longer has; they are not sent",
                    seqs.len(),
                    dir.display()
                );
            }
        }
        let live: Vec<u64> = inner.index.values().map(|e| e.segment).collect();
        for id in live {
            if let Some(segment) = inner.segments.get_mut(&id) {
                segment.live += 1;
            }
        }
        inner.compact();
        let mut pending: BTreeMap<String, Vec<u64>> =
            sinks.iter().map(|s| (s.clone(), Vec::new())).collect();
        for (seq, entry) in &inner.index {
            for &sink in &entry.pending {
                if let Some(list) = inner.sinks.get(sink).and_then(|s| pending.get_mut(s)) {
                    list.push(*seq);
                }
            }
        }
        Ok(Opened {
            journal: Arc::new(Journal {
                dir: dir.to_owned(),
                inner: Mutex::new(inner),
                wake: Condvar::new(),
            }),
            pending,
        })
    }

    /// A journal that keeps nothing (its directory could not be opened): appends fail, so
    /// that what overflows a queue is counted as lost.
    pub(crate) fn disabled(dir: &Path, sinks: &[String]) -> Arc<Journal> {
        Arc::new(Journal {
            dir: dir.to_owned(),
            inner: Mutex::new(Inner::new(
                sinks.to_vec(),
                Limits::new(DEFAULT_MAX_BYTES),
                None,
            )),
            wake: Condvar::new(),
        })
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves the state consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts the thread that `fsync`s what was written; it ends at [`close`](Self::close).
    pub(crate) fn start_sync(self: &Arc<Self>) -> io::Result<std::thread::JoinHandle<()>> {
        let journal = Arc::clone(self);
        std::thread::Builder::new()
            .name("alert-journal".to_owned())
            .spawn(move || journal.sync_loop())
    }

    /// Appends `message` for `sinks` and gives it its sequence number, which it has even when
    /// the write failed (the error says why; the message is then only in memory).
    pub(crate) fn append(
        &self,
        sinks: &[&str],
        id: &str,
        message: &Message,
    ) -> (u64, Result<(), io::Error>) {
        let mut inner = self.inner();
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let envelope = Envelope {
            seq,
            id: id.to_owned(),
            message: message.clone(),
        };
        let pending: BTreeSet<usize> = sinks
            .iter()
            .filter_map(|s| inner.sinks.iter().position(|n| n == s))
            .collect();
        let record = Record::Message(Stored {
            sinks: sinks.iter().map(|s| (*s).to_owned()).collect(),
            envelope,
        });
        let result = inner
            .write(&self.dir, &encode(&record))
            .map(|(segment, offset, len)| {
                if let Some(s) = inner.segments.get_mut(&segment) {
                    s.seqs.push(seq);
                    s.live += 1;
                }
                inner.index.insert(
                    seq,
                    Entry {
                        segment,
                        offset,
                        len,
                        pending,
                    },
                );
            });
        self.after_write(inner, &result);
        (seq, result)
    }

    /// Records that `sink` delivered `seq` (or is done with it); deletes what nobody needs
    /// any more. A message already gone (evicted, or never written) is fine.
    pub(crate) fn ack(&self, sink: &str, seq: u64) {
        let mut inner = self.inner();
        let Some(index) = inner.sinks.iter().position(|n| n == sink) else {
            return;
        };
        let Some(entry) = inner.index.get_mut(&seq) else {
            return;
        };
        if !entry.pending.remove(&index) {
            return;
        }
        let done = entry.pending.is_empty();
        if done {
            let segment = entry.segment;
            inner.index.remove(&seq);
            if let Some(s) = inner.segments.get_mut(&segment) {
                s.live = s.live.saturating_sub(1);
            }
        }
        let record = Record::Ack {
            sink: sink.to_owned(),
            seq,
        };
        // A lost acknowledgement only means the message is sent again after a restart.
        let result = inner.write(&self.dir, &encode(&record)).map(|_| ());
        if done {
            inner.compact();
        }
        self.after_write(inner, &result);
    }

    fn after_write(&self, mut inner: MutexGuard<'_, Inner>, result: &Result<(), io::Error>) {
        match result {
            Ok(()) => {
                if std::mem::take(&mut inner.write_failing) {
                    tracing::info!("alert journal {}: writing again", self.dir.display());
                }
                inner.unsynced += 1;
                if inner.unsynced >= SYNC_RECORDS {
                    self.wake.notify_one();
                }
            }
            Err(e) => {
                if inner.lock.is_some() && !std::mem::replace(&mut inner.write_failing, true) {
                    tracing::error!(
                        "alert journal {}: cannot write ({e}); alerts are kept in memory only \
                         until it works again, and those that overflow a sink's queue are lost \
                         (counted `dropped`)",
                        self.dir.display()
                    );
                }
            }
        }
    }

    /// Reads message `seq` back; `Ok(None)` when the journal no longer has it (evicted).
    pub(crate) fn read(&self, seq: u64) -> Result<Option<Envelope>, ReadError> {
        let (path, offset, len) = {
            let inner = self.inner();
            let Some(entry) = inner.index.get(&seq) else {
                return Ok(None);
            };
            let Some(segment) = inner.segments.get(&entry.segment) else {
                return Ok(None);
            };
            (segment.path.clone(), entry.offset, entry.len)
        };
        let io = |source| ReadError::Io {
            path: path.clone(),
            source,
        };
        let file = fs::File::open(&path).map_err(io)?;
        let mut bytes = vec![0; len as usize];
        file.read_exact_at(&mut bytes, offset).map_err(io)?;
        let corrupt = |message: String| ReadError::Corrupt {
            path: path.clone(),
            offset,
            message,
        };
        match parse_at(&bytes) {
            Parsed::Record(Ok(Record::Message(stored)), _) if stored.envelope.seq == seq => {
                Ok(Some(stored.envelope))
            }
            Parsed::Record(Ok(_), _) => Err(corrupt(format!("not message {seq}"))),
            Parsed::Record(Err(message), _) | Parsed::Torn(message) => Err(corrupt(message)),
        }
    }

    /// Whether message `seq` is in the journal, for some sink.
    pub(crate) fn holds(&self, seq: u64) -> bool {
        self.inner().index.contains_key(&seq)
    }

    /// Messages evicted undelivered, for `sink`.
    pub(crate) fn evicted(&self, sink: &str) -> u64 {
        let inner = self.inner();
        inner
            .sinks
            .iter()
            .position(|n| n == sink)
            .and_then(|i| inner.evicted.get(i).copied())
            .unwrap_or(0)
    }

    /// Torn or corrupt records skipped when the journal was opened.
    pub(crate) fn corrupt(&self) -> u64 {
        self.inner().corrupt
    }

    /// Bytes on disk, segment headers included.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> u64 {
        self.inner().total_bytes
    }

    /// Segment files on disk.
    #[cfg(test)]
    pub(crate) fn segments(&self) -> usize {
        self.inner().segments.len()
    }

    /// Stops the sync thread (`sync`, from [`start_sync`](Self::start_sync)), syncs the rest
    /// and deletes what every sink has acknowledged: nothing is left of a journal whose
    /// messages were all delivered.
    pub(crate) fn close(&self, sync: Option<std::thread::JoinHandle<()>>) {
        self.inner().closing = true;
        self.wake.notify_all();
        if let Some(thread) = sync {
            if thread.join().is_err() {
                tracing::error!("alert journal: the sync thread panicked");
            }
        }
        self.sync_once();
        let mut inner = self.inner();
        if inner.index.is_empty() {
            inner.current = None;
        }
        inner.compact();
    }

    fn sync_loop(&self) {
        loop {
            {
                let inner = self.inner();
                if inner.closing {
                    return;
                }
                let (inner, _) = self
                    .wake
                    .wait_timeout(inner, SYNC_INTERVAL)
                    .unwrap_or_else(|p| p.into_inner());
                if inner.closing {
                    return;
                }
            }
            self.sync_once();
        }
    }

    /// Group commit: `fsync`s every file written since the last time, outside the lock.
    fn sync_once(&self) {
        let (files, dir) = {
            let mut inner = self.inner();
            if inner.unsynced == 0 && inner.to_sync.is_empty() && !inner.sync_dir {
                return;
            }
            inner.unsynced = 0;
            let mut files = std::mem::take(&mut inner.to_sync);
            if let Some((_, file)) = &inner.current {
                files.push(Arc::clone(file));
            }
            (files, std::mem::take(&mut inner.sync_dir))
        };
        let mut result = files.iter().try_for_each(|f| f.sync_data());
        if dir && result.is_ok() {
            result = fs::File::open(&self.dir).and_then(|d| d.sync_all());
        }
        let mut inner = self.inner();
        match result {
            Ok(()) => {
                if std::mem::take(&mut inner.sync_failing) {
                    tracing::info!("alert journal {}: syncing again", self.dir.display());
                }
            }
            Err(e) => {
                // Try again next time.
                inner.unsynced += 1;
                inner.sync_dir |= dir;
                if !std::mem::replace(&mut inner.sync_failing, true) {
                    tracing::error!(
                        "alert journal {}: fsync failed ({e}); alerts are written but may not \
                         survive a power loss",
                        self.dir.display()
                    );
                }
            }
        }
    }
}

impl Inner {
    fn new(sinks: Vec<String>, limits: Limits, lock: Option<fs::File>) -> Inner {
        Inner {
            evicted: vec![0; sinks.len()],
            sinks,
            limits,
            lock,
            segments: BTreeMap::new(),
            current: None,
            next_segment: 0,
            index: BTreeMap::new(),
            next_seq: 1,
            total_bytes: 0,
            unsynced: 0,
            to_sync: Vec::new(),
            sync_dir: false,
            corrupt: 0,
            write_failing: false,
            sync_failing: false,
            closing: false,
        }
    }

    /// Reads one segment left by an earlier run: its messages go to the index, its
    /// acknowledgements take sinks off them.
    fn load_segment(
        &mut self,
        id: u64,
        path: PathBuf,
        bytes: &[u8],
        orphans: &mut BTreeMap<String, BTreeSet<u64>>,
    ) {
        let mut segment = Segment {
            path,
            bytes: bytes.len() as u64,
            seqs: Vec::new(),
            live: 0,
        };
        self.total_bytes += segment.bytes;
        let Some(mut rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
            self.corrupt += 1;
            tracing::error!(
                "alert journal: {} is not a journal segment (no header); skipped, and \
                 deleted once the segments before it are delivered",
                segment.path.display()
            );
            self.segments.insert(id, segment);
            return;
        };
        let mut offset = MAGIC.len() as u64;
        while !rest.is_empty() {
            let used = match parse_at(rest) {
                Parsed::Torn(what) => {
                    self.corrupt += 1;
                    tracing::error!(
                        "alert journal: {} at offset {offset}: {what} (a crash mid-write?); the \
                         {} byte(s) from there are skipped",
                        segment.path.display(),
                        rest.len()
                    );
                    break;
                }
                Parsed::Record(Err(why), used) => {
                    self.corrupt += 1;
                    tracing::error!(
                        "alert journal: {} at offset {offset}: not a record this detector reads \
                         ({why}); skipped",
                        segment.path.display()
                    );
                    used
                }
                Parsed::Record(Ok(Record::Message(stored)), used) => {
                    let seq = stored.envelope.seq;
                    let mut pending = BTreeSet::new();
                    for sink in &stored.sinks {
                        match self.sinks.iter().position(|n| n == sink) {
                            Some(i) => {
                                pending.insert(i);
                            }
                            None => {
                                orphans.entry(sink.clone()).or_default().insert(seq);
                            }
                        }
                    }
                    self.next_seq = self.next_seq.max(seq + 1);
                    segment.seqs.push(seq);
                    if !pending.is_empty() {
                        self.index.insert(
                            seq,
                            Entry {
                                segment: id,
                                offset,
                                len: u32::try_from(used).unwrap_or(u32::MAX),
                                pending,
                            },
                        );
                    }
                    used
                }
                Parsed::Record(Ok(Record::Ack { sink, seq }), used) => {
                    if let Some(set) = orphans.get_mut(&sink) {
                        set.remove(&seq);
                    }
                    if let Some(i) = self.sinks.iter().position(|n| *n == sink) {
                        if let Some(entry) = self.index.get_mut(&seq) {
                            entry.pending.remove(&i);
                            if entry.pending.is_empty() {
                                self.index.remove(&seq);
                            }
                        }
                    }
                    used
                }
            };
            rest = rest.get(used..).unwrap_or_default();
            offset += used as u64;
        }
        self.segments.insert(id, segment);
    }

    /// Appends one encoded record: rolls the segment over when it is full and evicts the
    /// oldest segments when the journal is. Returns where it went.
    fn write(&mut self, dir: &Path, record: &[u8]) -> io::Result<(u64, u64, u32)> {
        if self.lock.is_none() {
            return Err(io::Error::other("the journal is not open"));
        }
        let len = record.len() as u64;
        let full = self.current.as_ref().is_some_and(|(id, _)| {
            self.segments.get(id).is_some_and(|s| {
                s.bytes > MAGIC.len() as u64 && s.bytes + len > self.limits.segment_bytes
            })
        });
        if full {
            if let Some((_, file)) = self.current.take() {
                self.to_sync.push(file);
            }
        }
        while self.total_bytes + len + MAGIC.len() as u64 > self.limits.max_bytes {
            let oldest = self
                .segments
                .keys()
                .next()
                .copied()
                .filter(|id| self.current.as_ref().is_none_or(|(c, _)| c != id));
            match oldest {
                Some(id) => self.evict(id),
                None => break,
            }
        }
        if self.current.is_none() {
            let id = self.next_segment;
            let path = dir.join(segment_name(id));
            let mut file = fs::OpenOptions::new()
                .append(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            file.write_all(MAGIC)?;
            self.next_segment += 1;
            self.total_bytes += MAGIC.len() as u64;
            self.segments.insert(
                id,
                Segment {
                    path,
                    bytes: MAGIC.len() as u64,
                    seqs: Vec::new(),
                    live: 0,
                },
            );
            self.current = Some((id, Arc::new(file)));
            self.sync_dir = true;
        }
        let Some((id, file)) = &self.current else {
            return Err(io::Error::other("no segment"));
        };
        let id = *id;
        let Some(segment) = self.segments.get_mut(&id) else {
            return Err(io::Error::other("no segment"));
        };
        let offset = segment.bytes;
        if let Err(e) = (&**file).write_all(record) {
            // Cut a partial record off, or failing that start a new segment: a torn record
            // in the middle would hide every record after it.
            if file.set_len(offset).is_err() {
                if let Some((_, file)) = self.current.take() {
                    self.to_sync.push(file);
                }
            }
            return Err(e);
        }
        segment.bytes += len;
        self.total_bytes += len;
        Ok((id, offset, u32::try_from(len).unwrap_or(u32::MAX)))
    }

    /// Deletes the oldest segment whatever it holds, counting its undelivered messages.
    fn evict(&mut self, id: u64) {
        let Some(segment) = self.segments.remove(&id) else {
            return;
        };
        let mut lost = vec![0u64; self.sinks.len()];
        for seq in &segment.seqs {
            if let Some(entry) = self.index.remove(seq) {
                for sink in entry.pending {
                    if let Some(n) = lost.get_mut(sink) {
                        *n += 1;
                    }
                }
            }
        }
        for (total, n) in self.evicted.iter_mut().zip(&lost) {
            *total += n;
        }
        self.remove_file(&segment);
        let per_sink: Vec<String> = self
            .sinks
            .iter()
            .zip(&lost)
            .filter(|(_, n)| **n > 0)
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        if !per_sink.is_empty() {
            tracing::error!(
                "alert journal over journal_max_bytes ({} bytes): dropped its oldest segment {} \
                 with undelivered alerts ({}; counted `evicted`)",
                self.limits.max_bytes,
                segment.path.display(),
                per_sink.join(", ")
            );
        }
    }

    /// Deletes the oldest segments while every message in them is acknowledged (never the one
    /// being appended to).
    fn compact(&mut self) {
        while let Some((&id, segment)) = self.segments.iter().next() {
            let appending = self.current.as_ref().is_some_and(|(c, _)| *c == id);
            if appending || segment.live > 0 {
                return;
            }
            if let Some(segment) = self.segments.remove(&id) {
                self.remove_file(&segment);
            }
        }
    }

    fn remove_file(&mut self, segment: &Segment) {
        self.total_bytes = self.total_bytes.saturating_sub(segment.bytes);
        match fs::remove_file(&segment.path) {
            Ok(()) => self.sync_dir = true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracing::error!(
                "alert journal: cannot delete {} ({e}); it is read again at the next start",
                segment.path.display()
            ),
        }
    }
}

#[cfg(test)]
mod tests;
