//! The daemon's side of the kernel's lineage table (`LINEAGE` in `detector-ebpf`): it marks
//! processes that were running before the programs were attached as members of a JVM
//! lineage, exactly as the kernel programs do at fork and exec.
//!
//! The table is direct-mapped by tgid (see `detector_common::LINEAGE_SLOTS` for why), and
//! the kernel updates a slot's overflow count with atomic adds. A `bpf()` map update would
//! rewrite the whole slot and could undo a concurrent kernel add, so the daemon maps the
//! array (`BPF_F_MMAPABLE`) and uses the same atomic instructions on the same memory.

use std::{
    os::fd::{AsFd as _, AsRawFd as _},
    ptr::NonNull,
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
};

use aya::maps::{HashMap, MapData};
use detector_common::{
    tracked_index, Lineage, LineageSlot, LINEAGE_SLOTS, TRACKED_LANES, TRACKED_LINES,
};

use super::SensorError;

/// `LineageSlot` as the daemon sees it through the shared mapping: the same layout, every
/// member accessed atomically because the kernel writes it concurrently.
#[repr(C)]
struct SharedSlot {
    tgid: AtomicU32,
    _pad: AtomicU32,
    overflow: AtomicU64,
    jvm_tgid: AtomicU32,
    depth: AtomicU32,
    jvm_start_ns: AtomicU64,
}

const _: () = assert!(std::mem::size_of::<SharedSlot>() == std::mem::size_of::<LineageSlot>());

/// The lineage table, mapped while the daemon writes to it, and its overflow map.
///
/// The mapping is made on first use and dropped by [`LineageTable::unmap`]: the kernel maps
/// all of the table's pages at once, and they would count in the daemon's resident memory
/// for ever although it needs them only while seeding.
pub struct LineageTable {
    map: MapData,
    slots: Option<NonNull<SharedSlot>>,
    len: usize,
    /// `TRACKED`, the counters in front of the table, mapped alongside it.
    counts_map: MapData,
    counts: Option<NonNull<AtomicU32>>,
    overflow: HashMap<MapData, u32, Lineage>,
}

/// Bytes of the `TRACKED` array.
const COUNTS_BYTES: usize = (TRACKED_LINES * TRACKED_LANES) as usize * 4;

/// A shared read-write mapping of an mmapable array map.
fn map_shared(map: &MapData, name: &'static str, bytes: usize) -> Result<NonNull<u8>, SensorError> {
    // SAFETY: a fresh shared mapping of the map's fd; the kernel sized the array's memory
    // to `bytes` (a page multiple), and nothing else in this process maps it.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            map.fd().as_fd().as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(SensorError::Mmap {
            name,
            source: std::io::Error::last_os_error(),
        });
    }
    NonNull::new(ptr.cast::<u8>()).ok_or(SensorError::Mmap {
        name,
        source: std::io::Error::other("mmap returned a null mapping"),
    })
}

impl std::fmt::Debug for LineageTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineageTable")
            .field("slots", &self.len)
            .finish_non_exhaustive()
    }
}

/// `bpf_map_update_elem` flag: fail if the key exists.
const BPF_NOEXIST: u64 = 1;

impl LineageTable {
    /// The table `LINEAGE` (an array of `LINEAGE_SLOTS` slots), its counters `TRACKED`
    /// and `LINEAGE_OVERFLOW`.
    pub fn new(
        map: MapData,
        counts_map: MapData,
        overflow: HashMap<MapData, u32, Lineage>,
    ) -> LineageTable {
        LineageTable {
            map,
            slots: None,
            len: LINEAGE_SLOTS as usize,
            counts_map,
            counts: None,
            overflow,
        }
    }

    /// Adds one to the `TRACKED` counter of `tgid`, as the kernel's `track` does.
    fn count(&mut self, tgid: u32) -> Result<(), SensorError> {
        let counts = match self.counts {
            Some(c) => c,
            None => {
                let c = map_shared(&self.counts_map, "TRACKED", COUNTS_BYTES)?.cast::<AtomicU32>();
                self.counts = Some(c);
                c
            }
        };
        let (line, lane) = tracked_index(tgid);
        let i = line as usize * TRACKED_LANES as usize + lane;
        // SAFETY: `i` is below TRACKED_LINES * TRACKED_LANES, the mapped counters.
        unsafe { &*counts.as_ptr().add(i) }.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Maps the table read-write, once.
    fn mapped(&mut self) -> Result<NonNull<SharedSlot>, SensorError> {
        if let Some(slots) = self.slots {
            return Ok(slots);
        }
        let bytes = self.len * std::mem::size_of::<SharedSlot>();
        let slots = map_shared(&self.map, "LINEAGE", bytes)?.cast::<SharedSlot>();
        self.slots = Some(slots);
        Ok(slots)
    }

    /// Drops the mapping (the next use maps the table again).
    pub fn unmap(&mut self) {
        if let Some(counts) = self.counts.take() {
            // SAFETY: the mapping made in `count`, unmapped once.
            unsafe { libc::munmap(counts.as_ptr().cast(), COUNTS_BYTES) };
        }
        if let Some(slots) = self.slots.take() {
            // SAFETY: the mapping made in `mapped`, unmapped once.
            unsafe {
                libc::munmap(
                    slots.as_ptr().cast(),
                    self.len * std::mem::size_of::<SharedSlot>(),
                );
            }
        }
    }

    fn slot(&mut self, tgid: u32) -> Result<&SharedSlot, SensorError> {
        let slots = self.mapped()?;
        let i = (tgid & (LINEAGE_SLOTS - 1)) as usize;
        debug_assert!(i < self.len);
        // SAFETY: `i` < `len` slots, mapped until `unmap` (which needs `&mut self`, so not
        // while this borrow lives); the members are atomics, so shared references to memory
        // the kernel also writes are sound.
        Ok(unsafe { &*slots.as_ptr().add(i) })
    }

    /// Starts (or replaces) the lineage of `tgid`, as the kernel's `track` does.
    pub fn track(&mut self, tgid: u32, lineage: Lineage) -> Result<(), SensorError> {
        let slot = self.slot(tgid)?;
        let current = slot.tgid.load(Ordering::Acquire);
        if current == tgid || current == 0 {
            slot.jvm_tgid.store(lineage.jvm_tgid, Ordering::Relaxed);
            slot.depth.store(lineage.depth, Ordering::Relaxed);
            slot.jvm_start_ns
                .store(lineage.jvm_start_ns, Ordering::Relaxed);
            // Last, and with release ordering: a reader that sees the tgid sees its lineage.
            slot.tgid.store(tgid, Ordering::Release);
            if current == 0 {
                self.count(tgid)?;
            }
            return Ok(());
        }
        match self.overflow.insert(tgid, lineage, BPF_NOEXIST) {
            Ok(()) => {
                self.slot(tgid)?.overflow.fetch_add(1, Ordering::AcqRel);
                self.count(tgid)
            }
            Err(_) if self.overflow.get(&tgid, 0).is_ok() => self
                .overflow
                .insert(tgid, lineage, 0)
                .map_err(super::map_err("LINEAGE_OVERFLOW")),
            Err(source) => Err(SensorError::Map {
                name: "LINEAGE_OVERFLOW",
                source,
            }),
        }
    }

    /// Whether the kernel tracks `tgid`.
    pub fn is_tracked(&mut self, tgid: u32) -> Result<bool, SensorError> {
        let slot = self.slot(tgid)?;
        let in_slot = slot.tgid.load(Ordering::Acquire) == tgid;
        let overflowed = slot.overflow.load(Ordering::Acquire) != 0;
        Ok(in_slot || (overflowed && self.overflow.get(&tgid, 0).is_ok()))
    }
}

impl Drop for LineageTable {
    fn drop(&mut self) {
        self.unmap();
    }
}

// SAFETY: the mapping is owned by the table and accessed only through atomics.
unsafe impl Send for LineageTable {}
