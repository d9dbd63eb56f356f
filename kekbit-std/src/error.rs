//! The one error type of this crate: what went wrong, and with which file.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kekbit_nostd::{HeaderError, ReadError, RegionError, WriteError};

/// Why a channel operation failed. Every variant names the channel's path.
///
/// # Example
///
/// ```
/// use kekbit_std::{ChannelError, ShmReader};
///
/// let err = ShmReader::open("/nonexistent/channel.kekbit").unwrap_err();
/// assert!(matches!(err, ChannelError::NotFound { .. }));
/// assert_eq!(err.path(), std::path::Path::new("/nonexistent/channel.kekbit"));
/// assert!(err.to_string().contains("/nonexistent/channel.kekbit"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum ChannelError {
    /// An operating-system call failed.
    Io {
        /// The file or folder it was about.
        path: PathBuf,
        /// What the crate was doing, e.g. "map the channel".
        action: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// A channel already exists at the path; creating never replaces one.
    AlreadyExists {
        /// The existing channel.
        path: PathBuf,
    },
    /// No channel exists at the path (yet).
    NotFound {
        /// The missing channel.
        path: PathBuf,
    },
    /// The folder a channel was to be created in does not exist; creating
    /// at an explicit path makes no folders unless asked to
    /// ([`WriterOptions::create_parents`](crate::WriterOptions::create_parents)).
    FolderNotFound {
        /// The channel that was to be created.
        path: PathBuf,
        /// The missing folder.
        folder: PathBuf,
    },
    /// The file or folder is one that someone other than this user (or
    /// root) could change, or a symbolic link; the safe constructors refuse
    /// it. See [`ShmReader::open`](crate::ShmReader::open) for the trust
    /// model, and [`ShmReader::open_shared`](crate::ShmReader::open_shared)
    /// for files shared with other users.
    Untrusted {
        /// The file or folder.
        path: PathBuf,
        /// Why it is not trusted.
        source: TrustError,
    },
    /// The configuration cannot make a valid channel (say, a capacity below
    /// the minimum); nothing was created.
    Config {
        /// Where the channel would have been.
        path: PathBuf,
        /// What is wrong with it.
        source: HeaderError,
    },
    /// The file's header is damaged, truncated, or from another format.
    Header {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: HeaderError,
    },
    /// The file cannot be mapped as a channel region.
    Region {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: RegionError,
    },
    /// The file's length is not the header's size plus its record area:
    /// it was truncated, extended, or overwritten.
    LengthMismatch {
        /// The file.
        path: PathBuf,
        /// Its length in bytes.
        file_len: u64,
        /// The length its header implies.
        expected: u64,
    },
    /// The channel did not appear before the deadline.
    Timeout {
        /// The awaited channel.
        path: PathBuf,
        /// How long the caller waited.
        waited: Duration,
    },
    /// The writer could not append a record.
    Write {
        /// The channel.
        path: PathBuf,
        /// Why.
        source: WriteError,
    },
    /// The reader met the end of the channel or damage in it.
    Read {
        /// The channel.
        path: PathBuf,
        /// What it met.
        source: ReadError,
    },
    /// The writer stopped heartbeating and writing for longer than the
    /// channel's timeout without closing it: it probably died.
    Abandoned {
        /// The channel.
        path: PathBuf,
    },
}

impl ChannelError {
    /// The path of the channel (or folder) the error is about; the type's
    /// example shows it.
    pub fn path(&self) -> &Path {
        match self {
            Self::Io { path, .. }
            | Self::AlreadyExists { path }
            | Self::NotFound { path }
            | Self::FolderNotFound { path, .. }
            | Self::Untrusted { path, .. }
            | Self::Config { path, .. }
            | Self::Header { path, .. }
            | Self::Region { path, .. }
            | Self::LengthMismatch { path, .. }
            | Self::Timeout { path, .. }
            | Self::Write { path, .. }
            | Self::Read { path, .. }
            | Self::Abandoned { path } => path,
        }
    }

    /// Whether this is the normal end of a channel: closed or full, after
    /// every record was read.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::ReadError;
    /// use kekbit_std::ChannelError;
    ///
    /// let end = ChannelError::Read { path: "c.kekbit".into(), source: ReadError::Closed };
    /// assert!(end.is_end());
    /// ```
    pub fn is_end(&self) -> bool {
        matches!(
            self,
            Self::Read {
                source: ReadError::Closed | ReadError::Full,
                ..
            }
        )
    }

    /// The core read error, if this is one.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::ReadError;
    /// use kekbit_std::ChannelError;
    ///
    /// let e = ChannelError::Read { path: "c.kekbit".into(), source: ReadError::Full };
    /// assert_eq!(e.read_error(), Some(ReadError::Full));
    /// assert_eq!(e.write_error(), None);
    /// ```
    pub fn read_error(&self) -> Option<ReadError> {
        match self {
            Self::Read { source, .. } => Some(*source),
            _ => None,
        }
    }

    /// The core write error, if this is one; see
    /// [`ShmWriter::write`](crate::ShmWriter::write) for an example.
    pub fn write_error(&self) -> Option<WriteError> {
        match self {
            Self::Write { source, .. } => Some(*source),
            _ => None,
        }
    }

    pub(crate) fn io(path: &Path, action: &'static str, source: io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io {
                path,
                action,
                source,
            } => write!(f, "{}: cannot {action}: {source}", path.display()),
            Self::AlreadyExists { path } => {
                write!(f, "{}: a channel already exists there", path.display())
            }
            Self::NotFound { path } => write!(f, "{}: no channel there", path.display()),
            Self::FolderNotFound { path, folder } => write!(
                f,
                "{}: cannot create the channel: folder {} does not exist",
                path.display(),
                folder.display()
            ),
            Self::Untrusted { path, source } => {
                write!(f, "{}: refused: {source}", path.display())
            }
            Self::Config { path, source } => {
                write!(
                    f,
                    "{}: invalid channel configuration: {source}",
                    path.display()
                )
            }
            Self::Header { path, source } => {
                write!(f, "{}: bad channel header: {source}", path.display())
            }
            Self::Region { path, source } => {
                write!(f, "{}: cannot map as a channel: {source}", path.display())
            }
            Self::LengthMismatch {
                path,
                file_len,
                expected,
            } => write!(
                f,
                "{}: file is {file_len} bytes but its header describes {expected}",
                path.display()
            ),
            Self::Timeout { path, waited } => write!(
                f,
                "{}: channel did not appear within {waited:?}",
                path.display()
            ),
            Self::Write { path, source } => {
                write!(f, "{}: write failed: {source}", path.display())
            }
            Self::Read { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Abandoned { path } => write!(
                f,
                "{}: writer abandoned the channel (silent past its timeout)",
                path.display()
            ),
        }
    }
}

/// Why a channel file or folder is not trusted: someone other than this
/// process's user (or root) could change it, or the path is a symbolic
/// link, which whoever controls the link could point elsewhere.
///
/// # Example
///
/// ```
/// use kekbit_std::TrustError;
///
/// let why = TrustError::Writable { mode: 0o660 };
/// assert_eq!(why.to_string(), "mode 0660 lets group or others write it");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrustError {
    /// The path is a symbolic link: channels and roots are opened only at
    /// their real path.
    Symlink,
    /// Another user owns it (and so may write it, or change its mode).
    Owner {
        /// Its owner.
        owner_uid: u32,
        /// This process's effective user.
        our_uid: u32,
    },
    /// Its mode lets group or others write it (a POSIX ACL that grants
    /// anyone else write access shows here too, in the group bits).
    Writable {
        /// Its permission bits.
        mode: u32,
    },
}

impl fmt::Display for TrustError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Symlink => f.write_str("is a symbolic link; give the real path"),
            Self::Owner { owner_uid, our_uid } => write!(
                f,
                "owned by uid {owner_uid}, neither this user (uid {our_uid}) nor root"
            ),
            Self::Writable { mode } => {
                write!(f, "mode {mode:04o} lets group or others write it")
            }
        }
    }
}

impl std::error::Error for TrustError {}

impl std::error::Error for ChannelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Config { source, .. } | Self::Header { source, .. } => Some(source),
            Self::Region { source, .. } => Some(source),
            Self::Untrusted { source, .. } => Some(source),
            Self::Write { source, .. } => Some(source),
            Self::Read { source, .. } => Some(source),
            Self::AlreadyExists { .. }
            | Self::NotFound { .. }
            | Self::FolderNotFound { .. }
            | Self::LengthMismatch { .. }
            | Self::Timeout { .. }
            | Self::Abandoned { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_names_the_path() {
        let p = || PathBuf::from("/x/y.kekbit");
        let all = [
            ChannelError::io(&p(), "map the channel", io::ErrorKind::Other.into()),
            ChannelError::AlreadyExists { path: p() },
            ChannelError::NotFound { path: p() },
            ChannelError::FolderNotFound {
                path: p(),
                folder: "/x".into(),
            },
            ChannelError::Untrusted {
                path: p(),
                source: TrustError::Writable { mode: 0o660 },
            },
            ChannelError::Config {
                path: p(),
                source: HeaderError::UnknownTickUnit { code: 9 },
            },
            ChannelError::Header {
                path: p(),
                source: HeaderError::UnknownFlags { flags: 4 },
            },
            ChannelError::Region {
                path: p(),
                source: RegionError::Null,
            },
            ChannelError::LengthMismatch {
                path: p(),
                file_len: 1,
                expected: 2,
            },
            ChannelError::Timeout {
                path: p(),
                waited: Duration::from_secs(1),
            },
            ChannelError::Write {
                path: p(),
                source: WriteError::Closed,
            },
            ChannelError::Read {
                path: p(),
                source: ReadError::Full,
            },
            ChannelError::Abandoned { path: p() },
        ];
        for e in all {
            assert!(e.to_string().starts_with("/x/y.kekbit: "), "{e}");
            assert_eq!(e.path(), p());
        }
    }
}
