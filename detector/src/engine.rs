//! The event pipeline without the kernel or the network: process table, then rules.
//! `detector run` feeds it decoded kernel events; `detector replay` feeds it recorded
//! ones, so a policy can be tried on yesterday's events.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::{
    correlate::{Correlator, Incident},
    events::{Event, Exec},
    policy::Policy,
    process_table::{Process, ProcessTable},
    rules::{
        egress::{self, EgressState},
        inbound::{self, InboundState},
        shell_spawn, Detection,
    },
    vocab::ProcessKey,
};

/// Processes the table holds at most (JVMs, their descendants, and their ancestors).
pub const TABLE_CAPACITY: usize = 32_768;

/// One line of a `--record` file: the event, and where boot time was on the wall clock
/// so `replay` can print the original times.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Wall-clock time at boot of the recording host, ns since the Unix epoch.
    pub boot_epoch_ns: u64,
    /// The event was made up from /proc at start-up for a process that predates the
    /// kernel programs (a JVM already running, and its descendants): `replay` seeds the
    /// table with it, as `run` did, instead of judging it. Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub seeded: bool,
    #[serde(flatten)]
    pub event: Event,
}

impl Record {
    /// Feeds the recorded event to `engine` the way `run` fed it: a seeded exec is learned,
    /// anything else judged.
    pub fn replay(&self, engine: &mut Engine) -> Vec<Detection> {
        match (&self.event, self.seeded) {
            (Event::Exec(exec), true) => {
                engine.seed(exec);
                Vec::new()
            }
            (event, _) => engine.process(event),
        }
    }
}

/// Table + rules.
#[derive(Debug)]
pub struct Engine {
    policy: Policy,
    table: ProcessTable,
    egress: EgressState,
    inbound: InboundState,
    correlator: Correlator,
    /// Incidents whose JVM exited, with when, until the daemon takes them.
    closed: Vec<(Incident, u64)>,
}

impl Engine {
    /// `resolvers`: the host's own DNS servers (a JVM querying another is suspicious).
    /// `host` names the incidents.
    pub fn new(policy: Policy, resolvers: Vec<IpAddr>, host: &str) -> Self {
        Self {
            policy,
            table: ProcessTable::new(TABLE_CAPACITY),
            egress: EgressState::new(resolvers),
            inbound: InboundState::default(),
            correlator: Correlator::new(host),
            closed: Vec::new(),
        }
    }

    /// Incidents closed since the last call (their JVM exited), with the exit time.
    pub fn take_closed(&mut self) -> Vec<(Incident, u64)> {
        std::mem::take(&mut self.closed)
    }

    /// Incidents so far.
    pub fn correlator(&self) -> &Correlator {
        &self.correlator
    }

    /// Records what the response to `detection` did, in its incident's timeline.
    pub fn record_response(&mut self, time_ns: u64, detection: &Detection) {
        self.correlator
            .note_action(detection.jvm, time_ns, &detection.summary, detection.action);
    }

    /// Probe samples whose cgroup held no known JVM.
    pub fn unattributed_probes(&self) -> u64 {
        self.inbound.unattributed
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Judges from now on by `policy` (a reload); what the rules remember stays.
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    pub fn table(&self) -> &ProcessTable {
        &self.table
    }

    /// What the egress rules know (the resolvers of each JVM among it).
    pub fn egress(&self) -> &EgressState {
        &self.egress
    }

    /// A process that predates the event stream (from /proc: an ancestor of a JVM).
    pub fn add_process(&mut self, process: Process) {
        self.table.insert(process);
    }

    /// An exec the sensor session made up for a process that predates the kernel programs:
    /// the table learns it, the rules do not judge it (it is not something the process did
    /// now).
    pub fn seed(&mut self, exec: &Exec) {
        self.table.on_exec(exec);
    }

    /// What /proc says of a JVM the table holds: its resolved executable and its cgroup.
    pub fn note_jvm(&mut self, jvm: ProcessKey, exe: Option<&str>, cgroup: Option<&str>) {
        if let Some(mut entry) = self.table.get_key(jvm).cloned() {
            if let Some(exe) = exe {
                entry.exe = exe.to_owned();
            }
            entry.cgroup_path = cgroup.map(str::to_owned);
            self.table.insert(entry);
        }
    }

    /// Updates the table with `event` and returns what the rules make of it, each filed
    /// under its incident, followed by `exploit_chain` when the incident became one.
    pub fn process(&mut self, event: &Event) -> Vec<Detection> {
        let mut detections = self.detect(event);
        let mut chains = Vec::new();
        for d in &mut detections {
            chains.extend(self.correlator.observe(d, event.time_ns()));
        }
        detections.extend(chains);
        detections
    }

    fn detect(&mut self, event: &Event) -> Vec<Detection> {
        match event {
            Event::Exec(exec) => {
                self.table.on_exec(exec);
                shell_spawn::evaluate(&self.policy, &self.table, exec)
                    .into_iter()
                    .collect()
            }
            Event::Fork(fork) => {
                self.table.on_fork(fork);
                Vec::new()
            }
            Event::Exit(exit) => {
                self.table.on_exit(exit);
                if exit.lineage.depth == 0 && exit.task.tgid == exit.lineage.jvm_tgid {
                    self.egress.forget_jvm(exit.lineage.jvm());
                    self.inbound.forget_jvm(exit.lineage.jvm());
                    if let Some(incident) = self.correlator.close(exit.lineage.jvm()) {
                        self.closed.push((incident, exit.time_ns));
                    }
                }
                Vec::new()
            }
            Event::Connect(c) => {
                egress::evaluate_connect(&self.policy, &self.table, &mut self.egress, c)
                    .into_iter()
                    .collect()
            }
            Event::Inbound(i) => inbound::evaluate(&self.table, &mut self.inbound, i)
                .into_iter()
                .collect(),
            Event::Payload(p) => {
                egress::evaluate_payload(&self.policy, &self.table, &mut self.egress, p)
                    .into_iter()
                    .collect()
            }
            Event::Resolvers(r) => {
                self.egress.set_resolvers(r.jvm, r.servers.clone());
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        events::{Exec, Exit, Fork, LineageRef, Task},
        vocab::{Action, Rule},
    };

    fn task(tgid: u32, ppid: u32) -> Task {
        Task {
            pid: tgid,
            tgid,
            ppid,
            uid: 0,
            gid: 0,
            start_ns: u64::from(tgid),
            cgroup_id: 1,
            comm: String::new(),
        }
    }

    const JVM: LineageRef = LineageRef {
        jvm_tgid: 10,
        jvm_start_ns: 10,
        depth: 0,
    };

    fn exec(tgid: u32, ppid: u32, file: &str, argv: &[&str], depth: u32) -> Event {
        Event::Exec(Exec {
            time_ns: 0,
            task: task(tgid, ppid),
            lineage: LineageRef { depth, ..JVM },
            is_jvm: depth == 0,
            recognised_by: None,
            filename: file.into(),
            interp: None,
            argv: argv.iter().map(|s| s.to_string()).collect(),
            argv_truncated: false,
            memfd: false,
            kernel_class: None,
            kernel_allowed: false,
            killed: false,
            kill_failed: false,
        })
    }

    /// The event sequence of `Runtime.exec("/bin/sh -c ...")` on JDK 17: the JVM forks,
    /// the child execs jspawnhelper, which execs the shell.
    #[test]
    fn jspawnhelper_chain_raises_one_alert_naming_the_jvm() {
        let mut engine = Engine::new(Policy::builtin(), Vec::new(), "h");
        let events = [
            exec(10, 1, "/usr/bin/java", &["java", "App"], 0),
            Event::Fork(Fork {
                time_ns: 0,
                child: task(11, 10),
                lineage: LineageRef { depth: 1, ..JVM },
            }),
            exec(
                11,
                10,
                "/usr/lib/jvm/java-17-openjdk-amd64/lib/jspawnhelper",
                &["jspawnhelper", "3:4"],
                1,
            ),
            exec(11, 10, "/bin/sh", &["/bin/sh", "-c", "id"], 1),
            Event::Exit(Exit {
                time_ns: 0,
                task: task(11, 10),
                lineage: LineageRef { depth: 1, ..JVM },
                exit_code: 0,
            }),
        ];
        let detections: Vec<_> = events.iter().flat_map(|e| engine.process(e)).collect();
        assert_eq!(detections.len(), 1, "{detections:?}");
        assert_eq!(detections[0].rule, Rule::JvmShellSpawn);
        assert_eq!(detections[0].jvm.tgid, 10);
        assert_eq!(detections[0].action, Action::Reported);
        assert_eq!(engine.table().ancestry(11, 4)[0].key.tgid, 10);
        // The JVM's own exit closes its incident, once, for the sinks to resolve.
        assert!(engine.take_closed().is_empty());
        engine.process(&Event::Exit(Exit {
            time_ns: 9,
            task: task(10, 1),
            lineage: JVM,
            exit_code: 0,
        }));
        let closed = engine.take_closed();
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].0.id, detections[0].incident_id);
        assert_eq!(closed[0].1, 9);
        assert!(engine.take_closed().is_empty());
    }

    #[test]
    fn records_round_trip_as_json_lines() {
        let record = Record {
            boot_epoch_ns: 42,
            seeded: false,
            event: exec(10, 1, "/usr/bin/java", &["java"], 0),
        };
        let line = serde_json::to_string(&record).expect("serialises");
        assert!(line.contains("\"kind\":\"exec\""), "{line}");
        assert!(!line.contains("seeded"), "{line}");
        let back: Record = serde_json::from_str(&line).expect("parses");
        assert_eq!(back, record);
        let seeded = Record {
            seeded: true,
            ..record
        };
        let line = serde_json::to_string(&seeded).expect("serialises");
        assert!(line.contains("\"seeded\":true"), "{line}");
        assert_eq!(
            serde_json::from_str::<Record>(&line).expect("parses"),
            seeded
        );
    }

    /// A recording of a JVM that predates the detector holds its seeded exec (and that of
    /// a shell it had already started): replayed, they are learned as `run` learned them,
    /// not judged, and what the JVM does afterwards is judged against them.
    #[test]
    fn seeded_records_are_learned_not_judged() {
        let record = |seeded: bool, event: Event| Record {
            boot_epoch_ns: 0,
            seeded,
            event,
        };
        let old_shell = exec(11, 10, "/bin/sh", &["sh", "-c", "sleep 1000"], 1);
        let mut engine = Engine::new(Policy::builtin(), Vec::new(), "h");
        for seeded in [
            record(true, exec(10, 1, "/usr/bin/java", &["java", "App"], 0)),
            record(true, old_shell.clone()),
        ] {
            assert!(seeded.replay(&mut engine).is_empty());
        }
        assert!(engine.table().get_key(JVM.jvm()).is_some());
        // The same exec, as the kernel reports a new one, is judged.
        let new_shell = record(false, exec(12, 10, "/bin/sh", &["sh", "-c", "id"], 1));
        let detections = new_shell.replay(&mut engine);
        assert_eq!(detections.len(), 1, "{detections:?}");
        assert_eq!(detections[0].jvm, JVM.jvm());
        // Unseeded, the JVM's old shell would have been an alert of its own.
        let mut fresh = Engine::new(Policy::builtin(), Vec::new(), "h");
        record(false, exec(10, 1, "/usr/bin/java", &["java", "App"], 0)).replay(&mut fresh);
        assert_eq!(record(false, old_shell).replay(&mut fresh).len(), 1);
    }
}
