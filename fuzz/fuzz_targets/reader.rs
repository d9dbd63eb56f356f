//! Arbitrary bytes as a whole region, read the way a reader would.
//!
//! The input layout is `kekbit_fuzz::region_input`: the first byte chooses
//! whether the bytes are the whole region as they are (almost always
//! rejected at the header, which is the point) or a record area behind a
//! valid header built from input fields, so the record walk is reached;
//! other bits turn on checksums, re-seal them, leave slack after the
//! record area, regroup the records into batches behind correct markers
//! (which mutations then bend: invalid spans, nested markers, spans past
//! the end), and resume a writer on the region afterwards.
//!
//! Then it walks every record with a reader, with the records iterator, and
//! with `seek` to record boundaries and to arbitrary positions. It checks
//! that nothing panics, that every record returned lies inside the record
//! area, that the walk ends within one step per 8 bytes, that a reader stays
//! put on damage, that records regrouped into valid batches read back
//! exactly, and that a resumed writer keeps exactly the records a reader
//! could read (rewriting a batch marker the walk stopped inside).
#![no_main]

use kekbit_fuzz::FixedClock;
use kekbit_fuzz::region_input::{CHECKSUMS, RESEAL, RESUME, RegionInput};
use kekbit_nostd::format::{
    BATCH_MARKER_LEN, COMMIT_BATCH_TAG, COMMIT_TAG_MASK, HEADER_LEN, MARKER_LEN, PAYLOAD_OFFSET,
};
use kekbit_nostd::{
    Header, Ordering, ReadError, Reader, Region, RegionError, SeekError, SliceRegion, WriteError,
    Writer,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = RegionInput::parse(data);
    let (mut buffer, valid_header, batched) = input.build();
    let memory = buffer.bytes_mut();
    let len = memory.len();
    let mut region = match SliceRegion::new(memory) {
        Ok(region) => region,
        Err(RegionError::TooSmall { len: l, min }) => {
            assert!(l == len && len < min);
            return;
        }
        Err(e) => panic!("an aligned buffer was refused: {e}"),
    };

    let walk = match Reader::open(&region) {
        Ok(reader) => walk(&region, reader, &input.seeks, &input.clocks),
        Err(e) => {
            assert!(!valid_header, "a valid header was refused: {e}");
            let _ = e.to_string();
            return;
        }
    };

    // Records regrouped into valid batches read back exactly, then the
    // empty word after them, unless their checksums were left unsealed.
    let sealed = input.mode & CHECKSUMS == 0 || input.mode & RESEAL != 0;
    if !batched.is_empty() && sealed {
        let read: Vec<&Vec<u8>> = walk.records.iter().map(|r| &r.1).collect();
        let expected: Vec<&Vec<u8>> = batched.iter().collect();
        assert_eq!(read, expected, "valid batches did not read back");
        assert_eq!(walk.outcome, Ok(()));
    }

    if input.mode & RESUME != 0 {
        resume(&mut region, &walk);
    }
});

/// What a full walk found.
struct Walk {
    /// Each record's boundary (where the reader stood before reading it:
    /// its batch marker, for a batch's first record) and payload.
    records: Vec<(u32, Vec<u8>)>,
    /// Where the walk stopped, and why.
    end: u32,
    outcome: Result<(), ReadError>,
}

/// Panics unless `record` lies inside the record area of `region`.
fn check_inside<R: Region>(region: &R, header: &Header, position: u32, record: &[u8]) {
    let base = region_base(region) as usize;
    let area_start = base + HEADER_LEN;
    let area_end = area_start + header.capacity_bytes as usize;
    let start = record.as_ptr() as usize;
    let end = start + record.len();
    assert!(
        start >= area_start + position as usize + PAYLOAD_OFFSET && end <= area_end,
        "record at {position} ({start:#x}..{end:#x}) outside the record area \
         ({area_start:#x}..{area_end:#x})"
    );
    assert!(header.capacity_bytes as usize + HEADER_LEN <= region.len());
    assert!(record.len() <= header.max_record_len as usize);
}

fn region_base<R: Region>(region: &R) -> *const u8 {
    // SAFETY: offset 0, length 0: an empty borrow at the base, in bounds
    // for any region.
    unsafe { region.bytes(0, 0) }.as_ptr()
}

fn walk<R: Region>(
    region: &R,
    mut reader: Reader<'_, R>,
    seeks: &[u32],
    clocks: &[u64; 2],
) -> Walk {
    let header = *reader.header();
    // A record takes at least 8 bytes, so a walk that makes more steps
    // than this has looped.
    let limit = header.capacity_bytes as usize / 8 + 1;
    let mut records = Vec::new();
    // Each record's own position: past its marker for a batch's first.
    let mut own = Vec::new();
    let area_start = region_base(region) as usize + HEADER_LEN;
    let mut steps = 0usize;
    let outcome = loop {
        steps += 1;
        assert!(steps <= limit, "walk exceeded {limit} steps: it loops");
        let position = reader.position();
        assert!(
            position % 8 == 0 && position as usize + MARKER_LEN <= header.capacity_bytes as usize
        );
        match reader.try_read() {
            Ok(Some(record)) => {
                check_inside(region, &header, position, record);
                assert!(reader.position() > position, "reader did not advance");
                own.push((record.as_ptr() as usize - area_start - PAYLOAD_OFFSET) as u32);
                records.push((position, record.to_vec()));
            }
            Ok(None) => break Ok(()),
            Err(e) => {
                // Damage or the end: the reader stays put and says the same again.
                assert_eq!(reader.position(), position);
                assert_eq!(reader.try_read(), Err(e));
                assert_eq!(reader.position(), position);
                let _ = e.to_string();
                break Err(e);
            }
        }
    };
    let end = reader.position();

    // The status and heartbeat views never panic, whatever the clock says.
    let _ = reader.heartbeat_age(&FixedClock(clocks[0]));
    let _ = reader.status(&FixedClock(clocks[0]));
    let _ = reader.status(&FixedClock(clocks[1]));

    // The iterator sees the same records and at most one error.
    let mut again = reader.clone();
    again.seek(0).expect("seek to the first record");
    let mut seen = 0usize;
    for item in again.records() {
        match item {
            Ok(record) => {
                assert!(seen < records.len(), "the iterator went past the walk");
                assert_eq!(record, &records[seen].1[..]);
                seen += 1;
            }
            Err(e) => assert_eq!(Err(e), outcome),
        }
    }
    assert_eq!(seen, records.len());

    // Every boundary the walk found can be sought to, from behind and
    // ahead: each record's, its own position inside a batch, and the end.
    let mut targets: Vec<(u32, usize)> = Vec::new();
    for (i, (&(boundary, _), &at)) in records.iter().zip(&own).enumerate() {
        targets.push((boundary, i));
        if at != boundary {
            targets.push((at, i));
        }
    }
    targets.push((end, records.len()));
    for &(position, i) in targets.iter().rev() {
        reader.seek(position).expect("seek to a walked boundary");
        assert_eq!(reader.position(), position);
        match reader.try_read() {
            Ok(Some(record)) => assert_eq!(record, &records[i].1[..]),
            other => {
                assert_eq!(i, records.len(), "boundary {position}: {other:?}");
                assert_eq!(other.map(|_| ()), outcome);
            }
        }
    }
    let boundaries: Vec<u32> = targets.iter().map(|t| t.0).collect();
    // A walk that stopped at a batch marker (its first record damaged, or
    // not there: an empty word after the marker) leaves the position past
    // the marker to `seek`, which follows the framing only.
    // SAFETY: `end + 4 <= capacity`: the walk's position invariant.
    let end_word = unsafe { region.load_u32(HEADER_LEN + end as usize, Ordering::Relaxed) };
    let past_marker =
        (end_word & COMMIT_TAG_MASK == COMMIT_BATCH_TAG).then_some(end + BATCH_MARKER_LEN as u32);

    // Arbitrary positions: an answer, never a panic; a record found there
    // is inside the area.
    for &position in seeks {
        let before = reader.position();
        match reader.seek(position) {
            Ok(()) => {
                assert!(position % 8 == 0);
                assert!(position as usize + MARKER_LEN <= header.capacity_bytes as usize);
                // `seek` follows the framing only: it may pass a record
                // whose checksum failed, to the boundaries after it.
                assert!(
                    boundaries.contains(&position)
                        || past_marker == Some(position)
                        || (position > end && matches!(outcome, Err(ReadError::Checksum { .. }))),
                    "sought to {position}, not a boundary (walk ended at {end}: {outcome:?})"
                );
                if let Ok(Some(record)) = reader.try_read() {
                    check_inside(region, &header, position, record);
                }
            }
            Err(e) => {
                assert_eq!(reader.position(), before, "a failed seek moved the reader");
                assert!(
                    !boundaries.contains(&position),
                    "boundary {position} refused: {e}"
                );
                if let SeekError::NotARecordBoundary { position: p } = e {
                    assert_eq!(p, position);
                }
                let _ = e.to_string();
            }
        }
    }

    Walk {
        records,
        end,
        outcome,
    }
}

/// Resumes a writer on the walked region: it must keep exactly the records
/// a reader could read, and append after them.
fn resume(region: &mut SliceRegion<'_>, walk: &Walk) {
    let mut writer = match Writer::resume(region) {
        Ok(writer) => writer,
        Err(e) => {
            // Only a channel that ended (or a bad header) cannot be resumed.
            assert!(
                matches!(walk.outcome, Err(ReadError::Closed | ReadError::Full)),
                "resume refused after {:?}: {e}",
                walk.outcome
            );
            return;
        }
    };
    // The writer keeps the records before the first damage and drops the rest.
    assert!(matches!(
        walk.outcome,
        Ok(()) | Err(ReadError::Corrupt { .. } | ReadError::Checksum { .. })
    ));
    assert_eq!(writer.records_written(), walk.records.len() as u64);
    assert_eq!(writer.position(), walk.end);
    let written = writer.write(b"");
    let mut reader = Reader::open(writer.shared_region()).expect("reopen after resume");
    for (position, record) in &walk.records {
        assert_eq!(reader.position(), *position);
        assert_eq!(reader.try_read(), Ok(Some(&record[..])));
    }
    match written {
        Ok(position) => {
            assert_eq!(position, walk.end);
            assert_eq!(reader.try_read(), Ok(Some(&b""[..])));
            assert_eq!(reader.try_read(), Ok(None));
        }
        Err(WriteError::Full { .. }) => assert_eq!(reader.try_read(), Err(ReadError::Full)),
        Err(e) => panic!("an empty record failed on a resumed channel: {e}"),
    }
}
