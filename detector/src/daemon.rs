//! `detector run` and `detector replay`: the edges around the [`Engine`].
//!
//! run: sensors (kernel) → decode → engine (table, rules) → response → sinks, in one
//! `tokio::select!` loop over the ring buffer, signals and a one-second housekeeping tick.

use std::{
    fs::File,
    io::{BufRead, BufReader, BufWriter, Write},
    path::PathBuf,
    time::{Duration, SystemTime},
};

use anyhow::Context as _;
use aya::maps::{lpm_trie::Key, MapData, RingBuf};
use detector_common::{Lineage, NetAllow, NetKey};
use tokio::{
    io::{unix::AsyncFd, Interest},
    signal::unix::{signal, SignalKind},
};

use crate::{
    alert::{rfc3339_micros, Alert, AlertContext, BootClock},
    decode::decode,
    engine::{Engine, Record},
    events::{Event, Exec},
    policy::{ChainAction, Cidr, Mode, NetAllowRule, Policy},
    process_table::Process,
    response::{forensics, kill},
    rules::Detection,
    sensors::{procfs, LossCounts, Scope, Sensors},
    sinks::{Dispatcher, Resolution, SinkStats, SHUTDOWN_GRACE},
    vocab::{Action, ProcessKey, Rule},
};

/// What `detector run` was asked to do.
#[derive(Debug)]
pub struct RunOptions {
    pub policy: Policy,
    /// `--cgroup`: track only JVMs started in this cgroup v2 directory.
    pub cgroup: Option<PathBuf>,
    /// `--record`: write every decoded event here.
    pub record: Option<PathBuf>,
}

/// Counters printed on the `detector stats` line at exit.
#[derive(Debug, Default, serde::Serialize)]
pub struct Stats {
    events: u64,
    connect_events: u64,
    payload_events: u64,
    decode_errors: u64,
    alerts: u64,
    alerts_dropped: u64,
    jvms_seeded: u64,
    table_evicted_live: u64,
    lost: std::collections::BTreeMap<&'static str, u64>,
    /// Per sink, by name: sent, retried, failed, spooled, dropped, deduplicated.
    sinks: std::collections::BTreeMap<String, SinkStats>,
}

struct Daemon {
    engine: Engine,
    sensors: Sensors,
    sinks: Dispatcher,
    host: String,
    clock: BootClock,
    record: Option<BufWriter<File>>,
    stats: Stats,
    loss_reported: LossCounts,
    /// JVMs whose quarantine an alert has announced.
    quarantined: std::collections::HashSet<ProcessKey>,
}

/// The host name alerts carry.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn clock_now(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and a valid out-pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Maps kernel (boot-time) timestamps of this boot to wall-clock time.
pub fn boot_clock() -> BootClock {
    BootClock::new(
        clock_now(libc::CLOCK_REALTIME),
        clock_now(libc::CLOCK_BOOTTIME),
    )
}

/// Tells systemd we are ready (Type=notify), when started by it.
fn notify_systemd() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = (|| -> std::io::Result<()> {
        use std::os::{
            linux::net::SocketAddrExt,
            unix::net::{SocketAddr, UnixDatagram},
        };
        let sock = UnixDatagram::unbound()?;
        let bytes = path.as_encoded_bytes();
        let addr = match bytes.strip_prefix(b"@") {
            Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name)?,
            None => SocketAddr::from_pathname(PathBuf::from(&path))?,
        };
        sock.send_to_addr(b"READY=1", &addr)?;
        Ok(())
    })();
    if let Err(e) = sent {
        tracing::warn!("could not notify systemd (NOTIFY_SOCKET): {e}");
    }
}

/// Kernel `NET_ALLOW` entries of the rules for one scope (`jvm_tgid` 0: every JVM).
fn net_entries(
    policy: &Policy,
    jvm_tgid: u32,
    cmdline: Option<&str>,
) -> anyhow::Result<Vec<(Key<NetKey>, NetAllow)>> {
    Ok(policy
        .egress
        .kernel_allow_entries(jvm_tgid, cmdline)?
        .into_iter()
        .map(|(k, v)| (Key::new(k.prefix_len, k.key), v))
        .collect())
}

/// The global entries, plus the host's own resolvers on the DNS ports: a JVM resolving a
/// name is ordinary (its query names are still inspected in the kernel).
fn global_net_entries(
    policy: &Policy,
    resolvers: &[std::net::IpAddr],
) -> anyhow::Result<Vec<(Key<NetKey>, NetAllow)>> {
    let mut with_resolvers = policy.clone();
    let mut ports = policy.egress.dns_ports.clone();
    ports.sort_unstable();
    ports.dedup();
    ports.truncate(detector_common::ALLOW_PORTS);
    for ip in resolvers {
        with_resolvers.egress.allow.push(NetAllowRule {
            app: None,
            cidrs: vec![Cidr::parse(&ip.to_string())?],
            ports: Some(ports.clone()),
            reason: Some("a resolver of this host (/etc/resolv.conf)".to_owned()),
        });
    }
    net_entries(&with_resolvers, 0, None)
}

/// Runs until SIGINT or SIGTERM.
pub async fn run(opts: RunOptions) -> anyhow::Result<()> {
    let scope = Scope::resolve(opts.cgroup.as_deref())?;
    let policy = opts.policy;
    tracing::info!(
        mode = %policy.mode,
        scope = %scope.path,
        "starting: {}",
        policy.summary()
    );
    let mut sensors = Sensors::start(&policy, &scope)?;
    let resolvers = procfs::nameservers();
    let global =
        global_net_entries(&policy, &resolvers).context("building the egress allowlist")?;
    sensors.allow_net(&global)?;
    let ring = sensors
        .take_events()
        .context("event ring buffer already taken")?;
    // SAFETY: the ring buffer owns its map fd, and keeps it open and unchanged until the
    // AsyncFd (which owns the ring buffer) is dropped.
    let mut ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
        .map_err(|e| anyhow::anyhow!("polling the event ring buffer: {e}"))?;
    let record = opts
        .record
        .as_ref()
        .map(|p| {
            File::create(p)
                .map(BufWriter::new)
                .with_context(|| format!("--record {}", p.display()))
        })
        .transpose()?;

    // Reads the sinks' secrets: a missing one stops the start here, naming the sink and key.
    let sinks =
        Dispatcher::start(&policy.sinks, &policy.delivery).context("starting the alert sinks")?;
    let mut daemon = Daemon {
        engine: Engine::new(policy, resolvers, &hostname()),
        sensors,
        sinks,
        host: hostname(),
        clock: boot_clock(),
        record,
        stats: Stats::default(),
        loss_reported: LossCounts::default(),
        quarantined: Default::default(),
    };
    daemon.seed(&scope);
    daemon.sensors.seeded();
    release_startup_memory();

    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut drain_tick = tokio::time::interval(crate::sensors::DRAIN_INTERVAL);

    // The contract's readiness line: every program is attached and existing JVMs are tracked.
    eprintln!("detector ready");
    notify_systemd();

    loop {
        tokio::select! {
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            guard = ring.readable_mut() => {
                let mut guard = guard.context("waiting on the event ring buffer")?;
                daemon.drain(guard.get_inner_mut());
                guard.clear_ready();
            }
            // Routine events do not wake the daemon (see `sensors::DRAIN_INTERVAL`).
            _ = drain_tick.tick() => daemon.drain(ring.get_mut()),
            _ = tick.tick() => daemon.check_loss(),
        }
    }

    // Whatever the kernel recorded before the signal still gets judged and reported.
    daemon.drain(ring.get_mut());
    daemon.check_loss();
    if let Some(mut r) = daemon.record.take() {
        r.flush().context("flushing the --record file")?;
    }
    daemon.stats.alerts = daemon.sinks.alerts();
    daemon.stats.table_evicted_live = daemon.engine.table().evicted_live();
    daemon.stats.lost = daemon.sensors.loss().named().into_iter().collect();
    let Daemon {
        sinks,
        sensors,
        mut stats,
        ..
    } = daemon;
    // Delivers what the sinks still hold for a few seconds, then spools the rest.
    stats.sinks = sinks
        .shutdown(SHUTDOWN_GRACE)
        .await
        .context("alert sinks")?;
    stats.alerts_dropped = stats.sinks.values().map(|s| s.dropped).sum();
    let stats = serde_json::to_string(&stats)?;
    // Detaches every program before we say we are done.
    drop(sensors);
    eprintln!("detector stats {stats}");
    tracing::info!("detached; bye");
    Ok(())
}

/// Hands the memory start-up used (kernel BTF, the object's parse, /proc) back to the
/// system: glibc keeps freed heap memory mapped, and it would count as resident for ever.
pub(crate) fn release_startup_memory() {
    // SAFETY: malloc_trim has no preconditions.
    unsafe { libc::malloc_trim(0) };
}

impl Daemon {
    fn drain(&mut self, ring: &mut RingBuf<MapData>) {
        while let Some(item) = ring.next() {
            let decoded = decode(&item);
            drop(item);
            self.stats.events += 1;
            match decoded {
                Ok(event) => self.handle(event),
                Err(e) => {
                    self.stats.decode_errors += 1;
                    tracing::error!(
                        errors = self.stats.decode_errors,
                        "undecodable kernel event: {e}"
                    );
                }
            }
        }
    }

    fn handle(&mut self, event: Event) {
        if let Some(r) = self.record.as_mut() {
            let line = Record {
                boot_epoch_ns: self.clock.boot_epoch_ns(),
                event: event.clone(),
            };
            let written = serde_json::to_writer(&mut *r, &line)
                .map_err(std::io::Error::from)
                .and_then(|()| r.write_all(b"\n"));
            if let Err(e) = written {
                tracing::error!("--record: {e}; recording stopped");
                self.record = None;
            }
        }
        let detections = self.engine.process(&event);
        match &event {
            Event::Exec(exec) if exec.is_jvm => self.on_jvm_start(exec),
            Event::Exit(exit)
                if exit.lineage.depth == 0 && exit.task.tgid == exit.lineage.jvm_tgid =>
            {
                self.forget_jvm_allowlists(exit.lineage.jvm());
                self.quarantined.remove(&exit.lineage.jvm());
                self.sensors.uninspect_jvm(exit.lineage.jvm());
            }
            Event::Connect(_) => self.stats.connect_events += 1,
            Event::Payload(_) => self.stats.payload_events += 1,
            _ => {}
        }
        for detection in detections {
            let mut detection = detection;
            let forensics = if detection.rule == Rule::ExploitChain {
                self.escalate(&mut detection, event.time_ns())
            } else {
                self.respond(&mut detection);
                None
            };
            let ctx = AlertContext {
                host: &self.host,
                clock: self.clock,
                table: self.engine.table(),
                correlator: self.engine.correlator(),
            };
            let mut alert = Alert::from_detection(&ctx, &detection, event.time_ns());
            alert.forensics = forensics;
            tracing::warn!(rule = detection.rule.as_str(), action = ?detection.action, "{}", detection.summary);
            self.sinks.send(&alert);
        }
        // An incident closes when its JVM is gone (killed by a response, or restarted): the
        // sinks that track incidents (PagerDuty, Slack) are told, after all its alerts.
        for (incident, time_ns) in self.engine.take_closed() {
            let stages: Vec<&str> = incident.stages.iter().map(|s| s.as_str()).collect();
            self.sinks.resolve(&Resolution {
                incident_id: incident.id.clone(),
                host: self.host.clone(),
                time: rfc3339_micros(self.clock.wall(time_ns)),
                summary: format!(
                    "JVM pid {} exited; incident closed after {} alert(s) ({})",
                    incident.jvm.tgid,
                    incident.timeline.len(),
                    if stages.is_empty() {
                        "no attack stage".to_owned()
                    } else {
                        stages.join(", ")
                    }
                ),
            });
        }
    }

    /// Enforce-mode follow-up in userspace: the kernel already killed the program or
    /// denied the connect; quarantine the JVM's egress and, by policy, kill the JVM.
    fn respond(&mut self, detection: &mut Detection) {
        let policy = self.engine.policy();
        let caught = matches!(detection.action, Action::Killed | Action::Blocked)
            && detection.rule != Rule::JvmUnexpectedEgress;
        if policy.mode != Mode::Enforce || !caught {
            return;
        }
        let (quarantine, kill_jvm) = (policy.egress.quarantine, policy.response.kill_jvm);
        if quarantine {
            self.quarantine(detection);
        }
        if !kill_jvm || detection.action != Action::Killed {
            return;
        }
        match kill::signal_process(detection.jvm, libc::SIGKILL) {
            Ok(()) => detection
                .summary
                .push_str(&format!("; JVM (pid {}) killed", detection.jvm.tgid)),
            Err(e) => {
                tracing::error!("kill_jvm: {e}");
                detection
                    .summary
                    .push_str(&format!("; JVM not killed: {e}"));
            }
        }
    }

    /// Quarantines a JVM's egress once, saying so in the summary. False if it could not.
    fn quarantine(&mut self, detection: &mut Detection) -> bool {
        if self.quarantined.contains(&detection.jvm) {
            return true;
        }
        // The kernel quarantines on its own when it blocks LDAP or RMI.
        let done = self.sensors.is_quarantined(detection.jvm)
            || match self.sensors.quarantine(detection.jvm) {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!("quarantining JVM {}: {e}", detection.jvm.tgid);
                    false
                }
            };
        if done {
            self.quarantined.insert(detection.jvm);
            detection.summary.push_str(&format!(
                "; JVM (pid {}) quarantined: its egress outside the allowlist is denied",
                detection.jvm.tgid
            ));
        }
        done
    }

    /// Enforce-mode escalation on `exploit_chain`: quarantine the JVM, kill what it started,
    /// then (policy) freeze or kill it, capturing forensics from /proc first.
    fn escalate(&mut self, detection: &mut Detection, time_ns: u64) -> Option<serde_json::Value> {
        let policy = self.engine.policy().clone();
        if policy.mode != Mode::Enforce {
            return None;
        }
        let jvm = detection.jvm;
        if self.quarantine(detection) {
            detection.action = Action::Blocked;
        }
        let descendants = self.engine.table().lineage_members(jvm);
        let mut killed = 0;
        for p in &descendants {
            match kill::signal_process(*p, libc::SIGKILL) {
                Ok(()) => killed += 1,
                Err(kill::KillError::Gone { .. }) => {}
                Err(e) => tracing::warn!("killing descendant {} of JVM {}: {e}", p.tgid, jvm.tgid),
            }
        }
        if killed > 0 {
            detection
                .summary
                .push_str(&format!("; {killed} of its processes killed"));
        }
        let (signal, action, verb) = match policy.response.on_chain {
            ChainAction::Quarantine => {
                self.note(jvm, time_ns, detection);
                return None;
            }
            ChainAction::Freeze => (
                libc::SIGSTOP,
                Action::Frozen,
                "frozen (SIGSTOP) for a human; resume with kill -CONT",
            ),
            ChainAction::Kill => (libc::SIGKILL, Action::Killed, "killed"),
        };
        // Forensics first: a killed JVM has no /proc left to read.
        let forensics = forensics::capture(jvm.tgid);
        match kill::signal_process(jvm, signal) {
            Ok(()) => {
                detection.action = action;
                detection
                    .summary
                    .push_str(&format!("; JVM (pid {}) {verb}", jvm.tgid));
            }
            Err(e) => {
                tracing::error!("escalating on JVM {}: {e}", jvm.tgid);
                detection.summary.push_str(&format!(
                    "; JVM not {}: {e}",
                    policy.response.on_chain.as_str()
                ));
            }
        }
        self.note(jvm, time_ns, detection);
        Some(forensics)
    }

    fn note(&mut self, jvm: ProcessKey, time_ns: u64, detection: &Detection) {
        self.engine.correlator_mut().note_action(
            jvm,
            time_ns,
            &detection.summary,
            detection.action,
        );
    }

    /// A JVM started: learn what the event does not carry, and install its per-app allowlist.
    fn on_jvm_start(&mut self, exec: &Exec) {
        let key = ProcessKey {
            tgid: exec.task.tgid,
            start_ns: exec.task.start_ns,
        };
        if let Some(p) = procfs::read_process(key.tgid) {
            if let Some(cgroup) = &p.cgroup {
                self.inspect(key, cgroup);
            }
            if let Some(entry) = self.engine.table().get_key(key).cloned() {
                let mut entry = entry;
                if let Some(exe) = p.exe {
                    entry.exe = exe;
                }
                entry.cgroup_path = p.cgroup;
                self.engine.table_mut().insert(entry);
            }
            self.learn_ancestors(p.ppid);
        }
        self.install_jvm_allowlists(key);
    }

    /// Starts inspecting the packets of the JVM's cgroup.
    fn inspect(&mut self, jvm: ProcessKey, cgroup: &str) {
        if let Err(e) = self.sensors.inspect_jvm(jvm, cgroup) {
            tracing::error!(
                "JVM {}: packets in {cgroup} will not be inspected: {e}",
                jvm.tgid
            );
        }
    }

    fn jvm_cmdline(&self, jvm: ProcessKey) -> Option<String> {
        self.engine.table().get_key(jvm).map(|e| e.argv.join(" "))
    }

    /// Programs the policy's app-scoped allow rules grant this JVM.
    fn app_programs_for(&self, jvm: ProcessKey) -> Vec<String> {
        let Some(cmdline) = self.jvm_cmdline(jvm) else {
            return Vec::new();
        };
        self.engine
            .policy()
            .exec
            .allow
            .iter()
            .filter(|r| r.app.as_deref().is_some_and(|app| cmdline.contains(app)))
            .flat_map(|r| r.programs.iter().cloned())
            .collect()
    }

    /// The kernel egress entries of this JVM's app-scoped allow rules.
    fn app_net_entries_for(&self, jvm: ProcessKey) -> Vec<(Key<NetKey>, NetAllow)> {
        let Some(cmdline) = self.jvm_cmdline(jvm) else {
            return Vec::new();
        };
        match net_entries(self.engine.policy(), jvm.tgid, Some(&cmdline)) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::error!("egress allowlist of JVM {}: {e}", jvm.tgid);
                Vec::new()
            }
        }
    }

    /// Installs what the policy's app-scoped rules allow this JVM (programs and egress).
    fn install_jvm_allowlists(&mut self, jvm: ProcessKey) {
        let programs = self.app_programs_for(jvm);
        if !programs.is_empty() {
            if let Err(e) = self.sensors.allow_for_jvm(jvm.tgid, &programs) {
                tracing::error!("installing the allowlist of JVM {}: {e}", jvm.tgid);
            }
        }
        let entries = self.app_net_entries_for(jvm);
        if !entries.is_empty() {
            if let Err(e) = self.sensors.allow_net(&entries) {
                tracing::error!("installing the egress allowlist of JVM {}: {e}", jvm.tgid);
            }
        }
    }

    /// A JVM exited: its own kernel entries and its quarantine go with it.
    fn forget_jvm_allowlists(&mut self, jvm: ProcessKey) {
        let programs = self.app_programs_for(jvm);
        self.sensors.forget_jvm(jvm.tgid, &programs);
        let entries = self.app_net_entries_for(jvm);
        self.sensors.forget_jvm_net(jvm.tgid, &entries);
    }

    /// Puts a JVM's ancestors (its launcher chain, which predates our events) in the table.
    fn learn_ancestors(&mut self, mut pid: u32) {
        for _ in 0..16 {
            if pid == 0 || self.engine.table().get(pid).is_some() {
                return;
            }
            let Some(p) = procfs::read_process(pid) else {
                return;
            };
            let mut entry = Process::new(
                ProcessKey {
                    tgid: pid,
                    start_ns: p.start_ns,
                },
                p.ppid,
                p.exe.unwrap_or_default(),
                p.argv,
            );
            entry.cgroup_path = p.cgroup;
            self.engine.table_mut().insert(entry);
            pid = p.ppid;
        }
    }

    /// Tracks JVMs (and their descendants) that were running before we attached.
    fn seed(&mut self, scope: &Scope) {
        let procs = procfs::all_processes();
        let policy = self.engine.policy().clone();
        let is_jvm = |p: &procfs::ProcProcess| {
            p.exe
                .as_deref()
                .is_some_and(|exe| policy.jvm.is_launcher(exe))
                && p.cgroup
                    .as_deref()
                    .is_some_and(|c| procfs::cgroup_within(c, &scope.path))
        };
        let mut children: std::collections::HashMap<u32, Vec<&procfs::ProcProcess>> =
            Default::default();
        for p in &procs {
            children.entry(p.ppid).or_default().push(p);
        }
        for jvm in procs.iter().filter(|p| is_jvm(p)) {
            if self.sensors.is_tracked(jvm.pid) {
                continue;
            }
            let root = Lineage {
                jvm_tgid: jvm.pid,
                depth: 0,
                jvm_start_ns: jvm.start_ns,
            };
            let mut stack = vec![(jvm, 0u32)];
            while let Some((p, depth)) = stack.pop() {
                let lineage = Lineage { depth, ..root };
                if let Err(e) = self.sensors.track(p.pid, lineage) {
                    tracing::error!("tracking pre-existing process {}: {e}", p.pid);
                }
                let mut entry = Process::new(
                    ProcessKey {
                        tgid: p.pid,
                        start_ns: p.start_ns,
                    },
                    p.ppid,
                    p.exe.clone().unwrap_or_default(),
                    p.argv.clone(),
                );
                entry.cgroup_path = p.cgroup.clone();
                entry.lineage = Some(crate::events::LineageRef {
                    jvm_tgid: root.jvm_tgid,
                    jvm_start_ns: root.jvm_start_ns,
                    depth,
                });
                self.engine.table_mut().insert(entry);
                for child in children.get(&p.pid).into_iter().flatten() {
                    stack.push((child, depth + 1));
                }
            }
            self.learn_ancestors(jvm.ppid);
            let key = ProcessKey {
                tgid: jvm.pid,
                start_ns: jvm.start_ns,
            };
            self.install_jvm_allowlists(key);
            if let Some(cgroup) = &jvm.cgroup {
                self.inspect(key, cgroup);
            }
            self.stats.jvms_seeded += 1;
            tracing::info!(
                pid = jvm.pid,
                "tracking JVM that was already running: {}",
                jvm.argv.join(" ")
            );
        }
    }

    /// Raises `sensor_loss` when the kernel counted new losses.
    fn check_loss(&mut self) {
        let now = self.sensors.loss();
        let new = now.since(&self.loss_reported);
        if new.total() == 0 {
            return;
        }
        self.loss_reported = now;
        let alert = Alert::sensor_loss(&self.host, SystemTime::now(), &new.named());
        tracing::error!("{}", alert.summary);
        self.sinks.send(&alert);
    }
}

/// `detector replay`: the engine over a `--record` file; prints the alerts it would raise.
pub fn replay(file: &std::path::Path, policy: Policy) -> anyhow::Result<u64> {
    let input = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let host = hostname();
    let mut engine = Engine::new(policy, procfs::nameservers(), &host);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut alerts = 0;
    for (n, line) in BufReader::new(input).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", file.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Record = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not a recorded event", file.display(), n + 1))?;
        let clock = BootClock::from_boot_epoch_ns(record.boot_epoch_ns);
        for detection in engine.process(&record.event) {
            let ctx = AlertContext {
                host: &host,
                clock,
                table: engine.table(),
                correlator: engine.correlator(),
            };
            let alert = Alert::from_detection(&ctx, &detection, record.event.time_ns());
            serde_json::to_writer(&mut out, &alert)?;
            out.write_all(b"\n")?;
            alerts += 1;
        }
    }
    Ok(alerts)
}
