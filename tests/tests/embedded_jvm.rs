//! A JVM that no `java` launcher starts is a JVM all the same: recognised by the `libjvm.so`
//! it loads, before it runs application code.
//!
//! Three launchers that are not called `java`: a native program that `dlopen()`s libjvm.so
//! and calls `JNI_CreateJavaVM` (jsvc, install4j, any JNI host), one linked with `-ljvm`
//! (no dlopen: only the `JNI_CreateJavaVM` uprobe sees it), and a jpackage app image
//! (`bin/<app>`, whose runtime lives inside the image). Each runs the Log4Shell payload
//! `/bin/sh -c "echo pwned > CANARY"`. Proves, for each: the shell raises `jvm_shell_spawn`
//! naming the launcher's process as the JVM; in monitor the shell runs, in enforce it dies of
//! SIGKILL and the canary never appears; a launcher started before the detector is found in
//! /proc/PID/maps at start. The stats line says how each JVM was recognised.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use integration_tests::{
    alert, assert_nothing_lost, compile_java, require_kernel_support, spawn_in_cgroup, Detector,
    Mode, Policy, ProgramRun, RunningProgram, ScratchDir, TestCgroup, PROGRAM_TIMEOUT,
};
use serde_json::Value;

/// The native launchers, built once per test process.
struct Native {
    /// The JDK whose libjvm.so the native launchers load.
    libjvm: PathBuf,
    /// `embed_jvm.c` built to dlopen libjvm.so.
    dlopen: PathBuf,
    /// `embed_jvm.c` linked with -ljvm.
    linked: PathBuf,
}

static NATIVE: OnceLock<Native> = OnceLock::new();
/// The app image's directory (`bin/spawn` runs SpawnShell, `bin/wait` WaitThenShell), built
/// only by the tests that use it: jpackage takes a while, and far longer in the kernel
/// matrix's emulated guests.
static APP_IMAGE: OnceLock<PathBuf> = OnceLock::new();

fn native() -> &'static Native {
    NATIVE.get_or_init(build_native)
}

fn app_image() -> &'static Path {
    APP_IMAGE.get_or_init(build_app_image)
}

/// The directories the launchers were built in, removed when the test process exits.
static BUILT: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

extern "C" fn remove_built() {
    if let Ok(dirs) = BUILT.lock() {
        for dir in dirs.iter() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A fresh directory to build launchers in, removed at exit. Never under a world-writable
/// directory (/tmp, /var/tmp, /dev/shm), where the target directory of a checkout in /tmp
/// would put it: the app image's JVM runs its own `jspawnhelper` from where the image is, and
/// a JVM running a program from /tmp is, rightly, a detection. So /var/cache/detector-tests
/// first (root's, like the lab's caches), then the target directory, then the temp dir.
fn build_dir(name: &str) -> PathBuf {
    let name = integration_tests::unique_name(name);
    let dir = [
        PathBuf::from("/var/cache/detector-tests"),
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
        std::env::temp_dir(),
    ]
    .into_iter()
    .map(|parent| parent.join(&name))
    .find(|dir| std::fs::create_dir_all(dir).is_ok())
    .expect("creating the launchers' directory");
    let mut built = BUILT.lock().expect("the list of build directories");
    if built.is_empty() {
        // SAFETY: `remove_built` is a plain extern "C" fn that does not unwind.
        unsafe { libc::atexit(remove_built) };
    }
    built.push(dir.clone());
    dir
}

fn run(command: &mut Command) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn build_native() -> Native {
    let java = std::fs::canonicalize(testkit::java::find_on_path("java").expect("java on PATH"))
        .expect("resolving java");
    let home = java
        .parent()
        .and_then(Path::parent)
        .expect("java is JAVA_HOME/bin/java")
        .to_path_buf();
    let server = home.join("lib/server");
    let dir = build_dir("embedded-jvm-native");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("native/embed_jvm.c");
    let include = home.join("include");
    let cc = |out: &Path, extra: &[&str]| {
        let mut command = Command::new("cc");
        command
            .arg("-O1")
            .arg("-I")
            .arg(&include)
            .arg("-I")
            .arg(include.join("linux"))
            .arg("-o")
            .arg(out)
            .arg(&source)
            .args(extra)
            .arg("-lpthread");
        run(&mut command);
    };
    let dlopen = dir.join("embed-dlopen");
    cc(&dlopen, &["-ldl"]);
    let linked = dir.join("embed-linked");
    let rpath = format!("-Wl,-rpath,{}", server.display());
    let lib_dir = format!("-L{}", server.display());
    cc(&linked, &["-DLINKED", &lib_dir, &rpath, "-ljvm"]);
    Native {
        libjvm: server.join("libjvm.so"),
        dlopen,
        linked,
    }
}

fn build_app_image() -> PathBuf {
    let dir = build_dir("embedded-jvm-app");
    // A jpackage app image of the scenario classes, with its own runtime inside it (not under
    // /usr/lib/jvm or /opt: no JNI_CreateJavaVM probe waits for it at start).
    let input = dir.join("input");
    std::fs::create_dir_all(&input).expect("creating the jar's directory");
    run(Command::new("jar")
        .arg("cf")
        .arg(input.join("scenarios.jar"))
        .arg("-C")
        .arg(compile_java())
        .arg("."));
    let wait = dir.join("wait.properties");
    std::fs::write(&wait, "main-class=WaitThenShell\n").expect("writing wait.properties");
    run(Command::new("jpackage")
        .args(["--type", "app-image", "--name", "spawn"])
        .arg("--input")
        .arg(&input)
        .args(["--main-jar", "scenarios.jar", "--main-class", "SpawnShell"])
        .args(["--add-modules", "java.base"])
        .arg("--add-launcher")
        .arg(format!("wait={}", wait.display()))
        .arg("--dest")
        .arg(&dir));
    dir.join("spawn")
}

/// How a launcher is started: the program and its arguments before the scenario's.
#[derive(Clone, Copy, Debug)]
enum Launcher {
    Dlopen,
    Linked,
    AppImage,
}

impl Launcher {
    /// The command that runs the scenario `class` (SpawnShell or WaitThenShell) with `args`.
    fn command(self, class: &str, args: &[&Path]) -> Command {
        let mut command = match self {
            Launcher::Dlopen | Launcher::Linked => {
                let l = native();
                let exe = if matches!(self, Launcher::Dlopen) {
                    &l.dlopen
                } else {
                    &l.linked
                };
                let mut c = Command::new(exe);
                c.arg(&l.libjvm).arg(compile_java()).arg(class);
                c
            }
            Launcher::AppImage => {
                let name = if class == "SpawnShell" {
                    "spawn"
                } else {
                    "wait"
                };
                Command::new(app_image().join("bin").join(name))
            }
        };
        command.args(args);
        command
    }

    /// The launcher's file name: what `jvm.exe` must end with.
    fn exe_name(self, class: &str) -> &'static str {
        match self {
            Launcher::Dlopen => "embed-dlopen",
            Launcher::Linked => "embed-linked",
            Launcher::AppImage if class == "SpawnShell" => "spawn",
            Launcher::AppImage => "wait",
        }
    }

    /// Builds what the launcher needs before the detector starts (its timing is not the test's).
    fn build(self) {
        match self {
            Launcher::Dlopen | Launcher::Linked => {
                native();
            }
            Launcher::AppImage => {
                app_image();
            }
        }
    }

    /// How the detector recognises a launcher started after it.
    fn recognised_by(self) -> &'static str {
        match self {
            Launcher::Dlopen | Launcher::AppImage => "libjvm_dlopen",
            Launcher::Linked => "jni_create_java_vm",
        }
    }
}

/// Waits for the launcher, checking that the JVM is the process the harness started.
fn finish(running: RunningProgram) -> ProgramRun {
    let pid = u64::from(running.pid());
    let run = running.wait(PROGRAM_TIMEOUT);
    run.assert_success();
    assert_eq!(
        run.jvm_pid(),
        pid,
        "the JVM is not the launcher's process:\n{run}"
    );
    run
}

/// The alert names the launcher's process as the JVM, and the shell as the process.
fn assert_names_launcher(found: &Value, run: &ProgramRun, exe_name: &str) {
    assert_eq!(
        alert::jvm_pid(found),
        Some(run.jvm_pid()),
        "`jvm.pid` is not the launcher's process:\n{}\n{run}",
        alert::pretty(found)
    );
    let exe = found
        .pointer("/jvm/exe")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(
        exe.ends_with(&format!("/{exe_name}")),
        "`jvm.exe` is not the launcher {exe_name}:\n{}",
        alert::pretty(found)
    );
    alert::assert_shell_process(found);
    assert_eq!(
        alert::process_pid(found),
        Some(run.expect_child_pid("shell")),
        "{}",
        alert::pretty(found)
    );
}

fn recognised(stats: &Value, by: &str) -> u64 {
    stats
        .pointer(&format!("/jvms_recognised/{by}"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// The launcher starts after the detector and runs the shell at once.
fn started_after(launcher: Launcher, mode: Mode) {
    if !require_kernel_support() {
        return;
    }
    launcher.build();
    let label = format!("embedded-{launcher:?}-{mode:?}").to_lowercase();
    let cgroup = TestCgroup::new(&label);
    let scratch = ScratchDir::new(&label);
    let mut detector = Detector::with_policy(&Policy::new(mode), &cgroup);

    let canary = scratch.file("canary");
    let mut command = launcher.command("SpawnShell", &[&canary]);
    command.current_dir(scratch.path());
    let run = finish(spawn_in_cgroup(command, &cgroup));
    let found = alert::expect_only_alert(&detector, alert::shell_spawn_from(run.jvm_pid()));
    alert::assert_shell_spawn_alert(&found, mode.expected_action());
    assert_names_launcher(&found, &run, launcher.exe_name("SpawnShell"));
    match mode {
        Mode::Enforce => run.assert_shell_killed(&canary),
        Mode::Monitor => {
            assert_eq!(run.expect_child_exit("shell"), 0, "{run}");
            assert!(canary.exists(), "in monitor mode the shell runs:\n{run}");
        }
    }
    let stats = detector.stop();
    assert!(
        recognised(&stats, launcher.recognised_by()) >= 1,
        "not recognised by {}: {stats}",
        launcher.recognised_by()
    );
    assert_eq!(stats["jvms_late"].as_u64(), Some(0), "{stats}");
    assert_nothing_lost(&stats);
}

/// The launcher runs before the detector starts, and runs the shell once it has.
fn started_before(launcher: Launcher) {
    if !require_kernel_support() {
        return;
    }
    launcher.build();
    let label = format!("embedded-before-{launcher:?}").to_lowercase();
    let cgroup = TestCgroup::new(&label);
    let scratch = ScratchDir::new(&label);
    let canary = scratch.file("canary");
    let go = scratch.file("go");

    let mut command = launcher.command("WaitThenShell", &[&canary, &go]);
    command.current_dir(scratch.path());
    let jvm = spawn_in_cgroup(command, &cgroup);
    jvm.wait_until_started();

    let mut detector = Detector::with_policy(&Policy::new(Mode::Enforce), &cgroup);
    let run = jvm.go(&go);
    run.assert_shell_killed(&canary);
    let found = alert::expect_only_alert(&detector, alert::shell_spawn_from(run.jvm_pid()));
    alert::assert_shell_spawn_alert(&found, Mode::Enforce.expected_action());
    assert_names_launcher(&found, &run, launcher.exe_name("WaitThenShell"));
    let stats = detector.stop();
    assert!(
        recognised(&stats, "proc_maps") >= 1,
        "not found in /proc/PID/maps: {stats}"
    );
    assert!(stats["jvms_seeded"].as_u64().unwrap_or(0) >= 1, "{stats}");
    assert_nothing_lost(&stats);
}

#[test]
fn dlopen_launcher_monitor() {
    started_after(Launcher::Dlopen, Mode::Monitor);
}

#[test]
fn dlopen_launcher_enforce() {
    started_after(Launcher::Dlopen, Mode::Enforce);
}

#[test]
fn linked_launcher_enforce() {
    started_after(Launcher::Linked, Mode::Enforce);
}

#[test]
fn app_image_monitor() {
    started_after(Launcher::AppImage, Mode::Monitor);
}

#[test]
fn app_image_enforce() {
    started_after(Launcher::AppImage, Mode::Enforce);
}

#[test]
fn dlopen_launcher_started_before_the_detector() {
    started_before(Launcher::Dlopen);
}

#[test]
fn app_image_started_before_the_detector() {
    started_before(Launcher::AppImage);
}
