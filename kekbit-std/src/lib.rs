#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![cfg(unix)]

mod batch;
mod clock;
mod creation;
mod durability;
mod error;
mod fault;
pub mod journal;
mod location;
mod mapping;
mod reader;
mod shared;
mod trust;
mod wait;
mod writer;

pub use batch::{BatchError, ShmBatch, ShmBatchGrant};
pub use clock::SystemClock;
pub use durability::Durability;
pub use error::{ChannelError, TrustError};
pub use journal::{
    JournalBlocking, JournalError, JournalGrant, JournalInfo, JournalOptions, JournalReader,
    JournalRecord, JournalWriter, Recovery, Retention, SegmentInfo, SegmentState, SharedJournal,
    Start,
};
pub use location::{CHANNEL_EXTENSION, default_root, storage_path};
pub use mapping::MappedRegion;
pub use reader::{Blocking, ChannelReader, ShmReader, open_reader, shm_reader, try_shm_reader};
pub use shared::SharedWriter;
pub use wait::WaitStrategy;
pub use writer::{
    DEFAULT_CAPACITY_BYTES, DEFAULT_MODE, Grant, ShmWriter, WriterOptions, shm_writer,
};

/// The core crate (format, protocol, encoders), re-exported so users need
/// one dependency.
pub use kekbit_nostd;
