//! The writer's list of retained segments, and which ones retention or
//! `truncate_before` deletes: whole sealed segments, oldest first, never the
//! one being written.

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::durable::sync_folder;
use super::error::JournalError;
use super::options::Retention;

/// One retained segment.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) base: u64,
    pub(crate) path: PathBuf,
    /// The file's length: header plus record area.
    pub(crate) file_len: u64,
    /// Its header's creation time, Unix milliseconds.
    pub(crate) created_millis: u64,
}

/// The retained segments, oldest first; the last is the one being
/// written, and each other one is sealed where its successor begins.
#[derive(Debug, Default)]
struct Catalog {
    entries: VecDeque<Entry>,
    total_bytes: u64,
}

/// The catalog, shared by the writer, its background thread and every
/// thread of a shared journal; and its first position, readable without
/// the lock.
#[derive(Debug)]
pub(crate) struct Retained {
    catalog: Mutex<Catalog>,
    first: AtomicU64,
    /// The first error of a deletion on the background thread, reported by
    /// the writer's next `sync`, `truncate_before` or `close`.
    background_error: Mutex<Option<JournalError>>,
}

impl Retained {
    /// The catalog of `entries`, oldest first, the last being written.
    pub(crate) fn new(entries: Vec<Entry>) -> Self {
        let total_bytes = entries.iter().map(|e| e.file_len).sum();
        let first = entries.first().map_or(0, |e| e.base);
        Self {
            catalog: Mutex::new(Catalog {
                entries: entries.into(),
                total_bytes,
            }),
            first: AtomicU64::new(first),
            background_error: Mutex::new(None),
        }
    }

    fn catalog(&self) -> MutexGuard<'_, Catalog> {
        self.catalog.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The base of the oldest retained segment.
    pub(crate) fn first_position(&self) -> u64 {
        self.first.load(Ordering::Acquire)
    }

    /// How many segments are retained.
    pub(crate) fn len(&self) -> usize {
        self.catalog().entries.len()
    }

    /// Records a new segment being written; the previous last one is now
    /// sealed where it begins.
    pub(crate) fn push(&self, entry: Entry) {
        let mut catalog = self.catalog();
        catalog.total_bytes += entry.file_len;
        catalog.entries.push_back(entry);
    }

    /// Takes out of the catalog the segments `policy` no longer keeps at
    /// `now_millis`, oldest first; the caller deletes them.
    pub(crate) fn expired(&self, policy: &Retention, now_millis: u64) -> Vec<PathBuf> {
        let max_age_millis = policy
            .max_age
            .map(|age| u64::try_from(age.as_millis()).unwrap_or(u64::MAX));
        self.take_while(|catalog| {
            let len = catalog.entries.len();
            if policy.max_segments.is_some_and(|n| len > n.max(1)) {
                return true;
            }
            if policy
                .max_bytes
                .is_some_and(|max| catalog.total_bytes > max)
            {
                return true;
            }
            // Sealed when its successor was created.
            let sealed_at = catalog.entries[1].created_millis;
            max_age_millis.is_some_and(|age| now_millis.saturating_sub(sealed_at) > age)
        })
    }

    /// Takes out of the catalog the sealed segments that end at or before
    /// `position`, oldest first; the caller deletes them.
    pub(crate) fn ending_by(&self, position: u64) -> Vec<PathBuf> {
        // A segment ends where its successor begins.
        self.take_while(|catalog| catalog.entries[1].base <= position)
    }

    /// Pops the oldest segment while there is a younger one and `more`
    /// says so.
    fn take_while(&self, mut more: impl FnMut(&Catalog) -> bool) -> Vec<PathBuf> {
        let mut catalog = self.catalog();
        let mut taken = Vec::new();
        while catalog.entries.len() > 1 && more(&catalog) {
            let Some(entry) = catalog.entries.pop_front() else {
                break;
            };
            catalog.total_bytes -= entry.file_len;
            taken.push(entry.path);
        }
        if let Some(first) = catalog.entries.front() {
            // Before the files go: no one is told a deleted position is kept.
            self.first.store(first.base, Ordering::Release);
        }
        taken
    }

    /// Keeps the first error of a background deletion.
    pub(crate) fn background_failed(&self, e: JournalError) {
        self.background_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(e);
    }

    /// The error of a background deletion, once.
    pub(crate) fn take_background_error(&self) -> Option<JournalError> {
        self.background_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// Deletes the segment files at `paths` (one already gone is fine), then
/// syncs the folder, so the deletions survive power loss.
pub(crate) fn delete(dir: &Path, paths: &[PathBuf]) -> Result<(), JournalError> {
    if paths.is_empty() {
        return Ok(());
    }
    for path in paths {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(JournalError::io(path, "delete the segment", e)),
        }
    }
    sync_folder(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn entries(n: u64) -> Vec<Entry> {
        (0..n)
            .map(|i| Entry {
                base: i * 100,
                path: PathBuf::from(format!("s{i}")),
                file_len: 1000,
                created_millis: 10_000 + i * 1000,
            })
            .collect()
    }

    fn names(paths: &[PathBuf]) -> Vec<String> {
        paths.iter().map(|p| p.display().to_string()).collect()
    }

    #[test]
    fn counts_keep_at_least_the_segment_being_written() {
        let retained = Retained::new(entries(5));
        let policy = Retention {
            max_segments: Some(2),
            ..Retention::default()
        };
        assert_eq!(names(&retained.expired(&policy, 0)), ["s0", "s1", "s2"]);
        assert_eq!(retained.first_position(), 300);
        assert!(retained.expired(&policy, 0).is_empty());
        let zero = Retention {
            max_segments: Some(0),
            ..Retention::default()
        };
        assert_eq!(names(&retained.expired(&zero, 0)), ["s3"]);
        assert_eq!(retained.len(), 1);
        assert!(retained.expired(&zero, u64::MAX).is_empty());
    }

    #[test]
    fn bytes_and_age_delete_whole_sealed_segments() {
        let retained = Retained::new(entries(5));
        let bytes = Retention {
            max_bytes: Some(3500),
            ..Retention::default()
        };
        assert_eq!(names(&retained.expired(&bytes, 0)), ["s0", "s1"]);
        let retained = Retained::new(entries(5));
        // s0 was sealed at 11_000 (when s1 was created), s1 at 12_000.
        let age = Retention {
            max_age: Some(Duration::from_millis(2500)),
            ..Retention::default()
        };
        assert_eq!(names(&retained.expired(&age, 14_000)), ["s0"]);
        assert_eq!(names(&retained.expired(&age, 14_501)), ["s1"]);
        assert_eq!(retained.first_position(), 200);
    }

    #[test]
    fn truncation_stops_at_the_first_segment_that_ends_later() {
        let retained = Retained::new(entries(4));
        assert!(retained.ending_by(99).is_empty());
        assert_eq!(names(&retained.ending_by(100)), ["s0"]);
        assert_eq!(names(&retained.ending_by(299)), ["s1"]);
        assert_eq!(names(&retained.ending_by(u64::MAX)), ["s2"]);
        assert_eq!(retained.first_position(), 300);
        assert_eq!(retained.len(), 1);
    }
}
