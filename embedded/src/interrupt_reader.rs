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
//! record's sequence number and bytes.

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
                Ok(None) => return,
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
    while tick::preempted().wrapping_sub(preempted) < PREEMPTED_WRITES {
        next_seq = run_round(region, rounds, next_seq)?;
        rounds += 1;
    }
    let ticks = tick::ticks().wrapping_sub(ticks);
    let preempted = tick::preempted().wrapping_sub(preempted);
    say!(
        "PASS interrupt-reader: {} records written by the main loop in {} rounds, each read once, in order, whole by SysTick; {} interrupts, {} of them preempting a write",
        next_seq,
        rounds,
        ticks,
        preempted
    );
    Ok(())
}

/// One channel, written until FULL; returns the next sequence number.
fn run_round(region: &'static SliceRegion<'static>, round: u32, first: u64) -> Result<u64, Failed> {
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
