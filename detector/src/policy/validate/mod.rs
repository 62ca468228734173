//! From the file as written (`raw`) to a [`Policy`]: checks every value the file sets, normalises
//! it, and takes the base policy's value for every key the file leaves out. One file per
//! section of the policy (`jvm`, `exec`, `egress`, `dns`, and `sinks` for `[delivery]` and
//! `[[sinks]]`: where alerts go, the settings the sinks layer is started with).
//!
//! The limits are those of the kernel maps the daemon loads the policy into
//! (`detector-common`): basenames are NUL-padded keys of [`NAME_LEN`] bytes, paths are read into
//! [`PATH_LEN`] bytes, and directory prefixes are keys of [`PREFIX_LEN`] bytes. A value that
//! does not fit would be cut and silently match something else, so it is an error here. The
//! egress allowlist goes into an LPM trie whose entries hold
//! [`ALLOW_PORTS`](detector_common::ALLOW_PORTS) ports each.

mod dns;
mod egress;
mod exec;
mod jvm;
mod sinks;

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::ops::{Range, RangeInclusive};
use std::path::Path;

use detector_common::{COMM_LEN, NAME_LEN, PATH_LEN, PREFIX_LEN};
use toml::Spanned;

use super::error::PolicyError;
use super::raw::RawPolicy;
use super::{locate, Policy, ResponsePolicy};
use sinks::{delivery, sinks};

/// Longest basename a kernel name key holds (it keeps a terminating NUL).
pub(super) const MAX_NAME: usize = NAME_LEN - 1;
/// Longest process name (`comm`) the kernel keeps.
pub(super) const MAX_COMM: usize = COMM_LEN - 1;
/// Longest path the kernel reads (it keeps a terminating NUL).
pub(super) const MAX_PATH: usize = PATH_LEN - 1;
/// Longest directory, before its trailing '/', that fits a prefix key with a terminating NUL.
pub(super) const MAX_DIR: usize = PREFIX_LEN - 2;

/// Checks `raw`, read from `text` (named `origin` in errors), and fills what it leaves out from
/// `base`.
pub(super) fn validate(
    raw: RawPolicy,
    base: &Policy,
    text: &str,
    origin: &Path,
) -> Result<Policy, PolicyError> {
    let src = Source { text, origin };
    Ok(Policy {
        mode: raw.mode.unwrap_or(base.mode),
        jvm: jvm::jvm(raw.jvm, &base.jvm, &src)?,
        response: ResponsePolicy {
            kill_jvm: raw.response.kill_jvm.unwrap_or(base.response.kill_jvm),
            on_chain: raw.response.on_chain.unwrap_or(base.response.on_chain),
        },
        exec: exec::exec(raw.exec, &base.exec, &src)?,
        egress: egress::egress(raw.egress, &base.egress, &src)?,
        dns: dns::dns(raw.dns, &base.dns, &src)?,
        delivery: delivery(raw.delivery, &base.delivery, &src)?,
        sinks: sinks(raw.sinks, &base.sinks, &src)?,
    })
}

/// The text being validated, to turn spans into located errors.
pub(crate) struct Source<'a> {
    text: &'a str,
    origin: &'a Path,
}

impl Source<'_> {
    pub(crate) fn invalid(&self, span: &Range<usize>, key: &str, message: String) -> PolicyError {
        PolicyError::Invalid {
            path: self.origin.to_owned(),
            line: locate::line(self.text, span.start),
            key: key.to_owned(),
            message,
        }
    }
}

/// A list entry after its check: its normalised value, and its span when the file set it
/// (`None` when it came from the base policy).
pub(crate) type Entry<T = String> = (T, Option<Range<usize>>);

/// Checks every entry of a list the file sets with `check` (which returns the normalised
/// value or what is wrong), or takes `base` when the file leaves the list out.
pub(crate) fn list<R, Q, T>(
    raw: Option<Spanned<Vec<Spanned<R>>>>,
    base: &[T],
    key: &str,
    src: &Source<'_>,
    check: impl Fn(&Q) -> Result<T, String>,
) -> Result<Vec<Entry<T>>, PolicyError>
where
    R: Borrow<Q>,
    Q: ?Sized,
    T: Clone,
{
    let Some(raw) = raw else {
        return Ok(base.iter().map(|v| (v.clone(), None)).collect());
    };
    raw.into_inner()
        .into_iter()
        .map(|item| {
            let span = item.span();
            check(item.get_ref().borrow())
                .map(|value| (value, Some(span.clone())))
                .map_err(|message| src.invalid(&span, key, message))
        })
        .collect()
}

pub(crate) fn values<T>(entries: Vec<Entry<T>>) -> Vec<T> {
    entries.into_iter().map(|(value, _)| value).collect()
}

/// A number the file sets, checked with `check`, or `base` when the file leaves it out.
pub(super) fn number<T: Copy>(
    raw: Option<Spanned<T>>,
    base: T,
    key: &str,
    src: &Source<'_>,
    check: impl Fn(T) -> Result<T, String>,
) -> Result<T, PolicyError> {
    match raw {
        None => Ok(base),
        Some(value) => {
            check(*value.get_ref()).map_err(|message| src.invalid(&value.span(), key, message))
        }
    }
}

/// A count the file sets, which must lie in `range`, or `base` when the file leaves it out.
pub(crate) fn count_in(
    raw: Option<Spanned<i64>>,
    base: usize,
    key: &str,
    src: &Source<'_>,
    range: RangeInclusive<i64>,
    why: &str,
) -> Result<usize, PolicyError> {
    let base = i64::try_from(base).unwrap_or(i64::MAX);
    let value = number(raw, base, key, src, |n| {
        if range.contains(&n) {
            Ok(n)
        } else {
            Err(format!(
                "{n} is out of range; it must be {} to {}{why}",
                range.start(),
                range.end()
            ))
        }
    })?;
    // In range, and the range is of small positive numbers.
    Ok(usize::try_from(value).unwrap_or(usize::MAX))
}

/// A value in two of `lists` is an error naming both lists, at whichever of the two the file
/// set; `describe` names the value and `rule` says why it may be in one list only. A value
/// twice in one list is harmless and allowed.
pub(super) fn one_list_per_value<T: Eq + Hash>(
    lists: [(&'static str, &[Entry<T>]); 3],
    src: &Source<'_>,
    describe: impl Fn(&T) -> String,
    rule: &str,
) -> Result<(), PolicyError> {
    let mut seen: HashMap<&T, (&'static str, &Option<Range<usize>>)> = HashMap::new();
    for (key, entries) in lists {
        for (value, span) in entries.iter() {
            let Some(&(first_key, first_span)) = seen.get(value) else {
                seen.insert(value, (key, span));
                continue;
            };
            if first_key == key {
                continue;
            }
            // Point at whichever of the two the file set, and say where the other came from.
            // Two entries from the base policy never clash: it was validated itself.
            let (at_key, at_span, other_key, other_span) = match (span, first_span) {
                (Some(at), other) => (key, at, first_key, other),
                (None, Some(at)) => (first_key, at, key, span),
                (None, None) => continue,
            };
            let from = if other_span.is_some() {
                ""
            } else {
                " (the built-in list)"
            };
            return Err(src.invalid(
                at_span,
                at_key,
                format!(
                    "{} is also in {other_key}{from}; {rule}, so remove it from one of the two \
                     lists",
                    describe(value)
                ),
            ));
        }
    }
    Ok(())
}

/// The `app` of an allow rule (exec or egress): absent means every JVM, empty is a mistake.
pub(super) fn rule_app(
    app: Option<Spanned<String>>,
    key: &str,
    src: &Source<'_>,
) -> Result<Option<String>, PolicyError> {
    match app {
        Some(app) if app.get_ref().is_empty() => Err(src.invalid(
            &app.span(),
            key,
            "must not be empty; leave `app` out to apply the rule to every JVM".to_owned(),
        )),
        app => Ok(app.map(Spanned::into_inner)),
    }
}

/// The kernel compares NUL-terminated strings: a NUL would end the value early.
pub(crate) fn no_nul(value: &str) -> Result<(), String> {
    if value.contains('\0') {
        Err(format!("{value:?} must not contain a NUL character"))
    } else {
        Ok(())
    }
}
