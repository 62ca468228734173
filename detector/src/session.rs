//! One sensor session, shared by `detector run` and `detector learn`: loads and attaches the
//! kernel programs, drains their ring buffer, brings processes that predate it in as
//! synthetic events (what the kernel would have sent had it been attached), and keeps what
//! /proc says of each JVM — its full argv above all, which the kernel cuts at 512 bytes.
//!
//! Consumers see one stream of decoded [`Event`]s through [`Consumer`]: `run` feeds them to
//! the engine, `learn` to its observations. A JVM's exec reaches them with the full argv,
//! so an `app = …` key `learn` suggests from it is matched by `run` against the same text.

use std::{
    collections::{HashMap, HashSet},
    os::fd::AsFd as _,
    time::Duration,
};

use anyhow::Context as _;
use aya::maps::{MapData, RingBuf};
use detector_common::{event::EVENTS_BYTES, Lineage};
use tokio::{
    io::{unix::AsyncFd, Interest},
    signal::unix::{signal, Signal, SignalKind},
};

use crate::{
    decode::decode,
    events::{Event, Exec, Exit, LineageRef, Resolvers, Task},
    policy::Policy,
    sensors::{
        procfs,
        resolvers::{self, ResolverWatch},
        ringfill::RingFill,
        Scope, Sensors, DRAIN_INTERVAL,
    },
    vocab::{JvmRecognition, ProcessKey},
};

/// How often the /proc scan looks for `libjvm.so` in new processes (see `sensors::libjvm`).
pub const LIBJVM_SCAN_INTERVAL: Duration = Duration::from_secs(2);

/// How often the JVMs the session keeps state for are checked against /proc, so that an
/// exit the ring buffer lost does not keep their bookkeeping (and their kernel entries) for
/// ever.
pub const RECONCILE_INTERVAL: Duration = Duration::from_secs(30);

/// Where an event came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The kernel programs sent it.
    Kernel,
    /// The session made it up from /proc at start-up, for a process that predates the
    /// programs: an exec, as the kernel would have reported it. Not an action to judge.
    Seeded,
    /// The session read it from /proc while running (a JVM's resolvers): a fact to judge
    /// the kernel's events by, recorded like them.
    Proc,
}

/// What /proc says of a JVM, read when it starts (or when first needed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jvm {
    /// The full command line (the kernel's copy is cut at 512 bytes).
    pub argv: Vec<String>,
    /// The resolved `/proc/PID/exe`.
    pub exe: Option<String>,
    /// Its cgroup v2 path.
    pub cgroup: Option<String>,
    pub ppid: u32,
}

impl Jvm {
    fn from_proc(p: procfs::ProcProcess) -> Jvm {
        Jvm {
            argv: p.argv,
            exe: p.exe,
            cgroup: p.cgroup,
            ppid: p.ppid,
        }
    }
}

/// Counters of the session, for the consumers' summaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Ring buffer records read (decodable or not).
    pub events: u64,
    pub decode_errors: u64,
    /// JVMs that were running before the programs were attached.
    pub jvms_seeded: u64,
    /// The ring buffer's size, and the bytes waiting in it when the daemon last woke up and
    /// at most (0 when its fill level cannot be read; the start-up log says why).
    pub ring_bytes: u64,
    pub ring_used: u64,
    pub ring_used_max: u64,
    /// JVMs recognised, by how (`JvmRecognition::ALL` order): at exec, by a uprobe, or
    /// from /proc.
    pub jvms_recognised: [u64; JvmRecognition::ALL.len()],
    /// JVMs only the /proc scan found while running: after they could have run code.
    pub jvms_late: u64,
    /// JVMs found gone by the periodic check against /proc whose exit the kernel's event
    /// never brought (lost): their exit was made up, as the kernel would have sent it.
    pub exits_reconciled: u64,
}

impl SessionStats {
    fn recognised(&mut self, by: JvmRecognition) {
        if let Some(i) = JvmRecognition::ALL.iter().position(|&r| r == by) {
            self.jvms_recognised[i] += 1;
        }
    }

    /// `jvms_recognised` by name, for the stats line.
    pub fn jvms_recognised(&self) -> std::collections::BTreeMap<&'static str, u64> {
        JvmRecognition::ALL
            .iter()
            .zip(self.jvms_recognised)
            .map(|(r, n)| (r.as_str(), n))
            .collect()
    }
}

/// Why [`Session::run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// SIGINT or SIGTERM.
    Signal,
    /// The deadline passed.
    Deadline,
}

/// A consumer of the session's events.
pub trait Consumer {
    /// One event, in the kernel's order; seeded ones come first, before [`Session::run`].
    fn event(&mut self, session: &mut SessionHandle, event: &Event, origin: Origin);

    /// Once a second while running.
    fn tick(&mut self, _session: &mut SessionHandle) {}

    /// SIGHUP (`systemctl reload`): read the configuration again. Events keep flowing:
    /// nothing is detached.
    fn reload(&mut self, _session: &mut SessionHandle) {
        tracing::info!("SIGHUP: nothing to reload here");
    }
}

/// The sensors and the session's bookkeeping, as consumers reach them.
#[derive(Debug)]
pub struct SessionHandle {
    sensors: Sensors,
    scope: Scope,
    jvms: HashMap<ProcessKey, Jvm>,
    /// JVMs /proc could not show (gone, or a reused PID): not read again for every event.
    unreadable: HashSet<ProcessKey>,
    /// Each JVM's resolvers, by mount namespace.
    resolvers: ResolverWatch,
    /// The event ring buffer's fill level, read before each drain.
    fill: Option<RingFill>,
    stats: SessionStats,
}

/// The attached programs, their ring buffer, and the bookkeeping.
pub struct Session {
    ring: AsyncFd<RingBuf<MapData>>,
    handle: SessionHandle,
    /// Installed at start, before any ready line: a SIGTERM right after it must end the
    /// run cleanly, not kill the process.
    sigterm: Signal,
    sigint: Signal,
    /// SIGHUP's default action would end the daemon without draining or spooling.
    sighup: Signal,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Loads and attaches the programs for `policy` within `scope`.
    pub fn start(policy: &Policy, scope: Scope) -> anyhow::Result<Session> {
        let mut sensors = Sensors::start(policy, &scope)?;
        let ring = sensors
            .take_events()
            .context("event ring buffer already taken")?;
        let fill = RingFill::new(ring.as_fd(), u64::from(EVENTS_BYTES))
            .inspect_err(|e| {
                tracing::warn!("the ring buffer's fill level cannot be read (metrics show 0): {e}")
            })
            .ok();
        let stats = SessionStats {
            ring_bytes: fill.as_ref().map_or(0, RingFill::capacity),
            ..SessionStats::default()
        };
        // SAFETY: the ring buffer owns its map fd, and keeps it open and unchanged until the
        // AsyncFd (which owns the ring buffer) is dropped.
        let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|e| anyhow::anyhow!("polling the event ring buffer: {e}"))?;
        Ok(Session {
            ring,
            sigterm: signal(SignalKind::terminate())?,
            sigint: signal(SignalKind::interrupt())?,
            sighup: signal(SignalKind::hangup())?,
            handle: SessionHandle {
                sensors,
                scope,
                jvms: HashMap::new(),
                unreadable: HashSet::new(),
                resolvers: ResolverWatch::default(),
                fill,
                stats,
            },
        })
    }

    pub fn handle(&mut self) -> &mut SessionHandle {
        &mut self.handle
    }

    /// Brings in the JVMs (and their descendants) that were running before the programs
    /// were attached: tracked in the kernel, and handed to `consumer` as synthetic execs,
    /// each JVM before its descendants. A JVM is a process that runs a launcher, or one that
    /// maps a `libjvm.so` (`jvm.recognise_libjvm`; the first pass of the /proc scan). Then
    /// gives start-up's memory back.
    pub fn seed(&mut self, policy: &Policy, consumer: &mut impl Consumer) {
        let handle = &mut self.handle;
        let procs = procfs::all_processes();
        let mapping: HashSet<u32> = handle
            .sensors
            .scan_libjvm(true)
            .into_iter()
            .map(|m| m.pid)
            .collect();
        let children = children_of(&procs);
        for jvm in &procs {
            let by = if jvm
                .exe
                .as_deref()
                .is_some_and(|exe| policy.jvm.is_launcher(exe))
            {
                if policy
                    .jvm
                    .launcher_paths
                    .iter()
                    .any(|l| Some(l.as_str()) == jvm.exe.as_deref())
                {
                    JvmRecognition::LauncherPath
                } else {
                    JvmRecognition::LauncherName
                }
            } else if mapping.contains(&jvm.pid) {
                JvmRecognition::ProcMaps
            } else {
                continue;
            };
            handle.seed_jvm(jvm, &children, by, consumer);
        }
        handle.sensors.seeded();
        release_startup_memory();
    }

    /// Hands events to `consumer` until SIGINT or SIGTERM, or `deadline`; then drains
    /// whatever the kernel recorded before that.
    pub async fn run(
        &mut self,
        consumer: &mut impl Consumer,
        deadline: Option<Duration>,
    ) -> anyhow::Result<Ended> {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut drain_tick = tokio::time::interval(DRAIN_INTERVAL);
        let mut scan_tick = tokio::time::interval(LIBJVM_SCAN_INTERVAL);
        let mut reconcile_tick = tokio::time::interval(RECONCILE_INTERVAL);
        reconcile_tick.reset();
        // Its first tick is now: the seeding pass has just been made.
        scan_tick.reset();
        let deadline = tokio::time::sleep(deadline.unwrap_or(Duration::MAX));
        tokio::pin!(deadline);
        let Session {
            ring,
            handle,
            sigterm,
            sigint,
            sighup,
        } = self;
        let ended = loop {
            tokio::select! {
                _ = sigterm.recv() => break Ended::Signal,
                _ = sigint.recv() => break Ended::Signal,
                _ = sighup.recv() => {
                    // What the kernel recorded under the old configuration is judged by it.
                    handle.drain(ring.get_mut(), consumer);
                    consumer.reload(handle);
                }
                _ = &mut deadline => break Ended::Deadline,
                guard = ring.readable_mut() => {
                    let mut guard = guard.context("waiting on the event ring buffer")?;
                    handle.drain(guard.get_inner_mut(), consumer);
                    guard.clear_ready();
                }
                // Routine events do not wake the daemon (see `sensors::DRAIN_INTERVAL`).
                _ = drain_tick.tick() => handle.drain(ring.get_mut(), consumer),
                _ = tick.tick() => {
                    handle.poll_resolvers(consumer);
                    consumer.tick(handle);
                }
                _ = scan_tick.tick() => {
                    // Whatever the kernel already said about these processes comes first.
                    handle.drain(ring.get_mut(), consumer);
                    handle.scan_libjvm(consumer);
                }
                _ = reconcile_tick.tick() => {
                    // Exits still in the ring buffer are not lost: they come first.
                    handle.drain(ring.get_mut(), consumer);
                    handle.reconcile(consumer);
                }
            }
        };
        // Whatever the kernel recorded before the end still gets to the consumer.
        handle.drain(ring.get_mut(), consumer);
        Ok(ended)
    }

    /// Detaches every program.
    pub fn stop(self) -> SessionStats {
        let stats = self.handle.stats;
        drop(self);
        stats
    }
}

impl SessionHandle {
    pub fn sensors(&self) -> &Sensors {
        &self.sensors
    }

    pub fn sensors_mut(&mut self) -> &mut Sensors {
        &mut self.sensors
    }

    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// The cgroup scope the programs watch.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// What /proc says of the JVM `key`, read now if the session has not yet (a JVM whose
    /// start was lost); `None` when /proc no longer shows that very process.
    pub fn jvm(&mut self, key: ProcessKey) -> Option<&Jvm> {
        if !self.jvms.contains_key(&key) && !self.unreadable.contains(&key) {
            match procfs::read_key(key) {
                Some(p) => {
                    self.jvms.insert(key, Jvm::from_proc(p));
                }
                None => {
                    self.unreadable.insert(key);
                }
            }
        }
        self.jvms.get(&key)
    }

    fn drain(&mut self, ring: &mut RingBuf<MapData>, consumer: &mut impl Consumer) {
        if let Some(fill) = &self.fill {
            let used = fill.used();
            self.stats.ring_used = used;
            self.stats.ring_used_max = self.stats.ring_used_max.max(used);
        }
        while let Some(item) = ring.next() {
            let decoded = decode(&item);
            drop(item);
            self.stats.events += 1;
            match decoded {
                Ok(mut event) => {
                    if let Event::Exec(exec) = &mut event {
                        if exec.is_jvm {
                            self.stats.recognised(
                                exec.recognised_by.unwrap_or(JvmRecognition::LauncherName),
                            );
                            self.jvm_started(exec);
                        }
                    }
                    consumer.event(self, &event, Origin::Kernel);
                    if let Event::Exec(exec) = &event {
                        if exec.is_jvm {
                            self.resolvers_of(exec.lineage.jvm(), exec.time_ns, consumer);
                        }
                    }
                    if let Event::Exit(exit) = &event {
                        if exit.lineage.depth == 0 && exit.task.tgid == exit.lineage.jvm_tgid {
                            self.jvm_exited(exit.lineage.jvm());
                        }
                    }
                }
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

    /// Tracks a JVM /proc shows and its descendants, as the kernel would have, and hands them
    /// to the consumer as seeded execs, the JVM first. Nothing for a process outside the
    /// scope or already tracked.
    fn seed_jvm(
        &mut self,
        jvm: &procfs::ProcProcess,
        children: &HashMap<u32, Vec<&procfs::ProcProcess>>,
        by: JvmRecognition,
        consumer: &mut impl Consumer,
    ) {
        let in_scope = jvm
            .cgroup
            .as_deref()
            .is_some_and(|c| procfs::cgroup_within(c, &self.scope.path));
        if !in_scope || self.sensors.is_tracked(jvm.pid) {
            return;
        }
        let root = LineageRef {
            jvm_tgid: jvm.pid,
            jvm_start_ns: jvm.start_ns,
            depth: 0,
        };
        self.jvms.insert(root.jvm(), Jvm::from_proc(jvm.clone()));
        if let Some(cgroup) = &jvm.cgroup {
            self.inspect(root.jvm(), cgroup);
        }
        self.stats.jvms_seeded += 1;
        self.stats.recognised(by);
        tracing::info!(
            pid = jvm.pid,
            recognised_by = by.as_str(),
            "tracking JVM that was already running: {}",
            jvm.argv.join(" ")
        );
        let mut stack = vec![(jvm, 0u32)];
        while let Some((p, depth)) = stack.pop() {
            let lineage = LineageRef { depth, ..root };
            let kernel_lineage = Lineage {
                jvm_tgid: root.jvm_tgid,
                depth,
                jvm_start_ns: root.jvm_start_ns,
            };
            if let Err(e) = self.sensors.track(p.pid, kernel_lineage) {
                tracing::error!("tracking pre-existing process {}: {e}", p.pid);
            }
            let mut exec = seeded_exec(p, lineage, by);
            // What the kernel's events would have carried: packets reach the JVM by
            // cgroup id (`jndi_probe` finds its JVM that way).
            exec.task.cgroup_id = p
                .cgroup
                .as_deref()
                .and_then(|c| procfs::cgroup_id(&self.scope.mount, c))
                .unwrap_or(0);
            let event = Event::Exec(exec);
            consumer.event(self, &event, Origin::Seeded);
            if depth == 0 {
                self.resolvers_of(root.jvm(), p.start_ns, consumer);
            }
            for child in children.get(&p.pid).into_iter().flatten() {
                stack.push((child, depth + 1));
            }
        }
    }

    /// A pass of the /proc scan while running: probes the `libjvm.so` files of new
    /// processes, and brings in a JVM neither probe caught (late: it could have run code).
    fn scan_libjvm(&mut self, consumer: &mut impl Consumer) {
        let found = self.sensors.scan_libjvm(false);
        let mut late: Vec<u32> = found
            .iter()
            .map(|m| m.pid)
            .filter(|&pid| !self.sensors.is_tracked(pid))
            .collect();
        if !late.is_empty() {
            late.sort_unstable();
            let procs = procfs::all_processes();
            let children = children_of(&procs);
            for p in procs.iter().filter(|p| late.binary_search(&p.pid).is_ok()) {
                let before = self.stats.jvms_seeded;
                self.seed_jvm(p, &children, JvmRecognition::ProcMaps, consumer);
                if self.stats.jvms_seeded > before {
                    self.stats.jvms_seeded = before;
                    self.stats.jvms_late += 1;
                    tracing::warn!(
                        pid = p.pid,
                        "JVM recognised late, by the libjvm.so in its /proc/PID/maps (no probe \
                         saw it load; it may have run code untracked): {}",
                        p.argv.join(" ")
                    );
                }
            }
        }
        // `is_tracked` mapped the lineage table; it is not needed until the next find.
        self.sensors.seeded();
    }

    /// A JVM started: /proc gives its full argv (completing the event's, when the kernel
    /// cut it), executable and cgroup, whose packets are inspected from now on.
    fn jvm_started(&mut self, exec: &mut Exec) {
        let key = exec.lineage.jvm();
        self.unreadable.remove(&key);
        let Some(p) = procfs::read_key(key) else {
            return;
        };
        let mut jvm = Jvm::from_proc(p);
        if exec.filename.is_empty() {
            // Recognised by a uprobe, not at exec: the kernel sent no path or arguments.
            exec.filename = jvm.exe.clone().unwrap_or_default();
            exec.argv.clone_from(&jvm.argv);
        }
        jvm.argv = complete_argv(exec, std::mem::take(&mut jvm.argv));
        if let Some(cgroup) = &jvm.cgroup {
            self.inspect(key, cgroup);
        }
        self.jvms.insert(key, jvm);
    }

    /// Every JVM the session (or its sensors) keeps state for that /proc no longer shows
    /// (gone, or its PID reused): its exit, as the kernel would have sent it, to the consumer
    /// and to the session's own bookkeeping.
    fn reconcile(&mut self, consumer: &mut impl Consumer) {
        let mut known: std::collections::BTreeSet<ProcessKey> = self
            .jvms
            .keys()
            .chain(self.unreadable.iter())
            .copied()
            .collect();
        known.extend(self.sensors.inspected_jvm_keys());
        let gone: Vec<ProcessKey> = known
            .into_iter()
            .filter(|key| procfs::read_key(*key).is_none())
            .collect();
        if gone.is_empty() {
            return;
        }
        let now =
            u64::try_from(crate::timefmt::clock_now(rustix::time::ClockId::Boottime).as_nanos())
                .unwrap_or(u64::MAX);
        for key in gone {
            self.stats.exits_reconciled += 1;
            tracing::warn!(
                pid = key.tgid,
                "JVM gone without an exit event (lost): its state is dropped now"
            );
            consumer.event(self, &Event::Exit(made_up_exit(key, now)), Origin::Proc);
            self.jvm_exited(key);
        }
    }

    fn jvm_exited(&mut self, key: ProcessKey) {
        self.resolvers.remove(key);
        self.sensors.uninspect_jvm(key);
        self.jvms.remove(&key);
        self.unreadable.remove(&key);
    }

    /// Hands the consumer the resolvers of a JVM that just started (or was found running),
    /// right after its exec: before any query it sends is judged.
    fn resolvers_of(&mut self, jvm: ProcessKey, time_ns: u64, consumer: &mut impl Consumer) {
        if let Some(update) = self.resolvers.add(&resolvers::Proc, jvm) {
            self.send_resolvers(update, time_ns, consumer);
        }
    }

    /// Re-reads the resolver files that changed; their JVMs' new resolvers go to the consumer.
    fn poll_resolvers(&mut self, consumer: &mut impl Consumer) {
        let updates = self.resolvers.poll(&resolvers::Proc);
        if updates.is_empty() {
            return;
        }
        // ns since boot, the kernel events' clock.
        let now =
            u64::try_from(crate::timefmt::clock_now(rustix::time::ClockId::Boottime).as_nanos())
                .unwrap_or(u64::MAX);
        for update in updates {
            self.send_resolvers(update, now, consumer);
        }
    }

    fn send_resolvers(
        &mut self,
        update: resolvers::Update,
        time_ns: u64,
        consumer: &mut impl Consumer,
    ) {
        let event = Event::Resolvers(Resolvers {
            time_ns,
            jvm: update.jvm,
            mnt_ns: update.mnt_ns,
            servers: update.servers,
        });
        consumer.event(self, &event, Origin::Proc);
    }

    /// Starts inspecting the packets of the JVM's cgroup.
    fn inspect(&mut self, jvm: ProcessKey, cgroup: &str) {
        if let Err(e) = self.sensors.inspect_jvm(jvm, cgroup) {
            tracing::error!(
                "JVM {}: packets in {cgroup} will not be inspected (LDAP or RMI on unusual \
                 ports will not be recognised): {e}",
                jvm.tgid
            );
        }
    }
}

/// A JVM's argv, for the session's bookkeeping and for the consumers: the kernel's copy,
/// unless the kernel cut it (at `ARGS_LEN` bytes) and /proc shows the whole of it; then the
/// event is completed with /proc's, so every consumer sees the same full argv.
pub fn complete_argv(exec: &mut Exec, proc_argv: Vec<String>) -> Vec<String> {
    if exec.argv_truncated && !proc_argv.is_empty() {
        exec.argv = proc_argv;
        exec.argv_truncated = false;
    }
    exec.argv.clone()
}

/// Every process's children, by parent PID.
fn children_of(procs: &[procfs::ProcProcess]) -> HashMap<u32, Vec<&procfs::ProcProcess>> {
    let mut children: HashMap<u32, Vec<&procfs::ProcProcess>> = HashMap::new();
    for p in procs {
        children.entry(p.ppid).or_default().push(p);
    }
    children
}

/// The exit the kernel would have reported for JVM `key`, at `time_ns` (its status unknown).
fn made_up_exit(key: ProcessKey, time_ns: u64) -> Exit {
    Exit {
        time_ns,
        task: Task {
            pid: key.tgid,
            tgid: key.tgid,
            ppid: 0,
            uid: 0,
            gid: 0,
            start_ns: key.start_ns,
            cgroup_id: 0,
            comm: String::new(),
        },
        lineage: LineageRef {
            jvm_tgid: key.tgid,
            jvm_start_ns: key.start_ns,
            depth: 0,
        },
        exit_code: 0,
    }
}

/// The exec the kernel would have reported for a process /proc shows; `by` says how its
/// JVM was recognised.
fn seeded_exec(p: &procfs::ProcProcess, lineage: LineageRef, by: JvmRecognition) -> Exec {
    let exe = p.exe.clone().unwrap_or_default();
    Exec {
        time_ns: p.start_ns,
        task: Task {
            pid: p.pid,
            tgid: p.pid,
            ppid: p.ppid,
            uid: 0,
            gid: 0,
            start_ns: p.start_ns,
            cgroup_id: 0,
            comm: crate::policy::basename(&exe).to_owned(),
        },
        lineage,
        is_jvm: lineage.depth == 0,
        recognised_by: (lineage.depth == 0).then_some(by),
        filename: exe,
        interp: None,
        argv: p.argv.clone(),
        argv_truncated: false,
        memfd: false,
        kernel_class: None,
        kernel_allowed: false,
        killed: false,
        kill_failed: false,
    }
}

/// Hands the memory start-up used (kernel BTF, the object's parse, /proc) back to the
/// system: glibc keeps freed heap memory mapped, and it would count as resident for ever.
fn release_startup_memory() {
    // SAFETY: malloc_trim has no preconditions.
    unsafe { libc::malloc_trim(0) };
}
