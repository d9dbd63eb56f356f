//! What every model shares: the channel, the runner, the reader loops.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};

use kekbit_nostd::format::{COMMIT_RECORD_TAG, HEADER_LEN};
use kekbit_nostd::{ChannelConfig, LoomRegion, Ordering, ReadError, Reader, Region, Writer};

/// What every word of a fresh region holds before the writer runs: a commit
/// word announcing a committed 8-byte record. A writer that failed to clear
/// the commit word after a record would show readers a phantom record here,
/// which the models catch as an unexpected payload; a fill the reader calls
/// corrupt would hide that bug behind a different failure.
pub const GARBAGE: u32 = COMMIT_RECORD_TAG | 8;

/// The preemption bound used when `LOOM_MAX_PREEMPTIONS` is not set, so a
/// plain `cargo test` stays bounded too.
pub const DEFAULT_PREEMPTIONS: usize = 3;

/// Runs `model` under loom: every interleaving and every weak-memory outcome
/// within the preemption bound (`LOOM_MAX_PREEMPTIONS`, default
/// [`DEFAULT_PREEMPTIONS`]). A failed assertion or a loom causality report in
/// any of them fails the test.
///
/// Returns how many executions loom explored and prints it, with the bound,
/// so a run shows how much each model covers.
pub fn check<F>(model: F) -> usize
where
    F: Fn() + Sync + Send + 'static,
{
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(DEFAULT_PREEMPTIONS);
    }
    // Name the protocol's own lines in causality reports, not just the
    // region's (`LoomRegion` passes its callers' locations on).
    builder.location = true;
    // A std atomic, not a loom one: it counts executions and is no part of
    // any model.
    let executions = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&executions);
    builder.check(move || {
        counter.fetch_add(1, StdOrdering::Relaxed);
        model();
    });
    let executions = executions.load(StdOrdering::Relaxed);
    // The test harness names each test's thread after the test.
    let thread = std::thread::current();
    println!(
        "{}: {executions} executions explored (preemption bound {})",
        thread.name().unwrap_or("model"),
        builder.preemption_bound.unwrap_or(DEFAULT_PREEMPTIONS)
    );
    executions
}

/// The writer's handle on a model's region. Only [`channel`] makes one, and
/// only one per region, so holding it is holding the channel's only writer.
pub struct WriterRegion(Arc<LoomRegion>);

// SAFETY: every method forwards to the `LoomRegion`, which keeps the trait's
// promises; the `Arc` keeps it alive and unmoved while the handle lives.
unsafe impl Region for WriterRegion {
    fn len(&self) -> usize {
        self.0.len()
    }
    unsafe fn load_u32(&self, offset: usize, order: Ordering) -> u32 {
        // SAFETY: the caller's contract is forwarded unchanged.
        unsafe { self.0.load_u32(offset, order) }
    }
    unsafe fn store_u32(&self, offset: usize, value: u32, order: Ordering) {
        // SAFETY: the caller's contract is forwarded unchanged.
        unsafe { self.0.store_u32(offset, value, order) }
    }
    #[track_caller]
    unsafe fn copy_in(&self, offset: usize, src: &[u8]) {
        // SAFETY: the caller's contract is forwarded unchanged.
        unsafe { self.0.copy_in(offset, src) }
    }
    #[track_caller]
    unsafe fn copy_out(&self, offset: usize, dst: &mut [u8]) {
        // SAFETY: the caller's contract is forwarded unchanged.
        unsafe { self.0.copy_out(offset, dst) }
    }
    #[track_caller]
    unsafe fn bytes(&self, offset: usize, len: usize) -> &[u8] {
        // SAFETY: the caller's contract is forwarded unchanged.
        unsafe { self.0.bytes(offset, len) }
    }
    #[track_caller]
    unsafe fn bytes_mut(&self, offset: usize, len: usize) -> &mut [u8] {
        // SAFETY: the caller's contract is forwarded unchanged.
        unsafe { self.0.bytes_mut(offset, len) }
    }
}

/// A fresh region filled with [`GARBAGE`], with no channel in it yet: for
/// models where readers race the channel's creation. It is not `Clone`, and
/// [`Blank::create`] consumes it, so it yields exactly one writer.
pub struct Blank(Arc<LoomRegion>);

impl Blank {
    /// A region with a record area of `capacity_bytes`. Call it inside the
    /// model: loom's objects live for one execution.
    pub fn new(capacity_bytes: usize) -> Self {
        Self(Arc::new(LoomRegion::new(
            HEADER_LEN + capacity_bytes,
            GARBAGE,
        )))
    }

    /// A handle for readers: open them with `Reader::open(&*handle)`, in
    /// their own thread, before or after the channel exists.
    pub fn readers(&self) -> Arc<LoomRegion> {
        Arc::clone(&self.0)
    }

    /// Creates the channel (on whatever thread calls it) and returns its
    /// only writer.
    pub fn create(self, config: &ChannelConfig) -> Writer<WriterRegion> {
        // SAFETY: `self` is the only `Blank` over this region and is
        // consumed here, so this is the only `WriterRegion` over it; reader
        // handles are not `Region`s by value.
        unsafe { Writer::create_unchecked(WriterRegion(self.0), config) }
            .expect("the model's channel configuration is valid")
    }
}

/// Creates a channel with a record area of `capacity_bytes` in a fresh
/// region filled with [`GARBAGE`]; returns its only writer and a handle for
/// readers (open them with `Reader::open(&*handle)` in their own thread).
///
/// Call it inside the model: loom's objects live for one execution.
pub fn channel(
    capacity_bytes: usize,
    config: &ChannelConfig,
) -> (Writer<WriterRegion>, Arc<LoomRegion>) {
    let blank = Blank::new(capacity_bytes);
    let readers = blank.readers();
    (blank.create(config), readers)
}

/// The payload of the model's record number `index`: `len` bytes that differ
/// from every other record's, from the garbage fill and from zero.
pub fn payload(index: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| 0x11u8.wrapping_mul(index + 1) ^ (i as u8).wrapping_mul(3) | 0x40)
        .collect()
}

/// What one reader saw: every record in order, and the end of the channel
/// (`Closed` or `Full`) if it got there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// The records, in the order the reader returned them.
    pub records: Vec<Vec<u8>>,
    /// `Some(Closed)` or `Some(Full)` once the reader reached the end.
    pub end: Option<ReadError>,
}

impl Seen {
    /// Everything a reader that saw `records`, then `end`, saw.
    pub fn of(records: &[Vec<u8>], end: Option<ReadError>) -> Self {
        Self {
            records: records.to_vec(),
            end,
        }
    }

    /// Polls `attempts` times while the writer runs, or until the end.
    ///
    /// There is no `yield_now` between polls: after a yield, loom stops
    /// offering a thread stores it has already seen, and stale loads are
    /// part of what the models must explore. A bounded count keeps the
    /// schedule finite instead; one attempt per record plus one for the end
    /// marker lets the reader see everything while the writer runs.
    pub fn poll(&mut self, reader: &mut Reader<'_, LoomRegion>, attempts: usize) {
        for _ in 0..attempts {
            if self.end.is_some() {
                break;
            }
            self.step(reader);
        }
    }

    /// Reads whatever is left once the writer has finished.
    pub fn finish(&mut self, reader: &mut Reader<'_, LoomRegion>) {
        while self.end.is_none() && self.step(reader) {}
    }

    /// Like [`Seen::poll`], over a writer that publishes in batches: the
    /// reader may find nothing new only between batches, where the number
    /// of records it has read is one of `batch_ends` (cumulative counts).
    /// Once it has read a batch's first record, the rest of that batch is
    /// published too: finding nothing inside a batch fails the model.
    pub fn poll_batches(
        &mut self,
        reader: &mut Reader<'_, LoomRegion>,
        attempts: usize,
        batch_ends: &[usize],
    ) {
        for _ in 0..attempts {
            if self.end.is_some() {
                break;
            }
            let before = self.records.len();
            if !self.step(reader) && self.end.is_none() {
                assert!(
                    batch_ends.contains(&before),
                    "the reader found nothing after {before} records, inside a batch \
                     (batches end after {batch_ends:?} records)"
                );
            }
        }
    }

    /// One `try_read`; whether it returned a record. Damage fails the model:
    /// a correctly written channel never looks corrupt or mis-summed.
    fn step(&mut self, reader: &mut Reader<'_, LoomRegion>) -> bool {
        match reader.try_read() {
            Ok(Some(record)) => {
                self.records.push(record.to_vec());
                true
            }
            Ok(None) => false,
            Err(end @ (ReadError::Closed | ReadError::Full)) => {
                self.end = Some(end);
                false
            }
            Err(e) => panic!(
                "after {} records the reader reported: {e}",
                self.records.len()
            ),
        }
    }
}
