//! The detection policy: which programs a JVM lineage must not run, which it may, and what to
//! do when one does.
//!
//! A policy is TOML. The built-in default (`detector/policy/default.toml`, embedded in the
//! binary) is the single source of every default value: a user's file only states what it
//! changes, and every key it leaves out takes the built-in value. The text is parsed once into
//! the serde structs of `raw`, then `validate` checks and normalises it into a [`Policy`]; the
//! rest of the daemon never sees raw input (ripgrep's lowargs/hiargs split).
//!
//! `matching` holds the userspace twin of the kernel's exec classifier: the kernel programs
//! implement exactly [`ExecPolicy::classify`] and [`ExecPolicy::allowing`], and replay and the
//! alert path use these functions to explain what the kernel did. `egress` is the same for
//! outbound connections ([`EgressPolicy::port_class`], [`EgressPolicy::allowing`], and the
//! entries of the kernel's allowlist trie, [`EgressPolicy::kernel_allow_entries`]), with the
//! networks themselves in `cidr`. `dns` judges query names ([`DnsPolicy::suspicious`]); that
//! is done in userspace only.
//!
//! See `docs/policy.md` for how to write a policy.

mod cidr;
mod dns;
mod egress;
mod error;
mod locate;
mod matching;
mod raw;
mod validate;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::sync::LazyLock;

use serde::Deserialize;

pub use cidr::Cidr;
pub use egress::{NetKeyPrefix, NetProtocol};
pub use error::{CidrError, KernelAllowError, ParseModeError, PolicyError};
pub use matching::{strip_version, ProgramClass};

/// The built-in policy, as shipped. Also the source of the default of every key a user's
/// policy leaves out.
const BUILTIN_TOML: &str = include_str!("../../policy/default.toml");

/// What the built-in policy calls itself in error messages (it has no file on disk).
const BUILTIN_ORIGIN: &str = "<built-in policy>";

/// Parsed once: `from_toml` takes its defaults from it on every call.
static BUILTIN: LazyLock<Policy> = LazyLock::new(|| {
    let origin = Path::new(BUILTIN_ORIGIN);
    raw::parse(BUILTIN_TOML, origin)
        .and_then(|raw| validate::validate(raw, &Policy::blank(), BUILTIN_TOML, origin))
        .expect("the built-in policy is valid: the unit test `builtin_parses` proves it")
});

/// Whether the kernel only reports a suspicious exec or also stops it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Report only: every exec runs and raises an alert.
    #[default]
    Monitor,
    /// Kill a classified, non-allowlisted program in a JVM lineage before its first
    /// instruction (and the JVM too when `response.kill_jvm` is set).
    Enforce,
}

/// A validated policy. Built by [`Policy::builtin`], [`Policy::from_toml`] or [`Policy::load`];
/// every value in it has passed the checks in `validate` and is in normalised form.
///
/// Not `Eq`: `dns.entropy_bits` is a float.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Monitor or enforce; the CLI's `--mode` overrides it.
    pub mode: Mode,
    /// Which processes are JVMs (the roots of tracked lineages).
    pub jvm: JvmPolicy,
    /// What enforce mode does beyond killing the offending program.
    pub response: ResponsePolicy,
    /// Rule `jvm_shell_spawn`: which programs a JVM lineage must not execute.
    pub exec: ExecPolicy,
    /// Rules `jvm_ldap_egress`, `jvm_rmi_egress` and `jvm_unexpected_egress`: where a JVM
    /// lineage may connect to.
    pub egress: EgressPolicy,
    /// Rule `jvm_dns_exfil`: which DNS queries of a JVM lineage look like exfiltration.
    pub dns: DnsPolicy,
}

/// Which executed programs start a tracked JVM lineage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JvmPolicy {
    /// Basenames of JVM launcher binaries (each at most 31 bytes, no '/').
    pub launchers: Vec<String>,
    /// Absolute paths of JVM launchers, matched exactly (each at most 255 bytes).
    pub launcher_paths: Vec<String>,
}

/// What enforce mode does beyond killing the offending program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponsePolicy {
    /// Also kill the JVM whose descendant was killed.
    pub kill_jvm: bool,
}

/// Rule `jvm_shell_spawn`: the program classes a JVM lineage must not execute, and the
/// exceptions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecPolicy {
    /// Basenames of command shells.
    pub shells: Vec<String>,
    /// Basenames of script interpreters.
    pub interpreters: Vec<String>,
    /// Basenames of downloaders and network tools.
    pub downloaders: Vec<String>,
    /// World-writable directories, absolute and ending with exactly one '/'.
    pub writable_dirs: Vec<String>,
    /// Flag programs executed from anonymous memory files (`memfd_create`).
    pub memfd: bool,
    /// Exceptions, first match wins.
    pub allow: Vec<ExecAllow>,
}

/// One `[[exec.allow]]` rule: programs a JVM lineage may run although they are classified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecAllow {
    /// Substring of the JVM's command line (argv joined by single spaces) the rule is limited
    /// to; `None` applies it to every JVM.
    pub app: Option<String>,
    /// Absolute paths (matched exactly) or basenames (matched on the executed file's
    /// basename); never empty.
    pub programs: Vec<String>,
    /// Why the exception exists, for the logs.
    pub reason: Option<String>,
}

/// Rules `jvm_ldap_egress`, `jvm_rmi_egress` and `jvm_unexpected_egress`: which ports are
/// which protocol, what enforce mode denies, and where JVMs may connect regardless.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EgressPolicy {
    /// Destination ports recognised as LDAP; none is also in `rmi_ports` or `dns_ports`.
    pub ldap_ports: Vec<u16>,
    /// Destination ports recognised as Java RMI (JRMP).
    pub rmi_ports: Vec<u16>,
    /// Destination ports recognised as DNS.
    pub dns_ports: Vec<u16>,
    /// Enforce mode: deny LDAP and RMI egress (by port at connect, by payload by dropping the
    /// socket's packets) outside the allowlist.
    pub block_ldap_rmi: bool,
    /// Enforce mode: deny every other connect outside the allowlist too.
    pub block_unexpected: bool,
    /// Enforce mode: once a JVM is caught (blocked on LDAP or RMI, or a descendant killed),
    /// deny all further egress of its lineage outside the allowlist.
    pub quarantine: bool,
    /// Raise `jvm_unexpected_egress` for outbound connects outside the allowlist.
    pub report_unexpected: bool,
    /// Destinations JVMs may reach; any rule that matches allows.
    pub allow: Vec<NetAllowRule>,
}

/// One `[[egress.allow]]` rule: destinations a JVM may connect to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetAllowRule {
    /// Substring of the JVM's command line (argv joined by single spaces) the rule is limited
    /// to; `None` applies it to every JVM.
    pub app: Option<String>,
    /// Destination networks; never empty.
    pub cidrs: Vec<Cidr>,
    /// Destination ports, sorted, without duplicates, 1 to 8 of them. `None` allows any port
    /// except an LDAP or RMI one (by port class or payload), which only a listed port allows.
    pub ports: Option<Vec<u16>>,
    /// Why the rule exists, for the logs.
    pub reason: Option<String>,
}

/// Rule `jvm_dns_exfil`: what makes a query name suspicious.
#[derive(Clone, Debug, PartialEq)]
pub struct DnsPolicy {
    /// DNS servers JVMs may query besides those in `/etc/resolv.conf` (IPv4-mapped addresses
    /// are stored as IPv4).
    pub resolvers: Vec<IpAddr>,
    /// A label longer than this (in bytes, 1..=63) is suspicious.
    pub max_label_len: usize,
    /// Runs of letters and digits at least this long (1..=63) are checked for entropy.
    pub entropy_min_len: usize,
    /// Shannon entropy, in bits per character (0.0..=8.0), from which such a run is suspicious.
    pub entropy_bits: f64,
    /// Names equal to or ending in `.` + one of these are never suspicious: lower case, no
    /// leading or trailing dot.
    pub allow_suffixes: Vec<String>,
}

// === impl Mode ===

impl Mode {
    /// The name used in the policy file, on the command line and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Monitor => "monitor",
            Mode::Enforce => "enforce",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = ParseModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "monitor" => Ok(Mode::Monitor),
            "enforce" => Ok(Mode::Enforce),
            _ => Err(ParseModeError {
                value: s.to_owned(),
            }),
        }
    }
}

// === impl Policy ===

impl Policy {
    /// The built-in default policy (`detector/policy/default.toml`).
    pub fn builtin() -> Policy {
        BUILTIN.clone()
    }

    /// Parses and validates a policy; `origin` names it in error messages. Keys the text leaves
    /// out take their built-in values.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Policy, PolicyError> {
        let raw = raw::parse(text, origin)?;
        validate::validate(raw, &BUILTIN, text, origin)
    }

    /// Reads, parses and validates the policy file at `path`.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_owned(),
            source,
        })?;
        Policy::from_toml(&text, path)
    }

    /// One line for `detector check-config` and the start-up log, e.g. for the built-in policy:
    ///
    /// ```text
    /// mode monitor; 1 JVM launcher; 13 shells, 19 interpreters, 16 downloaders; 3 writable dirs; memfd on; 0 allow rules; egress: 1 allow rule, LDAP/RMI blocked in enforce, unexpected reported
    /// ```
    pub fn summary(&self) -> String {
        let on_off = |b: bool| if b { "on" } else { "off" };
        let exec = &self.exec;
        let mut line = format!(
            "mode {}; {}; {}, {}, {}; {}; memfd {}; {}",
            self.mode,
            count(
                self.jvm.launchers.len() + self.jvm.launcher_paths.len(),
                "JVM launcher"
            ),
            count(exec.shells.len(), "shell"),
            count(exec.interpreters.len(), "interpreter"),
            count(exec.downloaders.len(), "downloader"),
            count(exec.writable_dirs.len(), "writable dir"),
            on_off(exec.memfd),
            count(exec.allow.len(), "allow rule"),
        );
        // Only worth a mention when set: it widens what enforce mode kills.
        if self.response.kill_jvm {
            line.push_str("; kill_jvm on");
        }
        let egress = &self.egress;
        line.push_str(&format!(
            "; egress: {}, LDAP/RMI {}, unexpected {}",
            count(egress.allow.len(), "allow rule"),
            if egress.block_ldap_rmi {
                "blocked in enforce"
            } else {
                "reported"
            },
            if egress.block_unexpected {
                "blocked in enforce"
            } else if egress.report_unexpected {
                "reported"
            } else {
                "ignored"
            },
        ));
        // Only worth a mention when off: the built-in policy quarantines.
        if !egress.quarantine {
            line.push_str(", no quarantine");
        }
        line
    }

    /// Every list empty and every switch off: the base the built-in policy itself is read over,
    /// so that a key missing from `default.toml` shows up as an empty list in tests rather than
    /// as a silent default.
    fn blank() -> Policy {
        Policy {
            mode: Mode::Monitor,
            jvm: JvmPolicy {
                launchers: Vec::new(),
                launcher_paths: Vec::new(),
            },
            response: ResponsePolicy { kill_jvm: false },
            exec: ExecPolicy {
                shells: Vec::new(),
                interpreters: Vec::new(),
                downloaders: Vec::new(),
                writable_dirs: Vec::new(),
                memfd: false,
                allow: Vec::new(),
            },
            egress: EgressPolicy {
                ldap_ports: Vec::new(),
                rmi_ports: Vec::new(),
                dns_ports: Vec::new(),
                block_ldap_rmi: false,
                block_unexpected: false,
                quarantine: false,
                report_unexpected: false,
                allow: Vec::new(),
            },
            dns: DnsPolicy {
                resolvers: Vec::new(),
                // Numbers have no "empty" value; these make every label suspicious, so a key
                // missing from default.toml shows up in tests.
                max_label_len: 1,
                entropy_min_len: 1,
                entropy_bits: 0.0,
                allow_suffixes: Vec::new(),
            },
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::builtin()
    }
}

/// "1 shell", "13 shells".
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
