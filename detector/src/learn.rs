//! `detector learn`: watch the JVMs for a while, then suggest the allowlists that would let
//! them do what they did — their egress and the programs they ran — for an operator to review.
//!
//! The pure part has no I/O and is unit-tested with plain data: [`app_of`] names a JVM's
//! application from its command line, [`Observations`] accumulates what each application did
//! from decoded kernel [`Event`]s, and [`suggest`] renders that as a commented TOML policy.
//! [`run`] is the edge: it loads the kernel programs with a policy that reports every JVM
//! connect and exec, feeds the events to [`Observations`], and writes the suggestion.
//!
//! The suggestion is deliberately conservative: what Log4Shell payloads do (LDAP and RMI
//! egress, shells, interpreters, downloaders, programs from world-writable directories or
//! from memory) is written commented out with a warning, so accepting the file as it is never
//! allows an attack that happened to run while the detector was learning.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    fmt::Write as _,
    fs::File,
    io::{Seek as _, Write as _},
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use anyhow::Context as _;
use detector_common::{ALLOW_PORTS, PATH_LEN};

use crate::{
    events::{Connect, Event, Exec, Payload},
    policy::{basename, ExecAllow, Mode, NetAllowRule, Policy},
    sensors::{procfs, LossCounts, Scope},
    session::{Consumer, Ended, Origin, Session, SessionHandle},
    timefmt::{self, format_duration, rfc3339_micros, rfc3339_seconds},
    vocab::{NetProtocol, ProcessKey, ProgramClass, Transport},
};

/// An IPv4 `/24` is suggested instead of its addresses once this many of them were reached.
pub const AGGREGATE_MIN_ADDRESSES: usize = 8;

/// The longest program path the kernel matches (`PATH_LEN` bytes with the NUL).
const MAX_PROGRAM_PATH: usize = PATH_LEN - 1;

/// How many items a comment lists before it says "…".
const LIST_IN_COMMENT: usize = 8;

// === app identity ===

/// Launcher options that take their value as the next argument (`java --help`, JDK 8–21).
/// Their `--opt=value` spellings are single arguments and need no entry.
const OPTIONS_WITH_VALUE: &[&str] = &[
    "-cp",
    "-classpath",
    "--class-path",
    "-p",
    "--module-path",
    "--upgrade-module-path",
    "--add-modules",
    "--enable-native-access",
    "--limit-modules",
    "--add-reads",
    "--add-exports",
    "--add-opens",
    "--patch-module",
    "--source",
    "-d",
    "--describe-module",
];

/// The application a JVM runs, from its argv: the basename of the `-jar` file, else the
/// module (`-m module/Class`, `--module=…`), else the main class — the first argument that
/// is not a launcher option or an option's value (`java -Xmx1g -cp lib/* com.acme.Main` →
/// `com.acme.Main`; a source file, `java /srv/Tool.java`, gives `Tool.java`).
///
/// Every result is part of the command line (argv joined by spaces), which is what an
/// `app = …` key is matched against. When nothing names the application (`java -version`,
/// an unreadable argv), the launcher's basename is returned: see [`is_launcher_only`].
pub fn app_of(argv: &[String]) -> String {
    let launcher = argv.first().map_or("java", |a| basename(a));
    let launcher = if launcher.is_empty() {
        "java"
    } else {
        launcher
    };
    let named = |value: Option<&str>| match value {
        Some(v) if !v.is_empty() => v.to_owned(),
        _ => launcher.to_owned(),
    };
    let mut args = argv.iter().skip(1).map(String::as_str);
    while let Some(arg) = args.next() {
        match arg {
            "-jar" => return named(args.next().map(basename)),
            "-m" | "--module" => return named(args.next()),
            _ if arg.starts_with("--module=") => return named(arg.strip_prefix("--module=")),
            _ if OPTIONS_WITH_VALUE.contains(&arg) => {
                args.next();
            }
            // Options, and `@argfiles` (whose contents the kernel never sees).
            _ if arg.starts_with('-') || arg.starts_with('@') => {}
            // A class name has no '/'; a source file (`java Tool.java`) may be a path.
            _ => return named(Some(basename(arg))),
        }
    }
    launcher.to_owned()
}

/// Whether `app` is only the launcher's name ([`app_of`] found nothing better): a rule with
/// it would apply to every JVM started by that launcher.
fn is_launcher_only(app: &str, policy_launchers: &[String]) -> bool {
    app == "java" || policy_launchers.iter().any(|l| l == app)
}

// === observations ===

/// Where a JVM lineage connected or sent a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Destination {
    pub ip: IpAddr,
    pub port: u16,
    pub transport: Transport,
}

impl Destination {
    fn sort_key(&self) -> (IpAddr, u16, &'static str) {
        (self.ip, self.port, self.transport.as_str())
    }
}

impl PartialOrd for Destination {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Destination {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.sort_key().cmp(&other.sort_key())
    }
}

/// What was seen of one destination.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DestinationSeen {
    /// `connect()` calls, and datagrams sent without one.
    pub connections: u64,
    /// LDAP, RMI or DNS: by the port's configuration, or by what was sent.
    pub protocol: Option<NetProtocol>,
    /// The protocol was recognised by payload on a port not configured for it.
    pub by_payload: bool,
}

/// What was seen of one executed program.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProgramSeen {
    pub runs: u64,
    /// What the kernel classified it as (shell, interpreter, …), if anything.
    pub class: Option<ProgramClass>,
}

/// What the JVMs of one application did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppObservations {
    /// JVMs seen running it.
    pub jvms: u64,
    pub destinations: BTreeMap<Destination, DestinationSeen>,
    /// By the path given to execve.
    pub programs: BTreeMap<String, ProgramSeen>,
    /// The resolvers of its JVMs' own mount namespaces (`/etc/resolv.conf` as the JVM sees
    /// it): DNS to them is ordinary, like DNS to the host's.
    pub resolvers: BTreeSet<IpAddr>,
}

impl AppObservations {
    /// The DNS servers this application queried, with their query counts.
    pub fn dns_servers(&self) -> BTreeMap<IpAddr, u64> {
        let mut servers = BTreeMap::new();
        for (d, seen) in &self.destinations {
            if seen.protocol == Some(NetProtocol::Dns) {
                *servers.entry(d.ip).or_insert(0) += seen.connections;
            }
        }
        servers
    }
}

/// Everything learned, per application, and what the suggestion needs to say about it.
#[derive(Clone, Debug)]
pub struct Observations {
    /// The host learned on (named in the header).
    pub host: String,
    /// When learning started and ended.
    pub started: SystemTime,
    pub ended: SystemTime,
    /// Events the kernel could not deliver while learning.
    pub lost: u64,
    /// The host's own resolvers (`/etc/resolv.conf`): DNS to them needs no rule.
    host_resolvers: Vec<IpAddr>,
    /// JVM launcher names of the policy (to spot an app named after its launcher).
    launchers: Vec<String>,
    /// The allow rules of the policy learning started with, repeated in the suggestion: a
    /// file's `[[egress.allow]]` and `[[exec.allow]]` replace the built-in lists.
    kept_exec: Vec<ExecAllow>,
    kept_egress: Vec<NetAllowRule>,
    /// Which application each JVM runs.
    jvms: HashMap<ProcessKey, String>,
    apps: BTreeMap<String, AppObservations>,
    /// Events of JVMs whose command line was never known.
    unattributed: u64,
}

/// Counts for the one-line summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub apps: usize,
    pub jvms: u64,
    pub destinations: usize,
    pub programs: usize,
    pub unattributed: u64,
}

impl Observations {
    /// Nothing observed yet. `base` is the policy learning started with.
    pub fn new(
        base: &Policy,
        host: &str,
        host_resolvers: Vec<IpAddr>,
        started: SystemTime,
    ) -> Self {
        Observations {
            host: host.to_owned(),
            started,
            ended: started,
            lost: 0,
            host_resolvers,
            launchers: base.jvm.launchers.clone(),
            kept_exec: base.exec.allow.clone(),
            kept_egress: base.egress.allow.clone(),
            jvms: HashMap::new(),
            apps: BTreeMap::new(),
            unattributed: 0,
        }
    }

    /// A JVM is running with this argv (from its exec event or from /proc). The first word
    /// on a JVM stands.
    pub fn jvm_started(&mut self, jvm: ProcessKey, argv: &[String]) {
        if self.jvms.contains_key(&jvm) {
            return;
        }
        let app = app_of(argv);
        self.apps.entry(app.clone()).or_default().jvms += 1;
        self.jvms.insert(jvm, app);
    }

    /// Whether the JVM's application is known.
    pub fn knows(&self, jvm: ProcessKey) -> bool {
        self.jvms.contains_key(&jvm)
    }

    /// The JVM an event is attributed to, if it is about a JVM lineage.
    pub fn jvm_of(event: &Event) -> Option<ProcessKey> {
        match event {
            Event::Exec(e) => Some(e.lineage.jvm()),
            Event::Connect(c) => Some(c.lineage.jvm()),
            Event::Payload(p) => Some(p.lineage.jvm()),
            Event::Resolvers(r) => Some(r.jvm),
            Event::Fork(_) | Event::Exit(_) | Event::Inbound(_) => None,
        }
    }

    /// Files one decoded event under its application. Forks, exits and inbound samples
    /// carry nothing to allow and are ignored.
    pub fn observe(&mut self, event: &Event) {
        match event {
            Event::Exec(e) if e.is_jvm => {
                self.jvm_started(e.lineage.jvm(), &e.argv);
            }
            Event::Exec(e) => {
                if let Some(app) = self.app_mut(e.lineage.jvm()) {
                    record_exec(app, e);
                }
            }
            Event::Connect(c) => {
                if let Some(app) = self.app_mut(c.lineage.jvm()) {
                    record_connect(app, c);
                }
            }
            Event::Payload(p) => {
                if let Some(app) = self.app_mut(p.lineage.jvm()) {
                    record_payload(app, p);
                }
            }
            Event::Resolvers(r) => {
                if let Some(app) = self.app_mut(r.jvm) {
                    app.resolvers.extend(r.servers.iter().copied());
                }
            }
            Event::Fork(_) | Event::Exit(_) | Event::Inbound(_) => {}
        }
    }

    fn app_mut(&mut self, jvm: ProcessKey) -> Option<&mut AppObservations> {
        let app = self.jvms.get(&jvm).and_then(|a| self.apps.get_mut(a));
        if app.is_none() {
            self.unattributed += 1;
        }
        app
    }

    /// What each application did, by name.
    pub fn apps(&self) -> &BTreeMap<String, AppObservations> {
        &self.apps
    }

    pub fn totals(&self) -> Totals {
        Totals {
            apps: self.apps.len(),
            jvms: self.apps.values().map(|a| a.jvms).sum(),
            destinations: self.apps.values().map(|a| a.destinations.len()).sum(),
            programs: self.apps.values().map(|a| a.programs.len()).sum(),
            unattributed: self.unattributed,
        }
    }
}

fn record_exec(app: &mut AppObservations, exec: &Exec) {
    let seen = app.programs.entry(exec.filename.clone()).or_default();
    seen.runs += 1;
    // The same path can classify differently (a memfd, a script rewritten meanwhile):
    // once classified, it stays so.
    seen.class = seen.class.or(exec.kernel_class);
}

fn record_connect(app: &mut AppObservations, connect: &Connect) {
    let seen = app
        .destinations
        .entry(Destination {
            ip: connect.dst,
            port: connect.port,
            transport: connect.transport,
        })
        .or_default();
    seen.connections += 1;
    if seen.protocol.is_none() {
        seen.protocol = connect.port_protocol;
    }
}

/// A payload names the protocol of a socket whose connect was already counted.
fn record_payload(app: &mut AppObservations, payload: &Payload) {
    let seen = app
        .destinations
        .entry(Destination {
            ip: payload.dst,
            port: payload.port,
            transport: payload.transport,
        })
        .or_insert(DestinationSeen {
            connections: 1,
            ..DestinationSeen::default()
        });
    // LDAP or RMI by payload outranks what the port is configured as (DNS or nothing).
    let outranks = matches!(
        (seen.protocol, payload.protocol),
        (None, _) | (Some(NetProtocol::Dns), NetProtocol::Ldap | NetProtocol::Rmi)
    );
    if outranks {
        seen.protocol = Some(payload.protocol);
        seen.by_payload = true;
    }
}

// === suggest ===

/// A network of a suggested rule: one address, or an aggregated IPv4 `/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Network {
    Host(IpAddr),
    Slash24([u8; 3]),
}

impl Network {
    fn cidr(&self) -> String {
        match self {
            Network::Host(ip @ IpAddr::V4(_)) => format!("{ip}/32"),
            Network::Host(ip @ IpAddr::V6(_)) => format!("{ip}/128"),
            Network::Slash24([a, b, c]) => format!("{a}.{b}.{c}.0/24"),
        }
    }

    fn of(ip: IpAddr, busy: &BTreeSet<[u8; 3]>) -> Network {
        match ip {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                if busy.contains(&[a, b, c]) {
                    Network::Slash24([a, b, c])
                } else {
                    Network::Host(ip)
                }
            }
            IpAddr::V6(_) => Network::Host(ip),
        }
    }
}

/// What was seen of one network of a rule.
#[derive(Debug, Default)]
struct NetworkSeen {
    /// Port → (connections, transports).
    ports: BTreeMap<u16, (u64, BTreeSet<&'static str>)>,
    addresses: BTreeSet<IpAddr>,
}

impl NetworkSeen {
    fn connections(&self) -> u64 {
        self.ports.values().map(|(n, _)| n).sum()
    }
}

/// The suggested policy for `obs`, as commented TOML that `Policy::from_toml` and
/// `detector check-config` accept:
///
/// - the allow rules of the policy learning started with, kept;
/// - per application: `[[egress.allow]]` rules with `app`, exact `/32` and `/128` networks
///   (an IPv4 `/24` once [`AGGREGATE_MIN_ADDRESSES`] of its addresses were reached) and the
///   ports seen; networks reached on the same ports share a rule, and a network reached on
///   more ports than a kernel entry holds gets a rule without `ports`. One `[[exec.allow]]`
///   lists the programs it ran, by absolute path;
/// - commented out, each with a WARNING: LDAP and RMI destinations, shells, interpreters,
///   downloaders and programs from writable directories or memory, DNS servers that are not
///   the host's resolvers, and rules for a JVM whose application could not be named.
pub fn suggest(obs: &Observations) -> String {
    let date = rfc3339_micros(obs.started)
        .get(..10)
        .unwrap_or_default()
        .to_owned();
    let mut out = String::new();
    header(&mut out, obs);
    kept(&mut out, obs);
    for (name, app) in &obs.apps {
        app_section(&mut out, obs, &date, name, app);
    }
    dns_section(&mut out, obs, &date);
    // Rules of apps whose names contain one another share kernel entries; say so if that
    // (or a kept rule) makes the whole file invalid, rather than leave it to check-config.
    if let Err(e) = Policy::from_toml(&out, Path::new("<suggested policy>")) {
        let note = comment_block(&format!(
            "WARNING: as written, this policy does not pass check-config: {e}. Fix that \
             before use."
        ));
        out.insert_str(0, &note);
    }
    out
}

fn header(out: &mut String, obs: &Observations) {
    let totals = obs.totals();
    let learned = obs.ended.duration_since(obs.started).unwrap_or_default();
    push_comment(
        out,
        &format!(
            "Allowlists suggested by `detector learn` on {}, from {} to {} ({}): {} of {}.",
            quote(&obs.host),
            rfc3339_seconds(obs.started),
            rfc3339_seconds(obs.ended),
            format_duration(learned),
            count(totals.jvms, "JVM"),
            count(totals.apps, "application"),
        ),
    );
    out.push_str("#\n");
    push_comment(
        out,
        "Review every rule before you use it: this is what the JVMs did while they were \
         watched, not what they should do, and an attack that ran meanwhile is in here too. \
         What Log4Shell payloads do (LDAP and RMI, shells, interpreters, downloaders, programs \
         from writable directories or memory) is commented out with a WARNING; uncomment it \
         only if the application really needs it. Keys left out take the built-in values \
         (mode = \"monitor\"): merge these rules into your policy and run `detector \
         check-config` on the result.",
    );
    if obs.lost > 0 {
        push_comment(
            out,
            &format!(
                "WARNING: the kernel lost {} while learning: some egress or programs may be \
                 missing.",
                count(obs.lost, "event")
            ),
        );
    }
    if totals.unattributed > 0 {
        push_comment(
            out,
            &format!(
                "{} came from JVMs whose command line could not be read; they are left out.",
                count(totals.unattributed, "event")
            ),
        );
    }
    out.push('\n');
}

fn kept(out: &mut String, obs: &Observations) {
    if obs.kept_egress.is_empty() && obs.kept_exec.is_empty() {
        return;
    }
    push_comment(
        out,
        "--- Kept from the policy learning started with: a file's [[egress.allow]] and \
         [[exec.allow]] replace the built-in lists, so its rules are repeated here. ---",
    );
    for rule in &obs.kept_egress {
        let cidrs: Vec<String> = rule.cidrs.iter().map(ToString::to_string).collect();
        let mut keys = vec![("cidrs", strings(&cidrs))];
        if let Some(ports) = &rule.ports {
            keys.push(("ports", port_array(ports)));
        }
        out.push_str(&table_toml(
            "egress",
            Some("allow"),
            rule.app.as_deref(),
            keys,
            rule.reason.as_deref(),
        ));
        out.push('\n');
    }
    for rule in &obs.kept_exec {
        out.push_str(&table_toml(
            "exec",
            Some("allow"),
            rule.app.as_deref(),
            vec![("programs", strings(&rule.programs))],
            rule.reason.as_deref(),
        ));
        out.push('\n');
    }
}

fn app_section(
    out: &mut String,
    obs: &Observations,
    date: &str,
    name: &str,
    app: &AppObservations,
) {
    push_comment(
        out,
        &format!("=== {}: {} ===", quote(name), count(app.jvms, "JVM")),
    );
    // Everything for an unnamed application goes commented out: `app = "java"` would apply
    // to every JVM.
    let unnamed = is_launcher_only(name, &obs.launchers);
    if unnamed {
        push_comment(
            out,
            &format!(
                "WARNING: nothing on these JVMs' command lines names their application, so \
                 `app = {}` would apply to every JVM. The rules below are commented out; \
                 replace `app` with something unique to the application before using them.",
                quote(name)
            ),
        );
    }
    let mut section = String::new();
    let mut said_anything = egress_rules(&mut section, name, app, date);
    said_anything |= exec_rules(&mut section, name, app, date);
    if !said_anything {
        push_comment(out, "No egress and no programs seen.");
        out.push('\n');
        return;
    }
    if unnamed {
        out.push_str(&comment_out(&section));
    } else {
        out.push_str(&section);
    }
}

/// The `[[egress.allow]]` rules of one application; false when there were none to write.
fn egress_rules(out: &mut String, name: &str, app: &AppObservations, date: &str) -> bool {
    let ordinary: Vec<(&Destination, &DestinationSeen)> = app
        .destinations
        .iter()
        .filter(|(_, s)| s.protocol.is_none())
        .collect();
    let mut wrote = false;

    // /24s with enough addresses reached are suggested whole.
    let mut per_24: BTreeMap<[u8; 3], BTreeSet<Ipv4Addr>> = BTreeMap::new();
    for (d, _) in &ordinary {
        if let IpAddr::V4(v4) = d.ip {
            let [a, b, c, _] = v4.octets();
            per_24.entry([a, b, c]).or_default().insert(v4);
        }
    }
    let busy: BTreeSet<[u8; 3]> = per_24
        .iter()
        .filter(|(_, addrs)| addrs.len() >= AGGREGATE_MIN_ADDRESSES)
        .map(|(net, _)| *net)
        .collect();

    let mut networks: BTreeMap<Network, NetworkSeen> = BTreeMap::new();
    let mut port_zero = 0;
    for (d, seen) in &ordinary {
        if d.port == 0 {
            port_zero += seen.connections;
            continue;
        }
        let net = networks.entry(Network::of(d.ip, &busy)).or_default();
        net.addresses.insert(d.ip);
        let port = net.ports.entry(d.port).or_default();
        port.0 += seen.connections;
        port.1.insert(d.transport.as_str());
    }

    // Networks reached on the same ports share a rule. The kernel keeps one entry per
    // network with at most ALLOW_PORTS ports, so a network reached on more gets a rule
    // without `ports` of its own: splitting its ports over several rules would not fit.
    let mut by_ports: BTreeMap<Vec<u16>, Vec<(Network, &NetworkSeen)>> = BTreeMap::new();
    let mut wide = Vec::new();
    for (net, seen) in &networks {
        if seen.ports.len() > ALLOW_PORTS {
            wide.push((*net, seen));
        } else {
            by_ports
                .entry(seen.ports.keys().copied().collect())
                .or_default()
                .push((*net, seen));
        }
    }
    for (ports, nets) in &by_ports {
        for (net, seen) in nets {
            describe_network(out, *net, seen);
        }
        let connections = nets.iter().map(|(_, s)| s.connections()).sum::<u64>();
        let cidrs: Vec<String> = nets.iter().map(|(n, _)| n.cidr()).collect();
        push_rule(
            out,
            name,
            &cidrs,
            Some(ports),
            date,
            connections,
            "connection",
        );
        wrote = true;
    }
    for (net, seen) in wide {
        describe_network(out, net, seen);
        push_comment(
            out,
            &format!(
                "{} ports: a kernel allowlist entry holds at most {ALLOW_PORTS}, so `ports` \
                 is left out: this allows any port of {} but the LDAP and RMI ones.",
                seen.ports.len(),
                net.cidr()
            ),
        );
        push_rule(
            out,
            name,
            &[net.cidr()],
            None,
            date,
            seen.connections(),
            "connection",
        );
        wrote = true;
    }
    if port_zero > 0 {
        push_comment(
            out,
            &format!(
                "{} to port 0 left out (no rule can list port 0).",
                count(port_zero, "connection")
            ),
        );
        wrote = true;
    }

    // LDAP and RMI: how a JNDI lookup reaches the attacker. Per address, commented out.
    for protocol in [NetProtocol::Ldap, NetProtocol::Rmi] {
        let mut per_ip: BTreeMap<IpAddr, Vec<(&Destination, &DestinationSeen)>> = BTreeMap::new();
        for (d, seen) in &app.destinations {
            if seen.protocol == Some(protocol) && d.port != 0 {
                per_ip.entry(d.ip).or_default().push((d, seen));
            }
        }
        for (ip, dests) in per_ip {
            let ports: BTreeSet<u16> = dests.iter().map(|(d, _)| d.port).collect();
            let ports: Vec<u16> = ports.into_iter().collect();
            let connections: u64 = dests.iter().map(|(_, s)| s.connections).sum();
            let by_payload = dests.iter().any(|(_, s)| s.by_payload);
            let (what, review) = match protocol {
                NetProtocol::Ldap => (
                    "LDAP",
                    "review: LDAP from a JVM is how Log4Shell starts; keep only if this app \
                     really talks to this directory.",
                ),
                _ => (
                    "RMI",
                    "review: RMI from a JVM is how Log4Shell's rmi:// lookups start; keep only \
                     if this app really talks to this RMI registry.",
                ),
            };
            push_comment(
                out,
                &format!(
                    "WARNING: {what} to {ip} on {} ({}{}); {review}",
                    port_words(&ports),
                    count(connections, "connection"),
                    if by_payload {
                        ", recognised by what was sent"
                    } else {
                        ""
                    },
                ),
            );
            let mut rule = String::new();
            for chunk in ports.chunks(ALLOW_PORTS) {
                push_rule(
                    &mut rule,
                    name,
                    &[Network::Host(ip).cidr()],
                    Some(chunk),
                    date,
                    connections,
                    &format!("{what} connection"),
                );
            }
            out.push_str(&comment_out(&rule));
            wrote = true;
        }
    }
    wrote
}

/// A comment line saying what was seen of one network of a rule.
fn describe_network(out: &mut String, net: Network, seen: &NetworkSeen) {
    let ports: Vec<String> = seen
        .ports
        .iter()
        .map(|(port, (n, transports))| {
            let transports: Vec<&str> = transports.iter().copied().collect();
            format!("{port}/{} ({n})", transports.join("+"))
        })
        .collect();
    let ports = list_words(&ports);
    match net {
        Network::Host(ip) => push_comment(out, &format!("{ip}: {ports}")),
        Network::Slash24(_) => {
            let addrs: Vec<String> = seen.addresses.iter().map(IpAddr::to_string).collect();
            push_comment(
                out,
                &format!(
                    "{}: {} addresses of this /24 were reached ({}), so the rule allows the \
                     whole /24; {ports}",
                    net.cidr(),
                    addrs.len(),
                    list_words(&addrs)
                ),
            );
        }
    }
}

/// The `[[exec.allow]]` rule of one application, and the programs it must not get without
/// review; false when it ran nothing.
fn exec_rules(out: &mut String, name: &str, app: &AppObservations, date: &str) -> bool {
    let mut allowed = Vec::new();
    let mut notes = String::new();
    let mut risky = String::new();
    for (path, seen) in &app.programs {
        let runs = count(seen.runs, "run");
        if let Some(class) = seen.class {
            push_comment(
                &mut risky,
                &format!(
                    "WARNING: {} ({runs}) is {}; {}",
                    quote(path),
                    class_words(class),
                    class_review(class)
                ),
            );
            let mut rule = String::new();
            push_exec_rule(&mut rule, name, &[path.as_str()], date, seen.runs, "run");
            risky.push_str(&comment_out(&rule));
            continue;
        }
        if basename(path) == "jspawnhelper" {
            push_comment(
                &mut notes,
                &format!(
                    "{} ({runs}): the JDK's own helper for starting child processes; it is in \
                     no class and needs no rule.",
                    quote(path)
                ),
            );
            continue;
        }
        if !path.starts_with('/') || path.ends_with('/') {
            push_comment(
                &mut notes,
                &format!(
                    "{} ({runs}) was run by a relative path, which a rule cannot name: allow \
                     it by its absolute path if it is legitimate.",
                    quote(path)
                ),
            );
            continue;
        }
        if path.len() > MAX_PROGRAM_PATH || path.contains('\0') {
            push_comment(
                &mut notes,
                &format!(
                    "{} ({runs}): longer than the {MAX_PROGRAM_PATH} bytes of a path the \
                     kernel matches; left out.",
                    quote(path)
                ),
            );
            continue;
        }
        allowed.push((path.as_str(), seen.runs));
    }
    let wrote = !allowed.is_empty() || !notes.is_empty() || !risky.is_empty();
    if !allowed.is_empty() {
        let listed: Vec<String> = allowed
            .iter()
            .map(|(p, runs)| format!("{} ({runs})", quote(p)))
            .collect();
        push_comment(
            out,
            &format!(
                "Programs run (none is a shell, interpreter or downloader, so none raises an \
                 alert today; the rule keeps them allowed if a policy change classifies \
                 them): {}",
                listed.join(", ")
            ),
        );
        let programs: Vec<&str> = allowed.iter().map(|(p, _)| *p).collect();
        let runs = allowed.iter().map(|(_, n)| n).sum();
        push_exec_rule(out, name, &programs, date, runs, "run");
    }
    out.push_str(&notes);
    out.push_str(&risky);
    end_paragraph(out);
    wrote
}

fn class_words(class: ProgramClass) -> &'static str {
    match class {
        ProgramClass::Shell => "a shell",
        ProgramClass::Interpreter => "an interpreter",
        ProgramClass::Downloader => "a downloader or network tool",
        ProgramClass::WritableDir => "in a world-writable directory",
        ProgramClass::Memfd => "run from an anonymous memory file",
    }
}

fn class_review(class: ProgramClass) -> &'static str {
    match class {
        ProgramClass::Shell => {
            "review: a shell is what most Log4Shell payloads start; keep only if this app \
             really runs it (better: run the script directly and allow the script's path)."
        }
        ProgramClass::Interpreter => {
            "review: payloads use interpreters to run their second stage; keep only if this \
             app really runs it."
        }
        ProgramClass::Downloader => {
            "review: payloads use downloaders and network tools to fetch their second stage \
             or open a reverse shell; keep only if this app really runs it."
        }
        ProgramClass::WritableDir => {
            "review: anyone on the host can put a program there, and droppers do; move the \
             program to a directory only root can write rather than allow it."
        }
        ProgramClass::Memfd => {
            "review: a program run from memory leaves no file behind, which is how droppers \
             hide; find out what it is before allowing anything."
        }
    }
}

/// DNS an application sent to a server that is not one of the host's resolvers.
struct DirectDns<'a> {
    app: &'a str,
    queries: u64,
    /// Sorted, distinct.
    ports: Vec<u16>,
}

fn dns_section(out: &mut String, obs: &Observations, date: &str) {
    let mut trusted: BTreeMap<IpAddr, BTreeSet<&str>> = BTreeMap::new();
    let mut own: BTreeMap<IpAddr, BTreeSet<&str>> = BTreeMap::new();
    let mut other: BTreeMap<IpAddr, Vec<DirectDns<'_>>> = BTreeMap::new();
    for (name, app) in &obs.apps {
        for (ip, queries) in app.dns_servers() {
            if obs.host_resolvers.contains(&ip) {
                trusted.entry(ip).or_default().insert(name);
            } else if app.resolvers.contains(&ip) {
                own.entry(ip).or_default().insert(name);
            } else {
                let ports: BTreeSet<u16> = app
                    .destinations
                    .iter()
                    .filter(|(d, s)| d.ip == ip && s.protocol == Some(NetProtocol::Dns))
                    .map(|(d, _)| d.port)
                    .filter(|p| *p != 0)
                    .collect();
                other.entry(ip).or_default().push(DirectDns {
                    app: name,
                    queries,
                    ports: ports.into_iter().collect(),
                });
            }
        }
    }
    if trusted.is_empty() && own.is_empty() && other.is_empty() {
        return;
    }
    push_comment(out, "=== DNS ===");
    for (ip, apps) in &trusted {
        let apps: Vec<String> = apps.iter().map(|a| quote(a)).collect();
        push_comment(
            out,
            &format!(
                "{ip} is a resolver of this host (/etc/resolv.conf), queried by {}: always \
                 trusted, no rule needed.",
                list_words(&apps)
            ),
        );
    }
    for (ip, apps) in &own {
        let apps: Vec<String> = apps.iter().map(|a| quote(a)).collect();
        push_comment(
            out,
            &format!(
                "{ip} is the resolver of {}'s own mount namespace (its container's \
                 /etc/resolv.conf): trusted for {}, no rule needed.",
                list_words(&apps),
                if apps.len() == 1 { "it" } else { "them" }
            ),
        );
    }
    if other.is_empty() {
        out.push('\n');
        return;
    }
    let mut block = String::new();
    for (ip, apps) in &other {
        for DirectDns {
            app: name,
            queries,
            ports,
        } in apps
        {
            push_comment(
                out,
                &format!(
                    "WARNING: {} sent {} straight to {ip}, which is not a resolver of this host \
                     (/etc/resolv.conf); review: that is what a JNDI dns:// lookup does; keep \
                     only if this app really uses its own name server.",
                    quote(name),
                    count(*queries, "DNS query"),
                ),
            );
            for chunk in ports.chunks(ALLOW_PORTS) {
                push_rule(
                    &mut block,
                    name,
                    &[Network::Host(*ip).cidr()],
                    Some(chunk),
                    date,
                    *queries,
                    "DNS query",
                );
            }
        }
    }
    let resolvers: Vec<String> = other.keys().map(IpAddr::to_string).collect();
    // A table header after the arrays of tables above, so uncommenting it stays valid TOML.
    block.push_str(&table_toml(
        "dns",
        None,
        None,
        vec![("resolvers", strings(&resolvers))],
        None,
    ));
    out.push_str(&comment_out(&block));
    out.push('\n');
}

/// Writes one `[[egress.allow]]` rule.
fn push_rule(
    out: &mut String,
    app: &str,
    cidrs: &[String],
    ports: Option<&[u16]>,
    date: &str,
    n: u64,
    what: &str,
) {
    let mut keys = vec![("cidrs", strings(cidrs))];
    if let Some(ports) = ports {
        keys.push(("ports", port_array(ports)));
    }
    let reason = format!("learned {date}: {}", count(n, what));
    out.push_str(&table_toml(
        "egress",
        Some("allow"),
        Some(app),
        keys,
        Some(&reason),
    ));
    out.push('\n');
}

/// Writes one `[[exec.allow]]` rule.
fn push_exec_rule(out: &mut String, app: &str, programs: &[&str], date: &str, n: u64, what: &str) {
    let reason = format!("learned {date}: {}", count(n, what));
    out.push_str(&table_toml(
        "exec",
        Some("allow"),
        Some(app),
        vec![("programs", strings(programs))],
        Some(&reason),
    ));
    out.push('\n');
}

/// One table as TOML, written by `toml_edit`: `[section]`, or `[[section.array]]` (one
/// element of an array of tables), with `app` first, `keys` in order and `reason` last.
fn table_toml(
    section: &str,
    array: Option<&str>,
    app: Option<&str>,
    keys: Vec<(&str, toml_edit::Value)>,
    reason: Option<&str>,
) -> String {
    let mut table = toml_edit::Table::new();
    let keys = app
        .map(|app| ("app", string(app)))
        .into_iter()
        .chain(keys)
        .chain(reason.map(|reason| ("reason", string(reason))));
    for (key, value) in keys {
        table.insert(key, toml_edit::Item::Value(value));
    }
    let mut doc = toml_edit::DocumentMut::new();
    match array {
        Some(name) => {
            let mut elements = toml_edit::ArrayOfTables::new();
            elements.push(table);
            let mut parent = toml_edit::Table::new();
            parent.set_implicit(true);
            parent.insert(name, toml_edit::Item::ArrayOfTables(elements));
            doc.insert(section, toml_edit::Item::Table(parent));
        }
        None => {
            doc.insert(section, toml_edit::Item::Table(table));
        }
    }
    doc.to_string()
}

/// A TOML string value, always a one-line basic string: text from the host (paths, command
/// lines) can then break neither the string nor a comment the rule is commented out in.
fn string(text: &str) -> toml_edit::Value {
    // Parsed from its basic-string encoding, a value keeps that form when written
    // (`toml_edit` would otherwise pick a multi-line or literal string for such text).
    quote(text)
        .parse()
        .unwrap_or_else(|_| toml_edit::Value::from(text))
}

fn strings(items: &[impl AsRef<str>]) -> toml_edit::Value {
    toml_edit::Value::Array(items.iter().map(|i| string(i.as_ref())).collect())
}

fn port_array(ports: &[u16]) -> toml_edit::Value {
    toml_edit::Value::Array(ports.iter().map(|p| i64::from(*p)).collect())
}

/// "port 389", "ports 389, 636".
fn port_words(ports: &[u16]) -> String {
    let list: Vec<String> = ports.iter().map(u16::to_string).collect();
    match ports.len() {
        1 => format!("port {}", list.join("")),
        _ => format!("ports {}", list.join(", ")),
    }
}

/// At most [`LIST_IN_COMMENT`] items, then how many more.
fn list_words(items: &[String]) -> String {
    let mut text = items
        .iter()
        .take(LIST_IN_COMMENT)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > LIST_IN_COMMENT {
        let _ = write!(text, " and {} more", items.len() - LIST_IN_COMMENT);
    }
    text
}

/// "1 connection", "2 connections", "3 DNS queries".
fn count(n: impl TryInto<u64>, noun: &str) -> String {
    let n: u64 = n.try_into().unwrap_or(u64::MAX);
    if n == 1 {
        format!("1 {noun}")
    } else if let Some(stem) = noun.strip_suffix('y') {
        format!("{n} {stem}ies")
    } else {
        format!("{n} {noun}s")
    }
}

/// A TOML basic string (by `toml_write`, the encoder `toml_edit` uses): every character TOML
/// does not allow raw is escaped, so text from the host (paths, command lines) can neither
/// break the string nor the comment it is in.
fn quote(text: &str) -> String {
    use toml_write::ToTomlValue as _;
    toml_write::TomlStringBuilder::new(text)
        .as_basic()
        .to_toml_value()
}

/// `text` as `#` comment lines of at most about 92 columns. Control characters (none should
/// reach here: host text goes through [`quote`]) are replaced so a comment stays one.
fn comment_block(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out = String::new();
    let mut line = String::from("#");
    for word in clean.split(' ').filter(|w| !w.is_empty()) {
        if line.len() > 1 && line.len() + 1 + word.len() > 92 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// Ends what `out` holds with one blank line (none when it is empty).
fn end_paragraph(out: &mut String) {
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push('\n');
    }
}

fn push_comment(out: &mut String, text: &str) {
    out.push_str(&comment_block(text));
}

/// Every line of `toml` commented out (with `# `), blank lines kept blank.
fn comment_out(toml: &str) -> String {
    toml.lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_owned()
            } else if l.starts_with('#') {
                format!("{l}\n")
            } else {
                format!("# {l}\n")
            }
        })
        .collect()
}

// === durations ===

/// Parses `--duration`: a duration as the policy writes it (`90s`, `10m`, `1h30m`, `7d`).
/// Zero is refused: there would be nothing to learn from.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = timefmt::parse_duration(text.trim())?;
    if duration.is_zero() {
        return Err(format!("{text:?}: the duration must be longer than zero"));
    }
    Ok(duration)
}

// === the edge: kernel, /proc, signals, the output file ===

/// What `detector learn` was asked to do.
#[derive(Debug)]
pub struct LearnOptions {
    /// The policy to start from: its lists say what a JVM and a shell are, and its allow
    /// rules are kept in the suggestion.
    pub policy: Policy,
    /// How long to watch (SIGINT or SIGTERM ends it sooner).
    pub duration: Duration,
    /// `--cgroup`: learn only from JVMs started in this cgroup v2 directory.
    pub cgroup: Option<PathBuf>,
    /// `--output`: where the suggestion goes; stdout without it.
    pub output: Option<PathBuf>,
}

/// The policy the kernel runs while learning: `base`, in monitor mode, with an empty egress
/// allowlist so that every connect of a JVM lineage is reported.
pub fn learning_policy(base: &Policy) -> Policy {
    let mut policy = base.clone();
    policy.mode = Mode::Monitor;
    policy.egress.allow.clear();
    policy.egress.report_unexpected = true;
    policy
}

/// The `learn` consumer of the sensor session: events → observations.
struct Learner {
    observations: Observations,
}

impl Consumer for Learner {
    fn event(&mut self, session: &mut SessionHandle, event: &Event, origin: Origin) {
        match (origin, event) {
            // The session completed the argv from /proc when the kernel cut it: the same
            // argv `run` matches `app` against.
            (_, Event::Exec(exec)) if exec.is_jvm => {
                let jvm = exec.lineage.jvm();
                self.observations.jvm_started(jvm, &exec.argv);
                if origin == Origin::Seeded {
                    tracing::info!(pid = jvm.tgid, app = %app_of(&exec.argv), "learning from a JVM that was already running");
                }
            }
            // What predates learning was not done while learning.
            (Origin::Seeded, _) => {}
            (Origin::Kernel | Origin::Proc, _) => {
                // A JVM whose start we missed (it predates a ring-buffer loss): /proc still
                // knows it.
                if let Some(jvm) = Observations::jvm_of(event) {
                    if !self.observations.knows(jvm) {
                        if let Some(p) = session.jvm(jvm) {
                            self.observations.jvm_started(jvm, &p.argv);
                        }
                    }
                }
                self.observations.observe(event);
            }
        }
    }
}

/// Runs `detector learn`: watches for `opts.duration` (or until SIGINT/SIGTERM), then writes
/// the suggestion and prints a one-line summary on stderr.
pub async fn run(opts: LearnOptions) -> anyhow::Result<()> {
    let scope = Scope::resolve(opts.cgroup.as_deref())?;
    let policy = learning_policy(&opts.policy);
    tracing::info!(scope = %scope.path, "learning for {}", format_duration(opts.duration));
    let mut session = Session::start(&policy, scope)?;
    // A bad --output fails now rather than after the learning, but only once the kernel
    // accepted us (a refused start leaves no empty file). Not truncated until the end, so a
    // failed run leaves what the file held.
    let mut output = opts
        .output
        .as_ref()
        .map(|p| {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(p)
                .with_context(|| format!("--output {}", p.display()))
        })
        .transpose()?;

    let host = crate::daemon::hostname();
    let mut learner = Learner {
        observations: Observations::new(
            &opts.policy,
            &host,
            procfs::nameservers(),
            SystemTime::now(),
        ),
    };
    session.seed(&policy, &mut learner);

    // Scripts and tests wait for this line: every program is attached, running JVMs tracked.
    eprintln!("detector learning");

    let ended = session.run(&mut learner, Some(opts.duration)).await?;
    let lost = session.handle().sensors().loss();
    // Detaches every program before the (possibly slow) write.
    let decode_errors = session.stop().decode_errors;
    let mut observations = learner.observations;
    observations.ended = SystemTime::now();
    observations.lost = lost.total() + decode_errors;

    let text = suggest(&observations);
    let destination = match (&mut output, &opts.output) {
        (Some(file), Some(path)) => {
            write_file(file, &text).with_context(|| format!("writing {}", path.display()))?;
            path.display().to_string()
        }
        _ => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .context("writing the suggested policy to stdout")?;
            "stdout".to_owned()
        }
    };
    eprintln!(
        "{}",
        summary_line(&observations, &lost, ended == Ended::Signal, &destination)
    );
    Ok(())
}

fn write_file(file: &mut File, text: &str) -> std::io::Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// `detector learned: 2 applications (3 JVMs), 5 destinations, 2 programs in 10m; suggested
/// policy written to FILE`, plus what may be missing.
fn summary_line(obs: &Observations, lost: &LossCounts, ended_early: bool, to: &str) -> String {
    let totals = obs.totals();
    let learned = obs.ended.duration_since(obs.started).unwrap_or_default();
    let mut line = format!(
        "detector learned: {} ({}), {}, {} in {}{}; suggested policy written to {to}",
        count(totals.apps, "application"),
        count(totals.jvms, "JVM"),
        count(totals.destinations, "destination"),
        count(totals.programs, "program"),
        format_duration(learned),
        if ended_early { " (stopped early)" } else { "" },
    );
    if lost.total() > 0 {
        let named: Vec<String> = lost
            .named()
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = write!(
            line,
            "; WARNING: the kernel lost events ({})",
            named.join(", ")
        );
    }
    if totals.unattributed > 0 {
        let _ = write!(
            line,
            "; {} unattributed",
            count(totals.unattributed, "event",)
        );
    }
    line
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;
    use crate::events::{LineageRef, Task};

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn app_of_names_the_jar_the_module_or_the_main_class() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["java", "-jar", "/opt/ci/build-agent.jar"],
                "build-agent.jar",
            ),
            (
                &["java", "-Xmx1g", "-jar", "app.jar", "--port", "8080"],
                "app.jar",
            ),
            (
                &["java", "-Xmx1g", "-cp", "lib/*", "com.acme.Main"],
                "com.acme.Main",
            ),
            (
                &[
                    "/usr/lib/jvm/java-17/bin/java",
                    "-classpath",
                    "a.jar:b.jar",
                    "-Dx=y",
                    "Main",
                    "arg",
                ],
                "Main",
            ),
            (
                &["java", "--class-path", "lib", "com.acme.Main"],
                "com.acme.Main",
            ),
            (
                &["java", "--class-path=lib", "com.acme.Main"],
                "com.acme.Main",
            ),
            (
                &["java", "-p", "mods", "-m", "com.acme.app/com.acme.Main"],
                "com.acme.app/com.acme.Main",
            ),
            (
                &["java", "--module-path", "mods", "--module", "com.acme.app"],
                "com.acme.app",
            ),
            (
                &["java", "--module=com.acme.app/com.acme.Main"],
                "com.acme.app/com.acme.Main",
            ),
            (
                &[
                    "java",
                    "--add-opens",
                    "java.base/java.lang=ALL-UNNAMED",
                    "-cp",
                    "x",
                    "App",
                ],
                "App",
            ),
            (
                &[
                    "java",
                    "--add-modules",
                    "ALL-SYSTEM",
                    "@/etc/app/jvm.args",
                    "App",
                ],
                "App",
            ),
            (
                &["java", "-XX:+UseG1GC", "-javaagent:/opt/agent.jar", "App"],
                "App",
            ),
            (&["java", "/srv/tools/Tool.java", "x"], "Tool.java"),
            (&["java", "-version"], "java"),
            (&["java", "-jar"], "java"),
            (&["/opt/jdk/bin/java"], "java"),
            (&[], "java"),
        ];
        for (words, want) in cases {
            assert_eq!(app_of(&argv(words)), *want, "{words:?}");
        }
    }

    #[test]
    fn app_of_is_part_of_the_command_line() {
        for words in [
            &["java", "-jar", "/opt/ci/build-agent.jar"][..],
            &["java", "-cp", "lib/*", "com.acme.Main"],
            &["java", "-m", "m/C"],
        ] {
            let argv = argv(words);
            assert!(argv.join(" ").contains(&app_of(&argv)), "{words:?}");
        }
    }

    const JVM: LineageRef = LineageRef {
        jvm_tgid: 100,
        jvm_start_ns: 1_000,
        depth: 0,
    };

    fn task(tgid: u32) -> Task {
        Task {
            pid: tgid,
            tgid,
            ppid: 1,
            uid: 0,
            gid: 0,
            start_ns: 1_000,
            cgroup_id: 1,
            comm: String::new(),
        }
    }

    fn jvm_exec(lineage: LineageRef, words: &[&str]) -> Event {
        Event::Exec(Exec {
            time_ns: 0,
            task: task(lineage.jvm_tgid),
            lineage,
            is_jvm: true,
            recognised_by: None,
            filename: "/usr/bin/java".into(),
            interp: None,
            argv: argv(words),
            argv_truncated: false,
            memfd: false,
            kernel_class: None,
            kernel_allowed: false,
            killed: false,
            kill_failed: false,
        })
    }

    fn child_exec(lineage: LineageRef, file: &str, class: Option<ProgramClass>) -> Event {
        Event::Exec(Exec {
            time_ns: 0,
            task: task(lineage.jvm_tgid + 1),
            lineage: LineageRef {
                depth: 1,
                ..lineage
            },
            is_jvm: false,
            recognised_by: None,
            filename: file.into(),
            interp: None,
            argv: vec![file.into()],
            argv_truncated: false,
            memfd: false,
            kernel_class: class,
            kernel_allowed: false,
            killed: false,
            kill_failed: false,
        })
    }

    fn connect(lineage: LineageRef, dst: &str, port: u16, protocol: Option<NetProtocol>) -> Event {
        Event::Connect(Connect {
            time_ns: 0,
            task: task(lineage.jvm_tgid),
            lineage,
            dst: dst.parse().expect("test address"),
            port,
            transport: if protocol == Some(NetProtocol::Dns) {
                Transport::Udp
            } else {
                Transport::Tcp
            },
            sendmsg: false,
            port_protocol: protocol,
            blocked: false,
            quarantined: false,
            allowed_any_port: false,
            cookie: 0,
        })
    }

    fn payload(lineage: LineageRef, dst: &str, port: u16, protocol: NetProtocol) -> Event {
        Event::Payload(Payload {
            time_ns: 0,
            tgid: lineage.jvm_tgid,
            lineage,
            cookie: 0,
            dst: dst.parse().expect("test address"),
            port,
            transport: Transport::Tcp,
            protocol,
            blocked: false,
            sample: Vec::new(),
        })
    }

    fn observations(events: &[Event]) -> Observations {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let mut obs = Observations::new(
            &Policy::builtin(),
            "node-1",
            vec!["10.0.0.2".parse().expect("test address")],
            start,
        );
        for e in events {
            obs.observe(e);
        }
        obs.ended = start + Duration::from_secs(600);
        obs
    }

    /// The suggestion, checked to be a valid policy.
    fn suggested(obs: &Observations) -> (String, Policy) {
        let text = suggest(obs);
        let policy = Policy::from_toml(&text, Path::new("suggested.toml"))
            .unwrap_or_else(|e| panic!("the suggestion is not a valid policy: {e}\n{text}"));
        assert!(!text.contains("does not pass check-config"), "{text}");
        (text, policy)
    }

    /// The text with its comment lines joined, to look for a sentence however it wrapped.
    fn prose(text: &str) -> String {
        text.replace("\n# ", " ")
    }

    fn app_rules<'a>(policy: &'a Policy, app: &str) -> Vec<&'a NetAllowRule> {
        policy
            .egress
            .allow
            .iter()
            .filter(|r| r.app.as_deref() == Some(app))
            .collect()
    }

    /// The drift `learn` and `run` once had: a long `-cp` pushes the main class past the
    /// kernel's argv limit, so `app` was learned from /proc's argv and matched by `run`
    /// against the kernel's cut one. Both now see the argv the session completed.
    #[test]
    fn an_app_learned_past_a_long_classpath_matches_in_run() {
        let classpath: Vec<String> = (0..40)
            .map(|i| format!("/opt/acme/lib/dependency-{i:02}.jar"))
            .collect();
        let full = argv(&["java", "-cp", &classpath.join(":"), "com.acme.Main"]);
        assert!(full.join("\0").len() > detector_common::ARGS_LEN);
        // What the kernel sends: the first ARGS_LEN bytes of the argument area.
        let Event::Exec(mut exec) = jvm_exec(JVM, &[]) else {
            unreachable!("jvm_exec makes an exec");
        };
        let area = full.join("\0");
        exec.argv = argv(
            &area[..detector_common::ARGS_LEN]
                .split('\0')
                .collect::<Vec<_>>(),
        );
        exec.argv_truncated = true;
        assert!(!exec.argv.join(" ").contains("com.acme.Main"));

        let argv = crate::session::complete_argv(&mut exec, full.clone());
        assert_eq!((argv, &exec.argv), (full.clone(), &full));
        let started = Event::Exec(exec);

        // learn: the suggestion names the application by its main class.
        let obs = observations(&[started.clone(), connect(JVM, "10.1.0.5", 5432, None)]);
        let (_, mut policy) = suggested(&obs);
        assert_eq!(app_rules(&policy, "com.acme.Main").len(), 1);

        // run: the same event makes the JVM's table entry, whose command line the app rule
        // matches in userspace and in the kernel entries, so the connect raises nothing.
        policy.egress.report_unexpected = true;
        let mut engine = crate::engine::Engine::new(policy.clone(), Vec::new(), "node-1");
        assert!(engine.process(&started).is_empty());
        let cmdline = engine
            .table()
            .get_key(JVM.jvm())
            .map(|p| p.argv.join(" "))
            .expect("the JVM is in the table");
        let entries = crate::sensors::encode::net_entries(&policy, JVM.jvm_tgid, Some(&cmdline))
            .expect("kernel entries");
        assert_eq!(entries.len(), 1, "the app rule's kernel entry for this JVM");
        let detections = engine.process(&connect(JVM, "10.1.0.5", 5432, None));
        assert!(detections.is_empty(), "{detections:?}");
        let detections = engine.process(&connect(JVM, "10.1.0.9", 5432, None));
        assert_eq!(
            detections.len(),
            1,
            "an unlearned destination is still reported"
        );
    }

    #[test]
    fn events_are_filed_under_their_jvms_application() {
        let other = LineageRef {
            jvm_tgid: 200,
            jvm_start_ns: 2_000,
            depth: 0,
        };
        let obs = observations(&[
            jvm_exec(JVM, &["java", "-jar", "/srv/shop.jar"]),
            jvm_exec(other, &["java", "-cp", "x", "com.acme.Billing"]),
            connect(JVM, "10.1.0.5", 5432, None),
            connect(JVM, "10.1.0.5", 5432, None),
            connect(LineageRef { depth: 2, ..JVM }, "10.1.0.6", 443, None),
            child_exec(other, "/usr/bin/id", None),
            // A JVM never seen starting: not attributed.
            connect(
                LineageRef {
                    jvm_tgid: 300,
                    jvm_start_ns: 3,
                    depth: 0,
                },
                "10.9.9.9",
                80,
                None,
            ),
        ]);
        let shop = &obs.apps()["shop.jar"];
        assert_eq!(shop.jvms, 1);
        let db = Destination {
            ip: "10.1.0.5".parse().expect("test address"),
            port: 5432,
            transport: Transport::Tcp,
        };
        assert_eq!(shop.destinations[&db].connections, 2);
        assert_eq!(shop.destinations.len(), 2);
        assert!(shop.programs.is_empty());
        let billing = &obs.apps()["com.acme.Billing"];
        assert_eq!(billing.programs["/usr/bin/id"].runs, 1);
        assert!(billing.destinations.is_empty());
        let totals = obs.totals();
        assert_eq!((totals.apps, totals.jvms, totals.unattributed), (2, 2, 1));
    }

    #[test]
    fn a_payload_marks_ldap_on_an_ordinary_port() {
        let obs = observations(&[
            jvm_exec(JVM, &["java", "-jar", "app.jar"]),
            connect(JVM, "10.1.0.5", 8080, None),
            payload(JVM, "10.1.0.5", 8080, NetProtocol::Ldap),
        ]);
        let seen = obs.apps()["app.jar"].destinations.values().next().copied();
        assert_eq!(
            seen,
            Some(DestinationSeen {
                connections: 1,
                protocol: Some(NetProtocol::Ldap),
                by_payload: true
            })
        );
        let (text, policy) = suggested(&obs);
        assert!(app_rules(&policy, "app.jar").is_empty(), "{text}");
        assert!(
            prose(&text).contains("recognised by what was sent"),
            "{text}"
        );
    }

    #[test]
    fn suggests_exact_rules_per_application_with_their_ports() {
        let obs = observations(&[
            jvm_exec(JVM, &["java", "-Xmx1g", "-cp", "lib/*", "com.acme.Main"]),
            connect(JVM, "127.0.0.1", 18080, None),
            connect(JVM, "10.1.0.5", 5432, None),
            connect(JVM, "10.1.0.6", 5432, None),
            connect(JVM, "10.1.0.7", 443, None),
            connect(JVM, "10.1.0.7", 8443, None),
            connect(JVM, "fd00::7", 443, None),
            child_exec(JVM, "/usr/bin/id", None),
            child_exec(JVM, "/usr/bin/id", None),
            child_exec(JVM, "/usr/lib/jvm/java-17/lib/jspawnhelper", None),
        ]);
        let (text, policy) = suggested(&obs);
        let rules = app_rules(&policy, "com.acme.Main");
        let find = |cidr: &str| {
            rules
                .iter()
                .find(|r| r.cidrs.iter().any(|c| c.to_string() == cidr))
                .unwrap_or_else(|| panic!("no rule for {cidr}:\n{text}"))
        };
        assert_eq!(find("127.0.0.1/32").ports, Some(vec![18080]));
        let db = find("10.1.0.5/32");
        assert_eq!(db.ports, Some(vec![5432]));
        assert_eq!(db.cidrs.len(), 2, "same ports share a rule:\n{text}");
        assert_eq!(find("10.1.0.7/32").ports, Some(vec![443, 8443]));
        assert_eq!(find("fd00::7/128").ports, Some(vec![443]));
        assert_eq!(
            find("127.0.0.1/32").reason.as_deref(),
            Some("learned 2026-11-18: 1 connection")
        );
        assert_eq!(
            db.reason.as_deref(),
            Some("learned 2026-11-18: 2 connections")
        );

        let exec: Vec<&ExecAllow> = policy
            .exec
            .allow
            .iter()
            .filter(|r| r.app.as_deref() == Some("com.acme.Main"))
            .collect();
        assert_eq!(exec.len(), 1, "{text}");
        assert_eq!(exec[0].programs, vec!["/usr/bin/id".to_owned()]);
        // The built-in loopback rule is kept: the file's list replaces the built-in one.
        assert!(
            policy
                .egress
                .allow
                .iter()
                .any(|r| r.app.is_none() && r.cidrs.iter().any(|c| c.to_string() == "127.0.0.0/8")),
            "{text}"
        );
    }

    #[test]
    fn eight_addresses_of_a_slash_24_are_aggregated_seven_are_not() {
        let mut events = vec![jvm_exec(JVM, &["java", "-jar", "app.jar"])];
        for host in 1..=8 {
            events.push(connect(JVM, &format!("10.2.0.{host}"), 443, None));
        }
        for host in 1..=7 {
            events.push(connect(JVM, &format!("10.3.0.{host}"), 443, None));
        }
        let (text, policy) = suggested(&observations(&events));
        let cidrs: BTreeSet<String> = app_rules(&policy, "app.jar")
            .iter()
            .flat_map(|r| r.cidrs.iter().map(|c| c.to_string()))
            .collect();
        assert!(cidrs.contains("10.2.0.0/24"), "{text}");
        assert!(
            !cidrs
                .iter()
                .any(|c| c.starts_with("10.2.0.") && c.ends_with("/32")),
            "{text}"
        );
        assert!(!cidrs.contains("10.3.0.0/24"), "{text}");
        assert_eq!(
            cidrs.iter().filter(|c| c.starts_with("10.3.0.")).count(),
            7,
            "{text}"
        );
        assert!(
            prose(&text).contains("8 addresses of this /24 were reached"),
            "{text}"
        );
    }

    #[test]
    fn more_than_eight_ports_to_one_network_drops_ports_for_it() {
        let mut events = vec![jvm_exec(JVM, &["java", "-jar", "app.jar"])];
        for port in 9000..9010 {
            events.push(connect(JVM, "10.4.0.1", port, None));
        }
        events.push(connect(JVM, "10.4.0.2", 443, None));
        let (text, policy) = suggested(&observations(&events));
        let rules = app_rules(&policy, "app.jar");
        let wide = rules
            .iter()
            .find(|r| r.cidrs.iter().any(|c| c.to_string() == "10.4.0.1/32"))
            .unwrap_or_else(|| panic!("{text}"));
        assert_eq!(wide.ports, None, "{text}");
        assert!(rules
            .iter()
            .all(|r| r.ports.as_ref().is_none_or(|p| p.len() <= 8)));
        assert!(
            prose(&text).contains("10 ports: a kernel allowlist entry holds at most 8"),
            "{text}"
        );
    }

    #[test]
    fn ldap_and_rmi_are_commented_out_with_a_warning() {
        let obs = observations(&[
            jvm_exec(JVM, &["java", "-jar", "auth-service.jar"]),
            connect(JVM, "10.20.0.5", 636, Some(NetProtocol::Ldap)),
            connect(JVM, "10.20.0.6", 1099, Some(NetProtocol::Rmi)),
        ]);
        let (text, policy) = suggested(&obs);
        assert!(app_rules(&policy, "auth-service.jar").is_empty(), "{text}");
        assert!(
            prose(&text).contains("LDAP from a JVM is how Log4Shell starts; keep only if this app"),
            "{text}"
        );
        assert!(
            text.contains("# cidrs = [\"10.20.0.5/32\"]\n# ports = [636]"),
            "{text}"
        );
        assert!(
            prose(&text).contains("WARNING: RMI to 10.20.0.6 on port 1099"),
            "{text}"
        );
        // Uncommenting the LDAP rule gives a valid policy that allows exactly that.
        let block =
            "# [[egress.allow]]\n# app = \"auth-service.jar\"\n# cidrs = [\"10.20.0.5/32\"]\n\
                     # ports = [636]\n# reason";
        assert!(text.contains(block), "{text}");
        let uncommented = text.replace(block, &block.replace("# ", ""));
        let policy = Policy::from_toml(&uncommented, Path::new("u.toml"))
            .unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
        assert!(policy
            .egress
            .allowing(
                "java -jar auth-service.jar",
                "10.20.0.5".parse().expect("ip"),
                636,
                Some(NetProtocol::Ldap)
            )
            .is_some());
    }

    #[test]
    fn shells_and_downloaders_are_commented_out_with_a_warning() {
        let obs = observations(&[
            jvm_exec(JVM, &["java", "-jar", "app.jar"]),
            child_exec(JVM, "/bin/sh", Some(ProgramClass::Shell)),
            child_exec(JVM, "/usr/bin/curl", Some(ProgramClass::Downloader)),
            child_exec(JVM, "/tmp/x", Some(ProgramClass::WritableDir)),
            child_exec(JVM, "/usr/bin/id", None),
            child_exec(JVM, "./relative", None),
        ]);
        let (text, policy) = suggested(&obs);
        let programs: Vec<&String> = policy
            .exec
            .allow
            .iter()
            .flat_map(|r| r.programs.iter())
            .collect();
        assert_eq!(programs, vec!["/usr/bin/id"], "{text}");
        assert!(
            prose(&text).contains("WARNING: \"/bin/sh\" (1 run) is a shell; review"),
            "{text}"
        );
        assert!(text.contains("# programs = [\"/usr/bin/curl\"]"), "{text}");
        assert!(text.contains("# programs = [\"/tmp/x\"]"), "{text}");
        assert!(
            prose(&text).contains("\"./relative\" (1 run) was run by a relative path"),
            "{text}"
        );
    }

    #[test]
    fn dns_to_the_hosts_resolvers_needs_no_rule_and_elsewhere_is_a_warning() {
        let obs = observations(&[
            jvm_exec(JVM, &["java", "-jar", "app.jar"]),
            connect(JVM, "10.0.0.2", 53, Some(NetProtocol::Dns)),
            connect(JVM, "10.0.0.2", 53, Some(NetProtocol::Dns)),
            connect(JVM, "192.0.2.53", 53, Some(NetProtocol::Dns)),
        ]);
        assert_eq!(
            obs.apps()["app.jar"]
                .dns_servers()
                .into_iter()
                .collect::<Vec<_>>(),
            vec![
                ("10.0.0.2".parse().expect("ip"), 2),
                ("192.0.2.53".parse().expect("ip"), 1)
            ]
        );
        let (text, policy) = suggested(&obs);
        assert!(app_rules(&policy, "app.jar").is_empty(), "{text}");
        assert!(policy.dns.resolvers.is_empty(), "{text}");
        assert!(
            prose(&text).contains("10.0.0.2 is a resolver of this host"),
            "{text}"
        );
        assert!(
            text.contains("# [dns]\n# resolvers = [\"192.0.2.53\"]"),
            "{text}"
        );
        assert!(
            prose(&text).contains("that is what a JNDI dns:// lookup does"),
            "{text}"
        );
        let uncommented = text.replace("# [dns]\n# resolvers", "[dns]\nresolvers");
        let policy = Policy::from_toml(&uncommented, Path::new("u.toml"))
            .unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
        assert_eq!(
            policy.dns.resolvers,
            vec!["192.0.2.53".parse::<IpAddr>().expect("ip")]
        );
    }

    #[test]
    fn dns_to_a_containers_own_resolver_needs_no_rule() {
        let obs = observations(&[
            jvm_exec(JVM, &["java", "-jar", "app.jar"]),
            Event::Resolvers(crate::events::Resolvers {
                time_ns: 1,
                jvm: JVM.jvm(),
                mnt_ns: 4026532000,
                servers: vec!["10.96.0.10".parse().expect("ip")],
            }),
            connect(JVM, "10.96.0.10", 53, Some(NetProtocol::Dns)),
            connect(JVM, "192.0.2.53", 53, Some(NetProtocol::Dns)),
        ]);
        let (text, policy) = suggested(&obs);
        assert!(app_rules(&policy, "app.jar").is_empty(), "{text}");
        assert!(
            prose(&text)
                .contains("10.96.0.10 is the resolver of \"app.jar\"'s own mount namespace"),
            "{text}"
        );
        // Another server is still a warning, and the container's resolver is not in it.
        assert!(
            text.contains("# [dns]\n# resolvers = [\"192.0.2.53\"]"),
            "{text}"
        );
    }

    #[test]
    fn an_unnamed_application_gets_only_commented_rules() {
        let obs = observations(&[
            jvm_exec(JVM, &["java"]),
            connect(JVM, "10.1.0.5", 443, None),
            child_exec(JVM, "/usr/bin/id", None),
        ]);
        let (text, policy) = suggested(&obs);
        assert!(policy.exec.allow.is_empty(), "{text}");
        assert!(app_rules(&policy, "java").is_empty(), "{text}");
        assert!(text.contains("# app = \"java\""), "{text}");
    }

    #[test]
    fn host_text_cannot_break_out_of_strings_or_comments() {
        let obs = observations(&[
            jvm_exec(
                JVM,
                &[
                    "java",
                    "-jar",
                    "evil\"\n[[exec.allow]]\nprograms = [\"sh\"]\n.jar",
                ],
            ),
            child_exec(JVM, "/opt/a \"b\"\n\\c", None),
            child_exec(JVM, "/bin/sh\n[x]", Some(ProgramClass::Shell)),
        ]);
        let (text, policy) = suggested(&obs);
        assert_eq!(policy.exec.allow.len(), 1, "{text}");
        assert_eq!(
            policy.exec.allow[0].programs,
            vec!["/opt/a \"b\"\n\\c".to_owned()]
        );
        assert!(policy.exec.allow[0]
            .app
            .as_deref()
            .is_some_and(|a| a.starts_with("evil\"\n")));
    }

    #[test]
    fn kept_rules_of_the_starting_policy_are_repeated() {
        let base = Policy::from_toml(
            "[[exec.allow]]\napp = \"ci.jar\"\nprograms = [\"/usr/bin/git\", \"ssh\"]\nreason = \"CI\"\n\
             [[egress.allow]]\napp = \"auth.jar\"\ncidrs = [\"10.20.0.5\"]\nports = [636]\n",
            Path::new("base.toml"),
        )
        .expect("base policy");
        let obs = Observations::new(&base, "h", Vec::new(), SystemTime::UNIX_EPOCH);
        let (text, policy) = suggested(&obs);
        assert_eq!(policy.exec.allow, base.exec.allow, "{text}");
        assert_eq!(policy.egress.allow, base.egress.allow, "{text}");
    }

    #[test]
    fn an_empty_run_still_gives_a_valid_policy_with_the_builtin_rules() {
        let (text, policy) = suggested(&observations(&[]));
        assert_eq!(
            policy.egress.allow,
            Policy::builtin().egress.allow,
            "{text}"
        );
        assert!(prose(&text).contains("0 JVMs of 0 applications"), "{text}");
    }

    #[test]
    fn learning_reports_every_connect_in_monitor_mode() {
        let mut base = Policy::builtin();
        base.mode = Mode::Enforce;
        let learning = learning_policy(&base);
        assert_eq!(learning.mode, Mode::Monitor);
        assert!(learning.egress.allow.is_empty());
        assert!(learning.egress.report_unexpected);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("8s"), Ok(Duration::from_secs(8)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        for bad in [
            "",
            "10",
            "m",
            "10x",
            "-5s",
            "1.5h",
            "0s",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(format_duration(Duration::from_secs(5_400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(8)), "8s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn comments_wrap_and_stay_comments() {
        let block = comment_block(&"word ".repeat(60));
        assert!(block.lines().all(|l| l.starts_with("# ") && l.len() <= 92));
        assert_eq!(comment_block("a\nb"), "# a b\n");
        assert_eq!(count(2, "DNS query"), "2 DNS queries");
        assert_eq!(
            Network::Host(IpAddr::V6(Ipv6Addr::LOCALHOST)).cidr(),
            "::1/128"
        );
    }
}
