//! The relay's view of a journal: the source it tails and the replica it
//! feeds. Everything the relay needs from `kekbit_std::journal` goes
//! through here.

use std::path::{Path, PathBuf};

pub use kekbit_std::journal::JournalError;
use kekbit_std::journal::{JournalOptions, JournalReader, JournalWriter, Start, segments};

use crate::RelayError;

/// What the source has next.
pub(crate) enum Next {
    /// A record, copied into the caller's buffer.
    Record { position: u64, segment_base: u64 },
    /// Nothing yet.
    Empty,
    /// The journal is closed at `position`.
    Closed { position: u64 },
}

/// A segment's capacity and record limit, from its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentShape {
    pub(crate) base: u64,
    pub(crate) capacity: u32,
    pub(crate) max_record_len: u32,
}

/// The shape of the segment of `dir` based at `base`.
fn segment_shape(dir: &Path, base: u64) -> Result<SegmentShape, RelayError> {
    let found = segments(dir)?;
    let header = found
        .iter()
        .find(|s| s.base == base)
        .and_then(|s| s.header.as_ref())
        .ok_or_else(|| {
            RelayError::Journal(JournalError::NotAJournal {
                dir: dir.to_path_buf(),
                reason: format!("no readable segment at position {base}"),
            })
        })?;
    Ok(SegmentShape {
        base,
        capacity: header.capacity_bytes,
        max_record_len: header.max_record_len,
    })
}

/// The journal a push tails.
pub(crate) struct Source {
    reader: JournalReader,
    dir: PathBuf,
    shape: SegmentShape,
}

impl Source {
    pub(crate) fn open(dir: &Path) -> Result<Self, RelayError> {
        let reader = JournalReader::open_at(dir, Start::Beginning)?;
        let shape = segment_shape(dir, reader.segment_base())?;
        Ok(Self {
            reader,
            dir: dir.to_path_buf(),
            shape,
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn journal_id(&self) -> u64 {
        self.reader.journal_id()
    }

    /// The position of the next record.
    pub(crate) fn position(&self) -> u64 {
        self.reader.position()
    }

    pub(crate) fn seek(&mut self, position: u64) -> Result<(), RelayError> {
        self.reader.seek(position)?;
        self.refresh_shape()
    }

    pub(crate) fn segment_base(&self) -> u64 {
        self.reader.segment_base()
    }

    /// The capacity of the segment the reader is in.
    pub(crate) fn segment_bytes(&self) -> u32 {
        self.shape.capacity
    }

    /// The longest record the reader's segment allows.
    pub(crate) fn max_record_len(&self) -> u32 {
        self.shape.max_record_len
    }

    fn refresh_shape(&mut self) -> Result<(), RelayError> {
        let base = self.reader.segment_base();
        if base != self.shape.base {
            self.shape = segment_shape(&self.dir, base)?;
        }
        Ok(())
    }

    /// Reads the next record into `payload` (replacing its contents).
    pub(crate) fn next(&mut self, payload: &mut Vec<u8>) -> Result<Next, RelayError> {
        let position = match self.reader.try_read() {
            Ok(Some(record)) => {
                payload.clear();
                payload.extend_from_slice(record.payload);
                record.position
            }
            Ok(None) => return Ok(Next::Empty),
            Err(e) if e.is_end() => {
                return Ok(Next::Closed {
                    position: self.reader.position(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        // Read after the record is released: the reader is still in the
        // record's segment (it moves on only when it meets the seal).
        self.refresh_shape()?;
        Ok(Next::Record {
            position,
            segment_base: self.reader.segment_base(),
        })
    }
}

/// The journal a pull feeds. Dropped, it is left open (see
/// [`Replica::leave_open`]), never sealed: only the source's end marker
/// seals it ([`Replica::close`]).
pub(crate) struct Replica {
    /// Taken only by `close`, `leave_open` and `drop`.
    writer: Option<JournalWriter>,
}

fn replica_options(shape: &SegmentShape, journal_id: u64) -> JournalOptions {
    JournalOptions::new()
        .journal_id(journal_id)
        .segment_bytes(shape.capacity)
        .max_record_len(shape.max_record_len)
}

impl Replica {
    fn new(writer: JournalWriter) -> Self {
        Self {
            writer: Some(writer),
        }
    }

    fn writer(&self) -> &JournalWriter {
        self.writer
            .as_ref()
            .expect("only close, leave_open and drop take the writer")
    }

    fn writer_mut(&mut self) -> &mut JournalWriter {
        self.writer
            .as_mut()
            .expect("only close, leave_open and drop take the writer")
    }

    /// Opens the replica at `dir` if a journal is there; new segments get
    /// the shape of its last one until a message says otherwise.
    pub(crate) fn open_existing(dir: &Path) -> Result<Option<Self>, RelayError> {
        let found = match segments(dir) {
            Ok(found) => found,
            Err(_) if !dir.exists() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Some(last) = found
            .iter()
            .rev()
            .find_map(|s| s.header.as_ref().map(|h| (s.base, h)))
        else {
            return Ok(None);
        };
        let (base, header) = last;
        let shape = SegmentShape {
            base,
            capacity: header.capacity_bytes,
            max_record_len: header.max_record_len,
        };
        let writer = replica_options(&shape, header.journal_id).open_writer(dir)?;
        Ok(Some(Self::new(writer)))
    }

    /// Creates the replica of journal `journal_id`, whose segments hold
    /// `segment_bytes` and records up to `max_record_len`, with its first
    /// segment at `first_position` (the stream's first position: a source
    /// that starts past 0, or a stream that starts at a later record, keeps
    /// its positions in the replica).
    pub(crate) fn create(
        dir: &Path,
        journal_id: u64,
        segment_bytes: u32,
        max_record_len: u32,
        first_position: u64,
    ) -> Result<Self, RelayError> {
        let shape = SegmentShape {
            base: first_position,
            capacity: segment_bytes,
            max_record_len,
        };
        let writer = replica_options(&shape, journal_id)
            .first_position(first_position)
            .open_writer(dir)?;
        Ok(Self::new(writer))
    }

    pub(crate) fn journal_id(&self) -> u64 {
        self.writer().journal_id()
    }

    pub(crate) fn end_position(&self) -> u64 {
        self.writer().end_position()
    }

    pub(crate) fn segment_base(&self) -> u64 {
        self.writer().segment_base()
    }

    pub(crate) fn append(&mut self, record: &[u8]) -> Result<u64, RelayError> {
        Ok(self.writer_mut().append(record)?)
    }

    /// Appends `records` as one batch (behind a batch marker); returns the
    /// first record's position.
    pub(crate) fn append_batch(&mut self, records: &[&[u8]]) -> Result<u64, RelayError> {
        Ok(self.writer_mut().append_all(records)?)
    }

    /// Seals the current segment; returns the new segment's base. New
    /// segments keep the shape the replica was opened with: if the source's
    /// later segments are larger, the replica rolls early on its own, at the
    /// same position as the record that did not fit.
    pub(crate) fn roll(&mut self) -> Result<u64, RelayError> {
        Ok(self.writer_mut().roll()?)
    }

    /// Seals the journal as the source was sealed; the replica opens again
    /// (with a new segment at the same end) if the source does.
    pub(crate) fn close(mut self) -> Result<(), RelayError> {
        match self.writer.take() {
            Some(writer) => Ok(writer.close()?),
            None => Ok(()),
        }
    }

    /// Stops without sealing (everything synced first): the next pull
    /// resumes the same segment, so the replica's segment boundaries stay
    /// the source's however often the puller stops.
    pub(crate) fn leave_open(mut self) -> Result<(), RelayError> {
        match self.writer.take() {
            Some(writer) => Ok(writer.leave_open()?),
            None => Ok(()),
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        // On an error path: nowhere to report a failed sync, and the next
        // writer's recovery keeps whatever reached the device.
        if let Some(writer) = self.writer.take() {
            let _ = writer.leave_open();
        }
    }
}
