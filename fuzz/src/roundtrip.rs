//! The `roundtrip` target: an arbitrary sequence of operations against a
//! real writer and reader, checked step by step against a plain model of
//! the channel.
//!
//! The operations drive every writer entry point: `write`, `write_with`
//! through each handler and handler chain (and an encoder that fails),
//! `reserve` then `commit` or drop, batches (`write`, `write_with`,
//! `reserve` in a batch, ended by `publish` or by drop), `write_all`,
//! `close`, `leave_open` + `resume`, and `heartbeat`; a long-lived reader
//! reads, drains, seeks and reopens in between. Lengths can be chosen
//! against the channel as it is: exactly the room left (records that fill
//! the channel to the byte, and empty records at the full boundary), one
//! past it, and the room without a batch's marker.
//!
//! The model knows only the format's rules: a record of `len` payload bytes
//! spans `8 + len` rounded up to 8; it fits iff `position + span + 8 <=
//! capacity` (the writer keeps room for an end marker); one that does not
//! fit marks the channel full for good, with figures every later write
//! repeats. A batch puts an 8-byte marker first and counts it in the fit
//! rule, except for a first record that fits only without it, which is
//! written on its own; a batch record that does not fit publishes the
//! staged ones and marks the channel full after them. From these rules it
//! predicts every position, record, batch marker, error and figure exactly.
//!
//! The region lives in a [`Guarded`] buffer: canary bytes before it, in
//! the slack after the record area, and after it, checked after every
//! operation.

use crate::{FixedClock, Guarded};
use arbitrary::Arbitrary;
use kekbit_nostd::format::{
    BATCH_MARKER_LEN, COMMIT_BATCH_TAG, COMMIT_CLOSED, COMMIT_EMPTY, COMMIT_FULL,
    COMMIT_RECORD_TAG, MARKER_LEN, MIN_CAPACITY, PAYLOAD_OFFSET, RECORD_ALIGN,
};
use kekbit_nostd::{
    BatchError, ChannelConfig, Clock, Encode, EncodeError, Handler, PlainHandler, ReadError,
    Reader, RecordSink, SeekError, SequenceHandler, Status, TimestampHandler, WriteError, Writer,
    record_checksum,
};
use std::cell::Cell;

/// One round-trip input: a channel's shape, then operations on it.
#[derive(Debug, Clone, PartialEq, Eq, Arbitrary)]
pub struct Scenario {
    /// Record area bytes beyond the smallest usable one, before slack.
    pub area: u16,
    /// How much of the area the channel leaves unused at the end.
    pub slack: u16,
    pub max_record_len: u16,
    pub checksums: bool,
    /// What the memory holds before the channel is created.
    pub fill: u8,
    pub ops: Vec<Op>,
}

/// A record length as the input gives it; see [`Model::pick`]: most values
/// are taken modulo `max_record_len + 1`, the top bit asks for any length,
/// and three values ask for lengths measured against the channel.
pub mod len {
    /// The largest payload that fits where the record goes: the channel is
    /// then exactly full (and an empty record at a full channel is `Full`).
    pub const ROOM: u16 = 0xFFFF;
    /// One byte more than [`ROOM`]: one padding unit too many.
    pub const ROOM_PLUS_ONE: u16 = 0xFFFE;
    /// In a batch with nothing staged, the largest payload that fits only
    /// without the batch's marker; elsewhere as [`ROOM`].
    pub const ROOM_WITHOUT_MARKER: u16 = 0xFFFD;
    /// With this bit (and not one of the values above), any length up to 2^15.
    pub const ANY: u16 = 0x8000;
}

/// One operation on the channel.
#[derive(Debug, Clone, PartialEq, Eq, Arbitrary)]
pub enum Op {
    /// Writes a record of a length chosen from `len`, filled from `seed`.
    Write {
        len: u16,
        seed: u8,
    },
    /// Writes exactly these bytes.
    WriteBytes(Vec<u8>),
    /// Encodes a record through a handler.
    WriteWith(WithOp),
    /// Reserves, fills the whole grant, then commits some of it (possibly
    /// more than reserved).
    ReserveCommit {
        reserve: u16,
        commit: u16,
        seed: u8,
    },
    /// Reserves and fills a grant, then drops it.
    ReserveDrop {
        len: u16,
        seed: u8,
    },
    /// A batch: these operations, then `publish` (or a drop).
    Batch {
        ops: Vec<BatchOp>,
        publish: bool,
    },
    /// `write_all` of records of these lengths.
    WriteAll {
        lens: Vec<u16>,
        seed: u8,
    },
    Heartbeat(u64),
    Close,
    Read,
    /// Drains the records iterator.
    ReadAll,
    Seek(u32),
    /// Seeks to the `n`th boundary (modulo the number of boundaries).
    SeekBoundary(u16),
    /// A new reader, at the first record.
    Reopen,
    Status,
    /// Leaves the channel open, as a crashed writer would, and resumes it.
    Resume,
}

/// A `write_with` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub struct WithOp {
    /// Which handler or chain (modulo 5): plain, sequence, timestamp,
    /// sequence then timestamp, timestamp then sequence then plain.
    pub handler: u8,
    /// The whole payload's length, prefixes included; as [`Op::Write`]'s.
    pub len: u16,
    pub seed: u8,
    /// The timestamp handler's clock for this call.
    pub now: u64,
    /// The encoder writes half the body, then fails.
    pub failing: bool,
}

/// One operation inside a batch.
#[derive(Debug, Clone, PartialEq, Eq, Arbitrary)]
pub enum BatchOp {
    Write {
        len: u16,
        seed: u8,
    },
    WriteWith(WithOp),
    ReserveCommit {
        reserve: u16,
        commit: u16,
        seed: u8,
    },
    ReserveDrop {
        len: u16,
        seed: u8,
    },
    /// One read of the long-lived reader, while the batch is open.
    Read,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Open,
    Closed,
    Full { needed: u64, remaining: u32 },
}

/// A published record.
#[derive(Debug, Clone)]
struct Rec {
    /// Where a reader stands before reading it: its batch marker's offset
    /// if it is a batch's first record, else its own.
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

/// The channel as the format rules say it must be.
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
    /// What the sequence handler numbers the next record.
    next_sequence: u64,
    /// Index in `records` of the long-lived reader's next record.
    reader: usize,
    /// The reader's position when it is not the next record's boundary:
    /// after a seek to a batch's first record, past its marker.
    reader_at: Option<u32>,
}

/// A batch as the model sees it.
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
    fn at(position: u32, published: usize) -> Self {
        Self {
            start: position,
            next: position + BATCH_MARKER_LEN as u32,
            staged: Vec::new(),
            published,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Place {
    Staged(u32),
    /// On its own at the writer's position (the first-record fallback).
    Single,
}

fn span(len: usize) -> u32 {
    (PAYLOAD_OFFSET + len.div_ceil(RECORD_ALIGN) * RECORD_ALIGN) as u32
}

impl Model {
    fn remaining_at(&self, position: u32) -> u32 {
        self.capacity
            .saturating_sub(position)
            .saturating_sub(MARKER_LEN as u32)
    }

    fn fits_at(&self, position: u32, len: usize) -> bool {
        u64::from(position) + u64::from(span(len)) + MARKER_LEN as u64 <= u64::from(self.capacity)
    }

    fn room_at(&self, position: u32) -> usize {
        let room = self
            .remaining_at(position)
            .saturating_sub(PAYLOAD_OFFSET as u32);
        room.min(self.max) as usize
    }

    /// The length `len` asks for, for a record at `here` (or, for
    /// [`len::ROOM_WITHOUT_MARKER`], at `without_marker`).
    fn pick(&self, len: u16, here: u32, without_marker: u32) -> usize {
        match len {
            len::ROOM => self.room_at(here),
            len::ROOM_PLUS_ONE => self.room_at(here) + 1,
            len::ROOM_WITHOUT_MARKER => self.room_at(without_marker),
            len if len & len::ANY != 0 => usize::from(len & !len::ANY),
            len => usize::from(len) % (self.max as usize + 1),
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
            Err(WriteError::TooLarge { len, max: self.max })
        } else {
            Ok(())
        }
    }

    fn mark_full(&mut self, len: usize, remaining: u32) -> WriteError {
        let needed = (PAYLOAD_OFFSET + len) as u64;
        self.end = End::Full { needed, remaining };
        WriteError::Full { needed, remaining }
    }

    fn fit(&mut self, len: usize) -> Result<(), WriteError> {
        if self.fits_at(self.position, len) {
            Ok(())
        } else {
            let remaining = self.remaining_at(self.position);
            Err(self.mark_full(len, remaining))
        }
    }

    /// What a single write must answer before writing `len` bytes.
    fn admit(&mut self, len: usize) -> Result<(), WriteError> {
        self.open_error()?;
        self.too_large(len)?;
        self.fit(len)
    }

    fn publish(&mut self, payload: Vec<u8>) -> u32 {
        let position = self.position;
        self.position += span(payload.len());
        self.records.push(Rec {
            boundary: position,
            position,
            payload,
        });
        position
    }

    /// The prefix a handler writes.
    fn prefix(&self, handler: u8, now: u64) -> Vec<u8> {
        let sequence = self.next_sequence.to_le_bytes();
        match handler % HANDLERS {
            0 => Vec::new(),
            1 => sequence.to_vec(),
            2 => now.to_le_bytes().to_vec(),
            3 => [sequence, now.to_le_bytes()].concat(),
            _ => [now.to_le_bytes(), sequence].concat(),
        }
    }

    /// A record encoded through `handler` was accepted (published or
    /// staged): a sequence handler moves on; a refused record takes no number.
    fn accepted(&mut self, handler: u8) {
        if !matches!(handler % HANDLERS, 0 | 2) {
            self.next_sequence = self.next_sequence.wrapping_add(1);
        }
    }

    fn place(&mut self, batch: &mut BatchModel, len: usize) -> Result<Place, WriteError> {
        if self.fits_at(batch.next, len) {
            return Ok(Place::Staged(batch.next));
        }
        if batch.staged.is_empty() {
            return self.fit(len).map(|()| Place::Single);
        }
        let remaining = self.remaining_at(batch.next);
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
                *batch = BatchModel::at(self.position, batch.published + 1);
                at
            }
        }
    }

    fn flush(&mut self, batch: &mut BatchModel) {
        if batch.staged.is_empty() {
            return;
        }
        let count = batch.staged.len();
        self.markers.push(Marker {
            position: batch.start,
            span: batch.next - batch.start - BATCH_MARKER_LEN as u32,
            count: count as u32,
        });
        for (i, (position, payload)) in batch.staged.drain(..).enumerate() {
            let boundary = if i == 0 { batch.start } else { position };
            self.records.push(Rec {
                boundary,
                position,
                payload,
            });
        }
        self.position = batch.next;
        *batch = BatchModel::at(self.position, batch.published + count);
    }

    fn end_error(&self) -> Option<ReadError> {
        match self.end {
            End::Open => None,
            End::Closed => Some(ReadError::Closed),
            End::Full { .. } => Some(ReadError::Full),
        }
    }

    fn reader_position(&self) -> u32 {
        self.reader_at.unwrap_or_else(|| {
            self.records
                .get(self.reader)
                .map_or(self.position, |r| r.boundary)
        })
    }

    /// What `try_read` must return now, advancing the model's reader.
    fn read(&mut self) -> Result<Option<Vec<u8>>, ReadError> {
        if let Some(rec) = self.records.get(self.reader) {
            self.reader += 1;
            self.reader_at = None;
            return Ok(Some(rec.payload.clone()));
        }
        self.end_error().map_or(Ok(None), Err)
    }

    /// Every position a reader may seek to, with the index of the record
    /// it then reads: batch markers, records (inside batches too), the end.
    fn boundaries(&self) -> Vec<(u32, usize)> {
        let mut all = Vec::new();
        for (i, rec) in self.records.iter().enumerate() {
            all.push((rec.boundary, i));
            if rec.position != rec.boundary {
                all.push((rec.position, i));
            }
        }
        all.push((self.position, self.records.len()));
        all
    }

    fn seek(&mut self, position: u32) -> Result<(), SeekError> {
        if !position.is_multiple_of(RECORD_ALIGN as u32) {
            return Err(SeekError::NotARecordBoundary { position });
        }
        if let Some(&(_, index)) = self.boundaries().iter().find(|b| b.0 == position) {
            self.reader = index;
            let boundary = self
                .records
                .get(index)
                .map_or(self.position, |r| r.boundary);
            self.reader_at = (boundary != position).then_some(position);
            return Ok(());
        }
        if position > self.position {
            return Err(SeekError::BeyondEnd {
                position,
                end: self.position,
            });
        }
        Err(SeekError::NotARecordBoundary { position })
    }
}

/// Handler kinds `WithOp::handler` chooses among.
const HANDLERS: u8 = 5;

/// The timestamp handlers' clock, set per call.
struct TestClock(Cell<u64>);

impl Clock for TestClock {
    fn now(&self) -> u64 {
        self.0.get()
    }
}

/// A record body: plain bytes, or half of them then a failure.
struct Body {
    bytes: Vec<u8>,
    failing: bool,
}

const ENCODER_FAILED: EncodeError = EncodeError::new("the fuzz encoder failed");

impl Encode for Body {
    fn encode(&self, sink: &mut RecordSink<'_>) -> Result<(), EncodeError> {
        if self.failing {
            self.bytes[..self.bytes.len() / 2].encode(sink)?;
            return Err(ENCODER_FAILED);
        }
        self.bytes.encode(sink)
    }
}

/// Runs `$body` with `$h` bound to a `&mut` of the handler `$kind` picks,
/// over the run's one sequence handler and clock.
macro_rules! with_handler {
    ($kind:expr, $seq:expr, $clock:expr, |$h:ident| $body:expr) => {
        match $kind % HANDLERS {
            0 => {
                let $h = &mut PlainHandler;
                $body
            }
            1 => {
                let $h = &mut *$seq;
                $body
            }
            2 => {
                let $h = &mut TimestampHandler::new($clock);
                $body
            }
            3 => {
                let $h = &mut (&mut *$seq).chain(TimestampHandler::new($clock));
                $body
            }
            _ => {
                let $h = &mut TimestampHandler::new($clock)
                    .chain(&mut *$seq)
                    .chain(PlainHandler);
                $body
            }
        }
    };
}

/// Deterministic, record-specific bytes, so a record read out of order or
/// from the wrong place cannot pass for the right one.
fn payload(seq: usize, seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seq as u8).wrapping_mul(31) ^ seed ^ (i as u8).wrapping_mul(7))
        .collect()
}

/// What a `write_with` must store and answer, for a record at `here` (the
/// room without a marker measured at `without_marker`); `None` when the
/// channel has ended and the handler does not run.
fn expected_with(
    model: &mut Model,
    op: &WithOp,
    index: usize,
    here: u32,
    without_marker: u32,
) -> Option<(Vec<u8>, Body)> {
    model.open_error().ok()?;
    let prefix = model.prefix(op.handler, op.now);
    let total = model.pick(op.len, here, without_marker);
    let body = payload(index, op.seed, total.saturating_sub(prefix.len()));
    let record = [prefix, body.clone()].concat();
    Some((
        record,
        Body {
            bytes: body,
            failing: op.failing,
        },
    ))
}

fn word(area: &[u8], at: u32) -> u32 {
    let at = at as usize;
    u32::from_le_bytes(area[at..at + 4].try_into().unwrap())
}

/// Compares the channel with the model: canaries, a fresh reader, and the
/// words where the format puts them.
fn check<R: kekbit_nostd::Region>(model: &Model, memory: &Guarded, region: &R) {
    memory.check_canaries();
    let mut reader = Reader::open(region).expect("the channel opens");
    for (i, rec) in model.records.iter().enumerate() {
        assert_eq!(reader.position(), rec.boundary, "before record {i}");
        assert_eq!(
            reader.try_read(),
            Ok(Some(&rec.payload[..])),
            "record {i} at {}",
            rec.position
        );
    }
    let end = reader.try_read().map(|r| r.map(<[u8]>::to_vec));
    assert_eq!(end, model.end_error().map_or(Ok(None), Err), "the end");
    assert_eq!(reader.position(), model.position);
    assert_eq!(reader.heartbeat(), Some(model.heartbeat));

    let area = memory.area();
    for rec in &model.records {
        let len = rec.payload.len() as u32;
        assert_eq!(word(&area, rec.position), COMMIT_RECORD_TAG | len);
        let sum = if model.checksums {
            record_checksum(&rec.payload).expect("a short record")
        } else {
            0
        };
        assert_eq!(word(&area, rec.position + 4), sum, "checksum word");
    }
    for marker in &model.markers {
        assert_eq!(
            word(&area, marker.position),
            COMMIT_BATCH_TAG | marker.span,
            "batch marker at {}",
            marker.position
        );
        assert_eq!(
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
    assert_eq!(word(&area, model.position), end_word, "end word");
}

/// Runs `scenario`, panicking at the first difference from the model.
pub fn run(scenario: Scenario) {
    let area_units = u32::from(scenario.area % 512);
    let capacity = MIN_CAPACITY + 8 * (area_units - u32::from(scenario.slack) % (area_units + 1));
    let slack = (MIN_CAPACITY + area_units * 8 - capacity) as usize;
    let limit = capacity - PAYLOAD_OFFSET as u32 - MARKER_LEN as u32;
    let max = 1 + u32::from(scenario.max_record_len) % limit;

    let memory = Guarded::new(capacity as usize, slack, scenario.fill);
    let mut region = memory.region();
    let config = ChannelConfig::new(7)
        .capacity_bytes(capacity)
        .max_record_len(max)
        .checksums(scenario.checksums);
    let mut writer = Writer::create(&mut region, &config).expect("a valid configuration");
    let shared = writer.shared_region();
    let mut reader = Reader::open(shared).expect("a fresh channel opens");
    let mut model = Model {
        capacity,
        max,
        checksums: scenario.checksums,
        position: 0,
        records: Vec::new(),
        markers: Vec::new(),
        end: End::Open,
        heartbeat: 0,
        next_sequence: 0,
        reader: 0,
        reader_at: None,
    };
    let mut sequence = SequenceHandler::new(0);
    let clock = TestClock(Cell::new(0));

    for op in scenario.ops {
        match op {
            Op::Write { len, seed } => {
                let len = model.pick(len, model.position, model.position);
                let bytes = payload(model.records.len(), seed, len);
                let expected = model.admit(len).map(|()| model.publish(bytes.clone()));
                assert_eq!(writer.write(&bytes), expected, "write of {len}");
            }
            Op::WriteBytes(bytes) => {
                let expected = model
                    .admit(bytes.len())
                    .map(|()| model.publish(bytes.clone()));
                assert_eq!(writer.write(&bytes), expected, "write of {}", bytes.len());
            }
            Op::WriteWith(with) => {
                clock.0.set(with.now);
                let (index, here) = (model.records.len(), model.position);
                let (expected, body) = match expected_with(&mut model, &with, index, here, here) {
                    None => (model.open_error().map(|()| 0), Body::empty()),
                    Some((record, body)) => {
                        // The encoder runs before any length check.
                        let expected = if with.failing {
                            Err(WriteError::Encode(ENCODER_FAILED))
                        } else {
                            model
                                .too_large(record.len())
                                .and_then(|()| model.fit(record.len()))
                                .map(|()| model.publish(record))
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
                assert_eq!(got, expected, "write_with {with:?}");
            }
            Op::ReserveCommit {
                reserve,
                commit,
                seed,
            } => {
                let len = model.pick(reserve, model.position, model.position);
                let bytes = payload(model.records.len(), seed, len);
                let admitted = model.admit(len);
                match writer.reserve(len) {
                    Ok(mut grant) => {
                        assert_eq!(admitted, Ok(()), "reserve of {len}");
                        assert_eq!(grant.len(), len);
                        grant.copy_from_slice(&bytes);
                        let commit = usize::from(commit) % (len + 2);
                        let expected = if commit > len {
                            Err(WriteError::CommitTooLong {
                                committed: commit,
                                reserved: len,
                            })
                        } else {
                            Ok(model.publish(bytes[..commit].to_vec()))
                        };
                        assert_eq!(grant.commit(commit), expected);
                    }
                    Err(e) => assert_eq!(Err(e), admitted, "reserve of {len}"),
                }
            }
            Op::ReserveDrop { len, seed } => {
                let len = model.pick(len, model.position, model.position);
                let admitted = model.admit(len);
                match writer.reserve(len) {
                    Ok(mut grant) => {
                        assert_eq!(admitted, Ok(()), "reserve of {len}");
                        grant.copy_from_slice(&payload(usize::MAX, seed, len));
                    }
                    Err(e) => assert_eq!(Err(e), admitted, "reserve of {len}"),
                }
            }
            Op::Batch { ops, publish } => {
                let mut staged = BatchModel::at(model.position, 0);
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
                    );
                    check(&model, &memory, shared);
                    assert_eq!(batch.pending(), staged.staged.len());
                    let remaining = if model.end == End::Open {
                        model.remaining_at(staged.next)
                    } else {
                        0
                    };
                    assert_eq!(batch.remaining_bytes(), remaining);
                }
                model.flush(&mut staged);
                if publish {
                    assert_eq!(batch.publish(), staged.published);
                } else {
                    drop(batch);
                }
            }
            Op::WriteAll { lens, seed } => {
                // The first record's own position (after the marker), or
                // the writer's if there is none.
                let mut first = None;
                let mut failed = None;
                let mut staged = BatchModel::at(model.position, 0);
                let mut records = Vec::new();
                for (i, &len) in lens.iter().enumerate() {
                    let len = model.pick(len, staged.next, staged.start);
                    let bytes = payload(model.records.len() + staged.staged.len(), seed, len);
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
                            failed = Some(BatchError {
                                published: i,
                                error,
                            })
                        }
                    }
                }
                model.flush(&mut staged);
                let expected = failed.map_or(Ok(first.unwrap_or(model.position)), Err);
                let slices: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
                assert_eq!(writer.write_all(&slices), expected);
            }
            Op::Heartbeat(now) => {
                writer.heartbeat(now);
                model.heartbeat = now;
                assert_eq!(reader.heartbeat(), Some(now));
            }
            Op::Close => {
                writer.close();
                if model.end == End::Open {
                    model.end = End::Closed;
                }
            }
            Op::Read => read_one(&mut model, &mut reader),
            Op::ReadAll => {
                let got: Vec<Vec<u8>> = reader
                    .records()
                    .map(|r| r.expect("no damage in a channel the writer wrote").to_vec())
                    .collect();
                let expected: Vec<Vec<u8>> = model.records[model.reader..]
                    .iter()
                    .map(|r| r.payload.clone())
                    .collect();
                assert_eq!(got, expected);
                model.reader = model.records.len();
                model.reader_at = None;
                assert_eq!(reader.position(), model.position);
            }
            Op::Seek(position) => {
                let before = reader.position();
                let expected = model.seek(position);
                assert_eq!(reader.seek(position), expected);
                if expected.is_err() {
                    assert_eq!(reader.position(), before);
                }
                assert_eq!(reader.position(), model.reader_position());
            }
            Op::SeekBoundary(n) => {
                let boundaries = model.boundaries();
                let (position, _) = boundaries[usize::from(n) % boundaries.len()];
                assert_eq!(model.seek(position), Ok(()));
                assert_eq!(reader.seek(position), Ok(()));
                assert_eq!(reader.position(), position);
            }
            Op::Reopen => {
                reader = Reader::open(shared).expect("the channel opens");
                model.reader = 0;
                model.reader_at = None;
            }
            Op::Status => {
                let at_end = model.reader == model.records.len();
                let expected = match model.end {
                    End::Closed if at_end => Status::Closed,
                    End::Full { .. } if at_end => Status::Full,
                    _ => Status::Open,
                };
                assert_eq!(reader.status(&FixedClock(0)), expected);
            }
            Op::Resume => {
                if model.end != End::Open {
                    continue;
                }
                let handle = writer.leave_open();
                // SAFETY: the old writer is gone and no other writer
                // exists; the reader is not in the middle of a read.
                writer =
                    unsafe { Writer::resume_unchecked(handle) }.expect("resume an open channel");
                assert_eq!(writer.records_written(), model.records.len() as u64);
                // Everything after the last record is cleared.
                let area = memory.area();
                assert!(
                    area[model.position as usize..].iter().all(|&b| b == 0),
                    "resume left a stale tail after {}",
                    model.position
                );
            }
        }
        check(&model, &memory, shared);
        assert_eq!(writer.position(), model.position);
        assert_eq!(writer.records_written(), model.records.len() as u64);
        assert_eq!(writer.is_open(), model.end == End::Open);
        assert_eq!(writer.remaining_bytes(), model.remaining_at(model.position));
        assert_eq!(sequence.next_sequence(), model.next_sequence);
    }

    // Closing (by drop) keeps every record; a new reader sees them all,
    // then the end, and so does the long-lived one.
    drop(writer);
    if model.end == End::Open {
        model.end = End::Closed;
    }
    check(&model, &memory, shared);
    while model.reader < model.records.len() {
        read_one(&mut model, &mut reader);
    }
    read_one(&mut model, &mut reader);
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

/// One read of the long-lived reader.
fn read_one<R: kekbit_nostd::Region>(model: &mut Model, reader: &mut Reader<'_, R>) {
    assert_eq!(reader.position(), model.reader_position());
    let expected = model.read();
    assert_eq!(reader.try_read().map(|r| r.map(<[u8]>::to_vec)), expected);
    assert_eq!(reader.position(), model.reader_position());
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
) {
    let index = model.records.len() + staged.staged.len();
    match op {
        BatchOp::Write { len, seed } => {
            let len = model.pick(len, staged.next, staged.start);
            let bytes = payload(index, seed, len);
            let expected = model
                .open_error()
                .and_then(|()| model.too_large(len))
                .and_then(|()| model.place(staged, len))
                .map(|place| model.finish(staged, place, bytes.clone()));
            assert_eq!(batch.write(&bytes), expected, "batch write of {len}");
        }
        BatchOp::WriteWith(with) => {
            clock.0.set(with.now);
            let (next, start) = (staged.next, staged.start);
            let (expected, body) = match expected_with(model, &with, index, next, start) {
                None => (model.open_error().map(|()| 0), Body::empty()),
                Some((record, body)) => {
                    let expected = if with.failing {
                        Err(WriteError::Encode(ENCODER_FAILED))
                    } else {
                        model
                            .too_large(record.len())
                            .and_then(|()| model.place(staged, record.len()))
                            .map(|place| model.finish(staged, place, record))
                    };
                    if expected.is_ok() {
                        model.accepted(with.handler);
                    }
                    (expected, body)
                }
            };
            let got = with_handler!(with.handler, sequence, clock, |h| batch
                .write_with(h, &body));
            assert_eq!(got, expected, "batch write_with {with:?}");
        }
        BatchOp::ReserveCommit {
            reserve,
            commit,
            seed,
        } => {
            let len = model.pick(reserve, staged.next, staged.start);
            let bytes = payload(index, seed, len);
            let placed = model
                .open_error()
                .and_then(|()| model.too_large(len))
                .and_then(|()| model.place(staged, len));
            match batch.reserve(len) {
                Ok(mut grant) => {
                    let place = placed.expect("the batch granted what the model refuses");
                    assert_eq!(grant.len(), len);
                    grant.copy_from_slice(&bytes);
                    let commit = usize::from(commit) % (len + 2);
                    let expected = if commit > len {
                        Err(WriteError::CommitTooLong {
                            committed: commit,
                            reserved: len,
                        })
                    } else {
                        Ok(model.finish(staged, place, bytes[..commit].to_vec()))
                    };
                    assert_eq!(grant.commit(commit), expected);
                }
                Err(e) => assert_eq!(Err(e), placed.map(|_| ()), "batch reserve of {len}"),
            }
        }
        BatchOp::ReserveDrop { len, seed } => {
            let len = model.pick(len, staged.next, staged.start);
            let placed = model
                .open_error()
                .and_then(|()| model.too_large(len))
                .and_then(|()| model.place(staged, len));
            match batch.reserve(len) {
                Ok(mut grant) => {
                    assert!(placed.is_ok(), "batch reserve of {len} granted: {placed:?}");
                    grant.copy_from_slice(&payload(usize::MAX, seed, len));
                }
                Err(e) => assert_eq!(Err(e), placed.map(|_| ()), "batch reserve of {len}"),
            }
        }
        BatchOp::Read => read_one(model, reader),
    }
}

/// The bytes `arbitrary` decodes back into a value (arbitrary 1.x's layout:
/// integers little-endian, a `bool` is a byte's low bit, an enum variant is
/// a `u32` scaled to the variant count, and every `Vec` is a "continue"
/// byte before each element and a zero after the last).
trait ToBytes {
    fn to_bytes(&self, out: &mut Vec<u8>);
}

/// The `u32` that `arbitrary` maps to variant `index` of `count`: the
/// middle of the variant's share of the `u32` range.
fn variant(index: u64, count: u64, out: &mut Vec<u8>) {
    let word = ((2 * index + 1) << 32) / (2 * count);
    out.extend_from_slice(&(word as u32).to_le_bytes());
}

fn list<T: ToBytes>(items: &[T], out: &mut Vec<u8>) {
    for item in items {
        out.push(1);
        item.to_bytes(out);
    }
    out.push(0);
}

impl ToBytes for u8 {
    fn to_bytes(&self, out: &mut Vec<u8>) {
        out.push(*self);
    }
}

impl ToBytes for u16 {
    fn to_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl ToBytes for WithOp {
    fn to_bytes(&self, out: &mut Vec<u8>) {
        out.push(self.handler);
        out.extend_from_slice(&self.len.to_le_bytes());
        out.push(self.seed);
        out.extend_from_slice(&self.now.to_le_bytes());
        out.push(u8::from(self.failing));
    }
}

impl ToBytes for BatchOp {
    fn to_bytes(&self, out: &mut Vec<u8>) {
        const COUNT: u64 = 5;
        match self {
            Self::Write { len, seed } => {
                variant(0, COUNT, out);
                len.to_bytes(out);
                out.push(*seed);
            }
            Self::WriteWith(with) => {
                variant(1, COUNT, out);
                with.to_bytes(out);
            }
            Self::ReserveCommit {
                reserve,
                commit,
                seed,
            } => {
                variant(2, COUNT, out);
                reserve.to_bytes(out);
                commit.to_bytes(out);
                out.push(*seed);
            }
            Self::ReserveDrop { len, seed } => {
                variant(3, COUNT, out);
                len.to_bytes(out);
                out.push(*seed);
            }
            Self::Read => variant(4, COUNT, out),
        }
    }
}

impl ToBytes for Op {
    fn to_bytes(&self, out: &mut Vec<u8>) {
        const COUNT: u64 = 16;
        match self {
            Self::Write { len, seed } => {
                variant(0, COUNT, out);
                len.to_bytes(out);
                out.push(*seed);
            }
            Self::WriteBytes(bytes) => {
                variant(1, COUNT, out);
                list(bytes, out);
            }
            Self::WriteWith(with) => {
                variant(2, COUNT, out);
                with.to_bytes(out);
            }
            Self::ReserveCommit {
                reserve,
                commit,
                seed,
            } => {
                variant(3, COUNT, out);
                reserve.to_bytes(out);
                commit.to_bytes(out);
                out.push(*seed);
            }
            Self::ReserveDrop { len, seed } => {
                variant(4, COUNT, out);
                len.to_bytes(out);
                out.push(*seed);
            }
            Self::Batch { ops, publish } => {
                variant(5, COUNT, out);
                list(ops, out);
                out.push(u8::from(*publish));
            }
            Self::WriteAll { lens, seed } => {
                variant(6, COUNT, out);
                list(lens, out);
                out.push(*seed);
            }
            Self::Heartbeat(now) => {
                variant(7, COUNT, out);
                out.extend_from_slice(&now.to_le_bytes());
            }
            Self::Close => variant(8, COUNT, out),
            Self::Read => variant(9, COUNT, out),
            Self::ReadAll => variant(10, COUNT, out),
            Self::Seek(position) => {
                variant(11, COUNT, out);
                out.extend_from_slice(&position.to_le_bytes());
            }
            Self::SeekBoundary(n) => {
                variant(12, COUNT, out);
                n.to_bytes(out);
            }
            Self::Reopen => variant(13, COUNT, out),
            Self::Status => variant(14, COUNT, out),
            Self::Resume => variant(15, COUNT, out),
        }
    }
}

impl Scenario {
    /// The bytes `arbitrary` decodes back into `self`; the seed generator
    /// checks that they do.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.area.to_le_bytes());
        out.extend_from_slice(&self.slack.to_le_bytes());
        out.extend_from_slice(&self.max_record_len.to_le_bytes());
        out.push(u8::from(self.checksums));
        out.push(self.fill);
        list(&self.ops, &mut out);
        out
    }
}
