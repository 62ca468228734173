//! A stalled consumer and a lost exit: the daemon stops reading (SIGSTOP) while a JVM it knows
//! spawns fast enough to overflow the ring buffer, and the JVM exits while the buffer is full,
//! so its exit event is lost.
//!
//! Proves: the losses are counted per kind and raised as `sensor_loss` once the daemon runs
//! again; the daemon survives; and the periodic check against /proc (every 30 s) finds the JVM
//! gone and drops its state as if its exit had come (`exits_reconciled`), instead of keeping
//! its bookkeeping and kernel entries for ever.

use std::time::{Duration, Instant};

use integration_tests::{
    alert, require_kernel_support, Detector, JavaProgram, Mode, Policy, TestCgroup,
};

/// Long enough to fill the ring buffer (4 MiB) several times with execs of `/bin/true`.
const STORM_MS: u64 = 15_000;

fn signal(pid: u32, signal: i32) {
    // SAFETY: kill has no memory-safety preconditions; the pid is our own daemon's.
    let sent = unsafe { libc::kill(pid as i32, signal) };
    assert_eq!(sent, 0, "kill({pid}, {signal})");
}

#[test]
fn a_lost_exit_is_found_by_the_proc_check_and_losses_are_reported() {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new("lost-exits");
    let mut detector = Detector::with_policy(&Policy::new(Mode::Monitor), &cgroup);
    let daemon = detector.pid().expect("the daemon runs");

    let jvm = JavaProgram::new("SpawnLoop")
        .arg(STORM_MS.to_string())
        .spawn_in_cgroup(&cgroup);
    jvm.wait_until_started();
    // The JVM's start is seen (the daemon keeps state for it) before the daemon stalls.
    std::thread::sleep(Duration::from_secs(1));
    signal(daemon, libc::SIGSTOP);
    let run = jvm.wait(Duration::from_millis(STORM_MS) + Duration::from_secs(60));
    signal(daemon, libc::SIGCONT);
    run.assert_success();
    let resumed = Instant::now();

    // The losses, raised once it reads again.
    let loss = detector.wait_for_alerts(
        |a| alert::rule(a) == Some("sensor_loss"),
        1,
        Duration::from_secs(20),
    );
    assert!(
        loss[0]["loss"]["exec"].as_u64() > Some(0),
        "the storm did not overflow the ring buffer: {}",
        alert::pretty(&loss[0])
    );

    // Past one full /proc check after the resume.
    let check = Duration::from_secs(35);
    if let Some(rest) = check.checked_sub(resumed.elapsed()) {
        std::thread::sleep(rest);
    }
    let stats = detector.stop();
    assert!(
        stats["lost"]["exit"].as_u64() > Some(0),
        "the JVM's exit came through after all (nothing to reconcile): {stats}"
    );
    assert!(
        stats["exits_reconciled"].as_u64() >= Some(1),
        "the JVM whose exit was lost is still tracked: {stats}"
    );
}
