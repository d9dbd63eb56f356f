//! One module per command.

pub mod cat;
pub mod demo;
pub mod info;
pub mod verify;
pub mod write;
