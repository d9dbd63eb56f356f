//! The journal's error type: what went wrong, and in which folder or file.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::ChannelError;

/// Why a journal operation failed. Every variant but
/// [`TooLarge`](JournalError::TooLarge) names the journal's folder or the
/// file concerned, and so does its message.
///
/// # Example
///
/// ```
/// use kekbit_std::journal::{JournalError, JournalReader};
///
/// let err = JournalReader::open("/no/such/journal").unwrap_err();
/// assert!(matches!(err, JournalError::NotAJournal { .. }));
/// assert!(err.to_string().starts_with("/no/such/journal: "));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum JournalError {
    /// Another writer holds the journal's lock: there is exactly one writer
    /// per folder, in any process.
    Locked {
        /// The journal's folder.
        dir: PathBuf,
        /// The holder's process id, as its lock file says (`None` if it
        /// could not be read).
        pid: Option<u32>,
    },
    /// The position asked for, or the next segment a reader needs, is
    /// before the oldest retained record: retention deleted it, or the
    /// journal starts later (see
    /// [`JournalOptions::first_position`](super::JournalOptions::first_position)).
    BehindRetention {
        /// The journal's folder.
        dir: PathBuf,
        /// The position the reader asked for or reached.
        requested: u64,
        /// The oldest position still retained; seek there to go on.
        first_available: u64,
    },
    /// No record starts at this position.
    NotARecordBoundary {
        /// The journal's folder.
        dir: PathBuf,
        /// The position asked for.
        position: u64,
    },
    /// The position lies past the journal's last record.
    BeyondEnd {
        /// The journal's folder.
        dir: PathBuf,
        /// The position asked for.
        position: u64,
        /// Where the journal's records end now.
        end: u64,
    },
    /// The folder is not a journal, or its segments do not fit together.
    NotAJournal {
        /// The folder.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A segment belongs to another journal (its header's journal id).
    ForeignSegment {
        /// The segment file.
        path: PathBuf,
        /// The journal id of the journal's other segments.
        expected: u64,
        /// The id in this segment's header.
        found: u64,
    },
    /// A record (or, for a batch, the batch's bytes with framing) is longer
    /// than a segment of this journal can take; nothing was written.
    TooLarge {
        /// The record's length (a batch's bytes).
        len: usize,
        /// The largest allowed.
        max: u32,
    },
    /// The journal was closed and every record has been read; a writer
    /// that reopens the journal continues it, and the reader with it.
    Closed {
        /// The journal's folder.
        dir: PathBuf,
    },
    /// The writer stopped heartbeating and writing for longer than the
    /// journal's timeout without closing it: it probably died.
    Abandoned {
        /// The journal's folder.
        dir: PathBuf,
    },
    /// A segment (a channel file) could not be created, opened, read or
    /// written; the error names the segment.
    Channel(ChannelError),
    /// An operating-system call failed.
    Io {
        /// The file or folder it was about.
        path: PathBuf,
        /// What the journal was doing.
        action: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

impl JournalError {
    /// The folder or file the error is about; `None` only for
    /// [`TooLarge`](JournalError::TooLarge).
    ///
    /// # Example
    ///
    /// ```
    /// use std::path::Path;
    /// use kekbit_std::journal::JournalError;
    /// let e = JournalError::Closed { dir: "/j".into() };
    /// assert_eq!(e.path(), Some(Path::new("/j")));
    /// ```
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Locked { dir, .. }
            | Self::BehindRetention { dir, .. }
            | Self::NotARecordBoundary { dir, .. }
            | Self::BeyondEnd { dir, .. }
            | Self::NotAJournal { dir, .. }
            | Self::Closed { dir }
            | Self::Abandoned { dir } => Some(dir),
            Self::ForeignSegment { path, .. } | Self::Io { path, .. } => Some(path),
            Self::Channel(e) => Some(e.path()),
            Self::TooLarge { .. } => None,
        }
    }

    /// Whether this is the normal end of a closed journal, after its last
    /// record.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_std::journal::JournalError;
    /// assert!(JournalError::Closed { dir: "/j".into() }.is_end());
    /// assert!(!JournalError::Abandoned { dir: "/j".into() }.is_end());
    /// ```
    pub fn is_end(&self) -> bool {
        matches!(self, Self::Closed { .. })
    }

    pub(crate) fn io(path: &Path, action: &'static str, source: io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }

    pub(crate) fn not_a_journal(dir: &Path, reason: impl Into<String>) -> Self {
        Self::NotAJournal {
            dir: dir.to_path_buf(),
            reason: reason.into(),
        }
    }
}

impl From<ChannelError> for JournalError {
    fn from(e: ChannelError) -> Self {
        Self::Channel(e)
    }
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Locked {
                dir,
                pid: Some(pid),
            } => write!(
                f,
                "{}: the journal has a writer already (process {pid} holds its lock)",
                dir.display()
            ),
            Self::Locked { dir, pid: None } => write!(
                f,
                "{}: the journal has a writer already (another process holds its lock)",
                dir.display()
            ),
            Self::BehindRetention {
                dir,
                requested,
                first_available,
            } => write!(
                f,
                "{}: position {requested} is not retained (deleted by retention, or before the journal's start); the oldest retained is {first_available}",
                dir.display()
            ),
            Self::NotARecordBoundary { dir, position } => write!(
                f,
                "{}: no record starts at position {position}",
                dir.display()
            ),
            Self::BeyondEnd { dir, position, end } => write!(
                f,
                "{}: position {position} is past the journal's end at {end}",
                dir.display()
            ),
            Self::NotAJournal { dir, reason } => {
                write!(f, "{}: not a journal: {reason}", dir.display())
            }
            Self::ForeignSegment {
                path,
                expected,
                found,
            } => write!(
                f,
                "{}: segment of journal {found:#018x}, not of this journal ({expected:#018x})",
                path.display()
            ),
            Self::TooLarge { len, max } => write!(
                f,
                "record of {len} bytes exceeds the journal's maximum of {max}"
            ),
            Self::Closed { dir } => write!(f, "{}: the journal is closed", dir.display()),
            Self::Abandoned { dir } => write!(
                f,
                "{}: the journal's writer is silent past its timeout (dead?)",
                dir.display()
            ),
            Self::Channel(e) => e.fmt(f),
            Self::Io {
                path,
                action,
                source,
            } => write!(f, "{}: cannot {action}: {source}", path.display()),
        }
    }
}

impl std::error::Error for JournalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Channel(e) => Some(e),
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_names_its_folder_or_file() {
        let d = || PathBuf::from("/j");
        let all = [
            JournalError::Locked {
                dir: d(),
                pid: Some(7),
            },
            JournalError::Locked {
                dir: d(),
                pid: None,
            },
            JournalError::BehindRetention {
                dir: d(),
                requested: 1,
                first_available: 2,
            },
            JournalError::NotARecordBoundary {
                dir: d(),
                position: 3,
            },
            JournalError::BeyondEnd {
                dir: d(),
                position: 9,
                end: 8,
            },
            JournalError::not_a_journal(&d(), "why"),
            JournalError::ForeignSegment {
                path: d(),
                expected: 1,
                found: 2,
            },
            JournalError::Closed { dir: d() },
            JournalError::Abandoned { dir: d() },
            JournalError::Channel(ChannelError::NotFound { path: d() }),
            JournalError::io(&d(), "list it", io::ErrorKind::Other.into()),
        ];
        for e in all {
            assert!(e.to_string().starts_with("/j: "), "{e}");
            assert_eq!(e.path(), Some(Path::new("/j")));
        }
        let e = JournalError::TooLarge { len: 9, max: 8 };
        assert_eq!(e.path(), None);
        assert!(e.to_string().contains('9'));
    }
}
