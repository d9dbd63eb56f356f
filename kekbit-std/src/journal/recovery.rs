//! Opening an existing journal for writing after whatever ended its last
//! writer: a clean close, `kill -9`, or power loss.
//!
//! Recovery is point-in-time, as RocksDB calls it: the journal is cut at
//! its first damage, and nothing after the cut is kept. That never loses a
//! record a `sync` covered, because a sync writes every earlier segment
//! back before it counts a later record durable; so damage, which power
//! loss leaves only in what was never synced, always lies after every
//! synced record.
//!
//! In order:
//! 1. Temporary files (`.segment.*.tmp`) are removed: segments made ahead
//!    and never published.
//! 2. Trailing segments whose header never became valid (a crash while the
//!    file was being published, or power loss before its header reached
//!    the device) are deleted.
//! 3. Every header is checked: a segment, of this journal, at the base its
//!    name says. A segment of another journal, or a misnamed one, is an
//!    error: recovery does not guess. A damaged header or a short file
//!    before the last segment cuts the journal there.
//! 4. Each sealed segment must end (CLOSED or FULL) exactly where its
//!    successor begins: one word read per segment. Every sealed segment
//!    past the checkpoint (up to which the previous writer synced every
//!    sealed segment, noted in the lock file; after a clean close, the
//!    end) is also walked record by record, checksums included. One sealed nowhere but
//!    complete (a crash between publishing its successor and sealing it) is
//!    sealed now; one with a missing or damaged record cuts the journal
//!    after its last sound record.
//! 5. The last segment is resumed with the core's `Writer::resume`: the
//!    tail past its last sound record is cleared. If it is sealed (a clean
//!    close), a new segment starts where it ends (replacing it if it holds
//!    no record).
//! 6. Segments after a cut are renamed `*.discarded` (kept for inspection,
//!    ignored by readers and writers).
//! 7. Everything is synced (the cleared tails, the files, the folder)
//!    before the first new record, so the durable position starts at the
//!    end, and nothing cleared can come back after a later power loss.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use kekbit_nostd::format::{COMMIT_CLOSED, COMMIT_FULL, HEADER_LEN, MARKER_LEN, RECORD_ALIGN};
use kekbit_nostd::{Header, ResumeError, Writer};

use super::background::FileSpec;
use super::durable::{sync_file, sync_folder};
use super::error::JournalError;
use super::layout::{DISCARDED_SUFFIX, list, temp_stem};
use super::lock::LockText;
use super::options::JournalOptions;
use super::retention::Entry;
use super::segment::{Probe, Publish, Segment, framing_end, map_writable, probe};
use crate::creation;
use crate::mapping::MappedRegion;

/// What opening a journal for writing found and did.
///
/// # Example
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let options = kekbit_std::journal::JournalOptions::new().segment_bytes(4096);
/// let writer = options.open_writer(dir.path())?;
/// assert!(writer.recovery().created);
/// writer.close()?;
/// let writer = options.open_writer(dir.path())?;
/// let recovery = writer.recovery();
/// assert!(!recovery.created);
/// assert!(recovery.discarded_segments.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovery {
    /// The folder held no journal: a new one was created.
    pub created: bool,
    /// Temporary files of a previous writer, removed.
    pub removed_temp_files: Vec<PathBuf>,
    /// Trailing segments whose header never became valid, deleted.
    pub deleted_segments: Vec<PathBuf>,
    /// Segments after the cut (the first damage), renamed `*.discarded`:
    /// their new paths.
    pub discarded_segments: Vec<PathBuf>,
    /// Bases of segments that were complete but not sealed, sealed now.
    pub sealed_segments: Vec<u64>,
    /// Sealed segments walked record by record.
    pub walked_segments: usize,
    /// Where writing resumed inside an existing segment, if it did.
    pub resumed_at: Option<u64>,
}

/// The journal as recovery leaves it: everything on the device, up to its
/// end.
pub(crate) struct Opened {
    pub(crate) journal_id: u64,
    pub(crate) segment: Segment,
    /// Every retained segment, oldest first; the last is `segment`.
    pub(crate) entries: Vec<Entry>,
    pub(crate) recovery: Recovery,
}

/// A segment found in the folder, with its checked header.
struct Found {
    base: u64,
    path: PathBuf,
    header: Header,
}

impl Found {
    fn expected_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.header.capacity_bytes)
    }

    fn entry(&self) -> Entry {
        Entry {
            base: self.base,
            path: self.path.clone(),
            file_len: self.expected_len(),
            created_millis: super::segment::creation_millis(&self.header),
        }
    }
}

/// Creates or recovers the journal in `dir`, whose lock the caller holds;
/// `previous` is what the lock file said before; `folders` are the folder
/// and the folders made for it, all synced at the end.
pub(crate) fn open(
    dir: &Path,
    options: &JournalOptions,
    previous: Option<LockText>,
    folders: &[PathBuf],
) -> Result<Opened, JournalError> {
    let mut recovery = Recovery::default();
    let listing = list(dir)?;
    for temp in listing.temps {
        remove(&temp)?;
        recovery.removed_temp_files.push(temp);
    }
    let mut listed = listing.segments;

    // 2. Trailing segments that never became valid.
    let mut journal_id = None;
    let mut start = 0;
    while let Some((base, path)) = listed.last().cloned() {
        match probe(&path)? {
            Probe::Invalid => {
                remove(&path)?;
                recovery.deleted_segments.push(path);
                listed.pop();
                start = base;
            }
            Probe::Valid { header, .. } => {
                journal_id = Some(header.journal_id);
                break;
            }
        }
    }
    let Some(journal_id) = journal_id else {
        // No segment ever became valid: a new journal, where the options
        // say, else where its first segment was being made.
        let id = options.journal_id.unwrap_or_else(random_id);
        let base = options.first_position.unwrap_or(start);
        return create(dir, options, id, base, 0, recovery, folders);
    };

    // 3. Headers.
    let mut found = Vec::with_capacity(listed.len());
    for (i, (base, path)) in listed.iter().enumerate() {
        let last = i + 1 == listed.len();
        let (header, file_len) = match probe(path)? {
            Probe::Valid { header, file_len } => (header, file_len),
            Probe::Invalid => break, // never the last: cut here
        };
        check_header(dir, path, *base, &header, journal_id)?;
        let segment = Found {
            base: *base,
            path: path.clone(),
            header,
        };
        if file_len > segment.expected_len() {
            return Err(JournalError::not_a_journal(
                dir,
                format!(
                    "segment {} is {file_len} bytes, longer than its header says ({})",
                    path.display(),
                    segment.expected_len()
                ),
            ));
        }
        if file_len < segment.expected_len() && !last {
            break; // a sealed segment cut short by power loss: cut here
        }
        found.push(segment);
    }
    let cut = found.len();
    if cut == 0 {
        // Not even the first segment is sound: the journal starts again
        // where it did.
        set_aside(&listed, &mut recovery)?;
        return create(dir, options, journal_id, listed[0].0, 0, recovery, folders);
    }
    set_aside(&listed[cut..], &mut recovery)?;

    // 4 and 5.
    let checkpoint = previous.and_then(|text| text.checkpoint).unwrap_or(0);
    let mut suspect: Vec<bool> = Vec::with_capacity(found.len());
    for pair in found.windows(2) {
        suspect.push(!sealed_at(&pair[0], pair[1].base - pair[0].base)?);
    }
    let last = &found[found.len() - 1];
    let (_, region) = map_writable(&last.path, last.expected_len(), options.prefault)?;
    let handle = region.handle();
    // SAFETY: this process holds the journal's lock, so no other writer
    // exists on the file, and it maps it only here; readers in this
    // process (a `JournalReader`) map files read-only and never resume.
    let resumed = unsafe { Writer::resume_unchecked(region) };
    let mut current = match resumed {
        Ok(writer) => Current::Open(writer),
        Err(ResumeError::Closed | ResumeError::Full) => Current::Sealed(handle),
        Err(ResumeError::Header(e)) => {
            return Err(JournalError::not_a_journal(
                dir,
                format!("segment {}: {e}", last.path.display()),
            ));
        }
    };
    let mut kept = found.len();
    for i in 0..found.len() - 1 {
        let segment = &found[i];
        let end = found[i + 1].base;
        // Past the checkpoint, nothing proves a sealed segment reached the
        // device whole: a seal may have been written back before the
        // records it follows, and a sealed last segment proves nothing
        // either (its successor's name may be what power loss took).
        if !(suspect[i] || end > checkpoint) {
            continue;
        }
        recovery.walked_segments += 1;
        let (_, region) = map_writable(&segment.path, segment.expected_len(), false)?;
        let handle = region.handle();
        // SAFETY: as for the last segment above.
        match unsafe { Writer::resume_unchecked(region) } {
            Err(ResumeError::Closed | ResumeError::Full) => {
                if suspect[i] {
                    // Sealed, but not where its successor begins.
                    current.abandon();
                    current = Current::Sealed(handle);
                    kept = i + 1;
                    break;
                }
            }
            Ok(mut writer) => {
                if u64::from(writer.position()) == end - segment.base {
                    // Complete, never sealed: the writer died between
                    // publishing the successor and sealing this one.
                    writer.close();
                    recovery.sealed_segments.push(segment.base);
                } else {
                    current.abandon();
                    current = Current::Open(writer);
                    kept = i + 1;
                    break;
                }
            }
            Err(ResumeError::Header(e)) => {
                return Err(JournalError::not_a_journal(
                    dir,
                    format!("segment {}: {e}", segment.path.display()),
                ));
            }
        }
    }
    set_aside(
        &found[kept..]
            .iter()
            .map(|f| (f.base, f.path.clone()))
            .collect::<Vec<_>>(),
        &mut recovery,
    )?;
    found.truncate(kept);

    // 7. Everything found, and what recovery changed, reaches the device.
    // Sealed segments up to the checkpoint were synced by the writer
    // that sealed them.
    for pair in found.windows(2) {
        if pair[1].base > checkpoint {
            sync_file(&pair[0].path, false)?;
        }
    }
    let last = &found[kept - 1];
    let sequence = last.header.channel_id;
    let mut entries: Vec<Entry> = found.iter().map(Found::entry).collect();
    let segment = match current {
        Current::Open(writer) => {
            recovery.resumed_at = Some(last.base + u64::from(writer.position()));
            sync_file(&last.path, false)?;
            Segment::resumed(writer, last.path.clone())
        }
        Current::Sealed(region) => {
            let (end, _) = framing_end(&region).map_err(|reason| {
                JournalError::not_a_journal(
                    dir,
                    format!("segment {}: {reason}", last.path.display()),
                )
            })?;
            drop(region);
            sync_file(&last.path, false)?;
            let (how, sequence) = if end == 0 {
                entries.pop();
                (Publish::Replace, sequence)
            } else {
                (Publish::Link, sequence + 1)
            };
            let base = last.base + u64::from(end);
            let new = new_file(dir, options)?;
            let (segment, file) =
                Segment::install(dir, options, journal_id, base, sequence, new, how)?;
            file.sync_all()
                .map_err(|e| JournalError::io(&segment.path, "sync the new segment", e))?;
            entries.push(segment.entry());
            segment
        }
    };
    for folder in folders {
        sync_folder(folder)?;
    }
    Ok(Opened {
        journal_id,
        segment,
        entries,
        recovery,
    })
}

/// The last segment's writer, while recovery decides.
enum Current {
    /// Resumed: writing goes on in it.
    Open(Writer<MappedRegion>),
    /// Sealed: writing goes on in a new segment after it.
    Sealed(MappedRegion),
}

impl Current {
    /// Drops a writer that recovery will not use, without sealing it.
    fn abandon(self) {
        if let Self::Open(writer) = self {
            drop(writer.leave_open());
        }
    }
}

/// Creates a new journal in `dir` whose first segment starts at `base`.
fn create(
    dir: &Path,
    options: &JournalOptions,
    journal_id: u64,
    base: u64,
    sequence: u64,
    mut recovery: Recovery,
    folders: &[PathBuf],
) -> Result<Opened, JournalError> {
    recovery.created = true;
    let new = new_file(dir, options)?;
    let (segment, file) =
        Segment::install(dir, options, journal_id, base, sequence, new, Publish::Link)?;
    file.sync_all()
        .map_err(|e| JournalError::io(&segment.path, "sync the new segment", e))?;
    for folder in folders {
        sync_folder(folder)?;
    }
    Ok(Opened {
        journal_id,
        entries: vec![segment.entry()],
        segment,
        recovery,
    })
}

/// A new segment file, made now.
fn new_file(dir: &Path, options: &JournalOptions) -> Result<creation::NewFile, JournalError> {
    let spec = file_spec(dir, options);
    Ok(creation::prepare(
        &spec.stem,
        spec.file_len,
        spec.mode,
        spec.prefault,
    )?)
}

/// How the journal in `dir` makes segment files.
pub(crate) fn file_spec(dir: &Path, options: &JournalOptions) -> FileSpec {
    FileSpec {
        stem: temp_stem(dir),
        file_len: options.file_len(),
        mode: options.mode,
        prefault: options.prefault,
    }
}

/// Checks what a segment's header says against its name and the journal.
fn check_header(
    dir: &Path,
    path: &Path,
    base: u64,
    header: &Header,
    journal_id: u64,
) -> Result<(), JournalError> {
    if !header.is_segment() {
        return Err(JournalError::not_a_journal(
            dir,
            format!("{} is a channel, not a journal segment", path.display()),
        ));
    }
    if header.journal_id != journal_id {
        return Err(JournalError::ForeignSegment {
            path: path.to_path_buf(),
            expected: journal_id,
            found: header.journal_id,
        });
    }
    if header.base_position != base {
        return Err(JournalError::not_a_journal(
            dir,
            format!(
                "{} is named for position {base} but starts at {}",
                path.display(),
                header.base_position
            ),
        ));
    }
    Ok(())
}

/// Whether the segment holds an end marker at record offset `offset`.
fn sealed_at(segment: &Found, offset: u64) -> Result<bool, JournalError> {
    let capacity = u64::from(segment.header.capacity_bytes);
    if offset % RECORD_ALIGN as u64 != 0 || offset + MARKER_LEN as u64 > capacity {
        return Ok(false);
    }
    let file = File::open(&segment.path)
        .map_err(|e| JournalError::io(&segment.path, "open the segment", e))?;
    let mut word = [0u8; 4];
    file.read_exact_at(&mut word, HEADER_LEN as u64 + offset)
        .map_err(|e| JournalError::io(&segment.path, "read the segment's end marker", e))?;
    let word = u32::from_le_bytes(word);
    Ok(word == COMMIT_CLOSED || word == COMMIT_FULL)
}

/// Renames segments after a cut to `*.discarded`.
fn set_aside(segments: &[(u64, PathBuf)], recovery: &mut Recovery) -> Result<(), JournalError> {
    for (_, path) in segments {
        let mut aside = path.as_os_str().to_owned();
        aside.push(DISCARDED_SUFFIX);
        let mut aside = PathBuf::from(aside);
        let mut n = 0;
        while fs::symlink_metadata(&aside).is_ok() {
            n += 1;
            let mut next = path.as_os_str().to_owned();
            next.push(format!("{DISCARDED_SUFFIX}.{n}"));
            aside = PathBuf::from(next);
        }
        fs::rename(path, &aside).map_err(|e| JournalError::io(path, "set the segment aside", e))?;
        recovery.discarded_segments.push(aside);
    }
    Ok(())
}

/// Removes a file; one already gone is fine.
fn remove(path: &Path) -> Result<(), JournalError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(JournalError::io(path, "remove the leftover file", e)),
    }
}

/// A journal id for a new journal: the clock, the pid and a stack address,
/// mixed (SplitMix64); never 0.
fn random_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let local = 0u8;
    let mut z =
        nanos ^ u64::from(std::process::id()).rotate_left(32) ^ (std::ptr::addr_of!(local) as u64);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore)] // reads the OS clock
    fn random_ids_differ() {
        let a = random_id();
        std::thread::sleep(std::time::Duration::from_millis(1));
        assert_ne!(a, random_id());
        assert_ne!(a, 0);
    }
}
