//! The relay's errors: one typed enum, each variant naming what it is about.

use std::fmt;
use std::path::PathBuf;

use crate::journal::JournalError;
use crate::message::FormatError;

/// Why a push or a pull stopped. Transient trouble (the server going away,
/// a timed-out ack) is retried, not returned; these are the conditions a
/// retry cannot fix.
#[derive(Debug)]
#[non_exhaustive]
pub enum RelayError {
    /// The server could not be reached at start-up.
    Connect {
        /// The URL given.
        server: String,
        /// What the client said.
        source: async_nats::ConnectError,
    },
    /// The journal (source or replica) failed.
    Journal(JournalError),
    /// A record of the source is larger than one message can carry on this
    /// server. The push stops at it, after every record before it is
    /// acknowledged and nothing of it was published: raise the server's
    /// `max_payload` and push again, and it resumes at this record.
    RecordTooLarge {
        /// The source journal.
        dir: PathBuf,
        /// The record's position.
        position: u64,
        /// Its length in bytes.
        len: usize,
        /// The server's `max_payload`.
        max_payload: usize,
        /// The longest record a message of `max_payload` can carry.
        largest_record: usize,
    },
    /// The stream holds another journal's records.
    ForeignStream {
        /// The stream.
        stream: String,
        /// The journal this side relays.
        expected: u64,
        /// The journal the stream's messages come from.
        found: u64,
    },
    /// A message in the stream is not a relay message, or is damaged.
    BadMessage {
        /// The stream.
        stream: String,
        /// The message's stream sequence.
        sequence: u64,
        /// What is wrong with it.
        source: FormatError,
    },
    /// The replica's next position is not the one the stream carries: the
    /// records would land at other positions than in the source.
    PositionMismatch {
        /// The replica journal.
        dir: PathBuf,
        /// The message's stream sequence.
        sequence: u64,
        /// The position the source gives.
        expected: u64,
        /// The position the replica has (or gave the record).
        found: u64,
    },
    /// The stream does not hold what the replica needs next (a message was
    /// removed, or the stream starts after the replica's end).
    StreamGap {
        /// The stream.
        stream: String,
        /// The replica's end position.
        replica_end: u64,
        /// The first position the stream can give after it.
        available: u64,
    },
    /// The stream goes further than the source journal: it was fed by
    /// another copy of the journal, or the source lost records.
    StreamAhead {
        /// The source journal.
        dir: PathBuf,
        /// Where the stream ends.
        stream_end: u64,
        /// What the source says about that position.
        source: JournalError,
    },
    /// A start position was asked for, but the stream already holds records
    /// and resumes elsewhere.
    StartConflict {
        /// The stream.
        stream: String,
        /// The position asked for.
        requested: u64,
        /// Where the stream resumes.
        resume: u64,
    },
    /// The source journal's positions skip bytes that no batch marker
    /// explains.
    SourceGap {
        /// The source journal.
        dir: PathBuf,
        /// The position expected next.
        expected: u64,
        /// The position read.
        found: u64,
    },
    /// The stream exists but is not fit for the relay.
    StreamConfig {
        /// The stream.
        stream: String,
        /// Why.
        reason: String,
    },
    /// A JetStream request failed for a reason that retrying cannot fix.
    Nats {
        /// What the relay was doing.
        action: &'static str,
        /// The client's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A thread of the relay failed (a bug, or the machine out of threads).
    Internal {
        /// What failed.
        reason: String,
    },
    /// An option is out of range.
    Options {
        /// Which, and why.
        reason: String,
    },
}

impl fmt::Display for RelayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect { server, source } => {
                write!(f, "cannot reach the NATS server at {server}: {source}")
            }
            Self::Journal(e) => write!(f, "{e}"),
            Self::RecordTooLarge {
                dir,
                position,
                len,
                max_payload,
                largest_record,
            } => write!(
                f,
                "{}: the record at position {position} is {len} bytes, but the server's \
                 max_payload is {max_payload} bytes, so a message carries records of at most \
                 {largest_record} bytes; every record before it is in the stream: raise the \
                 server's max_payload and push again to resume at it",
                dir.display()
            ),
            Self::ForeignStream {
                stream,
                expected,
                found,
            } => write!(
                f,
                "stream {stream} holds journal {found:016x}, not journal {expected:016x}"
            ),
            Self::BadMessage {
                stream,
                sequence,
                source,
            } => {
                write!(f, "stream {stream}, message {sequence}: {source}")
            }
            Self::PositionMismatch {
                dir,
                sequence,
                expected,
                found,
            } => write!(
                f,
                "{}: stream message {sequence} puts a record at position {expected}, but the \
                 replica has it at {found}; stopping",
                dir.display()
            ),
            Self::StreamGap {
                stream,
                replica_end,
                available,
            } => write!(
                f,
                "stream {stream} cannot continue the replica: it ends at {replica_end} but the \
                 stream's next record is at {available}"
            ),
            Self::StreamAhead {
                dir,
                stream_end,
                source,
            } => write!(
                f,
                "{}: the stream already holds records up to position {stream_end}, which this \
                 journal does not have ({source})",
                dir.display()
            ),
            Self::StartConflict {
                stream,
                requested,
                resume,
            } => write!(
                f,
                "stream {stream} already holds records and resumes at position {resume}, not at \
                 the requested {requested}"
            ),
            Self::SourceGap {
                dir,
                expected,
                found,
            } => write!(
                f,
                "{}: expected a record at position {expected}, found one at {found}",
                dir.display()
            ),
            Self::StreamConfig { stream, reason } => write!(f, "stream {stream}: {reason}"),
            Self::Nats { action, source } => write!(f, "{action}: {source}"),
            Self::Internal { reason } => write!(f, "internal error: {reason}"),
            Self::Options { reason } => write!(f, "{reason}"),
        }
    }
}

impl std::error::Error for RelayError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Connect { source, .. } => Some(source),
            Self::Journal(e) | Self::StreamAhead { source: e, .. } => Some(e),
            Self::BadMessage { source, .. } => Some(source),
            Self::Nats { source, .. } => Some(&**source),
            _ => None,
        }
    }
}

impl From<JournalError> for RelayError {
    fn from(e: JournalError) -> Self {
        Self::Journal(e)
    }
}
