//! The workload drivers, generic over any [`Sender`] and [`Receiver`], so
//! every system runs exactly the same loop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::pipe::{Backoff, Receiver, Sender, SeqCheck, pin, stamp};
use crate::{Res, fail};

/// Gives up on a receiver that sees nothing for this long.
const STALL: Duration = Duration::from_secs(30);

/// Detects a peer that stopped, without reading the clock on every spin.
struct Stall {
    spins: u32,
    since: Option<(Instant, u64)>,
}

impl Stall {
    fn new() -> Self {
        Self {
            spins: 0,
            since: None,
        }
    }

    /// Called on each empty poll with the progress made so far; fails once
    /// no progress was seen for [`STALL`].
    #[inline]
    fn idle(&mut self, progress: u64) -> Res<()> {
        self.spins = self.spins.wrapping_add(1);
        if !self.spins.is_multiple_of(4096) {
            return Ok(());
        }
        match self.since {
            Some((t, p)) if p == progress => {
                if t.elapsed() > STALL {
                    return Err(fail(format!(
                        "stalled for {} s after {progress} records",
                        STALL.as_secs()
                    )));
                }
            }
            _ => self.since = Some((Instant::now(), progress)),
        }
        Ok(())
    }
}

/// Sends `records` records of `len` bytes, numbered from 0.
pub fn send_all(tx: &mut impl Sender, len: usize, records: u64) -> Res<()> {
    send_all_in(tx, len, records, 1)
}

/// Sends `records` records of `len` bytes, numbered from 0, in batches of
/// `batch` (1: one by one, with [`Sender::send`]; the last batch may be
/// shorter).
pub fn send_all_in(tx: &mut impl Sender, len: usize, records: u64, batch: u64) -> Res<()> {
    let mut scratch = Scratch::new(len.max(8));
    let record = scratch.bytes();
    if batch <= 1 {
        for seq in 0..records {
            stamp(record, seq);
            tx.send(record)?;
        }
        return Ok(());
    }
    let mut seq = 0;
    while seq < records {
        let count = batch.min(records - seq);
        tx.send_batch(record, seq, count)?;
        seq += count;
    }
    Ok(())
}

/// A writer's record buffer on cache lines of its own: the writer stores
/// into it for every record, and a neighbour on the same line (another
/// allocation the reader reads, such as its channel's mapping handle) would
/// take a cache miss on every record, as false sharing.
pub struct Scratch {
    buf: Vec<u8>,
    at: usize,
    len: usize,
}

impl Scratch {
    const LINE: usize = 64;

    /// A buffer of `len` bytes of 0xA5, with at least a cache line free on
    /// each side.
    pub fn new(len: usize) -> Self {
        let buf = vec![0xA5u8; len + 3 * Self::LINE];
        let misalign = buf.as_ptr() as usize % Self::LINE;
        let at = 2 * Self::LINE - misalign;
        Self { buf, at, len }
    }

    /// The buffer.
    pub fn bytes(&mut self) -> &mut [u8] {
        &mut self.buf[self.at..self.at + self.len]
    }
}

/// Receives and checks `records` records of `len` bytes; returns the time
/// from `start` (or else from the first record) to the last record, and the
/// records that time spans.
pub fn receive_all(
    rx: &mut impl Receiver,
    len: usize,
    records: u64,
    start: Option<Instant>,
) -> Res<(Duration, u64)> {
    let mut check = SeqCheck::new(len.max(8));
    let mut first = start.map(|t| (t, 0));
    let mut stall = Stall::new();
    let mut backoff = Backoff::default();
    while check.count() < records {
        let got = rx.poll(|r| check.check(r))?;
        if got == 0 {
            stall.idle(check.count())?;
            backoff.snooze();
            continue;
        }
        backoff.reset();
        if first.is_none() {
            first = Some((Instant::now(), check.count()));
        }
    }
    check.finish()?;
    let (t0, n0) = first.ok_or_else(|| fail("no records"))?;
    Ok((t0.elapsed(), records - n0))
}

/// Throughput between two threads: returns records per second. The
/// receiver is made on the reader thread (some are not `Send`).
pub fn threads<T, R, M>(tx: T, make_rx: M, len: usize, records: u64) -> Res<f64>
where
    T: Sender + Send,
    R: Receiver,
    M: FnOnce() -> Res<R> + Send,
{
    threads_in(tx, make_rx, len, records, 1)
}

/// As [`threads`], the writer sending batches of `batch` records.
pub fn threads_in<T, R, M>(mut tx: T, make_rx: M, len: usize, records: u64, batch: u64) -> Res<f64>
where
    T: Sender + Send,
    R: Receiver,
    M: FnOnce() -> Res<R> + Send,
{
    let barrier = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        let barrier = &barrier;
        let reader = s.spawn(move || {
            let _pinned = pin(1);
            let rx = make_rx();
            // Both sides start together, and the clock starts then.
            barrier.wait();
            let start = Instant::now();
            receive_all(&mut rx?, len, records, Some(start))
        });
        let pinned = pin(0);
        barrier.wait();
        let sent = send_all_in(&mut tx, len, records, batch);
        drop(pinned);
        let received = reader.join().map_err(|_| fail("reader thread panicked"))?;
        drop(tx);
        sent?;
        let (elapsed, spanned) = received?;
        Ok(spanned as f64 / elapsed.as_secs_f64())
    })
}

/// A latency histogram in nanoseconds, 1 ns to 60 s at 3 significant
/// digits.
pub fn histogram() -> Res<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 60_000_000_000, 3)?)
}

/// One-way latency from round trips: calls `round_trip(i)` for `warmup`
/// then `samples` rounds and records half of each round trip.
pub fn one_way<F>(warmup: u64, samples: u64, mut round_trip: F) -> Res<Histogram<u64>>
where
    F: FnMut(u64) -> Res<()>,
{
    let mut hist = histogram()?;
    for i in 0..warmup + samples {
        let t0 = Instant::now();
        round_trip(i)?;
        let rtt = t0.elapsed().as_nanos() as u64;
        if i >= warmup {
            hist.record((rtt / 2).max(1))?;
        }
    }
    Ok(hist)
}

/// The pinger's side of a ping-pong over a system: sends record `i`, then
/// waits for its echo.
pub struct Pinger<T, R> {
    tx: T,
    rx: R,
    record: Vec<u8>,
    check: SeqCheck,
}

impl<T: Sender, R: Receiver> Pinger<T, R> {
    /// Pings with records of `len` bytes.
    pub fn new(tx: T, rx: R, len: usize) -> Self {
        Self {
            tx,
            rx,
            record: vec![0xA5; len.max(8)],
            check: SeqCheck::new(len.max(8)),
        }
    }

    /// One round trip with record `i`.
    #[inline]
    pub fn round_trip(&mut self, i: u64) -> Res<()> {
        stamp(&mut self.record, i);
        self.tx.send(&self.record)?;
        let mut stall = Stall::new();
        let mut backoff = Backoff::default();
        while self.rx.poll(|r| self.check.check(r))? == 0 {
            stall.idle(i)?;
            backoff.snooze();
        }
        self.check.finish()
    }
}

/// Echoes `rounds` records from `rx` back through `tx`.
pub fn echo(tx: &mut impl Sender, rx: &mut impl Receiver, rounds: u64) -> Res<()> {
    let mut done = 0;
    let mut stall = Stall::new();
    let mut backoff = Backoff::default();
    while done < rounds {
        let mut result = Ok(());
        let got = rx.poll(|r| {
            if result.is_ok() {
                result = tx.send(r);
            }
        })?;
        result?;
        if got == 0 {
            stall.idle(done)?;
            backoff.snooze();
        } else {
            backoff.reset();
        }
        done += got as u64;
    }
    Ok(())
}

/// Latency between two threads over a system (two channels, one each way):
/// this thread pings through `pinger`; `make_echo` makes the echo side's
/// sender and receiver on its own thread.
pub fn thread_latency<T1, R1, T2, R2, M>(
    pinger: (T1, R2),
    make_echo: M,
    len: usize,
    warmup: u64,
    samples: u64,
) -> Res<Histogram<u64>>
where
    T1: Sender,
    R2: Receiver,
    T2: Sender,
    R1: Receiver,
    M: FnOnce() -> Res<(T2, R1)> + Send,
{
    std::thread::scope(|s| {
        let echoer = s.spawn(move || {
            let _pinned = pin(1);
            let (mut tx, mut rx) = make_echo()?;
            echo(&mut tx, &mut rx, warmup + samples)
        });
        let pinned = pin(0);
        let mut pinger = Pinger::new(pinger.0, pinger.1, len);
        let hist = one_way(warmup, samples, |i| pinger.round_trip(i));
        drop(pinned);
        let echoed = echoer.join().map_err(|_| fail("echo thread panicked"))?;
        let hist = hist?;
        echoed?;
        Ok(hist)
    })
}

/// What the fan-out workload measured.
#[derive(Debug, Clone)]
pub struct FanOut {
    /// The writer's records per second.
    pub writer_rate: f64,
    /// Per reader: lag (read time minus write time) p50 and p99, in ns.
    pub lag: Vec<(u64, u64)>,
}

/// One writer, several readers (each with its own receiver): each record
/// carries its write time; readers sample their lag every 16 records and
/// yield the core when they have nothing to read.
pub fn fan_out<T, R, M>(mut tx: T, readers: Vec<M>, len: usize, records: u64) -> Res<FanOut>
where
    T: Sender,
    R: Receiver,
    M: FnOnce() -> Res<R> + Send,
{
    let len = len.max(16);
    let epoch = Instant::now();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let handles: Vec<_> = readers
            .into_iter()
            .map(|make_rx| {
                let stop = &stop;
                s.spawn(move || -> Res<(u64, u64)> {
                    let mut rx = make_rx()?;
                    let mut check = SeqCheck::new(len);
                    let mut hist = histogram()?;
                    let mut stall = Stall::new();
                    while check.count() < records {
                        let mut err = None;
                        let got = rx.poll(|r| {
                            if check.count().is_multiple_of(16) {
                                let mut at = [0u8; 8];
                                at.copy_from_slice(&r[8..16]);
                                let written = u64::from_le_bytes(at);
                                let now = epoch.elapsed().as_nanos() as u64;
                                if let Err(e) = hist.record(now.saturating_sub(written).max(1)) {
                                    err = Some(e);
                                }
                            }
                            check.check(r);
                        })?;
                        if let Some(e) = err {
                            return Err(e.into());
                        }
                        if got == 0 {
                            if stop.load(Ordering::Relaxed) {
                                return Err(fail("fan-out writer failed"));
                            }
                            stall.idle(check.count())?;
                            std::thread::yield_now();
                        }
                    }
                    check.finish()?;
                    Ok((hist.value_at_quantile(0.5), hist.value_at_quantile(0.99)))
                })
            })
            .collect();
        let mut record = vec![0xA5u8; len];
        let start = Instant::now();
        let mut sent = Ok(());
        for seq in 0..records {
            stamp(&mut record, seq);
            let now = epoch.elapsed().as_nanos() as u64;
            record[8..16].copy_from_slice(&now.to_le_bytes());
            if let Err(e) = tx.send(&record) {
                sent = Err(e);
                stop.store(true, Ordering::Relaxed);
                break;
            }
        }
        let elapsed = start.elapsed();
        let mut lag = Vec::new();
        for handle in handles {
            lag.push(
                handle
                    .join()
                    .map_err(|_| fail("reader thread panicked"))??,
            );
        }
        drop(tx);
        sent?;
        Ok(FanOut {
            writer_rate: records as f64 / elapsed.as_secs_f64(),
            lag,
        })
    })
}
