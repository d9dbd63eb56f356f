//! The relay's message format: a small header, then the records as they are
//! framed in the journal (see `docs/FORMAT.md`, "Relay messages").
//!
//! A message carries a run of consecutive records of one segment. Its body
//! is the byte image of the journal range `[first_position, end_position)`:
//! each record framed as in a channel (commit word, checksum, payload,
//! padding), and the 8 bytes of each batch marker as a *gap* frame. So the
//! position of every record is `first_position` plus its offset in the body,
//! and the replica can check each one.

use core::fmt;

/// The first four bytes of every relay message.
pub const MAGIC: [u8; 4] = *b"KBRL";
/// The format version this crate writes and reads.
pub const VERSION: u16 = 1;

const MAGIC_OFFSET: usize = 0;
const VERSION_OFFSET: usize = MAGIC_OFFSET + 4;
const HEADER_LEN_OFFSET: usize = VERSION_OFFSET + 2;
const JOURNAL_ID_OFFSET: usize = HEADER_LEN_OFFSET + 2;
const FIRST_POSITION_OFFSET: usize = JOURNAL_ID_OFFSET + 8;
const SEGMENT_BASE_OFFSET: usize = FIRST_POSITION_OFFSET + 8;
const SEGMENT_BYTES_OFFSET: usize = SEGMENT_BASE_OFFSET + 8;
const MAX_RECORD_LEN_OFFSET: usize = SEGMENT_BYTES_OFFSET + 4;
const RECORD_COUNT_OFFSET: usize = MAX_RECORD_LEN_OFFSET + 4;
const FLAGS_OFFSET: usize = RECORD_COUNT_OFFSET + 4;
/// Length of the message header in bytes (the body starts here).
pub const HEADER_LEN: usize = FLAGS_OFFSET + 4;
const _: () = assert!(HEADER_LEN == 48 && HEADER_LEN.is_multiple_of(8));

/// Flag bit: the source journal was closed at `first_position`; the body is
/// empty.
pub const FLAG_CLOSED: u32 = 1;
const KNOWN_FLAGS: u32 = FLAG_CLOSED;

/// Commit-word tag of a record frame (as in a channel).
const RECORD_TAG: u32 = 0x8000_0000;
/// Commit word of a gap frame: the 8 bytes of a batch marker in the source.
pub const GAP_WORD: u32 = 0x4000_0000;
const LEN_MASK: u32 = 0x3FFF_FFFF;
/// Bytes of framing before each record's payload (commit word, checksum).
pub const FRAME_HEADER: usize = 8;

/// The NATS header that carries the source journal's id (16 hex digits).
pub const HEADER_JOURNAL: &str = "Kekbit-Journal";
/// The NATS header that carries the position of the run's first byte.
pub const HEADER_POSITION: &str = "Kekbit-Position";
/// The NATS header that carries the position just after the run.
pub const HEADER_END: &str = "Kekbit-End";
/// The NATS header that carries the base of the run's segment.
pub const HEADER_SEGMENT: &str = "Kekbit-Segment";

/// Bytes a record of `len` takes in a body (framing and padding included).
///
/// ```
/// assert_eq!(kekbit_relay::message::framed_len(0), 8);
/// assert_eq!(kekbit_relay::message::framed_len(1), 16);
/// assert_eq!(kekbit_relay::message::framed_len(8), 16);
/// ```
pub const fn framed_len(len: usize) -> usize {
    FRAME_HEADER + len.next_multiple_of(8)
}

/// The `Nats-Msg-Id` of the message whose run starts at `position`:
/// `<journal id, 16 hex digits>:<position>`.
///
/// ```
/// assert_eq!(kekbit_relay::message::message_id(0xab, 4096), "00000000000000ab:4096");
/// ```
pub fn message_id(journal_id: u64, position: u64) -> String {
    format!("{journal_id:016x}:{position}")
}

/// The `Nats-Msg-Id` of the end marker of a journal closed at `position`:
/// `<journal id>:<position>:closed` (distinct from the id of the run that
/// starts there once the journal is reopened).
///
/// ```
/// assert_eq!(
///     kekbit_relay::message::closed_message_id(0xab, 64),
///     "00000000000000ab:64:closed"
/// );
/// ```
pub fn closed_message_id(journal_id: u64, position: u64) -> String {
    format!("{journal_id:016x}:{position}:closed")
}

/// What is wrong with a message that does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// Shorter than the header.
    Short {
        /// The payload's length.
        len: usize,
    },
    /// Not a relay message (wrong magic).
    BadMagic,
    /// A version this crate does not read.
    Version {
        /// The version found.
        found: u16,
    },
    /// The header length field is out of range.
    HeaderLen {
        /// The value found.
        found: u16,
    },
    /// Unknown flag bits.
    Flags {
        /// The flags found.
        found: u32,
    },
    /// A header field that contradicts another or the body.
    Field {
        /// What is wrong.
        what: &'static str,
    },
    /// A frame in the body is damaged.
    Frame {
        /// Offset of the frame in the body.
        offset: usize,
        /// What is wrong.
        what: &'static str,
    },
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Short { len } => write!(
                f,
                "{len} bytes is shorter than the {HEADER_LEN}-byte header"
            ),
            Self::BadMagic => f.write_str("not a kekbit relay message (bad magic)"),
            Self::Version { found } => write!(
                f,
                "message format version {found}, this relay reads {VERSION}"
            ),
            Self::HeaderLen { found } => write!(f, "header length {found} is out of range"),
            Self::Flags { found } => write!(f, "unknown flags {found:#x}"),
            Self::Field { what } => write!(f, "bad header: {what}"),
            Self::Frame { offset, what } => write!(f, "body offset {offset}: {what}"),
        }
    }
}

impl std::error::Error for FormatError {}

/// The header of a relay message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The source journal's id.
    pub journal_id: u64,
    /// Journal position of the body's first byte.
    pub first_position: u64,
    /// Base position of the segment the run belongs to.
    pub segment_base: u64,
    /// Capacity in bytes of that segment's record area.
    pub segment_bytes: u32,
    /// The longest record the source segment allows.
    pub max_record_len: u32,
    /// Records in the body.
    pub record_count: u32,
    /// Flag bits ([`FLAG_CLOSED`]).
    pub flags: u32,
}

impl Header {
    /// Whether this is the end marker of a closed journal.
    pub const fn is_closed_marker(&self) -> bool {
        self.flags & FLAG_CLOSED != 0
    }

    fn encode(&self, out: &mut [u8]) {
        out[MAGIC_OFFSET..MAGIC_OFFSET + 4].copy_from_slice(&MAGIC);
        out[VERSION_OFFSET..VERSION_OFFSET + 2].copy_from_slice(&VERSION.to_le_bytes());
        out[HEADER_LEN_OFFSET..HEADER_LEN_OFFSET + 2]
            .copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        out[JOURNAL_ID_OFFSET..JOURNAL_ID_OFFSET + 8]
            .copy_from_slice(&self.journal_id.to_le_bytes());
        out[FIRST_POSITION_OFFSET..FIRST_POSITION_OFFSET + 8]
            .copy_from_slice(&self.first_position.to_le_bytes());
        out[SEGMENT_BASE_OFFSET..SEGMENT_BASE_OFFSET + 8]
            .copy_from_slice(&self.segment_base.to_le_bytes());
        out[SEGMENT_BYTES_OFFSET..SEGMENT_BYTES_OFFSET + 4]
            .copy_from_slice(&self.segment_bytes.to_le_bytes());
        out[MAX_RECORD_LEN_OFFSET..MAX_RECORD_LEN_OFFSET + 4]
            .copy_from_slice(&self.max_record_len.to_le_bytes());
        out[RECORD_COUNT_OFFSET..RECORD_COUNT_OFFSET + 4]
            .copy_from_slice(&self.record_count.to_le_bytes());
        out[FLAGS_OFFSET..FLAGS_OFFSET + 4].copy_from_slice(&self.flags.to_le_bytes());
    }
}

fn u16_at(bytes: &[u8], offset: usize) -> u16 {
    let mut b = [0; 2];
    b.copy_from_slice(&bytes[offset..offset + 2]);
    u16::from_le_bytes(b)
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    let mut b = [0; 4];
    b.copy_from_slice(&bytes[offset..offset + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(b)
}

/// One frame of a message body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'m> {
    /// The 8 bytes of a batch marker at `position` in the source: the
    /// records that follow it up to the next gap (or the end of the
    /// message) were published as one batch.
    Gap {
        /// The marker's position.
        position: u64,
    },
    /// A record.
    Record {
        /// Its journal position.
        position: u64,
        /// Its bytes.
        payload: &'m [u8],
    },
}

/// A parsed, checked relay message, borrowing its payload.
#[derive(Clone, Copy, Debug)]
pub struct Message<'m> {
    header: Header,
    body: &'m [u8],
}

impl<'m> Message<'m> {
    /// Parses and checks a message: the header, and every frame of the body
    /// (lengths, record count, checksums), so that [`Message::frames`]
    /// cannot fail afterwards.
    ///
    /// ```
    /// use kekbit_relay::message::{Frame, Message, RunBuilder};
    /// let mut run = RunBuilder::new(7, 4096, 0, 1 << 20, 1024, 64 << 10);
    /// assert!(run.push(b"hello"));
    /// let bytes = run.finish();
    /// let message = Message::parse(&bytes)?;
    /// assert_eq!(message.header().first_position, 4096);
    /// assert_eq!(message.end_position(), 4096 + 16);
    /// let frames: Vec<_> = message.frames().collect();
    /// assert_eq!(frames, [Frame::Record { position: 4096, payload: b"hello" }]);
    /// # Ok::<(), kekbit_relay::message::FormatError>(())
    /// ```
    pub fn parse(bytes: &'m [u8]) -> Result<Self, FormatError> {
        if bytes.len() < HEADER_LEN {
            return Err(FormatError::Short { len: bytes.len() });
        }
        if bytes[MAGIC_OFFSET..MAGIC_OFFSET + 4] != MAGIC {
            return Err(FormatError::BadMagic);
        }
        let version = u16_at(bytes, VERSION_OFFSET);
        if version != VERSION {
            return Err(FormatError::Version { found: version });
        }
        let header_len = u16_at(bytes, HEADER_LEN_OFFSET);
        if header_len as usize != HEADER_LEN {
            return Err(FormatError::HeaderLen { found: header_len });
        }
        let header = Header {
            journal_id: u64_at(bytes, JOURNAL_ID_OFFSET),
            first_position: u64_at(bytes, FIRST_POSITION_OFFSET),
            segment_base: u64_at(bytes, SEGMENT_BASE_OFFSET),
            segment_bytes: u32_at(bytes, SEGMENT_BYTES_OFFSET),
            max_record_len: u32_at(bytes, MAX_RECORD_LEN_OFFSET),
            record_count: u32_at(bytes, RECORD_COUNT_OFFSET),
            flags: u32_at(bytes, FLAGS_OFFSET),
        };
        if header.flags & !KNOWN_FLAGS != 0 {
            return Err(FormatError::Flags {
                found: header.flags,
            });
        }
        let body = &bytes[HEADER_LEN..];
        let field = |what| Err(FormatError::Field { what });
        if !header.first_position.is_multiple_of(8) || !header.segment_base.is_multiple_of(8) {
            return field("positions must be multiples of 8");
        }
        if header.first_position < header.segment_base {
            return field("the run starts before its segment");
        }
        if !body.len().is_multiple_of(8) {
            return field("body length is not a multiple of 8");
        }
        let in_segment =
            (header.first_position - header.segment_base).checked_add(body.len() as u64);
        if in_segment.is_none_or(|end| end > u64::from(header.segment_bytes)) {
            return field("the run ends past its segment's capacity");
        }
        if header.is_closed_marker() && (!body.is_empty() || header.record_count != 0) {
            return field("an end marker carries records");
        }
        let message = Self { header, body };
        // Walk once to check every frame; `frames` then never meets damage.
        let mut records = 0u32;
        let mut offset = 0;
        let mut after_gap = false;
        while offset < body.len() {
            let word = u32_at(body, offset);
            let second = u32_at(body, offset + 4);
            if word == GAP_WORD {
                if second != 0 {
                    return Err(FormatError::Frame {
                        offset,
                        what: "gap frame with a non-zero second word",
                    });
                }
                if after_gap {
                    return Err(FormatError::Frame {
                        offset,
                        what: "two gaps in a row",
                    });
                }
                after_gap = true;
                offset += 8;
                continue;
            }
            if word & !LEN_MASK != RECORD_TAG {
                return Err(FormatError::Frame {
                    offset,
                    what: "not a record or gap frame",
                });
            }
            let len = (word & LEN_MASK) as usize;
            if len > header.max_record_len as usize {
                return Err(FormatError::Frame {
                    offset,
                    what: "record longer than the segment's maximum",
                });
            }
            if offset + framed_len(len) > body.len() {
                return Err(FormatError::Frame {
                    offset,
                    what: "record runs past the body",
                });
            }
            let payload = &body[offset + FRAME_HEADER..offset + FRAME_HEADER + len];
            if kekbit_nostd::record_checksum(payload) != Some(second) {
                return Err(FormatError::Frame {
                    offset,
                    what: "record checksum mismatch",
                });
            }
            after_gap = false;
            records += 1;
            offset += framed_len(len);
        }
        if after_gap {
            return Err(FormatError::Frame {
                offset: body.len() - 8,
                what: "a gap ends the body",
            });
        }
        if records != header.record_count {
            return field("record count does not match the body");
        }
        Ok(message)
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Journal position just after the run (`first_position` + body length).
    pub fn end_position(&self) -> u64 {
        self.header.first_position + self.body.len() as u64
    }

    /// The body's length in bytes.
    pub fn body_len(&self) -> usize {
        self.body.len()
    }

    /// The frames of the body, in order.
    pub fn frames(&self) -> Frames<'m> {
        Frames {
            body: self.body,
            offset: 0,
            first: self.header.first_position,
        }
    }
}

/// Iterator over a checked body's frames (see [`Message::frames`]).
#[derive(Clone, Debug)]
pub struct Frames<'m> {
    body: &'m [u8],
    offset: usize,
    first: u64,
}

impl<'m> Iterator for Frames<'m> {
    type Item = Frame<'m>;

    fn next(&mut self) -> Option<Frame<'m>> {
        let body = self.body;
        let offset = self.offset;
        if offset + 8 > body.len() {
            return None;
        }
        let position = self.first + offset as u64;
        let word = u32_at(body, offset);
        if word == GAP_WORD {
            self.offset += 8;
            return Some(Frame::Gap { position });
        }
        let len = (word & LEN_MASK) as usize;
        let payload = body.get(offset + FRAME_HEADER..offset + FRAME_HEADER + len)?;
        self.offset += framed_len(len);
        Some(Frame::Record { position, payload })
    }
}

/// Packs consecutive records of one segment into a message, up to a byte
/// budget.
#[derive(Debug)]
pub struct RunBuilder {
    buf: Vec<u8>,
    header: Header,
    budget: usize,
    pending_gap: bool,
    payload_bytes: u64,
}

impl RunBuilder {
    /// Starts a run of journal `journal_id` at `first_position`, in the
    /// segment based at `segment_base` of `segment_bytes` capacity, whose
    /// records are at most `max_record_len` bytes; the message may grow to
    /// `budget` bytes (header included), except that a run always takes its
    /// first record.
    pub fn new(
        journal_id: u64,
        first_position: u64,
        segment_base: u64,
        segment_bytes: u32,
        max_record_len: u32,
        budget: usize,
    ) -> Self {
        let header = Header {
            journal_id,
            first_position,
            segment_base,
            segment_bytes,
            max_record_len,
            record_count: 0,
            flags: 0,
        };
        let mut buf = Vec::with_capacity(budget.clamp(HEADER_LEN, 1 << 20));
        buf.resize(HEADER_LEN, 0);
        Self {
            buf,
            header,
            budget,
            pending_gap: false,
            payload_bytes: 0,
        }
    }

    /// The header so far.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The position where the next frame goes.
    pub fn end_position(&self) -> u64 {
        self.header.first_position
            + (self.buf.len() - HEADER_LEN) as u64
            + if self.pending_gap { 8 } else { 0 }
    }

    /// Payload bytes of the run's records (framing not counted).
    pub fn payload_bytes(&self) -> u64 {
        self.payload_bytes
    }

    /// Records in the run.
    pub fn record_count(&self) -> u32 {
        self.header.record_count
    }

    /// Whether the run holds no frame.
    pub fn is_empty(&self) -> bool {
        self.buf.len() == HEADER_LEN && !self.pending_gap
    }

    /// The message's length so far.
    pub fn len(&self) -> usize {
        self.buf.len() + if self.pending_gap { 8 } else { 0 }
    }

    /// Notes that a batch marker's 8 bytes come next; they are written
    /// together with the record that follows them, so a run never ends in a
    /// gap.
    pub fn gap(&mut self) {
        self.pending_gap = true;
    }

    /// Appends a record if it fits the budget (or the run holds no record
    /// yet); returns whether it did.
    pub fn push(&mut self, payload: &[u8]) -> bool {
        let need = framed_len(payload.len()) + if self.pending_gap { 8 } else { 0 };
        if self.header.record_count > 0 && self.buf.len() + need > self.budget {
            return false;
        }
        if self.pending_gap {
            self.buf.extend_from_slice(&GAP_WORD.to_le_bytes());
            self.buf.extend_from_slice(&0u32.to_le_bytes());
            self.pending_gap = false;
        }
        let len = payload.len() as u32;
        let checksum = kekbit_nostd::record_checksum(payload).unwrap_or(0);
        self.buf
            .extend_from_slice(&(RECORD_TAG | (len & LEN_MASK)).to_le_bytes());
        self.buf.extend_from_slice(&checksum.to_le_bytes());
        self.buf.extend_from_slice(payload);
        self.buf.resize(self.buf.len().next_multiple_of(8), 0);
        self.header.record_count += 1;
        self.payload_bytes += payload.len() as u64;
        true
    }

    /// Ends the run as the end marker of a journal closed at its first
    /// position (the run must be empty).
    pub fn mark_closed(&mut self) {
        debug_assert!(self.is_empty());
        self.header.flags |= FLAG_CLOSED;
    }

    /// The message's bytes. A gap noted last is dropped (it belongs to the
    /// next run).
    pub fn finish(mut self) -> Vec<u8> {
        let header = self.header;
        header.encode(&mut self.buf[..HEADER_LEN]);
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_of(records: &[&[u8]]) -> Vec<u8> {
        let mut run = RunBuilder::new(9, 64, 0, 4096, 512, 4096);
        for r in records {
            assert!(run.push(r));
        }
        run.finish()
    }

    #[test]
    fn round_trip_with_gaps_and_empty_records() {
        let mut run = RunBuilder::new(9, 64, 0, 4096, 512, 4096);
        assert!(run.push(b""));
        run.gap();
        assert!(run.push(b"12345678"));
        assert!(run.push(b"x"));
        assert_eq!(run.end_position(), 64 + 8 + 8 + 16 + 16);
        let bytes = run.finish();
        let message = Message::parse(&bytes).unwrap();
        assert_eq!(message.header().record_count, 3);
        let frames: Vec<_> = message.frames().collect();
        assert_eq!(
            frames,
            [
                Frame::Record {
                    position: 64,
                    payload: b""
                },
                Frame::Gap { position: 72 },
                Frame::Record {
                    position: 80,
                    payload: b"12345678"
                },
                Frame::Record {
                    position: 96,
                    payload: b"x"
                },
            ]
        );
        assert_eq!(message.end_position(), 112);
    }

    #[test]
    fn budget_is_kept_but_a_first_record_always_fits() {
        let mut run = RunBuilder::new(1, 0, 0, 1 << 20, 1 << 16, 100);
        assert!(
            run.push(&[7; 1000]),
            "the first record is taken whatever its size"
        );
        assert!(!run.push(b"a"));
        let mut run = RunBuilder::new(1, 0, 0, 1 << 20, 1 << 16, HEADER_LEN + 32);
        assert!(run.push(b"a"));
        assert!(run.push(b"b"));
        assert!(!run.push(b"c"), "exactly full");
        assert_eq!(run.len(), HEADER_LEN + 32);
        let mut run = RunBuilder::new(1, 0, 0, 1 << 20, 1 << 16, HEADER_LEN + 32);
        assert!(run.push(b"a"));
        run.gap();
        assert!(!run.push(b"b"), "a gap counts against the budget");
    }

    #[test]
    fn closed_marker() {
        let mut run = RunBuilder::new(3, 800, 512, 4096, 64, 4096);
        run.mark_closed();
        let bytes = run.finish();
        let message = Message::parse(&bytes).unwrap();
        assert!(message.header().is_closed_marker());
        assert_eq!(message.end_position(), 800);
        assert_eq!(message.frames().count(), 0);
    }

    #[test]
    fn every_damage_is_a_typed_error() {
        let good = run_of(&[b"abc", b"defgh"]);
        assert!(Message::parse(&good).is_ok());
        assert_eq!(
            Message::parse(&good[..10]).unwrap_err(),
            FormatError::Short { len: 10 }
        );
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(Message::parse(&bad).unwrap_err(), FormatError::BadMagic);
        let mut bad = good.clone();
        bad[VERSION_OFFSET] = 2;
        assert_eq!(
            Message::parse(&bad).unwrap_err(),
            FormatError::Version { found: 2 }
        );
        let mut bad = good.clone();
        bad[FLAGS_OFFSET] = 2;
        assert!(matches!(
            Message::parse(&bad),
            Err(FormatError::Flags { .. })
        ));
        let mut bad = good.clone();
        bad[RECORD_COUNT_OFFSET] = 3;
        assert!(matches!(
            Message::parse(&bad),
            Err(FormatError::Field { .. })
        ));
        let mut bad = good.clone();
        bad[HEADER_LEN + 9] ^= 1; // a payload byte: the checksum catches it
        assert!(matches!(
            Message::parse(&bad),
            Err(FormatError::Frame { offset: 0, .. })
        ));
        let mut bad = good.clone();
        bad[HEADER_LEN] = 0xFF; // the length runs past the body
        assert!(matches!(
            Message::parse(&bad),
            Err(FormatError::Frame { .. })
        ));
        let mut bad = good.clone();
        bad.truncate(bad.len() - 8);
        assert!(Message::parse(&bad).is_err());
        let mut bad = good.clone();
        bad[SEGMENT_BYTES_OFFSET..SEGMENT_BYTES_OFFSET + 4].copy_from_slice(&64u32.to_le_bytes());
        assert!(matches!(
            Message::parse(&bad),
            Err(FormatError::Field { .. })
        ));
        // Every single-byte truncation and every bit flip of the header is an
        // error or parses to a self-consistent message; never a panic.
        for cut in 0..good.len() {
            let _ = Message::parse(&good[..cut]);
        }
        for bit in 0..good.len() * 8 {
            let mut flipped = good.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            if let Ok(m) = Message::parse(&flipped) {
                let _ = m.frames().count();
            }
        }
    }

    #[test]
    fn gaps_must_precede_a_record() {
        let mut bytes = run_of(&[b"abc"]);
        bytes.extend_from_slice(&GAP_WORD.to_le_bytes());
        bytes.extend_from_slice(&[0; 4]);
        assert!(matches!(
            Message::parse(&bytes),
            Err(FormatError::Frame { .. })
        ));
    }

    #[test]
    fn largest_record_the_segment_allows() {
        let max = 1000;
        let mut run = RunBuilder::new(1, 0, 0, 4096, max, 1 << 16);
        assert!(run.push(&vec![1; max as usize]));
        assert!(Message::parse(&run.finish()).is_ok());
        let mut run = RunBuilder::new(1, 0, 0, 4096, max - 1, 1 << 16);
        assert!(run.push(&vec![1; max as usize]));
        assert!(Message::parse(&run.finish()).is_err());
    }
}

#[cfg(test)]
mod format_doc {
    use super::*;

    /// `docs/FORMAT.md`'s relay table and these constants agree.
    #[test]
    fn the_documented_table_matches_the_constants() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/FORMAT.md");
        let doc = std::fs::read_to_string(path).expect("docs/FORMAT.md is readable");
        let section = doc
            .split("# Relay messages")
            .nth(1)
            .expect("a relay section");
        // Up to the next part of the document.
        let section = section.split("\n# ").next().unwrap_or(section);
        let rows: Vec<(usize, usize, String)> = section
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let offset = cells.get(1)?.parse().ok()?;
                let size = cells.get(2)?.parse().ok()?;
                Some((offset, size, cells.get(3)?.to_string()))
            })
            .collect();
        let expected = [
            ("magic", MAGIC_OFFSET, 4),
            ("version", VERSION_OFFSET, 2),
            ("header_len", HEADER_LEN_OFFSET, 2),
            ("journal_id", JOURNAL_ID_OFFSET, 8),
            ("first_position", FIRST_POSITION_OFFSET, 8),
            ("segment_base", SEGMENT_BASE_OFFSET, 8),
            ("segment_bytes", SEGMENT_BYTES_OFFSET, 4),
            ("max_record_len", MAX_RECORD_LEN_OFFSET, 4),
            ("record_count", RECORD_COUNT_OFFSET, 4),
            ("flags", FLAGS_OFFSET, 4),
        ];
        assert_eq!(rows.len(), expected.len(), "{rows:?}");
        for ((offset, size, name), (e_name, e_offset, e_size)) in rows.iter().zip(expected) {
            assert_eq!((name.as_str(), *offset, *size), (e_name, e_offset, e_size));
        }
        assert_eq!(FLAGS_OFFSET + 4, HEADER_LEN);
        assert!(section.contains("`0x80000000 | len`") && section.contains("`0x40000000`"));
        assert_eq!(GAP_WORD, 0x4000_0000);
        assert_eq!(RECORD_TAG, 0x8000_0000);
    }
}
