//! A channel file mapped into memory, as a core [`Region`].

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;

use kekbit_nostd::{Ordering, Region, RegionError, SliceRegion};
use memmap2::{Advice, MmapOptions, MmapRaw};

use crate::error::ChannelError;

/// The stride at which pre-faulting touches a mapping: the smallest page
/// size Linux uses, so every page is touched whatever the real size.
const TOUCH_STRIDE: usize = 4096;

/// A mapped channel file: the [`Region`] that `kekbit-std`'s writers and
/// readers run the core protocol on.
///
/// Users only ever borrow one (inside a [`ChannelReader`](crate::ChannelReader)
/// or through [`ShmReader::region`](crate::ShmReader::region)), and only
/// read-only ones: a writer's is owned by its [`ShmWriter`](crate::ShmWriter).
/// It is not `Clone`, has no public constructor and is not an
/// [`ExclusiveRegion`](kekbit_nostd::ExclusiveRegion), so no safe code can
/// build a [`Writer`](kekbit_nostd::Writer) on it. Never pass a reader's
/// region to the `unsafe` `Writer::create_unchecked`: its first store would
/// fault. A reader's region is mapped read-only: a store through it would
/// fault, and none is ever made, since only writers store.
///
/// Like every memory-mapped file, it assumes that only the channel's kekbit
/// writer writes the file and that nobody truncates it while it is mapped
/// (the kernel would raise `SIGBUS` on access past the new end). The safe
/// [`ShmReader::open`](crate::ShmReader::open) maps only files that nobody
/// but this user or root can write; the `unsafe`
/// [`ShmReader::open_shared`](crate::ShmReader::open_shared) leaves the
/// promise to its caller.
pub struct MappedRegion {
    /// Shared with the writer's flushing half, never with another writer.
    inner: Arc<Mapping>,
}

struct Mapping {
    /// A view of `map`. Its `'static` never escapes: it is only lent out as
    /// a borrow of the owning `MappedRegion`, so no access outlives `map`.
    region: SliceRegion<'static>,
    /// Declared after `region` so it drops (unmaps) after it.
    map: MmapRaw,
    /// Whether the mapping allows stores (`PROT_WRITE`).
    writable: bool,
}

impl MappedRegion {
    /// Maps `len` bytes of `file`, writable (for a writer) or read-only.
    ///
    /// Not with `MAP_POPULATE`: on a shared mapping it faults pages in for
    /// reading only, so a writer would fault each page again on its first
    /// write; [`prefault_for_writing`](Self::prefault_for_writing) does it
    /// once, for writing.
    pub(crate) fn map(file: &File, len: usize, writable: bool) -> Result<Self, MapError> {
        let mut options = MmapOptions::new();
        options.len(len);
        let map = if writable {
            options.map_raw(file)
        } else {
            options.map_raw_read_only(file)
        }
        .map_err(MapError::Io)?;
        // SAFETY: the mapping is valid for reads (and for writes when
        // `writable`) over `map.len()` bytes until `map` is unmapped, which
        // happens only after `region` is dropped (field order in `Mapping`).
        // Only writable regions ever reach a `Writer`, and the crate creates
        // exactly one per channel file, on a file it created exclusively.
        let region = unsafe { SliceRegion::from_raw_parts(map.as_mut_ptr(), map.len()) }
            .map_err(MapError::Region)?;
        Ok(Self {
            inner: Arc::new(Mapping {
                region,
                map,
                writable,
            }),
        })
    }

    /// Whether this is a writer's (read-write) mapping; see
    /// [`ShmReader::region`](crate::ShmReader::region) for an example.
    pub fn is_writable(&self) -> bool {
        self.inner.writable
    }

    /// A second handle to the same mapping, for the writer's flushing half.
    /// Never handed to users: two owned handles would allow two writers.
    pub(crate) fn handle(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }

    /// Faults in every page of a writable mapping for writing, so the first
    /// write to each page does not pay a page fault.
    ///
    /// Must be called before a writer is created on the mapping, while the
    /// caller is the file's only user, and after the file's space has been
    /// reserved (or the touching fallback could fault on a full tmpfs):
    /// where `MADV_POPULATE_WRITE` is missing (Linux before 5.14) it stores
    /// a zero word into each page of the freshly zeroed file.
    pub(crate) fn prefault_for_writing(&self) -> io::Result<()> {
        if !self.inner.writable {
            return Ok(());
        }
        match self.inner.map.advise(Advice::PopulateWrite) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                self.touch_pages();
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The fallback of [`prefault_for_writing`](Self::prefault_for_writing),
    /// under the same contract: a write fault per page.
    fn touch_pages(&self) {
        let len = self.len();
        for offset in (0..len).step_by(TOUCH_STRIDE) {
            // SAFETY: `offset` is a multiple of 4 below `len`, and `len` is a
            // multiple of 8, so the word is in bounds; the mapping is
            // writable; the caller is the only user of this new, zeroed
            // file, so the zero store races with nothing and changes nothing.
            unsafe { self.inner.region.store_u32(offset, 0, Ordering::Relaxed) };
        }
    }

    /// Writes the mapped bytes in `offset..offset + len` back to the file
    /// and waits for the device (`msync(MS_SYNC)`).
    pub(crate) fn flush_range(&self, offset: usize, len: usize) -> io::Result<()> {
        if !self.inner.writable || len == 0 {
            return Ok(());
        }
        self.inner.map.flush_range(offset, len)
    }
}

/// Why a file could not be mapped as a region.
#[derive(Debug)]
pub(crate) enum MapError {
    /// `mmap` failed.
    Io(io::Error),
    /// The mapping is too short for a channel (or, defensively, unaligned).
    Region(RegionError),
}

impl MapError {
    /// As a [`ChannelError`] about `path`.
    pub(crate) fn at(self, path: &Path) -> ChannelError {
        match self {
            Self::Io(e) => ChannelError::io(path, "map the channel", e),
            Self::Region(source) => ChannelError::Region {
                path: path.to_path_buf(),
                source,
            },
        }
    }
}

impl std::fmt::Debug for MappedRegion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedRegion")
            .field("len", &self.len())
            .field("writable", &self.inner.writable)
            .finish()
    }
}

// SAFETY: every method forwards to the `SliceRegion` over the mapping, which
// keeps the trait's promises; the mapping lives as long as any handle, its
// length never changes, and mmap returns page-aligned (so 8-aligned) memory.
unsafe impl Region for MappedRegion {
    #[inline]
    fn len(&self) -> usize {
        self.inner.region.len()
    }
    #[inline]
    unsafe fn load_u32(&self, offset: usize, order: Ordering) -> u32 {
        // SAFETY: the caller's contract is forwarded unchanged. On a reader's
        // read-only mapping std allows only `Relaxed` atomic loads (see
        // `AtomicU32::from_ptr`): the core's readers load `Relaxed` and
        // order with `fence(Acquire)`.
        unsafe { self.inner.region.load_u32(offset, order) }
    }
    #[inline]
    unsafe fn store_u32(&self, offset: usize, value: u32, order: Ordering) {
        debug_assert!(self.inner.writable, "store to a read-only channel mapping");
        // SAFETY: the caller's contract (which includes "the region is
        // writable") is forwarded unchanged.
        unsafe { self.inner.region.store_u32(offset, value, order) }
    }
    #[inline]
    unsafe fn copy_in(&self, offset: usize, src: &[u8]) {
        debug_assert!(self.inner.writable, "copy into a read-only channel mapping");
        // SAFETY: the caller's contract is forwarded unchanged.
        unsafe { self.inner.region.copy_in(offset, src) }
    }
    #[inline]
    unsafe fn copy_out(&self, offset: usize, dst: &mut [u8]) {
        // SAFETY: the caller's contract is forwarded unchanged.
        unsafe { self.inner.region.copy_out(offset, dst) }
    }
    #[inline]
    unsafe fn bytes(&self, offset: usize, len: usize) -> &[u8] {
        // SAFETY: the caller's contract is forwarded unchanged; the borrow
        // is tied to `self`, so it cannot outlive the mapping.
        unsafe { self.inner.region.bytes(offset, len) }
    }
    #[inline]
    unsafe fn bytes_mut(&self, offset: usize, len: usize) -> &mut [u8] {
        debug_assert!(
            self.inner.writable,
            "mutable borrow of a read-only channel mapping"
        );
        // SAFETY: the caller's contract is forwarded unchanged.
        unsafe { self.inner.region.bytes_mut(offset, len) }
    }
    #[inline]
    fn prefetch(&self, offset: usize, len: usize) {
        // Forwarded, or the trait's default (nothing) would stop readers
        // reading ahead over the batches of a channel file.
        self.inner.region.prefetch(offset, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn touching_pages_changes_no_byte() {
        let file = tempfile::tempfile().unwrap();
        let len = 3 * TOUCH_STRIDE + 64;
        file.set_len(len as u64).unwrap();
        let region = MappedRegion::map(&file, len, true).unwrap();
        region.touch_pages();
        region.prefault_for_writing().unwrap();
        let mut bytes = vec![1u8; len];
        // SAFETY: in bounds; nothing else uses this private file.
        unsafe { region.copy_out(0, &mut bytes) };
        assert!(bytes.iter().all(|&b| b == 0));
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn a_read_only_region_never_flushes_or_prefaults() {
        let file = tempfile::tempfile().unwrap();
        file.set_len(4096).unwrap();
        let region = MappedRegion::map(&file, 4096, false).unwrap();
        assert!(!region.is_writable());
        region.prefault_for_writing().unwrap(); // a no-op, not a fault
        assert!(region.flush_range(0, 4096).is_ok());
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn too_short_a_file_is_a_region_error() {
        let file = tempfile::tempfile().unwrap();
        file.set_len(64).unwrap();
        let err = MappedRegion::map(&file, 64, false).unwrap_err();
        assert!(matches!(
            err,
            MapError::Region(RegionError::TooSmall { len: 64, .. })
        ));
    }
}
