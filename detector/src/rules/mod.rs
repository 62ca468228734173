//! Detection rules: pure functions from events (and what the process table knows) to
//! [`Detection`]s. No I/O here; the daemon turns detections into responses and alerts.

pub mod egress;
pub mod inbound;
pub mod shell_spawn;

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::{
    events::{ProcessKey, Transport},
    policy::{NetProtocol, ProgramClass},
};

/// Names from the alert contract (`../shared/CONTRACT.md`); they never change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// A JVM or its descendant executed a shell, interpreter or downloader, or a program
    /// from a world-writable directory or a memory file.
    JvmShellSpawn,
    /// Outbound LDAP from a JVM lineage (the JNDI `ldap://` step).
    JvmLdapEgress,
    /// Outbound Java RMI (JRMP) from a JVM lineage (the JNDI `rmi://` step).
    JvmRmiEgress,
    /// A DNS lookup by a JVM lineage that looks like exfiltration or JNDI.
    JvmDnsExfil,
    /// An outbound connect outside the egress allowlist.
    JvmUnexpectedEgress,
    /// A JVM received a request carrying a JNDI lookup string.
    JndiProbe,
    /// A JVM received Java class bytes over a connection it made.
    JvmClassDownload,
    /// Several stages of one attack on one JVM: the correlated incident.
    ExploitChain,
    /// The kernel sensors dropped events.
    SensorLoss,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::JvmShellSpawn => "jvm_shell_spawn",
            Rule::JvmLdapEgress => "jvm_ldap_egress",
            Rule::JvmRmiEgress => "jvm_rmi_egress",
            Rule::JvmDnsExfil => "jvm_dns_exfil",
            Rule::JvmUnexpectedEgress => "jvm_unexpected_egress",
            Rule::JndiProbe => "jndi_probe",
            Rule::JvmClassDownload => "jvm_class_download",
            Rule::ExploitChain => "exploit_chain",
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
    /// For network rules: the connection.
    pub network: Option<Network>,
    /// Set by `correlate` (empty until then): the incident this belongs to.
    pub incident_id: String,
}

/// How an alert names a JVM: its executable's basename ("java"), or "JVM" when the table
/// no longer knows it.
pub(crate) fn jvm_name(table: &crate::process_table::ProcessTable, jvm: ProcessKey) -> String {
    table
        .get_key(jvm)
        .map(|j| crate::policy::basename(&j.exe).to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "JVM".to_owned())
}

/// How a protocol was recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecognisedBy {
    /// The destination port is configured as that protocol's.
    Port,
    /// The first bytes sent are that protocol's.
    Payload,
}

/// Which way the traffic went, seen from the JVM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The JVM sent it (`dst_*` is the remote end).
    Outbound,
    /// The JVM received it (`dst_*` is the remote end that sent it; `local_port` is the JVM's).
    Inbound,
}

/// The connection a network detection is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    pub direction: Direction,
    /// The JVM's port, for inbound traffic.
    pub local_port: Option<u16>,
    pub transport: Transport,
    pub dst_ip: IpAddr,
    pub dst_port: u16,
    pub protocol: Option<NetProtocol>,
    pub recognised_by: Option<RecognisedBy>,
    /// Protocol detail for a human: an LDAP bind DN, a DNS query.
    pub indicator: Option<String>,
    pub dns_name: Option<String>,
}
