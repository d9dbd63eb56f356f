//! The byte layout of a channel, as constants.
//!
//! `docs/FORMAT.md` draws the same layout; a test keeps the two in agreement.
//! Each offset is chained from the one before it, and `const` assertions pin
//! the totals, so a field cannot move without the document's test failing.
//! Every multi-byte field is little-endian on every target.

/// The signature that opens every channel: `\x89KBT\r\n\x1a\n`.
///
/// Modelled on PNG's: the high-bit first byte catches 7-bit transports, the
/// CR LF pair catches line-ending conversion, `0x1a` stops DOS `type`, and the
/// final LF catches LF to CR LF conversion.
pub const SIGNATURE: [u8; 8] = [0x89, b'K', b'B', b'T', b'\r', b'\n', 0x1a, b'\n'];

/// The format version this crate writes and the only one it reads.
///
/// Version 2 widened the heartbeat to 64 bits, added the journal segment
/// fields and the epoch-time flag to the header, and defined the batch
/// marker commit word. See `docs/FORMAT.md` for the history.
pub const VERSION: u32 = 2;

/// Header flag bit 0: every record carries a CRC32C of its length and payload.
pub const FLAG_CHECKSUMS: u32 = 1 << 0;
/// Header flag bit 1: the time fields (creation time, heartbeat) count ticks
/// since the Unix epoch, so a reader with a clock of the same kind can judge
/// a heartbeat's age from its value alone.
pub const FLAG_EPOCH_TIME: u32 = 1 << 1;
/// Header flag bit 2: the channel is a segment of a journal; the journal id
/// and base position fields say which one and where it starts.
pub const FLAG_SEGMENT: u32 = 1 << 2;
/// Every flag bit this version defines; a header with any other bit is rejected.
pub const KNOWN_FLAGS: u32 = FLAG_CHECKSUMS | FLAG_EPOCH_TIME | FLAG_SEGMENT;

// --- The immutable header: written once by the writer, before any reader. ---

/// Offset of the 8-byte signature.
pub const SIGNATURE_OFFSET: usize = 0;
/// Offset of the `u32` format version.
pub const VERSION_OFFSET: usize = SIGNATURE_OFFSET + 8;
/// Offset of the `u32` flags.
pub const FLAGS_OFFSET: usize = VERSION_OFFSET + 4;
/// Offset of the `u64` writer id.
pub const WRITER_ID_OFFSET: usize = FLAGS_OFFSET + 4;
/// Offset of the `u64` channel id.
pub const CHANNEL_ID_OFFSET: usize = WRITER_ID_OFFSET + 8;
/// Offset of the `u32` capacity of the record area, in bytes.
pub const CAPACITY_OFFSET: usize = CHANNEL_ID_OFFSET + 8;
/// Offset of the `u32` maximum record payload length, in bytes.
pub const MAX_RECORD_LEN_OFFSET: usize = CAPACITY_OFFSET + 4;
/// Offset of the `u64` writer timeout, in ticks.
pub const TIMEOUT_OFFSET: usize = MAX_RECORD_LEN_OFFSET + 4;
/// Offset of the `u64` creation time, in ticks.
pub const CREATION_TIME_OFFSET: usize = TIMEOUT_OFFSET + 8;
/// Offset of the `u32` tick unit code.
pub const TICK_UNIT_OFFSET: usize = CREATION_TIME_OFFSET + 8;
/// Offset of 4 reserved bytes, zero, that align the fields after them.
pub const RESERVED_A_OFFSET: usize = TICK_UNIT_OFFSET + 4;
/// Offset of the `u64` id of the journal this channel is a segment of (0
/// unless [`FLAG_SEGMENT`]).
pub const JOURNAL_ID_OFFSET: usize = RESERVED_A_OFFSET + 4;
/// Offset of the `u64` journal position of this segment's first byte (0
/// unless [`FLAG_SEGMENT`]).
pub const BASE_POSITION_OFFSET: usize = JOURNAL_ID_OFFSET + 8;
/// Offset of the reserved bytes, zero, that fill the header to its checksum.
pub const RESERVED_B_OFFSET: usize = BASE_POSITION_OFFSET + 8;
/// Offset of the `u32` CRC32C of every immutable byte before it.
pub const HEADER_CHECKSUM_OFFSET: usize = 124;
/// Length of the immutable header, checksum included.
pub const IMMUTABLE_HEADER_LEN: usize = HEADER_CHECKSUM_OFFSET + 4;

// --- The writer-owned words: stored by the writer, only loaded by readers. ---

/// Offset of the `u32` heartbeat sequence word: even while the heartbeat
/// halves are stable, odd while the writer is storing them. It starts a new
/// cache line so heartbeats do not disturb the immutable lines readers keep
/// cached.
pub const HEARTBEAT_SEQ_OFFSET: usize = IMMUTABLE_HEADER_LEN;
/// Offset of the `u32` low half of the writer's clock at its last heartbeat.
pub const HEARTBEAT_LO_OFFSET: usize = HEARTBEAT_SEQ_OFFSET + 4;
/// Offset of the `u32` high half of the writer's clock at its last heartbeat.
pub const HEARTBEAT_HI_OFFSET: usize = HEARTBEAT_LO_OFFSET + 4;
/// Offset of the reserved rest of the writer-owned line.
pub const WRITER_RESERVED_OFFSET: usize = HEARTBEAT_HI_OFFSET + 4;
/// Length of the whole header: the record area starts here.
pub const HEADER_LEN: usize = HEARTBEAT_SEQ_OFFSET + 64;

// --- Records: each starts 8-byte aligned in the record area. ---

/// Alignment of every record, and so of every commit word.
pub const RECORD_ALIGN: usize = 8;
/// Offset, within a record, of its `u32` commit word (published last).
pub const COMMIT_WORD_OFFSET: usize = 0;
/// Offset, within a record, of its `u32` CRC32C (zero without checksums).
pub const RECORD_CHECKSUM_OFFSET: usize = COMMIT_WORD_OFFSET + 4;
/// Offset, within a record, of its payload; also the record header's length.
pub const PAYLOAD_OFFSET: usize = RECORD_CHECKSUM_OFFSET + 4;
/// Length of an end marker (closed or full): one commit word, padded.
pub const MARKER_LEN: usize = RECORD_ALIGN;
/// Length of a batch marker: its commit word, then the `u32` record count.
pub const BATCH_MARKER_LEN: usize = RECORD_ALIGN;
/// Offset, within a batch marker, of the `u32` count of records in the batch.
pub const BATCH_COUNT_OFFSET: usize = COMMIT_WORD_OFFSET + 4;

/// Commit word: nothing has been published here yet (end of written data).
pub const COMMIT_EMPTY: u32 = 0;
/// Commit word tag, top two bits `10`: a committed record; the low 30 bits
/// are its payload length.
pub const COMMIT_RECORD_TAG: u32 = 0b10 << 30;
/// Commit word tag, top two bits `01`: a batch marker; the low 30 bits are
/// the byte span of the records that follow it, all published by this one
/// word.
pub const COMMIT_BATCH_TAG: u32 = 0b01 << 30;
/// Mask of the length bits of a record commit word (and of a batch span).
pub const COMMIT_LEN_MASK: u32 = (1 << 30) - 1;
/// Mask of the two tag bits of a commit word.
pub const COMMIT_TAG_MASK: u32 = 0b11 << 30;
/// Commit word: the writer closed the channel here. Terminal.
pub const COMMIT_CLOSED: u32 = 0xC000_0001;
/// Commit word: the next record did not fit; the channel is full. Terminal.
pub const COMMIT_FULL: u32 = 0xC000_0002;

/// The largest payload a record can carry: the length bits of a commit word.
pub const MAX_RECORD_LEN_LIMIT: u32 = COMMIT_LEN_MASK;
/// The largest byte span one batch marker can cover: the length bits of its
/// commit word, rounded down to the record alignment. Longer batches are
/// published as several.
pub const MAX_BATCH_SPAN: u32 = COMMIT_LEN_MASK & !(RECORD_ALIGN as u32 - 1);
/// The smallest record area: one record of up to 8 bytes plus the end
/// marker, so that every valid channel can hold a record of at least 1 byte.
pub const MIN_CAPACITY: u32 = (PAYLOAD_OFFSET + RECORD_ALIGN + MARKER_LEN) as u32;
/// The largest record area: positions are `u32` and 8-byte aligned.
pub const MAX_CAPACITY: u32 = !(RECORD_ALIGN as u32 - 1); // u32::MAX rounded down to 8

const _: () = assert!(RESERVED_B_OFFSET <= HEADER_CHECKSUM_OFFSET);
const _: () = assert!(JOURNAL_ID_OFFSET % 8 == 0 && BASE_POSITION_OFFSET % 8 == 0);
const _: () = assert!(IMMUTABLE_HEADER_LEN == 128);
const _: () = assert!(HEADER_LEN == 192);
const _: () = assert!(HEADER_LEN % 64 == 0);
const _: () = assert!(HEARTBEAT_SEQ_OFFSET % 64 == 0);
const _: () = assert!(WRITER_RESERVED_OFFSET < HEADER_LEN);
const _: () = assert!(PAYLOAD_OFFSET == RECORD_ALIGN);
const _: () = assert!(COMMIT_CLOSED & COMMIT_TAG_MASK == COMMIT_TAG_MASK);
const _: () = assert!(COMMIT_FULL & COMMIT_TAG_MASK == COMMIT_TAG_MASK);
const _: () = assert!(MIN_CAPACITY == 24);

/// Rounds a payload length up to the record alignment, without overflow for
/// any length a commit word can hold.
#[inline]
pub(crate) const fn padded(len: u32) -> u32 {
    (len + (RECORD_ALIGN as u32 - 1)) & !(RECORD_ALIGN as u32 - 1)
}

/// The bytes a record of `len` payload bytes occupies, header included.
#[inline]
pub(crate) const fn record_span(len: u32) -> u32 {
    PAYLOAD_OFFSET as u32 + padded(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_span_pads_to_eight() {
        assert_eq!(record_span(0), 8);
        assert_eq!(record_span(1), 16);
        assert_eq!(record_span(8), 16);
        assert_eq!(record_span(9), 24);
        assert_eq!(record_span(MAX_RECORD_LEN_LIMIT), 8 + (1 << 30));
    }
}
