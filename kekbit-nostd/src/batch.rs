//! Batches: several records published by one store.
//!
//! A batch stages records after an 8-byte batch marker, storing each
//! record's framing with `Relaxed` stores, then publishes them all with one
//! `Release` store of the marker's commit word: its tag `01` and the byte
//! span of the records. Readers that meet a marker know how far published
//! bytes extend, and read ahead over them without touching lines the writer
//! is still filling.

use core::fmt;
use core::ops::{Deref, DerefMut};

use crate::encoder::{Encode, Handler, RecordSink};
use crate::error::WriteError;
use crate::format::*;
use crate::region::Region;
use crate::sync::Ordering;
use crate::writer::{PUBLISH, Writer, fits, remaining_at};

/// Records written together and published by one store; see
/// [`Writer::batch`].
///
/// Nothing written through a batch is visible until it is published, by
/// [`Batch::publish`] or when the batch is dropped. Each record keeps its
/// own framing and checksum, and the fit rule is the one single writes
/// follow, counting the marker's 8 bytes: a record that does not fit marks
/// the channel full after publishing the records staged before it. A batch
/// longer than a marker can cover ([`MAX_BATCH_SPAN`]) is published as
/// several, transparently.
///
/// # Example
///
/// ```
/// use kekbit_nostd::{AlignedBuffer, ChannelConfig, PlainHandler, Reader, SliceRegion, Writer};
///
/// let mut buffer = AlignedBuffer::<1024>::new();
/// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
/// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1).checksums(true))?;
/// let mut reader = Reader::open(writer.shared_region())?;
/// {
///     let mut batch = writer.batch();
///     batch.write(b"copied")?;
///     batch.write_with(&mut PlainHandler, "encoded")?;
///     let mut grant = batch.reserve(8)?;
///     grant[..4].copy_from_slice(b"zero");
///     grant.commit(4)?;
/// } // dropped: published
/// let all: Result<Vec<_>, _> = reader.records().collect();
/// assert_eq!(all?, [&b"copied"[..], b"encoded", b"zero"]);
/// # Ok::<(), Box<dyn core::error::Error>>(())
/// ```
pub struct Batch<'w, R: Region> {
    writer: &'w mut Writer<R>,
    /// Offset of the batch marker: the writer's position when the batch
    /// (re)started. Nothing at or after it is published by this batch yet.
    start: u32,
    /// Offset of the next staged record: `start + 8` while none is staged.
    /// `next + MARKER_LEN <= capacity` whenever `staged > 0`.
    next: u32,
    /// Records staged since `start`, not yet published.
    staged: u32,
    /// Records this batch has published so far.
    published: usize,
    /// Only under `--cfg kekbit_weakened_batch_order`, a loom negative
    /// control that no real build sets: the staged records' commit words,
    /// stored after the marker instead of before it.
    #[cfg(kekbit_weakened_batch_order)]
    deferred: heapless::Vec<(u32, u32), 16>,
    /// A record may be staged if it ends at or before this offset: the end
    /// marker's space kept aside, and no further from `start + 8` than one
    /// marker can cover. The fast path of [`place`](Self::place) is one
    /// comparison against it; every other case takes the full rules.
    limit: u64,
}

/// Where a record of a batch goes.
#[derive(Debug, Clone, Copy)]
enum Place {
    /// Staged at this offset, inside the batch.
    Staged(u32),
    /// Published on its own at the writer's position: the first record of
    /// a batch that fits only without the marker, or one longer than a
    /// marker can cover.
    Single,
}

impl<'w, R: Region> Batch<'w, R> {
    pub(crate) fn new(writer: &'w mut Writer<R>) -> Self {
        let start = writer.position;
        let limit = limit_at(&writer.header, start);
        Self {
            writer,
            start,
            next: start + BATCH_MARKER_LEN as u32,
            staged: 0,
            published: 0,
            #[cfg(kekbit_weakened_batch_order)]
            deferred: heapless::Vec::new(),
            limit,
        }
    }

    /// Stages one record, copied from `payload`; returns its position. It
    /// becomes visible when the batch is published.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, SliceRegion, Writer};
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// let mut batch = writer.batch();
    /// assert_eq!(batch.write(b"first")?, 8); // after the 8-byte marker
    /// assert_eq!(batch.write(b"second")?, 24);
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    #[inline]
    pub fn write(&mut self, payload: &[u8]) -> Result<u32, WriteError> {
        let len = self.admit(payload.len())?;
        let place = self.place(len)?;
        let position = self.position_of(place);
        // SAFETY: `place` proved the record fits at `position` before the
        // end marker's space; the bytes are past every published record.
        unsafe {
            self.writer
                .region
                .copy_in(HEADER_LEN + position as usize + PAYLOAD_OFFSET, payload)
        };
        Ok(self.finish(place, len))
    }

    /// Encodes `record` through `handler` straight into the batch; returns
    /// its position.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, Reader, SliceRegion, Writer};
    /// use kekbit_nostd::{Handler, PlainHandler, SequenceHandler};
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// let mut handler = SequenceHandler::new(7).chain(PlainHandler);
    /// let mut batch = writer.batch();
    /// batch.write_with(&mut handler, "a")?;
    /// batch.write_with(&mut handler, "b")?;
    /// batch.publish();
    /// let mut reader = Reader::open(writer.shared_region())?;
    /// let second = reader.records().nth(1).unwrap()?;
    /// assert_eq!(SequenceHandler::split(second), Some((8, &b"b"[..])));
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn write_with<H, E>(&mut self, handler: &mut H, record: &E) -> Result<u32, WriteError>
    where
        H: Handler + ?Sized,
        E: Encode + ?Sized,
    {
        self.writer.ensure_open()?;
        let header = self.writer.header;
        let max = header.max_record_len as usize;
        // Where the record's payload goes, and how much room the encoder
        // gets: while nothing is staged, the room a single record at
        // `start` would have, so that a record that fits only without the
        // marker can still be moved there.
        let (at, room) = if self.staged == 0 {
            let room = (remaining_at(&header, self.start) as usize)
                .saturating_sub(BATCH_MARKER_LEN)
                .min(max);
            (self.next, room)
        } else {
            let room = (remaining_at(&header, self.next) as usize)
                .saturating_sub(PAYLOAD_OFFSET)
                .min(max);
            (self.next, room)
        };
        let payload = HEADER_LEN + at as usize + PAYLOAD_OFFSET;
        let buf: &mut [u8] = if room == 0 {
            &mut []
        } else {
            // SAFETY: `at + 8 + room` is at most the end of the record area
            // (while nothing is staged, `at = start + 8` and room is the
            // single record's room at `start` minus 8); the bytes are past
            // every published record and only this borrow touches them
            // until the sink is dropped.
            unsafe { self.writer.region.bytes_mut(payload, room) }
        };
        let mut sink = RecordSink::new(buf);
        handler.handle(record, &mut sink)?;
        let len = sink.len();
        if len > max {
            return Err(WriteError::TooLarge {
                len,
                max: header.max_record_len,
            });
        }
        let len = len as u32; // <= max_record_len <= 2^30
        let place = self.place(len)?;
        if let Place::Single = place {
            // The record was encoded after the marker's space: move it back
            // to where a single record goes. It fitted the room, so all of
            // it was stored.
            let from = payload;
            let to = HEADER_LEN + self.start as usize + PAYLOAD_OFFSET;
            debug_assert!(to <= from);
            let span = from - to + len as usize;
            // SAFETY: `to..from + len` is unpublished space of the record
            // area (the record was encoded in it); this writer holds the
            // only borrow of it.
            let bytes = unsafe { self.writer.region.bytes_mut(to, span) };
            bytes.copy_within(from - to.., 0);
        }
        let position = self.finish(place, len);
        handler.published();
        Ok(position)
    }

    /// Reserves space for a record of up to `len` bytes inside the batch,
    /// to fill in place. [`BatchGrant::commit`] stages it; a grant dropped
    /// without commit stages nothing.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, Reader, SliceRegion, Writer};
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// let mut batch = writer.batch();
    /// let mut grant = batch.reserve(16)?;
    /// grant[..3].copy_from_slice(b"abc");
    /// grant.commit(3)?;
    /// drop(batch.reserve(16)?); // stages nothing
    /// assert_eq!(batch.publish(), 1);
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn reserve(&mut self, len: usize) -> Result<BatchGrant<'_, 'w, R>, WriteError> {
        let len = self.admit(len)?;
        let place = self.place(len)?;
        Ok(BatchGrant {
            batch: self,
            place,
            len: len as usize,
        })
    }

    /// Publishes every staged record with one store; returns how many
    /// records this batch published in all. Dropping the batch does the same.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, SliceRegion, Writer};
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// let mut batch = writer.batch();
    /// batch.write(b"x")?;
    /// assert_eq!(batch.publish(), 1);
    /// assert_eq!(writer.records_written(), 1);
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn publish(mut self) -> usize {
        self.flush(false);
        self.published
    }

    /// Records staged and not yet published.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, SliceRegion, Writer};
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// let mut batch = writer.batch();
    /// batch.write(b"x")?;
    /// assert_eq!(batch.pending(), 1);
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn pending(&self) -> usize {
        self.staged as usize
    }

    /// Bytes left for records after those staged, framing included; like
    /// [`Writer::remaining_bytes`], with the marker's space counted as used.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, SliceRegion, Writer};
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// let before = writer.remaining_bytes();
    /// let mut batch = writer.batch();
    /// batch.write(&[0; 8])?;
    /// assert_eq!(batch.remaining_bytes(), before - 8 - 16);
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn remaining_bytes(&self) -> u32 {
        if self.writer.ensure_open().is_err() {
            return 0;
        }
        remaining_at(&self.writer.header, self.next)
    }

    /// Checks the open state and the maximum record length.
    #[inline]
    fn admit(&self, len: usize) -> Result<u32, WriteError> {
        self.writer.ensure_open()?;
        let max = self.writer.header.max_record_len;
        if len > max as usize {
            return Err(WriteError::TooLarge { len, max });
        }
        Ok(len as u32) // <= max_record_len <= 2^30
    }

    /// Decides where a record of `len` payload bytes goes, publishing what
    /// must be published first; marks the channel full if it fits nowhere.
    #[inline]
    fn place(&mut self, len: u32) -> Result<Place, WriteError> {
        // The common case: the record fits in this batch. `limit` folds in
        // every rule `place_by_rules` checks for it (the end marker's space,
        // the span one marker can cover), so both agree on it.
        if self.next as u64 + record_span(len) as u64 <= self.limit {
            return Ok(Place::Staged(self.next));
        }
        self.place_by_rules(len)
    }

    /// [`place`](Self::place) for every case, the rare ones included.
    #[cold]
    #[inline(never)]
    fn place_by_rules(&mut self, len: u32) -> Result<Place, WriteError> {
        let header = self.writer.header;
        let span = record_span(len);
        let inside = self.next - self.start - BATCH_MARKER_LEN as u32;
        if self.staged > 0 && inside as u64 + span as u64 > MAX_BATCH_SPAN as u64 {
            // One marker cannot cover it: publish what is staged, and this
            // record goes on its own right after.
            self.flush(false);
            return self.place_single(len);
        }
        if span > MAX_BATCH_SPAN {
            return self.place_single(len);
        }
        let remaining = remaining_at(&header, self.next);
        if self.next as u64 + MARKER_LEN as u64 <= header.capacity_bytes as u64
            && fits(remaining, len)
        {
            return Ok(Place::Staged(self.next));
        }
        if self.staged == 0 {
            return self.place_single(len);
        }
        // Full: the staged records are published, then the full marker
        // right after them.
        Err(self.flush_full(len))
    }

    /// Places a record as a single record at the writer's position, with
    /// nothing staged.
    fn place_single(&mut self, len: u32) -> Result<Place, WriteError> {
        debug_assert_eq!(self.staged, 0);
        let remaining = remaining_at(&self.writer.header, self.start);
        if fits(remaining, len) {
            Ok(Place::Single)
        } else {
            Err(self
                .writer
                .mark_full_at(self.start, len as usize, remaining))
        }
    }

    fn position_of(&self, place: Place) -> u32 {
        match place {
            Place::Staged(at) => at,
            Place::Single => self.start,
        }
    }

    /// Frames a record whose payload is in place; returns its position.
    #[inline(always)]
    fn finish(&mut self, place: Place, len: u32) -> u32 {
        match place {
            Place::Staged(at) => {
                let after = self.writer.frame(at, len);
                // Published later by the marker's `Release` store.
                #[cfg(not(kekbit_weakened_batch_order))]
                self.writer
                    .store_word(at, COMMIT_RECORD_TAG | len, Ordering::Relaxed);
                #[cfg(kekbit_weakened_batch_order)]
                self.deferred
                    .push((at, len))
                    .expect("the negative control's batches are small");
                self.next = after;
                self.staged += 1;
                at
            }
            Place::Single => {
                let at = self.writer.publish_single(len);
                self.published += 1;
                self.restart();
                at
            }
        }
    }

    /// Publishes the staged records, then marks the channel full after them.
    fn flush_full(&mut self, len: u32) -> WriteError {
        let remaining = remaining_at(&self.writer.header, self.next);
        self.flush(true);
        // `flush` moved the writer to the end of the batch, where the full
        // marker was stored before the batch's marker was published.
        let needed = PAYLOAD_OFFSET as u64 + len as u64;
        self.writer.state = crate::writer::State::Full { needed, remaining };
        WriteError::Full { needed, remaining }
    }

    /// Publishes the staged records with one `Release` store of the marker.
    /// With `full`, the word after them is the full marker instead of empty.
    fn flush(&mut self, full: bool) {
        if self.staged == 0 {
            if full {
                let remaining = remaining_at(&self.writer.header, self.start);
                self.writer.mark_full_at(self.start, 0, remaining);
            }
            return;
        }
        let span = self.next - self.start - BATCH_MARKER_LEN as u32;
        let end = if full { COMMIT_FULL } else { COMMIT_EMPTY };
        // Everything the batch's readers may see is stored before the
        // marker: the records (staged), the word after them, the count.
        // (`loom-tests` breaks each rule in a build of its own, under a
        // `kekbit_weakened_batch_*` cfg, to prove its models catch it.)
        #[cfg(not(kekbit_weakened_batch_clear))]
        self.writer.store_word(self.next, end, Ordering::Relaxed);
        let count_at = HEADER_LEN + self.start as usize + BATCH_COUNT_OFFSET;
        // SAFETY: the count word is inside the marker, which is in the
        // record area (`start + 8 <= next`, and `next` is in it); we are
        // the only writer and the marker is not published yet.
        unsafe {
            self.writer
                .region
                .store_u32(count_at, self.staged, Ordering::Relaxed)
        };
        self.writer
            .store_word(self.start, COMMIT_BATCH_TAG | span, PUBLISH);
        #[cfg(kekbit_weakened_batch_clear)]
        self.writer.store_word(self.next, end, Ordering::Relaxed);
        #[cfg(kekbit_weakened_batch_order)]
        for (at, len) in core::mem::take(&mut self.deferred) {
            self.writer
                .store_word(at, COMMIT_RECORD_TAG | len, Ordering::Relaxed);
        }
        self.writer.position = self.next;
        self.writer.records += self.staged as u64;
        self.published += self.staged as usize;
        self.staged = 0;
        self.restart();
    }

    /// Starts the next batch at the writer's position.
    fn restart(&mut self) {
        self.start = self.writer.position;
        self.next = self.start + BATCH_MARKER_LEN as u32;
        self.limit = limit_at(&self.writer.header, self.start);
    }
}

/// Where the records of a batch whose marker is at `start` may end at the
/// latest: `capacity - 8` (the end marker's space), and at most
/// [`MAX_BATCH_SPAN`] past the marker. A record of span `s` at `next` fits
/// both iff `next + s <= limit`: the first is `fits(remaining_at(next), len)`
/// (which implies `next + 8 <= capacity`), the second is `next - start - 8
/// + s <= MAX_BATCH_SPAN` (which implies `s <= MAX_BATCH_SPAN`).
#[inline]
fn limit_at(header: &crate::header::Header, start: u32) -> u64 {
    let end_marker = (header.capacity_bytes as u64).saturating_sub(MARKER_LEN as u64);
    let span = start as u64 + BATCH_MARKER_LEN as u64 + MAX_BATCH_SPAN as u64;
    end_marker.min(span)
}

impl<R: Region> Drop for Batch<'_, R> {
    fn drop(&mut self) {
        self.flush(false);
    }
}

impl<R: Region> fmt::Debug for Batch<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("start", &self.start)
            .field("next", &self.next)
            .field("staged", &self.staged)
            .field("published", &self.published)
            .finish_non_exhaustive()
    }
}

/// Space reserved for one record of a batch, filled in place and staged by
/// [`BatchGrant::commit`]. Dropping it stages nothing.
pub struct BatchGrant<'b, 'w, R: Region> {
    batch: &'b mut Batch<'w, R>,
    place: Place,
    /// Bytes reserved; `place` proved they fit.
    len: usize,
}

impl<R: Region> BatchGrant<'_, '_, R> {
    /// Stages the first `len` bytes of the grant as one record of the batch
    /// and returns its position.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, SliceRegion, WriteError, Writer};
    /// # let mut buffer = AlignedBuffer::<1024>::new();
    /// # let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// # let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// let mut batch = writer.batch();
    /// let grant = batch.reserve(4)?;
    /// assert_eq!(grant.commit(5), Err(WriteError::CommitTooLong { committed: 5, reserved: 4 }));
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn commit(self, len: usize) -> Result<u32, WriteError> {
        if len > self.len {
            return Err(WriteError::CommitTooLong {
                committed: len,
                reserved: self.len,
            });
        }
        Ok(self.batch.finish(self.place, len as u32))
    }

    fn at(&self) -> usize {
        HEADER_LEN + self.batch.position_of(self.place) as usize + PAYLOAD_OFFSET
    }
}

impl<R: Region> Deref for BatchGrant<'_, '_, R> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `place` proved the reserved bytes are in bounds and
        // unpublished; only this grant borrows them.
        unsafe { self.batch.writer.region.bytes(self.at(), self.len) }
    }
}

impl<R: Region> DerefMut for BatchGrant<'_, '_, R> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `deref`; `&mut self` makes this the only borrow.
        unsafe { self.batch.writer.region.bytes_mut(self.at(), self.len) }
    }
}

impl<R: Region> fmt::Debug for BatchGrant<'_, '_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchGrant")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// Why [`Writer::write_all`] stopped: the records before the failing one
/// were published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BatchError {
    /// How many records, from the first, were published.
    pub published: usize,
    /// Why the next one was not.
    pub error: WriteError,
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "batch stopped after {} records: {}",
            self.published, self.error
        )
    }
}

impl core::error::Error for BatchError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        Some(&self.error)
    }
}

#[cfg(test)]
mod fast_path_tests {
    //! `place`'s one-comparison fast path must agree with the full rules.
    use super::*;
    use crate::{AlignedBuffer, ChannelConfig, Header, ReadError, Reader, SliceRegion};

    #[test]
    fn the_limit_folds_in_the_end_marker_and_the_span_one_marker_covers() {
        let header = |capacity| {
            ChannelConfig::new(1)
                .header_for(HEADER_LEN + capacity as usize)
                .unwrap()
        };
        assert_eq!(limit_at(&header(256), 0), 248);
        assert_eq!(limit_at(&header(256), 200), 248);
        let big = header(MAX_CAPACITY);
        assert_eq!(limit_at(&big, 0), 8 + MAX_BATCH_SPAN as u64);
        assert_eq!(
            limit_at(&big, 1 << 31),
            (1 << 31) + 8 + MAX_BATCH_SPAN as u64
        );
        let end = MAX_CAPACITY as u64 - 8;
        assert_eq!(limit_at(&big, MAX_CAPACITY - 1024), end);
    }

    /// Every small channel, every record length: a batch of equal records
    /// publishes exactly as many as the fit rule allows, then marks the
    /// channel full with the rule's figures.
    #[test]
    fn batches_fill_every_small_channel_exactly_as_the_rules_say() {
        // Miri runs a sample of the sweep: it is some thousand times slower.
        let step = if cfg!(miri) { 40 } else { 8 };
        for capacity in (24..=200u32).step_by(step) {
            let max = Header::max_record_len_limit(capacity).min(48);
            for len in (0..=max).step_by(step / 8) {
                let mut buffer = AlignedBuffer::<{ HEADER_LEN + 200 }>::new();
                buffer.as_mut_slice().fill(0xA5);
                let region_len = HEADER_LEN + capacity as usize;
                let mut region =
                    SliceRegion::new(&mut buffer.as_mut_slice()[..region_len]).unwrap();
                let config = ChannelConfig::new(1).max_record_len(max);
                let mut writer = Writer::create(&mut region, &config).unwrap();
                let record = [7u8; 48];
                let mut batch = writer.batch();
                let mut written = 0u32;
                let error = loop {
                    match batch.write(&record[..len as usize]) {
                        Ok(_) => written += 1,
                        Err(e) => break e,
                    }
                };
                drop(batch);
                // The model: 8 bytes for the end marker; a marker and as many
                // records as fit, or else one record on its own.
                let span = record_span(len);
                let room = capacity - 8;
                let (expected, used) = if 8 + span <= room {
                    let k = (room - 8) / span;
                    (k, 8 + k * span)
                } else if span <= room {
                    (1, span)
                } else {
                    (0, 0)
                };
                let case = (capacity, len);
                assert_eq!(written, expected, "{case:?}");
                assert_eq!(
                    error,
                    WriteError::Full {
                        needed: 8 + len as u64,
                        remaining: room - used,
                    },
                    "{case:?}"
                );
                let mut reader = Reader::open(writer.shared_region()).unwrap();
                let mut read = 0;
                let end = loop {
                    match reader.try_read() {
                        Ok(Some(r)) => {
                            assert_eq!(r, &record[..len as usize], "{case:?}");
                            read += 1;
                        }
                        other => break other,
                    }
                };
                assert_eq!((read, end), (expected, Err(ReadError::Full)), "{case:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AlignedBuffer, ChannelConfig, PlainHandler, ReadError, Reader, SliceRegion};
    use std::vec::Vec;

    const LEN: usize = HEADER_LEN + 256;

    fn all(region: &SliceRegion<'_>) -> (Vec<Vec<u8>>, Option<ReadError>) {
        let mut reader = Reader::open(region).unwrap();
        let mut out = Vec::new();
        loop {
            match reader.try_read() {
                Ok(Some(r)) => out.push(r.to_vec()),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn nothing_is_visible_until_the_marker_is_published() {
        let mut buffer = AlignedBuffer::<LEN>::new();
        buffer.as_mut_slice().fill(0xA5);
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let mut writer = Writer::create(&mut region, &ChannelConfig::new(1)).unwrap();
        let mut reader = Reader::open(writer.shared_region()).unwrap();
        let mut batch = writer.batch();
        assert_eq!(batch.write(b"a").unwrap(), 8);
        assert_eq!(batch.write_with(&mut PlainHandler, &b"bc"[..]).unwrap(), 24);
        let mut grant = batch.reserve(8).unwrap();
        grant[..1].copy_from_slice(b"d");
        assert_eq!(grant.commit(1).unwrap(), 40);
        {
            let _unused = batch.reserve(8).unwrap(); // dropped: stages nothing
        }
        assert_eq!(batch.pending(), 3);
        assert_eq!(reader.try_read(), Ok(None));
        assert_eq!(batch.publish(), 3);
        assert_eq!(writer.position(), 56);
        assert_eq!(writer.records_written(), 3);
        let got: Vec<_> = reader.records().map(Result::unwrap).collect();
        assert_eq!(got, [&b"a"[..], b"bc", b"d"]);
        assert_eq!(reader.position(), 56);
        assert_eq!(reader.try_read(), Ok(None));
        // The marker's count and span are what the format says.
        drop(writer);
        let bytes = buffer.as_mut_slice();
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        assert_eq!(word(HEADER_LEN), COMMIT_BATCH_TAG | 48);
        assert_eq!(word(HEADER_LEN + 4), 3);
        assert_eq!(word(HEADER_LEN + 56), COMMIT_CLOSED);
    }

    #[test]
    fn an_empty_batch_publishes_nothing() {
        let mut buffer = AlignedBuffer::<LEN>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let mut writer = Writer::create(&mut region, &ChannelConfig::new(1)).unwrap();
        assert_eq!(writer.batch().publish(), 0);
        drop(writer.batch());
        assert_eq!(writer.position(), 0);
        writer.write(b"single").unwrap();
        let (records, _) = all(writer.shared_region());
        assert_eq!(records, [b"single".to_vec()]);
    }

    #[test]
    fn batches_and_single_records_interleave() {
        let mut buffer = AlignedBuffer::<{ HEADER_LEN + 1024 }>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let config = ChannelConfig::new(1).checksums(true);
        let mut writer = Writer::create(&mut region, &config).unwrap();
        writer.write(b"1").unwrap();
        // The first record's position, after the marker.
        assert_eq!(writer.write_all(&[b"2", b"3"]).unwrap(), 16 + 8);
        writer.write(b"4").unwrap();
        assert_eq!(writer.write_all(&[b"5"]).unwrap(), 72 + 8);
        assert_eq!(writer.write_all(&[]).unwrap(), writer.position());
        writer.close();
        let (records, end) = all(writer.shared_region());
        let expected: Vec<Vec<u8>> = (1..=5u8).map(|i| std::vec![b'0' + i]).collect();
        assert_eq!(records, expected);
        assert_eq!(end, Some(ReadError::Closed));
    }

    #[test]
    fn a_batch_that_does_not_fit_publishes_what_fits_then_marks_full() {
        let mut buffer = AlignedBuffer::<{ HEADER_LEN + 128 }>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let config = ChannelConfig::new(1).max_record_len(64);
        let mut writer = Writer::create(&mut region, &config).unwrap();
        // 128 bytes: marker 8, then records of 24; the end marker needs 8.
        let err = writer
            .write_all(&[&[1; 16], &[2; 16], &[3; 16], &[4; 16], &[5; 16]])
            .unwrap_err();
        assert_eq!(err.published, 4);
        assert_eq!(
            err.error,
            WriteError::Full {
                needed: 24,
                remaining: 16
            }
        );
        // Full keeps its figures.
        assert_eq!(writer.write(b""), Err(err.error));
        let (records, end) = all(writer.shared_region());
        assert_eq!(records.len(), 4);
        assert_eq!(end, Some(ReadError::Full));
    }

    #[test]
    fn a_first_record_that_fits_only_without_the_marker_is_written_single() {
        // 64 bytes of records: a 40-byte record spans 48, which leaves 8 for
        // the end marker: no room for a batch marker too.
        for entry in 0..3 {
            let mut buffer = AlignedBuffer::<{ HEADER_LEN + 64 }>::new();
            let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
            let config = ChannelConfig::new(1).max_record_len(48);
            let mut writer = Writer::create(&mut region, &config).unwrap();
            writer.write(b"").unwrap(); // 8 bytes
            let mut batch = writer.batch();
            let position = match entry {
                0 => batch.write(&[7; 40]).unwrap(),
                1 => batch.write_with(&mut PlainHandler, &[7u8; 40][..]).unwrap(),
                _ => {
                    let mut grant = batch.reserve(40).unwrap();
                    grant.fill(7);
                    grant.commit(40).unwrap()
                }
            };
            assert_eq!(position, 8, "entry {entry}");
            // Nothing else fits; the next record marks full after it.
            assert!(matches!(
                batch.write(b""),
                Err(WriteError::Full { remaining: 0, .. })
            ));
            drop(batch);
            let (records, end) = all(writer.shared_region());
            assert_eq!(records, [Vec::new(), [7; 40].to_vec()], "entry {entry}");
            assert_eq!(end, Some(ReadError::Full));
        }
    }

    #[test]
    fn too_large_in_a_batch_changes_nothing_and_the_batch_goes_on() {
        let mut buffer = AlignedBuffer::<LEN>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let config = ChannelConfig::new(1).max_record_len(8);
        let mut writer = Writer::create(&mut region, &config).unwrap();
        let mut batch = writer.batch();
        batch.write(b"ok").unwrap();
        assert_eq!(
            batch.write(&[0; 9]),
            Err(WriteError::TooLarge { len: 9, max: 8 })
        );
        assert_eq!(
            batch.write_with(&mut PlainHandler, &[0u8; 9][..]),
            Err(WriteError::TooLarge { len: 9, max: 8 })
        );
        assert!(batch.reserve(9).is_err());
        batch.write(b"too").unwrap();
        assert_eq!(batch.publish(), 2);
        let (records, _) = all(writer.shared_region());
        assert_eq!(records, [b"ok".to_vec(), b"too".to_vec()]);
    }

    #[test]
    fn a_closed_writer_refuses_batches() {
        let mut buffer = AlignedBuffer::<LEN>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let mut writer = Writer::create(&mut region, &ChannelConfig::new(1)).unwrap();
        writer.close();
        assert_eq!(writer.batch().write(b"x"), Err(WriteError::Closed));
        assert_eq!(
            writer.write_all(&[b"x"]),
            Err(BatchError {
                published: 0,
                error: WriteError::Closed
            })
        );
        assert_eq!(writer.batch().remaining_bytes(), 0);
    }

    #[test]
    fn resume_inside_a_batch_rewrites_its_marker() {
        let mut buffer = AlignedBuffer::<LEN>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let config = ChannelConfig::new(1).checksums(true);
        let mut writer = Writer::create(&mut region, &config).unwrap();
        writer.write_all(&[b"kept", b"torn", b"lost"]).unwrap();
        writer.leave_open();
        // Power loss: the second record's payload never reached the disk.
        buffer.as_mut_slice()[HEADER_LEN + 8 + 16 + PAYLOAD_OFFSET] ^= 0xFF;
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let mut writer = Writer::resume(&mut region).unwrap();
        assert_eq!(writer.position(), 24);
        assert_eq!(writer.records_written(), 1);
        writer.write(b"new").unwrap();
        let (records, end) = all(writer.shared_region());
        assert_eq!(records, [b"kept".to_vec(), b"new".to_vec()]);
        assert_eq!(end, None);
        drop(writer);
        let bytes = buffer.as_mut_slice();
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        assert_eq!(word(HEADER_LEN), COMMIT_BATCH_TAG | 16);
        assert_eq!(word(HEADER_LEN + 4), 1);
    }

    #[test]
    fn resume_before_a_batch_s_first_record_removes_the_marker() {
        let mut buffer = AlignedBuffer::<LEN>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let config = ChannelConfig::new(1).checksums(true);
        let mut writer = Writer::create(&mut region, &config).unwrap();
        writer.write(b"single").unwrap();
        writer.write_all(&[b"torn", b"lost"]).unwrap();
        writer.leave_open();
        buffer.as_mut_slice()[HEADER_LEN + 16 + 8 + PAYLOAD_OFFSET] ^= 0xFF;
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let mut writer = Writer::resume(&mut region).unwrap();
        assert_eq!(writer.position(), 16);
        writer.write(b"new").unwrap();
        let (records, _) = all(writer.shared_region());
        assert_eq!(records, [b"single".to_vec(), b"new".to_vec()]);
    }

    #[test]
    fn seek_accepts_markers_and_the_records_inside_batches() {
        let mut buffer = AlignedBuffer::<LEN>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let mut writer = Writer::create(&mut region, &ChannelConfig::new(1)).unwrap();
        writer.write(b"a").unwrap(); // 0..16
        writer.write_all(&[b"b", b"c"]).unwrap(); // marker 16, b 24, c 40
        let mut reader = Reader::open(writer.shared_region()).unwrap();
        for (at, first) in [(16, b"b"), (24, b"b"), (40, b"c")] {
            reader.seek(at).unwrap();
            assert_eq!(reader.try_read(), Ok(Some(&first[..])), "seek {at}");
        }
        assert!(reader.seek(20).is_err());
        reader.seek(56).unwrap();
        assert_eq!(reader.try_read(), Ok(None));
    }

    #[test]
    fn corrupt_batch_markers_are_reported() {
        for (span, count_as) in [(0u32, "zero"), (12, "unaligned"), (1 << 20, "too long")] {
            let mut buffer = AlignedBuffer::<LEN>::new();
            let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
            let mut writer = Writer::create(&mut region, &ChannelConfig::new(1)).unwrap();
            writer.write_all(&[b"x"]).unwrap();
            writer.leave_open();
            let word = (COMMIT_BATCH_TAG | span).to_le_bytes();
            buffer.as_mut_slice()[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&word);
            let region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
            let (records, end) = all(&region);
            assert!(records.is_empty(), "{count_as}");
            assert!(
                matches!(
                    end,
                    Some(ReadError::Corrupt {
                        position: 0,
                        corruption: crate::Corruption::BadBatchSpan { .. }
                    })
                ),
                "{count_as}: {end:?}"
            );
        }
        // A marker right after a marker.
        let mut buffer = AlignedBuffer::<LEN>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let mut writer = Writer::create(&mut region, &ChannelConfig::new(1)).unwrap();
        writer.write_all(&[b"x", b"y"]).unwrap();
        writer.leave_open();
        let word = (COMMIT_BATCH_TAG | 16).to_le_bytes();
        buffer.as_mut_slice()[HEADER_LEN + 8..HEADER_LEN + 12].copy_from_slice(&word);
        let region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let (_, end) = all(&region);
        assert!(
            matches!(
                end,
                Some(ReadError::Corrupt {
                    position: 8,
                    corruption: crate::Corruption::BadCommitWord { .. }
                })
            ),
            "{end:?}"
        );
    }

    #[test]
    #[cfg_attr(miri, ignore)] // a gigabyte
    fn a_batch_longer_than_a_marker_can_cover_is_published_as_several() {
        let len = HEADER_LEN + (3 << 29) + 64;
        let mut memory = std::vec![0u64; len / 8];
        // SAFETY: `memory` is a plain allocation that outlives the region.
        let bytes = unsafe { core::slice::from_raw_parts_mut(memory.as_mut_ptr().cast(), len) };
        let mut region = SliceRegion::new(bytes).unwrap();
        let config = ChannelConfig::new(1).max_record_len(1 << 29);
        let mut writer = Writer::create(&mut region, &config).unwrap();
        let record = std::vec![9u8; (1 << 29) - 8]; // spans 2^29 bytes
        let mut batch = writer.batch();
        assert_eq!(batch.write(b"small").unwrap(), 8);
        assert_eq!(batch.write(&record).unwrap(), 24);
        // A marker covers at most 2^30 - 8 bytes: this one starts anew.
        let third = batch.write(&record).unwrap();
        assert_eq!(third, 24 + (1 << 29));
        assert_eq!(batch.write(b"tail").unwrap(), third + (1 << 29) + 8);
        assert_eq!(batch.publish(), 4);
        let mut reader = Reader::open(writer.shared_region()).unwrap();
        let lens: Vec<usize> = reader.records().map(|r| r.unwrap().len()).collect();
        assert_eq!(lens, [5, record.len(), record.len(), 4]);
    }
}
