//! Harness for the end-to-end tests in `tests/tests/`: the real `detector` binary (driven as a
//! black box through its command line, as the interface contract and `docs/alerts.md` describe
//! it), real kernel programs, a real JVM.
//!
//! Every scenario follows the same shape:
//!
//! 1. [`require_kernel_support`] — root and cgroup v2, or skip (a skip fails when `CI=true`);
//! 2. a [`TestCgroup`] that scopes the daemon to the JVMs the test starts, so the rest of the
//!    machine cannot produce alerts the test did not cause;
//! 3. a [`Detector`] started with a [`Policy`] written for the test;
//! 4. a Java program from `tests/java/` run inside the cgroup ([`JavaProgram`]);
//! 5. assertions on the alerts ([`alert`]), the program's own report of what happened
//!    ([`ProgramRun`]) and the canary files it was told to create;
//! 6. [`Detector::stop`] and [`assert_nothing_lost`] on the `detector stats` line
//!    ([`assert_nothing_lost_with_egress`] for the egress scenarios).
//!
//! The egress scenarios (`egress_*.rs`) add loopback [`servers`] that the JVM's lookups reach:
//! they run in the test process, outside the cgroup, and count what actually arrived.
//! `egress_clients.rs` checks those JVM clients and servers on their own, without the detector.
//!
//! Tests must run one at a time (`cargo test -p integration-tests -- --test-threads=1`): they
//! share the kernel's tracepoints and the cgroup hierarchy.

pub mod alert;
pub mod containerd;
mod daemon;
mod java;
pub mod kubernetes;
pub mod podman;
mod policy;
mod program;
pub mod receivers;

use std::time::Duration;

pub use daemon::{
    assert_nothing_lost, assert_nothing_lost_with_egress, binary as detector_binary, Detector,
    EGRESS_LOST_KINDS,
};
pub use java::{compile as compile_java, JavaProgram};
pub use policy::{Mode, Policy};
pub use program::{
    find_on_path, python3, python_ldap_bind, spawn, spawn_in_cgroup, ProgramRun, RunningProgram,
    EPERM_MESSAGE, LDAP_BIND_REQUEST,
};
/// The harness pieces shared with the lab and the benchmarks.
pub use testkit::{
    scaled, servers,
    servers::{
        Tally, TcpReply, TcpServer, UdpReply, UdpServer, LOOPBACK_V4, LOOPBACK_V6, SERVER_TIMEOUT,
    },
    unique_name, workspace_root, Cgroup as TestCgroup, Launch, RemoveOnDrop, ScratchDir,
};

/// How long an alert may take from the offending exec or connect to a line on the daemon's
/// stdout.
pub const ALERT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to keep listening after the expected alerts arrived, so a duplicate or a stray
/// alert for an earlier exec would be seen before the test counts.
pub const SETTLE_TIME: Duration = Duration::from_secs(1);

/// How long a scenario program may run before the harness kills it and fails the test.
pub const PROGRAM_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether this machine can run the end-to-end tests: root (to load eBPF programs and create
/// cgroups) and a cgroup v2 hierarchy (the daemon's `--cgroup` scope).
///
/// Returns `false` after printing why, so the caller can return early. Under `CI=true` it
/// panics instead: a CI job that silently skipped every scenario would look green.
pub fn require_kernel_support() -> bool {
    let missing = if !testkit::is_root() {
        Some(
            "not running as root; the detector needs CAP_BPF and the tests create cgroups"
                .to_owned(),
        )
    } else {
        testkit::cgroup::cgroup2_mount()
            .err()
            .map(|e| e.to_string())
    };
    match missing {
        None => true,
        Some(reason) => skip(&reason),
    }
}

/// A test that cannot run here says why and returns `false`; under `CI=true` it fails
/// instead, so a CI job never passes by skipping.
pub fn skip(reason: &str) -> bool {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but this test cannot run here: {reason}");
    }
    eprintln!("skipping: {reason}");
    false
}
