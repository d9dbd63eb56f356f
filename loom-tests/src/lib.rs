//! Loom models of the kekbit writer/reader protocol.
//!
//! The models live in `tests/models.rs`; this library holds what they share:
//! a channel over a `LoomRegion` with exactly one writer handle, a model
//! runner with a default preemption bound, and what a reader saw (`Seen`).
//! Everything here exists only under `--cfg loom`; in a normal build the
//! crate is empty. `README.md` says how to run the models and what each one
//! proves.

#[cfg(loom)]
mod harness;
#[cfg(loom)]
pub use harness::{
    Blank, DEFAULT_PREEMPTIONS, GARBAGE, Seen, WriterRegion, channel, check, payload,
};
