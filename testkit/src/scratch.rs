//! Temporary files and directories, std only: unique names from the process's pid and a
//! counter, removed on drop.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
};

use crate::Error;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// `detector-it-<pid>-<n>-<label>`: unique within this machine while this process lives.
pub fn unique_name(label: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("detector-it-{}-{n}-{label}", std::process::id())
}

/// A fresh directory under [`std::env::temp_dir`], removed with its contents on drop.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// A fresh directory under the temp dir.
    pub fn create(label: &str) -> Result<Self, Error> {
        Self::create_in(&std::env::temp_dir(), label)
    }

    /// A fresh directory under `parent`.
    pub fn create_in(parent: &Path, label: &str) -> Result<Self, Error> {
        let path = parent.join(unique_name(label));
        fs::create_dir_all(&path).map_err(Error::io(format!("creating {}", path.display())))?;
        Ok(ScratchDir { path })
    }

    /// [`create`](Self::create) for a test: panics (fails the test) if it cannot.
    pub fn new(label: &str) -> Self {
        Self::create(label).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`create_in`](Self::create_in) for a test: panics (fails the test) if it cannot.
    pub fn new_in(parent: &Path, label: &str) -> Self {
        Self::create_in(parent, label).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory, for a canary file a scenario should (or must not) create.
    /// The scenarios single-quote paths for `sh`, so a name with a quote is refused here.
    pub fn file(&self, name: &str) -> PathBuf {
        let path = self.path.join(name);
        assert!(
            !path.to_string_lossy().contains('\''),
            "scenario paths must not contain a single quote: {}",
            path.display()
        );
        path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // Best effort: a leftover directory under the temp dir is harmless.
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Removes a file on drop (if it exists): for payloads dropped outside a [`ScratchDir`].
#[derive(Debug)]
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}
