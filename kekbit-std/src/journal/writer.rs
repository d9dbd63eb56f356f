//! The journal's one writer: appends, rolls, syncs, retains.

use std::fs::File;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kekbit_nostd::format::{BATCH_MARKER_LEN, HEADER_LEN, MARKER_LEN, PAYLOAD_OFFSET};
use kekbit_nostd::{Clock, Encode, Handler, RecordSink, TickUnit, WriteError};

use super::background::Background;
use super::durable::Syncer;
use super::error::JournalError;
use super::flusher::Flusher;
use super::lock::{LockNote, WriterLock};
use super::options::{JournalOptions, Retention};
use super::recovery::{self, Recovery, file_spec};
use super::retention::{Retained, delete};
use super::segment::{Publish, Segment, record_span};
use super::shared::SharedJournal;
use crate::clock::{SystemClock, coarse_nanos};
use crate::error::ChannelError;
use crate::location::{check_folder, folder_mode, make_folders};
use crate::mapping::MappedRegion;
use crate::writer::folders_to_sync;

/// The one writer of a journal: appends records, rolls to new segments,
/// syncs, and deletes what retention no longer keeps.
///
/// A journal is a folder of segments, each an ordinary kekbit channel named
/// by its base position. A record's **position** is its segment's base plus
/// its offset in the segment: positions are unique and increase, across
/// segments and across restarts.
///
/// - **Exactly one writer per folder**, in any process: opening takes an
///   `flock` on `writer.lock` before anything in the folder is read, and a
///   second writer gets [`JournalError::Locked`] with the holder's pid.
/// - **Rolling**: when a record does not fit, when the segment is older
///   than [`roll_after`](JournalOptions::roll_after), or on
///   [`roll`](Self::roll), the writer publishes the next segment, made and
///   pre-faulted ahead of time by its background thread, then seals the
///   current one (CLOSED): a reader that meets the seal always finds the
///   successor.
/// - **Durability**: records are visible to readers at once and survive the
///   process's death (they are in the kernel's page cache); they survive
///   power loss once a [`sync`](Self::sync) (or the background flusher, or
///   a group commit) covers them. [`durable_position`](Self::durable_position)
///   says how far that is.
/// - **Recovery**: opening a journal that a writer left (closed, killed, or
///   cut by power loss) finds its last sound record and goes on after it;
///   see [`Recovery`] for each step.
///
/// It is `Send` but not `Sync`; share it between threads with
/// [`into_shared`](Self::into_shared). Dropping it closes the journal, as
/// [`close`](Self::close) does, but cannot report an error;
/// [`leave_open`](Self::leave_open) stops without sealing.
///
/// # Example
///
/// ```
/// use kekbit_std::journal::{JournalOptions, JournalReader};
///
/// let dir = tempfile::tempdir()?;
/// let mut writer = JournalOptions::new()
///     .segment_bytes(4096) // tiny segments, to roll often
///     .open_writer(dir.path())?;
/// let mut positions = Vec::new();
/// for i in 0..1000u32 {
///     positions.push(writer.append(&i.to_le_bytes())?);
/// }
/// assert!(writer.segment_count() > 1);
/// let durable = writer.sync()?;
/// assert_eq!(durable, writer.end_position());
/// writer.close()?;
///
/// let mut reader = JournalReader::open(dir.path())?;
/// for (i, expected) in positions.iter().enumerate() {
///     let record = reader.try_read()?.expect("a record");
///     assert_eq!(record.position, *expected);
///     assert_eq!(&*record, &(i as u32).to_le_bytes()[..]);
/// }
/// assert!(reader.try_read().unwrap_err().is_end());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Threads cannot share a `JournalWriter` by reference (it is not `Sync`):
///
/// ```compile_fail,E0277
/// fn shared_by_reference<T: Sync>() {}
/// shared_by_reference::<kekbit_std::journal::JournalWriter>();
/// ```
pub struct JournalWriter {
    dir: PathBuf,
    options: JournalOptions,
    journal_id: u64,
    /// The segment being written.
    seg: Segment,
    /// What follows every publish; apart from `seg` so a grant can borrow
    /// both.
    tail: Tail,
    retained: Arc<Retained>,
    background: Background,
    /// Coarse Unix nanoseconds at which the segment is due to roll on age;
    /// `u64::MAX` for never.
    roll_due_nanos: u64,
    note: Arc<LockNote>,
    recovery: Recovery,
    closed: bool,
    /// Declared last: released after everything else is done.
    _lock: WriterLock,
}

/// What follows every publish: the end position for the syncs, and the
/// flusher's byte count.
pub(crate) struct Tail {
    syncer: Arc<Syncer>,
    flusher: Option<Flusher>,
    /// Bytes between flusher kicks; 0 for none.
    kick_bytes: u64,
    /// The end position at which the flusher is kicked next.
    kick_at: u64,
}

impl Tail {
    #[inline]
    fn published(&mut self, end: u64) {
        self.syncer.publish_end(end);
        if end >= self.kick_at {
            self.kick(end);
        }
    }

    #[cold]
    fn kick(&mut self, end: u64) {
        if let Some(flusher) = &self.flusher {
            flusher.kick();
        }
        self.kick_at = end.saturating_add(self.kick_bytes);
    }
}

fn write_error(path: &Path, source: WriteError) -> JournalError {
    JournalError::Channel(ChannelError::Write {
        path: path.to_path_buf(),
        source,
    })
}

impl JournalWriter {
    /// Opens the journal in `dir` for writing with default
    /// [`JournalOptions`], creating it (and the folder) if needed.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_std::journal::JournalWriter;
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = JournalWriter::open(dir.path().join("journal"))?;
    /// assert_eq!(writer.append(b"first")?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, JournalError> {
        JournalOptions::new().open_writer(dir)
    }

    pub(crate) fn open_with(dir: &Path, options: &JournalOptions) -> Result<Self, JournalError> {
        options.check(dir)?;
        let folders = folders_to_sync(dir);
        make_folders(dir, folder_mode(options.mode))?;
        if !check_folder(dir)? {
            return Err(JournalError::not_a_journal(
                dir,
                "the folder does not exist",
            ));
        }
        let (lock, previous) = WriterLock::acquire(dir, options.mode)?;
        let note = Arc::new(lock.note()?);
        let opened = recovery::open(dir, options, previous, &folders)?;
        let seg = opened.segment;
        let end = seg.end();
        // Recovery synced every sealed segment.
        note.checkpoint(seg.base)
            .map_err(|e| JournalError::io(dir, "note the journal's checkpoint", e))?;
        note.durable(end);
        let syncer = Arc::new(Syncer::new(
            end,
            end,
            vec![dir.to_path_buf()],
            false,
            Some(Arc::clone(&note)),
        ));
        syncer.set_current(
            seg.base,
            seg.path.clone(),
            seg.writer.region().handle(),
            end,
            None,
        );
        let retained = Arc::new(Retained::new(opened.entries));
        let background = Background::start(
            dir,
            file_spec(dir, options),
            Arc::clone(&retained),
            Some(Arc::clone(&note)),
        )?;
        let flusher = if options.flush_interval.is_some() || options.flush_bytes.is_some() {
            Some(Flusher::start(
                dir,
                Arc::clone(&syncer),
                options.flush_interval,
            )?)
        } else {
            None
        };
        let kick_bytes = options.flush_bytes.unwrap_or(0);
        let mut writer = Self {
            dir: dir.to_path_buf(),
            options: options.clone(),
            journal_id: opened.journal_id,
            seg,
            tail: Tail {
                syncer,
                flusher,
                kick_bytes,
                kick_at: if kick_bytes == 0 {
                    u64::MAX
                } else {
                    end.saturating_add(kick_bytes)
                },
            },
            retained,
            background,
            roll_due_nanos: u64::MAX,
            note,
            recovery: opened.recovery,
            closed: false,
            _lock: lock,
        };
        writer.set_roll_due();
        writer.apply_retention();
        Ok(writer)
    }

    /// Appends one record; returns its position.
    ///
    /// If the record does not fit in the current segment (or the segment
    /// is due to roll on age), the writer rolls first. A record longer than
    /// [`max_record_len`](JournalOptions::max_record_len) is
    /// [`JournalError::TooLarge`], and nothing is written.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_std::journal::{JournalError, JournalOptions};
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = JournalOptions::new().segment_bytes(64).open_writer(dir.path())?;
    /// assert_eq!(writer.append(b"")?, 0); // empty records take 8 bytes
    /// assert_eq!(writer.append(&[7; 40])?, 8); // 8 + 40: fills the segment
    /// assert_eq!(writer.append(b"x")?, 56); // rolled: the next segment starts at 56
    /// assert_eq!(writer.segment_base(), 56);
    /// assert!(matches!(writer.append(&[0; 49]), Err(JournalError::TooLarge { len: 49, max: 48 })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn append(&mut self, record: &[u8]) -> Result<u64, JournalError> {
        self.make_room(record.len())?;
        let base = self.seg.base;
        let offset = self
            .seg
            .writer
            .write(record)
            .map_err(|e| write_error(&self.seg.path, e))?;
        self.after_write();
        Ok(base + u64::from(offset))
    }

    /// Encodes `record` through `handler` straight into the journal;
    /// returns its position.
    ///
    /// The record is encoded in place. If it turns out not to fit in the
    /// current segment, the writer rolls and encodes it again in the next
    /// one; the handler is told the record was
    /// [`published`](Handler::published) once, when it is (so a
    /// [`SequenceHandler`](kekbit_nostd::SequenceHandler) numbers it once,
    /// and a refused record takes no number).
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::{PlainHandler, SequenceHandler, Handler};
    /// use kekbit_std::journal::{JournalOptions, JournalReader};
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = JournalOptions::new().segment_bytes(256).open_writer(dir.path())?;
    /// let mut handler = SequenceHandler::new(0).chain(PlainHandler);
    /// for _ in 0..50 {
    ///     writer.append_with(&mut handler, "tick")?; // 24 bytes each: rolls now and then
    /// }
    /// let mut reader = JournalReader::open(dir.path())?;
    /// for expected in 0..50 {
    ///     let record = reader.try_read()?.unwrap();
    ///     assert_eq!(SequenceHandler::split(&record), Some((expected, &b"tick"[..])));
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn append_with<H, E>(&mut self, handler: &mut H, record: &E) -> Result<u64, JournalError>
    where
        H: Handler + ?Sized,
        E: Encode + ?Sized,
    {
        if !self.seg.is_empty() && self.roll_due() {
            self.roll_inner()?;
        }
        let max = self.options.record_limit();
        for _ in 0..2 {
            self.seg.pacer.beat_if_due(&mut self.seg.writer);
            let header = *self.seg.writer.header();
            let room = self
                .seg
                .writer
                .remaining_bytes()
                .saturating_sub(PAYLOAD_OFFSET as u32)
                .min(header.max_record_len)
                .min(max) as usize;
            let base = self.seg.base;
            let path = &self.seg.path;
            let mut grant = self
                .seg
                .writer
                .reserve(room)
                .map_err(|e| write_error(path, e))?;
            let mut sink = RecordSink::new(&mut grant);
            handler
                .handle(record, &mut sink)
                .map_err(|e| write_error(path, WriteError::Encode(e)))?;
            let (len, overflowed) = (sink.len(), sink.overflowed());
            if !overflowed {
                let offset = grant.commit(len).map_err(|e| write_error(path, e))?;
                handler.published();
                self.after_write();
                return Ok(base + u64::from(offset));
            }
            // The grant goes unused: a dropped grant publishes nothing.
            if len > max as usize {
                return Err(JournalError::TooLarge { len, max });
            }
            if self.seg.is_empty() {
                // An empty segment, made with smaller options, and still
                // too small: no roll can help.
                return Err(JournalError::TooLarge {
                    len,
                    max: room as u32,
                });
            }
            self.roll_inner()?;
        }
        // The record fitted neither attempt: its encoder is not
        // deterministic and grew the second time.
        Err(JournalError::TooLarge {
            len: usize::MAX,
            max,
        })
    }

    /// Reserves space for a record of up to `len` bytes, rolling first if it
    /// does not fit; fill it in place and publish it with
    /// [`JournalGrant::commit`]. A grant dropped without commit publishes
    /// nothing.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::{JournalOptions, JournalReader};
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?;
    /// let mut grant = writer.reserve(64)?;
    /// grant[..9].copy_from_slice(b"zero-copy");
    /// let position = grant.commit(9)?;
    /// let mut reader = JournalReader::open(dir.path())?;
    /// assert_eq!(&*reader.try_read()?.unwrap(), b"zero-copy");
    /// # let _ = position;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reserve(&mut self, len: usize) -> Result<JournalGrant<'_>, JournalError> {
        self.make_room(len)?;
        self.seg.pacer.beat_if_due(&mut self.seg.writer);
        let Segment {
            writer, base, path, ..
        } = &mut self.seg;
        let grant = writer.reserve(len).map_err(|e| write_error(path, e))?;
        Ok(JournalGrant {
            grant,
            base: *base,
            path,
            tail: &mut self.tail,
        })
    }

    /// Appends `records` as one batch, published by one store: readers see
    /// all of them or none. Returns the position of the first record (the
    /// end position if `records` is empty); the batch's 8-byte marker comes
    /// just before it.
    ///
    /// A batch goes into one segment: the writer rolls first if the batch
    /// does not fit in the current one, and a batch that no segment can
    /// hold (its records, each with 8 bytes of framing and padded to 8,
    /// plus 8 bytes for the batch) is [`JournalError::TooLarge`].
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::{JournalError, JournalOptions, JournalReader};
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = JournalOptions::new().segment_bytes(64).open_writer(dir.path())?;
    /// assert_eq!(writer.append_all(&[b"a", b"b"])?, 8); // after the batch's marker
    /// // 8 for the batch, 8 + 16 for each record: more than a segment holds.
    /// let err = writer.append_all(&[&[0; 16], &[0; 16], &[0; 16]]).unwrap_err();
    /// assert!(matches!(err, JournalError::TooLarge { len: 80, max: 56 }));
    /// // Two fit an empty segment exactly (the writer rolled to one at 40).
    /// assert_eq!(writer.append_all(&[&[1; 16], &[2; 16]])?, 48);
    /// let mut reader = JournalReader::open(dir.path())?;
    /// let all: Vec<_> = std::iter::from_fn(|| reader.try_read().ok().flatten().map(|r| r.to_vec())).collect();
    /// assert_eq!(all, [b"a".to_vec(), b"b".to_vec(), vec![1; 16], vec![2; 16]]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn append_all(&mut self, records: &[&[u8]]) -> Result<u64, JournalError> {
        if records.is_empty() {
            return Ok(self.end_position());
        }
        let max = self.options.record_limit();
        let mut need = BATCH_MARKER_LEN as u64;
        for record in records {
            if record.len() > max as usize {
                return Err(JournalError::TooLarge {
                    len: record.len(),
                    max,
                });
            }
            need += record_span(record.len() as u64);
        }
        if !self.batch_fits(need, records) || self.roll_due() {
            if !self.seg.is_empty() {
                self.roll_inner()?;
            }
            if !self.batch_fits(need, records) {
                let capacity = self.seg.writer.header().capacity_bytes;
                return Err(JournalError::TooLarge {
                    len: usize::try_from(need).unwrap_or(usize::MAX),
                    max: capacity.saturating_sub(MARKER_LEN as u32),
                });
            }
        }
        let base = self.seg.base;
        let start = self
            .seg
            .writer
            .write_all(records)
            .map_err(|e| write_error(&self.seg.path, e.error))?;
        self.after_write();
        // The core returns the first record's position (after the marker).
        Ok(base + u64::from(start))
    }

    /// Seals the current segment now and goes on in a new one; returns the
    /// new segment's base. A segment with no record is not rolled: its base
    /// is returned.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::JournalOptions;
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?;
    /// assert_eq!(writer.roll()?, 0); // empty: nothing to roll
    /// writer.append(b"abc")?;
    /// assert_eq!(writer.roll()?, 16);
    /// assert_eq!(writer.segment_count(), 2);
    /// assert_eq!(writer.append(b"next")?, 16);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn roll(&mut self) -> Result<u64, JournalError> {
        self.roll_inner()
    }

    /// Makes everything appended so far survive power loss: `msync` and
    /// `fdatasync` of every segment written since the last sync, and an
    /// `fsync` of the folder if segments were created or deleted since.
    /// Returns the durable position, the end position at the call.
    ///
    /// It shares its work with the background flusher and with group
    /// commits. Once a sync has failed, every later one fails: reopen the
    /// journal (recovery keeps what reached the device).
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::JournalOptions;
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?;
    /// writer.append(b"must survive power loss")?;
    /// assert!(writer.durable_position() < writer.end_position());
    /// assert_eq!(writer.sync()?, writer.end_position());
    /// assert_eq!(writer.durable_position(), writer.end_position());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync(&mut self) -> Result<u64, JournalError> {
        if let Some(e) = self.retained.take_background_error() {
            return Err(e);
        }
        let end = self.seg.end();
        self.tail.syncer.publish_end(end);
        self.tail.syncer.sync_all(end)
    }

    /// Everything before this position survives power loss.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::JournalOptions;
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?;
    /// assert_eq!(writer.durable_position(), 0);
    /// writer.append(b"x")?;
    /// writer.sync()?;
    /// assert_eq!(writer.durable_position(), 16);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn durable_position(&self) -> u64 {
        self.tail.syncer.durable()
    }

    /// Where the next record goes: the end of the journal.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::JournalOptions;
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?;
    /// writer.append(b"12345")?;
    /// assert_eq!(writer.end_position(), 16);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn end_position(&self) -> u64 {
        self.seg.end()
    }

    /// The position of the oldest retained record: the base of the oldest
    /// segment retention and [`truncate_before`](Self::truncate_before) left.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::JournalOptions;
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?;
    /// writer.append(b"old")?;
    /// let second = writer.roll()?;
    /// writer.truncate_before(second)?;
    /// assert_eq!(writer.first_position(), second);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn first_position(&self) -> u64 {
        self.retained.first_position()
    }

    /// The journal's id, in every segment's header.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::JournalOptions;
    /// let dir = tempfile::tempdir()?;
    /// let writer = JournalOptions::new().segment_bytes(4096).journal_id(7).open_writer(dir.path())?;
    /// assert_eq!(writer.journal_id(), 7);
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
    /// # use kekbit_std::journal::JournalOptions;
    /// let dir = tempfile::tempdir()?;
    /// let writer = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?;
    /// assert_eq!(writer.path(), dir.path());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The base position of the segment being written.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::JournalOptions;
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?;
    /// writer.append(b"x")?;
    /// let base = writer.roll()?;
    /// assert_eq!(writer.segment_base(), base);
    /// assert!(writer.segment_path().ends_with("00000000000000000016.kekbit"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn segment_base(&self) -> u64 {
        self.seg.base
    }

    /// The file of the segment being written; see
    /// [`segment_base`](Self::segment_base).
    pub fn segment_path(&self) -> &Path {
        &self.seg.path
    }

    /// How many segments are retained, the one being written included.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::JournalOptions;
    /// let dir = tempfile::tempdir()?;
    /// let writer = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?;
    /// assert_eq!(writer.segment_count(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn segment_count(&self) -> usize {
        self.retained.len()
    }

    /// What opening the journal found and did; see [`Recovery`].
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The options the writer was opened with.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::JournalOptions;
    /// let dir = tempfile::tempdir()?;
    /// let writer = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?;
    /// assert_eq!(writer.options().segment_capacity(), 4096);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn options(&self) -> &JournalOptions {
        &self.options
    }

    /// Stores a heartbeat now: call it from an idle loop more often than
    /// the [`timeout`](JournalOptions::timeout), or readers will report the
    /// writer abandoned. Appends heartbeat by themselves.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use kekbit_std::journal::JournalOptions;
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = JournalOptions::new()
    ///     .segment_bytes(4096)
    ///     .timeout(Duration::from_secs(1))
    ///     .open_writer(dir.path())?;
    /// writer.heartbeat();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn heartbeat(&mut self) {
        let unit = self.seg.writer.header().tick_unit;
        let now = SystemClock::new(unit).now();
        self.seg.writer.heartbeat(now);
        self.seg.pacer.beaten(now.saturating_mul(unit.nanos()));
    }

    /// Deletes the whole sealed segments that end at or before `position`,
    /// oldest first, then syncs the folder. The segment being written is
    /// never deleted; a segment that `position` falls inside is kept.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::{JournalError, JournalOptions, JournalReader, Start};
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?;
    /// let snapshot_covers = { writer.append(b"old")?; writer.append(b"older")? };
    /// let kept = writer.roll()?;
    /// writer.append(b"new")?;
    /// writer.truncate_before(kept)?;
    /// assert_eq!(writer.segment_count(), 1);
    /// let err = JournalReader::open_at(dir.path(), Start::Position(snapshot_covers)).unwrap_err();
    /// assert!(matches!(err, JournalError::BehindRetention { first_available, .. } if first_available == kept));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn truncate_before(&mut self, position: u64) -> Result<(), JournalError> {
        truncate(&self.dir, &self.retained, position)
    }

    /// Closes the journal: syncs every record, then seals the last segment
    /// with CLOSED (readers see the end after the last record) and syncs
    /// the seal. A writer that opens the journal again continues it in a
    /// new segment.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::{JournalOptions, JournalReader};
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?;
    /// writer.append(b"last")?;
    /// writer.close()?;
    /// let records: Vec<_> = JournalReader::open(dir.path())?.blocking().collect::<Result<_, _>>()?;
    /// assert_eq!(records, [(0, b"last".to_vec())]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(mut self) -> Result<(), JournalError> {
        self.close_inner()
    }

    /// Stops writing without sealing: syncs every record (as
    /// [`sync`](Self::sync)), stops the writer's threads and lets go of the
    /// lock, but leaves the last segment open, with no end marker. The next
    /// writer that opens the journal resumes that segment, as after a crash
    /// ([`Recovery::resumed_at`]), instead of starting a new one after a
    /// seal; nothing is lost, since everything was synced first.
    ///
    /// For a journal whose segment boundaries must follow another's (a
    /// replica that is stopped and started again). Readers see no end: they
    /// wait at the last record for the next writer, and with a
    /// [`timeout`](JournalOptions::timeout) they report
    /// [`JournalError::Abandoned`] once it passes, as for a writer that
    /// died.
    ///
    /// If the sync fails, the segment is still left open and the error is
    /// returned: the records may not all be on the device, and the next
    /// writer's recovery keeps what is.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::{JournalOptions, JournalReader};
    /// let dir = tempfile::tempdir()?;
    /// let options = JournalOptions::new().segment_bytes(4096);
    /// let mut writer = options.open_writer(dir.path())?;
    /// writer.append(b"before")?;
    /// writer.leave_open()?;
    /// let mut reader = JournalReader::open(dir.path())?;
    /// assert_eq!(&*reader.try_read()?.unwrap(), b"before");
    /// assert!(reader.try_read()?.is_none()); // no end: a writer may come back
    ///
    /// let mut writer = options.open_writer(dir.path())?;
    /// assert_eq!(writer.recovery().resumed_at, Some(16)); // the same segment
    /// assert_eq!(writer.append(b"after")?, 16);
    /// assert_eq!(writer.segment_count(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn leave_open(mut self) -> Result<(), JournalError> {
        self.leave_open_inner()
    }

    /// Shares the writer between threads, for group commits; see
    /// [`SharedJournal`].
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::JournalOptions;
    /// let dir = tempfile::tempdir()?;
    /// let journal = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?.into_shared();
    /// journal.append_durable(b"committed")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_shared(self) -> SharedJournal {
        SharedJournal::new(self)
    }

    pub(crate) fn syncer(&self) -> &Arc<Syncer> {
        &self.tail.syncer
    }

    pub(crate) fn retained(&self) -> &Arc<Retained> {
        &self.retained
    }

    fn close_inner(&mut self) -> Result<(), JournalError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        let end = self.seg.end();
        self.tail.syncer.publish_end(end);
        // The records first, then the seal: a seal on the device means
        // every record before it is there too, so recovery after a clean
        // close walks nothing.
        let synced = self.tail.syncer.sync_all(end);
        self.seg.writer.close();
        let sealed = synced.and_then(|_| {
            let at = HEADER_LEN + self.seg.writer.position() as usize;
            self.seg
                .writer
                .region()
                .flush_range(at, MARKER_LEN)
                .and_then(|()| self.note.checkpoint(end))
                .map_err(|e| JournalError::io(&self.seg.path, "sync the journal's seal", e))
        });
        if let Some(flusher) = &mut self.tail.flusher {
            flusher.stop();
        }
        self.background.stop();
        sealed?;
        match self.retained.take_background_error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn leave_open_inner(&mut self) -> Result<(), JournalError> {
        // Neither this nor the drop that follows seals anything.
        self.closed = true;
        self.seg.leave_open();
        let end = self.seg.end();
        self.tail.syncer.publish_end(end);
        // Every sealed segment is synced with the records: the checkpoint
        // may move up to the open segment, so recovery walks only it.
        let synced = self.tail.syncer.sync_all(end).and_then(|_| {
            self.note
                .checkpoint(self.seg.base)
                .map_err(|e| JournalError::io(&self.dir, "note the journal's checkpoint", e))
        });
        if let Some(flusher) = &mut self.tail.flusher {
            flusher.stop();
        }
        self.background.stop();
        synced?;
        match self.retained.take_background_error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Makes room for a record of `len` bytes: rolls if it does not fit or
    /// the segment is due to roll.
    #[inline]
    fn make_room(&mut self, len: usize) -> Result<(), JournalError> {
        if self.fits(len) && !self.roll_due() {
            return Ok(());
        }
        self.make_room_slow(len)
    }

    #[cold]
    fn make_room_slow(&mut self, len: usize) -> Result<(), JournalError> {
        let max = self.options.record_limit();
        if len > max as usize {
            return Err(JournalError::TooLarge { len, max });
        }
        if !self.seg.is_empty() {
            self.roll_inner()?;
        }
        if self.fits(len) {
            return Ok(());
        }
        // An empty segment made with smaller options: no roll can help.
        let header = self.seg.writer.header();
        let room = self
            .seg
            .writer
            .remaining_bytes()
            .saturating_sub(PAYLOAD_OFFSET as u32);
        Err(JournalError::TooLarge {
            len,
            max: room.min(header.max_record_len),
        })
    }

    /// Whether a record of `len` bytes fits in the current segment.
    #[inline]
    fn fits(&self, len: usize) -> bool {
        len <= self.seg.writer.header().max_record_len as usize
            && record_span(len as u64) <= u64::from(self.seg.writer.remaining_bytes())
    }

    /// Whether a batch of `need` bytes (marker included) fits.
    fn batch_fits(&self, need: u64, records: &[&[u8]]) -> bool {
        let max = self.seg.writer.header().max_record_len as usize;
        need <= u64::from(self.seg.writer.remaining_bytes())
            && records.iter().all(|r| r.len() <= max)
    }

    /// Whether the segment is older than `roll_after`.
    #[inline]
    fn roll_due(&self) -> bool {
        self.roll_due_nanos != u64::MAX && coarse_nanos() >= self.roll_due_nanos
    }

    fn set_roll_due(&mut self) {
        self.roll_due_nanos = match self.options.roll_after {
            None => u64::MAX,
            Some(age) => {
                let created = self.seg.entry().created_millis.saturating_mul(1_000_000);
                let age = u64::try_from(age.as_nanos()).unwrap_or(u64::MAX);
                created.saturating_add(age).min(u64::MAX - 1)
            }
        };
    }

    /// After a publish: heartbeat if due, and tell the syncs.
    #[inline]
    fn after_write(&mut self) {
        self.seg.pacer.beat_if_due(&mut self.seg.writer);
        self.tail.published(self.seg.end());
    }

    /// Publishes the next segment, then seals the current one.
    fn roll_inner(&mut self) -> Result<u64, JournalError> {
        if self.seg.is_empty() {
            return Ok(self.seg.base);
        }
        let base = self.seg.end();
        let sequence = self.seg.writer.header().channel_id.wrapping_add(1);
        let new = self.background.take_file()?;
        let (seg, file) = Segment::install(
            &self.dir,
            &self.options,
            self.journal_id,
            base,
            sequence,
            new,
            Publish::Link,
        )?;
        // The successor is linked; only now is the current one sealed.
        let mut old = std::mem::replace(&mut self.seg, seg);
        old.writer.close();
        self.rolled(old, file);
        Ok(base)
    }

    /// The bookkeeping of a roll, none of it on the device.
    fn rolled(&mut self, old: Segment, file: File) {
        let region: MappedRegion = self.seg.writer.region().handle();
        self.tail.syncer.set_current(
            self.seg.base,
            self.seg.path.clone(),
            region,
            self.seg.base,
            Some(file),
        );
        self.retained.push(self.seg.entry());
        self.background.sealed(old.path.clone(), self.seg.base);
        // Unmapping a large segment takes a while: not on this thread.
        self.background.dispose(old);
        self.set_roll_due();
        self.apply_retention();
    }

    /// Hands what retention no longer keeps to the background thread.
    fn apply_retention(&self) {
        let policy = &self.options.retention;
        if *policy == Retention::default() {
            return;
        }
        let now = SystemClock::new(TickUnit::Millis).now();
        self.background.delete(self.retained.expired(policy, now));
    }
}

/// Deletes the sealed segments that end at or before `position`.
pub(crate) fn truncate(dir: &Path, retained: &Retained, position: u64) -> Result<(), JournalError> {
    if let Some(e) = retained.take_background_error() {
        return Err(e);
    }
    delete(dir, &retained.ending_by(position))
}

impl Drop for JournalWriter {
    fn drop(&mut self) {
        // Nowhere to report an error from a drop; `close` reports it.
        let _ = self.close_inner();
    }
}

impl std::fmt::Debug for JournalWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalWriter")
            .field("dir", &self.dir)
            .field("journal_id", &self.journal_id)
            .field("segment_base", &self.seg.base)
            .field("end_position", &self.end_position())
            .field("durable_position", &self.durable_position())
            .finish_non_exhaustive()
    }
}

/// Space reserved in the journal for one record; see
/// [`JournalWriter::reserve`]. Dereferences to the reserved bytes; dropped
/// without [`commit`](Self::commit), it publishes nothing.
pub struct JournalGrant<'w> {
    grant: kekbit_nostd::Grant<'w, MappedRegion>,
    base: u64,
    path: &'w Path,
    tail: &'w mut Tail,
}

impl JournalGrant<'_> {
    /// Publishes the first `len` bytes as one record; returns its position.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_std::journal::{JournalError, JournalOptions};
    /// let dir = tempfile::tempdir()?;
    /// let mut writer = JournalOptions::new().segment_bytes(4096).open_writer(dir.path())?;
    /// let grant = writer.reserve(4)?;
    /// assert!(matches!(grant.commit(5), Err(JournalError::Channel(_)))); // more than reserved
    /// let mut grant = writer.reserve(4)?;
    /// grant.copy_from_slice(b"abcd");
    /// assert_eq!(grant.commit(4)?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn commit(self, len: usize) -> Result<u64, JournalError> {
        let Self {
            grant,
            base,
            path,
            tail,
        } = self;
        let offset = grant.commit(len).map_err(|e| write_error(path, e))?;
        let position = base + u64::from(offset);
        tail.published(position + record_span(len as u64));
        Ok(position)
    }
}

impl Deref for JournalGrant<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.grant
    }
}

impl DerefMut for JournalGrant<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.grant
    }
}

impl std::fmt::Debug for JournalGrant<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalGrant")
            .field("len", &self.grant.len())
            .field("segment_base", &self.base)
            .finish_non_exhaustive()
    }
}
