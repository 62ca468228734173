//! How full the event ring buffer is: the bytes the kernel has written and the daemon not yet
//! read. aya's `RingBuf` keeps its view of the positions to itself, so this maps the ring
//! buffer's two position pages a second time, read-only, as the kernel allows any process
//! holding the map's descriptor to: page 0 holds the consumer position, page 1 the producer
//! position (`struct bpf_ringbuf` in the kernel). Reading them is two atomic loads.

use std::{
    os::fd::BorrowedFd,
    ptr::NonNull,
    sync::atomic::{AtomicU64, Ordering},
};

use rustix::{
    mm::{mmap, munmap, MapFlags, ProtFlags},
    param::page_size,
};

/// One read-only page of the ring buffer's positions.
#[derive(Debug)]
struct Page {
    addr: NonNull<std::ffi::c_void>,
    len: usize,
}

impl Page {
    fn map(fd: BorrowedFd<'_>, offset: u64, len: usize) -> std::io::Result<Page> {
        // SAFETY: a fresh shared, read-only mapping of the map's own pages; nothing else in
        // this process is placed at the address the kernel picks.
        let addr = unsafe {
            mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ,
                MapFlags::SHARED,
                fd,
                offset,
            )
        }?;
        let addr = NonNull::new(addr).ok_or_else(|| std::io::Error::other("mmap returned null"))?;
        Ok(Page { addr, len })
    }

    /// The position at the start of the page (an `unsigned long`, written by the kernel or
    /// by the consumer with release semantics).
    fn position(&self) -> u64 {
        // SAFETY: the page is mapped for as long as `self` lives, page-aligned (so aligned for
        // a u64), and the kernel and aya only ever store whole words to it.
        unsafe { self.addr.cast::<AtomicU64>().as_ref() }.load(Ordering::Acquire)
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once.
        if let Err(e) = unsafe { munmap(self.addr.as_ptr(), self.len) } {
            tracing::warn!("unmapping the ring buffer's position page: {e}");
        }
    }
}

/// Read-only view of a ring buffer's fill level.
#[derive(Debug)]
pub struct RingFill {
    consumer: Page,
    producer: Page,
    capacity: u64,
}

// SAFETY: the pages are read-only shared memory read with atomic loads; the pointers are never
// handed out.
unsafe impl Send for RingFill {}

impl RingFill {
    /// Maps the positions of the ring buffer `fd`, of `capacity` data bytes.
    pub fn new(fd: BorrowedFd<'_>, capacity: u64) -> std::io::Result<RingFill> {
        let page = page_size();
        let offset = u64::try_from(page).map_err(std::io::Error::other)?;
        Ok(RingFill {
            consumer: Page::map(fd, 0, page)?,
            producer: Page::map(fd, offset, page)?,
            capacity,
        })
    }

    /// Bytes written by the kernel and not yet consumed (headers and padding included).
    pub fn used(&self) -> u64 {
        // Consumer first: it only grows, so a producer read after it is never behind it.
        let consumer = self.consumer.position();
        let producer = self.producer.position();
        producer.wrapping_sub(consumer).min(self.capacity)
    }

    /// The ring buffer's size in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }
}
