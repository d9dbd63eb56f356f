//! What each durability policy costs: records per second for one writer of
//! 64-byte records, flushes and the final close included.
//!
//! ```text
//! cargo run --release -p kekbit-std --example durability_cost [-- ROOT]
//! ```
//!
//! ROOT defaults to the system temporary directory, which should be on a
//! real disk for the figures to mean anything; each policy is also measured
//! on `/dev/shm` when it exists. Each run stops after 1,000,000 records or
//! 3 seconds, whichever comes first. Every row but the first has a 1 s
//! writer timeout, so each write also reads the coarse clock for heartbeats.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kekbit_nostd::{ChannelConfig, TickUnit};
use kekbit_std::{Durability, WriterOptions};

const RECORD_LEN: usize = 64;
const MAX_RECORDS: u64 = 1_000_000;
const TIME_BOX: Duration = Duration::from_secs(3);

fn run(
    root: &Path,
    durability: Durability,
    timeout_ms: u64,
) -> Result<(u64, Duration), Box<dyn std::error::Error>> {
    let path = root.join(format!("durability-cost-{}.kekbit", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let capacity = u32::try_from(MAX_RECORDS * (8 + RECORD_LEN as u64) + 4096)?;
    let config = ChannelConfig::new(1)
        .capacity_bytes(capacity)
        .max_record_len(RECORD_LEN as u32)
        .timeout(timeout_ms, TickUnit::Millis);
    let mut writer = WriterOptions::new(config)
        .durability(durability)
        .create(&path)?;
    let payload = [0x5Au8; RECORD_LEN];
    let start = Instant::now();
    let mut written = 0;
    while written < MAX_RECORDS {
        writer.write(&payload)?;
        written += 1;
        // Look at the clock only now and then: it costs more than a write.
        if written % 256 == 0 && start.elapsed() > TIME_BOX {
            break;
        }
    }
    writer.close()?;
    let elapsed = start.elapsed();
    std::fs::remove_file(&path)?;
    Ok((written, elapsed))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let disk: PathBuf = std::env::args()
        .nth(1)
        .map_or_else(std::env::temp_dir, Into::into);
    let mut roots = vec![disk.join("kekbit-durability-cost")];
    if Path::new("/dev/shm").is_dir() {
        roots.push(PathBuf::from("/dev/shm/kekbit-durability-cost"));
    }
    // A timeout turns on heartbeats from writes (a coarse clock read each).
    let policies = [
        ("None, no timeout", Durability::None, 0),
        ("None", Durability::None, 1000),
        ("OnClose", Durability::OnClose, 1000),
        ("EveryBytes(1 MiB)", Durability::EveryBytes(1 << 20), 1000),
        ("EveryRecords(1000)", Durability::EveryRecords(1000), 1000),
        ("EveryRecords(10)", Durability::EveryRecords(10), 1000),
        ("EveryRecord", Durability::EveryRecord, 1000),
    ];
    println!("one writer, {RECORD_LEN}-byte records, close included");
    println!(
        "{:<36} {:<20} {:>10} {:>12} {:>14}",
        "root", "policy", "records", "time", "records/s"
    );
    for root in &roots {
        std::fs::create_dir_all(root)?;
        for (name, policy, timeout_ms) in policies {
            let (records, elapsed) = run(root, policy, timeout_ms)?;
            println!(
                "{:<36} {name:<20} {records:>10} {:>12.1?} {:>14.0}",
                root.display(),
                elapsed,
                records as f64 / elapsed.as_secs_f64()
            );
        }
        std::fs::remove_dir(root)?;
    }
    Ok(())
}
