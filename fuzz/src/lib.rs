//! Shared pieces of kekbit's fuzz targets: input layouts the targets parse
//! and the seed generator writes, the round-trip model, and an aligned
//! buffer. The targets themselves are in `fuzz_targets/`.

pub mod region_input;
pub mod roundtrip;

use std::alloc::{Layout, alloc, dealloc};
use std::ptr::NonNull;

use kekbit_nostd::format::HEADER_LEN;
use kekbit_nostd::{Clock, SliceRegion};

/// An 8-aligned buffer of exactly `len` bytes, allocated as whole words and
/// no more, so AddressSanitizer catches a read past the rounded-up end and
/// the region's own debug assertions catch one past `len`.
#[derive(Debug)]
pub struct Aligned {
    words: Vec<u64>,
    len: usize,
}

impl Aligned {
    /// A buffer of `len` bytes, each set to `fill`.
    pub fn new(len: usize, fill: u8) -> Self {
        Self {
            words: vec![u64::from_le_bytes([fill; 8]); len.div_ceil(8)],
            len,
        }
    }

    /// The buffer's bytes.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: the vector holds `words.len() * 8 >= len` initialised
        // bytes; `u8` has no alignment or validity requirement; the borrow
        // of `self` keeps the vector alive and unaliased.
        unsafe { core::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast::<u8>(), self.len) }
    }
}

/// Canary bytes on each side of a [`Guarded`] region.
pub const GUARD: usize = 64;

/// The canary byte at `index` of a [`Guarded`] allocation: it differs from
/// its neighbours and from zero, so no writer store matches it by chance.
fn canary(index: usize) -> u8 {
    0xC3 ^ (index as u8).wrapping_mul(29)
}

/// A channel's region in a guarded heap allocation: [`GUARD`] canary bytes
/// before it and after it, and canaries in the slack between the record
/// area's end and the region's. [`Guarded::check_canaries`] panics if a
/// writer stored outside the record area, even where the region's own
/// bounds checks would let the store through (the slack).
///
/// The test reads the bytes through the allocation's pointer, never through
/// a reference, so it can look at them while a writer holds the region.
#[derive(Debug)]
pub struct Guarded {
    base: NonNull<u8>,
    layout: Layout,
    region_len: usize,
    capacity: usize,
}

impl Guarded {
    /// A region for a record area of `capacity` bytes, then `slack` bytes,
    /// the header and record area filled with `fill`.
    pub fn new(capacity: usize, slack: usize, fill: u8) -> Self {
        let region_len = HEADER_LEN + capacity + slack;
        let layout =
            Layout::from_size_align(GUARD + region_len + GUARD, 64).expect("a small layout");
        // SAFETY: the layout's size is not zero.
        let base = NonNull::new(unsafe { alloc(layout) }).expect("allocation");
        let channel_end = GUARD + HEADER_LEN + capacity;
        for i in 0..layout.size() {
            let byte = if (GUARD..channel_end).contains(&i) {
                fill
            } else {
                canary(i)
            };
            // SAFETY: `i` is inside the allocation, which nothing else uses yet.
            unsafe { base.as_ptr().add(i).write(byte) };
        }
        Self {
            base,
            layout,
            region_len,
            capacity,
        }
    }

    /// A region over the guarded bytes (between the guards).
    pub fn region(&self) -> SliceRegion<'_> {
        // SAFETY: the bytes are allocated, initialised and 64-aligned, and
        // live as long as `self`; only the one writer the caller makes on
        // this region writes them, and this type only reads them.
        unsafe { SliceRegion::from_raw_parts(self.base.as_ptr().add(GUARD), self.region_len) }
            .expect("aligned and large enough")
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.layout.size()];
        // SAFETY: in bounds; the target is single-threaded, so no store
        // races with this read, and no `&mut` to the bytes lives between
        // operations.
        unsafe { std::ptr::copy_nonoverlapping(self.base.as_ptr(), out.as_mut_ptr(), out.len()) };
        out
    }

    /// The record area, copied.
    pub fn area(&self) -> Vec<u8> {
        let start = GUARD + HEADER_LEN;
        self.snapshot()[start..start + self.capacity].to_vec()
    }

    /// Panics unless every canary byte is intact.
    pub fn check_canaries(&self) {
        let channel_end = GUARD + HEADER_LEN + self.capacity;
        for (i, &byte) in self.snapshot().iter().enumerate() {
            if !(GUARD..channel_end).contains(&i) && byte != canary(i) {
                let place = if i < GUARD {
                    format!("{} bytes before the region", GUARD - i)
                } else {
                    format!("{} bytes past the record area", i - channel_end)
                };
                panic!("canary overwritten {place}: {byte:#04x}");
            }
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // SAFETY: allocated with this layout in `new`, freed once.
        unsafe { dealloc(self.base.as_ptr(), self.layout) }
    }
}

/// A clock that always says the same time.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub u64);

impl Clock for FixedClock {
    fn now(&self) -> u64 {
        self.0
    }
}
