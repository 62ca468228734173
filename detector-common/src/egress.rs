//! The egress programs (cgroup socket-address hooks and the egress packet hook): protocols,
//! network flags, the allowlist trie, the per-socket watch, and the payload classifier.

use crate::event::{EventHeader, TaskInfo};
use crate::lineage::Lineage;
use bytemuck::{Pod, Zeroable};

/// No protocol recognised.
pub const PROTO_NONE: u32 = 0;
/// LDAP (the JNDI `ldap://` and `ldaps://` providers).
pub const PROTO_LDAP: u32 = 1;
/// Java RMI (JRMP, the JNDI `rmi://` provider).
pub const PROTO_RMI: u32 = 2;
/// DNS (a name lookup, or the JNDI `dns://` provider).
pub const PROTO_DNS: u32 = 3;
/// `IPPROTO_TCP`.
pub const TRANSPORT_TCP: u32 = 6;
/// `IPPROTO_UDP`.
pub const TRANSPORT_UDP: u32 = 17;
/// The event comes from `connect()`.
pub const HOOK_CONNECT: u32 = 1;
/// The event comes from `sendmsg()`/`sendto()` on an unconnected datagram socket.
pub const HOOK_SENDMSG: u32 = 2;
/// Denied in the kernel (connect failed with EPERM, or the packet was dropped).
pub const NET_F_BLOCKED: u32 = 1 << 0;
/// The JVM's lineage is quarantined.
pub const NET_F_QUARANTINED: u32 = 1 << 1;
/// The address is IPv4 (in `addr` as an IPv4-mapped IPv6 address), including an
/// IPv4-mapped address given to an IPv6 socket.
pub const NET_F_V4: u32 = 1 << 2;
/// An allowlist entry covered the destination for any port (the payload is still inspected).
pub const NET_F_ALLOWED: u32 = 1 << 3;
/// `Watch::flags`: the socket's first outbound payload has been inspected (its responses
/// may still be).
pub const NET_F_SENT: u32 = 1 << 4;
/// Bytes of a payload sample sent to userspace.
pub const SAMPLE_LEN: usize = 256;
/// `NetAllow::flags`: the entry allows every port (LDAP and RMI ports excepted).
pub const ALLOW_F_ANY_PORT: u32 = 1 << 0;
/// Ports one allowlist entry names at most.
pub const ALLOW_PORTS: usize = 8;

/// `EVENT_CONNECT`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct ConnectEvent {
    pub header: EventHeader,
    pub task: TaskInfo,
    pub lineage: Lineage,
    /// Destination, IPv6 or IPv4-mapped (`NET_F_V4`), network byte order.
    pub addr: [u8; 16],
    /// Destination port, host byte order.
    pub port: u16,
    /// Explicit padding.
    pub _pad0: u16,
    /// `TRANSPORT_*`.
    pub transport: u32,
    /// `HOOK_*`.
    pub hook: u32,
    /// `PROTO_*` the destination port is configured as.
    pub port_class: u32,
    /// `NET_F_*`.
    pub flags: u32,
    /// Explicit padding.
    pub _pad1: u32,
    /// Socket cookie: ties a later `PayloadEvent` to this connect.
    pub cookie: u64,
}

/// `EVENT_PAYLOAD`: emitted from the egress packet path, where the current task may not
/// be the sender, so identity comes from what the connect hook recorded.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct PayloadEvent {
    pub header: EventHeader,
    pub lineage: Lineage,
    /// Process that connected the socket.
    pub tgid: u32,
    /// `PROTO_*` recognised in the payload.
    pub class: u32,
    pub cookie: u64,
    pub addr: [u8; 16],
    pub port: u16,
    pub _pad0: u16,
    pub transport: u32,
    /// `NET_F_*`.
    pub flags: u32,
    /// Bytes used in `sample`.
    pub sample_len: u32,
    /// The start of the payload (after the TCP or UDP header).
    pub sample: [u8; SAMPLE_LEN],
}

/// What the connect hooks remember about a tracked socket until its first payload.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Watch {
    pub lineage: Lineage,
    pub tgid: u32,
    pub transport: u32,
    pub addr: [u8; 16],
    pub port: u16,
    /// Data packets of the response already scanned for class bytes.
    pub scanned: u16,
    /// `NET_F_*` of the connect.
    pub flags: u32,
}

/// Key of the `NET_ALLOW` LPM trie: the JVM (0 = every JVM, big-endian so it is a prefix)
/// followed by the IPv6 or IPv4-mapped address.
pub type NetKey = [u8; 20];

/// Value of the `NET_ALLOW` LPM trie.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct NetAllow {
    /// `ALLOW_F_*`.
    pub flags: u32,
    /// How many of `ports` are used.
    pub nports: u32,
    /// Ports allowed explicitly (LDAP and RMI ports are only ever allowed this way).
    pub ports: [u16; ALLOW_PORTS],
}

/// Which protocol the first bytes of a payload belong to (`PROTO_*`). Written for the
/// verifier (fixed-size buffer, bounded constant indices) and used unchanged by the daemon,
/// so the kernel and userspace can never disagree about a payload.
///
/// - JRMP: the magic `JRMI` every Java RMI connection starts with.
/// - LDAP: a BER SEQUENCE (`0x30`, short or long length) whose first element is the
///   INTEGER message id (1–4 bytes), followed by a bind (`0x60`), search (`0x63`),
///   extended (`0x77`) or unbind (`0x42`) request: what JNDI's LDAP provider sends first.
/// - DNS: a standard query with one question and no answers (over TCP, after the 2-byte
///   length prefix), whose first label is 1–63 bytes.
#[inline(always)]
pub fn classify_payload(sample: &[u8; SAMPLE_LEN], len: usize, udp: bool) -> u32 {
    if len >= 4 && sample[0] == b'J' && sample[1] == b'R' && sample[2] == b'M' && sample[3] == b'I'
    {
        return PROTO_RMI;
    }
    if !udp && len >= 7 && sample[0] == 0x30 {
        let hdr = match sample[1] {
            n if n < 0x80 => 2,
            0x81 => 3,
            0x82 => 4,
            0x83 => 5,
            0x84 => 6,
            _ => 0,
        };
        if hdr != 0 && sample[hdr & 7] == 0x02 {
            let id_len = sample[(hdr + 1) & 7] as usize;
            let tag_at = hdr + 2 + id_len;
            if (1..=4).contains(&id_len) && tag_at < len {
                let tag = sample[tag_at & 15];
                if tag == 0x60 || tag == 0x63 || tag == 0x77 || tag == 0x42 {
                    return PROTO_LDAP;
                }
            }
        }
    }
    let base = if udp { 0 } else { 2 };
    if len >= base + 17 {
        let b = |i: usize| sample[(base + i) & 31];
        let query = b(2) & 0x80 == 0 && (b(2) >> 3) & 0x0f == 0;
        let counts = b(4) == 0
            && b(5) == 1
            && b(6) == 0
            && b(7) == 0
            && b(8) == 0
            && b(9) == 0
            && b(10) == 0
            && b(11) <= 1;
        let label = b(12);
        if query && counts && (1..=63).contains(&label) {
            return PROTO_DNS;
        }
    }
    PROTO_NONE
}
