//! `cargo xtask lint`: rustfmt and clippy, warnings as errors.
//!
//! Two passes (and rustfmt of the fuzz crate), because the eBPF crate is its own workspace built by another compiler: the
//! host crates with the rustup toolchain, and `detector-ebpf/` with Debian's cargo, rustc and
//! clippy for `bpfel-unknown-none` (rustup's clippy-driver is built against rustc 1.95's
//! internals and cannot check a `core` built from Debian's 1.96 source).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _, Result};

use crate::{run_step, Workspace};

const EBPF_TARGET: &str = "bpfel-unknown-none";

/// Runs every check, even after one fails, so one run shows all there is to fix.
pub fn lint(ws: &Workspace) -> Result<()> {
    let ebpf_dir = ws.root.join("detector-ebpf");
    let checks: [(&str, Result<Command>); 5] = [
        (
            "rustfmt",
            Ok(host_cargo(ws, &["fmt", "--all", "--", "--check"])),
        ),
        (
            "clippy",
            Ok(host_cargo(
                ws,
                &[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ],
            )),
        ),
        // The fuzz crate (its own workspace) only: its targets are one-line calls of bodies in
        // detector/src/fuzz_targets.rs, which clippy checks above (`cfg(test)` compiles them);
        // clippy here would check all of the daemon's dependencies a second time for nothing.
        (
            "rustfmt (fuzz)",
            Ok(host_cargo(
                ws,
                &["fmt", "--manifest-path", "fuzz/Cargo.toml", "--", "--check"],
            )),
        ),
        ("rustfmt (eBPF)", {
            let mut cmd = host_cargo(ws, &["fmt", "--", "--check"]);
            cmd.current_dir(&ebpf_dir);
            Ok(cmd)
        }),
        ("clippy (eBPF)", ebpf_clippy(ws, &ebpf_dir)),
    ];
    let mut failed = Vec::new();
    for (name, cmd) in checks {
        if let Err(err) = cmd.and_then(|mut cmd| run_step("lint", &mut cmd)) {
            eprintln!("==> lint: {name} failed: {err:#}");
            failed.push(name);
        }
    }
    if !failed.is_empty() {
        bail!("lint failed: {}", failed.join(", "));
    }
    Ok(())
}

fn host_cargo(ws: &Workspace, args: &[&str]) -> Command {
    let mut cmd = ws.host_cargo();
    cmd.args(args);
    cmd
}

/// `/usr/bin/cargo clippy` for the kernel crate, with Debian's clippy.
///
/// `cargo clippy` only execs the first `cargo-clippy` it finds, as `cargo-clippy clippy
/// ARGS` with CARGO set to itself, and that runs `$CARGO check` with its sibling
/// `clippy-driver` as RUSTC_WORKSPACE_WRAPPER. We make that exec ourselves: cargo would
/// find rustup's `cargo-clippy` proxy in ~/.cargo/bin first (cargo puts its home's bin/
/// ahead of PATH when PATH lacks it), and that one drives rustup's 1.95 clippy.
fn ebpf_clippy(ws: &Workspace, ebpf_dir: &Path) -> Result<Command> {
    let clippy_dir = debian_clippy_dir()?;
    let mut cmd = Command::new(clippy_dir.join("cargo-clippy"));
    cmd.current_dir(ebpf_dir)
        .args([
            "clippy",
            "--release",
            "--locked",
            "--target",
            EBPF_TARGET,
            "-Z",
            "build-std=core",
        ])
        .arg("--target-dir")
        .arg(ws.target_dir.join("ebpf-clippy"))
        .args(["--", "-D", "warnings"])
        .env("CARGO", "/usr/bin/cargo")
        .env("RUSTC", "/usr/bin/rustc")
        .env("RUSTC_BOOTSTRAP", "1");
    // Settings meant for the host toolchain must not reach Debian's.
    for var in [
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
    ] {
        cmd.env_remove(var);
    }
    Ok(cmd)
}

/// The directory holding Debian's `cargo-clippy` and `clippy-driver` (package rust-web-clippy).
fn debian_clippy_dir() -> Result<PathBuf> {
    let output = Command::new("dpkg-query")
        .args(["-L", "rust-web-clippy"])
        .output()
        .context("running dpkg-query -L rust-web-clippy")?;
    if !output.status.success() {
        bail!("Debian's clippy (rust-web-clippy) is not installed: run `cargo xtask setup`");
    }
    let listing = String::from_utf8_lossy(&output.stdout);
    let cargo_clippy = listing
        .lines()
        .map(Path::new)
        .find(|path| path.file_name().is_some_and(|name| name == "cargo-clippy") && path.is_file())
        .context("rust-web-clippy installs no cargo-clippy")?;
    let dir = cargo_clippy
        .parent()
        .context("cargo-clippy has no parent directory")?;
    if !dir.join("clippy-driver").is_file() {
        bail!(
            "rust-web-clippy installs no clippy-driver next to {}",
            cargo_clippy.display()
        );
    }
    Ok(dir.to_path_buf())
}
