//! What a JVM's first outbound bytes say: pure parsers for the protocols a JNDI lookup speaks
//! (LDAP, Java RMI's JRMP, DNS), used to describe a payload sample in an alert. No I/O.
//!
//! The kernel decides *whether* a payload is LDAP, JRMP or DNS with
//! [`detector_common::classify_payload`]; these parsers only read the details out of the
//! sample it sent (at most [`SAMPLE_LEN`](detector_common::SAMPLE_LEN) bytes, so often cut),
//! and return what they could decode rather than fail on a cut. Everything in a sample is
//! attacker-controlled: nothing here panics on any input, and every string that reaches an
//! [`indicator`] is escaped.
//!
//! The vectors in `testdata/` were captured from the JDK's own JNDI providers; see
//! `testdata/README.md`.

pub mod dns;
pub mod jndi;
pub mod jrmp;
pub mod ldap;

#[cfg(test)]
mod tests;

use std::fmt;

use detector_common as kernel;

/// The decoded start of a payload sample, by the protocol the kernel recognised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Details {
    /// The first LDAP message.
    Ldap(ldap::LdapRequest),
    /// The JRMP header (and the call after it, when the sample holds one).
    Jrmp(jrmp::JrmpHeader),
    /// The question of a DNS query.
    Dns(dns::DnsQuery),
}

impl Details {
    /// Decodes `sample` as the protocol `class` (`PROTO_*`) names; `udp` is the transport
    /// (DNS over TCP carries a length prefix). `None` when `class` is [`kernel::PROTO_NONE`],
    /// unknown, or the sample does not decode as that protocol.
    pub fn parse(class: u32, sample: &[u8], udp: bool) -> Option<Self> {
        match class {
            kernel::PROTO_LDAP => ldap::parse_request(sample).map(Details::Ldap),
            kernel::PROTO_RMI => jrmp::parse_header(sample).map(Details::Jrmp),
            kernel::PROTO_DNS => dns::parse_query(sample, !udp).map(Details::Dns),
            _ => None,
        }
    }
}

/// A short, single-line description of the payload for an alert, e.g. `bind dn=""`,
/// `search base="cn=x,dc=y" filter=(objectClass=*)`, `JRMP v2 stream protocol` or
/// `query A evil.example`. See [`Details::parse`] for the arguments.
pub fn indicator(class: u32, sample: &[u8], udp: bool) -> Option<String> {
    Details::parse(class, sample, udp).map(|details| details.to_string())
}

impl fmt::Display for Details {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Details::Ldap(request) => request.fmt(f),
            Details::Jrmp(header) => header.fmt(f),
            Details::Dns(query) => query.fmt(f),
        }
    }
}

/// A string from a sample, in double quotes, safe to put in a log line: printable ASCII and
/// letters or digits of any script stay as they are; quotes, backslashes, control, format
/// (e.g. bidirectional overrides) and other characters become Rust-style escapes.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                ' '..='~' => write!(f, "{c}")?,
                c if c.is_alphanumeric() => write!(f, "{c}")?,
                c => write!(f, "\\u{{{:x}}}", u32::from(c))?,
            }
        }
        f.write_str("\"")
    }
}
