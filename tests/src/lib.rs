//! Shared pieces of kekbit's cross-process tests: a deterministic record
//! stream that writer and reader processes both generate, and a digest.
//!
//! The helper binary `kekbit-helper` (in `src/bin/`) plays writer, reader,
//! racing creator or inspector; `journal-helper` plays a journal's writer
//! or group committer; the tests in `tests/` spawn them as separate
//! processes. [`journal`] holds what the journal tests share: their record
//! stream and the power-loss simulation.

use std::path::PathBuf;

pub mod journal;

/// The root README's examples, run as doctests here (the one crate that
/// depends on every kekbit library crate).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// SplitMix64: a tiny, fast generator; good enough to make test data.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The largest record [`record`] makes.
pub const MAX_RECORD_LEN: usize = 4096;

/// Writes record `index` of stream `seed` into `out` (replacing its
/// contents): mixed sizes, mostly small, some up to [`MAX_RECORD_LEN`].
pub fn record(seed: u64, index: u64, out: &mut Vec<u8>) {
    let mut rng = SplitMix::new(seed ^ index.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    let pick = rng.next_u64();
    let len = match pick % 100 {
        0..70 => (pick >> 8) % 65,
        70..97 => 65 + (pick >> 8) % 448,
        _ => 513 + (pick >> 8) % (MAX_RECORD_LEN as u64 - 512),
    } as usize;
    out.clear();
    while out.len() + 8 <= len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    let rest = len - out.len();
    out.extend_from_slice(&rng.next_u64().to_le_bytes()[..rest]);
}

/// An order-sensitive digest of a record stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest(u64);

impl Default for Digest {
    fn default() -> Self {
        Self(0xCBF2_9CE4_8422_2325)
    }
}

impl Digest {
    /// Folds one record in: its length, then its bytes eight at a time.
    pub fn add(&mut self, record: &[u8]) {
        self.mix(record.len() as u64);
        let mut chunks = record.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let mut word = [0u8; 8];
        word[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.mix(u64::from_le_bytes(word));
    }

    fn mix(&mut self, word: u64) {
        self.0 = (self.0 ^ word)
            .wrapping_mul(0x0000_0100_0000_01B3)
            .rotate_left(29);
    }

    /// The digest's value.
    pub fn value(&self) -> u64 {
        self.0
    }
}

/// A fresh folder for one test's channels: on `/dev/shm` where it exists,
/// named after the test and this process, emptied first.
pub fn scratch_dir(test: &str) -> PathBuf {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("kekbit-tests-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch folder");
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_deterministic_and_mixed() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut lens = Vec::new();
        for i in 0..2000 {
            record(7, i, &mut a);
            record(7, i, &mut b);
            assert_eq!(a, b);
            lens.push(a.len());
        }
        assert!(lens.iter().any(|&l| l == 0 || l < 16));
        assert!(lens.iter().any(|&l| l > 1024));
        assert!(lens.iter().all(|&l| l <= MAX_RECORD_LEN));
    }

    #[test]
    fn digest_depends_on_order_and_boundaries() {
        let mut ab = Digest::default();
        ab.add(b"a");
        ab.add(b"b");
        let mut ba = Digest::default();
        ba.add(b"b");
        ba.add(b"a");
        let mut joined = Digest::default();
        joined.add(b"ab");
        assert_ne!(ab, ba);
        assert_ne!(ab, joined);
    }
}
