//! Responses that happen in userspace, decided and carried out here. (Killing the offending
//! program itself happens in the kernel, at exec; see `detector-ebpf`.)
//!
//! In enforce mode, a program the kernel killed or a connect it denied is followed by the
//! JVM's quarantine and, by policy, the JVM's death; `exploit_chain` escalates: quarantine,
//! every process the JVM started killed, then the JVM frozen or killed, forensics first.
//! [`Responder::respond`] returns what it did as an [`Outcome`], which the alert carries as
//! its `response` object (and, as before, as text appended to its summary).

pub mod forensics;
pub mod kill;

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::{
    policy::{ChainAction, Mode, Policy},
    process_table::ProcessTable,
    rules::Detection,
    sensors::Sensors,
    vocab::{Action, ProcessKey, Rule},
};
use kill::Signal;

/// What one response step did to the JVM (or its processes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// The JVM's egress outside the allowlist is denied from now on.
    Quarantine,
    /// The processes the JVM started were killed.
    KillDescendants,
    /// The JVM was killed.
    KillJvm,
    /// The JVM was stopped (SIGSTOP) for a human.
    FreezeJvm,
}

/// One step of a response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub step: StepKind,
    /// The JVM's pid.
    pub pid: u32,
    /// Whether it was done.
    pub done: bool,
    /// For `kill_descendants`: how many were killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Why it was not done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the userspace response did about one detection: the alert's `response` object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub steps: Vec<Step>,
    /// What was captured from /proc before the JVM was frozen or killed.
    #[serde(skip)]
    pub forensics: Option<serde_json::Value>,
    /// The detection escalated an incident: the engine records the response in its timeline.
    #[serde(skip)]
    pub escalated: bool,
}

impl Outcome {
    /// Nothing was done.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    fn push(&mut self, detection: &mut Detection, step: Step, text: String) {
        detection.summary.push_str(&text);
        self.steps.push(step);
    }
}

/// Decides and carries out the responses; remembers which JVMs it quarantined.
#[derive(Debug, Default)]
pub struct Responder {
    /// JVMs whose quarantine an alert has announced.
    quarantined: HashSet<ProcessKey>,
}

impl Responder {
    /// Responds to `detection` (enforce mode only), updating its action and summary.
    pub fn respond(
        &mut self,
        policy: &Policy,
        sensors: &mut Sensors,
        table: &ProcessTable,
        detection: &mut Detection,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        if policy.mode != Mode::Enforce {
            return outcome;
        }
        if detection.rule == Rule::ExploitChain {
            self.escalate(policy, sensors, table, detection, &mut outcome);
        } else {
            self.follow_up(policy, sensors, detection, &mut outcome);
        }
        outcome
    }

    /// The JVM is gone: its quarantine with it.
    pub fn forget(&mut self, jvm: ProcessKey) {
        self.quarantined.remove(&jvm);
    }

    /// The kernel already killed the program or denied the connect: quarantine the JVM's
    /// egress and, by policy, kill the JVM.
    fn follow_up(
        &mut self,
        policy: &Policy,
        sensors: &mut Sensors,
        detection: &mut Detection,
        outcome: &mut Outcome,
    ) {
        let caught = matches!(detection.action, Action::Killed | Action::Blocked)
            && detection.rule != Rule::JvmUnexpectedEgress;
        if !caught {
            return;
        }
        if policy.egress.quarantine {
            self.quarantine(sensors, detection, outcome);
        }
        if !policy.response.kill_jvm || detection.action != Action::Killed {
            return;
        }
        let pid = detection.jvm.tgid;
        let (step, text) = match kill::signal_process(detection.jvm, Signal::KILL) {
            Ok(()) => (
                done(StepKind::KillJvm, pid),
                format!("; JVM (pid {pid}) killed"),
            ),
            Err(e) => {
                tracing::error!("kill_jvm: {e}");
                (
                    failed(StepKind::KillJvm, pid, &e),
                    format!("; JVM not killed: {e}"),
                )
            }
        };
        outcome.push(detection, step, text);
    }

    /// Quarantines a JVM's egress once, saying so. False if it could not.
    fn quarantine(
        &mut self,
        sensors: &mut Sensors,
        detection: &mut Detection,
        outcome: &mut Outcome,
    ) -> bool {
        let jvm = detection.jvm;
        if self.quarantined.contains(&jvm) {
            return true;
        }
        // The kernel quarantines on its own when it blocks LDAP or RMI.
        let done_now = sensors.is_quarantined(jvm)
            || match sensors.quarantine(jvm) {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!("quarantining JVM {}: {e}", jvm.tgid);
                    false
                }
            };
        if done_now {
            self.quarantined.insert(jvm);
            outcome.push(
                detection,
                done(StepKind::Quarantine, jvm.tgid),
                format!(
                    "; JVM (pid {}) quarantined: its egress outside the allowlist is denied",
                    jvm.tgid
                ),
            );
        }
        done_now
    }

    /// `exploit_chain`: quarantine the JVM, kill what it started, then (policy) freeze or
    /// kill it, capturing forensics from /proc first.
    fn escalate(
        &mut self,
        policy: &Policy,
        sensors: &mut Sensors,
        table: &ProcessTable,
        detection: &mut Detection,
        outcome: &mut Outcome,
    ) {
        outcome.escalated = true;
        let jvm = detection.jvm;
        if self.quarantine(sensors, detection, outcome) {
            detection.action = Action::Blocked;
        }
        let mut killed = 0;
        for p in &table.lineage_members(jvm) {
            match kill::signal_process(*p, Signal::KILL) {
                Ok(()) => killed += 1,
                Err(kill::KillError::Gone { .. }) => {}
                Err(e) => tracing::warn!("killing descendant {} of JVM {}: {e}", p.tgid, jvm.tgid),
            }
        }
        if killed > 0 {
            let mut step = done(StepKind::KillDescendants, jvm.tgid);
            step.count = Some(killed);
            outcome.push(
                detection,
                step,
                format!("; {killed} of its processes killed"),
            );
        }
        let (signal, kind, action, verb) = match policy.response.on_chain {
            ChainAction::Quarantine => return,
            ChainAction::Freeze => (
                Signal::STOP,
                StepKind::FreezeJvm,
                Action::Frozen,
                "frozen (SIGSTOP) for a human; resume with kill -CONT",
            ),
            ChainAction::Kill => (Signal::KILL, StepKind::KillJvm, Action::Killed, "killed"),
        };
        // Forensics first: a killed JVM has no /proc left to read.
        outcome.forensics = Some(forensics::capture(jvm.tgid));
        let (step, text) = match kill::signal_process(jvm, signal) {
            Ok(()) => {
                detection.action = action;
                (
                    done(kind, jvm.tgid),
                    format!("; JVM (pid {}) {verb}", jvm.tgid),
                )
            }
            Err(e) => {
                tracing::error!("escalating on JVM {}: {e}", jvm.tgid);
                (
                    failed(kind, jvm.tgid, &e),
                    format!("; JVM not {}: {e}", policy.response.on_chain.as_str()),
                )
            }
        };
        outcome.push(detection, step, text);
    }
}

fn done(step: StepKind, pid: u32) -> Step {
    Step {
        step,
        pid,
        done: true,
        count: None,
        error: None,
    }
}

fn failed(step: StepKind, pid: u32, error: &kill::KillError) -> Step {
    Step {
        done: false,
        error: Some(error.to_string()),
        ..done(step, pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_serialises_steps_only() {
        let mut step = done(StepKind::KillDescendants, 42);
        step.count = Some(2);
        let outcome = Outcome {
            steps: vec![
                done(StepKind::Quarantine, 42),
                step,
                failed(StepKind::FreezeJvm, 42, &kill::KillError::Gone { pid: 42 }),
            ],
            forensics: Some(serde_json::json!({"cmdline": []})),
            escalated: true,
        };
        let json = serde_json::to_value(&outcome).expect("serialises");
        assert_eq!(
            json,
            serde_json::json!({"steps": [
                {"step": "quarantine", "pid": 42, "done": true},
                {"step": "kill_descendants", "pid": 42, "done": true, "count": 2},
                {"step": "freeze_jvm", "pid": 42, "done": false, "error": "process 42 is gone"},
            ]})
        );
        let back: Outcome = serde_json::from_value(json).expect("parses");
        assert_eq!(back.steps, outcome.steps);
    }
}
