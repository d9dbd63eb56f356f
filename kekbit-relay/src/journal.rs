//! The relay's view of a journal: the source it tails and the replica it
//! feeds. Everything the relay needs from `kekbit_std::journal` goes
//! through here.

use std::path::{Path, PathBuf};

use crate::RelayError;
pub use crate::journal_standin::JournalError;
use crate::journal_standin::{JournalOptions, JournalReader, JournalWriter, Start};

/// What the source has next.
pub(crate) enum Next {
    /// A record, copied into the caller's buffer.
    Record { position: u64, segment_base: u64 },
    /// Nothing yet.
    Empty,
    /// The journal is closed at `position`.
    Closed { position: u64 },
}

/// The journal a push tails.
pub(crate) struct Source {
    reader: JournalReader,
    dir: PathBuf,
}

impl Source {
    pub(crate) fn open(dir: &Path) -> Result<Self, RelayError> {
        let reader = JournalReader::open_at(dir, Start::Beginning)?;
        Ok(Self {
            reader,
            dir: dir.to_path_buf(),
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

    pub(crate) fn seek(&mut self, position: u64) -> Result<(), JournalError> {
        self.reader.seek(position)
    }

    pub(crate) fn segment_base(&self) -> u64 {
        self.reader.segment_base()
    }

    /// The capacity of the segment the reader is in.
    pub(crate) fn segment_bytes(&self) -> u32 {
        self.reader.segment_bytes()
    }

    /// The longest record the journal allows.
    pub(crate) fn max_record_len(&self) -> u32 {
        self.reader.max_record_len()
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
            Err(JournalError::Closed { .. }) => {
                return Ok(Next::Closed {
                    position: self.reader.position(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        // Read after the record is released: the reader is still in the
        // record's segment (it moves on only when it meets the seal).
        Ok(Next::Record {
            position,
            segment_base: self.reader.segment_base(),
        })
    }
}

/// The journal a pull feeds.
pub(crate) struct Replica {
    writer: JournalWriter,
    segment_base: u64,
}

impl Replica {
    /// Opens the replica at `dir` if a journal is there.
    pub(crate) fn open_existing(dir: &Path) -> Result<Option<Self>, RelayError> {
        if !dir.join("standin.meta").exists() {
            return Ok(None);
        }
        let writer = JournalWriter::open(dir)?;
        let segment_base = writer.segment_base();
        Ok(Some(Self {
            writer,
            segment_base,
        }))
    }

    /// Creates the replica of journal `journal_id`, whose segments hold
    /// `segment_bytes` and records up to `max_record_len`, starting at
    /// `first_position`.
    pub(crate) fn create(
        dir: &Path,
        journal_id: u64,
        segment_bytes: u32,
        max_record_len: u32,
        first_position: u64,
    ) -> Result<Self, RelayError> {
        if first_position != 0 {
            return Err(RelayError::ReplicaStart {
                dir: dir.to_path_buf(),
                first_position,
            });
        }
        let writer = JournalOptions::new()
            .journal_id(journal_id)
            .segment_bytes(segment_bytes)
            .max_record_len(max_record_len)
            .open_writer(dir)?;
        Ok(Self {
            segment_base: writer.segment_base(),
            writer,
        })
    }

    pub(crate) fn journal_id(&self) -> u64 {
        self.writer.journal_id()
    }

    pub(crate) fn end_position(&self) -> u64 {
        self.writer.end_position()
    }

    pub(crate) fn segment_base(&self) -> u64 {
        self.segment_base
    }

    pub(crate) fn append(&mut self, record: &[u8]) -> Result<u64, RelayError> {
        Ok(self.writer.append(record)?)
    }

    /// Appends `records` as one batch (behind a batch marker); returns the
    /// first record's position.
    pub(crate) fn append_batch(&mut self, records: &[&[u8]]) -> Result<u64, RelayError> {
        Ok(self.writer.append_all(records)?)
    }

    /// Seals the current segment; returns the new segment's base.
    pub(crate) fn roll(&mut self) -> Result<u64, RelayError> {
        self.segment_base = self.writer.roll()?;
        Ok(self.segment_base)
    }

    /// Seals the journal as the source was sealed; the replica opens again
    /// (with a new segment at the same end) if the source does.
    pub(crate) fn close(self) -> Result<(), RelayError> {
        Ok(self.writer.close()?)
    }
}
