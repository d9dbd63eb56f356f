//! kekbit (this workspace) as a system under test: channel files under
//! `/dev/shm` or on disk, written and read through `kekbit-std`, as users do;
//! and plain mapped files for the machine-limit measurements.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use kekbit_nostd::ChannelConfig;
use kekbit_nostd::format::{
    BATCH_MARKER_LEN, HEADER_LEN, MARKER_LEN, PAYLOAD_OFFSET, RECORD_ALIGN,
};
use kekbit_std::{ChannelReader, Durability, ShmReader, ShmWriter, WriterOptions};
use memmap2::{MmapMut, MmapOptions};

use crate::pipe::{Receiver, Sender, stamp};
use crate::{Res, fail};

/// Bytes one record of `len` payload bytes takes in a channel.
pub fn record_span(len: usize) -> usize {
    PAYLOAD_OFFSET + len.div_ceil(RECORD_ALIGN) * RECORD_ALIGN
}

/// Record-area capacity for `records` records of `len` bytes, written in
/// batches of `batch` (1: one by one; each batch adds an 8-byte marker).
pub fn capacity(len: usize, records: u64, batch: u64) -> Res<u32> {
    let markers = if batch > 1 {
        records.div_ceil(batch) * BATCH_MARKER_LEN as u64
    } else {
        0
    };
    let bytes =
        (record_span(len) as u64 * records + markers + MARKER_LEN as u64).next_multiple_of(4096);
    u32::try_from(bytes).map_err(|_| fail("kekbit: channel over 4 GiB"))
}

/// File length for a plain mapped file of `records` records of `len` bytes.
pub fn file_len(len: usize, records: u64) -> usize {
    let bytes = HEADER_LEN + record_span(len) * records as usize + MARKER_LEN;
    bytes.div_ceil(4096) * 4096
}

/// Creates a channel at `path` for `records` records of `len` bytes, with
/// kekbit-std's defaults except where named.
pub fn create(
    path: &Path,
    len: usize,
    records: u64,
    prefault: bool,
    durability: Durability,
) -> Res<KekTx> {
    create_config(path, len, records, prefault, durability, false, 1)
}

/// As [`create`], with per-record CRC32C checksums on or off, sized for
/// records written in batches of `batch` (1: one by one).
pub fn create_config(
    path: &Path,
    len: usize,
    records: u64,
    prefault: bool,
    durability: Durability,
    checksums: bool,
    batch: u64,
) -> Res<KekTx> {
    let config = ChannelConfig::new(0xBE7C)
        .max_record_len(len as u32)
        .capacity_bytes(capacity(len, records, batch)?)
        .checksums(checksums);
    let writer = WriterOptions::new(config)
        .prefault(prefault)
        .durability(durability)
        .create(path)?;
    Ok(KekTx(writer))
}

/// Opens the channel at `path`, waiting up to 10 s for it to appear.
pub fn open(path: &Path) -> Res<ShmReader> {
    Ok(ShmReader::open_timeout(path, Duration::from_secs(10))?)
}

/// kekbit's writer as a [`Sender`].
pub struct KekTx(pub ShmWriter);

impl Sender for KekTx {
    #[inline]
    fn send(&mut self, record: &[u8]) -> Res<()> {
        match self.0.write(record) {
            Ok(_) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// `ShmWriter::batch`: each record copied in with `ShmBatch::write`,
    /// all published by `publish`.
    #[inline]
    fn send_batch(&mut self, record: &mut [u8], first: u64, count: u64) -> Res<()> {
        let mut batch = self.0.batch();
        for seq in first..first + count {
            stamp(record, seq);
            batch.write(record)?;
        }
        batch.publish()?;
        Ok(())
    }
}

/// kekbit's reader as a [`Receiver`].
pub struct KekRx<'a>(pub ChannelReader<'a>);

impl<'a> KekRx<'a> {
    /// A reader at the start of `channel`.
    pub fn new(channel: &'a ShmReader) -> Res<Self> {
        Ok(Self(channel.reader()?))
    }
}

impl Receiver for KekRx<'_> {
    #[inline]
    fn poll<F: FnMut(&[u8])>(&mut self, mut each: F) -> Res<usize> {
        let mut n = 0;
        loop {
            match self.0.try_read() {
                Ok(Some(record)) => {
                    each(record);
                    n += 1;
                }
                Ok(None) => return Ok(n),
                Err(e) if e.is_end() => return Ok(n),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// A plain file mapped into this process (for the machine limits);
/// removed on drop if this process created it.
pub struct ChannelFile {
    map: MmapMut,
    _file: File,
    path: PathBuf,
    owner: bool,
}

impl ChannelFile {
    /// Creates a zeroed file of `len` bytes at `path` and maps it;
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
        // while mapped; concurrent access to it is atomic.
        let map = unsafe { options.map_mut(&file) }?;
        Ok(Self {
            map,
            _file: file,
            path: path.to_owned(),
            owner: true,
        })
    }

    /// Maps an existing file (created by another process).
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
}

impl Drop for ChannelFile {
    fn drop(&mut self) {
        if self.owner {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Removes a channel file when dropped.
pub struct Remove(pub PathBuf);

impl Drop for Remove {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
