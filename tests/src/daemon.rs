//! The `detector` daemon under test, driven through its command line only: `detector run`,
//! `detector ready` on stderr, alert JSON lines on stdout, SIGTERM, the `detector stats` line.

use std::{
    fmt::Write as _,
    fs,
    io::{BufRead, BufReader, Read},
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{Mode, Policy, ScratchDir, TestCgroup};

/// How long the daemon may take to load and attach its kernel programs.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the daemon may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

const READY_LINE: &str = "detector ready";
const STATS_PREFIX: &str = "detector stats ";

/// A running `detector run --config <policy> --mode <mode> --cgroup <test cgroup>`.
///
/// Alerts and stderr are collected by background threads; every accessor fails the test if
/// the daemon ever wrote a stdout line that is not a JSON object. Dropping it without
/// [`stop`](Self::stop) sends SIGTERM, then SIGKILL after 5 s.
#[derive(Debug)]
pub struct Detector {
    child: Option<Child>,
    exit: Option<ExitStatus>,
    output: Arc<Output>,
    /// Holds the policy file; removed on drop.
    _scratch: ScratchDir,
}

impl Detector {
    /// Starts the daemon with `policy` (its own mode is passed as `--mode`).
    pub fn with_policy(policy: &Policy, cgroup: &TestCgroup) -> Self {
        Self::start(&policy.to_toml(), policy.mode(), cgroup)
    }

    /// Writes `policy_toml` to a temporary file, starts the daemon and waits for
    /// `detector ready` (at most 60 s).
    pub fn start(policy_toml: &str, mode: Mode, cgroup: &TestCgroup) -> Self {
        Self::start_with_args(policy_toml, mode, cgroup, &[])
    }

    /// [`start`](Self::start) with further `detector run` arguments (e.g. `--record FILE`).
    pub fn start_with_args(
        policy_toml: &str,
        mode: Mode,
        cgroup: &TestCgroup,
        extra: &[&std::ffi::OsStr],
    ) -> Self {
        let binary = binary();
        let scratch = ScratchDir::new("policy");
        let config = scratch.file("policy.toml");
        fs::write(&config, policy_toml)
            .unwrap_or_else(|e| panic!("writing {}: {e}", config.display()));

        let mut command = Command::new(&binary);
        command
            .arg("run")
            .arg("--config")
            .arg(&config)
            .args(["--mode", mode.as_str()])
            .arg("--cgroup")
            .arg(cgroup.path())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));

        let output = Arc::new(Output::default());
        read_alerts(
            child.stdout.take().expect("stdout is piped"),
            Arc::clone(&output),
        );
        read_logs(
            child.stderr.take().expect("stderr is piped"),
            Arc::clone(&output),
        );

        let mut detector = Detector {
            child: Some(child),
            exit: None,
            output,
            _scratch: scratch,
        };
        detector.wait_ready(&command, policy_toml);
        detector
    }

    fn wait_ready(&mut self, command: &Command, policy_toml: &str) {
        let timeout = crate::scaled(READY_TIMEOUT);
        let deadline = Instant::now() + timeout;
        loop {
            if self.output.lock().ready {
                return;
            }
            if let Some(status) = self.try_wait() {
                // Let the stderr reader drain the cause before reporting it.
                self.output.wait_closed(Duration::from_secs(2));
                panic!(
                    "detector exited ({status}) before `{READY_LINE}`\ncommand: {command:?}\npolicy:\n{policy_toml}\n{}",
                    self.output.describe()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "no `{READY_LINE}` within {timeout:?}\ncommand: {command:?}\n{}",
                    self.output.describe()
                );
            }
            self.output.wait_change(Duration::from_millis(100));
        }
    }

    /// Every alert received so far, in arrival order.
    pub fn alerts(&self) -> Vec<Value> {
        let output = self.output.lock();
        output.assert_stdout_clean();
        output.alerts.clone()
    }

    /// Waits until at least `count` alerts satisfy `pred` and returns those alerts; fails the
    /// test after `timeout`, or as soon as the daemon closes its stdout.
    pub fn wait_for_alerts(
        &self,
        pred: impl Fn(&Value) -> bool,
        count: usize,
        timeout: Duration,
    ) -> Vec<Value> {
        let timeout = crate::scaled(timeout);
        let deadline = Instant::now() + timeout;
        loop {
            let matching: Vec<Value> = {
                let output = self.output.lock();
                output.assert_stdout_clean();
                output.alerts.iter().filter(|a| pred(a)).cloned().collect()
            };
            if matching.len() >= count {
                return matching;
            }
            let closed = self.output.lock().stdout_closed;
            if closed || Instant::now() >= deadline {
                panic!(
                    "expected {count} matching alert(s), got {} after {timeout:?}{}\n{}",
                    matching.len(),
                    if closed {
                        " (the detector closed its stdout)"
                    } else {
                        ""
                    },
                    self.output.describe()
                );
            }
            self.output.wait_change(Duration::from_millis(100));
        }
    }

    /// Keeps collecting for `quiet`, then returns every alert received: use after the expected
    /// alerts arrived, before asserting there are no others.
    pub fn alerts_after(&self, quiet: Duration) -> Vec<Value> {
        thread::sleep(quiet);
        self.alerts()
    }

    /// The daemon's stderr so far, for failure messages.
    pub fn logs(&self) -> String {
        self.output.describe()
    }

    /// Sends SIGTERM, waits (at most 20 s) for exit status 0 and returns the JSON object from
    /// the `detector stats {...}` line.
    pub fn stop(&mut self) -> Value {
        let pid = match &self.child {
            Some(child) => child.id(),
            None => panic!("detector already stopped"),
        };
        let pid = libc::pid_t::try_from(pid).expect("pids fit in pid_t");
        // SAFETY: kill has no memory-safety preconditions; the child is not reaped yet, so the
        // pid still names it.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(
            rc,
            0,
            "SIGTERM to detector: {}",
            std::io::Error::last_os_error()
        );

        let stop_timeout = crate::scaled(STOP_TIMEOUT);
        let deadline = Instant::now() + stop_timeout;
        let status = loop {
            if let Some(status) = self.try_wait() {
                break status;
            }
            if Instant::now() >= deadline {
                self.kill();
                panic!(
                    "detector still running {stop_timeout:?} after SIGTERM\n{}",
                    self.output.describe()
                );
            }
            thread::sleep(Duration::from_millis(50));
        };
        self.output.wait_closed(Duration::from_secs(5));
        self.child = None;

        let output = self.output.lock();
        output.assert_stdout_clean();
        assert!(
            status.code() == Some(0),
            "detector exited with {status} after SIGTERM, expected 0\n{}",
            output.describe()
        );
        let Some(stats) = output.stats.clone() else {
            panic!(
                "no `{STATS_PREFIX}{{...}}` line on stderr\n{}",
                output.describe()
            );
        };
        serde_json::from_str(&stats)
            .unwrap_or_else(|e| panic!("`{STATS_PREFIX}` is not followed by JSON ({e}): {stats}"))
    }

    fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            let child = self.child.as_mut()?;
            self.exit = child
                .try_wait()
                .unwrap_or_else(|e| panic!("waiting for detector: {e}"));
        }
        self.exit
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.exit.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// SIGTERM, then SIGKILL if the daemon is still there after a short grace: a test that
    /// failed midway should still let the daemon detach cleanly if it can.
    fn terminate(&mut self) {
        let Some(child) = &self.child else { return };
        if self.exit.is_none() {
            if let Ok(pid) = libc::pid_t::try_from(child.id()) {
                // SAFETY: as in `stop`; the child has not been reaped.
                unsafe { libc::kill(pid, libc::SIGTERM) };
                let deadline = Instant::now() + Duration::from_secs(5);
                while self.try_wait().is_none() && Instant::now() < deadline {
                    thread::sleep(Duration::from_millis(50));
                }
            }
        }
        self.kill();
    }
}

impl Drop for Detector {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Asserts that the stats object from [`Detector::stop`] reports no lost events of any kind
/// (`"lost": {"exec": 0, "fork": 0, "exit": 0, ...}`): a test that passed while the sensor
/// dropped events proves nothing.
pub fn assert_nothing_lost(stats: &Value) {
    let Some(lost) = stats.get("lost").and_then(Value::as_object) else {
        panic!("stats have no `lost` object: {stats}");
    };
    assert!(
        !lost.is_empty(),
        "stats `lost` names no event kind: {stats}"
    );
    for (kind, count) in lost {
        assert_eq!(
            count.as_u64(),
            Some(0),
            "the detector lost {kind} events: {stats}"
        );
    }
}

/// The `lost` kinds the egress sensors add (`"lost": {..., "connect": 0, "payload": 0}`).
pub const EGRESS_LOST_KINDS: [&str; 2] = ["connect", "payload"];

/// The event counters the egress sensors add to the stats line.
const EGRESS_EVENT_COUNTERS: [&str; 2] = ["connect_events", "payload_events"];

/// [`assert_nothing_lost`], and that the stats carry the egress sensors' counters
/// (`connect_events`, `payload_events`, `lost.connect`, `lost.payload`): an egress scenario
/// must not pass against a daemon whose egress sensors never ran, or whose losses it cannot see.
pub fn assert_nothing_lost_with_egress(stats: &Value) {
    assert_nothing_lost(stats);
    for kind in EGRESS_LOST_KINDS {
        assert!(
            stats.pointer(&format!("/lost/{kind}")).is_some(),
            "stats `lost` has no {kind:?} counter (egress sensors missing?): {stats}"
        );
    }
    for counter in EGRESS_EVENT_COUNTERS {
        assert!(
            stats.get(counter).is_some_and(Value::is_u64),
            "stats have no `{counter}` count (egress sensors missing?): {stats}"
        );
    }
}

/// `DETECTOR_BIN`, else `<workspace>/target/release/detector`.
pub fn binary() -> PathBuf {
    let path = std::env::var_os("DETECTOR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target/release/detector"));
    assert!(
        path.is_file(),
        "detector binary not found at {}: run `cargo xtask build` (or point DETECTOR_BIN at a build)",
        path.display()
    );
    path
}

// === impl Output ===

/// What the daemon has said so far, shared with the reader threads.
#[derive(Debug, Default)]
struct Output {
    state: Mutex<OutputState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct OutputState {
    alerts: Vec<Value>,
    /// stdout lines that are not JSON objects: the contract forbids mixing logs into alerts.
    bad_stdout: Vec<String>,
    stderr: Vec<String>,
    ready: bool,
    /// The text after `detector stats `.
    stats: Option<String>,
    stdout_closed: bool,
    stderr_closed: bool,
}

impl Output {
    fn lock(&self) -> MutexGuard<'_, OutputState> {
        // The readers only push whole values; a poisoned lock still holds consistent data.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut OutputState)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }

    fn wait_change(&self, timeout: Duration) {
        let guard = self.lock();
        let _ = self.changed.wait_timeout(guard, timeout);
    }

    fn wait_closed(&self, timeout: Duration) {
        let guard = self.lock();
        let _ = self
            .changed
            .wait_timeout_while(guard, timeout, |s| !(s.stdout_closed && s.stderr_closed))
            .unwrap_or_else(|poisoned| poisoned.into_inner());
    }

    fn describe(&self) -> String {
        self.lock().describe()
    }
}

impl OutputState {
    fn assert_stdout_clean(&self) {
        assert!(
            self.bad_stdout.is_empty(),
            "the detector wrote non-JSON lines on stdout (alerts only, one JSON object per line):\n{}",
            self.describe()
        );
    }

    fn describe(&self) -> String {
        let mut text = String::new();
        for line in &self.bad_stdout {
            let _ = writeln!(text, "non-JSON stdout line: {line}");
        }
        let _ = writeln!(text, "--- {} alert(s) ---", self.alerts.len());
        for alert in &self.alerts {
            let _ = writeln!(text, "{alert}");
        }
        let _ = writeln!(text, "--- detector stderr ---");
        for line in &self.stderr {
            let _ = writeln!(text, "{line}");
        }
        text
    }
}

fn read_alerts(stdout: impl Read + Send + 'static, output: Arc<Output>) {
    thread::spawn(move || {
        for line in lossy_lines(stdout) {
            match serde_json::from_str::<Value>(&line) {
                Ok(alert) if alert.is_object() => output.update(|s| s.alerts.push(alert)),
                _ => output.update(|s| s.bad_stdout.push(line)),
            }
        }
        output.update(|s| s.stdout_closed = true);
    });
}

fn read_logs(stderr: impl Read + Send + 'static, output: Arc<Output>) {
    thread::spawn(move || {
        for line in lossy_lines(stderr) {
            output.update(|s| {
                // Tolerate a log prefix (timestamp, level) in front of both markers.
                if line.trim_end().ends_with(READY_LINE) {
                    s.ready = true;
                }
                if let Some((_, stats)) = line.split_once(STATS_PREFIX) {
                    s.stats = Some(stats.trim().to_owned());
                }
                s.stderr.push(line);
            });
        }
        output.update(|s| s.stderr_closed = true);
    });
}

/// The lines of `pipe` until EOF or a read error. Invalid UTF-8 is replaced rather than ending
/// the loop: a reader that stopped draining the pipe would block the daemon on its next write.
fn lossy_lines(pipe: impl Read) -> impl Iterator<Item = String> {
    BufReader::new(pipe)
        .split(b'\n')
        .map_while(Result::ok)
        .map(|line| String::from_utf8_lossy(&line).into_owned())
}
