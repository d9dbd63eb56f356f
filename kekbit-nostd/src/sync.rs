//! The one place the crate's atomics come from.
//!
//! Under `--cfg loom` the model-checked types are loom's; otherwise they are
//! `core`'s. Loom cannot place its atomics over raw bytes (a mapped file, a
//! static buffer), so regions over raw memory always use `core`'s
//! [`RawAtomicU32`], and `loom-tests` substitutes the loom-backed
//! `LoomRegion` instead: the protocol code never names an atomic type.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::AtomicU32;

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::fence;
/// The fence that turns a reader's `Relaxed` load into an acquire: readers
/// map channels read-only, where only `Relaxed` atomic loads are allowed
/// (see `AtomicU32::from_ptr`), so every read path loads `Relaxed` and then
/// fences. Loom models fences, so the models check this pairing too.
#[cfg(loom)]
pub(crate) use loom::sync::atomic::fence;

/// The memory orderings; loom re-exports `core`'s type, so this is one type.
pub use core::sync::atomic::Ordering;

/// An atomic placed over raw bytes with `AtomicU32::from_ptr`: always
/// `core`'s, because loom's atomics carry model state and cannot alias memory.
pub(crate) use core::sync::atomic::AtomicU32 as RawAtomicU32;
