#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![cfg(unix)]

pub mod admin;
mod config;
mod error;
mod log;
mod map;
mod record;
mod serial;
pub mod snapshot;
mod store;

pub use config::{Config, SyncMode};
pub use error::{Error, Result};
pub use serial::{DecodeError, Deserializable, Serializable};
pub use snapshot::{Manifest, SnapshotInfo};
pub use store::{PersistentKeyValueStore, Stats, WriteBatch};
