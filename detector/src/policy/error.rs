//! Why a policy was rejected. Every message names the file and the line, and the key when one is
//! known, because `detector check-config` prints it for a person to fix.

use std::fmt;
use std::io;
use std::path::PathBuf;

use detector_common::ALLOW_PORTS;

use super::Cidr;

/// A policy that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy file could not be read.
    #[error("{}: cannot read the policy file", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },

    /// The file is not TOML, or does not fit the schema: a syntax error, an unknown key, a value
    /// of the wrong type.
    #[error("{}:{line}:{column}: {}{message}", path.display(), KeyPrefix(key.as_deref()))]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (in characters) of the error.
        column: usize,
        /// Dotted path of the key at the error (`exec.allow[0].app`), when the text is valid
        /// TOML and the error points into a key or its value.
        key: Option<String>,
        /// What the TOML parser said, on one line.
        message: String,
    },

    /// The file fits the schema but a value breaks a rule of the policy (a path that is not
    /// absolute, a name too long for the kernel's map keys, a name in two classes, ...).
    #[error("{}:{line}: {key}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending value.
        line: usize,
        /// Dotted path of the offending key (`exec.allow[0].programs`).
        key: String,
        /// What is wrong and what would be right.
        message: String,
    },
}

/// `--mode` or `mode =` named neither `monitor` nor `enforce`.
#[derive(Debug, thiserror::Error)]
#[error("unknown mode `{value}`, expected `monitor` or `enforce`")]
pub struct ParseModeError {
    /// What was given.
    pub value: String,
}

/// Text that is not an IPv4 or IPv6 network (`egress.allow[].cidrs`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// Not an address, with or without a prefix length.
    #[error(
        "{text:?} is not an IP address or network; write an IPv4 or IPv6 address, with an \
         optional prefix length (\"10.0.0.0/8\", \"fd00::/8\", \"10.0.0.5\")"
    )]
    Address {
        /// What was given.
        text: String,
    },

    /// The prefix length is not a number, or too long for the address family.
    #[error("{text:?}: the prefix length must be a number from 0 to {max}")]
    Prefix {
        /// What was given.
        text: String,
        /// 32 for IPv4, 128 for IPv6.
        max: u8,
    },

    /// Bits after the prefix are set (`10.0.0.5/8`): either the prefix or the address is not
    /// what was meant, so it is refused rather than silently widened or narrowed.
    #[error("{text:?} has host bits set; did you mean \"{network}\"?")]
    HostBits {
        /// What was given.
        text: String,
        /// The network the address is in, at the given prefix length.
        network: Cidr,
    },
}

/// A sink's secret (`[[sinks]] *_env`, `*_file`) could not be read when the daemon started.
/// Messages name the policy key and the variable or file, never the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The environment variable is not set.
    #[error("{key}: the environment variable {var} is not set")]
    EnvMissing {
        /// The policy key that names the variable.
        key: String,
        /// The variable.
        var: String,
    },

    /// The environment variable is not valid UTF-8.
    #[error("{key}: the environment variable {var} is not valid UTF-8")]
    EnvNotUnicode {
        /// The policy key that names the variable.
        key: String,
        /// The variable.
        var: String,
    },

    /// The file could not be read.
    #[error("{key}: cannot read {}", path.display())]
    File {
        /// The policy key that names the file.
        key: String,
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },

    /// The variable or file holds nothing but white space.
    #[error("{key}: the secret is empty")]
    Empty {
        /// The policy key that names the variable or file.
        key: String,
    },
}

/// The egress allowlist does not fit the kernel's `NET_ALLOW` trie.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelAllowError {
    /// The rules covering one network allow more explicit ports, together, than a trie entry
    /// holds. The trie returns only the longest matching network, so its entry carries the
    /// ports of every rule whose network contains it.
    #[error(
        "{cidr}: {} together allow {} ports ({}), more than the {ALLOW_PORTS} one kernel \
         allowlist entry holds; leave `ports` out of one of them (any port but LDAP and RMI) \
         or allow fewer ports",
        RuleList(rules),
        ports.len(),
        PortList(ports)
    )]
    TooManyPorts {
        /// The network whose kernel entry overflows.
        cidr: Cidr,
        /// Indices in `egress.allow` of the rules that cover it.
        rules: Vec<usize>,
        /// Every port they allow explicitly, sorted.
        ports: Vec<u16>,
    },
}

/// "egress.allow[0] and egress.allow[2]".
struct RuleList<'a>(&'a [usize]);

impl fmt::Display for RuleList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = self.0.len().saturating_sub(1);
        for (i, index) in self.0.iter().enumerate() {
            match i {
                0 => {}
                _ if i == last => f.write_str(" and ")?,
                _ => f.write_str(", ")?,
            }
            write!(f, "egress.allow[{index}]")?;
        }
        Ok(())
    }
}

/// "22, 80, 443".
struct PortList<'a>(&'a [u16]);

impl fmt::Display for PortList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, port) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{port}")?;
        }
        Ok(())
    }
}

/// Writes `key: ` when there is a key, nothing otherwise.
struct KeyPrefix<'a>(Option<&'a str>);

impl fmt::Display for KeyPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(key) => write!(f, "{key}: "),
            None => Ok(()),
        }
    }
}
