//! Durability: what a sync must write back, the durable position, and the
//! group commit that lets many waiters share one sync.
//!
//! The writer publishes its end position here after every append (one
//! atomic store) and registers each segment it creates. A sync, from
//! whichever thread runs it, reads the published end, writes back every
//! sealed segment it has not synced yet (`fdatasync`, `fsync` for a new
//! file), the published range of the current one (`msync`), and the
//! folder if segments were created; then it publishes the new durable
//! position. It holds no lock while it waits for the device, so appends
//! (and rolls) never wait for a sync.
//!
//! Group commit, leader/follower: a thread that needs a position durable
//! either finds a sync running (it waits, and re-checks when woken) or runs
//! one itself, up to everything published so far, for everyone. A failed
//! sync is sticky: after it, every sync fails, since the kernel may have
//! dropped the pages it could not write, and a later `fsync` could report
//! success without them. Reopening the journal recovers from the files.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use kekbit_nostd::Region;
use kekbit_nostd::format::{HEADER_LEN, MARKER_LEN};

use super::error::JournalError;
use super::lock::LockNote;
use crate::fault::{self, Step};
use crate::mapping::MappedRegion;
use crate::writer::copy_error;

/// What a sync still owes the device, and what the writer is writing.
struct Pending {
    /// The segment being written.
    current: Option<Current>,
    /// Segments sealed since the last sync, oldest first; only a sync
    /// removes them, from the front.
    sealed: Vec<Sealed>,
    /// The folder, then (until the first sync) the folders made for it:
    /// their entries name segments created since the last sync.
    folders: Vec<PathBuf>,
    /// Whether `folders` must be synced.
    folders_owed: bool,
    /// Counts every change that makes the folders owed, so a sync clears
    /// the debt only if nothing was created while it ran.
    folder_changes: u64,
}

/// The segment being written.
struct Current {
    base: u64,
    path: PathBuf,
    /// A handle to the writer's mapping, for `msync`.
    region: MappedRegion,
    /// Journal position up to which its records are written back.
    synced_to: u64,
    /// The file, while its creation (inode, header) is not yet synced.
    new_file: Option<Arc<File>>,
}

/// A sealed segment not synced since it was last written.
#[derive(Clone)]
struct Sealed {
    path: PathBuf,
    /// Its creation is not synced either: `fsync`, not `fdatasync`.
    new_file: bool,
}

/// The group commit's state.
struct Group {
    /// A sync is running; whoever needs one waits for it.
    syncing: bool,
    /// The first sync that failed: every later one fails with it.
    failed: Option<Failure>,
}

/// A failed sync, kept to report again.
struct Failure {
    path: PathBuf,
    error: io::Error,
}

/// The durability state one journal writer shares with its flusher and
/// with every thread of a [`SharedJournal`](super::SharedJournal).
pub(crate) struct Syncer {
    /// End position of the published records (the writer's end): stored by
    /// the writer after every append, `Release`.
    published_end: AtomicU64,
    /// Everything before it has been written back: only grows.
    durable: AtomicU64,
    pending: Mutex<Pending>,
    group: Mutex<Group>,
    wake: Condvar,
    /// Where the durable position is noted for other processes.
    note: Option<Arc<LockNote>>,
    /// Syncs run so far (for tests and figures).
    syncs: AtomicU64,
}

impl Syncer {
    /// A syncer for a journal whose records up to `durable` are on the
    /// device and whose writer's end is `end`; `folders` are the journal's
    /// folder and the folders made for it, owed a sync if `folders_owed`.
    pub(crate) fn new(
        durable: u64,
        end: u64,
        folders: Vec<PathBuf>,
        folders_owed: bool,
        note: Option<Arc<LockNote>>,
    ) -> Self {
        Self {
            published_end: AtomicU64::new(end),
            durable: AtomicU64::new(durable),
            pending: Mutex::new(Pending {
                current: None,
                sealed: Vec::new(),
                folders,
                folders_owed,
                folder_changes: 0,
            }),
            group: Mutex::new(Group {
                syncing: false,
                failed: None,
            }),
            wake: Condvar::new(),
            note,
            syncs: AtomicU64::new(0),
        }
    }

    /// Records that the writer's records now end at `end`.
    #[inline]
    pub(crate) fn publish_end(&self, end: u64) {
        self.published_end.store(end, Ordering::Release);
    }

    /// Where the published records end.
    #[inline]
    pub(crate) fn published_end(&self) -> u64 {
        self.published_end.load(Ordering::Acquire)
    }

    /// Everything before this position has been written back.
    #[inline]
    pub(crate) fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Syncs run so far.
    pub(crate) fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers the segment now being written, at `base`, written back up
    /// to `synced_to`; `new_file` if its creation is not synced yet. The
    /// previous one, if any, is sealed and owed a sync.
    pub(crate) fn set_current(
        &self,
        base: u64,
        path: PathBuf,
        region: MappedRegion,
        synced_to: u64,
        new_file: Option<File>,
    ) {
        let mut pending = self.pending();
        if let Some(old) = pending.current.take() {
            pending.sealed.push(Sealed {
                path: old.path,
                new_file: old.new_file.is_some(),
            });
        }
        if new_file.is_some() {
            pending.folders_owed = true;
            pending.folder_changes += 1;
        }
        pending.current = Some(Current {
            base,
            path,
            region,
            synced_to,
            new_file: new_file.map(Arc::new),
        });
    }

    /// Whether a sync has anything to do beyond `durable`.
    fn owes(&self) -> bool {
        let pending = self.pending();
        pending.folders_owed
            || !pending.sealed.is_empty()
            || pending
                .current
                .as_ref()
                .is_some_and(|c| c.new_file.is_some())
    }

    /// Returns once everything before `target` is durable, running a sync
    /// for every waiter or waiting for the one running (group commit).
    pub(crate) fn wait_durable(&self, target: u64) -> Result<u64, JournalError> {
        self.lead_or_follow(|s| s.durable() >= target)
    }

    /// Returns once everything before `target` is durable and nothing else
    /// (a sealed segment, a new file, the folder) is owed: `sync()`.
    pub(crate) fn sync_all(&self, target: u64) -> Result<u64, JournalError> {
        self.lead_or_follow(|s| s.durable() >= target && !s.owes())
    }

    /// The group commit: until `done`, either wait for the running sync or
    /// run one.
    fn lead_or_follow(&self, done: impl Fn(&Self) -> bool) -> Result<u64, JournalError> {
        let mut group = self.group.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if done(self) {
                return Ok(self.durable());
            }
            if let Some(failure) = &group.failed {
                return Err(JournalError::io(
                    &failure.path,
                    "sync the journal (an earlier sync failed, so records may be lost: reopen the journal)",
                    copy_error(&failure.error),
                ));
            }
            if group.syncing {
                group = self
                    .wake
                    .wait(group)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            group.syncing = true;
            drop(group);
            let leader = Leader(self);
            let result = self.sync_once();
            group = leader.finish(&result);
            result?;
        }
    }

    /// One sync, up to the published end as it is now.
    fn sync_once(&self) -> Result<(), JournalError> {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        let end = self.published_end();
        // A snapshot, so that no lock is held while the device works.
        let (sealed, current, folders, folder_changes) = {
            let pending = self.pending();
            let current = pending.current.as_ref().map(|c| {
                (
                    c.base,
                    c.path.clone(),
                    c.region.handle(),
                    c.synced_to,
                    c.new_file.clone(),
                )
            });
            let folders = if pending.folders_owed {
                pending.folders.clone()
            } else {
                Vec::new()
            };
            (
                pending.sealed.clone(),
                current,
                folders,
                pending.folder_changes,
            )
        };
        for segment in &sealed {
            sync_file(&segment.path, segment.new_file)?;
        }
        if let Some((base, path, region, synced_to, new_file)) = &current {
            if end > *synced_to {
                // Published records, and the commit word after them.
                let from = HEADER_LEN as u64 + (synced_to - base);
                let to =
                    (HEADER_LEN as u64 + (end - base) + MARKER_LEN as u64).min(region.len() as u64);
                fault::check(Step::JournalSync)
                    .and_then(|()| region.flush_range(from as usize, (to - from) as usize))
                    .map_err(|e| JournalError::io(path, "write the segment back (msync)", e))?;
            }
            if let Some(file) = new_file {
                fault::check(Step::JournalSync)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| JournalError::io(path, "sync the new segment", e))?;
            }
        }
        for folder in &folders {
            sync_folder(folder)?;
        }
        {
            let mut pending = self.pending();
            // Only syncs remove sealed entries, and one runs at a time.
            pending.sealed.drain(..sealed.len());
            if let (Some(c), Some((base, _, _, _, new_file))) = (pending.current.as_mut(), &current)
            {
                if c.base == *base {
                    c.synced_to = c.synced_to.max(end);
                    if new_file.is_some() {
                        c.new_file = None;
                    }
                }
            }
            if !folders.is_empty() && pending.folder_changes == folder_changes {
                pending.folders_owed = false;
                // The folders made for the journal needed one sync only.
                pending.folders.truncate(1);
            }
        }
        self.durable.fetch_max(end, Ordering::AcqRel);
        if let Some(note) = &self.note {
            note.durable(self.durable());
        }
        Ok(())
    }
}

/// The running sync's leader: whatever happens (even a panic), it ends
/// the sync, records a failure and wakes the waiters.
struct Leader<'a>(&'a Syncer);

impl<'a> Leader<'a> {
    fn finish(self, result: &Result<(), JournalError>) -> MutexGuard<'a, Group> {
        let syncer = self.0;
        std::mem::forget(self);
        let mut group = syncer.group.lock().unwrap_or_else(PoisonError::into_inner);
        group.syncing = false;
        if let Err(e) = result {
            group.failed.get_or_insert_with(|| failure_of(e));
        }
        syncer.wake.notify_all();
        group
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        // Only reached by unwinding out of the sync.
        let mut group = self.0.group.lock().unwrap_or_else(PoisonError::into_inner);
        group.syncing = false;
        group.failed.get_or_insert(Failure {
            path: PathBuf::new(),
            error: io::Error::other("a sync panicked"),
        });
        self.0.wake.notify_all();
    }
}

fn failure_of(e: &JournalError) -> Failure {
    match e {
        JournalError::Io { path, source, .. } => Failure {
            path: path.clone(),
            error: copy_error(source),
        },
        other => Failure {
            path: other.path().map(Path::to_path_buf).unwrap_or_default(),
            error: io::Error::other(other.to_string()),
        },
    }
}

/// `fdatasync`s the file at `path` (`fsync` if `whole`, for a file whose
/// creation is not synced yet). A file deleted meanwhile (retention) needs
/// nothing.
pub(crate) fn sync_file(path: &Path, whole: bool) -> Result<(), JournalError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(JournalError::io(path, "open the segment to sync it", e)),
    };
    fault::check(Step::JournalSync)
        .and_then(|()| {
            if whole {
                file.sync_all()
            } else {
                file.sync_data()
            }
        })
        .map_err(|e| JournalError::io(path, "sync the segment", e))
}

/// `fsync`s a folder, so the names created or removed in it survive.
pub(crate) fn sync_folder(folder: &Path) -> Result<(), JournalError> {
    fault::check(Step::FolderSync)
        .and_then(|()| File::open(folder))
        .and_then(|dir| dir.sync_all())
        .map_err(|e| JournalError::io(folder, "sync the journal folder", e))
}
