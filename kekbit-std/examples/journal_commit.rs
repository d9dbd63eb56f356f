//! Group commit, measured: threads that each append a 64-byte record and
//! wait until it is durable (`SharedJournal::append_durable`), on disk, with
//! 1, 4 and 16 threads; and how many commits shared each sync.
//!
//! ```text
//! cargo run --release -p kekbit-std --example journal_commit [-- SECONDS [DIR]]
//! ```
//!
//! SECONDS (per configuration, default 2) of committing; DIR defaults to the
//! system's temporary folder, which should be on a disk: in `/dev/shm` a
//! sync costs nothing and there is little to share.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kekbit_std::journal::JournalOptions;

fn run(dir: &Path, threads: usize, seconds: f64) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    let _ = std::fs::remove_dir_all(dir);
    let journal = JournalOptions::new()
        .segment_bytes(64 << 20)
        .open_writer(dir)?
        .into_shared();
    // Let the background thread make the next segment first, as it has in
    // a long-running writer.
    std::thread::sleep(Duration::from_millis(500));
    let stop = AtomicBool::new(false);
    let commits = AtomicU64::new(0);
    let syncs_before = journal.sync_count();
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let journal = journal.clone();
            let (stop, commits) = (&stop, &commits);
            s.spawn(move || {
                let record = [0x5Au8; 64];
                while !stop.load(Ordering::Relaxed) {
                    journal.append_durable(&record).expect("a durable commit");
                    commits.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
    });
    let elapsed = started.elapsed().as_secs_f64();
    let commits = commits.load(Ordering::Relaxed);
    let syncs = journal.sync_count() - syncs_before;
    drop(journal);
    std::fs::remove_dir_all(dir)?;
    Ok((
        commits as f64 / elapsed,
        commits as f64 / syncs.max(1) as f64,
    ))
}

const THREADS: [usize; 3] = [1, 4, 16];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().map_or(Ok(2.0), |a| a.parse())?;
    let root = args.next().map_or_else(std::env::temp_dir, Into::into);
    println!(
        "journal_commit: 64 B records, append_durable, {seconds} s each, under {}\n",
        root.display()
    );
    println!(
        "{:>8} {:>14} {:>18}",
        "threads", "commits/s", "commits per sync"
    );
    let mut single = f64::NAN;
    for threads in THREADS {
        let dir = root.join(format!("journal-commit-{}-{threads}", std::process::id()));
        let (rate, per_sync) = run(&dir, threads, seconds)?;
        if threads == 1 {
            single = rate;
        }
        println!(
            "{threads:>8} {rate:>14.0} {per_sync:>18.1}   {:.1}x one thread",
            rate / single
        );
    }
    Ok(())
}
