//! From the file as written (`raw`) to a [`Policy`]: checks every value the file sets, normalises
//! it, and takes the base policy's value for every key the file leaves out.
//!
//! The limits are those of the kernel maps the daemon loads the policy into
//! (`detector-common`): basenames are NUL-padded keys of [`NAME_LEN`] bytes, paths are read into
//! [`PATH_LEN`] bytes, and directory prefixes are keys of [`PREFIX_LEN`] bytes. A value that
//! does not fit would be cut and silently match something else, so it is an error here.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use detector_common::{COMM_LEN, NAME_LEN, PATH_LEN, PREFIX_LEN};
use toml::Spanned;

use super::error::PolicyError;
use super::raw::{RawAllow, RawExec, RawJvm, RawPolicy, SpannedList};
use super::{locate, ExecAllow, ExecPolicy, JvmPolicy, Policy, ResponsePolicy};

/// Longest basename a kernel name key holds (it keeps a terminating NUL).
const MAX_NAME: usize = NAME_LEN - 1;
/// Longest process name (`comm`) the kernel keeps.
const MAX_COMM: usize = COMM_LEN - 1;
/// Longest path the kernel reads (it keeps a terminating NUL).
const MAX_PATH: usize = PATH_LEN - 1;
/// Longest directory, before its trailing '/', that fits a prefix key with a terminating NUL.
const MAX_DIR: usize = PREFIX_LEN - 2;

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
        jvm: jvm(raw.jvm, &base.jvm, &src)?,
        response: ResponsePolicy {
            kill_jvm: raw.response.kill_jvm.unwrap_or(base.response.kill_jvm),
        },
        exec: exec(raw.exec, &base.exec, &src)?,
    })
}

/// The text being validated, to turn spans into located errors.
struct Source<'a> {
    text: &'a str,
    origin: &'a Path,
}

impl Source<'_> {
    fn invalid(&self, span: &Range<usize>, key: &str, message: String) -> PolicyError {
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
type Entry = (String, Option<Range<usize>>);

/// Checks every entry of a list the file sets with `check` (which returns the normalised
/// value or what is wrong), or takes `base` when the file leaves the list out.
fn list(
    raw: Option<SpannedList>,
    base: &[String],
    key: &str,
    src: &Source<'_>,
    check: fn(&str) -> Result<String, String>,
) -> Result<Vec<Entry>, PolicyError> {
    let Some(raw) = raw else {
        return Ok(base.iter().map(|v| (v.clone(), None)).collect());
    };
    raw.into_inner()
        .into_iter()
        .map(|item| {
            let span = item.span();
            check(item.get_ref())
                .map(|value| (value, Some(span.clone())))
                .map_err(|message| src.invalid(&span, key, message))
        })
        .collect()
}

fn values(entries: Vec<Entry>) -> Vec<String> {
    entries.into_iter().map(|(value, _)| value).collect()
}

// === [jvm] ===

fn jvm(raw: RawJvm, base: &JvmPolicy, src: &Source<'_>) -> Result<JvmPolicy, PolicyError> {
    // Where to point if both lists end up empty: whichever of them the file set.
    let empty_at = [
        ("jvm.launchers", raw.launchers.as_ref().map(Spanned::span)),
        (
            "jvm.launcher_paths",
            raw.launcher_paths.as_ref().map(Spanned::span),
        ),
    ];
    let launchers = values(list(
        raw.launchers,
        &base.launchers,
        "jvm.launchers",
        src,
        check_launcher_name,
    )?);
    let launcher_paths = values(list(
        raw.launcher_paths,
        &base.launcher_paths,
        "jvm.launcher_paths",
        src,
        check_launcher_path,
    )?);
    if launchers.is_empty() && launcher_paths.is_empty() {
        // The base policy always names a launcher, so one of the two was set by the file.
        if let Some((key, Some(span))) = empty_at.iter().find(|(_, span)| span.is_some()) {
            return Err(src.invalid(
                span,
                key,
                "jvm.launchers and jvm.launcher_paths are both empty, so no JVM would ever be \
                 watched; name at least one launcher"
                    .to_owned(),
            ));
        }
    }
    Ok(JvmPolicy {
        launchers,
        launcher_paths,
    })
}

// === [exec] ===

fn exec(raw: RawExec, base: &ExecPolicy, src: &Source<'_>) -> Result<ExecPolicy, PolicyError> {
    let shells = list(
        raw.shells,
        &base.shells,
        "exec.shells",
        src,
        check_class_name,
    )?;
    let interpreters = list(
        raw.interpreters,
        &base.interpreters,
        "exec.interpreters",
        src,
        check_class_name,
    )?;
    let downloaders = list(
        raw.downloaders,
        &base.downloaders,
        "exec.downloaders",
        src,
        check_class_name,
    )?;
    one_class_per_name(
        [
            ("exec.shells", &shells),
            ("exec.interpreters", &interpreters),
            ("exec.downloaders", &downloaders),
        ],
        src,
    )?;
    let writable_dirs = list(
        raw.writable_dirs,
        &base.writable_dirs,
        "exec.writable_dirs",
        src,
        check_writable_dir,
    )?;
    let allow = raw
        .allow
        .into_iter()
        .enumerate()
        .map(|(i, rule)| allow_rule(i, rule, src))
        .collect::<Result<_, _>>()?;
    Ok(ExecPolicy {
        shells: values(shells),
        interpreters: values(interpreters),
        downloaders: values(downloaders),
        writable_dirs: values(writable_dirs),
        memfd: raw.memfd.unwrap_or(base.memfd),
        allow,
    })
}

/// A name in two classes would make the kernel's class map depend on load order, so it is an
/// error naming both lists. A name twice in one list is harmless and allowed.
fn one_class_per_name(
    classes: [(&'static str, &Vec<Entry>); 3],
    src: &Source<'_>,
) -> Result<(), PolicyError> {
    let mut seen: HashMap<&str, (&'static str, &Option<Range<usize>>)> = HashMap::new();
    for (key, entries) in classes {
        for (name, span) in entries.iter() {
            let Some(&(first_key, first_span)) = seen.get(name.as_str()) else {
                seen.insert(name, (key, span));
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
                    "{name:?} is also in {other_key}{from}; a name belongs to one class only, \
                     so remove it from one of the two lists"
                ),
            ));
        }
    }
    Ok(())
}

/// One `[[exec.allow]]` rule, the `index`th in the file.
fn allow_rule(
    index: usize,
    rule: Spanned<RawAllow>,
    src: &Source<'_>,
) -> Result<ExecAllow, PolicyError> {
    let rule_span = rule.span();
    let RawAllow {
        app,
        programs,
        reason,
    } = rule.into_inner();
    let key = |field: &str| format!("exec.allow[{index}].{field}");

    let app = match app {
        Some(app) if app.get_ref().is_empty() => {
            return Err(src.invalid(
                &app.span(),
                &key("app"),
                "must not be empty; leave `app` out to apply the rule to every JVM".to_owned(),
            ));
        }
        app => app.map(Spanned::into_inner),
    };

    let Some(programs) = programs else {
        return Err(src.invalid(
            &rule_span,
            &key("programs"),
            "missing; every allow rule lists the programs it allows".to_owned(),
        ));
    };
    if programs.get_ref().is_empty() {
        return Err(src.invalid(
            &programs.span(),
            &key("programs"),
            "must list at least one program".to_owned(),
        ));
    }
    let programs = values(list(
        Some(programs),
        &[],
        &key("programs"),
        src,
        check_allowed_program,
    )?);

    Ok(ExecAllow {
        app,
        programs,
        reason,
    })
}

// === checks of single values ===

fn check_launcher_name(name: &str) -> Result<String, String> {
    let name = check_name(name).map_err(|message| {
        if name.contains('/') {
            format!("{message}; list full paths in jvm.launcher_paths")
        } else {
            message
        }
    })?;
    // The kernel recognises a launcher by the new `comm`, which exec sets to the
    // basename cut at TASK_COMM_LEN - 1 bytes.
    if name.len() > MAX_COMM {
        return Err(format!(
            "{name:?} is {} bytes; a launcher name is matched on the process name, which \
             the kernel cuts at {MAX_COMM}: list the full path in jvm.launcher_paths instead",
            name.len()
        ));
    }
    Ok(name)
}

fn check_class_name(name: &str) -> Result<String, String> {
    check_name(name).map_err(|message| {
        if name.contains('/') {
            format!("{message}; a name matches the program in any directory")
        } else {
            message
        }
    })
}

/// A basename used as a kernel map key: launcher names and class names.
fn check_name(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("a name must not be empty".to_owned());
    }
    no_nul(name)?;
    if name.contains('/') {
        return Err(format!("{name:?} must be a basename, without '/'"));
    }
    if name.len() > MAX_NAME {
        return Err(format!(
            "{name:?} is {} bytes; the kernel's name keys hold at most {MAX_NAME}",
            name.len()
        ));
    }
    Ok(name.to_owned())
}

fn check_launcher_path(path: &str) -> Result<String, String> {
    no_nul(path)?;
    if !path.starts_with('/') {
        return Err(format!("{path:?} must be an absolute path"));
    }
    check_file_path(path)?;
    Ok(path.to_owned())
}

/// The parts of an absolute path to a file that the kernel can match exactly.
fn check_file_path(path: &str) -> Result<(), String> {
    if path.ends_with('/') {
        return Err(format!(
            "{path:?} ends with '/'; name the program's file, not a directory"
        ));
    }
    if path.len() > MAX_PATH {
        return Err(format!(
            "{path:?} is {} bytes; the kernel reads at most {MAX_PATH} bytes of a path",
            path.len()
        ));
    }
    Ok(())
}

/// Normalised to end with exactly one '/', so that "/tmp" matches "/tmp/x" but not "/tmpfoo".
fn check_writable_dir(dir: &str) -> Result<String, String> {
    no_nul(dir)?;
    if !dir.starts_with('/') {
        return Err(format!("{dir:?} must be an absolute path"));
    }
    let trimmed = dir.trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(format!(
            "{dir:?} would mark every program as run from a writable directory; name the \
             directories themselves"
        ));
    }
    if trimmed.len() > MAX_DIR {
        return Err(format!(
            "{dir:?} is {} bytes; the kernel's directory prefixes hold at most {MAX_DIR} \
             (plus the trailing '/')",
            trimmed.len()
        ));
    }
    Ok(format!("{trimmed}/"))
}

/// An absolute path (matched exactly) or a basename (matched on the executed file's basename).
/// The kernel keys allow entries by a hash, so a basename may be as long as a path.
fn check_allowed_program(program: &str) -> Result<String, String> {
    if program.is_empty() {
        return Err("a program must not be empty".to_owned());
    }
    no_nul(program)?;
    if program.starts_with('/') {
        check_file_path(program)?;
    } else if program.contains('/') {
        return Err(format!(
            "{program:?} must be an absolute path or a plain basename"
        ));
    } else if program.len() > MAX_PATH {
        return Err(format!(
            "{program:?} is {} bytes; the kernel reads at most {MAX_PATH} bytes of a name",
            program.len()
        ));
    }
    Ok(program.to_owned())
}

/// The kernel compares NUL-terminated strings: a NUL would end the value early.
fn no_nul(value: &str) -> Result<(), String> {
    if value.contains('\0') {
        Err(format!("{value:?} must not contain a NUL character"))
    } else {
        Ok(())
    }
}
