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
pub const VERSION: u32 = 1;

/// Header flag bit 0: every record carries a CRC32C of its length and payload.
pub const FLAG_CHECKSUMS: u32 = 1 << 0;
/// Every flag bit this version defines; a header with any other bit is rejected.
pub const KNOWN_FLAGS: u32 = FLAG_CHECKSUMS;

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
/// Offset of the `u32` CRC32C of every immutable byte before it.
pub const HEADER_CHECKSUM_OFFSET: usize = TICK_UNIT_OFFSET + 4;
/// Length of the immutable header, checksum included.
pub const IMMUTABLE_HEADER_LEN: usize = HEADER_CHECKSUM_OFFSET + 4;

// --- The writer-owned words: stored by the writer, only loaded by readers. ---

/// Offset of the `u32` heartbeat word: the low 32 bits of the writer's clock,
/// in the channel's tick unit, at its last heartbeat. It starts a new cache
/// line so heartbeats do not disturb the immutable line readers keep cached.
pub const HEARTBEAT_OFFSET: usize = IMMUTABLE_HEADER_LEN;
/// Length of the whole header: the record area starts here.
pub const HEADER_LEN: usize = HEARTBEAT_OFFSET + 64;

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

/// Commit word: nothing has been published here yet (end of written data).
pub const COMMIT_EMPTY: u32 = 0;
/// Commit word tag, top two bits `10`: a committed record; the low 30 bits
/// are its payload length.
pub const COMMIT_RECORD_TAG: u32 = 0b10 << 30;
/// Mask of the length bits of a record commit word.
pub const COMMIT_LEN_MASK: u32 = (1 << 30) - 1;
/// Mask of the two tag bits of a commit word.
pub const COMMIT_TAG_MASK: u32 = 0b11 << 30;
/// Commit word: the writer closed the channel here. Terminal.
pub const COMMIT_CLOSED: u32 = 0xC000_0001;
/// Commit word: the next record did not fit; the channel is full. Terminal.
pub const COMMIT_FULL: u32 = 0xC000_0002;

/// The largest payload a record can carry: the length bits of a commit word.
pub const MAX_RECORD_LEN_LIMIT: u32 = COMMIT_LEN_MASK;
/// The smallest record area: one record of up to 8 bytes plus the end
/// marker, so that every valid channel can hold a record of at least 1 byte.
pub const MIN_CAPACITY: u32 = (PAYLOAD_OFFSET + RECORD_ALIGN + MARKER_LEN) as u32;
/// The largest record area: positions are `u32` and 8-byte aligned.
pub const MAX_CAPACITY: u32 = !(RECORD_ALIGN as u32 - 1); // u32::MAX rounded down to 8

const _: () = assert!(IMMUTABLE_HEADER_LEN == 64);
const _: () = assert!(HEADER_LEN == 128);
const _: () = assert!(HEADER_LEN % RECORD_ALIGN == 0);
const _: () = assert!(HEARTBEAT_OFFSET % 64 == 0);
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
