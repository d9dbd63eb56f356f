//! Every error the core returns: typed, `Display`ed, and `core::error::Error`.

use core::fmt;

/// Why memory cannot hold a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RegionError {
    /// The base pointer was null.
    Null,
    /// The base is not aligned to `required` bytes; it is `misalignment` past a boundary.
    Misaligned {
        /// Bytes past the last aligned address.
        misalignment: usize,
        /// The alignment a region needs.
        required: usize,
    },
    /// The region cannot hold a header and the smallest record area.
    TooSmall {
        /// The region's length.
        len: usize,
        /// The smallest length that works.
        min: usize,
    },
}

impl fmt::Display for RegionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Null => f.write_str("region base pointer is null"),
            Self::Misaligned {
                misalignment,
                required,
            } => write!(
                f,
                "region base is misaligned: {misalignment} bytes past a {required}-byte boundary"
            ),
            Self::TooSmall { len, min } => {
                write!(
                    f,
                    "region of {len} bytes is too small: a channel needs at least {min}"
                )
            }
        }
    }
}

impl core::error::Error for RegionError {}

/// Why a channel header is not valid: each problem has its own variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HeaderError {
    /// Fewer bytes than a header.
    Truncated {
        /// Bytes available.
        len: usize,
        /// Bytes a header needs.
        needed: usize,
    },
    /// The region's base is not 8-byte aligned.
    Misaligned {
        /// Bytes past the last aligned address.
        misalignment: usize,
    },
    /// The first 8 bytes are not the kekbit signature: not a channel, or not
    /// finished being created.
    BadSignature {
        /// The bytes found.
        found: [u8; 8],
    },
    /// A format version this build cannot read.
    UnsupportedVersion {
        /// The version found.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// Flag bits this version does not define.
    UnknownFlags {
        /// The unknown bits.
        flags: u32,
    },
    /// The stored header checksum does not match the header's bytes.
    BadHeaderChecksum {
        /// The checksum stored in the header.
        stored: u32,
        /// The checksum of the bytes found.
        computed: u32,
    },
    /// The capacity is not a multiple of 8, or outside the allowed range.
    CapacityOutOfRange {
        /// The capacity found.
        capacity: u32,
        /// The smallest capacity allowed.
        min: u32,
    },
    /// The capacity needs more bytes than the region has.
    CapacityExceedsRegion {
        /// The capacity of the record area.
        capacity: u32,
        /// Bytes the region has for records, after the header.
        available: usize,
    },
    /// The maximum record length is zero, or larger than a record can be in
    /// this capacity.
    MaxRecordLenOutOfRange {
        /// The maximum record length found.
        max_record_len: u32,
        /// The largest value allowed for this capacity.
        limit: u32,
    },
    /// A tick unit code this version does not define.
    UnknownTickUnit {
        /// The code found.
        code: u32,
    },
    /// A reserved header byte is not zero.
    ReservedNotZero {
        /// Offset of the first non-zero reserved byte.
        offset: usize,
    },
    /// A journal id or base position in a channel that is not a journal segment.
    SegmentFieldsWithoutFlag {
        /// The journal id found.
        journal_id: u64,
        /// The base position found.
        base_position: u64,
    },
    /// A segment's base position is not a multiple of 8, or its record area
    /// would run past the largest journal position.
    BasePositionOutOfRange {
        /// The base position found.
        base_position: u64,
    },
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { len, needed } => {
                write!(f, "header truncated: {len} bytes, a header needs {needed}")
            }
            Self::Misaligned { misalignment } => {
                write!(
                    f,
                    "channel is misaligned by {misalignment} bytes (needs 8-byte alignment)"
                )
            }
            Self::BadSignature { found } => {
                write!(f, "not a kekbit channel: signature is {found:02x?}")
            }
            Self::UnsupportedVersion { found, supported } => {
                write!(
                    f,
                    "unsupported format version {found} (this build reads version {supported})"
                )
            }
            Self::UnknownFlags { flags } => write!(f, "unknown header flags {flags:#010x}"),
            Self::BadHeaderChecksum { stored, computed } => write!(
                f,
                "header checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            Self::CapacityOutOfRange { capacity, min } => write!(
                f,
                "capacity {capacity} is invalid: it must be a multiple of 8 and at least {min}"
            ),
            Self::CapacityExceedsRegion {
                capacity,
                available,
            } => write!(
                f,
                "capacity {capacity} exceeds the {available} bytes available after the header"
            ),
            Self::MaxRecordLenOutOfRange {
                max_record_len,
                limit,
            } => write!(
                f,
                "maximum record length {max_record_len} is out of range (1..={limit})"
            ),
            Self::UnknownTickUnit { code } => write!(f, "unknown tick unit code {code}"),
            Self::ReservedNotZero { offset } => {
                write!(f, "reserved header byte at offset {offset:#x} is not zero")
            }
            Self::SegmentFieldsWithoutFlag {
                journal_id,
                base_position,
            } => write!(
                f,
                "journal id {journal_id} and base position {base_position} in a channel not flagged as a journal segment"
            ),
            Self::BasePositionOutOfRange { base_position } => write!(
                f,
                "segment base position {base_position} is not a multiple of 8 or leaves no room for the segment"
            ),
        }
    }
}

impl core::error::Error for HeaderError {}

/// Why a record was not written. A failed write publishes no record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WriteError {
    /// The record is longer than the channel's maximum record length. The
    /// channel is unchanged.
    TooLarge {
        /// The record's length.
        len: usize,
        /// The channel's maximum record length.
        max: u32,
    },
    /// The record does not fit in the space left. The writer has marked the
    /// channel full: readers see every earlier record, then
    /// [`ReadError::Full`], and no later write succeeds: each one returns
    /// this same error, with the figures of the write that filled it.
    Full {
        /// Bytes the record needed: its payload plus 8 bytes of framing
        /// (before padding to 8, which never changes whether it fits).
        needed: u64,
        /// Bytes that were left for records.
        remaining: u32,
    },
    /// The channel was closed; nothing more can be written. (A channel
    /// marked full keeps answering [`WriteError::Full`].)
    Closed,
    /// A grant was committed with more bytes than it reserved.
    CommitTooLong {
        /// Bytes passed to `commit`.
        committed: usize,
        /// Bytes the grant reserved.
        reserved: usize,
    },
    /// The record's encoder failed; nothing was published.
    Encode(EncodeError),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooLarge { len, max } => {
                write!(
                    f,
                    "record of {len} bytes exceeds the channel's maximum of {max}"
                )
            }
            Self::Full { needed, remaining } => write!(
                f,
                "channel full: the record needs {needed} bytes, {remaining} are left"
            ),
            Self::Closed => f.write_str("channel is closed"),
            Self::CommitTooLong {
                committed,
                reserved,
            } => {
                write!(
                    f,
                    "commit of {committed} bytes exceeds the {reserved} bytes reserved"
                )
            }
            Self::Encode(e) => write!(f, "record encoder failed: {e}"),
        }
    }
}

impl core::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Encode(e) => Some(e),
            _ => None,
        }
    }
}

impl From<EncodeError> for WriteError {
    fn from(e: EncodeError) -> Self {
        Self::Encode(e)
    }
}

/// An encoder could not encode its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EncodeError {
    /// What went wrong, for the error message.
    pub reason: &'static str,
}

impl EncodeError {
    /// An encoding error with a short, static reason.
    ///
    /// # Example
    ///
    /// ```
    /// let e = kekbit_nostd::EncodeError::new("value out of range");
    /// assert_eq!(e.to_string(), "value out of range");
    /// ```
    pub const fn new(reason: &'static str) -> Self {
        Self { reason }
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason)
    }
}

impl core::error::Error for EncodeError {}

impl embedded_io::Error for EncodeError {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::Other
    }
}

/// What is wrong with the bytes at a position in the record area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Corruption {
    /// A commit word that is neither empty, a record, nor an end marker.
    BadCommitWord {
        /// The word found.
        word: u32,
    },
    /// A record longer than the header's maximum record length.
    LengthExceedsMax {
        /// The length found.
        len: u32,
        /// The header's maximum.
        max: u32,
    },
    /// A record that would run past the end of the record area.
    LengthExceedsCapacity {
        /// The length found.
        len: u32,
        /// Bytes left in the record area at this position.
        remaining: u32,
    },
    /// A batch marker whose span is zero, not a multiple of 8, or runs past
    /// the end of the record area.
    BadBatchSpan {
        /// The span found.
        span: u32,
        /// Bytes left in the record area at this position.
        remaining: u32,
    },
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BadCommitWord { word } => write!(f, "invalid commit word {word:#010x}"),
            Self::LengthExceedsMax { len, max } => {
                write!(f, "record length {len} exceeds the maximum {max}")
            }
            Self::LengthExceedsCapacity { len, remaining } => write!(
                f,
                "record length {len} runs past the end of the channel ({remaining} bytes left)"
            ),
            Self::BadBatchSpan { span, remaining } => write!(
                f,
                "batch span {span} is invalid here ({remaining} bytes left; a span is a non-zero multiple of 8)"
            ),
        }
    }
}

/// Why [`Reader::try_read`](crate::Reader::try_read) returned no record.
///
/// `Closed` and `Full` are how a channel ends: every record before them has
/// been read. The others mean the channel is damaged at `position`; the
/// reader stays there and reports the same error again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ReadError {
    /// The writer closed the channel; every record has been read.
    Closed,
    /// The channel filled up; every record has been read.
    Full,
    /// The bytes at `position` are not a valid record.
    Corrupt {
        /// Offset of the bad record in the record area.
        position: u32,
        /// What is wrong.
        corruption: Corruption,
    },
    /// The record at `position` does not match its checksum: torn by a crash
    /// or damaged since.
    Checksum {
        /// Offset of the record in the record area.
        position: u32,
        /// The checksum stored with the record.
        stored: u32,
        /// The checksum of the bytes found.
        computed: u32,
    },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Closed => f.write_str("channel closed"),
            Self::Full => f.write_str("channel full"),
            Self::Corrupt {
                position,
                corruption,
            } => {
                write!(f, "corrupt record at offset {position}: {corruption}")
            }
            Self::Checksum {
                position,
                stored,
                computed,
            } => write!(
                f,
                "checksum mismatch in record at offset {position}: stored {stored:#010x}, computed {computed:#010x}"
            ),
        }
    }
}

impl core::error::Error for ReadError {}

/// Why [`Reader::seek`](crate::Reader::seek) refused a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SeekError {
    /// The position is not where a record starts.
    NotARecordBoundary {
        /// The position asked for.
        position: u32,
    },
    /// The position lies past the committed records.
    BeyondEnd {
        /// The position asked for.
        position: u32,
        /// Where the committed records end.
        end: u32,
    },
    /// The walk to the position met a damaged or end record.
    Read(ReadError),
}

impl fmt::Display for SeekError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NotARecordBoundary { position } => {
                write!(f, "position {position} is not a record boundary")
            }
            Self::BeyondEnd { position, end } => {
                write!(
                    f,
                    "position {position} is beyond the committed records, which end at {end}"
                )
            }
            Self::Read(e) => write!(f, "cannot reach the position: {e}"),
        }
    }
}

impl core::error::Error for SeekError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Read(e) => Some(e),
            _ => None,
        }
    }
}
