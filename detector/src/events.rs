//! Typed events: what the kernel programs saw, decoded (see `decode`), and what
//! `detector run --record` writes and `detector replay` reads, one JSON object per line.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::vocab::{JvmRecognition, NetProtocol, ProcessKey, ProgramClass, Transport};

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

/// A program was executed by a JVM or inside a JVM's lineage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exec {
    /// ns since boot.
    pub time_ns: u64,
    pub task: Task,
    pub lineage: LineageRef,
    /// The process is a JVM (the start of a lineage): a launcher's exec, or a process that
    /// loaded `libjvm.so`.
    pub is_jvm: bool,
    /// How it was recognised as a JVM (with `is_jvm`). Absent in recordings made before it
    /// existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recognised_by: Option<JvmRecognition>,
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
        super::parse_hex(&text).map_err(D::Error::custom)
    }
}

/// Bytes from lower- or upper-case hex; any other character (multi-byte ones included) is
/// an error naming where it is.
pub(crate) fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    let nibble = |at: usize| -> Result<u8, String> {
        let c = digits[at];
        (c as char)
            .to_digit(16)
            .filter(|_| c.is_ascii())
            .map(|d| d as u8)
            .ok_or_else(|| format!("not a hex digit at byte {at} of the hex string"))
    };
    (0..digits.len())
        .step_by(2)
        .map(|i| Ok(nibble(i)? << 4 | nibble(i + 1)?))
        .collect()
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
    /// Recorded as `inbound`: `kind` is the recording's event tag.
    #[serde(rename = "inbound")]
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
    /// Probes: where `sample` starts in its request head (bytes from the request line).
    #[serde(default)]
    pub offset: u32,
    /// Probes: which request on the connection (0 for the first).
    #[serde(default)]
    pub request: u32,
    /// Probes: the sample stops at the end of its packet inside the head; the lookup may go
    /// on in the next packet's `continued` sample.
    #[serde(default)]
    pub cut: bool,
    /// Probes: the start of a packet that follows a `cut` sample of the same request.
    #[serde(default)]
    pub continued: bool,
    #[serde(with = "hex_bytes")]
    pub sample: Vec<u8>,
}

/// The DNS servers a JVM's resolver uses: its mount namespace's `/etc/resolv.conf`, read
/// from /proc when the JVM starts (or is found running) and again when the file changes.
/// Not a kernel event, but recorded like one so that `replay` judges DNS as `run` did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolvers {
    pub time_ns: u64,
    pub jvm: ProcessKey,
    /// The mount namespace (inode of `/proc/PID/ns/mnt`) the file was read in.
    pub mnt_ns: u64,
    pub servers: Vec<IpAddr>,
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
    Resolvers(Resolvers),
}

impl Event {
    /// Its kind, as recordings tag it (`exec`, `fork`, …) and metrics label it.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Exec(_) => "exec",
            Event::Fork(_) => "fork",
            Event::Exit(_) => "exit",
            Event::Connect(_) => "connect",
            Event::Payload(_) => "payload",
            Event::Inbound(_) => "inbound",
            Event::Resolvers(_) => "resolvers",
        }
    }

    /// When it happened, ns since boot.
    pub fn time_ns(&self) -> u64 {
        match self {
            Event::Exec(e) => e.time_ns,
            Event::Fork(e) => e.time_ns,
            Event::Exit(e) => e.time_ns,
            Event::Connect(e) => e.time_ns,
            Event::Payload(e) => e.time_ns,
            Event::Inbound(e) => e.time_ns,
            Event::Resolvers(e) => e.time_ns,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn task() -> impl Strategy<Value = Task> {
        (
            any::<(u32, u32, u32, u32, u32)>(),
            any::<(u64, u64)>(),
            ".{0,16}",
        )
            .prop_map(
                |((pid, tgid, ppid, uid, gid), (start_ns, cgroup_id), comm)| Task {
                    pid,
                    tgid,
                    ppid,
                    uid,
                    gid,
                    start_ns,
                    cgroup_id,
                    comm,
                },
            )
    }

    fn lineage() -> impl Strategy<Value = LineageRef> {
        any::<(u32, u64, u32)>().prop_map(|(jvm_tgid, jvm_start_ns, depth)| LineageRef {
            jvm_tgid,
            jvm_start_ns,
            depth,
        })
    }

    fn ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from),
        ]
    }

    fn transport() -> impl Strategy<Value = Transport> {
        prop_oneof![Just(Transport::Tcp), Just(Transport::Udp)]
    }

    fn protocol() -> impl Strategy<Value = NetProtocol> {
        prop_oneof![
            Just(NetProtocol::Ldap),
            Just(NetProtocol::Rmi),
            Just(NetProtocol::Dns)
        ]
    }

    fn class() -> impl Strategy<Value = ProgramClass> {
        prop_oneof![
            Just(ProgramClass::Shell),
            Just(ProgramClass::Interpreter),
            Just(ProgramClass::Downloader),
            Just(ProgramClass::WritableDir),
            Just(ProgramClass::Memfd),
        ]
    }

    fn exec() -> impl Strategy<Value = Event> {
        (
            any::<u64>(),
            task(),
            lineage(),
            (".{0,40}", proptest::option::of(".{0,20}")),
            proptest::collection::vec(".{0,12}", 0..4),
            (
                proptest::option::of(class()),
                proptest::option::of(proptest::sample::select(JvmRecognition::ALL)),
            ),
            any::<[bool; 6]>(),
        )
            .prop_map(
                |(
                    time_ns,
                    task,
                    lineage,
                    (filename, interp),
                    argv,
                    (kernel_class, recognised_by),
                    b,
                )| {
                    Event::Exec(Exec {
                        time_ns,
                        task,
                        lineage,
                        is_jvm: b[0],
                        recognised_by,
                        filename,
                        interp,
                        argv,
                        argv_truncated: b[1],
                        memfd: b[2],
                        kernel_class,
                        kernel_allowed: b[3],
                        killed: b[4],
                        kill_failed: b[5],
                    })
                },
            )
    }

    fn network() -> impl Strategy<Value = Event> {
        (
            any::<(u64, u32, u64, u16, u16, u32)>(),
            task(),
            lineage(),
            ip(),
            transport(),
            proptest::option::of(protocol()),
            any::<[bool; 4]>(),
            proptest::collection::vec(any::<u8>(), 0..64),
        )
            .prop_flat_map(
                |(
                    (time_ns, tgid, cookie, port, local_port, match_at),
                    task,
                    lineage,
                    dst,
                    transport,
                    port_protocol,
                    b,
                    sample,
                )| {
                    let connect = Event::Connect(Connect {
                        time_ns,
                        task,
                        lineage,
                        dst,
                        port,
                        transport,
                        sendmsg: b[0],
                        port_protocol,
                        blocked: b[1],
                        quarantined: b[2],
                        allowed_any_port: b[3],
                        cookie,
                    });
                    let payload = Event::Payload(Payload {
                        time_ns,
                        tgid,
                        lineage,
                        cookie,
                        dst,
                        port,
                        transport,
                        protocol: port_protocol.unwrap_or(NetProtocol::Ldap),
                        blocked: b[1],
                        sample: sample.clone(),
                    });
                    let inbound = |kind| {
                        Event::Inbound(Inbound {
                            time_ns,
                            kind,
                            lineage: b[2].then_some(lineage),
                            tgid,
                            cgroup_id: cookie ^ 1,
                            cookie,
                            remote: dst,
                            remote_port: port,
                            local_port,
                            blocked: b[1],
                            match_at,
                            offset: match_at.rotate_left(7),
                            request: port.into(),
                            cut: b[0],
                            continued: b[2] ^ b[1],
                            sample: sample.clone(),
                        })
                    };
                    prop_oneof![
                        Just(connect),
                        Just(payload),
                        Just(inbound(InboundKind::Probe)),
                        Just(inbound(InboundKind::Class)),
                    ]
                },
            )
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            exec(),
            (any::<u64>(), task(), lineage()).prop_map(|(time_ns, child, lineage)| {
                Event::Fork(Fork {
                    time_ns,
                    child,
                    lineage,
                })
            }),
            (any::<(u64, u32)>(), task(), lineage()).prop_map(
                |((time_ns, exit_code), task, lineage)| Event::Exit(Exit {
                    time_ns,
                    task,
                    lineage,
                    exit_code,
                })
            ),
            network(),
            (
                any::<(u64, u32, u64, u64)>(),
                proptest::collection::vec(ip(), 0..4)
            )
                .prop_map(|((time_ns, tgid, start_ns, mnt_ns), servers)| {
                    Event::Resolvers(Resolvers {
                        time_ns,
                        jvm: ProcessKey { tgid, start_ns },
                        mnt_ns,
                        servers,
                    })
                }),
        ]
    }

    proptest! {
        /// What `--record` writes, `replay` reads back unchanged, for every kind of event.
        #[test]
        fn every_event_round_trips_through_a_recording(ev in event()) {
            let line = serde_json::to_string(&ev).expect("serialises");
            let back: Event = serde_json::from_str(&line).expect("reads back");
            prop_assert_eq!(back, ev);
        }

        /// The kind name is the recording's tag.
        #[test]
        fn the_kind_is_the_recorded_tag(ev in event()) {
            let json = serde_json::to_value(&ev).expect("serialises");
            prop_assert_eq!(json["kind"].as_str(), Some(ev.kind()));
        }

        /// Any text in a hex field is an error or bytes, never a panic.
        #[test]
        fn any_hex_text_is_an_error_or_bytes(text in "\\PC{0,12}") {
            let _ = parse_hex(&text);
        }
    }

    #[test]
    fn inbound_events_keep_their_kind_apart_from_the_tag() {
        let line = r#"{"kind":"inbound","time_ns":1,"inbound":"probe","lineage":null,"tgid":0,"cgroup_id":2,"cookie":3,"remote":"127.0.0.1","remote_port":4,"local_port":5,"blocked":false,"match_at":0,"sample":"247b"}"#;
        let ev: Event = serde_json::from_str(line).expect("an inbound event parses");
        assert!(matches!(
            ev,
            Event::Inbound(Inbound {
                kind: InboundKind::Probe,
                ..
            })
        ));
    }

    #[test]
    fn non_ascii_hex_is_an_error_not_a_panic() {
        assert!(parse_hex("é0").is_err());
        assert!(parse_hex("0é").is_err());
        assert!(parse_hex("zz").is_err());
        assert!(parse_hex("abc").is_err());
        assert_eq!(parse_hex("00fF"), Ok(vec![0, 255]));
    }
}
