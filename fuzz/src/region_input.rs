//! The `reader` target's input layout, parsed by the target and written by
//! the seed generator.
//!
//! ```text
//! mode: u8
//! seeks: 4 x u32 LE        positions to seek to after the walk
//! clocks: 2 x u64 LE       clock readings for status()
//! if mode & VALID_HEADER:
//!   capacity: u32 LE       reduced into the valid range (only with SLACK;
//!                          otherwise the whole record area is used)
//!   max_record_len: u32 LE reduced to 1..=limit
//!   timeout_ticks: u64 LE, creation_time: u64 LE, tick_unit: u8 (mod 4)
//!   heartbeat: u32 LE, slack: u8 (bytes after the record area, with SLACK)
//!   if mode & BATCHES: groups: u32 LE (how the body's records are batched)
//!   body: the record area
//! else:
//!   body: the whole region, header included
//! ```
//! Missing bytes read as zero.

use crc::{CRC_32_ISCSI, Crc};
use kekbit_nostd::format::{
    BATCH_MARKER_LEN, COMMIT_BATCH_TAG, COMMIT_LEN_MASK, COMMIT_RECORD_TAG, COMMIT_TAG_MASK,
    FLAG_CHECKSUMS, HEADER_LEN, HEARTBEAT_LO_OFFSET, IMMUTABLE_HEADER_LEN, MARKER_LEN,
    MIN_CAPACITY, PAYLOAD_OFFSET, VERSION,
};
use kekbit_nostd::{Header, TickUnit};

use crate::Aligned;

/// Mode bit: write a valid header built from the parameters.
pub const VALID_HEADER: u8 = 1 << 0;
/// Mode bit (with `VALID_HEADER`): records carry checksums.
pub const CHECKSUMS: u8 = 1 << 1;
/// Mode bit (with `CHECKSUMS`): re-seal every well-framed record's checksum.
pub const RESEAL: u8 = 1 << 2;
/// Mode bit (with `VALID_HEADER`): a smaller capacity, and slack after it.
pub const SLACK: u8 = 1 << 3;
/// Mode bit: resume a writer on the region after the walk.
pub const RESUME: u8 = 1 << 4;
/// Mode bit (with `VALID_HEADER`): regroup the body's well-framed records
/// into batches with correct markers (see [`HeaderParams::groups`]), so the
/// fuzzer reaches valid batches, and then mutates them, without having to
/// guess a span.
pub const BATCHES: u8 = 1 << 5;

/// Seek targets in an input.
pub const SEEKS: usize = 4;

/// The smallest capacity a valid header can have.
pub const MIN_VALID_CAPACITY: u32 = MIN_CAPACITY;

/// Header fields, before they are reduced into their valid ranges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeaderParams {
    pub capacity: u32,
    pub max_record_len: u32,
    pub timeout_ticks: u64,
    pub creation_time: u64,
    pub tick_unit: u8,
    pub heartbeat: u32,
    pub slack: u8,
    /// With [`BATCHES`]: four group bytes, used in turn. A byte with its
    /// top bit set makes one record without a marker; any other byte `b`
    /// makes a batch of `1 + b % 4` records behind one marker.
    pub groups: u32,
}

/// One `reader` input, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionInput<'a> {
    pub mode: u8,
    pub seeks: [u32; SEEKS],
    pub clocks: [u64; 2],
    /// Read only with `VALID_HEADER`.
    pub params: HeaderParams,
    pub body: &'a [u8],
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
}

impl<'a> RegionInput<'a> {
    /// Parses any bytes; missing ones read as zero.
    pub fn parse(data: &'a [u8]) -> Self {
        let mut c = Cursor(data);
        let mode = c.u8();
        let seeks = core::array::from_fn(|_| c.u32());
        let clocks = [c.u64(), c.u64()];
        let params = if mode & VALID_HEADER != 0 {
            HeaderParams {
                capacity: c.u32(),
                max_record_len: c.u32(),
                timeout_ticks: c.u64(),
                creation_time: c.u64(),
                tick_unit: c.u8(),
                heartbeat: c.u32(),
                slack: c.u8(),
                groups: if mode & BATCHES != 0 { c.u32() } else { 0 },
            }
        } else {
            HeaderParams::default()
        };
        Self {
            mode,
            seeks,
            clocks,
            params,
            body: c.0,
        }
    }

    /// The bytes `parse` reads back as `self`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![self.mode];
        for seek in self.seeks {
            out.extend_from_slice(&seek.to_le_bytes());
        }
        for clock in self.clocks {
            out.extend_from_slice(&clock.to_le_bytes());
        }
        if self.mode & VALID_HEADER != 0 {
            let p = &self.params;
            out.extend_from_slice(&p.capacity.to_le_bytes());
            out.extend_from_slice(&p.max_record_len.to_le_bytes());
            out.extend_from_slice(&p.timeout_ticks.to_le_bytes());
            out.extend_from_slice(&p.creation_time.to_le_bytes());
            out.push(p.tick_unit);
            out.extend_from_slice(&p.heartbeat.to_le_bytes());
            out.push(p.slack);
            if self.mode & BATCHES != 0 {
                out.extend_from_slice(&p.groups.to_le_bytes());
            }
        }
        out.extend_from_slice(self.body);
        out
    }

    /// The header a `VALID_HEADER` input writes: every field reduced into
    /// its valid range.
    pub fn header(&self) -> Header {
        let p = &self.params;
        let area = self.body.len().max(MIN_VALID_CAPACITY as usize);
        let whole = (area.min(u32::MAX as usize) as u32) & !7;
        let capacity = if self.mode & SLACK != 0 {
            MIN_VALID_CAPACITY + (p.capacity % ((whole - MIN_VALID_CAPACITY) / 8 + 1)) * 8
        } else {
            whole
        };
        let limit = Header::max_record_len_limit(capacity);
        let tick_unit = match p.tick_unit % 4 {
            0 => TickUnit::Nanos,
            1 => TickUnit::Micros,
            2 => TickUnit::Millis,
            _ => TickUnit::Seconds,
        };
        Header {
            version: VERSION,
            flags: if self.mode & CHECKSUMS != 0 {
                FLAG_CHECKSUMS
            } else {
                0
            },
            writer_id: u64::from(p.max_record_len),
            channel_id: u64::from(p.capacity),
            capacity_bytes: capacity,
            max_record_len: 1 + p.max_record_len % limit,
            timeout_ticks: p.timeout_ticks,
            creation_time: p.creation_time,
            tick_unit,
            journal_id: 0,
            base_position: 0,
        }
    }

    /// The region this input describes, whether its header is valid by
    /// construction, and, with [`BATCHES`], the records it placed in
    /// batches (in the order a reader must return them first).
    pub fn build(&self) -> (Aligned, bool, Vec<Vec<u8>>) {
        if self.mode & VALID_HEADER == 0 {
            let mut buffer = Aligned::new(self.body.len(), 0);
            buffer.bytes_mut().copy_from_slice(self.body);
            return (buffer, false, Vec::new());
        }
        let header = self.header();
        let area = self.body.len().max(MIN_VALID_CAPACITY as usize);
        let slack = if self.mode & SLACK != 0 {
            usize::from(self.params.slack)
        } else {
            0
        };
        let mut buffer = Aligned::new(HEADER_LEN + area + slack, 0);
        let memory = buffer.bytes_mut();
        memory[..IMMUTABLE_HEADER_LEN].copy_from_slice(&header.encode());
        memory[HEARTBEAT_LO_OFFSET..HEARTBEAT_LO_OFFSET + 4]
            .copy_from_slice(&self.params.heartbeat.to_le_bytes());
        memory[HEADER_LEN..HEADER_LEN + self.body.len()].copy_from_slice(self.body);
        let placed = if self.mode & BATCHES != 0 {
            let area = &mut memory[HEADER_LEN..HEADER_LEN + header.capacity_bytes as usize];
            regroup(area, &header, self.params.groups)
        } else {
            Vec::new()
        };
        if header.checksums() && self.mode & RESEAL != 0 {
            reseal(&mut memory[HEADER_LEN..], &header);
        }
        (buffer, true, placed)
    }
}

const CRC32C: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

/// The well-framed records at the start of `area`, in walk order (batch
/// markers skipped): each record's payload.
fn framed_records(area: &[u8], header: &Header) -> Vec<Vec<u8>> {
    let capacity = header.capacity_bytes as usize;
    let mut records = Vec::new();
    let mut at = 0usize;
    while at + MARKER_LEN <= capacity {
        let word = u32::from_le_bytes([area[at], area[at + 1], area[at + 2], area[at + 3]]);
        if word & COMMIT_TAG_MASK == COMMIT_BATCH_TAG {
            at += BATCH_MARKER_LEN;
            continue;
        }
        if word & COMMIT_TAG_MASK != COMMIT_RECORD_TAG {
            break;
        }
        let len = (word & COMMIT_LEN_MASK) as usize;
        let span = PAYLOAD_OFFSET + len.div_ceil(8) * 8;
        if len > header.max_record_len as usize || at + span + MARKER_LEN > capacity {
            break;
        }
        records.push(area[at + PAYLOAD_OFFSET..at + PAYLOAD_OFFSET + len].to_vec());
        at += span;
    }
    records
}

/// Rewrites the start of `area` as the records `framed_records` finds,
/// grouped by `groups` (see [`HeaderParams::groups`]) behind correct batch
/// markers, as a writer would, with the fit rule; then an empty word. The
/// bytes after that are left as they were. Returns the records placed:
/// a reader must return them first. Checksum words are zero (reseal them).
fn regroup(area: &mut [u8], header: &Header, groups: u32) -> Vec<Vec<u8>> {
    let capacity = area.len();
    let mut records = framed_records(area, header).into_iter().peekable();
    let group_bytes = groups.to_le_bytes();
    let mut placed = Vec::new();
    let mut at = 0usize;
    let span = |len: usize| PAYLOAD_OFFSET + len.div_ceil(8) * 8;
    let put = |area: &mut [u8], at: usize, record: &[u8]| {
        let word = COMMIT_RECORD_TAG | record.len() as u32;
        area[at..at + 4].copy_from_slice(&word.to_le_bytes());
        area[at + 4..at + 8].fill(0);
        area[at + PAYLOAD_OFFSET..at + PAYLOAD_OFFSET + record.len()].copy_from_slice(record);
        area[at + PAYLOAD_OFFSET + record.len()..at + span(record.len())].fill(0);
    };
    for group in (0..).map(|i| group_bytes[i % 4]) {
        let Some(first) = records.peek() else { break };
        if group & 0x80 != 0 {
            if at + span(first.len()) + MARKER_LEN > capacity {
                break;
            }
            let record = records.next().expect("peeked");
            put(area, at, &record);
            at += span(record.len());
            placed.push(record);
            continue;
        }
        let marker = at;
        let mut next = at + BATCH_MARKER_LEN;
        let mut count = 0u32;
        while count < 1 + u32::from(group % 4) {
            let Some(record) = records.peek() else { break };
            if next + span(record.len()) + MARKER_LEN > capacity {
                break;
            }
            let record = records.next().expect("peeked");
            put(area, next, &record);
            next += span(record.len());
            placed.push(record);
            count += 1;
        }
        if count == 0 {
            break;
        }
        let word = COMMIT_BATCH_TAG | (next - marker - BATCH_MARKER_LEN) as u32;
        area[marker..marker + 4].copy_from_slice(&word.to_le_bytes());
        area[marker + 4..marker + 8].copy_from_slice(&count.to_le_bytes());
        at = next;
    }
    area[at..at + 4].fill(0);
    placed
}

/// Rewrites the checksum of every well-framed record, in walk order, so the
/// fuzzer reaches records after the first.
fn reseal(area: &mut [u8], header: &Header) {
    let capacity = header.capacity_bytes as usize;
    let mut at = 0usize;
    while at + MARKER_LEN <= capacity {
        let word = u32::from_le_bytes([area[at], area[at + 1], area[at + 2], area[at + 3]]);
        if word & COMMIT_TAG_MASK == COMMIT_BATCH_TAG {
            // A batch marker: its records follow it.
            at += BATCH_MARKER_LEN;
            continue;
        }
        if word & COMMIT_TAG_MASK != COMMIT_RECORD_TAG {
            return;
        }
        let len = word & COMMIT_LEN_MASK;
        let span = PAYLOAD_OFFSET + (len as usize).div_ceil(8) * 8;
        if len > header.max_record_len || at + span + MARKER_LEN > capacity {
            return;
        }
        let payload = &area[at + PAYLOAD_OFFSET..at + PAYLOAD_OFFSET + len as usize];
        let mut digest = CRC32C.digest();
        digest.update(&len.to_le_bytes());
        digest.update(payload);
        let sum = digest.finalize();
        area[at + 4..at + 8].copy_from_slice(&sum.to_le_bytes());
        at += span;
    }
}
