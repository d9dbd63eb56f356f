//! What the read commands share: opening a channel with errors that name
//! the offset, and walking its records to the end.

use std::path::Path;
use std::time::Duration;

use kekbit_nostd::format::{
    BASE_POSITION_OFFSET, CAPACITY_OFFSET, FLAGS_OFFSET, HEADER_CHECKSUM_OFFSET, HEADER_LEN,
    JOURNAL_ID_OFFSET, MAX_RECORD_LEN_OFFSET, SIGNATURE_OFFSET, TICK_UNIT_OFFSET, VERSION_OFFSET,
};
use kekbit_nostd::{HeaderError, ReadError, TickUnit};
use kekbit_std::{ChannelError, ChannelReader, ShmReader, TrustError};

use crate::error::CliError;

/// Opens the channel at `path` read-only; with `shared` (the read
/// commands' `--shared`), also a file that other users may write. Header
/// damage is reported with the offset of the field at fault.
pub fn open(path: &Path, shared: bool) -> Result<ShmReader, CliError> {
    if path.is_dir() {
        return Err(CliError::path(path, "is a folder, not a channel file"));
    }
    let channel = if shared {
        // SAFETY: `--shared` is the user's word that nobody but the
        // channel's kekbit writer writes or truncates the file while this
        // process reads it, as the option's help says.
        unsafe { ShmReader::open_shared(path) }
    } else {
        ShmReader::open(path)
    };
    channel.map_err(describe_open_error)
}

/// A reader at the first record of `channel`.
pub fn reader(channel: &ShmReader) -> Result<ChannelReader<'_>, CliError> {
    channel.reader().map_err(describe_open_error)
}

/// Rewrites header errors so they name where in the file the fault lies.
pub fn describe_open_error(e: ChannelError) -> CliError {
    match e {
        // The header is sound (its checksum matched) but the file is too
        // short for it: the file was cut.
        ChannelError::Header {
            path,
            source:
                HeaderError::CapacityExceedsRegion {
                    capacity,
                    available,
                },
        } => {
            let file_len = HEADER_LEN as u64 + available as u64;
            let expected = HEADER_LEN as u64 + u64::from(capacity);
            CliError::Path {
                path,
                cause: format!(
                    "truncated at offset {file_len}: the file is {file_len} bytes but its \
                     header describes {expected}"
                ),
            }
        }
        ChannelError::Header { path, source } => {
            let cause = match header_fault_offset(&source) {
                Some(offset) => format!("bad channel header at offset {offset}: {source}"),
                None => format!("bad channel header: {source}"),
            };
            CliError::Path { path, cause }
        }
        ChannelError::LengthMismatch {
            path,
            file_len,
            expected,
        } => {
            let cause = if file_len < expected {
                format!(
                    "truncated at offset {file_len}: the file is {file_len} bytes but its \
                     header describes {expected}"
                )
            } else {
                format!(
                    "unexpected data at offset {expected}: the file is {file_len} bytes but its \
                     header describes {expected}"
                )
            };
            CliError::Path { path, cause }
        }
        // `--shared` opens what others may write, but never follows a link.
        ChannelError::Untrusted {
            path,
            source: source @ (TrustError::Owner { .. } | TrustError::Writable { .. }),
        } => CliError::Path {
            path,
            cause: format!(
                "refused: {source}; pass --shared to read it if you trust every user who can \
                 write it"
            ),
        },
        other => CliError::Channel(other),
    }
}

/// The file offset of the header field a header error is about.
///
/// # Example
///
/// ```
/// use kekbit_nostd::HeaderError;
/// use kekbit_cli::inspect::header_fault_offset;
/// let e = HeaderError::UnknownTickUnit { code: 9 };
/// assert_eq!(header_fault_offset(&e), Some(kekbit_nostd::format::TICK_UNIT_OFFSET));
/// ```
pub fn header_fault_offset(e: &HeaderError) -> Option<usize> {
    Some(match e {
        HeaderError::Truncated { len, .. } => *len,
        HeaderError::Misaligned { .. } => return None,
        HeaderError::BadSignature { .. } => SIGNATURE_OFFSET,
        HeaderError::UnsupportedVersion { .. } => VERSION_OFFSET,
        HeaderError::UnknownFlags { .. } => FLAGS_OFFSET,
        HeaderError::BadHeaderChecksum { .. } => HEADER_CHECKSUM_OFFSET,
        HeaderError::CapacityOutOfRange { .. } | HeaderError::CapacityExceedsRegion { .. } => {
            CAPACITY_OFFSET
        }
        HeaderError::MaxRecordLenOutOfRange { .. } => MAX_RECORD_LEN_OFFSET,
        HeaderError::UnknownTickUnit { .. } => TICK_UNIT_OFFSET,
        HeaderError::ReservedNotZero { offset } => *offset,
        HeaderError::SegmentFieldsWithoutFlag { .. } => JOURNAL_ID_OFFSET,
        HeaderError::BasePositionOutOfRange { .. } => BASE_POSITION_OFFSET,
    })
}

/// How the records of a channel end, as far as a walk got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// No record yet at the end position: the writer may add more.
    Open,
    /// A close marker.
    Closed,
    /// A full marker.
    Full,
    /// Damage: the walk stopped before it.
    Damaged(ReadError),
}

/// What a walk over every committed record found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walk {
    /// Records read.
    pub records: u64,
    /// Their payload bytes.
    pub payload_bytes: u64,
    /// Offset in the record area where the walk stopped: the end marker,
    /// the first unwritten record, or the damaged record.
    pub end_position: u32,
    /// What is at `end_position`.
    pub end: End,
}

/// Reads every record committed now, checking lengths and (when the
/// channel has them) checksums; stops at the end or at the first damage.
pub fn walk(reader: &mut ChannelReader<'_>) -> Walk {
    let mut records = 0u64;
    let mut payload_bytes = 0u64;
    let end = loop {
        match reader.try_read() {
            Ok(Some(record)) => {
                records += 1;
                payload_bytes += record.len() as u64;
            }
            Ok(None) => break End::Open,
            Err(e) => match e.read_error() {
                Some(ReadError::Closed) => break End::Closed,
                Some(ReadError::Full) => break End::Full,
                Some(damage) => break End::Damaged(damage),
                // `try_read` only fails with read errors.
                None => break End::Open,
            },
        }
    };
    Walk {
        records,
        payload_bytes,
        end_position: reader.position(),
        end,
    }
}

/// One line describing damage in the record area, with the offset in the
/// record area and in the file.
///
/// # Example
///
/// ```
/// use kekbit_nostd::{Corruption, ReadError};
/// let e = ReadError::Corrupt { position: 8, corruption: Corruption::BadCommitWord { word: 7 } };
/// assert_eq!(
///     kekbit_cli::inspect::describe_damage(&e),
///     "at record offset 8 (file offset 200): corrupt record: invalid commit word 0x00000007"
/// );
/// ```
pub fn describe_damage(e: &ReadError) -> String {
    let (position, what) = match *e {
        ReadError::Corrupt {
            position,
            corruption,
        } => (position, format!("corrupt record: {corruption}")),
        ReadError::Checksum {
            position,
            stored,
            computed,
        } => (
            position,
            format!("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"),
        ),
        ReadError::Closed | ReadError::Full => return e.to_string(),
    };
    format!(
        "at record offset {position} (file offset {}): {what}",
        HEADER_LEN as u64 + u64::from(position)
    )
}

/// The writer's state, judged now from the end of the records and the
/// heartbeat's age on the system clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The writer may still append, and has heartbeated within the timeout
    /// (or the channel has no timeout).
    Open,
    /// Closed by its writer.
    Closed,
    /// Filled up.
    Full,
    /// Open, but the writer has been silent past the channel's timeout.
    Abandoned,
    /// The record area is damaged.
    Damaged,
}

impl State {
    /// The state's name, as `info` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
            Self::Full => "full",
            Self::Abandoned => "abandoned",
            Self::Damaged => "damaged",
        }
    }
}

/// The state of a channel whose walk ended with `end`, whose heartbeat is
/// `heartbeat_age` old (`None`: in the future or too old to tell) and whose
/// timeout is `timeout` (zero: the writer is never called abandoned).
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use kekbit_cli::inspect::{End, State, state};
/// let timeout = Duration::from_millis(200);
/// assert_eq!(state(End::Open, Some(Duration::from_millis(50)), timeout), State::Open);
/// assert_eq!(state(End::Open, Some(Duration::from_secs(3)), timeout), State::Abandoned);
/// assert_eq!(state(End::Open, None, timeout), State::Abandoned);
/// assert_eq!(state(End::Open, None, Duration::ZERO), State::Open);
/// assert_eq!(state(End::Closed, None, timeout), State::Closed);
/// ```
pub fn state(end: End, heartbeat_age: Option<Duration>, timeout: Duration) -> State {
    match end {
        End::Closed => State::Closed,
        End::Full => State::Full,
        End::Damaged(_) => State::Damaged,
        End::Open if timeout.is_zero() => State::Open,
        End::Open => match heartbeat_age {
            Some(age) if age <= timeout => State::Open,
            _ => State::Abandoned,
        },
    }
}

/// `ticks` of `unit` as a duration, saturating.
pub fn ticks_to_duration(ticks: u64, unit: TickUnit) -> Duration {
    let nanos = u128::from(ticks) * u128::from(unit.nanos());
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    Duration::new(secs, (nanos % 1_000_000_000) as u32)
}

/// The unit's name, as `info` prints it.
pub fn unit_name(unit: TickUnit) -> &'static str {
    match unit {
        TickUnit::Nanos => "nanos",
        TickUnit::Micros => "micros",
        TickUnit::Millis => "millis",
        TickUnit::Seconds => "seconds",
    }
}

/// The unit's symbol, for figures in text.
pub fn unit_symbol(unit: TickUnit) -> &'static str {
    match unit {
        TickUnit::Nanos => "ns",
        TickUnit::Micros => "µs",
        TickUnit::Millis => "ms",
        TickUnit::Seconds => "s",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_header_error_but_misalignment_has_an_offset() {
        let cases = [
            (HeaderError::Truncated { len: 7, needed: 64 }, Some(7)),
            (HeaderError::Misaligned { misalignment: 4 }, None),
            (HeaderError::BadSignature { found: [0; 8] }, Some(0)),
            (
                HeaderError::UnsupportedVersion {
                    found: 2,
                    supported: 1,
                },
                Some(8),
            ),
            (HeaderError::UnknownFlags { flags: 2 }, Some(12)),
            (
                HeaderError::BadHeaderChecksum {
                    stored: 0,
                    computed: 1,
                },
                Some(124),
            ),
            (
                HeaderError::CapacityOutOfRange {
                    capacity: 3,
                    min: 16,
                },
                Some(32),
            ),
            (
                HeaderError::MaxRecordLenOutOfRange {
                    max_record_len: 0,
                    limit: 1,
                },
                Some(36),
            ),
            (HeaderError::UnknownTickUnit { code: 9 }, Some(56)),
            (HeaderError::ReservedNotZero { offset: 61 }, Some(61)),
            (
                HeaderError::SegmentFieldsWithoutFlag {
                    journal_id: 1,
                    base_position: 0,
                },
                Some(64),
            ),
            (
                HeaderError::BasePositionOutOfRange { base_position: 4 },
                Some(72),
            ),
        ];
        for (e, offset) in cases {
            assert_eq!(header_fault_offset(&e), offset, "{e}");
        }
    }

    #[test]
    fn damage_names_both_offsets() {
        let e = ReadError::Checksum {
            position: 16,
            stored: 1,
            computed: 2,
        };
        let text = describe_damage(&e);
        assert!(text.starts_with("at record offset 16 (file offset 208): checksum mismatch"));
    }

    #[test]
    fn states() {
        let t = Duration::from_secs(1);
        assert_eq!(state(End::Full, None, t), State::Full);
        let damage = ReadError::Corrupt {
            position: 0,
            corruption: kekbit_nostd::Corruption::BadCommitWord { word: 1 },
        };
        assert_eq!(state(End::Damaged(damage), None, t), State::Damaged);
        assert_eq!(state(End::Open, Some(t), t), State::Open);
        assert_eq!(
            state(End::Open, Some(t + Duration::from_nanos(1)), t),
            State::Abandoned
        );
        assert_eq!(State::Abandoned.name(), "abandoned");
        assert_eq!(
            ticks_to_duration(1500, TickUnit::Millis),
            Duration::from_millis(1500)
        );
        assert_eq!(
            ticks_to_duration(u64::MAX, TickUnit::Seconds).as_secs(),
            u64::MAX
        );
    }
}
