//! A writer several threads share.

use std::sync::{Mutex, MutexGuard, PoisonError};

use kekbit_nostd::{Encode, Handler};

use crate::batch::{BatchError, ShmBatch};
use crate::error::ChannelError;
use crate::writer::ShmWriter;

/// A channel writer that several threads share, behind a mutex: each
/// record is written whole, records from different threads never
/// interleave, and their order is the order in which threads took the lock.
///
/// It is `Send` and `Sync` because [`ShmWriter`] is `Send`: the mutex
/// admits one thread at a time. A thread that panics while holding the
/// lock (inside an encoder, say) leaves no partial record, since nothing is
/// published before a record is complete; the lock is then used as is.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use kekbit_nostd::ChannelConfig;
/// use kekbit_std::{SharedWriter, ShmReader, ShmWriter};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("shared.kekbit");
/// let writer = Arc::new(SharedWriter::new(ShmWriter::create(
///     &path,
///     &ChannelConfig::new(1).capacity_bytes(64 * 1024),
/// )?));
/// std::thread::scope(|s| {
///     for t in 0..4u8 {
///         let writer = Arc::clone(&writer);
///         s.spawn(move || {
///             for i in 0..100u8 {
///                 writer.write(&[t, i]).unwrap();
///             }
///         });
///     }
/// });
/// let channel = ShmReader::open(&path)?;
/// assert_eq!(channel.reader()?.records().count(), 400);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SharedWriter {
    inner: Mutex<ShmWriter>,
}

impl SharedWriter {
    /// Wraps `writer` for sharing.
    pub fn new(writer: ShmWriter) -> Self {
        Self {
            inner: Mutex::new(writer),
        }
    }

    /// Locks the writer, for several records in a row or a zero-copy
    /// [`reserve`](ShmWriter::reserve).
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::{SharedWriter, ShmWriter};
    /// # let dir = tempfile::tempdir()?;
    /// # let writer = SharedWriter::new(ShmWriter::create(dir.path().join("c.kekbit"), &ChannelConfig::new(1).capacity_bytes(4096))?);
    /// let mut guard = writer.lock();
    /// guard.write(b"first of a pair")?;
    /// guard.write(b"second of a pair")?; // no other thread's record between them
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lock(&self) -> MutexGuard<'_, ShmWriter> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends one record; see [`ShmWriter::write`].
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::{SharedWriter, ShmReader, ShmWriter};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// let writer = SharedWriter::new(ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?);
    /// writer.write(b"from any thread")?;
    /// writer.heartbeat();
    /// writer.flush()?;
    /// writer.close()?;
    /// let channel = ShmReader::open(&path)?;
    /// assert_eq!(channel.reader()?.records().count(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write(&self, payload: &[u8]) -> Result<u32, ChannelError> {
        self.lock().write(payload)
    }

    /// Encodes one record through `handler`; see [`ShmWriter::write_with`].
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::{SharedWriter, ShmReader, ShmWriter};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// let writer = SharedWriter::new(ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?);
    /// use kekbit_nostd::{Handler, PlainHandler, SequenceHandler};
    /// let mut handler = SequenceHandler::new(1).chain(PlainHandler);
    /// writer.write_with(&mut handler, "numbered")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_with<H, E>(&self, handler: &mut H, record: &E) -> Result<u32, ChannelError>
    where
        H: Handler + ?Sized,
        E: Encode + ?Sized,
    {
        self.lock().write_with(handler, record)
    }

    /// Writes every record of `records` as one batch, with no other
    /// thread's record between them; see [`ShmWriter::write_all`].
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::{SharedWriter, ShmReader, ShmWriter};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// let writer = SharedWriter::new(ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?);
    /// writer.write_all(&[b"request", b"its payload"])?;
    /// let channel = ShmReader::open(&path)?;
    /// assert_eq!(channel.reader()?.records().count(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_all(&self, records: &[&[u8]]) -> Result<u32, BatchError> {
        self.lock().write_all(records)
    }

    /// Holds the lock while `fill` writes a batch, then publishes it (and
    /// applies the durability policy) before letting other threads in;
    /// returns what `fill` returned. See [`ShmWriter::batch`].
    ///
    /// Records `fill` wrote before failing are published too, as dropping a
    /// batch does; `fill`'s error is returned rather than a flush error.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::{SharedWriter, ShmReader, ShmWriter};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// let writer = SharedWriter::new(ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?);
    /// let first = writer.batch(|batch| {
    ///     let first = batch.write(b"header")?;
    ///     for line in ["a", "b", "c"] {
    ///         batch.write(line.as_bytes())?;
    ///     }
    ///     Ok(first)
    /// })?;
    /// assert_eq!(first, 8); // after the batch's marker
    /// let channel = ShmReader::open(&path)?;
    /// assert_eq!(channel.reader()?.records().count(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn batch<T>(
        &self,
        fill: impl FnOnce(&mut ShmBatch<'_>) -> Result<T, ChannelError>,
    ) -> Result<T, ChannelError> {
        let mut guard = self.lock();
        let mut batch = guard.batch();
        let filled = fill(&mut batch);
        let published = batch.publish();
        let value = filled?;
        published?;
        Ok(value)
    }

    /// Stores a heartbeat now; see [`ShmWriter::heartbeat`], and
    /// [`write`](Self::write) for an example.
    pub fn heartbeat(&self) {
        self.lock().heartbeat();
    }

    /// Flushes every record written so far; see [`ShmWriter::flush`], and
    /// [`write`](Self::write) for an example.
    pub fn flush(&self) -> Result<(), ChannelError> {
        self.lock().flush()
    }

    /// Closes the channel and applies the durability policy; see
    /// [`ShmWriter::close`], and [`write`](Self::write) for an example.
    pub fn close(self) -> Result<(), ChannelError> {
        self.into_inner().close()
    }

    /// The writer, unshared.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::{SharedWriter, ShmReader, ShmWriter};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// let writer = SharedWriter::new(ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?);
    /// writer.write(b"shared")?;
    /// let writer: ShmWriter = writer.into_inner();
    /// assert_eq!(writer.records_written(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_inner(self) -> ShmWriter {
        self.inner
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl From<ShmWriter> for SharedWriter {
    fn from(writer: ShmWriter) -> Self {
        Self::new(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn shared_types_are_send_and_sync() {
        assert_send_sync::<SharedWriter>();
        assert_send_sync::<ShmWriter>();
        assert_send_sync::<crate::ShmReader>();
        assert_send_sync::<crate::ChannelReader<'static>>();
    }
}
