//! Every kernel program loads and attaches, in each mode, before any scenario runs.
//!
//! The daemon prints `detector ready` only once every program is loaded and attached (the
//! packet programs are loaded then and attached per JVM cgroup later), and exits with a
//! one-line cause when one is refused. Proves: the daemon gets ready in monitor and in enforce
//! mode, stops cleanly on SIGTERM, and its stats line carries every sensor's counters with
//! nothing lost. The kernel matrix (`cargo xtask kernels`) runs this first in each kernel, so a
//! verifier refusal there reads as "does not attach" rather than as a failed scenario.

use integration_tests::{
    assert_nothing_lost_with_egress, require_kernel_support, Detector, Mode, Policy, TestCgroup,
};

fn attaches(mode: Mode) {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new(&format!("attach-{}", mode.as_str()));
    let mut detector = Detector::with_policy(&Policy::new(mode), &cgroup);
    assert_nothing_lost_with_egress(&detector.stop());
}

#[test]
fn programs_attach_in_monitor_mode() {
    attaches(Mode::Monitor);
}

#[test]
fn programs_attach_in_enforce_mode() {
    attaches(Mode::Enforce);
}
