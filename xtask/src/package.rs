//! `cargo xtask package`: the Debian package `detector_<version>_<arch>.deb`, built with
//! dpkg-deb from the release binary, the systemd unit (deploy/systemd), the commented default
//! policy as the conffile `/etc/detector/policy.toml` and the maintainer scripts
//! (deploy/debian). Install, upgrade, remove and purge are proven by
//! tests/tests/package.rs, which `cargo xtask test` runs against the package built here.

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _, Result};

use crate::{build, run_step, Workspace};

/// The package's name, and the unit's.
const NAME: &str = "detector";

/// Installed files: (path in the package, path in the repository, mode). The binary is added
/// apart: it comes from the build, not from the repository.
const FILES: [(&str, &str, u32); 4] = [
    (
        "lib/systemd/system/detector.service",
        "deploy/systemd/detector.service",
        0o644,
    ),
    (
        "etc/detector/policy.toml",
        "detector/policy/default.toml",
        0o644,
    ),
    ("usr/share/doc/detector/README.md", "README.md", 0o644),
    (
        "usr/share/doc/detector/operations.md",
        "docs/operations.md",
        0o644,
    ),
];

/// Files dpkg must treat as the administrator's: kept (not overwritten) on upgrade when
/// edited, kept on remove, deleted on purge.
const CONFFILES: [&str; 1] = ["/etc/detector/policy.toml"];

/// Maintainer scripts, from deploy/debian.
const SCRIPTS: [&str; 3] = ["postinst", "prerm", "postrm"];

/// Builds the package (building the daemon first unless `no_build`) and returns its path.
pub fn package(ws: &Workspace, no_build: bool) -> Result<PathBuf> {
    let binary = if no_build {
        ws.daemon_bin(false)
    } else {
        build::build(ws, false)?
    };
    if !binary.is_file() {
        bail!(
            "{} does not exist: build it first (`cargo xtask build`) or drop --no-build",
            binary.display()
        );
    }
    let out_dir = ws.target_dir.join("debian");
    // The staging tree is ours alone (recreated on every run), inside target/.
    let stage = out_dir.join("stage");
    if stage.exists() {
        fs::remove_dir_all(&stage).with_context(|| format!("clearing {}", stage.display()))?;
    }
    install_binary(&binary, &stage.join("usr/bin").join(NAME))?;
    for (to, from, mode) in FILES {
        install(&ws.root.join(from), &stage.join(to), mode)?;
    }
    let copyright = stage.join("usr/share/doc/detector/copyright");
    fs::write(&copyright, COPYRIGHT).with_context(|| format!("writing {}", copyright.display()))?;
    fs::set_permissions(&copyright, fs::Permissions::from_mode(0o644))?;

    let debian = stage.join("DEBIAN");
    for script in SCRIPTS {
        install(
            &ws.root.join("deploy/debian").join(script),
            &debian.join(script),
            0o755,
        )?;
    }
    let conffiles: String = CONFFILES.iter().map(|f| format!("{f}\n")).collect();
    write(&debian.join("conffiles"), &conffiles)?;

    let version = env!("CARGO_PKG_VERSION");
    let arch = architecture()?;
    let depends = shlib_depends(&binary)?;
    let control = control(version, &arch, &depends, installed_size_kib(&stage)?);
    write(&debian.join("control"), &control)?;

    let deb = path(ws)?;
    run_step(
        "package",
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&stage)
            .arg(&deb),
    )?;
    println!("==> package: {}", deb.display());
    Ok(deb)
}

/// Where [`package`] puts the package.
pub fn path(ws: &Workspace) -> Result<PathBuf> {
    Ok(ws.target_dir.join("debian").join(format!(
        "{NAME}_{}_{}.deb",
        env!("CARGO_PKG_VERSION"),
        architecture()?
    )))
}

/// Debian's name for this machine's architecture (`amd64`).
fn architecture() -> Result<String> {
    command_output(Command::new("dpkg").arg("--print-architecture"))
}

/// The control file's paragraph.
fn control(version: &str, arch: &str, depends: &str, installed_kib: u64) -> String {
    format!(
        "Package: {NAME}\n\
         Version: {version}\n\
         Architecture: {arch}\n\
         Maintainer: detector developers <detector@localhost>\n\
         Installed-Size: {installed_kib}\n\
         Depends: {depends}\n\
         Section: admin\n\
         Priority: optional\n\
         Description: Log4Shell runtime detection and response for JVMs (eBPF)\n \
         Watches every JVM on the host and everything it starts, in the kernel: shells,\n \
         interpreters and downloaders started by a JVM, LDAP/RMI/DNS egress, JNDI probes\n \
         and Java class downloads. Reports them (monitor) or stops them in the kernel\n \
         (enforce), and pages a human. Runs as the systemd service detector.service with\n \
         only the capabilities it needs; the policy is /etc/detector/policy.toml.\n"
    )
}

/// The `Depends:` of the binary's shared libraries, as dpkg-shlibdeps computes it from the
/// build machine's symbol files (it needs a debian/control of a source package to run in).
fn shlib_depends(binary: &Path) -> Result<String> {
    // Removed on drop.
    let dir = testkit::ScratchDir::create("deb-shlibs").context("creating a scratch directory")?;
    fs::create_dir_all(dir.path().join("debian"))?;
    fs::write(
        dir.path().join("debian/control"),
        format!("Source: {NAME}\n\nPackage: {NAME}\nArchitecture: any\n"),
    )?;
    let binary = binary
        .canonicalize()
        .with_context(|| format!("locating {}", binary.display()))?;
    let out = command_output(
        Command::new("dpkg-shlibdeps")
            .args(["-O", "--ignore-missing-info"])
            .arg(&binary)
            .current_dir(dir.path()),
    )?;
    match out.split_once("shlibs:Depends=") {
        Some((_, deps)) if !deps.trim().is_empty() => Ok(deps.trim().to_string()),
        _ => bail!(
            "dpkg-shlibdeps printed no dependencies for {}: {out}",
            binary.display()
        ),
    }
}

/// Sum of the staged files' sizes in KiB (what `Installed-Size` means), the control area
/// excluded.
fn installed_size_kib(stage: &Path) -> Result<u64> {
    fn walk(dir: &Path, total: &mut u64) -> Result<()> {
        for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                if entry.file_name() != "DEBIAN" {
                    walk(&entry.path(), total)?;
                }
            } else {
                *total += meta.len().div_ceil(1024);
            }
        }
        Ok(())
    }
    let mut total = 0;
    walk(stage, &mut total)?;
    Ok(total)
}

/// Installs the daemon `binary` at `to` without its debug information: the release profile
/// keeps line tables for backtraces during development, ~80% of the binary; the package and
/// the image ship without them (the kernel object is data, untouched).
pub fn install_binary(binary: &Path, to: &Path) -> Result<()> {
    install(binary, to, 0o755)?;
    run_step("strip", Command::new("strip").arg("--strip-debug").arg(to))
}

/// Copies `from` (following links) to `to` (creating its directories) with `mode`.
pub fn install(from: &Path, to: &Path, mode: u32) -> Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", to.display()))
}

/// Writes `text` to `path` (creating its directories), mode 0644.
pub fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644))
        .with_context(|| format!("setting the mode of {}", path.display()))
}

/// A command's stdout, trimmed; an error naming the command if it fails.
fn command_output(cmd: &mut Command) -> Result<String> {
    let line = crate::command_line(cmd);
    let out = cmd.output().with_context(|| format!("starting `{line}`"))?;
    if !out.status.success() {
        bail!(
            "`{line}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// /usr/share/doc/detector/copyright, in Debian's machine-readable format.
const COPYRIGHT: &str = "\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: detector

Files: *
Copyright: the detector developers
License: Apache-2.0
 On Debian systems, the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_is_one_paragraph_with_the_fields_dpkg_requires() {
        let control = control("1.2.3", "amd64", "libc6 (>= 2.34)", 4242);
        for field in [
            "Package: detector\n",
            "Version: 1.2.3\n",
            "Architecture: amd64\n",
            "Maintainer: ",
            "Installed-Size: 4242\n",
            "Depends: libc6 (>= 2.34)\n",
            "Description: ",
        ] {
            assert!(control.contains(field), "{field:?} missing:\n{control}");
        }
        assert!(
            !control.contains("\n\n"),
            "a blank line ends the paragraph:\n{control}"
        );
        // Continuation lines of the description start with a space.
        let (_, after) = control.split_once("Description: ").expect("a description");
        for line in after.lines().skip(1) {
            assert!(line.starts_with(' '), "{line:?}");
        }
    }

    #[test]
    fn every_packaged_repository_file_exists() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask is in the workspace");
        for (_, from, _) in FILES {
            assert!(root.join(from).is_file(), "{from}");
        }
        for script in SCRIPTS {
            let path = root.join("deploy/debian").join(script);
            let mode = fs::metadata(&path)
                .expect("script exists")
                .permissions()
                .mode();
            assert!(mode & 0o111 != 0, "{} is not executable", path.display());
        }
        // Every conffile is a packaged file.
        for conffile in CONFFILES {
            assert!(
                FILES.iter().any(|(to, _, _)| format!("/{to}") == conffile),
                "{conffile}"
            );
        }
    }
}
