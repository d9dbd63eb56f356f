//! kekbit 0.3.5, our predecessor, as a system under test: its own `/dev/shm`
//! channel files, its `ShmWriter` and `ShmReader`.

use std::path::{Path, PathBuf};

use kekbit::api::{EncoderHandler, Reader as _, Writer as _};
use kekbit::core::{Metadata, ShmReader, ShmWriter, TickUnit};

use crate::pipe::{Receiver, Sender};
use crate::{Res, fail};

/// Capacity hint for `records` records of `len` bytes: 0.3.5 frames a
/// record as an 8-byte length and the payload padded to 8, and caps the
/// record length at 1/128 of the capacity.
fn capacity(len: usize, records: u64) -> Res<u32> {
    let span = 8 + len.div_ceil(8) * 8;
    let bytes = (span as u64 * records + 4096).max(128 * (span as u64 + 64));
    u32::try_from(bytes).map_err(|_| fail("kekbit 0.3.5: channel over 4 GiB"))
}

/// A 0.3.5 channel: its folder and id; the writer creates the file.
pub struct Channel035 {
    root: PathBuf,
    id: u64,
}

impl Channel035 {
    /// A channel `id` under `root` (a folder in `/dev/shm` or on disk).
    pub fn new(root: &Path, id: u64) -> Self {
        Self {
            root: root.to_owned(),
            id,
        }
    }

    /// Creates the channel and its writer, sized for `records` records of
    /// `len` bytes.
    pub fn writer(&self, len: usize, records: u64) -> Res<Tx035> {
        let metadata = Metadata::new(
            7,
            self.id,
            capacity(len, records)?,
            len as u32,
            60,
            TickUnit::Secs,
        );
        kekbit::core::shm_writer(&self.root, &metadata, EncoderHandler::default())
            .map(Tx035)
            .map_err(|e| fail(format!("kekbit 0.3.5 writer: {e:?}")))
    }

    /// Opens a reader, waiting up to 10 s for the writer to create the
    /// channel.
    pub fn reader(&self) -> Res<Rx035> {
        kekbit::core::try_shm_reader(&self.root, self.id, 10_000, 2_000)
            .map(Rx035)
            .map_err(|e| fail(format!("kekbit 0.3.5 reader: {e:?}")))
    }

    /// The channel file's path.
    pub fn path(&self) -> PathBuf {
        kekbit::core::storage_path(&self.root, self.id).into_path_buf()
    }
}

impl Drop for Channel035 {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path());
    }
}

/// kekbit 0.3.5's writer as a [`Sender`].
pub struct Tx035(pub ShmWriter<EncoderHandler>);

impl Sender for Tx035 {
    #[inline]
    fn send(&mut self, record: &[u8]) -> Res<()> {
        match self.0.write(&record) {
            Ok(_) => Ok(()),
            Err(e) => Err(fail(format!("kekbit 0.3.5 write: {e:?}"))),
        }
    }
}

impl Tx035 {
    /// Flushes the whole mapping (0.3.5's only durability call).
    pub fn flush(&mut self) -> Res<()> {
        Ok(self.0.flush()?)
    }
}

/// kekbit 0.3.5's reader as a [`Receiver`].
pub struct Rx035(pub ShmReader);

impl Receiver for Rx035 {
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
                Err(kekbit::api::ReadError::Closed) => return Ok(n),
                Err(e) => return Err(fail(format!("kekbit 0.3.5 read: {e:?}"))),
            }
        }
    }
}
