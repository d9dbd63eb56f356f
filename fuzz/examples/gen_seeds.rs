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
    CHECKSUMS, HeaderParams, RESEAL, RESUME, RegionInput, SEEKS, SLACK, VALID_HEADER,
};
use kekbit_fuzz::roundtrip::{Op, Scenario};
use kekbit_nostd::format::HEADER_LEN;
use kekbit_nostd::{ChannelConfig, SliceRegion, TickUnit, Writer};

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

/// A channel written by the real writer.
fn channel(checksums: bool, records: usize, end: End, timeout_ms: u64, heartbeat: u64) -> Vec<u8> {
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
        },
        body,
    };
    assert_eq!(input.seeks.len(), SEEKS);
    let bytes = input.to_bytes();
    assert_eq!(RegionInput::parse(&bytes), input);
    bytes
}

fn scenario(checksums: bool, fill: u8, ops: Vec<Op>) -> Vec<u8> {
    let scenario = Scenario {
        area: 40,
        slack: 3,
        max_record_len: 100,
        checksums,
        fill,
        ops,
    };
    let bytes = scenario.to_bytes().expect("no WriteBytes in seeds");
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
    println!("seed corpus written to {}", dir.display());
}
