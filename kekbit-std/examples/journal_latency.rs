//! What rolling costs a journal's writer: the latency of each append of a
//! 64-byte record, and records per second, into journals in `/dev/shm`
//! whose segments roll (64 MiB, and 1 MiB to roll often), against the same
//! records into one segment large enough never to roll.
//!
//! ```text
//! cargo run --release -p kekbit-std --example journal_latency [-- RECORDS [ROOT]]
//! ```
//!
//! RECORDS defaults to 5,000,000; ROOT to `kekbit_std::default_root()`
//! (`/dev/shm/kekbit`). Each configuration runs three times, alternating;
//! the table gives the median run's figures (by p99.9). Each append is
//! timed alone with `Instant::now()`, whose own cost (tens of
//! nanoseconds) is in every figure. "roll" is the latency of the appends
//! that rolled.

use std::path::Path;
use std::time::{Duration, Instant};

use kekbit_std::default_root;
use kekbit_std::journal::JournalOptions;

const RECORD_LEN: usize = 64;
/// A record's footprint: 8 bytes of framing, payload padded to 8.
const RECORD_SPAN: u64 = 8 + RECORD_LEN as u64;
const RUNS: usize = 3;

struct Run {
    rolls: usize,
    records_per_sec: f64,
    /// Every append's latency, sorted.
    latencies: Vec<u32>,
    /// The latencies of the appends that rolled, sorted.
    roll_latencies: Vec<u32>,
}

fn run(dir: &Path, records: u64, segment_bytes: u32) -> Result<Run, Box<dyn std::error::Error>> {
    let _ = std::fs::remove_dir_all(dir);
    let mut writer = JournalOptions::new()
        .segment_bytes(segment_bytes)
        .max_record_len(RECORD_LEN as u32)
        .open_writer(dir)?;
    let payload = [0xA5u8; RECORD_LEN];
    let mut latencies = Vec::with_capacity(records as usize);
    let mut roll_latencies = Vec::new();
    let mut base = writer.segment_base();
    // Give the background thread the head start it has in a long-running
    // writer: the next segment is made before the first roll.
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    for _ in 0..records {
        let t0 = Instant::now();
        writer.append(&payload)?;
        let took = t0.elapsed().as_nanos().min(u128::from(u32::MAX)) as u32;
        latencies.push(took);
        if writer.segment_base() != base {
            base = writer.segment_base();
            roll_latencies.push(took);
        }
    }
    let elapsed = started.elapsed();
    let rolls = writer.segment_count() - 1;
    writer.close()?;
    std::fs::remove_dir_all(dir)?;
    latencies.sort_unstable();
    roll_latencies.sort_unstable();
    Ok(Run {
        rolls,
        records_per_sec: records as f64 / elapsed.as_secs_f64(),
        latencies,
        roll_latencies,
    })
}

fn pct(sorted: &[u32], p: f64) -> String {
    if sorted.is_empty() {
        return "-".into();
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    nanos(sorted[i])
}

fn nanos(ns: u32) -> String {
    if ns >= 1_000_000 {
        format!("{:.1} ms", f64::from(ns) / 1e6)
    } else if ns >= 10_000 {
        format!("{:.0} µs", f64::from(ns) / 1e3)
    } else {
        format!("{ns} ns")
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let records: u64 = args.next().map_or(Ok(5_000_000), |a| a.parse())?;
    let root = args.next().map_or_else(default_root, Into::into);
    std::fs::create_dir_all(&root)?;
    let one_segment = u32::try_from((records * RECORD_SPAN + 4096).next_multiple_of(8))?;
    let configs: [(&str, u32); 3] = [
        ("one segment, no roll", one_segment),
        ("64 MiB segments", 64 << 20),
        ("1 MiB segments", 1 << 20),
    ];
    println!(
        "journal_latency: {records} appends of {RECORD_LEN} B records under {}, {RUNS} runs each\n",
        root.display()
    );
    let mut runs: Vec<Vec<Run>> = configs.iter().map(|_| Vec::new()).collect();
    for n in 0..RUNS {
        for (i, (_, segment_bytes)) in configs.iter().enumerate() {
            let dir = root.join(format!("journal-latency-{}-{i}-{n}", std::process::id()));
            runs[i].push(run(&dir, records, *segment_bytes)?);
        }
    }
    println!(
        "{:<22} {:>6} {:>12} {:>8} {:>8} {:>8} {:>9} {:>9} {:>10} {:>10}",
        "journal",
        "rolls",
        "records/s",
        "p50",
        "p99",
        "p99.9",
        "p99.99",
        "max",
        "roll p50",
        "roll max"
    );
    let mut p999 = Vec::new();
    for ((name, _), runs) in configs.iter().zip(&mut runs) {
        runs.sort_by_key(|r| r.latencies[(r.latencies.len() as f64 * 0.999) as usize]);
        let r = &runs[RUNS / 2];
        p999.push(r.latencies[(r.latencies.len() as f64 * 0.999) as usize]);
        println!(
            "{:<22} {:>6} {:>10.2} M {:>8} {:>8} {:>8} {:>9} {:>9} {:>10} {:>10}",
            name,
            r.rolls,
            r.records_per_sec / 1e6,
            pct(&r.latencies, 0.50),
            pct(&r.latencies, 0.99),
            pct(&r.latencies, 0.999),
            pct(&r.latencies, 0.9999),
            pct(&r.latencies, 1.0),
            pct(&r.roll_latencies, 0.5),
            pct(&r.roll_latencies, 1.0),
        );
    }
    println!(
        "\np99.9 across rolls / without: {:.2}x (64 MiB), {:.2}x (1 MiB)",
        f64::from(p999[1]) / f64::from(p999[0]),
        f64::from(p999[2]) / f64::from(p999[0])
    );
    Ok(())
}
