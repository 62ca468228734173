//! Ring-buffer records → typed [`Event`]s. The only place that reinterprets kernel bytes,
//! and so the only `unsafe` in the pipeline.

use std::{
    mem::size_of,
    net::{IpAddr, Ipv6Addr},
};

use detector_common as kernel;

use crate::{
    events::{Connect, Event, Exec, Exit, Fork, Inbound, InboundKind, LineageRef, Payload, Task},
    vocab::{JvmRecognition, NetProtocol, ProgramClass, Transport},
};

/// Why a record could not be decoded. Counted and logged by the daemon, never silent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than its header says it must be: a kernel/daemon version mismatch.
    #[error("{kind} record of {len} bytes, expected {expected}")]
    Short {
        /// Event kind name.
        kind: &'static str,
        /// Bytes received.
        len: usize,
        /// Bytes the layout needs.
        expected: usize,
    },
    /// An event kind this daemon does not know.
    #[error("unknown event kind {kind} ({len} bytes)")]
    UnknownKind {
        /// The kind number.
        kind: u32,
        /// Bytes received.
        len: usize,
    },
    /// A protocol number the kernel programs should never produce.
    #[error("{kind} record with unknown protocol {protocol}")]
    UnknownProtocol {
        /// Event kind name.
        kind: &'static str,
        /// The protocol number.
        protocol: u32,
    },
    /// A class number the kernel programs should never produce.
    #[error("exec record with unknown program class {class}")]
    UnknownClass {
        /// The class number.
        class: u32,
    },
}

/// Copies a `T` out of `bytes`, which must be at least `size_of::<T>()` long.
fn read<T: Copy>(bytes: &[u8], kind: &'static str) -> Result<T, DecodeError> {
    if bytes.len() < size_of::<T>() {
        return Err(DecodeError::Short {
            kind,
            len: bytes.len(),
            expected: size_of::<T>(),
        });
    }
    // SAFETY: the length is checked above; `T` is one of the `#[repr(C)]` plain-data types
    // of detector-common, for which every bit pattern is valid; read_unaligned because
    // ring-buffer records are only 8-byte aligned and we make no assumption.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// Decodes one ring-buffer record.
pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    let header: kernel::EventHeader = read(bytes, "header")?;
    match header.kind {
        kernel::EVENT_EXEC => {
            decode_exec(&read::<kernel::ExecEvent>(bytes, "exec")?).map(Event::Exec)
        }
        kernel::EVENT_FORK => {
            let ev: kernel::ForkEvent = read(bytes, "fork")?;
            Ok(Event::Fork(Fork {
                time_ns: ev.header.time_ns,
                child: task(&ev.child),
                lineage: lineage(&ev.lineage),
            }))
        }
        kernel::EVENT_EXIT => {
            let ev: kernel::ExitEvent = read(bytes, "exit")?;
            Ok(Event::Exit(Exit {
                time_ns: ev.header.time_ns,
                task: task(&ev.task),
                lineage: lineage(&ev.lineage),
                exit_code: ev.exit_code,
            }))
        }
        kernel::EVENT_CONNECT => {
            decode_connect(&read::<kernel::ConnectEvent>(bytes, "connect")?).map(Event::Connect)
        }
        kernel::EVENT_INBOUND => {
            decode_inbound(&read::<kernel::InboundEvent>(bytes, "inbound")?).map(Event::Inbound)
        }
        kernel::EVENT_PAYLOAD => {
            decode_payload(&read::<kernel::PayloadEvent>(bytes, "payload")?).map(Event::Payload)
        }
        kind => Err(DecodeError::UnknownKind {
            kind,
            len: bytes.len(),
        }),
    }
}

fn decode_exec(ev: &kernel::ExecEvent) -> Result<Exec, DecodeError> {
    let has = |flag: u32| ev.flags & flag != 0;
    let kernel_class = match ev.class {
        kernel::CLASS_NONE => None,
        class => Some(ProgramClass::from_code(class).ok_or(DecodeError::UnknownClass { class })?),
    };
    let interp = (ev.interp_len > 0).then(|| text(&ev.interp, ev.interp_len));
    Ok(Exec {
        time_ns: ev.header.time_ns,
        task: task(&ev.task),
        lineage: lineage(&ev.lineage),
        is_jvm: has(kernel::EXEC_F_JVM),
        recognised_by: JvmRecognition::from_code(ev.recognised_by),
        filename: text(&ev.filename, ev.filename_len),
        interp,
        argv: split_args(&ev.args, ev.args_len),
        argv_truncated: has(kernel::EXEC_F_ARGS_TRUNCATED),
        memfd: has(kernel::EXEC_F_MEMFD),
        kernel_class,
        kernel_allowed: has(kernel::EXEC_F_ALLOWED),
        killed: has(kernel::EXEC_F_KILLED),
        kill_failed: has(kernel::EXEC_F_KILL_FAILED),
    })
}

/// The destination: IPv4 when the kernel says so (also for IPv4-mapped IPv6).
fn address(addr: &[u8; 16], flags: u32) -> IpAddr {
    let v6 = Ipv6Addr::from(*addr);
    match v6.to_ipv4_mapped() {
        Some(v4) if flags & kernel::NET_F_V4 != 0 => IpAddr::V4(v4),
        _ => IpAddr::V6(v6),
    }
}

fn transport(t: u32) -> Transport {
    if t == kernel::TRANSPORT_UDP {
        Transport::Udp
    } else {
        Transport::Tcp
    }
}

fn decode_connect(ev: &kernel::ConnectEvent) -> Result<Connect, DecodeError> {
    let port_protocol = match ev.port_class {
        kernel::PROTO_NONE => None,
        protocol => Some(
            NetProtocol::from_code(protocol).ok_or(DecodeError::UnknownProtocol {
                kind: "connect",
                protocol,
            })?,
        ),
    };
    Ok(Connect {
        time_ns: ev.header.time_ns,
        task: task(&ev.task),
        lineage: lineage(&ev.lineage),
        dst: address(&ev.addr, ev.flags),
        port: ev.port,
        transport: transport(ev.transport),
        sendmsg: ev.hook == kernel::HOOK_SENDMSG,
        port_protocol,
        blocked: ev.flags & kernel::NET_F_BLOCKED != 0,
        quarantined: ev.flags & kernel::NET_F_QUARANTINED != 0,
        allowed_any_port: ev.flags & kernel::NET_F_ALLOWED != 0,
        cookie: ev.cookie,
    })
}

fn decode_payload(ev: &kernel::PayloadEvent) -> Result<Payload, DecodeError> {
    let protocol = NetProtocol::from_code(ev.class).ok_or(DecodeError::UnknownProtocol {
        kind: "payload",
        protocol: ev.class,
    })?;
    let len = (ev.sample_len as usize).min(kernel::SAMPLE_LEN);
    Ok(Payload {
        time_ns: ev.header.time_ns,
        tgid: ev.tgid,
        lineage: lineage(&ev.lineage),
        cookie: ev.cookie,
        dst: address(&ev.addr, ev.flags),
        port: ev.port,
        transport: transport(ev.transport),
        protocol,
        blocked: ev.flags & kernel::NET_F_BLOCKED != 0,
        sample: ev.sample[..len].to_vec(),
    })
}

fn decode_inbound(ev: &kernel::InboundEvent) -> Result<Inbound, DecodeError> {
    let kind = match ev.kind {
        kernel::INBOUND_PROBE => InboundKind::Probe,
        kernel::INBOUND_CLASS => InboundKind::Class,
        protocol => {
            return Err(DecodeError::UnknownProtocol {
                kind: "inbound",
                protocol,
            })
        }
    };
    let len = (ev.sample_len as usize).min(kernel::INBOUND_SAMPLE_LEN);
    Ok(Inbound {
        time_ns: ev.header.time_ns,
        kind,
        lineage: (kind == InboundKind::Class).then(|| lineage(&ev.lineage)),
        tgid: ev.tgid,
        cgroup_id: ev.cgroup_id,
        cookie: ev.cookie,
        remote: address(&ev.remote_addr, ev.flags),
        remote_port: ev.remote_port,
        local_port: ev.local_port,
        blocked: ev.flags & kernel::NET_F_BLOCKED != 0,
        match_at: ev.match_at,
        offset: ev.offset,
        request: ev.request,
        cut: ev.flags & kernel::INBOUND_F_CUT != 0,
        continued: ev.flags & kernel::INBOUND_F_CONTINUED != 0,
        sample: ev.sample[..len].to_vec(),
    })
}

fn task(t: &kernel::TaskInfo) -> Task {
    Task {
        pid: t.pid,
        tgid: t.tgid,
        ppid: t.ppid,
        uid: t.uid,
        gid: t.gid,
        start_ns: t.start_ns,
        cgroup_id: t.cgroup_id,
        comm: text(&t.comm, t.comm.len() as u32),
    }
}

fn lineage(l: &kernel::Lineage) -> LineageRef {
    LineageRef {
        jvm_tgid: l.jvm_tgid,
        jvm_start_ns: l.jvm_start_ns,
        depth: l.depth,
    }
}

/// The bytes up to `len` (and the first NUL), as text; invalid UTF-8 is replaced, not dropped.
fn text(buf: &[u8], len: u32) -> String {
    let bytes = &buf[..(len as usize).min(buf.len())];
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Splits a NUL-separated argument area (as in `/proc/PID/cmdline`).
fn split_args(buf: &[u8], len: u32) -> Vec<String> {
    let bytes = &buf[..(len as usize).min(buf.len())];
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_bytes<T: Copy>(v: &T) -> Vec<u8> {
        // SAFETY: plain-data repr(C) test values; reading their bytes is fine.
        unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
    }

    fn fill<const N: usize>(s: &[u8]) -> [u8; N] {
        let mut a = [0u8; N];
        a[..s.len()].copy_from_slice(s);
        a
    }

    fn task_info(pid: u32) -> kernel::TaskInfo {
        kernel::TaskInfo {
            pid,
            tgid: pid,
            ppid: 1,
            uid: 1000,
            gid: 1000,
            _pad: 0,
            start_ns: 5_000_000_000,
            cgroup_id: 42,
            comm: fill(b"sh"),
        }
    }

    fn exec_event() -> kernel::ExecEvent {
        let args = b"/bin/sh\0-c\0echo hi > /tmp/x\0";
        kernel::ExecEvent {
            header: kernel::EventHeader {
                kind: kernel::EVENT_EXEC,
                cpu: 1,
                time_ns: 7,
            },
            task: task_info(4250),
            lineage: kernel::Lineage {
                jvm_tgid: 4242,
                depth: 2,
                jvm_start_ns: 3,
            },
            flags: kernel::EXEC_F_KILLED | kernel::EXEC_F_MEMFD,
            class: kernel::CLASS_SHELL,
            filename_len: 7,
            interp_len: 0,
            args_len: args.len() as u32,
            recognised_by: kernel::JVM_BY_NONE,
            filename: fill(b"/bin/sh"),
            interp: [0; kernel::PATH_LEN],
            args: fill(args),
        }
    }

    #[test]
    fn decodes_exec() {
        let Event::Exec(e) = decode(&as_bytes(&exec_event())).expect("decodes") else {
            panic!("not an exec event");
        };
        assert_eq!(e.filename, "/bin/sh");
        assert_eq!(e.argv, ["/bin/sh", "-c", "echo hi > /tmp/x"]);
        assert_eq!(e.task.comm, "sh");
        assert_eq!(e.lineage.jvm_tgid, 4242);
        assert_eq!(e.lineage.depth, 2);
        assert_eq!(e.kernel_class, Some(ProgramClass::Shell));
        assert!(e.killed && e.memfd && !e.is_jvm && !e.kill_failed);
        assert_eq!(e.interp, None);
    }

    #[test]
    fn decodes_fork_and_exit() {
        let fork = kernel::ForkEvent {
            header: kernel::EventHeader {
                kind: kernel::EVENT_FORK,
                cpu: 0,
                time_ns: 9,
            },
            child: task_info(77),
            lineage: kernel::Lineage {
                jvm_tgid: 10,
                depth: 1,
                jvm_start_ns: 11,
            },
        };
        match decode(&as_bytes(&fork)) {
            Ok(Event::Fork(f)) => {
                assert_eq!(f.child.tgid, 77);
                assert_eq!(f.lineage.jvm().tgid, 10);
            }
            other => panic!("{other:?}"),
        }
        let exit = kernel::ExitEvent {
            header: kernel::EventHeader {
                kind: kernel::EVENT_EXIT,
                cpu: 0,
                time_ns: 9,
            },
            task: task_info(77),
            lineage: kernel::Lineage {
                jvm_tgid: 10,
                depth: 1,
                jvm_start_ns: 11,
            },
            exit_code: 9,
            _pad: 0,
        };
        assert!(matches!(decode(&as_bytes(&exit)), Ok(Event::Exit(x)) if x.exit_code == 9));
    }

    #[test]
    fn rejects_short_and_unknown_records() {
        let bytes = as_bytes(&exec_event());
        assert!(matches!(
            decode(&bytes[..100]),
            Err(DecodeError::Short {
                kind: "exec",
                len: 100,
                ..
            })
        ));
        assert!(matches!(
            decode(&[1, 2]),
            Err(DecodeError::Short { kind: "header", .. })
        ));
        let mut ev = exec_event();
        ev.header.kind = 99;
        assert!(matches!(
            decode(&as_bytes(&ev)),
            Err(DecodeError::UnknownKind { kind: 99, .. })
        ));
        let mut ev = exec_event();
        ev.class = 77;
        assert_eq!(
            decode(&as_bytes(&ev)),
            Err(DecodeError::UnknownClass { class: 77 })
        );
    }

    fn connect_event(addr: [u8; 16], flags: u32) -> kernel::ConnectEvent {
        kernel::ConnectEvent {
            header: kernel::EventHeader {
                kind: kernel::EVENT_CONNECT,
                cpu: 0,
                time_ns: 5,
            },
            task: task_info(300),
            lineage: kernel::Lineage {
                jvm_tgid: 300,
                depth: 0,
                jvm_start_ns: 1,
            },
            addr,
            port: 1389,
            _pad0: 0,
            transport: kernel::TRANSPORT_TCP,
            hook: kernel::HOOK_CONNECT,
            port_class: kernel::PROTO_LDAP,
            flags,
            _pad1: 0,
            cookie: 77,
        }
    }

    #[test]
    fn decodes_connects_v4_mapped_and_v6() {
        let mut mapped = [0u8; 16];
        mapped[10] = 0xff;
        mapped[11] = 0xff;
        mapped[12..].copy_from_slice(&[127, 0, 0, 1]);
        let ev = connect_event(mapped, kernel::NET_F_V4 | kernel::NET_F_BLOCKED);
        let Ok(Event::Connect(c)) = decode(&as_bytes(&ev)) else {
            panic!("decodes");
        };
        assert_eq!(c.dst, "127.0.0.1".parse::<IpAddr>().expect("ip"));
        assert_eq!(c.port, 1389);
        assert_eq!(c.port_protocol, Some(NetProtocol::Ldap));
        assert!(c.blocked && !c.quarantined && !c.sendmsg);
        assert_eq!(c.transport, Transport::Tcp);

        let mut v6 = [0u8; 16];
        v6[15] = 1;
        let Ok(Event::Connect(c)) = decode(&as_bytes(&connect_event(v6, 0))) else {
            panic!("decodes");
        };
        assert_eq!(c.dst, "::1".parse::<IpAddr>().expect("ip"));
        assert!(!c.blocked);
    }

    #[test]
    fn decodes_payload_sample_to_its_length() {
        let mut sample = [0u8; kernel::SAMPLE_LEN];
        sample[..4].copy_from_slice(b"JRMI");
        let ev = kernel::PayloadEvent {
            header: kernel::EventHeader {
                kind: kernel::EVENT_PAYLOAD,
                cpu: 0,
                time_ns: 5,
            },
            lineage: kernel::Lineage {
                jvm_tgid: 300,
                depth: 1,
                jvm_start_ns: 1,
            },
            tgid: 301,
            class: kernel::PROTO_RMI,
            cookie: 9,
            addr: connect_event([0; 16], 0).addr,
            port: 1099,
            _pad0: 0,
            transport: kernel::TRANSPORT_TCP,
            flags: 0,
            sample_len: 7,
            sample,
        };
        let Ok(Event::Payload(p)) = decode(&as_bytes(&ev)) else {
            panic!("decodes");
        };
        assert_eq!(p.protocol, NetProtocol::Rmi);
        assert_eq!(p.sample, b"JRMI\0\0\0");
        assert_eq!(p.tgid, 301);
        let mut bad = ev;
        bad.class = 42;
        assert_eq!(
            decode(&as_bytes(&bad)),
            Err(DecodeError::UnknownProtocol {
                kind: "payload",
                protocol: 42
            })
        );
    }

    #[test]
    fn keeps_invalid_utf8_and_empty_args() {
        let mut ev = exec_event();
        ev.filename = fill(b"/tmp/\xff\xfe");
        ev.filename_len = 7;
        ev.args_len = 0;
        let Ok(Event::Exec(e)) = decode(&as_bytes(&ev)) else {
            panic!("decodes");
        };
        assert_eq!(e.filename, "/tmp/\u{fffd}\u{fffd}");
        assert!(e.argv.is_empty());
    }
}
