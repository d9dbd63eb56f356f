//! The writer: the one party that appends records to a channel.

use core::fmt;
use core::ops::{Deref, DerefMut};

use crate::batch::{Batch, BatchError};
use crate::checksum;
use crate::encoder::{Encode, Handler, RecordSink};
use crate::error::{HeaderError, WriteError};
use crate::format::*;
use crate::header::{ChannelConfig, Header};
use crate::region::{ExclusiveRegion, Region};
use crate::sync::{Ordering, fence};

/// The ordering that publishes a commit word. Readers load it with
/// `Acquire`, so everything the writer stored before it is visible to them.
/// `loom-tests` builds the deliberately broken `Relaxed` variant under
/// `--cfg kekbit_weakened` to prove its models catch the bug; no real build
/// ever sets that cfg.
#[cfg(not(kekbit_weakened))]
pub(crate) const PUBLISH: Ordering = Ordering::Release;
#[cfg(kekbit_weakened)]
pub(crate) const PUBLISH: Ordering = Ordering::Relaxed;

/// Whether the writer can still append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Open,
    Closed,
    /// Marked full by the write whose figures these are.
    Full {
        needed: u64,
        remaining: u32,
    },
}

/// The single writer of a channel: appends records, heartbeats, closes.
///
/// There is exactly one per channel, so it is not `Clone`. It owns the
/// commit words and the heartbeat; readers only load them. Dropping an open
/// writer closes the channel (see [`Writer::leave_open`] for the exception).
///
/// `R` is how the writer reaches its region: `&T` for a region you created
/// with [`Writer::create`], or an owned handle for
/// [`Writer::create_unchecked`].
///
/// # Example
///
/// ```
/// use kekbit_nostd::{AlignedBuffer, ChannelConfig, Reader, SliceRegion, Writer};
///
/// let mut buffer = AlignedBuffer::<4096>::new();
/// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
/// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
/// let mut reader = Reader::open(writer.shared_region())?;
///
/// writer.write(b"hello")?;
/// assert_eq!(reader.try_read()?, Some(&b"hello"[..]));
/// assert_eq!(reader.try_read()?, None); // nothing more yet
/// # Ok::<(), Box<dyn core::error::Error>>(())
/// ```
///
/// There is no second writer to be had: `Writer` is not `Clone`, and
/// `create` needs the region exclusively for as long as the writer lives.
///
/// ```compile_fail,E0599
/// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, SliceRegion, Writer};
/// let mut buffer = AlignedBuffer::<1024>::new();
/// let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
/// let writer = Writer::create(&mut region, &ChannelConfig::new(1)).unwrap();
/// let second = writer.clone(); // error: `Writer` is not `Clone`
/// ```
///
/// ```compile_fail,E0499
/// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, SliceRegion, Writer};
/// let mut buffer = AlignedBuffer::<1024>::new();
/// let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
/// let first = Writer::create(&mut region, &ChannelConfig::new(1)).unwrap();
/// let second = Writer::create(&mut region, &ChannelConfig::new(1)); // error: borrowed twice
/// drop(first);
/// ```
///
/// A grant borrows the writer, so nothing else can be written until it is
/// committed or dropped:
///
/// ```compile_fail,E0499
/// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, SliceRegion, Writer};
/// # let mut buffer = AlignedBuffer::<1024>::new();
/// # let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
/// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1)).unwrap();
/// let grant = writer.reserve(8).unwrap();
/// writer.write(b"interleaved"); // error: `writer` is borrowed by `grant`
/// grant.commit(8).unwrap();
/// ```
pub struct Writer<R: Region> {
    pub(crate) region: R,
    pub(crate) header: Header,
    /// Offset in the record area of the next record; a multiple of 8, and
    /// `position + MARKER_LEN <= capacity` always, so an end marker fits.
    pub(crate) position: u32,
    pub(crate) state: State,
    pub(crate) records: u64,
    /// The heartbeat sequence word as this writer last stored it: even.
    heartbeat_seq: u32,
}

impl<'a, T: Region + ?Sized> Writer<&'a T> {
    /// Creates a channel in `region` and returns its writer.
    ///
    /// The exclusive borrow proves no other writer exists; readers reach the
    /// region through [`Writer::shared_region`]. The header is written with
    /// its first word last, so a reader on another core never sees half of it.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::{AlignedBuffer, ChannelConfig, SliceRegion, Writer};
    ///
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let writer = Writer::create(&mut region, &ChannelConfig::new(7).checksums(true))?;
    /// assert_eq!(writer.header().capacity_bytes, 1024 - 192);
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn create(region: &'a mut T, config: &ChannelConfig) -> Result<Self, HeaderError>
    where
        T: ExclusiveRegion,
    {
        let region: &'a T = region;
        // SAFETY: `region` came from an exclusive borrow of an
        // `ExclusiveRegion` that lasts as long as the writer, so no other
        // writer can exist on its memory meanwhile.
        unsafe { Self::create_unchecked(region, config) }
    }

    /// Resumes writing a channel that is still open, after the records
    /// already in it; for journals reopened after a restart or a crash.
    ///
    /// See [`Writer::resume_unchecked`] for what it checks and repairs.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::{AlignedBuffer, ChannelConfig, Reader, SliceRegion, Writer};
    ///
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// writer.write(b"before")?;
    /// writer.leave_open(); // as if the process stopped without closing
    ///
    /// let mut writer = Writer::resume(&mut region)?;
    /// writer.write(b"after")?;
    /// let mut reader = Reader::open(writer.shared_region())?;
    /// assert_eq!(reader.try_read()?, Some(&b"before"[..]));
    /// assert_eq!(reader.try_read()?, Some(&b"after"[..]));
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn resume(region: &'a mut T) -> Result<Self, ResumeError>
    where
        T: ExclusiveRegion,
    {
        let region: &'a T = region;
        // SAFETY: as in `create`, the exclusive borrow rules out other writers.
        unsafe { Self::resume_unchecked(region) }
    }

    /// The region, for the lifetime of the original borrow, so readers on
    /// other threads can outlive any borrow of the writer.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, Reader, SliceRegion, Writer};
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// let region = writer.shared_region();
    /// let reader = std::thread::scope(|s| s.spawn(|| Reader::open(region).map(|r| r.position())).join());
    /// assert_eq!(reader.unwrap()?, 0);
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn shared_region(&self) -> &'a T {
        self.region
    }
}

impl<R: Region> Writer<R> {
    /// Creates a channel in a region handle whose exclusivity the caller
    /// guarantees: an owned mapping, or a loom model's shared region.
    ///
    /// # Safety
    ///
    /// - While the returned writer lives, no other `Writer` exists on any
    ///   region over the same memory, in any thread, core or process. Two
    ///   writers race on the same bytes: readers then see torn records.
    /// - The region's memory is writable (not a read-only mapping): the
    ///   writer stores into it, and a store to read-only pages faults.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::{AlignedBuffer, ChannelConfig, SliceRegion, Writer};
    ///
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let region = SliceRegion::new(buffer.as_mut_slice())?;
    /// // SAFETY: `region` is moved into the only writer of this buffer.
    /// let writer = unsafe { Writer::create_unchecked(region, &ChannelConfig::new(1)) }?;
    /// # drop(writer);
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub unsafe fn create_unchecked(region: R, config: &ChannelConfig) -> Result<Self, HeaderError> {
        let header = config.header_for(region.len())?;
        let encoded = header.encode();
        let time = header.creation_time;
        // SAFETY: the header and the first commit word are in bounds (the
        // header checked `HEADER_LEN + capacity <= len`, capacity >= 24);
        // the caller guarantees we are the only writer; readers reject the
        // region until the first word is published last, with `Release`.
        unsafe {
            region.store_u32(SIGNATURE_OFFSET, 0, Ordering::Relaxed);
            region.store_u32(
                HEADER_LEN + COMMIT_WORD_OFFSET,
                COMMIT_EMPTY,
                Ordering::Relaxed,
            );
            region.store_u32(HEARTBEAT_SEQ_OFFSET, 0, Ordering::Relaxed);
            region.store_u32(HEARTBEAT_LO_OFFSET, time as u32, Ordering::Relaxed);
            region.store_u32(HEARTBEAT_HI_OFFSET, (time >> 32) as u32, Ordering::Relaxed);
            region.copy_in(4, &encoded[4..]);
            let first = u32::from_le_bytes([encoded[0], encoded[1], encoded[2], encoded[3]]);
            region.store_u32(SIGNATURE_OFFSET, first, Ordering::Release);
        }
        Ok(Self {
            region,
            header,
            position: 0,
            state: State::Open,
            records: 0,
            heartbeat_seq: 0,
        })
    }

    /// Resumes an open channel in a region handle whose exclusivity the
    /// caller guarantees.
    ///
    /// It validates the header, then walks the records. The walk stops at
    /// the end of the published records or at the first bad one (a corrupt
    /// commit word, or a checksum mismatch left by a torn write before power
    /// loss). Everything after that point is cleared to zero, whatever it
    /// holds: a damaged record, leftovers of a batch that was never
    /// published, or old records from before an earlier resume, which could
    /// otherwise come back after a second crash. A batch cut short by the
    /// walk has its marker rewritten to cover only the records kept. A
    /// closed or full channel cannot be resumed.
    ///
    /// Clearing writes only the blocks of the tail that are not zero
    /// already, so resuming a large, mostly empty channel stays cheap. On a
    /// file, make the clearing durable (an `msync` of the record area)
    /// before writing new records, as `kekbit-std` does.
    ///
    /// # Safety
    ///
    /// As for [`Writer::create_unchecked`]; in addition, no reader in this
    /// address space may be reading the channel while `resume` runs, since
    /// the tail it clears is written non-atomically.
    pub unsafe fn resume_unchecked(region: R) -> Result<Self, ResumeError> {
        let mut reader = crate::Reader::open(&region).map_err(ResumeError::Header)?;
        let header = *reader.header();
        let mut records = 0u64;
        loop {
            match reader.try_read() {
                Ok(Some(_)) => records += 1,
                Err(crate::ReadError::Closed) => return Err(ResumeError::Closed),
                Err(crate::ReadError::Full) => return Err(ResumeError::Full),
                // The end of the published records, or damage: either way
                // the channel resumes here.
                Ok(None) | Err(_) => break,
            }
        }
        let mut position = reader.position();
        if let Some((marker, kept)) = reader.open_batch() {
            // The walk stopped inside a batch: keep its marker only if it
            // still covers a record, shortened to end here.
            let span = position - marker - BATCH_MARKER_LEN as u32;
            // SAFETY: the marker's word and count were checked in bounds by
            // the walk; we are the only writer and no reader is active.
            unsafe {
                if kept == 0 {
                    region.store_u32(
                        HEADER_LEN + marker as usize,
                        COMMIT_EMPTY,
                        Ordering::Release,
                    );
                    position = marker;
                } else {
                    let at = HEADER_LEN + marker as usize;
                    region.store_u32(at + BATCH_COUNT_OFFSET, kept, Ordering::Relaxed);
                    region.store_u32(at, COMMIT_BATCH_TAG | span, Ordering::Release);
                }
            }
        }
        clear_tail(&region, &header, position);
        // SAFETY: the sequence word is in the header, in bounds; only the
        // writer stores it and we are the writer.
        let seq = unsafe { region.load_u32(HEARTBEAT_SEQ_OFFSET, Ordering::Relaxed) };
        Ok(Self {
            region,
            header,
            position,
            state: State::Open,
            records,
            // A crash between the halves of a heartbeat leaves it odd.
            heartbeat_seq: seq.wrapping_add(seq & 1),
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
    /// assert_eq!(writer.header().channel_id, 1);
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The region handle the writer holds.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, Reader, SliceRegion, Writer};
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// assert_eq!(kekbit_nostd::Region::len(*writer.region()), 1024);
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn region(&self) -> &R {
        &self.region
    }

    /// Offset in the record area where the next record goes.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, Reader, SliceRegion, Writer};
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// writer.write(b"abc")?;
    /// assert_eq!(writer.position(), 16); // 8 of framing + 3 padded to 8
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn position(&self) -> u32 {
        self.position
    }

    /// Records written by this writer (and found by `resume`).
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, Reader, SliceRegion, Writer};
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// writer.write(b"a")?;
    /// writer.write(b"b")?;
    /// assert_eq!(writer.records_written(), 2);
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn records_written(&self) -> u64 {
        self.records
    }

    /// Bytes left for records, framing included; the end marker's space is
    /// kept aside and not counted.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, Reader, SliceRegion, Writer};
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// let before = writer.remaining_bytes();
    /// writer.write(&[0; 10])?;
    /// assert_eq!(writer.remaining_bytes(), before - 24);
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn remaining_bytes(&self) -> u32 {
        remaining_at(&self.header, self.position)
    }

    /// Whether the channel still accepts records.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, Reader, SliceRegion, Writer};
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// assert!(writer.is_open());
    /// writer.close();
    /// assert!(!writer.is_open());
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Appends one record and publishes it; returns its position.
    ///
    /// On error nothing is published. If the record does not fit, the
    /// channel is marked full (see [`WriteError::Full`]).
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, SliceRegion, WriteError, Writer};
    /// let mut buffer = AlignedBuffer::<512>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1).max_record_len(64))?;
    /// assert_eq!(writer.write(b"first")?, 0);
    /// assert_eq!(writer.write(b"second")?, 16);
    /// assert!(matches!(writer.write(&[0; 65]), Err(WriteError::TooLarge { len: 65, max: 64 })));
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    #[inline]
    pub fn write(&mut self, payload: &[u8]) -> Result<u32, WriteError> {
        let len = self.admit(payload.len())?;
        let at = HEADER_LEN + self.position as usize + PAYLOAD_OFFSET;
        // SAFETY: `admit` proved the record fits before the end marker's
        // space; the bytes are past every published record, so no reader
        // reads them until `publish`.
        unsafe { self.region.copy_in(at, payload) };
        Ok(self.publish_single(len))
    }

    /// Reserves space for a record of up to `len` bytes, to fill in place.
    ///
    /// Nothing is visible until [`Grant::commit`]; a grant dropped without
    /// commit publishes nothing.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, Reader, SliceRegion, Writer};
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// let mut reader = Reader::open(writer.shared_region())?;
    ///
    /// let mut grant = writer.reserve(16)?;
    /// grant[..5].copy_from_slice(b"zero-");
    /// grant[5..9].copy_from_slice(b"copy");
    /// grant.commit(9)?;
    /// assert_eq!(reader.try_read()?, Some(&b"zero-copy"[..]));
    ///
    /// drop(writer.reserve(16)?); // dropped: publishes nothing
    /// assert_eq!(reader.try_read()?, None);
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn reserve(&mut self, len: usize) -> Result<Grant<'_, R>, WriteError> {
        self.admit(len)?;
        Ok(Grant { writer: self, len })
    }

    /// Encodes `record` through `handler` straight into the channel; returns
    /// the record's position.
    ///
    /// Nothing is published if the handler fails or the record is too large.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, Reader, SliceRegion, Writer};
    /// use kekbit_nostd::{Handler, PlainHandler, SequenceHandler};
    ///
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// let mut reader = Reader::open(writer.shared_region())?;
    ///
    /// let mut handler = SequenceHandler::new(100).chain(PlainHandler);
    /// writer.write_with(&mut handler, "tick")?;
    /// let record = reader.try_read()?.unwrap();
    /// assert_eq!(SequenceHandler::split(record), Some((100, &b"tick"[..])));
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn write_with<H, E>(&mut self, handler: &mut H, record: &E) -> Result<u32, WriteError>
    where
        H: Handler + ?Sized,
        E: Encode + ?Sized,
    {
        self.ensure_open()?;
        let len = self.encode_at(self.position, handler, record)?;
        let position = self.publish_single(len);
        handler.published();
        Ok(position)
    }

    /// Encodes `record` through `handler` as the payload of a record at
    /// `position`, without publishing it; returns its checked length. If it
    /// does not fit, marks the channel full there.
    pub(crate) fn encode_at<H, E>(
        &mut self,
        position: u32,
        handler: &mut H,
        record: &E,
    ) -> Result<u32, WriteError>
    where
        H: Handler + ?Sized,
        E: Encode + ?Sized,
    {
        let max = self.header.max_record_len as usize;
        let remaining = remaining_at(&self.header, position);
        // The sink may fill every byte before the end marker's space; the
        // record's span is checked against the space after encoding.
        let room = (remaining as usize).saturating_sub(PAYLOAD_OFFSET).min(max);
        let at = HEADER_LEN + position as usize + PAYLOAD_OFFSET;
        let buf: &mut [u8] = if room == 0 {
            &mut []
        } else {
            // SAFETY: `position + MARKER_LEN <= capacity`, so the `room`
            // bytes after the record header end at or before the end
            // marker's space, past every published record; this writer holds
            // the only borrow until the sink is dropped below.
            unsafe { self.region.bytes_mut(at, room) }
        };
        let mut sink = RecordSink::new(buf);
        handler.handle(record, &mut sink)?;
        let len = sink.len();
        if len > max {
            return Err(WriteError::TooLarge {
                len,
                max: self.header.max_record_len,
            });
        }
        let len = len as u32; // <= max_record_len <= 2^30
        if !fits(remaining, len) {
            return Err(self.mark_full_at(position, len as usize, remaining));
        }
        Ok(len)
    }

    /// Records that the writer is alive at `now` (in the channel's ticks).
    ///
    /// Call it more often than the channel's timeout, whether or not you
    /// write records, or readers will call the writer abandoned.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, Reader, SliceRegion, Writer};
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// writer.heartbeat(42);
    /// assert_eq!(Reader::open(writer.shared_region())?.heartbeat(), Some(42));
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn heartbeat(&mut self, now: u64) {
        // A sequence lock over two 32-bit halves, since the protocol uses
        // only 32-bit atomics: the word is odd while the halves change, and
        // readers retry (or count the change as a sign of life) if it moved.
        let begin = self.heartbeat_seq.wrapping_add(1);
        let end = begin.wrapping_add(1);
        // SAFETY: the three words are in the header, in bounds and aligned;
        // they are only ever accessed atomically, and only this writer
        // stores them.
        unsafe {
            // `Release` here too: a reader that sees the word odd also sees
            // everything before it (readers time a change of this word from
            // a clock reading taken after they saw it).
            self.region
                .store_u32(HEARTBEAT_SEQ_OFFSET, begin, Ordering::Release);
            fence(Ordering::Release);
            self.region
                .store_u32(HEARTBEAT_LO_OFFSET, now as u32, Ordering::Relaxed);
            self.region
                .store_u32(HEARTBEAT_HI_OFFSET, (now >> 32) as u32, Ordering::Relaxed);
            self.region
                .store_u32(HEARTBEAT_SEQ_OFFSET, end, Ordering::Release);
        }
        self.heartbeat_seq = end;
    }

    /// Closes the channel: readers see every record, then
    /// [`ReadError::Closed`](crate::ReadError::Closed). Closing twice is a no-op.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, ReadError, Reader, SliceRegion, WriteError, Writer};
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// let mut reader = Reader::open(writer.shared_region())?;
    /// writer.write(b"last")?;
    /// writer.close();
    /// assert_eq!(writer.write(b"late"), Err(WriteError::Closed));
    /// assert_eq!(reader.try_read()?, Some(&b"last"[..]));
    /// assert_eq!(reader.try_read(), Err(ReadError::Closed));
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn close(&mut self) {
        if self.state == State::Open {
            self.store_word(self.position, COMMIT_CLOSED, PUBLISH);
            self.state = State::Closed;
        }
    }

    /// Gives back the region without closing the channel, so another writer
    /// can [`resume`](Writer::resume) it; also how tests simulate a crash.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, Reader, SliceRegion, Writer};
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// writer.write(b"kept")?;
    /// let region = writer.leave_open();
    /// let mut reader = Reader::open(region)?;
    /// assert_eq!(reader.try_read()?, Some(&b"kept"[..]));
    /// assert_eq!(reader.try_read()?, None); // not closed
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn leave_open(self) -> R {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so the region is
        // moved out exactly once; the other fields need no drop.
        unsafe { core::ptr::read(&this.region) }
    }

    /// Checks that a record of `len` bytes may be written now, at the
    /// writer's position.
    #[inline(always)]
    fn admit(&mut self, len: usize) -> Result<u32, WriteError> {
        self.ensure_open()?;
        if len > self.header.max_record_len as usize {
            return Err(WriteError::TooLarge {
                len,
                max: self.header.max_record_len,
            });
        }
        let len = len as u32; // <= max_record_len <= 2^30
        let remaining = self.remaining_bytes();
        if !fits(remaining, len) {
            return Err(self.mark_full_at(self.position, len as usize, remaining));
        }
        Ok(len)
    }

    /// A closed or full channel takes no more records.
    pub(crate) fn ensure_open(&self) -> Result<(), WriteError> {
        match self.state {
            State::Open => Ok(()),
            State::Closed => Err(WriteError::Closed),
            State::Full { needed, remaining } => Err(WriteError::Full { needed, remaining }),
        }
    }

    /// Marks the channel full at `position` (the writer's position, or the
    /// end of a batch being published) and returns the error describing
    /// why. The marker is published with `Release`.
    #[cold]
    #[inline(never)]
    pub(crate) fn mark_full_at(&mut self, position: u32, len: usize, remaining: u32) -> WriteError {
        self.store_word(position, COMMIT_FULL, PUBLISH);
        let needed = PAYLOAD_OFFSET as u64 + len as u64;
        self.state = State::Full { needed, remaining };
        WriteError::Full { needed, remaining }
    }

    /// Stores a commit word at `position` in the record area.
    #[inline(always)]
    pub(crate) fn store_word(&self, position: u32, word: u32, order: Ordering) {
        // The writer's invariant: every word it stores leaves room for an
        // end marker, so it is in the record area. Checked in release too:
        // a failure here is a kekbit bug, and a panic beats a wild store.
        if position as usize + MARKER_LEN > self.header.capacity_bytes as usize {
            outside_the_record_area(position, 0);
        }
        // SAFETY: in bounds by the check above, aligned (positions are
        // multiples of 8); we are the only writer.
        unsafe {
            self.region
                .store_u32(HEADER_LEN + position as usize, word, order)
        };
    }

    /// Stores the framing of a record of `len` payload bytes already copied
    /// in at `position`, except its commit word; returns the position after
    /// it.
    #[inline(always)]
    pub(crate) fn frame(&self, position: u32, len: u32) -> u32 {
        let next = position as u64 + record_span(len) as u64;
        if next + MARKER_LEN as u64 > self.header.capacity_bytes as u64 {
            outside_the_record_area(position, len);
        }
        let at = HEADER_LEN + position as usize;
        let sum = if self.header.checksums() {
            // SAFETY: the payload was just written by this writer, in bounds
            // (checked above), and is not published yet.
            checksum::record(unsafe { self.region.bytes(at + PAYLOAD_OFFSET, len as usize) })
        } else {
            0
        };
        // SAFETY: the checksum word is in the record's header, in bounds.
        unsafe {
            self.region
                .store_u32(at + RECORD_CHECKSUM_OFFSET, sum, Ordering::Relaxed)
        };
        next as u32
    }

    /// Publishes the record of `len` payload bytes already copied in at the
    /// current position; returns its position.
    #[inline(always)]
    pub(crate) fn publish_single(&mut self, len: u32) -> u32 {
        let position = self.position;
        let next = self.frame(position, len);
        // The next commit word is cleared before the record is published,
        // so a reader that sees this record sees an empty word after it,
        // whatever the memory held.
        self.store_word(next, COMMIT_EMPTY, Ordering::Relaxed);
        self.store_word(position, COMMIT_RECORD_TAG | len, PUBLISH);
        self.position = next;
        self.records += 1;
        position
    }

    /// Begins a batch: records written through it are published together,
    /// by one store, when it is dropped or [`published`](Batch::publish).
    ///
    /// A batch costs 8 bytes of framing (its marker) and saves the reader
    /// and the writer one cache-line handover per record. Readers learn
    /// from the marker how far the batch extends, and read ahead over it.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, Reader, SliceRegion, Writer};
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// let mut reader = Reader::open(writer.shared_region())?;
    ///
    /// let mut batch = writer.batch();
    /// batch.write(b"one")?;
    /// batch.write(b"two")?;
    /// assert_eq!(reader.try_read()?, None); // nothing is visible yet
    /// assert_eq!(batch.publish(), 2);
    /// assert_eq!(reader.try_read()?, Some(&b"one"[..]));
    /// assert_eq!(reader.try_read()?, Some(&b"two"[..]));
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn batch(&mut self) -> Batch<'_, R> {
        Batch::new(self)
    }

    /// Writes every record of `records` as one batch; returns the position
    /// of the first record (after the batch's 8-byte marker), or the
    /// writer's position if `records` is empty.
    ///
    /// If one cannot be written (too large, or the channel filled), the
    /// records before it are published and the error says how many.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, Reader, SliceRegion, WriteError, Writer};
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1).max_record_len(8))?;
    /// assert_eq!(writer.write_all(&[b"a", b"bc"])?, 8); // after the marker
    ///
    /// let err = writer.write_all(&[b"d", b"far too long"]).unwrap_err();
    /// assert_eq!(err.published, 1);
    /// assert!(matches!(err.error, WriteError::TooLarge { len: 12, max: 8 }));
    ///
    /// let mut reader = Reader::open(writer.shared_region())?;
    /// let all: Result<Vec<_>, _> = reader.records().collect();
    /// assert_eq!(all?, [&b"a"[..], b"bc", b"d"]);
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn write_all(&mut self, records: &[&[u8]]) -> Result<u32, BatchError> {
        let mut first = None;
        let mut batch = self.batch();
        for (i, record) in records.iter().enumerate() {
            match batch.write(record) {
                Ok(position) => {
                    first.get_or_insert(position);
                }
                // Everything before it is published when the batch drops.
                Err(error) => {
                    return Err(BatchError {
                        published: i,
                        error,
                    });
                }
            }
        }
        drop(batch);
        Ok(first.unwrap_or(self.position))
    }
}

/// Bytes left for records at `position`, framing included, the end marker's
/// space kept aside. `position + MARKER_LEN <= capacity` is every caller's
/// invariant; saturating keeps a broken one from wrapping.
#[inline]
pub(crate) fn remaining_at(header: &Header, position: u32) -> u32 {
    header
        .capacity_bytes
        .saturating_sub(position)
        .saturating_sub(MARKER_LEN as u32)
}

/// Whether a record of `len` payload bytes fits in `remaining` bytes: the
/// one fit rule every entry point uses. An empty record needs 8 bytes too.
#[inline]
pub(crate) fn fits(remaining: u32, len: u32) -> bool {
    record_span(len) <= remaining
}

/// Clears the record area from `position` to its end: the commit word at
/// `position` first, atomically, then every block that is not zero already.
fn clear_tail<R: Region>(region: &R, header: &Header, position: u32) {
    let start = HEADER_LEN + position as usize;
    let end = HEADER_LEN + header.capacity_bytes as usize;
    if start + MARKER_LEN > end {
        return;
    }
    // SAFETY: the word is in the record area (`position + 8 <= capacity`);
    // we are the only writer.
    unsafe { region.store_u32(start, COMMIT_EMPTY, Ordering::Release) };
    const BLOCK: usize = 4096;
    let zeros = [0u8; 256];
    let mut at = start;
    while at < end {
        let n = BLOCK.min(end - at);
        // SAFETY: `at..at + n` lies in the record area past the resume
        // point, which no reader reads (the caller's contract) and which
        // only this writer writes.
        let dirty = unsafe { region.bytes(at, n) }.iter().any(|&b| b != 0);
        if dirty {
            let mut done = 0;
            while done < n {
                let k = zeros.len().min(n - done);
                // SAFETY: as above; inside `at..at + n`.
                unsafe { region.copy_in(at + done, &zeros[..k]) };
                done += k;
            }
        }
        at += n;
    }
}

/// The panic of the writer's own bounds checks (a commit word, or a record
/// of `len` payload bytes, at `position` past the record area), kept out of
/// the hot path. Reaching it is a kekbit bug; a panic beats a wild store.
#[cold]
#[inline(never)]
#[track_caller]
fn outside_the_record_area(position: u32, len: u32) -> ! {
    panic!(
        "kekbit bug: a record of {len} bytes or its commit word at {position} is outside the record area"
    )
}

impl<R: Region> Drop for Writer<R> {
    fn drop(&mut self) {
        self.close();
    }
}

impl<R: Region> fmt::Debug for Writer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("header", &self.header)
            .field("position", &self.position)
            .field("state", &self.state)
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

/// Space reserved for one record, filled in place and published by
/// [`Grant::commit`]. Dropping it publishes nothing.
pub struct Grant<'w, R: Region> {
    writer: &'w mut Writer<R>,
    /// Bytes reserved; `admit` proved they fit.
    len: usize,
}

impl<R: Region> Grant<'_, R> {
    /// Publishes the first `len` bytes of the grant as one record and
    /// returns its position.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{AlignedBuffer, ChannelConfig, SliceRegion, WriteError, Writer};
    /// # let mut buffer = AlignedBuffer::<1024>::new();
    /// # let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// # let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// let grant = writer.reserve(4)?;
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
        Ok(self.writer.publish_single(len as u32))
    }

    fn at(&self) -> usize {
        HEADER_LEN + self.writer.position as usize + PAYLOAD_OFFSET
    }
}

impl<R: Region> Deref for Grant<'_, R> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `admit` proved the reserved bytes are in bounds and
        // unpublished; only this grant borrows them.
        unsafe { self.writer.region.bytes(self.at(), self.len) }
    }
}

impl<R: Region> DerefMut for Grant<'_, R> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `deref`; `&mut self` makes this the only borrow.
        unsafe { self.writer.region.bytes_mut(self.at(), self.len) }
    }
}

impl<R: Region> fmt::Debug for Grant<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// Why a channel could not be resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ResumeError {
    /// The header is not valid.
    Header(HeaderError),
    /// The channel was closed; it takes no more records.
    Closed,
    /// The channel is full; it takes no more records.
    Full,
}

impl fmt::Display for ResumeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Header(e) => write!(f, "cannot resume: {e}"),
            Self::Closed => f.write_str("cannot resume a closed channel"),
            Self::Full => f.write_str("cannot resume a full channel"),
        }
    }
}

impl core::error::Error for ResumeError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Header(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AlignedBuffer, ReadError, Reader, SliceRegion};
    use std::vec::Vec;

    const LEN: usize = HEADER_LEN + 256;

    fn config() -> ChannelConfig {
        ChannelConfig::new(1).max_record_len(64)
    }

    #[test]
    fn positions_advance_by_padded_spans() {
        let mut buffer = AlignedBuffer::<LEN>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let mut writer = Writer::create(&mut region, &config()).unwrap();
        assert_eq!(writer.write(b"").unwrap(), 0);
        assert_eq!(writer.write(b"1").unwrap(), 8);
        assert_eq!(writer.write(b"12345678").unwrap(), 24);
        assert_eq!(writer.position(), 40);
        assert_eq!(writer.records_written(), 3);
        assert_eq!(writer.remaining_bytes(), 256 - 40 - 8);
    }

    #[test]
    fn too_large_changes_nothing() {
        let mut buffer = AlignedBuffer::<LEN>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let mut writer = Writer::create(&mut region, &config()).unwrap();
        assert_eq!(
            writer.write(&[7; 65]),
            Err(WriteError::TooLarge { len: 65, max: 64 })
        );
        assert!(matches!(
            writer.reserve(65),
            Err(WriteError::TooLarge { .. })
        ));
        assert!(writer.is_open());
        assert_eq!(writer.position(), 0);
        writer.write(b"ok").unwrap();
        let mut reader = Reader::open(writer.shared_region()).unwrap();
        assert_eq!(reader.try_read(), Ok(Some(&b"ok"[..])));
    }

    #[test]
    fn exact_fill_then_full() {
        let mut buffer = AlignedBuffer::<LEN>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let mut writer = Writer::create(&mut region, &config()).unwrap();
        // 256 bytes of records area: 8 records of 24 bytes (16-byte payload)
        // take 192, leaving 64 - 8 for the marker = 56: one 48-byte payload fits.
        for _ in 0..8 {
            writer.write(&[1; 16]).unwrap();
        }
        writer.write(&[2; 48]).unwrap();
        assert_eq!(writer.remaining_bytes(), 0);
        let full = Err(WriteError::Full {
            needed: 8,
            remaining: 0,
        });
        assert_eq!(writer.write(b""), full);
        // Still full, with the same figures: the details stay reachable.
        assert_eq!(writer.write(b"x"), full);
        assert_eq!(writer.reserve(0).map(|_| ()), full.map(|_: u32| ()));
        let mut reader = Reader::open(writer.shared_region()).unwrap();
        let records: Vec<_> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), 9);
        assert_eq!(records[8], &[2; 48][..]);
        assert_eq!(reader.try_read(), Err(ReadError::Full));
    }

    #[test]
    fn full_is_marked_even_if_a_smaller_record_would_fit() {
        let mut buffer = AlignedBuffer::<LEN>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let mut writer = Writer::create(&mut region, &config()).unwrap();
        for _ in 0..3 {
            writer.write(&[0; 64]).unwrap(); // 72 bytes each: 216 used
        }
        assert_eq!(
            writer.write(&[0; 40]),
            Err(WriteError::Full {
                needed: 48,
                remaining: 32
            })
        );
        assert!(!writer.is_open());
    }

    #[test]
    fn writer_does_not_trust_garbage_memory() {
        let mut buffer = AlignedBuffer::<LEN>::new();
        buffer.as_mut_slice().fill(0xA5);
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let mut writer = Writer::create(&mut region, &config()).unwrap();
        let mut reader = Reader::open(writer.shared_region()).unwrap();
        assert_eq!(reader.try_read(), Ok(None));
        writer.write(b"a").unwrap();
        assert_eq!(reader.try_read(), Ok(Some(&b"a"[..])));
        assert_eq!(reader.try_read(), Ok(None));
        let mut grant = writer.reserve(64).unwrap();
        grant.fill(0xC0);
        grant.commit(3).unwrap();
        assert_eq!(reader.try_read(), Ok(Some(&[0xC0; 3][..])));
        assert_eq!(reader.try_read(), Ok(None));
    }

    #[test]
    fn dropped_grant_publishes_nothing() {
        let mut buffer = AlignedBuffer::<LEN>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let mut writer = Writer::create(&mut region, &config()).unwrap();
        let mut reader = Reader::open(writer.shared_region()).unwrap();
        writer.reserve(32).unwrap().fill(9);
        assert_eq!(reader.try_read(), Ok(None));
        writer.write(b"next").unwrap();
        assert_eq!(reader.try_read(), Ok(Some(&b"next"[..])));
    }

    #[test]
    fn encoder_overflow_is_too_large_or_full_and_invisible() {
        let mut buffer = AlignedBuffer::<LEN>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let mut writer = Writer::create(&mut region, &config()).unwrap();
        let mut reader = Reader::open(writer.shared_region()).unwrap();
        let mut plain = crate::PlainHandler;
        assert_eq!(
            writer.write_with(&mut plain, &[1u8; 65][..]),
            Err(WriteError::TooLarge { len: 65, max: 64 })
        );
        assert_eq!(reader.try_read(), Ok(None));
        for _ in 0..3 {
            writer.write_with(&mut plain, &[1u8; 64][..]).unwrap();
        }
        assert_eq!(
            writer.write_with(&mut plain, &[1u8; 33][..]),
            Err(WriteError::Full {
                needed: 41,
                remaining: 32
            })
        );
        assert_eq!(reader.records().count(), 3);
        assert_eq!(reader.try_read(), Err(ReadError::Full));
    }

    #[test]
    fn encoder_failure_publishes_nothing() {
        struct Failing;
        impl crate::Encode for Failing {
            fn encode(&self, sink: &mut RecordSink<'_>) -> Result<(), crate::EncodeError> {
                embedded_io::Write::write_all(sink, b"partial")?;
                Err(crate::EncodeError::new("no"))
            }
        }
        let mut buffer = AlignedBuffer::<LEN>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let mut writer = Writer::create(&mut region, &config()).unwrap();
        let mut reader = Reader::open(writer.shared_region()).unwrap();
        let err = writer
            .write_with(&mut crate::PlainHandler, &Failing)
            .unwrap_err();
        assert_eq!(err, WriteError::Encode(crate::EncodeError::new("no")));
        assert_eq!(reader.try_read(), Ok(None));
        assert!(writer.is_open());
    }

    #[test]
    fn drop_closes_and_leave_open_does_not() {
        let mut buffer = AlignedBuffer::<LEN>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let writer = Writer::create(&mut region, &config()).unwrap();
        writer.leave_open();
        let mut reader = Reader::open(&region).unwrap();
        assert_eq!(reader.try_read(), Ok(None));
        drop(Writer::resume(&mut region).unwrap());
        let mut reader = Reader::open(&region).unwrap();
        assert_eq!(reader.try_read(), Err(ReadError::Closed));
        assert_eq!(
            Writer::resume(&mut region).unwrap_err(),
            ResumeError::Closed
        );
    }

    #[test]
    fn resume_discards_a_torn_tail() {
        let mut buffer = AlignedBuffer::<LEN>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let mut writer = Writer::create(&mut region, &config().checksums(true)).unwrap();
        writer.write(b"kept").unwrap();
        let torn = writer.write(b"torn").unwrap() as usize;
        writer.write(b"persisted after the torn one").unwrap();
        writer.leave_open();
        // Power loss: the commit word reached the disk, the payload did not.
        buffer.as_mut_slice()[HEADER_LEN + torn + PAYLOAD_OFFSET] ^= 0xFF;
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let mut writer = Writer::resume(&mut region).unwrap();
        assert_eq!(writer.records_written(), 1);
        assert_eq!(writer.position() as usize, torn);
        writer.write(b"new").unwrap();
        let mut reader = Reader::open(writer.shared_region()).unwrap();
        let all: Vec<_> = reader.records().map(Result::unwrap).collect();
        assert_eq!(all, [&b"kept"[..], &b"new"[..]]);
        writer.close();
        // Nothing of the torn record survives past the new end marker.
        let end = HEADER_LEN + writer.position() as usize + MARKER_LEN;
        drop(writer);
        assert!(buffer.as_mut_slice()[end..].iter().all(|&b| b == 0));
    }

    #[test]
    fn commit_too_long_publishes_nothing() {
        let mut buffer = AlignedBuffer::<LEN>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let mut writer = Writer::create(&mut region, &config()).unwrap();
        let grant = writer.reserve(8).unwrap();
        assert_eq!(
            grant.commit(9),
            Err(WriteError::CommitTooLong {
                committed: 9,
                reserved: 8
            })
        );
        assert_eq!(writer.position(), 0);
    }
}
