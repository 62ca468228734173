//! The policy file as written: serde structs that mirror the TOML, with every key optional and
//! unknown keys rejected. Values keep their byte spans (`toml::Spanned`) so that `validate` can
//! point at the line of a value it rejects. Nothing outside the policy module sees these.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::error::PolicyError;
use super::{locate, Mode, SinkType};
use crate::vocab::Severity;

/// A list of strings, with the span of the list and of each entry.
pub(super) type SpannedList = Spanned<Vec<Spanned<String>>>;

/// A list of ports. Read as `i64` so that `0` or `70000` is reported by `validate`, with the
/// valid range, rather than by serde as "expected u16".
pub(super) type SpannedPorts = Spanned<Vec<Spanned<i64>>>;

/// The whole file. `None` (or an empty table) means "as the base policy says".
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    pub mode: Option<Mode>,
    #[serde(default)]
    pub jvm: RawJvm,
    #[serde(default)]
    pub response: RawResponse,
    #[serde(default)]
    pub exec: RawExec,
    #[serde(default)]
    pub egress: RawEgress,
    #[serde(default)]
    pub dns: RawDns,
    /// Like `egress.allow`, absent means "as the base policy says" (the built-in policy has one
    /// stdout sink) and a list the file sets replaces it.
    pub sinks: Option<Spanned<Vec<Spanned<RawSink>>>>,
    #[serde(default)]
    pub delivery: RawDelivery,
}

/// `[jvm]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJvm {
    pub launchers: Option<SpannedList>,
    pub launcher_paths: Option<SpannedList>,
    pub recognise_libjvm: Option<bool>,
    pub libjvm_paths: Option<SpannedList>,
}

/// `[response]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawResponse {
    pub kill_jvm: Option<bool>,
    pub on_chain: Option<super::ChainAction>,
}

/// `[exec]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExec {
    pub shells: Option<SpannedList>,
    pub interpreters: Option<SpannedList>,
    pub downloaders: Option<SpannedList>,
    pub writable_dirs: Option<SpannedList>,
    pub memfd: Option<bool>,
    /// Unlike the lists above, absent means "no rules", never the base policy's rules: allow
    /// rules are site-specific and the built-in policy has none.
    #[serde(default)]
    pub allow: Vec<Spanned<RawAllow>>,
}

/// `[[exec.allow]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAllow {
    pub app: Option<Spanned<String>>,
    /// Required, but optional here so that a missing list is reported by `validate` with the
    /// rule's index in the key, rather than by serde.
    pub programs: Option<SpannedList>,
    pub reason: Option<String>,
}

/// `[egress]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEgress {
    pub ldap_ports: Option<SpannedPorts>,
    pub rmi_ports: Option<SpannedPorts>,
    pub dns_ports: Option<SpannedPorts>,
    pub block_ldap_rmi: Option<bool>,
    pub block_unexpected: Option<bool>,
    pub quarantine: Option<bool>,
    pub report_unexpected: Option<bool>,
    /// Like every list, absent means "as the base policy says" (the built-in policy allows
    /// loopback) and a list the file sets replaces it. `[[exec.allow]]` reads absent as "no
    /// rules" instead, which comes to the same because the built-in policy has none there.
    pub allow: Option<Vec<Spanned<RawNetAllow>>>,
}

/// `[[egress.allow]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetAllow {
    pub app: Option<Spanned<String>>,
    /// Required, but optional here so that a missing list is reported by `validate` with the
    /// rule's index in the key, rather than by serde.
    pub cidrs: Option<SpannedList>,
    pub ports: Option<SpannedPorts>,
    pub reason: Option<String>,
}

/// `[dns]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDns {
    pub resolvers: Option<SpannedList>,
    pub max_label_len: Option<Spanned<i64>>,
    pub entropy_min_len: Option<Spanned<i64>>,
    pub entropy_bits: Option<Spanned<f64>>,
    pub allow_suffixes: Option<SpannedList>,
}

/// `[[sinks]]`: every key any sink type has, so that a key no sink has is an "unknown field"
/// error from serde, and a key of another type is reported by `validate` with the keys this
/// type has.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSink {
    /// Required, but optional here so that a missing type is reported by `validate` with the
    /// sink's index in the key.
    #[serde(rename = "type")]
    pub kind: Option<Spanned<SinkType>>,
    pub name: Option<Spanned<String>>,
    pub min_severity: Option<Spanned<Severity>>,
    pub rules: Option<SpannedList>,
    // file
    pub path: Option<Spanned<String>>,
    pub max_bytes: Option<Spanned<i64>>,
    pub keep: Option<Spanned<i64>>,
    // webhook, pagerduty, alertmanager
    pub url: Option<Spanned<String>>,
    pub headers: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    pub hmac_key_env: Option<Spanned<String>>,
    pub hmac_key_file: Option<Spanned<String>>,
    pub routing_key_env: Option<Spanned<String>>,
    pub routing_key_file: Option<Spanned<String>>,
    pub webhook_url_env: Option<Spanned<String>>,
    pub webhook_url_file: Option<Spanned<String>>,
    // syslog
    pub socket: Option<Spanned<String>>,
    pub facility: Option<Spanned<String>>,
    pub format: Option<Spanned<String>>,
    // delivery, overriding [delivery] (serde's `flatten` would lose the spans and
    // `deny_unknown_fields`, so the keys are repeated)
    pub timeout: Option<Spanned<String>>,
    pub give_up_after: Option<Spanned<String>>,
    pub queue: Option<Spanned<i64>>,
    pub rate_per_minute: Option<Spanned<i64>>,
    pub dedup_window: Option<Spanned<String>>,
}

/// `[delivery]`: the alert journal, and the delivery keys every sink takes unless it sets its own.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDelivery {
    pub spool_dir: Option<Spanned<String>>,
    pub journal_max_bytes: Option<Spanned<i64>>,
    pub timeout: Option<Spanned<String>>,
    pub give_up_after: Option<Spanned<String>>,
    pub queue: Option<Spanned<i64>>,
    pub rate_per_minute: Option<Spanned<i64>>,
    pub dedup_window: Option<Spanned<String>>,
}

/// Parses `text` against the schema; `origin` names it in errors.
pub(super) fn parse(text: &str, origin: &Path) -> Result<RawPolicy, PolicyError> {
    toml::from_str(text).map_err(|err| {
        // The parser gives no position only for errors about the document as a whole, so the
        // top of the file is the honest place to point at.
        let offset = err.span().map_or(0, |span| span.start);
        let (line, column) = locate::line_column(text, offset);
        PolicyError::Parse {
            path: origin.to_owned(),
            line,
            column,
            key: locate::key_at(text, offset),
            // Syntax errors come as several lines ("invalid string\nexpected ..."); the error is
            // printed as one line.
            message: err
                .message()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; "),
        }
    })
}
