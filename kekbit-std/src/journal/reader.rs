//! Reading a journal: across segment boundaries, from any retained
//! position, waiting as channel readers wait.

use std::iter::FusedIterator;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kekbit_nostd::format::MARKER_LEN;
use kekbit_nostd::{ReadError, Reader, SeekError, Status};

use super::error::JournalError;
use super::layout::{list, segment_path};
use super::segment::record_span;
use crate::clock::SystemClock;
use crate::error::ChannelError;
use crate::location::check_folder;
use crate::mapping::MappedRegion;
use crate::reader::{ShmReader, Trust};
use crate::wait::{WaitStrategy, Waiter};

/// Where a [`JournalReader`] starts.
///
/// # Example
///
/// ```
/// use kekbit_std::journal::{JournalOptions, JournalReader, Start};
/// let dir = tempfile::tempdir()?;
/// let mut writer = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?;
/// let first = writer.append(b"first")?;
/// let second = writer.append(b"second")?;
/// let at = |start| JournalReader::open_at(dir.path(), start).map(|r| r.position());
/// assert_eq!(at(Start::Beginning)?, first);
/// assert_eq!(at(Start::Position(second))?, second);
/// assert_eq!(at(Start::End)?, writer.end_position());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At the oldest retained record.
    Beginning,
    /// After the last record published now: only new records.
    End,
    /// At this position, which must be where a record starts (or the end).
    Position(u64),
}

/// One record of a journal, borrowed from the reader's mapping of its
/// segment; it dereferences to the payload.
///
/// # Example
///
/// ```
/// use kekbit_std::journal::{JournalOptions, JournalReader};
/// let dir = tempfile::tempdir()?;
/// let mut writer = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?;
/// writer.append(b"abc")?;
/// let mut reader = JournalReader::open(dir.path())?;
/// let record = reader.try_read()?.unwrap();
/// assert_eq!((record.position, record.payload, record.len()), (0, &b"abc"[..], 3));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalRecord<'r> {
    /// The record's journal position.
    pub position: u64,
    /// Its bytes.
    pub payload: &'r [u8],
}

impl Deref for JournalRecord<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.payload
    }
}

/// Reads a journal's records in order, across its segments, without locks:
/// any number of readers, in any processes, each at its own position.
///
/// Records are zero-copy borrows of the reader's mapping of the segment
/// they are in; a borrow ends before the next read, since the reader may
/// move to the next segment then. When the reader meets a segment's seal,
/// it opens the next segment, which the writer always publishes before
/// sealing; a sealed segment with no successor is the end of a closed
/// journal ([`JournalError::Closed`], which [`blocking`](Self::blocking)
/// takes as its end), until a writer reopens the journal.
///
/// Retention may delete the segment a reader is in: the reader keeps its
/// mapping (the file's pages stay until it lets go), reads the segment to
/// its end, and then, if the next one was deleted too, returns
/// [`JournalError::BehindRetention`] with the oldest retained position: it
/// never returns bytes that are not the records written.
///
/// Segments are opened as [`ShmReader::open`] opens channels: only files
/// nobody but this user (or root) can write, in a folder that passes the
/// same check.
///
/// After power loss, open the journal for writing before reading it:
/// recovery cuts it at its first damage. A reader of a journal nobody has
/// recovered yet reports a torn record as an error, and waits at a record
/// whose bytes were lost.
///
/// # Example
///
/// ```
/// use kekbit_std::journal::{JournalOptions, JournalReader, Start};
///
/// let dir = tempfile::tempdir()?;
/// let mut writer = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?;
/// let mut positions = Vec::new();
/// for i in 0..500u32 {
///     positions.push(writer.append(&i.to_le_bytes())?);
/// }
/// writer.close()?;
///
/// // From the middle, across segment boundaries, to the end.
/// let mut reader = JournalReader::open_at(dir.path(), Start::Position(positions[250]))?;
/// for i in 250..500u32 {
///     let record = reader.try_read()?.unwrap();
///     assert_eq!((record.position, &*record), (positions[i as usize], &i.to_le_bytes()[..]));
/// }
/// assert!(reader.try_read().unwrap_err().is_end());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct JournalReader {
    dir: PathBuf,
    journal_id: u64,
    seg: OpenSegment,
    wait: WaitStrategy,
    trust: Trust,
}

/// The segment a reader is in.
struct OpenSegment {
    /// Borrows `*channel`: declared first so it is dropped first.
    reader: Reader<'static, MappedRegion>,
    /// Owns the mapping `reader` borrows; an `Arc`, so its address stays
    /// put however `OpenSegment` moves.
    channel: Arc<ShmReader>,
    base: u64,
    clock: SystemClock,
}

impl OpenSegment {
    /// Opens the segment at `base` in `dir`, checking that its header says
    /// so (and names `journal_id`, if known). A missing file is
    /// [`ChannelError::NotFound`].
    fn open(
        dir: &Path,
        base: u64,
        journal_id: Option<u64>,
        trust: Trust,
    ) -> Result<Self, JournalError> {
        let path = segment_path(dir, base);
        let channel = Arc::new(ShmReader::open_as(&path, trust)?);
        let header = *channel.header();
        if !header.is_segment() {
            return Err(JournalError::not_a_journal(
                dir,
                format!("{} is a channel, not a journal segment", path.display()),
            ));
        }
        if let Some(expected) = journal_id {
            if header.journal_id != expected {
                return Err(JournalError::ForeignSegment {
                    path,
                    expected,
                    found: header.journal_id,
                });
            }
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
        // SAFETY: the region lives in the `Arc`'s allocation, which does not
        // move and lives as long as `channel`, which this segment owns and
        // drops after `reader`; records borrowed from `reader` are handed
        // out only for a borrow of the `JournalReader`, which they cannot
        // outlive.
        let region: &'static MappedRegion = unsafe { &*std::ptr::from_ref(channel.region()) };
        let reader = Reader::open(region).map_err(|source| ChannelError::Header {
            path: path.clone(),
            source,
        })?;
        Ok(Self {
            reader,
            channel,
            base,
            clock: SystemClock::new(header.tick_unit),
        })
    }

    fn path(&self) -> &Path {
        self.channel.path()
    }

    fn read_error(&self, source: ReadError) -> JournalError {
        JournalError::Channel(ChannelError::Read {
            path: self.path().to_path_buf(),
            source,
        })
    }
}

fn is_missing(e: &JournalError) -> bool {
    matches!(e, JournalError::Channel(ChannelError::NotFound { .. }))
}

/// How many times a reader looks again when the segment it chose was
/// deleted (or published) between its listing and its open.
const RACE_RETRIES: usize = 8;

impl JournalReader {
    /// Opens the journal in `dir` at its oldest retained record.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_std::journal::{JournalError, JournalReader, JournalWriter};
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = JournalWriter::open(dir.path())?;
    /// writer.append(b"first")?;
    /// let mut reader = JournalReader::open(dir.path())?;
    /// assert_eq!(&*reader.try_read()?.unwrap(), b"first");
    /// assert!(reader.try_read()?.is_none()); // nothing more yet
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, JournalError> {
        Self::open_at(dir, Start::Beginning)
    }

    /// Opens the journal in `dir` at `start`.
    ///
    /// A position before the oldest retained record is
    /// [`JournalError::BehindRetention`]; past the last record,
    /// [`JournalError::BeyondEnd`]; not where a record starts,
    /// [`JournalError::NotARecordBoundary`]. A folder with no segment is
    /// [`JournalError::NotAJournal`].
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_std::journal::{JournalError, JournalReader, JournalWriter, Start};
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = JournalWriter::open(dir.path())?;
    /// writer.append(b"old")?;
    /// let mut reader = JournalReader::open_at(dir.path(), Start::End)?;
    /// writer.append(b"new")?;
    /// assert_eq!(&*reader.try_read()?.unwrap(), b"new");
    /// let err = JournalReader::open_at(dir.path(), Start::Position(8)).unwrap_err();
    /// assert!(matches!(err, JournalError::NotARecordBoundary { position: 8, .. }));
    /// let err = JournalReader::open_at(dir.path(), Start::Position(4096)).unwrap_err();
    /// assert!(matches!(err, JournalError::BeyondEnd { position: 4096, end: 32, .. }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_at(dir: impl AsRef<Path>, start: Start) -> Result<Self, JournalError> {
        let dir = dir.as_ref();
        if !check_folder(dir)? {
            return Err(JournalError::not_a_journal(
                dir,
                "the folder does not exist",
            ));
        }
        Self::open_as(dir, start, Trust::OwnerOnly)
    }

    /// Opens the journal in `dir` at `start`, as [`open_at`](Self::open_at),
    /// but also when others may write its folder or segments (a journal
    /// written with a mode such as `0o660`).
    ///
    /// # Safety
    ///
    /// The contract of [`ShmReader::open_shared`]: while the reader or a
    /// record borrowed from it lives, nobody but the journal's writer
    /// modifies the segment files, and nobody truncates them (deleting them
    /// is fine).
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_std::journal::{JournalOptions, JournalReader, Start};
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = JournalOptions::new().segment_bytes(4096).mode(0o660).open_writer(dir.path())?;
    /// writer.append(b"for the group")?;
    /// assert!(JournalReader::open(dir.path()).is_err()); // the group may write it: refused
    /// // SAFETY: only `writer` writes the journal's files, and nobody truncates them.
    /// let mut reader = unsafe { JournalReader::open_shared_at(dir.path(), Start::Beginning)? };
    /// assert_eq!(&*reader.try_read()?.unwrap(), b"for the group");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub unsafe fn open_shared_at(
        dir: impl AsRef<Path>,
        start: Start,
    ) -> Result<Self, JournalError> {
        Self::open_as(dir.as_ref(), start, Trust::Shared)
    }

    fn open_as(dir: &Path, start: Start, trust: Trust) -> Result<Self, JournalError> {
        let seg = locate(dir, start, None, trust)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            journal_id: seg.reader.header().journal_id,
            seg,
            wait: WaitStrategy::default(),
            trust,
        })
    }

    /// The journal's id.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::{JournalOptions, JournalReader};
    /// let dir = tempfile::tempdir()?;
    /// let _writer = JournalOptions::new().segment_bytes(4096).journal_id(42).open_writer(dir.path())?;
    /// assert_eq!(JournalReader::open(dir.path())?.journal_id(), 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn journal_id(&self) -> u64 {
        self.journal_id
    }

    /// The journal's folder.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::{JournalOptions, JournalReader};
    /// let dir = tempfile::tempdir()?;
    /// let _writer = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?;
    /// assert_eq!(JournalReader::open(dir.path())?.path(), dir.path());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The position of the next record to read.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::{JournalOptions, JournalReader};
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?;
    /// writer.append(b"0123456789")?;
    /// let mut reader = JournalReader::open(dir.path())?;
    /// assert_eq!(reader.position(), 0);
    /// reader.try_read()?;
    /// assert_eq!(reader.position(), 24);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn position(&self) -> u64 {
        self.seg.base + u64::from(self.seg.reader.position())
    }

    /// The base position of the segment the reader is in (a relay copies a
    /// journal segment by segment, keeping positions).
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::{JournalOptions, JournalReader};
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?;
    /// writer.append(b"a")?;
    /// let second = writer.roll()?;
    /// writer.append(b"b")?;
    /// let mut reader = JournalReader::open(dir.path())?;
    /// assert_eq!(reader.segment_base(), 0);
    /// reader.try_read()?;
    /// reader.try_read()?;
    /// assert_eq!(reader.segment_base(), second);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn segment_base(&self) -> u64 {
        self.seg.base
    }

    /// Changes how the reader waits in [`read_timeout`](Self::read_timeout)
    /// and [`blocking`](Self::blocking).
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::{JournalOptions, JournalReader};
    /// # use kekbit_std::WaitStrategy;
    /// let dir = tempfile::tempdir()?;
    /// let _writer = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?;
    /// let mut reader = JournalReader::open(dir.path())?;
    /// reader.set_wait_strategy(WaitStrategy::Yield);
    /// assert_eq!(reader.wait_strategy(), WaitStrategy::Yield);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.wait = strategy;
    }

    /// How the reader waits.
    pub fn wait_strategy(&self) -> WaitStrategy {
        self.wait
    }

    /// Returns the next record if one is published, without blocking;
    /// `Ok(None)` if none is yet.
    ///
    /// At the end of a closed journal it returns
    /// [`JournalError::Closed`] ([`is_end`](JournalError::is_end)), and
    /// again on each call until a writer reopens the journal. Damage is an
    /// error naming the segment; the reader stays put.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::{JournalOptions, JournalReader};
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?;
    /// let mut reader = JournalReader::open(dir.path())?;
    /// assert!(reader.try_read()?.is_none());
    /// let position = writer.append(b"now")?;
    /// let record = reader.try_read()?.unwrap();
    /// assert_eq!((record.position, record.payload), (position, &b"now"[..]));
    /// drop(writer); // closes the journal
    /// assert!(reader.try_read().unwrap_err().is_end());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn try_read(&mut self) -> Result<Option<JournalRecord<'_>>, JournalError> {
        Ok(self
            .next_record()?
            .map(|(position, payload)| JournalRecord { position, payload }))
    }

    /// Returns the next record, waiting up to `t` for one; `Ok(None)` if
    /// none came.
    ///
    /// Errors as [`try_read`](Self::try_read), and
    /// [`JournalError::Abandoned`] as soon as the writer has been silent
    /// past the journal's [`timeout`](super::JournalOptions::timeout), so
    /// even `Duration::MAX` does not hang on a dead writer (with no
    /// timeout, it waits).
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use kekbit_std::journal::{JournalOptions, JournalReader};
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?;
    /// let mut reader = JournalReader::open(dir.path())?;
    /// assert!(reader.read_timeout(Duration::from_millis(5))?.is_none());
    /// std::thread::scope(|s| {
    ///     s.spawn(|| writer.append(b"later"));
    ///     let record = reader.read_timeout(Duration::from_secs(10)).unwrap().unwrap();
    ///     assert_eq!(&*record, b"later");
    /// });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_timeout(&mut self, t: Duration) -> Result<Option<JournalRecord<'_>>, JournalError> {
        let deadline = Instant::now().checked_add(t);
        Ok(self
            .wait_for_record(deadline)?
            .map(|(position, payload)| JournalRecord { position, payload }))
    }

    /// Moves to `position`, which must be where a record starts (or the
    /// end of the journal); errors as [`open_at`](Self::open_at), and the
    /// reader stays where it was.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::{JournalOptions, JournalReader};
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?;
    /// let first = writer.append(b"first")?;
    /// writer.roll()?;
    /// let second = writer.append(b"second")?;
    /// let mut reader = JournalReader::open(dir.path())?;
    /// reader.seek(second)?;
    /// assert_eq!(&*reader.try_read()?.unwrap(), b"second");
    /// reader.seek(first)?;
    /// assert_eq!(&*reader.try_read()?.unwrap(), b"first");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn seek(&mut self, position: u64) -> Result<(), JournalError> {
        self.seg = locate(
            &self.dir,
            Start::Position(position),
            Some(self.journal_id),
            self.trust,
        )?;
        Ok(())
    }

    /// A blocking iterator of owned records, `(position, bytes)`: each item
    /// waits for the next record. It ends (`None`) at the end of a closed
    /// journal; it yields one error and ends on damage, when the reader
    /// falls behind retention, or with [`JournalError::Abandoned`] when the
    /// writer has been silent past the journal's timeout.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::{JournalOptions, JournalReader};
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?;
    /// let mut reader = JournalReader::open(dir.path())?;
    /// let count = std::thread::scope(|s| {
    ///     let consumer = s.spawn(move || reader.blocking().count());
    ///     for i in 0..1000u32 {
    ///         writer.append(&i.to_le_bytes()).unwrap(); // rolls a few times
    ///     }
    ///     drop(writer); // closes the journal: the iterator ends
    ///     consumer.join().unwrap()
    /// });
    /// assert_eq!(count, 1000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn blocking(&mut self) -> JournalBlocking<'_> {
        JournalBlocking {
            reader: self,
            done: false,
        }
    }

    /// The next record, its `'static` borrow never escaping this type
    /// (every public function shortens it to a borrow of `self`).
    fn next_record(&mut self) -> Result<Option<(u64, &'static [u8])>, JournalError> {
        loop {
            match self.seg.reader.try_read() {
                Ok(Some(payload)) => {
                    let end = self.seg.base + u64::from(self.seg.reader.position());
                    let position = end - record_span(payload.len() as u64);
                    return Ok(Some((position, payload)));
                }
                Ok(None) => return Ok(None),
                Err(ReadError::Closed | ReadError::Full) => {
                    if !self.move_on()? {
                        return Err(JournalError::Closed {
                            dir: self.dir.clone(),
                        });
                    }
                }
                Err(e) => return Err(self.seg.read_error(e)),
            }
        }
    }

    /// At the current segment's seal: opens its successor. `Ok(false)` if
    /// there is none: the journal is closed.
    fn move_on(&mut self) -> Result<bool, JournalError> {
        let next = self.seg.base + u64::from(self.seg.reader.position());
        match OpenSegment::open(&self.dir, next, Some(self.journal_id), self.trust) {
            // An empty segment, closed, can only be followed by one that
            // replaced it under the same name: this is still the same file.
            Ok(seg) if seg.channel.file_id() == self.seg.channel.file_id() => {}
            Ok(seg) => {
                self.seg = seg;
                return Ok(true);
            }
            Err(e) if is_missing(&e) => {}
            Err(e) => return Err(e),
        }
        // No successor: retention deleted it, or the journal is closed.
        let segments = list(&self.dir)?.segments;
        match segments.first() {
            Some(&(first, _)) if first > next => Err(JournalError::BehindRetention {
                dir: self.dir.clone(),
                requested: next,
                first_available: first,
            }),
            _ if segments.iter().any(|&(base, _)| base > next) => {
                // Published while we looked? Look once more.
                match OpenSegment::open(&self.dir, next, Some(self.journal_id), self.trust) {
                    Ok(seg) => {
                        self.seg = seg;
                        Ok(true)
                    }
                    Err(e) if is_missing(&e) => Err(JournalError::not_a_journal(
                        &self.dir,
                        format!("the segment at position {next} is missing, yet later ones exist"),
                    )),
                    Err(e) => Err(e),
                }
            }
            _ => Ok(false),
        }
    }

    /// Waits until `deadline` (for ever if `None`) for the next record.
    fn wait_for_record(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Option<(u64, &'static [u8])>, JournalError> {
        let mut waiter = Waiter::new(self.wait);
        loop {
            if let Some(record) = self.next_record()? {
                return Ok(Some(record));
            }
            if waiter.pause(deadline) {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    // One last look, for a record that came during the pause.
                    return self.next_record();
                }
                if self.abandoned() {
                    return match self.next_record()? {
                        Some(record) => Ok(Some(record)),
                        None => Err(JournalError::Abandoned {
                            dir: self.dir.clone(),
                        }),
                    };
                }
            }
        }
    }

    /// Whether the writer is silent past the timeout of the segment being
    /// read.
    fn abandoned(&mut self) -> bool {
        let clock = self.seg.clock;
        self.seg.reader.status(&clock) == Status::Abandoned
    }
}

/// Opens the segment where `start` is and moves to it; `journal_id` is
/// checked if known.
fn locate(
    dir: &Path,
    start: Start,
    journal_id: Option<u64>,
    trust: Trust,
) -> Result<OpenSegment, JournalError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let retry = attempts < RACE_RETRIES;
        let segments = list(dir)?.segments;
        let (Some(&(first, _)), Some(&(last, _))) = (segments.first(), segments.last()) else {
            return Err(JournalError::not_a_journal(dir, "no segment files"));
        };
        let base = match start {
            Start::Beginning => first,
            Start::End => last,
            Start::Position(position) => {
                if position < first {
                    return Err(JournalError::BehindRetention {
                        dir: dir.to_path_buf(),
                        requested: position,
                        first_available: first,
                    });
                }
                segments
                    .iter()
                    .rev()
                    .find(|&&(base, _)| base <= position)
                    .map_or(first, |&(base, _)| base)
            }
        };
        let mut seg = match OpenSegment::open(dir, base, journal_id, trust) {
            Ok(seg) => seg,
            // Deleted (retention) or replaced since the listing.
            Err(e) if is_missing(&e) && retry => continue,
            Err(e) => return Err(e),
        };
        let capacity = seg.reader.header().capacity_bytes;
        let last_word = capacity - MARKER_LEN as u32;
        let target = match start {
            Start::Beginning => return Ok(seg),
            Start::End => last_word,
            Start::Position(position) => {
                let offset = position - base;
                if offset > u64::from(last_word) {
                    // Past what this segment can hold, and no later
                    // segment starts at or before it.
                    let end = walk_end(&mut seg)?;
                    if retry && has_successor(dir, end) {
                        continue;
                    }
                    return Err(JournalError::BeyondEnd {
                        dir: dir.to_path_buf(),
                        position,
                        end,
                    });
                }
                offset as u32
            }
        };
        match seg.reader.seek(target) {
            Ok(()) => return Ok(seg),
            Err(SeekError::BeyondEnd { end, .. }) => {
                if let Start::Position(position) = start {
                    let end = seg.base + u64::from(end);
                    if retry && has_successor(dir, end) {
                        continue;
                    }
                    return Err(JournalError::BeyondEnd {
                        dir: dir.to_path_buf(),
                        position,
                        end,
                    });
                }
                // Start::End: the end of the records, by their framing.
                seg.reader.seek(end).map_err(|e| seek_error(dir, &seg, e))?;
                return Ok(seg);
            }
            Err(SeekError::NotARecordBoundary { .. }) => {
                return Err(JournalError::NotARecordBoundary {
                    dir: dir.to_path_buf(),
                    position: seg.base + u64::from(target),
                });
            }
            Err(e) => return Err(seek_error(dir, &seg, e)),
        }
    }
}

/// The journal position where the segment's records end, by their framing.
fn walk_end(seg: &mut OpenSegment) -> Result<u64, JournalError> {
    let capacity = seg.reader.header().capacity_bytes;
    match seg.reader.seek(capacity - MARKER_LEN as u32) {
        Ok(()) => Ok(seg.base + u64::from(capacity) - MARKER_LEN as u64),
        Err(SeekError::BeyondEnd { end, .. }) => Ok(seg.base + u64::from(end)),
        Err(SeekError::Read(e)) => Err(seg.read_error(e)),
        Err(SeekError::NotARecordBoundary { position }) => Err(JournalError::NotARecordBoundary {
            dir: seg
                .path()
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            position: seg.base + u64::from(position),
        }),
    }
}

/// Whether a segment starts at `base` (one published while we looked).
fn has_successor(dir: &Path, base: u64) -> bool {
    segment_path(dir, base).exists()
}

fn seek_error(dir: &Path, seg: &OpenSegment, e: SeekError) -> JournalError {
    match e {
        SeekError::Read(e) => seg.read_error(e),
        SeekError::NotARecordBoundary { position } => JournalError::NotARecordBoundary {
            dir: dir.to_path_buf(),
            position: seg.base + u64::from(position),
        },
        SeekError::BeyondEnd { position, end } => JournalError::BeyondEnd {
            dir: dir.to_path_buf(),
            position: seg.base + u64::from(position),
            end: seg.base + u64::from(end),
        },
    }
}

impl std::fmt::Debug for JournalReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalReader")
            .field("dir", &self.dir)
            .field("journal_id", &self.journal_id)
            .field("position", &self.position())
            .field("segment", &self.seg.path())
            .field("wait", &self.wait)
            .finish()
    }
}

/// Waits for each record in turn, owned; see [`JournalReader::blocking`].
#[derive(Debug)]
pub struct JournalBlocking<'r> {
    reader: &'r mut JournalReader,
    done: bool,
}

impl Iterator for JournalBlocking<'_> {
    type Item = Result<(u64, Vec<u8>), JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.reader.wait_for_record(None) {
            Ok(Some((position, payload))) => Some(Ok((position, payload.to_vec()))),
            Ok(None) => None, // no deadline: not reached
            Err(JournalError::Closed { .. }) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl FusedIterator for JournalBlocking<'_> {}
