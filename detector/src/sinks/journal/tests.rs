//! The journal on plain data: append, replay, acknowledge, compaction, torn tails, the limit.

use std::{fs, path::PathBuf};

use super::*;
use crate::sinks::{alert_id, Resolution};

struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "detector-journal-test-{}-{label}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn message(n: u64) -> Message {
    Message::Resolve(Resolution {
        incident_id: format!("incident-{n}"),
        host: "node-1".to_owned(),
        time: "2026-01-01T12:00:00.000000Z".to_owned(),
        summary: format!("over {n}"),
    })
}

fn sinks(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn append(journal: &Journal, to: &[&str], n: u64) -> u64 {
    let message = message(n);
    let (seq, written) = journal.append(to, &alert_id(&message), &message);
    written.expect("written");
    seq
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(SEGMENT_SUFFIX))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

const ROOMY: Limits = Limits {
    max_bytes: 1 << 30,
    segment_bytes: 1 << 20,
};

#[test]
fn segment_names_sort_and_parse() {
    assert_eq!(segment_name(42), "00000000000000000042.seg");
    assert_eq!(parse_segment_name(&segment_name(42)), Some(42));
    assert!(segment_name(9) < segment_name(10));
    for bad in [
        "42.seg",
        "journal.lock",
        "00000000000000000042.json",
        "x.seg",
    ] {
        assert_eq!(parse_segment_name(bad), None, "{bad}");
    }
    let limits = Limits::new(256 << 20);
    assert_eq!(limits.segment_bytes, 16 << 20);
    assert_eq!(Limits::new(1 << 20).segment_bytes, 64 << 10);
}

#[test]
fn replay_gives_each_sink_what_it_did_not_acknowledge_with_the_same_id() {
    let scratch = Scratch::new("replay");
    let names = sinks(&["hook", "stdout"]);
    let opened = Journal::open(&scratch.0, &names, ROOMY).expect("open");
    assert!(opened.pending.values().all(Vec::is_empty));
    let journal = opened.journal;
    let one = append(&journal, &["hook", "stdout"], 1);
    let two = append(&journal, &["hook"], 2);
    let three = append(&journal, &["stdout"], 3);
    assert_eq!((one, two, three), (1, 2, 3));
    journal.ack("stdout", one);
    journal.ack("stdout", three);
    journal.ack("stdout", three); // twice is harmless
    journal.ack("nobody", two); // so is a sink the journal does not know
    let read = journal.read(two).expect("reads").expect("held");
    assert_eq!(read.message, message(2));
    assert_eq!(read.id, alert_id(&message(2)));
    // A crash: no close, no sync; the next open sees what was written.
    drop(journal);
    let reopened = Journal::open(&scratch.0, &names, ROOMY).expect("reopen");
    assert_eq!(reopened.pending["hook"], [1, 2]);
    assert!(reopened.pending["stdout"].is_empty());
    let journal = reopened.journal;
    let back = journal.read(1).expect("reads").expect("held");
    assert_eq!(
        back.id,
        alert_id(&message(1)),
        "the idempotency key survives"
    );
    assert_eq!(journal.corrupt(), 0);
    // New messages number on from the old ones.
    assert_eq!(append(&journal, &["hook"], 4), 4);
    journal.ack("hook", 1);
    journal.ack("hook", 2);
    journal.ack("hook", 4);
    journal.close(None);
    assert!(
        segment_files(&scratch.0).is_empty(),
        "everything acknowledged: nothing left on disk"
    );
}

#[test]
fn only_one_daemon_holds_a_journal() {
    let scratch = Scratch::new("lock");
    let names = sinks(&["stdout"]);
    let first = Journal::open(&scratch.0, &names, ROOMY).expect("open");
    let err = Journal::open(&scratch.0, &names, ROOMY).expect_err("locked");
    assert!(matches!(err, JournalError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("another detector"), "{err}");
    drop(first);
    Journal::open(&scratch.0, &names, ROOMY).expect("free again");
}

#[test]
fn acknowledged_segments_are_deleted_oldest_first() {
    let scratch = Scratch::new("compact");
    let names = sinks(&["a", "b"]);
    let limits = Limits {
        max_bytes: 1 << 30,
        segment_bytes: 1024,
    };
    let journal = Journal::open(&scratch.0, &names, limits)
        .expect("open")
        .journal;
    let seqs: Vec<u64> = (1..=40).map(|n| append(&journal, &["a", "b"], n)).collect();
    let many = journal.segments();
    assert!(many >= 4, "{many} segments");
    // `a` done with everything, `b` with all but the first: nothing can go, since the
    // first segment holds an undelivered message and later ones its acknowledgements.
    for &seq in &seqs {
        journal.ack("a", seq);
    }
    for &seq in &seqs[1..] {
        journal.ack("b", seq);
    }
    assert!(journal.segments() >= many);
    journal.ack("b", seqs[0]);
    assert_eq!(
        journal.segments(),
        1,
        "all but the one appended to are gone"
    );
    journal.close(None);
    assert!(segment_files(&scratch.0).is_empty());
}

#[test]
fn a_torn_tail_is_counted_and_skipped_and_appends_go_on() {
    let scratch = Scratch::new("torn");
    let names = sinks(&["hook"]);
    let journal = Journal::open(&scratch.0, &names, ROOMY)
        .expect("open")
        .journal;
    for n in 1..=3 {
        append(&journal, &["hook"], n);
    }
    drop(journal);
    // A crash in the middle of the third record.
    let files = segment_files(&scratch.0);
    let path = scratch.0.join(files.last().expect("a segment"));
    let len = fs::metadata(&path).expect("stat").len();
    let file = fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    file.set_len(len - 5).expect("truncate");
    drop(file);

    let opened = Journal::open(&scratch.0, &names, ROOMY).expect("a torn tail is no error");
    assert_eq!(opened.pending["hook"], [1, 2]);
    assert_eq!(opened.journal.corrupt(), 1);
    assert_eq!(
        append(&opened.journal, &["hook"], 4),
        3,
        "seq 3 never made it"
    );
    drop(opened);

    // Garbage after a good record, and a record whose checksum is wrong.
    let mut bytes = fs::read(&path).expect("read");
    bytes.extend_from_slice(&[0xff; 3]);
    fs::write(&path, &bytes).expect("write");
    let opened = Journal::open(&scratch.0, &names, ROOMY).expect("open");
    assert_eq!(opened.pending["hook"], [1, 2, 3]);
    assert_eq!(opened.journal.corrupt(), 1, "still the one torn tail");
    drop(opened);

    let mut flipped = encode(&Record::Ack {
        sink: "hook".to_owned(),
        seq: 1,
    });
    if let Some(last) = flipped.last_mut() {
        *last ^= 1;
    }
    let newest = scratch
        .0
        .join(segment_files(&scratch.0).last().expect("segment"));
    let mut bytes = fs::read(&newest).expect("read");
    bytes.extend_from_slice(&flipped);
    fs::write(&newest, &bytes).expect("write");
    let opened = Journal::open(&scratch.0, &names, ROOMY).expect("open");
    assert_eq!(
        opened.pending["hook"],
        [1, 2, 3],
        "the bad ack is not believed"
    );
    assert_eq!(opened.journal.corrupt(), 2, "one torn tail per segment");
}

#[test]
fn a_record_of_another_version_is_skipped_and_the_rest_read() {
    let scratch = Scratch::new("foreign");
    let names = sinks(&["hook"]);
    let journal = Journal::open(&scratch.0, &names, ROOMY)
        .expect("open")
        .journal;
    append(&journal, &["hook"], 1);
    drop(journal);
    let path = scratch.0.join(segment_files(&scratch.0).remove(0));
    let mut bytes = fs::read(&path).expect("read");
    let json = br#"{"future":{"x":1}}"#;
    bytes.extend_from_slice(&(json.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(json).to_le_bytes());
    bytes.extend_from_slice(json);
    bytes.extend_from_slice(&encode(&Record::Ack {
        sink: "hook".to_owned(),
        seq: 1,
    }));
    fs::write(&path, &bytes).expect("write");
    // And a file that is not a segment at all.
    fs::write(scratch.0.join(segment_name(7)), b"hello").expect("write");
    let opened = Journal::open(&scratch.0, &names, ROOMY).expect("open");
    assert!(
        opened.pending["hook"].is_empty(),
        "the ack after it was read"
    );
    assert_eq!(opened.journal.corrupt(), 2);
}

#[test]
fn the_limit_evicts_the_oldest_undelivered_messages_counted_per_sink() {
    let scratch = Scratch::new("limit");
    let names = sinks(&["slow", "fast"]);
    let limits = Limits {
        max_bytes: 8 << 10,
        segment_bytes: 1 << 10,
    };
    let journal = Journal::open(&scratch.0, &names, limits)
        .expect("open")
        .journal;
    let mut last = 0;
    for n in 1..=200 {
        last = append(&journal, &["slow", "fast"], n);
        journal.ack("fast", last);
        assert!(journal.bytes() <= limits.max_bytes, "{}", journal.bytes());
    }
    let evicted = journal.evicted("slow");
    assert!(evicted > 100, "{evicted}");
    assert_eq!(journal.evicted("fast"), 0, "fast had delivered everything");
    assert_eq!(journal.read(1).expect("reads"), None, "the oldest are gone");
    let on_disk: u64 = segment_files(&scratch.0)
        .iter()
        .map(|f| fs::metadata(scratch.0.join(f)).expect("stat").len())
        .sum();
    assert_eq!(on_disk, journal.bytes());
    drop(journal);
    let opened = Journal::open(&scratch.0, &names, limits).expect("open");
    let pending = &opened.pending["slow"];
    assert_eq!(
        pending.len() as u64 + evicted,
        200,
        "every message kept or counted"
    );
    assert_eq!(pending.last(), Some(&last), "the newest are kept");
    assert!(
        pending.windows(2).all(|w| w[1] == w[0] + 1),
        "what is kept is the newest run: {pending:?}"
    );
    assert!(opened.pending["fast"].is_empty());
}

#[test]
fn a_sink_gone_from_the_policy_holds_nothing_back() {
    let scratch = Scratch::new("orphan");
    let journal = Journal::open(&scratch.0, &sinks(&["old", "stdout"]), ROOMY)
        .expect("open")
        .journal;
    let seq = append(&journal, &["old", "stdout"], 1);
    journal.ack("stdout", seq);
    drop(journal);
    let opened = Journal::open(&scratch.0, &sinks(&["stdout"]), ROOMY).expect("open");
    assert!(opened.pending["stdout"].is_empty());
    opened.journal.close(None);
    assert!(segment_files(&scratch.0).is_empty());
}

#[test]
fn a_disabled_journal_refuses_appends() {
    let journal = Journal::disabled(Path::new("/nonexistent"), &sinks(&["stdout"]));
    let (seq, written) = journal.append(&["stdout"], "id", &message(1));
    assert_eq!(seq, 1);
    assert!(written.is_err());
    assert!(!journal.holds(seq));
    journal.ack("stdout", seq);
    journal.close(None);
}

#[test]
fn the_sync_thread_stops_at_close() {
    let scratch = Scratch::new("sync");
    let names = sinks(&["stdout"]);
    let journal = Journal::open(&scratch.0, &names, ROOMY)
        .expect("open")
        .journal;
    let sync = journal.start_sync().expect("thread");
    let seq = append(&journal, &["stdout"], 1);
    std::thread::sleep(SYNC_INTERVAL * 3);
    assert_eq!(journal.inner().unsynced, 0, "synced within the interval");
    journal.ack("stdout", seq);
    journal.close(Some(sync));
    assert!(segment_files(&scratch.0).is_empty());
}
