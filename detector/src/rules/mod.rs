//! Detection rules: pure functions from events (and what the process table knows) to
//! [`Detection`]s. No I/O here; the daemon turns detections into responses and alerts.

pub mod shell_spawn;

use serde::{Deserialize, Serialize};

use crate::{events::ProcessKey, policy::ProgramClass};

/// Names from the alert contract (`../shared/CONTRACT.md`); they never change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// A JVM or its descendant executed a shell, interpreter or downloader, or a program
    /// from a world-writable directory or a memory file.
    JvmShellSpawn,
    /// The kernel sensors dropped events.
    SensorLoss,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::JvmShellSpawn => "jvm_shell_spawn",
            Rule::SensorLoss => "sensor_loss",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

/// What was done about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Nothing was stopped.
    Reported,
    /// Denied in the kernel before it happened.
    Blocked,
    /// The offending program was killed.
    Killed,
    /// The process was stopped (SIGSTOP) for a human to look at.
    Frozen,
}

/// A rule matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detection {
    pub rule: Rule,
    pub severity: Severity,
    pub summary: String,
    pub action: Action,
    /// The process that did it.
    pub process: ProcessKey,
    /// The JVM whose lineage it belongs to.
    pub jvm: ProcessKey,
    /// What the executed program was recognised as.
    pub class: Option<ProgramClass>,
}
