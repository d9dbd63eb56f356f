//! The `roundtrip` target: an arbitrary sequence of operations against a real writer and reader,
//! checked step by step against a plain model of the channel.
//!
//! The model knows only the format's rules: a record of `len` payload bytes
//! spans `8 + len` rounded up to 8; it fits iff `position + span + 8 <=
//! capacity` (the writer keeps room for an end marker); a record that does
//! not fit marks the channel full for good. From them it predicts every
//! position, every record a reader returns and every error, exactly.

use crate::{Aligned, FixedClock};
use arbitrary::Arbitrary;
use kekbit_nostd::format::{HEADER_LEN, MARKER_LEN, MIN_CAPACITY, PAYLOAD_OFFSET, RECORD_ALIGN};
use kekbit_nostd::{
    ChannelConfig, ReadError, Reader, SeekError, SliceRegion, Status, WriteError, Writer,
};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Closed,
    Full,
}

/// The channel as the format rules say it must be.
struct Model {
    capacity: u32,
    max: u32,
    /// Where the next record goes.
    position: u32,
    /// Committed records: position and payload.
    records: Vec<(u32, Vec<u8>)>,
    state: State,
    /// Index in `records` of the reader's next record.
    reader: usize,
}

fn span(len: usize) -> u32 {
    (PAYLOAD_OFFSET + len.div_ceil(RECORD_ALIGN) * RECORD_ALIGN) as u32
}

impl Model {
    /// What the writer must answer before writing `len` bytes; a record that
    /// does not fit marks the channel full.
    fn admit(&mut self, len: usize) -> Result<(), WriteError> {
        if self.state != State::Open {
            return Err(WriteError::Closed);
        }
        if len > self.max as usize {
            return Err(WriteError::TooLarge { len, max: self.max });
        }
        let remaining = self.capacity - self.position - MARKER_LEN as u32;
        if u64::from(self.position) + u64::from(span(len)) + MARKER_LEN as u64
            > u64::from(self.capacity)
        {
            self.state = State::Full;
            return Err(WriteError::Full {
                needed: (PAYLOAD_OFFSET + len) as u64,
                remaining,
            });
        }
        Ok(())
    }

    fn commit(&mut self, payload: Vec<u8>) -> u32 {
        let position = self.position;
        self.position += span(payload.len());
        self.records.push((position, payload));
        position
    }

    /// Positions a reader may seek to: every record, and the end.
    fn boundaries(&self) -> Vec<u32> {
        let mut all: Vec<u32> = self.records.iter().map(|r| r.0).collect();
        all.push(self.position);
        all
    }

    fn reader_position(&self) -> u32 {
        self.records.get(self.reader).map_or(self.position, |r| r.0)
    }

    /// What `try_read` must return now, advancing the model's reader.
    fn read(&mut self) -> Result<Option<&[u8]>, ReadError> {
        if self.reader < self.records.len() {
            self.reader += 1;
            return Ok(Some(&self.records[self.reader - 1].1));
        }
        match self.state {
            State::Open => Ok(None),
            State::Closed => Err(ReadError::Closed),
            State::Full => Err(ReadError::Full),
        }
    }

    fn seek(&mut self, position: u32) -> Result<(), SeekError> {
        if !position.is_multiple_of(RECORD_ALIGN as u32) {
            return Err(SeekError::NotARecordBoundary { position });
        }
        if let Some(i) = self.boundaries().iter().position(|&b| b == position) {
            self.reader = i;
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

/// Deterministic, record-specific bytes, so a record read out of order or
/// from the wrong place cannot pass for the right one.
fn payload(seq: usize, seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seq as u8).wrapping_mul(31) ^ seed ^ (i as u8).wrapping_mul(7))
        .collect()
}

/// Runs `scenario`, panicking at the first difference from the model.
pub fn run(scenario: Scenario) {
    let min_capacity = MIN_CAPACITY;
    let area_units = u32::from(scenario.area % 512);
    let region_len = HEADER_LEN + (min_capacity + area_units * 8) as usize;
    let capacity = min_capacity + 8 * (area_units - u32::from(scenario.slack) % (area_units + 1));
    let limit = capacity - PAYLOAD_OFFSET as u32 - MARKER_LEN as u32;
    let max = 1 + u32::from(scenario.max_record_len) % limit;

    let mut buffer = Aligned::new(region_len, scenario.fill);
    let mut region =
        SliceRegion::new(buffer.bytes_mut()).expect("an aligned buffer of a valid size");
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
        position: 0,
        records: Vec::new(),
        state: State::Open,
        reader: 0,
    };
    let pick = |len: u16, model: &Model| -> usize {
        // Mostly lengths the channel allows; the top bit asks for any length.
        if len & 0x8000 != 0 {
            usize::from(len & 0x7fff)
        } else {
            usize::from(len) % (model.max as usize + 1)
        }
    };

    for op in scenario.ops {
        match op {
            Op::Write { len, seed } => {
                let len = pick(len, &model);
                let bytes = payload(model.records.len(), seed, len);
                let expected = model.admit(len).map(|()| model.commit(bytes.clone()));
                assert_eq!(writer.write(&bytes), expected, "write of {len}");
            }
            Op::WriteBytes(bytes) => {
                let expected = model
                    .admit(bytes.len())
                    .map(|()| model.commit(bytes.clone()));
                assert_eq!(writer.write(&bytes), expected, "write of {}", bytes.len());
            }
            Op::ReserveCommit {
                reserve,
                commit,
                seed,
            } => {
                let len = pick(reserve, &model);
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
                            Ok(model.commit(bytes[..commit].to_vec()))
                        };
                        assert_eq!(grant.commit(commit), expected);
                    }
                    Err(e) => assert_eq!(Err(e), admitted, "reserve of {len}"),
                }
            }
            Op::ReserveDrop { len, seed } => {
                let len = pick(len, &model);
                let admitted = model.admit(len);
                match writer.reserve(len) {
                    Ok(mut grant) => {
                        assert_eq!(admitted, Ok(()), "reserve of {len}");
                        grant.copy_from_slice(&payload(usize::MAX, seed, len));
                    }
                    Err(e) => assert_eq!(Err(e), admitted, "reserve of {len}"),
                }
            }
            Op::Heartbeat(now) => {
                writer.heartbeat(now);
                assert_eq!(reader.heartbeat(), Some(now));
            }
            Op::Close => {
                writer.close();
                if model.state == State::Open {
                    model.state = State::Closed;
                }
            }
            Op::Read => {
                let expected_position = model.reader_position();
                assert_eq!(reader.position(), expected_position);
                let expected = model.read().map(|r| r.map(<[u8]>::to_vec));
                assert_eq!(reader.try_read().map(|r| r.map(<[u8]>::to_vec)), expected);
                assert_eq!(reader.position(), model.reader_position());
            }
            Op::ReadAll => {
                let got: Vec<Vec<u8>> = reader
                    .records()
                    .map(|r| r.expect("no damage in a channel the writer wrote").to_vec())
                    .collect();
                let expected: Vec<Vec<u8>> = model.records[model.reader..]
                    .iter()
                    .map(|r| r.1.clone())
                    .collect();
                assert_eq!(got, expected);
                model.reader = model.records.len();
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
                let position = boundaries[usize::from(n) % boundaries.len()];
                assert_eq!(model.seek(position), Ok(()));
                assert_eq!(reader.seek(position), Ok(()));
                assert_eq!(reader.position(), position);
            }
            Op::Reopen => {
                reader = Reader::open(shared).expect("the channel opens");
                model.reader = 0;
            }
            Op::Status => {
                let at_end = model.reader == model.records.len();
                let expected = match model.state {
                    State::Closed if at_end => Status::Closed,
                    State::Full if at_end => Status::Full,
                    _ => Status::Open,
                };
                assert_eq!(reader.status(&FixedClock(0)), expected);
            }
            Op::Resume => {
                if model.state == State::Open {
                    let region = writer.leave_open();
                    // SAFETY: the old writer is gone and no other writer
                    // exists; the reader is not in the middle of a read.
                    writer = unsafe { Writer::resume_unchecked(region) }
                        .expect("resume an open channel");
                    assert_eq!(writer.records_written(), model.records.len() as u64);
                }
            }
        }
        assert_eq!(writer.position(), model.position);
        assert_eq!(writer.records_written(), model.records.len() as u64);
        assert_eq!(writer.is_open(), model.state == State::Open);
        assert_eq!(
            writer.remaining_bytes(),
            model.capacity - model.position - MARKER_LEN as u32
        );
    }

    // Closing (by drop) keeps every record; a new reader sees them all, then the end.
    let full = model.state == State::Full;
    drop(writer);
    let mut last = Reader::open(shared).expect("the channel opens");
    for (position, record) in &model.records {
        assert_eq!(last.position(), *position);
        assert_eq!(last.try_read(), Ok(Some(&record[..])));
    }
    let end = if full {
        ReadError::Full
    } else {
        ReadError::Closed
    };
    assert_eq!(last.try_read(), Err(end));
    assert_eq!(last.position(), model.position);
}

impl Scenario {
    /// The bytes `arbitrary` decodes back into `self` (arbitrary 1.x's
    /// layout: integers little-endian, a `bool` is a byte's low bit, an
    /// enum variant is a `u32` scaled to the variant count, and the
    /// operation list is a "continue" byte before each operation). `None`
    /// for scenarios with `WriteBytes`, whose lengths live at the input's end.
    pub fn to_bytes(&self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.area.to_le_bytes());
        out.extend_from_slice(&self.slack.to_le_bytes());
        out.extend_from_slice(&self.max_record_len.to_le_bytes());
        out.push(u8::from(self.checksums));
        out.push(self.fill);
        for op in &self.ops {
            out.push(1);
            let (variant, fields): (u64, Vec<u8>) = match op {
                Op::Write { len, seed } => (0, [&len.to_le_bytes()[..], &[*seed]].concat()),
                Op::WriteBytes(_) => return None,
                Op::ReserveCommit {
                    reserve,
                    commit,
                    seed,
                } => (
                    2,
                    [&reserve.to_le_bytes()[..], &commit.to_le_bytes(), &[*seed]].concat(),
                ),
                Op::ReserveDrop { len, seed } => (3, [&len.to_le_bytes()[..], &[*seed]].concat()),
                Op::Heartbeat(now) => (4, now.to_le_bytes().to_vec()),
                Op::Close => (5, Vec::new()),
                Op::Read => (6, Vec::new()),
                Op::ReadAll => (7, Vec::new()),
                Op::Seek(position) => (8, position.to_le_bytes().to_vec()),
                Op::SeekBoundary(n) => (9, n.to_le_bytes().to_vec()),
                Op::Reopen => (10, Vec::new()),
                Op::Status => (11, Vec::new()),
                Op::Resume => (12, Vec::new()),
            };
            // The middle of the variant's share of the u32 range.
            let word = ((2 * variant + 1) << 32) / (2 * OP_VARIANTS);
            out.extend_from_slice(&(word as u32).to_le_bytes());
            out.extend_from_slice(&fields);
        }
        out.push(0);
        Some(out)
    }
}

/// The number of `Op` variants, for `Scenario::to_bytes`.
const OP_VARIANTS: u64 = 13;
