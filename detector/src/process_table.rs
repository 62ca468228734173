//! The daemon's view of JVM lineages: one entry per process, with its parent, so an
//! alert can say which programs sit between a JVM and what it ended up running.
//!
//! Bounded: exited processes are kept for a while (a grandchild's exec can be decoded
//! after its parent's exit) and then evicted oldest first; if the table still overflows
//! (exit events lost, or a huge fleet of JVM descendants), the least recently seen live
//! entries go. Every eviction of a live entry is counted.

use std::collections::{HashMap, VecDeque};

use crate::{
    events::{Exec, Exit, Fork, LineageRef},
    vocab::ProcessKey,
};

/// One process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    pub key: ProcessKey,
    pub ppid: u32,
    /// The executable: the path the process was started with (for a JVM, the resolved
    /// `/proc/PID/exe` when the daemon could read it).
    pub exe: String,
    pub argv: Vec<String>,
    pub uid: u32,
    pub cgroup_id: u64,
    /// Cgroup v2 path, when the daemon could read it (JVMs: for the alert's container block).
    pub cgroup_path: Option<String>,
    /// The JVM lineage it belongs to, when it belongs to one.
    pub lineage: Option<LineageRef>,
    pub exited: bool,
    /// Last time this entry was touched (a counter, not a clock).
    seq: u64,
}

impl Process {
    /// Whether it is a JVM: the root of its lineage.
    pub fn is_jvm_root(&self) -> bool {
        self.lineage
            .is_some_and(|l| l.depth == 0 && l.jvm_tgid == self.key.tgid)
    }

    /// A process known from outside the event stream (e.g. read from /proc at start-up).
    pub fn new(key: ProcessKey, ppid: u32, exe: String, argv: Vec<String>) -> Self {
        Self {
            key,
            ppid,
            exe,
            argv,
            uid: 0,
            cgroup_id: 0,
            cgroup_path: None,
            lineage: None,
            exited: false,
            seq: 0,
        }
    }
}

/// Bounded process table keyed by tgid.
#[derive(Debug)]
pub struct ProcessTable {
    procs: HashMap<u32, Process>,
    capacity: usize,
    exited: VecDeque<ProcessKey>,
    max_exited: usize,
    seq: u64,
    evicted_live: u64,
}

impl ProcessTable {
    /// `capacity` entries in all, of which at most a quarter are exited processes.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(8);
        Self {
            procs: HashMap::new(),
            capacity,
            exited: VecDeque::new(),
            max_exited: capacity / 4,
            seq: 0,
            evicted_live: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.procs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    /// Live entries evicted because the table was full (lineage detail was lost for them).
    pub fn evicted_live(&self) -> u64 {
        self.evicted_live
    }

    pub fn get(&self, tgid: u32) -> Option<&Process> {
        self.procs.get(&tgid)
    }

    /// Live processes below `jvm` in its lineage (not the JVM itself).
    pub fn lineage_members(&self, jvm: ProcessKey) -> Vec<ProcessKey> {
        self.procs
            .values()
            .filter(|p| {
                !p.exited
                    && p.key != jvm
                    && p.lineage.is_some_and(|l| l.jvm() == jvm && l.depth > 0)
            })
            .map(|p| p.key)
            .collect()
    }

    /// Live JVMs (lineage roots).
    pub fn jvms(&self) -> impl Iterator<Item = ProcessKey> + '_ {
        self.procs
            .values()
            .filter(|p| !p.exited && p.is_jvm_root())
            .map(|p| p.key)
    }

    /// How many live JVMs there are, for status lines.
    pub fn jvm_count(&self) -> usize {
        self.jvms().count()
    }

    /// Live JVMs (lineage roots) in the cgroup with this id, oldest first.
    pub fn jvms_in_cgroup(&self, cgroup_id: u64) -> Vec<&Process> {
        let mut jvms: Vec<&Process> = self
            .procs
            .values()
            .filter(|p| !p.exited && p.cgroup_id == cgroup_id && p.is_jvm_root())
            .collect();
        jvms.sort_by_key(|p| p.key.start_ns);
        jvms
    }

    /// The process `key` names, if the table still holds that very process.
    pub fn get_key(&self, key: ProcessKey) -> Option<&Process> {
        self.procs.get(&key.tgid).filter(|p| p.key == key)
    }

    /// Records an entry (replacing one with the same tgid: PIDs are reused).
    pub fn insert(&mut self, mut process: Process) {
        self.seq += 1;
        process.seq = self.seq;
        self.procs.insert(process.key.tgid, process);
        self.enforce_capacity();
    }

    /// A program was executed: the process keeps its identity and gets a new image.
    pub fn on_exec(&mut self, exec: &Exec) {
        let key = ProcessKey {
            tgid: exec.task.tgid,
            start_ns: exec.task.start_ns,
        };
        let mut process = match self.procs.remove(&key.tgid) {
            Some(p) if p.key == key => p,
            _ => Process::new(key, exec.task.ppid, String::new(), Vec::new()),
        };
        process.ppid = exec.task.ppid;
        process.exe = exec.filename.clone();
        process.argv = exec.argv.clone();
        process.uid = exec.task.uid;
        process.cgroup_id = exec.task.cgroup_id;
        process.lineage = Some(exec.lineage);
        self.insert(process);
    }

    /// A child process was created; it runs its parent's image until it executes another.
    pub fn on_fork(&mut self, fork: &Fork) {
        let key = ProcessKey {
            tgid: fork.child.tgid,
            start_ns: fork.child.start_ns,
        };
        let (exe, argv) = match self.procs.get(&fork.child.ppid) {
            Some(parent) => (parent.exe.clone(), parent.argv.clone()),
            None => (String::new(), Vec::new()),
        };
        let mut process = Process::new(key, fork.child.ppid, exe, argv);
        process.uid = fork.child.uid;
        process.cgroup_id = fork.child.cgroup_id;
        process.lineage = Some(fork.lineage);
        self.insert(process);
    }

    /// A process ended; it stays for a while as an ancestor of events still in flight.
    pub fn on_exit(&mut self, exit: &Exit) {
        let key = ProcessKey {
            tgid: exit.task.tgid,
            start_ns: exit.task.start_ns,
        };
        if let Some(p) = self.procs.get_mut(&key.tgid).filter(|p| p.key == key) {
            p.exited = true;
            self.exited.push_back(key);
        }
        while self.exited.len() > self.max_exited {
            if let Some(old) = self.exited.pop_front() {
                self.remove_if_exited(old);
            }
        }
    }

    fn remove_if_exited(&mut self, key: ProcessKey) {
        if self
            .procs
            .get(&key.tgid)
            .is_some_and(|p| p.key == key && p.exited)
        {
            self.procs.remove(&key.tgid);
        }
    }

    /// Parents of `tgid`, nearest first, up to `max` of them (stops at a process the table
    /// does not know, or at a loop).
    pub fn ancestry(&self, tgid: u32, max: usize) -> Vec<&Process> {
        let mut out: Vec<&Process> = Vec::new();
        let mut next = self.procs.get(&tgid).map(|p| p.ppid);
        while let Some(ppid) = next {
            if out.len() >= max
                || ppid == 0
                || ppid == tgid
                || out.iter().any(|p| p.key.tgid == ppid)
            {
                break;
            }
            let Some(parent) = self.procs.get(&ppid) else {
                break;
            };
            out.push(parent);
            next = Some(parent.ppid);
        }
        out
    }

    fn enforce_capacity(&mut self) {
        if self.procs.len() <= self.capacity {
            return;
        }
        while let Some(old) = self.exited.pop_front() {
            self.remove_if_exited(old);
            if self.procs.len() <= self.capacity {
                return;
            }
        }
        // Still full of live entries: drop the least recently seen tenth in one sweep,
        // so the cost is amortised over many inserts.
        let target = self.capacity - self.capacity / 10;
        let mut by_age: Vec<(u64, u32)> =
            self.procs.values().map(|p| (p.seq, p.key.tgid)).collect();
        by_age.sort_unstable();
        for (_, tgid) in by_age.into_iter().take(self.procs.len() - target) {
            self.procs.remove(&tgid);
            self.evicted_live += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Task;

    fn task(tgid: u32, ppid: u32) -> Task {
        Task {
            pid: tgid,
            tgid,
            ppid,
            uid: 0,
            gid: 0,
            start_ns: u64::from(tgid) * 10,
            cgroup_id: 1,
            comm: String::new(),
        }
    }

    fn lineage(jvm: u32, depth: u32) -> LineageRef {
        LineageRef {
            jvm_tgid: jvm,
            jvm_start_ns: u64::from(jvm) * 10,
            depth,
        }
    }

    fn exec(tgid: u32, ppid: u32, file: &str, jvm: u32, depth: u32) -> Exec {
        Exec {
            time_ns: 0,
            task: task(tgid, ppid),
            lineage: lineage(jvm, depth),
            is_jvm: depth == 0,
            recognised_by: None,
            filename: file.into(),
            interp: None,
            argv: vec![file.into()],
            argv_truncated: false,
            memfd: false,
            kernel_class: None,
            kernel_allowed: false,
            killed: false,
            kill_failed: false,
        }
    }

    fn fork(child: u32, parent: u32, jvm: u32, depth: u32) -> Fork {
        Fork {
            time_ns: 0,
            child: task(child, parent),
            lineage: lineage(jvm, depth),
        }
    }

    fn exit(tgid: u32, ppid: u32, jvm: u32) -> Exit {
        Exit {
            time_ns: 0,
            task: task(tgid, ppid),
            lineage: lineage(jvm, 1),
            exit_code: 0,
        }
    }

    #[test]
    fn grandchild_ancestry_survives_the_middle_shell_exiting() {
        let mut t = ProcessTable::new(100);
        t.on_exec(&exec(100, 1, "/usr/bin/java", 100, 0));
        t.on_fork(&fork(200, 100, 100, 1));
        t.on_exec(&exec(200, 100, "/bin/sh", 100, 1));
        t.on_fork(&fork(300, 200, 100, 2));
        t.on_exit(&exit(200, 100, 100));
        t.on_exec(&exec(300, 200, "/bin/sh", 100, 2));
        let chain: Vec<u32> = t.ancestry(300, 10).iter().map(|p| p.key.tgid).collect();
        assert_eq!(chain, [200, 100]);
        assert!(t.get(200).is_some_and(|p| p.exited));
        assert_eq!(t.get(300).map(|p| p.exe.as_str()), Some("/bin/sh"));
    }

    #[test]
    fn forked_child_inherits_image_until_exec() {
        let mut t = ProcessTable::new(100);
        t.on_exec(&exec(100, 1, "/usr/bin/java", 100, 0));
        t.on_fork(&fork(200, 100, 100, 1));
        assert_eq!(t.get(200).map(|p| p.exe.as_str()), Some("/usr/bin/java"));
        assert_eq!(t.get(200).and_then(|p| p.lineage).map(|l| l.depth), Some(1));
    }

    #[test]
    fn pid_reuse_replaces_the_old_process() {
        let mut t = ProcessTable::new(100);
        t.on_exec(&exec(100, 1, "/usr/bin/java", 100, 0));
        let mut reused = exec(100, 1, "/bin/true", 7, 1);
        reused.task.start_ns = 999;
        t.on_exec(&reused);
        let p = t.get(100).expect("entry");
        assert_eq!(p.key.start_ns, 999);
        assert_eq!(p.exe, "/bin/true");
        // The old JVM's key no longer resolves to the new process.
        assert!(t
            .get_key(ProcessKey {
                tgid: 100,
                start_ns: 1000
            })
            .is_none());
        // A stale exit (old start time) does not mark the new process exited.
        t.on_exit(&exit(100, 1, 7));
        assert!(!t.get(100).is_some_and(|p| p.exited));
    }

    #[test]
    fn stays_bounded_under_churn() {
        let mut t = ProcessTable::new(64);
        for i in 0..10_000u32 {
            let pid = 1000 + i;
            t.on_fork(&fork(pid, 1, 1, 1));
            t.on_exit(&exit(pid, 1, 1));
        }
        assert!(t.len() <= 64, "len {}", t.len());
        assert_eq!(t.evicted_live(), 0, "only exited entries should have gone");
        // Live processes whose exits were lost: the table still stays bounded, and counts it.
        for i in 0..1_000u32 {
            t.on_fork(&fork(50_000 + i, 1, 1, 1));
        }
        assert!(t.len() <= 64, "len {}", t.len());
        assert!(t.evicted_live() > 0);
    }

    #[test]
    fn ancestry_stops_at_loops_and_limits() {
        let mut t = ProcessTable::new(100);
        t.insert(Process::new(
            ProcessKey {
                tgid: 5,
                start_ns: 0,
            },
            6,
            "a".into(),
            vec![],
        ));
        t.insert(Process::new(
            ProcessKey {
                tgid: 6,
                start_ns: 0,
            },
            5,
            "b".into(),
            vec![],
        ));
        assert_eq!(t.ancestry(5, 10).len(), 1);
        t.insert(Process::new(
            ProcessKey {
                tgid: 7,
                start_ns: 0,
            },
            6,
            "c".into(),
            vec![],
        ));
        assert_eq!(t.ancestry(7, 1).len(), 1);
    }
}
