//! Shared pieces of kekbit's fuzz targets: input layouts the targets parse
//! and the seed generator writes, the round-trip model, and an aligned
//! buffer. The targets themselves are in `fuzz_targets/`.

pub mod region_input;
pub mod roundtrip;

use kekbit_nostd::Clock;

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

/// A clock that always says the same time.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub u64);

impl Clock for FixedClock {
    fn now(&self) -> u64 {
        self.0
    }
}
