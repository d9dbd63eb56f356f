#![doc = include_str!("../README.md")]
#![no_std]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(test)]
extern crate std;

mod batch;
mod checksum;
mod clock;
mod encoder;
mod error;
pub mod format;
mod header;
mod poller;
mod reader;
mod record;
mod region;
mod sync;
mod writer;

pub use batch::{Batch, BatchError, BatchGrant};
pub use checksum::record_checksum;
pub use clock::{Clock, TickUnit};
pub use encoder::{
    ChainedHandler, Encode, Handler, PlainHandler, RecordSink, SequenceHandler, TimestampHandler,
};
pub use error::{
    Corruption, EncodeError, HeaderError, ReadError, RegionError, SeekError, WriteError,
};
pub use header::{ChannelConfig, Header};
pub use poller::Poller;
pub use reader::{Reader, Records, Status};
#[cfg(loom)]
pub use region::LoomRegion;
pub use region::{AlignedBuffer, ExclusiveRegion, Region, SliceRegion};
pub use sync::Ordering;
pub use writer::{Grant, ResumeError, Writer};
