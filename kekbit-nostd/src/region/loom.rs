//! A loom-backed region, compiled only under `--cfg loom`.
//!
//! Loom cannot place its atomics over raw bytes, so this region keeps one
//! loom `AtomicU32` per 4-byte word for the atomic operations, a plain byte
//! buffer for the copies, and one loom `UnsafeCell` per 8-byte chunk that
//! every copy and borrow touches. Loom then reports any byte access that is
//! not ordered after the write that produced it: exactly the bug a weak
//! publish would cause.
//!
//! The byte buffer mirrors atomic stores so header copies see them; loom runs
//! one thread at a time, so the mirror itself never races.

extern crate std;

use std::boxed::Box;
use std::cell::UnsafeCell;
use std::vec::Vec;

use super::{ExclusiveRegion, Region};
use crate::sync::{AtomicU32, Ordering};

/// A region for loom models. Build it with [`LoomRegion::new`], filled with
/// `fill` so that models also check the writer never relies on zeroed memory.
pub struct LoomRegion {
    words: Box<[AtomicU32]>,
    chunks: Box<[loom::cell::UnsafeCell<()>]>,
    bytes: UnsafeCell<Box<[u8]>>,
}

// SAFETY: loom executes one thread at a time; every access is tracked by
// loom's atomics and cells, which report the races a real region could have.
unsafe impl Sync for LoomRegion {}
// SAFETY: as above; the region owns its storage.
unsafe impl Send for LoomRegion {}

impl LoomRegion {
    /// A region of `len` bytes (a multiple of 8), every word set to `fill`.
    pub fn new(len: usize, fill: u32) -> Self {
        assert!(len % 8 == 0, "loom region length must be a multiple of 8");
        let words = (0..len / 4)
            .map(|_| AtomicU32::new(fill))
            .collect::<Vec<_>>();
        let chunks = (0..len / 8)
            .map(|_| loom::cell::UnsafeCell::new(()))
            .collect::<Vec<_>>();
        let mut bytes = Vec::with_capacity(len);
        for _ in 0..len / 4 {
            bytes.extend_from_slice(&fill.to_le_bytes());
        }
        Self {
            words: words.into_boxed_slice(),
            chunks: chunks.into_boxed_slice(),
            bytes: UnsafeCell::new(bytes.into_boxed_slice()),
        }
    }

    #[track_caller]
    fn read_chunks(&self, offset: usize, len: usize) {
        for chunk in chunk_range(offset, len) {
            self.chunks[chunk].with(|_| ());
        }
    }

    #[track_caller]
    fn write_chunks(&self, offset: usize, len: usize) {
        for chunk in chunk_range(offset, len) {
            self.chunks[chunk].with_mut(|_| ());
        }
    }

    fn raw(&self) -> *mut u8 {
        // SAFETY: the box lives as long as `self`; loom serialises threads.
        unsafe { (*self.bytes.get()).as_mut_ptr() }
    }

    /// Copies the byte mirror of every word the range touches into the
    /// atomics, so that later atomic loads of copied words see the copy.
    fn sync_words(&self, offset: usize, len: usize) {
        let first = offset / 4;
        let last = (offset + len).div_ceil(4);
        for word in first..last {
            let mut value = [0u8; 4];
            // SAFETY: `word * 4 + 4 <= len` of the buffer; threads are serialised.
            unsafe {
                core::ptr::copy_nonoverlapping(self.raw().add(word * 4), value.as_mut_ptr(), 4)
            };
            self.words[word].store(u32::from_le_bytes(value), Ordering::Relaxed);
        }
    }
}

fn chunk_range(offset: usize, len: usize) -> core::ops::Range<usize> {
    if len == 0 {
        0..0
    } else {
        offset / 8..(offset + len).div_ceil(8)
    }
}

// SAFETY: the storage is boxed and never resized; every method bounds-checks
// with `assert!` (models must fail loudly) and does only what it documents.
unsafe impl Region for LoomRegion {
    fn len(&self) -> usize {
        self.words.len() * 4
    }

    unsafe fn load_u32(&self, offset: usize, order: Ordering) -> u32 {
        assert!(offset % 4 == 0 && offset + 4 <= self.len());
        self.words[offset / 4].load(order)
    }

    unsafe fn store_u32(&self, offset: usize, value: u32, order: Ordering) {
        assert!(offset % 4 == 0 && offset + 4 <= self.len());
        // SAFETY: in bounds; loom serialises threads, so the mirror is not raced.
        unsafe {
            core::ptr::copy_nonoverlapping(value.to_le_bytes().as_ptr(), self.raw().add(offset), 4)
        };
        self.words[offset / 4].store(value, order);
    }

    #[track_caller]
    unsafe fn copy_in(&self, offset: usize, src: &[u8]) {
        assert!(offset + src.len() <= self.len());
        self.write_chunks(offset, src.len());
        // SAFETY: in bounds; threads are serialised.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), self.raw().add(offset), src.len()) };
        self.sync_words(offset, src.len());
    }

    #[track_caller]
    unsafe fn copy_out(&self, offset: usize, dst: &mut [u8]) {
        assert!(offset + dst.len() <= self.len());
        self.read_chunks(offset, dst.len());
        // SAFETY: in bounds; threads are serialised.
        unsafe {
            core::ptr::copy_nonoverlapping(self.raw().add(offset), dst.as_mut_ptr(), dst.len())
        };
    }

    #[track_caller]
    unsafe fn bytes(&self, offset: usize, len: usize) -> &[u8] {
        assert!(offset + len <= self.len());
        self.read_chunks(offset, len);
        // SAFETY: in bounds; the borrow is tied to `self`.
        unsafe { core::slice::from_raw_parts(self.raw().add(offset), len) }
    }

    #[track_caller]
    unsafe fn bytes_mut(&self, offset: usize, len: usize) -> &mut [u8] {
        assert!(offset + len <= self.len());
        self.write_chunks(offset, len);
        // SAFETY: in bounds; the writer holds the only borrow.
        unsafe { core::slice::from_raw_parts_mut(self.raw().add(offset), len) }
    }
}

// SAFETY: each `LoomRegion` owns its storage and is neither `Clone` nor `Copy`.
unsafe impl ExclusiveRegion for LoomRegion {}
