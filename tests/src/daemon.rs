//! The `detector` daemon under test, through the shared driver ([`testkit::Detector`]): this
//! module only turns its errors into test failures and adds the tests' assertions on the
//! `detector stats` line.

use std::{
    ffi::OsStr,
    fs,
    path::{Path, PathBuf},
    thread,
    time::Duration,
};

use serde_json::Value;
use testkit::Launch;

use crate::{Mode, Policy, ScratchDir, TestCgroup};

/// A running `detector run --config <policy> --mode <mode> --cgroup <test cgroup>`.
///
/// Every accessor fails the test if the daemon ever wrote a stdout line that is not a JSON
/// object. Dropping it without [`stop`](Self::stop) sends SIGTERM, then SIGKILL after 5 s.
#[derive(Debug)]
pub struct Detector {
    inner: testkit::Detector,
    /// Holds the policy file; removed on drop.
    scratch: ScratchDir,
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
        extra: &[&OsStr],
    ) -> Self {
        Self::start_with(policy_toml, mode, cgroup, |launch| launch.args(extra))
    }

    /// [`start`](Self::start), with the launch adjusted by `adjust` (arguments, environment).
    pub fn start_with(
        policy_toml: &str,
        mode: Mode,
        cgroup: &TestCgroup,
        adjust: impl FnOnce(Launch) -> Launch,
    ) -> Self {
        Self::start_scoped(policy_toml, mode, cgroup.path(), adjust)
    }

    /// [`start_with`](Self::start_with), scoped to a cgroup v2 directory the test did not
    /// create (a container's, made by its runtime).
    pub fn start_scoped(
        policy_toml: &str,
        mode: Mode,
        cgroup_dir: &Path,
        adjust: impl FnOnce(Launch) -> Launch,
    ) -> Self {
        let scratch = ScratchDir::new("policy");
        let config = scratch.file("policy.toml");
        // Each daemon its own alert journal, unless the test chose one: a journal in the
        // default /var/lib/detector/spool would carry one test's undelivered alerts into the
        // next test's stdout.
        let policy_toml = if policy_toml.lines().any(|l| l.trim() == "[delivery]") {
            policy_toml.to_owned()
        } else {
            format!(
                "{policy_toml}\n[delivery]\nspool_dir = {}\n",
                crate::receivers::toml_str(&scratch.file("journal").to_string_lossy())
            )
        };
        let policy_toml = policy_toml.as_str();
        fs::write(&config, policy_toml)
            .unwrap_or_else(|e| panic!("writing {}: {e}", config.display()));
        let launch = Launch::new(&binary(), mode)
            .config(&config)
            .cgroup(cgroup_dir);
        let inner = adjust(launch)
            .start()
            .unwrap_or_else(|e| panic!("{e}\npolicy:\n{policy_toml}"));
        Detector { inner, scratch }
    }

    /// SIGKILL, as a crash or the OOM killer would end it (no drain, no stats line); waits
    /// for it to be gone.
    pub fn kill_now(&mut self) {
        let status = self.inner.kill_now();
        assert!(status.is_some(), "the daemon was not running");
    }

    /// The daemon's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.inner.pid()
    }

    /// Every alert received so far, in arrival order.
    pub fn alerts(&self) -> Vec<Value> {
        self.inner.check_stdout().unwrap_or_else(|e| panic!("{e}"));
        self.inner.alerts()
    }

    /// Waits until at least `count` alerts satisfy `pred` and returns those alerts; fails the
    /// test after `timeout`, or as soon as the daemon closes its stdout.
    pub fn wait_for_alerts(
        &self,
        pred: impl Fn(&Value) -> bool,
        count: usize,
        timeout: Duration,
    ) -> Vec<Value> {
        self.inner
            .wait_for_alerts(pred, count, timeout)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Keeps collecting for `quiet`, then returns every alert received: use after the expected
    /// alerts arrived, before asserting there are no others.
    pub fn alerts_after(&self, quiet: Duration) -> Vec<Value> {
        thread::sleep(quiet);
        self.alerts()
    }

    /// The policy file the daemon was started with (`--config`): rewrite it, then
    /// [`signal`](Self::signal) SIGHUP to reload.
    pub fn config_path(&self) -> PathBuf {
        self.scratch.file("policy.toml")
    }

    /// Sends `signal` (e.g. `libc::SIGHUP`) to the daemon.
    pub fn signal(&self, signal: i32) {
        let pid = self.inner.pid().expect("the daemon is running");
        let pid = libc::pid_t::try_from(pid).expect("a pid fits pid_t");
        // SAFETY: kill has no memory preconditions.
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(
            sent,
            0,
            "kill({pid}, {signal}): {}",
            std::io::Error::last_os_error()
        );
    }

    /// Waits until the daemon's stderr holds `needle` at least `count` times; fails the test
    /// after `timeout`.
    pub fn wait_for_log(&self, needle: &str, count: usize, timeout: Duration) {
        let deadline = std::time::Instant::now() + testkit::scaled(timeout);
        loop {
            let logs = self.inner.describe();
            if logs.matches(needle).count() >= count {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {count} × {needle:?} in the daemon's log within {timeout:?}:\n{logs}"
            );
            self.inner.wait_change(Duration::from_millis(100));
        }
    }

    /// The daemon's stderr so far, for failure messages.
    pub fn logs(&self) -> String {
        self.inner.describe()
    }

    /// Sends SIGTERM, waits (at most 20 s) for exit status 0 and returns the JSON object from
    /// the `detector stats {...}` line.
    pub fn stop(&mut self) -> Value {
        self.inner
            .stop()
            .unwrap_or_else(|e| panic!("{e}\n{}", self.inner.describe()))
            .json
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
    // The ring buffer's fill level is read (its size is known) and was seen: a daemon that read
    // events woke up to a ring buffer holding some, never more than it can hold.
    let field = |name: &str| {
        stats
            .get(name)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("stats have no `{name}` count: {stats}"))
    };
    let (size, used_max) = (field("ring_bytes"), field("ring_used_max"));
    assert_eq!(size, 4 << 20, "ring buffer size: {stats}");
    assert!(used_max <= size, "{stats}");
    if field("events") > 0 {
        assert!(
            used_max > 0,
            "events were read but the ring buffer never held any: {stats}"
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

/// `DETECTOR_BIN`, else `<workspace>/target/release/detector`; fails the test if missing.
pub fn binary() -> PathBuf {
    testkit::daemon::binary().unwrap_or_else(|e| panic!("{e}"))
}
