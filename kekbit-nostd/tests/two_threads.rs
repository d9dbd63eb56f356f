//! A writer thread and reader threads over one aligned heap region, as two
//! cores share SRAM. Under miri the stream is short; natively it is long.

use kekbit_nostd::{ChannelConfig, ReadError, Reader, SliceRegion, Writer};

const RECORDS: u32 = if cfg!(miri) { 200 } else { 200_000 };

/// A heap buffer aligned to 8 bytes: `u64`s viewed as bytes.
fn aligned(len: usize) -> Vec<u64> {
    vec![0u64; len.div_ceil(8)]
}

fn bytes(words: &mut [u64]) -> &mut [u8] {
    let len = words.len() * 8;
    // SAFETY: `u64` has no padding and any byte pattern is a valid `u8`;
    // the length covers exactly the same memory; the borrow is carried over.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), len) }
}

/// The record number `i` written as a payload of `i % 40` bytes.
fn payload(i: u32, buf: &mut [u8; 64]) -> &[u8] {
    let len = (i % 40) as usize + 4;
    buf[..4].copy_from_slice(&i.to_le_bytes());
    for (k, b) in buf[4..len].iter_mut().enumerate() {
        *b = (i as usize + k) as u8;
    }
    &buf[..len]
}

fn check(record: &[u8], expected: u32) {
    let mut buf = [0u8; 64];
    assert_eq!(record, payload(expected, &mut buf), "record {expected}");
}

#[test]
fn one_writer_two_readers_see_every_record_in_order() {
    let mut words = aligned(128 + 64 * RECORDS as usize);
    let mut region = SliceRegion::new(bytes(&mut words)).unwrap();
    let config = ChannelConfig::new(1).max_record_len(64).checksums(true);
    let mut writer = Writer::create(&mut region, &config).unwrap();
    let shared = writer.shared_region();

    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(move || {
                    let mut reader = Reader::open(shared).unwrap();
                    let mut next = 0;
                    let mut held = Vec::new();
                    loop {
                        match reader.try_read() {
                            Ok(Some(record)) => {
                                check(record, next);
                                if next % 1000 == 0 {
                                    held.push((next, record)); // records outlive the read
                                }
                                next += 1;
                            }
                            Ok(None) => std::hint::spin_loop(),
                            Err(ReadError::Closed) => break,
                            Err(e) => panic!("reader failed at record {next}: {e}"),
                        }
                        if next % 64 == 0 {
                            std::thread::yield_now();
                        }
                    }
                    for (i, record) in held {
                        check(record, i);
                    }
                    next
                })
            })
            .collect();
        let mut buf = [0u8; 64];
        for i in 0..RECORDS {
            if i % 2 == 0 {
                writer.write(payload(i, &mut buf)).unwrap();
            } else {
                let data = payload(i, &mut buf);
                let mut grant = writer.reserve(64).unwrap();
                grant[..data.len()].copy_from_slice(data);
                grant.commit(data.len()).unwrap();
            }
            if i % 7 == 0 {
                let _unused = writer.reserve(16).unwrap(); // dropped: never visible
            }
        }
        writer.close();
        for reader in readers {
            assert_eq!(reader.join().unwrap(), RECORDS);
        }
    });
}
