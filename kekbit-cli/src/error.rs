//! The command's one error type: one line, naming the path and the cause,
//! and the exit status that goes with it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use kekbit_std::ChannelError;
use kekbit_std::journal::JournalError;

/// Exit status of a successful run.
pub const EXIT_OK: u8 = 0;
/// Exit status after a runtime error: a missing, damaged or busy channel, an
/// I/O error.
pub const EXIT_FAILURE: u8 = 1;
/// Exit status after a usage error: bad arguments (clap uses it too).
pub const EXIT_USAGE: u8 = 2;

/// Why a command failed, printed as `kekbit: error: <path>: <cause>`.
#[derive(Debug)]
pub enum CliError {
    /// A channel operation failed; the error names its path.
    Channel(ChannelError),
    /// A journal operation failed; the error names its folder or segment.
    Journal(JournalError),
    /// Something else about a file went wrong.
    Path {
        /// The file.
        path: PathBuf,
        /// What went wrong with it, in one line.
        cause: String,
    },
    /// The arguments make no sense together (exit status 2).
    Usage(String),
    /// Anything that is about no single file.
    Other(String),
    /// Standard output was closed by its reader (`kekbit cat x | head`):
    /// the command stops quietly, as `cat` does.
    StdoutClosed,
}

impl CliError {
    /// An error about `path`.
    pub fn path(path: &Path, cause: impl fmt::Display) -> Self {
        Self::Path {
            path: path.to_path_buf(),
            cause: cause.to_string(),
        }
    }

    /// An I/O error while doing `action` on `path`.
    pub fn io(path: &Path, action: &str, source: &io::Error) -> Self {
        Self::path(path, format_args!("cannot {action}: {source}"))
    }

    /// The exit status this error ends the process with.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => EXIT_USAGE,
            Self::StdoutClosed => EXIT_OK,
            _ => EXIT_FAILURE,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every message is one line: a cause that carries a newline (an OS
        // message, a file name) must not split it.
        let text = match self {
            Self::Channel(e) => e.to_string(),
            Self::Journal(e) => e.to_string(),
            Self::Path { path, cause } => format!("{}: {cause}", path.display()),
            Self::Usage(message) | Self::Other(message) => message.clone(),
            Self::StdoutClosed => String::from("standard output closed"),
        };
        f.write_str(&text.replace(['\n', '\r'], " "))
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Channel(e) => Some(e),
            Self::Journal(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ChannelError> for CliError {
    fn from(e: ChannelError) -> Self {
        Self::Channel(e)
    }
}

/// The result of a command.
pub type CliResult<T = ()> = Result<T, CliError>;

/// Writing to standard output: a closed pipe (`kekbit cat x | head`) ends
/// the command quietly, as it does for `cat`; any other error is reported.
pub fn stdout_error(e: io::Error) -> CliError {
    if e.kind() == io::ErrorKind::BrokenPipe {
        CliError::StdoutClosed
    } else {
        CliError::Other(format!("cannot write to standard output: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_and_name_the_path() {
        let e = CliError::path(Path::new("/a/b\nc"), "bad\nthing");
        assert_eq!(e.to_string(), "/a/b c: bad thing");
        assert_eq!(e.exit_code(), EXIT_FAILURE);
        assert_eq!(CliError::Usage("x".into()).exit_code(), EXIT_USAGE);
        let io = CliError::io(
            Path::new("f"),
            "read",
            &io::Error::from(io::ErrorKind::NotFound),
        );
        assert!(io.to_string().starts_with("f: cannot read: "), "{io}");
    }

    #[test]
    fn a_closed_pipe_is_quiet() {
        let e = stdout_error(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(matches!(e, CliError::StdoutClosed));
        assert_eq!(e.exit_code(), EXIT_OK);
        let e = stdout_error(io::Error::from(io::ErrorKind::Other));
        assert_eq!(e.exit_code(), EXIT_FAILURE);
    }
}
