//! What pre-faulting buys: records per second from a writer thread to a
//! reader thread, 64-byte records, on a pre-faulted channel and on one that
//! is not, plus what creating each costs.
//!
//! ```text
//! cargo run --release -p kekbit-std --example prefault_cost [-- RECORDS [ROOT]]
//! ```
//!
//! ROOT defaults to `kekbit_std::default_root()` (`/dev/shm/kekbit`).

use std::time::{Duration, Instant};

use kekbit_nostd::ChannelConfig;
use kekbit_std::{ShmReader, WaitStrategy, WriterOptions, default_root};

const RECORD_LEN: usize = 64;
/// A record's footprint: 8 bytes of framing, payload padded to 8.
const RECORD_SPAN: u64 = 8 + RECORD_LEN as u64;
const RUNS: usize = 5;

struct Run {
    create: Duration,
    transfer: Duration,
}

fn run(
    root: &std::path::Path,
    records: u64,
    prefault: bool,
    n: usize,
) -> Result<Run, Box<dyn std::error::Error>> {
    let path = root.join(format!(
        "prefault-cost-{}-{prefault}-{n}.kekbit",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    let capacity = u32::try_from(records * RECORD_SPAN + 4096)?;
    let config = ChannelConfig::new(1)
        .capacity_bytes(capacity)
        .max_record_len(RECORD_LEN as u32);
    let started = Instant::now();
    let mut writer = WriterOptions::new(config)
        .prefault(prefault)
        .create(&path)?;
    let create = started.elapsed();

    let channel = ShmReader::open(&path)?;
    let transfer = std::thread::scope(|s| -> Result<Duration, kekbit_std::ChannelError> {
        let reader = s.spawn(|| -> Result<(u64, Instant), kekbit_std::ChannelError> {
            let mut reader = channel.reader()?.with_wait_strategy(WaitStrategy::BusySpin);
            let mut count = 0u64;
            for record in reader.blocking() {
                count += record?.len() as u64 / RECORD_LEN as u64;
            }
            Ok((count, Instant::now()))
        });
        let payload = [0xA5u8; RECORD_LEN];
        let start = Instant::now();
        for _ in 0..records {
            writer.write(&payload)?;
        }
        drop(writer); // closes: the reader's iterator ends
        let (count, done) = reader.join().expect("reader thread panicked")?;
        assert_eq!(count, records, "the reader lost records");
        Ok(done - start)
    })?;
    drop(channel);
    std::fs::remove_file(&path)?;
    Ok(Run { create, transfer })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let records: u64 = args.next().map_or(Ok(4_000_000), |a| a.parse())?;
    let root = args.next().map_or_else(default_root, Into::into);
    std::fs::create_dir_all(&root)?;
    println!(
        "{records} records of {RECORD_LEN} bytes, writer thread -> reader thread (busy-spin), under {}",
        root.display()
    );
    println!(
        "{:<12} {:>4} {:>12} {:>14} {:>14}",
        "channel", "run", "create", "transfer", "records/s"
    );
    let mut medians = Vec::new();
    for prefault in [true, false] {
        let name = if prefault { "pre-faulted" } else { "lazy" };
        let mut rates = Vec::new();
        let mut creates = Vec::new();
        for n in 0..RUNS {
            let r = run(&root, records, prefault, n)?;
            let rate = records as f64 / r.transfer.as_secs_f64();
            println!(
                "{name:<12} {n:>4} {:>12.1?} {:>14.1?} {:>14.0}",
                r.create, r.transfer, rate
            );
            rates.push(rate);
            creates.push(r.create);
        }
        rates.sort_by(f64::total_cmp);
        creates.sort();
        medians.push((name, creates[RUNS / 2], rates[RUNS / 2]));
    }
    println!("medians:");
    for (name, create, rate) in medians {
        println!("{name:<12} create {create:>10.1?}   {rate:>12.0} records/s");
    }
    Ok(())
}
