//! `cargo xtask lab`: builds the daemon and the lab's runner (`tests/lab`, the `lab` binary
//! of the integration-tests crate) and runs the runner with the arguments given, the way
//! aya's xtask launches its integration tests. Everything the lab does and prints is the
//! runner's; `cargo xtask lab --help` shows its options.

use std::{ffi::OsString, process::Command};

use anyhow::{bail, Context as _, Result};

use crate::{build, command_line, run_step, Workspace};

/// xtask's own option: use target/release/detector as it is instead of building it first.
const NO_BUILD: &str = "--no-build";

/// Builds what the lab needs and runs it with `args` (the runner's options, and
/// [`NO_BUILD`], which xtask takes for itself).
pub fn lab(ws: &Workspace, args: &[OsString]) -> Result<()> {
    let build_first = !args.iter().any(|a| a == NO_BUILD);
    let args: Vec<&OsString> = args.iter().filter(|a| *a != NO_BUILD).collect();
    // `--list` and `--help` start no detector; neither does a run of mode `none` only.
    let needs_daemon = !args.iter().any(|a| {
        ["--list", "--help", "-h", "--mode=none"]
            .iter()
            .any(|flag| a.as_os_str() == *flag)
    }) && !args
        .windows(2)
        .any(|pair| pair[0] == "--mode" && pair[1] == "none");
    let detector = if build_first && needs_daemon {
        build::build(ws, false)?
    } else {
        ws.daemon_bin(false)
    };
    run_step(
        "lab",
        ws.host_cargo().args([
            "build",
            "--release",
            "-p",
            "integration-tests",
            "--bin",
            "lab",
        ]),
    )?;
    let runner = ws.target_dir.join("release/lab");
    let mut cmd = Command::new(&runner);
    cmd.arg("--detector").arg(&detector).args(args);
    let status = cmd
        .status()
        .with_context(|| format!("starting `{}`", command_line(&cmd)))?;
    if !status.success() {
        bail!("the lab failed ({status})");
    }
    Ok(())
}
