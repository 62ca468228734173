//! The kernel edge: loads the programs embedded in this binary, hands them the policy
//! through maps (encoded in `encode`), attaches them, and gives the session their ring
//! buffer and counters.

pub mod btf;
pub mod containers;
pub mod encode;
pub mod kernel;
pub mod libjvm;
pub mod lineage;
pub mod privileges;
pub mod procfs;
pub mod resolvers;
pub mod ringfill;

use std::path::{Path, PathBuf};

use aya::{
    maps::{Array, HashMap, LpmTrie, MapData, PerCpuArray, RingBuf},
    programs::{
        cgroup_skb::{CgroupSkbAttachType, CgroupSkbLinkId},
        links::CgroupAttachMode,
        BtfTracePoint, CgroupSkb, CgroupSockAddr,
    },
    Ebpf, EbpfLoader,
};
use detector_common::{
    AllowKey, Config, Lineage, NetAllow, NetKey, EVENT_CONNECT, EVENT_EXEC, EVENT_EXIT, EVENT_FORK,
    EVENT_INBOUND, EVENT_PAYLOAD, LOSS_LINEAGE_FULL,
};

use crate::{policy::Policy, vocab::ProcessKey};
pub use encode::NetKeyPrefix;

/// The kernel object, built by `build.rs` from `detector-ebpf/`.
static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/detector-ebpf.o"));

const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// How often the daemon reads the ring buffer without being woken. The kernel programs
/// wake it (an interrupt per record) only for what it must act on — a classified exec, a
/// JVM start or exit, a connect, a payload, an inbound match — or when a megabyte is
/// waiting; routine fork, exit and exec records of JVM lineages wait for this timer, which
/// keeps their kernel cost at a fraction (`cargo xtask bench kernel`). Records stay in
/// order: a wake-up drains whatever came before it.
pub const DRAIN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(20);

/// The programs, in the order they are attached: fork and exit before exec, so a JVM
/// tracked at exec has its children tracked from its first fork.
const PROGRAMS: [&str; 3] = [
    "sched_process_fork",
    "sched_process_exit",
    "sched_process_exec",
];

/// The socket-address programs, attached to the scope cgroup.
const SOCK_ADDR_PROGRAMS: [&str; 4] = ["connect4", "connect6", "sendmsg4", "sendmsg6"];

/// The packet programs, attached to the cgroups that contain a JVM: the first payload a
/// JVM sends, and what arrives at it (lookup strings, class bytes).
const PACKET_PROGRAMS: [(&str, CgroupSkbAttachType); 2] = [
    ("egress_payload", CgroupSkbAttachType::Egress),
    ("ingress_inspect", CgroupSkbAttachType::Ingress),
];

/// Why the sensors could not start. Each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    /// A capability the kernel programs cannot be loaded or attached without.
    #[error(
        "detector lacks {missing}: run it as root, or grant these capabilities (the systemd \
         unit deploy/systemd/detector.service grants them; docs/operations.md says why each \
         is needed; `detector doctor` shows what this process holds)"
    )]
    MissingCapabilities {
        /// Each missing capability and what it is for.
        missing: String,
    },
    /// The kernel's version could not be read.
    #[error("cannot tell which kernel this is: {reason}")]
    KernelUnknown {
        /// Why.
        reason: String,
    },
    /// The kernel is older than the programs need.
    #[error("kernel {release} is too old: detector needs Linux 5.8 or newer (BPF ring buffer, BTF tracepoints, bpf_send_signal)")]
    KernelTooOld {
        /// `uname -r`.
        release: String,
    },
    /// This binary was built with `DETECTOR_SKIP_EBPF_BUILD`.
    #[error("this detector binary was built without its kernel programs; rebuild with `cargo xtask build`")]
    NoObject,
    /// The kernel exposes no BTF.
    #[error("kernel BTF is missing ({path}: {source}); detector needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (every major distribution's since 2020)")]
    NoBtf {
        /// Where it was looked for.
        path: &'static str,
        /// The read error.
        source: std::io::Error,
    },
    /// Kernel BTF could not be used.
    #[error("reading kernel structure offsets from {VMLINUX_BTF}: {0}")]
    Offsets(#[from] btf::BtfError),
    /// No cgroup v2 hierarchy is mounted.
    #[error("no cgroup v2 hierarchy is mounted (see /proc/mounts); mount one at /sys/fs/cgroup or /sys/fs/cgroup/unified")]
    NoCgroup2,
    /// `--cgroup` does not name a cgroup v2 directory.
    #[error("--cgroup {path}: not a directory of the cgroup v2 hierarchy mounted at {mount}")]
    BadScope {
        /// The argument.
        path: PathBuf,
        /// The cgroup v2 mount.
        mount: PathBuf,
    },
    /// The object could not be parsed or its maps created.
    #[error("loading the kernel object: {0}")]
    Object(#[from] aya::EbpfError),
    /// A program is missing from the object, or is of the wrong type.
    #[error("kernel program `{name}` is missing from the object or has the wrong type")]
    MissingProgram {
        /// Program name.
        name: &'static str,
    },
    /// The verifier or the kernel refused a program.
    #[error("kernel program `{name}` failed to {stage}: {reason}")]
    Program {
        /// Program name.
        name: &'static str,
        /// "load" or "attach".
        stage: &'static str,
        /// The kernel's reason, with the verifier's last words for load failures (the
        /// whole verifier log is logged at debug level: `DETECTOR_LOG=debug`).
        reason: String,
    },
    /// A map could not be mapped into the daemon's memory.
    #[error("mapping the kernel map `{name}`: {source}")]
    Mmap {
        /// Map name.
        name: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The policy's egress allowlist does not fit the kernel's entries.
    #[error("the egress allowlist: {0}")]
    Policy(#[from] crate::policy::KernelAllowError),
    /// A map is missing from the object.
    #[error("map `{name}` is missing from the kernel object or has the wrong type: {source}")]
    Map {
        /// Map name.
        name: &'static str,
        /// Why.
        source: aya::maps::MapError,
    },
}

/// Which JVMs to track: those started inside this cgroup (or below it).
#[derive(Clone, Debug)]
pub struct Scope {
    /// The cgroup's directory.
    pub dir: PathBuf,
    /// Its path within the hierarchy (`/` for the root).
    pub path: String,
    /// Cgroup v2 id: the directory's inode number.
    pub id: u64,
    /// Depth below the root (root = 0).
    pub level: u32,
    /// Where the cgroup v2 hierarchy is mounted.
    pub mount: PathBuf,
}

impl Scope {
    /// Resolves `--cgroup` (default: the whole host, the cgroup v2 root).
    pub fn resolve(arg: Option<&Path>) -> Result<Scope, SensorError> {
        use std::os::unix::fs::MetadataExt;
        let mount = procfs::cgroup2_mount().ok_or(SensorError::NoCgroup2)?;
        let arg = arg.unwrap_or(&mount);
        let bad = || SensorError::BadScope {
            path: arg.to_path_buf(),
            mount: mount.clone(),
        };
        let (dir, path) = procfs::resolve_cgroup(&mount, arg).ok_or_else(bad)?;
        if !dir.join("cgroup.procs").exists() {
            return Err(bad());
        }
        let id = std::fs::metadata(&dir).map_err(|_| bad())?.ino();
        let level = path.split('/').filter(|c| !c.is_empty()).count() as u32;
        Ok(Scope {
            mount: mount.clone(),
            dir,
            path,
            id,
            level,
        })
    }
}

/// The loaded, attached programs and the maps the daemon keeps using.
pub struct Sensors {
    /// Owns the programs and their links: dropping it detaches everything.
    ebpf: Ebpf,
    cgroup_mount: PathBuf,
    /// Cgroups the payload program is attached to, with how many JVMs need it there.
    inspected: std::collections::HashMap<String, Inspection>,
    /// The cgroup each JVM's packets are inspected in.
    inspected_jvms: std::collections::HashMap<ProcessKey, String>,
    events: Option<RingBuf<MapData>>,
    loss: PerCpuArray<MapData, u64>,
    inbound_stats: PerCpuArray<MapData, u64>,
    lineage: lineage::LineageTable,
    allow: HashMap<MapData, AllowKey, u32>,
    net_allow: LpmTrie<MapData, NetKey, NetAllow>,
    quarantine: HashMap<MapData, u32, u64>,
    /// The `libjvm.so` uprobes and the /proc scan (`jvm.recognise_libjvm`).
    libjvm: libjvm::LibjvmProbes,
}

impl std::fmt::Debug for Sensors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sensors").finish_non_exhaustive()
    }
}

/// The packet programs' links on one cgroup, and how many JVMs there need them.
type Inspection = (Vec<(&'static str, CgroupSkbLinkId)>, usize);

/// A per-CPU counter, summed over CPUs (0 if it cannot be read).
fn per_cpu_sum(map: &PerCpuArray<MapData, u64>, slot: u32) -> u64 {
    map.get(&slot, 0)
        .map(|per_cpu| per_cpu.iter().sum())
        .unwrap_or(0)
}

/// The inbound scan's kernel counters, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InboundCounts {
    /// Request heads past the 64 KiB bound, and packets whose scan ran out of tail calls.
    pub uninspected: u64,
    /// Samples sent to the daemon.
    pub samples: u64,
}

/// Kernel loss counters, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LossCounts {
    pub exec: u64,
    pub fork: u64,
    pub exit: u64,
    pub connect: u64,
    pub payload: u64,
    pub inbound: u64,
    /// Processes that could not be tracked because the lineage map was full.
    pub lineage: u64,
}

impl LossCounts {
    pub fn total(&self) -> u64 {
        self.named().iter().map(|(_, n)| n).sum()
    }

    /// Named counts, for alerts and the stats line.
    pub fn named(&self) -> [(&'static str, u64); 7] {
        [
            ("exec", self.exec),
            ("fork", self.fork),
            ("exit", self.exit),
            ("connect", self.connect),
            ("payload", self.payload),
            ("inbound", self.inbound),
            ("lineage", self.lineage),
        ]
    }

    /// What was added since `earlier`.
    pub fn since(&self, earlier: &LossCounts) -> LossCounts {
        LossCounts {
            exec: self.exec.saturating_sub(earlier.exec),
            fork: self.fork.saturating_sub(earlier.fork),
            exit: self.exit.saturating_sub(earlier.exit),
            connect: self.connect.saturating_sub(earlier.connect),
            payload: self.payload.saturating_sub(earlier.payload),
            inbound: self.inbound.saturating_sub(earlier.inbound),
            lineage: self.lineage.saturating_sub(earlier.lineage),
        }
    }
}

fn map<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut aya::maps::Map, SensorError> {
    ebpf.map_mut(name).ok_or(SensorError::Map {
        name,
        source: aya::maps::MapError::InvalidName {
            name: name.to_owned(),
        },
    })
}

fn take<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, SensorError>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let m = ebpf.take_map(name).ok_or(SensorError::Map {
        name,
        source: aya::maps::MapError::InvalidName {
            name: name.to_owned(),
        },
    })?;
    T::try_from(m).map_err(|source| SensorError::Map { name, source })
}

/// Loads `ingress_scan`, the request-head scan `ingress_inspect` reaches by tail call, and
/// puts it in the program array. The array stays in `ebpf`: the kernel empties a program
/// array when the last file descriptor of it is closed.
fn load_scan(ebpf: &mut Ebpf) -> Result<(), SensorError> {
    const NAME: &str = "ingress_scan";
    let prog: &mut CgroupSkb = ebpf
        .program_mut(NAME)
        .ok_or(SensorError::MissingProgram { name: NAME })?
        .try_into()
        .map_err(|_| SensorError::MissingProgram { name: NAME })?;
    prog.load().map_err(|e| program_error(NAME, "load", e))?;
    let fd = prog
        .fd()
        .map_err(|e| program_error(NAME, "load", e))?
        .try_clone()
        .map_err(|e| program_error(NAME, "load", aya::programs::ProgramError::IOError(e)))?;
    const MAP: &str = "INBOUND_SCAN_PROG";
    let map = ebpf.map_mut(MAP).ok_or(SensorError::Map {
        name: MAP,
        source: aya::maps::MapError::InvalidName {
            name: MAP.to_owned(),
        },
    })?;
    let mut array = aya::maps::ProgramArray::try_from(map)
        .map_err(|source| SensorError::Map { name: MAP, source })?;
    array
        .set(0, &fd, 0)
        .map_err(|source| SensorError::Map { name: MAP, source })
}

/// The map itself, for maps aya has no typed wrapper for that fits (the mapped lineage table).
fn take_data(ebpf: &mut Ebpf, name: &'static str) -> Result<MapData, SensorError> {
    match ebpf.take_map(name) {
        Some(aya::maps::Map::Array(data)) => Ok(data),
        _ => Err(SensorError::Map {
            name,
            source: aya::maps::MapError::InvalidName {
                name: name.to_owned(),
            },
        }),
    }
}

pub(crate) fn map_err(name: &'static str) -> impl Fn(aya::maps::MapError) -> SensorError {
    move |source| SensorError::Map { name, source }
}

impl Sensors {
    /// Loads and attaches everything; on return the kernel is tracking JVM lineages.
    pub fn start(policy: &Policy, scope: &Scope) -> Result<Sensors, SensorError> {
        check_capabilities()?;
        if EBPF_OBJECT.is_empty() {
            return Err(SensorError::NoObject);
        }
        let kernel = kernel::Kernel::running()?;
        kernel.check_floor()?;
        tracing::info!("{}", kernel.hooks());
        // Parsed kernel BTF takes tens of MiB; each parse below is dropped as soon as it has
        // served, so the start-up peak holds one at a time.
        let offsets = {
            let raw_btf = std::fs::read(VMLINUX_BTF).map_err(|source| SensorError::NoBtf {
                path: VMLINUX_BTF,
                source,
            })?;
            btf::Btf::parse(&raw_btf)?.kernel_offsets()?
        };
        let mut loader = EbpfLoader::new();
        // `new` parsed the kernel BTF for CO-RE relocations, which Rust programs do not have
        // (the offsets above stand in for them): freed before the object is loaded.
        loader.btf(None);
        let mut ebpf = loader
            .verifier_log_level(verifier_log_level())
            .override_global("OFFSETS", &offsets, true)
            .override_global("COMM_BY_LOAD", &u32::from(kernel.comm_by_load()), true)
            .load(EBPF_OBJECT)?;
        // The BTF tracepoints are loaded against the kernel's type ids.
        let kernel_btf = aya::Btf::from_sys_fs().map_err(|e| match e {
            aya::BtfError::FileError { path, error } => SensorError::NoBtf {
                path: VMLINUX_BTF,
                source: std::io::Error::new(error.kind(), format!("{}: {error}", path.display())),
            },
            other => SensorError::Offsets(btf::BtfError::Malformed {
                reason: other.to_string(),
            }),
        })?;

        Array::<_, Config>::try_from(map(&mut ebpf, "CONFIG")?)
            .map_err(map_err("CONFIG"))?
            .set(0, encode::config(policy, scope), 0)
            .map_err(map_err("CONFIG"))?;
        encode::sync_policy_maps(
            &mut ebpf,
            None,
            &encode::PolicyMaps::default(),
            &encode::PolicyMaps::of(policy),
        )?;

        for name in PROGRAMS {
            let prog: &mut BtfTracePoint = ebpf
                .program_mut(name)
                .ok_or(SensorError::MissingProgram { name })?
                .try_into()
                .map_err(|_| SensorError::MissingProgram { name })?;
            prog.load(name, &kernel_btf)
                .map_err(|e| program_error(name, "load", e))?;
            prog.attach()
                .map_err(|e| program_error(name, "attach", e))?;
        }
        // Tens of MiB once parsed; the socket and packet programs do not need it.
        drop(kernel_btf);

        // Attached as BPF links, which the kernel always runs alongside every other program
        // on the cgroup (e.g. Cilium's): multi-attach is implied, and a link refuses the
        // BPF_F_ALLOW_MULTI flag with EINVAL, hence `Single` (no flags) here.
        let cgroup = std::fs::File::open(&scope.dir).map_err(|_| SensorError::BadScope {
            path: scope.dir.clone(),
            mount: PathBuf::from("(cgroup v2)"),
        })?;
        for name in SOCK_ADDR_PROGRAMS {
            let prog: &mut CgroupSockAddr = ebpf
                .program_mut(name)
                .ok_or(SensorError::MissingProgram { name })?
                .try_into()
                .map_err(|_| SensorError::MissingProgram { name })?;
            prog.load().map_err(|e| program_error(name, "load", e))?;
            prog.attach(&cgroup, CgroupAttachMode::Single)
                .map_err(|e| program_error(name, "attach", e))?;
        }
        for (name, _) in PACKET_PROGRAMS {
            let prog: &mut CgroupSkb = ebpf
                .program_mut(name)
                .ok_or(SensorError::MissingProgram { name })?
                .try_into()
                .map_err(|_| SensorError::MissingProgram { name })?;
            // Loaded now (a verifier refusal should stop start-up), attached per JVM cgroup by
            // `inspect_cgroup`: on the scope they would cost every packet of the host.
            prog.load().map_err(|e| program_error(name, "load", e))?;
        }
        load_scan(&mut ebpf)?;

        // After the exec program: a JVM its launcher's name reveals is rooted at exec, and
        // the probes leave it alone.
        let libjvm = if policy.jvm.recognise_libjvm {
            libjvm::LibjvmProbes::start(&mut ebpf, &policy.jvm.libjvm_paths)
        } else {
            tracing::info!("jvm.recognise_libjvm is off: JVMs are recognised by launcher only");
            libjvm::LibjvmProbes::default()
        };

        Ok(Sensors {
            libjvm,
            events: Some(take(&mut ebpf, "EVENTS")?),
            loss: take(&mut ebpf, "LOSS")?,
            inbound_stats: take(&mut ebpf, "INBOUND_STATS")?,
            lineage: lineage::LineageTable::new(
                take_data(&mut ebpf, "LINEAGE")?,
                take_data(&mut ebpf, "TRACKED")?,
                take(&mut ebpf, "LINEAGE_OVERFLOW")?,
            ),
            allow: take(&mut ebpf, "EXEC_ALLOW")?,
            net_allow: take(&mut ebpf, "NET_ALLOW")?,
            quarantine: take(&mut ebpf, "QUARANTINE")?,
            cgroup_mount: scope.mount.clone(),
            inspected: std::collections::HashMap::new(),
            inspected_jvms: std::collections::HashMap::new(),
            ebpf,
        })
    }

    /// The event ring buffer (once).
    pub fn take_events(&mut self) -> Option<RingBuf<MapData>> {
        self.events.take()
    }

    /// Kernel loss counters so far.
    pub fn loss(&self) -> LossCounts {
        let sum = |slot| per_cpu_sum(&self.loss, slot);
        LossCounts {
            exec: sum(EVENT_EXEC),
            fork: sum(EVENT_FORK),
            exit: sum(EVENT_EXIT),
            connect: sum(EVENT_CONNECT),
            payload: sum(EVENT_PAYLOAD),
            inbound: sum(EVENT_INBOUND),
            lineage: sum(LOSS_LINEAGE_FULL),
        }
    }

    /// The inbound scan's counters so far, summed over CPUs: request heads (or parts of
    /// packets) not inspected, samples sent.
    pub fn inbound(&self) -> InboundCounts {
        let sum = |slot| per_cpu_sum(&self.inbound_stats, slot);
        InboundCounts {
            uninspected: sum(detector_common::INBOUND_STAT_UNINSPECTED),
            samples: sum(detector_common::INBOUND_STAT_SAMPLES),
        }
    }

    /// One pass of the `/proc/PID/maps` scan (see `libjvm`): the processes that map a
    /// `libjvm.so`, among those not read before; every such file is probed from now on.
    pub fn scan_libjvm(&mut self, first: bool) -> Vec<libjvm::MapsLibjvm> {
        self.libjvm.scan(&mut self.ebpf, first)
    }

    /// What recognising JVMs by their `libjvm.so` has cost and found.
    pub fn libjvm_stats(&self) -> libjvm::LibjvmStats {
        self.libjvm.stats()
    }

    /// Starts tracking a process that existed before the programs were attached.
    pub fn track(&mut self, tgid: u32, lineage: Lineage) -> Result<(), SensorError> {
        self.lineage.track(tgid, lineage)
    }

    /// Whether the kernel tracks `tgid` (false if that cannot be read: seeding then tracks it).
    pub fn is_tracked(&mut self, tgid: u32) -> bool {
        self.lineage.is_tracked(tgid).unwrap_or(false)
    }

    /// Done seeding for now: gives back the memory used to write the lineage table.
    pub fn seeded(&mut self) {
        self.lineage.unmap();
    }

    /// Allows `programs` (absolute paths or basenames) in one JVM's lineage.
    pub fn allow_for_jvm(&mut self, jvm_tgid: u32, programs: &[String]) -> Result<(), SensorError> {
        for p in programs {
            self.allow
                .insert(encode::allow_key(jvm_tgid, p), 1, 0)
                .map_err(map_err("EXEC_ALLOW"))?;
        }
        Ok(())
    }

    /// Starts inspecting the packets of `jvm`'s cgroup (once per JVM; see `inspect_cgroup`).
    pub fn inspect_jvm(&mut self, jvm: ProcessKey, cgroup: &str) -> Result<(), SensorError> {
        if self.inspected_jvms.contains_key(&jvm) {
            return Ok(());
        }
        self.inspect_cgroup(cgroup)?;
        self.inspected_jvms.insert(jvm, cgroup.to_owned());
        Ok(())
    }

    /// The JVMs whose cgroups are inspected on their account.
    pub fn inspected_jvm_keys(&self) -> impl Iterator<Item = ProcessKey> + '_ {
        self.inspected_jvms.keys().copied()
    }

    /// `jvm` exited: its cgroup no longer needs inspecting on its account.
    pub fn uninspect_jvm(&mut self, jvm: ProcessKey) {
        if let Some(cgroup) = self.inspected_jvms.remove(&jvm) {
            self.uninspect_cgroup(&cgroup);
        }
    }

    /// Inspects the first payload of sockets in `cgroup` (a cgroup v2 path such as
    /// `/system.slice/app.service`): called for every JVM, counted per cgroup.
    fn inspect_cgroup(&mut self, cgroup: &str) -> Result<(), SensorError> {
        if let Some((_, users)) = self.inspected.get_mut(cgroup) {
            *users += 1;
            return Ok(());
        }
        let dir = self.cgroup_mount.join(cgroup.trim_start_matches('/'));
        let file = std::fs::File::open(&dir).map_err(|_| SensorError::BadScope {
            path: dir.clone(),
            mount: self.cgroup_mount.clone(),
        })?;
        let mut links = Vec::new();
        for (name, direction) in PACKET_PROGRAMS {
            let attached = self
                .ebpf
                .program_mut(name)
                .and_then(|p| <&mut CgroupSkb>::try_from(p).ok())
                .ok_or(SensorError::MissingProgram { name })
                .and_then(|prog| {
                    prog.attach(&file, direction, CgroupAttachMode::Single)
                        .map_err(|e| program_error(name, "attach", e))
                });
            match attached {
                Ok(link) => links.push((name, link)),
                Err(e) => {
                    self.detach_links(cgroup, links);
                    return Err(e);
                }
            }
        }
        self.inspected.insert(cgroup.to_owned(), (links, 1));
        Ok(())
    }

    fn detach_links(&mut self, cgroup: &str, links: Vec<(&'static str, CgroupSkbLinkId)>) {
        for (name, link) in links {
            let prog: Option<&mut CgroupSkb> =
                self.ebpf.program_mut(name).and_then(|p| p.try_into().ok());
            if let Some(prog) = prog {
                if let Err(e) = prog.detach(link) {
                    tracing::warn!("detaching `{name}` from {cgroup}: {e}");
                }
            }
        }
    }

    /// A JVM in `cgroup` is gone; detaches the payload program when it was the last.
    fn uninspect_cgroup(&mut self, cgroup: &str) {
        let Some((_, users)) = self.inspected.get_mut(cgroup) else {
            return;
        };
        *users -= 1;
        if *users > 0 {
            return;
        }
        let Some((links, _)) = self.inspected.remove(cgroup) else {
            return;
        };
        self.detach_links(cgroup, links);
    }

    /// Cgroups whose sockets' payloads are inspected now.
    pub fn inspected_cgroups(&self) -> usize {
        self.inspected.len()
    }

    /// Quarantines a JVM's lineage: from now on it may only reach the allowlist.
    pub fn quarantine(&mut self, jvm: ProcessKey) -> Result<(), SensorError> {
        self.quarantine
            .insert(jvm.tgid, jvm.start_ns, 0)
            .map_err(map_err("QUARANTINE"))
    }

    /// Whether the kernel holds `jvm` in quarantine.
    pub fn is_quarantined(&self, jvm: ProcessKey) -> bool {
        self.quarantine
            .get(&jvm.tgid, 0)
            .is_ok_and(|start| start == jvm.start_ns)
    }

    /// Installs egress allowlist entries (a JVM's app rules, or the global ones).
    pub fn allow_net(&mut self, entries: &[(NetKeyPrefix, NetAllow)]) -> Result<(), SensorError> {
        for (key, value) in entries {
            self.net_allow
                .insert(&key.trie_key(), *value, 0)
                .map_err(map_err("NET_ALLOW"))?;
        }
        Ok(())
    }

    /// Puts the `new` policy in the kernel in place of `old`, without detaching anything: the
    /// lookup maps, the `CONFIG` record (mode, blocking flags), and the global egress
    /// allowlist (with the host's `resolvers`). Per-JVM entries are the caller's (see
    /// [`Sensors::allow_for_jvm`], [`Sensors::replace_net`]).
    pub fn apply_policy(
        &mut self,
        old: &Policy,
        new: &Policy,
        scope: &Scope,
        resolvers: &[std::net::IpAddr],
    ) -> Result<(), SensorError> {
        let global_old = encode::global_net_entries(old, resolvers).map_err(SensorError::Policy)?;
        let global_new = encode::global_net_entries(new, resolvers).map_err(SensorError::Policy)?;
        // The CONFIG flag below turns the probes on and off at once; what is attached
        // (libc's dlopen, the libjvm.so files found at start) is decided at start.
        self.libjvm.set_enabled(new.jvm.recognise_libjvm);
        if new.jvm.recognise_libjvm && !self.libjvm.loaded()
            || new.jvm.libjvm_paths != old.jvm.libjvm_paths
        {
            tracing::warn!(
                "jvm.recognise_libjvm or jvm.libjvm_paths changed: the libjvm.so probes are \
                 attached at start, restart the daemon for the change to take full effect"
            );
        }
        encode::sync_policy_maps(
            &mut self.ebpf,
            Some(&mut self.allow),
            &encode::PolicyMaps::of(old),
            &encode::PolicyMaps::of(new),
        )?;
        Array::<_, Config>::try_from(map(&mut self.ebpf, "CONFIG")?)
            .map_err(map_err("CONFIG"))?
            .set(0, encode::config(new, scope), 0)
            .map_err(map_err("CONFIG"))?;
        self.replace_net(&global_old, &global_new)
    }

    /// Replaces entries `old` by `new`: the new ones go in first, then the old keys that
    /// are not among them come out, so no lookup in between misses an entry both allow.
    pub fn replace_net(
        &mut self,
        old: &[(NetKeyPrefix, NetAllow)],
        new: &[(NetKeyPrefix, NetAllow)],
    ) -> Result<(), SensorError> {
        self.allow_net(new)?;
        for (key, _) in old {
            if !new.iter().any(|(k, _)| k == key) {
                let _ = self.net_allow.remove(&key.trie_key());
            }
        }
        Ok(())
    }

    /// Removes a JVM's own egress entries and quarantine (when it exits).
    pub fn forget_jvm_net(&mut self, jvm_tgid: u32, entries: &[(NetKeyPrefix, NetAllow)]) {
        for (key, _) in entries {
            let _ = self.net_allow.remove(&key.trie_key());
        }
        let _ = self.quarantine.remove(&jvm_tgid);
    }

    /// Removes a JVM's own allow entries (when it exits).
    pub fn forget_jvm(&mut self, jvm_tgid: u32, programs: &[String]) {
        for p in programs {
            // Already absent is fine: entries are per JVM and removed once.
            let _ = self.allow.remove(&encode::allow_key(jvm_tgid, p));
        }
    }
}

/// Refuses to start without a capability the programs need; names the ones whose absence
/// only degrades the work.
fn check_capabilities() -> Result<(), SensorError> {
    use privileges::{describe, CapSet, Need};
    // capget cannot fail for our own thread; if it did, let the kernel's refusals speak.
    let Some(held) = CapSet::current() else {
        return Ok(());
    };
    let missing = held.missing();
    let (fatal, degraded): (Vec<_>, Vec<_>) = missing.iter().partition(|r| r.need == Need::Start);
    if !fatal.is_empty() {
        return Err(SensorError::MissingCapabilities {
            missing: describe(&fatal),
        });
    }
    if !degraded.is_empty() {
        tracing::warn!("running without {}", describe(&degraded));
    }
    Ok(())
}

/// What the verifier writes when it refuses a program. aya loads with the log off and
/// only asks again, with a log, after a refusal. The instruction-level trace (`DEBUG`) of
/// a large program runs to hundreds of MiB: older kernels (before 6.4) keep its *start*
/// and fail with ENOSPC once the buffer is full, hiding the reason at its end. `STATS`
/// alone gives the verifier's error messages and its statistics, a few lines on every
/// kernel; the full trace only when asked for with `DETECTOR_LOG=debug`.
fn verifier_log_level() -> aya::VerifierLogLevel {
    if tracing::enabled!(tracing::Level::DEBUG) {
        aya::VerifierLogLevel::DEBUG | aya::VerifierLogLevel::STATS
    } else {
        aya::VerifierLogLevel::STATS
    }
}

fn program_error(
    name: &'static str,
    stage: &'static str,
    error: aya::programs::ProgramError,
) -> SensorError {
    let reason = match &error {
        aya::programs::ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = verifier_log.to_string();
            tracing::debug!("verifier log of `{name}`:\n{log}");
            format!("{io_error}; verifier: {}", verifier_verdict(&log))
        }
        other => {
            // The kernel's errno is in the source chain, which `Display` leaves out.
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            text
        }
    };
    SensorError::Program {
        name,
        stage,
        reason,
    }
}

/// The verifier's reason for refusing a program: the last lines of its log before the
/// statistics it always ends with, on one line.
pub fn verifier_verdict(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let stats_at = lines
        .iter()
        .position(|l| l.starts_with("verification time"))
        .unwrap_or(lines.len());
    let mut verdict: Vec<&str> = lines[..stats_at]
        .iter()
        .rev()
        .take(2)
        .rev()
        .copied()
        .collect();
    if let Some(processed) = lines.iter().find(|l| l.starts_with("processed ")) {
        verdict.push(processed);
    }
    if verdict.is_empty() {
        return "no verifier output".to_owned();
    }
    verdict.join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_counts_cover_every_kind() {
        let loss = LossCounts {
            exec: 1,
            fork: 2,
            exit: 3,
            connect: 4,
            payload: 5,
            inbound: 7,
            lineage: 6,
        };
        assert_eq!(loss.total(), 28);
        let names: Vec<&str> = loss.named().iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            ["exec", "fork", "exit", "connect", "payload", "inbound", "lineage"]
        );
        assert_eq!(loss.since(&loss).total(), 0);
    }

    #[test]
    fn verifier_verdict_keeps_the_reason_and_the_budget() {
        let log = "0: R1=ctx() R10=fp0\n108: (7b) *(u64 *)(r10 -200) = r7\n109: (4f) r7 |= r9\nR7 pointer |= pointer prohibited\nverification time 1129 usec\nstack depth 280+0\nprocessed 273 insns (limit 1000000) max_states_per_insn 1\n";
        assert_eq!(
            verifier_verdict(log),
            "109: (4f) r7 |= r9 | R7 pointer |= pointer prohibited | processed 273 insns (limit 1000000) max_states_per_insn 1"
        );
        let too_large = "1827: (15) if r0 == 0x2f goto pc-19 BPF program is too large. Processed 1000001 insn\nverification time 2382017 usec\nprocessed 1000001 insns (limit 1000000)\n";
        assert!(verifier_verdict(too_large).contains("too large"));
        assert_eq!(verifier_verdict(""), "no verifier output");
    }
}
