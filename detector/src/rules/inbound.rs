//! Rules `jndi_probe` and `jvm_class_download`: the first and third stages of a Log4Shell
//! attack, seen as bytes arriving at the JVM.
//!
//! - `jndi_probe` (medium): a request the JVM received carries a JNDI lookup, however it was
//!   obfuscated. The kernel only forwards samples that contain the start of a lookup
//!   (`${`, `%24`, `\u0024`); `protocols::jndi` decides. Probes are everywhere on the
//!   internet: this alone is noise-level, and becomes evidence when the same JVM then
//!   reaches out (see `correlate`).
//! - `jvm_class_download` (critical): Java class bytes arrived on a connection the JVM (or
//!   a descendant) made — in an HTTP response or raw: the class a JNDI reference names.

use std::collections::HashSet;

use super::{jvm_name, Detection, Network};
use crate::{
    events::{Inbound, InboundKind},
    process_table::ProcessTable,
    protocols::jndi,
    vocab::{Action, Direction, ProcessKey, Rule, Severity, Transport},
};

/// Entries remembered for de-duplication, at most (then the memory starts over).
const MAX_REMEMBERED: usize = 65_536;

/// What the inbound rules remember between events.
#[derive(Debug, Default)]
pub struct InboundState {
    /// (JVM, normalised lookup) already reported: a scanner repeating its probe is one alert.
    probes: HashSet<(ProcessKey, String)>,
    /// (JVM, connection) already reported for class bytes.
    classes: HashSet<(ProcessKey, u64)>,
    /// Samples with a lookup string whose cgroup held no known JVM.
    pub unattributed: u64,
}

impl InboundState {
    pub fn forget_jvm(&mut self, jvm: ProcessKey) {
        self.probes.retain(|(j, _)| *j != jvm);
        self.classes.retain(|(j, _)| *j != jvm);
    }
}

fn remember<T: std::hash::Hash + Eq>(set: &mut HashSet<T>, key: T) -> bool {
    if set.len() >= MAX_REMEMBERED {
        set.clear();
    }
    set.insert(key)
}

fn endpoint(i: &Inbound) -> String {
    match i.remote {
        std::net::IpAddr::V4(v4) => format!("{v4}:{}", i.remote_port),
        std::net::IpAddr::V6(v6) => format!("[{v6}]:{}", i.remote_port),
    }
}

fn network(i: &Inbound, indicator: Option<String>) -> Network {
    Network {
        direction: Direction::Inbound,
        local_port: Some(i.local_port),
        transport: Transport::Tcp,
        dst_ip: i.remote,
        dst_port: i.remote_port,
        protocol: None,
        recognised_by: None,
        indicator,
        dns_name: None,
    }
}

/// The Java version a class file's major version number stands for.
fn java_version(major: u16) -> Option<u16> {
    (45..=80).contains(&major).then(|| major.saturating_sub(44))
}

/// Judges bytes the inbound sensor forwarded.
pub fn evaluate(table: &ProcessTable, state: &mut InboundState, i: &Inbound) -> Option<Detection> {
    match i.kind {
        InboundKind::Class => class_download(table, state, i),
        InboundKind::Probe => probe(table, state, i),
    }
}

fn class_download(
    table: &ProcessTable,
    state: &mut InboundState,
    i: &Inbound,
) -> Option<Detection> {
    let lineage = i.lineage?;
    let jvm = lineage.jvm();
    let at = i.match_at as usize;
    // Bytes 4..8 of a class file: minor and major version, big-endian.
    let major = i
        .sample
        .get(at + 6..at + 8)
        .map(|b| u16::from_be_bytes([b[0], b[1]]));
    let version = match major {
        Some(m) => match java_version(m) {
            Some(v) => format!("class file version {m} (Java {v})"),
            // CAFEBABE is also the Mach-O fat binary magic; say what we saw.
            None => format!("CAFEBABE magic with version field {m}"),
        },
        None => "CAFEBABE magic".to_owned(),
    };
    if !remember(&mut state.classes, (jvm, i.cookie)) {
        return None;
    }
    let name = jvm_name(table, jvm);
    let mut summary = format!(
        "{name} (pid {}) received Java class bytes from {} ({version})",
        jvm.tgid,
        endpoint(i)
    );
    if lineage.depth > 0 {
        summary.push_str(&format!(
            " on a connection of a descendant (pid {})",
            i.tgid
        ));
    }
    if i.blocked {
        summary.push_str("; blocked: the response was dropped before the JVM could read it");
    }
    let process = table.get(i.tgid).map_or(
        ProcessKey {
            tgid: i.tgid,
            start_ns: 0,
        },
        |p| p.key,
    );
    Some(Detection {
        rule: Rule::JvmClassDownload,
        severity: Severity::Critical,
        summary,
        action: if i.blocked {
            Action::Blocked
        } else {
            Action::Reported
        },
        process,
        jvm,
        class: None,
        network: Some(network(i, Some(version))),
        incident_id: String::new(),
    })
}

fn probe(table: &ProcessTable, state: &mut InboundState, i: &Inbound) -> Option<Detection> {
    let findings = jndi::find_jndi(&i.sample);
    let finding = findings.first()?;
    let Some(jvm) = table.jvms_in_cgroup(i.cgroup_id).first().map(|p| p.key) else {
        state.unattributed += 1;
        return None;
    };
    if !remember(&mut state.probes, (jvm, finding.normalized.clone())) {
        return None;
    }
    let name = jvm_name(table, jvm);
    let mut summary = format!(
        "{name} (pid {}) received a JNDI lookup from {} in {}: {}",
        jvm.tgid,
        endpoint(i),
        finding.location,
        finding.normalized
    );
    if !finding.obfuscations.is_empty() {
        summary.push_str(&format!(
            " (obfuscated: {})",
            finding.obfuscations.join(", ")
        ));
    }
    Some(Detection {
        rule: Rule::JndiProbe,
        severity: Severity::Medium,
        summary,
        action: Action::Reported,
        process: jvm,
        jvm,
        class: None,
        network: Some(network(
            i,
            Some(format!("{}://{}", finding.scheme, finding.target)),
        )),
        incident_id: String::new(),
    })
}
