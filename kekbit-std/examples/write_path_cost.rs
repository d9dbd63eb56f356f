//! What the std write path adds to the core's, per record: the heartbeat
//! pacing (a coarse clock read when the channel has a timeout) and the
//! durability bookkeeping; and what batches of 32 save of it.
//!
//! ```text
//! cargo run --release -p kekbit-std --example write_path_cost [-- MODE RECORDS [LEN]]
//! ```
//!
//! Without arguments it times every mode (64-byte records, no reader, a
//! channel pre-faulted in `/dev/shm` or the temporary directory) and prints
//! nanoseconds per record, the best of 5 runs. With a MODE and a count (and
//! a record length, 64 unless given) it runs that mode once, silently, for a
//! profiler. Instructions per record,
//! counting only the timed loop:
//!
//! ```text
//! valgrind --tool=callgrind --collect-atstart=no \
//!     --toggle-collect='write_path_cost::timed*' \
//!     target/release/examples/write_path_cost std 100000
//! ```
//!
//! and divide the "Collected" count by the records. Modes:
//!
//! - `core`: `kekbit_nostd::Writer::write` into pre-faulted anonymous memory;
//! - `std`: `ShmWriter::write`, no timeout (what the benchmarks use);
//! - `std-timeout`: `ShmWriter::write` with a 1 s timeout (heartbeat pacing);
//! - `std-every-records`: as `std`, under `Durability::EveryRecords(u64::MAX)`;
//! - `core-batch`: `kekbit_nostd::Batch::write`, 32 records a batch;
//! - `batch`: `ShmBatch::write`, 32 records a batch, with a 1 s timeout.

use std::path::PathBuf;
use std::time::Instant;

use kekbit_nostd::{ChannelConfig, SliceRegion, TickUnit, Writer};
use kekbit_std::{Durability, ShmWriter, WriterOptions};

/// The record length unless one is given.
const RECORD_LEN: usize = 64;
const BATCH: u64 = 32;
const MODES: [&str; 6] = [
    "core",
    "std",
    "std-timeout",
    "std-every-records",
    "core-batch",
    "batch",
];

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match &args[..] {
        [] => {}
        [mode, records] => {
            run(mode, records.parse()?, RECORD_LEN)?;
            return Ok(());
        }
        [mode, records, len] => {
            run(mode, records.parse()?, len.parse()?)?;
            return Ok(());
        }
        _ => return Err("usage: write_path_cost [MODE RECORDS [LEN]]".into()),
    }
    let records = 4_000_000;
    println!("{RECORD_LEN}-byte records, {records} a run, best of 5, no reader");
    for mode in MODES {
        let best = (0..5)
            .map(|_| run(mode, records, RECORD_LEN))
            .collect::<Res<Vec<f64>>>()?
            .into_iter()
            .fold(f64::MAX, f64::min);
        println!("{mode:>18}: {best:5.2} ns/record");
    }
    Ok(())
}

fn root() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    }
}

/// Record-area bytes for `records` records of `len` bytes (and their batch
/// markers).
fn capacity(records: u64, len: usize) -> Res<u32> {
    // Each batch of 32 adds an 8-byte marker.
    let span = 8 + len.next_multiple_of(8) as u64;
    let bytes = records * span + records.div_ceil(32) * 8 + 4096;
    Ok(u32::try_from(bytes.next_multiple_of(4096))?)
}

fn config(records: u64, len: usize) -> Res<ChannelConfig> {
    Ok(ChannelConfig::new(1)
        .capacity_bytes(capacity(records, len)?)
        .max_record_len(len as u32))
}

/// Writes `records` records of `len` bytes in `mode`; returns nanoseconds
/// per record.
fn run(mode: &str, records: u64, len: usize) -> Res<f64> {
    // Of a length the compiler cannot see, as in a real program.
    let payload = vec![0x5Au8; std::hint::black_box(len)];
    let payload = payload.as_slice();
    match mode {
        "core" | "core-batch" => {
            let config = config(records, len)?;
            let size = kekbit_nostd::format::HEADER_LEN + capacity(records, len)? as usize;
            let mut map = memmap2::MmapMut::map_anon(size)?;
            map.fill(0); // pre-fault, as kekbit-std does
            let mut region = SliceRegion::new(&mut map[..])?;
            let mut writer = Writer::create(&mut region, &config)?;
            if mode == "core" {
                timed(records, || {
                    for _ in 0..records {
                        writer.write(payload)?;
                    }
                    Ok(())
                })
            } else {
                timed(records, || {
                    for _ in 0..records / BATCH {
                        let mut batch = writer.batch();
                        for _ in 0..BATCH {
                            batch.write(payload)?;
                        }
                    }
                    Ok(())
                })
            }
        }
        "std" | "std-timeout" | "std-every-records" | "batch" => {
            let mut config = config(records, len)?;
            if mode == "std-timeout" || mode == "batch" {
                config = config.timeout(1_000, TickUnit::Millis);
            }
            let durability = if mode == "std-every-records" {
                Durability::EveryRecords(u64::MAX)
            } else {
                Durability::None
            };
            let path = root().join(format!("write-path-cost-{}.kekbit", std::process::id()));
            let _ = std::fs::remove_file(&path);
            let mut writer = WriterOptions::new(config)
                .durability(durability)
                .create(&path)?;
            std::fs::remove_file(&path)?; // the mapping stays
            if mode == "batch" {
                timed(records, || {
                    for _ in 0..records / BATCH {
                        write_batch(&mut writer, payload)?;
                    }
                    Ok(())
                })
            } else {
                timed(records, || {
                    for _ in 0..records {
                        writer.write(payload)?;
                    }
                    Ok(())
                })
            }
        }
        other => Err(format!("unknown mode {other}; one of {MODES:?}").into()),
    }
}

/// Runs `write` (which writes `records` records); returns nanoseconds per
/// record. Not inlined, so a profiler can count only what it runs
/// (`valgrind --tool=callgrind --collect-atstart=no
/// --toggle-collect='write_path_cost::timed*'`).
#[inline(never)]
fn timed(records: u64, write: impl FnOnce() -> Res<()>) -> Res<f64> {
    let start = Instant::now();
    write()?;
    Ok(start.elapsed().as_nanos() as f64 / records as f64)
}

fn write_batch(writer: &mut ShmWriter, payload: &[u8]) -> Res<()> {
    let mut batch = writer.batch();
    for _ in 0..BATCH {
        batch.write(payload)?;
    }
    batch.publish()?;
    Ok(())
}
