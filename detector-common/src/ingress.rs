//! The ingress packet program: what a JVM received that looks like a lookup string or a
//! Java class.

use crate::event::EventHeader;
use crate::lineage::Lineage;
use bytemuck::{Pod, Zeroable};

/// `InboundEvent::kind`: a possible JNDI lookup in a request a JVM received.
pub const INBOUND_PROBE: u32 = 1;
/// `InboundEvent::kind`: Java class bytes (`CAFEBABE`) a JVM received on a connection it made.
pub const INBOUND_CLASS: u32 = 2;
/// Bytes of an inbound sample sent to userspace.
pub const INBOUND_SAMPLE_LEN: usize = 512;
/// Bytes of each packet's payload the class scan looks at.
pub const INBOUND_SCAN_LEN: usize = 1024;
/// Data packets of a response a JVM asked for that are scanned for class bytes, at most.
pub const INBOUND_PACKETS: u16 = 4;
/// Bytes of one request head inspected for lookup strings, at most: beyond it the rest of
/// the head is not inspected and counted (`INBOUND_STAT_UNINSPECTED`).
pub const INBOUND_HEAD_MAX: u32 = 64 * 1024;
/// Bytes of a sample sent before the match (room for the header name a lookup sits in).
pub const INBOUND_BEFORE: usize = 64;

/// `InboundEvent::flags` (beside `NET_F_*`): the sample stops at the end of its packet
/// inside the request head, so a lookup in it may go on in the next packet.
pub const INBOUND_F_CUT: u32 = 1 << 8;
/// `InboundEvent::flags`: the sample is the start of a packet that follows a `CUT` sample
/// of the same request (sent whether or not it holds a lookup start).
pub const INBOUND_F_CONTINUED: u32 = 1 << 9;

/// `InboundConn::flags`: the current request head ended (`\r\n\r\n`); what follows is
/// a body until a packet starts with a request line.
pub const CONN_F_ENDED: u32 = 1 << 0;
/// `InboundConn::flags`: the current head went past `INBOUND_HEAD_MAX` (counted once).
pub const CONN_F_OVER: u32 = 1 << 1;
/// `InboundConn::flags`: the last sample was cut at the end of its packet: send the start
/// of the next packet of this request (`INBOUND_F_CONTINUED`).
pub const CONN_F_CONTINUE: u32 = 1 << 2;

/// `INBOUND_STATS` slot: request heads (or parts of packets) not inspected: past
/// `INBOUND_HEAD_MAX`, or past what one packet's scan may take (its tail-call budget).
pub const INBOUND_STAT_UNINSPECTED: u32 = 0;
/// `INBOUND_STATS` slot: samples sent.
pub const INBOUND_STAT_SAMPLES: u32 = 1;
/// Slots of `INBOUND_STATS`.
pub const INBOUND_STATS_SLOTS: u32 = 2;

/// What the ingress program keeps per accepted connection (by socket cookie).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct InboundConn {
    /// Bytes of the current request head seen so far (capped at `INBOUND_HEAD_MAX`).
    pub head_bytes: u32,
    /// Index of the current request on the connection (0 for the first).
    pub request: u32,
    /// `CONN_F_*`.
    pub flags: u32,
    pub _pad: u32,
}

/// `EVENT_INBOUND`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct InboundEvent {
    pub header: EventHeader,
    /// `INBOUND_*`.
    pub kind: u32,
    /// For `INBOUND_CLASS`: the process that made the connection.
    pub tgid: u32,
    /// Cgroup v2 id of the receiving socket (probes are attributed to its JVM by the daemon).
    pub cgroup_id: u64,
    /// For `INBOUND_CLASS`: the lineage of the process that made the connection.
    pub lineage: Lineage,
    /// `NET_F_*` (`NET_F_V4`, `NET_F_BLOCKED`), `INBOUND_F_*`.
    pub flags: u32,
    /// Offset of the match in `sample`.
    pub match_at: u32,
    pub cookie: u64,
    /// The remote end (IPv6 or IPv4-mapped), network byte order.
    pub remote_addr: [u8; 16],
    /// Host byte order.
    pub remote_port: u16,
    /// Host byte order.
    pub local_port: u16,
    /// For probes: where `sample` starts in its request head (bytes from the request line).
    pub offset: u32,
    /// For probes: index of the request on its connection (0 for the first).
    pub request: u32,
    /// Bytes used in `sample`.
    pub sample_len: u32,
    /// Payload bytes from shortly before the match.
    pub sample: [u8; INBOUND_SAMPLE_LEN],
}
