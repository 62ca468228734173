//! A throw-away cgroup v2 directory per scenario (test, lab run or benchmark), and the pre-exec
//! hook that puts a child into it before it execs.

use std::{
    ffi::CString,
    fs, io,
    os::unix::{ffi::OsStrExt, process::CommandExt},
    path::{Path, PathBuf},
    process::Command,
    thread,
    time::{Duration, Instant},
};

use crate::Error;

/// The name every harness cgroup starts with: `detector-test-<pid>-<name>`.
const PREFIX: &str = "detector-test-";

/// A cgroup v2 directory `detector-test-<pid>-<name>` under the cgroup2 mount.
///
/// The detector is started with `--cgroup <path>` and only tracks JVMs started inside it, so
/// nothing else on the machine can produce an alert the scenario did not cause. Dropping it
/// SIGKILLs whatever is still inside and removes the directory.
#[derive(Debug)]
pub struct Cgroup {
    path: PathBuf,
    /// `<path>/cgroup.procs`, ready for the pre-exec hook (which must not allocate).
    procs: CString,
}

impl Cgroup {
    /// Creates the cgroup; fails if the cgroup2 mount is missing or not writable.
    pub fn create(name: &str) -> Result<Self, Error> {
        let mount = cgroup2_mount()?;
        let path = mount.join(format!("{PREFIX}{}-{name}", std::process::id()));
        let procs = CString::new(path.join("cgroup.procs").as_os_str().as_bytes())
            .map_err(|_| Error::Failed(format!("{} contains a NUL byte", path.display())))?;
        let cgroup = Cgroup { path, procs };
        if cgroup.path.exists() {
            // Left behind by an earlier run whose pid was recycled; start clean.
            cgroup.remove();
        }
        fs::create_dir(&cgroup.path).map_err(Error::io(format!(
            "creating cgroup {}",
            cgroup.path.display()
        )))?;
        Ok(cgroup)
    }

    /// [`create`](Self::create) for a test: panics (fails the test) if it cannot.
    pub fn new(name: &str) -> Self {
        Self::create(name).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The cgroup's directory, as passed to `detector run --cgroup`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pids currently in the cgroup.
    pub fn pids(&self) -> Result<Vec<libc::pid_t>, Error> {
        let procs = self.path.join("cgroup.procs");
        Ok(fs::read_to_string(&procs)
            .map_err(Error::io(format!("reading {}", procs.display())))?
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect())
    }

    /// Makes `command`'s child join this cgroup between fork and exec, so the program is
    /// inside the cgroup from its very first instruction (and so is every process it starts).
    pub fn enter_before_exec(&self, command: &mut Command) {
        let procs = self.procs.clone();
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

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.remove();
    }
}

impl Cgroup {
    /// Kills what is inside, then removes the directory.
    fn remove(&self) {
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
pub fn cgroup2_mount() -> Result<PathBuf, Error> {
    let mounts = fs::read_to_string("/proc/mounts").map_err(Error::io("reading /proc/mounts"))?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_source, target, fstype) = (fields.next()?, fields.next()?, fields.next()?);
            (fstype == "cgroup2").then(|| PathBuf::from(unescape_mount_path(target)))
        })
        .next()
        .ok_or_else(|| {
            Error::Failed(
                "no cgroup2 filesystem in /proc/mounts (the detector's --cgroup scope needs cgroup v2)"
                    .to_owned(),
            )
        })
}

/// Removes the empty cgroups that runs which died without cleaning up left behind
/// (`detector-test-<pid>-*` whose pid is gone). A cgroup that still holds processes is left
/// alone: rmdir refuses it.
pub fn remove_stale() {
    let Ok(mount) = cgroup2_mount() else { return };
    let Ok(entries) = fs::read_dir(&mount) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir(entry.path());
        }
    }
}

/// Undoes the octal escapes (`\040` for a space, ...) that /proc/mounts uses in paths.
pub fn unescape_mount_path(field: &str) -> String {
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
