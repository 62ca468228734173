//! `detector run --config tests/lab/policy.toml --mode monitor|enforce --cgroup <scenario>`,
//! between `detector ready` and SIGTERM: its alerts (JSON lines on stdout) are collected and
//! written to `alerts.jsonl`, its stderr to `detector.log`, and the `detector stats {...}`
//! line it prints when it stops is read for lost events.

use std::{
    fs::File,
    io::{BufRead as _, BufReader, Write as _},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use serde_json::Value;

use super::{cgroup::LabCgroup, scenarios::Mode, servers::append_to};
use crate::command_line;

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
const READY_LINE: &str = "detector ready";
const STATS_PREFIX: &str = "detector stats ";

#[derive(Debug)]
pub struct Detector {
    child: Option<Child>,
    output: Arc<Output>,
}

#[derive(Debug, Default)]
struct Output {
    state: Mutex<OutputState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct OutputState {
    alerts: Vec<Value>,
    /// stdout lines that are not JSON objects (the contract forbids them).
    bad_stdout: Vec<String>,
    ready: bool,
    stats: Option<String>,
    stderr_tail: Vec<String>,
    closed: usize,
}

impl Output {
    fn lock(&self) -> MutexGuard<'_, OutputState> {
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
}

impl Detector {
    /// Starts the daemon on `cgroup` and waits for `detector ready`.
    pub fn start(
        bin: &Path,
        policy: &Path,
        mode: Mode,
        cgroup: &LabCgroup,
        dir: &Path,
    ) -> Result<Self> {
        let mut cmd = Command::new(bin);
        cmd.arg("run")
            .arg("--config")
            .arg(policy)
            .args(["--mode", mode.as_str()])
            .arg("--cgroup")
            .arg(cgroup.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        super::die_with_runner(&mut cmd);
        let line = command_line(&cmd);
        let mut log = append_to(&dir.join("detector.log"))?;
        let _ = writeln!(log, "$ {line}");
        let mut alerts_file = File::create(dir.join("alerts.jsonl"))
            .with_context(|| format!("creating {}", dir.join("alerts.jsonl").display()))?;
        let mut child = cmd.spawn().with_context(|| format!("starting `{line}`"))?;
        let output = Arc::new(Output::default());

        let stdout = child.stdout.take().context("stdout is not piped")?;
        let out = Arc::clone(&output);
        thread::spawn(move || {
            for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
                let line = String::from_utf8_lossy(&line).into_owned();
                let _ = writeln!(alerts_file, "{line}");
                match serde_json::from_str::<Value>(&line) {
                    Ok(alert) if alert.is_object() => out.update(|s| s.alerts.push(alert)),
                    _ => out.update(|s| s.bad_stdout.push(line)),
                }
            }
            out.update(|s| s.closed += 1);
        });

        let stderr = child.stderr.take().context("stderr is not piped")?;
        let out = Arc::clone(&output);
        thread::spawn(move || {
            for line in BufReader::new(stderr).split(b'\n').map_while(Result::ok) {
                let line = String::from_utf8_lossy(&line).into_owned();
                let _ = writeln!(log, "{line}");
                out.update(|s| {
                    if line.trim_end().ends_with(READY_LINE) {
                        s.ready = true;
                    }
                    if let Some((_, stats)) = line.split_once(STATS_PREFIX) {
                        s.stats = Some(stats.trim().to_owned());
                    }
                    s.stderr_tail.push(line);
                    if s.stderr_tail.len() > 20 {
                        s.stderr_tail.remove(0);
                    }
                });
            }
            out.update(|s| s.closed += 1);
        });

        let mut detector = Self {
            child: Some(child),
            output,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        while !detector.output.lock().ready {
            if let Some(status) = detector.try_wait()? {
                detector.output.wait_change(Duration::from_secs(1));
                bail!(
                    "the detector exited ({status}) before `{READY_LINE}`:\n  {}",
                    detector.output.lock().stderr_tail.join("\n  ")
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "no `{READY_LINE}` within {}s; see {}",
                    READY_TIMEOUT.as_secs(),
                    dir.join("detector.log").display()
                );
            }
            detector.output.wait_change(Duration::from_millis(50));
        }
        Ok(detector)
    }

    /// Every alert so far.
    pub fn alerts(&self) -> Vec<Value> {
        self.output.lock().alerts.clone()
    }

    /// Waits (at most `timeout`) for the next alert or log line.
    pub fn wait_change(&self, timeout: Duration) {
        self.output.wait_change(timeout);
    }

    /// SIGTERM, wait for exit 0, and return the stats object. A non-JSON stdout line, a bad
    /// exit or a missing stats line is an error.
    pub fn stop(mut self) -> Result<Value> {
        let child = self
            .child
            .as_ref()
            .context("the detector is already stopped")?;
        let pid = libc::pid_t::try_from(child.id()).context("pid out of range")?;
        // SAFETY: kill has no memory-safety preconditions; the child is not reaped yet, so
        // the pid still names it.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            bail!(
                "SIGTERM to the detector: {}",
                std::io::Error::last_os_error()
            );
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        let status = loop {
            if let Some(status) = self.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                bail!(
                    "the detector was still running {}s after SIGTERM",
                    STOP_TIMEOUT.as_secs()
                );
            }
            thread::sleep(Duration::from_millis(20));
        };
        self.child = None;
        // Let the readers drain both pipes.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.output.lock().closed < 2 && Instant::now() < deadline {
            self.output.wait_change(Duration::from_millis(50));
        }
        let state = self.output.lock();
        if !state.bad_stdout.is_empty() {
            bail!(
                "the detector wrote non-JSON lines on stdout: {:?}",
                state.bad_stdout
            );
        }
        if !status.success() {
            bail!(
                "the detector exited with {status} after SIGTERM:\n  {}",
                state.stderr_tail.join("\n  ")
            );
        }
        let stats = state
            .stats
            .as_deref()
            .context("the detector printed no `detector stats` line")?;
        serde_json::from_str(stats)
            .with_context(|| format!("`{STATS_PREFIX}` is not JSON: {stats}"))
    }

    fn try_wait(&mut self) -> Result<Option<std::process::ExitStatus>> {
        match self.child.as_mut() {
            Some(child) => child.try_wait().context("waiting for the detector"),
            None => Ok(None),
        }
    }
}

impl Drop for Detector {
    /// On an error path: never leave a daemon attached.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The kinds of event the detector lost, from its stats (`"lost": {"exec": 0, ...}`).
pub fn losses(stats: &Value) -> Vec<String> {
    let Some(lost) = stats.get("lost").and_then(Value::as_object) else {
        return vec!["(no `lost` object in the stats)".to_owned()];
    };
    lost.iter()
        .filter(|(_, count)| count.as_u64() != Some(0))
        .map(|(kind, count)| format!("{kind}={count}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losses_are_listed() {
        let clean: Value =
            serde_json::from_str(r#"{"events":3,"lost":{"exec":0,"fork":0}}"#).expect("json");
        assert!(losses(&clean).is_empty());
        let lossy: Value =
            serde_json::from_str(r#"{"lost":{"exec":0,"payload":2}}"#).expect("json");
        assert_eq!(losses(&lossy), ["payload=2"]);
        assert_eq!(losses(&Value::Null).len(), 1);
    }
}
