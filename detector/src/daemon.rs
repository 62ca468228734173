//! `detector run` and `detector replay`: the edges around the [`Engine`].
//!
//! run: the sensor session (kernel, decode, /proc) → engine (table, rules) → response →
//! sinks; the session's loop drains the ring buffer, and a one-second tick checks losses.

use std::{
    fs::File,
    io::{BufRead, BufReader, BufWriter, Write},
    net::IpAddr,
    path::PathBuf,
    sync::Arc,
    time::SystemTime,
};

use anyhow::Context as _;
use detector_common::NetAllow;

use crate::{
    alert::{rfc3339_micros, Alert, AlertContext, BootClock},
    engine::{Engine, Record},
    events::Event,
    metrics::{self, Metrics},
    policy::{Mode, Policy},
    process_table::Process,
    response::Responder,
    sensors::{
        containers::{ContainerDirectory, RuntimeFiles},
        encode, procfs, LossCounts, NetKeyPrefix, Scope, Sensors,
    },
    service::Notifier,
    session::{Consumer, Origin, Session, SessionHandle},
    sinks::{Dispatcher, Resolution, SinkStats, SHUTDOWN_GRACE},
    timefmt::clock_now,
    vocab::ProcessKey,
};

/// What `detector run` was asked to do.
#[derive(Debug)]
pub struct RunOptions {
    pub policy: Policy,
    /// `--config`: where the policy came from, read again on SIGHUP (none: the built-in one).
    pub config: Option<PathBuf>,
    /// `--mode`: overrides the policy's mode, also after a reload.
    pub mode: Option<Mode>,
    /// `--metrics`: where to serve /metrics, /healthz and /readyz (none: not served).
    pub metrics: Option<std::net::SocketAddr>,
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
    /// Torn or corrupt records the alert journal skipped at start (a crash mid-write).
    journal_corrupt: u64,
    jvms_seeded: u64,
    /// The event ring buffer's size and the most it held when the daemon woke up to read it.
    ring_bytes: u64,
    ring_used_max: u64,
    /// JVMs recognised, by how (`launcher_name`, `libjvm_dlopen`, ...).
    jvms_recognised: std::collections::BTreeMap<&'static str, u64>,
    /// JVMs only the /proc scan found while running.
    jvms_late: u64,
    /// JVMs found gone by the periodic check against /proc, their exit event lost.
    exits_reconciled: u64,
    /// The libjvm uprobes and the /proc scan.
    #[serde(flatten)]
    libjvm: crate::sensors::libjvm::LibjvmStats,
    table_evicted_live: u64,
    /// Container ids no container runtime on the node could name (see
    /// `sensors::containers`): alerts about them carry the id, not the name or pod.
    containers_unknown: u64,
    /// Request heads a JVM received that were not inspected to their end (past 64 KiB, or
    /// past what one packet's scan may take).
    inbound_uninspected: u64,
    /// Windows of requests the kernel sent for judging.
    inbound_samples: u64,
    /// Windows the kernel could not send (ring buffer full; also in `lost.inbound`).
    inbound_samples_dropped: u64,
    lost: std::collections::BTreeMap<&'static str, u64>,
    /// Policies taken on SIGHUP.
    reloads: u64,
    /// Policies refused on SIGHUP (the running one was kept).
    reload_failures: u64,
    /// Per sink, by name: sent, retried, failed, spooled, dropped, deduplicated, evicted.
    sinks: std::collections::BTreeMap<String, SinkStats>,
}

/// The `run` consumer of the sensor session: engine → response → sinks.
struct Daemon {
    engine: Engine,
    responder: Responder,
    sinks: Dispatcher,
    host: String,
    clock: BootClock,
    record: Option<BufWriter<File>>,
    stats: Stats,
    loss_reported: LossCounts,
    /// systemd's notification socket (ready, status, watchdog, stopping).
    notifier: Notifier,
    ticks: u64,
    config: Option<PathBuf>,
    mode: Option<Mode>,
    metrics: Arc<Metrics>,
    /// Names, images and pods of containers, from the runtimes' state on the node.
    containers: ContainerDirectory,
}

/// How often (in one-second ticks) `systemctl status` gets fresh counts.
const STATUS_EVERY_TICKS: u64 = 10;

/// The host name alerts carry: the node's, never a pod's. `NODE_NAME` first (the Kubernetes
/// DaemonSet sets it from the downward API); else, when the daemon runs in a UTS namespace of
/// its own (a container without host networking), the host's `/etc/hostname` as PID 1 of the
/// host sees it; else this namespace's host name.
pub fn hostname() -> String {
    let own_uts = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/uts")).ok();
    let in_own_uts = match (own_uts("self"), own_uts("1")) {
        (Some(ours), Some(init)) => ours != init,
        _ => false,
    };
    pick_hostname(
        std::env::var("NODE_NAME").ok().as_deref(),
        in_own_uts
            .then(|| std::fs::read_to_string("/proc/1/root/etc/hostname").ok())
            .flatten()
            .as_deref(),
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .as_deref(),
    )
}

/// [`hostname`]'s choice among what it could read: the first non-blank of `node_name`,
/// `host_file`, `uts`, trimmed; `unknown` when all are blank.
fn pick_hostname(node_name: Option<&str>, host_file: Option<&str>, uts: Option<&str>) -> String {
    [node_name, host_file, uts]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|name| !name.is_empty() && !name.contains(char::is_whitespace))
        .unwrap_or("unknown")
        .to_owned()
}

/// Maps kernel (boot-time) timestamps of this boot to wall-clock time.
pub fn boot_clock() -> BootClock {
    use rustix::time::ClockId;
    BootClock::new(clock_now(ClockId::Realtime), clock_now(ClockId::Boottime))
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
    let mut session = Session::start(&policy, scope)?;
    let resolvers = procfs::nameservers();
    let global =
        encode::global_net_entries(&policy, &resolvers).context("building the egress allowlist")?;
    session.handle().sensors_mut().allow_net(&global)?;
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
    let host = hostname();
    let metrics = Arc::new(Metrics::new(
        env!("CARGO_PKG_VERSION"),
        env!("DETECTOR_GIT_COMMIT"),
        env!("DETECTOR_AYA_VERSION"),
    ));
    if let Some(addr) = opts.metrics {
        let bound = metrics::serve(addr, Arc::clone(&metrics))
            .await
            .with_context(|| format!("--metrics {addr}"))?;
        tracing::info!("serving /metrics, /healthz and /readyz on http://{bound}");
    }
    let mut daemon = Daemon {
        engine: Engine::new(policy.clone(), resolvers, &host),
        responder: Responder::default(),
        sinks,
        host,
        clock: boot_clock(),
        record,
        stats: Stats::default(),
        loss_reported: LossCounts::default(),
        notifier: Notifier::from_env(),
        ticks: 0,
        config: opts.config,
        mode: opts.mode,
        metrics,
        containers: ContainerDirectory::default(),
    };
    session.seed(&policy, &mut daemon);

    // The contract's readiness line: every program is attached and existing JVMs are tracked.
    eprintln!("detector ready");
    let ready = format!(
        "watching: {} JVM(s) already running, mode {}",
        session.handle().stats().jvms_seeded,
        policy.mode
    );
    daemon.notifier.ready(&ready);
    daemon.metrics.set_ready();

    session.run(&mut daemon, None).await?;
    daemon
        .notifier
        .stopping("stopping: delivering the alerts still queued");
    daemon.check_loss(session.handle());
    if let Some(mut r) = daemon.record.take() {
        r.flush().context("flushing the --record file")?;
    }
    let Daemon {
        sinks,
        engine,
        mut stats,
        containers,
        ..
    } = daemon;
    stats.containers_unknown = containers.misses;
    let session_stats = session.handle().stats();
    stats.events = session_stats.events;
    stats.decode_errors = session_stats.decode_errors;
    stats.jvms_seeded = session_stats.jvms_seeded;
    stats.ring_bytes = session_stats.ring_bytes;
    stats.ring_used_max = session_stats.ring_used_max;
    stats.jvms_recognised = session_stats.jvms_recognised();
    stats.jvms_late = session_stats.jvms_late;
    stats.exits_reconciled = session_stats.exits_reconciled;
    stats.libjvm = session.handle().sensors().libjvm_stats();
    stats.alerts = sinks.alerts();
    stats.journal_corrupt = sinks.journal_corrupt();
    stats.table_evicted_live = engine.table().evicted_live();
    let inbound = session.handle().sensors().inbound();
    stats.inbound_uninspected = inbound.uninspected;
    stats.inbound_samples = inbound.samples;
    stats.inbound_samples_dropped = session.handle().sensors().loss().inbound;
    stats.lost = session
        .handle()
        .sensors()
        .loss()
        .named()
        .into_iter()
        .collect();
    // Delivers what the sinks still hold for a few seconds; the rest stays in the journal.
    stats.sinks = sinks
        .shutdown(SHUTDOWN_GRACE)
        .await
        .context("alert sinks")?;
    stats.alerts_dropped = stats.sinks.values().map(|s| s.dropped).sum();
    let stats = serde_json::to_string(&stats)?;
    // Detaches every program before we say we are done.
    session.stop();
    eprintln!("detector stats {stats}");
    tracing::info!("detached; bye");
    Ok(())
}

impl Consumer for Daemon {
    fn event(&mut self, session: &mut SessionHandle, event: &Event, origin: Origin) {
        match (origin, event) {
            (Origin::Kernel | Origin::Proc, _) => self.handle(session, event),
            // What predates us is learned, not judged.
            (Origin::Seeded, Event::Exec(exec)) => {
                self.record(event, true);
                self.engine.seed(exec);
                if exec.is_jvm {
                    self.on_jvm_start(session, exec.lineage.jvm());
                }
            }
            (Origin::Seeded, _) => {}
        }
    }

    fn reload(&mut self, session: &mut SessionHandle) {
        let Some(path) = self.config.clone() else {
            tracing::info!("SIGHUP: running the built-in policy (no --config): nothing to reload");
            return;
        };
        self.notifier.status("reloading the policy");
        let outcome = match Policy::load(&path) {
            Ok(mut new) => {
                if let Some(mode) = self.mode {
                    new.mode = mode;
                }
                self.apply(session, new).map_err(|e| {
                    format!(
                        "reload of {} failed while updating the kernel ({e:#}); the running \
                         policy's entries were restored",
                        path.display()
                    )
                })
            }
            Err(e) => Err(format!("reload refused, the running policy stays: {e}")),
        };
        self.metrics.reloaded(outcome.is_ok());
        match outcome {
            Ok(summary) => {
                self.stats.reloads += 1;
                tracing::info!(
                    generation = self.stats.reloads,
                    "reloaded {}: {summary}",
                    path.display()
                );
            }
            Err(why) => {
                self.stats.reload_failures += 1;
                tracing::error!("{why}");
            }
        }
        let status = format!("watching {} JVM(s)", self.engine.table().jvm_count());
        self.notifier.status(&status);
    }

    fn tick(&mut self, session: &mut SessionHandle) {
        // From the event loop itself: a loop that is stuck stops the pings (and turns
        // /healthz unhealthy).
        self.notifier.watchdog();
        self.refresh_metrics(session);
        self.ticks += 1;
        if self.ticks.is_multiple_of(STATUS_EVERY_TICKS) {
            let status = format!(
                "watching {} JVM(s); {} events, {} alerts",
                self.engine.table().jvm_count(),
                session.stats().events,
                self.sinks.alerts()
            );
            self.notifier.status(&status);
        }
        self.check_loss(session);
    }
}

impl Daemon {
    /// `--record`: one line for `event`; `seeded` when the session made it up from /proc.
    fn record(&mut self, event: &Event, seeded: bool) {
        let Some(r) = self.record.as_mut() else {
            return;
        };
        let line = Record {
            boot_epoch_ns: self.clock.boot_epoch_ns(),
            seeded,
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

    fn handle(&mut self, session: &mut SessionHandle, event: &Event) {
        self.record(event, false);
        // A JVM's kernel entries depend on its resolvers: those installed now are replaced.
        let entries_before = match event {
            Event::Resolvers(r) => Some(self.jvm_net_entries(r.jvm)),
            _ => None,
        };
        if !matches!(event, Event::Resolvers(_)) {
            self.metrics.event(event.kind());
        }
        let detections = self.engine.process(event);
        match event {
            Event::Resolvers(r) => {
                let now = self.jvm_net_entries(r.jvm);
                let before = entries_before.unwrap_or_default();
                if let Err(e) = session.sensors_mut().replace_net(&before, &now) {
                    tracing::error!(
                        "egress allowlist of JVM {} (its resolvers): {e}",
                        r.jvm.tgid
                    );
                }
            }
            Event::Exec(exec) if exec.is_jvm => self.on_jvm_start(session, exec.lineage.jvm()),
            Event::Exit(exit)
                if exit.lineage.depth == 0 && exit.task.tgid == exit.lineage.jvm_tgid =>
            {
                self.forget_jvm_allowlists(session.sensors_mut(), exit.lineage.jvm());
                self.responder.forget(exit.lineage.jvm());
            }
            Event::Connect(_) => self.stats.connect_events += 1,
            Event::Payload(_) => self.stats.payload_events += 1,
            _ => {}
        }
        for mut detection in detections {
            let mut outcome = self.responder.respond(
                self.engine.policy(),
                session.sensors_mut(),
                self.engine.table(),
                &mut detection,
            );
            if outcome.escalated {
                self.engine.record_response(event.time_ns(), &detection);
            }
            let ctx = AlertContext::of(&self.host, self.clock, &self.engine);
            let mut alert = Alert::from_detection(&ctx, &detection, event.time_ns());
            // One read of the runtime's files per container (cached): alerts are rare.
            let jvm = alert.jvm.as_ref().map(|j| j.pid);
            let ancestors: Vec<u32> = alert.ancestry.iter().map(|a| a.pid).collect();
            if let Some(meta) = alert
                .container
                .as_ref()
                .and_then(|c| c.id.as_deref())
                .and_then(|id| {
                    self.containers.get(id, || {
                        jvm.map(|j| RuntimeFiles::for_jvm(j, &ancestors))
                            .unwrap_or_default()
                    })
                })
            {
                alert.enrich(&meta);
            }
            alert.forensics = outcome.forensics.take();
            alert.response = (!outcome.is_empty()).then_some(outcome);
            tracing::warn!(rule = detection.rule.as_str(), action = ?detection.action, "{}", detection.summary);
            self.send(&alert);
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

    /// A JVM started (or was found running): the table learns what the event does not carry
    /// (its resolved executable, its cgroup, its launcher chain), and the kernel gets its
    /// per-app allowlists.
    fn on_jvm_start(&mut self, session: &mut SessionHandle, key: ProcessKey) {
        if let Some(jvm) = session.jvm(key) {
            let ppid = jvm.ppid;
            self.engine
                .note_jvm(key, jvm.exe.as_deref(), jvm.cgroup.as_deref());
            self.learn_ancestors(ppid);
        }
        self.install_jvm_allowlists(session.sensors_mut(), key);
    }

    fn jvm_cmdline(&self, jvm: ProcessKey) -> Option<String> {
        self.engine.table().get_key(jvm).map(|e| e.argv.join(" "))
    }

    /// Programs the policy's app-scoped allow rules grant this JVM.
    fn app_programs_for(&self, jvm: ProcessKey) -> Vec<String> {
        self.jvm_cmdline(jvm)
            .map(|cmdline| encode::app_programs(self.engine.policy(), &cmdline))
            .unwrap_or_default()
    }

    /// The kernel egress entries of this JVM alone: its app-scoped allow rules, and its own
    /// resolvers where the host's entries do not cover them.
    fn jvm_net_entries(&self, jvm: ProcessKey) -> Vec<(NetKeyPrefix, NetAllow)> {
        let egress = self.engine.egress();
        let host = egress.host_resolvers();
        let own: Vec<IpAddr> = egress
            .resolvers_of(jvm)
            .iter()
            .filter(|ip| !host.contains(ip))
            .copied()
            .collect();
        let cmdline = self.jvm_cmdline(jvm);
        match encode::jvm_net_entries(self.engine.policy(), jvm.tgid, cmdline.as_deref(), &own) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::error!("egress allowlist of JVM {}: {e}", jvm.tgid);
                Vec::new()
            }
        }
    }

    /// Installs what the policy's app-scoped rules allow this JVM (programs and egress).
    fn install_jvm_allowlists(&mut self, sensors: &mut Sensors, jvm: ProcessKey) {
        let programs = self.app_programs_for(jvm);
        if !programs.is_empty() {
            if let Err(e) = sensors.allow_for_jvm(jvm.tgid, &programs) {
                tracing::error!("installing the allowlist of JVM {}: {e}", jvm.tgid);
            }
        }
        let entries = self.jvm_net_entries(jvm);
        if !entries.is_empty() {
            if let Err(e) = sensors.allow_net(&entries) {
                tracing::error!("installing the egress allowlist of JVM {}: {e}", jvm.tgid);
            }
        }
    }

    /// A JVM exited: its own kernel entries and its quarantine go with it.
    fn forget_jvm_allowlists(&mut self, sensors: &mut Sensors, jvm: ProcessKey) {
        let programs = self.app_programs_for(jvm);
        sensors.forget_jvm(jvm.tgid, &programs);
        let entries = self.jvm_net_entries(jvm);
        sensors.forget_jvm_net(jvm.tgid, &entries);
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
            self.engine.add_process(entry);
            pid = p.ppid;
        }
    }

    /// Puts a validated policy in place of the running one: the kernel's maps and every live
    /// JVM's own entries first, then the rules. Alert delivery (`[delivery]`, `[[sinks]]`)
    /// keeps running as it is: a change there is reported, and takes a restart. On a kernel
    /// error the running policy is put back and the error returned.
    fn apply(&mut self, session: &mut SessionHandle, mut new: Policy) -> anyhow::Result<String> {
        let old = self.engine.policy().clone();
        if new.sinks != old.sinks || new.delivery != old.delivery {
            tracing::warn!(
                "[delivery] and [[sinks]] changes take a restart: alerts keep going where they \
                 went"
            );
            new.sinks = old.sinks.clone();
            new.delivery = old.delivery.clone();
        }
        if new == old {
            return Ok("no change".to_owned());
        }
        let jvms: Vec<ProcessKey> = self.engine.table().jvms().collect();
        let before: Vec<_> = jvms
            .iter()
            .map(|&j| (j, self.app_programs_for(j), self.jvm_net_entries(j)))
            .collect();
        let scope = session.scope().clone();
        // The global entries were built with the host's resolvers, which the engine keeps.
        let resolvers = self.engine.egress().host_resolvers().to_vec();
        let sensors = session.sensors_mut();
        if let Err(e) = sensors.apply_policy(&old, &new, &scope, &resolvers) {
            // Whatever went in is taken out again.
            let _ = sensors.apply_policy(&new, &old, &scope, &resolvers);
            return Err(e.into());
        }
        self.engine.set_policy(new);
        for (jvm, old_programs, old_net) in before {
            let programs = self.app_programs_for(jvm);
            let net = self.jvm_net_entries(jvm);
            let sensors = session.sensors_mut();
            let stale: Vec<String> = old_programs
                .into_iter()
                .filter(|p| !programs.contains(p))
                .collect();
            let result = sensors
                .allow_for_jvm(jvm.tgid, &programs)
                .and_then(|()| sensors.replace_net(&old_net, &net));
            sensors.forget_jvm(jvm.tgid, &stale);
            if let Err(e) = result {
                tracing::error!("JVM {}: its allowlist under the new policy: {e}", jvm.tgid);
            }
        }
        Ok(self.engine.policy().summary())
    }

    /// Hands an alert to the sinks, counted.
    fn send(&mut self, alert: &Alert) {
        self.metrics.alert(
            alert.rule.as_str(),
            alert.severity.as_str(),
            alert.action.as_str(),
        );
        self.sinks.send(alert);
    }

    /// Copies what the sensors, the engine and the sinks count into the metrics.
    fn refresh_metrics(&self, session: &SessionHandle) {
        let lost = session.sensors().loss().named();
        let sinks = self.sinks.stats();
        let sink_counts: Vec<metrics::SinkCounts<'_>> = sinks
            .iter()
            .map(|(name, s)| {
                (
                    name.as_str(),
                    [
                        s.sent,
                        s.retried,
                        s.failed,
                        s.spooled,
                        s.dropped,
                        s.deduplicated,
                        s.evicted,
                    ],
                )
            })
            .collect();
        self.metrics.tick(
            &lost,
            &sink_counts,
            self.engine.table().jvm_count(),
            self.engine.correlator().open(),
            &session.stats(),
        );
    }

    /// Raises `sensor_loss` when the kernel counted new losses.
    fn check_loss(&mut self, session: &SessionHandle) {
        let now = session.sensors().loss();
        let new = now.since(&self.loss_reported);
        if new.total() == 0 {
            return;
        }
        self.loss_reported = now;
        let alert = Alert::sensor_loss(&self.host, SystemTime::now(), &new.named());
        tracing::error!("{}", alert.summary);
        self.send(&alert);
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
        let raised = replay_line(&mut engine, &host, &line)
            .with_context(|| format!("{}:{}: not a recorded event", file.display(), n + 1))?;
        for alert in raised {
            serde_json::to_writer(&mut out, &alert)?;
            out.write_all(b"\n")?;
            alerts += 1;
        }
    }
    Ok(alerts)
}

/// One line of a `--record` file through `engine`: the alerts it raises. Everything in the
/// line is untrusted (a recording may come from another host); a line that is not a
/// recorded event is an error, never a panic (fuzzed: `crate::fuzz_targets::record`).
pub fn replay_line(
    engine: &mut Engine,
    host: &str,
    line: &str,
) -> Result<Vec<Alert>, serde_json::Error> {
    let record: Record = serde_json::from_str(line)?;
    let clock = BootClock::from_boot_epoch_ns(record.boot_epoch_ns);
    let alerts = record
        .replay(engine)
        .iter()
        .map(|detection| {
            let ctx = AlertContext::of(host, clock, engine);
            Alert::from_detection(&ctx, detection, record.event.time_ns())
        })
        .collect();
    Ok(alerts)
}

#[cfg(test)]
mod tests {
    use super::pick_hostname;

    #[test]
    fn the_node_name_wins_then_the_hosts_file_then_the_uts_name() {
        assert_eq!(
            pick_hostname(Some("node-7"), Some("host\n"), Some("pod-abc\n")),
            "node-7"
        );
        assert_eq!(
            pick_hostname(None, Some("host\n"), Some("pod-abc\n")),
            "host"
        );
        assert_eq!(pick_hostname(Some(" "), None, Some("pod-abc\n")), "pod-abc");
        assert_eq!(pick_hostname(Some("two words"), None, Some("h")), "h");
        assert_eq!(pick_hostname(None, None, None), "unknown");
    }
}
