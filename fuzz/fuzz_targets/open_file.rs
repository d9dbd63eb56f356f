//! Arbitrary bytes as a channel file, opened read-only through
//! `kekbit-std`: the same promise as the `reader` target, at the file level,
//! where the file's length is one more thing that can be wrong.
//!
//! Input: one byte that changes the file's length (bit 7 set: append the
//! low 7 bits' worth of zero bytes; clear: cut that many bytes off the
//! end), then a region in the `reader` target's layout
//! (`kekbit_fuzz::region_input`), written to a temporary file.
//!
//! Opening gives a typed error, or a channel whose length is exactly header
//! plus capacity and whose reader walk never panics, stays inside the
//! mapping and ends within one step per 8 bytes.
#![no_main]

use std::cmp::Ordering;
use std::io::Write;

use kekbit_fuzz::region_input::RegionInput;
use kekbit_nostd::format::{HEADER_LEN, MARKER_LEN, MIN_CAPACITY, PAYLOAD_OFFSET};
use kekbit_nostd::{HeaderError, ReadError, Region};
use kekbit_std::{ChannelError, ShmReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&resize, rest)) = data.split_first() else {
        return;
    };
    let input = RegionInput::parse(rest);
    let (mut buffer, valid_header, _) = input.build();
    let mut bytes = buffer.bytes_mut().to_vec();
    if resize & 0x80 != 0 {
        bytes.resize(bytes.len() + usize::from(resize & 0x7f), 0);
    } else {
        bytes.truncate(bytes.len().saturating_sub(usize::from(resize)));
    }
    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    file.write_all(&bytes).expect("write the channel file");
    file.flush().expect("flush the channel file");
    let path = file.path();
    let len = bytes.len();

    let channel = match ShmReader::open(path) {
        Ok(channel) => channel,
        Err(e) => {
            assert_eq!(e.path(), path);
            let _ = e.to_string();
            assert!(
                matches!(
                    e,
                    ChannelError::Header { .. }
                        | ChannelError::Region { .. }
                        | ChannelError::LengthMismatch { .. }
                ),
                "unexpected kind of error: {e}"
            );
            if valid_header && len >= HEADER_LEN + MIN_CAPACITY as usize {
                // The header is valid: only the length can be wrong.
                let expected = HEADER_LEN + input.header().capacity_bytes as usize;
                match len.cmp(&expected) {
                    Ordering::Equal => panic!("a valid channel file was refused: {e}"),
                    Ordering::Greater => assert!(
                        matches!(e, ChannelError::LengthMismatch { file_len, expected: x, .. }
                            if file_len == len as u64 && x == expected as u64),
                        "{e}"
                    ),
                    Ordering::Less => assert!(
                        matches!(
                            e,
                            ChannelError::Header {
                                source: HeaderError::CapacityExceedsRegion { .. },
                                ..
                            }
                        ),
                        "{e}"
                    ),
                }
            }
            return;
        }
    };

    let header = *channel.header();
    let capacity = header.capacity_bytes as usize;
    assert_eq!(channel.file_len(), len);
    assert_eq!(
        len,
        HEADER_LEN + capacity,
        "opened a file of the wrong length"
    );
    // SAFETY: offset 0, length 0: an empty borrow at the mapping's base.
    let base = unsafe { channel.region().bytes(0, 0) }.as_ptr() as usize;
    let (area_start, area_end) = (base + HEADER_LEN, base + HEADER_LEN + capacity);

    let mut reader = channel.reader().expect("the header re-validates");
    let limit = capacity / 8 + 1;
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps <= limit, "walk exceeded {limit} steps: it loops");
        let position = reader.position();
        assert!(position % 8 == 0 && position as usize + MARKER_LEN <= capacity);
        match reader.try_read() {
            Ok(Some(record)) => {
                let start = record.as_ptr() as usize;
                assert!(
                    start >= area_start + position as usize + PAYLOAD_OFFSET
                        && start + record.len() <= area_end,
                    "record at {position} outside the record area"
                );
                assert!(reader.position() > position);
            }
            Ok(None) => break,
            Err(e) => {
                let _ = e.to_string();
                let end = e.is_end();
                let ChannelError::Read { source, .. } = e else {
                    panic!("a read failed with a non-read error: {e}");
                };
                assert_eq!(reader.position(), position, "the reader moved on {source}");
                match reader.try_read() {
                    Err(ChannelError::Read { source: again, .. }) => assert_eq!(again, source),
                    other => panic!("{source}, then {other:?}"),
                }
                assert_eq!(end, matches!(source, ReadError::Closed | ReadError::Full));
                break;
            }
        }
    }
    let _ = reader.status();
    let _ = reader.heartbeat_age();
    for &position in &input.seeks {
        if reader.seek(position).is_ok() {
            assert!(position % 8 == 0 && position as usize + MARKER_LEN <= capacity);
            if let Ok(Some(record)) = reader.try_read() {
                let start = record.as_ptr() as usize;
                assert!(start >= area_start && start + record.len() <= area_end);
            }
        }
    }
});
