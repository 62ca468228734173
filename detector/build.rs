//! Builds the kernel programs (`detector-ebpf`) and puts the object where `src/sensors/`
//! embeds it, so `cargo build -p detector` yields one self-contained binary.
//!
//! The eBPF crate needs `-Z build-std=core` for `bpfel-unknown-none`, which needs the
//! standard library's source: rustup cannot provide it on our machines, so we build with
//! Debian's rustc (`rustc-web` + `rust-web-src`, see docs/development.md). `cargo xtask
//! setup` installs all of it.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _};

const EBPF_TARGET: &str = "bpfel-unknown-none";

fn main() -> anyhow::Result<()> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir.parent().context("detector/ has no parent")?;
    let ebpf_dir = root.join("detector-ebpf");
    let out = PathBuf::from(env::var("OUT_DIR")?).join("detector-ebpf.o");

    for rel in [
        "detector-ebpf/src",
        "detector-ebpf/Cargo.toml",
        "detector-ebpf/Cargo.lock",
        "detector-common/src",
        "detector-common/Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(rel).display());
    }
    println!("cargo:rerun-if-env-changed=DETECTOR_SKIP_EBPF_BUILD");
    build_info(root)?;

    // For pure-logic work on a machine without the eBPF toolchain: the binary then refuses
    // `detector run` with a clear message (see sensors::EBPF_OBJECT).
    if env::var_os("DETECTOR_SKIP_EBPF_BUILD").is_some() {
        std::fs::write(&out, b"")?;
        return Ok(());
    }

    let rustc = Path::new("/usr/bin/rustc");
    let cargo = Path::new("/usr/bin/cargo");
    if !rustc.exists() || !cargo.exists() {
        bail!("Debian's rustc/cargo (rustc-web, cargo-web) are missing: run `cargo xtask setup`");
    }
    // Our own target dir under the workspace's: the outer cargo holds a lock on its own
    // profile directory, and sharing one build of `core` across profiles saves a minute.
    let target_root = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let target_dir = target_root.join("ebpf");

    let mut cmd = Command::new(cargo);
    cmd.current_dir(&ebpf_dir)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            EBPF_TARGET,
            "-Z",
            "build-std=core",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTC", rustc)
        .env("RUSTC_BOOTSTRAP", "1");
    // The outer build's settings are for the host toolchain; they must not leak in.
    for var in [
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTDOC",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        cmd.env_remove(var);
    }
    for (key, _) in env::vars_os() {
        if let Some(k) = key.to_str() {
            if k.starts_with("CARGO_FEATURE_")
                || k.starts_with("CARGO_CFG_")
                || k.starts_with("DEP_")
                || k == "OUT_DIR"
                || k == "TARGET"
                || k == "HOST"
                || k == "PROFILE"
                || k == "OPT_LEVEL"
                || k == "DEBUG"
                || k == "NUM_JOBS"
            {
                cmd.env_remove(&key);
            }
        }
    }
    let status = cmd
        .status()
        .with_context(|| format!("running {} for detector-ebpf", cargo.display()))?;
    if !status.success() {
        bail!("building the kernel programs failed ({status}); if bpf-linker or rust-web-src is missing, run `cargo xtask setup`");
    }
    let built = target_dir
        .join(EBPF_TARGET)
        .join("release")
        .join("detector");
    std::fs::copy(&built, &out)
        .with_context(|| format!("copying {} to {}", built.display(), out.display()))?;
    Ok(())
}

/// What `detector --version` says besides the crate version: the commit, the build date and
/// the aya version the kernel side was built with.
fn build_info(root: &Path) -> anyhow::Result<()> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()?;
        let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
        (out.status.success() && !text.is_empty()).then_some(text)
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some();
    // The commit's date, not the clock's: the same commit builds the same binary.
    let date = git(&["log", "-1", "--format=%cs"]).unwrap_or_else(|| "unknown".into());
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/index");
    }
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).context("reading Cargo.lock")?;
    let aya = lock_version(&lock, "aya").unwrap_or_else(|| "unknown".into());
    println!(
        "cargo:rerun-if-changed={}",
        root.join("Cargo.lock").display()
    );
    println!(
        "cargo:rustc-env=DETECTOR_GIT_COMMIT={commit}{}",
        if dirty { "-modified" } else { "" }
    );
    println!("cargo:rustc-env=DETECTOR_BUILD_DATE={date}");
    println!("cargo:rustc-env=DETECTOR_AYA_VERSION={aya}");
    Ok(())
}

/// The version of package `name` in a Cargo.lock text.
fn lock_version(lock: &str, name: &str) -> Option<String> {
    let wanted = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    lines.find(|l| l.trim() == wanted)?;
    let version = lines.next()?.trim().strip_prefix("version = \"")?;
    Some(version.trim_end_matches('"').to_owned())
}
