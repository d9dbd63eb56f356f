//! The in-process peers: rtrb and bbqueue (SPSC byte rings, the ceiling for
//! hand-over inside one process) and crossbeam-channel (what most Rust
//! programs use between threads).
//!
//! The rings carry bytes, so records are framed as a little-endian `u32`
//! length and the payload, and a receiver hands over only whole frames.

use std::mem::MaybeUninit;
use std::sync::Arc;

use bbqueue::BBQueue;
use bbqueue::traits::coordination::cas::AtomicCoord;
use bbqueue::traits::notifier::polling::Polling;
use bbqueue::traits::storage::BoxedSlice;

use crate::pipe::{Backoff, Receiver, Sender, stamp};
use crate::{Res, fail};

const FRAME_HEADER: usize = 4;

/// Byte-ring size that holds at least 16 records of `record_len` bytes,
/// and never less than 1 MiB.
pub fn ring_bytes(record_len: usize) -> usize {
    ((record_len + FRAME_HEADER) * 16).max(1 << 20)
}

/// Splits whole frames off the front of the bytes `(a, b)` (a ring's two
/// halves, in order); returns how many bytes they took.
#[inline]
fn parse_frames<F: FnMut(&[u8])>(a: &[u8], b: &[u8], scratch: &mut Vec<u8>, mut each: F) -> usize {
    let total = a.len() + b.len();
    let mut at = 0;
    while at + FRAME_HEADER <= total {
        let mut head = [0u8; FRAME_HEADER];
        copy_span(a, b, at, &mut head);
        let len = u32::from_le_bytes(head) as usize;
        let end = at + FRAME_HEADER + len;
        if end > total {
            break;
        }
        let start = at + FRAME_HEADER;
        if end <= a.len() {
            each(&a[start..end]);
        } else if start >= a.len() {
            each(&b[start - a.len()..end - a.len()]);
        } else {
            // The frame straddles the ring's end: join its halves.
            scratch.clear();
            scratch.extend_from_slice(&a[start..]);
            scratch.extend_from_slice(&b[..end - a.len()]);
            each(scratch);
        }
        at = end;
    }
    at
}

#[inline]
fn copy_span(a: &[u8], b: &[u8], at: usize, out: &mut [u8]) {
    for (i, byte) in out.iter_mut().enumerate() {
        let i = at + i;
        *byte = if i < a.len() { a[i] } else { b[i - a.len()] };
    }
}

/// rtrb's producer, framing records (with a scratch frame buffer).
pub struct RtrbTx(rtrb::Producer<u8>, Vec<u8>);
/// rtrb's consumer, unframing records.
pub struct RtrbRx(rtrb::Consumer<u8>, Vec<u8>);

/// A new rtrb ring for records of up to `record_len` bytes.
pub fn rtrb(record_len: usize) -> (RtrbTx, RtrbRx) {
    let (tx, rx) = rtrb::RingBuffer::new(ring_bytes(record_len));
    (RtrbTx(tx, Vec::new()), RtrbRx(rx, Vec::new()))
}

impl Sender for RtrbTx {
    #[inline]
    fn send(&mut self, record: &[u8]) -> Res<()> {
        // One push per frame, so the receiver never sees half of one: frame
        // it in a (cache-hot) scratch buffer first.
        let frame = &mut self.1;
        frame.clear();
        frame.extend_from_slice(&(record.len() as u32).to_le_bytes());
        frame.extend_from_slice(record);
        let mut backoff = Backoff::default();
        while self.0.push_entire_slice(frame).is_err() {
            if self.0.is_abandoned() {
                return Err(fail("rtrb: receiver gone"));
            }
            backoff.snooze();
        }
        Ok(())
    }

    /// `write_chunk_uninit` for every frame of the batch, filled in place,
    /// then one `commit_all`: the consumer sees the whole batch at once, as
    /// a kekbit batch's readers do.
    #[inline]
    fn send_batch(&mut self, record: &mut [u8], first: u64, count: u64) -> Res<()> {
        let frame = FRAME_HEADER + record.len();
        let total = frame * count as usize;
        let head = (record.len() as u32).to_le_bytes();
        let mut chunk = self.chunk(total)?;
        let (a, b) = chunk.as_mut_slices();
        let mut at = 0;
        for seq in first..first + count {
            stamp(record, seq);
            put(a, b, at, &head);
            put(a, b, at + FRAME_HEADER, record);
            at += frame;
        }
        // SAFETY: the loop wrote every one of the chunk's `total` slots.
        unsafe { chunk.commit_all() };
        Ok(())
    }
}

impl RtrbTx {
    /// Waits for `n` free slots and returns them, uninitialised.
    #[inline]
    fn chunk(&mut self, n: usize) -> Res<rtrb::chunks::WriteChunkUninit<'_, u8>> {
        if n > self.0.buffer().capacity() {
            return Err(fail(format!("rtrb: a chunk of {n} bytes exceeds the ring")));
        }
        let mut backoff = Backoff::default();
        while self.0.slots() < n {
            if self.0.is_abandoned() {
                return Err(fail("rtrb: receiver gone"));
            }
            backoff.snooze();
        }
        self.0
            .write_chunk_uninit(n)
            .map_err(|e| fail(e.to_string()))
    }
}

/// Copies `bytes` to offset `at` of the ring space `a` followed by `b`.
#[inline]
fn put(a: &mut [MaybeUninit<u8>], b: &mut [MaybeUninit<u8>], at: usize, bytes: &[u8]) {
    let in_a = bytes.len().min(a.len().saturating_sub(at));
    if in_a > 0 {
        copy(&bytes[..in_a], &mut a[at..at + in_a]);
    }
    if in_a < bytes.len() {
        let from = at + in_a - a.len();
        copy(&bytes[in_a..], &mut b[from..from + bytes.len() - in_a]);
    }
}

#[inline]
fn copy(src: &[u8], dst: &mut [MaybeUninit<u8>]) {
    assert_eq!(src.len(), dst.len());
    // SAFETY: both are `src.len()` long, `MaybeUninit<u8>` has the layout of
    // `u8`, and a shared and a unique borrow never overlap.
    unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_mut_ptr().cast(), src.len()) }
}

impl Receiver for RtrbRx {
    #[inline]
    fn poll<F: FnMut(&[u8])>(&mut self, each: F) -> Res<usize> {
        let slots = self.0.slots();
        if slots < FRAME_HEADER {
            return Ok(0);
        }
        let chunk = self.0.read_chunk(slots).map_err(|e| fail(e.to_string()))?;
        let (a, b) = chunk.as_slices();
        let mut n = 0;
        let mut each = each;
        let used = parse_frames(a, b, &mut self.1, |r| {
            n += 1;
            each(r)
        });
        chunk.commit(used);
        Ok(n)
    }
}

type Bbq = BBQueue<BoxedSlice, AtomicCoord, Polling>;

/// bbqueue's stream producer, framing records.
pub struct BbqTx(bbqueue::prod_cons::stream::StreamProducer<Arc<Bbq>>);
/// bbqueue's stream consumer, unframing records.
pub struct BbqRx(
    bbqueue::prod_cons::stream::StreamConsumer<Arc<Bbq>>,
    Vec<u8>,
);

/// A new bbqueue (heap storage, atomics, polling) for records of up to
/// `record_len` bytes.
pub fn bbqueue(record_len: usize) -> (BbqTx, BbqRx) {
    let queue = bbqueue::ArcBBQueue::<BoxedSlice, AtomicCoord, Polling>::new_with_storage(
        BoxedSlice::new(ring_bytes(record_len)),
    );
    (
        BbqTx(queue.stream_producer()),
        BbqRx(queue.stream_consumer(), Vec::new()),
    )
}

impl Sender for BbqTx {
    #[inline]
    fn send(&mut self, record: &[u8]) -> Res<()> {
        let total = FRAME_HEADER + record.len();
        let mut backoff = Backoff::default();
        let mut grant = loop {
            match self.0.grant_exact(total) {
                Ok(grant) => break grant,
                Err(_) => backoff.snooze(),
            }
        };
        grant[..FRAME_HEADER].copy_from_slice(&(record.len() as u32).to_le_bytes());
        grant[FRAME_HEADER..total].copy_from_slice(record);
        grant.commit(total);
        Ok(())
    }
}

impl Receiver for BbqRx {
    #[inline]
    fn poll<F: FnMut(&[u8])>(&mut self, each: F) -> Res<usize> {
        let Ok(grant) = self.0.read() else {
            return Ok(0);
        };
        let mut n = 0;
        let mut each = each;
        // A grant is contiguous and the producer never splits a grant, so
        // frames are whole.
        let used = parse_frames(&grant, &[], &mut self.1, |r| {
            n += 1;
            each(r)
        });
        grant.release(used);
        Ok(n)
    }
}

/// crossbeam-channel's sender of owned records.
pub struct CrossbeamTx(crossbeam_channel::Sender<Vec<u8>>);
/// crossbeam-channel's receiver of owned records.
pub struct CrossbeamRx(crossbeam_channel::Receiver<Vec<u8>>);

/// A new bounded crossbeam channel holding about 1 MiB of records of
/// `record_len` bytes (16 to 4,096 of them).
pub fn crossbeam(record_len: usize) -> (CrossbeamTx, CrossbeamRx) {
    let slots = ((1 << 20) / record_len.max(1)).clamp(16, 4096);
    let (tx, rx) = crossbeam_channel::bounded(slots);
    (CrossbeamTx(tx), CrossbeamRx(rx))
}

impl Sender for CrossbeamTx {
    #[inline]
    fn send(&mut self, record: &[u8]) -> Res<()> {
        // What users do: an owned buffer per message.
        self.0
            .send(record.to_vec())
            .map_err(|_| fail("crossbeam: receiver gone"))
    }
}

impl Receiver for CrossbeamRx {
    #[inline]
    fn poll<F: FnMut(&[u8])>(&mut self, mut each: F) -> Res<usize> {
        let mut n = 0;
        while let Ok(record) = self.0.try_recv() {
            each(&record);
            n += 1;
        }
        Ok(n)
    }
}
