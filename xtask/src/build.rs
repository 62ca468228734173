//! `cargo xtask build` and `cargo xtask run`.

use std::{ffi::OsString, os::unix::process::CommandExt as _, path::PathBuf, process::Command};

use anyhow::{bail, Context as _, Result};

use crate::{command_line, run_step, setup, Workspace};

/// Builds the daemon (detector/build.rs builds and embeds the kernel programs) and returns
/// the binary's path.
pub fn build(ws: &Workspace, debug: bool) -> Result<PathBuf> {
    setup::ensure_tools("build")?;
    let mut cmd = ws.host_cargo();
    cmd.args(["build", "-p", "detector", "--bins"]);
    if !debug {
        cmd.arg("--release");
    }
    run_step("build", &mut cmd)?;
    let bin = ws.daemon_bin(debug);
    if !bin.is_file() {
        bail!("the build succeeded but {} does not exist", bin.display());
    }
    println!("==> build: daemon binary at {}", bin.display());
    Ok(bin)
}

/// Builds the release daemon, then becomes it: signals (Ctrl-C, SIGTERM) reach the daemon
/// directly, and its exit code is ours.
pub fn run(ws: &Workspace, args: &[OsString]) -> Result<()> {
    let bin = build(ws, false)?;
    let mut cmd = Command::new(&bin);
    cmd.args(args);
    println!("==> run: {}", command_line(&cmd));
    let err = cmd.exec();
    Err(err).with_context(|| format!("executing {}", bin.display()))
}
