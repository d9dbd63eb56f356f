//! A journal writer shared by many threads, with group commit.

use std::ops::DerefMut;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::durable::Syncer;
use super::error::JournalError;
use super::retention::Retained;
use super::writer::{JournalWriter, truncate};

/// A journal writer that many threads share: each appends under a lock
/// (held only to copy the record in), and those that need their record
/// durable share syncs, leader/follower style, as RocksDB's group commit.
///
/// [`append_durable`](Self::append_durable) returns once a sync covers the
/// record. While one thread syncs (leader), others append and wait; when
/// the sync ends, it publishes the durable position and wakes them; each
/// whose record it covers returns, and one of the rest leads the next
/// sync, for all of them. No sync holds the append lock, so appends never
/// wait for the device.
///
/// It is `Clone` (a handle); the journal is closed, as by
/// [`JournalWriter::close`], when the last handle is dropped.
///
/// # Example
///
/// ```
/// use kekbit_std::journal::{JournalOptions, JournalReader};
///
/// let dir = tempfile::tempdir()?;
/// let journal = JournalOptions::new().segment_bytes(64 << 10).open_writer(dir.path())?.into_shared();
/// std::thread::scope(|s| {
///     for t in 0..4u8 {
///         let journal = journal.clone();
///         s.spawn(move || {
///             for i in 0..25u8 {
///                 // Returns once the record would survive power loss.
///                 let position = journal.append_durable(&[t, i]).unwrap();
///                 assert!(journal.durable_position() > position);
///             }
///         });
///     }
/// });
/// let mut reader = JournalReader::open(dir.path())?;
/// let mut count = 0;
/// while reader.try_read()?.is_some() {
///     count += 1;
/// }
/// assert_eq!(count, 100);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SharedJournal {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Mutex<JournalWriter>,
    syncer: Arc<Syncer>,
    retained: Arc<Retained>,
    dir: PathBuf,
}

impl SharedJournal {
    pub(crate) fn new(writer: JournalWriter) -> Self {
        let syncer = Arc::clone(writer.syncer());
        let retained = Arc::clone(writer.retained());
        let dir = writer.path().to_path_buf();
        Self {
            inner: Arc::new(Inner {
                writer: Mutex::new(writer),
                syncer,
                retained,
                dir,
            }),
        }
    }

    /// Locks the writer, for several records in a row, a zero-copy
    /// [`reserve`](JournalWriter::reserve) or anything else the writer
    /// does. Do not sync while holding it: other threads could not append.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::JournalOptions;
    /// # let dir = tempfile::tempdir()?;
    /// # let journal = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?.into_shared();
    /// let first = {
    ///     let mut writer = journal.lock();
    ///     let first = writer.append(b"one of a pair")?;
    ///     writer.append(b"no other thread's record between")?;
    ///     first
    /// };
    /// assert_eq!(first, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lock(&self) -> impl DerefMut<Target = JournalWriter> + '_ {
        self.writer()
    }

    fn writer(&self) -> MutexGuard<'_, JournalWriter> {
        // A thread that panicked while holding the lock published nothing
        // partial: records are published whole.
        self.inner
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends one record; returns its position. See
    /// [`JournalWriter::append`].
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::JournalOptions;
    /// # let dir = tempfile::tempdir()?;
    /// let journal = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?.into_shared();
    /// assert_eq!(journal.append(b"from any thread")?, 0);
    /// assert_eq!(journal.end_position(), 24);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn append(&self, record: &[u8]) -> Result<u64, JournalError> {
        self.writer().append(record)
    }

    /// Appends one record and returns (its position) once a sync covers
    /// it: the group commit. Concurrent callers share syncs.
    ///
    /// If the sync fails, the record is in the journal but may not survive
    /// power loss; every later sync fails too (see
    /// [`JournalWriter::sync`]). The type's example shows it.
    pub fn append_durable(&self, record: &[u8]) -> Result<u64, JournalError> {
        let (position, end) = {
            let mut writer = self.writer();
            let position = writer.append(record)?;
            (position, writer.end_position())
        };
        self.inner.syncer.wait_durable(end)?;
        Ok(position)
    }

    /// Appends `records` as one batch (see [`JournalWriter::append_all`])
    /// and returns the position of the first once a sync covers them all.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::JournalOptions;
    /// # let dir = tempfile::tempdir()?;
    /// let journal = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?.into_shared();
    /// let first = journal.append_all_durable(&[b"debit", b"credit"])?;
    /// assert_eq!(first, 8);
    /// assert_eq!(journal.durable_position(), journal.end_position());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn append_all_durable(&self, records: &[&[u8]]) -> Result<u64, JournalError> {
        let (first, end) = {
            let mut writer = self.writer();
            let first = writer.append_all(records)?;
            (first, writer.end_position())
        };
        self.inner.syncer.wait_durable(end)?;
        Ok(first)
    }

    /// Makes everything appended so far durable, as
    /// [`JournalWriter::sync`], without holding the append lock while the
    /// device works; returns the durable position.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::JournalOptions;
    /// # let dir = tempfile::tempdir()?;
    /// let journal = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?.into_shared();
    /// journal.append(b"x")?;
    /// assert_eq!(journal.sync()?, 16);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync(&self) -> Result<u64, JournalError> {
        if let Some(e) = self.inner.retained.take_background_error() {
            return Err(e);
        }
        let syncer = &self.inner.syncer;
        syncer.sync_all(syncer.published_end())
    }

    /// Everything before this position survives power loss.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::JournalOptions;
    /// # let dir = tempfile::tempdir()?;
    /// let journal = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?.into_shared();
    /// journal.append(b"not yet synced")?;
    /// assert_eq!(journal.durable_position(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn durable_position(&self) -> u64 {
        self.inner.syncer.durable()
    }

    /// Where the next record goes, read without the append lock; see
    /// [`append`](Self::append) for an example.
    pub fn end_position(&self) -> u64 {
        self.inner.syncer.published_end()
    }

    /// Deletes the whole sealed segments that end at or before `position`,
    /// without the append lock; see [`JournalWriter::truncate_before`].
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::JournalOptions;
    /// # let dir = tempfile::tempdir()?;
    /// let journal = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?.into_shared();
    /// journal.append(b"covered by a snapshot")?;
    /// let next = journal.lock().roll()?;
    /// journal.truncate_before(next)?;
    /// assert_eq!(journal.lock().first_position(), next);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn truncate_before(&self, position: u64) -> Result<(), JournalError> {
        truncate(&self.inner.dir, &self.inner.retained, position)
    }

    /// The journal's folder.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::JournalOptions;
    /// # let dir = tempfile::tempdir()?;
    /// let journal = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?.into_shared();
    /// assert_eq!(journal.path(), dir.path());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    /// How many syncs this journal's writer has run so far, for every
    /// caller together: commits divided by it is the average group size.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::JournalOptions;
    /// # let dir = tempfile::tempdir()?;
    /// let journal = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?.into_shared();
    /// let before = journal.sync_count();
    /// journal.append_durable(b"x")?;
    /// journal.append_durable(b"y")?;
    /// assert_eq!(journal.sync_count(), before + 2); // one thread: no group to share with
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync_count(&self) -> u64 {
        self.inner.syncer.syncs()
    }
}

impl std::fmt::Debug for SharedJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedJournal")
            .field("dir", &self.inner.dir)
            .field("end_position", &self.end_position())
            .field("durable_position", &self.durable_position())
            .finish_non_exhaustive()
    }
}
