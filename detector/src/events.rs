//! Typed events: what the kernel programs saw, decoded (see `decode`), and what
//! `detector run --record` writes and `detector replay` reads, one JSON object per line.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::policy::{NetProtocol, ProgramClass};

/// A task as the kernel saw it when the event happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Thread id.
    pub pid: u32,
    /// Process id.
    pub tgid: u32,
    /// Parent's process id.
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    /// Process start, ns since boot (what `/proc/PID/stat` field 22 counts in ticks).
    pub start_ns: u64,
    /// Cgroup v2 id.
    pub cgroup_id: u64,
    pub comm: String,
}

/// The JVM a process descends from, as the kernel tracked it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LineageRef {
    pub jvm_tgid: u32,
    pub jvm_start_ns: u64,
    /// 0: the JVM itself.
    pub depth: u32,
}

impl LineageRef {
    /// The JVM's identity: a tgid is reused, a tgid with its start time is not.
    pub fn jvm(&self) -> ProcessKey {
        ProcessKey {
            tgid: self.jvm_tgid,
            start_ns: self.jvm_start_ns,
        }
    }
}

/// A process's identity across PID reuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProcessKey {
    pub tgid: u32,
    pub start_ns: u64,
}

/// A program was executed by a JVM or inside a JVM's lineage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exec {
    /// ns since boot.
    pub time_ns: u64,
    pub task: Task,
    pub lineage: LineageRef,
    /// The program is a JVM launcher (the start of a lineage).
    pub is_jvm: bool,
    /// The path passed to execve.
    pub filename: String,
    /// A `#!` script's interpreter, when it differs from `filename`.
    pub interp: Option<String>,
    pub argv: Vec<String>,
    /// `argv` was cut by the kernel's capture limit.
    pub argv_truncated: bool,
    /// The file executed was an anonymous memory file.
    pub memfd: bool,
    /// What the kernel classified the program as.
    pub kernel_class: Option<ProgramClass>,
    /// The kernel found an allowlist entry for it.
    pub kernel_allowed: bool,
    /// The kernel killed it before its first instruction.
    pub killed: bool,
    /// The kernel tried to kill it and could not.
    pub kill_failed: bool,
}

/// A process in a JVM's lineage created a child process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fork {
    pub time_ns: u64,
    pub child: Task,
    pub lineage: LineageRef,
}

/// A process in a JVM's lineage ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    pub time_ns: u64,
    pub task: Task,
    pub lineage: LineageRef,
    /// Wait status: exit status << 8, or the terminating signal.
    pub exit_code: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// A process in a JVM's lineage connected (or sent a datagram) somewhere the allowlist
/// does not cover, or was denied doing so.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connect {
    pub time_ns: u64,
    /// The caller (no parent or start time: the socket hooks cannot read them).
    pub task: Task,
    pub lineage: LineageRef,
    /// Destination; IPv4-mapped IPv6 addresses are given as IPv4.
    pub dst: IpAddr,
    pub port: u16,
    pub transport: Transport,
    /// `sendto()` on an unconnected socket rather than `connect()`.
    pub sendmsg: bool,
    /// What the destination port is configured as.
    pub port_protocol: Option<NetProtocol>,
    /// Denied in the kernel: the call failed with EPERM.
    pub blocked: bool,
    /// The JVM's lineage was quarantined.
    pub quarantined: bool,
    /// An any-port allowlist entry covered the address (reported only because the port is
    /// LDAP or RMI).
    pub allowed_any_port: bool,
    /// Socket cookie (ties a later payload to this connect).
    pub cookie: u64,
}

/// The first payload of a JVM socket looked like LDAP, JRMP or DNS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub time_ns: u64,
    /// Process that connected the socket.
    pub tgid: u32,
    pub lineage: LineageRef,
    pub cookie: u64,
    pub dst: IpAddr,
    pub port: u16,
    pub transport: Transport,
    pub protocol: NetProtocol,
    /// The socket's packets are dropped from this one on.
    pub blocked: bool,
    /// The start of the payload, as hex.
    #[serde(with = "hex_bytes")]
    pub sample: Vec<u8>,
}

/// Byte strings as lower-case hex in JSON: compact and readable in recordings.
mod hex_bytes {
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        if text.len() % 2 != 0 {
            return Err(D::Error::custom("odd number of hex digits"));
        }
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(D::Error::custom))
            .collect()
    }
}

/// What the inbound sensor saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboundKind {
    /// The start of a lookup string in a request the JVM received.
    Probe,
    /// Java class bytes on a connection the JVM made.
    Class,
}

/// Bytes that arrived at a JVM's cgroup: a possible JNDI probe, or class bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inbound {
    pub time_ns: u64,
    pub kind: InboundKind,
    /// For class bytes: who made the connection (probes are attributed by cgroup).
    pub lineage: Option<LineageRef>,
    pub tgid: u32,
    /// Cgroup v2 id of the receiving socket.
    pub cgroup_id: u64,
    pub cookie: u64,
    pub remote: IpAddr,
    pub remote_port: u16,
    pub local_port: u16,
    /// The packet was dropped (and the connection's later ones will be).
    pub blocked: bool,
    /// Where the match starts in `sample`.
    pub match_at: u32,
    #[serde(with = "hex_bytes")]
    pub sample: Vec<u8>,
}

/// Everything the sensors report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    Exec(Exec),
    Fork(Fork),
    Exit(Exit),
    Connect(Connect),
    Payload(Payload),
    Inbound(Inbound),
}

impl Event {
    /// When it happened, ns since boot.
    pub fn time_ns(&self) -> u64 {
        match self {
            Event::Exec(e) => e.time_ns,
            Event::Fork(e) => e.time_ns,
            Event::Exit(e) => e.time_ns,
            Event::Connect(e) => e.time_ns,
            Event::Payload(e) => e.time_ns,
            Event::Inbound(e) => e.time_ns,
        }
    }
}
