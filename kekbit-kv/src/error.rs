//! The store's typed errors.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::DecodeError;

/// `Result` with the store's [`Error`], as persistent-kv names it.
///
/// ```
/// fn open() -> kekbit_kv::Result<()> {
///     Ok(())
/// }
/// # open().unwrap();
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, with the path it concerns.
///
/// # Example
///
/// ```
/// use kekbit_kv::{Config, Error, PersistentKeyValueStore};
/// let dir = tempfile::tempdir()?;
/// let first: PersistentKeyValueStore<String, String> =
///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
/// let second = PersistentKeyValueStore::<String, String>::new(dir.path(), Config::default());
/// assert!(matches!(second, Err(Error::Locked { .. })));
/// # drop(first);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Another live store (this process or another) has the folder open.
    Locked {
        /// The store's folder.
        dir: PathBuf,
        /// The owner's pid, when the lock file names it.
        pid: Option<u32>,
    },
    /// An operating system call failed.
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The cause.
        source: io::Error,
    },
    /// The write-ahead log failed.
    Log {
        /// The journal's folder.
        dir: PathBuf,
        /// The journal's own error, as text.
        reason: String,
    },
    /// A file of the store does not hold what it should: a damaged
    /// snapshot or manifest, or a log record that does not decode.
    Corrupt {
        /// The file (or the journal's folder, for a record).
        path: PathBuf,
        /// What is wrong, where.
        reason: String,
    },
    /// No complete state can be rebuilt: the manifest names snapshots that
    /// are all missing or damaged, and the log no longer reaches back far
    /// enough to replace them.
    Unrecoverable {
        /// The store's folder.
        dir: PathBuf,
        /// Each snapshot tried, and why it failed.
        reason: String,
    },
    /// Bytes did not decode as the key or value type.
    Decode(DecodeError),
    /// A key or value (or a batch) is larger than one log record may be.
    TooLarge {
        /// Its size in bytes.
        len: usize,
        /// The largest allowed.
        max: usize,
    },
    /// The store's background thread has stopped after an error, or the
    /// store is shutting down; the message says which.
    Stopped {
        /// Why.
        reason: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Locked {
                dir,
                pid: Some(pid),
            } => write!(
                f,
                "{}: the store is open in another instance (pid {pid}); only one may be live",
                dir.display()
            ),
            Error::Locked { dir, pid: None } => write!(
                f,
                "{}: the store is open in another instance; only one may be live",
                dir.display()
            ),
            Error::Io {
                path,
                action,
                source,
            } => write!(f, "{}: cannot {action}: {source}", path.display()),
            Error::Log { dir, reason } => write!(f, "{}: log: {reason}", dir.display()),
            Error::Corrupt { path, reason } => write!(f, "{}: corrupt: {reason}", path.display()),
            Error::Unrecoverable { dir, reason } => {
                write!(f, "{}: cannot restore the store: {reason}", dir.display())
            }
            Error::Decode(e) => e.fmt(f),
            Error::TooLarge { len, max } => write!(
                f,
                "{len} bytes do not fit in one log record (at most {max} bytes)"
            ),
            Error::Stopped { reason } => write!(f, "the store has stopped: {reason}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Decode(e) => Some(e),
            _ => None,
        }
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        Error::Decode(e)
    }
}

#[cfg(feature = "prost")]
impl From<prost::DecodeError> for Error {
    fn from(e: prost::DecodeError) -> Self {
        Error::Decode(DecodeError {
            type_name: "prost::Message",
            len: 0,
            reason: e.to_string().into(),
        })
    }
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, action: &'static str, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            action,
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
