//! Record framing: what a commit word says.

use crate::format::*;

/// A commit word, decoded. Anything else is corruption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Commit {
    /// Nothing published here yet.
    Empty,
    /// A record with this payload length (at most `MAX_RECORD_LEN_LIMIT`).
    Record(u32),
    /// The writer closed the channel here.
    Closed,
    /// The channel filled up here.
    Full,
    /// A batch marker: the records in the next `span` bytes were all
    /// published by this word.
    Batch(u32),
    /// A word the format does not define.
    Invalid(u32),
}

/// Decodes a commit word.
#[inline]
pub(crate) const fn classify(word: u32) -> Commit {
    match word {
        COMMIT_EMPTY => Commit::Empty,
        COMMIT_CLOSED => Commit::Closed,
        COMMIT_FULL => Commit::Full,
        w if w & COMMIT_TAG_MASK == COMMIT_RECORD_TAG => Commit::Record(w & COMMIT_LEN_MASK),
        w if w & COMMIT_TAG_MASK == COMMIT_BATCH_TAG => Commit::Batch(w & COMMIT_LEN_MASK),
        w => Commit::Invalid(w),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_kind_of_word() {
        assert_eq!(classify(0), Commit::Empty);
        assert_eq!(classify(COMMIT_RECORD_TAG), Commit::Record(0));
        assert_eq!(classify(COMMIT_RECORD_TAG | 77), Commit::Record(77));
        assert_eq!(classify(u32::MAX >> 1), Commit::Batch(COMMIT_LEN_MASK));
        assert_eq!(classify(COMMIT_BATCH_TAG | 64), Commit::Batch(64));
        assert_eq!(classify(COMMIT_CLOSED), Commit::Closed);
        assert_eq!(classify(COMMIT_FULL), Commit::Full);
        assert_eq!(classify(0xC000_0003), Commit::Invalid(0xC000_0003));
        assert_eq!(classify(1), Commit::Invalid(1));
    }
}
