//! Running a scenario program inside the test cgroup and reading back what it reported.

use std::{
    fmt,
    io::Read,
    net::SocketAddr,
    os::unix::process::ExitStatusExt,
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Condvar, Mutex},
    thread,
    time::{Duration, Instant},
};

use crate::TestCgroup;

/// `strerror(EPERM)`, which the JVM puts in the `SocketException` for a connect the kernel
/// refused.
pub const EPERM_MESSAGE: &str = "Operation not permitted";

pub use testkit::find_on_path;

/// The real interpreter behind `python3` on PATH (`sys.executable`): a pyenv shim is a bash
/// script, whose extra processes are not what a scenario means to run.
pub fn python3() -> PathBuf {
    let on_path = find_on_path("python3").expect("python3 not found on PATH");
    let output = Command::new(&on_path)
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", on_path.display()));
    assert!(
        output.status.success(),
        "{} failed: {output:?}",
        on_path.display()
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

/// An LDAPv3 anonymous simple bind, message id 1, as the JDK's LDAP provider sends it first
/// (captured from `JndiLookup ldap://...` by the test server).
pub const LDAP_BIND_REQUEST: [u8; 14] = [
    0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00,
];

/// `python3 -c ...` sending [`LDAP_BIND_REQUEST`] over a raw TCP socket to `addr` and closing:
/// an LDAP client that is no JVM. Prints `sent N`.
pub fn python_ldap_bind(addr: SocketAddr) -> Command {
    let hex: String = LDAP_BIND_REQUEST
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let script = format!(
        "import socket\n\
         s = socket.create_connection(({ip:?}, {port}), timeout=5)\n\
         s.sendall(bytes.fromhex({hex:?}))\n\
         s.close()\n\
         print('sent', {len})\n",
        ip = addr.ip().to_string(),
        port = addr.port(),
        len = LDAP_BIND_REQUEST.len(),
    );
    let mut command = Command::new(python3());
    command.args(["-c", &script]);
    command
}

/// Starts `command` inside `cgroup` (it joins between fork and exec) with stdout and stderr
/// captured and stdin closed.
pub fn spawn_in_cgroup(mut command: Command, cgroup: &TestCgroup) -> RunningProgram {
    cgroup.enter_before_exec(&mut command);
    spawn(command)
}

/// Starts `command` where the test process runs (outside the test cgroup, so the detector
/// does not watch it) with stdout and stderr captured and stdin closed: for checking a
/// scenario program itself, without the detector.
pub fn spawn(mut command: Command) -> RunningProgram {
    let description = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {description}: {e}"));
    let stdout = Capture::start(child.stdout.take().expect("stdout is piped"));
    let stderr = Capture::start(child.stderr.take().expect("stderr is piped"));
    RunningProgram {
        description,
        child,
        reaped: false,
        stdout,
        stderr,
        started: Instant::now(),
    }
}

/// A scenario program that is still running; killed on drop if the test did not wait for it.
#[derive(Debug)]
pub struct RunningProgram {
    description: String,
    child: Child,
    reaped: bool,
    stdout: Arc<Capture>,
    stderr: Arc<Capture>,
    started: Instant,
}

impl RunningProgram {
    /// The pid of the process the harness started (for `java`, the JVM itself: the launcher
    /// runs the VM in-process).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for the program to exit; `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ProgramRun> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self
                .child
                .try_wait()
                .unwrap_or_else(|e| panic!("waiting for {}: {e}", self.description));
            if let Some(status) = status {
                self.reaped = true;
                return Some(self.finish(status));
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `timeout` (stretched by [`crate::scaled`]) for the program to exit; kills it
    /// and panics if it does not.
    pub fn wait(mut self, timeout: Duration) -> ProgramRun {
        let timeout = crate::scaled(timeout);
        if let Some(run) = self.wait_timeout(timeout) {
            return run;
        }
        self.kill();
        panic!(
            "{} still running after {timeout:?}; killed it.\nstdout:\n{}\nstderr:\n{}",
            self.description,
            self.stdout.text(),
            self.stderr.text()
        );
    }

    /// What the program has written on stdout so far.
    pub fn stdout_so_far(&self) -> String {
        self.stdout.text()
    }

    /// For a failure message: whether the program still runs (or how it ended), and all it
    /// wrote.
    pub fn report(&mut self) -> String {
        match self.wait_timeout(Duration::ZERO) {
            Some(run) => format!("{} has exited:\n{run}", self.description),
            None => format!(
                "{} is still running.\nstdout:\n{}\nstderr:\n{}",
                self.description,
                self.stdout.text(),
                self.stderr.text()
            ),
        }
    }

    /// Waits until a scenario JVM has started (printed its `jvm-pid` line); panics after a
    /// minute (stretched by [`crate::scaled`]). For JVMs that must be running before the
    /// detector starts.
    pub fn wait_until_started(&self) {
        self.wait_for_output("jvm-pid", Duration::from_secs(60));
    }

    /// Waits up to `timeout` (stretched by [`crate::scaled`]) until the program has written
    /// `text` on stdout (e.g. a server's `listening`); panics with its output otherwise.
    pub fn wait_for_output(&self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + crate::scaled(timeout);
        while !self.stdout_so_far().contains(text) {
            assert!(
                Instant::now() < deadline,
                "{} never printed {text:?}:\n{}\n{}",
                self.description,
                self.stdout_so_far(),
                self.stderr.text()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Lets a `WaitThenShell` JVM go on (writes its `go` file) and waits for it (at most two
    /// minutes), checking it exited 0.
    pub fn go(mut self, go: &std::path::Path) -> ProgramRun {
        std::fs::write(go, b"go").expect("writing the go file");
        let run = self
            .wait_timeout(Duration::from_secs(120))
            .expect("the JVM finished");
        run.assert_success();
        run
    }

    fn finish(&self, status: ExitStatus) -> ProgramRun {
        // A descendant that outlived the program may still hold the pipes open: take what has
        // arrived rather than wait for an EOF that may never come.
        let deadline = Instant::now() + Duration::from_secs(2);
        self.stdout
            .wait_closed(deadline.saturating_duration_since(Instant::now()));
        self.stderr
            .wait_closed(deadline.saturating_duration_since(Instant::now()));
        ProgramRun {
            description: self.description.clone(),
            status,
            elapsed: self.started.elapsed(),
            stdout: self.stdout.text(),
            stderr: self.stderr.text(),
        }
    }

    fn kill(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.reaped = true;
        }
    }
}

impl Drop for RunningProgram {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A scenario program that has exited, with everything it printed.
///
/// The Java scenarios print `key value` lines (`jvm-pid 4242`, `shell-exit 137`, ...; see
/// `tests/java/Scenario.java`); [`ProgramRun::value`] reads them.
#[derive(Debug, Clone)]
pub struct ProgramRun {
    pub description: String,
    pub status: ExitStatus,
    pub elapsed: Duration,
    pub stdout: String,
    pub stderr: String,
}

impl ProgramRun {
    /// Panics (with the output) unless the program exited with status 0.
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.status.code() == Some(0),
            "expected exit status 0:\n{self}"
        );
        self
    }

    /// The signal that killed the program, if one did.
    pub fn killed_by(&self) -> Option<i32> {
        self.status.signal()
    }

    /// The value of the first `key value` line on stdout.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.values(key).into_iter().next()
    }

    /// Every value of `key value` lines on stdout, in order.
    pub fn values(&self, key: &str) -> Vec<&str> {
        self.stdout
            .lines()
            .filter_map(|line| line.strip_prefix(key)?.strip_prefix(' '))
            .collect()
    }

    /// Like [`value`](Self::value), panicking with the output when the line is missing.
    pub fn expect_value(&self, key: &str) -> &str {
        self.value(key)
            .unwrap_or_else(|| panic!("no `{key} ...` line in the output:\n{self}"))
    }

    /// A numeric `key N` line, e.g. `shell-pid` or `shell-exit`.
    pub fn expect_number(&self, key: &str) -> i64 {
        let value = self.expect_value(key);
        value
            .parse()
            .unwrap_or_else(|e| panic!("`{key} {value}` is not a number ({e}):\n{self}"))
    }

    /// `LABEL-pid N`: the pid of the child the scenario started under `label`.
    pub fn expect_child_pid(&self, label: &str) -> u64 {
        let key = format!("{label}-pid");
        let value = self.expect_value(&key);
        value
            .parse()
            .unwrap_or_else(|e| panic!("`{key} {value}` is not a pid ({e}):\n{self}"))
    }

    /// `LABEL-exit N`: the exit code of that child (128 + signal if it was killed).
    pub fn expect_child_exit(&self, label: &str) -> i64 {
        self.expect_number(&format!("{label}-exit"))
    }

    /// The child labelled `shell` died of SIGKILL (exit code 137) and never wrote `canary`.
    pub fn assert_shell_killed(&self, canary: &std::path::Path) {
        assert_eq!(
            self.expect_child_exit("shell"),
            128 + 9,
            "the shell was not SIGKILLed:\n{self}"
        );
        assert!(
            !canary.exists(),
            "the killed shell still wrote {}:\n{self}",
            canary.display()
        );
    }

    /// The `LABEL-output` lines: what that child printed.
    pub fn child_output(&self, label: &str) -> Vec<&str> {
        self.values(&format!("{label}-output"))
    }

    /// Panics unless the `STEP-error` line (e.g. `lookup-error`, `connect-error`; see
    /// `tests/java/Egress.java`) shows the kernel refused the connect: JNDI and `java.net`
    /// keep the `SocketException: Operation not permitted` from the EPERM in the cause chain.
    pub fn assert_denied(&self, step: &str) -> &Self {
        let key = format!("{step}-error");
        let error = self
            .value(&key)
            .unwrap_or_else(|| panic!("`{step}` was not denied (no `{key}` line):\n{self}"));
        assert!(
            error.contains(EPERM_MESSAGE),
            "`{step}` failed, but not with {EPERM_MESSAGE:?} (EPERM) in its cause chain:\n{self}"
        );
        self
    }

    /// Panics if the `STEP-error` line shows the kernel refused the connect (the step may
    /// still have failed otherwise, e.g. a read timeout against a silent server).
    pub fn assert_not_denied(&self, step: &str) -> &Self {
        let key = format!("{step}-error");
        assert!(
            !self.value(&key).is_some_and(|e| e.contains(EPERM_MESSAGE)),
            "`{step}` was denied (EPERM), but should have reached the server:\n{self}"
        );
        self
    }

    /// The pid the JVM reported for itself on its first line (`jvm-pid N`).
    pub fn jvm_pid(&self) -> u64 {
        let first = self.stdout.lines().next().unwrap_or_default();
        let pid = first
            .strip_prefix("jvm-pid ")
            .unwrap_or_else(|| panic!("the first line is not `jvm-pid N`:\n{self}"));
        pid.parse()
            .unwrap_or_else(|e| panic!("bad jvm-pid {pid:?} ({e}):\n{self}"))
    }
}

impl fmt::Display for ProgramRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} ({}, after {:?})",
            self.description, self.status, self.elapsed
        )?;
        writeln!(f, "--- stdout ---\n{}", self.stdout.trim_end())?;
        write!(f, "--- stderr ---\n{}", self.stderr.trim_end())
    }
}

// === impl Capture ===

/// Everything read so far from one of a child's pipes, filled by a reader thread.
#[derive(Debug, Default)]
struct Capture {
    state: Mutex<CaptureState>,
    closed: Condvar,
}

#[derive(Debug, Default)]
struct CaptureState {
    bytes: Vec<u8>,
    closed: bool,
}

impl Capture {
    fn start(mut pipe: impl Read + Send + 'static) -> Arc<Self> {
        let capture = Arc::new(Capture::default());
        let writer = Arc::clone(&capture);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => writer.lock().bytes.extend_from_slice(&buf[..n]),
                }
            }
            writer.lock().closed = true;
            writer.closed.notify_all();
        });
        capture
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CaptureState> {
        // A panic while holding this lock cannot leave the buffer inconsistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wait_closed(&self, timeout: Duration) {
        let guard = self.lock();
        let _ = self
            .closed
            .wait_timeout_while(guard, timeout, |s| !s.closed)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock().bytes).into_owned()
    }
}
