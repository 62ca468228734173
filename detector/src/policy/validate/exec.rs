//! `[exec]`: the program classes a JVM lineage must not execute, and the allow rules.

use toml::Spanned;

use super::jvm::{check_file_path, check_name};
use super::{list, no_nul, one_list_per_value, rule_app, values, Entry, Source, MAX_DIR, MAX_PATH};
use crate::policy::raw::{RawAllow, RawExec};
use crate::policy::{ExecAllow, ExecPolicy, PolicyError};

pub(super) fn exec(
    raw: RawExec,
    base: &ExecPolicy,
    src: &Source<'_>,
) -> Result<ExecPolicy, PolicyError> {
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
pub(super) fn one_class_per_name(
    classes: [(&'static str, &[Entry]); 3],
    src: &Source<'_>,
) -> Result<(), PolicyError> {
    one_list_per_value(
        classes,
        src,
        |name| format!("{name:?}"),
        "a name belongs to one class only",
    )
}

/// One `[[exec.allow]]` rule, the `index`th in the file.
pub(super) fn allow_rule(
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

    let app = rule_app(app, &key("app"), src)?;

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

pub(super) fn check_class_name(name: &str) -> Result<String, String> {
    check_name(name).map_err(|message| {
        if name.contains('/') {
            format!("{message}; a name matches the program in any directory")
        } else {
            message
        }
    })
}

/// Normalised to end with exactly one '/', so that "/tmp" matches "/tmp/x" but not "/tmpfoo".
pub(super) fn check_writable_dir(dir: &str) -> Result<String, String> {
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
pub(super) fn check_allowed_program(program: &str) -> Result<String, String> {
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
