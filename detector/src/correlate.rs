//! Incidents: every signal about one JVM (tgid + start time) within a window becomes one
//! incident, with a timeline, the indicators seen and the actions taken. When the signals
//! add up to an attack — two strong stages (the JNDI egress, the class download, the payload
//! running), or a probe the JVM then acted on — the incident raises `exploit_chain` once.
//! One attack is one incident and a handful of alerts, not a flood. Pure: no I/O.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use crate::{
    rules::Detection,
    vocab::{Action, ProcessKey, Rule, Severity},
};

/// Signals about one JVM further apart than this start a new incident.
pub const WINDOW_NS: u64 = 10 * 60 * 1_000_000_000;
/// Incidents held at most (the oldest go first).
const MAX_INCIDENTS: usize = 4096;
/// Timeline entries kept per incident.
const MAX_TIMELINE: usize = 64;

/// The stages of a Log4Shell attack, in the order they happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The lookup string arrived.
    Probe,
    /// The JVM reached out: LDAP, RMI or DNS.
    Egress,
    /// The class arrived.
    ClassDownload,
    /// Something ran: a shell, an interpreter, a downloader, a dropped binary.
    Execution,
}

impl Stage {
    fn of(rule: Rule) -> Option<Stage> {
        match rule {
            Rule::JndiProbe => Some(Stage::Probe),
            Rule::JvmLdapEgress | Rule::JvmRmiEgress | Rule::JvmDnsExfil => Some(Stage::Egress),
            Rule::JvmClassDownload => Some(Stage::ClassDownload),
            Rule::JvmShellSpawn => Some(Stage::Execution),
            Rule::JvmUnexpectedEgress | Rule::ExploitChain | Rule::SensorLoss => None,
        }
    }

    /// The name used in alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Probe => "probe",
            Stage::Egress => "egress",
            Stage::ClassDownload => "class_download",
            Stage::Execution => "execution",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Stage::Probe => "JNDI probe",
            Stage::Egress => "JNDI egress",
            Stage::ClassDownload => "class download",
            Stage::Execution => "payload execution",
        }
    }
}

/// One entry of an incident's timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    /// ns since boot.
    pub time_ns: u64,
    pub rule: Rule,
    pub summary: String,
    pub action: Action,
}

/// Everything known about one attack on one JVM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incident {
    pub id: String,
    pub jvm: ProcessKey,
    pub opened_ns: u64,
    pub last_ns: u64,
    pub stages: BTreeSet<Stage>,
    pub timeline: Vec<Step>,
    /// Addresses, lookups, DNS names, class versions: what to search logs and firewalls for.
    pub indicators: BTreeSet<String>,
    /// The processes involved (the JVM first).
    pub processes: BTreeSet<u32>,
    chain_raised: bool,
}

impl Incident {
    /// Whether the stages add up to an exploitation attempt.
    fn is_chain(&self) -> bool {
        let strong = self.stages.iter().filter(|s| **s != Stage::Probe).count();
        strong >= 2 || (self.stages.contains(&Stage::Probe) && strong >= 1)
    }

    fn chain_detection(&self) -> Detection {
        let stages: Vec<&str> = self.stages.iter().map(|s| s.describe()).collect();
        let blocked = self
            .timeline
            .iter()
            .any(|s| matches!(s.action, Action::Blocked | Action::Killed));
        let mut summary = format!(
            "exploit chain on JVM pid {}: {}",
            self.jvm.tgid,
            stages.join(" → ")
        );
        if blocked {
            summary.push_str(" (stopped in the kernel at least once)");
        }
        Detection {
            rule: Rule::ExploitChain,
            severity: Severity::Critical,
            summary,
            action: Action::Reported,
            process: self.jvm,
            jvm: self.jvm,
            class: None,
            network: None,
            incident_id: self.id.clone(),
        }
    }
}

/// Gathers detections into incidents.
#[derive(Debug)]
pub struct Correlator {
    host: String,
    incidents: HashMap<ProcessKey, Incident>,
}

/// The id of an incident: stable across all alerts about it, distinct across hosts, across
/// a reused PID and (`opened_ns`, when the incident was opened) across incidents of one JVM.
/// Without `opened_ns`, the id of the JVM itself, for a detection filed under no incident.
pub fn incident_id(host: &str, jvm: ProcessKey, opened_ns: Option<u64>) -> String {
    let mut key = Vec::with_capacity(host.len() + 32);
    key.extend_from_slice(host.as_bytes());
    key.push(0);
    key.extend_from_slice(&jvm.tgid.to_le_bytes());
    key.extend_from_slice(&jvm.start_ns.to_le_bytes());
    if let Some(opened_ns) = opened_ns {
        key.extend_from_slice(&opened_ns.to_le_bytes());
    }
    format!("{:016x}", detector_common::fnv1a_bytes(&key))
}

impl Correlator {
    pub fn new(host: &str) -> Self {
        Self {
            host: host.to_owned(),
            incidents: HashMap::new(),
        }
    }

    /// Incidents open: JVMs with alerts that have not exited.
    pub fn open(&self) -> usize {
        self.incidents.len()
    }

    /// Files `d` under its JVM's incident (setting `d.incident_id`); returns the
    /// `exploit_chain` detection when this makes the incident an attack.
    pub fn observe(&mut self, d: &mut Detection, time_ns: u64) -> Option<Detection> {
        if d.rule == Rule::SensorLoss {
            return None;
        }
        let fresh = match self.incidents.get(&d.jvm) {
            Some(inc) => time_ns.saturating_sub(inc.last_ns) > WINDOW_NS,
            None => true,
        };
        if fresh {
            if self.incidents.len() >= MAX_INCIDENTS {
                if let Some(oldest) = self
                    .incidents
                    .values()
                    .min_by_key(|i| i.last_ns)
                    .map(|i| i.jvm)
                {
                    self.incidents.remove(&oldest);
                }
            }
            let id = incident_id(&self.host, d.jvm, Some(time_ns));
            self.incidents.insert(
                d.jvm,
                Incident {
                    id,
                    jvm: d.jvm,
                    opened_ns: time_ns,
                    last_ns: time_ns,
                    stages: BTreeSet::new(),
                    timeline: Vec::new(),
                    indicators: BTreeSet::new(),
                    processes: BTreeSet::from([d.jvm.tgid]),
                    chain_raised: false,
                },
            );
        }
        let inc = self.incidents.get_mut(&d.jvm)?;
        d.incident_id = inc.id.clone();
        inc.last_ns = inc.last_ns.max(time_ns);
        if let Some(stage) = Stage::of(d.rule) {
            inc.stages.insert(stage);
        }
        if inc.timeline.len() < MAX_TIMELINE {
            inc.timeline.push(Step {
                time_ns,
                rule: d.rule,
                summary: d.summary.clone(),
                action: d.action,
            });
        }
        inc.processes.insert(d.process.tgid);
        if let Some(n) = &d.network {
            inc.indicators.insert(match n.dst_ip {
                std::net::IpAddr::V4(ip) => format!("{ip}:{}", n.dst_port),
                std::net::IpAddr::V6(ip) => format!("[{ip}]:{}", n.dst_port),
            });
            if let Some(i) = &n.indicator {
                inc.indicators.insert(i.clone());
            }
            if let Some(name) = &n.dns_name {
                inc.indicators.insert(format!("dns:{name}"));
            }
        }
        if inc.chain_raised || !inc.is_chain() {
            return None;
        }
        inc.chain_raised = true;
        Some(inc.chain_detection())
    }

    /// The incident a JVM is in, if any.
    pub fn incident(&self, jvm: ProcessKey) -> Option<&Incident> {
        self.incidents.get(&jvm)
    }

    /// Records what the response did, for the timeline.
    pub fn note_action(&mut self, jvm: ProcessKey, time_ns: u64, what: &str, action: Action) {
        if let Some(inc) = self.incidents.get_mut(&jvm) {
            if inc.timeline.len() < MAX_TIMELINE {
                inc.timeline.push(Step {
                    time_ns,
                    rule: Rule::ExploitChain,
                    summary: what.to_owned(),
                    action,
                });
            }
        }
    }

    /// The JVM exited: its incident is closed.
    pub fn close(&mut self, jvm: ProcessKey) -> Option<Incident> {
        self.incidents.remove(&jvm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        rules::Network,
        vocab::{Direction, Transport},
    };

    const JVM: ProcessKey = ProcessKey {
        tgid: 100,
        start_ns: 5,
    };

    fn det(rule: Rule, action: Action) -> Detection {
        Detection {
            rule,
            severity: Severity::High,
            summary: format!("{rule:?}"),
            action,
            process: JVM,
            jvm: JVM,
            class: None,
            network: Some(Network {
                direction: Direction::Outbound,
                local_port: None,
                transport: Transport::Tcp,
                dst_ip: "127.0.0.1".parse().expect("ip"),
                dst_port: 1389,
                protocol: None,
                recognised_by: None,
                indicator: Some("bind dn=\"\"".into()),
                dns_name: None,
            }),
            incident_id: String::new(),
        }
    }

    #[test]
    fn a_full_attack_is_one_incident_and_one_chain() {
        let mut c = Correlator::new("h");
        let mut chains = Vec::new();
        let mut ids = BTreeSet::new();
        for (i, rule) in [
            Rule::JndiProbe,
            Rule::JvmLdapEgress,
            Rule::JvmClassDownload,
            Rule::JvmShellSpawn,
        ]
        .into_iter()
        .enumerate()
        {
            let mut d = det(rule, Action::Reported);
            chains.extend(c.observe(&mut d, 1_000 + i as u64));
            ids.insert(d.incident_id);
        }
        assert_eq!(ids.len(), 1, "one incident: {ids:?}");
        assert_eq!(chains.len(), 1, "one chain: {chains:?}");
        let chain = &chains[0];
        assert_eq!(chain.rule, Rule::ExploitChain);
        assert_eq!(chain.severity, Severity::Critical);
        assert_eq!(Some(&chain.incident_id), ids.first());
        // Raised at the second stage (probe then egress).
        assert_eq!(
            chain.summary,
            "exploit chain on JVM pid 100: JNDI probe → JNDI egress"
        );
        let inc = c.incident(JVM).expect("incident");
        assert_eq!(inc.timeline.len(), 4);
        assert!(inc.indicators.contains("127.0.0.1:1389"));
        assert_eq!(inc.stages.len(), 4);
    }

    #[test]
    fn single_signals_are_not_chains() {
        let mut c = Correlator::new("h");
        let mut d = det(Rule::JvmShellSpawn, Action::Reported);
        assert!(c.observe(&mut d, 1).is_none());
        let mut d = det(Rule::JvmUnexpectedEgress, Action::Reported);
        assert!(
            c.observe(&mut d, 2).is_none(),
            "unexpected egress is not a stage"
        );
        let mut d = det(Rule::JvmShellSpawn, Action::Reported);
        assert!(
            c.observe(&mut d, 3).is_none(),
            "the same stage twice is still one"
        );
        // A probe alone is noise.
        let mut c = Correlator::new("h");
        let mut d = det(Rule::JndiProbe, Action::Reported);
        assert!(c.observe(&mut d, 1).is_none());
    }

    #[test]
    fn two_strong_stages_make_a_chain_and_blocks_are_noted() {
        let mut c = Correlator::new("h");
        let mut d = det(Rule::JvmLdapEgress, Action::Blocked);
        assert!(c.observe(&mut d, 1).is_none());
        let mut d = det(Rule::JvmShellSpawn, Action::Killed);
        let chain = c.observe(&mut d, 2).expect("chain");
        assert!(
            chain
                .summary
                .ends_with("(stopped in the kernel at least once)"),
            "{}",
            chain.summary
        );
    }

    #[test]
    fn a_quiet_window_starts_a_new_incident() {
        let mut c = Correlator::new("h");
        let mut a = det(Rule::JvmLdapEgress, Action::Reported);
        c.observe(&mut a, 1);
        let mut b = det(Rule::JvmShellSpawn, Action::Reported);
        assert!(c.observe(&mut b, 2 + WINDOW_NS).is_none());
        assert_ne!(a.incident_id, b.incident_id);
    }

    #[test]
    fn sensor_loss_is_not_filed() {
        let mut c = Correlator::new("h");
        let mut d = det(Rule::SensorLoss, Action::Reported);
        assert!(c.observe(&mut d, 1).is_none());
        assert!(d.incident_id.is_empty());
        assert!(c.incident(JVM).is_none());
    }
}
