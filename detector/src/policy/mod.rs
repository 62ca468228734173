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
//! entries of the kernel's allowlist trie, [`EgressPolicy::allow_unions`]), with the
//! networks themselves in `cidr`. `dns` judges query names ([`DnsPolicy::suspicious`]); that
//! is done in userspace only.
//!
//! `[[sinks]]` and `[delivery]` say where alerts go and how ([`SinkPolicy`], [`DeliveryPolicy`]),
//! checked in `validate::sinks` (below the sinks layer, which is started with them); the policy names where each secret is ([`SecretRef`])
//! and never holds one: the sinks read them when the daemon starts.
//!
//! See `docs/policy.md` for how to write a policy, and `docs/sinks.md` for the sinks.

mod cidr;
mod dns;
pub(crate) mod egress;
mod error;
mod locate;
mod matching;
pub(crate) mod raw;
pub(crate) mod validate;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use serde::Deserialize;

use crate::vocab::{Rule, Severity};

pub use cidr::Cidr;
pub use egress::AllowUnion;
pub use error::{CidrError, KernelAllowError, ParseModeError, PolicyError, SecretError};
pub use matching::{app_applies, basename, strip_version};

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
    /// Where alerts go (`[[sinks]]`), in the order the file lists them; never empty.
    pub sinks: Vec<SinkPolicy>,
    /// How alerts reach the sinks (`[delivery]`): the spool, and every sink's defaults.
    pub delivery: DeliveryPolicy,
}

/// Which executed programs start a tracked JVM lineage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JvmPolicy {
    /// Basenames of JVM launcher binaries (each at most 31 bytes, no '/').
    pub launchers: Vec<String>,
    /// Absolute paths of JVM launchers, matched exactly (each at most 255 bytes).
    pub launcher_paths: Vec<String>,
    /// Recognise a process that loads `libjvm.so` as a JVM (`dlopen` and
    /// `JNI_CreateJavaVM` uprobes, `/proc/PID/maps`), whatever its launcher.
    pub recognise_libjvm: bool,
    /// Extra `libjvm.so` files, or directories to search for them, whose
    /// `JNI_CreateJavaVM` is probed (absolute paths).
    pub libjvm_paths: Vec<String>,
}

/// What enforce mode does beyond killing the offending program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponsePolicy {
    /// Also kill the JVM whose descendant was killed.
    pub kill_jvm: bool,
    /// What enforce mode does to a JVM whose incident became an `exploit_chain`.
    pub on_chain: ChainAction,
}

/// The escalation on `exploit_chain` (enforce mode). Every option first quarantines the
/// JVM's egress and kills its descendants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainAction {
    /// Nothing more: the service keeps running, cut off from everything but its allowlist.
    #[default]
    Quarantine,
    /// Stop the JVM (SIGSTOP) and capture forensics from /proc: a human decides.
    Freeze,
    /// Capture forensics, then kill the JVM.
    Kill,
}

impl ChainAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ChainAction::Quarantine => "quarantine",
            ChainAction::Freeze => "freeze",
            ChainAction::Kill => "kill",
        }
    }
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

/// `[[sinks]] type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkType {
    /// JSON lines on standard output.
    Stdout,
    /// JSON lines in a file, rotated by size.
    File,
    /// A JSON POST of the alert record, optionally signed.
    Webhook,
    /// PagerDuty Events API v2.
    PagerDuty,
    /// A Slack incoming webhook.
    Slack,
    /// Prometheus Alertmanager API v2.
    Alertmanager,
    /// RFC 5424 over a local datagram socket.
    Syslog,
}

/// One `[[sinks]]` entry: where alerts go, and which of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkPolicy {
    /// Unique among the sinks: letters, digits, `-` and `_` (it names the spool directory).
    pub name: String,
    /// Alerts below this severity are not sent here.
    pub min_severity: Severity,
    /// Only alerts of these rules are sent here; `None`: every rule.
    pub rules: Option<Vec<Rule>>,
    /// The sink itself.
    pub target: SinkTarget,
    /// Delivery keys the sink sets itself; the rest come from `[delivery]`
    /// ([`SinkPolicy::delivery`]).
    pub overrides: DeliveryOverrides,
}

/// What a sink writes to or calls, with its type's keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkTarget {
    Stdout,
    File {
        /// Absolute.
        path: PathBuf,
        /// Rotate before the file would grow past this size; 0 never rotates.
        max_bytes: u64,
        /// Rotated files kept: `path.1` (newest) to `path.<keep>`.
        keep: u32,
    },
    Webhook {
        /// `http` or `https`.
        url: String,
        /// Sent with every request; names are valid HTTP header names, none of them one the
        /// detector sets itself.
        headers: Vec<(String, String)>,
        /// Key for the `X-Detector-Signature` header; `None`: requests are not signed.
        hmac_key: Option<SecretRef>,
    },
    PagerDuty {
        /// The Events API v2 endpoint.
        url: String,
        routing_key: SecretRef,
    },
    Slack {
        /// The incoming-webhook URL, which is itself the credential.
        webhook_url: SecretRef,
    },
    Alertmanager {
        /// The alerts endpoint: the configured base URL + `/api/v2/alerts`.
        url: String,
    },
    Syslog {
        /// Absolute path of a datagram socket.
        socket: PathBuf,
        /// RFC 5424 facility code (`auth` is 4).
        facility: u8,
        /// How each message is framed.
        format: SyslogFormat,
    },
}

/// How a `syslog` sink frames a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogFormat {
    /// `<PRI>Mmm dd hh:mm:ss detector[PID]: MSG`, what syslog(3) writes to `/dev/log`: journald
    /// and rsyslog take the identifier from it (`journalctl -t detector`). The default.
    Rfc3164,
    /// `<PRI>1 TIMESTAMP HOST detector PID ALERT - MSG`, for relays that parse RFC 5424
    /// (journald does not: it would lose the identifier).
    Rfc5424,
}

/// Where a secret is read from when the daemon starts. The policy names the place, never the
/// value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRef {
    /// The policy key that names it (`sinks[1].routing_key_env`), for start-up errors.
    pub key: String,
    pub source: SecretSource,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable of the daemon.
    Env(String),
    /// A file (absolute path); surrounding white space is trimmed.
    File(PathBuf),
}

/// How one sink's alerts are delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SinkDelivery {
    /// One HTTP request, from connecting to the end of the response.
    pub timeout: Duration,
    /// How long one alert is retried before it is left in the spool.
    pub give_up_after: Duration,
    /// Alerts held in memory for the sink; past that they go to the spool.
    pub queue: usize,
    /// Requests per minute at most; 0: no limit.
    pub rate_per_minute: u32,
    /// An alert repeating an earlier one of the same incident (same rule, action and summary)
    /// within this window is not sent again; zero: every alert is sent.
    pub dedup_window: Duration,
}

/// The delivery keys one `[[sinks]]` entry sets (`None`: as `[delivery]` says).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryOverrides {
    pub timeout: Option<Duration>,
    pub give_up_after: Option<Duration>,
    pub queue: Option<usize>,
    pub rate_per_minute: Option<u32>,
    pub dedup_window: Option<Duration>,
}

/// `[delivery]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// Absolute; the alert journal (every alert until each sink has delivered it), across
    /// restarts.
    pub spool_dir: PathBuf,
    /// The most the journal may take on disk; past it the oldest undelivered alerts go.
    pub journal_max_bytes: u64,
    /// What every sink uses unless it sets its own.
    pub defaults: SinkDelivery,
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
        if self.response.on_chain != ChainAction::Quarantine {
            line.push_str(&format!(
                "; on exploit chain: {}",
                self.response.on_chain.as_str()
            ));
        }
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
        // Only worth a mention when not the built-in single stdout sink.
        if !matches!(self.sinks.as_slice(), [only] if only.target == SinkTarget::Stdout) {
            let names: Vec<String> = self
                .sinks
                .iter()
                .map(|sink| {
                    let kind = sink.target.kind().as_str();
                    if sink.name == kind {
                        sink.name.clone()
                    } else {
                        format!("{} ({kind})", sink.name)
                    }
                })
                .collect();
            line.push_str(&format!("; sinks: {}", names.join(", ")));
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
                recognise_libjvm: false,
                libjvm_paths: Vec::new(),
            },
            response: ResponsePolicy {
                kill_jvm: false,
                on_chain: ChainAction::Quarantine,
            },
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
            sinks: Vec::new(),
            delivery: DeliveryPolicy {
                spool_dir: PathBuf::new(),
                journal_max_bytes: 0,
                defaults: SinkDelivery {
                    timeout: Duration::ZERO,
                    give_up_after: Duration::ZERO,
                    queue: 0,
                    rate_per_minute: 0,
                    dedup_window: Duration::ZERO,
                },
            },
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::builtin()
    }
}

// === impl sinks ===

impl SinkType {
    /// The name used in the policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkType::Stdout => "stdout",
            SinkType::File => "file",
            SinkType::Webhook => "webhook",
            SinkType::PagerDuty => "pagerduty",
            SinkType::Slack => "slack",
            SinkType::Alertmanager => "alertmanager",
            SinkType::Syslog => "syslog",
        }
    }
}

impl SinkTarget {
    pub fn kind(&self) -> SinkType {
        match self {
            SinkTarget::Stdout => SinkType::Stdout,
            SinkTarget::File { .. } => SinkType::File,
            SinkTarget::Webhook { .. } => SinkType::Webhook,
            SinkTarget::PagerDuty { .. } => SinkType::PagerDuty,
            SinkTarget::Slack { .. } => SinkType::Slack,
            SinkTarget::Alertmanager { .. } => SinkType::Alertmanager,
            SinkTarget::Syslog { .. } => SinkType::Syslog,
        }
    }
}

impl SinkPolicy {
    /// The sink's delivery settings: its own keys, the rest from `defaults` (`[delivery]`).
    pub fn delivery(&self, defaults: &SinkDelivery) -> SinkDelivery {
        let o = &self.overrides;
        SinkDelivery {
            timeout: o.timeout.unwrap_or(defaults.timeout),
            give_up_after: o.give_up_after.unwrap_or(defaults.give_up_after),
            queue: o.queue.unwrap_or(defaults.queue),
            rate_per_minute: o.rate_per_minute.unwrap_or(defaults.rate_per_minute),
            dedup_window: o.dedup_window.unwrap_or(defaults.dedup_window),
        }
    }

    /// Whether an alert of `rule` at `severity` goes to this sink.
    pub fn accepts(&self, rule: Rule, severity: Severity) -> bool {
        severity >= self.min_severity
            && self
                .rules
                .as_ref()
                .is_none_or(|rules| rules.contains(&rule))
    }
}

impl SecretRef {
    /// Reads the secret. The error names the key and the variable or file, never a value.
    pub fn read(&self) -> Result<String, SecretError> {
        let value = match &self.source {
            SecretSource::Env(var) => match std::env::var(var) {
                Ok(value) => value,
                Err(std::env::VarError::NotPresent) => {
                    return Err(SecretError::EnvMissing {
                        key: self.key.clone(),
                        var: var.clone(),
                    })
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(SecretError::EnvNotUnicode {
                        key: self.key.clone(),
                        var: var.clone(),
                    })
                }
            },
            SecretSource::File(path) => {
                std::fs::read_to_string(path).map_err(|source| SecretError::File {
                    key: self.key.clone(),
                    path: path.clone(),
                    source,
                })?
            }
        };
        let value = value.trim();
        if value.is_empty() {
            return Err(SecretError::Empty {
                key: self.key.clone(),
            });
        }
        Ok(value.to_owned())
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
