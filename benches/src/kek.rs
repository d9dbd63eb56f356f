//! kekbit (this workspace) as a system under test: channels in files under
//! `/dev/shm` or on disk, written and read through `kekbit-nostd`'s
//! `Writer` and `Reader`.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use kekbit_nostd::format::{HEADER_LEN, MARKER_LEN, PAYLOAD_OFFSET, RECORD_ALIGN};
use kekbit_nostd::{ChannelConfig, ReadError, Reader, Region, SliceRegion, Writer};
use memmap2::{MmapMut, MmapOptions};

use crate::pipe::{Receiver, Sender};
use crate::{Res, fail};

/// Bytes one record of `len` payload bytes takes in a channel.
pub fn record_span(len: usize) -> usize {
    PAYLOAD_OFFSET + len.div_ceil(RECORD_ALIGN) * RECORD_ALIGN
}

/// File length for a channel that holds `records` records of `len` bytes.
pub fn file_len(len: usize, records: u64) -> usize {
    let bytes = HEADER_LEN + record_span(len) * records as usize + MARKER_LEN;
    bytes.div_ceil(4096) * 4096
}

/// A channel file mapped into this process; removed on drop if this
/// process created it.
pub struct ChannelFile {
    map: MmapMut,
    _file: File,
    path: PathBuf,
    owner: bool,
}

impl ChannelFile {
    /// Creates a zeroed channel file of `len` bytes at `path` and maps it;
    /// `prefault` maps every page in up front (`MAP_POPULATE`).
    pub fn create(path: &Path, len: usize, prefault: bool) -> Res<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| fail(format!("create {}: {e}", path.display())))?;
        file.set_len(len as u64)?;
        let mut options = MmapOptions::new();
        if prefault {
            options.populate();
        }
        // SAFETY: the file was just created by us and is not truncated
        // while mapped; concurrent access goes through kekbit's protocol.
        let map = unsafe { options.map_mut(&file) }?;
        Ok(Self {
            map,
            _file: file,
            path: path.to_owned(),
            owner: true,
        })
    }

    /// Maps an existing channel file (created by another process).
    pub fn open(path: &Path) -> Res<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| fail(format!("open {}: {e}", path.display())))?;
        // SAFETY: the creator never truncates the file while it is mapped.
        let map = unsafe { MmapOptions::new().map_mut(&file) }?;
        Ok(Self {
            map,
            _file: file,
            path: path.to_owned(),
            owner: false,
        })
    }

    /// The mapping as a kekbit region.
    pub fn region(&self) -> Res<SliceRegion<'_>> {
        // SAFETY: the mapping lives as long as the returned borrow of
        // `self`, and every access to it goes through the region's atomics
        // and the protocol's publish/acquire rules.
        Ok(unsafe { SliceRegion::from_raw_parts(self.map.as_ptr().cast_mut(), self.map.len()) }?)
    }

    /// The mapped bytes, for the machine-limit measurements.
    ///
    /// # Safety
    ///
    /// No other borrow of the mapping, in this or another process, writes
    /// the bytes the caller accesses non-atomically while the slice lives.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn bytes_mut(&self) -> &mut [u8] {
        // SAFETY: the mapping is valid for its length while `self` lives;
        // exclusivity is the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_ptr().cast_mut(), self.map.len()) }
    }

    /// Makes bytes `offset..offset + len` of the mapping durable.
    pub fn flush_range(&self, offset: usize, len: usize) -> Res<()> {
        Ok(self.map.flush_range(offset, len)?)
    }
}

impl Drop for ChannelFile {
    fn drop(&mut self) {
        if self.owner {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The configuration the benchmarks use for records of up to `len` bytes.
pub fn config(len: usize) -> ChannelConfig {
    ChannelConfig::new(0xBE7C).max_record_len(len as u32)
}

/// kekbit's writer as a [`Sender`].
pub struct KekTx<R: Region>(pub Writer<R>);

impl<R: Region> Sender for KekTx<R> {
    #[inline]
    fn send(&mut self, record: &[u8]) -> Res<()> {
        match self.0.write(record) {
            Ok(_) => Ok(()),
            Err(e) => Err(fail(format!("kekbit write: {e}"))),
        }
    }
}

/// kekbit's reader as a [`Receiver`].
pub struct KekRx<'a, R: Region + ?Sized>(pub Reader<'a, R>);

impl<R: Region + ?Sized> Receiver for KekRx<'_, R> {
    #[inline]
    fn poll<F: FnMut(&[u8])>(&mut self, mut each: F) -> Res<usize> {
        let mut n = 0;
        loop {
            match self.0.try_read() {
                Ok(Some(record)) => {
                    each(record);
                    n += 1;
                }
                Ok(None) | Err(ReadError::Closed) => return Ok(n),
                Err(e) => return Err(fail(format!("kekbit read: {e}"))),
            }
        }
    }
}

/// Opens a reader on a region whose writer may not have published the
/// header yet (another process): retries for up to 10 s.
pub fn open_reader<R: Region + ?Sized>(region: &R) -> Res<Reader<'_, R>> {
    let start = std::time::Instant::now();
    loop {
        match Reader::open(region) {
            Ok(reader) => return Ok(reader),
            Err(e) if start.elapsed().as_secs() >= 10 => {
                return Err(fail(format!("kekbit reader never saw a header: {e}")));
            }
            Err(_) => std::thread::yield_now(),
        }
    }
}
