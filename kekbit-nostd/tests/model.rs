//! A model-based test of every writer entry point (issue 10, "make the
//! verification catch this class"; issue 12, batches).
//!
//! `proptest` generates a channel (capacity, slack, `max_record_len`,
//! checksums, what the memory held before) and a list of operations that
//! drives every way a record gets in: `write`, `write_with` through each
//! handler and handler chain (and an encoder that fails), `reserve` then
//! `commit` or drop, `batch()` with its own `write`, `write_with` and
//! `reserve` (committed, too long, dropped) ended by `publish` or by drop,
//! `write_all`, `close`, `leave_open` + `resume`, and `heartbeat`. Lengths
//! are chosen against the channel as it is at that moment: empty, the
//! largest allowed, exactly the room left (so records fill the channel to
//! the byte, and empty records land on every boundary), one past it, and
//! one past `max_record_len`.
//!
//! A plain [`Model`] of the format's rules (`docs/FORMAT.md`) predicts
//! every position, record, batch marker, error and `Full` figure. After
//! every operation, and after every step inside a batch, [`check`] compares
//! the real channel with it: through a fresh `Reader` (every record, in
//! order, at the right boundaries, then the right end), through the bytes
//! themselves (commit words, checksums, batch markers and counts, the end
//! word, and a zeroed tail after `resume`), and through the writer's and
//! the batch's accessors. A long-lived reader reads, drains and seeks in
//! between, also inside batches.
//!
//! The region lives in a guarded allocation: canary bytes before it, after
//! it, and in the slack between the record area's end and the region's,
//! checked after every operation. A store one word past the record area,
//! defect 1 of issue 10, fails the test even where the region's own bounds
//! check would let it through.
//!
//! `.ci/release-tests.sh` runs this test again in `--release`, without debug
//! assertions, since defect 1 showed only there; miri runs it with fewer
//! cases (`.ci/miri.sh`).

use std::alloc::{Layout, alloc, dealloc};
use std::cell::Cell;
use std::panic;
use std::ptr::NonNull;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use kekbit_nostd::format::{
    BATCH_MARKER_LEN, COMMIT_BATCH_TAG, COMMIT_CLOSED, COMMIT_EMPTY, COMMIT_FULL,
    COMMIT_RECORD_TAG, HEADER_LEN, MARKER_LEN, MIN_CAPACITY, PAYLOAD_OFFSET, RECORD_ALIGN,
};
use kekbit_nostd::{
    BatchError, ChannelConfig, Clock, Encode, EncodeError, Handler, PlainHandler, ReadError,
    Reader, RecordSink, ResumeError, SequenceHandler, SliceRegion, Status, TimestampHandler,
    WriteError, Writer, record_checksum,
};

// ---------------------------------------------------------------------------
// The guarded allocation.

/// Canary bytes on each side of the region.
const GUARD: usize = 64;

/// The canary byte at `index`: a pattern that no writer store produces by
/// chance (it differs from its neighbours and from zero).
fn canary(index: usize) -> u8 {
    0xC3 ^ (index as u8).wrapping_mul(29)
}

/// What the memory holds before the channel is created.
#[derive(Debug, Clone, Copy)]
enum Fill {
    Zero,
    Byte(u8),
    /// Every word a committed 8-byte record: a writer that forgot to clear
    /// the commit word after a record would show readers a phantom.
    RecordLike,
    /// Every word a batch marker spanning 16 bytes.
    BatchLike,
}

impl Fill {
    fn byte(self, index: usize) -> u8 {
        let word = match self {
            Self::Zero => return 0,
            Self::Byte(b) => return b,
            Self::RecordLike => COMMIT_RECORD_TAG | 8,
            Self::BatchLike => COMMIT_BATCH_TAG | 16,
        };
        word.to_le_bytes()[index % 4]
    }
}

/// A heap allocation of `GUARD + region + GUARD` bytes. The region gets a
/// `SliceRegion` of its own (from raw parts); the test reads the bytes
/// through the allocation's pointer, never through a reference, so it can
/// look at them while the writer and readers hold the region.
struct Guarded {
    base: NonNull<u8>,
    layout: Layout,
    /// The region's length: header, record area, slack.
    region_len: usize,
    /// The record area's length (the channel's capacity).
    capacity: usize,
}

impl Guarded {
    fn new(capacity: usize, slack: usize, fill: Fill) -> Self {
        let region_len = HEADER_LEN + capacity + slack;
        let layout = Layout::from_size_align(GUARD + region_len + GUARD, 64).unwrap();
        // SAFETY: the layout has a non-zero size.
        let base = NonNull::new(unsafe { alloc(layout) }).expect("allocation");
        let memory = Self {
            base,
            layout,
            region_len,
            capacity,
        };
        let channel_end = GUARD + HEADER_LEN + capacity;
        for i in 0..layout.size() {
            let byte = if (GUARD..channel_end).contains(&i) {
                fill.byte(i - GUARD)
            } else {
                canary(i)
            };
            // SAFETY: `i` is inside the allocation, which nothing else uses yet.
            unsafe { memory.base.as_ptr().add(i).write(byte) };
        }
        memory
    }

    /// A region over the guarded bytes.
    fn region(&self) -> SliceRegion<'_> {
        // SAFETY: the bytes are allocated, initialised and 64-aligned, live
        // as long as `self`, and only the one writer the test makes on this
        // region writes them; the test itself only reads them.
        unsafe { SliceRegion::from_raw_parts(self.base.as_ptr().add(GUARD), self.region_len) }
            .expect("aligned and large enough")
    }

    /// A copy of the whole allocation, guards included.
    fn snapshot(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.layout.size()];
        // SAFETY: in bounds; the test is single-threaded, so no store races
        // with this read, and no `&mut` to these bytes lives between
        // operations (grants are dropped or committed by then).
        unsafe { std::ptr::copy_nonoverlapping(self.base.as_ptr(), out.as_mut_ptr(), out.len()) };
        out
    }

    /// The record area, copied.
    fn area(&self) -> Vec<u8> {
        let all = self.snapshot();
        let start = GUARD + HEADER_LEN;
        all[start..start + self.capacity].to_vec()
    }

    /// Fails unless every canary byte is intact: before the region, in the
    /// slack after the record area, and after the region.
    fn check_canaries(&self) -> Result<(), TestCaseError> {
        let all = self.snapshot();
        let channel_end = GUARD + HEADER_LEN + self.capacity;
        for (i, &byte) in all.iter().enumerate() {
            if (GUARD..channel_end).contains(&i) {
                continue;
            }
            if byte != canary(i) {
                let place = if i < GUARD {
                    format!("{} bytes before the region", GUARD - i)
                } else {
                    format!("{} bytes past the record area", i - channel_end)
                };
                return Err(TestCaseError::fail(format!(
                    "canary overwritten {place}: {byte:#04x}"
                )));
            }
        }
        Ok(())
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // SAFETY: allocated with this layout in `new`, freed once.
        unsafe { dealloc(self.base.as_ptr(), self.layout) }
    }
}

// ---------------------------------------------------------------------------
// The operations.

/// A record length, chosen against the channel at the moment it is used.
#[derive(Debug, Clone, Copy)]
enum Len {
    /// This many bytes, reduced modulo `max_record_len + 1`.
    Exact(u16),
    Zero,
    /// `max_record_len`.
    Max,
    /// One past `max_record_len`: `TooLarge`.
    AboveMax,
    /// The largest payload that fits where this record goes (at most
    /// `max_record_len`): the record then ends where the end marker's space
    /// begins. Zero when not even an empty record fits.
    Room,
    /// `Room` plus 1 to 8 bytes: one padding unit too many.
    RoomPlus(u8),
    /// In a batch with nothing staged: the largest payload that fits only
    /// without the batch's marker (the first-record fallback). Elsewhere,
    /// as `Room`.
    RoomWithoutMarker,
}

/// A handler, or a chain of them, for `write_with`.
#[derive(Debug, Clone, Copy)]
enum HandlerKind {
    Plain,
    Sequence,
    Timestamp,
    /// `SequenceHandler` then `TimestampHandler`.
    SequenceTimestamp,
    /// `TimestampHandler`, `SequenceHandler`, `PlainHandler`.
    TimestampSequencePlain,
}

/// A `write_with` call.
#[derive(Debug, Clone, Copy)]
struct WithOp {
    handler: HandlerKind,
    /// The whole payload's length, prefixes included (at least the prefixes).
    len: Len,
    seed: u8,
    /// The timestamp clock's time for this call.
    now: u64,
    /// The encoder writes part of the body, then fails.
    failing: bool,
}

#[derive(Debug, Clone)]
enum Op {
    Write(Len, u8),
    WriteWith(WithOp),
    /// Reserves, fills the grant, commits `commit % (len + 2)` bytes (so
    /// sometimes more than reserved: `CommitTooLong`).
    ReserveCommit(Len, u16, u8),
    ReserveDrop(Len, u8),
    Batch(Vec<BatchOp>, BatchEnd),
    WriteAll(Vec<Len>, u8),
    Close,
    /// `leave_open`, as a crashed writer, then `resume`.
    Resume,
    Heartbeat(u64),
    /// One `try_read` of the long-lived reader.
    Read,
    /// The long-lived reader drains the records iterator.
    ReadAll,
    /// The long-lived reader seeks to the `n`th boundary (modulo their count).
    Seek(u16),
    /// The long-lived reader is replaced by a new one at the start.
    Reopen,
}

#[derive(Debug, Clone)]
enum BatchOp {
    Write(Len, u8),
    WriteWith(WithOp),
    ReserveCommit(Len, u16, u8),
    ReserveDrop(Len, u8),
    Read,
}

#[derive(Debug, Clone, Copy)]
enum BatchEnd {
    Publish,
    Drop,
}

/// One generated case.
#[derive(Debug, Clone)]
struct Scenario {
    capacity: u32,
    slack: usize,
    max_record_len: u32,
    checksums: bool,
    fill: Fill,
    ops: Vec<Op>,
}

// ---------------------------------------------------------------------------
// What the cases reached.

/// Boundary events a run of cases must reach, or the generator has drifted
/// and the test would pass without testing what it claims to.
#[derive(Debug, Clone, Copy)]
enum Event {
    /// A record (single or the last of a batch) ends exactly where the end
    /// marker's space begins.
    ExactFill,
    /// `Full` with `remaining: 0`: not even an empty record fits.
    FullWithNoRoom,
    /// An empty record published.
    EmptyRecord,
    /// A batch record that did not fit: the staged ones published, then full.
    FullInsideBatch,
    /// A batch's first record that fits only without the marker, written
    /// as a single record.
    FirstRecordFallback,
    /// A batch marker covering two or more records.
    BatchOfMany,
    TooLarge,
    CommitTooLong,
    EncoderFailed,
    /// A `write_all` that stopped after publishing some records.
    WriteAllStopped,
    /// A resume with non-zero bytes after the last record to clear.
    ResumeDirtyTail,
    /// A resume of a channel holding a batch.
    ResumeAfterBatch,
}

const EVENTS: usize = 12;

const EVENT_NAMES: [&str; EVENTS] = [
    "ExactFill",
    "FullWithNoRoom",
    "EmptyRecord",
    "FullInsideBatch",
    "FirstRecordFallback",
    "BatchOfMany",
    "TooLarge",
    "CommitTooLong",
    "EncoderFailed",
    "WriteAllStopped",
    "ResumeDirtyTail",
    "ResumeAfterBatch",
];

thread_local! {
    /// Per test thread: proptest runs a test's cases on the test's thread.
    static SEEN: [Cell<u64>; EVENTS] = const { [const { Cell::new(0) }; EVENTS] };
}

fn saw(event: Event) {
    SEEN.with(|seen| seen[event as usize].set(seen[event as usize].get() + 1));
}

fn events() -> [u64; EVENTS] {
    SEEN.with(|seen| std::array::from_fn(|i| seen[i].get()))
}

// ---------------------------------------------------------------------------
// The model.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Open,
    Closed,
    Full { needed: u64, remaining: u32 },
}

#[derive(Debug, Clone)]
struct Rec {
    /// Where a reader stands before reading it: the batch marker's offset
    /// for the first record of a batch, else the record's own.
    boundary: u32,
    position: u32,
    payload: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
struct Marker {
    position: u32,
    span: u32,
    count: u32,
}

/// The channel as the format's rules say it must be.
#[derive(Debug)]
struct Model {
    capacity: u32,
    max: u32,
    checksums: bool,
    /// Where the next record (or batch marker) goes; the end word is here.
    position: u32,
    records: Vec<Rec>,
    markers: Vec<Marker>,
    end: End,
    heartbeat: u64,
    /// What `SequenceHandler` numbers the next record.
    next_sequence: u64,
    /// The long-lived reader: index of the next record it returns.
    reader: usize,
}

/// A batch as the model sees it.
#[derive(Debug)]
struct BatchModel {
    /// Where its marker goes: the writer's position.
    start: u32,
    /// Where the next staged record goes.
    next: u32,
    staged: Vec<(u32, Vec<u8>)>,
    /// Records it has published so far.
    published: usize,
}

impl BatchModel {
    fn at(position: u32) -> Self {
        Self {
            start: position,
            next: position + BATCH_MARKER_LEN as u32,
            staged: Vec::new(),
            published: 0,
        }
    }
}

/// Where the model puts a batch record.
#[derive(Debug, Clone, Copy)]
enum Place {
    Staged(u32),
    /// On its own at the writer's position (the first-record fallback).
    Single,
}

fn span(len: usize) -> u32 {
    (PAYLOAD_OFFSET + len.div_ceil(RECORD_ALIGN) * RECORD_ALIGN) as u32
}

/// Deterministic record-specific bytes: a record read from the wrong place
/// cannot pass for the right one.
fn bytes_for(index: usize, seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (index as u8).wrapping_mul(31) ^ seed ^ (i as u8).wrapping_mul(7) ^ 0x5a)
        .collect()
}

impl Model {
    /// Bytes left for records at `position`, the end marker's space kept.
    fn remaining_at(&self, position: u32) -> u32 {
        self.capacity
            .saturating_sub(position)
            .saturating_sub(MARKER_LEN as u32)
    }

    /// The one fit rule: a record of `len` bytes at `position` leaves room
    /// for an end marker after it.
    fn fits_at(&self, position: u32, len: usize) -> bool {
        u64::from(position) + u64::from(span(len)) + MARKER_LEN as u64 <= u64::from(self.capacity)
    }

    /// The largest payload that fits at `position`, at most `max`.
    fn room_at(&self, position: u32) -> usize {
        let room = self
            .remaining_at(position)
            .saturating_sub(PAYLOAD_OFFSET as u32);
        room.min(self.max) as usize
    }

    fn resolve(&self, len: Len, here: u32, without_marker: u32) -> usize {
        match len {
            Len::Exact(n) => usize::from(n) % (self.max as usize + 1),
            Len::Zero => 0,
            Len::Max => self.max as usize,
            Len::AboveMax => self.max as usize + 1,
            Len::Room => self.room_at(here),
            Len::RoomPlus(k) => self.room_at(here) + 1 + usize::from(k % 8),
            Len::RoomWithoutMarker => self.room_at(without_marker),
        }
    }

    fn open_error(&self) -> Result<(), WriteError> {
        match self.end {
            End::Open => Ok(()),
            End::Closed => Err(WriteError::Closed),
            End::Full { needed, remaining } => Err(WriteError::Full { needed, remaining }),
        }
    }

    fn too_large(&self, len: usize) -> Result<(), WriteError> {
        if len > self.max as usize {
            saw(Event::TooLarge);
            Err(WriteError::TooLarge { len, max: self.max })
        } else {
            Ok(())
        }
    }

    /// Marks the channel full at its position, for a record of `len` bytes
    /// that did not fit in `remaining`.
    fn mark_full(&mut self, len: usize, remaining: u32) -> WriteError {
        if remaining == 0 {
            saw(Event::FullWithNoRoom);
        }
        let needed = (PAYLOAD_OFFSET + len) as u64;
        self.end = End::Full { needed, remaining };
        WriteError::Full { needed, remaining }
    }

    /// What a single write of `len` bytes must answer before anything is
    /// stored: the state, the maximum, then the fit rule.
    fn admit(&mut self, len: usize) -> Result<(), WriteError> {
        self.open_error()?;
        self.too_large(len)?;
        self.fit(len)
    }

    fn fit(&mut self, len: usize) -> Result<(), WriteError> {
        if self.fits_at(self.position, len) {
            Ok(())
        } else {
            let remaining = self.remaining_at(self.position);
            Err(self.mark_full(len, remaining))
        }
    }

    /// Publishes a single record at the position.
    fn publish(&mut self, payload: Vec<u8>) -> u32 {
        let position = self.position;
        self.position += span(payload.len());
        self.saw_published(&payload);
        self.records.push(Rec {
            boundary: position,
            position,
            payload,
        });
        position
    }

    fn saw_published(&self, payload: &[u8]) {
        if payload.is_empty() {
            saw(Event::EmptyRecord);
        }
        if self.position + MARKER_LEN as u32 == self.capacity {
            saw(Event::ExactFill);
        }
    }

    /// The payload a handler of `kind` writes before `body`.
    fn prefix(&self, kind: HandlerKind, now: u64) -> Vec<u8> {
        let sequence = self.next_sequence.to_le_bytes();
        match kind {
            HandlerKind::Plain => Vec::new(),
            HandlerKind::Sequence => sequence.to_vec(),
            HandlerKind::Timestamp => now.to_le_bytes().to_vec(),
            HandlerKind::SequenceTimestamp => [sequence, now.to_le_bytes()].concat(),
            HandlerKind::TimestampSequencePlain => [now.to_le_bytes(), sequence].concat(),
        }
    }

    /// A record encoded through `kind` was accepted (published or staged):
    /// a sequence handler moves on. A refused record takes no number.
    fn accepted(&mut self, kind: HandlerKind) {
        if !matches!(kind, HandlerKind::Plain | HandlerKind::Timestamp) {
            self.next_sequence = self.next_sequence.wrapping_add(1);
        }
    }

    // --- Batches -----------------------------------------------------------

    /// Where a batch record of `len` bytes goes: staged after the marker if
    /// it fits counting the marker; else, if it is the first of the batch,
    /// on its own if it fits without the marker; else the staged records
    /// are published and the channel is full right after them.
    fn place(&mut self, batch: &mut BatchModel, len: usize) -> Result<Place, WriteError> {
        if self.fits_at(batch.next, len) {
            return Ok(Place::Staged(batch.next));
        }
        if batch.staged.is_empty() {
            debug_assert_eq!(batch.start, self.position);
            if self.fits_at(batch.start, len) {
                saw(Event::FirstRecordFallback);
            }
            return self.fit(len).map(|()| Place::Single);
        }
        let remaining = self.remaining_at(batch.next);
        saw(Event::FullInsideBatch);
        self.flush(batch);
        Err(self.mark_full(len, remaining))
    }

    fn finish(&mut self, batch: &mut BatchModel, place: Place, payload: Vec<u8>) -> u32 {
        match place {
            Place::Staged(at) => {
                batch.next = at + span(payload.len());
                batch.staged.push((at, payload));
                at
            }
            Place::Single => {
                let at = self.publish(payload);
                batch.published += 1;
                *batch = BatchModel {
                    published: batch.published,
                    ..BatchModel::at(self.position)
                };
                at
            }
        }
    }

    /// Publishes the staged records behind one marker.
    fn flush(&mut self, batch: &mut BatchModel) {
        if batch.staged.is_empty() {
            return;
        }
        let count = batch.staged.len() as u32;
        if count >= 2 {
            saw(Event::BatchOfMany);
        }
        self.markers.push(Marker {
            position: batch.start,
            span: batch.next - batch.start - BATCH_MARKER_LEN as u32,
            count,
        });
        self.position = batch.next;
        for (i, (position, payload)) in batch.staged.drain(..).enumerate() {
            self.saw_published(&payload);
            let boundary = if i == 0 { batch.start } else { position };
            self.records.push(Rec {
                boundary,
                position,
                payload,
            });
        }
        batch.published += count as usize;
        *batch = BatchModel {
            published: batch.published,
            ..BatchModel::at(self.position)
        };
    }

    /// What `Batch::remaining_bytes` must say.
    fn batch_remaining(&self, batch: &BatchModel) -> u32 {
        if self.end == End::Open {
            self.remaining_at(batch.next)
        } else {
            0
        }
    }

    // --- The long-lived reader --------------------------------------------

    fn reader_position(&self) -> u32 {
        self.records
            .get(self.reader)
            .map_or(self.position, |r| r.boundary)
    }

    fn end_error(&self) -> Option<ReadError> {
        match self.end {
            End::Open => None,
            End::Closed => Some(ReadError::Closed),
            End::Full { .. } => Some(ReadError::Full),
        }
    }

    /// Every position a reader may seek to, with the index of the record
    /// it then reads: record boundaries, records inside batches, the end.
    fn seek_targets(&self) -> Vec<(u32, usize)> {
        let mut targets = Vec::new();
        for (i, rec) in self.records.iter().enumerate() {
            targets.push((rec.boundary, i));
            if rec.position != rec.boundary {
                targets.push((rec.position, i));
            }
        }
        targets.push((self.position, self.records.len()));
        targets
    }
}

// ---------------------------------------------------------------------------
// The handlers and encoders the test drives.

/// The timestamp handlers' clock, set per call.
struct TestClock(Cell<u64>);

impl Clock for TestClock {
    fn now(&self) -> u64 {
        self.0.get()
    }
}

/// A record body: plain bytes, or bytes then a failure.
struct Body {
    bytes: Vec<u8>,
    failing: bool,
}

impl Body {
    /// For a channel that has ended: the handler never runs.
    fn empty() -> Self {
        Self {
            bytes: Vec::new(),
            failing: false,
        }
    }
}

const ENCODER_FAILED: EncodeError = EncodeError::new("the model's encoder failed");

impl Encode for Body {
    fn encode(&self, sink: &mut RecordSink<'_>) -> Result<(), EncodeError> {
        if self.failing {
            embedded_io_write(sink, &self.bytes[..self.bytes.len() / 2])?;
            return Err(ENCODER_FAILED);
        }
        embedded_io_write(sink, &self.bytes)
    }
}

/// Writes all of `data` through the sink's `embedded_io::Write` impl
/// (the sink counts, and drops, what overflows).
fn embedded_io_write(sink: &mut RecordSink<'_>, data: &[u8]) -> Result<(), EncodeError> {
    // `[u8]`'s own `Encode` is exactly `write_all` into the sink.
    data.encode(sink)
}

/// Runs `$body` with `$h` bound to a `&mut` of the handler `$kind` names,
/// built over the test's one `SequenceHandler` and clock (`Handler` has
/// generic methods, so there is no `dyn Handler`).
macro_rules! with_handler {
    ($kind:expr, $seq:expr, $clock:expr, |$h:ident| $body:expr) => {
        match $kind {
            HandlerKind::Plain => {
                let $h = &mut PlainHandler;
                $body
            }
            HandlerKind::Sequence => {
                let $h = &mut *$seq;
                $body
            }
            HandlerKind::Timestamp => {
                let $h = &mut TimestampHandler::new($clock);
                $body
            }
            HandlerKind::SequenceTimestamp => {
                let $h = &mut (&mut *$seq).chain(TimestampHandler::new($clock));
                $body
            }
            HandlerKind::TimestampSequencePlain => {
                let $h = &mut TimestampHandler::new($clock)
                    .chain(&mut *$seq)
                    .chain(PlainHandler);
                $body
            }
        }
    };
}

/// What the model expects a `write_with` to store, given where it goes;
/// `None` when the handler does not run (the channel has ended).
fn expected_with(
    model: &mut Model,
    op: &WithOp,
    index: usize,
    here: u32,
    without_marker: u32,
) -> Option<(Vec<u8>, Body)> {
    if model.open_error().is_err() {
        return None;
    }
    let prefix = model.prefix(op.handler, op.now);
    let total = model.resolve(op.len, here, without_marker);
    let body = bytes_for(index, op.seed, total.saturating_sub(prefix.len()));
    let payload = if op.failing {
        Vec::new()
    } else {
        [prefix, body.clone()].concat()
    };
    Some((
        payload,
        Body {
            bytes: body,
            failing: op.failing,
        },
    ))
}

// ---------------------------------------------------------------------------
// The check after every step.

fn word(area: &[u8], at: u32) -> u32 {
    let at = at as usize;
    u32::from_le_bytes(area[at..at + 4].try_into().unwrap())
}

/// Compares the channel with the model: canaries, a fresh reader, the
/// bytes, and (outside batches) the writer's accessors.
fn check(model: &Model, memory: &Guarded, region: &SliceRegion<'_>) -> Result<(), TestCaseError> {
    memory.check_canaries()?;

    // A fresh reader sees exactly the published records, then the end.
    let mut reader = Reader::open(region).map_err(|e| TestCaseError::fail(e.to_string()))?;
    for (i, rec) in model.records.iter().enumerate() {
        prop_assert_eq!(reader.position(), rec.boundary, "before record {}", i);
        let got = reader.try_read().map(|r| r.map(<[u8]>::to_vec));
        prop_assert_eq!(got, Ok(Some(rec.payload.clone())), "record {}", i);
        prop_assert_eq!(
            reader.position(),
            rec.position + span(rec.payload.len()),
            "after record {}",
            i
        );
    }
    let end = reader.try_read().map(|r| r.map(<[u8]>::to_vec));
    prop_assert_eq!(end, model.end_error().map_or(Ok(None), Err), "the end");
    prop_assert_eq!(reader.position(), model.position);
    let status = match model.end {
        End::Open => Status::Open,
        End::Closed => Status::Closed,
        End::Full { .. } => Status::Full,
    };
    prop_assert_eq!(reader.status(&TestClock(Cell::new(0))), status);
    prop_assert_eq!(reader.heartbeat(), Some(model.heartbeat));

    // The bytes: every commit word, checksum word, marker and count, and
    // the end word, where the format puts them.
    let area = memory.area();
    for rec in &model.records {
        let len = rec.payload.len() as u32;
        prop_assert_eq!(word(&area, rec.position), COMMIT_RECORD_TAG | len);
        let sum = if model.checksums {
            record_checksum(&rec.payload).unwrap()
        } else {
            0
        };
        prop_assert_eq!(word(&area, rec.position + 4), sum, "checksum word");
    }
    for marker in &model.markers {
        prop_assert_eq!(
            word(&area, marker.position),
            COMMIT_BATCH_TAG | marker.span,
            "batch marker at {}",
            marker.position
        );
        prop_assert_eq!(
            word(&area, marker.position + 4),
            marker.count,
            "batch count at {}",
            marker.position
        );
    }
    let end_word = match model.end {
        End::Open => COMMIT_EMPTY,
        End::Closed => COMMIT_CLOSED,
        End::Full { .. } => COMMIT_FULL,
    };
    prop_assert_eq!(word(&area, model.position), end_word, "end word");
    Ok(())
}

/// Compares the writer's accessors with the model.
fn check_writer<R: kekbit_nostd::Region>(
    model: &Model,
    writer: &Writer<R>,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(writer.position(), model.position);
    prop_assert_eq!(writer.records_written(), model.records.len() as u64);
    prop_assert_eq!(writer.is_open(), model.end == End::Open);
    prop_assert_eq!(writer.remaining_bytes(), model.remaining_at(model.position));
    Ok(())
}

// ---------------------------------------------------------------------------
// Running a scenario.

/// One step of the long-lived reader.
fn read_one<R: kekbit_nostd::Region>(
    model: &mut Model,
    reader: &mut Reader<'_, R>,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(reader.position(), model.reader_position());
    read_next(model, reader)
}

/// The long-lived reader's next read, wherever it stands (after a seek to
/// a record inside a batch, its position is the record's own, not the
/// marker's that `Model::reader_position` gives).
fn read_next<R: kekbit_nostd::Region>(
    model: &mut Model,
    reader: &mut Reader<'_, R>,
) -> Result<(), TestCaseError> {
    let expected = match model.records.get(model.reader) {
        Some(rec) => {
            model.reader += 1;
            Ok(Some(rec.payload.clone()))
        }
        None => model.end_error().map_or(Ok(None), Err),
    };
    prop_assert_eq!(reader.try_read().map(|r| r.map(<[u8]>::to_vec)), expected);
    prop_assert_eq!(reader.position(), model.reader_position());
    Ok(())
}

fn run(scenario: Scenario) -> Result<(), TestCaseError> {
    let memory = Guarded::new(scenario.capacity as usize, scenario.slack, scenario.fill);
    let mut region = memory.region();
    let config = ChannelConfig::new(0x40de1)
        .capacity_bytes(scenario.capacity)
        .max_record_len(scenario.max_record_len)
        .checksums(scenario.checksums)
        .creation_time(77);
    let mut writer = Writer::create(&mut region, &config).expect("a valid configuration");
    let shared = writer.shared_region();
    let mut model = Model {
        capacity: scenario.capacity,
        max: scenario.max_record_len,
        checksums: scenario.checksums,
        position: 0,
        records: Vec::new(),
        markers: Vec::new(),
        end: End::Open,
        heartbeat: 77,
        next_sequence: 1000,
        reader: 0,
    };
    let mut sequence = SequenceHandler::new(1000);
    let clock = TestClock(Cell::new(0));
    let mut reader = Reader::open(shared).expect("a fresh channel opens");
    check(&model, &memory, shared)?;

    for op in scenario.ops {
        match op {
            Op::Write(len, seed) => {
                let len = model.resolve(len, model.position, model.position);
                let bytes = bytes_for(model.records.len(), seed, len);
                let expected = model.admit(len).map(|()| model.publish(bytes.clone()));
                prop_assert_eq!(writer.write(&bytes), expected, "write of {}", len);
            }
            Op::WriteWith(with) => {
                clock.0.set(with.now);
                let (index, here) = (model.records.len(), model.position);
                let (expected, body) = match expected_with(&mut model, &with, index, here, here) {
                    None => (Err(model.open_error().unwrap_err()), Body::empty()),
                    Some((payload, body)) => {
                        // The encoder runs before any length check, so a
                        // failing one fails the write, whatever its length.
                        let expected = if with.failing {
                            saw(Event::EncoderFailed);
                            Err(WriteError::Encode(ENCODER_FAILED))
                        } else {
                            model
                                .too_large(payload.len())
                                .and_then(|()| model.fit(payload.len()))
                                .map(|()| model.publish(payload))
                        };
                        if expected.is_ok() {
                            model.accepted(with.handler);
                        }
                        (expected, body)
                    }
                };
                let got = with_handler!(with.handler, &mut sequence, &clock, |h| {
                    writer.write_with(h, &body)
                });
                prop_assert_eq!(got, expected, "write_with {:?}", with);
            }
            Op::ReserveCommit(len, commit, seed) => {
                let len = model.resolve(len, model.position, model.position);
                let bytes = bytes_for(model.records.len(), seed, len);
                let admitted = model.admit(len);
                match writer.reserve(len) {
                    Ok(mut grant) => {
                        prop_assert_eq!(admitted, Ok(()), "reserve of {}", len);
                        prop_assert_eq!(grant.len(), len);
                        grant.copy_from_slice(&bytes);
                        let commit = usize::from(commit) % (len + 2);
                        let expected = if commit > len {
                            saw(Event::CommitTooLong);
                            Err(WriteError::CommitTooLong {
                                committed: commit,
                                reserved: len,
                            })
                        } else {
                            Ok(model.publish(bytes[..commit].to_vec()))
                        };
                        prop_assert_eq!(grant.commit(commit), expected);
                    }
                    Err(e) => prop_assert_eq!(Err(e), admitted, "reserve of {}", len),
                }
            }
            Op::ReserveDrop(len, seed) => {
                let len = model.resolve(len, model.position, model.position);
                let admitted = model.admit(len);
                match writer.reserve(len) {
                    Ok(mut grant) => {
                        prop_assert_eq!(admitted, Ok(()), "reserve of {}", len);
                        grant.copy_from_slice(&bytes_for(usize::MAX, seed, len));
                    }
                    Err(e) => prop_assert_eq!(Err(e), admitted, "reserve of {}", len),
                }
            }
            Op::Batch(ops, end) => {
                let mut staged = BatchModel::at(model.position);
                let mut batch = writer.batch();
                for op in ops {
                    batch_step(
                        &mut model,
                        &mut staged,
                        &mut batch,
                        op,
                        &mut sequence,
                        &clock,
                        &mut reader,
                    )?;
                    check(&model, &memory, shared)?;
                    prop_assert_eq!(batch.pending(), staged.staged.len());
                    prop_assert_eq!(batch.remaining_bytes(), model.batch_remaining(&staged));
                }
                match end {
                    BatchEnd::Publish => {
                        model.flush(&mut staged);
                        prop_assert_eq!(batch.publish(), staged.published);
                    }
                    BatchEnd::Drop => {
                        model.flush(&mut staged);
                        drop(batch);
                    }
                }
            }
            Op::WriteAll(lens, seed) => {
                // The first record's own position (after the marker), or
                // the writer's if there is none.
                let mut first = None;
                let mut failed = None;
                let mut staged = BatchModel::at(model.position);
                let mut records = Vec::new();
                for (i, len) in lens.iter().enumerate() {
                    let len = model.resolve(*len, staged.next, staged.start);
                    let bytes = bytes_for(model.records.len() + staged.staged.len(), seed, len);
                    records.push(bytes.clone());
                    if failed.is_some() {
                        continue;
                    }
                    let step = model
                        .open_error()
                        .and_then(|()| model.too_large(len))
                        .and_then(|()| model.place(&mut staged, len));
                    match step {
                        Ok(place) => {
                            let at = model.finish(&mut staged, place, bytes);
                            first.get_or_insert(at);
                        }
                        Err(error) => {
                            if i > 0 {
                                saw(Event::WriteAllStopped);
                            }
                            failed = Some(BatchError {
                                published: i,
                                error,
                            });
                        }
                    }
                }
                model.flush(&mut staged);
                let expected = failed.map_or(Ok(first.unwrap_or(model.position)), Err);
                let slices: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
                prop_assert_eq!(writer.write_all(&slices), expected);
            }
            Op::Close => {
                writer.close();
                if model.end == End::Open {
                    model.end = End::Closed;
                }
            }
            Op::Resume => {
                if model.end == End::Open {
                    let area = memory.area();
                    if area[model.position as usize..].iter().any(|&b| b != 0) {
                        saw(Event::ResumeDirtyTail);
                    }
                    if !model.markers.is_empty() {
                        saw(Event::ResumeAfterBatch);
                    }
                }
                let handle = writer.leave_open();
                // SAFETY: the old writer is gone, no other writer exists,
                // and this thread's readers are between reads.
                match unsafe { Writer::resume_unchecked(handle) } {
                    Ok(resumed) => {
                        prop_assert_eq!(model.end, End::Open, "resumed an ended channel");
                        writer = resumed;
                        // Resume keeps every record and clears everything
                        // after them: a stale tail could come back after a
                        // second crash.
                        let area = memory.area();
                        let tail = &area[model.position as usize..];
                        prop_assert!(
                            tail.iter().all(|&b| b == 0),
                            "resume left bytes after {}: {:02x?}",
                            model.position,
                            tail
                        );
                    }
                    Err(e) => {
                        let expected = match model.end {
                            End::Open => None,
                            End::Closed => Some(ResumeError::Closed),
                            End::Full { .. } => Some(ResumeError::Full),
                        };
                        prop_assert_eq!(Some(e), expected);
                        // No writer is left: check what readers see, and stop.
                        check(&model, &memory, shared)?;
                        return Ok(());
                    }
                }
            }
            Op::Heartbeat(now) => {
                writer.heartbeat(now);
                model.heartbeat = now;
                prop_assert_eq!(reader.heartbeat(), Some(now));
            }
            Op::Read => read_one(&mut model, &mut reader)?,
            Op::ReadAll => {
                let got: Vec<Vec<u8>> = reader
                    .records()
                    .map(|r| r.map(<[u8]>::to_vec))
                    .collect::<Result<_, _>>()
                    .map_err(|e| TestCaseError::fail(format!("a sound channel read as {e}")))?;
                let expected: Vec<Vec<u8>> = model.records[model.reader..]
                    .iter()
                    .map(|r| r.payload.clone())
                    .collect();
                prop_assert_eq!(got, expected);
                model.reader = model.records.len();
                prop_assert_eq!(reader.position(), model.position);
            }
            Op::Seek(n) => {
                let targets = model.seek_targets();
                let (position, index) = targets[usize::from(n) % targets.len()];
                prop_assert_eq!(reader.seek(position), Ok(()));
                model.reader = index;
                prop_assert_eq!(reader.position(), position);
                // The next read returns the record the model says.
                read_next(&mut model, &mut reader)?;
            }
            Op::Reopen => {
                reader = Reader::open(shared).expect("the channel opens");
                model.reader = 0;
            }
        }
        continue_checks(&model, &memory, shared, &writer, &sequence)?;
    }

    // Dropping the writer closes an open channel and keeps every record.
    drop(writer);
    if model.end == End::Open {
        model.end = End::Closed;
    }
    check(&model, &memory, shared)?;
    // The long-lived reader reads the rest, then the end.
    while model.reader < model.records.len() {
        read_one(&mut model, &mut reader)?;
    }
    read_one(&mut model, &mut reader)
}

/// The checks after every operation outside a batch.
fn continue_checks<R: kekbit_nostd::Region>(
    model: &Model,
    memory: &Guarded,
    shared: &SliceRegion<'_>,
    writer: &Writer<R>,
    sequence: &SequenceHandler,
) -> Result<(), TestCaseError> {
    check(model, memory, shared)?;
    check_writer(model, writer)?;
    prop_assert_eq!(sequence.next_sequence(), model.next_sequence);
    Ok(())
}

/// One operation inside a batch.
fn batch_step<R: kekbit_nostd::Region, S: kekbit_nostd::Region>(
    model: &mut Model,
    staged: &mut BatchModel,
    batch: &mut kekbit_nostd::Batch<'_, R>,
    op: BatchOp,
    sequence: &mut SequenceHandler,
    clock: &TestClock,
    reader: &mut Reader<'_, S>,
) -> Result<(), TestCaseError> {
    let index = model.records.len() + staged.staged.len();
    match op {
        BatchOp::Write(len, seed) => {
            let len = model.resolve(len, staged.next, staged.start);
            let bytes = bytes_for(index, seed, len);
            let expected = model
                .open_error()
                .and_then(|()| model.too_large(len))
                .and_then(|()| model.place(staged, len))
                .map(|place| model.finish(staged, place, bytes.clone()));
            prop_assert_eq!(batch.write(&bytes), expected, "batch write of {}", len);
        }
        BatchOp::WriteWith(with) => {
            clock.0.set(with.now);
            let (next, start) = (staged.next, staged.start);
            let (expected, body) = match expected_with(model, &with, index, next, start) {
                None => (Err(model.open_error().unwrap_err()), None),
                Some((payload, body)) => {
                    let expected = if with.failing {
                        saw(Event::EncoderFailed);
                        Err(WriteError::Encode(ENCODER_FAILED))
                    } else {
                        model
                            .too_large(payload.len())
                            .and_then(|()| model.place(staged, payload.len()))
                            .map(|place| model.finish(staged, place, payload))
                    };
                    if expected.is_ok() {
                        model.accepted(with.handler);
                    }
                    (expected, Some(body))
                }
            };
            let body = body.unwrap_or_else(Body::empty);
            let got = with_handler!(with.handler, sequence, clock, |h| batch
                .write_with(h, &body));
            prop_assert_eq!(got, expected, "batch write_with {:?}", with);
            prop_assert_eq!(sequence.next_sequence(), model.next_sequence);
        }
        BatchOp::ReserveCommit(len, commit, seed) => {
            let len = model.resolve(len, staged.next, staged.start);
            let bytes = bytes_for(index, seed, len);
            let placed = model
                .open_error()
                .and_then(|()| model.too_large(len))
                .and_then(|()| model.place(staged, len));
            match batch.reserve(len) {
                Ok(mut grant) => {
                    let place = match placed {
                        Ok(place) => place,
                        Err(e) => {
                            return Err(TestCaseError::fail(format!(
                                "batch reserve of {len} granted; the model says {e:?}"
                            )));
                        }
                    };
                    prop_assert_eq!(grant.len(), len);
                    grant.copy_from_slice(&bytes);
                    let commit = usize::from(commit) % (len + 2);
                    let expected = if commit > len {
                        saw(Event::CommitTooLong);
                        Err(WriteError::CommitTooLong {
                            committed: commit,
                            reserved: len,
                        })
                    } else {
                        Ok(model.finish(staged, place, bytes[..commit].to_vec()))
                    };
                    prop_assert_eq!(grant.commit(commit), expected);
                }
                Err(e) => prop_assert_eq!(Err(e), placed.map(|_| ()), "batch reserve of {}", len),
            }
        }
        BatchOp::ReserveDrop(len, seed) => {
            let len = model.resolve(len, staged.next, staged.start);
            let placed = model
                .open_error()
                .and_then(|()| model.too_large(len))
                .and_then(|()| model.place(staged, len));
            match batch.reserve(len) {
                Ok(mut grant) => {
                    prop_assert!(
                        placed.is_ok(),
                        "batch reserve of {} granted: {:?}",
                        len,
                        placed
                    );
                    grant.copy_from_slice(&bytes_for(usize::MAX, seed, len));
                }
                Err(e) => prop_assert_eq!(Err(e), placed.map(|_| ()), "batch reserve of {}", len),
            }
        }
        BatchOp::Read => read_one(model, reader)?,
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The strategies.

fn len() -> impl Strategy<Value = Len> {
    prop_oneof![
        3 => any::<u16>().prop_map(Len::Exact),
        2 => Just(Len::Zero),
        2 => Just(Len::Max),
        1 => Just(Len::AboveMax),
        3 => Just(Len::Room),
        2 => any::<u8>().prop_map(Len::RoomPlus),
        2 => Just(Len::RoomWithoutMarker),
    ]
}

fn handler() -> impl Strategy<Value = HandlerKind> {
    prop_oneof![
        Just(HandlerKind::Plain),
        Just(HandlerKind::Sequence),
        Just(HandlerKind::Timestamp),
        Just(HandlerKind::SequenceTimestamp),
        Just(HandlerKind::TimestampSequencePlain),
    ]
}

fn with_op() -> impl Strategy<Value = WithOp> {
    (
        handler(),
        len(),
        any::<u8>(),
        any::<u64>(),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(handler, len, seed, now, failing)| WithOp {
            handler,
            len,
            seed,
            now,
            failing,
        })
}

fn batch_op() -> impl Strategy<Value = BatchOp> {
    prop_oneof![
        4 => (len(), any::<u8>()).prop_map(|(l, s)| BatchOp::Write(l, s)),
        3 => with_op().prop_map(BatchOp::WriteWith),
        2 => (len(), any::<u16>(), any::<u8>()).prop_map(|(l, c, s)| BatchOp::ReserveCommit(l, c, s)),
        1 => (len(), any::<u8>()).prop_map(|(l, s)| BatchOp::ReserveDrop(l, s)),
        1 => Just(BatchOp::Read),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let batch_end = prop_oneof![Just(BatchEnd::Publish), Just(BatchEnd::Drop)];
    prop_oneof![
        4 => (len(), any::<u8>()).prop_map(|(l, s)| Op::Write(l, s)),
        3 => with_op().prop_map(Op::WriteWith),
        2 => (len(), any::<u16>(), any::<u8>()).prop_map(|(l, c, s)| Op::ReserveCommit(l, c, s)),
        1 => (len(), any::<u8>()).prop_map(|(l, s)| Op::ReserveDrop(l, s)),
        4 => (prop::collection::vec(batch_op(), 0..8), batch_end)
            .prop_map(|(ops, end)| Op::Batch(ops, end)),
        2 => (prop::collection::vec(len(), 0..6), any::<u8>())
            .prop_map(|(lens, s)| Op::WriteAll(lens, s)),
        1 => Just(Op::Close),
        1 => Just(Op::Resume),
        1 => any::<u64>().prop_map(Op::Heartbeat),
        2 => Just(Op::Read),
        1 => Just(Op::ReadAll),
        1 => any::<u16>().prop_map(Op::Seek),
        1 => Just(Op::Reopen),
    ]
}

fn fill() -> impl Strategy<Value = Fill> {
    prop_oneof![
        Just(Fill::Zero),
        any::<u8>().prop_map(Fill::Byte),
        Just(Fill::RecordLike),
        Just(Fill::BatchLike),
    ]
}

/// A channel with a record area of `MIN_CAPACITY` plus up to `extra_units`
/// 8-byte units, a `max_record_len` small, large or anywhere between, and
/// `ops` operations.
fn scenario(extra_units: u32, ops: usize) -> impl Strategy<Value = Scenario> {
    (0..=extra_units, 0usize..20, any::<bool>(), fill())
        .prop_flat_map(move |(units, slack, checksums, fill)| {
            let capacity = MIN_CAPACITY + 8 * units;
            let limit = kekbit_nostd::Header::max_record_len_limit(capacity);
            let max = prop_oneof![1..=limit.min(8), Just(limit), 1..=limit,];
            (
                Just(capacity),
                Just(slack),
                max,
                Just(checksums),
                Just(fill),
                prop::collection::vec(op(), 1..ops),
            )
        })
        .prop_map(
            |(capacity, slack, max_record_len, checksums, fill, ops)| Scenario {
                capacity,
                slack,
                max_record_len,
                checksums,
                fill,
                ops,
            },
        )
}

/// Cases per test: `PROPTEST_CASES` if set, else `native`, or one under
/// miri, where each case costs a thousand times more (and `.ci/miri.sh`
/// runs the suite three times).
fn config(native: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(miri) { 1 } else { native });
    Config {
        cases,
        // Failures are kept as regression tests in code, not in files (and
        // miri cannot write files).
        failure_persistence: None,
        ..Config::default()
    }
}

fn run_model(config: Config, strategy: impl Strategy<Value = Scenario>) {
    let cases = config.cases;
    let mut runner = TestRunner::new(config);
    // Which case failed first, before shrinking: how fast a bug is found.
    let ran = Cell::new(0u32);
    let first_failure = Cell::new(None);
    let result = runner.run(&strategy, |scenario| {
        ran.set(ran.get() + 1);
        let outcome = panic::catch_unwind(panic::AssertUnwindSafe(|| run(scenario)));
        if !matches!(outcome, Ok(Ok(()))) && first_failure.get().is_none() {
            first_failure.set(Some(ran.get()));
        }
        outcome.unwrap_or_else(|payload| panic::resume_unwind(payload))
    });
    if let Err(e) = result {
        let first = first_failure.get().unwrap_or(0);
        panic!("case {first} of {cases} failed first; after shrinking: {e}");
    }
    let seen = events();
    println!("{cases} cases; boundary events reached: {seen:?}");
    // Miri runs a handful of cases: too few to reach every event.
    if !cfg!(miri) && cases >= 100 {
        for (i, &count) in seen.iter().enumerate() {
            assert!(
                count > 0,
                "no case reached event {i} ({:?})",
                EVENT_NAMES[i]
            );
        }
    }
}

/// Tiny channels, from `MIN_CAPACITY` up to 64 bytes more: every record is
/// near a boundary, and exact fills and `Full` come in every case.
#[test]
fn every_entry_point_in_tiny_channels() {
    let ops = if cfg!(miri) { 10 } else { 40 };
    run_model(config(600), scenario(8, ops));
}

/// Channels up to half a kilobyte: longer histories, batches of many
/// records, resumes with long tails to clear.
#[test]
fn every_entry_point_in_larger_channels() {
    let (units, ops) = if cfg!(miri) { (16, 10) } else { (64, 60) };
    run_model(config(250), scenario(units, ops));
}
