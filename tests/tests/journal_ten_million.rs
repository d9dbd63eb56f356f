//! Ten million small records across hundreds of small segments, read back
//! from the start, from the middle and from the end, byte for byte.
//!
//! In a debug build (what `cargo test --workspace` runs) the default test
//! writes one million; the full ten million is `#[ignore]`d there, and
//! `.ci/std.sh` runs it in release:
//! `cargo test --release -p kekbit-tests --test journal_ten_million -- --ignored`.

use std::path::Path;

use kekbit_std::journal::{JournalOptions, JournalReader, Start};
use kekbit_tests::scratch_dir;

/// Record `seq`: its number, then 0 to 8 bytes that depend on it.
fn record(seq: u64, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&seq.to_le_bytes());
    let tail = (seq % 9) as usize;
    out.extend((0..tail).map(|k| (seq >> (k * 7)) as u8 ^ 0x5A));
}

/// Reads from `reader` until the journal's end, checking each record is
/// the next of the stream from `first`; returns how many were read.
fn read_to_end(reader: &mut JournalReader, first: u64, positions: &[u64]) -> u64 {
    let mut expected = Vec::new();
    let mut seq = first;
    loop {
        match reader.try_read() {
            Ok(Some(r)) => {
                record(seq, &mut expected);
                assert_eq!(r.payload, expected.as_slice(), "record {seq}");
                assert_eq!(
                    r.position, positions[seq as usize],
                    "record {seq}'s position"
                );
                seq += 1;
            }
            Ok(None) => panic!("the journal is closed: the end must say so"),
            Err(e) if e.is_end() => return seq - first,
            Err(e) => panic!("record {seq}: {e}"),
        }
    }
}

fn round_trip(count: u64, segment_bytes: u32, dir: &Path) {
    let mut writer = JournalOptions::new()
        .segment_bytes(segment_bytes)
        .open_writer(dir)
        .unwrap();
    let mut positions = Vec::with_capacity(count as usize);
    let mut buf = Vec::with_capacity(16);
    for seq in 0..count {
        record(seq, &mut buf);
        positions.push(writer.append(&buf).unwrap());
    }
    let segments = writer.segment_count();
    writer.close().unwrap();
    println!("{count} records in {segments} segments of {segment_bytes} bytes");
    assert!(segments > 100, "{segments} segments");

    let mut reader = JournalReader::open(dir).unwrap();
    assert_eq!(read_to_end(&mut reader, 0, &positions), count);
    let middle = count / 2;
    let mut reader =
        JournalReader::open_at(dir, Start::Position(positions[middle as usize])).unwrap();
    assert_eq!(read_to_end(&mut reader, middle, &positions), count - middle);
    let last = count - 1;
    let mut reader =
        JournalReader::open_at(dir, Start::Position(positions[last as usize])).unwrap();
    assert_eq!(read_to_end(&mut reader, last, &positions), 1);
    let mut reader = JournalReader::open_at(dir, Start::End).unwrap();
    assert!(reader.try_read().unwrap_err().is_end());
    // And by seeking one reader about.
    for seq in [last, 0, middle, 1, last - 1] {
        reader.seek(positions[seq as usize]).unwrap();
        let r = reader.try_read().unwrap().unwrap();
        record(seq, &mut buf);
        assert_eq!(r.payload, buf.as_slice());
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn a_million_records_read_back_from_start_middle_and_end() {
    let dir = scratch_dir("journal-million");
    round_trip(1_000_000, 64 << 10, &dir.join("journal"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[ignore = "ten million records: run in release (.ci/std.sh does)"]
fn ten_million_records_read_back_from_start_middle_and_end() {
    let dir = scratch_dir("journal-ten-million");
    round_trip(10_000_000, 256 << 10, &dir.join("journal"));
    std::fs::remove_dir_all(&dir).unwrap();
}
