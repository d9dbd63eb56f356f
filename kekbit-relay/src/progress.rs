//! Live counters for a progress line, shared between the relay's threads
//! and whoever displays them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The counters a push or a pull updates as it runs.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Records done: acknowledged by the server (push) or appended (pull).
    records: AtomicU64,
    bytes: AtomicU64,
    /// The position after the last record done.
    position: AtomicU64,
    /// Records and position seen ahead of `records`: read from the journal
    /// (push), or the stream's end (pull).
    seen_records: AtomicU64,
    seen_position: AtomicU64,
    /// Messages the stream holds beyond the last one done (pull).
    pending_messages: AtomicU64,
    resyncs: AtomicU64,
}

impl Counters {
    pub(crate) fn set_start(&self, position: u64) {
        self.position.store(position, Ordering::Relaxed);
        self.seen_position.fetch_max(position, Ordering::Relaxed);
    }

    pub(crate) fn read(&self, records: u64, _bytes: u64, end: u64) {
        self.seen_records.fetch_add(records, Ordering::Relaxed);
        self.seen_position.fetch_max(end, Ordering::Relaxed);
    }

    pub(crate) fn acked(&self, records: u64, bytes: u64, end: u64) {
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.position.store(end, Ordering::Relaxed);
        self.seen_position.fetch_max(end, Ordering::Relaxed);
    }

    pub(crate) fn appended(&self, records: u64, bytes: u64, end: u64, pending_messages: u64) {
        self.records.fetch_add(records, Ordering::Relaxed);
        self.seen_records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.position.store(end, Ordering::Relaxed);
        self.seen_position.fetch_max(end, Ordering::Relaxed);
        self.pending_messages
            .store(pending_messages, Ordering::Relaxed);
    }

    pub(crate) fn stream_end(&self, end: u64) {
        self.seen_position.fetch_max(end, Ordering::Relaxed);
    }

    pub(crate) fn resynced(&self) {
        self.resyncs.fetch_add(1, Ordering::Relaxed);
    }
}

/// A handle on a running push's or pull's counters.
#[derive(Clone, Debug)]
pub struct Progress {
    counters: Arc<Counters>,
    started: std::time::Instant,
}

/// The counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProgressSnapshot {
    /// Records done: acknowledged by the server (push) or appended to the
    /// replica (pull).
    pub records: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// The position after the last record done.
    pub position: u64,
    /// Push: records read from the journal and not yet acknowledged. Pull:
    /// 0 (see `lag_messages`).
    pub lag_records: u64,
    /// Bytes between `position` and the furthest position known: read from
    /// the journal (push) or held by the stream (pull).
    pub lag_bytes: u64,
    /// Pull: messages the stream holds past the last one appended.
    pub lag_messages: u64,
    /// Times a push resumed after a broken chain, or a pull restarted its consumer.
    pub resyncs: u64,
    /// Time since the handle was made.
    pub elapsed: Duration,
}

impl Progress {
    pub(crate) fn new(counters: Arc<Counters>) -> Self {
        Self {
            counters,
            started: std::time::Instant::now(),
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> ProgressSnapshot {
        let c = &self.counters;
        let records = c.records.load(Ordering::Relaxed);
        let position = c.position.load(Ordering::Relaxed);
        ProgressSnapshot {
            records,
            bytes: c.bytes.load(Ordering::Relaxed),
            position,
            lag_records: c
                .seen_records
                .load(Ordering::Relaxed)
                .saturating_sub(records),
            lag_bytes: c
                .seen_position
                .load(Ordering::Relaxed)
                .saturating_sub(position),
            lag_messages: c.pending_messages.load(Ordering::Relaxed),
            resyncs: c.resyncs.load(Ordering::Relaxed),
            elapsed: self.started.elapsed(),
        }
    }
}
