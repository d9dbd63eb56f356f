//! A region over raw memory: a borrowed buffer, shared SRAM, or a mapping.

use core::marker::PhantomData;
use core::ptr::NonNull;

use super::{ExclusiveRegion, Region};
use crate::error::RegionError;
use crate::format::{HEADER_LEN, MIN_CAPACITY, RECORD_ALIGN};
use crate::sync::{Ordering, RawAtomicU32};

/// A channel's memory as a base pointer and a length.
///
/// Build one safely from a buffer you own with [`SliceRegion::new`], or from
/// shared memory (two cores' SRAM, an `mmap`) with the `unsafe`
/// [`SliceRegion::from_raw_parts`].
///
/// A `SliceRegion` may be shared by reference between threads: every access
/// goes through the [`Region`] methods, whose contracts the writer and
/// readers uphold.
///
/// # Example
///
/// ```
/// use kekbit_nostd::{AlignedBuffer, SliceRegion};
///
/// let mut buffer = AlignedBuffer::<1024>::new();
/// let region = SliceRegion::new(buffer.as_mut_slice())?;
/// assert_eq!(kekbit_nostd::Region::len(&region), 1024);
/// # Ok::<(), kekbit_nostd::RegionError>(())
/// ```
#[derive(Debug)]
pub struct SliceRegion<'a> {
    /// Base of the region; aligned to [`RECORD_ALIGN`], never null.
    base: NonNull<u8>,
    /// Length in bytes; at least `HEADER_LEN + MIN_CAPACITY`.
    len: usize,
    _memory: PhantomData<&'a mut [u8]>,
}

// SAFETY: the region is a pointer to memory that lives for 'a. Sending it to
// another thread moves no data; all access goes through the `Region` methods,
// whose contracts rule out data races.
unsafe impl Send for SliceRegion<'_> {}
// SAFETY: shared access from several threads is the point of a region: words
// that several parties touch are only accessed atomically, and the byte
// methods' contracts forbid racing non-atomic accesses.
unsafe impl Sync for SliceRegion<'_> {}

impl<'a> SliceRegion<'a> {
    /// Borrows `memory` as a channel region, checking its alignment and size.
    ///
    /// The buffer must start on an 8-byte boundary ([`AlignedBuffer`] gives
    /// one) and hold at least the header and the smallest record area.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::{AlignedBuffer, RegionError, SliceRegion};
    ///
    /// let mut buffer = AlignedBuffer::<256>::new();
    /// assert!(SliceRegion::new(buffer.as_mut_slice()).is_ok());
    /// // One byte in, the start is no longer 8-byte aligned.
    /// let misaligned = &mut buffer.as_mut_slice()[1..];
    /// assert!(matches!(SliceRegion::new(misaligned), Err(RegionError::Misaligned { .. })));
    /// ```
    pub fn new(memory: &'a mut [u8]) -> Result<Self, RegionError> {
        let base = NonNull::from(&mut *memory).cast::<u8>();
        Self::check(base, memory.len())?;
        Ok(Self {
            base,
            len: memory.len(),
            _memory: PhantomData,
        })
    }

    /// Builds a region over shared memory that Rust does not own: SRAM that
    /// another core also uses, or a file mapping.
    ///
    /// Alignment and size are checked as in [`SliceRegion::new`].
    ///
    /// # Safety
    ///
    /// - `base..base + len` is valid for reads for all of `'a`, and for
    ///   writes too if a [`Writer`](crate::Writer) is ever created on it;
    /// - while a `Writer` exists on this memory, no other `Writer` exists on
    ///   any region over any part of it, in any thread, core or process;
    /// - nothing but a kekbit `Writer` writes this memory during `'a`.
    ///
    /// Break the first and a load faults; break the others and readers can
    /// observe torn records, which is undefined behaviour in Rust's model.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::{AlignedBuffer, SliceRegion};
    ///
    /// let mut buffer = AlignedBuffer::<256>::new();
    /// let base = buffer.as_mut_slice().as_mut_ptr();
    /// // SAFETY: `buffer` outlives `region` and nothing else touches it.
    /// let region = unsafe { SliceRegion::from_raw_parts(base, 256) }?;
    /// # let _ = region;
    /// # Ok::<(), kekbit_nostd::RegionError>(())
    /// ```
    pub unsafe fn from_raw_parts(base: *mut u8, len: usize) -> Result<Self, RegionError> {
        let base = NonNull::new(base).ok_or(RegionError::Null)?;
        Self::check(base, len)?;
        Ok(Self {
            base,
            len,
            _memory: PhantomData,
        })
    }

    fn check(base: NonNull<u8>, len: usize) -> Result<(), RegionError> {
        let misalignment = base.as_ptr() as usize % RECORD_ALIGN;
        if misalignment != 0 {
            return Err(RegionError::Misaligned {
                misalignment,
                required: RECORD_ALIGN,
            });
        }
        let min = HEADER_LEN + MIN_CAPACITY as usize;
        if len < min {
            return Err(RegionError::TooSmall { len, min });
        }
        Ok(())
    }

    /// The region's first byte, for comparing addresses; reading through it
    /// is subject to the same rules as the [`Region`] methods.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::{AlignedBuffer, SliceRegion};
    ///
    /// let mut buffer = AlignedBuffer::<256>::new();
    /// let start = buffer.as_mut_slice().as_ptr();
    /// let region = SliceRegion::new(buffer.as_mut_slice())?;
    /// assert_eq!(region.as_ptr(), start);
    /// # Ok::<(), kekbit_nostd::RegionError>(())
    /// ```
    pub fn as_ptr(&self) -> *const u8 {
        self.base.as_ptr()
    }

    /// The address `offset` bytes into the region.
    #[inline]
    fn at(&self, offset: usize) -> *mut u8 {
        // `wrapping_add` keeps this safe; callers dereference it only for
        // offsets their contract puts in bounds.
        self.base.as_ptr().wrapping_add(offset)
    }

    /// The hard bounds check behind every access: the protocol checks its
    /// offsets first, so this never fails; if a bug ever made it fail, a
    /// panic is better than a store outside the region. It costs a compare
    /// and a branch; the panic is out of line.
    #[inline(always)]
    #[track_caller]
    fn check_bounds(&self, offset: usize, len: usize) {
        if !(offset <= self.len && len <= self.len - offset) {
            out_of_bounds(offset, len, self.len);
        }
    }

    #[inline]
    #[track_caller]
    fn word(&self, offset: usize) -> &RawAtomicU32 {
        self.check_bounds(offset, 4);
        debug_assert!(offset % 4 == 0, "word {offset} misaligned");
        // SAFETY: the caller's contract puts `offset..offset + 4` in bounds
        // and 4-aligned (the base is 8-aligned), memory lives for 'a, and all
        // racing accesses to it are atomic.
        unsafe { RawAtomicU32::from_ptr(self.at(offset).cast::<u32>()) }
    }
}

/// The panic of [`SliceRegion::check_bounds`], kept out of the hot path.
#[cold]
#[inline(never)]
#[track_caller]
fn out_of_bounds(offset: usize, len: usize, region: usize) -> ! {
    panic!("kekbit bug: {len} bytes at offset {offset} outside a region of {region}")
}

// SAFETY: the base is checked 8-aligned and `len` never changes; the borrow
// (or the `from_raw_parts` contract) keeps the memory valid for 'a; each
// method below does only what the trait documents.
unsafe impl Region for SliceRegion<'_> {
    #[inline]
    fn len(&self) -> usize {
        self.len
    }

    #[inline]
    unsafe fn load_u32(&self, offset: usize, order: Ordering) -> u32 {
        u32::from_le(self.word(offset).load(order))
    }

    #[inline]
    unsafe fn store_u32(&self, offset: usize, value: u32, order: Ordering) {
        self.word(offset).store(value.to_le(), order);
    }

    #[inline]
    unsafe fn copy_in(&self, offset: usize, src: &[u8]) {
        self.check_bounds(offset, src.len());
        // SAFETY: in bounds by contract; `src` is a distinct borrow, so the
        // ranges cannot overlap; no one reads these bytes concurrently.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), self.at(offset), src.len()) }
    }

    #[inline]
    unsafe fn copy_out(&self, offset: usize, dst: &mut [u8]) {
        self.check_bounds(offset, dst.len());
        // SAFETY: in bounds by contract, no racing writes; `dst` is a
        // distinct exclusive borrow.
        unsafe { core::ptr::copy_nonoverlapping(self.at(offset), dst.as_mut_ptr(), dst.len()) }
    }

    #[inline]
    unsafe fn bytes(&self, offset: usize, len: usize) -> &[u8] {
        self.check_bounds(offset, len);
        // SAFETY: in bounds by contract, and the bytes do not change while
        // the borrow lives.
        unsafe { core::slice::from_raw_parts(self.at(offset), len) }
    }

    #[inline]
    unsafe fn bytes_mut(&self, offset: usize, len: usize) -> &mut [u8] {
        self.check_bounds(offset, len);
        // SAFETY: in bounds by contract; the only writer holds the only
        // borrow of these bytes, which no one reads until they are published.
        unsafe { core::slice::from_raw_parts_mut(self.at(offset), len) }
    }

    #[inline]
    fn prefetch(&self, offset: usize, len: usize) {
        let end = offset.saturating_add(len).min(self.len);
        let mut at = offset;
        while at < end {
            prefetch_line(self.at(at));
            at += 64;
        }
    }
}

/// Asks the processor to bring the cache line at `address` closer.
#[inline(always)]
fn prefetch_line(address: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: a prefetch is a hint: it never faults, whatever the address,
    // and changes no memory; SSE is part of every x86-64 processor.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
            address.cast::<i8>(),
        )
    };
    #[cfg(all(target_arch = "aarch64", not(miri)))]
    // SAFETY: `prfm` is a hint: it never faults and changes no memory.
    unsafe {
        core::arch::asm!("prfm pldl1keep, [{0}]", in(reg) address, options(nostack, readonly, preserves_flags))
    };
    #[cfg(any(miri, not(any(target_arch = "x86_64", target_arch = "aarch64"))))]
    let _ = address;
}

// SAFETY: `new` takes the memory's only `&mut`, `SliceRegion` is neither
// `Clone` nor `Copy`, and `from_raw_parts` makes its caller answer for
// aliasing regions.
unsafe impl ExclusiveRegion for SliceRegion<'_> {}

/// A byte buffer aligned for a channel, for statics and stack buffers.
///
/// # Example
///
/// ```
/// use kekbit_nostd::AlignedBuffer;
///
/// let mut buffer = AlignedBuffer::<512>::new();
/// assert_eq!(buffer.as_mut_slice().as_ptr() as usize % 8, 0);
/// ```
#[derive(Debug, Clone)]
#[repr(C, align(64))]
pub struct AlignedBuffer<const N: usize>([u8; N]);

impl<const N: usize> AlignedBuffer<N> {
    /// A zeroed buffer, aligned to a cache line.
    ///
    /// # Example
    ///
    /// ```
    /// let buffer = kekbit_nostd::AlignedBuffer::<256>::new();
    /// # let _ = buffer;
    /// ```
    pub const fn new() -> Self {
        Self([0; N])
    }

    /// The buffer's bytes, to pass to [`SliceRegion::new`].
    ///
    /// # Example
    ///
    /// ```
    /// let mut buffer = kekbit_nostd::AlignedBuffer::<256>::new();
    /// assert_eq!(buffer.as_mut_slice().len(), 256);
    /// ```
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl<const N: usize> Default for AlignedBuffer<N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_short_buffers() {
        let mut buffer = AlignedBuffer::<64>::new();
        let err = SliceRegion::new(buffer.as_mut_slice()).unwrap_err();
        assert_eq!(err, RegionError::TooSmall { len: 64, min: 216 });
    }

    #[test]
    fn rejects_misaligned_buffers() {
        let mut buffer = AlignedBuffer::<512>::new();
        for skip in 1..8 {
            let err = SliceRegion::new(&mut buffer.as_mut_slice()[skip..]).unwrap_err();
            assert_eq!(
                err,
                RegionError::Misaligned {
                    misalignment: skip,
                    required: 8
                }
            );
        }
    }

    #[test]
    fn rejects_null() {
        // SAFETY: a null base is rejected before any access.
        let err = unsafe { SliceRegion::from_raw_parts(core::ptr::null_mut(), 4096) }.unwrap_err();
        assert_eq!(err, RegionError::Null);
    }

    #[test]
    fn words_are_little_endian() {
        let mut buffer = AlignedBuffer::<256>::new();
        let region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        // SAFETY: offset 8 is aligned, in bounds, and this thread is alone.
        unsafe { region.store_u32(8, 0x0403_0201, Ordering::Relaxed) };
        // SAFETY: as above.
        let loaded = unsafe { region.load_u32(8, Ordering::Relaxed) };
        assert_eq!(loaded, 0x0403_0201);
        assert_eq!(&buffer.as_mut_slice()[8..12], &[1, 2, 3, 4]);
    }
}
