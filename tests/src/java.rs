//! The Java scenario programs in `tests/java/`: compiled once per test process, run inside the
//! test cgroup.

use std::{
    ffi::{OsStr, OsString},
    fs,
    hash::{DefaultHasher, Hash as _, Hasher as _},
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use testkit::java::{self, Javac};

use crate::{program, ProgramRun, RunningProgram, TestCgroup, PROGRAM_TIMEOUT};

/// Where `javac` put the classes, or why it could not.
static CLASSES: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// A directory to compile into once and re-use while the sources are unchanged, instead of a
/// fresh temporary directory per test process: the kernel matrix (`cargo xtask kernels`)
/// shares one across its guests, where javac under QEMU without KVM takes most of a minute.
const SHARED_CLASSES_VAR: &str = "DETECTOR_TEST_JAVA_CLASSES";

/// Written into a shared classes directory after a successful compile: what was compiled.
const STAMP_FILE: &str = ".sources-fingerprint";

/// Compiles `tests/java/*.java` (once per test process, or once per
/// `DETECTOR_TEST_JAVA_CLASSES` directory) and returns the directory of the classes.
pub fn compile() -> &'static Path {
    match CLASSES.get_or_init(compile_sources) {
        Ok(dir) => dir,
        Err(e) => panic!("{e}"),
    }
}

fn compile_sources() -> Result<PathBuf, String> {
    let source_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("java");
    let mut sources: Vec<PathBuf> = fs::read_dir(&source_dir)
        .map_err(|e| format!("reading {}: {e}", source_dir.display()))?
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.extension() == Some(OsStr::new("java")))
        .collect();
    sources.sort();
    if sources.is_empty() {
        return Err(format!("no .java files in {}", source_dir.display()));
    }

    if let Some(shared) = std::env::var_os(SHARED_CLASSES_VAR) {
        let out_dir = PathBuf::from(shared);
        let fingerprint = fingerprint(&sources)?;
        let stamp = out_dir.join(STAMP_FILE);
        if fs::read_to_string(&stamp).is_ok_and(|s| s == fingerprint) {
            return Ok(out_dir);
        }
        // A stale or partial compile: start from nothing, so no class of a removed source
        // survives.
        if out_dir.exists() {
            fs::remove_dir_all(&out_dir)
                .map_err(|e| format!("removing {}: {e}", out_dir.display()))?;
        }
        fs::create_dir_all(&out_dir).map_err(|e| format!("creating {}: {e}", out_dir.display()))?;
        run_javac(&sources, &out_dir)?;
        fs::write(&stamp, fingerprint).map_err(|e| format!("writing {}: {e}", stamp.display()))?;
        return Ok(out_dir);
    }

    let out_dir = std::env::temp_dir().join(crate::unique_name("java-classes"));
    fs::create_dir_all(&out_dir).map_err(|e| format!("creating {}: {e}", out_dir.display()))?;
    // Statics are never dropped; remove the classes when the test binary exits instead.
    // SAFETY: `remove_classes` is a plain extern "C" fn that does not unwind.
    unsafe { libc::atexit(remove_classes) };
    run_javac(&sources, &out_dir)?;
    Ok(out_dir)
}

fn run_javac(sources: &[PathBuf], out_dir: &Path) -> Result<(), String> {
    let javac = java::require_on_path("javac").map_err(|e| e.to_string())?;
    Javac::new(&javac, &["-Xlint:all", "-encoding", "UTF-8"], out_dir)
        .args(sources)
        .run()
        .map_err(|e| e.to_string())
}

/// The sources' names and a hash of their contents: equal fingerprints, same classes.
fn fingerprint(sources: &[PathBuf]) -> Result<String, String> {
    let mut hasher = DefaultHasher::new();
    for source in sources {
        let text = fs::read(source).map_err(|e| format!("reading {}: {e}", source.display()))?;
        source.hash(&mut hasher);
        text.hash(&mut hasher);
    }
    Ok(format!("{:016x}", hasher.finish()))
}

extern "C" fn remove_classes() {
    // Only the per-process temporary directory is registered for removal.
    if let Some(Ok(dir)) = CLASSES.get() {
        let _ = fs::remove_dir_all(dir);
    }
}

/// One run of a scenario class: `java -cp <classes> <class> <args...>`.
#[derive(Debug, Clone)]
pub struct JavaProgram {
    class: String,
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
}

impl JavaProgram {
    /// A run of `class` (a class in `tests/java/`, e.g. `"SpawnShell"`).
    pub fn new(class: &str) -> Self {
        JavaProgram {
            class: class.to_owned(),
            args: Vec::new(),
            cwd: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// The JVM's working directory (where it would write an `hs_err` file).
    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.cwd = Some(dir.to_owned());
        self
    }

    /// Starts the JVM inside `cgroup` and returns at once.
    pub fn spawn_in_cgroup(&self, cgroup: &TestCgroup) -> RunningProgram {
        program::spawn_in_cgroup(self.command(), cgroup)
    }

    /// Runs the JVM to completion (at most [`PROGRAM_TIMEOUT`]) where the test process runs,
    /// outside any test cgroup: for checking what a scenario program does without the
    /// detector.
    pub fn run(&self) -> ProgramRun {
        checked(program::spawn(self.command()))
    }

    /// The `java` command line of this run (for wrapping it in another launcher).
    pub fn command(&self) -> Command {
        let classes = compile();
        let java = java::require_on_path("java").unwrap_or_else(|e| panic!("{e}"));
        let mut command = java::java(java, classes, &self.class);
        command.args(&self.args);
        if let Some(cwd) = &self.cwd {
            command.current_dir(cwd);
        }
        command
    }

    /// Runs the JVM inside `cgroup` to completion (at most [`PROGRAM_TIMEOUT`]).
    ///
    /// Also checks that the JVM reported the pid the harness started: alerts are matched on
    /// that pid, so it must be the JVM's own.
    pub fn run_in_cgroup(&self, cgroup: &TestCgroup) -> ProgramRun {
        checked(self.spawn_in_cgroup(cgroup))
    }
}

/// Waits for the JVM (at most [`PROGRAM_TIMEOUT`]) and checks it reported the pid the harness
/// started.
fn checked(running: RunningProgram) -> ProgramRun {
    let pid = u64::from(running.pid());
    let run = running.wait(PROGRAM_TIMEOUT);
    assert_eq!(
        run.jvm_pid(),
        pid,
        "the JVM is not the process the harness started:\n{run}"
    );
    run
}

#[cfg(test)]
mod tests {
    /// The scenarios compile (javac -Xlint:all). With `DETECTOR_TEST_JAVA_CLASSES` set, this is
    /// how the kernel matrix compiles them once on the host, in seconds, for all its guests.
    #[test]
    fn scenarios_compile() {
        assert!(super::compile().join("Scenario.class").is_file());
    }
}
