//! Looking at a journal from outside, without writing it: its segments,
//! where its records end, and what its writer (if one is alive) says. For
//! tools (`kekbit info`, `verify`, `cat` on a folder).

use std::path::{Path, PathBuf};

use kekbit_nostd::Header;

use super::error::JournalError;
use super::layout::{LOCK_FILE_NAME, list};
use super::lock::{holder, read_text};
use super::segment::{Ending, framing_end};
use crate::error::ChannelError;
use crate::reader::{ShmReader, Trust};

/// How a segment's records end, as [`segments`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SegmentState {
    /// No end marker: its writer may add records (or died).
    Open,
    /// Sealed with the CLOSED marker: rolled (if a segment follows) or the
    /// end of a closed journal.
    Closed,
    /// Sealed with the FULL marker.
    Full,
    /// The file cannot be read as a segment, or its framing is damaged.
    Damaged {
        /// What is wrong.
        reason: String,
    },
}

/// One segment file of a journal.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentInfo {
    /// Its base position, from its name.
    pub base: u64,
    /// Its file.
    pub path: PathBuf,
    /// Its header, if valid.
    pub header: Option<Header>,
    /// The file's length in bytes (0 if it could not be read).
    pub file_len: u64,
    /// The journal position where its records end (its seal's position if
    /// sealed); its base if damaged.
    pub end: u64,
    /// How its records end.
    pub state: SegmentState,
}

impl SegmentInfo {
    /// Whether it ends with a seal (CLOSED or FULL).
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::{JournalOptions, segments};
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?;
    /// writer.append(b"x")?;
    /// writer.roll()?;
    /// let found = segments(dir.path())?;
    /// assert!(found[0].is_sealed() && !found[1].is_sealed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_sealed(&self) -> bool {
        matches!(self.state, SegmentState::Closed | SegmentState::Full)
    }
}

/// The segment files in journal folder `dir`, oldest first: base, path,
/// header, where their records end and how. A file that cannot be read as
/// a segment is listed as [`SegmentState::Damaged`]; only a folder that
/// cannot be listed is an error. Files are opened as
/// [`ShmReader::open`] opens channels (a file others may write is
/// damaged, with the reason).
///
/// # Example
///
/// ```
/// use kekbit_std::journal::{JournalOptions, SegmentState, segments};
/// let dir = tempfile::tempdir()?;
/// let mut writer = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?;
/// writer.append(b"in the first")?;
/// let second = writer.roll()?;
/// writer.append(b"in the second")?;
/// let found = segments(dir.path())?;
/// assert_eq!(found.len(), 2);
/// assert_eq!((found[0].base, found[0].end, &found[0].state), (0, second, &SegmentState::Closed));
/// assert_eq!((found[1].base, found[1].end, &found[1].state), (second, writer.end_position(), &SegmentState::Open));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn segments(dir: impl AsRef<Path>) -> Result<Vec<SegmentInfo>, JournalError> {
    let dir = dir.as_ref();
    let mut found = Vec::new();
    for (base, path) in list(dir)?.segments {
        let damaged = |reason: String, header, file_len| SegmentInfo {
            base,
            path: path.clone(),
            header,
            file_len,
            end: base,
            state: SegmentState::Damaged { reason },
        };
        let channel = match ShmReader::open_as(&path, Trust::OwnerOnly) {
            Ok(channel) => channel,
            // Deleted by retention since the listing.
            Err(ChannelError::NotFound { .. }) => continue,
            Err(e) => {
                let file_len = std::fs::metadata(&path).map_or(0, |m| m.len());
                found.push(damaged(e.to_string(), None, file_len));
                continue;
            }
        };
        let header = *channel.header();
        let file_len = channel.file_len() as u64;
        if !header.is_segment() || header.base_position != base {
            let reason = if header.is_segment() {
                format!(
                    "named for position {base} but starts at {}",
                    header.base_position
                )
            } else {
                "a channel, not a journal segment".to_string()
            };
            found.push(damaged(reason, Some(header), file_len));
            continue;
        }
        found.push(match framing_end(channel.region()) {
            Ok((end, ending)) => SegmentInfo {
                base,
                path,
                header: Some(header),
                file_len,
                end: base + u64::from(end),
                state: match ending {
                    Ending::Open => SegmentState::Open,
                    Ending::Closed => SegmentState::Closed,
                    Ending::Full => SegmentState::Full,
                },
            },
            Err(reason) => damaged(reason, Some(header), file_len),
        });
    }
    Ok(found)
}

/// A journal as [`inspect`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JournalInfo {
    /// The folder.
    pub dir: PathBuf,
    /// The journal's id, from the newest valid segment header.
    pub journal_id: Option<u64>,
    /// Its segments, oldest first; see [`segments`].
    pub segments: Vec<SegmentInfo>,
    /// The oldest retained position (the first segment's base).
    pub first_position: Option<u64>,
    /// Where the records end (the last segment's end).
    pub end_position: Option<u64>,
    /// The process that holds the writer's lock now, if any.
    pub writer_pid: Option<u32>,
    /// Everything before it survives power loss: as the live writer last
    /// noted it; the end, for a journal closed cleanly with no writer;
    /// `None` if unknown (a writer died: the next one's recovery tells).
    pub durable_position: Option<u64>,
    /// The last segment is sealed and no writer holds the lock: the
    /// journal was closed.
    pub closed: bool,
}

/// Looks at the journal in `dir` without writing anything (not even the
/// lock): its segments, positions, writer and durable position.
///
/// # Example
///
/// ```
/// use kekbit_std::journal::{JournalOptions, inspect};
/// let dir = tempfile::tempdir()?;
/// let mut writer = JournalOptions::new().segment_bytes(4096).journal_id(5).open_writer(dir.path())?;
/// writer.append(b"x")?;
/// writer.sync()?;
/// let info = inspect(dir.path())?;
/// assert_eq!(info.writer_pid, Some(std::process::id()));
/// assert_eq!(info.durable_position, Some(16));
/// assert_eq!((info.journal_id, info.end_position, info.closed), (Some(5), Some(16), false));
/// writer.close()?;
/// let info = inspect(dir.path())?;
/// assert_eq!((info.writer_pid, info.durable_position, info.closed), (None, Some(16), true));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn inspect(dir: impl AsRef<Path>) -> Result<JournalInfo, JournalError> {
    let dir = dir.as_ref();
    let segments = segments(dir)?;
    let lock = dir.join(LOCK_FILE_NAME);
    let writer_pid = holder(&lock);
    let last = segments.last();
    let end_position = last.map(|s| s.end);
    let closed = writer_pid.is_none() && last.is_some_and(SegmentInfo::is_sealed);
    let durable_position = match writer_pid {
        Some(pid) => read_text(&lock)
            .filter(|text| text.pid == pid)
            .and_then(|text| text.durable),
        None if closed => end_position,
        None => None,
    };
    Ok(JournalInfo {
        dir: dir.to_path_buf(),
        journal_id: segments
            .iter()
            .rev()
            .find_map(|s| s.header.map(|h| h.journal_id)),
        first_position: segments.first().map(|s| s.base),
        end_position,
        writer_pid,
        durable_position,
        closed,
        segments,
    })
}
