//! Journals: unbounded, durable streams of records, kept as a folder of
//! chained channels (segments), with retention, group commit and crash
//! recovery.
//!
//! A channel has a fixed capacity; a journal runs for months. Its writer
//! appends to one segment, an ordinary kekbit channel, and when a record
//! does not fit (or the segment is old enough, or on request) it publishes
//! the next segment, made and pre-faulted ahead of time, and seals the
//! current one. Readers cross from segment to segment without noticing.
//!
//! - **Positions**: a record at offset `p` of the segment whose record area
//!   starts at journal position `base` is at position `base + p`. Each
//!   segment starts where the previous one was sealed, so positions are
//!   unique and only grow, and a segment's file is named by its base,
//!   zero-padded (`00000000000000004096.kekbit`), so `ls` sorts it.
//! - **One writer**, [`JournalWriter`], enforced with `flock` on
//!   `writer.lock` in the folder; readers ([`JournalReader`]) take no lock.
//! - **Durability**: [`JournalWriter::sync`], a background flusher
//!   ([`JournalOptions::flush_every`]), and group commit for many threads
//!   ([`SharedJournal::append_durable`]).
//! - **Retention**: [`Retention`] and [`JournalWriter::truncate_before`]
//!   delete whole sealed segments, oldest first.
//! - **Recovery**: opening a journal for writing finds its last sound record
//!   and goes on after it; see [`Recovery`].
//! - **Inspection** for tools: [`segments`], [`inspect`].
//!
//! `docs/FORMAT.md` ("Journals") describes the folder's layout.
//!
//! # Example
//!
//! ```
//! use kekbit_std::journal::{JournalOptions, JournalReader, Start};
//!
//! let dir = tempfile::tempdir()?;
//! let mut writer = JournalOptions::new().segment_bytes(64 << 10).open_writer(dir.path())?;
//! let first = writer.append(b"hello")?;
//! let second = writer.append(b"journal")?;
//! writer.sync()?; // both survive power loss now
//!
//! let mut reader = JournalReader::open_at(dir.path(), Start::Position(second))?;
//! assert_eq!(&*reader.try_read()?.unwrap(), b"journal");
//! reader.seek(first)?;
//! assert_eq!(&*reader.try_read()?.unwrap(), b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod background;
mod durable;
mod error;
mod flusher;
mod inspect;
mod layout;
mod lock;
mod options;
mod reader;
mod recovery;
mod retention;
mod segment;
mod shared;
mod writer;

#[cfg(test)]
mod tests;

pub use error::JournalError;
pub use inspect::{JournalInfo, SegmentInfo, SegmentState, inspect, segments};
pub use layout::{LOCK_FILE_NAME, parse_segment_file_name, segment_file_name};
pub use options::{DEFAULT_SEGMENT_BYTES, JournalOptions, Retention};
pub use reader::{JournalBlocking, JournalReader, JournalRecord, Start};
pub use recovery::Recovery;
pub use shared::SharedJournal;
pub use writer::{JournalGrant, JournalWriter};
