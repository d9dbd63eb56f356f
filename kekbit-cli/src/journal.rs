//! What the read commands share for journals: telling a journal folder
//! from a channel file, listing its files, opening each segment as the
//! channel it is, and the journal-level invariants (one journal id, bases
//! that match names, each segment sealed exactly where the next begins).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use kekbit_nostd::format::MARKER_LEN;
use kekbit_nostd::{Header, ReadError, SeekError};
use kekbit_std::journal::{JournalError, LOCK_FILE_NAME, parse_segment_file_name};
use kekbit_std::{ChannelError, ChannelReader, TrustError};

use crate::error::CliError;
use crate::inspect::{self, describe_damage, describe_open_error};

/// Whether `path` names a journal's folder rather than a channel file: the
/// read commands take either. A link to a folder counts (and is then
/// refused, as a link to a channel file is).
pub fn is_journal(path: &Path) -> bool {
    path.is_dir()
}

/// Checks the journal folder as readers of `kekbit_std::journal` do: not a
/// symbolic link, and (unless `shared`) writable by nobody but this user
/// or root, so nobody else can put files in it.
pub fn check_folder(dir: &Path, shared: bool) -> Result<(), CliError> {
    // Without a trailing `/`, which would make `lstat` follow a link.
    let bare: PathBuf = dir.components().collect();
    let metadata = fs::symlink_metadata(&bare)
        .map_err(|e| CliError::io(dir, "look at the journal folder", &e))?;
    let refused = |source| {
        describe_open_error(ChannelError::Untrusted {
            path: dir.to_path_buf(),
            source,
        })
    };
    if metadata.file_type().is_symlink() {
        return Err(refused(TrustError::Symlink));
    }
    if shared {
        return Ok(());
    }
    // SAFETY: `geteuid` takes no arguments, touches no memory and cannot
    // fail.
    let our_uid = unsafe { libc::geteuid() };
    let owner_uid = metadata.uid();
    if owner_uid != our_uid && owner_uid != 0 {
        return Err(refused(TrustError::Owner { owner_uid, our_uid }));
    }
    let mode = metadata.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(refused(TrustError::Writable { mode }));
    }
    Ok(())
}

/// The files of a journal folder, by kind.
#[derive(Debug, Default)]
pub struct Listing {
    /// Segment files, by base position.
    pub segments: Vec<(u64, PathBuf)>,
    /// A writer's temporary files (`.segment.*.tmp`): a segment being made,
    /// or made ahead; left behind by a writer that died.
    pub temporary: Vec<PathBuf>,
    /// Segments recovery set aside (`*.kekbit.discarded`).
    pub discarded: Vec<PathBuf>,
    /// Anything else but the lock file: ignored by journals.
    pub other: Vec<PathBuf>,
}

/// Lists journal folder `dir`.
pub fn list(dir: &Path) -> Result<Listing, CliError> {
    let entries =
        fs::read_dir(dir).map_err(|e| CliError::io(dir, "list the journal folder", &e))?;
    let mut listing = Listing::default();
    for entry in entries {
        let entry = entry.map_err(|e| CliError::io(dir, "list the journal folder", &e))?;
        let path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            listing.other.push(path);
            continue;
        };
        if let Some(base) = parse_segment_file_name(name) {
            listing.segments.push((base, path));
        } else if name.starts_with(".segment.") && name.ends_with(".tmp") {
            listing.temporary.push(path);
        } else if name
            .strip_suffix(".discarded")
            .is_some_and(|n| parse_segment_file_name(n).is_some())
        {
            listing.discarded.push(path);
        } else if name != LOCK_FILE_NAME {
            listing.other.push(path);
        }
    }
    listing.segments.sort_unstable_by_key(|&(base, _)| base);
    listing.temporary.sort();
    listing.discarded.sort();
    listing.other.sort();
    Ok(listing)
}

/// Lists `dir`, which must hold at least one segment.
pub fn list_segments(dir: &Path) -> Result<Listing, CliError> {
    let listing = list(dir)?;
    if listing.segments.is_empty() {
        return Err(CliError::path(
            dir,
            "is a folder but not a journal: it holds no segment files \
             ({base:020}.kekbit); cat, info and verify take a channel file or a journal folder",
        ));
    }
    Ok(listing)
}

/// How a segment's records end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// No end marker: its writer may add records, or died.
    Open,
    /// Sealed with the CLOSED marker (rolled, or the end of a closed journal).
    Closed,
    /// Sealed with the FULL marker.
    Full,
}

impl Ending {
    /// Whether the segment is sealed.
    pub fn is_sealed(self) -> bool {
        self != Self::Open
    }

    /// Its name, as `info` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
            Self::Full => "full",
        }
    }
}

/// One segment, as a read command found it.
#[derive(Debug)]
pub struct Segment {
    /// Its base position, from its name.
    pub base: u64,
    /// Its file.
    pub path: PathBuf,
    /// The file's length (0 if unknown).
    pub file_len: u64,
    /// Its header, if it could be opened.
    pub header: Option<Header>,
    /// Where its records end, as a journal position, and how; `None` if it
    /// could not be read.
    pub end: Option<(u64, Ending)>,
    /// Why it cannot be read, in one line naming it.
    pub damage: Option<String>,
}

impl Segment {
    /// A segment that could not be read.
    pub fn damaged(base: u64, path: PathBuf, header: Option<Header>, e: &CliError) -> Self {
        let file_len = fs::metadata(&path).map_or(0, |m| m.len());
        Self {
            base,
            path,
            file_len,
            header,
            end: None,
            damage: Some(e.to_string()),
        }
    }

    /// The segment's file name.
    pub fn name(&self) -> String {
        file_name(&self.path)
    }
}

/// The last component of `path`, for messages.
pub fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Opens the segment at `path` as the channel it is and finds where its
/// records end by their framing (checksums are `verify`'s job). For `info`.
pub fn probe(base: u64, path: &Path, shared: bool) -> Segment {
    let channel = match inspect::open(path, shared) {
        Ok(channel) => channel,
        Err(e) => return Segment::damaged(base, path.to_path_buf(), None, &e),
    };
    let header = *channel.header();
    let file_len = channel.file_len() as u64;
    let reader = match inspect::reader(&channel) {
        Ok(reader) => reader,
        Err(e) => return Segment::damaged(base, path.to_path_buf(), Some(header), &e),
    };
    match framing_end(reader) {
        Ok((end, ending)) => Segment {
            base,
            path: path.to_path_buf(),
            file_len,
            header: Some(header),
            end: Some((base + u64::from(end), ending)),
            damage: None,
        },
        Err(damage) => {
            let e = CliError::path(path, describe_damage(&damage));
            Segment::damaged(base, path.to_path_buf(), Some(header), &e)
        }
    }
}

/// The offset where a channel's records end, by their framing, and how.
fn framing_end(mut reader: ChannelReader<'_>) -> Result<(u32, Ending), ReadError> {
    let last = reader.header().capacity_bytes - MARKER_LEN as u32;
    let end = match reader.seek(last) {
        Ok(()) => last,
        Err(SeekError::BeyondEnd { end, .. }) => end,
        Err(SeekError::Read(e)) => return Err(e),
        // The last word is always a boundary once every record before it
        // is: not reached.
        Err(SeekError::NotARecordBoundary { .. }) => reader.position(),
    };
    if reader.seek(end).is_err() {
        return Ok((reader.position(), Ending::Open));
    }
    let ending = match reader.try_read() {
        Err(e) => match e.read_error() {
            Some(ReadError::Closed) => Ending::Closed,
            Some(ReadError::Full) => Ending::Full,
            Some(damage) => return Err(damage),
            None => Ending::Open,
        },
        // Empty, or a record its writer has just added.
        Ok(_) => Ending::Open,
    };
    Ok((end, ending))
}

/// What is wrong with how the segments fit together, one line each: a
/// header that is not a segment's, a base that is not the one its name
/// says, another journal's id, a segment not sealed though another follows,
/// a gap or an overlap between neighbours. Segments that could not be read
/// are skipped (their damage is reported on its own).
pub fn chain_problems(dir: &Path, segments: &[Segment]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut journal: Option<(u64, &Path)> = None;
    for segment in segments {
        let Some(header) = segment.header else {
            continue;
        };
        let path = segment.path.display();
        if !header.is_segment() {
            problems.push(format!(
                "{path}: a channel, not a journal segment (its header has no journal id)"
            ));
            continue;
        }
        if header.base_position != segment.base {
            problems.push(format!(
                "{path}: named for position {} but its header says it starts at {}",
                segment.base, header.base_position
            ));
        }
        match journal {
            None => journal = Some((header.journal_id, &segment.path)),
            Some((id, first)) if id != header.journal_id => problems.push(format!(
                "{path}: segment of journal {:#018x}, not of this journal ({id:#018x}, the id \
                 of {})",
                header.journal_id,
                file_name(first)
            )),
            Some(_) => {}
        }
    }
    for pair in segments.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let Some((end, ending)) = a.end else {
            continue;
        };
        if !ending.is_sealed() {
            problems.push(format!(
                "{}: not sealed, yet {} follows it (its writer died between publishing the \
                 next segment and sealing this one, or a segment is misplaced; opening the \
                 journal for writing seals a complete one)",
                a.path.display(),
                b.name()
            ));
        } else if end < b.base {
            problems.push(format!(
                "{}: no segment starts at position {end}, where {} ends; the next is {} at \
                 {} (a segment is missing)",
                dir.display(),
                a.name(),
                b.name(),
                b.base
            ));
        } else if end > b.base {
            problems.push(format!(
                "{}: {} ends at position {end}, past the start of {} at {} (the segments \
                 overlap)",
                dir.display(),
                a.name(),
                b.name(),
                b.base
            ));
        }
    }
    problems
}

/// The process that holds the journal's writer lock now, and the durable
/// position it last noted (for a journal closed cleanly with no writer,
/// its end); read without taking the lock.
pub fn writer(dir: &Path) -> (Option<u32>, Option<u64>) {
    match kekbit_std::journal::inspect(dir) {
        Ok(info) => (info.writer_pid, info.durable_position),
        Err(_) => (None, None),
    }
}

/// A journal error as one line; damage in a segment names the segment,
/// the journal position, and the offsets in the record area and the file.
pub fn describe_error(e: JournalError) -> CliError {
    match e {
        JournalError::Channel(ChannelError::Read {
            path,
            source: damage @ (ReadError::Corrupt { .. } | ReadError::Checksum { .. }),
        }) => {
            let cause = describe_damage(&damage);
            let base = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(parse_segment_file_name);
            let position = match damage {
                ReadError::Corrupt { position, .. } | ReadError::Checksum { position, .. } => {
                    position
                }
                _ => 0,
            };
            let cause = match base {
                Some(base) => format!(
                    "at journal position {}: {cause}",
                    base.saturating_add(u64::from(position))
                ),
                None => cause,
            };
            CliError::path(&path, cause)
        }
        JournalError::Channel(e) => describe_open_error(e),
        other => CliError::Journal(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_sorts_files_by_kind() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "00000000000000004096.kekbit",
            "00000000000000000000.kekbit",
            ".segment.12.3.tmp",
            "00000000000000008192.kekbit.discarded",
            "writer.lock",
            "notes.txt",
            "4096.kekbit",
        ] {
            fs::write(dir.path().join(name), b"").unwrap();
        }
        let listing = list(dir.path()).unwrap();
        let bases: Vec<u64> = listing.segments.iter().map(|&(b, _)| b).collect();
        assert_eq!(bases, [0, 4096]);
        assert_eq!(listing.temporary.len(), 1);
        assert_eq!(listing.discarded.len(), 1);
        let other: Vec<String> = listing.other.iter().map(|p| file_name(p)).collect();
        assert_eq!(other, ["4096.kekbit", "notes.txt"]);
    }

    #[test]
    fn an_empty_folder_is_not_a_journal() {
        let dir = tempfile::tempdir().unwrap();
        let e = list_segments(dir.path()).unwrap_err().to_string();
        assert!(e.contains("is a folder but not a journal"), "{e}");
    }
}
