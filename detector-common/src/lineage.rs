//! The lineage table the sched programs maintain and the daemon seeds: which JVM a process
//! descends from.

use bytemuck::{Pod, Zeroable};
/// Slots of the direct-mapped lineage table (`LINEAGE`), indexed by `tgid & (LINEAGE_SLOTS - 1)`.
///
/// Why not a hash map: every fork, exec, exit, connect and sendmsg on the host asks "is this
/// process in a JVM lineage?". A slot indexed by the tgid answers with one inlined array
/// access that usually hits the cache (tgids are handed out in sequence), where a hash
/// lookup costs a bucket walk into cold memory — measured at ~300 ns per lookup here. Two
/// tracked tgids that share a slot are rare (they are `LINEAGE_SLOTS` apart); the second
/// goes to `LINEAGE_OVERFLOW` and the slot counts it in `overflow`.
pub const LINEAGE_SLOTS: u32 = 1 << 16;

/// Lines of the tracked-count filter (`TRACKED`): each a cache line of 16 counters, and
/// counter `tgid & (16 * TRACKED_LINES - 1)` counts the tracked tgids that map to it.
///
/// Why a second array in front of `LINEAGE`: the question is asked for every process on
/// the host, and right after fork the new tgid's 32-byte slot is a cache miss (~150 ns
/// measured at exec). Sixteen counters per cache line make consecutive tgids share a line,
/// so the answer "not tracked" almost always comes from cache.
pub const TRACKED_LINES: u32 = 1 << 14;

/// Counters per `TRACKED` line.
pub const TRACKED_LANES: u32 = 16;
/// Entries of the overflow hash map for tgids whose slot is taken.
pub const LINEAGE_OVERFLOW_ENTRIES: u32 = 16384;

/// Where `tgid` is counted in `TRACKED`: (line, lane).
#[inline(always)]
pub fn tracked_index(tgid: u32) -> (u32, usize) {
    (
        (tgid / TRACKED_LANES) & (TRACKED_LINES - 1),
        (tgid % TRACKED_LANES) as usize,
    )
}

/// `BPF_F_MMAPABLE`: the daemon maps the lineage table to update it with atomic
/// instructions, as the kernel programs do.
pub const BPF_F_MMAPABLE: u32 = 1 << 10;

/// Which JVM a process descends from: the value of the `LINEAGE` map, keyed by tgid.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Lineage {
    /// Thread-group id of the JVM at the root of this lineage.
    pub jvm_tgid: u32,
    /// 0 for the JVM itself, 1 for its children, and so on.
    pub depth: u32,
    /// The JVM's start time (ns since boot, `task->start_boottime`): with `jvm_tgid` it
    /// names the JVM even after its PID is reused.
    pub jvm_start_ns: u64,
}

/// One slot of the lineage table (`LINEAGE`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct LineageSlot {
    /// The tracked process whose lineage this is; 0 when the slot is free.
    pub tgid: u32,
    /// Explicit padding.
    pub _pad: u32,
    /// Tracked processes of this slot kept in `LINEAGE_OVERFLOW` instead (changed only with
    /// atomic adds, by the kernel and the daemon alike; 64 bits because that is the atomic
    /// width the eBPF target offers).
    pub overflow: u64,
    /// The lineage of `tgid`.
    pub lineage: Lineage,
}
