//! One loom model per protocol property; `README.md` says what each proves.
//!
//! Every model runs the real `kekbit-nostd` writer and reader over a
//! `LoomRegion` whose words start as a phantom record commit word
//! (`loom_tests::GARBAGE`), with the writer on its own thread and readers
//! polling at the same time. The main thread is a reader: it polls while the
//! writer runs, joins the writer, then reads what is left, so every record
//! and the channel's end are checked whatever the interleaving.
//!
//! Built with `--cfg kekbit_weakened`, only the negative control runs: the
//! writer then publishes with `Relaxed`, and the control must fail.
#![cfg(loom)]

use loom::thread;

use kekbit_nostd::{ChannelConfig, Reader};
#[cfg(not(kekbit_weakened))]
use kekbit_nostd::{
    Clock, HeaderError, PlainHandler, ReadError, Status, TickUnit, WriteError, format::HEADER_LEN,
};
#[cfg(not(kekbit_weakened))]
use loom_tests::Blank;
use loom_tests::{Seen, channel, check, payload};

/// Polls a reader makes while the writer runs: one per record and one for
/// the end marker, so it can read everything before the writer finishes.
fn attempts(records: &[Vec<u8>]) -> usize {
    records.len() + 1
}

/// Model 1, and the negative control's body: three records of different
/// lengths while the main thread polls.
fn whole_records_model() {
    // 3 bytes: part of one 8-byte chunk; 8: exactly one; 13: two, padded.
    let expected = vec![payload(0, 3), payload(1, 8), payload(2, 13)];
    let (mut writer, region) = channel(128, &ChannelConfig::new(1));
    let records = expected.clone();
    let writer = thread::spawn(move || {
        for record in &records {
            writer.write(record).expect("the records fit");
        }
        // Not closed: this model is about records alone.
        writer.leave_open();
    });

    let mut reader = Reader::open(&*region).expect("the header was published before the spawn");
    let mut seen = Seen::default();
    seen.poll(&mut reader, attempts(&expected));
    writer.join().expect("writer thread");
    seen.finish(&mut reader);
    // Also: the word after the last record was cleared, so no phantom
    // record follows, and an open channel has no end.
    assert_eq!(
        seen,
        Seen::of(&expected, None),
        "the reader returned bytes that were not written"
    );
}

/// Model 1, whole records only: every record read has exactly the written
/// payload, and no byte of an uncommitted record is ever read (loom reports
/// any read of payload bytes that is not ordered after their write).
#[test]
#[cfg(not(kekbit_weakened))]
fn whole_records_only() {
    check(whole_records_model);
}

/// Model 8, negative control: model 1 over a writer that publishes with
/// `Relaxed` (built only with `--cfg kekbit_weakened`) must fail, and for the
/// right reason: loom reports the reader's payload borrow in
/// `Reader::try_read` as unordered with the writer's copy, or the reader
/// returns a wrong payload. Any other panic, or none, fails this test.
#[test]
#[cfg(kekbit_weakened)]
#[should_panic(expected = "negative control failed as expected")]
fn negative_control_relaxed_publish_is_caught() {
    let Err(panic) = std::panic::catch_unwind(|| check(whole_records_model)) else {
        return; // the model passed: `should_panic` fails the test
    };
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    let race_on_payload = message
        .contains("Causality violation: Concurrent read and write accesses.")
        && message.contains("src/reader.rs");
    let wrong_payload = message.contains("the reader returned bytes that were not written");
    if race_on_payload || wrong_payload {
        panic!("negative control failed as expected: {message}");
    }
    std::panic::resume_unwind(panic);
}

/// Model 2, close: the reader sees every record, then `Closed`; never
/// `Closed` before a record committed earlier; the writer refuses later
/// writes.
#[test]
#[cfg(not(kekbit_weakened))]
fn close_after_every_record() {
    check(|| {
        let expected = vec![payload(0, 5), payload(1, 16)];
        let (mut writer, region) = channel(128, &ChannelConfig::new(2));
        let records = expected.clone();
        let writer = thread::spawn(move || {
            for record in &records {
                writer.write(record).expect("the records fit");
            }
            writer.close();
            assert_eq!(writer.write(b"late"), Err(WriteError::Closed));
        });

        let mut reader = Reader::open(&*region).expect("header published");
        let mut seen = Seen::default();
        seen.poll(&mut reader, attempts(&expected));
        writer.join().expect("writer thread");
        seen.finish(&mut reader);
        // `Seen` stops at the first end, so an early `Closed` shows up here
        // as missing records.
        assert_eq!(seen, Seen::of(&expected, Some(ReadError::Closed)));
        // Closed is terminal and the reader stays on it.
        assert_eq!(reader.try_read(), Err(ReadError::Closed));
    });
}

/// Model 3, two readers, concurrent with the writer and with each other,
/// each see the same whole sequence and then `Closed`.
#[test]
#[cfg(not(kekbit_weakened))]
fn two_readers_see_the_same_sequence() {
    check(|| {
        let expected = vec![payload(0, 4), payload(1, 9)];
        let (mut writer, region) = channel(128, &ChannelConfig::new(3));
        let records = expected.clone();
        let writer = thread::spawn(move || {
            for record in &records {
                writer.write(record).expect("the records fit");
            }
            // Dropping the writer closes the channel.
        });
        let polls = attempts(&expected);
        let other = {
            let region = region.clone();
            thread::spawn(move || {
                let mut reader = Reader::open(&*region).expect("header published");
                let mut seen = Seen::default();
                seen.poll(&mut reader, polls);
                (seen, reader.position())
            })
        };

        let mut reader = Reader::open(&*region).expect("header published");
        let mut mine = Seen::default();
        mine.poll(&mut reader, polls);
        let (mut theirs, position) = other.join().expect("reader thread");
        writer.join().expect("writer thread");
        mine.finish(&mut reader);
        // The other reader goes on from where it stopped.
        let mut reader = Reader::open(&*region).expect("header published");
        reader
            .seek(position)
            .expect("a reader only stops on a record boundary");
        theirs.finish(&mut reader);
        assert_eq!(mine, Seen::of(&expected, Some(ReadError::Closed)));
        assert_eq!(theirs, mine);
    });
}

/// Model 4, the full boundary: the last record that fits ends exactly where
/// the end marker's space begins, is readable, and the channel is then
/// reported `Full`, never corrupt.
#[test]
#[cfg(not(kekbit_weakened))]
fn full_boundary() {
    check(|| {
        // Two records of span 8 + 16 fill 48 bytes; the end marker takes the
        // last 8 of the 56-byte record area.
        let expected = vec![payload(0, 16), payload(1, 16)];
        let (mut writer, region) = channel(56, &ChannelConfig::new(4));
        let records = expected.clone();
        let writer = thread::spawn(move || {
            for record in &records {
                writer.write(record).expect("the records fit");
            }
            assert_eq!(writer.remaining_bytes(), 0);
            // Even an empty record needs 8 bytes: the channel becomes full.
            let full = Err(WriteError::Full {
                needed: 8,
                remaining: 0,
            });
            assert_eq!(writer.write(b""), full);
            // Still full, with the same figures: the details stay reachable.
            assert_eq!(writer.write(b""), full);
            // Dropping a full writer must not turn Full into Closed.
        });

        let mut reader = Reader::open(&*region).expect("header published");
        let mut seen = Seen::default();
        seen.poll(&mut reader, attempts(&expected));
        writer.join().expect("writer thread");
        seen.finish(&mut reader);
        assert_eq!(seen, Seen::of(&expected, Some(ReadError::Full)));
        assert_eq!(reader.try_read(), Err(ReadError::Full));
    });
}

/// Model 5, dropped grants: a grant filled and dropped without commit is
/// never visible; the records written after it, by copy and by a committed
/// grant shorter than its reservation, are.
#[test]
#[cfg(not(kekbit_weakened))]
fn dropped_grants_are_never_visible() {
    check(|| {
        let expected = vec![payload(0, 5), payload(1, 11)];
        let (mut writer, region) = channel(128, &ChannelConfig::new(5));
        let records = expected.clone();
        let writer = thread::spawn(move || {
            {
                let mut dropped = writer.reserve(24).expect("fits");
                dropped.fill(0xEE);
            } // dropped without commit
            writer.write(&records[0]).expect("fits");
            {
                let mut dropped = writer.reserve(16).expect("fits");
                dropped.fill(0xEE);
            }
            let mut grant = writer.reserve(16).expect("fits");
            grant[..11].copy_from_slice(&records[1]);
            grant.commit(11).expect("within the reservation");
        });

        let mut reader = Reader::open(&*region).expect("header published");
        let mut seen = Seen::default();
        seen.poll(&mut reader, attempts(&expected));
        writer.join().expect("writer thread");
        seen.finish(&mut reader);
        assert_eq!(
            seen,
            Seen::of(&expected, Some(ReadError::Closed)),
            "a dropped grant was visible"
        );
    });
}

/// A fake clock shared by the model's threads: the writer moves it, the
/// reader reads it. `Release`/`Acquire` stand for what a real clock gives:
/// a heartbeat stored before time `t` is visible to a load made after
/// reading `t`. Loom may still hand the reader a stale time, which is how
/// it models a reader delayed between its reads.
#[cfg(not(kekbit_weakened))]
struct FakeClock(std::sync::Arc<loom::sync::atomic::AtomicU64>);

#[cfg(not(kekbit_weakened))]
impl Clock for FakeClock {
    fn now(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// Model 6, heartbeat and timeout: while the writer heartbeats once per
/// timeout, a reader polling `status` never reports it abandoned, in any
/// interleaving; once it stops (crashes without closing), the reader reports
/// it abandoned exactly when the timeout has passed.
#[test]
#[cfg(not(kekbit_weakened))]
fn heartbeating_writer_is_never_abandoned() {
    use std::sync::atomic::Ordering::Release;
    const TIMEOUT: u64 = 10;
    // One poll while the writer runs: every load of the heartbeat's
    // sequence lock (retried up to four times) may return any of the
    // writer's stores, so each poll multiplies the executions; a second
    // one, or a third heartbeat, took this model from seconds to over ten
    // minutes. The unit test
    // `a_writer_between_the_halves_of_a_heartbeat_is_not_abandoned`
    // replays the two-poll interleaving this model once found.
    const POLLS: usize = 1;
    check(|| {
        let time = std::sync::Arc::new(loom::sync::atomic::AtomicU64::new(0));
        let clock = FakeClock(time.clone());
        let config = ChannelConfig::new(6)
            .timeout(TIMEOUT, TickUnit::Millis)
            .creation_time(0);
        let (mut writer, region) = channel(64, &config);
        let writer = thread::spawn(move || {
            // Time moves first, then the writer notices: between the two a
            // reader sees a heartbeat exactly one timeout old.
            for now in [TIMEOUT, 2 * TIMEOUT] {
                time.store(now, Release);
                writer.heartbeat(now);
            }
            // The writer dies without closing.
            writer.leave_open();
        });

        let mut reader = Reader::open(&*region).expect("header published");
        for _ in 0..POLLS {
            assert_eq!(reader.status(&clock), Status::Open, "live writer abandoned");
        }
        writer.join().expect("writer thread");

        // Silent from 20 on: abandoned only once the timeout has passed.
        for (now, status) in [
            (2 * TIMEOUT, Status::Open),
            (3 * TIMEOUT, Status::Open),
            (3 * TIMEOUT + 1, Status::Abandoned),
        ] {
            clock.0.store(now, Release);
            assert_eq!(reader.status(&clock), status, "at {now}");
        }
    });
}

/// Model 7, checksums: with checksums on, records committed correctly (by
/// copy, by grant and through an encoder) never read as a checksum error,
/// in any interleaving.
#[test]
#[cfg(not(kekbit_weakened))]
fn checksums_match_for_committed_records() {
    check(|| {
        let expected = vec![payload(0, 6), payload(1, 12), payload(2, 7)];
        let config = ChannelConfig::new(7).checksums(true);
        let (mut writer, region) = channel(128, &config);
        let records = expected.clone();
        let writer = thread::spawn(move || {
            writer.write(&records[0]).expect("fits");
            let mut grant = writer.reserve(12).expect("fits");
            grant.copy_from_slice(&records[1]);
            grant.commit(12).expect("within the reservation");
            writer
                .write_with(&mut PlainHandler, &records[2][..])
                .expect("fits");
        });

        let mut reader = Reader::open(&*region).expect("header published");
        let mut seen = Seen::default();
        // `Seen` fails the model on `ReadError::Checksum`.
        seen.poll(&mut reader, attempts(&expected));
        writer.join().expect("writer thread");
        seen.finish(&mut reader);
        assert_eq!(seen, Seen::of(&expected, Some(ReadError::Closed)));
    });
}

/// Model 9, open racing create: a reader polling `Reader::open` while
/// another thread creates the channel in a region full of garbage gets
/// `BadSignature` until the signature word is published, then the whole
/// header, the creation time as heartbeat, and a cleared first commit word
/// (no phantom record). Opening loads and compares the signature word
/// before it reads any other header byte: loom reports a header byte read
/// that is not ordered after the writer's copy as a causality violation.
#[test]
#[cfg(not(kekbit_weakened))]
fn open_racing_create() {
    const POLLS: usize = 3;
    const CAPACITY: usize = 64;
    const CREATED: u64 = 0x1_0000_0005;
    check(|| {
        let blank = Blank::new(CAPACITY);
        let readers = blank.readers();
        let config = ChannelConfig::new(9)
            .writer_id(4)
            .checksums(true)
            .creation_time(CREATED);
        let expected = config
            .header_for(HEADER_LEN + CAPACITY)
            .expect("a valid configuration");
        let records = vec![payload(0, 5)];
        let written = records.clone();
        let writer = thread::spawn(move || {
            let mut writer = blank.create(&config);
            writer.write(&written[0]).expect("fits");
            writer.leave_open();
        });

        let mut opened = None;
        for _ in 0..POLLS {
            match Reader::open(&*readers) {
                Ok(reader) => {
                    opened = Some(reader);
                    break;
                }
                Err(HeaderError::BadSignature { .. }) => {}
                Err(e) => panic!("a reader racing creation got: {e}"),
            }
        }
        let mut seen = Seen::default();
        if let Some(mut reader) = opened {
            assert_eq!(*reader.header(), expected);
            assert_eq!(reader.heartbeat(), Some(CREATED));
            seen.poll(&mut reader, attempts(&records));
            writer.join().expect("writer thread");
            seen.finish(&mut reader);
        } else {
            writer.join().expect("writer thread");
            let mut reader = Reader::open(&*readers).expect("the channel exists");
            assert_eq!(*reader.header(), expected);
            seen.finish(&mut reader);
        }
        assert_eq!(seen, Seen::of(&records, None));
    });
}

/// Model 10, the heartbeat's sequence lock: the writer stores 64-bit
/// heartbeats whose two 32-bit halves both change; a reader polling at the
/// same time gets the creation time, one of the heartbeats, or `None`
/// (the writer was storing one each time it tried), never a value made of
/// two different heartbeats' halves, and never an older one after a newer.
#[test]
#[cfg(not(kekbit_weakened))]
fn heartbeat_is_never_torn() {
    // One poll while the writer beats (each may retry four times), then
    // one after: more polls multiply the executions, not the cases.
    const POLLS: usize = 1;
    const BEATS: [u64; 2] = [0x1_0000_0001, 0x2_0000_0002];
    check(|| {
        let config = ChannelConfig::new(10).creation_time(0);
        let (mut writer, region) = channel(32, &config);
        let writer = thread::spawn(move || {
            for now in BEATS {
                writer.heartbeat(now);
            }
            writer.leave_open();
        });

        let reader = Reader::open(&*region).expect("header published");
        let mut last = 0;
        for _ in 0..POLLS {
            if let Some(beat) = reader.heartbeat() {
                assert!(
                    beat == 0 || BEATS.contains(&beat),
                    "torn heartbeat {beat:#x}"
                );
                assert!(
                    beat >= last,
                    "heartbeat went back from {last:#x} to {beat:#x}"
                );
                last = beat;
            }
        }
        writer.join().expect("writer thread");
        assert_eq!(reader.heartbeat(), Some(BEATS[1]));
    });
}
