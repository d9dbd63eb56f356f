//! Regions: the memory a channel lives in, addressed by offset.
//!
//! The protocol is written against the [`Region`] trait, never against a held
//! `&mut [u8]`, so the same writer and reader code runs over a static buffer
//! ([`SliceRegion::new`]), shared SRAM or a mapped file
//! ([`SliceRegion::from_raw_parts`]), and loom's model (`LoomRegion`, only
//! under `--cfg loom`).

mod slice;
pub use slice::{AlignedBuffer, SliceRegion};

#[cfg(loom)]
mod loom;
#[cfg(loom)]
pub use self::loom::LoomRegion;

use crate::sync::Ordering;

/// Memory a channel lives in: a base and a length, with offset-addressed
/// 32-bit atomics and byte copies.
///
/// Users rarely call these methods: [`Writer`](crate::Writer) and
/// [`Reader`](crate::Reader) do, after checking every offset against the
/// header. Implement this trait to put a channel in memory of your own kind.
///
/// # Safety
///
/// An implementation promises that:
/// - [`len`](Region::len) never changes and the memory behind it stays valid
///   for as long as the region value lives;
/// - the region's base is aligned to 8 bytes, so that every offset the
///   protocol uses for a 32-bit word is 4-byte aligned in memory;
/// - each method does exactly what its documentation says, and only that.
pub unsafe trait Region {
    /// The region's length in bytes, header included.
    fn len(&self) -> usize;

    /// Whether the region is empty; a channel never fits one.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Atomically loads the little-endian `u32` at `offset`.
    ///
    /// # Safety
    ///
    /// `offset` is a multiple of 4 and `offset + 4 <= self.len()`, and no
    /// non-atomic write to those 4 bytes may race with this load.
    unsafe fn load_u32(&self, offset: usize, order: Ordering) -> u32;

    /// Atomically stores `value`, little-endian, at `offset`.
    ///
    /// # Safety
    ///
    /// `offset` is a multiple of 4 and `offset + 4 <= self.len()`; the region
    /// is writable; the caller is the channel's only writer; and no shared
    /// borrow from [`bytes`](Region::bytes) covers those 4 bytes.
    unsafe fn store_u32(&self, offset: usize, value: u32, order: Ordering);

    /// Copies `src` into the region at `offset`, non-atomically.
    ///
    /// # Safety
    ///
    /// `offset + src.len() <= self.len()`; the region is writable; the caller
    /// is the only writer; and no other party reads those bytes until the
    /// caller publishes them with a `Release` store that the reader `Acquire`s.
    unsafe fn copy_in(&self, offset: usize, src: &[u8]);

    /// Copies `dst.len()` bytes out of the region at `offset`, non-atomically.
    ///
    /// # Safety
    ///
    /// `offset + dst.len() <= self.len()`, and no write to those bytes races
    /// with the copy.
    unsafe fn copy_out(&self, offset: usize, dst: &mut [u8]);

    /// Borrows `len` committed bytes at `offset`, for as long as the region
    /// is borrowed.
    ///
    /// # Safety
    ///
    /// `offset + len <= self.len()`, and nobody writes those bytes while the
    /// returned slice lives: the protocol only borrows committed records,
    /// which never change.
    unsafe fn bytes(&self, offset: usize, len: usize) -> &[u8];

    /// Borrows `len` bytes at `offset` mutably, for a zero-copy grant.
    ///
    /// # Safety
    ///
    /// `offset + len <= self.len()`; the region is writable; the caller is the
    /// only writer; no other borrow of those bytes lives at the same time; and
    /// nobody reads them until they are published as in
    /// [`copy_in`](Region::copy_in).
    #[allow(clippy::mut_from_ref)]
    unsafe fn bytes_mut(&self, offset: usize, len: usize) -> &mut [u8];

    /// Hints that `len` bytes at `offset` will be read soon. A hint only: it
    /// never faults and never changes what a load returns, so it is safe for
    /// any arguments. Readers call it only over published records, so they
    /// never pull in lines the writer is still filling. The default does
    /// nothing.
    #[inline]
    fn prefetch(&self, offset: usize, len: usize) {
        let _ = (offset, len);
    }
}

/// A region type whose exclusive borrow is exclusive access to its memory.
///
/// [`Writer::create`](crate::Writer::create) and
/// [`Writer::resume`](crate::Writer::resume) need `&mut` of such a region:
/// the borrow is their proof that no other writer exists. A shared
/// reference `&R` is a [`Region`] but never an `ExclusiveRegion`, since any
/// number of copies of it may exist.
///
/// # Safety
///
/// No two values of the type that safe code can obtain may cover the same
/// memory, unless an `unsafe` constructor's contract makes its caller
/// responsible for that (as [`SliceRegion::from_raw_parts`] does).
///
/// ```compile_fail,E0277
/// use kekbit_nostd::{AlignedBuffer, ChannelConfig, SliceRegion, Writer};
/// let mut buffer = AlignedBuffer::<1024>::new();
/// let region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
/// let (mut a, mut b) = (&region, &region);
/// let first = Writer::create(&mut a, &ChannelConfig::new(1)); // error: `&SliceRegion` is not exclusive
/// let second = Writer::create(&mut b, &ChannelConfig::new(1));
/// ```
pub unsafe trait ExclusiveRegion: Region {}

// SAFETY: a shared reference forwards every call to a region that keeps the
// promises; the reference cannot outlive it.
unsafe impl<R: Region + ?Sized> Region for &R {
    fn len(&self) -> usize {
        (**self).len()
    }
    unsafe fn load_u32(&self, offset: usize, order: Ordering) -> u32 {
        // SAFETY: the caller's contract is forwarded unchanged.
        unsafe { (**self).load_u32(offset, order) }
    }
    unsafe fn store_u32(&self, offset: usize, value: u32, order: Ordering) {
        // SAFETY: the caller's contract is forwarded unchanged.
        unsafe { (**self).store_u32(offset, value, order) }
    }
    unsafe fn copy_in(&self, offset: usize, src: &[u8]) {
        // SAFETY: the caller's contract is forwarded unchanged.
        unsafe { (**self).copy_in(offset, src) }
    }
    unsafe fn copy_out(&self, offset: usize, dst: &mut [u8]) {
        // SAFETY: the caller's contract is forwarded unchanged.
        unsafe { (**self).copy_out(offset, dst) }
    }
    unsafe fn bytes(&self, offset: usize, len: usize) -> &[u8] {
        // SAFETY: the caller's contract is forwarded unchanged.
        unsafe { (**self).bytes(offset, len) }
    }
    unsafe fn bytes_mut(&self, offset: usize, len: usize) -> &mut [u8] {
        // SAFETY: the caller's contract is forwarded unchanged.
        unsafe { (**self).bytes_mut(offset, len) }
    }
    #[inline]
    fn prefetch(&self, offset: usize, len: usize) {
        (**self).prefetch(offset, len)
    }
}
