//! The policy files the tests hand the daemon: only the keys a scenario needs, everything else
//! left to the daemon's defaults (shells, interpreters, downloaders, writable dirs, memfd, and
//! the `[egress]` switches and loopback allow rule).

use std::fmt::Write as _;

pub use testkit::Mode;

/// A policy TOML for one test.
#[derive(Debug, Clone)]
pub struct Policy {
    mode: Mode,
    kill_jvm: bool,
    allows: Vec<ExecAllow>,
    egress: Egress,
    /// `[dns] resolvers`; `None` leaves the key out.
    dns_resolvers: Option<Vec<String>>,
}

/// The `[egress]` switches (`None` leaves a key out, so the daemon's default applies) and the
/// `[[egress.allow]]` entries (none: the built-in loopback rule applies).
#[derive(Debug, Clone, Default)]
struct Egress {
    block_ldap_rmi: Option<bool>,
    block_unexpected: Option<bool>,
    quarantine: Option<bool>,
    report_unexpected: Option<bool>,
    allows: Vec<EgressAllow>,
}

/// One `[[egress.allow]]` entry.
#[derive(Debug, Clone)]
struct EgressAllow {
    /// Substring of the JVM's command line; `None` means any JVM.
    app: Option<String>,
    cidrs: Vec<String>,
    /// Empty leaves `ports` out: any port except the LDAP and RMI ports.
    ports: Vec<u16>,
}

/// One `[[exec.allow]]` entry.
#[derive(Debug, Clone)]
struct ExecAllow {
    /// Substring of the JVM's command line; `None` means any JVM.
    app: Option<String>,
    /// Absolute paths or basenames.
    programs: Vec<String>,
}

impl Policy {
    /// `java` as the only launcher, no JVM kill, no allow rules.
    pub fn new(mode: Mode) -> Self {
        Policy {
            mode,
            kill_jvm: false,
            allows: Vec::new(),
            egress: Egress::default(),
            dns_resolvers: None,
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// `[response] kill_jvm`: in enforce mode, kill the JVM too, not just its child.
    pub fn kill_jvm(mut self, kill_jvm: bool) -> Self {
        self.kill_jvm = kill_jvm;
        self
    }

    /// Adds `[[exec.allow]] app = app, programs = programs`.
    pub fn allow(mut self, app: Option<&str>, programs: &[&str]) -> Self {
        self.allows.push(ExecAllow {
            app: app.map(str::to_owned),
            programs: programs.iter().map(|p| (*p).to_owned()).collect(),
        });
        self
    }

    /// `[egress] block_ldap_rmi`: in enforce mode, deny LDAP and RMI outside the allowlist.
    pub fn block_ldap_rmi(mut self, block: bool) -> Self {
        self.egress.block_ldap_rmi = Some(block);
        self
    }

    /// `[egress] block_unexpected`: in enforce mode, deny every connect outside the allowlist.
    pub fn block_unexpected(mut self, block: bool) -> Self {
        self.egress.block_unexpected = Some(block);
        self
    }

    /// `[egress] quarantine`: in enforce mode, once a JVM is caught, deny all its further
    /// egress outside the allowlist.
    pub fn quarantine(mut self, quarantine: bool) -> Self {
        self.egress.quarantine = Some(quarantine);
        self
    }

    /// `[egress] report_unexpected`: raise `jvm_unexpected_egress` for connects outside the
    /// allowlist.
    pub fn report_unexpected(mut self, report: bool) -> Self {
        self.egress.report_unexpected = Some(report);
        self
    }

    /// Adds `[[egress.allow]] app = app, cidrs = cidrs, ports = ports` (`ports` left out when
    /// empty: any port except the LDAP and RMI ports). The first such entry replaces the
    /// built-in loopback rule.
    pub fn allow_egress(mut self, app: Option<&str>, cidrs: &[&str], ports: &[u16]) -> Self {
        self.egress.allows.push(EgressAllow {
            app: app.map(str::to_owned),
            cidrs: cidrs.iter().map(|c| (*c).to_owned()).collect(),
            ports: ports.to_vec(),
        });
        self
    }

    /// `[dns] resolvers`: DNS servers besides `/etc/resolv.conf`'s that JVMs may query.
    pub fn dns_resolvers(mut self, resolvers: &[&str]) -> Self {
        self.dns_resolvers = Some(resolvers.iter().map(|r| (*r).to_owned()).collect());
        self
    }

    pub fn to_toml(&self) -> String {
        let mut toml = format!(
            "mode = {}\n\n[jvm]\nlaunchers = [\"java\"]\n\n[response]\nkill_jvm = {}\n",
            quote(self.mode.as_str()),
            self.kill_jvm
        );
        for allow in &self.allows {
            toml.push_str("\n[[exec.allow]]\n");
            if let Some(app) = &allow.app {
                let _ = writeln!(toml, "app = {}", quote(app));
            }
            let programs: Vec<String> = allow.programs.iter().map(|p| quote(p)).collect();
            let _ = writeln!(toml, "programs = [{}]", programs.join(", "));
        }
        self.egress.write_toml(&mut toml);
        if let Some(resolvers) = &self.dns_resolvers {
            let _ = writeln!(toml, "\n[dns]\nresolvers = {}", quote_list(resolvers));
        }
        toml
    }
}

impl Egress {
    /// Appends `[egress]` (only if a switch is set) and the `[[egress.allow]]` tables.
    fn write_toml(&self, toml: &mut String) {
        let switches = [
            ("block_ldap_rmi", self.block_ldap_rmi),
            ("block_unexpected", self.block_unexpected),
            ("quarantine", self.quarantine),
            ("report_unexpected", self.report_unexpected),
        ];
        if switches.iter().any(|(_, value)| value.is_some()) {
            toml.push_str("\n[egress]\n");
            for (key, value) in switches {
                if let Some(value) = value {
                    let _ = writeln!(toml, "{key} = {value}");
                }
            }
        }
        for allow in &self.allows {
            toml.push_str("\n[[egress.allow]]\n");
            if let Some(app) = &allow.app {
                let _ = writeln!(toml, "app = {}", quote(app));
            }
            let _ = writeln!(toml, "cidrs = {}", quote_list(&allow.cidrs));
            if !allow.ports.is_empty() {
                let ports: Vec<String> = allow.ports.iter().map(u16::to_string).collect();
                let _ = writeln!(toml, "ports = [{}]", ports.join(", "));
            }
        }
    }
}

/// A TOML basic string. JSON string syntax is a subset of it (serde_json escapes `"`, `\` and
/// control characters, and never emits `\/`).
fn quote(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// A TOML array of basic strings.
fn quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| quote(i)).collect();
    format!("[{}]", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::{Mode, Policy};

    #[test]
    fn allow_rules_render_as_toml_tables() {
        let toml = Policy::new(Mode::Enforce)
            .kill_jvm(true)
            .allow(Some("AllowedChild"), &["/usr/bin/perl"])
            .to_toml();
        assert_eq!(
            toml,
            "mode = \"enforce\"\n\n[jvm]\nlaunchers = [\"java\"]\n\n[response]\nkill_jvm = true\n\n\
             [[exec.allow]]\napp = \"AllowedChild\"\nprograms = [\"/usr/bin/perl\"]\n"
        );
    }

    #[test]
    fn egress_options_render_as_toml_tables() {
        let toml = Policy::new(Mode::Enforce)
            .block_unexpected(true)
            .quarantine(false)
            .allow_egress(Some("JndiLookup"), &["127.0.0.1/32"], &[1389])
            .allow_egress(None, &["192.0.2.0/24", "::1/128"], &[])
            .dns_resolvers(&["127.0.0.53"])
            .to_toml();
        assert_eq!(
            toml,
            "mode = \"enforce\"\n\n[jvm]\nlaunchers = [\"java\"]\n\n[response]\nkill_jvm = false\n\n\
             [egress]\nblock_unexpected = true\nquarantine = false\n\n\
             [[egress.allow]]\napp = \"JndiLookup\"\ncidrs = [\"127.0.0.1/32\"]\nports = [1389]\n\n\
             [[egress.allow]]\ncidrs = [\"192.0.2.0/24\", \"::1/128\"]\n\n\
             [dns]\nresolvers = [\"127.0.0.53\"]\n"
        );
    }

    #[test]
    fn without_egress_options_there_is_no_egress_table() {
        let toml = Policy::new(Mode::Monitor).to_toml();
        assert!(
            !toml.contains("egress") && !toml.contains("[dns]"),
            "{toml}"
        );
    }
}
