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
/// Bytes of each packet's payload the inbound scan looks at.
pub const INBOUND_SCAN_LEN: usize = 1024;
/// Data packets inspected per connection, at most (per direction of interest).
pub const INBOUND_PACKETS: u16 = 4;

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
    /// `NET_F_*` (`NET_F_V4`, `NET_F_BLOCKED`).
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
    /// Bytes used in `sample`.
    pub sample_len: u32,
    /// Payload bytes from shortly before the match.
    pub sample: [u8; INBOUND_SAMPLE_LEN],
}
