//! JSON lines in a file, one alert per line exactly as on stdout, with size-based rotation:
//! before a line would take the file past `max_bytes`, `alerts.jsonl` becomes
//! `alerts.jsonl.1`, `.1` becomes `.2`, and so on up to `keep` files; the oldest goes.
//!
//! The file is created with mode 0640 (its directory too, 0750, when missing) and every line
//! is flushed to disk before the alert counts as delivered. Writing happens on tokio's
//! blocking pool, never on the detection thread.

use std::{
    fs,
    io::{self, Write as _},
    os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use super::{
    error::Failure,
    message::{Envelope, Message},
};

#[derive(Debug)]
pub(crate) struct FileSink {
    state: Arc<Mutex<FileState>>,
}

#[derive(Debug)]
struct FileState {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    /// The open file and its size, until an error closes it.
    open: Option<(fs::File, u64)>,
}

/// `alerts.jsonl.3`.
pub(crate) fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Whether a line of `line_len` bytes must go to a fresh file, given the current `size`.
/// A line longer than `max_bytes` still goes somewhere: into an empty file.
pub(crate) fn needs_rotation(size: u64, line_len: u64, max_bytes: u64) -> bool {
    max_bytes > 0 && size > 0 && size + line_len > max_bytes
}

/// Shifts `path.1` .. `path.<keep-1>` up by one, drops the oldest and moves `path` to `.1`.
fn rotate(path: &Path, keep: u32) -> io::Result<()> {
    let ignore_missing = |r: io::Result<()>| match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    };
    if keep == 0 {
        return ignore_missing(fs::remove_file(path));
    }
    ignore_missing(fs::remove_file(rotated_path(path, keep)))?;
    for n in (1..keep).rev() {
        ignore_missing(fs::rename(rotated_path(path, n), rotated_path(path, n + 1)))?;
    }
    ignore_missing(fs::rename(path, rotated_path(path, 1)))
}

impl FileState {
    fn open(&mut self) -> io::Result<&mut (fs::File, u64)> {
        if self.open.is_none() {
            if let Some(dir) = self.path.parent() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o750)
                    .create(dir)?;
            }
            let file = fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o640)
                .open(&self.path)?;
            let size = file.metadata()?.len();
            self.open = Some((file, size));
        }
        self.open
            .as_mut()
            .ok_or_else(|| io::Error::other("file not open"))
    }

    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let (max_bytes, keep) = (self.max_bytes, self.keep);
        let size = self.open()?.1;
        if needs_rotation(size, line.len() as u64, max_bytes) {
            self.open = None;
            rotate(&self.path, keep)?;
        }
        let (file, size) = self.open()?;
        file.write_all(line)?;
        file.sync_data()?;
        *size += line.len() as u64;
        Ok(())
    }
}

impl FileSink {
    pub(crate) fn new(path: PathBuf, max_bytes: u64, keep: u32) -> Self {
        FileSink {
            state: Arc::new(Mutex::new(FileState {
                path,
                max_bytes,
                keep,
                open: None,
            })),
        }
    }

    pub(crate) async fn deliver(&mut self, envelope: &Envelope) -> Result<(), Failure> {
        let Message::Alert(alert) = &envelope.message else {
            return Ok(());
        };
        let mut line = serde_json::to_vec(alert).unwrap_or_default();
        line.push(b'\n');
        let state = Arc::clone(&self.state);
        let written = tokio::task::spawn_blocking(move || {
            let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
            let result = state.write_line(&line);
            if result.is_err() {
                // Reopen next time: the file may have been moved or its disk remounted.
                state.open = None;
            }
            result.map_err(|e| format!("{}: {e}", state.path.display()))
        })
        .await;
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(Failure::Transient {
                reason,
                after: None,
            }),
            Err(e) => Err(Failure::Transient {
                reason: format!("writer task: {e}"),
                after: None,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::tests::{sample_alert, sample_envelope};

    #[test]
    fn rotation_names_and_threshold() {
        let path = Path::new("/var/log/detector/alerts.jsonl");
        assert_eq!(
            rotated_path(path, 1),
            Path::new("/var/log/detector/alerts.jsonl.1")
        );
        assert_eq!(
            rotated_path(path, 12),
            Path::new("/var/log/detector/alerts.jsonl.12")
        );
        assert!(!needs_rotation(0, 500, 100), "an empty file takes any line");
        assert!(!needs_rotation(50, 50, 100));
        assert!(needs_rotation(51, 50, 100));
        assert!(!needs_rotation(1 << 40, 50, 0), "0: never rotate");
    }

    #[tokio::test]
    async fn writes_lines_and_rotates_keeping_n_files() {
        let dir = std::env::temp_dir().join(format!("detector-file-sink-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let path = dir.join("sub/alerts.jsonl");
        let line_len = serde_json::to_vec(&sample_alert()).expect("json").len() as u64 + 1;
        // Two lines per file.
        let mut sink = FileSink::new(path.clone(), line_len * 2, 2);
        for _ in 0..7 {
            sink.deliver(&sample_envelope()).await.expect("written");
        }
        let lines = |p: &Path| fs::read_to_string(p).map_or(0, |t| t.lines().count());
        assert_eq!(lines(&path), 1, "7 = 2 + 2 + 2 + 1");
        assert_eq!(lines(&rotated_path(&path, 1)), 2);
        assert_eq!(lines(&rotated_path(&path, 2)), 2);
        assert!(!rotated_path(&path, 3).exists(), "keep = 2");
        let first = fs::read_to_string(&path).expect("read");
        let parsed: crate::alert::Alert =
            serde_json::from_str(first.trim_end()).expect("an alert per line");
        assert_eq!(parsed, sample_alert());

        // keep = 0: rotating starts the file afresh.
        let mut sink = FileSink::new(path.clone(), line_len, 0);
        sink.deliver(&sample_envelope()).await.expect("written");
        sink.deliver(&sample_envelope()).await.expect("written");
        assert_eq!(lines(&path), 1);
        let _ = fs::remove_dir_all(&dir);
    }
}
