//! The alert record of the contract (`detector.alert/v1`, `docs/contract.md`) and how
//! a [`Detection`] becomes one. Pure: the daemon supplies the clock, host and tables.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::{
    correlate::{Correlator, Incident},
    process_table::{Process, ProcessTable},
    rules::{Detection, Network},
    sensors::containers::ContainerMeta,
    vocab::{Action, Direction, ProcessKey, ProgramClass, Rule, Severity},
};

// Where the daemon has always found it; written in one place for the whole daemon.
pub use crate::timefmt::rfc3339_micros;

pub const SCHEMA: &str = "detector.alert/v1";

/// Most ancestors listed in an alert.
const MAX_ANCESTRY: usize = 16;

/// One alert, serialised as one JSON line on the stdout/file sinks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub schema: String,
    /// RFC 3339, UTC, microseconds: when the event happened (not when it was reported).
    pub time: String,
    pub host: String,
    pub incident_id: String,
    pub rule: Rule,
    pub severity: Severity,
    pub summary: String,
    pub action: Action,
    /// For `jvm_shell_spawn`: what the executed program was recognised as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jvm: Option<ProcessInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ancestry: Vec<Ancestor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// The Kubernetes pod of the JVM's container: its UID from the cgroup path, its name and
    /// namespace from the container runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<Kubernetes>,
    /// For `exploit_chain`: the incident, stage by stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<IncidentInfo>,
    /// In enforce mode: what the userspace response did (quarantine, kills, freeze), step
    /// by step; absent when it did nothing. The summary says the same in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<crate::response::Outcome>,
    /// For `exploit_chain` in enforce mode: what was captured from /proc before responding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forensics: Option<serde_json::Value>,
    /// For `sensor_loss`: events lost per kind since the previous report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: u32,
    pub start_time_ns: u64,
    pub exe: String,
    pub argv: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
}

/// The `incident` block of `exploit_chain` alerts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentInfo {
    /// Stages seen, in attack order: `probe`, `egress`, `class_download`, `execution`.
    pub stages: Vec<String>,
    pub timeline: Vec<TimelineEntry>,
    /// Addresses, lookups, DNS names: what to search logs and firewalls for.
    pub indicators: Vec<String>,
    /// PIDs involved, the JVM first.
    pub processes: Vec<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub time: String,
    pub rule: Rule,
    pub summary: String,
    pub action: Action,
}

impl IncidentInfo {
    pub fn from_incident(inc: &Incident, clock: &BootClock) -> Self {
        let mut processes: Vec<u32> = vec![inc.jvm.tgid];
        processes.extend(inc.processes.iter().filter(|p| **p != inc.jvm.tgid));
        IncidentInfo {
            stages: inc.stages.iter().map(|s| s.as_str().to_owned()).collect(),
            timeline: inc
                .timeline
                .iter()
                .map(|s| TimelineEntry {
                    time: rfc3339_micros(clock.wall(s.time_ns)),
                    rule: s.rule,
                    summary: s.summary.clone(),
                    action: s.action,
                })
                .collect(),
            indicators: inc.indicators.iter().cloned().collect(),
            processes,
        }
    }
}

/// The `network` block: where a JVM lineage tried to go, and what it spoke.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInfo {
    /// `outbound` (the JVM sent it) or `inbound` (the JVM received it).
    pub direction: String,
    /// `tcp` or `udp`.
    pub transport: String,
    /// Outbound: where to. IPv4-mapped IPv6 addresses are shown as IPv4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_ip: Option<String>,
    /// Outbound: the remote port; inbound: the JVM's own port.
    pub dst_port: u16,
    /// Inbound: who sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    /// `ldap`, `rmi` or `dns`, when recognised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// `port` or `payload`: how the protocol was recognised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recognised_by: Option<String>,
    /// Protocol detail, e.g. an LDAP bind DN or a DNS question.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indicator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_name: Option<String>,
}

impl From<&Network> for NetworkInfo {
    fn from(n: &Network) -> Self {
        let inbound = n.direction == Direction::Inbound;
        NetworkInfo {
            direction: n.direction.as_str().to_owned(),
            transport: n.transport.as_str().to_owned(),
            dst_ip: (!inbound).then(|| n.dst_ip.to_string()),
            dst_port: if inbound {
                n.local_port.unwrap_or(0)
            } else {
                n.dst_port
            },
            src_ip: inbound.then(|| n.dst_ip.to_string()),
            src_port: inbound.then_some(n.dst_port),
            protocol: n.protocol.map(|p| p.as_str().to_owned()),
            recognised_by: n.recognised_by.map(|r| r.as_str().to_owned()),
            indicator: n.indicator.clone(),
            dns_name: n.dns_name.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ancestor {
    pub pid: u32,
    pub exe: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// Cgroup v2 path of the JVM.
    pub cgroup: String,
    /// The container id the cgroup path carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The rest from the container runtime's state (`sensors::containers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kubernetes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// Converts kernel timestamps (ns since boot) to wall-clock time.
#[derive(Clone, Copy, Debug)]
pub struct BootClock {
    /// Wall-clock time at boot, in ns since the Unix epoch.
    boot_epoch_ns: u128,
}

impl BootClock {
    /// From a reading of both clocks taken at (about) the same instant.
    pub fn new(realtime: Duration, boottime: Duration) -> Self {
        Self {
            boot_epoch_ns: realtime.as_nanos().saturating_sub(boottime.as_nanos()),
        }
    }

    /// From a recorded `boot_epoch_ns` (see `engine::Record`).
    pub fn from_boot_epoch_ns(boot_epoch_ns: u64) -> Self {
        Self {
            boot_epoch_ns: u128::from(boot_epoch_ns),
        }
    }

    /// Wall-clock time at boot, ns since the Unix epoch.
    pub fn boot_epoch_ns(&self) -> u64 {
        self.boot_epoch_ns as u64
    }

    pub fn wall(&self, boot_ns: u64) -> SystemTime {
        let ns = self.boot_epoch_ns + u128::from(boot_ns);
        SystemTime::UNIX_EPOCH
            + Duration::new((ns / 1_000_000_000) as u64, (ns % 1_000_000_000) as u32)
    }
}

/// One incident per attacked JVM, for a detection no incident holds: stable across all
/// alerts about it, distinct across hosts and across a reused PID.
pub fn incident_id(host: &str, jvm: ProcessKey) -> String {
    crate::correlate::incident_id(host, jvm, None)
}

/// Reads a container id and a pod UID out of a cgroup path, for the runtimes whose
/// naming we know (Docker, containerd, CRI-O, Podman, kubelet's cgroupfs and systemd drivers).
pub fn container_from_cgroup(cgroup: &str) -> (Container, Option<Kubernetes>) {
    let id = cgroup
        .split(['/', '-', '.', ':'])
        .rev()
        .find(|part| part.len() == 64 && part.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned);
    let pod_uid = cgroup.split('/').find_map(|part| {
        // The last "pod": "kubepods-burstable-pod<uid>.slice" also contains "kubepods".
        let rest = &part[part.rfind("pod")? + 3..];
        let uid = rest.trim_end_matches(".slice").replace('_', "-");
        (uid.len() == 36 && uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')).then_some(uid)
    });
    (
        Container {
            cgroup: cgroup.to_owned(),
            id,
            name: None,
            image: None,
            runtime: None,
        },
        pod_uid.map(|uid| Kubernetes {
            uid: Some(uid),
            ..Kubernetes::default()
        }),
    )
}

/// What an alert needs besides the detection.
#[derive(Debug)]
pub struct AlertContext<'a> {
    pub host: &'a str,
    pub clock: BootClock,
    pub table: &'a ProcessTable,
    pub correlator: &'a Correlator,
}

impl<'a> AlertContext<'a> {
    /// The context of alerts about what `engine` detected.
    pub fn of(host: &'a str, clock: BootClock, engine: &'a crate::engine::Engine) -> Self {
        AlertContext {
            host,
            clock,
            table: engine.table(),
            correlator: engine.correlator(),
        }
    }
}

/// The executable, or failing that (`/proc/PID/exe` is unreadable for some processes,
/// e.g. pid 1 in a sandbox) the program name from its argv.
fn display_exe(p: &Process) -> String {
    if p.exe.is_empty() {
        p.argv.first().cloned().unwrap_or_default()
    } else {
        p.exe.clone()
    }
}

fn process_info(p: &Process, uid: bool) -> ProcessInfo {
    ProcessInfo {
        pid: p.key.tgid,
        start_time_ns: p.key.start_ns,
        exe: display_exe(p),
        argv: p.argv.clone(),
        uid: uid.then_some(p.uid),
    }
}

impl Alert {
    /// The alert for `detection`, made at `time_ns` (ns since boot).
    pub fn from_detection(ctx: &AlertContext<'_>, detection: &Detection, time_ns: u64) -> Alert {
        let table = ctx.table;
        let process = table.get_key(detection.process);
        let jvm = table.get_key(detection.jvm);
        // The root cgroup is the host itself, not a container.
        let (container, kubernetes) = jvm
            .and_then(|j| j.cgroup_path.as_deref())
            .filter(|c| *c != "/")
            .map(container_from_cgroup)
            .unzip();
        let ancestry = table
            .ancestry(detection.process.tgid, MAX_ANCESTRY)
            .into_iter()
            .map(|p| Ancestor {
                pid: p.key.tgid,
                exe: display_exe(p),
            })
            .collect();
        Alert {
            schema: SCHEMA.to_owned(),
            time: rfc3339_micros(ctx.clock.wall(time_ns)),
            host: ctx.host.to_owned(),
            incident_id: if detection.incident_id.is_empty() {
                incident_id(ctx.host, detection.jvm)
            } else {
                detection.incident_id.clone()
            },
            rule: detection.rule,
            severity: detection.severity,
            summary: detection.summary.clone(),
            action: detection.action,
            class: detection.class.map(|c: ProgramClass| c.as_str().to_owned()),
            process: process.map(|p| process_info(p, true)),
            jvm: jvm.map(|p| process_info(p, false)),
            ancestry,
            network: detection.network.as_ref().map(NetworkInfo::from),
            incident: (detection.rule == Rule::ExploitChain)
                .then(|| ctx.correlator.incident(detection.jvm))
                .flatten()
                .map(|inc| IncidentInfo::from_incident(inc, &ctx.clock)),
            response: None,
            forensics: None,
            container,
            kubernetes: kubernetes.flatten(),
            loss: None,
        }
    }

    /// Where the JVM runs, for people: `pod shop/web-0, container app (image shop:1)`,
    /// `container app (image shop:1)`, `container 4b1c9a7e2f6d`, `cgroup /…`; `None` on the host.
    pub fn workload(&self) -> Option<String> {
        let c = self.container.as_ref()?;
        let k = self.kubernetes.as_ref();
        let mut parts = Vec::new();
        match (
            k.and_then(|k| k.namespace.as_ref()),
            k.and_then(|k| k.pod.as_ref()),
        ) {
            (Some(ns), Some(pod)) => parts.push(format!("pod {ns}/{pod}")),
            (None, Some(pod)) => parts.push(format!("pod {pod}")),
            _ => {
                if let Some(uid) = k.and_then(|k| k.uid.as_ref()) {
                    parts.push(format!("pod {uid}"));
                }
            }
        }
        let short = c.id.as_deref().map(|id| id.get(..12).unwrap_or(id));
        match (c.name.as_deref(), short) {
            (Some(name), _) => parts.push(format!("container {name}")),
            (None, Some(id)) => parts.push(format!("container {id}")),
            (None, None) if parts.is_empty() => parts.push(format!("cgroup {}", c.cgroup)),
            (None, None) => {}
        }
        let mut text = parts.join(", ");
        if let Some(image) = &c.image {
            text.push_str(&format!(" (image {image})"));
        }
        Some(text)
    }

    /// Adds what the container runtime says about the JVM's container (name, image,
    /// runtime, pod); the pod UID the runtime gives wins over the cgroup path's.
    pub fn enrich(&mut self, meta: &ContainerMeta) {
        let Some(container) = self.container.as_mut() else {
            return;
        };
        container.name.clone_from(&meta.name);
        container.image.clone_from(&meta.image);
        container.runtime = Some(meta.runtime.as_str().to_owned());
        if let Some(pod) = &meta.pod {
            let k = self.kubernetes.get_or_insert_with(Kubernetes::default);
            k.pod.clone_from(&pod.name);
            k.namespace.clone_from(&pod.namespace);
            if pod.uid.is_some() {
                k.uid.clone_from(&pod.uid);
            }
        }
    }

    /// `sensor_loss`: the kernel could not record some events (`lost` per kind).
    pub fn sensor_loss(host: &str, now: SystemTime, lost: &[(&str, u64)]) -> Alert {
        let total: u64 = lost.iter().map(|(_, n)| n).sum();
        let detail: Vec<String> = lost
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        Alert {
            schema: SCHEMA.to_owned(),
            time: rfc3339_micros(now),
            host: host.to_owned(),
            incident_id: format!("sensor-loss-{host}"),
            rule: Rule::SensorLoss,
            severity: Severity::High,
            summary: format!(
                "kernel sensors dropped {total} events ({}); detections may have been missed",
                detail.join(", ")
            ),
            action: Action::Reported,
            class: None,
            process: None,
            jvm: None,
            ancestry: Vec::new(),
            network: None,
            incident: None,
            response: None,
            forensics: None,
            container: None,
            kubernetes: None,
            loss: Some(serde_json::Value::Object(
                lost.iter()
                    .map(|(k, n)| ((*k).to_owned(), (*n).into()))
                    .collect(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_micros() {
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_767_268_800, 123_456_789);
        assert_eq!(rfc3339_micros(t), "2026-01-01T12:00:00.123456Z");
        assert_eq!(
            rfc3339_micros(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000000Z"
        );
        // A leap day.
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339_micros(t), "2000-02-29T00:00:00.000000Z");
    }

    #[test]
    fn boot_clock_maps_kernel_time_to_wall_time() {
        let clock = BootClock::new(Duration::from_secs(1_000_000), Duration::from_secs(100));
        let t = clock.wall(50_000_000_000);
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH).ok(),
            Some(Duration::from_secs(999_950))
        );
    }

    #[test]
    fn incident_id_is_per_jvm() {
        let a = incident_id(
            "node-1",
            ProcessKey {
                tgid: 1,
                start_ns: 5,
            },
        );
        assert_eq!(
            a,
            incident_id(
                "node-1",
                ProcessKey {
                    tgid: 1,
                    start_ns: 5
                }
            )
        );
        assert_ne!(
            a,
            incident_id(
                "node-1",
                ProcessKey {
                    tgid: 1,
                    start_ns: 6
                }
            )
        );
        assert_ne!(
            a,
            incident_id(
                "node-2",
                ProcessKey {
                    tgid: 1,
                    start_ns: 5
                }
            )
        );
        assert_eq!(a.len(), 16);
    }

    #[test]
    fn container_ids_from_runtime_cgroups() {
        let id = "4b1c9a7e2f6d8b0a3c5e7f9a1b3d5f7e9a0c2e4f6a8b0c1d3e5f7a9b1c3d5e7f";
        let (docker, pod) = container_from_cgroup(&format!("/system.slice/docker-{id}.scope"));
        assert_eq!(docker.id.as_deref(), Some(id));
        assert_eq!(pod, None);
        let (k8s, pod) = container_from_cgroup(&format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0.slice/cri-containerd-{id}.scope"
        ));
        assert_eq!(k8s.id.as_deref(), Some(id));
        assert_eq!(
            pod.and_then(|p| p.uid).as_deref(),
            Some("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
        );
        let (cgroupfs, pod) = container_from_cgroup(&format!(
            "/kubepods/besteffort/pod0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/{id}"
        ));
        assert_eq!(cgroupfs.id.as_deref(), Some(id));
        assert!(pod.is_some());
        let (host, pod) = container_from_cgroup("/user.slice/user-0.slice/session-1.scope");
        assert_eq!((host.id, pod), (None, None));
    }

    #[test]
    fn enrichment_names_the_container_and_its_pod() {
        use crate::sensors::containers::{Pod, Runtime};
        let id = "4b1c9a7e2f6d8b0a3c5e7f9a1b3d5f7e9a0c2e4f6a8b0c1d3e5f7a9b1c3d5e7f";
        let mut alert = Alert::sensor_loss("node-1", SystemTime::UNIX_EPOCH, &[]);
        let meta = ContainerMeta {
            runtime: Runtime::Containerd,
            name: Some("app".to_owned()),
            image: Some("shop:1".to_owned()),
            pod: Some(Pod {
                name: Some("shop-0".to_owned()),
                namespace: Some("prod".to_owned()),
                uid: None,
            }),
        };
        alert.enrich(&meta);
        assert_eq!(alert.container, None, "no container, nothing to enrich");
        let (container, kubernetes) = container_from_cgroup(&format!(
            "/kubepods/besteffort/pod0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/{id}"
        ));
        alert.container = Some(container);
        alert.kubernetes = kubernetes;
        alert.enrich(&meta);
        let json = serde_json::to_value(&alert).expect("serialises");
        assert_eq!(json["container"]["name"], "app");
        assert_eq!(json["container"]["image"], "shop:1");
        assert_eq!(json["container"]["runtime"], "containerd");
        assert_eq!(json["container"]["id"], id);
        assert_eq!(json["kubernetes"]["pod"], "shop-0");
        assert_eq!(json["kubernetes"]["namespace"], "prod");
        assert_eq!(
            json["kubernetes"]["uid"], "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
            "the cgroup's uid stays when the runtime gives none"
        );
        assert_eq!(
            alert.workload().as_deref(),
            Some("pod prod/shop-0, container app (image shop:1)")
        );
        alert.kubernetes = None;
        alert.container.as_mut().expect("set").name = None;
        alert.container.as_mut().expect("set").image = None;
        assert_eq!(alert.workload().as_deref(), Some("container 4b1c9a7e2f6d"));
        alert.container.as_mut().expect("set").id = None;
        assert_eq!(
            alert.workload().as_deref(),
            Some(
                "cgroup /kubepods/besteffort/pod0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/4b1c9a7e2f6d8b0a3c5e7f9a1b3d5f7e9a0c2e4f6a8b0c1d3e5f7a9b1c3d5e7f"
            )
        );
    }

    #[test]
    fn sensor_loss_alert_counts() {
        let a = Alert::sensor_loss("h", SystemTime::UNIX_EPOCH, &[("exec", 3), ("fork", 0)]);
        assert_eq!(a.rule, Rule::SensorLoss);
        assert_eq!(a.severity, Severity::High);
        assert!(
            a.summary.contains("dropped 3 events (3 exec)"),
            "{}",
            a.summary
        );
        let json = serde_json::to_value(&a).expect("serialises");
        assert_eq!(json["rule"], "sensor_loss");
        assert_eq!(json["loss"]["exec"], 3);
        assert!(json.get("process").is_none());
    }
}
