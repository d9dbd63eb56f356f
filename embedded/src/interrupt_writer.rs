//! Check 2: the interrupt is the writer.
//!
//! Each round creates a channel in each of two static buffers and hands both
//! writers to the SysTick interrupt, which appends one record per tick to a
//! channel it picks at random, numbered by `SequenceHandler`, with
//! checksums. The main loop reads both channels as the records arrive, with
//! a `Poller` in even rounds and with `try_read` on each reader in odd ones,
//! and checks that every record arrives once, in order, and whole (its
//! sequence number and every byte of its body). Channel 0 always runs until
//! it is FULL; channel 1 is closed by the interrupt after a number of
//! records that changes from round to round (zero in some), unless it fills
//! first. Rounds reuse the buffers, so each new channel is created over the
//! old one's records: the writer must not trust what the memory holds.

use kekbit_nostd::{
    ChannelConfig, Handler, PlainHandler, Poller, ReadError, Reader, SequenceHandler, SliceRegion,
    WriteError, Writer,
};

use crate::pattern::{Body, FEED_MAX_BODY};
use crate::report::{Failed, attempt, ensure, say};
use crate::tick::{self, Job, Watchdog};

const CHECK: &str = "interrupt-writer";
/// Records the interrupt appends over the whole check.
const RECORDS: u64 = 30_000;
/// The longest record: an 8-byte sequence number and the longest body.
const MAX_RECORD: u32 = 8 + FEED_MAX_BODY as u32;

/// How a writer's channel ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// A record did not fit: the channel is FULL.
    Full,
    /// The interrupt closed it after its quota.
    Closed,
    /// A write failed in a way it never should.
    Failed(WriteError),
}

/// One channel's writer, owned by the interrupt for the round.
pub struct Producer {
    writer: Writer<&'static SliceRegion<'static>>,
    sequence: SequenceHandler,
    channel: u8,
    /// Close after this many records; `None` runs the channel until FULL.
    close_after: Option<u64>,
}

impl Producer {
    /// Appends the next record, or ends the channel.
    fn append(&mut self) -> Option<End> {
        if self.close_after == Some(self.writer.records_written()) {
            self.writer.close();
            return Some(End::Closed);
        }
        let body = Body::feed(self.channel, self.sequence.next_sequence());
        match self
            .writer
            .write_with(&mut (&mut self.sequence).chain(PlainHandler), &body)
        {
            Ok(_) => None,
            Err(WriteError::Full { .. }) => Some(End::Full),
            Err(e) => Some(End::Failed(e)),
        }
    }
}

/// The interrupt's job in this check: two producers, and how each ended.
pub struct Feed {
    producers: [Option<Producer>; 2],
    /// How each channel ended, and how many records its writer published.
    ended: [Option<(End, u64)>; 2],
    /// Ticks that found both channels ended, waiting for the reader.
    idle_ticks: u32,
}

impl Feed {
    /// One tick: a record for one of the channels still open, picked by
    /// `random`.
    pub fn step(&mut self, random: u32) {
        let first = (random >> 9) as usize & 1;
        for channel in [first, 1 - first] {
            if let Some(producer) = self.producers[channel].as_mut() {
                if let Some(end) = producer.append() {
                    self.ended[channel] = Some((end, producer.writer.records_written()));
                    // Dropping a FULL or closed writer stores nothing; one
                    // whose write failed closes its channel, which the
                    // round then reports.
                    self.producers[channel] = None;
                }
                return;
            }
        }
        self.idle_ticks += 1;
    }
}

/// Totals over the rounds.
#[derive(Default)]
struct Totals {
    /// Next expected sequence number, per channel: also records read.
    next_seq: [u64; 2],
    poller_rounds: u32,
    try_read_rounds: u32,
    full: u32,
    closed: u32,
    idle_ticks: u32,
}

/// Runs check 2 on the two static regions.
pub fn run(regions: &'static [SliceRegion<'static>; 2]) -> Result<(), Failed> {
    let (ticks, preempted) = (tick::ticks(), tick::preempted());
    let mut totals = Totals::default();
    let mut round = 0u32;
    while totals.next_seq[0] + totals.next_seq[1] < RECORDS {
        run_round(regions, round, &mut totals)?;
        round += 1;
    }
    let ticks = tick::ticks().wrapping_sub(ticks);
    let preempted = tick::preempted().wrapping_sub(preempted);
    say!(
        "PASS interrupt-writer: {} records (channel 0: {}, channel 1: {}) appended by SysTick, each read once, in order, whole; {} rounds ({} Poller, {} try_read), {} FULL and {} closed ends; {} interrupts, {} of them preempting a read, {} with nothing left to write",
        totals.next_seq[0] + totals.next_seq[1],
        totals.next_seq[0],
        totals.next_seq[1],
        round,
        totals.poller_rounds,
        totals.try_read_rounds,
        totals.full,
        totals.closed,
        ticks,
        preempted,
        totals.idle_ticks
    );
    Ok(())
}

fn run_round(
    regions: &'static [SliceRegion<'static>; 2],
    round: u32,
    totals: &mut Totals,
) -> Result<(), Failed> {
    let close_after = match round % 4 {
        0 => None,
        1 => Some(0),
        r => Some(u64::from(round.wrapping_mul(7) % 64 + r)),
    };
    // Both channels are created with the interrupt held off, then handed to it.
    let created = tick::with_job(|job| -> Result<(), Failed> {
        ensure!(
            matches!(job, Job::Idle),
            "FAIL interrupt-writer: round {} started while the interrupt still had a job",
            round
        );
        let mut producers = [None, None];
        for (channel, slot) in producers.iter_mut().enumerate() {
            let config = ChannelConfig::new(100 + channel as u64)
                .checksums(true)
                .max_record_len(MAX_RECORD);
            // SAFETY: the job is `Idle`, so the previous round's writers are
            // dropped, and its readers went out of scope when that round
            // returned; nothing else creates a writer on these regions while
            // this one lives (the interrupt drops it when its channel ends,
            // and the next round checks that). The regions are RAM.
            let writer = unsafe { Writer::create_unchecked(&regions[channel], &config) };
            let writer = attempt!(writer, CHECK, "create");
            *slot = Some(Producer {
                writer,
                sequence: SequenceHandler::new(totals.next_seq[channel]),
                channel: channel as u8,
                close_after: if channel == 1 { close_after } else { None },
            });
        }
        *job = Job::Write(Feed {
            producers,
            ended: [None, None],
            idle_ticks: 0,
        });
        Ok(())
    });
    created?;

    let reader0 = attempt!(Reader::open(&regions[0]), CHECK, "open channel 0");
    let reader1 = attempt!(Reader::open(&regions[1]), CHECK, "open channel 1");
    let mut read = [0u64; 2];
    let mut ends: [Option<ReadError>; 2] = [None, None];
    let mut watchdog = Watchdog::new();
    if round.is_multiple_of(2) {
        totals.poller_rounds += 1;
        let mut poller = Poller::<SliceRegion<'static>, 2>::new();
        ensure!(
            poller.add(reader0).is_ok() && poller.add(reader1).is_ok(),
            "FAIL interrupt-writer: the poller did not take two readers"
        );
        while !poller.all_ended() {
            match tick::in_call(|| poller.poll()) {
                Some((channel, Ok(record))) => {
                    accept(channel, record, &mut totals.next_seq)?;
                    read[channel] += 1;
                    watchdog.progress();
                }
                Some((channel, Err(e))) => {
                    ends[channel] = Some(end_of(channel, e)?);
                    watchdog.progress();
                }
                None => attempt!(watchdog.check(), CHECK, "waiting for records"),
            }
        }
    } else {
        totals.try_read_rounds += 1;
        let mut readers = [reader0, reader1];
        while ends.iter().any(Option::is_none) {
            let mut idle = true;
            for (channel, reader) in readers.iter_mut().enumerate() {
                if ends[channel].is_some() {
                    continue;
                }
                match tick::in_call(|| reader.try_read()) {
                    Ok(Some(record)) => {
                        accept(channel, record, &mut totals.next_seq)?;
                        read[channel] += 1;
                        idle = false;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        ends[channel] = Some(end_of(channel, e)?);
                        idle = false;
                    }
                }
            }
            if idle {
                attempt!(watchdog.check(), CHECK, "waiting for records");
            } else {
                watchdog.progress();
            }
        }
    }

    // Both channels reported their end, so the interrupt has dropped both
    // writers; take the job back and compare.
    let Job::Write(feed) = tick::swap_job(Job::Idle) else {
        say!(
            "FAIL interrupt-writer: the interrupt's job changed under round {}",
            round
        );
        return Err(Failed);
    };
    totals.idle_ticks += feed.idle_ticks;
    for channel in 0..2 {
        ensure!(
            feed.producers[channel].is_none(),
            "FAIL interrupt-writer: channel {} ended for the reader but its writer is still open",
            channel
        );
        let Some((end, written)) = feed.ended[channel] else {
            say!("FAIL interrupt-writer: channel {} has no end", channel);
            return Err(Failed);
        };
        if let End::Failed(e) = end {
            say!(
                "FAIL interrupt-writer: channel {} write failed: {}",
                channel,
                e
            );
            return Err(Failed);
        }
        let agrees = match (end, ends[channel]) {
            (End::Full, Some(ReadError::Full)) => {
                totals.full += 1;
                true
            }
            (End::Closed, Some(ReadError::Closed)) => {
                totals.closed += 1;
                true
            }
            _ => false,
        };
        ensure!(
            agrees,
            "FAIL interrupt-writer: channel {} in round {}: the reader's end is not the writer's",
            channel,
            round
        );
        ensure!(
            read[channel] == written,
            "FAIL interrupt-writer: channel {} in round {}: {} records written, {} read",
            channel,
            round,
            written,
            read[channel]
        );
    }
    Ok(())
}

/// A channel's end as the reader reports it: `Full` or `Closed`; any other
/// error (a checksum, a corrupt commit word) fails the check.
fn end_of(channel: usize, e: ReadError) -> Result<ReadError, Failed> {
    ensure!(
        matches!(e, ReadError::Full | ReadError::Closed),
        "FAIL interrupt-writer: channel {}: {}",
        channel,
        e
    );
    Ok(e)
}

/// Checks that `record` is the next one on `channel`, and counts it.
fn accept(channel: usize, record: &[u8], next_seq: &mut [u64; 2]) -> Result<(), Failed> {
    let seq = next_seq[channel];
    let body = Body::feed(channel as u8, seq);
    if !body.matches_sequenced(seq, record) {
        let found = SequenceHandler::split(record).map_or(u64::MAX, |(found, _)| found);
        say!(
            "FAIL interrupt-writer: channel {}: expected record {} ({} bytes), got record {} ({} bytes, or damaged)",
            channel,
            seq,
            body.len + 8,
            found,
            record.len()
        );
        return Err(Failed);
    }
    next_seq[channel] = seq + 1;
    Ok(())
}
