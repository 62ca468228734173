//! How a policy judges an outbound connection: the userspace twin of the kernel's egress
//! programs, and the entries the daemon loads into their `NET_ALLOW` trie.
//!
//! The kernel looks the destination up in an LPM trie keyed by JVM and address, twice: under
//! the JVM's own tgid (its app-scoped rules) and under tgid 0 (the rules for every JVM); either
//! may allow. [`EgressPolicy::allowing`] is the same decision over the rules themselves, so
//! keep both exact and simple: a difference here means an alert that explains something other
//! than what the kernel did.

use std::collections::BTreeSet;
use std::net::IpAddr;

use detector_common::{NetAllow, NetKey, ALLOW_F_ANY_PORT, ALLOW_PORTS};

use super::cidr::Cidr;
use super::error::KernelAllowError;
use super::{EgressPolicy, NetAllowRule};
use crate::vocab::NetProtocol;

/// A key of the kernel's `NET_ALLOW` LPM trie with its prefix length, as
/// `aya::maps::lpm_trie::Key::new(prefix_len, key)` takes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NetKeyPrefix {
    /// Bits of `key` that must match: 32 (the JVM) plus the network's prefix in IPv6 terms.
    pub prefix_len: u32,
    /// The JVM's tgid (0 = every JVM), big-endian, then the 16-byte network address.
    pub key: NetKey,
}

impl NetKeyPrefix {
    /// The key for `cidr` in the scope of JVM `jvm_tgid` (0 = every JVM).
    pub fn new(jvm_tgid: u32, cidr: &Cidr) -> NetKeyPrefix {
        let mut key = [0u8; 20];
        key[..4].copy_from_slice(&jvm_tgid.to_be_bytes());
        key[4..].copy_from_slice(&cidr.addr());
        NetKeyPrefix {
            prefix_len: 32 + u32::from(cidr.prefix()),
            key,
        }
    }
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

    /// What to load into the kernel's `NET_ALLOW` trie for one scope: `(0, None)` gives the
    /// entries of the rules for every JVM (no `app`), `(tgid, Some(cmdline))` those of the
    /// app-scoped rules that apply to the JVM `tgid` with that command line. Other
    /// combinations are a caller's mistake: the rules are picked by `jvm_cmdline` alone and
    /// keyed by `jvm_tgid`.
    ///
    /// A trie lookup returns only the longest matching network, so the entries are merged:
    /// there is one entry per distinct network of the scope's rules, and it carries the union
    /// of every rule of the scope with a network that contains it ([`ALLOW_F_ANY_PORT`] when
    /// any of them has no `ports`, and all of their ports). The result is sorted by network.
    ///
    /// Fails when such a union names more than [`ALLOW_PORTS`] ports.
    pub fn kernel_allow_entries(
        &self,
        jvm_tgid: u32,
        jvm_cmdline: Option<&str>,
    ) -> Result<Vec<(NetKeyPrefix, NetAllow)>, KernelAllowError> {
        let in_scope: Vec<(usize, &NetAllowRule)> = self
            .allow
            .iter()
            .enumerate()
            .filter(|(_, rule)| match (jvm_cmdline, &rule.app) {
                (None, None) => true,
                (Some(cmdline), Some(app)) => cmdline.contains(app.as_str()),
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
                let mut value = NetAllow {
                    flags: if any_port { ALLOW_F_ANY_PORT } else { 0 },
                    // At most ALLOW_PORTS (8): checked above.
                    nports: ports.len() as u32,
                    ports: [0; ALLOW_PORTS],
                };
                for (slot, port) in value.ports.iter_mut().zip(ports) {
                    *slot = port;
                }
                Ok((NetKeyPrefix::new(jvm_tgid, &network), value))
            })
            .collect()
    }
}

// === impl NetAllowRule ===

impl NetAllowRule {
    /// Whether the rule covers the JVM with this command line: every JVM when `app` is absent,
    /// else those whose command line contains `app`.
    pub fn applies_to(&self, jvm_cmdline: &str) -> bool {
        self.app
            .as_deref()
            .is_none_or(|app| jvm_cmdline.contains(app))
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
mod tests {
    use super::*;

    fn egress() -> EgressPolicy {
        crate::policy::Policy::builtin().egress
    }

    fn rule(app: Option<&str>, cidrs: &[&str], ports: Option<&[u16]>) -> NetAllowRule {
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

    fn key(jvm_tgid: u32, cidr: &str) -> NetKeyPrefix {
        NetKeyPrefix::new(jvm_tgid, &Cidr::parse(cidr).expect("test cidr"))
    }

    fn value(any_port: bool, ports: &[u16]) -> NetAllow {
        let mut value = NetAllow {
            flags: if any_port { ALLOW_F_ANY_PORT } else { 0 },
            nports: ports.len() as u32,
            ports: [0; ALLOW_PORTS],
        };
        value.ports[..ports.len()].copy_from_slice(ports);
        value
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

    #[test]
    fn kernel_entries_merge_nested_networks() {
        let mut p = egress();
        p.allow = vec![
            rule(None, &["10.0.0.0/8"], None),
            rule(None, &["10.0.0.5/32"], Some(&[636])),
        ];
        let entries = p.kernel_allow_entries(0, None).expect("fits");
        assert_eq!(
            entries,
            [
                // The /8 entry knows nothing of the /32 rule's port.
                (key(0, "10.0.0.0/8"), value(true, &[])),
                // The /32 is the longest match for 10.0.0.5: it carries the /8's any-port too.
                (key(0, "10.0.0.5/32"), value(true, &[636])),
            ]
        );
        assert_eq!(entries[0].0.prefix_len, 32 + 96 + 8);
        assert_eq!(entries[1].0.prefix_len, 32 + 128);
        assert_eq!(
            entries[1].0.key,
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 5]
        );
    }

    #[test]
    fn kernel_entries_v6_dedup_and_port_union() {
        let mut p = egress();
        p.allow = vec![
            rule(None, &["fd00::/8", "10.1.0.0/16"], Some(&[443, 8443])),
            rule(None, &["fd00::/8"], Some(&[80, 443])),
            rule(None, &["fd00:1::/32"], Some(&[22])),
            // ::/0 covers the IPv4-mapped range too, as it does in the kernel.
            rule(None, &["::/0"], Some(&[53])),
        ];
        let entries = p.kernel_allow_entries(0, None).expect("fits");
        assert_eq!(
            entries,
            [
                (key(0, "::/0"), value(false, &[53])),
                (key(0, "10.1.0.0/16"), value(false, &[53, 443, 8443])),
                // Two rules with the same network: one entry, their ports merged once.
                (key(0, "fd00::/8"), value(false, &[53, 80, 443, 8443])),
                (
                    key(0, "fd00:1::/32"),
                    value(false, &[22, 53, 80, 443, 8443])
                ),
            ]
        );
    }

    #[test]
    fn kernel_entries_per_scope() {
        let mut p = egress();
        p.allow = vec![
            rule(None, &["127.0.0.0/8"], None),
            rule(Some("auth-service.jar"), &["10.20.0.5"], Some(&[636])),
            rule(Some("billing.jar"), &["10.30.0.0/16"], None),
        ];
        let global = p.kernel_allow_entries(0, None).expect("fits");
        assert_eq!(global, [(key(0, "127.0.0.0/8"), value(true, &[]))]);

        let auth = p
            .kernel_allow_entries(4242, Some("java -jar /srv/auth-service.jar"))
            .expect("fits");
        assert_eq!(auth, [(key(4242, "10.20.0.5/32"), value(false, &[636]))]);
        assert_eq!(&auth[0].0.key[..4], &[0, 0, 0x10, 0x92]);

        let other = p
            .kernel_allow_entries(7, Some("java -jar shop.jar"))
            .expect("fits");
        assert!(other.is_empty());
    }

    #[test]
    fn kernel_entries_refuse_more_ports_than_an_entry_holds() {
        let mut p = egress();
        p.allow = vec![
            rule(None, &["10.0.0.0/8"], Some(&[1, 2, 3, 4, 5])),
            rule(None, &["192.168.0.0/16"], Some(&[6, 7, 8, 9])),
            rule(None, &["10.0.0.5"], Some(&[5, 6, 7, 8, 9])),
        ];
        let err = p.kernel_allow_entries(0, None).expect_err("9 ports");
        assert_eq!(
            err,
            KernelAllowError::TooManyPorts {
                cidr: Cidr::parse("10.0.0.5").expect("cidr"),
                rules: vec![0, 2],
                ports: vec![1, 2, 3, 4, 5, 6, 7, 8, 9],
            }
        );
        assert!(err.to_string().starts_with(
            "10.0.0.5/32: egress.allow[0] and egress.allow[2] together allow 9 ports"
        ));
    }
}
