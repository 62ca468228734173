//! Rules `jvm_ldap_egress`, `jvm_rmi_egress`, `jvm_dns_exfil` and `jvm_unexpected_egress`:
//! the JNDI step of a Log4Shell attack, where the JVM reaches out to the attacker's
//! directory, registry or name server.
//!
//! The kernel reports connects the allowlist does not cover (by port) and first payloads
//! that look like LDAP, JRMP or DNS (by payload); these functions decide what deserves an
//! alert, judging again from the policy so that `replay` gives the same answers. One alert
//! per JVM, destination and rule: a JVM retrying a blocked connect is one alert, not a flood.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
};

use super::{jvm_name, Detection, Network};
use crate::{
    events::{Connect, LineageRef, Payload},
    policy::Policy,
    process_table::ProcessTable,
    protocols,
    vocab::{Action, Direction, NetProtocol, ProcessKey, RecognisedBy, Rule, Severity, Transport},
};

/// Destinations remembered for de-duplication, at most; past that the memory starts over
/// (a repeated alert is better than unbounded growth).
const MAX_REMEMBERED: usize = 65_536;

/// What the egress rules remember between events.
#[derive(Debug, Default)]
pub struct EgressState {
    /// (JVM, destination, port, rule) already alerted on.
    alerted: HashSet<(ProcessKey, IpAddr, u16, Rule)>,
    /// Sockets whose connect already raised a protocol alert (the payload then adds nothing).
    sockets: HashSet<(ProcessKey, u64)>,
    /// (JVM, query name) already alerted on: one exfiltrated value looked up twice is one alert.
    names: HashSet<(ProcessKey, String)>,
    /// DNS servers the host itself uses (`/etc/resolv.conf`): for JVMs whose own are not
    /// known (a recording made before resolvers were recorded).
    resolvers: Vec<IpAddr>,
    /// Each JVM's own resolvers, from its mount namespace's `/etc/resolv.conf`.
    jvm_resolvers: HashMap<ProcessKey, Vec<IpAddr>>,
}

/// Inserts `key` into `set`, starting over when the set is full; true if it was new.
fn remember<T: std::hash::Hash + Eq>(set: &mut HashSet<T>, key: T) -> bool {
    if set.len() >= MAX_REMEMBERED {
        set.clear();
    }
    set.insert(key)
}

impl EgressState {
    pub fn new(resolvers: Vec<IpAddr>) -> Self {
        Self {
            resolvers,
            ..Self::default()
        }
    }

    /// Forgets what concerns one JVM (it exited).
    pub fn forget_jvm(&mut self, jvm: ProcessKey) {
        self.alerted.retain(|(j, ..)| *j != jvm);
        self.sockets.retain(|(j, _)| *j != jvm);
        self.names.retain(|(j, _)| *j != jvm);
        self.jvm_resolvers.remove(&jvm);
    }

    /// The JVM's resolvers are these (read in its mount namespace, at its start or after its
    /// resolver file changed).
    pub fn set_resolvers(&mut self, jvm: ProcessKey, servers: Vec<IpAddr>) {
        if self.jvm_resolvers.len() >= MAX_REMEMBERED && !self.jvm_resolvers.contains_key(&jvm) {
            // Only live JVMs are here (exits remove them); a table this full means lost exits.
            self.jvm_resolvers.clear();
        }
        self.jvm_resolvers.insert(jvm, servers);
    }

    /// The resolvers the JVM uses: its own when known, else the host's.
    pub fn resolvers_of(&self, jvm: ProcessKey) -> &[IpAddr] {
        self.jvm_resolvers
            .get(&jvm)
            .map_or(&self.resolvers, Vec::as_slice)
    }

    /// The host's resolvers (the daemon's own `/etc/resolv.conf`).
    pub fn host_resolvers(&self) -> &[IpAddr] {
        &self.resolvers
    }

    fn is_resolver(&self, policy: &Policy, jvm: ProcessKey, ip: IpAddr) -> bool {
        self.resolvers_of(jvm).contains(&ip) || policy.dns.resolvers.contains(&ip)
    }
}

fn jvm_cmdline(table: &ProcessTable, lineage: &LineageRef) -> String {
    table
        .get_key(lineage.jvm())
        .map(|j| j.argv.join(" "))
        .unwrap_or_default()
}

/// The process that made the call: the socket hooks know its tgid, the table its start.
fn caller(table: &ProcessTable, tgid: u32) -> ProcessKey {
    table
        .get(tgid)
        .map_or(ProcessKey { tgid, start_ns: 0 }, |p| p.key)
}

fn protocol_rule(protocol: NetProtocol) -> Option<Rule> {
    match protocol {
        NetProtocol::Ldap => Some(Rule::JvmLdapEgress),
        NetProtocol::Rmi => Some(Rule::JvmRmiEgress),
        NetProtocol::Dns => None,
    }
}

fn endpoint(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

/// Judges a connect (or unconnected send) the kernel reported.
pub fn evaluate_connect(
    policy: &Policy,
    table: &ProcessTable,
    state: &mut EgressState,
    c: &Connect,
) -> Option<Detection> {
    let jvm = c.lineage.jvm();
    let protocol = policy.egress.port_class(c.port);
    let allowed = policy
        .egress
        .allowing(&jvm_cmdline(table, &c.lineage), c.dst, c.port, protocol)
        .is_some();
    if allowed && !c.blocked {
        return None;
    }
    let (rule, severity) = match protocol.and_then(protocol_rule) {
        Some(rule) => (rule, Severity::High),
        // DNS is judged by its query (the payload event), unless it was stopped here.
        None if protocol == Some(NetProtocol::Dns) && !c.blocked => return None,
        None if policy.egress.report_unexpected || c.blocked => {
            (Rule::JvmUnexpectedEgress, Severity::Medium)
        }
        None => return None,
    };
    if rule != Rule::JvmUnexpectedEgress {
        remember(&mut state.sockets, (jvm, c.cookie));
    }
    if !remember(&mut state.alerted, (jvm, c.dst, c.port, rule)) {
        return None;
    }

    let what = match rule {
        Rule::JvmLdapEgress => "an LDAP server",
        Rule::JvmRmiEgress => "an RMI registry",
        _ => "an address outside the egress allowlist",
    };
    let verb = if c.sendmsg { "sent to" } else { "connected to" };
    let mut summary = format!(
        "{} (pid {}) {verb} {what} at {} ({}",
        jvm_name(table, c.lineage.jvm()),
        jvm.tgid,
        endpoint(c.dst, c.port),
        c.transport.as_str(),
    );
    summary.push_str(if protocol.is_some() {
        ", recognised by port)"
    } else {
        ")"
    });
    if c.lineage.depth > 0 {
        summary.push_str(&format!(" from a descendant (pid {})", c.task.tgid));
    }
    if c.blocked {
        summary.push_str(if c.quarantined {
            "; blocked: the JVM is quarantined"
        } else {
            "; blocked in the kernel before any packet left"
        });
    }
    Some(Detection {
        rule,
        severity,
        summary,
        action: if c.blocked {
            Action::Blocked
        } else {
            Action::Reported
        },
        process: caller(table, c.task.tgid),
        jvm,
        class: None,
        incident_id: String::new(),
        network: Some(Network {
            direction: Direction::Outbound,
            local_port: None,
            transport: c.transport,
            dst_ip: c.dst,
            dst_port: c.port,
            protocol,
            recognised_by: protocol.map(|_| RecognisedBy::Port),
            indicator: None,
            dns_name: None,
        }),
    })
}

/// Judges a first payload the kernel recognised as LDAP, JRMP or DNS.
pub fn evaluate_payload(
    policy: &Policy,
    table: &ProcessTable,
    state: &mut EgressState,
    p: &Payload,
) -> Option<Detection> {
    let jvm = p.lineage.jvm();
    if state.sockets.contains(&(jvm, p.cookie)) {
        // Its connect already raised the alert (recognised by port).
        return None;
    }
    let udp = p.transport == Transport::Udp;
    let indicator = protocols::indicator(p.protocol.code(), &p.sample, udp);
    let name = jvm_name(table, p.lineage.jvm());
    let mut network = Network {
        direction: Direction::Outbound,
        local_port: None,
        transport: p.transport,
        dst_ip: p.dst,
        dst_port: p.port,
        protocol: Some(p.protocol),
        recognised_by: Some(RecognisedBy::Payload),
        indicator: indicator.clone(),
        dns_name: None,
    };
    let (rule, summary) = match protocol_rule(p.protocol) {
        Some(rule) => {
            let allowed = policy
                .egress
                .allowing(
                    &jvm_cmdline(table, &p.lineage),
                    p.dst,
                    p.port,
                    Some(p.protocol),
                )
                .is_some();
            if allowed && !p.blocked {
                return None;
            }
            let what = if rule == Rule::JvmLdapEgress {
                "an LDAP request"
            } else {
                "a Java RMI (JRMP) handshake"
            };
            let mut summary = format!(
                "{name} (pid {}) sent {what} to {} (recognised by payload)",
                jvm.tgid,
                endpoint(p.dst, p.port)
            );
            if let Some(i) = &indicator {
                summary.push_str(&format!(": {i}"));
            }
            if p.blocked {
                summary.push_str("; blocked: the socket's packets are dropped");
            }
            (rule, summary)
        }
        None => {
            let query = protocols::dns::parse_query(&p.sample, !udp)?;
            network.dns_name = Some(query.name.clone());
            let suspicious = policy.dns.suspicious(&query.name);
            let reason = match (
                state.is_resolver(policy, p.lineage.jvm(), p.dst),
                suspicious,
            ) {
                (true, None) => return None,
                (true, Some(why)) => why,
                (false, why) => {
                    let whose = if state.jvm_resolvers.contains_key(&p.lineage.jvm()) {
                        "its own resolvers (its /etc/resolv.conf)"
                    } else {
                        "a resolver of this host"
                    };
                    let mut reason = format!(
                        "sent straight to {}, which is not {whose} (as the JNDI dns:// provider does)",
                        endpoint(p.dst, p.port)
                    );
                    if let Some(why) = why {
                        reason.push_str(&format!("; and {why}"));
                    }
                    reason
                }
            };
            let summary = format!(
                "{name} (pid {}) looked up {:?} ({}): {reason}",
                jvm.tgid, query.name, query.qtype_name
            );
            (Rule::JvmDnsExfil, summary)
        }
    };
    let first = match &network.dns_name {
        Some(name) => remember(&mut state.names, (jvm, name.clone())),
        None => remember(&mut state.alerted, (jvm, p.dst, p.port, rule)),
    };
    if !first {
        return None;
    }
    Some(Detection {
        rule,
        severity: Severity::High,
        summary,
        action: if p.blocked {
            Action::Blocked
        } else {
            Action::Reported
        },
        process: caller(table, p.tgid),
        jvm,
        class: None,
        network: Some(network),
        incident_id: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        events::{LineageRef, Task},
        process_table::Process,
    };

    const JVM: ProcessKey = ProcessKey {
        tgid: 4242,
        start_ns: 77,
    };

    fn policy(text: &str) -> Policy {
        Policy::from_toml(text, std::path::Path::new("test.toml")).expect("test policy")
    }

    fn table(argv: &str) -> ProcessTable {
        let mut t = ProcessTable::new(64);
        t.insert(Process::new(
            JVM,
            1,
            "/usr/lib/jvm/java-17-openjdk-amd64/bin/java".into(),
            argv.split(' ').map(str::to_owned).collect(),
        ));
        t
    }

    fn lineage() -> LineageRef {
        LineageRef {
            jvm_tgid: JVM.tgid,
            jvm_start_ns: JVM.start_ns,
            depth: 0,
        }
    }

    fn connect(dst: &str, port: u16, blocked: bool, cookie: u64) -> Connect {
        Connect {
            time_ns: 1,
            task: Task {
                pid: JVM.tgid,
                tgid: JVM.tgid,
                ppid: 0,
                uid: 0,
                gid: 0,
                start_ns: 0,
                cgroup_id: 1,
                comm: "java".into(),
            },
            lineage: lineage(),
            dst: dst.parse().expect("ip"),
            port,
            transport: Transport::Tcp,
            sendmsg: false,
            port_protocol: None,
            blocked,
            quarantined: false,
            allowed_any_port: false,
            cookie,
        }
    }

    fn payload(dst: &str, port: u16, protocol: NetProtocol, sample: &[u8], cookie: u64) -> Payload {
        Payload {
            time_ns: 2,
            tgid: JVM.tgid,
            lineage: lineage(),
            cookie,
            dst: dst.parse().expect("ip"),
            port,
            transport: if protocol == NetProtocol::Dns {
                Transport::Udp
            } else {
                Transport::Tcp
            },
            protocol,
            blocked: false,
            sample: sample.to_vec(),
        }
    }

    /// What JDK 17's LDAP provider sends first: an anonymous LDAPv3 simple bind.
    const LDAP_BIND: [u8; 14] = [
        0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00,
    ];

    fn dns_query(name: &str) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        q
    }

    #[test]
    fn ldap_by_port_once_per_destination() {
        let p = policy("");
        let t = table("java -jar app.jar");
        let mut s = EgressState::default();
        let d = evaluate_connect(&p, &t, &mut s, &connect("127.0.0.1", 1389, false, 1))
            .expect("ldap alert");
        assert_eq!(d.rule, Rule::JvmLdapEgress);
        assert_eq!(d.severity, Severity::High);
        assert_eq!(d.action, Action::Reported);
        let n = d.network.expect("network");
        assert_eq!(n.protocol, Some(NetProtocol::Ldap));
        assert_eq!(n.recognised_by, Some(RecognisedBy::Port));
        assert_eq!(
            d.summary,
            "java (pid 4242) connected to an LDAP server at 127.0.0.1:1389 (tcp, recognised by port)"
        );
        // The retry is the same attack; its payload adds nothing either.
        assert!(evaluate_connect(&p, &t, &mut s, &connect("127.0.0.1", 1389, false, 2)).is_none());
        let bind = payload("127.0.0.1", 1389, NetProtocol::Ldap, &LDAP_BIND, 1);
        assert!(evaluate_payload(&p, &t, &mut s, &bind).is_none());
    }

    #[test]
    fn rmi_blocked_and_ipv6_endpoint() {
        let p = policy("");
        let t = table("java Main");
        let mut s = EgressState::default();
        let d = evaluate_connect(&p, &t, &mut s, &connect("::1", 1099, true, 1)).expect("alert");
        assert_eq!(d.rule, Rule::JvmRmiEgress);
        assert_eq!(d.action, Action::Blocked);
        assert!(d.summary.contains("at [::1]:1099"), "{}", d.summary);
        assert!(d
            .summary
            .ends_with("; blocked in the kernel before any packet left"));
    }

    #[test]
    fn ldap_by_payload_on_an_allowed_port() {
        let p = policy("");
        let t = table("java Main");
        let mut s = EgressState::default();
        let d = evaluate_payload(
            &p,
            &t,
            &mut s,
            &payload("127.0.0.1", 10389, NetProtocol::Ldap, &LDAP_BIND, 9),
        )
        .expect("alert");
        assert_eq!(d.rule, Rule::JvmLdapEgress);
        assert_eq!(
            d.network.and_then(|n| n.recognised_by),
            Some(RecognisedBy::Payload)
        );
    }

    #[test]
    fn allowlisted_directory_needs_its_port_listed() {
        let p = policy(
            "[[egress.allow]]\napp = \"auth.jar\"\ncidrs = [\"10.20.0.5/32\"]\nports = [636]\n\n[[egress.allow]]\ncidrs = [\"10.0.0.0/8\"]\n",
        );
        let mut s = EgressState::default();
        let auth = table("java -jar auth.jar");
        let shop = table("java -jar shop.jar");
        assert!(
            evaluate_connect(&p, &auth, &mut s, &connect("10.20.0.5", 636, false, 1)).is_none()
        );
        // The broad any-port rule never covers an LDAP port.
        let d = evaluate_connect(&p, &shop, &mut s, &connect("10.20.0.5", 636, false, 2));
        assert_eq!(d.map(|d| d.rule), Some(Rule::JvmLdapEgress));
        // ... but does cover ordinary ports.
        assert!(evaluate_connect(&p, &shop, &mut s, &connect("10.1.2.3", 443, false, 3)).is_none());
    }

    #[test]
    fn unexpected_egress_is_medium_and_can_be_silenced() {
        let t = table("java Main");
        let mut s = EgressState::default();
        let p = policy("");
        let d = evaluate_connect(&p, &t, &mut s, &connect("203.0.113.9", 443, false, 1))
            .expect("alert");
        assert_eq!(d.rule, Rule::JvmUnexpectedEgress);
        assert_eq!(d.severity, Severity::Medium);
        assert_eq!(d.network.and_then(|n| n.protocol), None);
        // Loopback is allowed by the built-in policy.
        assert!(evaluate_connect(&p, &t, &mut s, &connect("127.0.0.1", 8080, false, 2)).is_none());
        let quiet = policy("[egress]\nreport_unexpected = false\n");
        let mut s = EgressState::default();
        assert!(
            evaluate_connect(&quiet, &t, &mut s, &connect("203.0.113.9", 443, false, 1)).is_none()
        );
        // A block is always reported.
        let d = evaluate_connect(&quiet, &t, &mut s, &connect("203.0.113.9", 443, true, 2));
        assert_eq!(d.map(|d| d.action), Some(Action::Blocked));
    }

    #[test]
    fn dns_to_a_non_resolver_is_jndi() {
        let p = policy("");
        let t = table("java Main");
        let mut s = EgressState::new(vec!["127.0.0.53".parse().expect("ip")]);
        // The connect to port 53 itself is judged by its query.
        assert!(evaluate_connect(&p, &t, &mut s, &connect("198.51.100.7", 53, false, 1)).is_none());
        let q = payload(
            "127.0.0.1",
            5353,
            NetProtocol::Dns,
            &dns_query("pwned.example.com"),
            2,
        );
        let d = evaluate_payload(&p, &t, &mut s, &q).expect("alert");
        assert_eq!(d.rule, Rule::JvmDnsExfil);
        let n = d.network.expect("network");
        assert_eq!(n.dns_name.as_deref(), Some("pwned.example.com"));
        assert!(
            d.summary.contains("not a resolver of this host"),
            "{}",
            d.summary
        );
        assert!(!d.summary.contains("; and "), "benign name: {}", d.summary);
        let both = dns_query("AKIAIOSFODNN7EXAMPLE.x.example");
        let d = evaluate_payload(
            &p,
            &t,
            &mut s,
            &payload("127.0.0.1", 5353, NetProtocol::Dns, &both, 3),
        )
        .expect("alert");
        assert!(
            d.summary.contains("not a resolver") && d.summary.contains("; and "),
            "{}",
            d.summary
        );
        // The same name again is the same alert.
        assert!(evaluate_payload(&p, &t, &mut s, &q).is_none());
    }

    #[test]
    fn dns_to_the_resolver_only_alerts_on_suspicious_names() {
        let p = policy("");
        let t = table("java Main");
        let mut s = EgressState::new(vec!["127.0.0.53".parse().expect("ip")]);
        let benign = payload(
            "127.0.0.53",
            53,
            NetProtocol::Dns,
            &dns_query("repo.maven.apache.org"),
            1,
        );
        assert!(evaluate_payload(&p, &t, &mut s, &benign).is_none());
        let secret = dns_query("AKIAIOSFODNN7EXAMPLE.exfil.example");
        let d = evaluate_payload(
            &p,
            &t,
            &mut s,
            &payload("127.0.0.53", 53, NetProtocol::Dns, &secret, 2),
        )
        .expect("alert");
        assert_eq!(d.rule, Rule::JvmDnsExfil);
        assert!(d.summary.contains("AKIAIOSFODNN7EXAMPLE"), "{}", d.summary);
    }

    #[test]
    fn a_jvm_is_judged_by_its_own_resolvers_once_known() {
        let p = policy("");
        let t = table("java Main");
        let mut s = EgressState::new(vec!["127.0.0.53".parse().expect("ip")]);
        let to_cluster_dns = |cookie| {
            payload(
                "10.96.0.10",
                53,
                NetProtocol::Dns,
                &dns_query("db.default.svc.cluster.local"),
                cookie,
            )
        };
        // Judged by the host's resolvers, the pod's cluster DNS is a stranger.
        let d = evaluate_payload(&p, &t, &mut s, &to_cluster_dns(1)).expect("alert");
        assert!(
            d.summary.contains("not a resolver of this host"),
            "{}",
            d.summary
        );
        s.forget_jvm(JVM);

        // With the JVM's own resolvers known, the same query is ordinary...
        s.set_resolvers(JVM, vec!["10.96.0.10".parse().expect("ip")]);
        assert_eq!(
            s.resolvers_of(JVM),
            ["10.96.0.10".parse::<IpAddr>().expect("ip")]
        );
        assert!(evaluate_payload(&p, &t, &mut s, &to_cluster_dns(2)).is_none());
        // ...the host's resolver is not the JVM's...
        let to_host = payload(
            "127.0.0.53",
            53,
            NetProtocol::Dns,
            &dns_query("x.example"),
            3,
        );
        let d = evaluate_payload(&p, &t, &mut s, &to_host).expect("alert");
        assert!(d.summary.contains("not its own resolvers"), "{}", d.summary);
        // ...and a secret in the name is still exfiltration.
        let secret = dns_query("AKIAIOSFODNN7EXAMPLE.exfil.example");
        let d = evaluate_payload(
            &p,
            &t,
            &mut s,
            &payload("10.96.0.10", 53, NetProtocol::Dns, &secret, 4),
        )
        .expect("alert");
        assert!(d.summary.contains("AKIAIOSFODNN7EXAMPLE"), "{}", d.summary);

        // Other JVMs keep the host's; an exited JVM's resolvers are forgotten.
        let other = ProcessKey {
            tgid: 99,
            start_ns: 99,
        };
        assert_eq!(s.resolvers_of(other), s.host_resolvers());
        s.forget_jvm(JVM);
        assert_eq!(s.resolvers_of(JVM), s.host_resolvers());
    }
}
