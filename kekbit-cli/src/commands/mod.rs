//! One module per command.

pub mod cat;
pub mod demo;
pub mod info;
pub mod kv;
#[cfg(feature = "relay")]
pub mod relay;
pub mod verify;
pub mod write;
