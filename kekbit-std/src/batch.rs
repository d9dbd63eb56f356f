//! Batches on a channel file: several records published by one store, with
//! the durability policy and the heartbeat applied once per batch.

use std::fmt;

use kekbit_nostd::format::{PAYLOAD_OFFSET, RECORD_ALIGN};
use kekbit_nostd::{Encode, EncodeError, Handler, RecordSink};

use crate::error::ChannelError;
use crate::mapping::MappedRegion;
use crate::writer::{ShmWriter, Tail};

/// Records written together on a channel file and published by one store;
/// see [`ShmWriter::batch`].
///
/// Nothing written through a batch is visible until it is published, by
/// [`ShmBatch::publish`] or when the batch is dropped. Each record keeps
/// the rules single writes follow (maximum length, checksums, the full
/// rule); a record that does not fit publishes the records staged before
/// it, marks the channel full and returns [`WriteError::Full`] with its
/// figures (see [`kekbit_nostd::Batch`]).
///
/// The whole batch counts as one write for the writer's
/// [`Durability`](crate::Durability) policy: under `EveryRecord`, a batch of
/// 32 records is flushed once, after it is published; under
/// `EveryRecords(n)` and `EveryBytes(n)` its records and bytes count
/// together. The heartbeat clock is read once, when the batch begins.
///
/// [`WriteError::Full`]: kekbit_nostd::WriteError::Full
///
/// # Example
///
/// ```
/// use kekbit_nostd::{ChannelConfig, PlainHandler};
/// use kekbit_std::{ShmReader, ShmWriter};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("batched.kekbit");
/// let mut writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?;
/// let channel = ShmReader::open(&path)?;
/// let mut reader = channel.reader()?;
///
/// let mut batch = writer.batch();
/// batch.write(b"copied")?;
/// batch.write_with(&mut PlainHandler, "encoded")?;
/// let mut grant = batch.reserve(8)?;
/// grant[..4].copy_from_slice(b"zero");
/// grant.commit(4)?;
/// assert_eq!(reader.try_read()?, None); // nothing is visible yet
/// assert_eq!(batch.publish()?, 3);
///
/// let records: Vec<_> = reader.records().collect::<Result<_, _>>()?;
/// assert_eq!(records, [&b"copied"[..], b"encoded", b"zero"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ShmBatch<'w> {
    /// The core batch; `None` only once [`finish`](Self::finish) ran, which
    /// only `publish` (consuming the batch) and `drop` call.
    batch: Option<kekbit_nostd::Batch<'w, MappedRegion>>,
    tail: &'w mut Tail,
    progress: Progress,
}

/// What a batch wrote, for the durability bookkeeping once it is published.
#[derive(Debug, Clone, Copy)]
struct Progress {
    /// Record-area offset where the batch began (its first marker).
    start: u32,
    /// Record-area offset after the last record written through the batch;
    /// `start` while there is none.
    end: u32,
    /// Records written through the batch; each is published by the time
    /// the batch is (staged records are published by `publish`, by `drop`,
    /// or by the write that found the channel full).
    records: u64,
}

impl Progress {
    #[inline]
    fn wrote(&mut self, position: u32, len: usize) {
        let span = (PAYLOAD_OFFSET + len.next_multiple_of(RECORD_ALIGN)) as u32;
        self.end = self.end.max(position + span);
        self.records += 1;
    }
}

impl<'w> ShmBatch<'w> {
    pub(crate) fn new(writer: &'w mut ShmWriter) -> Self {
        writer.pacer.beat_if_due(&mut writer.writer);
        let start = writer.writer.position();
        Self {
            batch: Some(writer.writer.batch()),
            tail: &mut writer.tail,
            progress: Progress {
                start,
                end: start,
                records: 0,
            },
        }
    }

    #[inline]
    fn core(&mut self) -> &mut kekbit_nostd::Batch<'w, MappedRegion> {
        self.batch
            .as_mut()
            .expect("kekbit bug: a batch used after it was published")
    }

    /// Stages one record, copied from `payload`; returns its position. It
    /// becomes visible when the batch is published.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{ChannelConfig, WriteError};
    /// # use kekbit_std::ShmWriter;
    /// # let dir = tempfile::tempdir()?;
    /// let config = ChannelConfig::new(1).capacity_bytes(4096).max_record_len(8);
    /// let mut writer = ShmWriter::create(dir.path().join("c.kekbit"), &config)?;
    /// let mut batch = writer.batch();
    /// assert_eq!(batch.write(b"first")?, 8); // after the 8-byte batch marker
    /// let err = batch.write(b"far too long").unwrap_err();
    /// assert!(matches!(err.write_error(), Some(WriteError::TooLarge { len: 12, max: 8 })));
    /// assert_eq!(batch.publish()?, 1); // the batch goes on after a refused record
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn write(&mut self, payload: &[u8]) -> Result<u32, ChannelError> {
        match self.core().write(payload) {
            Ok(position) => {
                self.progress.wrote(position, payload.len());
                Ok(position)
            }
            Err(e) => Err(self.tail.write_error(e)),
        }
    }

    /// Encodes `record` through `handler` straight into the batch; returns
    /// its position. See [`ShmWriter::write_with`].
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::{ShmReader, ShmWriter};
    /// use kekbit_nostd::{Handler, PlainHandler, SequenceHandler};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// let mut writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// let mut handler = SequenceHandler::new(1).chain(PlainHandler);
    /// let mut batch = writer.batch();
    /// for word in ["a", "b"] {
    ///     batch.write_with(&mut handler, word)?;
    /// }
    /// drop(batch); // publishes
    /// let channel = ShmReader::open(&path)?;
    /// let second = channel.reader()?.records().nth(1).unwrap()?;
    /// assert_eq!(SequenceHandler::split(second), Some((2, &b"b"[..])));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_with<H, E>(&mut self, handler: &mut H, record: &E) -> Result<u32, ChannelError>
    where
        H: Handler + ?Sized,
        E: Encode + ?Sized,
    {
        let mut measured = Measured {
            inner: handler,
            len: 0,
        };
        match self.core().write_with(&mut measured, record) {
            Ok(position) => {
                self.progress.wrote(position, measured.len);
                Ok(position)
            }
            Err(e) => Err(self.tail.write_error(e)),
        }
    }

    /// Reserves space for a record of up to `len` bytes inside the batch,
    /// to fill in place; [`ShmBatchGrant::commit`] stages it, and a grant
    /// dropped without commit stages nothing.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::ShmWriter;
    /// # let dir = tempfile::tempdir()?;
    /// let mut writer = ShmWriter::create(dir.path().join("c.kekbit"), &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// let mut batch = writer.batch();
    /// let mut grant = batch.reserve(16)?;
    /// grant[..3].copy_from_slice(b"abc");
    /// grant.commit(3)?;
    /// drop(batch.reserve(16)?); // stages nothing
    /// assert_eq!(batch.publish()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reserve(&mut self, len: usize) -> Result<ShmBatchGrant<'_, 'w>, ChannelError> {
        let Self {
            batch,
            tail,
            progress,
        } = self;
        let batch = batch
            .as_mut()
            .expect("kekbit bug: a batch used after it was published");
        match batch.reserve(len) {
            Ok(grant) => Ok(ShmBatchGrant {
                grant,
                tail,
                progress,
            }),
            Err(e) => Err(tail.write_error(e)),
        }
    }

    /// Records staged and not yet published.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::ShmWriter;
    /// # let dir = tempfile::tempdir()?;
    /// let mut writer = ShmWriter::create(dir.path().join("c.kekbit"), &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// let mut batch = writer.batch();
    /// batch.write(b"x")?;
    /// assert_eq!(batch.pending(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pending(&self) -> usize {
        self.batch.as_ref().map_or(0, |b| b.pending())
    }

    /// Bytes left for records after those staged, framing included; see
    /// [`kekbit_nostd::Batch::remaining_bytes`].
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::ShmWriter;
    /// # let dir = tempfile::tempdir()?;
    /// let mut writer = ShmWriter::create(dir.path().join("c.kekbit"), &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// let mut batch = writer.batch();
    /// batch.write(&[0; 8])?;
    /// // 8 bytes of end marker kept aside, 8 of batch marker, 16 of record.
    /// assert_eq!(batch.remaining_bytes(), 4096 - 8 - 8 - 16);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remaining_bytes(&self) -> u32 {
        self.batch.as_ref().map_or(0, |b| b.remaining_bytes())
    }

    /// Publishes every staged record with one store, then applies the
    /// durability policy once for the whole batch; returns how many records
    /// the batch published in all. Dropping the batch does the same but
    /// cannot report a flush error.
    ///
    /// An error here is the policy's flush failing: the records are
    /// published (readers see them) but may not be on the device; a later
    /// flush retries from the same point.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::{Durability, WriterOptions};
    /// # let dir = tempfile::tempdir()?;
    /// let mut writer = WriterOptions::new(ChannelConfig::new(1).capacity_bytes(4096))
    ///     .durability(Durability::EveryRecord) // one flush per batch
    ///     .create(dir.path().join("journal.kekbit"))?;
    /// let mut batch = writer.batch();
    /// for i in 0..32u8 {
    ///     batch.write(&[i; 16])?;
    /// }
    /// assert_eq!(batch.publish()?, 32); // published and flushed
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish(mut self) -> Result<usize, ChannelError> {
        self.finish()
    }

    /// Publishes what is staged and does the bookkeeping, once.
    fn finish(&mut self) -> Result<usize, ChannelError> {
        let Some(batch) = self.batch.take() else {
            return Ok(0);
        };
        let published = batch.publish();
        let Progress {
            start,
            end,
            records,
        } = self.progress;
        if records == 0 {
            return Ok(published);
        }
        self.tail.published_span(start, end, records)?;
        Ok(published)
    }
}

impl Drop for ShmBatch<'_> {
    fn drop(&mut self) {
        // Nowhere to report a flush error from a drop; `publish` reports it,
        // and the next flush retries.
        let _ = self.finish();
    }
}

impl fmt::Debug for ShmBatch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShmBatch")
            .field("pending", &self.pending())
            .field("written", &self.progress.records)
            .finish_non_exhaustive()
    }
}

/// Space reserved in a batch for one record; see [`ShmBatch::reserve`].
/// Dereferences to the reserved bytes; dropping it stages nothing.
pub struct ShmBatchGrant<'b, 'w> {
    grant: kekbit_nostd::BatchGrant<'b, 'w, MappedRegion>,
    tail: &'b Tail,
    progress: &'b mut Progress,
}

impl ShmBatchGrant<'_, '_> {
    /// Stages the first `len` bytes of the grant as one record of the batch
    /// and returns its position.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{ChannelConfig, WriteError};
    /// # use kekbit_std::ShmWriter;
    /// # let dir = tempfile::tempdir()?;
    /// let mut writer = ShmWriter::create(dir.path().join("c.kekbit"), &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// let mut batch = writer.batch();
    /// let grant = batch.reserve(4)?;
    /// let err = grant.commit(5).unwrap_err();
    /// assert!(matches!(err.write_error(), Some(WriteError::CommitTooLong { committed: 5, reserved: 4 })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn commit(self, len: usize) -> Result<u32, ChannelError> {
        let Self {
            grant,
            tail,
            progress,
        } = self;
        match grant.commit(len) {
            Ok(position) => {
                progress.wrote(position, len);
                Ok(position)
            }
            Err(e) => Err(tail.write_error(e)),
        }
    }
}

impl std::ops::Deref for ShmBatchGrant<'_, '_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.grant
    }
}

impl std::ops::DerefMut for ShmBatchGrant<'_, '_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.grant
    }
}

impl fmt::Debug for ShmBatchGrant<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShmBatchGrant")
            .field("len", &self.grant.len())
            .finish_non_exhaustive()
    }
}

/// Why [`ShmWriter::write_all`] or
/// [`SharedWriter::write_all`](crate::SharedWriter::write_all) stopped: the
/// records before the failing one were published.
///
/// # Example
///
/// ```
/// # use kekbit_nostd::{ChannelConfig, WriteError};
/// # use kekbit_std::ShmWriter;
/// # let dir = tempfile::tempdir()?;
/// let config = ChannelConfig::new(1).capacity_bytes(4096).max_record_len(4);
/// let mut writer = ShmWriter::create(dir.path().join("c.kekbit"), &config)?;
/// let err = writer.write_all(&[b"ok", b"too long"]).unwrap_err();
/// assert_eq!(err.published, 1);
/// assert!(matches!(err.write_error(), Some(WriteError::TooLarge { len: 8, max: 4 })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct BatchError {
    /// How many records, from the first, were published. When the records
    /// were all published but the durability policy's flush failed, this is
    /// all of them and `error` is the I/O error.
    pub published: usize,
    /// Why the next record was not published, or why the flush failed.
    pub error: ChannelError,
}

impl BatchError {
    /// The core write error, if a record was refused (not a flush failure).
    pub fn write_error(&self) -> Option<kekbit_nostd::WriteError> {
        self.error.write_error()
    }
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "batch stopped after {} published records: {}",
            self.published, self.error
        )
    }
}

impl std::error::Error for BatchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// A handler that remembers how long the record it encoded was, so a batch
/// can account for it. It must forward every method of [`Handler`] that has
/// a default: a handler whose own method it hid would silently lose it
/// (`ShmBatch::write_with`'s example checks a `SequenceHandler`'s numbers).
struct Measured<'h, H: ?Sized> {
    inner: &'h mut H,
    len: usize,
}

impl<H: Handler + ?Sized> Handler for Measured<'_, H> {
    fn prefix(&mut self, sink: &mut RecordSink<'_>) -> Result<(), EncodeError> {
        self.inner.prefix(sink)
    }

    fn handle<E: Encode + ?Sized>(
        &mut self,
        record: &E,
        sink: &mut RecordSink<'_>,
    ) -> Result<(), EncodeError> {
        let before = sink.len();
        self.inner.handle(record, sink)?;
        self.len = sink.len() - before;
        Ok(())
    }

    fn published(&mut self) {
        self.inner.published()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::{self, Step};
    use crate::{Durability, SharedWriter, ShmReader, WriterOptions};
    use kekbit_nostd::format::HEADER_LEN;
    use kekbit_nostd::{ChannelConfig, PlainHandler, ReadError, TickUnit, WriteError};
    use std::path::Path;

    /// A channel of `capacity` bytes of records, records up to 64 bytes.
    fn create(dir: &Path, capacity: u32, durability: Durability) -> ShmWriter {
        let config = ChannelConfig::new(1)
            .capacity_bytes(capacity)
            .max_record_len(64);
        WriterOptions::new(config)
            .durability(durability)
            .create(dir.join("c.kekbit"))
            .unwrap()
    }

    /// Every record in the channel, and how it ends.
    fn read_all(dir: &Path) -> (Vec<Vec<u8>>, Option<ReadError>) {
        let channel = ShmReader::open(dir.join("c.kekbit")).unwrap();
        let mut reader = channel.reader().unwrap();
        let mut records = Vec::new();
        loop {
            match reader.try_read() {
                Ok(Some(r)) => records.push(r.to_vec()),
                Ok(None) => return (records, None),
                Err(e) => return (records, e.read_error()),
            }
        }
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn a_batch_that_fills_the_channel_exactly_then_full_keeps_its_figures() {
        let dir = tempfile::tempdir().unwrap();
        // 4096 bytes: 8 kept for the end marker, 8 for the batch marker,
        // then 255 records of 16 bytes fill the rest exactly.
        let mut writer = create(dir.path(), 4096, Durability::None);
        let mut batch = writer.batch();
        for i in 0..255u32 {
            batch.write(&i.to_le_bytes()).unwrap();
        }
        assert_eq!(batch.remaining_bytes(), 0);
        assert_eq!(batch.publish().unwrap(), 255);
        assert_eq!(writer.remaining_bytes(), 0);
        assert!(writer.is_open());
        assert_eq!(writer.tail.end, HEADER_LEN + 4096 - 8);
        let full = WriteError::Full {
            needed: 8,
            remaining: 0,
        };
        let err = writer.write_all(&[b""]).unwrap_err();
        assert_eq!((err.published, err.write_error()), (0, Some(full)));
        // Full with the same figures, whichever way one writes next.
        assert_eq!(writer.write(b"x").unwrap_err().write_error(), Some(full));
        assert_eq!(
            writer.batch().write(b"x").unwrap_err().write_error(),
            Some(full)
        );
        let (records, end) = read_all(dir.path());
        assert_eq!(records.len(), 255);
        assert_eq!(records[254], 254u32.to_le_bytes());
        assert_eq!(end, Some(ReadError::Full));
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn a_batch_that_does_not_fit_publishes_what_fits_then_marks_full() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = create(dir.path(), 256, Durability::EveryRecord);
        let mut batch = writer.batch();
        // 256 - 8 (end) - 8 (marker) = 240 bytes: three 72-byte records fit.
        for _ in 0..3 {
            batch.write(&[7; 64]).unwrap();
        }
        let err = batch.write(&[8; 64]).unwrap_err();
        let full = WriteError::Full {
            needed: 72,
            remaining: 24,
        };
        assert_eq!(err.write_error(), Some(full));
        assert_eq!(err.path(), dir.path().join("c.kekbit"));
        assert_eq!(batch.pending(), 0, "staged records were published");
        assert_eq!(
            batch.write(b"").unwrap_err().write_error(),
            Some(full),
            "a full channel keeps saying why"
        );
        assert_eq!(batch.publish().unwrap(), 3);
        assert!(!writer.is_open());
        // One flush for the batch, which covered the full marker too.
        assert_eq!(writer.tail.flushes, 1);
        assert_eq!(writer.tail.synced_from, HEADER_LEN + 8 + 3 * 72);
        let (records, end) = read_all(dir.path());
        assert_eq!(records, vec![vec![7; 64]; 3]);
        assert_eq!(end, Some(ReadError::Full));

        // write_all says how many it published.
        let dir = tempfile::tempdir().unwrap();
        let mut writer = create(dir.path(), 256, Durability::None);
        let err = writer.write_all(&[&[1; 64], &[2; 64], &[3; 64], &[4; 64]]);
        let err = err.unwrap_err();
        assert_eq!((err.published, err.write_error()), (3, Some(full)));
        assert!(
            err.to_string().contains("after 3 published records"),
            "{err}"
        );
        assert_eq!(read_all(dir.path()).0.len(), 3);
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn empty_batches_publish_nothing_and_flush_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = create(dir.path(), 4096, Durability::EveryRecord);
        assert_eq!(writer.batch().publish().unwrap(), 0);
        drop(writer.batch());
        assert_eq!(writer.write_all(&[]).unwrap(), 0);
        {
            let mut batch = writer.batch();
            {
                let _never_committed = batch.reserve(16).unwrap();
            }
            assert_eq!(batch.pending(), 0);
        }
        assert_eq!(writer.position(), 0);
        assert_eq!(writer.records_written(), 0);
        assert_eq!(writer.tail.flushes, 0);
        assert_eq!(read_all(dir.path()), (vec![], None));
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn empty_records_are_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = create(dir.path(), 4096, Durability::EveryBytes(24));
        assert_eq!(writer.write_all(&[b"", b""]).unwrap(), 8); // after the marker
        let mut batch = writer.batch();
        assert_eq!(batch.write(b"").unwrap(), 32);
        assert_eq!(batch.write_with(&mut PlainHandler, "").unwrap(), 40);
        assert_eq!(batch.reserve(0).unwrap().commit(0).unwrap(), 48);
        batch.publish().unwrap();
        // Two batches of 8 + 2 × 8 and 8 + 3 × 8 bytes: both reach 24.
        assert_eq!(writer.tail.flushes, 2);
        assert_eq!(writer.position(), 56);
        assert_eq!(read_all(dir.path()).0, vec![Vec::<u8>::new(); 5]);
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn every_policy_counts_a_batch_as_one_write() {
        let dir = tempfile::tempdir().unwrap();
        // (policy, flushes after 5 batches of 4 records of 16 bytes (72 bytes each)).
        let cases = [
            (Durability::None, 0),
            (Durability::OnClose, 0),
            (Durability::EveryRecord, 5),
            (Durability::EveryRecords(4), 5),
            (Durability::EveryRecords(6), 2),
            (Durability::EveryRecords(100), 0),
            (Durability::EveryBytes(72), 5),
            (Durability::EveryBytes(100), 2),
        ];
        for (i, (policy, flushes)) in cases.into_iter().enumerate() {
            let sub = dir.path().join(i.to_string());
            std::fs::create_dir(&sub).unwrap();
            let mut writer = create(&sub, 4096, policy);
            for b in 0..5u8 {
                match b % 3 {
                    0 => {
                        let mut batch = writer.batch();
                        for r in 0..4u8 {
                            batch.write(&[b, r, 0, 0, 0, 0, 0, 0]).unwrap();
                        }
                    }
                    1 => {
                        let mut batch = writer.batch();
                        for r in 0..4u8 {
                            let record = [b, r, 0, 0, 0, 0, 0, 0];
                            batch.write_with(&mut PlainHandler, &record[..]).unwrap();
                        }
                        batch.publish().unwrap();
                    }
                    _ => {
                        let records: Vec<[u8; 8]> =
                            (0..4u8).map(|r| [b, r, 0, 0, 0, 0, 0, 0]).collect();
                        let refs: Vec<&[u8]> = records.iter().map(|r| &r[..]).collect();
                        writer.write_all(&refs).unwrap();
                    }
                }
            }
            assert_eq!(writer.tail.flushes, flushes, "{policy:?}");
            // The bookkeeping ends where the writer is.
            assert_eq!(writer.tail.end, HEADER_LEN + 5 * 72, "{policy:?}");
            let unsynced = writer.tail.unsynced_records;
            assert!(unsynced < 4 * 5 || flushes == 0, "{policy:?}: {unsynced}");
            writer.close().unwrap();
            let (records, end) = read_all(&sub);
            assert_eq!(records.len(), 20, "{policy:?}");
            assert_eq!(records[19][..2], [4, 3]);
            assert_eq!(end, Some(ReadError::Closed));
        }
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn a_record_that_fits_only_without_the_marker_is_accounted_for() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = create(dir.path(), 256, Durability::EveryRecord);
        for len in [64, 64, 24] {
            writer.write(&vec![1; len]).unwrap(); // 176 of 248 used
        }
        // 72 left: a batch marker and a 72-byte record do not fit; the
        // record alone does, so it is published as a single record.
        let mut batch = writer.batch();
        let mut grant = batch.reserve(64).unwrap();
        grant.fill(2);
        assert_eq!(grant.commit(64).unwrap(), 176);
        assert_eq!(batch.pending(), 0);
        let full = WriteError::Full {
            needed: 8,
            remaining: 0,
        };
        assert_eq!(batch.write(b"").unwrap_err().write_error(), Some(full));
        assert_eq!(batch.publish().unwrap(), 1);
        assert_eq!(writer.position(), 248);
        assert_eq!(writer.tail.end, HEADER_LEN + 248);
        assert_eq!(writer.tail.flushes, 4);
        let (records, end) = read_all(dir.path());
        assert_eq!(records.len(), 4);
        assert_eq!(records[3], [2; 64]);
        assert_eq!(end, Some(ReadError::Full));
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn a_refused_record_leaves_the_batch_going() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = create(dir.path(), 4096, Durability::EveryRecord);
        let mut batch = writer.batch();
        batch.write(b"kept").unwrap();
        let err = batch.write(&[0; 65]).unwrap_err();
        assert_eq!(
            err.write_error(),
            Some(WriteError::TooLarge { len: 65, max: 64 })
        );
        let err = batch
            .write_with(&mut PlainHandler, &[0u8; 65][..])
            .unwrap_err();
        assert!(matches!(
            err.write_error(),
            Some(WriteError::TooLarge { .. })
        ));
        assert!(batch.reserve(65).is_err());
        let err = batch.reserve(4).unwrap().commit(5).unwrap_err();
        assert!(matches!(
            err.write_error(),
            Some(WriteError::CommitTooLong { .. })
        ));
        batch.write(b"also kept").unwrap();
        assert_eq!(batch.publish().unwrap(), 2);
        assert_eq!(writer.tail.flushes, 1);
        assert_eq!(
            read_all(dir.path()).0,
            [b"kept".to_vec(), b"also kept".to_vec()]
        );
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn a_flush_that_fails_is_reported_by_publish_and_write_all() {
        let dir = tempfile::tempdir().unwrap();
        fault::armed::arm(Step::FolderSync);
        fault::armed::arm(Step::Unpublish);
        let mut writer = create(dir.path(), 4096, Durability::EveryRecord);
        assert!(fault::armed::all_fired());
        let mut batch = writer.batch();
        batch.write(b"published").unwrap();
        let err = batch.publish().unwrap_err();
        assert!(matches!(err, ChannelError::Io { .. }), "{err}");
        let err = writer.write_all(&[b"also", b"published"]).unwrap_err();
        assert_eq!(err.published, 2);
        assert!(err.write_error().is_none(), "{err}");
        assert!(err.to_string().contains("power loss"), "{err}");
        // Dropping cannot report it, and still publishes.
        writer.batch().write(b"dropped").unwrap();
        let (records, _) = read_all(dir.path());
        assert_eq!(records.len(), 4);
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files, reads the clock
    fn a_batch_heartbeats_when_one_is_due() {
        let dir = tempfile::tempdir().unwrap();
        let config = ChannelConfig::new(1)
            .capacity_bytes(4096)
            .timeout(1_000_000, TickUnit::Millis)
            .creation_time(1);
        let mut writer = WriterOptions::new(config)
            .create(dir.path().join("c.kekbit"))
            .unwrap();
        let channel = ShmReader::open(dir.path().join("c.kekbit")).unwrap();
        let reader = channel.reader().unwrap();
        let beat = || reader.inner().heartbeat().unwrap();
        let first = beat();
        // Let the coarse clock move on by a few of its ticks.
        std::thread::sleep(std::time::Duration::from_millis(50));
        // Not due (a quarter of 1000 s): batches store none.
        writer.batch().write(b"a").unwrap();
        writer.write_all(&[b"b"]).unwrap();
        assert_eq!(beat(), first);
        writer.pacer.make_due();
        writer.batch().write(b"c").unwrap();
        let second = beat();
        assert!(second >= first + 20, "{first} -> {second}");
        std::thread::sleep(std::time::Duration::from_millis(50));
        writer.pacer.make_due();
        writer.write_all(&[b"d"]).unwrap();
        assert!(beat() >= second + 20);
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn shared_writers_batch_under_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let writer = std::sync::Arc::new(SharedWriter::new(create(
            dir.path(),
            1 << 16,
            Durability::None,
        )));
        std::thread::scope(|s| {
            for t in 0..4u8 {
                let writer = std::sync::Arc::clone(&writer);
                s.spawn(move || {
                    for i in 0..50u8 {
                        if i % 2 == 0 {
                            writer.write_all(&[&[t, i, 0], &[t, i, 1]]).unwrap();
                        } else {
                            writer
                                .batch(|b| {
                                    b.write(&[t, i, 0])?;
                                    b.write(&[t, i, 1])
                                })
                                .unwrap();
                        }
                    }
                });
            }
        });
        let records = read_all(dir.path()).0;
        assert_eq!(records.len(), 400);
        // Each pair stays together, in order.
        for pair in records.chunks(2) {
            assert_eq!(pair[0][..2], pair[1][..2]);
            assert_eq!((pair[0][2], pair[1][2]), (0, 1));
        }
        // A failing fill still publishes what it wrote before the error.
        let err = writer
            .batch(|b| {
                b.write(b"before")?;
                b.write(&[0; 65])
            })
            .unwrap_err();
        assert!(matches!(
            err.write_error(),
            Some(WriteError::TooLarge { .. })
        ));
        assert_eq!(read_all(dir.path()).0.len(), 401);
    }
}
