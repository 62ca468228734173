//! `[jvm]`: which programs are JVM launchers.

use toml::Spanned;

use super::{list, no_nul, values, Source, MAX_COMM, MAX_NAME, MAX_PATH};
use crate::policy::raw::RawJvm;
use crate::policy::{JvmPolicy, PolicyError};

pub(super) fn jvm(
    raw: RawJvm,
    base: &JvmPolicy,
    src: &Source<'_>,
) -> Result<JvmPolicy, PolicyError> {
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
    let libjvm_at = raw.libjvm_paths.as_ref().map(Spanned::span);
    let libjvm_paths = values(list(
        raw.libjvm_paths,
        &base.libjvm_paths,
        "jvm.libjvm_paths",
        src,
        check_libjvm_path,
    )?);
    let recognise_libjvm = raw.recognise_libjvm.unwrap_or(base.recognise_libjvm);
    if !recognise_libjvm && !libjvm_paths.is_empty() {
        if let Some(span) = libjvm_at {
            return Err(src.invalid(
                &span,
                "jvm.libjvm_paths",
                "jvm.libjvm_paths is set but jvm.recognise_libjvm is false, so no libjvm.so \
                 would be probed; set recognise_libjvm = true or remove the paths"
                    .to_owned(),
            ));
        }
    }
    Ok(JvmPolicy {
        launchers,
        launcher_paths,
        recognise_libjvm,
        libjvm_paths,
    })
}

/// A `libjvm.so` file or a directory to search for one: absolute, so that the daemon does not
/// depend on where it was started.
pub(super) fn check_libjvm_path(path: &str) -> Result<String, String> {
    no_nul(path)?;
    if !path.starts_with('/') {
        return Err(format!(
            "{path:?} must be an absolute path (a libjvm.so file or a directory holding one)"
        ));
    }
    Ok(path.to_owned())
}

pub(super) fn check_launcher_name(name: &str) -> Result<String, String> {
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

/// A basename used as a kernel map key: launcher names and class names.
pub(super) fn check_name(name: &str) -> Result<String, String> {
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

pub(super) fn check_launcher_path(path: &str) -> Result<String, String> {
    no_nul(path)?;
    if !path.starts_with('/') {
        return Err(format!("{path:?} must be an absolute path"));
    }
    check_file_path(path)?;
    Ok(path.to_owned())
}

/// The parts of an absolute path to a file that the kernel can match exactly.
pub(super) fn check_file_path(path: &str) -> Result<(), String> {
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
