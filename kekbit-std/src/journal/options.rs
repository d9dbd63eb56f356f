//! How to open a journal for writing: segment size, checksums, retention,
//! background flushing, and what only files have.

use std::path::Path;
use std::time::Duration;

use kekbit_nostd::format::{HEADER_LEN, MIN_CAPACITY, RECORD_ALIGN};
use kekbit_nostd::{ChannelConfig, Header, TickUnit};

use super::error::JournalError;
use super::writer::JournalWriter;
use crate::error::ChannelError;
use crate::writer::DEFAULT_MODE;

/// The record area of a new segment unless the options say otherwise: 64 MiB.
pub const DEFAULT_SEGMENT_BYTES: u32 = 64 << 20;

/// Which sealed segments the writer deletes: the oldest first, whole
/// segments only, never the one being written. Every limit that is set
/// applies; `Retention::default()` keeps everything.
///
/// Retention runs on the writer's background thread after each roll (and
/// once when the writer opens), and the folder is synced after each
/// deletion. A reader that needs a deleted segment gets
/// [`JournalError::BehindRetention`]; one that is reading a segment when it
/// is deleted reads it to its end first (its mapping stays valid).
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use kekbit_std::journal::Retention;
///
/// // The last 10 segments, at most 1 GiB, nothing sealed over a day ago.
/// let retention = Retention {
///     max_segments: Some(10),
///     max_bytes: Some(1 << 30),
///     max_age: Some(Duration::from_secs(24 * 3600)),
/// };
/// assert_eq!(Retention::default().max_segments, None);
/// # let _ = retention;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many segments, the one being written included
    /// (at least that one is always kept).
    pub max_segments: Option<usize>,
    /// Keep at most this many bytes of segment files (header and record
    /// area, the one being written included).
    pub max_bytes: Option<u64>,
    /// Delete segments sealed longer ago than this (a segment is sealed when
    /// its successor is created, which the successor's header records).
    pub max_age: Option<Duration>,
}

/// How to open a journal for writing; [`open_writer`](Self::open_writer)
/// creates the journal if its folder holds none, and recovers it otherwise.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use kekbit_std::journal::{JournalOptions, Retention};
///
/// let dir = tempfile::tempdir()?;
/// let mut writer = JournalOptions::new()
///     .segment_bytes(1 << 20)
///     .max_record_len(64 << 10)
///     .roll_after(Duration::from_secs(3600))
///     .retention(Retention { max_segments: Some(8), ..Retention::default() })
///     .flush_every(Some(Duration::from_millis(100)), Some(1 << 20))
///     .open_writer(dir.path().join("events"))?;
/// let position = writer.append(b"hello")?;
/// assert_eq!(position, 0);
/// writer.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalOptions {
    pub(crate) segment_bytes: u32,
    pub(crate) max_record_len: Option<u32>,
    pub(crate) roll_after: Option<Duration>,
    pub(crate) checksums: bool,
    pub(crate) timeout: Duration,
    pub(crate) retention: Retention,
    pub(crate) flush_interval: Option<Duration>,
    pub(crate) flush_bytes: Option<u64>,
    pub(crate) journal_id: Option<u64>,
    pub(crate) first_position: Option<u64>,
    pub(crate) prefault: bool,
    pub(crate) mode: u32,
}

impl Default for JournalOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl JournalOptions {
    /// The defaults: segments of [`DEFAULT_SEGMENT_BYTES`] (64 MiB), records
    /// up to what a segment holds, checksums on, pre-faulting on, mode
    /// `0600`, no heartbeat timeout, no retention, no background flusher
    /// (records reach the device when the kernel writes them back, or at
    /// [`sync`](JournalWriter::sync)), a random journal id, a new journal's
    /// first record at position 0.
    ///
    /// # Example
    ///
    /// ```
    /// let options = kekbit_std::journal::JournalOptions::new();
    /// assert_eq!(options.segment_capacity(), 64 << 20);
    /// ```
    pub fn new() -> Self {
        Self {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            max_record_len: None,
            roll_after: None,
            checksums: true,
            timeout: Duration::ZERO,
            retention: Retention::default(),
            flush_interval: None,
            flush_bytes: None,
            journal_id: None,
            first_position: None,
            prefault: true,
            mode: DEFAULT_MODE,
        }
    }

    /// Sets the record area of new segments, in bytes: a multiple of 8, at
    /// least 24. Existing segments keep theirs.
    ///
    /// Each segment file is this plus a 192-byte header; with pre-faulting
    /// on, the writer also keeps one more segment ready (see
    /// [`prefault`](Self::prefault)).
    ///
    /// # Example
    ///
    /// ```
    /// let options = kekbit_std::journal::JournalOptions::new().segment_bytes(4096);
    /// assert_eq!(options.segment_capacity(), 4096);
    /// ```
    #[must_use]
    pub fn segment_bytes(mut self, bytes: u32) -> Self {
        self.segment_bytes = bytes;
        self
    }

    /// The record area of new segments; see [`segment_bytes`](Self::segment_bytes).
    pub fn segment_capacity(&self) -> u32 {
        self.segment_bytes
    }

    /// Sets the longest record, at most what an empty segment holds
    /// (`segment_bytes - 16`, which is also the default).
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_std::journal::{JournalError, JournalOptions};
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = JournalOptions::new()
    ///     .segment_bytes(4096)
    ///     .max_record_len(100)
    ///     .open_writer(dir.path())?;
    /// assert!(matches!(writer.append(&[0; 101]), Err(JournalError::TooLarge { len: 101, max: 100 })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn max_record_len(mut self, len: u32) -> Self {
        self.max_record_len = Some(len);
        self
    }

    /// Also rolls to a new segment when the current one is older than `age`
    /// (checked at each append, and at [`roll`](JournalWriter::roll)); a
    /// segment with no record is never rolled.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = kekbit_std::journal::JournalOptions::new()
    ///     .segment_bytes(4096)
    ///     .roll_after(Duration::from_millis(1))
    ///     .open_writer(dir.path())?;
    /// writer.append(b"in the first segment")?;
    /// std::thread::sleep(Duration::from_millis(20));
    /// let position = writer.append(b"in the second")?;
    /// assert_eq!(writer.segment_base(), position);
    /// assert!(position > 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn roll_after(mut self, age: Duration) -> Self {
        self.roll_after = Some(age);
        self
    }

    /// Turns per-record CRC32C checksums on (the default) or off. Recovery
    /// relies on them to find records torn by power loss: turn them off only
    /// for journals in memory (`/dev/shm`).
    ///
    /// # Example
    ///
    /// ```
    /// let options = kekbit_std::journal::JournalOptions::new().checksums(false);
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn checksums(mut self, on: bool) -> Self {
        self.checksums = on;
        self
    }

    /// Sets the writer's heartbeat timeout (whole milliseconds; zero, the
    /// default, turns abandonment detection off). With a timeout, readers
    /// report [`JournalError::Abandoned`] once the writer has neither
    /// written nor heartbeated for that long: a writer that may idle longer
    /// must call [`heartbeat`](JournalWriter::heartbeat) from its idle loop.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = kekbit_std::journal::JournalOptions::new().timeout(Duration::from_secs(5));
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Sets which sealed segments the writer deletes; see [`Retention`].
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_std::journal::{JournalOptions, Retention};
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = JournalOptions::new()
    ///     .segment_bytes(4096)
    ///     .retention(Retention { max_segments: Some(2), ..Retention::default() })
    ///     .open_writer(dir.path())?;
    /// for _ in 0..5 {
    ///     writer.append(b"x")?;
    ///     writer.roll()?;
    /// }
    /// assert_eq!(writer.segment_count(), 2); // the files go in the background
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn retention(mut self, r: Retention) -> Self {
        self.retention = r;
        self
    }

    /// Starts a background flusher that makes records durable (as
    /// [`sync`](JournalWriter::sync) does) every `interval`, and whenever
    /// `bytes` of records have been appended since the last sync; `None`
    /// for both (the default) starts none. It shares its syncs with every
    /// other caller of `sync` and with group commits.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = kekbit_std::journal::JournalOptions::new()
    ///     .segment_bytes(4096)
    ///     .flush_every(Some(Duration::from_millis(5)), None)
    ///     .open_writer(dir.path())?;
    /// let end = { writer.append(b"made durable in the background")?; writer.end_position() };
    /// let deadline = Instant::now() + Duration::from_secs(10);
    /// while writer.durable_position() < end && Instant::now() < deadline {
    ///     std::thread::sleep(Duration::from_millis(1));
    /// }
    /// assert_eq!(writer.durable_position(), end);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn flush_every(mut self, interval: Option<Duration>, bytes: Option<u64>) -> Self {
        self.flush_interval = interval;
        self.flush_bytes = bytes;
        self
    }

    /// Sets the id written into every segment of a NEW journal (default: a
    /// random one). An existing journal keeps its id.
    ///
    /// # Example
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let writer = kekbit_std::journal::JournalOptions::new()
    ///     .segment_bytes(4096)
    ///     .journal_id(0xfeed)
    ///     .open_writer(dir.path())?;
    /// assert_eq!(writer.journal_id(), 0xfeed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn journal_id(mut self, id: u64) -> Self {
        self.journal_id = Some(id);
        self
    }

    /// Sets the position of a NEW journal's first record (default 0): its
    /// first segment's base. An existing journal keeps its positions, as it
    /// keeps its id.
    ///
    /// For a journal that continues a stream begun elsewhere: a replica
    /// whose source starts past 0 (the source's retention dropped its first
    /// segments, or the copy starts at a later record) keeps the source's
    /// positions. Positions before it are [`JournalError::BehindRetention`]
    /// to readers, as if retention had deleted them.
    ///
    /// It must be a multiple of 8 and leave room for a segment
    /// (`position + segment_bytes` within 64 bits): otherwise
    /// [`open_writer`](Self::open_writer) fails with a configuration error
    /// before it touches anything.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_std::journal::{JournalError, JournalOptions, JournalReader, Start};
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = JournalOptions::new()
    ///     .segment_bytes(4096)
    ///     .first_position(1 << 20)
    ///     .open_writer(dir.path())?;
    /// assert_eq!(writer.append(b"first")?, 1 << 20);
    /// assert_eq!(writer.first_position(), 1 << 20);
    /// assert!(writer.segment_path().ends_with("00000000000001048576.kekbit"));
    /// let mut reader = JournalReader::open(dir.path())?;
    /// assert_eq!(reader.try_read()?.unwrap().position, 1 << 20);
    /// let err = JournalReader::open_at(dir.path(), Start::Position(0)).unwrap_err();
    /// assert!(matches!(err, JournalError::BehindRetention { first_available: 1048576, .. }));
    ///
    /// let odd = JournalOptions::new().first_position(12).open_writer(dir.path().join("odd"));
    /// assert!(matches!(odd, Err(JournalError::Channel(_)))); // not a multiple of 8
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn first_position(mut self, position: u64) -> Self {
        self.first_position = Some(position);
        self
    }

    /// Turns pre-faulting on (the default) or off.
    ///
    /// With it, each segment's space is reserved (`posix_fallocate`) and its
    /// pages faulted in for writing ahead of time, on the writer's
    /// background thread, while the writer fills the previous segment: a
    /// roll then costs a header and a link, not a segment's worth of page
    /// faults, and a full file system is an error at the roll, never a
    /// `SIGBUS`. It costs one segment of memory or disk held in advance
    /// (two, once a roll has had to wait for one).
    ///
    /// # Example
    ///
    /// ```
    /// let options = kekbit_std::journal::JournalOptions::new().prefault(false);
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn prefault(mut self, on: bool) -> Self {
        self.prefault = on;
        self
    }

    /// Sets the permission bits of new segment files and of the lock file,
    /// exactly (the umask does not apply); a folder the writer makes gets
    /// `0700` plus read and search for whoever may read the files. As for
    /// channels, a mode that lets group or others write makes readers need
    /// the `unsafe` [`JournalReader::open_shared_at`](super::JournalReader::open_shared_at).
    ///
    /// # Example
    ///
    /// ```
    /// use std::os::unix::fs::PermissionsExt;
    /// let dir = tempfile::tempdir()?;
    /// let writer = kekbit_std::journal::JournalOptions::new()
    ///     .segment_bytes(4096)
    ///     .mode(0o640)
    ///     .open_writer(dir.path().join("j"))?;
    /// let folder = std::fs::metadata(writer.path())?;
    /// assert_eq!(folder.permissions().mode() & 0o777, 0o750);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o7777;
        self
    }

    /// Opens the journal in folder `dir` for writing: takes the writer's
    /// lock (another writer, in any process, gets
    /// [`JournalError::Locked`]), then creates the journal (and the folder)
    /// if none is there, or recovers it. See [`JournalWriter`] for what
    /// recovery does.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_std::journal::{JournalError, JournalOptions};
    /// let dir = tempfile::tempdir()?;
    /// let options = JournalOptions::new().segment_bytes(4096);
    /// let first = options.open_writer(dir.path())?;
    /// assert!(matches!(options.open_writer(dir.path()), Err(JournalError::Locked { .. })));
    /// drop(first);
    /// assert!(options.open_writer(dir.path()).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_writer(&self, dir: impl AsRef<Path>) -> Result<JournalWriter, JournalError> {
        JournalWriter::open_with(dir.as_ref(), self)
    }

    /// The configuration of a new segment at `base`, or why these options
    /// cannot make one.
    pub(crate) fn segment_config(
        &self,
        dir: &Path,
        journal_id: u64,
        base: u64,
        sequence: u64,
        creation_millis: u64,
    ) -> Result<ChannelConfig, JournalError> {
        let config = ChannelConfig::new(sequence)
            .writer_id(u64::from(std::process::id()))
            .capacity_bytes(self.segment_bytes)
            .max_record_len(self.record_limit())
            .timeout(self.timeout_millis(), TickUnit::Millis)
            .creation_time(creation_millis)
            .checksums(self.checksums)
            .epoch_time(true)
            .segment(journal_id, base);
        config
            .header_for(self.file_len())
            .map_err(|source| ChannelError::Config {
                path: dir.to_path_buf(),
                source,
            })?;
        Ok(config)
    }

    /// Checks the options before anything is touched.
    pub(crate) fn check(&self, dir: &Path) -> Result<(), JournalError> {
        let capacity = self.segment_bytes;
        if capacity < MIN_CAPACITY || capacity % RECORD_ALIGN as u32 != 0 {
            return Err(ChannelError::Config {
                path: dir.to_path_buf(),
                source: kekbit_nostd::HeaderError::CapacityOutOfRange {
                    capacity,
                    min: MIN_CAPACITY,
                },
            }
            .into());
        }
        self.segment_config(dir, 0, self.first_position.unwrap_or(0), 0, 0)
            .map(drop)
    }

    /// The longest record new segments take.
    pub(crate) fn record_limit(&self) -> u32 {
        self.max_record_len
            .unwrap_or_else(|| Header::max_record_len_limit(self.segment_bytes))
    }

    /// The length of a new segment's file.
    pub(crate) fn file_len(&self) -> usize {
        HEADER_LEN + self.segment_bytes as usize
    }

    /// The timeout in whole milliseconds, saturating.
    pub(crate) fn timeout_millis(&self) -> u64 {
        u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_sizes_are_config_errors() {
        let dir = Path::new("/j");
        for bytes in [0, 16, 23, 25, 4097] {
            let err = JournalOptions::new().segment_bytes(bytes).check(dir);
            assert!(
                matches!(err, Err(JournalError::Channel(ChannelError::Config { .. }))),
                "{bytes}: {err:?}"
            );
        }
        assert!(JournalOptions::new().segment_bytes(24).check(dir).is_ok());
        let over = JournalOptions::new()
            .segment_bytes(4096)
            .max_record_len(4081);
        assert!(over.check(dir).is_err());
        let exact = JournalOptions::new()
            .segment_bytes(4096)
            .max_record_len(4080);
        assert!(exact.check(dir).is_ok());
        assert_eq!(
            JournalOptions::new().segment_bytes(4096).record_limit(),
            4080
        );
        assert!(JournalOptions::new().max_record_len(0).check(dir).is_err());
    }
}
