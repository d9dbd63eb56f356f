//! Writes the committed seed corpus: `fuzz/corpus/<target>/seed-*`.
//!
//! Deterministic: run it again and the files come out byte for byte the
//! same. From `fuzz/`: `cargo run --example gen_seeds` (any toolchain, no
//! sanitizer needed). An optional argument names another output folder.

use std::fs;
use std::path::{Path, PathBuf};

use arbitrary::{Arbitrary, Unstructured};
use kekbit_fuzz::Aligned;
use kekbit_fuzz::region_input::{
    BATCHES, CHECKSUMS, HeaderParams, RESEAL, RESUME, RegionInput, SEEKS, SLACK, VALID_HEADER,
};
use kekbit_fuzz::roundtrip::{BatchOp, Op, Scenario, WithOp, len};
use kekbit_nostd::format::{COMMIT_BATCH_TAG, HEADER_LEN, PAYLOAD_OFFSET};
use kekbit_nostd::{ChannelConfig, PlainHandler, SliceRegion, TickUnit, Writer};

/// Bytes in each seed channel: small, yet room for a dozen records.
const REGION_LEN: usize = 512;

/// How a seed channel ends.
#[derive(Clone, Copy)]
enum End {
    /// Still open: the writer left without closing.
    Open,
    Closed,
    /// Written until a record did not fit.
    Full,
}

/// A channel written by the real writer, one record at a time.
fn channel(checksums: bool, records: usize, end: End, timeout_ms: u64, heartbeat: u64) -> Vec<u8> {
    written(checksums, records, 0, end, timeout_ms, heartbeat)
}

/// A channel written by the real writer: `records` single records, then
/// `batched` more in batches of three (by `write`, `write_with` and a grant).
fn written(
    checksums: bool,
    records: usize,
    batched: usize,
    end: End,
    timeout_ms: u64,
    heartbeat: u64,
) -> Vec<u8> {
    let mut buffer = Aligned::new(REGION_LEN, 0);
    {
        let mut region = SliceRegion::new(buffer.bytes_mut()).expect("aligned, large enough");
        let config = ChannelConfig::new(0x5eed)
            .writer_id(1)
            .max_record_len(64)
            .timeout(timeout_ms, TickUnit::Millis)
            .creation_time(1_000)
            .checksums(checksums);
        let mut writer = Writer::create(&mut region, &config).expect("valid config");
        for i in 0..records {
            let record = format!("record {i}: {}", "x".repeat(i % 9));
            writer.write(record.as_bytes()).expect("fits");
        }
        for chunk in (0..batched).collect::<Vec<_>>().chunks(3) {
            let mut batch = writer.batch();
            for &i in chunk {
                let record = format!("batched {i}: {}", "y".repeat(i % 7));
                match i % 3 {
                    0 => batch.write(record.as_bytes()).map(drop),
                    1 => batch
                        .write_with(&mut PlainHandler, record.as_bytes())
                        .map(drop),
                    _ => {
                        let mut grant = batch.reserve(record.len()).expect("fits");
                        grant.copy_from_slice(record.as_bytes());
                        grant.commit(record.len()).map(drop)
                    }
                }
                .expect("fits");
            }
            batch.publish();
        }
        writer.heartbeat(heartbeat);
        match end {
            End::Open => {
                writer.leave_open();
            }
            End::Closed => writer.close(),
            End::Full => {
                while writer.write(&[0xab; 40]).is_ok() {}
                assert!(!writer.is_open());
            }
        }
    }
    buffer.bytes_mut().to_vec()
}

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let folder = dir.join(target);
    fs::create_dir_all(&folder).expect("create corpus folder");
    fs::write(folder.join(format!("seed-{name}")), bytes).expect("write seed");
}

/// A `reader` input holding `region` as it is.
fn raw(region: &[u8], mode: u8, clocks: [u64; 2]) -> Vec<u8> {
    let input = RegionInput {
        mode,
        seeks: [0, 8, 24, 4096],
        clocks,
        params: HeaderParams::default(),
        body: region,
    };
    let bytes = input.to_bytes();
    assert_eq!(RegionInput::parse(&bytes), input);
    bytes
}

/// A `reader` input that puts `region`'s record area behind a header built
/// from its parameters.
fn rebuilt(region: &[u8], mode: u8) -> Vec<u8> {
    let body = &region[HEADER_LEN..];
    let input = RegionInput {
        mode: mode | VALID_HEADER,
        seeks: [16, 40, 7, u32::MAX],
        clocks: [2_000, 1 << 40],
        params: HeaderParams {
            capacity: 200,
            max_record_len: 63,
            timeout_ticks: 500,
            creation_time: 1_000,
            tick_unit: 2,
            heartbeat: 1_500,
            slack: 13,
            groups: 0,
        },
        body,
    };
    assert_eq!(input.seeks.len(), SEEKS);
    let bytes = input.to_bytes();
    assert_eq!(RegionInput::parse(&bytes), input);
    bytes
}

/// A `reader` input that regroups `region`'s records into batches.
fn rebuilt_batches(region: &[u8], mode: u8, groups: u32) -> Vec<u8> {
    let body = &region[HEADER_LEN..];
    let input = RegionInput {
        mode: mode | VALID_HEADER | BATCHES,
        seeks: [8, 16, 48, 4096],
        clocks: [0, 0],
        params: HeaderParams {
            // With SLACK: the record area is 24 + 8 * 36 bytes of the 320.
            capacity: 36,
            max_record_len: 63,
            timeout_ticks: 0,
            creation_time: 0,
            tick_unit: 0,
            heartbeat: 0,
            slack: 24,
            groups,
        },
        body,
    };
    let bytes = input.to_bytes();
    assert_eq!(RegionInput::parse(&bytes), input);
    let (_, valid, placed) = input.build();
    assert!(valid && placed.len() >= 4, "the seed regroups records");
    bytes
}

fn scenario(checksums: bool, fill: u8, ops: Vec<Op>) -> Vec<u8> {
    shaped(40, 3, 100, checksums, fill, ops)
}

/// A `roundtrip` input for a channel of `MIN_CAPACITY + 8 * area` bytes
/// (less `slack` units), with the given maximum record length (reduced).
fn shaped(area: u16, slack: u16, max: u16, checksums: bool, fill: u8, ops: Vec<Op>) -> Vec<u8> {
    let scenario = Scenario {
        area,
        slack,
        max_record_len: max,
        checksums,
        fill,
        ops,
    };
    let bytes = scenario.to_bytes();
    let decoded = Scenario::arbitrary_take_rest(Unstructured::new(&bytes)).expect("decodes");
    assert_eq!(
        decoded, scenario,
        "Scenario::to_bytes disagrees with arbitrary"
    );
    bytes
}

fn main() {
    let dir = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus"),
        PathBuf::from,
    );

    let plain = channel(false, 6, End::Open, 0, 1_000);
    let checksummed = channel(true, 6, End::Open, 0, 1_000);
    let closed = channel(true, 4, End::Closed, 0, 1_000);
    let full = channel(false, 3, End::Full, 0, 1_000);
    // A 1 s timeout, a heartbeat at 2 s, read at 60 s: abandoned.
    let abandoned = channel(true, 2, End::Open, 1_000, 2_000);
    let mut torn = checksummed.clone();
    // Damage the last record's payload: its checksum no longer matches.
    let last = torn
        .iter()
        .rposition(|&b| b == b'x')
        .expect("a payload byte");
    torn[last] ^= 0xff;

    let channels: [(&str, &[u8]); 6] = [
        ("open-plain", &plain),
        ("open-checksums", &checksummed),
        ("closed", &closed),
        ("full", &full),
        ("abandoned", &abandoned),
        ("torn-tail", &torn),
    ];

    for (name, region) in channels {
        write(&dir, "header", name, &region[..HEADER_LEN]);
        let input = raw(region, 0, [60_000, 120_000]);
        write(&dir, "reader", name, &input);
        // `open_file`: a length byte (0: the file as written), then the region.
        write(&dir, "open_file", name, &[&[0][..], &input].concat());
    }
    let cut = |resize: u8, input: Vec<u8>| [vec![resize], input].concat();
    write(
        &dir,
        "open_file",
        "truncated",
        &cut(8, raw(&closed, 0, [0, 0])),
    );
    write(
        &dir,
        "open_file",
        "extended",
        &cut(0x80 | 16, raw(&plain, 0, [0, 0])),
    );
    write(
        &dir,
        "open_file",
        "rebuilt",
        &cut(0, rebuilt(&checksummed, CHECKSUMS | RESEAL)),
    );
    write(
        &dir,
        "reader",
        "resume-open",
        &raw(&checksummed, RESUME, [0, 0]),
    );
    write(&dir, "reader", "resume-torn", &raw(&torn, RESUME, [0, 0]));
    write(
        &dir,
        "reader",
        "resume-closed",
        &raw(&closed, RESUME, [0, 0]),
    );
    write(&dir, "reader", "rebuilt-plain", &rebuilt(&plain, SLACK));

    // Batches written by the real writer, and bent: every way a marker can
    // be wrong. The first marker follows the 2 single records.
    let batched = written(true, 2, 7, End::Open, 0, 1_000);
    let closed_batched = written(false, 1, 6, End::Closed, 0, 1_000);
    let first_marker = HEADER_LEN
        + batched[HEADER_LEN..]
            .chunks(8)
            .position(|w| w[3] & 0xC0 == (COMMIT_BATCH_TAG >> 24) as u8)
            .expect("a batch marker")
            * 8;
    let with_span = |region: &[u8], span: u32| {
        let mut region = region.to_vec();
        let word = COMMIT_BATCH_TAG | span;
        region[first_marker..first_marker + 4].copy_from_slice(&word.to_le_bytes());
        region
    };
    let span = u32::from_le_bytes(batched[first_marker..first_marker + 4].try_into().unwrap())
        & !COMMIT_BATCH_TAG;
    let mut nested = batched.clone();
    // The first record of the batch becomes a second marker.
    let inner = first_marker + 8;
    nested[inner..inner + 4].copy_from_slice(&(COMMIT_BATCH_TAG | 16).to_le_bytes());
    let mut empty_first = batched.clone();
    // A marker whose first record was never published: nothing to read.
    empty_first[inner..inner + 4].fill(0);
    let mut torn_batch = batched.clone();
    // Damage the second record of the first batch: a resume must cut the
    // batch after its first record and rewrite its marker.
    let second = inner + PAYLOAD_OFFSET + "batched 0: ".len().div_ceil(8) * 8;
    torn_batch[second + PAYLOAD_OFFSET] ^= 0xff;
    let bent: [(&str, Vec<u8>); 9] = [
        ("batches-open", batched.clone()),
        ("batches-closed", closed_batched.clone()),
        ("batch-span-zero", with_span(&batched, 0)),
        ("batch-span-unaligned", with_span(&batched, span + 4)),
        ("batch-span-past-end", with_span(&batched, 1 << 20)),
        ("batch-span-short", with_span(&batched, span - 8)),
        ("batch-nested", nested),
        ("batch-first-empty", empty_first),
        ("batch-torn", torn_batch),
    ];
    for (name, region) in &bent {
        write(&dir, "reader", name, &raw(region, RESUME, [0, 0]));
    }
    write(
        &dir,
        "reader",
        "batches-rebuilt",
        &rebuilt_batches(&checksummed, CHECKSUMS | RESEAL | RESUME, 0x8002_0103),
    );
    write(
        &dir,
        "reader",
        "batches-rebuilt-plain",
        &rebuilt_batches(&plain, SLACK, 0x0301_8000),
    );
    write(
        &dir,
        "reader",
        "rebuilt-checksums",
        &rebuilt(&checksummed, CHECKSUMS | RESEAL),
    );
    write(
        &dir,
        "reader",
        "rebuilt-unsealed",
        &rebuilt(&checksummed, CHECKSUMS | RESUME),
    );

    let writes = |n: u16| {
        (0..n).map(|i| Op::Write {
            len: i * 5,
            seed: i as u8,
        })
    };
    let mut basic: Vec<Op> = writes(6).collect();
    basic.extend([
        Op::Read,
        Op::Read,
        Op::ReadAll,
        Op::Status,
        Op::Close,
        Op::Read,
        Op::Status,
    ]);
    write(
        &dir,
        "roundtrip",
        "plain-closed",
        &scenario(false, 0, basic.clone()),
    );
    write(
        &dir,
        "roundtrip",
        "checksums-closed",
        &scenario(true, 0xff, basic),
    );

    let mut full: Vec<Op> = writes(40).collect();
    full.extend([
        Op::ReadAll,
        Op::Write { len: 1, seed: 0 },
        Op::Read,
        Op::Status,
    ]);
    write(&dir, "roundtrip", "full", &scenario(true, 0xa5, full));

    let grants = vec![
        Op::ReserveCommit {
            reserve: 30,
            commit: 12,
            seed: 1,
        },
        Op::ReserveDrop { len: 50, seed: 2 },
        Op::ReserveCommit {
            reserve: 8,
            commit: 9,
            seed: 3,
        },
        Op::Write {
            len: 0x8000 | 101,
            seed: 4,
        },
        Op::ReserveCommit {
            reserve: 20,
            commit: 20,
            seed: 5,
        },
        Op::Seek(16),
        Op::Read,
        Op::SeekBoundary(0),
        Op::ReadAll,
        Op::Seek(12),
        Op::Seek(4096),
    ];
    write(
        &dir,
        "roundtrip",
        "grants-seeks",
        &scenario(false, 0x11, grants),
    );

    // A writer that stops (heartbeats, then leaves the channel open) and
    // comes back.
    let abandoned = vec![
        Op::Write { len: 10, seed: 1 },
        Op::Heartbeat(2_000),
        Op::Resume,
        Op::Heartbeat(u64::from(u32::MAX) + 7),
        Op::Write { len: 3, seed: 2 },
        Op::Reopen,
        Op::ReadAll,
        Op::Status,
    ];
    write(
        &dir,
        "roundtrip",
        "abandoned-resumed",
        &scenario(true, 0, abandoned),
    );

    // Every `write_with` handler, an encoder that fails, one too large.
    let with = |handler: u8, len: u16, failing: bool| WithOp {
        handler,
        len,
        seed: handler,
        now: 0x1_0000_0000 + u64::from(handler),
        failing,
    };
    let mut handlers: Vec<Op> = (0..5).map(|h| Op::WriteWith(with(h, 20, false))).collect();
    handlers.extend([
        Op::WriteWith(with(1, 30, true)),
        Op::WriteWith(with(3, len::ANY | 2000, false)),
        Op::WriteBytes(b"bytes".to_vec()),
        Op::ReadAll,
        Op::Status,
    ]);
    write(
        &dir,
        "roundtrip",
        "handlers",
        &scenario(true, 0x5a, handlers),
    );

    // Batches: every entry point in a batch, published and dropped, read
    // while open, then `write_all`, seeks into batches, a resume.
    let batches = vec![
        Op::Batch {
            ops: vec![
                BatchOp::Write { len: 3, seed: 1 },
                BatchOp::WriteWith(with(3, 19, false)),
                BatchOp::Read,
                BatchOp::ReserveCommit {
                    reserve: 16,
                    commit: 12,
                    seed: 2,
                },
                BatchOp::ReserveDrop { len: 9, seed: 3 },
                BatchOp::ReserveCommit {
                    reserve: 4,
                    commit: 5,
                    seed: 4,
                },
            ],
            publish: true,
        },
        Op::Read,
        Op::Batch {
            ops: vec![
                BatchOp::Write { len: 0, seed: 5 },
                BatchOp::WriteWith(with(0, 7, true)),
                BatchOp::Write { len: 11, seed: 6 },
            ],
            publish: false,
        },
        Op::WriteAll {
            lens: vec![1, 2, len::ANY | 900, 3],
            seed: 7,
        },
        Op::SeekBoundary(2),
        Op::Read,
        Op::Seek(8),
        Op::ReadAll,
        Op::Resume,
        Op::WriteAll {
            lens: vec![5, 6],
            seed: 8,
        },
        Op::Reopen,
        Op::ReadAll,
        Op::Close,
        Op::Status,
    ];
    write(
        &dir,
        "roundtrip",
        "batches",
        &scenario(false, 0x80, batches),
    );

    // Exact fills: a record that leaves no room, then an empty record at
    // the full boundary through every entry point; the figures stay.
    let exact = vec![
        Op::Write {
            len: len::ROOM,
            seed: 1,
        },
        Op::WriteWith(with(0, 0, false)),
        Op::Write { len: 0, seed: 2 },
        Op::ReserveCommit {
            reserve: 0,
            commit: 0,
            seed: 3,
        },
        Op::Batch {
            ops: vec![BatchOp::Write { len: 0, seed: 4 }],
            publish: true,
        },
        Op::WriteAll {
            lens: vec![0],
            seed: 5,
        },
        Op::ReadAll,
        Op::Status,
    ];
    write(
        &dir,
        "roundtrip",
        "exact-full",
        &shaped(6, 0, 200, true, 0xff, exact),
    );

    // A batch whose first record fits only without its marker, then one
    // that fills the channel: the staged records are published, then full.
    let fallback = vec![
        Op::Write { len: 16, seed: 1 },
        Op::Batch {
            ops: vec![BatchOp::Write {
                len: len::ROOM_WITHOUT_MARKER,
                seed: 2,
            }],
            publish: true,
        },
        Op::Reopen,
        Op::ReadAll,
    ];
    write(
        &dir,
        "roundtrip",
        "batch-fallback",
        &shaped(8, 0, 500, false, 0, fallback),
    );
    let batch_full = vec![
        Op::Batch {
            ops: vec![
                BatchOp::Write { len: 30, seed: 1 },
                BatchOp::Write { len: 30, seed: 2 },
                BatchOp::Write {
                    len: len::ROOM_PLUS_ONE,
                    seed: 3,
                },
                BatchOp::Write { len: 0, seed: 4 },
            ],
            publish: false,
        },
        Op::Write { len: 0, seed: 5 },
        Op::Read,
        Op::ReadAll,
        Op::Status,
    ];
    write(
        &dir,
        "roundtrip",
        "batch-full",
        &shaped(12, 0, 60, true, 0x40, batch_full),
    );
    println!("seed corpus written to {}", dir.display());
}
