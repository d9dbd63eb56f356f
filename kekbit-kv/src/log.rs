//! The store's write-ahead log: the kekbit journal in the store's
//! `journal/` folder, and the few things the store asks of it.
//!
//! The journal gives what the store's promises rest on: its writer lock is
//! the store's lock (one live instance per folder), every record is
//! checksummed and recovery cuts the log at the last valid record before
//! anything new is appended, positions strictly increase, `append_durable`
//! is a group commit, and `truncate_before` deletes whole segments.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use kekbit_std::journal::{
    self, JournalError, JournalOptions, JournalReader, LOCK_FILE_NAME, SharedJournal, Start,
};

use crate::{Error, Result};

/// The journal's folder inside the store's.
pub(crate) const LOG_DIR: &str = "journal";

pub(crate) struct Log {
    journal: SharedJournal,
    dir: PathBuf,
}

/// The store's error for a journal error in `dir` (the journal's folder).
fn from_journal(store: &Path, e: JournalError) -> Error {
    match e {
        JournalError::Locked { pid, .. } => Error::Locked {
            dir: store.to_path_buf(),
            pid,
        },
        JournalError::TooLarge { len, max } => Error::TooLarge {
            len,
            max: max as usize,
        },
        JournalError::Io {
            path,
            action,
            source,
        } => Error::Io {
            path,
            action,
            source,
        },
        other => Error::Log {
            dir: store.join(LOG_DIR),
            reason: other.to_string(),
        },
    }
}

impl Log {
    pub(crate) fn path(store: &Path) -> PathBuf {
        store.join(LOG_DIR)
    }

    /// Opens (or creates) the journal in `store`'s `journal/` folder: the
    /// journal takes its lock first, then recovers.
    pub(crate) fn open(store: &Path, segment_bytes: u32) -> Result<Log> {
        let dir = Self::path(store);
        let segment_bytes = segment_bytes.clamp(4096, 1 << 30) & !7;
        let writer = JournalOptions::new()
            .segment_bytes(segment_bytes)
            .open_writer(&dir)
            .map_err(|e| from_journal(store, e))?;
        Ok(Log {
            journal: writer.into_shared(),
            dir,
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn store(&self) -> &Path {
        self.dir.parent().unwrap_or(&self.dir)
    }

    /// Appends one record; returns its position once the journal holds it.
    pub(crate) fn append(&self, record: &[u8]) -> Result<u64> {
        self.journal
            .append(record)
            .map_err(|e| from_journal(self.store(), e))
    }

    /// Appends and returns once a sync covers the record; concurrent
    /// callers share one sync.
    pub(crate) fn append_durable(&self, record: &[u8]) -> Result<u64> {
        self.journal
            .append_durable(record)
            .map_err(|e| from_journal(self.store(), e))
    }

    pub(crate) fn sync(&self) -> Result<u64> {
        self.journal
            .sync()
            .map_err(|e| from_journal(self.store(), e))
    }

    pub(crate) fn end_position(&self) -> u64 {
        self.journal.end_position()
    }

    pub(crate) fn durable_position(&self) -> u64 {
        self.journal.durable_position()
    }

    pub(crate) fn first_position(&self) -> u64 {
        self.journal.lock().first_position()
    }

    /// Deletes whole sealed segments that end at or before `position`.
    pub(crate) fn truncate_before(&self, position: u64) -> Result<()> {
        self.journal
            .truncate_before(position)
            .map_err(|e| from_journal(self.store(), e))
    }

    /// Bytes the log's files take on disk.
    pub(crate) fn disk_bytes(&self) -> u64 {
        disk_bytes(&self.dir)
    }

    /// Calls `f` for each record from `from` on, in order.
    pub(crate) fn replay(&self, from: u64, f: impl FnMut(u64, &[u8]) -> Result<()>) -> Result<u64> {
        replay(&self.dir, from, f)
    }
}

/// Takes the store's writer lock without opening the log (for `prune` and
/// `clean`, which must not run beside a live store). The journal's lock is
/// an `flock` on `writer.lock`, so this excludes a store, and a store opened
/// meanwhile gets `Error::Locked`.
pub(crate) fn lock_folder(store: &Path) -> Result<File> {
    let path = Log::path(store).join(LOCK_FILE_NAME);
    let mut lock = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, "open the lock file", e))?;
    // SAFETY: flock on a descriptor we own; no memory is involved.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let mut text = String::new();
        let _ = lock.read_to_string(&mut text);
        return Err(Error::Locked {
            dir: store.to_path_buf(),
            pid: text.split_whitespace().next().and_then(|p| p.parse().ok()),
        });
    }
    Ok(lock)
}

/// Whether a live store holds the folder's lock, and its pid if known.
pub(crate) fn live_owner(store: &Path) -> Option<Option<u32>> {
    match lock_folder(store) {
        Err(Error::Locked { pid, .. }) => Some(pid),
        _ => None,
    }
}

/// Bytes the files in `dir` take on disk (allocated blocks).
pub(crate) fn disk_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.blocks() * 512)
                .sum()
        })
        .unwrap_or(0)
}

/// The first retained position of the log in `dir` (no lock taken).
pub(crate) fn first_position(dir: &Path) -> Result<u64> {
    if !dir.is_dir() {
        return Ok(0);
    }
    let info = journal::inspect(dir).map_err(|e| from_journal(dir.parent().unwrap_or(dir), e))?;
    Ok(info.first_position.unwrap_or(0))
}

/// Reads the log in `dir` (no lock taken) from `from` to its end, calling
/// `f` for each record; returns the end.
pub(crate) fn replay(
    dir: &Path,
    from: u64,
    mut f: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<u64> {
    let store = dir.parent().unwrap_or(dir);
    if !dir.is_dir() {
        return Ok(from);
    }
    let mut reader =
        JournalReader::open_at(dir, Start::Position(from)).map_err(|e| from_journal(store, e))?;
    loop {
        match reader.try_read() {
            Ok(Some(record)) => f(record.position, record.payload)?,
            Ok(None) => break,
            Err(e) if e.is_end() => break,
            Err(e) => return Err(from_journal(store, e)),
        }
    }
    Ok(reader.position())
}
