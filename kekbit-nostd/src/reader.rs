//! Readers: any number per channel, each at its own position.

use core::fmt;
use core::iter::FusedIterator;

use crate::checksum;
use crate::clock::Clock;
use crate::error::{Corruption, HeaderError, ReadError, SeekError};
use crate::format::*;
use crate::header::Header;
use crate::record::{Commit, classify};
use crate::region::Region;
use crate::sync::{Ordering, fence};

/// How far past its position a reader inside a batch asks for published
/// lines to be prefetched. The lines are published, so this never pulls in
/// a line the writer is still filling.
const READ_AHEAD: u32 = 2048;

/// How much further than [`READ_AHEAD`] a reader asks for at a time, so
/// that the records after it find their lines asked for already and skip
/// the work: four cache lines.
const READ_AHEAD_STEP: u32 = 256;

/// How many times a reader retries a heartbeat the writer is storing.
const HEARTBEAT_TRIES: u32 = 4;

/// A channel's state as one reader sees it, at its own position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Status {
    /// The writer may still append records.
    Open,
    /// The writer closed the channel and this reader has read every record.
    Closed,
    /// The channel is full and this reader has read every record.
    Full,
    /// No heartbeat and no new record for longer than the channel's timeout:
    /// the writer is presumed dead. It is not terminal: if the writer comes
    /// back, the status returns to `Open`.
    Abandoned,
}

/// What the reader last saw of the writer's signs of life.
#[derive(Debug, Clone, Copy)]
struct Watch {
    /// The heartbeat sequence word: it changes with every heartbeat.
    heartbeat_seq: u32,
    position: u32,
    /// Reader's clock when the heartbeat or the position last moved.
    since: u64,
}

/// What the commit word at a position says, checked against the channel.
#[derive(Debug, Clone, Copy)]
enum Next {
    /// Nothing published here yet.
    Empty,
    /// A record of `len` bytes; the next one starts at `next`.
    Record { len: u32, next: u32 },
    /// A batch marker whose records run from `next` for `span` bytes.
    Batch { span: u32, next: u32 },
}

/// Reads a channel's records in order, without copying and without locks.
///
/// A reader never writes to the region: it only loads. Each record it
/// returns borrows the region for `'a`, not the reader, because a committed
/// record never changes: hold as many as you like.
///
/// Whatever the region holds, a reader never panics, never reads outside
/// the region and never loops: every length and offset is checked first,
/// and damage is reported as [`ReadError::Corrupt`] or
/// [`ReadError::Checksum`].
///
/// # Example
///
/// ```
/// use kekbit_nostd::{AlignedBuffer, ChannelConfig, Reader, SliceRegion, Writer};
///
/// let mut buffer = AlignedBuffer::<1024>::new();
/// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
/// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
/// let mut reader = Reader::open(writer.shared_region())?;
///
/// writer.write(b"one")?;
/// writer.write(b"two")?;
/// let first = reader.try_read()?.unwrap();
/// let second = reader.try_read()?.unwrap();
/// assert_eq!((first, second), (&b"one"[..], &b"two"[..])); // both held at once
/// # Ok::<(), Box<dyn core::error::Error>>(())
/// ```
///
/// A record can never outlive the memory it lives in (kekbit 0.3's bug):
///
/// ```compile_fail,E0597
/// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, Reader, SliceRegion, Writer};
/// let record: &[u8] = {
///     let mut buffer = AlignedBuffer::<1024>::new();
///     let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
///     let mut writer = Writer::create(&mut region, &ChannelConfig::new(1)).unwrap();
///     writer.write(b"gone").unwrap();
///     let mut reader = Reader::open(writer.shared_region()).unwrap();
///     reader.try_read().unwrap().unwrap()
/// }; // error: `buffer` does not live long enough
/// ```
pub struct Reader<'a, R: Region + ?Sized> {
    region: &'a R,
    header: Header,
    /// Offset in the record area of the next record to read: a multiple of
    /// 8 with `position + MARKER_LEN <= capacity`, so its commit word is in
    /// bounds. Only ever advanced past records whose bounds were checked.
    position: u32,
    /// The batch this reader is inside, if `position < batch_end`: the
    /// offset of its marker, the end of its span, and the records read in it.
    batch_start: u32,
    batch_end: u32,
    batch_read: u32,
    /// Published bytes are prefetched up to here (only inside a batch).
    prefetched: u32,
    /// Where the bytes known to be published end: the current batch's end,
    /// or past it once the batches after it were seen published. Always
    /// the end of a checked batch span, so a commit word fits there.
    ahead_end: u32,
    /// The boundary whose marker `peek_next_batch` last found unpublished,
    /// so that it is loaded once, not on every record; `u32::MAX` if none.
    peeked: u32,
    watch: Option<Watch>,
}

impl<'a, R: Region + ?Sized> Reader<'a, R> {
    /// Opens a reader at the first record, after validating the header
    /// against the region.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::{AlignedBuffer, HeaderError, Reader, SliceRegion};
    ///
    /// // A zeroed buffer is no channel: typed error, no panic.
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let region = SliceRegion::new(buffer.as_mut_slice())?;
    /// assert!(matches!(Reader::open(&region), Err(HeaderError::BadSignature { .. })));
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn open(region: &'a R) -> Result<Self, HeaderError> {
        if region.len() < HEADER_LEN {
            return Err(HeaderError::Truncated {
                len: region.len(),
                needed: HEADER_LEN,
            });
        }
        // The first word is loaded and compared before any other byte is
        // read: until it holds the signature, a writer on another core may
        // still be storing the rest of the header, non-atomically.
        // SAFETY: word 0 is in bounds (len >= HEADER_LEN) and only ever
        // stored atomically.
        let first = unsafe { region.load_u32(SIGNATURE_OFFSET, Ordering::Relaxed) };
        let signature = first.to_le_bytes();
        if signature != [SIGNATURE[0], SIGNATURE[1], SIGNATURE[2], SIGNATURE[3]] {
            let [a, b, c, d] = signature;
            return Err(HeaderError::BadSignature {
                found: [a, b, c, d, 0, 0, 0, 0],
            });
        }
        // Pairs with the writer's `Release` store of word 0, made after the
        // rest of the header (a `Relaxed` load and a fence, since readers
        // may map the channel read-only).
        fence(Ordering::Acquire);
        let mut bytes = [0u8; IMMUTABLE_HEADER_LEN];
        bytes[..4].copy_from_slice(&signature);
        // SAFETY: in bounds; the immutable header is never written after
        // its first word is published.
        unsafe { region.copy_out(4, &mut bytes[4..]) };
        let header = Header::decode(&bytes)?;
        header.check_region(region.len())?;
        Ok(Self {
            region,
            header,
            position: 0,
            batch_start: 0,
            batch_end: 0,
            batch_read: 0,
            prefetched: 0,
            ahead_end: 0,
            peeked: u32::MAX,
            watch: None,
        })
    }

    /// The channel's header.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, Reader, SliceRegion, Writer};
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// let mut reader = Reader::open(writer.shared_region())?;
    /// assert_eq!(reader.header().capacity_bytes, 1024 - 192);
    /// assert!(!reader.header().checksums());
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Offset in the record area of the next record this reader will read.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, Reader, SliceRegion, Writer};
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// let mut reader = Reader::open(writer.shared_region())?;
    /// writer.write(b"0123456789")?;
    /// reader.try_read()?;
    /// assert_eq!(reader.position(), 24);
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn position(&self) -> u32 {
        self.position
    }

    /// Returns the next record if one is committed, without blocking.
    ///
    /// `Ok(None)` means no record yet. [`ReadError::Closed`] and
    /// [`ReadError::Full`] mean the channel ended and every record was read.
    /// On damage the reader stays put and returns the same error again.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, ReadError, Reader, SliceRegion, Writer};
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// let mut reader = Reader::open(writer.shared_region())?;
    /// assert_eq!(reader.try_read(), Ok(None));
    /// writer.write(b"x")?;
    /// assert_eq!(reader.try_read(), Ok(Some(&b"x"[..])));
    /// drop(writer); // closes
    /// assert_eq!(reader.try_read(), Err(ReadError::Closed));
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn try_read(&mut self) -> Result<Option<&'a [u8]>, ReadError> {
        // Kept small so that it inlines into the caller's loop: the rare
        // steps (entering a batch, checksums, damage) are calls.
        let position = self.position;
        match self.record_at(position)? {
            Next::Record { len, next } => self.take(position, len, next),
            Next::Empty => Ok(None),
            Next::Batch { span, next } => self.enter_batch(position, span, next),
        }
    }

    /// Steps inside the batch whose marker is at `marker` (a boundary of its
    /// own), then reads its first record, at `first`.
    #[inline(never)]
    fn enter_batch(
        &mut self,
        marker: u32,
        span: u32,
        first: u32,
    ) -> Result<Option<&'a [u8]>, ReadError> {
        self.batch_start = marker;
        self.batch_end = first + span;
        self.batch_read = 0;
        // What was prefetched while the reader was in the batch before, if
        // it ran ahead into this one, still counts.
        self.ahead_end = self.ahead_end.max(self.batch_end);
        self.prefetched = self.prefetched.max(first);
        self.position = first;
        self.run_ahead();
        let read = match self.record_at(first) {
            Ok(Next::Record { len, next }) => self.take(first, len, next),
            Ok(Next::Empty) => Ok(None),
            Ok(Next::Batch { span, .. }) => Err(damaged(
                first,
                Corruption::BadCommitWord {
                    word: COMMIT_BATCH_TAG | span,
                },
            )),
            Err(e) => Err(e),
        };
        // The reader moves past the marker only with the first record, so
        // that on damage (or nothing to read) it stays at the marker.
        if !matches!(read, Ok(Some(_))) {
            self.position = marker;
        }
        read
    }

    /// Returns the record of `len` payload bytes at `position` (whose
    /// bounds `record_at` checked) and moves past it, to `next`.
    #[inline(always)]
    fn take(&mut self, position: u32, len: u32, next: u32) -> Result<Option<&'a [u8]>, ReadError> {
        let at = HEADER_LEN + position as usize;
        // SAFETY: `record_at` checked the payload lies inside the record
        // area; the fence after the load of its commit word (or of its
        // batch's marker) makes the payload visible, and committed records
        // never change.
        let payload = unsafe { self.region.bytes(at + PAYLOAD_OFFSET, len as usize) };
        if self.header.checksums() {
            self.verify(position, payload)?;
        }
        self.position = next;
        if next <= self.batch_end {
            self.batch_read += 1;
            self.run_ahead();
        }
        Ok(Some(payload))
    }

    /// Checks the CRC32C of the record at `position`.
    #[inline(never)]
    fn verify(&self, position: u32, payload: &[u8]) -> Result<(), ReadError> {
        // SAFETY: the checksum word is in the record header `record_at`
        // checked; it was stored before the commit word was published.
        let stored = unsafe {
            self.region.load_u32(
                HEADER_LEN + position as usize + RECORD_CHECKSUM_OFFSET,
                Ordering::Relaxed,
            )
        };
        let computed = checksum::record(payload);
        if stored != computed {
            return Err(ReadError::Checksum {
                position,
                stored,
                computed,
            });
        }
        Ok(())
    }

    /// Prefetches published lines up to [`READ_AHEAD`] bytes past the
    /// position: the rest of the current batch, then the batches after it
    /// that are published already, so that a reader which is behind does
    /// not wait for each batch's first lines.
    #[inline]
    fn run_ahead(&mut self) {
        let want = self.position.saturating_add(READ_AHEAD);
        if self.prefetched >= want || (self.prefetched >= self.ahead_end && !self.peek_next_batch())
        {
            return;
        }
        let target = self.ahead_end.min(want.saturating_add(READ_AHEAD_STEP));
        let from = self.prefetched.max(self.position);
        if target > from {
            self.region
                .prefetch(HEADER_LEN + from as usize, (target - from) as usize);
            self.prefetched = target;
        }
    }

    /// Whether the batch that starts where the known published bytes end is
    /// published too; if so, its span extends them. Its marker is loaded
    /// once per boundary while unpublished: a reader that caught up polls
    /// that word anyway, and a reader that is behind finds it published.
    #[inline(never)]
    fn peek_next_batch(&mut self) -> bool {
        let at = self.ahead_end;
        if self.peeked == at {
            return false;
        }
        // `ahead_end` is the end of a checked batch span, which leaves room
        // for a commit word: the load is in bounds.
        let capacity = self.header.capacity_bytes;
        debug_assert!(at % 8 == 0 && at as usize + MARKER_LEN <= capacity as usize);
        // SAFETY: in bounds and aligned, as above; commit words are only
        // ever accessed atomically. Only a prefetch depends on the value,
        // so it needs no ordering.
        let word = unsafe {
            self.region
                .load_u32(HEADER_LEN + at as usize, Ordering::Relaxed)
        };
        if let Commit::Batch(span) = classify(word) {
            // The checks `record_at` makes of a marker, so the span's end
            // leaves room for a commit word in turn.
            let room = (capacity - at) as u64;
            let fits = span as u64 + (BATCH_MARKER_LEN + MARKER_LEN) as u64 <= room;
            if span != 0 && span % RECORD_ALIGN as u32 == 0 && fits {
                self.ahead_end = at + BATCH_MARKER_LEN as u32 + span;
                return true;
            }
        }
        self.peeked = at;
        false
    }

    /// If the reader stopped inside a batch: the batch marker's offset and
    /// how many of its records were read. For `Writer::resume`.
    pub(crate) fn open_batch(&self) -> Option<(u32, u32)> {
        (self.position < self.batch_end && self.position > self.batch_start)
            .then_some((self.batch_start, self.batch_read))
    }

    /// Loads the commit word at `position`: `Relaxed`, then an `Acquire`
    /// fence when it shows something, so that what the writer stored before
    /// publishing it is visible (readers may map channels read-only, where
    /// only `Relaxed` atomic loads are allowed).
    #[inline]
    fn load_commit(&self, position: u32) -> u32 {
        debug_assert!(
            position % 8 == 0
                && position as usize + MARKER_LEN <= self.header.capacity_bytes as usize
        );
        // SAFETY: the position invariant keeps the word in bounds and
        // aligned; commit words are only ever accessed atomically.
        let word = unsafe {
            self.region
                .load_u32(HEADER_LEN + position as usize, Ordering::Relaxed)
        };
        if word != COMMIT_EMPTY {
            fence(Ordering::Acquire);
        }
        word
    }

    /// Decodes and bounds-checks the commit word at `position`.
    #[inline(always)]
    fn record_at(&self, position: u32) -> Result<Next, ReadError> {
        let capacity = self.header.capacity_bytes;
        let word = self.load_commit(position);
        // `position + 8 <= capacity`, so this does not wrap.
        let remaining = capacity - position;
        match classify(word) {
            Commit::Empty => Ok(Next::Empty),
            Commit::Closed => Err(ReadError::Closed),
            Commit::Full => Err(ReadError::Full),
            Commit::Invalid(word) => Err(damaged(position, Corruption::BadCommitWord { word })),
            Commit::Batch(span) => {
                // The span must hold at least one record and leave room for
                // the end marker after it.
                let fits = span as u64 + (BATCH_MARKER_LEN + MARKER_LEN) as u64 <= remaining as u64;
                if span == 0 || span % RECORD_ALIGN as u32 != 0 || !fits {
                    let corruption = Corruption::BadBatchSpan { span, remaining };
                    return Err(damaged(position, corruption));
                }
                Ok(Next::Batch {
                    span,
                    next: position + BATCH_MARKER_LEN as u32,
                })
            }
            Commit::Record(len) => {
                let max = self.header.max_record_len;
                if len > max {
                    let corruption = Corruption::LengthExceedsMax { len, max };
                    return Err(damaged(position, corruption));
                }
                // The writer always leaves room for an end marker after a
                // record; a record that does not is damage. `len` <= 2^30 and
                // `position + 8 <= capacity`, so nothing here overflows.
                let span = record_span(len);
                if span > remaining - MARKER_LEN as u32 {
                    let corruption = Corruption::LengthExceedsCapacity { len, remaining };
                    return Err(damaged(position, corruption));
                }
                Ok(Next::Record {
                    len,
                    next: position + span,
                })
            }
        }
    }

    /// Moves the reader to `position`, which must be where a record starts
    /// (or where the committed records end).
    ///
    /// Boundaries are found by walking the records from the current
    /// position if `position` is ahead, else from the start: at most one
    /// step per 8 bytes of channel, so it always ends. The walk follows the
    /// framing only and does not verify checksums, so it can move past a
    /// damaged record to the sound ones after it; `try_read` there checks
    /// each record as usual.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, Reader, SeekError, SliceRegion, Writer};
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// writer.write(b"first")?;
    /// let second = writer.write(b"second")?;
    /// let mut reader = Reader::open(writer.shared_region())?;
    ///
    /// reader.seek(second)?;
    /// assert_eq!(reader.try_read()?, Some(&b"second"[..]));
    /// assert_eq!(reader.seek(8), Err(SeekError::NotARecordBoundary { position: 8 }));
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn seek(&mut self, position: u32) -> Result<(), SeekError> {
        let capacity = self.header.capacity_bytes;
        if position % RECORD_ALIGN as u32 != 0 {
            return Err(SeekError::NotARecordBoundary { position });
        }
        let mut at = if position >= self.position {
            self.position
        } else {
            0
        };
        while at < position {
            match self.record_at(at) {
                Ok(Next::Record { next, .. } | Next::Batch { next, .. }) => at = next,
                Ok(Next::Empty) | Err(ReadError::Closed | ReadError::Full) => {
                    return Err(SeekError::BeyondEnd { position, end: at });
                }
                Err(e) => return Err(SeekError::Read(e)),
            }
        }
        if at != position || position as usize + MARKER_LEN > capacity as usize {
            return Err(SeekError::NotARecordBoundary { position });
        }
        self.position = position;
        // A batch entered mid-way is read record by record, without
        // reading ahead: its span is only known from its marker.
        self.batch_start = 0;
        self.batch_end = 0;
        self.prefetched = 0;
        self.ahead_end = 0;
        self.peeked = u32::MAX;
        Ok(())
    }

    /// An iterator over the records committed now. It is fused: it ends
    /// when it catches up with the writer, at the channel's end, or after
    /// yielding one error; call `records()` again to poll for more.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, Reader, SliceRegion, Writer};
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// let mut reader = Reader::open(writer.shared_region())?;
    /// for word in ["a", "b", "c"] {
    ///     writer.write(word.as_bytes())?;
    /// }
    /// let all: Result<Vec<_>, _> = reader.records().collect();
    /// assert_eq!(all?, [b"a", b"b", b"c"]);
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn records(&mut self) -> Records<'_, 'a, R> {
        Records {
            reader: self,
            done: false,
        }
    }

    /// The writer's clock at its last heartbeat (or at creation), in the
    /// channel's ticks; `None` if the writer was storing a new one each of
    /// the few times this call tried, which is itself a sign of life.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, Reader, SliceRegion, Writer};
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1).creation_time(5))?;
    /// let mut reader = Reader::open(writer.shared_region())?;
    /// assert_eq!(reader.heartbeat(), Some(5)); // creation time
    /// writer.heartbeat(0x1_0000_0007);
    /// assert_eq!(reader.heartbeat(), Some(0x1_0000_0007)); // all 64 bits
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn heartbeat(&self) -> Option<u64> {
        self.heartbeat_sample().1
    }

    /// The heartbeat sequence word, and the heartbeat if it could be read
    /// whole: a sequence lock over two 32-bit halves.
    fn heartbeat_sample(&self) -> (u32, Option<u64>) {
        let load = |offset| {
            // SAFETY: the three heartbeat words are in the header, in
            // bounds, aligned, and only ever accessed atomically.
            unsafe { self.region.load_u32(offset, Ordering::Relaxed) }
        };
        let mut seq = load(HEARTBEAT_SEQ_OFFSET);
        for _ in 0..HEARTBEAT_TRIES {
            fence(Ordering::Acquire);
            if seq & 1 == 0 {
                let lo = load(HEARTBEAT_LO_OFFSET);
                let hi = load(HEARTBEAT_HI_OFFSET);
                fence(Ordering::Acquire);
                let again = load(HEARTBEAT_SEQ_OFFSET);
                if again == seq {
                    return (seq, Some(u64::from(hi) << 32 | u64::from(lo)));
                }
                seq = again;
            } else {
                core::hint::spin_loop();
                seq = load(HEARTBEAT_SEQ_OFFSET);
            }
        }
        (seq, None)
    }

    /// Ticks since the writer's last heartbeat, if `clock` counts the same
    /// ticks from the same epoch as the writer's (as `kekbit-std`'s clocks
    /// do). `None` when the heartbeat lies in the clock's future, or is
    /// being stored.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, Clock, Reader, SliceRegion, Writer};
    /// struct At(u64);
    /// impl Clock for At { fn now(&self) -> u64 { self.0 } }
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// writer.heartbeat(1_000);
    /// let reader = Reader::open(writer.shared_region())?;
    /// assert_eq!(reader.heartbeat_age(&At(1_250)), Some(250));
    /// assert_eq!(reader.heartbeat_age(&At(900)), None);
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn heartbeat_age(&self, clock: &impl Clock) -> Option<u64> {
        clock.now().checked_sub(self.heartbeat()?)
    }

    /// The channel's state at this reader's position.
    ///
    /// `Closed` and `Full` are reported only once every record before the
    /// end has been read. Otherwise, with a timeout of 0 the writer is never
    /// called abandoned, and with a timeout `t`:
    ///
    /// - a heartbeat within `t` of `clock`'s time, before or after it, means
    ///   `Open` (a heartbeat slightly ahead is a writer that beat while this
    ///   call was between its reads);
    /// - if the header says the writer's clock counts from the Unix epoch
    ///   ([`Header::epoch_time`]) and `clock` does too
    ///   ([`Clock::epoch_time`]), a heartbeat older than `t` means
    ///   `Abandoned`, at once: a writer dead for a day is abandoned at the
    ///   first look;
    /// - otherwise the clocks may differ, and the reader times the silence
    ///   itself: `Abandoned` once neither the heartbeat nor this reader's
    ///   position has moved for longer than `t` on `clock`, counted from the
    ///   first call.
    ///
    /// The heartbeat is 64 bits wide, so this holds for every timeout.
    ///
    /// # Example
    ///
    /// ```
    /// # use core::cell::Cell;
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, Clock, Reader, SliceRegion, Status, TickUnit, Writer};
    /// struct Fake(Cell<u64>);
    /// impl Clock for Fake { fn now(&self) -> u64 { self.0.get() } }
    /// let clock = Fake(Cell::new(0));
    ///
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let config = ChannelConfig::new(1).timeout(100, TickUnit::Millis);
    /// let mut writer = Writer::create(&mut region, &config)?;
    /// let mut reader = Reader::open(writer.shared_region())?;
    ///
    /// assert_eq!(reader.status(&clock), Status::Open);
    /// clock.0.set(150);
    /// writer.heartbeat(150);
    /// assert_eq!(reader.status(&clock), Status::Open);
    /// clock.0.set(400); // silent for 250 ticks
    /// assert_eq!(reader.status(&clock), Status::Abandoned);
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn status(&mut self, clock: &impl Clock) -> Status {
        match self.record_at(self.position) {
            Err(ReadError::Closed) => return Status::Closed,
            Err(ReadError::Full) => return Status::Full,
            _ => {}
        }
        let timeout = self.header.timeout_ticks;
        if timeout == 0 {
            return Status::Open;
        }
        // The clock first, then the heartbeat: a reader delayed between the
        // two reads sees the heartbeat ahead of `now`, never behind.
        let now = clock.now();
        let (seq, heartbeat) = self.heartbeat_sample();
        let moved = match self.watch {
            None => true,
            Some(w) => w.heartbeat_seq != seq || w.position != self.position,
        };
        if moved {
            // Timed by a second reading, taken after the change was seen
            // (the fence orders it after the load that saw it, which the
            // writer stored with `Release`): `now` may predate the change
            // by however long this reader was delayed between its reads,
            // and a change seen late but timed early (an odd sequence word,
            // say, that the writer stays on for a moment) would look like a
            // silence since `now`.
            fence(Ordering::Acquire);
            self.watch = Some(Watch {
                heartbeat_seq: seq,
                position: self.position,
                since: clock.now().max(now),
            });
        }
        if let Some(heartbeat) = heartbeat {
            if heartbeat >= now {
                if heartbeat - now <= timeout {
                    return Status::Open;
                }
            } else if now - heartbeat <= timeout {
                return Status::Open;
            } else if self.header.epoch_time() && clock.epoch_time() {
                return Status::Abandoned;
            }
        }
        let silent_for = self.watch.map_or(0, |w| now.saturating_sub(w.since));
        if silent_for > timeout {
            Status::Abandoned
        } else {
            Status::Open
        }
    }
}

/// The error for damage found at `position`; out of line, so the checks
/// that may return it stay small in the hot path.
#[cold]
#[inline(never)]
fn damaged(position: u32, corruption: Corruption) -> ReadError {
    ReadError::Corrupt {
        position,
        corruption,
    }
}

impl<R: Region + ?Sized> Clone for Reader<'_, R> {
    fn clone(&self) -> Self {
        Self {
            region: self.region,
            header: self.header,
            position: self.position,
            batch_start: self.batch_start,
            batch_end: self.batch_end,
            batch_read: self.batch_read,
            prefetched: self.prefetched,
            ahead_end: self.ahead_end,
            peeked: self.peeked,
            watch: self.watch,
        }
    }
}

impl<R: Region + ?Sized> fmt::Debug for Reader<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("header", &self.header)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

/// The records committed now; see [`Reader::records`].
#[derive(Debug)]
pub struct Records<'r, 'a, R: Region + ?Sized> {
    reader: &'r mut Reader<'a, R>,
    done: bool,
}

impl<'a, R: Region + ?Sized> Iterator for Records<'_, 'a, R> {
    type Item = Result<&'a [u8], ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.reader.try_read() {
            Ok(Some(record)) => Some(Ok(record)),
            Ok(None) | Err(ReadError::Closed | ReadError::Full) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl<R: Region + ?Sized> FusedIterator for Records<'_, '_, R> {}

#[cfg(test)]
mod run_ahead_tests {
    //! What a reader prefetches: only lines of batches already published,
    //! nothing for a per-record writer's records.
    use super::*;
    use crate::{AlignedBuffer, ChannelConfig, SliceRegion, Writer};
    use core::cell::RefCell;
    use std::vec::Vec;

    /// A region that forwards to another and records every prefetch, as
    /// record-area offsets `start..end`.
    struct Recording<'r, R: Region> {
        inner: &'r R,
        prefetched: RefCell<Vec<(usize, usize)>>,
    }

    impl<'r, R: Region> Recording<'r, R> {
        fn new(inner: &'r R) -> Self {
            Self {
                inner,
                prefetched: RefCell::new(Vec::new()),
            }
        }

        /// The furthest record-area offset prefetched so far.
        fn furthest(&self) -> Option<usize> {
            self.prefetched.borrow().iter().map(|&(_, end)| end).max()
        }
    }

    // SAFETY: every method forwards to `inner` unchanged, with the caller's
    // contract; `prefetch` also records its arguments, which reads nothing.
    unsafe impl<R: Region> Region for Recording<'_, R> {
        fn len(&self) -> usize {
            self.inner.len()
        }
        unsafe fn load_u32(&self, offset: usize, order: Ordering) -> u32 {
            // SAFETY: the caller's contract, forwarded.
            unsafe { self.inner.load_u32(offset, order) }
        }
        unsafe fn store_u32(&self, offset: usize, value: u32, order: Ordering) {
            // SAFETY: the caller's contract, forwarded.
            unsafe { self.inner.store_u32(offset, value, order) }
        }
        unsafe fn copy_in(&self, offset: usize, src: &[u8]) {
            // SAFETY: the caller's contract, forwarded.
            unsafe { self.inner.copy_in(offset, src) }
        }
        unsafe fn copy_out(&self, offset: usize, dst: &mut [u8]) {
            // SAFETY: the caller's contract, forwarded.
            unsafe { self.inner.copy_out(offset, dst) }
        }
        unsafe fn bytes(&self, offset: usize, len: usize) -> &[u8] {
            // SAFETY: the caller's contract, forwarded.
            unsafe { self.inner.bytes(offset, len) }
        }
        unsafe fn bytes_mut(&self, offset: usize, len: usize) -> &mut [u8] {
            // SAFETY: the caller's contract, forwarded.
            unsafe { self.inner.bytes_mut(offset, len) }
        }
        fn prefetch(&self, offset: usize, len: usize) {
            let start = offset - HEADER_LEN;
            self.prefetched.borrow_mut().push((start, start + len));
            self.inner.prefetch(offset, len);
        }
    }

    const LEN: usize = HEADER_LEN + 16384;
    const RECORD: [u8; 64] = [0x5A; 64];

    #[test]
    fn a_per_record_writers_records_are_read_without_prefetching() {
        let mut buffer = AlignedBuffer::<LEN>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let mut writer = Writer::create(&mut region, &ChannelConfig::new(1)).unwrap();
        for _ in 0..100 {
            writer.write(&RECORD).unwrap();
        }
        let recording = Recording::new(writer.shared_region());
        let mut reader = Reader::open(&recording).unwrap();
        assert_eq!(reader.records().count(), 100);
        assert_eq!(recording.prefetched.borrow().len(), 0);
    }

    #[test]
    fn a_reader_prefetches_only_what_is_published() {
        let mut buffer = AlignedBuffer::<LEN>::new();
        buffer.as_mut_slice().fill(0xA5); // whatever the memory held
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let mut writer = Writer::create(&mut region, &ChannelConfig::new(1)).unwrap();
        let recording = Recording::new(writer.shared_region());
        let mut reader = Reader::open(&recording).unwrap();
        // Batches of 32 records of 72 bytes: 8 + 2304 bytes each.
        let span = 8 + 32 * 72;
        for batch in 1..=3 {
            {
                let mut staged = writer.batch();
                for _ in 0..32 {
                    staged.write(&RECORD).unwrap();
                }
                // While the batch is staged, the reader reads everything
                // published and prefetches nothing of it.
                let mut read = 0;
                while let Some(record) = reader.try_read().unwrap() {
                    assert_eq!(record, RECORD);
                    read += 1;
                }
                assert_eq!(read, if batch == 1 { 0 } else { 32 });
                let published = (batch - 1) * span;
                assert!(
                    recording.furthest().unwrap_or(0) <= published,
                    "batch {batch}: prefetched up to {:?}, published {published}",
                    recording.furthest()
                );
            }
        }
        assert_eq!(reader.records().count(), 32);
        assert!(recording.furthest().unwrap() <= 3 * span);
    }

    #[test]
    fn a_reader_that_is_behind_runs_ahead_into_the_next_published_batch() {
        let mut buffer = AlignedBuffer::<LEN>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let mut writer = Writer::create(&mut region, &ChannelConfig::new(1)).unwrap();
        let span = 8 + 32 * 72;
        for _ in 0..3 {
            let mut batch = writer.batch();
            for _ in 0..32 {
                batch.write(&RECORD).unwrap();
            }
        }
        let recording = Recording::new(writer.shared_region());
        let mut reader = Reader::open(&recording).unwrap();
        // Past its first record it asks for READ_AHEAD bytes and a step
        // more, which this batch ends before: all of its batch, no more.
        reader.try_read().unwrap().unwrap();
        assert!(8 + 72 + READ_AHEAD as usize + READ_AHEAD_STEP as usize > span);
        assert_eq!(recording.furthest(), Some(span));
        // Once READ_AHEAD reaches past the batch, it runs into the next one,
        // which is published.
        for _ in 0..8 {
            reader.try_read().unwrap().unwrap();
        }
        let furthest = recording.furthest().unwrap();
        assert!(furthest > span && furthest <= 2 * span, "{furthest}");
        // Every line is asked for once.
        let mut ranges = recording.prefetched.borrow().clone();
        ranges.sort();
        assert!(ranges.windows(2).all(|w| w[0].1 <= w[1].0), "{ranges:?}");
        // A seek forgets it; reading on still works.
        reader.seek(0).unwrap();
        assert_eq!(reader.records().count(), 96);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AlignedBuffer, ChannelConfig, SliceRegion, TickUnit, Writer};
    use core::cell::Cell;
    use std::vec::Vec;

    const LEN: usize = HEADER_LEN + 512;

    /// A buffer holding a closed channel with `records`.
    fn channel(records: &[&[u8]], checksums: bool) -> AlignedBuffer<LEN> {
        let mut buffer = AlignedBuffer::<LEN>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let config = ChannelConfig::new(1)
            .max_record_len(100)
            .checksums(checksums);
        let mut writer = Writer::create(&mut region, &config).unwrap();
        for record in records {
            writer.write(record).unwrap();
        }
        drop(writer);
        buffer
    }

    fn put_word(buffer: &mut AlignedBuffer<LEN>, position: usize, word: u32) {
        let at = HEADER_LEN + position;
        buffer.as_mut_slice()[at..at + 4].copy_from_slice(&word.to_le_bytes());
    }

    fn read_all(buffer: &mut AlignedBuffer<LEN>) -> (Vec<Vec<u8>>, ReadError) {
        let region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let mut reader = Reader::open(&region).unwrap();
        let mut out = Vec::new();
        loop {
            match reader.try_read() {
                Ok(Some(r)) => out.push(r.to_vec()),
                Ok(None) => panic!("a closed channel never runs dry"),
                Err(e) => return (out, e),
            }
        }
    }

    #[test]
    fn reports_bad_commit_words_at_their_offset() {
        let mut buffer = channel(&[b"a", b"b"], false);
        // "a" spans 16 bytes: 8 of framing, 1 of payload padded to 8.
        put_word(&mut buffer, 16, 0x0000_0007);
        let (records, err) = read_all(&mut buffer);
        assert_eq!(records, [b"a"]);
        assert_eq!(
            err,
            ReadError::Corrupt {
                position: 16,
                corruption: Corruption::BadCommitWord { word: 7 }
            }
        );
    }

    #[test]
    fn reports_lengths_beyond_the_maximum() {
        let mut buffer = channel(&[b"a"], false);
        put_word(&mut buffer, 0, COMMIT_RECORD_TAG | 101);
        let (_, err) = read_all(&mut buffer);
        assert_eq!(
            err,
            ReadError::Corrupt {
                position: 0,
                corruption: Corruption::LengthExceedsMax { len: 101, max: 100 }
            }
        );
    }

    #[test]
    fn reports_lengths_beyond_the_capacity() {
        let mut buffer = channel(&[], false);
        // At 416, 96 bytes remain: a 100-byte record (112 with framing) cannot fit.
        put_word(&mut buffer, 416, COMMIT_RECORD_TAG | 100);
        let region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let mut reader = Reader::open(&region).unwrap();
        reader.position = 416;
        assert_eq!(
            reader.try_read(),
            Err(ReadError::Corrupt {
                position: 416,
                corruption: Corruption::LengthExceedsCapacity {
                    len: 100,
                    remaining: 96
                }
            })
        );
    }

    #[test]
    fn never_reads_past_the_end_whatever_the_lengths() {
        // Every possible length at the last positions of the record area.
        for position in (0..512u32 - 8).step_by(8).rev().take(4) {
            for len in [0, 1, 7, 8, 9, 15, 16, 100, COMMIT_LEN_MASK] {
                let mut buffer = AlignedBuffer::<LEN>::new();
                let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
                let config = ChannelConfig::new(1).max_record_len(100);
                Writer::create(&mut region, &config).unwrap().leave_open();
                put_word(&mut buffer, position as usize, COMMIT_RECORD_TAG | len);
                let region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
                let mut reader = Reader::open(&region).unwrap();
                if position > 0 {
                    reader.position = position;
                }
                if let Ok(Some(record)) = reader.try_read() {
                    let end = record.as_ptr() as usize + record.len();
                    assert!(end <= region.as_ptr() as usize + LEN);
                    assert!(reader.position() as usize + MARKER_LEN <= 512);
                }
            }
        }
    }

    #[test]
    fn detects_checksum_damage_and_stays_put() {
        let mut buffer = channel(&[b"good", b"damaged"], true);
        buffer.as_mut_slice()[HEADER_LEN + 16 + PAYLOAD_OFFSET + 2] ^= 1;
        let region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let mut reader = Reader::open(&region).unwrap();
        assert_eq!(reader.try_read(), Ok(Some(&b"good"[..])));
        let err = reader.try_read().unwrap_err();
        assert!(
            matches!(err, ReadError::Checksum { position: 16, .. }),
            "{err}"
        );
        assert_eq!(reader.try_read().unwrap_err(), err);
        assert_eq!(reader.position(), 16);
    }

    #[test]
    fn without_checksums_damage_goes_unnoticed() {
        let mut buffer = channel(&[b"data"], false);
        buffer.as_mut_slice()[HEADER_LEN + PAYLOAD_OFFSET] = b'D';
        let (records, err) = read_all(&mut buffer);
        assert_eq!(records, [b"Data"]);
        assert_eq!(err, ReadError::Closed);
    }

    #[test]
    fn seeks_only_to_boundaries() {
        let mut buffer = channel(&[b"a", b"bbbbbbbbb", b"c"], false);
        let region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let mut reader = Reader::open(&region).unwrap();
        // Records at 0 (16 bytes), 16 (24 bytes), 40 (16 bytes); closed at 56.
        reader.seek(16).unwrap();
        assert_eq!(reader.try_read(), Ok(Some(&b"bbbbbbbbb"[..])));
        reader.seek(0).unwrap();
        assert_eq!(reader.try_read(), Ok(Some(&b"a"[..])));
        reader.seek(40).unwrap();
        assert_eq!(reader.try_read(), Ok(Some(&b"c"[..])));
        assert_eq!(
            reader.seek(8),
            Err(SeekError::NotARecordBoundary { position: 8 })
        );
        assert_eq!(
            reader.seek(32),
            Err(SeekError::NotARecordBoundary { position: 32 })
        );
        assert_eq!(
            reader.seek(3),
            Err(SeekError::NotARecordBoundary { position: 3 })
        );
        // The end of the records (the closed marker) is a boundary.
        reader.seek(56).unwrap();
        assert_eq!(reader.try_read(), Err(ReadError::Closed));
        assert_eq!(
            reader.seek(64),
            Err(SeekError::BeyondEnd {
                position: 64,
                end: 56
            })
        );
        let far = !7u32;
        assert_eq!(
            reader.seek(far),
            Err(SeekError::BeyondEnd {
                position: far,
                end: 56
            })
        );
    }

    #[test]
    fn iterator_is_fused_and_yields_errors_once() {
        let mut buffer = channel(&[b"a", b"b"], false);
        put_word(&mut buffer, 16, 1);
        let region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let mut reader = Reader::open(&region).unwrap();
        let mut records = reader.records();
        assert_eq!(records.next(), Some(Ok(&b"a"[..])));
        assert!(matches!(
            records.next(),
            Some(Err(ReadError::Corrupt { .. }))
        ));
        assert_eq!(records.next(), None);
        assert_eq!(records.next(), None);
    }

    struct Fake(Cell<u64>);
    impl Clock for Fake {
        fn now(&self) -> u64 {
            self.0.get()
        }
    }

    #[test]
    fn status_follows_the_writer() {
        let clock = Fake(Cell::new(1_000));
        let mut buffer = AlignedBuffer::<LEN>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let config = ChannelConfig::new(1)
            .timeout(100, TickUnit::Millis)
            .creation_time(1_000);
        let mut writer = Writer::create(&mut region, &config).unwrap();
        let mut reader = Reader::open(writer.shared_region()).unwrap();
        assert_eq!(reader.status(&clock), Status::Open);
        // Heartbeats keep it open, whatever the time.
        for t in (1_050..2_000).step_by(50) {
            clock.0.set(t);
            writer.heartbeat(t);
            assert_eq!(reader.status(&clock), Status::Open);
        }
        // The last heartbeat was at 1_950; the timeout is 100.
        clock.0.set(2_050);
        assert_eq!(reader.status(&clock), Status::Open);
        clock.0.set(2_051);
        assert_eq!(reader.status(&clock), Status::Abandoned);
        // The writer comes back: not terminal.
        writer.heartbeat(2_051);
        assert_eq!(reader.status(&clock), Status::Open);
        writer.write(b"x").unwrap();
        writer.close();
        assert_eq!(reader.status(&clock), Status::Open);
        reader.try_read().unwrap();
        assert_eq!(reader.status(&clock), Status::Closed);
    }

    #[test]
    fn a_reader_with_another_clock_waits_one_timeout() {
        // The writer's clock is far from the reader's: the heartbeat's age
        // means nothing, so the reader times the silence itself.
        let clock = Fake(Cell::new(5_000_000));
        let mut buffer = AlignedBuffer::<LEN>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let config = ChannelConfig::new(1).timeout(10, TickUnit::Seconds);
        let mut writer = Writer::create(&mut region, &config).unwrap();
        writer.heartbeat(3);
        let mut reader = Reader::open(writer.shared_region()).unwrap();
        assert_eq!(reader.status(&clock), Status::Open);
        clock.0.set(5_000_010);
        assert_eq!(reader.status(&clock), Status::Open);
        writer.heartbeat(4);
        clock.0.set(5_000_015);
        assert_eq!(reader.status(&clock), Status::Open);
        clock.0.set(5_000_026);
        assert_eq!(reader.status(&clock), Status::Abandoned);
    }

    /// Time as the reader sees it, with the writer beating every 10 ticks:
    /// each reading of the clock may be followed by a scripted stall of the
    /// reader, during which time passes and the writer keeps beating.
    struct Stalling<R: Region> {
        now: Cell<u64>,
        stalls: core::cell::RefCell<std::vec::IntoIter<u64>>,
        writer: core::cell::RefCell<Writer<R>>,
    }

    impl<R: Region> Clock for Stalling<R> {
        fn now(&self) -> u64 {
            let read = self.now.get();
            let stall = self.stalls.borrow_mut().next().unwrap_or(0);
            for tick in read + 1..=read + stall {
                if tick % 10 == 0 {
                    self.writer.borrow_mut().heartbeat(tick);
                }
            }
            self.now.set(read + stall);
            read
        }
    }

    #[test]
    fn a_reader_delayed_between_its_reads_never_abandons_a_beating_writer() {
        // Found by loom-tests' heartbeat model: a reader that read the clock,
        // stalled while the writer beat, then compared a second reading of
        // the clock with the newer heartbeat, saw "the future" and, with an
        // old `since`, reported the writer abandoned.
        let mut buffer = AlignedBuffer::<LEN>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let config = ChannelConfig::new(1)
            .timeout(10, TickUnit::Millis)
            .creation_time(0);
        let writer = Writer::create(&mut region, &config).unwrap();
        let mut reader = Reader::open(writer.shared_region()).unwrap();
        let clock = Stalling {
            now: Cell::new(0),
            stalls: core::cell::RefCell::new(std::vec![20, 0, 0, 10].into_iter()),
            writer: core::cell::RefCell::new(writer),
        };
        // The writer beats every 10 ticks, exactly the timeout, throughout.
        for _ in 0..6 {
            assert_eq!(reader.status(&clock), Status::Open);
        }
        assert_eq!(clock.now.get(), 30);
        // Silent from 30 on: abandoned once the timeout has passed.
        clock.now.set(40);
        assert_eq!(reader.status(&clock), Status::Open);
        clock.now.set(41);
        assert_eq!(reader.status(&clock), Status::Abandoned);
    }

    /// A clock that returns the readings it is given, then the last one.
    struct Script(core::cell::RefCell<std::vec::IntoIter<u64>>, Cell<u64>);
    impl Clock for Script {
        fn now(&self) -> u64 {
            if let Some(next) = self.0.borrow_mut().next() {
                self.1.set(next);
            }
            self.1.get()
        }
    }

    #[test]
    fn a_writer_between_the_halves_of_a_heartbeat_is_not_abandoned() {
        // Found by loom-tests' heartbeat model: the reader read its clock
        // (10), was delayed, then found the sequence word odd: the writer,
        // at 30, had begun its next heartbeat. Timed from the early
        // reading, that change looked 20 ticks old at the next look, with
        // the writer still between the halves: abandoned. It is timed from
        // a reading taken after it was seen.
        let mut buffer = AlignedBuffer::<LEN>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let config = ChannelConfig::new(1)
            .timeout(10, TickUnit::Millis)
            .creation_time(0);
        let writer = Writer::create(&mut region, &config).unwrap();
        let region = writer.leave_open();
        let mut reader = Reader::open(region).unwrap();
        // First look, at 0: the creation heartbeat, sequence 0.
        let clock = Script(
            core::cell::RefCell::new(std::vec![0, 0, 10, 30, 30].into_iter()),
            Cell::new(0),
        );
        assert_eq!(reader.status(&clock), Status::Open);
        // The writer stores the odd word of its next heartbeat, and stops
        // there for a moment.
        // SAFETY: in bounds and aligned; the writer is gone, so this test
        // is the only one storing.
        unsafe { region.store_u32(HEARTBEAT_SEQ_OFFSET, 1, Ordering::Release) };
        // Clock read at 10, then (after the delay) the odd word: a move.
        assert_eq!(reader.status(&clock), Status::Open);
        // At 30 the word is still odd: no time has passed since the move
        // was seen (at 30), whatever the first reading said.
        assert_eq!(reader.status(&clock), Status::Open);
        // Stuck there for good (a crash between the halves): abandoned
        // once the timeout has passed since the move was seen.
        clock.1.set(40);
        assert_eq!(reader.status(&clock), Status::Open);
        clock.1.set(41);
        assert_eq!(reader.status(&clock), Status::Abandoned);
    }

    #[test]
    fn a_heartbeat_far_ahead_of_the_clock_is_not_fresh() {
        // More than a timeout ahead is a different clock, not a delay: the
        // reader times the silence itself.
        let clock = Fake(Cell::new(0));
        let mut buffer = AlignedBuffer::<LEN>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let config = ChannelConfig::new(1).timeout(10, TickUnit::Millis);
        let mut writer = Writer::create(&mut region, &config).unwrap();
        writer.heartbeat(5_000);
        let mut reader = Reader::open(writer.shared_region()).unwrap();
        assert_eq!(reader.status(&clock), Status::Open);
        clock.0.set(10);
        assert_eq!(reader.status(&clock), Status::Open);
        clock.0.set(11);
        assert_eq!(reader.status(&clock), Status::Abandoned);
        // Seen at 11, still ahead at 22 but by less than a timeout: fresh,
        // though the reader has watched it unchanged for 11 ticks.
        writer.heartbeat(30);
        assert_eq!(reader.status(&clock), Status::Open);
        clock.0.set(22);
        assert_eq!(reader.status(&clock), Status::Open);
        clock.0.set(41);
        assert_eq!(reader.status(&clock), Status::Abandoned);
    }

    #[test]
    fn no_timeout_means_never_abandoned() {
        let clock = Fake(Cell::new(0));
        let mut buffer = AlignedBuffer::<LEN>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let writer = Writer::create(&mut region, &ChannelConfig::new(1)).unwrap();
        let mut reader = Reader::open(writer.shared_region()).unwrap();
        reader.status(&clock);
        clock.0.set(u64::MAX);
        assert_eq!(reader.status(&clock), Status::Open);
    }

    #[test]
    fn rejects_a_header_longer_than_its_region() {
        let mut buffer = channel(&[], false);
        let region = SliceRegion::new(&mut buffer.as_mut_slice()[..LEN - 8]).unwrap();
        assert_eq!(
            Reader::open(&region).unwrap_err(),
            HeaderError::CapacityExceedsRegion {
                capacity: 512,
                available: 504
            }
        );
    }
}
