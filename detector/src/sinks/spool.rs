//! The spool of detector versions before the journal: undelivered messages of one sink, one
//! file each, in `<spool_dir>/<sink name>/<seq>.json`. Read once at start and moved into the
//! journal (`Dispatcher::start`), so that an upgrade loses nothing; never written any more
//! (`write` is kept for the tests).

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use super::message::Envelope;

/// Format version, in every file.
const VERSION: u32 = 1;

/// Suffix of a message that could not be read back: kept for a human, never sent.
const CORRUPT_SUFFIX: &str = ".corrupt";

#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
}

/// A spool file's contents.
#[derive(serde::Serialize, serde::Deserialize)]
struct SpoolFile {
    v: u32,
    #[serde(flatten)]
    envelope: Envelope,
}

/// Why a spool file could not be read back.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SpoolReadError {
    /// The file could not be read.
    #[error("reading {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file is not a spooled message (truncated, edited, a future version).
    #[error("{} is not a spooled message: {message}", path.display())]
    Format { path: PathBuf, message: String },
}

/// `00000000000000000042.json`.
pub(crate) fn file_name(seq: u64) -> String {
    format!("{seq:020}.json")
}

/// The sequence number of a spool file name, `None` for anything else (temporary files,
/// corrupt ones set aside).
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".json")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
pub(crate) fn encode(envelope: &Envelope) -> Vec<u8> {
    let file = SpoolFile {
        v: VERSION,
        envelope: envelope.clone(),
    };
    // Serialising plain data to memory cannot fail.
    let mut bytes = serde_json::to_vec(&file).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Envelope, String> {
    let file: SpoolFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if file.v != VERSION {
        return Err(format!(
            "format version {}, this detector reads {VERSION}",
            file.v
        ));
    }
    Ok(file.envelope)
}

impl Spool {
    pub(crate) fn new(spool_dir: &Path, sink: &str) -> Spool {
        Spool {
            dir: spool_dir.join(sink),
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(file_name(seq))
    }

    /// The sequence numbers in the spool, in order; none when the directory does not exist.
    pub(crate) fn scan(&self) -> io::Result<Vec<u64>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut seqs = Vec::new();
        for entry in entries {
            let entry = entry?;
            if let Some(seq) = entry.file_name().to_str().and_then(parse_file_name) {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();
        Ok(seqs)
    }

    #[cfg(test)]
    /// Writes `envelope`, durably when `sync` (data and directory entry flushed to disk).
    pub(crate) fn write(&self, envelope: &Envelope, sync: bool) -> io::Result<()> {
        use std::{
            io::Write as _,
            os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _},
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        let path = self.path(envelope.seq);
        let tmp = self.dir.join(format!(".{}.tmp", file_name(envelope.seq)));
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&encode(envelope))?;
        if sync {
            file.sync_data()?;
        }
        drop(file);
        fs::rename(&tmp, &path)?;
        if sync {
            fs::File::open(&self.dir)?.sync_all()?;
        }
        Ok(())
    }

    pub(crate) fn read(&self, seq: u64) -> Result<Envelope, SpoolReadError> {
        let path = self.path(seq);
        let bytes = fs::read(&path).map_err(|source| SpoolReadError::Io {
            path: path.clone(),
            source,
        })?;
        decode(&bytes).map_err(|message| SpoolReadError::Format { path, message })
    }

    /// Removes a delivered message; one that is already gone is fine.
    pub(crate) fn remove(&self, seq: u64) -> io::Result<()> {
        match fs::remove_file(self.path(seq)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Renames an unreadable message out of the way (`<seq>.json.corrupt`), so that it is
    /// neither sent nor lost.
    pub(crate) fn set_aside(&self, seq: u64) -> io::Result<PathBuf> {
        let from = self.path(seq);
        let to = self.dir.join(format!("{}{CORRUPT_SUFFIX}", file_name(seq)));
        fs::rename(&from, &to)?;
        Ok(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::{Message, Resolution};

    fn envelope(seq: u64) -> Envelope {
        Envelope {
            seq,
            id: format!("id-{seq}"),
            message: Message::Resolve(Resolution {
                incident_id: "abc".to_owned(),
                host: "node-1".to_owned(),
                time: "2026-01-01T12:00:00.000000Z".to_owned(),
                summary: "over".to_owned(),
            }),
        }
    }

    #[test]
    fn file_names_sort_in_sequence_order() {
        assert_eq!(file_name(42), "00000000000000000042.json");
        assert_eq!(parse_file_name("00000000000000000042.json"), Some(42));
        assert_eq!(parse_file_name(&file_name(u64::MAX)), Some(u64::MAX));
        assert!(file_name(9) < file_name(10));
        for bad in [
            "42.json",
            ".00000000000000000042.json.tmp",
            "00000000000000000042.json.corrupt",
            "0000000000000000004x.json",
            "README",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn encode_decode_round_trip() {
        let e = envelope(7);
        let bytes = encode(&e);
        assert!(bytes.ends_with(b"\n"));
        let json: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(json["v"], 1);
        assert_eq!(json["seq"], 7);
        assert_eq!(json["id"], "id-7");
        assert_eq!(json["resolve"]["incident_id"], "abc");
        assert_eq!(decode(&bytes).expect("decodes"), e);
    }

    #[test]
    fn decode_refuses_garbage_and_other_versions() {
        assert!(decode(b"").is_err());
        assert!(decode(b"{\"v\":1,\"seq\":1").is_err());
        let mut json: serde_json::Value =
            serde_json::from_slice(&encode(&envelope(1))).expect("json");
        json["v"] = 2.into();
        let err = decode(json.to_string().as_bytes()).expect_err("version 2");
        assert!(err.contains("version 2"), "{err}");
    }

    #[test]
    fn write_scan_read_remove() {
        let root = std::env::temp_dir().join(format!("detector-spool-test-{}", std::process::id()));
        let spool = Spool::new(&root, "hook");
        assert_eq!(
            spool.scan().expect("missing dir is empty"),
            Vec::<u64>::new()
        );
        assert!(!spool.dir().exists(), "scan creates nothing");
        for seq in [3, 1, 20] {
            spool.write(&envelope(seq), seq == 1).expect("write");
        }
        assert_eq!(spool.scan().expect("scan"), [1, 3, 20]);
        assert_eq!(spool.read(3).expect("read"), envelope(3));
        spool.remove(3).expect("remove");
        spool.remove(3).expect("removing twice is fine");
        assert_eq!(spool.scan().expect("scan"), [1, 20]);
        std::fs::write(spool.dir().join(file_name(5)), b"garbage").expect("write");
        assert!(matches!(spool.read(5), Err(SpoolReadError::Format { .. })));
        let aside = spool.set_aside(5).expect("set aside");
        assert!(aside.exists());
        assert_eq!(spool.scan().expect("scan"), [1, 20]);
        let _ = std::fs::remove_dir_all(&root);
    }
}
