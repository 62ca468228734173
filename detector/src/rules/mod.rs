//! Detection rules: pure functions from events (and what the process table knows) to
//! [`Detection`]s. No I/O here; the daemon turns detections into responses and alerts.

pub mod egress;
pub mod inbound;
pub mod shell_spawn;

use std::net::IpAddr;

use crate::vocab::{
    Action, Direction, NetProtocol, ProcessKey, ProgramClass, RecognisedBy, Rule, Severity,
    Transport,
};

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
