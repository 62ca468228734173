//! `cargo xtask image`: the OCI image the Kubernetes DaemonSet runs
//! (deploy/kubernetes/detector.yaml), `localhost/detector:<version>`, with no registry pull:
//! a root file system holding exactly the release binary (stripped), the shared libraries it
//! links (as `ldd` lists them, from this Debian machine), the CA certificates its HTTPS sinks
//! trust, the commented default policy and the user it runs as, imported with `podman import`
//! and saved as an OCI archive (`target/image/detector-<version>.oci.tar`) for `podman load`,
//! `ctr image import` or a registry push.

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _, Result};

use crate::{
    build,
    package::{install as copy, install_binary, write},
    run_step, setup, Workspace,
};

/// The image's name in local container storage.
pub fn reference() -> String {
    format!("localhost/detector:{}", env!("CARGO_PKG_VERSION"))
}

/// Builds the image (the daemon first unless `no_build`); returns the OCI archive's path.
pub fn image(ws: &Workspace, no_build: bool) -> Result<PathBuf> {
    setup::install_container_tools()?;
    let binary = if no_build {
        ws.daemon_bin(false)
    } else {
        build::build(ws, false)?
    };
    if !binary.is_file() {
        bail!("{} does not exist: build it first", binary.display());
    }
    let out_dir = ws.target_dir.join("image");
    let rootfs = out_dir.join("rootfs");
    if rootfs.exists() {
        fs::remove_dir_all(&rootfs).with_context(|| format!("clearing {}", rootfs.display()))?;
    }
    install_binary(&binary, &rootfs.join("usr/bin/detector"))?;
    for lib in shared_libraries(&binary)? {
        copy(&lib, &rootfs.join(lib.strip_prefix("/")?), 0o755)?;
    }
    copy(
        Path::new("/etc/ssl/certs/ca-certificates.crt"),
        &rootfs.join("etc/ssl/certs/ca-certificates.crt"),
        0o644,
    )?;
    copy(
        &ws.root.join("detector/policy/default.toml"),
        &rootfs.join("etc/detector/policy.toml"),
        0o644,
    )?;
    write(
        &rootfs.join("etc/passwd"),
        "root:x:0:0:root:/:/usr/sbin/nologin\n",
    )?;
    write(&rootfs.join("etc/group"), "root:x:0:\n")?;
    for dir in ["var/lib/detector", "tmp", "proc", "sys", "dev"] {
        fs::create_dir_all(rootfs.join(dir))?;
    }
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))?;

    let tarball = out_dir.join("rootfs.tar");
    run_step(
        "image",
        Command::new("tar")
            .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tarball)
            .arg("."),
    )?;
    let reference = reference();
    run_step(
        "image",
        Command::new("podman")
            .arg("import")
            .args([
                "--change",
                r#"ENTRYPOINT ["/usr/bin/detector"]"#,
                "--change",
                r#"CMD ["run", "--config", "/etc/detector/policy.toml"]"#,
                "--change",
                "USER 0:0",
                "--change",
                "LABEL org.opencontainers.image.title=detector",
                "--change",
                "LABEL org.opencontainers.image.licenses=Apache-2.0",
            ])
            .arg(&tarball)
            .arg(&reference),
    )?;
    let archive = out_dir.join(format!("detector-{}.oci.tar", env!("CARGO_PKG_VERSION")));
    if archive.exists() {
        fs::remove_file(&archive)?;
    }
    run_step(
        "image",
        Command::new("podman")
            .args(["save", "--format", "oci-archive", "-o"])
            .arg(&archive)
            .arg(&reference),
    )?;
    let size = fs::metadata(&archive)?.len();
    println!(
        "==> image: {reference} ({:.1} MB), saved as {}",
        size as f64 / 1e6,
        archive.display()
    );
    Ok(archive)
}

/// The shared libraries `binary` loads, the dynamic loader included, as absolute paths.
fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .context("running ldd")?;
    if !out.status.success() {
        bail!(
            "ldd {} failed: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(parse_ldd(&String::from_utf8_lossy(&out.stdout)))
}

/// The absolute paths in `ldd`'s output (`libc.so.6 => /lib/.../libc.so.6 (0x...)` and the
/// loader's `/lib64/ld-linux-x86-64.so.2 (0x...)`); the vDSO has none.
fn parse_ldd(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| {
            let path = match line.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_every_library_and_the_loader() {
        let text = "\tlinux-vdso.so.1 (0x00007ff83be6a000)\n\
            \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007ff83be38000)\n\
            \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007ff83b21e000)\n\
            \t/lib64/ld-linux-x86-64.so.2 (0x00007ff83be6c000)\n";
        assert_eq!(
            parse_ldd(text),
            [
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(PathBuf::from)
        );
    }
}
