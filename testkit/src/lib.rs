//! The one test harness of the detector, shared by the integration tests (`tests/`), the
//! Log4Shell lab (`tests/lab`) and the benchmarks (`cargo xtask bench`):
//!
//! - [`Cgroup`]: a throw-away cgroup v2 directory that scopes `detector run --cgroup` to what
//!   a scenario starts;
//! - [`Detector`] (started through [`Launch`]): the daemon driven through its command line
//!   only: `detector ready`, alert JSON lines, SIGTERM, the typed [`Stats`] line;
//! - [`ScratchDir`]: temporary directories removed on drop;
//! - [`java`]: `javac` and `java` command lines, and [`find_on_path`];
//! - [`log4j`]: the genuine log4j 2.14.1 jars the lab's vulnerable app runs, fetched once
//!   and checked;
//! - [`servers`]: loopback TCP/UDP servers that count what reached them (LDAP, RMI, HTTP and
//!   DNS stand-ins);
//! - [`Mode`]: `detector run --mode`.
//!
//! Fallible set-up returns [`Error`]; the test-only conveniences that panic (as a failed
//! test should) say so in their docs.

pub mod cgroup;
pub mod daemon;
pub mod java;
pub mod log4j;
mod scratch;
pub mod servers;

use std::{env, path::PathBuf, process::Command, time::Duration};

pub use cgroup::Cgroup;
pub use daemon::{Detector, Launch, Stats};
pub use java::find_on_path;
pub use scratch::{unique_name, RemoveOnDrop, ScratchDir};

/// What went wrong while setting up or driving a harness piece.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file-system or process operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Anything else, said in full (the daemon's state, a compiler's output...).
    #[error("{0}")]
    Failed(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

/// `detector run --mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    /// Report only: alerts say `"action": "reported"` and nothing is stopped.
    Monitor,
    /// Kill the offending process: alerts say `"action": "killed"`.
    Enforce,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Monitor => "monitor",
            Mode::Enforce => "enforce",
        }
    }

    /// The `action` an alert for a blocked-by-policy exec carries in this mode.
    pub fn expected_action(self) -> &'static str {
        match self {
            Mode::Monitor => "reported",
            Mode::Enforce => "killed",
        }
    }

    /// The `action` an alert for egress the policy denies carries in this mode: the kernel
    /// refuses the connect (EPERM) or drops the socket's packets, so nothing is killed.
    pub fn egress_action(self) -> &'static str {
        match self {
            Mode::Monitor => "reported",
            Mode::Enforce => "blocked",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A harness deadline stretched by `DETECTOR_TEST_TIMEOUT_SCALE` (a whole factor, default 1).
///
/// The kernel matrix (`cargo xtask kernels`) runs the integration tests in QEMU without KVM,
/// where a JVM starts several times slower than on the host. Only how long the harness waits
/// for something is stretched, in its waiting primitives (the daemon driver, the programs,
/// the servers); what a test asserts is not. Panics on a malformed value: a test run with a
/// typo in its environment should not silently use other deadlines.
pub fn scaled(timeout: Duration) -> Duration {
    let factor = env::var("DETECTOR_TEST_TIMEOUT_SCALE")
        .ok()
        .map(|v| {
            v.parse::<u32>()
                .ok()
                .filter(|f| *f >= 1)
                .unwrap_or_else(|| {
                    panic!("DETECTOR_TEST_TIMEOUT_SCALE={v:?}: expected a whole number >= 1")
                })
        })
        .unwrap_or(1);
    timeout * factor
}

/// The workspace root: the parent of this crate's directory.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}

/// Whether we run as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A shell-like rendering of a command, with the environment it sets, for step logs and errors.
pub fn command_line(cmd: &Command) -> String {
    let mut parts = Vec::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            parts.push(format!(
                "{}={}",
                key.to_string_lossy(),
                value.to_string_lossy()
            ));
        }
    }
    parts.push(cmd.get_program().to_string_lossy().into_owned());
    parts.extend(cmd.get_args().map(|arg| arg.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// `12.3s` or `4m05s`.
pub fn fmt_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = d.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

/// Makes the child get SIGTERM when the process that spawned it dies, however it dies: a
/// daemon detaches, JVMs exit. The kernel watches the spawning *thread*, so spawn from a
/// thread that lives as long as the child should (the main thread).
pub fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt as _;
    let hook = || -> std::io::Result<()> {
        // SAFETY: prctl is a plain system call, async-signal-safe; no memory is touched.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    // SAFETY: the hook only makes one system call between fork and exec.
    unsafe {
        cmd.pre_exec(hook);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_duration(Duration::from_millis(12_345)), "12.3s");
        assert_eq!(fmt_duration(Duration::from_secs(245)), "4m05s");
    }

    #[test]
    fn command_lines_show_env_and_args() {
        let mut cmd = Command::new("cargo");
        cmd.env("RUSTC_BOOTSTRAP", "1").args(["build", "--release"]);
        assert_eq!(
            command_line(&cmd),
            "RUSTC_BOOTSTRAP=1 cargo build --release"
        );
    }
}
