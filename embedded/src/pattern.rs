//! Record contents that a reader can check byte for byte without a copy of
//! what was written: every byte is a function of a seed and its index.

use embedded_io::Write;
use kekbit_nostd::{Encode, EncodeError, RecordSink, SequenceHandler};

/// `len` bytes derived from `seed`; seeds differ per record, so a record
/// torn between two writes, or read at the wrong place, does not match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Body {
    pub seed: u64,
    pub len: usize,
}

impl Body {
    /// The body the interrupt-fed channels carry for sequence number `seq`
    /// on `channel`: 0 to [`FEED_MAX_BODY`] bytes.
    pub fn feed(channel: u8, seq: u64) -> Self {
        let seed = seq ^ (u64::from(channel) << 56);
        let len = (seq.wrapping_mul(13).wrapping_add(u64::from(channel) * 7)
            % (FEED_MAX_BODY as u64 + 1)) as usize;
        Self { seed, len }
    }

    /// Byte `i` of the body, given the body's [`Body::key`].
    fn byte(key: u32, i: usize) -> u8 {
        // Cheap on a Cortex-M0 (no 64-bit multiply per byte), and varies
        // with the record and with the position in it.
        key.rotate_left(i as u32 % 32) as u8 ^ i as u8 ^ (i >> 8) as u8
    }

    /// A 32-bit hash of the seed, computed once per body.
    fn key(&self) -> u32 {
        let mixed = self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (mixed >> 32) as u32 ^ mixed as u32
    }

    /// Writes the body into `out`, which must be exactly `len` bytes.
    pub fn fill(&self, out: &mut [u8]) {
        let key = self.key();
        for (i, b) in out.iter_mut().enumerate() {
            *b = Self::byte(key, i);
        }
    }

    /// Whether `bytes` is exactly this body.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        let key = self.key();
        bytes.len() == self.len
            && bytes
                .iter()
                .enumerate()
                .all(|(i, &b)| b == Self::byte(key, i))
    }

    /// Whether `record` is `seq` (as `SequenceHandler` writes it) followed by
    /// this body.
    pub fn matches_sequenced(&self, seq: u64, record: &[u8]) -> bool {
        SequenceHandler::split(record)
            .is_some_and(|(found, body)| found == seq && self.matches(body))
    }
}

/// The longest body on the interrupt-fed channels.
pub const FEED_MAX_BODY: usize = 40;

/// Encodes straight into the channel, in chunks, with no buffer of the
/// whole record.
impl Encode for Body {
    fn encode(&self, sink: &mut RecordSink<'_>) -> Result<(), EncodeError> {
        let key = self.key();
        let mut chunk = [0u8; 16];
        let mut at = 0;
        while at < self.len {
            let n = chunk.len().min(self.len - at);
            for (i, b) in chunk[..n].iter_mut().enumerate() {
                *b = Self::byte(key, at + i);
            }
            sink.write_all(&chunk[..n])?;
            at += n;
        }
        Ok(())
    }
}
