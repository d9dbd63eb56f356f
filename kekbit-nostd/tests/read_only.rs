//! A channel in read-only memory, as readers map files (`PROT_READ`).
//!
//! Only `Relaxed` atomic loads are allowed on read-only memory (see the
//! docs of `AtomicU32::from_ptr`): an `Acquire` load may be implemented with
//! a read-modify-write. Defect 2 of the hardening review: readers loaded
//! with `Acquire`. Here the channel is a `static` built at compile time, so
//! it lives in read-only memory; miri with tree borrows
//! (`MIRIFLAGS=-Zmiri-tree-borrows cargo +nightly miri test -p kekbit-nostd
//! --test read_only`) reports any non-`Relaxed` load of it as undefined
//! behaviour. Natively the test checks the reader reads it all.

use kekbit_nostd::format::*;
use kekbit_nostd::{Clock, ReadError, Reader, SliceRegion, Status};

const CAPACITY: usize = 256;
const LEN: usize = HEADER_LEN + CAPACITY;
const RECORDS: [&[u8]; 3] = [b"read", b"only", b"memory, 8+ bytes"];

#[repr(C, align(64))]
struct Image([u8; LEN]);

/// The channel, closed after three records, built at compile time.
static CHANNEL: Image = Image(image());

const fn put(bytes: &mut [u8; LEN], at: usize, value: &[u8]) {
    let mut i = 0;
    while i < value.len() {
        bytes[at + i] = value[i];
        i += 1;
    }
}

const fn crc32c(bytes: &[u8], len: usize) -> u32 {
    let mut crc = !0u32;
    let mut i = 0;
    while i < len {
        crc ^= bytes[i] as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        i += 1;
    }
    !crc
}

const fn image() -> [u8; LEN] {
    let mut b = [0u8; LEN];
    put(&mut b, SIGNATURE_OFFSET, &SIGNATURE);
    put(&mut b, VERSION_OFFSET, &VERSION.to_le_bytes());
    put(&mut b, CHANNEL_ID_OFFSET, &7u64.to_le_bytes());
    put(&mut b, CAPACITY_OFFSET, &(CAPACITY as u32).to_le_bytes());
    put(&mut b, MAX_RECORD_LEN_OFFSET, &64u32.to_le_bytes());
    put(&mut b, TIMEOUT_OFFSET, &1_000u64.to_le_bytes());
    put(&mut b, TICK_UNIT_OFFSET, &2u32.to_le_bytes());
    let sum = crc32c(&b, HEADER_CHECKSUM_OFFSET);
    put(&mut b, HEADER_CHECKSUM_OFFSET, &sum.to_le_bytes());
    let mut position = HEADER_LEN;
    let mut r = 0;
    while r < RECORDS.len() {
        let len = RECORDS[r].len();
        put(
            &mut b,
            position,
            &(COMMIT_RECORD_TAG | len as u32).to_le_bytes(),
        );
        put(&mut b, position + PAYLOAD_OFFSET, RECORDS[r]);
        position += PAYLOAD_OFFSET + len.next_multiple_of(8);
        r += 1;
    }
    put(&mut b, position, &COMMIT_CLOSED.to_le_bytes());
    b
}

struct At(u64);
impl Clock for At {
    fn now(&self) -> u64 {
        self.0
    }
}

#[test]
fn a_reader_only_loads_relaxed_from_read_only_memory() {
    let base = CHANNEL.0.as_ptr().cast_mut();
    // SAFETY: the static lives forever and nothing writes it (it is in
    // read-only memory); no writer is ever created on this region.
    let region = unsafe { SliceRegion::from_raw_parts(base, LEN) }.unwrap();
    let mut reader = Reader::open(&region).unwrap();
    assert_eq!(reader.header().channel_id, 7);
    assert_eq!(reader.status(&At(10)), Status::Open);
    for expected in RECORDS {
        assert_eq!(reader.try_read(), Ok(Some(expected)));
    }
    assert_eq!(reader.try_read(), Err(ReadError::Closed));
    assert_eq!(reader.status(&At(10)), Status::Closed);
    reader.seek(0).unwrap();
    assert_eq!(reader.records().count(), RECORDS.len());
}
