//! The lab's Java programs (compiled once per run, the app against the genuine log4j
//! 2.14.1), the app's jpackage image, and its servers: `LabServers` (rogue LDAP on two
//! ports, class server, exfiltration DNS, reverse-shell listener, a local web service) and
//! `RogueRmiRegistry`, two JVMs outside every scenario cgroup, shared by all scenarios, and
//! the own-resolver scenario's name server. What reached the JVMs arrives as
//! `event SERVER KIND DETAIL` lines, kept in an [`EventLog`].

use std::{
    fs::{self, File},
    io::{BufRead as _, BufReader, Write as _},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context as _, Result};

use testkit::{
    command_line, die_with_parent,
    log4j::Log4j,
    servers::{UdpReply, UdpServer},
};

use super::scenarios::OWN_RESOLVER;

/// How long the servers may take to listen.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The servers exit by themselves after this long, even if the runner is gone without
/// closing their stdin (it is far more than a whole `--mode all` run).
const LIFETIME_SECS: &str = "1800";
/// `ReferenceWrapper` lives in a JDK module that exports it to `java.rmi` only.
const RMI_INTERNALS: [&str; 4] = [
    "--add-modules",
    "jdk.naming.rmi",
    "--add-exports",
    "jdk.naming.rmi/com.sun.jndi.rmi.registry=ALL-UNNAMED",
];

// === impl Classes ===

/// Where javac put each group of tests/lab/java/.
#[derive(Debug, Clone)]
pub struct Classes {
    /// The vulnerable app's classes and resources (log4j2.xml, jndi.properties).
    pub app: PathBuf,
    /// The vulnerable app's class path: its classes and the log4j jars (the payloads are NOT
    /// on it).
    pub app_classpath: String,
    /// The payload classes, served by the class server and nowhere else.
    pub payload: PathBuf,
    pub servers: PathBuf,
    pub benign: PathBuf,
}

impl Classes {
    /// Compiles the four groups of `sources` (tests/lab/java) into `out`, in parallel; the
    /// app's other files (its log4j and JNDI configuration) are copied next to its classes.
    pub fn compile(javac: &Path, sources: &Path, out: &Path, log4j: &Log4j) -> Result<Self> {
        let classes = Self {
            app: out.join("app"),
            app_classpath: format!("{}:{}", out.join("app").display(), log4j.classpath()),
            payload: out.join("payload"),
            servers: out.join("servers"),
            benign: out.join("benign"),
        };
        let log4j_cp = ["-cp".to_owned(), log4j.classpath()];
        let groups: [(&str, &Path, &[String]); 4] = [
            ("app", &classes.app, &log4j_cp),
            ("payload", &classes.payload, &[]),
            (
                "servers",
                &classes.servers,
                &RMI_INTERNALS.map(str::to_owned),
            ),
            ("benign", &classes.benign, &[]),
        ];
        let mut running = Vec::new();
        for (group, dir, extra) in groups {
            let mut files = Vec::new();
            let src = sources.join(group);
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            for entry in fs::read_dir(&src).with_context(|| format!("reading {}", src.display()))? {
                let path = entry?.path();
                if path.extension().is_some_and(|ext| ext == "java") {
                    files.push(path);
                } else if let Some(name) = path.file_name() {
                    fs::copy(&path, dir.join(name))
                        .with_context(|| format!("copying {}", path.display()))?;
                }
            }
            files.sort();
            let mut cmd = Command::new(javac);
            cmd.args(["-encoding", "UTF-8", "-nowarn", "-d"])
                .arg(dir)
                .args(extra)
                .args(&files)
                .stdin(Stdio::null());
            let line = command_line(&cmd);
            let child = cmd
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .with_context(|| format!("starting `{line}`"))?;
            running.push((line, child));
        }
        for (line, child) in running {
            let output = child
                .wait_with_output()
                .with_context(|| format!("waiting for `{line}`"))?;
            if !output.status.success() {
                bail!(
                    "`{line}` failed ({}):\n{}{}",
                    output.status,
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }
        Ok(classes)
    }
}

// === impl AppImage ===

/// Where jlink's runtime for the app image is kept between runs, per JDK version: making it
/// takes half a minute on two cores, packaging with it a second.
const RUNTIME_CACHE: &str = "/var/cache/detector-lab";

/// What the app and log4j need of the JDK (log4j-core uses `java.beans` events and JMX), and
/// the JDK's LDAP, RMI and DNS providers.
const RUNTIME_MODULES: &str = "java.base,java.desktop,java.logging,java.management,java.naming,\
    java.rmi,java.xml,jdk.httpserver,jdk.naming.dns,jdk.naming.rmi";

/// The vulnerable app as a jpackage app image: `bin/labapp`, a native launcher that runs the
/// JVM inside its own process (no binary named `java` anywhere), with the app jar, the log4j
/// jars and a jlink runtime.
#[derive(Debug)]
pub struct AppImage {
    pub launcher: PathBuf,
}

impl AppImage {
    /// Packages the compiled app into `dir/jpackage/`, with `flags` as the JVM's options.
    pub fn build(classes: &Classes, log4j: &Log4j, dir: &Path, flags: &[&str]) -> Result<Self> {
        let work = dir.join("jpackage");
        let input = work.join("input");
        fs::create_dir_all(&input).with_context(|| format!("creating {}", input.display()))?;
        step(
            Command::new("jar")
                .arg("cf")
                .arg(input.join("app.jar"))
                .arg("-C")
                .arg(&classes.app)
                .arg("."),
        )?;
        for jar in [&log4j.core, &log4j.api] {
            let name = jar.file_name().context("a jar's name")?;
            fs::copy(jar, input.join(name))
                .with_context(|| format!("copying {}", jar.display()))?;
        }
        let runtime = runtime()?;
        let mut jpackage = Command::new("jpackage");
        jpackage
            .args(["--type", "app-image", "--name", "labapp"])
            .args(["--main-jar", "app.jar", "--main-class", "VulnerableApp"])
            .arg("--input")
            .arg(&input)
            .arg("--runtime-image")
            .arg(&runtime)
            .arg("--dest")
            .arg(work.join("image"));
        for flag in flags {
            jpackage.args(["--java-options", flag]);
        }
        step(&mut jpackage)?;
        let launcher = work.join("image/labapp/bin/labapp");
        ensure!(
            launcher.is_file(),
            "jpackage made no {}",
            launcher.display()
        );
        Ok(Self { launcher })
    }
}

/// jlink's runtime for [`RUNTIME_MODULES`], made once per JDK version.
fn runtime() -> Result<PathBuf> {
    let version = Command::new("jlink")
        .arg("--version")
        .output()
        .context("running jlink --version")?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    ensure!(!version.is_empty(), "jlink --version said nothing");
    // FNV-1a of the module list: another list is another runtime.
    let modules = RUNTIME_MODULES
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    let cache = Path::new(RUNTIME_CACHE).join(format!("runtime-{version}-{modules:016x}"));
    if cache.join("bin/java").is_file() {
        return Ok(cache);
    }
    let partial = Path::new(RUNTIME_CACHE).join(format!(".runtime-{}", std::process::id()));
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(RUNTIME_CACHE).with_context(|| format!("creating {RUNTIME_CACHE}"))?;
    println!("==> lab: making the app image's runtime with jlink (once per JDK version)");
    step(
        Command::new("jlink")
            .args(["--add-modules", RUNTIME_MODULES])
            .args(["--no-header-files", "--no-man-pages", "--strip-debug"])
            .arg("--output")
            .arg(&partial),
    )?;
    fs::rename(&partial, &cache).with_context(|| format!("moving to {}", cache.display()))?;
    Ok(cache)
}

/// Runs a packaging tool; fails with its output unless it exits 0.
fn step(cmd: &mut Command) -> Result<()> {
    let line = command_line(cmd);
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting `{line}`"))?;
    ensure!(
        output.status.success(),
        "`{line}` failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

// === impl EventLog ===

/// One `event SERVER KIND DETAIL` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub server: String,
    pub kind: String,
    pub detail: String,
}

impl Event {
    /// `event ldap:1389 search base=LabShell answer=reference:LabShell`.
    fn parse(line: &str) -> Option<Self> {
        let rest = line.strip_prefix("event ")?;
        let mut parts = rest.splitn(3, ' ');
        Some(Self {
            server: parts.next()?.to_owned(),
            kind: parts.next()?.to_owned(),
            detail: parts.next().unwrap_or_default().to_owned(),
        })
    }
}

/// Every event of both server processes, in arrival order, and how many said `servers ready`.
#[derive(Debug, Default)]
pub struct EventLog {
    state: Mutex<LogState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct LogState {
    events: Vec<Event>,
    ready: usize,
}

impl EventLog {
    fn lock(&self) -> MutexGuard<'_, LogState> {
        // Readers only push whole values: a poisoned lock still holds consistent data.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push_line(&self, line: &str) {
        let mut state = self.lock();
        if let Some(event) = Event::parse(line) {
            state.events.push(event);
        } else if line.trim() == "servers ready" {
            state.ready += 1;
        }
        drop(state);
        self.changed.notify_all();
    }

    /// A position in the log: [`since`](Self::since) returns what came after it.
    pub fn mark(&self) -> usize {
        self.lock().events.len()
    }

    /// How many events after `mark` came from `server` with `kind` and satisfy `detail`.
    pub fn count(
        &self,
        mark: usize,
        server: &str,
        kind: &str,
        detail: impl Fn(&str) -> bool,
    ) -> usize {
        self.lock()
            .events
            .get(mark..)
            .unwrap_or_default()
            .iter()
            .filter(|e| e.server == server && e.kind == kind && detail(&e.detail))
            .count()
    }

    /// Waits (at most `timeout`) for a change, so pollers need not spin.
    pub fn wait_change(&self, timeout: Duration) {
        let guard = self.lock();
        let _ = self.changed.wait_timeout(guard, timeout);
    }
}

// === impl Servers ===

/// The two server JVMs; both are killed on drop (closing their stdin would do as well). And
/// the own-resolver scenario's name server.
#[derive(Debug)]
pub struct Servers {
    children: Vec<(&'static str, Child)>,
    log: Arc<EventLog>,
    own_resolver: UdpServer,
}

impl Servers {
    /// Starts both JVMs, logging their output to `dir/servers.log` and `dir/rmi.log`, and
    /// waits until every server listens.
    pub fn start(java: &Path, classes: &Classes, dir: &Path) -> Result<Self> {
        let log = Arc::new(EventLog::default());
        let mut servers = Self {
            children: Vec::new(),
            log: Arc::clone(&log),
            own_resolver: UdpServer::start(OWN_RESOLVER.into(), 53, UdpReply::DnsNxDomain),
        };

        let mut main = Command::new(java);
        main.arg("-cp")
            .arg(&classes.servers)
            .arg("LabServers")
            .arg("--payloads")
            .arg(&classes.payload);
        servers.spawn("LabServers", main, &dir.join("servers.log"))?;

        let mut rmi = Command::new(java);
        rmi.args(RMI_INTERNALS)
            .arg("-cp")
            .arg(&classes.servers)
            .arg("RogueRmiRegistry");
        servers.spawn("RogueRmiRegistry", rmi, &dir.join("rmi.log"))?;

        servers.wait_ready(dir)?;
        Ok(servers)
    }

    fn spawn(&mut self, name: &'static str, mut cmd: Command, log_file: &Path) -> Result<()> {
        // Both the reader thread (stdout) and the JVM (stderr) append to the log.
        let mut file = append_to(log_file)?;
        cmd.args(["--lifetime", LIFETIME_SECS, "--exit-on-eof"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(file.try_clone()?));
        die_with_parent(&mut cmd);
        let line = command_line(&cmd);
        let _ = writeln!(file, "$ {line}");
        let mut child = cmd.spawn().with_context(|| format!("starting `{line}`"))?;
        let stdout = child
            .stdout
            .take()
            .context("the server's stdout is not piped")?;
        let log = Arc::clone(&self.log);
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(file, "{line}");
                log.push_line(&line);
            }
        });
        self.children.push((name, child));
        Ok(())
    }

    fn wait_ready(&mut self, dir: &Path) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while self.log.lock().ready < self.children.len() {
            for (name, child) in &mut self.children {
                if let Some(status) = child.try_wait().context("waiting for a server")? {
                    bail!(
                        "{name} exited ({status}) before its servers were ready: is another lab \
                         (or anything else) using ports 1099, 1389, 4444, 5353, 8180, 8280 or \
                         10389? See {}",
                        dir.display()
                    );
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "the lab servers did not listen within {}s; see {}",
                    READY_TIMEOUT.as_secs(),
                    dir.display()
                );
            }
            self.log.wait_change(Duration::from_millis(100));
        }
        Ok(())
    }

    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// The name server the own-resolver scenario's /etc/resolv.conf names.
    pub fn own_resolver(&self) -> &UdpServer {
        &self.own_resolver
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `path`, created (or emptied) and opened for appending.
pub fn append_to(path: &Path) -> Result<File> {
    File::create(path).with_context(|| format!("creating {}", path.display()))?;
    fs::OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lines_are_parsed() {
        assert_eq!(
            Event::parse("event ldap:1389 search base=LabShell answer=reference:LabShell"),
            Some(Event {
                server: "ldap:1389".into(),
                kind: "search".into(),
                detail: "base=LabShell answer=reference:LabShell".into(),
            })
        );
        assert_eq!(
            Event::parse("event revshell:4444 accept").map(|e| (e.kind, e.detail)),
            Some(("accept".into(), String::new()))
        );
        assert_eq!(Event::parse("ready ldap:1389 127.0.0.1:1389"), None);
    }

    #[test]
    fn counts_are_taken_after_a_mark() {
        let log = EventLog::default();
        log.push_line("event dns:5353 query a.exfil.lab");
        let mark = log.mark();
        log.push_line("servers ready");
        log.push_line("event dns:5353 query akialabfakekey000001.exfil.lab");
        log.push_line("event ldap:1389 accept /127.0.0.1:1");
        assert_eq!(log.count(mark, "dns:5353", "query", |_| true), 1);
        assert_eq!(
            log.count(0, "dns:5353", "query", |d| d.contains("akialab")),
            1
        );
        assert_eq!(log.count(mark, "ldap:1389", "accept", |_| true), 1);
        assert_eq!(
            log.count(mark, "dns:5353", "query", |d| d.starts_with('a')),
            1
        );
        assert_eq!(log.lock().ready, 1);
    }
}
