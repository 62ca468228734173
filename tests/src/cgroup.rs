//! A throw-away cgroup v2 directory that holds the test's JVM, and the pre-exec hook that puts a
//! child into it before it execs.

use std::{
    ffi::CString,
    fs, io,
    os::unix::{ffi::OsStrExt, process::CommandExt},
    path::{Path, PathBuf},
    process::Command,
    thread,
    time::{Duration, Instant},
};

/// A cgroup v2 directory `detector-test-<name>-<pid>` under the cgroup2 mount.
///
/// The detector is started with `--cgroup <path>` and only tracks JVMs started inside it.
/// Dropping it SIGKILLs whatever is still inside and removes the directory.
#[derive(Debug)]
pub struct TestCgroup {
    path: PathBuf,
}

impl TestCgroup {
    /// Creates the cgroup, panicking if the cgroup2 mount is missing or not writable.
    pub fn create(name: &str) -> Self {
        let mount = cgroup2_mount().unwrap_or_else(|e| panic!("{e}"));
        let path = mount.join(format!("detector-test-{name}-{}", std::process::id()));
        if path.exists() {
            // Left behind by an earlier run whose pid was recycled; start clean.
            drop(TestCgroup { path: path.clone() });
        }
        fs::create_dir(&path).unwrap_or_else(|e| panic!("creating cgroup {}: {e}", path.display()));
        TestCgroup { path }
    }

    /// The cgroup's directory, as passed to `detector run --cgroup`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pids currently in the cgroup.
    pub fn pids(&self) -> Vec<libc::pid_t> {
        let procs = self.path.join("cgroup.procs");
        fs::read_to_string(&procs)
            .unwrap_or_else(|e| panic!("reading {}: {e}", procs.display()))
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Makes `command`'s child join this cgroup between fork and exec, so the program is
    /// inside the cgroup from its very first instruction (and so is every process it starts).
    pub fn enter_before_exec(&self, command: &mut Command) {
        let procs = CString::new(self.path.join("cgroup.procs").as_os_str().as_bytes())
            .expect("cgroup paths contain no NUL byte");
        let hook = move || -> io::Result<()> {
            // Only async-signal-safe calls between fork and exec: no allocation, no locks.
            // SAFETY: `procs` is a valid NUL-terminated string owned by this closure.
            let fd = unsafe { libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // Writing "0" moves the writing process itself (cgroup-v2.rst, "cgroup.procs").
            // SAFETY: fd is open for writing and the buffer is one valid byte.
            let written = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
            let err = io::Error::last_os_error();
            // SAFETY: fd was opened above and is closed once.
            unsafe { libc::close(fd) };
            if written == 1 {
                Ok(())
            } else {
                Err(err)
            }
        };
        // SAFETY: the hook only calls open/write/close, which are async-signal-safe, and touches
        // no state shared with the parent.
        unsafe {
            command.pre_exec(hook);
        }
    }

    /// SIGKILLs everything in the cgroup until it is empty (or 5 s have passed).
    fn kill_all(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let pids = fs::read_to_string(self.path.join("cgroup.procs")).unwrap_or_default();
            let pids: Vec<libc::pid_t> =
                pids.lines().filter_map(|l| l.trim().parse().ok()).collect();
            if pids.is_empty() || Instant::now() > deadline {
                return;
            }
            for pid in pids {
                // SAFETY: kill has no memory-safety preconditions; a pid that already exited
                // just yields ESRCH.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        self.kill_all();
        // rmdir fails with EBUSY until the killed tasks are fully gone; retry briefly.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match fs::remove_dir(&self.path) {
                Ok(()) => return,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return,
                Err(e) if Instant::now() > deadline => {
                    eprintln!(
                        "warning: could not remove cgroup {}: {e}",
                        self.path.display()
                    );
                    return;
                }
                Err(_) => thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

/// The cgroup v2 mount point, from `/proc/mounts` (type `cgroup2`): `/sys/fs/cgroup` on a
/// unified host, `/sys/fs/cgroup/unified` on a hybrid one.
pub(crate) fn cgroup2_mount() -> Result<PathBuf, String> {
    let mounts =
        fs::read_to_string("/proc/mounts").map_err(|e| format!("reading /proc/mounts: {e}"))?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_source, target, fstype) = (fields.next()?, fields.next()?, fields.next()?);
            (fstype == "cgroup2").then(|| PathBuf::from(unescape_mount_path(target)))
        })
        .next()
        .ok_or_else(|| {
            "no cgroup2 filesystem in /proc/mounts (the detector's --cgroup scope needs cgroup v2)"
                .to_owned()
        })
}

/// Undoes the octal escapes (`\040` for a space, ...) that /proc/mounts uses in paths.
fn unescape_mount_path(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::unescape_mount_path;

    #[test]
    fn mount_paths_are_unescaped() {
        assert_eq!(unescape_mount_path("/sys/fs/cgroup"), "/sys/fs/cgroup");
        assert_eq!(unescape_mount_path("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape_mount_path("/mnt/trailing\\"), "/mnt/trailing\\");
    }
}
