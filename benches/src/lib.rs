//! Side-by-side benchmarks of kekbit, its peers and the machine's limits.
//!
//! The `compare` binary drives everything; this library holds the pieces it
//! alternates between: one module per system under test ([`kek`],
//! [`kek035`], [`peers`], [`ice`], the key-value stores in [`kv`], [`relay`];
//! journals, with their own tables, in [`journal`]), the machine's limits
//! ([`limits`]), the workload drivers that are generic over a
//! [`pipe::Sender`] and a [`pipe::Receiver`] ([`workload`]), and the
//! Markdown report ([`report`]).

pub mod ice;
pub mod journal;
pub mod kek;
pub mod kek035;
pub mod kv;
pub mod limits;
pub mod peers;
pub mod pipe;
pub mod relay;
pub mod report;
pub mod workload;

/// Errors of the harness: any failure ends the run with its message.
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;
/// Results of the harness.
pub type Res<T> = Result<T, BenchError>;

/// Builds a [`BenchError`] from a message.
pub fn fail(msg: impl Into<String>) -> BenchError {
    msg.into().into()
}
