//! One module per command.

pub mod cat;
pub mod demo;
pub mod info;
pub mod kv;
pub mod verify;
pub mod write;
