//! Check 1: a channel in a static buffer, as firmware keeps one.
//!
//! - Records of every length from 0 to the channel's maximum, written with
//!   `SequenceHandler` through `write_with` (lengths 8 to max: the sequence
//!   number takes 8), then with `write` and `reserve`/`commit` (0 to max),
//!   checksums on: on Arm that is the table CRC32C. Each is read back byte
//!   for byte.
//! - The channel is then filled exactly: `remaining_bytes()` reaches 0, the
//!   next write gets `Full`, the reader gets every record and then `Full`,
//!   and the FULL marker sits in the region's last word.
//! - The canary rule: the region is the first part of a larger buffer whose
//!   tail is a known pattern; not one byte of it may change.
//! - One corrupted payload byte makes the reader return `Checksum`.
//! - A channel with no configured maximum takes one record of the largest
//!   length it allows, which fills it exactly.

use kekbit_nostd::format::{COMMIT_FULL, HEADER_LEN, MARKER_LEN, PAYLOAD_OFFSET, RECORD_ALIGN};
use kekbit_nostd::{
    ChannelConfig, Handler, PlainHandler, ReadError, Reader, SequenceHandler, SliceRegion,
    WriteError, Writer,
};

use crate::board::{STATIC_MAX_RECORD, STATIC_REGION_BYTES};
use crate::pattern::Body;
use crate::report::{Failed, attempt, ensure, say};

const CHECK: &str = "static-buffer";

/// Bytes after the region that must never change.
pub const CANARY_BYTES: usize = 64;
/// What the region holds before each channel is created: not zeros, since
/// the writer must not rely on zeroed memory.
const GARBAGE: u8 = 0xEE;
const MAX: usize = STATIC_MAX_RECORD as usize;

/// The bytes a record of `len` payload bytes takes, framing included.
const fn span(len: usize) -> usize {
    PAYLOAD_OFFSET + len.next_multiple_of(RECORD_ALIGN)
}

/// Bytes of the first pass: records of lengths 8..=MAX.
const fn sequenced_bytes() -> usize {
    let mut total = 0;
    let mut len = 8;
    while len <= MAX {
        total += span(len);
        len += 1;
    }
    total
}

/// Bytes of the second pass before the exact fill: records of lengths 0..=MAX.
const fn every_length_bytes() -> usize {
    sequenced_bytes()
        + span(0)
        + span(1)
        + span(2)
        + span(3)
        + span(4)
        + span(5)
        + span(6)
        + span(7)
}

// Both passes fit the board's region, with room left for the exact fill.
const _: () =
    assert!(HEADER_LEN + every_length_bytes() + span(MAX) + MARKER_LEN <= STATIC_REGION_BYTES);
const _: () = assert!(STATIC_REGION_BYTES.is_multiple_of(RECORD_ALIGN));
const _: () = assert!(MAX >= 8 && MAX.is_multiple_of(RECORD_ALIGN));

fn canary_byte(i: usize) -> u8 {
    0xA5 ^ (i as u8).wrapping_mul(29)
}

/// Runs check 1 on `memory`: the region and then [`CANARY_BYTES`] of canary.
pub fn run(memory: &mut [u8]) -> Result<(), Failed> {
    ensure!(
        memory.len() == STATIC_REGION_BYTES + CANARY_BYTES,
        "FAIL static-buffer: buffer of {} bytes, expected {}",
        memory.len(),
        STATIC_REGION_BYTES + CANARY_BYTES
    );
    let (region, canary) = memory.split_at_mut(STATIC_REGION_BYTES);
    for (i, b) in canary.iter_mut().enumerate() {
        *b = canary_byte(i);
    }

    let sequenced = sequenced(region)?;
    check_canary(canary, "after the sequenced records")?;
    let filled = every_length_then_fill(region, canary)?;
    checksum_catches_damage(region)?;
    let largest = largest_record(region)?;
    check_canary(canary, "after the largest record")?;

    say!(
        "PASS static-buffer: {} + {} records of every length 0..={} bytes read back byte for byte (CRC32C on); exact fill of {} bytes took {} records, then FULL; {} canary bytes intact; a flipped byte gave Checksum; one {}-byte record filled a fresh channel",
        sequenced,
        MAX + 1,
        MAX,
        STATIC_REGION_BYTES,
        filled,
        CANARY_BYTES,
        largest
    );
    Ok(())
}

fn check_canary(canary: &[u8], when: &str) -> Result<(), Failed> {
    for (i, &b) in canary.iter().enumerate() {
        ensure!(
            b == canary_byte(i),
            "FAIL static-buffer: canary byte {} past the region changed {} (found {}, expected {})",
            i,
            when,
            b,
            canary_byte(i)
        );
    }
    Ok(())
}

/// Pass 1: `write_with` and `SequenceHandler`, record lengths 8..=MAX; one
/// byte more is refused. Returns the records written.
fn sequenced(bytes: &mut [u8]) -> Result<usize, Failed> {
    bytes.fill(GARBAGE);
    let mut region = attempt!(SliceRegion::new(bytes), CHECK, "region");
    let config = ChannelConfig::new(1)
        .checksums(true)
        .max_record_len(MAX as u32);
    let mut writer = attempt!(Writer::create(&mut region, &config), CHECK, "create");
    let mut reader = attempt!(Reader::open(writer.shared_region()), CHECK, "open");

    const FIRST: u64 = 1 << 40; // a sequence number with high bytes set
    let mut sequence = SequenceHandler::new(FIRST);
    let mut expected = 0usize;
    let count = MAX - 8 + 1;
    for body_len in 0..count {
        let body = Body {
            seed: body_len as u64,
            len: body_len,
        };
        match writer.write_with(&mut (&mut sequence).chain(PlainHandler), &body) {
            Ok(position) => ensure!(
                position as usize == expected,
                "FAIL static-buffer: sequenced record of {} bytes went to {}, expected {}",
                body_len + 8,
                position,
                expected
            ),
            Err(e) => {
                say!(
                    "FAIL static-buffer: sequenced record of {} bytes: {}",
                    body_len + 8,
                    e
                );
                return Err(Failed);
            }
        }
        expected += span(body_len + 8);
    }
    let too_long = Body {
        seed: 0,
        len: MAX - 7,
    };
    let refused = writer.write_with(&mut (&mut sequence).chain(PlainHandler), &too_long);
    ensure!(
        refused
            == Err(WriteError::TooLarge {
                len: MAX + 1,
                max: MAX as u32
            }),
        "FAIL static-buffer: a record one byte over the maximum was not refused as TooLarge"
    );
    ensure!(
        writer.is_open() && writer.position() as usize == expected,
        "FAIL static-buffer: the refused record changed the channel"
    );

    for body_len in 0..count {
        let body = Body {
            seed: body_len as u64,
            len: body_len,
        };
        let seq = FIRST + body_len as u64;
        match reader.try_read() {
            Ok(Some(record)) => ensure!(
                body.matches_sequenced(seq, record),
                "FAIL static-buffer: sequenced record {} ({} bytes) read back wrong ({} bytes)",
                seq,
                body_len + 8,
                record.len()
            ),
            Ok(None) => {
                say!("FAIL static-buffer: sequenced record {} missing", seq);
                return Err(Failed);
            }
            Err(e) => {
                say!("FAIL static-buffer: sequenced record {}: {}", seq, e);
                return Err(Failed);
            }
        }
    }
    ensure!(
        reader.try_read() == Ok(None),
        "FAIL static-buffer: a record after the last sequenced one"
    );
    writer.close();
    ensure!(
        reader.try_read() == Err(ReadError::Closed),
        "FAIL static-buffer: no Closed after close()"
    );
    Ok(count)
}

/// Pass 2: lengths 0..=MAX by `write` (even) and `reserve`/`commit` (odd,
/// reserving the maximum and committing less), then records until the
/// channel is exactly full. Returns the records of the whole pass.
fn every_length_then_fill(bytes: &mut [u8], canary: &[u8]) -> Result<usize, Failed> {
    bytes.fill(GARBAGE);
    let mut region = attempt!(SliceRegion::new(&mut *bytes), CHECK, "region");
    let config = ChannelConfig::new(2)
        .checksums(true)
        .max_record_len(MAX as u32);
    let mut writer = attempt!(Writer::create(&mut region, &config), CHECK, "create");
    let capacity = writer.header().capacity_bytes as usize;
    ensure!(
        capacity == STATIC_REGION_BYTES - HEADER_LEN,
        "FAIL static-buffer: capacity {} is not the region after the header",
        capacity
    );

    let mut source = [0u8; MAX];
    let mut expected = 0usize;
    // (seed, length) of each record: seed = index.
    for len in 0..=MAX {
        let body = Body {
            seed: len as u64,
            len,
        };
        let written = if len % 2 == 0 {
            body.fill(&mut source[..len]);
            writer.write(&source[..len])
        } else {
            match writer.reserve(MAX) {
                Ok(mut grant) => {
                    body.fill(&mut grant[..len]);
                    grant.commit(len)
                }
                Err(e) => Err(e),
            }
        };
        match written {
            Ok(position) => ensure!(
                position as usize == expected,
                "FAIL static-buffer: record of {} bytes went to {}, expected {}",
                len,
                position,
                expected
            ),
            Err(e) => {
                say!("FAIL static-buffer: record of {} bytes: {}", len, e);
                return Err(Failed);
            }
        }
        expected += span(len);
    }

    // Fill exactly: whole MAX-byte records while more than one is needed,
    // then one record that takes what is left.
    let mut fillers = 0usize;
    while writer.remaining_bytes() as usize > span(MAX) {
        let seed = (MAX + 1 + fillers) as u64;
        Body { seed, len: MAX }.fill(&mut source);
        if let Err(e) = writer.write(&source) {
            say!("FAIL static-buffer: filler record {}: {}", fillers, e);
            return Err(Failed);
        }
        fillers += 1;
    }
    let last_len = (writer.remaining_bytes() as usize).saturating_sub(PAYLOAD_OFFSET);
    let last = Body {
        seed: (MAX + 1 + fillers) as u64,
        len: last_len,
    };
    let committed = match writer.reserve(last_len) {
        Ok(mut grant) => {
            last.fill(&mut grant);
            grant.commit(last_len)
        }
        Err(e) => Err(e),
    };
    if let Err(e) = committed {
        say!(
            "FAIL static-buffer: last record of {} bytes: {}",
            last_len,
            e
        );
        return Err(Failed);
    }
    ensure!(
        writer.remaining_bytes() == 0,
        "FAIL static-buffer: {} bytes left after the exact fill",
        writer.remaining_bytes()
    );
    ensure!(
        writer.write(&[])
            == Err(WriteError::Full {
                needed: PAYLOAD_OFFSET as u64,
                remaining: 0
            }),
        "FAIL static-buffer: an empty record after the exact fill was not refused as Full"
    );
    // FULL is terminal: every later write gets the same error.
    ensure!(
        writer.write(&[])
            == Err(WriteError::Full {
                needed: PAYLOAD_OFFSET as u64,
                remaining: 0
            })
            && !writer.is_open(),
        "FAIL static-buffer: the channel took a record after FULL"
    );
    // Before reading anything: the FULL marker is the write nearest the end.
    check_canary(canary, "after the exact fill")?;

    // Every record, byte for byte, then FULL.
    let records = MAX + 1 + fillers + 1;
    let mut reader = attempt!(Reader::open(writer.shared_region()), CHECK, "open");
    for i in 0..records {
        let len = if i <= MAX {
            i
        } else if i < records - 1 {
            MAX
        } else {
            last_len
        };
        let body = Body {
            seed: i as u64,
            len,
        };
        match reader.try_read() {
            Ok(Some(record)) => ensure!(
                body.matches(record),
                "FAIL static-buffer: record {} ({} bytes) read back wrong ({} bytes)",
                i,
                len,
                record.len()
            ),
            Ok(None) => {
                say!("FAIL static-buffer: record {} of {} missing", i, records);
                return Err(Failed);
            }
            Err(e) => {
                say!("FAIL static-buffer: record {}: {}", i, e);
                return Err(Failed);
            }
        }
    }
    ensure!(
        reader.try_read() == Err(ReadError::Full),
        "FAIL static-buffer: the reader did not see FULL after the last record"
    );
    ensure!(
        reader.position() as usize == capacity - MARKER_LEN,
        "FAIL static-buffer: FULL at {}, expected the last word, {}",
        reader.position(),
        capacity - MARKER_LEN
    );
    // The writer's borrow of the region ends here (the reader's already has).
    drop(writer);

    // The marker is the region's last word (the region length is a multiple
    // of the record alignment), so the next byte is the canary's first.
    let marker_at = STATIC_REGION_BYTES - MARKER_LEN;
    ensure!(
        bytes[marker_at..marker_at + 4] == COMMIT_FULL.to_le_bytes(),
        "FAIL static-buffer: the region's last word is not the FULL marker"
    );
    Ok(records)
}

/// One flipped payload byte: the reader reports `Checksum` at that record.
fn checksum_catches_damage(bytes: &mut [u8]) -> Result<(), Failed> {
    // Record 1 of pass 2 is one byte long, at position span(0).
    let position = span(0);
    bytes[HEADER_LEN + position + PAYLOAD_OFFSET] ^= 0x01;
    let region = attempt!(SliceRegion::new(bytes), CHECK, "region");
    let mut reader = attempt!(Reader::open(&region), CHECK, "reopen");
    ensure!(
        reader.try_read() == Ok(Some(&[][..])),
        "FAIL static-buffer: the empty first record did not read back"
    );
    ensure!(
        matches!(reader.try_read(), Err(ReadError::Checksum { position: p, .. }) if p as usize == position),
        "FAIL static-buffer: a flipped payload byte was not caught by the checksum"
    );
    Ok(())
}

/// A channel with no configured maximum: one record of the largest length
/// it allows fills it exactly. Returns that length.
fn largest_record(bytes: &mut [u8]) -> Result<usize, Failed> {
    bytes.fill(GARBAGE);
    let mut region = attempt!(SliceRegion::new(bytes), CHECK, "region");
    let mut writer = attempt!(
        Writer::create(&mut region, &ChannelConfig::new(3).checksums(true)),
        CHECK,
        "create"
    );
    let max = writer.header().max_record_len as usize;
    let body = Body { seed: 7, len: max };
    let committed = match writer.reserve(max) {
        Ok(mut grant) => {
            body.fill(&mut grant);
            grant.commit(max)
        }
        Err(e) => Err(e),
    };
    ensure!(
        committed == Ok(0),
        "FAIL static-buffer: the largest record ({} bytes) was not written at 0",
        max
    );
    ensure!(
        writer.remaining_bytes() == 0,
        "FAIL static-buffer: the largest record left {} bytes",
        writer.remaining_bytes()
    );
    ensure!(
        matches!(writer.write(&[]), Err(WriteError::Full { .. })),
        "FAIL static-buffer: a record after the largest one was not refused as Full"
    );
    let mut reader = attempt!(Reader::open(writer.shared_region()), CHECK, "open");
    ensure!(
        reader
            .try_read()
            .is_ok_and(|r| r.is_some_and(|r| body.matches(r))),
        "FAIL static-buffer: the largest record did not read back"
    );
    ensure!(
        reader.try_read() == Err(ReadError::Full),
        "FAIL static-buffer: no FULL after the largest record"
    );
    Ok(max)
}
