//! The `detector` daemon, driven through its command line only: `detector run`, `detector
//! ready` on stderr, alert JSON lines on stdout, SIGTERM, and the `detector stats {...}` line
//! it prints when it stops, read into [`Stats`].
//!
//! One driver serves the integration tests (which collect the alerts and assert on them), the
//! lab (which also keeps `alerts.jsonl` and `detector.log` per run) and the benchmarks (which
//! discard the alerts, so that reading them costs the measurement nothing).

use std::{
    ffi::OsString,
    fmt::Write as _,
    fs::File,
    io::{BufRead, BufReader, Read, Write as _},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{command_line, scaled, Error, Mode};

/// How long the daemon may take to load and attach its kernel programs.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the daemon may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// The line on stderr that says every kernel program is attached.
pub const READY_LINE: &str = "detector ready";
/// What the counters line on stderr starts with (possibly behind a log prefix).
pub const STATS_PREFIX: &str = "detector stats ";

/// How many of the last stderr lines an error message shows.
const TAIL_LINES: usize = 20;

/// `DETECTOR_BIN`, else `<workspace>/target/release/detector`; an error if there is no file.
pub fn binary() -> Result<PathBuf, Error> {
    let path = std::env::var_os("DETECTOR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target/release/detector"));
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::Failed(format!(
            "detector binary not found at {}: run `cargo xtask build` (or point DETECTOR_BIN at a build)",
            path.display()
        )))
    }
}

/// The last lines of a program's stderr, ready to append to an error message.
pub fn tail(lines: &[String]) -> String {
    if lines.is_empty() {
        return "; it printed nothing on stderr".to_owned();
    }
    let start = lines.len().saturating_sub(TAIL_LINES);
    format!("; its stderr ends with:\n  {}", lines[start..].join("\n  "))
}

// === impl Launch ===

/// How to start `detector run [--config FILE] --mode MODE [--cgroup DIR] [EXTRA...]`.
#[derive(Debug, Clone)]
pub struct Launch {
    bin: PathBuf,
    mode: Mode,
    config: Option<PathBuf>,
    cgroup: Option<PathBuf>,
    extra: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    /// A program (and its arguments) that executes the daemon's command line in its place.
    wrapper: Vec<OsString>,
    collect_alerts: bool,
    /// Where stdout goes instead of being collected (e.g. a pipe nobody reads).
    stdout: Option<Arc<std::os::fd::OwnedFd>>,
    log_dir: Option<PathBuf>,
    die_with_parent: bool,
}

impl Launch {
    /// The built-in policy, every JVM of the machine, alerts collected.
    pub fn new(bin: &Path, mode: Mode) -> Self {
        Self {
            bin: bin.to_owned(),
            mode,
            config: None,
            cgroup: None,
            extra: Vec::new(),
            envs: Vec::new(),
            wrapper: Vec::new(),
            collect_alerts: true,
            stdout: None,
            log_dir: None,
            die_with_parent: false,
        }
    }

    /// `--config FILE`.
    pub fn config(mut self, file: &Path) -> Self {
        self.config = Some(file.to_owned());
        self
    }

    /// `--cgroup DIR`: only JVMs started inside it are tracked.
    pub fn cgroup(mut self, dir: &Path) -> Self {
        self.cgroup = Some(dir.to_owned());
        self
    }

    /// Further `detector run` arguments (e.g. `--record FILE`).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.extra.extend(args.into_iter().map(Into::into));
        self
    }

    /// An environment variable for the daemon (e.g. `NOTIFY_SOCKET`).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Starts the daemon through `wrapper` (e.g. `setpriv --reuid ... --`), which must exec
    /// the command line it is given, so that the pid started is the daemon's.
    pub fn wrapped_in<I, S>(mut self, wrapper: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.wrapper = wrapper.into_iter().map(Into::into).collect();
        self
    }

    /// Sends stdout to /dev/null: for measurements, where parsing alerts would cost time.
    pub fn discard_alerts(mut self) -> Self {
        self.collect_alerts = false;
        self
    }

    /// Sends stdout to `fd` (e.g. the write end of a pipe the test reads, or does not read, to
    /// stall the stdout sink); no alerts are collected then.
    pub fn stdout_to(mut self, fd: std::os::fd::OwnedFd) -> Self {
        self.stdout = Some(Arc::new(fd));
        self
    }

    /// Also writes every stdout line to `DIR/alerts.jsonl` and the command line and every
    /// stderr line to `DIR/detector.log`.
    pub fn log_to(mut self, dir: &Path) -> Self {
        self.log_dir = Some(dir.to_owned());
        self
    }

    /// SIGTERM to the daemon when the spawning thread dies (see [`crate::die_with_parent`]).
    pub fn die_with_parent(mut self) -> Self {
        self.die_with_parent = true;
        self
    }

    fn command(&self) -> Result<Command, Error> {
        let mut cmd = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(&self.bin);
                cmd
            }
            None => Command::new(&self.bin),
        };
        cmd.arg("run");
        if let Some(config) = &self.config {
            cmd.arg("--config").arg(config);
        }
        cmd.args(["--mode", self.mode.as_str()]);
        if let Some(cgroup) = &self.cgroup {
            cmd.arg("--cgroup").arg(cgroup);
        }
        cmd.args(&self.extra)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(match &self.stdout {
                Some(fd) => Stdio::from(
                    fd.try_clone()
                        .map_err(Error::io("duplicating the daemon's stdout"))?,
                ),
                None if self.collect_alerts => Stdio::piped(),
                None => Stdio::null(),
            })
            .stderr(Stdio::piped());
        if self.die_with_parent {
            crate::die_with_parent(&mut cmd);
        }
        Ok(cmd)
    }

    /// Starts the daemon and waits (at most 60 s, [`scaled`]) for `detector ready`.
    pub fn start(&self) -> Result<Detector, Error> {
        let mut cmd = self.command()?;
        let line = command_line(&cmd);
        let (mut log, alerts_file) = match &self.log_dir {
            Some(dir) => {
                let create = |name: &str| {
                    let path = dir.join(name);
                    File::create(&path).map_err(Error::io(format!("creating {}", path.display())))
                };
                let mut log = create("detector.log")?;
                let _ = writeln!(log, "$ {line}");
                (Some(log), Some(create("alerts.jsonl")?))
            }
            None => (None, None),
        };
        let mut child = cmd
            .spawn()
            .map_err(Error::io(format!("starting `{line}`")))?;
        let output = Arc::new(Output::default());
        match child.stdout.take() {
            Some(stdout) => read_alerts(stdout, alerts_file, Arc::clone(&output)),
            None => output.update(|s| s.stdout_closed = true),
        }
        match child.stderr.take() {
            Some(stderr) => read_logs(stderr, log.take(), Arc::clone(&output)),
            None => output.update(|s| s.stderr_closed = true),
        }
        let mut detector = Detector {
            child: Some(child),
            exit: None,
            output,
            command: line,
        };
        detector.wait_ready()?;
        Ok(detector)
    }
}

// === impl Detector ===

/// A running `detector run`, between `detector ready` and SIGTERM.
///
/// Alerts and stderr are collected by background threads. Dropping it without
/// [`stop`](Self::stop) sends SIGTERM, then SIGKILL after 5 s: a run that failed midway still
/// lets the daemon detach cleanly if it can.
#[derive(Debug)]
pub struct Detector {
    child: Option<Child>,
    exit: Option<ExitStatus>,
    output: Arc<Output>,
    /// How it was started, for error messages.
    command: String,
}

impl Detector {
    fn wait_ready(&mut self) -> Result<(), Error> {
        let timeout = scaled(READY_TIMEOUT);
        let deadline = Instant::now() + timeout;
        loop {
            if self.output.lock().ready {
                return Ok(());
            }
            if let Some(status) = self.try_wait()? {
                // Let the stderr reader drain the cause before reporting it.
                self.output.wait_closed(Duration::from_secs(2));
                return Err(Error::Failed(format!(
                    "the detector exited ({status}) before `{READY_LINE}`\ncommand: {}{}",
                    self.command,
                    self.output.lock().tail()
                )));
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(Error::Failed(format!(
                    "no `{READY_LINE}` within {timeout:?}\ncommand: {}{}",
                    self.command,
                    self.output.lock().tail()
                )));
            }
            self.output.wait_change(Duration::from_millis(50));
        }
    }

    /// The daemon's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Every alert received so far, in arrival order.
    pub fn alerts(&self) -> Vec<Value> {
        self.output.lock().alerts.clone()
    }

    /// An error if the daemon ever wrote a stdout line that is not a JSON object: the
    /// contract allows only alerts there, one JSON object per line.
    pub fn check_stdout(&self) -> Result<(), Error> {
        self.output.lock().check_stdout()
    }

    /// Waits (at most `timeout`) for the next alert or log line, so pollers need not spin.
    pub fn wait_change(&self, timeout: Duration) {
        self.output.wait_change(timeout);
    }

    /// Waits until at least `count` alerts satisfy `pred` and returns those alerts; an error
    /// after `timeout` ([`scaled`]), or as soon as the daemon closes its stdout.
    pub fn wait_for_alerts(
        &self,
        pred: impl Fn(&Value) -> bool,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<Value>, Error> {
        let timeout = scaled(timeout);
        let deadline = Instant::now() + timeout;
        loop {
            let (matching, closed) = {
                let output = self.output.lock();
                output.check_stdout()?;
                let matching: Vec<Value> =
                    output.alerts.iter().filter(|a| pred(a)).cloned().collect();
                (matching, output.stdout_closed)
            };
            if matching.len() >= count {
                return Ok(matching);
            }
            if closed || Instant::now() >= deadline {
                return Err(Error::Failed(format!(
                    "expected {count} matching alert(s), got {} after {timeout:?}{}\n{}",
                    matching.len(),
                    if closed {
                        " (the detector closed its stdout)"
                    } else {
                        ""
                    },
                    self.describe()
                )));
            }
            self.output.wait_change(Duration::from_millis(100));
        }
    }

    /// Everything the daemon said so far (non-JSON stdout lines, alerts, stderr), for
    /// failure messages.
    pub fn describe(&self) -> String {
        self.output.lock().describe()
    }

    /// For an error message: whether the daemon is still running, and if not how it ended
    /// and the end of its stderr.
    pub fn state(&mut self) -> String {
        match self.try_wait() {
            Ok(None) => "; the daemon is still running".to_owned(),
            Ok(Some(status)) => {
                self.output.wait_closed(Duration::from_secs(2));
                format!(
                    "; the daemon exited ({status}){}",
                    self.output.lock().tail()
                )
            }
            Err(err) => format!("; {err}"),
        }
    }

    /// Sends SIGTERM, waits (at most 20 s, [`scaled`]) for exit status 0 and returns the
    /// counters of the `detector stats {...}` line. A non-JSON stdout line, another exit or a
    /// missing or malformed stats line is an error.
    pub fn stop(&mut self) -> Result<Stats, Error> {
        let pid = self
            .child
            .as_ref()
            .map(Child::id)
            .ok_or_else(|| Error::Failed("the detector is already stopped".to_owned()))?;
        let pid = libc::pid_t::try_from(pid)
            .map_err(|_| Error::Failed(format!("pid {pid} out of range")))?;
        // SAFETY: kill has no memory-safety preconditions; the child is not reaped yet, so the
        // pid still names it.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            let err = std::io::Error::last_os_error();
            self.kill();
            return Err(Error::Failed(format!(
                "SIGTERM to the detector: {err}{}",
                self.output.lock().tail()
            )));
        }
        let stop_timeout = scaled(STOP_TIMEOUT);
        let deadline = Instant::now() + stop_timeout;
        let status = loop {
            if let Some(status) = self.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(Error::Failed(format!(
                    "the detector was still running {stop_timeout:?} after SIGTERM{}",
                    self.output.lock().tail()
                )));
            }
            thread::sleep(Duration::from_millis(20));
        };
        // Let the readers drain both pipes.
        self.output.wait_closed(Duration::from_secs(5));
        self.child = None;

        let output = self.output.lock();
        output.check_stdout()?;
        if status.code() != Some(0) {
            return Err(Error::Failed(format!(
                "the detector exited with {status} after SIGTERM, expected 0{}",
                output.tail()
            )));
        }
        let stats = output.stats.as_deref().ok_or_else(|| {
            Error::Failed(format!(
                "the detector printed no `{STATS_PREFIX}{{...}}` line{}",
                output.tail()
            ))
        })?;
        Stats::parse(stats)
    }

    fn try_wait(&mut self) -> Result<Option<ExitStatus>, Error> {
        if self.exit.is_none() {
            if let Some(child) = self.child.as_mut() {
                self.exit = child
                    .try_wait()
                    .map_err(Error::io("waiting for the detector"))?;
            }
        }
        Ok(self.exit)
    }

    /// SIGKILL, as a crash would end it: no drain, no stats line. Returns how it ended.
    pub fn kill_now(&mut self) -> Option<ExitStatus> {
        self.kill();
        self.exit
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.exit.is_none() {
                let _ = child.kill();
                if let Ok(status) = child.wait() {
                    self.exit = Some(status);
                }
            }
        }
    }

    /// SIGTERM, then SIGKILL if the daemon is still there after a short grace.
    fn terminate(&mut self) {
        let Some(child) = &self.child else { return };
        if self.exit.is_none() {
            if let Ok(pid) = libc::pid_t::try_from(child.id()) {
                // SAFETY: as in `stop`; the child has not been reaped.
                unsafe { libc::kill(pid, libc::SIGTERM) };
                let deadline = Instant::now() + Duration::from_secs(5);
                while matches!(self.try_wait(), Ok(None)) && Instant::now() < deadline {
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

// === impl Stats ===

/// The loss counters every daemon reports; a stats line without one of them is an error.
const REQUIRED_LOSS_KINDS: [&str; 3] = ["exec", "fork", "exit"];
/// The order loss counters are listed in; counters not listed here follow, by name.
const LOSS_ORDER: [&str; 6] = ["exec", "fork", "exit", "connect", "payload", "lineage"];

/// The daemon's counters, from its `detector stats {...}` line, e.g.
/// `{"events":123,"connect_events":4,...,"lost":{"exec":0,"fork":0,"exit":0,"connect":0},...}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// The whole object, for the counters not typed here (sinks, alerts, seeded JVMs...).
    pub json: Value,
    /// Events received from the kernel.
    pub events: u64,
    /// Connect events received; `None` from a daemon without egress sensors.
    pub connect_events: Option<u64>,
    /// Every counter in `lost`, exec, fork, exit, connect, payload, lineage first.
    pub lost: Vec<(String, u64)>,
}

impl Stats {
    /// The JSON object of a `detector stats {...}` line (possibly behind a log prefix).
    pub fn json_of_line(line: &str) -> Option<&str> {
        let rest = &line[line.find(STATS_PREFIX)? + STATS_PREFIX.len()..];
        Some(rest[rest.find('{')?..].trim_end())
    }

    /// Reads the object after `detector stats `: it must hold an `events` count, a `lost`
    /// object of counts with at least exec, fork and exit, and `connect_events`, if present,
    /// must be a count.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::Failed(format!("the daemon's stats {text}: {why}"));
        let json: Value = serde_json::from_str(text)
            .map_err(|e| bad(&format!("`{STATS_PREFIX}` is not followed by JSON ({e})")))?;
        let events = json
            .get("events")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad("no \"events\" number"))?;
        let connect_events = match json.get("connect_events") {
            None => None,
            Some(value) => Some(
                value
                    .as_u64()
                    .ok_or_else(|| bad("\"connect_events\" is not a number"))?,
            ),
        };
        let lost_obj = json
            .get("lost")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("no \"lost\" object"))?;
        let mut lost = Vec::new();
        for (key, value) in lost_obj {
            let count = value
                .as_u64()
                .ok_or_else(|| bad(&format!("`{key}` in \"lost\" is not a count")))?;
            lost.push((key.clone(), count));
        }
        for kind in REQUIRED_LOSS_KINDS {
            if !lost.iter().any(|(key, _)| key == kind) {
                return Err(bad(&format!("no \"{kind}\" counter in \"lost\"")));
            }
        }
        lost.sort_by(|(a, _), (b, _)| {
            let rank = |key: &String| {
                LOSS_ORDER
                    .iter()
                    .position(|kind| kind == key)
                    .unwrap_or(LOSS_ORDER.len())
            };
            rank(a).cmp(&rank(b)).then_with(|| a.cmp(b))
        });
        Ok(Self {
            json,
            events,
            connect_events,
            lost,
        })
    }

    pub fn total_lost(&self) -> u64 {
        self.lost.iter().map(|(_, count)| count).sum()
    }

    /// Whether the daemon counts losses of this kind at all.
    pub fn counts_loss_of(&self, kind: &str) -> bool {
        self.lost.iter().any(|(key, _)| key == kind)
    }

    /// The kinds of event the daemon lost: `payload=2`.
    pub fn losses(&self) -> Vec<String> {
        self.lost
            .iter()
            .filter(|(_, count)| *count != 0)
            .map(|(kind, count)| format!("{kind}={count}"))
            .collect()
    }

    /// `exec=0 fork=0 exit=0 connect=0 payload=0 lineage=0`.
    pub fn loss_line(&self) -> String {
        let parts: Vec<String> = self
            .lost
            .iter()
            .map(|(key, count)| format!("{key}={count}"))
            .collect();
        parts.join(" ")
    }
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
    /// The JSON text of the last `detector stats` line.
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
}

impl OutputState {
    fn check_stdout(&self) -> Result<(), Error> {
        if self.bad_stdout.is_empty() {
            return Ok(());
        }
        Err(Error::Failed(format!(
            "the detector wrote non-JSON lines on stdout (alerts only, one JSON object per line):\n{}",
            self.describe()
        )))
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

    fn tail(&self) -> String {
        tail(&self.stderr)
    }
}

fn read_alerts(stdout: impl Read + Send + 'static, mut file: Option<File>, output: Arc<Output>) {
    thread::spawn(move || {
        for line in lossy_lines(stdout) {
            if let Some(file) = &mut file {
                let _ = writeln!(file, "{line}");
            }
            match serde_json::from_str::<Value>(&line) {
                Ok(alert) if alert.is_object() => output.update(|s| s.alerts.push(alert)),
                _ => output.update(|s| s.bad_stdout.push(line)),
            }
        }
        output.update(|s| s.stdout_closed = true);
    });
}

fn read_logs(stderr: impl Read + Send + 'static, mut file: Option<File>, output: Arc<Output>) {
    thread::spawn(move || {
        for line in lossy_lines(stderr) {
            if let Some(file) = &mut file {
                let _ = writeln!(file, "{line}");
            }
            output.update(|s| {
                // Tolerate a log prefix (timestamp, level) in front of both markers.
                if line.trim_end().ends_with(READY_LINE) {
                    s.ready = true;
                }
                if let Some(stats) = Stats::json_of_line(&line) {
                    s.stats = Some(stats.to_owned());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Stats, Error> {
        Stats::parse(Stats::json_of_line(line).expect("a stats line"))
    }

    #[test]
    fn stats_line_is_read() {
        let line =
            r#"detector stats {"events":123,"lost":{"exec":0,"fork":2,"exit":0},"alerts":0}"#;
        let stats = parse_line(line).expect("parses");
        assert_eq!(stats.events, 123);
        assert_eq!(stats.connect_events, None);
        assert_eq!(stats.total_lost(), 2);
        assert_eq!(stats.loss_line(), "exec=0 fork=2 exit=0");
        assert_eq!(stats.losses(), ["fork=2"]);
        assert!(!stats.counts_loss_of("connect"));
        assert_eq!(stats.json["alerts"], 0);
    }

    #[test]
    fn stats_of_a_daemon_with_egress_are_read() {
        let line = concat!(
            r#"detector stats {"events":40012,"connect_events":20003,"payload_events":0,"#,
            r#""decode_errors":0,"alerts":20003,"alerts_dropped":0,"jvms_seeded":1,"#,
            r#""table_evicted_live":0,"lost":{"connect":0,"exec":0,"exit":0,"fork":0,"#,
            r#""lineage":0,"payload":3}}"#
        );
        let stats = parse_line(line).expect("parses");
        // "connect_events" and "payload_events" must not be mistaken for "events".
        assert_eq!(stats.events, 40012);
        assert_eq!(stats.connect_events, Some(20003));
        assert_eq!(stats.total_lost(), 3);
        assert_eq!(
            stats.loss_line(),
            "exec=0 fork=0 exit=0 connect=0 payload=3 lineage=0"
        );
        assert!(stats.counts_loss_of("connect"));
    }

    #[test]
    fn stats_tolerate_spacing_prefixes_and_new_counters() {
        let line = r#"2026-01-01T00:00:00Z INFO detector stats { "lost" : { "zeta": 4, "connect": 1, "exit": 0, "exec": 0, "fork": 0 }, "connect_events" : 9, "events" : 7 }"#;
        let stats = parse_line(line).expect("parses");
        assert_eq!(stats.events, 7);
        assert_eq!(stats.connect_events, Some(9));
        assert_eq!(stats.loss_line(), "exec=0 fork=0 exit=0 connect=1 zeta=4");
    }

    #[test]
    fn malformed_stats_are_rejected() {
        assert!(Stats::parse(r#"{"events":1,"lost":{"exec":0,"fork":0}}"#).is_err());
        assert!(Stats::parse(r#"{"events":1}"#).is_err());
        assert!(Stats::parse(
            r#"{"events":1,"connect_events":null,"lost":{"exec":0,"fork":0,"exit":0}}"#
        )
        .is_err());
        assert!(Stats::parse(r#"{"events":1,"lost":{"exec":0,"fork":0,"exit":-1}}"#).is_err());
        assert!(Stats::json_of_line("detector ready").is_none());
    }
}
