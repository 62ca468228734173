//! The ring buffer's framing, shared by every program: event kinds, the header every record
//! starts with, and the identity of the task that caused it.

use crate::COMM_LEN;
use bytemuck::{Pod, Zeroable};

/// Size of the event ring buffer, in bytes (a power of two, a multiple of the page size):
/// the kernel side declares it, userspace reads its fill level against it.
pub const EVENTS_BYTES: u32 = 4 << 20;

/// A process in a tracked lineage (or a JVM launcher) executed a program.
pub const EVENT_EXEC: u32 = 1;
/// A process in a tracked lineage created a child process (threads are not reported).
pub const EVENT_FORK: u32 = 2;
/// A process in a tracked lineage exited (the whole thread group).
pub const EVENT_EXIT: u32 = 3;
/// A process in a tracked lineage connected a socket or sent a datagram to an address
/// outside the allowlist (or was denied doing so).
pub const EVENT_CONNECT: u32 = 4;
/// The first payload a tracked process sent on a socket looked like LDAP, JRMP or DNS.
pub const EVENT_PAYLOAD: u32 = 5;
/// Bytes arriving at a JVM's cgroup looked like a lookup string (`${`, `%24`, `\u0024`) on
/// an inbound connection, or like a Java class file on a JVM's outbound connection.
pub const EVENT_INBOUND: u32 = 6;
/// Number of slots in the per-CPU loss counter array (indexed by event kind).
pub const EVENT_KINDS: u32 = 7;
/// Slot of the loss counter array that counts processes that could not be added to the
/// lineage map because it was full (their descendants go untracked).
pub const LOSS_LINEAGE_FULL: u32 = 0;

/// Identity and credentials of a task, captured in the kernel when the event happened.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct TaskInfo {
    /// Thread id.
    pub pid: u32,
    /// Process id.
    pub tgid: u32,
    /// Process id of the real parent.
    pub ppid: u32,
    /// Real user id.
    pub uid: u32,
    /// Real group id.
    pub gid: u32,
    /// Explicit padding.
    pub _pad: u32,
    /// Process start time (ns since boot, the thread-group leader's `start_boottime`).
    pub start_ns: u64,
    /// Cgroup v2 id.
    pub cgroup_id: u64,
    /// `task->comm`, NUL-padded.
    pub comm: [u8; COMM_LEN],
}

/// First bytes of every event in the ring buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct EventHeader {
    /// `EVENT_*`.
    pub kind: u32,
    /// CPU the event was captured on.
    pub cpu: u32,
    /// When (ns since boot).
    pub time_ns: u64,
}
