//! `detector learn`: watch the JVMs of a cgroup, then write a suggested allowlist policy.
//!
//! Proves, against the real kernel programs and a real JVM: a JVM in the test cgroup that
//! makes an HTTP request to a loopback server and runs `/usr/bin/id` while `learn --duration
//! 8s --cgroup` watches gets, in the written policy, an `[[egress.allow]]` rule for its
//! application with `127.0.0.1/32` and the server's port, and an `[[exec.allow]]` rule with
//! `/usr/bin/id`; `detector check-config` accepts the file. And SIGINT ends learning early,
//! still writing a valid policy and exiting 0.

use std::{
    fs,
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc::{self, Receiver},
    thread,
    time::{Duration, Instant},
};

use integration_tests::{
    detector_binary, find_on_path, require_kernel_support, spawn_in_cgroup, ScratchDir, TcpServer,
    TestCgroup, LOOPBACK_V4, PROGRAM_TIMEOUT, SERVER_TIMEOUT,
};

/// How long the detector may take to load and attach its kernel programs.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long `learn` may take, after its duration or a signal, to write the policy and exit.
const FINISH_TIMEOUT: Duration = Duration::from_secs(30);

const LEARNING_LINE: &str = "detector learning";
const SUMMARY_PREFIX: &str = "detector learned: ";

/// The application under test: one JVM that does both things to be learned. Self-contained,
/// compiled by the test, so its main class (and the `app` of its rules) is `LearnedApp`.
const LEARNED_APP: &str = r#"
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

public final class LearnedApp {
    private LearnedApp() {}

    public static void main(String[] args) throws Exception {
        System.out.println("jvm-pid " + ProcessHandle.current().pid());
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress(args[0], Integer.parseInt(args[1])), 5000);
            socket.setSoTimeout(5000);
            OutputStream out = socket.getOutputStream();
            out.write("GET / HTTP/1.0\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            out.flush();
            BufferedReader in = new BufferedReader(
                new InputStreamReader(socket.getInputStream(), StandardCharsets.US_ASCII));
            System.out.println("http-status " + in.readLine());
        }
        Process id = new ProcessBuilder("/usr/bin/id").redirectErrorStream(true).start();
        id.getInputStream().readAllBytes();
        System.out.println("id-exit " + id.waitFor());
    }
}
"#;

/// A running `detector learn`, killed on drop unless it finished.
struct Learn {
    child: Child,
    stderr: Receiver<String>,
    /// Every stderr line so far, for failure messages.
    log: Vec<String>,
}

impl Learn {
    /// Starts `detector learn ARGS --cgroup CGROUP` and waits for `detector learning`.
    fn start(cgroup: &TestCgroup, args: &[&str]) -> Self {
        let mut command = Command::new(detector_binary());
        command
            .arg("learn")
            .args(args)
            .arg("--cgroup")
            .arg(cgroup.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut learn = Learn {
            child,
            stderr: rx,
            log: Vec::new(),
        };
        if !learn.wait_for_line(|l| l == LEARNING_LINE, READY_TIMEOUT) {
            let status = learn.child.try_wait().ok().flatten();
            panic!(
                "no `{LEARNING_LINE}` within {READY_TIMEOUT:?} (exit: {status:?})\ncommand: \
                 {command:?}\nstderr:\n{}",
                learn.log.join("\n")
            );
        }
        learn
    }

    /// Reads stderr until a line satisfies `pred`; false at the timeout or when stderr closes.
    fn wait_for_line(&mut self, pred: impl Fn(&str) -> bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    let found = pred(&line);
                    self.log.push(line);
                    if found {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
    }

    /// Waits for the exit and the summary line; returns the status and that line.
    fn finish(mut self) -> (ExitStatus, String) {
        let found = self.wait_for_line(|l| l.starts_with(SUMMARY_PREFIX), FINISH_TIMEOUT);
        let deadline = Instant::now() + FINISH_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("waiting for detector learn") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "detector learn still running:\n{}",
                self.log.join("\n")
            );
            thread::sleep(Duration::from_millis(50));
        };
        // The rest of stderr, for the messages below.
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_millis(200)) {
            self.log.push(line);
        }
        let summary = self
            .log
            .iter()
            .find(|l| l.starts_with(SUMMARY_PREFIX))
            .cloned();
        let Some(summary) = summary.filter(|_| found) else {
            panic!(
                "no `{SUMMARY_PREFIX}...` line (exit {status}):\n{}",
                self.log.join("\n")
            );
        };
        (status, summary)
    }

    fn interrupt(&self) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pids fit in pid_t");
        // SAFETY: kill has no memory-safety preconditions; the child is not reaped yet.
        let rc = unsafe { libc::kill(pid, libc::SIGINT) };
        assert_eq!(rc, 0, "SIGINT: {}", std::io::Error::last_os_error());
    }
}

impl Drop for Learn {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `detector check-config FILE` must exit 0.
fn assert_check_config_accepts(file: &Path, text: &str) {
    let out = Command::new(detector_binary())
        .arg("check-config")
        .arg(file)
        .output()
        .expect("running detector check-config");
    assert_eq!(
        out.status.code(),
        Some(0),
        "check-config refused the learned policy: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The active (not commented out) tables with this header, each as its lines.
fn tables<'a>(text: &'a str, header: &str) -> Vec<Vec<&'a str>> {
    let mut found = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        if line.starts_with('[') || line.trim().is_empty() {
            found.extend(current.take());
            if line == header {
                current = Some(Vec::new());
            }
        } else if let Some(table) = current.as_mut() {
            if !line.starts_with('#') {
                table.push(line);
            }
        }
    }
    found.extend(current);
    found
}

fn compile(source_dir: &Path) {
    let javac = find_on_path("javac").expect("javac not found on PATH; run `cargo xtask setup`");
    let source = source_dir.join("LearnedApp.java");
    fs::write(&source, LEARNED_APP).expect("writing LearnedApp.java");
    let out = Command::new(javac)
        .arg("-d")
        .arg(source_dir)
        .arg(&source)
        .output()
        .expect("running javac");
    assert!(
        out.status.success(),
        "javac failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn learn_suggests_the_egress_and_programs_of_a_jvm() {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new("learn");
    let scratch = ScratchDir::new("learn");
    compile(scratch.path());
    let http = TcpServer::http(LOOPBACK_V4, 0);
    let port = http.addr().port();
    let output = scratch.file("learned.toml");

    let learn = Learn::start(
        &cgroup,
        &[
            "--duration",
            "8s",
            "--output",
            output.to_str().expect("utf-8 path"),
        ],
    );
    let java = find_on_path("java").expect("java not found on PATH; run `cargo xtask setup`");
    let mut command = Command::new(java);
    command
        .arg("-cp")
        .arg(scratch.path())
        .arg("LearnedApp")
        .arg("127.0.0.1")
        .arg(port.to_string());
    let run = spawn_in_cgroup(command, &cgroup).wait(PROGRAM_TIMEOUT);
    run.assert_success();
    assert_eq!(
        run.value("http-status"),
        Some("HTTP/1.0 200 OK"),
        "the HTTP request did not complete:\n{run}"
    );
    assert_eq!(
        run.value("id-exit"),
        Some("0"),
        "/usr/bin/id failed:\n{run}"
    );
    let (tally, reached) = http.wait_for(|t| t.accepted >= 1, SERVER_TIMEOUT);
    assert!(reached, "the server saw no connection ({tally:?}):\n{run}");

    let (status, summary) = learn.finish();
    assert_eq!(status.code(), Some(0), "{summary}");
    assert!(
        summary.contains(&output.display().to_string()),
        "the summary names the file: {summary}"
    );
    let text = fs::read_to_string(&output).expect("reading the learned policy");

    let app = "app = \"LearnedApp\"";
    let egress = tables(&text, "[[egress.allow]]");
    let rule = egress
        .iter()
        .find(|t| t.contains(&app))
        .unwrap_or_else(|| panic!("no [[egress.allow]] rule with {app}:\n{text}"));
    assert!(
        rule.iter()
            .any(|l| l.starts_with("cidrs = ") && l.contains("\"127.0.0.1/32\"")),
        "the rule does not list 127.0.0.1/32: {rule:?}\n{text}"
    );
    assert!(
        rule.iter().any(|l| *l == format!("ports = [{port}]")),
        "the rule does not list port {port}: {rule:?}\n{text}"
    );

    let exec = tables(&text, "[[exec.allow]]");
    let rule = exec
        .iter()
        .find(|t| t.contains(&app))
        .unwrap_or_else(|| panic!("no [[exec.allow]] rule with {app}:\n{text}"));
    assert!(
        rule.iter()
            .any(|l| l.starts_with("programs = ") && l.contains("\"/usr/bin/id\"")),
        "the rule does not list /usr/bin/id: {rule:?}\n{text}"
    );

    assert_check_config_accepts(&output, &text);
}

#[test]
fn sigint_ends_learning_early_and_still_writes_the_policy() {
    if !require_kernel_support() {
        return;
    }
    let cgroup = TestCgroup::new("learn-sigint");
    let scratch = ScratchDir::new("learn-sigint");
    let output = scratch.file("learned.toml");
    let started = Instant::now();
    let learn = Learn::start(
        &cgroup,
        &[
            "--duration",
            "10m",
            "--output",
            output.to_str().expect("utf-8 path"),
        ],
    );
    learn.interrupt();
    let (status, summary) = learn.finish();
    assert_eq!(status.code(), Some(0), "{summary}");
    assert!(summary.contains("stopped early"), "{summary}");
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "SIGINT did not end learning"
    );
    let text = fs::read_to_string(&output).expect("reading the learned policy");
    assert!(text.contains("0 JVMs of 0 applications"), "{text}");
    assert_check_config_accepts(&output, &text);
}
