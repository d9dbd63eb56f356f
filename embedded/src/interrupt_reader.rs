//! Check 3: the roles swapped. The main loop writes, and the SysTick
//! interrupt reads, so the interrupt preempts the writer halfway through
//! its work: in the middle of copying a payload, between the checksum and
//! the commit word, between clearing the next commit word and publishing.
//! The reader must see nothing of a record until it is committed, and then
//! all of it. Each round creates the channel over the previous round's
//! records, so a commit word the writer failed to clear first would show
//! an old record.
//!
//! The main loop writes each record one of three ways (`write_with` and
//! `SequenceHandler`, `reserve`/`commit`, `write`), until the channel is
//! FULL; the interrupt drains what it finds on each tick and checks every
//! record's sequence number and bytes. Every fourth group of
//! [`BATCH_RECORDS`] records goes through a `Batch` instead, published by
//! one store: an interrupt that lands while the batch is staged must see
//! none of it, and once it is published, all of it. The main loop names
//! the batch it is staging in two words the interrupt reads; a drain that
//! stops strictly inside that batch has seen part of it, and fails.

use core::sync::atomic::{AtomicU32, Ordering, compiler_fence};

use kekbit_nostd::format::{BATCH_MARKER_LEN, PAYLOAD_OFFSET, RECORD_ALIGN};
use kekbit_nostd::{
    ChannelConfig, Handler, PlainHandler, ReadError, Reader, SequenceHandler, SliceRegion,
    WriteError, Writer,
};

use crate::pattern::{Body, FEED_MAX_BODY};
use crate::report::{Failed, attempt, ensure, say};
use crate::tick::{self, Job, Watchdog};

const CHECK: &str = "interrupt-reader";
/// Run rounds until this many interrupts have landed inside a write.
const PREEMPTED_WRITES: u32 = 20_000;
/// The channel's maximum record: a sequence number and the longest body.
const MAX_RECORD: usize = 8 + FEED_MAX_BODY;
/// Records get bodies of channel 2's pattern (the other check used 0 and 1).
const PATTERN: u8 = 2;
/// Records per batch.
const BATCH_RECORDS: u64 = 8;
/// Room a whole batch needs, so it is staged and published as one: its
/// marker and the longest records. Nearer the end, records go one by one.
const BATCH_BYTES: u32 = (BATCH_MARKER_LEN
    + BATCH_RECORDS as usize * (PAYLOAD_OFFSET + MAX_RECORD.next_multiple_of(RECORD_ALIGN)))
    as u32;

/// The batch the main loop is staging: sequence numbers `BATCH_START` up
/// to, not including, `BATCH_END` (low 32 bits). Written only by the main
/// loop, start first, so an interrupt between the two stores sees an empty
/// range, never a wrong one.
static BATCH_START: AtomicU32 = AtomicU32::new(0);
static BATCH_END: AtomicU32 = AtomicU32::new(0);

/// Where the interrupt's reading stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Still reading.
    Reading,
    /// The reader returned this error: `Full` is the expected end.
    Ended(ReadError),
    /// A record was not the expected one.
    Wrong {
        expected: u64,
        found: u64,
        len: usize,
    },
    /// The records up to `seen` were visible, but not the rest of the
    /// batch `start..end` they belong to.
    PartialBatch { start: u32, seen: u32, end: u32 },
}

/// The interrupt's job in this check: one reader and what it found.
pub struct Drain {
    reader: Reader<'static, SliceRegion<'static>>,
    next_seq: u64,
    records: u64,
    outcome: Outcome,
}

impl Drain {
    /// One tick: read and check every record committed since the last one.
    pub fn step(&mut self) {
        while self.outcome == Outcome::Reading {
            match self.reader.try_read() {
                Ok(Some(record)) => {
                    let seq = self.next_seq;
                    if Body::feed(PATTERN, seq).matches_sequenced(seq, record) {
                        self.next_seq += 1;
                        self.records += 1;
                    } else {
                        self.outcome = Outcome::Wrong {
                            expected: seq,
                            found: SequenceHandler::split(record).map_or(u64::MAX, |(s, _)| s),
                            len: record.len(),
                        };
                    }
                }
                Ok(None) => {
                    let start = BATCH_START.load(Ordering::Relaxed);
                    let end = BATCH_END.load(Ordering::Relaxed);
                    let seen = self.next_seq as u32;
                    if start < seen && seen < end {
                        self.outcome = Outcome::PartialBatch { start, seen, end };
                    }
                    return;
                }
                Err(e) => self.outcome = Outcome::Ended(e),
            }
        }
    }
}

/// Runs check 3 on the first static region.
pub fn run(regions: &'static [SliceRegion<'static>; 2]) -> Result<(), Failed> {
    let (ticks, preempted) = (tick::ticks(), tick::preempted());
    let region = &regions[0];
    let mut next_seq = 0u64;
    let mut rounds = 0u32;
    let mut batches = 0u32;
    while tick::preempted().wrapping_sub(preempted) < PREEMPTED_WRITES {
        next_seq = run_round(region, rounds, next_seq, &mut batches)?;
        rounds += 1;
    }
    let ticks = tick::ticks().wrapping_sub(ticks);
    let preempted = tick::preempted().wrapping_sub(preempted);
    say!(
        "PASS interrupt-reader: {} records written by the main loop in {} rounds ({} batches of {}, none seen in part), each read once, in order, whole by SysTick; {} interrupts, {} of them preempting a write",
        next_seq,
        rounds,
        batches,
        BATCH_RECORDS,
        ticks,
        preempted
    );
    Ok(())
}

/// One channel, written until FULL; returns the next sequence number.
fn run_round(
    region: &'static SliceRegion<'static>,
    round: u32,
    first: u64,
    batches: &mut u32,
) -> Result<u64, Failed> {
    let config = ChannelConfig::new(200)
        .checksums(true)
        .max_record_len(MAX_RECORD as u32);
    let created = tick::with_job(|job| -> Result<_, Failed> {
        ensure!(
            matches!(job, Job::Idle),
            "FAIL interrupt-reader: round {} started while the interrupt still had a job",
            round
        );
        // SAFETY: the job is `Idle`: every reader the interrupt had is
        // dropped, and the previous round's writer went out of scope when
        // that round returned, so this is the only writer on the region; it
        // lives until this round returns. The region is RAM.
        let writer = unsafe { Writer::create_unchecked(region, &config) };
        let writer = attempt!(writer, CHECK, "create");
        let reader = attempt!(Reader::open(region), CHECK, "open");
        *job = Job::Read(Drain {
            reader,
            next_seq: first,
            records: 0,
            outcome: Outcome::Reading,
        });
        Ok(writer)
    });
    let mut writer = created?;

    let mut seq = first;
    let mut record = [0u8; MAX_RECORD];
    loop {
        if seq % (4 * BATCH_RECORDS) == 3 * BATCH_RECORDS && writer.remaining_bytes() >= BATCH_BYTES
        {
            BATCH_START.store(seq as u32, Ordering::Relaxed);
            BATCH_END.store((seq + BATCH_RECORDS) as u32, Ordering::Relaxed);
            // The interrupt is on this core: a compiler fence keeps the
            // two stores before the batch's.
            compiler_fence(Ordering::SeqCst);
            let published = tick::in_call(|| write_batch(&mut writer, seq));
            match published {
                Ok(count) => {
                    // Room for the whole batch was checked: it goes out as one.
                    ensure!(
                        count as u64 == BATCH_RECORDS,
                        "FAIL interrupt-reader: a batch of {} published {} records",
                        BATCH_RECORDS,
                        count
                    );
                    seq += BATCH_RECORDS;
                    *batches += 1;
                    continue;
                }
                Err(e) => {
                    say!("FAIL interrupt-reader: batch from record {}: {}", seq, e);
                    return Err(Failed);
                }
            }
        }
        let body = Body::feed(PATTERN, seq);
        let len = 8 + body.len;
        let written = match seq % 3 {
            0 => tick::in_call(|| {
                writer.write_with(&mut SequenceHandler::new(seq).chain(PlainHandler), &body)
            }),
            1 => tick::in_call(|| match writer.reserve(len) {
                Ok(mut grant) => {
                    grant[..8].copy_from_slice(&seq.to_le_bytes());
                    body.fill(&mut grant[8..len]);
                    grant.commit(len)
                }
                Err(e) => Err(e),
            }),
            _ => {
                record[..8].copy_from_slice(&seq.to_le_bytes());
                body.fill(&mut record[8..len]);
                tick::in_call(|| writer.write(&record[..len]))
            }
        };
        match written {
            Ok(_) => seq += 1,
            Err(WriteError::Full { .. }) => break,
            Err(e) => {
                say!("FAIL interrupt-reader: write of record {}: {}", seq, e);
                return Err(Failed);
            }
        }
    }

    // Wait for the interrupt to read everything and reach FULL.
    let mut watchdog = Watchdog::new();
    while tick::with_job(|job| matches!(job, Job::Read(d) if d.outcome == Outcome::Reading)) {
        attempt!(watchdog.check(), CHECK, "waiting for the interrupt to read");
    }
    let Job::Read(drain) = tick::swap_job(Job::Idle) else {
        say!(
            "FAIL interrupt-reader: the interrupt's job changed under round {}",
            round
        );
        return Err(Failed);
    };
    match drain.outcome {
        Outcome::Ended(ReadError::Full) => {}
        Outcome::Wrong {
            expected,
            found,
            len,
        } => {
            say!(
                "FAIL interrupt-reader: expected record {}, the interrupt read record {} ({} bytes, or damaged)",
                expected,
                found,
                len
            );
            return Err(Failed);
        }
        Outcome::PartialBatch { start, seen, end } => {
            say!(
                "FAIL interrupt-reader: the interrupt saw records {} to {} of the batch {} to {}, not the rest",
                start,
                seen - 1,
                start,
                end - 1
            );
            return Err(Failed);
        }
        Outcome::Ended(e) => {
            say!("FAIL interrupt-reader: the interrupt's reader: {}", e);
            return Err(Failed);
        }
        Outcome::Reading => {
            say!("FAIL interrupt-reader: the interrupt stopped reading");
            return Err(Failed);
        }
    }
    ensure!(
        drain.records == writer.records_written() && drain.next_seq == seq,
        "FAIL interrupt-reader: round {}: {} records written, {} read",
        round,
        writer.records_written(),
        drain.records
    );
    Ok(seq)
}

/// Writes records `first..first + BATCH_RECORDS` as one batch, each of the
/// three ways in turn, and publishes it; returns the records published.
fn write_batch(
    writer: &mut Writer<&'static SliceRegion<'static>>,
    first: u64,
) -> Result<usize, WriteError> {
    let mut batch = writer.batch();
    let mut record = [0u8; MAX_RECORD];
    for seq in first..first + BATCH_RECORDS {
        let body = Body::feed(PATTERN, seq);
        let len = 8 + body.len;
        match seq % 3 {
            0 => {
                batch.write_with(&mut SequenceHandler::new(seq).chain(PlainHandler), &body)?;
            }
            1 => {
                let mut grant = batch.reserve(len)?;
                grant[..8].copy_from_slice(&seq.to_le_bytes());
                body.fill(&mut grant[8..len]);
                grant.commit(len)?;
            }
            _ => {
                record[..8].copy_from_slice(&seq.to_le_bytes());
                body.fill(&mut record[8..len]);
                batch.write(&record[..len])?;
            }
        }
    }
    Ok(batch.publish())
}
