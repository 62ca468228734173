//! `cargo xtask setup`: the machine-level prerequisites, on Debian 12 (see
//! docs/development.md, "Toolchain", for why the eBPF side needs Debian's rustc and not rustup's).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _, Result};

use crate::{host_cargo_program, is_root, run_step, succeeds};

/// Debian packages building the daemon and its package needs (`cargo xtask build|run|package`,
/// which install nothing else: a host the detector is built on to protect it gets no JDK or
/// test server from us).
const BUILD_PACKAGES: &[&str] = &[
    // Debian's rustc/cargo 1.96 (LLVM 22) and the library source `-Z build-std=core` needs:
    // rustup cannot download rust-src here.
    "rustc-web",
    "cargo-web",
    "rust-web-src",
    // Clippy matching that rustc, for linting the eBPF crate.
    "rust-web-clippy",
    // bpf-linker links against LLVM 22, the same LLVM as rustc-web.
    "llvm-22-dev",
    "libpolly-22-dev",
    "libzstd-dev",
    "zlib1g-dev",
    // dpkg-shlibdeps, for the package's Depends (cargo xtask package).
    "dpkg-dev",
];

/// Debian packages only the tests, the lab and the benchmarks need (`cargo xtask setup` and
/// `cargo xtask test` install them; building does not).
const TEST_PACKAGES: &[&str] = &[
    // A real JVM for the integration tests and the benchmark.
    "openjdk-17-jdk-headless",
    "python3",
    "perl",
    "bpftool",
    // The reference tool `cargo xtask bench kernel` compares the detector's kernel cost with.
    "bpftrace",
    // A real Alertmanager for the alert-sink integration test (tests/tests/sinks_alertmanager.rs),
    // which starts its own instance on loopback; the package's service is not used.
    "prometheus-alertmanager",
    // systemd-analyze, to verify the shipped unit (tests/tests/systemd_unit.rs); util-linux's
    // setpriv and unshare run the daemon with the unit's capabilities and JVMs in their own
    // mount namespace.
    "systemd",
    "util-linux",
    // protoc, for the CRI protos the containerd harness (tests/src/containerd.rs) compiles:
    // building the tests crate, and so linting it, needs it.
    "protobuf-compiler",
    // libfuzzer-sys compiles libFuzzer (C++) for the fuzz targets (`cargo xtask fuzz`).
    "g++",
];

/// Debian packages only the kernel matrix (`cargo xtask kernels`, a step of `cargo xtask test`)
/// needs: QEMU to boot other kernels with software emulation, and what virtme-ng expects of
/// the host. `--no-install-recommends` keeps QEMU's graphical and firmware extras out.
const VM_PACKAGES: &[&str] = &[
    "qemu-system-x86",
    // depmod, for the extracted kernel packages (they ship no modules.dep); modprobe in the guest.
    "kmod",
    // virtme-ng's guest init falls back to busybox for what the host lacks.
    "busybox-static",
    // A virtual environment for virtme-ng, so it stays out of the system's Python.
    "python3-venv",
];

/// Debian packages the container image and the container tests need (`cargo xtask image`, a
/// step of `cargo xtask test`): Podman builds and runs images from local files, no registry.
/// runc rather than crun: crun refuses a hybrid cgroup layout; catatonit is the pods' pause
/// process. containerd (with its CRI plugin, `ctr` and the runc v2 shim) runs the pods of
/// tests/tests/containerd.rs as kubelet would; the test starts its own instance, not the
/// package's service.
const CONTAINER_PACKAGES: &[&str] = &[
    "podman",
    "runc",
    "catatonit",
    "ca-certificates",
    "containerd",
];

/// Where virtme-ng (`vng`, from PyPI: Debian 12 does not package it) is installed, in its own
/// virtual environment.
pub const VNG_VENV: &str = "/opt/detector-vm";

/// Where bpf-linker finds LLVM 22's development files.
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

/// What building the daemon needs besides bpf-linker; cheap to check before every build.
const TOOL_FILES: &[&str] = &[
    "/usr/bin/rustc",
    "/usr/bin/cargo",
    "/usr/lib/rustlib/src/rust/library/core",
    "/usr/bin/dpkg-shlibdeps",
];

/// Installs whatever building and testing need and is missing; does nothing (but check) when
/// all is in place.
pub fn setup() -> Result<()> {
    setup_build()?;
    apt_install(TEST_PACKAGES, &[])?;
    install_cargo_fuzz()?;
    install_vm_tools()?;
    install_container_tools()?;
    let log4j = testkit::log4j::ensure()?;
    println!("==> setup: log4j 2.14.1 in {}", log4j.classpath());
    println!("==> setup: done");
    Ok(())
}

/// What building needs: [`BUILD_PACKAGES`] and bpf-linker.
fn setup_build() -> Result<()> {
    apt_install(BUILD_PACKAGES, &[])?;
    install_bpf_linker()
}

/// Installs what a build needs, only if one of its tools is missing; never the test-only
/// packages.
/// (Java is checked where it is used: the integration tests and the benchmark.)
pub fn ensure_tools(task: &str) -> Result<()> {
    let mut missing: Vec<&str> = TOOL_FILES
        .iter()
        .copied()
        .filter(|file| !Path::new(file).exists())
        .collect();
    if !bpf_linker_works() {
        missing.push("bpf-linker");
    }
    if missing.is_empty() {
        return Ok(());
    }
    println!(
        "==> {task}: missing {}; installing the build tools",
        missing.join(", ")
    );
    setup_build().context("installing the build tools")
}

/// Installs `packages` that are missing, passing `options` to `apt-get install`.
fn apt_install(packages: &[&str], options: &[&str]) -> Result<()> {
    println!("==> setup: checking {} Debian packages", packages.len());
    let mut missing = Vec::new();
    for package in packages {
        if !is_installed(package)? {
            missing.push(*package);
        }
    }
    if missing.is_empty() {
        println!("==> setup: all packages installed");
        return Ok(());
    }
    println!("==> setup: missing packages: {}", missing.join(" "));
    if !is_root() {
        bail!(
            "installing packages needs root: run `cargo xtask setup` as root, or `apt-get install -y {}`",
            missing.join(" ")
        );
    }
    run_step("setup", apt_get().arg("update"))?;
    run_step(
        "setup",
        apt_get()
            .args(["install", "-y"])
            .args(options)
            .args(&missing),
    )?;
    Ok(())
}

/// What building and running container images needs.
pub fn install_container_tools() -> Result<()> {
    apt_install(CONTAINER_PACKAGES, &["--no-install-recommends"])
}

/// The kernel matrix's tools, test-only: QEMU and friends from Debian, virtme-ng from PyPI.
pub fn install_vm_tools() -> Result<()> {
    apt_install(VM_PACKAGES, &["--no-install-recommends"])?;
    let vng = vng_program();
    if succeeds(&vng, &["--version"]) {
        println!("==> setup: virtme-ng present");
        return Ok(());
    }
    if !is_root() {
        bail!("installing virtme-ng into {VNG_VENV} needs root: run `cargo xtask setup` as root");
    }
    println!("==> setup: installing virtme-ng into {VNG_VENV}");
    run_step(
        "setup",
        Command::new("python3").args(["-m", "venv", VNG_VENV]),
    )?;
    run_step(
        "setup",
        Command::new(Path::new(VNG_VENV).join("bin/pip")).args([
            "install",
            "--quiet",
            VNG_REQUIREMENT,
        ]),
    )?;
    if !succeeds(&vng, &["--version"]) {
        bail!(
            "virtme-ng was installed but `{} --version` fails",
            vng.display()
        );
    }
    Ok(())
}

/// The `vng` that [`install_vm_tools`] installs.
/// The virtme-ng release the matrix is proven with: a new release changed how `vng` starts
/// its `virtme-run` (by name, from `PATH`), and a fresh machine must not meet such a change
/// unannounced.
const VNG_REQUIREMENT: &str = "virtme-ng==1.42";

/// The directory of virtme-ng's programs: `vng` runs `virtme-run` from `PATH`.
pub fn vng_bin_dir() -> PathBuf {
    Path::new(VNG_VENV).join("bin")
}

pub fn vng_program() -> PathBuf {
    Path::new(VNG_VENV).join("bin/vng")
}

/// Whether dpkg says `package` is installed (not merely known, or removed with its config left).
fn is_installed(package: &str) -> Result<bool> {
    let output = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .context("running dpkg-query (is this Debian?)")?;
    // dpkg-query exits 1 for a package it has never heard of; that is "not installed" too.
    Ok(output.status.success() && output.stdout == b"install ok installed")
}

fn apt_get() -> Command {
    let mut cmd = Command::new("apt-get");
    cmd.env("DEBIAN_FRONTEND", "noninteractive");
    cmd
}

fn install_bpf_linker() -> Result<()> {
    if bpf_linker_works() {
        println!("==> setup: bpf-linker present");
        return Ok(());
    }
    println!("==> setup: installing bpf-linker (about a minute)");
    // The llvm-22 feature links Debian's LLVM 22, matching rustc-web; --locked keeps the
    // dependency versions bpf-linker was released with (verified with bpf-linker 0.13.0).
    let mut cmd = Command::new(host_cargo_program());
    cmd.args([
        "install",
        "bpf-linker",
        "--locked",
        "--no-default-features",
        "--features",
        "llvm-22",
    ])
    .env("LLVM_PREFIX", LLVM_PREFIX);
    run_step("setup", &mut cmd)?;
    if !bpf_linker_works() {
        bail!(
            "bpf-linker was installed but `bpf-linker --version` fails: is ~/.cargo/bin on PATH?"
        );
    }
    Ok(())
}

/// The cargo-fuzz `cargo xtask fuzz` drives, pinned: its flags and its build of the targets
/// (instrumentation, `--cfg fuzzing`) are what the fuzz stage of `cargo xtask test` was sized on.
pub const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// Installs cargo-fuzz [`CARGO_FUZZ_VERSION`] with the rustup toolchain unless it is there.
pub fn install_cargo_fuzz() -> Result<()> {
    if cargo_fuzz_version().as_deref() == Some(CARGO_FUZZ_VERSION) {
        println!("==> setup: cargo-fuzz {CARGO_FUZZ_VERSION} present");
        return Ok(());
    }
    println!("==> setup: installing cargo-fuzz {CARGO_FUZZ_VERSION} (about two minutes)");
    run_step(
        "setup",
        Command::new(host_cargo_program()).args([
            "install",
            "cargo-fuzz",
            "--locked",
            "--version",
            CARGO_FUZZ_VERSION,
        ]),
    )?;
    match cargo_fuzz_version() {
        Some(version) if version == CARGO_FUZZ_VERSION => Ok(()),
        other => bail!(
            "cargo-fuzz {CARGO_FUZZ_VERSION} was installed but `cargo-fuzz --version` says {other:?}: is ~/.cargo/bin on PATH?"
        ),
    }
}

/// The version `cargo-fuzz --version` prints (`cargo-fuzz 0.13.2`), if it runs.
pub fn cargo_fuzz_version() -> Option<String> {
    let output = Command::new("cargo-fuzz").arg("--version").output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace().nth(1).map(str::to_owned)
}

fn bpf_linker_works() -> bool {
    succeeds("bpf-linker", &["--version"])
}
