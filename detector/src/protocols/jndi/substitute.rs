//! Log4j's `StrSubstitutor`, replayed: the lookups an attacker may use to spell `jndi:`,
//! the obfuscation techniques a finding names, and the substitution itself, bounded in depth
//! and work.

use std::{borrow::Cow, ops::Range};

use super::{MAX_DEPTH, WORK_BUDGET};

// === Lookups ===

/// How a lookup's value is found, here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Resolve {
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
pub(super) const LOOKUPS: [(&str, Resolve); 20] = [
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
pub(super) fn registered(prefix: &str) -> Option<(usize, Resolve)> {
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
pub(super) fn date_literal(pattern: &str) -> Option<String> {
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
pub(super) struct Techniques(pub(super) u64);

/// The techniques that are not a lookup, in bit order.
pub(super) const FIXED_TECHNIQUES: [&str; 8] = [
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
    pub(super) const NONE: Self = Self(0);
    pub(super) const URL_ENCODING: Self = Self(1 << 0);
    pub(super) const DOUBLE_URL_ENCODING: Self = Self(1 << 1);
    pub(super) const UNICODE_ESCAPE: Self = Self(1 << 2);
    pub(super) const HTML_ENTITY: Self = Self(1 << 3);
    pub(super) const MIXED_CASE: Self = Self(1 << 4);
    pub(super) const NESTED: Self = Self(1 << 5);
    pub(super) const DEFAULT_VALUE: Self = Self(1 << 6);
    pub(super) const LIMIT_EXCEEDED: Self = Self(1 << 7);

    /// The lookup at `index` in [`LOOKUPS`] was used.
    pub(super) fn lookup(index: usize) -> Self {
        Self(1 << (FIXED_TECHNIQUES.len() + index))
    }

    pub(super) fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub(super) fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    pub(super) fn names(self) -> Vec<&'static str> {
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
pub(super) const OPAQUE_DOLLAR: char = '\u{fdd0}';

pub(super) fn opaque(text: &str) -> String {
    text.replace('$', &OPAQUE_DOLLAR.to_string())
}

pub(super) fn restore(text: &str) -> String {
    text.replace(OPAQUE_DOLLAR, "$")
}

/// A `jndi:` lookup Log4j would have made.
#[derive(Debug)]
pub(super) struct JndiLookup {
    /// What follows `jndi:`, resolved.
    pub(super) name: String,
    /// How the lookup was built.
    pub(super) techniques: Techniques,
}

/// A lookup in the text given to a top-level [`Substitutor::substitute`].
#[derive(Debug)]
pub(super) struct Region {
    /// Where, from `${` to `}` (or the end of the text, when unclosed).
    pub(super) text: Range<usize>,
    /// The JNDI lookups made resolving it, in [`Substitutor::lookups`].
    pub(super) lookups: Range<usize>,
    /// A limit cut resolving it short.
    pub(super) limited: bool,
    /// What it resolved to.
    pub(super) value: String,
}

/// Where a top-level substitution reports its lookups.
#[derive(Debug)]
pub(super) struct TopLevel<'a> {
    pub(super) regions: &'a mut Vec<Region>,
    /// The text may have been cut: resolve a lookup left open at its end as if closed there.
    pub(super) open_end: bool,
}

/// Replays Log4j's `StrSubstitutor.substitute` on attacker text, within [`MAX_DEPTH`] and
/// [`WORK_BUDGET`], recording the JNDI lookups it would make instead of making them.
#[derive(Debug)]
pub(super) struct Substitutor {
    /// Bytes still to be scanned or produced.
    pub(super) budget: usize,
    /// A limit cut the substitution short since this was last cleared.
    pub(super) limited: bool,
    /// Skip an unclosed `${` and go on, where Log4j leaves the rest of the text as it is.
    pub(super) lenient: bool,
    /// Every `jndi:` lookup made, in order.
    pub(super) lookups: Vec<JndiLookup>,
}

impl Substitutor {
    pub(super) fn new(lenient: bool) -> Self {
        Self {
            budget: WORK_BUDGET,
            limited: false,
            lenient,
            lookups: Vec::new(),
        }
    }

    pub(super) fn charge(&mut self, bytes: usize) -> bool {
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
    pub(super) fn substitute(
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
    pub(super) fn evaluate(
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
pub(super) fn brace_pairs(text: &str) -> Vec<(usize, Option<usize>)> {
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
pub(super) struct JndiName<'a> {
    /// Lower-cased; empty when there is none.
    pub(super) scheme: String,
    /// After `scheme:`, or the whole name.
    pub(super) rest: &'a str,
    /// After `scheme://` (or `scheme:`), or the whole name.
    pub(super) target: &'a str,
    /// The scheme was not all lower-case.
    pub(super) mixed_case: bool,
}

impl<'a> JndiName<'a> {
    pub(super) fn parse(name: &'a str) -> Self {
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

    pub(super) fn normalized(&self) -> String {
        if self.scheme.is_empty() {
            format!("${{jndi:{}}}", self.rest)
        } else {
            format!("${{jndi:{}:{}}}", self.scheme, self.rest)
        }
    }
}
