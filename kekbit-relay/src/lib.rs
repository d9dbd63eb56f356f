#![doc = include_str!("../README.md")]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod error;
mod events;
mod idle;
mod journal;
pub mod message;
mod progress;
mod pull;
mod push;
mod stream;

pub use error::RelayError;
pub use events::{Event, EventSink, stderr_events};
pub use idle::IdleStrategy;
pub use journal::JournalError;
pub use progress::{Progress, ProgressSnapshot};
pub use pull::{Pull, PullOptions, PullStats};
pub use push::{HEADER_ALLOWANCE, Push, PushOptions, PushStats, StartAt, StreamSettings};

/// Storage for a stream the push creates (re-exported from `async-nats`).
pub use async_nats::jetstream::stream::StorageType;
