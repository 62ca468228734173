//! `cargo xtask kernels`: the kernel matrix. Boots Debian's 5.10 (bullseye), 6.1 and 6.12
//! (bookworm) kernel packages in QEMU with this machine's own root file system (virtme-ng) and
//! runs a chosen subset of the integration tests inside each: every program attaches in both
//! modes, a JVM's shell is reported and (enforce) killed before it runs, a JVM's LDAP connect
//! is denied, a JNDI lookup sent to a JVM's HTTP server raises `jndi_probe`, and each daemon's
//! stats line shows no loss (every scenario ends with that assertion).
//!
//! The test binaries are built here, on the host; the guest sees the same files over 9p, so
//! Java, the daemon and the repository are all there. Results come back through files in a
//! shared directory: under vng the console is not a reliable channel.

use std::{
    collections::HashMap,
    env, fmt, fs,
    io::{BufRead as _, BufReader},
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{bail, ensure, Context as _, Result};
use serde_json::Value;

use crate::{build, command_line, fmt_duration, is_root, run_step, setup, Workspace};

/// Extracted kernel packages, one directory per package; kept between runs (about 120 MB
/// each) and re-used when the newest package of a series is still the one cached.
const CACHE_DIR: &str = "/var/cache/detector-kernels";

/// A guest that has not finished by then is killed and its kernel fails.
const GUEST_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// How much longer the tests' harness waits inside a guest (`DETECTOR_TEST_TIMEOUT_SCALE`):
/// without KVM, QEMU emulates every instruction and a JVM starts several times slower.
const TIMEOUT_SCALE: u32 = 4;

/// The bullseye sources for the 5.10 kernel, used through a private apt configuration: the
/// machine's own sources are never touched.
const BULLSEYE_SOURCES: &str = "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bullseye main\n";

/// The private bullseye lists are refreshed when older than this.
const LISTS_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// The kernel series of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Series {
    /// Debian 11 (bullseye), `linux-image-5.10.0-<abi>-amd64`.
    #[value(name = "5.10")]
    V5_10,
    /// Debian 12 (bookworm), `linux-image-6.1.0-<abi>-amd64`.
    #[value(name = "6.1")]
    V6_1,
    /// Debian 12 (bookworm) backport, `linux-image-6.12.<n>+deb12-amd64`.
    #[value(name = "6.12")]
    V6_12,
}

impl Series {
    const ALL: [Series; 3] = [Series::V5_10, Series::V6_1, Series::V6_12];

    /// The package name around the number that grows with each upload: `(prefix, suffix)`.
    fn package_pattern(self) -> (&'static str, &'static str) {
        match self {
            Series::V5_10 => ("linux-image-5.10.0-", "-amd64"),
            Series::V6_1 => ("linux-image-6.1.0-", "-amd64"),
            Series::V6_12 => ("linux-image-6.12.", "+deb12-amd64"),
        }
    }

    /// The number in `package` if it is one of this series' images (not `-rt-`, `-cloud-`,
    /// `-dbg`, ...).
    fn upload_number(self, package: &str) -> Option<u32> {
        let (prefix, suffix) = self.package_pattern();
        let number = package.strip_prefix(prefix)?.strip_suffix(suffix)?;
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        number.parse().ok()
    }

    /// Whether the package comes from bullseye, through the private apt configuration.
    fn is_bullseye(self) -> bool {
        self == Series::V5_10
    }
}

impl fmt::Display for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Series::V5_10 => "5.10",
            Series::V6_1 => "6.1",
            Series::V6_12 => "6.12",
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct KernelsArgs {
    /// Boot only this kernel series (repeat for several); all three by default.
    #[arg(long = "kernel", value_enum, value_name = "SERIES")]
    kernels: Vec<Series>,
    /// Use target/release/detector as it is instead of building it first.
    #[arg(long)]
    no_build: bool,
}

/// Validated `kernels` options.
#[derive(Debug)]
pub struct KernelsOpts {
    series: Vec<Series>,
    build_first: bool,
}

impl KernelsArgs {
    pub fn resolve(self) -> KernelsOpts {
        let mut series = if self.kernels.is_empty() {
            Series::ALL.to_vec()
        } else {
            self.kernels
        };
        // Always in matrix order, each once.
        series.sort_by_key(|s| Series::ALL.iter().position(|a| a == s));
        series.dedup();
        KernelsOpts {
            series,
            build_first: !self.no_build,
        }
    }
}

impl KernelsOpts {
    /// What `cargo xtask test` runs: every series, with the binary its build step just made.
    pub fn for_test() -> Self {
        Self {
            series: Series::ALL.to_vec(),
            build_first: false,
        }
    }
}

/// One check of the matrix: an integration test, run by its exact name.
#[derive(Debug)]
struct Check {
    /// Column heading, and the file name of its log in the shared directory.
    id: &'static str,
    /// The test target (`tests/tests/<target>.rs`).
    target: &'static str,
    /// The test function.
    test: &'static str,
    /// Runs only if this check passed: a scenario cannot run where the programs do not load.
    needs: Option<&'static str>,
}

/// In the order they run in each guest. Every scenario ends with `assert_nothing_lost` on the
/// daemon's `detector stats` line, which the "no loss" column summarises.
const CHECKS: [Check; 8] = [
    Check {
        id: "attach-monitor",
        target: "attach",
        test: "programs_attach_in_monitor_mode",
        needs: None,
    },
    Check {
        id: "attach-enforce",
        target: "attach",
        test: "programs_attach_in_enforce_mode",
        needs: None,
    },
    Check {
        id: "shell-reported",
        target: "shell_spawn_monitor",
        test: "shell_spawned_by_jvm_is_reported_and_runs",
        needs: Some("attach-monitor"),
    },
    Check {
        id: "shell-killed",
        target: "shell_spawn_enforce",
        test: "shell_spawned_by_jvm_is_killed_before_it_acts",
        needs: Some("attach-enforce"),
    },
    Check {
        id: "embedded-jvm",
        target: "embedded_jvm",
        test: "dlopen_launcher_enforce",
        needs: Some("attach-enforce"),
    },
    Check {
        id: "ldap-denied",
        target: "egress_ldap",
        test: "ldap_lookup_is_blocked_at_connect_in_enforce_mode",
        needs: Some("attach-enforce"),
    },
    Check {
        id: "jndi-probe",
        target: "inbound_chain",
        test: "probe_and_class_download_make_one_incident",
        needs: Some("attach-monitor"),
    },
    Check {
        id: "large-heads",
        target: "inbound_large",
        test: "lookups_anywhere_in_a_request_head_are_found",
        needs: Some("attach-monitor"),
    },
];

pub fn kernels(ws: &Workspace, opts: &KernelsOpts) -> Result<()> {
    ensure!(
        is_root(),
        "the kernel matrix downloads kernel packages into {CACHE_DIR} and loads kernel programs \
         in its guests: run it as root"
    );
    let started = Instant::now();
    setup::install_vm_tools()?;
    let daemon = if opts.build_first {
        build::build(ws, false)?
    } else {
        ws.daemon_bin(false)
    };
    let daemon = daemon
        .canonicalize()
        .with_context(|| format!("locating the daemon binary {}", daemon.display()))?;
    let tests = test_binaries(ws)?;
    let dir = env::temp_dir().join(format!("detector-kernels-{}", std::process::id()));
    let classes = dir.join("classes");
    fs::create_dir_all(&classes).with_context(|| format!("creating {}", classes.display()))?;
    compile_java(&tests, &classes.join("java"))?;
    let guest = Guest {
        ws,
        daemon: &daemon,
        tests: &tests,
        dir: &dir,
        classes: &classes,
    };

    let mut rows = Vec::new();
    for &series in &opts.series {
        let kernel_started = Instant::now();
        let row = match Kernel::fetch(series) {
            Ok(kernel) => guest.boot(&kernel),
            Err(err) => Row::failed(series, None, format!("fetching the kernel: {err:#}")),
        };
        let row = Row {
            took: kernel_started.elapsed(),
            ..row
        };
        println!(
            "==> kernels: {series}: {} in {}",
            if row.passed() { "passed" } else { "FAILED" },
            fmt_duration(row.took)
        );
        rows.push(row);
    }

    println!();
    print!("{}", table(&rows));
    for row in rows.iter().filter(|r| !r.notes.is_empty()) {
        println!("\nnote, {}:", row.kernel_name());
        for note in &row.notes {
            println!("    {note}");
        }
    }
    let failed: Vec<&Row> = rows.iter().filter(|r| !r.passed()).collect();
    for row in &failed {
        println!("\n✗ {}:", row.kernel_name());
        for problem in &row.problems {
            println!("    {problem}");
        }
    }
    println!(
        "\n==> kernels: {} kernel(s), {} failed, in {}",
        rows.len(),
        failed.len(),
        fmt_duration(started.elapsed())
    );
    // The guests' logs stay where a kernel failed; the shared classes are only a cache.
    fs::remove_dir_all(&classes).with_context(|| format!("removing {}", classes.display()))?;
    let _ = fs::remove_dir(&dir);
    if !failed.is_empty() {
        let names: Vec<String> = failed.iter().map(|r| r.series.to_string()).collect();
        bail!("the kernel matrix failed on {}", names.join(", "));
    }
    Ok(())
}

/// The test harness library (tests/src) as cargo names its unit-test binary, and the unit test
/// that compiles the Java scenarios.
const HARNESS_LIB: &str = "integration_tests";
const COMPILE_JAVA_TEST: &str = "java::tests::scenarios_compile";

/// Compiles the Java scenarios on the host into `classes` through the harness's own code
/// (javac takes seconds here, most of a minute in a guest), where every guest re-uses them.
fn compile_java(tests: &HashMap<String, PathBuf>, classes: &Path) -> Result<()> {
    run_step(
        "kernels",
        Command::new(&tests[HARNESS_LIB])
            .args(["--exact", COMPILE_JAVA_TEST, "--quiet"])
            .env("DETECTOR_TEST_JAVA_CLASSES", classes),
    )
}

/// Builds the integration tests without running them and returns each test target's binary.
fn test_binaries(ws: &Workspace) -> Result<HashMap<String, PathBuf>> {
    let mut cmd = ws.host_cargo();
    cmd.args([
        "test",
        "--release",
        "-p",
        "integration-tests",
        "--no-run",
        "--message-format=json",
    ])
    .stdout(Stdio::piped());
    println!("==> kernels: {}", command_line(&cmd));
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting `{}`", command_line(&cmd)))?;
    let mut binaries = HashMap::new();
    let stdout = child.stdout.take().context("cargo's stdout is piped")?;
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo's messages")?;
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        // Test targets, and the harness library's own unit tests (HARNESS_LIB).
        let is_test = message["profile"]["test"] == true;
        if message["reason"] != "compiler-artifact" || !is_test {
            continue;
        }
        if let (Some(name), Some(exe)) = (
            message["target"]["name"].as_str(),
            message["executable"].as_str(),
        ) {
            binaries.insert(name.to_owned(), PathBuf::from(exe));
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    ensure!(
        status.success(),
        "building the integration tests failed ({status})"
    );
    for target in CHECKS.iter().map(|c| c.target).chain([HARNESS_LIB]) {
        ensure!(
            binaries.contains_key(target),
            "cargo built no test binary for the integration tests' {target:?}"
        );
    }
    Ok(binaries)
}

// === fetching kernels ===

/// An extracted kernel package, ready to boot.
#[derive(Debug)]
struct Kernel {
    series: Series,
    /// `linux-image-6.12.118+deb12-amd64`.
    package: String,
    /// The tree `dpkg-deb -x` made: `boot/vmlinuz-<version>`, `lib/modules/<version>`.
    dir: PathBuf,
}

impl Kernel {
    /// `6.12.118+deb12-amd64`, the kernel's `uname -r`.
    fn version(&self) -> &str {
        self.package
            .strip_prefix("linux-image-")
            .unwrap_or(&self.package)
    }

    fn vmlinuz(&self) -> PathBuf {
        self.dir
            .join("boot")
            .join(format!("vmlinuz-{}", self.version()))
    }

    /// The newest package of `series`, from the cache if it is there, else downloaded and
    /// extracted into the cache. If that fails, once more with fresh package lists: stale
    /// lists can name a package the mirror no longer has, or none at all.
    fn fetch(series: Series) -> Result<Self> {
        Self::fetch_with(series, false).or_else(|err| {
            println!("==> kernels: {series}: {err:#}; refreshing the package lists and retrying");
            Self::fetch_with(series, true)
        })
    }

    fn fetch_with(series: Series, refresh: bool) -> Result<Self> {
        let apt = Apt::for_series(series, refresh)?;
        let package = apt.newest(series)?;
        let kernel = Kernel {
            series,
            dir: Path::new(CACHE_DIR).join(&package),
            package,
        };
        if kernel.dir.join(".complete").is_file() {
            println!(
                "==> kernels: {series}: {} (cached in {})",
                kernel.package,
                kernel.dir.display()
            );
            return Ok(kernel);
        }
        println!("==> kernels: {series}: fetching {}", kernel.package);
        kernel.download_and_extract(&apt)?;
        Ok(kernel)
    }

    fn download_and_extract(&self, apt: &Apt) -> Result<()> {
        let download = Path::new(CACHE_DIR).join(format!(".download-{}", std::process::id()));
        let partial = Path::new(CACHE_DIR).join(format!("{}.partial", self.package));
        for dir in [&download, &partial] {
            if dir.exists() {
                fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
            }
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        run_step(
            "kernels",
            apt.command("apt-get")
                .args(["download", &self.package])
                .current_dir(&download),
        )?;
        let deb = single_file(&download)?;
        run_step(
            "kernels",
            Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&partial),
        )?;
        // The packages ship no modules.dep (the postinst makes it); vng's guest needs it to
        // load the 9p and overlay modules.
        run_step(
            "kernels",
            Command::new("depmod")
                .arg("-b")
                .arg(&partial)
                .arg(self.version()),
        )?;
        fs::remove_dir_all(&download)
            .with_context(|| format!("removing {}", download.display()))?;
        if self.dir.exists() {
            fs::remove_dir_all(&self.dir)
                .with_context(|| format!("removing {}", self.dir.display()))?;
        }
        fs::rename(&partial, &self.dir)
            .with_context(|| format!("renaming {} to {}", partial.display(), self.dir.display()))?;
        fs::write(self.dir.join(".complete"), &self.package)
            .with_context(|| format!("marking {} complete", self.dir.display()))?;
        ensure!(
            self.vmlinuz().is_file(),
            "{} has no {}",
            self.package,
            self.vmlinuz().display()
        );
        Ok(())
    }
}

/// The only file in `dir`.
fn single_file(dir: &Path) -> Result<PathBuf> {
    let mut files = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    ensure!(
        files.len() == 1,
        "expected one downloaded package in {}, found {files:?}",
        dir.display()
    );
    Ok(files.remove(0))
}

/// apt as the machine has it, or with a private bullseye configuration.
#[derive(Debug)]
struct Apt {
    /// `-o` options for the private configuration; empty for the machine's own.
    options: Vec<String>,
}

impl Apt {
    /// With `refresh`, runs `apt-get update` first (the machine's own lists included).
    fn for_series(series: Series, refresh: bool) -> Result<Self> {
        if !series.is_bullseye() {
            let apt = Apt {
                options: Vec::new(),
            };
            if refresh {
                run_step("kernels", apt.command("apt-get").arg("update"))?;
            }
            return Ok(apt);
        }
        let root = Path::new(CACHE_DIR).join("apt-bullseye");
        let sources = root.join("sources.list");
        let state = root.join("state");
        let cache = root.join("cache");
        for dir in [state.join("lists/partial"), cache.join("archives/partial")] {
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        fs::write(&sources, BULLSEYE_SOURCES)
            .with_context(|| format!("writing {}", sources.display()))?;
        let apt = Apt {
            options: vec![
                format!("Dir::Etc::SourceList={}", sources.display()),
                "Dir::Etc::SourceParts=/dev/null".to_owned(),
                format!("Dir::State={}", state.display()),
                format!("Dir::Cache={}", cache.display()),
                // The lists live in a root-only directory that apt's `_apt` sandbox user
                // cannot write to.
                "APT::Sandbox::User=root".to_owned(),
            ],
        };
        let lists = state.join("lists");
        if refresh || is_older_than(&lists, LISTS_MAX_AGE)? {
            run_step("kernels", apt.command("apt-get").arg("update"))?;
            // `update` does not touch the directory when nothing changed upstream.
            let marker = lists.join("refreshed");
            fs::write(&marker, "").with_context(|| format!("writing {}", marker.display()))?;
        }
        Ok(apt)
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("DEBIAN_FRONTEND", "noninteractive");
        for option in &self.options {
            cmd.arg("-o").arg(option);
        }
        cmd
    }

    /// The newest image package of `series` that apt knows.
    fn newest(&self, series: Series) -> Result<String> {
        let (prefix, _) = series.package_pattern();
        let mut cmd = self.command("apt-cache");
        cmd.args(["pkgnames", prefix]);
        let output = cmd
            .output()
            .with_context(|| format!("running `{}`", command_line(&cmd)))?;
        ensure!(
            output.status.success(),
            "`{}` failed ({}): {}",
            command_line(&cmd),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
        let newest = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|name| Some((series.upload_number(name)?, name.to_owned())))
            .max();
        match newest {
            Some((_, package)) => Ok(package),
            None => bail!(
                "apt knows no {prefix}N{} package (`{}`); is `apt-get update` needed?",
                series.package_pattern().1,
                command_line(&cmd)
            ),
        }
    }
}

/// Whether the newest entry of `dir` was modified longer ago than `age`; true if `dir` holds
/// nothing.
fn is_older_than(dir: &Path, age: Duration) -> Result<bool> {
    let mut newest: Option<SystemTime> = None;
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        if entry.file_name() == "partial" || entry.file_name() == "lock" {
            continue;
        }
        if let Ok(modified) = entry.metadata().and_then(|m| m.modified()) {
            newest = newest.max(Some(modified));
        }
    }
    Ok(newest.is_none_or(|t| t.elapsed().unwrap_or_default() > age))
}

// === booting ===

/// How a row says its guest died before the script's end.
const GUEST_CRASHED: &str = "the guest stopped before its script finished";

/// What every guest shares: the binaries, the Java classes, the run's directory.
struct Guest<'a> {
    ws: &'a Workspace,
    daemon: &'a Path,
    /// Test target name → binary.
    tests: &'a HashMap<String, PathBuf>,
    /// Holds each guest's shared directory, named after its series.
    dir: &'a Path,
    /// Shared with every guest; `DETECTOR_TEST_JAVA_CLASSES` is its `java` directory.
    classes: &'a Path,
}

impl Guest<'_> {
    /// Boots `kernel` with the guest script and reads back what each check did.
    fn boot(&self, kernel: &Kernel) -> Row {
        let row = self.boot_once(kernel);
        if !row.problems.iter().any(|p| p.starts_with(GUEST_CRASHED)) {
            return row;
        }
        // The guest kernel itself died mid-run (seen once on 6.12 under TCG: an int3 Oops in
        // the kernel's own text patching as its RNG became ready, during a fork). That says
        // nothing about the detector; one more boot does. Said out loud, and a second crash
        // fails the step.
        let share = self.dir.join(kernel.series.to_string());
        let kept = self.dir.join(format!("{}-crashed", kernel.series));
        let _ = fs::remove_dir_all(&kept);
        let kept_note = match fs::rename(&share, &kept) {
            Ok(()) => format!("console kept in {}", kept.display()),
            Err(e) => format!("its logs could not be kept: {e}"),
        };
        println!(
            "==> kernels: {}: the guest kernel stopped before the checks finished ({kept_note}); booting it once more",
            kernel.series
        );
        let mut again = self.boot_once(kernel);
        again.notes.push(format!(
            "booted twice: the first guest crashed ({kept_note})"
        ));
        again
    }

    fn boot_once(&self, kernel: &Kernel) -> Row {
        match self.try_boot(kernel) {
            Ok(row) => row,
            Err(err) => Row::failed(
                kernel.series,
                Some(kernel.version().to_owned()),
                format!("booting: {err:#}"),
            ),
        }
    }

    fn try_boot(&self, kernel: &Kernel) -> Result<Row> {
        let share = self.dir.join(kernel.series.to_string());
        if share.exists() {
            fs::remove_dir_all(&share).with_context(|| format!("removing {}", share.display()))?;
        }
        fs::create_dir_all(&share).with_context(|| format!("creating {}", share.display()))?;
        let script = share.join("cmd.sh");
        fs::write(&script, self.script(&share)?)
            .with_context(|| format!("writing {}", script.display()))?;
        let console = share.join("console.log");
        let console_file = fs::File::create(&console)
            .with_context(|| format!("creating {}", console.display()))?;

        let mut cmd = Command::new(setup::vng_program());
        // vng starts `virtme-run` by name: its own directory first on PATH.
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![setup::vng_bin_dir()];
        dirs.extend(std::env::split_paths(&path));
        cmd.env(
            "PATH",
            std::env::join_paths(dirs).context("PATH with virtme-ng's directory")?,
        );
        cmd.arg("--verbose")
            // /dev/kvm here only runs kernels built for its paravirtual flavour.
            .arg("--disable-kvm")
            .arg("--run")
            .arg(kernel.vmlinuz())
            .args(["--user", "root", "--memory", "2G", "--cpus", "2"])
            .arg(format!("--rwdir={}", share.display()))
            .arg(format!("--rwdir={}", self.classes.display()))
            // vng's default under software emulation is `-cpu max` (AVX and newer extensions):
            // with it, javac died of SIGSEGV in C1-compiled code. On Westmere (SSE 4.2, no
            // AVX) HotSpot generates code that QEMU's emulation runs reliably. RDRAND lets the
            // kernel seed its RNG at boot: without it the RNG became ready mid-test, and the
            // text patching that follows crashed a 6.12 guest once under emulation.
            .arg("--qemu-opts=-cpu Westmere,+rdrand")
            .arg("--exec")
            .arg(format!("bash {}", script.display()))
            .current_dir(&share)
            .stdin(Stdio::null())
            .stdout(
                console_file
                    .try_clone()
                    .context("duplicating a file handle")?,
            )
            .stderr(console_file)
            // Its own process group, so a timeout kills QEMU along with vng.
            .process_group(0);
        println!(
            "==> kernels: {}: booting {} (log: {})",
            kernel.series,
            kernel.version(),
            share.display()
        );
        let booted = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting `{}`", command_line(&cmd)))?;
        let deadline = booted + GUEST_TIMEOUT;
        let timed_out = loop {
            if child.try_wait().context("waiting for vng")?.is_some() {
                break false;
            }
            if Instant::now() >= deadline {
                if let Ok(pgid) = libc::pid_t::try_from(child.id()) {
                    // SAFETY: kill has no memory-safety preconditions; the group is the one we
                    // created for this child, which is not reaped yet.
                    unsafe { libc::kill(-pgid, libc::SIGKILL) };
                }
                let _ = child.wait();
                break true;
            }
            thread::sleep(Duration::from_millis(200));
        };

        // vng's own exit code is not the script's (it reports 255 for a clean power-off): the
        // script's files say what happened.
        let mut row = read_results(kernel, &share);
        if timed_out {
            row.problems.push(format!(
                "the guest did not finish within {} and was killed",
                fmt_duration(GUEST_TIMEOUT)
            ));
        }
        if !share.join("done").is_file() && !timed_out {
            row.problems
                .push(format!("{GUEST_CRASHED} (console: {})", console.display()));
        }
        if row.passed() {
            fs::remove_dir_all(&share).with_context(|| format!("removing {}", share.display()))?;
        } else {
            row.problems
                .push(format!("logs kept in {}", share.display()));
        }
        Ok(row)
    }

    /// The script the guest runs as root. Its output and every check's result go to files in
    /// `share`.
    fn script(&self, share: &Path) -> Result<String> {
        let path = env::var("PATH").context("PATH is not set")?;
        let mut script = format!(
            r#"#!/bin/bash
# Written by `cargo xtask kernels`; runs as root inside the guest.
set -u
share={share}
exec >"$share/guest.log" 2>&1
uname -r >"$share/uname"
# The daemon scopes itself to a cgroup v2 directory; pinning needs bpffs.
grep -q ' /sys/fs/cgroup cgroup2 ' /proc/mounts || mount -t cgroup2 cgroup2 /sys/fs/cgroup
grep -q ' /sys/fs/bpf bpf ' /proc/mounts || mount -t bpf bpf /sys/fs/bpf
ip link set lo up
export PATH={path} CI=true DETECTOR_BIN={daemon} DETECTOR_TEST_TIMEOUT_SCALE={TIMEOUT_SCALE}
# Compiled on the host already: javac takes most of a minute here. A directory inside the
# shared one: the harness replaces it if stale, and a mount point cannot be removed.
export DETECTOR_TEST_JAVA_CLASSES={classes}/java
cd {root}

# check ID NEEDS BINARY TEST: runs one test; appends "ID EXIT-CODE MILLISECONDS" to results.
check() {{
    local id=$1 needs=$2 bin=$3 test=$4
    if [ "$needs" != - ] && ! grep -q "^$needs 0 " "$share/results"; then
        echo "$id skipped 0" >>"$share/results"
        return
    fi
    local start=$(date +%s%N)
    "$bin" --exact "$test" --test-threads=1 >"$share/$id.log" 2>&1
    local rc=$?
    echo "$id $rc $(( ($(date +%s%N) - start) / 1000000 ))" >>"$share/results"
}}
: >"$share/results"
"#,
            share = shell_quote(share),
            path = shell_quote(Path::new(&path)),
            daemon = shell_quote(self.daemon),
            classes = shell_quote(self.classes),
            root = shell_quote(&self.ws.root),
        );
        for check in &CHECKS {
            let bin = &self.tests[check.target];
            script.push_str(&format!(
                "check {} {} {} {}\n",
                check.id,
                check.needs.unwrap_or("-"),
                shell_quote(bin),
                check.test
            ));
        }
        script.push_str("echo done >\"$share/done\"\n");
        Ok(script)
    }
}

/// `'...'` for bash, refusing what would need escaping: these are paths this machine made.
fn shell_quote(path: &Path) -> String {
    let text = path.to_string_lossy();
    assert!(
        !text.contains('\''),
        "path with a single quote: {}",
        path.display()
    );
    format!("'{text}'")
}

// === results ===

/// What one check did in one kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Passed(Duration),
    Failed(Duration),
    /// Not run because the check it needs failed.
    Skipped,
    /// No result line: the guest never got to it.
    Missing,
}

/// One kernel's line of the table.
#[derive(Debug)]
struct Row {
    series: Series,
    /// The package's `uname -r`, if a package was found.
    version: Option<String>,
    /// In [`CHECKS`] order.
    outcomes: Vec<Outcome>,
    /// Why the kernel failed, one line each.
    problems: Vec<String>,
    /// What an operator should know even when it passed (a retried boot).
    notes: Vec<String>,
    took: Duration,
}

impl Row {
    fn failed(series: Series, version: Option<String>, problem: String) -> Self {
        Row {
            series,
            version,
            outcomes: vec![Outcome::Missing; CHECKS.len()],
            problems: vec![problem],
            notes: Vec::new(),
            took: Duration::ZERO,
        }
    }

    fn passed(&self) -> bool {
        self.problems.is_empty()
            && self
                .outcomes
                .iter()
                .all(|o| matches!(o, Outcome::Passed(_)))
    }

    fn kernel_name(&self) -> String {
        match &self.version {
            Some(version) => format!("{} ({version})", self.series),
            None => self.series.to_string(),
        }
    }
}

fn read_results(kernel: &Kernel, share: &Path) -> Row {
    let mut row = Row {
        series: kernel.series,
        version: Some(kernel.version().to_owned()),
        outcomes: Vec::new(),
        problems: Vec::new(),
        notes: Vec::new(),
        took: Duration::ZERO,
    };
    let uname = fs::read_to_string(share.join("uname")).unwrap_or_default();
    let uname = uname.trim();
    if !uname.is_empty() && uname != kernel.version() {
        row.problems
            .push(format!("the guest runs {uname}, not {}", kernel.version()));
    }
    let results = fs::read_to_string(share.join("results")).unwrap_or_default();
    let lines: HashMap<&str, (&str, &str)> = results
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            Some((fields.next()?, (fields.next()?, fields.next()?)))
        })
        .collect();
    for check in &CHECKS {
        let outcome = match lines.get(check.id) {
            None => Outcome::Missing,
            Some(("skipped", _)) => Outcome::Skipped,
            Some((code, millis)) => {
                let took = Duration::from_millis(millis.parse().unwrap_or(0));
                if *code == "0" {
                    Outcome::Passed(took)
                } else {
                    Outcome::Failed(took)
                }
            }
        };
        match &outcome {
            Outcome::Passed(_) => {}
            Outcome::Failed(_) => {
                let log = share.join(format!("{}.log", check.id));
                let text = fs::read_to_string(&log).unwrap_or_default();
                row.problems
                    .push(format!("{}: {}", check.id, failure_reason(&text)));
            }
            Outcome::Skipped => row.problems.push(format!(
                "{}: not run, `{}` failed",
                check.id,
                check.needs.unwrap_or("-")
            )),
            Outcome::Missing => row
                .problems
                .push(format!("{}: no result from the guest", check.id)),
        }
        row.outcomes.push(outcome);
    }
    row
}

/// One line saying why a test failed, from its output: the daemon's own error when it never
/// got ready (a program the verifier refused, say), else the first line of the panic message.
fn failure_reason(log: &str) -> String {
    const NOT_READY: &str = "before `detector ready`";
    const DAEMON_STDERR: &str = "--- detector stderr ---";
    if log.contains(NOT_READY) {
        if let Some((_, stderr)) = log.split_once(DAEMON_STDERR) {
            // The daemon's last word before exiting is its one-line cause; the test harness's
            // own trailer starts at `note:` or `failures:`.
            let error = stderr
                .lines()
                .map(str::trim)
                .take_while(|l| !l.starts_with("note: run with") && !l.starts_with("failures:"))
                .filter(|l| !l.is_empty())
                .last();
            if let Some(error) = error {
                return format!("the daemon did not start: {}", shorten(error));
            }
        }
    }
    let mut lines = log.lines();
    if lines.any(|l| l.contains("panicked at")) {
        if let Some(message) = lines.next() {
            return shorten(message.trim());
        }
    }
    match log.lines().rev().find(|l| !l.trim().is_empty()) {
        Some(last) => shorten(last.trim()),
        None => "no output".to_owned(),
    }
}

/// At most 300 characters: a verifier error can carry a whole log.
fn shorten(line: &str) -> String {
    const MAX: usize = 300;
    match line.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

/// The table printed at the end: one row per kernel, one column per check, the "no loss"
/// summary and the kernel's total time.
fn table(rows: &[Row]) -> String {
    let mut header: Vec<String> = vec!["kernel".to_owned()];
    header.extend(CHECKS.iter().map(|c| c.id.to_owned()));
    header.extend(["no loss".to_owned(), "time".to_owned()]);
    let mut lines: Vec<Vec<String>> = vec![header];
    for row in rows {
        let mut cells = vec![row
            .version
            .clone()
            .unwrap_or_else(|| format!("{} (none)", row.series))];
        cells.extend(row.outcomes.iter().map(|o| match o {
            Outcome::Passed(took) => format!("✓ {}", fmt_duration(*took)),
            Outcome::Failed(took) => format!("✗ {}", fmt_duration(*took)),
            Outcome::Skipped => "- skipped".to_owned(),
            Outcome::Missing => "✗ no result".to_owned(),
        }));
        // Every check ends with `assert_nothing_lost` on the stats line: no loss is proven
        // only when they all got there.
        cells.push(
            if row.outcomes.iter().all(|o| matches!(o, Outcome::Passed(_))) {
                "✓".to_owned()
            } else {
                "✗ unproven".to_owned()
            },
        );
        cells.push(fmt_duration(row.took));
        lines.push(cells);
    }
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|i| {
            lines
                .iter()
                .map(|cells| cells[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for cells in &lines {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| {
                let pad = width - cell.chars().count();
                format!("{cell}{}", " ".repeat(pad))
            })
            .collect();
        text.push_str(padded.join("  ").trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_numbers_pick_only_the_generic_image() {
        assert_eq!(
            Series::V6_12.upload_number("linux-image-6.12.118+deb12-amd64"),
            Some(118)
        );
        assert_eq!(
            Series::V6_12.upload_number("linux-image-6.12.118+deb12-rt-amd64"),
            None
        );
        assert_eq!(
            Series::V6_1.upload_number("linux-image-6.1.0-57-amd64"),
            Some(57)
        );
        assert_eq!(
            Series::V6_1.upload_number("linux-image-6.1.0-57-cloud-amd64"),
            None
        );
        assert_eq!(
            Series::V5_10.upload_number("linux-image-5.10.0-35-amd64-dbg"),
            None
        );
    }

    #[test]
    fn a_refused_program_reads_as_the_daemons_error() {
        let log = "thread 't' panicked at tests/src/daemon.rs:114:17:\n\
                   detector exited (exit status: 1) before `detector ready`\n\
                   command: ...\n\
                   --- 0 alert(s) ---\n\
                   --- detector stderr ---\n\
                   2026-12-05T12:32:09Z  INFO detector::daemon: starting: mode monitor\n\
                   detector: kernel program `sched_process_exec` failed to load: Bad address\n\
                   \n\
                   note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n\
                   \n\
                   failures:\n";
        assert_eq!(
            failure_reason(log),
            "the daemon did not start: detector: kernel program `sched_process_exec` failed to load: Bad address"
        );
        let log = "thread 't' panicked at tests/tests/x.rs:1:1:\nthe shell was not SIGKILLed:\n";
        assert_eq!(failure_reason(log), "the shell was not SIGKILLed:");
    }
}
