//! Regression tests for the defects the hardening review found (issue 10).
//! Each one failed before its fix; they use only entry points that existed
//! then, so they can be run against the older code.

use std::cell::Cell;

use kekbit_nostd::format::*;
use kekbit_nostd::{
    AlignedBuffer, ChannelConfig, Clock, PlainHandler, ReadError, Reader, SliceRegion, Status,
    TickUnit, WriteError, Writer,
};

/// Canary bytes after the region, checked after every step.
const CANARY: u8 = 0xA5;
const GUARD: usize = 64;

/// Defect 1: with no room left even for an empty record, an empty record
/// through `write_with` passed the fit check and cleared a commit word past
/// the end of the region; every later write was then copied out of bounds.
#[test]
fn write_with_an_empty_record_at_exact_full_stays_in_bounds() {
    const CAPACITY: usize = 64;
    let mut buffer = AlignedBuffer::<{ HEADER_LEN + CAPACITY + GUARD }>::new();
    buffer.as_mut_slice()[HEADER_LEN + CAPACITY..].fill(CANARY);
    {
        let memory = &mut buffer.as_mut_slice()[..HEADER_LEN + CAPACITY];
        let mut region = SliceRegion::new(memory).unwrap();
        let config = ChannelConfig::new(1).max_record_len(40);
        let mut writer = Writer::create(&mut region, &config).unwrap();
        writer.write(&[1; 40]).unwrap(); // a 48-byte span: 8 bytes left
        writer.write(b"").unwrap(); // an 8-byte span: exactly full now
        assert_eq!(writer.remaining_bytes(), 0);
        let full = WriteError::Full {
            needed: 8,
            remaining: 0,
        };
        assert_eq!(
            writer.write_with(&mut PlainHandler, &b""[..]).unwrap_err(),
            full
        );
        assert!(writer.write(&[0x55; 24]).is_err());
        assert!(!writer.is_open());
        assert_eq!(writer.remaining_bytes(), 0);
        drop(writer);
        let mut reader = Reader::open(&region).unwrap();
        assert_eq!(reader.records().count(), 2);
        assert_eq!(reader.try_read(), Err(ReadError::Full));
    }
    let guard = &buffer.as_mut_slice()[HEADER_LEN + CAPACITY..];
    assert!(
        guard.iter().all(|&b| b == CANARY),
        "bytes past the region were overwritten: {guard:02x?}"
    );
}

/// Defect 1, every other entry point at the same boundary.
#[test]
fn every_entry_point_at_exact_full_stays_in_bounds() {
    const CAPACITY: usize = 64;
    for entry in 0..3 {
        let mut buffer = AlignedBuffer::<{ HEADER_LEN + CAPACITY + GUARD }>::new();
        buffer.as_mut_slice()[HEADER_LEN + CAPACITY..].fill(CANARY);
        {
            let memory = &mut buffer.as_mut_slice()[..HEADER_LEN + CAPACITY];
            let mut region = SliceRegion::new(memory).unwrap();
            let config = ChannelConfig::new(1).max_record_len(40);
            let mut writer = Writer::create(&mut region, &config).unwrap();
            writer.write(&[1; 40]).unwrap();
            writer.write(b"").unwrap();
            let result = match entry {
                0 => writer.write(b"").map(drop),
                1 => writer.reserve(0).map(drop),
                _ => writer.write_with(&mut PlainHandler, &b""[..]).map(drop),
            };
            assert!(
                matches!(result, Err(WriteError::Full { remaining: 0, .. })),
                "entry point {entry}: {result:?}"
            );
            writer.close();
        }
        let guard = &buffer.as_mut_slice()[HEADER_LEN + CAPACITY..];
        assert!(guard.iter().all(|&b| b == CANARY), "entry point {entry}");
    }
}

/// Defect 5: a resume whose walk ended cleanly cleared nothing after the
/// resume point. Old records there keep valid checksums; after a second
/// crash in which the new record's page persisted but not the page after
/// it, a reader saw the old record again after the new one.
#[test]
fn resume_clears_a_stale_tail_that_a_second_crash_would_bring_back() {
    const LEN: usize = HEADER_LEN + 512;
    let mut buffer = AlignedBuffer::<LEN>::new();
    let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
    let config = ChannelConfig::new(1).checksums(true);
    let mut writer = Writer::create(&mut region, &config).unwrap();
    writer.write(b"A-old").unwrap();
    let b = writer.write(b"B-old").unwrap() as usize;
    let c = writer.write(b"C-old").unwrap() as usize;
    writer.leave_open();
    // Power loss: B's commit word never reached the disk; C's page did.
    buffer.as_mut_slice()[HEADER_LEN + b..HEADER_LEN + b + 4].fill(0);

    let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
    let writer = Writer::resume(&mut region).unwrap();
    assert_eq!(writer.position() as usize, b);
    // What the disk holds once the resume's clearing is durable.
    writer.leave_open();
    let after_resume = buffer.clone();

    let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
    let mut writer = Writer::resume(&mut region).unwrap();
    let d = writer.write(b"D-new").unwrap() as usize;
    assert_eq!(d, b);
    writer.leave_open();
    // Second crash: D's bytes persisted, the page from C on did not.
    let mut disk = after_resume;
    disk.as_mut_slice()[..HEADER_LEN + c].copy_from_slice(&buffer.as_mut_slice()[..HEADER_LEN + c]);

    let region = SliceRegion::new(disk.as_mut_slice()).unwrap();
    let mut reader = Reader::open(&region).unwrap();
    let mut seen = Vec::new();
    while let Ok(Some(record)) = reader.try_read() {
        seen.push(record.to_vec());
    }
    assert_eq!(seen, [b"A-old".to_vec(), b"D-new".to_vec()]);
}

/// Defect 3: `Reader::open` copied the header non-atomically before it knew
/// the signature was published, racing a writer creating the channel on
/// another core (miri's data-race detector reports it; natively the test
/// checks the reader only ever sees a whole header).
#[test]
fn open_racing_create_reads_no_header_byte_before_the_signature() {
    let rounds = if cfg!(miri) { 4 } else { 200 };
    for round in 0..rounds {
        let mut buffer = AlignedBuffer::<{ HEADER_LEN + 256 }>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let shared: &SliceRegion<'_> = &region;
        // SAFETY: the raw parts cover `buffer`, which outlives both threads;
        // the reader thread only reads, and only through the protocol; the
        // writer below is the only writer.
        let reader_region =
            unsafe { SliceRegion::from_raw_parts(shared.as_ptr().cast_mut(), HEADER_LEN + 256) }
                .unwrap();
        std::thread::scope(|s| {
            let reader = s.spawn(|| {
                loop {
                    match Reader::open(&reader_region) {
                        Ok(reader) => return reader.header().channel_id,
                        Err(_) => std::thread::yield_now(),
                    }
                }
            });
            let config = ChannelConfig::new(1000 + round).max_record_len(64);
            let writer = Writer::create(&mut region, &config).unwrap();
            assert_eq!(reader.join().unwrap(), 1000 + round);
            writer.leave_open();
        });
    }
}

struct Fake(Cell<u64>);
impl Clock for Fake {
    fn now(&self) -> u64 {
        self.0.get()
    }
}

/// Defect 4: with a timeout of 2^31 ticks or more, a dead writer was never
/// called abandoned, so `read_timeout(Duration::MAX)` hung.
#[test]
fn a_long_timeout_still_ends_in_abandoned() {
    for timeout in [1u64 << 31, 1 << 32, 3 << 40] {
        let mut buffer = AlignedBuffer::<{ HEADER_LEN + 256 }>::new();
        let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
        let config = ChannelConfig::new(1).timeout(timeout, TickUnit::Nanos);
        let mut writer = Writer::create(&mut region, &config).unwrap();
        let clock = Fake(Cell::new(1_000));
        writer.heartbeat(1_000);
        let mut reader = Reader::open(writer.shared_region()).unwrap();
        assert_eq!(reader.status(&clock), Status::Open);
        // The writer dies; time passes in uneven steps.
        let mut seen_abandoned = false;
        for step in 1..=64u64 {
            clock.0.set(1_000 + step * (timeout / 16) + step * 7);
            let status = reader.status(&clock);
            if step * (timeout / 16) + step * 7 > timeout + timeout / 16 {
                assert_eq!(status, Status::Abandoned, "timeout {timeout}, step {step}");
                seen_abandoned = true;
            }
        }
        assert!(seen_abandoned);
        drop(writer);
    }
}

/// Defect 4: a 1 s timeout counted in nanoseconds reported `Abandoned` a
/// few seconds after the writer died, then `Open` again as the 32-bit
/// heartbeat wrapped, then `Abandoned` again.
#[test]
fn abandonment_does_not_flap_when_the_clock_passes_32_bits() {
    let mut buffer = AlignedBuffer::<{ HEADER_LEN + 256 }>::new();
    let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
    let second = 1_000_000_000u64;
    let config = ChannelConfig::new(1).timeout(second, TickUnit::Nanos);
    let mut writer = Writer::create(&mut region, &config).unwrap();
    let died = 5 * second;
    let clock = Fake(Cell::new(died));
    writer.heartbeat(died);
    let mut reader = Reader::open(writer.shared_region()).unwrap();
    let mut abandoned_at = None;
    for tenth in 0..=200u64 {
        clock.0.set(died + tenth * second / 10);
        match reader.status(&clock) {
            Status::Abandoned => {
                abandoned_at.get_or_insert(tenth);
            }
            status => assert!(
                abandoned_at.is_none(),
                "{status:?} at {}.{} s after abandoned",
                tenth / 10,
                tenth % 10
            ),
        }
    }
    let at = abandoned_at.expect("never abandoned");
    assert!(at <= 11, "abandoned only {at} tenths after death");
    drop(writer);
}

/// Found by the embedded firmware's checks: a refused `write_with` still
/// advanced `SequenceHandler`, so readers saw a gap in the numbers.
#[test]
fn a_refused_record_takes_no_sequence_number() {
    use kekbit_nostd::{Encode, EncodeError, RecordSink, SequenceHandler};
    struct Failing;
    impl Encode for Failing {
        fn encode(&self, _: &mut RecordSink<'_>) -> Result<(), EncodeError> {
            Err(EncodeError::new("no"))
        }
    }
    // 80 bytes: two records of 24, then a batch marker and one of 16.
    let mut buffer = AlignedBuffer::<{ HEADER_LEN + 80 }>::new();
    let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
    let config = ChannelConfig::new(1).max_record_len(16);
    let mut writer = Writer::create(&mut region, &config).unwrap();
    let mut handler = SequenceHandler::new(0);
    writer.write_with(&mut handler, "zero").unwrap();
    assert!(writer.write_with(&mut handler, &[0u8; 9][..]).is_err()); // 8 + 9 > 16
    assert!(writer.write_with(&mut handler, &Failing).is_err());
    writer.write_with(&mut handler, "one").unwrap();
    {
        let mut batch = writer.batch();
        assert!(batch.write_with(&mut handler, &[0u8; 9][..]).is_err());
        batch.write_with(&mut handler, "").unwrap(); // fills the channel
        assert!(batch.write_with(&mut handler, "").is_err()); // full
    }
    let mut reader = Reader::open(writer.shared_region()).unwrap();
    let numbers: Vec<u64> = reader
        .records()
        .map(|r| SequenceHandler::split(r.unwrap()).unwrap().0)
        .collect();
    assert_eq!(numbers, [0, 1, 2]);
    assert_eq!(handler.next_sequence(), 3);
}

/// A damaged first record of a batch: the reader reports it and stays put at
/// the batch's marker, as it does on any damage, and says the same again.
/// (It used to step past the marker before reading the record, so the error
/// left it 8 bytes on; found by the `reader` fuzz target's oracle.)
#[test]
fn a_damaged_first_record_of_a_batch_leaves_the_reader_at_the_marker() {
    const LEN: usize = HEADER_LEN + 256;
    let mut buffer = AlignedBuffer::<LEN>::new();
    let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
    let mut writer = Writer::create(&mut region, &ChannelConfig::new(1).checksums(true)).unwrap();
    writer.write(b"single").unwrap();
    let marker = writer.position();
    writer.write_all(&[b"first", b"second"]).unwrap();
    writer.leave_open();
    // Damage the first record of the batch: its payload follows the marker
    // and the record's own 8-byte header.
    let payload = HEADER_LEN + marker as usize + BATCH_MARKER_LEN + PAYLOAD_OFFSET;
    buffer.as_mut_slice()[payload] ^= 0xFF;

    let region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
    let mut reader = Reader::open(&region).unwrap();
    assert_eq!(reader.try_read(), Ok(Some(&b"single"[..])));
    assert_eq!(reader.position(), marker);
    let error = reader.try_read().unwrap_err();
    assert!(matches!(error, ReadError::Checksum { .. }), "{error:?}");
    assert_eq!(reader.position(), marker, "the reader moved on damage");
    assert_eq!(reader.try_read(), Err(error));
    assert_eq!(reader.position(), marker);
}
