//! The policy in the kernel's terms, in one place: the `CONFIG` record, the lookup maps
//! loaded at start-up and on a reload ([`PolicyMaps`]), the `EXEC_ALLOW` keys of programs and the
//! `NET_ALLOW` entries of egress rules, global or per JVM.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use aya::{
    maps::{lpm_trie::Key, Array, HashMap, LpmTrie, MapData},
    Ebpf,
};
use detector_common::{
    comm_key, comm_words, fnv1a, prefix_words, AllowKey, Config, NetAllow, NetKey,
    ALLOW_F_ANY_PORT, ALLOW_PORTS, CFG_F_BLOCK_CLASS, CFG_F_BLOCK_LDAP_RMI, CFG_F_BLOCK_UNEXPECTED,
    CFG_F_ENFORCE, CFG_F_JVM_PATHS, CFG_F_LAUNCHER_MAP, CFG_F_LIBJVM, CFG_F_QUARANTINE,
    CFG_F_SCOPED, CFG_F_WRITABLE_MAP, COMM_LEN, LAUNCHER_SLOTS, PREFIX_LEN, WRITABLE_SLOTS,
};

use super::{map, map_err, Scope, SensorError};
use crate::{
    policy::{AllowUnion, Cidr, KernelAllowError, Mode, NetAllowRule, Policy},
    vocab::{NetProtocol, ProgramClass},
};

/// The `CONFIG` record: mode and blocking flags, the scope, and the launcher names and
/// writable directories compared inline when they fit.
pub fn config(policy: &Policy, scope: &Scope) -> Config {
    let mut flags = 0;
    if policy.mode == Mode::Enforce {
        flags |= CFG_F_ENFORCE;
    }
    if scope.level > 0 {
        flags |= CFG_F_SCOPED;
    }
    if !policy.jvm.launcher_paths.is_empty() {
        flags |= CFG_F_JVM_PATHS;
    }
    if policy.jvm.recognise_libjvm {
        flags |= CFG_F_LIBJVM;
    }
    let launchers = launcher_slots(policy);
    let writable: Option<Vec<_>> = (policy.exec.writable_dirs.len() <= WRITABLE_SLOTS)
        .then(|| {
            policy
                .exec
                .writable_dirs
                .iter()
                .map(|d| prefix_words(d.as_bytes()))
                .collect()
        })
        .flatten();
    if writable.is_none() {
        flags |= CFG_F_WRITABLE_MAP;
    }
    if launchers.is_none() {
        flags |= CFG_F_LAUNCHER_MAP;
    }
    if policy.egress.block_ldap_rmi {
        flags |= CFG_F_BLOCK_LDAP_RMI;
    }
    if policy.egress.block_unexpected {
        flags |= CFG_F_BLOCK_UNEXPECTED;
    }
    if policy.egress.quarantine {
        flags |= CFG_F_QUARANTINE;
    }
    // Class bytes arriving on a connection a JVM made are the attack's third stage;
    // explicitly allowlisted destinations are never watched, so they are never dropped.
    if policy.mode == Mode::Enforce {
        flags |= CFG_F_BLOCK_CLASS;
    }
    let mut config = Config {
        flags,
        scope_level: scope.level,
        scope_cgroup_id: scope.id,
        ..Config::default()
    };
    if let Some(slots) = launchers {
        for (i, (key, from_path)) in slots.iter().enumerate() {
            config.launchers[i] = comm_words(key);
            if *from_path {
                config.launcher_paths |= 1 << i;
            }
        }
        config.n_launchers = slots.len() as u32;
    }
    if let Some(prefixes) = writable {
        for (i, (words, masks)) in prefixes.iter().enumerate() {
            config.writable[i] = *words;
            config.writable_masks[i] = *masks;
        }
        config.n_writable = prefixes.len() as u32;
    }
    config
}

/// The launcher names `comm` is compared with inline (`Config::launchers`): each name, and
/// the basename of each launcher path (flagged, to be confirmed by the path's hash), as
/// `comm` holds them. `None` when they do not fit: the kernel then looks names up in
/// `JVM_NAMES` instead.
fn launcher_slots(policy: &Policy) -> Option<Vec<([u8; COMM_LEN], bool)>> {
    let mut slots: Vec<([u8; COMM_LEN], bool)> = Vec::new();
    for name in &policy.jvm.launchers {
        let key = comm_key(name.as_bytes());
        if !slots.iter().any(|(k, _)| *k == key) {
            slots.push((key, false));
        }
    }
    for path in &policy.jvm.launcher_paths {
        let base = crate::policy::basename(path);
        let key = comm_key(base.as_bytes());
        if !slots.iter().any(|(k, _)| *k == key) {
            slots.push((key, true));
        }
    }
    (slots.len() <= LAUNCHER_SLOTS).then_some(slots)
}

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
    /// The key as aya's trie map takes it.
    pub fn trie_key(&self) -> Key<NetKey> {
        Key::new(self.prefix_len, self.key)
    }

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

/// The `NET_ALLOW` entry of one union of rules, in the scope of JVM `jvm_tgid` (0: every JVM).
fn net_allow(jvm_tgid: u32, union: &AllowUnion) -> (NetKeyPrefix, NetAllow) {
    let mut value = NetAllow {
        flags: if union.any_port { ALLOW_F_ANY_PORT } else { 0 },
        // At most ALLOW_PORTS (8): `allow_unions` refuses more.
        nports: union.ports.len() as u32,
        ports: [0; ALLOW_PORTS],
    };
    for (slot, port) in value.ports.iter_mut().zip(&union.ports) {
        *slot = *port;
    }
    (NetKeyPrefix::new(jvm_tgid, &union.network), value)
}

/// What to load into the kernel's `NET_ALLOW` trie for one scope: `(0, None)` gives the
/// entries of the rules for every JVM (no `app`), `(tgid, Some(cmdline))` those of the
/// app-scoped rules that apply to the JVM `tgid` with that command line (see
/// [`crate::policy::EgressPolicy::allow_unions`]). Sorted by network.
pub fn net_entries(
    policy: &Policy,
    jvm_tgid: u32,
    jvm_cmdline: Option<&str>,
) -> Result<Vec<(NetKeyPrefix, NetAllow)>, KernelAllowError> {
    Ok(policy
        .egress
        .allow_unions(jvm_cmdline)?
        .iter()
        .map(|union| net_allow(jvm_tgid, union))
        .collect())
}

/// The global entries, plus the host's own resolvers on the DNS ports: a JVM resolving a
/// name is ordinary (its query names are still inspected in the kernel).
pub fn global_net_entries(
    policy: &Policy,
    resolvers: &[IpAddr],
) -> Result<Vec<(NetKeyPrefix, NetAllow)>, KernelAllowError> {
    let mut with_resolvers = policy.clone();
    with_resolvers.egress.allow.extend(resolver_rules(
        policy,
        resolvers,
        None,
        "a resolver of this host (/etc/resolv.conf)",
    ));
    net_entries(&with_resolvers, 0, None)
}

/// The entries of one JVM: those of the app-scoped rules that apply to its command line
/// (none when it is unknown), plus its own resolvers on the DNS ports when its mount
/// namespace has resolvers the host's entries do not cover (a container's or a pod's).
pub fn jvm_net_entries(
    policy: &Policy,
    jvm_tgid: u32,
    jvm_cmdline: Option<&str>,
    own_resolvers: &[IpAddr],
) -> Result<Vec<(NetKeyPrefix, NetAllow)>, KernelAllowError> {
    let mut with_resolvers = policy.clone();
    // `app = ""` is in every JVM's command line: the rule applies to this JVM's scope, whose
    // unions then merge it with the app-scoped rules on the same networks.
    with_resolvers.egress.allow.extend(resolver_rules(
        policy,
        own_resolvers,
        Some(String::new()),
        "a resolver of this JVM's mount namespace (its /etc/resolv.conf)",
    ));
    net_entries(
        &with_resolvers,
        jvm_tgid,
        Some(jvm_cmdline.unwrap_or_default()),
    )
}

/// Allow rules for DNS to `resolvers` on the policy's DNS ports.
fn resolver_rules(
    policy: &Policy,
    resolvers: &[IpAddr],
    app: Option<String>,
    reason: &str,
) -> Vec<NetAllowRule> {
    let mut ports = policy.egress.dns_ports.clone();
    ports.sort_unstable();
    ports.dedup();
    ports.truncate(ALLOW_PORTS);
    resolvers
        .iter()
        .map(|ip| NetAllowRule {
            app: app.clone(),
            cidrs: vec![Cidr::host(*ip)],
            ports: Some(ports.clone()),
            reason: Some(reason.to_owned()),
        })
        .collect()
}

/// The programs (for `EXEC_ALLOW` under the JVM's tgid) the policy's app-scoped allow rules
/// grant the JVM with this command line.
pub fn app_programs(policy: &Policy, jvm_cmdline: &str) -> Vec<String> {
    policy
        .exec
        .allow
        .iter()
        .filter(|r| r.app.is_some() && r.applies_to(jvm_cmdline))
        .flat_map(|r| r.programs.iter().cloned())
        .collect()
}

/// The `EXEC_ALLOW` key of a program: the hash of its full path, or of its name as the
/// kernel sees it (`comm`, cut at 15 bytes).
pub(super) fn allow_key(jvm_tgid: u32, program: &str) -> AllowKey {
    let hash = if program.contains('/') {
        fnv1a(program.as_bytes())
    } else {
        fnv1a(&comm_key(program.as_bytes()))
    };
    AllowKey {
        jvm_tgid,
        _pad: 0,
        hash,
    }
}

/// What the policy puts in the kernel's lookup maps (the global scope), as data: loaded at
/// start-up, and compared with the running policy's on a reload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyMaps {
    /// `PORT_CLASS`: destination port -> `PROTO_*`.
    pub port_class: BTreeMap<u32, u32>,
    /// `JVM_NAMES`: launcher names as `comm`.
    pub jvm_names: BTreeSet<[u8; COMM_LEN]>,
    /// `JVM_PATHS`: hashes of launcher paths.
    pub jvm_paths: BTreeSet<u64>,
    /// `EXEC_CLASS`: program names as `comm` -> class code.
    pub exec_class: BTreeMap<[u8; COMM_LEN], u32>,
    /// `WRITABLE_DIRS`: (prefix length in bits, directory prefix).
    pub writable_dirs: BTreeSet<(u32, [u8; PREFIX_LEN])>,
    /// `EXEC_ALLOW` entries for every JVM (`app`-less rules).
    pub exec_allow: Vec<AllowKey>,
}

impl PolicyMaps {
    pub fn of(policy: &Policy) -> PolicyMaps {
        let mut maps = PolicyMaps::default();
        let port_lists = [
            (&policy.egress.ldap_ports, NetProtocol::Ldap),
            (&policy.egress.rmi_ports, NetProtocol::Rmi),
            (&policy.egress.dns_ports, NetProtocol::Dns),
        ];
        for (list, protocol) in port_lists {
            for port in list {
                maps.port_class.insert(u32::from(*port), protocol.code());
            }
        }
        for launcher in &policy.jvm.launchers {
            maps.jvm_names.insert(comm_key(launcher.as_bytes()));
        }
        for path in &policy.jvm.launcher_paths {
            maps.jvm_paths.insert(fnv1a(path.as_bytes()));
        }
        // Keyed as the kernel sees a program's name: `comm`, cut at 15 bytes.
        let lists = [
            (&policy.exec.shells, ProgramClass::Shell),
            (&policy.exec.interpreters, ProgramClass::Interpreter),
            (&policy.exec.downloaders, ProgramClass::Downloader),
        ];
        for (list, class) in lists {
            for name in list {
                maps.exec_class
                    .insert(comm_key(name.as_bytes()), class.code());
            }
        }
        if policy.exec.memfd {
            maps.exec_class
                .insert(comm_key(b"/memfd"), ProgramClass::Memfd.code());
        }
        for dir in &policy.exec.writable_dirs {
            let mut data = [0u8; PREFIX_LEN];
            let n = dir.len().min(PREFIX_LEN);
            data[..n].copy_from_slice(&dir.as_bytes()[..n]);
            maps.writable_dirs.insert(((n * 8) as u32, data));
        }
        for rule in policy.exec.allow.iter().filter(|r| r.app.is_none()) {
            for p in &rule.programs {
                let key = allow_key(0, p);
                if !maps.exec_allow.contains(&key) {
                    maps.exec_allow.push(key);
                }
            }
        }
        maps
    }
}

/// Makes the lookup maps hold `new` where they held `old` (empty at start-up): every new
/// entry goes in first, then the entries only `old` had come out, so a lookup in between
/// sees either policy's answer for each key, never a gap where both have one. The maps of
/// `allow` (`EXEC_ALLOW`) is passed apart: the sensors own it once started.
pub(super) fn sync_policy_maps(
    ebpf: &mut Ebpf,
    allow: Option<&mut HashMap<MapData, AllowKey, u32>>,
    old: &PolicyMaps,
    new: &PolicyMaps,
) -> Result<(), SensorError> {
    let mut ports =
        Array::<_, u32>::try_from(map(ebpf, "PORT_CLASS")?).map_err(map_err("PORT_CLASS"))?;
    for (port, code) in &new.port_class {
        ports.set(*port, *code, 0).map_err(map_err("PORT_CLASS"))?;
    }
    for port in old
        .port_class
        .keys()
        .filter(|p| !new.port_class.contains_key(p))
    {
        ports.set(*port, 0, 0).map_err(map_err("PORT_CLASS"))?;
    }

    let mut names = HashMap::<_, [u8; COMM_LEN], u32>::try_from(map(ebpf, "JVM_NAMES")?)
        .map_err(map_err("JVM_NAMES"))?;
    sync_set(&mut names, &old.jvm_names, &new.jvm_names, "JVM_NAMES")?;
    let mut paths =
        HashMap::<_, u64, u32>::try_from(map(ebpf, "JVM_PATHS")?).map_err(map_err("JVM_PATHS"))?;
    sync_set(&mut paths, &old.jvm_paths, &new.jvm_paths, "JVM_PATHS")?;

    let mut classes = HashMap::<_, [u8; COMM_LEN], u32>::try_from(map(ebpf, "EXEC_CLASS")?)
        .map_err(map_err("EXEC_CLASS"))?;
    for (name, code) in &new.exec_class {
        classes
            .insert(name, code, 0)
            .map_err(map_err("EXEC_CLASS"))?;
    }
    for name in old
        .exec_class
        .keys()
        .filter(|n| !new.exec_class.contains_key(*n))
    {
        let _ = classes.remove(name);
    }

    let mut dirs = LpmTrie::<_, [u8; PREFIX_LEN], u32>::try_from(map(ebpf, "WRITABLE_DIRS")?)
        .map_err(map_err("WRITABLE_DIRS"))?;
    for (bits, data) in &new.writable_dirs {
        dirs.insert(&Key::new(*bits, *data), 1, 0)
            .map_err(map_err("WRITABLE_DIRS"))?;
    }
    for (bits, data) in old.writable_dirs.difference(&new.writable_dirs) {
        let _ = dirs.remove(&Key::new(*bits, *data));
    }

    match allow {
        Some(allow) => sync_allow(allow, old, new),
        None => {
            let mut allow = HashMap::<_, AllowKey, u32>::try_from(map(ebpf, "EXEC_ALLOW")?)
                .map_err(map_err("EXEC_ALLOW"))?;
            sync_allow(&mut allow, old, new)
        }
    }
}

/// `EXEC_ALLOW`'s global entries made to be `new`'s; per-JVM entries are not touched.
fn sync_allow<T: std::borrow::BorrowMut<MapData>>(
    allow: &mut HashMap<T, AllowKey, u32>,
    old: &PolicyMaps,
    new: &PolicyMaps,
) -> Result<(), SensorError> {
    for key in &new.exec_allow {
        allow.insert(key, 1, 0).map_err(map_err("EXEC_ALLOW"))?;
    }
    for key in old
        .exec_allow
        .iter()
        .filter(|k| !new.exec_allow.contains(k))
    {
        let _ = allow.remove(key);
    }
    Ok(())
}

/// A set-valued hash map (value 1) made to hold `new` instead of `old`.
fn sync_set<T, K>(
    map: &mut HashMap<T, K, u32>,
    old: &BTreeSet<K>,
    new: &BTreeSet<K>,
    name: &'static str,
) -> Result<(), SensorError>
where
    T: std::borrow::BorrowMut<MapData>,
    K: aya::Pod + Ord,
{
    for key in new {
        map.insert(key, 1, 0).map_err(map_err(name))?;
    }
    for key in old.difference(new) {
        let _ = map.remove(key);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::policy::egress::tests::rule;

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
    fn policy_maps_are_the_policys_lists_in_kernel_keys() {
        let mut p = Policy::builtin();
        p.egress.ldap_ports = vec![389, 1389];
        p.egress.rmi_ports = vec![1099];
        p.egress.dns_ports = vec![53];
        p.exec.memfd = true;
        let maps = PolicyMaps::of(&p);
        assert_eq!(maps.port_class.get(&1389), Some(&NetProtocol::Ldap.code()));
        assert_eq!(maps.port_class.get(&1099), Some(&NetProtocol::Rmi.code()));
        assert_eq!(maps.port_class.len(), 4);
        assert_eq!(
            maps.exec_class.get(&comm_key(b"/memfd")),
            Some(&ProgramClass::Memfd.code())
        );
        assert!(maps.jvm_names.contains(&comm_key(b"java")));

        // What a reload changes: memfd off, a global and an app-scoped allow rule added.
        let mut q = p.clone();
        q.exec.memfd = false;
        q.exec.allow = vec![
            crate::policy::ExecAllow {
                app: None,
                programs: vec!["/usr/bin/git".into(), "/usr/bin/git".into()],
                reason: None,
            },
            crate::policy::ExecAllow {
                app: Some("build-agent".into()),
                programs: vec!["/bin/sh".into()],
                reason: None,
            },
        ];
        let next = PolicyMaps::of(&q);
        assert!(!next.exec_class.contains_key(&comm_key(b"/memfd")));
        // Only the rule for every JVM is global, once; app rules go in per JVM.
        assert_eq!(next.exec_allow, vec![allow_key(0, "/usr/bin/git")]);
        assert_eq!(next.port_class, maps.port_class);
    }

    #[test]
    fn a_jvms_own_resolvers_merge_with_its_app_rules() {
        let mut p = Policy::builtin();
        p.egress.dns_ports = vec![53, 5353];
        p.egress.allow = vec![
            rule(Some("billing"), &["10.96.0.0/12"], Some(&[443])),
            rule(Some("other-app"), &["192.0.2.0/24"], None),
        ];
        let cluster_dns: IpAddr = "10.96.0.10".parse().expect("ip");
        let entries =
            jvm_net_entries(&p, 7, Some("java -jar billing.jar"), &[cluster_dns]).expect("fits");
        assert_eq!(
            entries,
            [
                (key(7, "10.96.0.0/12"), value(false, &[443])),
                // The longest match for the resolver carries the app rule's port too.
                (key(7, "10.96.0.10/32"), value(false, &[53, 443, 5353])),
            ]
        );
        // Without a known command line only the resolvers are the JVM's own.
        assert_eq!(
            jvm_net_entries(&p, 7, None, &[cluster_dns]).expect("fits"),
            [(key(7, "10.96.0.10/32"), value(false, &[53, 5353]))]
        );
        // No own resolvers and no app rule: nothing of its own.
        assert!(jvm_net_entries(&p, 7, Some("java Main"), &[])
            .expect("fits")
            .is_empty());
    }

    #[test]
    fn kernel_entries_merge_nested_networks() {
        let mut p = Policy::builtin();
        p.egress.allow = vec![
            rule(None, &["10.0.0.0/8"], None),
            rule(None, &["10.0.0.5/32"], Some(&[636])),
        ];
        let entries = net_entries(&p, 0, None).expect("fits");
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
        let mut p = Policy::builtin();
        p.egress.allow = vec![
            rule(None, &["fd00::/8", "10.1.0.0/16"], Some(&[443, 8443])),
            rule(None, &["fd00::/8"], Some(&[80, 443])),
            rule(None, &["fd00:1::/32"], Some(&[22])),
            // ::/0 covers the IPv4-mapped range too, as it does in the kernel.
            rule(None, &["::/0"], Some(&[53])),
        ];
        let entries = net_entries(&p, 0, None).expect("fits");
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
        let mut p = Policy::builtin();
        p.egress.allow = vec![
            rule(None, &["127.0.0.0/8"], None),
            rule(Some("auth-service.jar"), &["10.20.0.5"], Some(&[636])),
            rule(Some("billing.jar"), &["10.30.0.0/16"], None),
        ];
        let global = net_entries(&p, 0, None).expect("fits");
        assert_eq!(global, [(key(0, "127.0.0.0/8"), value(true, &[]))]);

        let auth = net_entries(&p, 4242, Some("java -jar /srv/auth-service.jar")).expect("fits");
        assert_eq!(auth, [(key(4242, "10.20.0.5/32"), value(false, &[636]))]);
        assert_eq!(&auth[0].0.key[..4], &[0, 0, 0x10, 0x92]);

        let other = net_entries(&p, 7, Some("java -jar shop.jar")).expect("fits");
        assert!(other.is_empty());
    }

    #[test]
    fn kernel_entries_refuse_more_ports_than_an_entry_holds() {
        let mut p = Policy::builtin();
        p.egress.allow = vec![
            rule(None, &["10.0.0.0/8"], Some(&[1, 2, 3, 4, 5])),
            rule(None, &["192.168.0.0/16"], Some(&[6, 7, 8, 9])),
            rule(None, &["10.0.0.5"], Some(&[5, 6, 7, 8, 9])),
        ];
        let err = net_entries(&p, 0, None).expect_err("9 ports");
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
