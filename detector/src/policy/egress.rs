//! How a policy judges an outbound connection: the userspace twin of the kernel's egress
//! programs, and what their `NET_ALLOW` trie must hold (encoded in `sensors::encode`).
//!
//! The kernel looks the destination up in an LPM trie keyed by JVM and address, twice: under
//! the JVM's own tgid (its app-scoped rules) and under tgid 0 (the rules for every JVM); either
//! may allow. [`EgressPolicy::allowing`] is the same decision over the rules themselves, so
//! keep both exact and simple: a difference here means an alert that explains something other
//! than what the kernel did.

use std::collections::BTreeSet;
use std::net::IpAddr;

use detector_common::ALLOW_PORTS;

use super::cidr::Cidr;
use super::error::KernelAllowError;
use super::{EgressPolicy, NetAllowRule};
use crate::vocab::NetProtocol;

/// What one network of an allowlist scope allows, merged over every rule of the scope
/// whose networks contain it: the content of one kernel `NET_ALLOW` entry (see
/// `sensors::encode`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowUnion {
    pub network: Cidr,
    /// A rule without `ports` covers it.
    pub any_port: bool,
    /// The ports of the rules with `ports`, sorted, at most [`ALLOW_PORTS`].
    pub ports: Vec<u16>,
}

// === impl EgressPolicy ===

impl EgressPolicy {
    /// The protocol a destination port is configured as, if any (a port is in at most one of
    /// the lists: validation ensures it).
    pub fn port_class(&self, port: u16) -> Option<NetProtocol> {
        [
            (&self.ldap_ports, NetProtocol::Ldap),
            (&self.rmi_ports, NetProtocol::Rmi),
            (&self.dns_ports, NetProtocol::Dns),
        ]
        .into_iter()
        .find(|(ports, _)| ports.contains(&port))
        .map(|(_, protocol)| protocol)
    }

    /// The first allow rule that lets the JVM with command line `jvm_cmdline` (argv joined by
    /// single spaces) reach `ip`:`port`, if any. `protocol` is what the port or the payload
    /// was recognised as: a rule without `ports` never allows LDAP or RMI.
    pub fn allowing(
        &self,
        jvm_cmdline: &str,
        ip: IpAddr,
        port: u16,
        protocol: Option<NetProtocol>,
    ) -> Option<&NetAllowRule> {
        self.allow
            .iter()
            .find(|rule| rule.applies_to(jvm_cmdline) && rule.allows(ip, port, protocol))
    }

    /// What the kernel's `NET_ALLOW` trie must hold for one scope: `None` gives the unions
    /// of the rules for every JVM (no `app`), `Some(cmdline)` those of the app-scoped rules
    /// that apply to the JVM with that command line.
    ///
    /// A trie lookup returns only the longest matching network, so the rules are merged:
    /// there is one union per distinct network of the scope's rules, and it carries every
    /// rule of the scope with a network that contains it (any port when any of them has no
    /// `ports`, and all of their ports). The result is sorted by network.
    ///
    /// Fails when such a union names more than [`ALLOW_PORTS`] ports.
    pub fn allow_unions(
        &self,
        jvm_cmdline: Option<&str>,
    ) -> Result<Vec<AllowUnion>, KernelAllowError> {
        let in_scope: Vec<(usize, &NetAllowRule)> = self
            .allow
            .iter()
            .enumerate()
            .filter(|(_, rule)| match (jvm_cmdline, &rule.app) {
                (None, None) => true,
                (Some(cmdline), Some(_)) => rule.applies_to(cmdline),
                _ => false,
            })
            .collect();
        let networks: BTreeSet<Cidr> = in_scope
            .iter()
            .flat_map(|(_, rule)| rule.cidrs.iter().copied())
            .collect();

        networks
            .into_iter()
            .map(|network| {
                let mut any_port = false;
                let mut ports = BTreeSet::new();
                let mut rules = Vec::new();
                for (index, rule) in &in_scope {
                    if !rule.cidrs.iter().any(|cidr| cidr.covers(&network)) {
                        continue;
                    }
                    rules.push(*index);
                    match &rule.ports {
                        None => any_port = true,
                        Some(list) => ports.extend(list.iter().copied()),
                    }
                }
                if ports.len() > ALLOW_PORTS {
                    return Err(KernelAllowError::TooManyPorts {
                        cidr: network,
                        rules,
                        ports: ports.into_iter().collect(),
                    });
                }
                Ok(AllowUnion {
                    network,
                    any_port,
                    ports: ports.into_iter().collect(),
                })
            })
            .collect()
    }
}

// === impl NetAllowRule ===

impl NetAllowRule {
    /// Whether the rule covers the JVM with this command line: every JVM when `app` is absent,
    /// else those whose command line contains `app`.
    pub fn applies_to(&self, jvm_cmdline: &str) -> bool {
        super::matching::app_applies(self.app.as_deref(), jvm_cmdline)
    }

    /// Whether the rule lets a JVM it applies to reach `ip`:`port` speaking `protocol`: one
    /// of its networks contains `ip` (`::ffff:a.b.c.d` counts as `a.b.c.d`), and it lists
    /// `port`, or it lists no ports and `protocol` is neither LDAP nor RMI.
    pub fn allows(&self, ip: IpAddr, port: u16, protocol: Option<NetProtocol>) -> bool {
        // `Cidr::contains` compares the 16-byte form, in which both spellings are one address.
        self.cidrs.iter().any(|cidr| cidr.contains(&ip))
            && match &self.ports {
                Some(ports) => ports.contains(&port),
                None => !needs_explicit_port(protocol),
            }
    }
}

/// LDAP and RMI are how JNDI fetches an attacker's object: an allow rule only lets them
/// through on a port it lists.
fn needs_explicit_port(protocol: Option<NetProtocol>) -> bool {
    matches!(protocol, Some(NetProtocol::Ldap | NetProtocol::Rmi))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn egress() -> EgressPolicy {
        crate::policy::Policy::builtin().egress
    }

    /// An allow rule from plain literals (also used by `sensors::encode`'s tests).
    pub(crate) fn rule(app: Option<&str>, cidrs: &[&str], ports: Option<&[u16]>) -> NetAllowRule {
        NetAllowRule {
            app: app.map(str::to_owned),
            cidrs: cidrs
                .iter()
                .map(|c| Cidr::parse(c).expect("test cidr"))
                .collect(),
            ports: ports.map(<[u16]>::to_vec),
            reason: None,
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    #[test]
    fn port_classes_come_from_the_lists() {
        let p = egress();
        assert_eq!(p.port_class(389), Some(NetProtocol::Ldap));
        assert_eq!(p.port_class(1389), Some(NetProtocol::Ldap));
        assert_eq!(p.port_class(1099), Some(NetProtocol::Rmi));
        assert_eq!(p.port_class(53), Some(NetProtocol::Dns));
        assert_eq!(p.port_class(443), None);
    }

    #[test]
    fn default_allows_loopback_but_not_ldap_or_rmi_on_it() {
        let p = egress();
        let shop = "java -jar shop.jar";
        assert!(p.allowing(shop, ip("127.0.0.1"), 8080, None).is_some());
        assert!(p.allowing(shop, ip("127.1.2.3"), 5432, None).is_some());
        assert!(p.allowing(shop, ip("::1"), 8080, None).is_some());
        assert!(p
            .allowing(shop, ip("::ffff:127.0.0.1"), 8080, None)
            .is_some());
        // LDAP/RMI to a local rogue server: by port, and by payload on an ordinary port.
        assert!(p
            .allowing(shop, ip("127.0.0.1"), 1389, p.port_class(1389))
            .is_none());
        assert!(p
            .allowing(shop, ip("127.0.0.1"), 8080, Some(NetProtocol::Ldap))
            .is_none());
        assert!(p
            .allowing(shop, ip("::1"), 8080, Some(NetProtocol::Rmi))
            .is_none());
        // DNS is not LDAP or RMI: a local resolver needs no explicit port.
        assert!(p
            .allowing(shop, ip("127.0.0.53"), 53, Some(NetProtocol::Dns))
            .is_some());
        assert!(p.allowing(shop, ip("10.0.0.1"), 443, None).is_none());
    }

    #[test]
    fn allowing_by_app_network_and_port() {
        let mut p = egress();
        p.allow = vec![
            rule(Some("auth-service.jar"), &["10.20.0.5"], Some(&[636])),
            rule(None, &["10.0.0.0/8", "fd00::/8"], None),
        ];
        let auth = "java -Xmx512m -jar /srv/auth-service.jar";
        let shop = "java -jar shop.jar";
        let ldaps = Some(NetProtocol::Ldap);

        // Only the auth service may do LDAP, only to the directory, only on 636.
        assert_eq!(
            p.allowing(auth, ip("10.20.0.5"), 636, ldaps),
            Some(&p.allow[0])
        );
        assert_eq!(p.allowing(auth, ip("10.20.0.5"), 389, ldaps), None);
        assert_eq!(p.allowing(auth, ip("10.20.0.6"), 636, ldaps), None);
        assert_eq!(p.allowing(shop, ip("10.20.0.5"), 636, ldaps), None);
        // The broad rule allows ordinary traffic, never LDAP.
        assert_eq!(
            p.allowing(shop, ip("10.20.0.5"), 443, None),
            Some(&p.allow[1])
        );
        assert_eq!(
            p.allowing(shop, ip("fd00::7"), 443, None),
            Some(&p.allow[1])
        );
        assert_eq!(
            p.allowing(shop, ip("::ffff:10.1.1.1"), 443, None),
            Some(&p.allow[1])
        );
        assert_eq!(p.allowing(shop, ip("10.9.9.9"), 1389, ldaps), None);
        // A listed port allows whatever the payload is, also on the auth service's own port.
        assert_eq!(
            p.allowing(auth, ip("10.20.0.5"), 636, Some(NetProtocol::Rmi)),
            Some(&p.allow[0])
        );
        // An explicit port list does not allow other ports, LDAP or not.
        assert_eq!(
            p.allowing(auth, ip("10.20.0.5"), 22, None),
            Some(&p.allow[1])
        );
        p.allow.truncate(1);
        assert_eq!(p.allowing(auth, ip("10.20.0.5"), 22, None), None);
    }
}
