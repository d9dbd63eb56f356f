//! The one place the crate's atomics come from.
//!
//! Under `--cfg loom` the model-checked types are loom's; otherwise they are
//! `core`'s. Loom cannot place its atomics over raw bytes (a mapped file, a
//! static buffer), so regions over raw memory always use `core`'s
//! [`RawAtomicU32`], and `loom-tests` substitutes the loom-backed
//! `LoomRegion` instead: the protocol code never names an atomic type.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::AtomicU32;

/// The memory orderings; loom re-exports `core`'s type, so this is one type.
pub use core::sync::atomic::Ordering;

/// An atomic placed over raw bytes with `AtomicU32::from_ptr`: always
/// `core`'s, because loom's atomics carry model state and cannot alias memory.
pub(crate) use core::sync::atomic::AtomicU32 as RawAtomicU32;
