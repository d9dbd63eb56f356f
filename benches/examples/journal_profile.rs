//! One journal workload of `compare`, alone and repeated, for a profiler
//! (`perf record -g`, `strace -c`): what `benches/ANALYSIS.md` says bounds
//! each journal row comes from runs of this.
//!
//! ```text
//! cargo run --release -p kekbit-benches --example journal_profile -- WORKLOAD [REPS] [DISK_DIR]
//! ```
//!
//! WORKLOAD is one of `channel`, `channel-plain`, `journal-rolls`,
//! `journal-rolls-plain`, `journal-one`, `latency-rolls`, `latency-one`
//! (the full run's sizes, in `/dev/shm`), or `commit-journal-T`,
//! `commit-floor-T`, `commit-pkv-T` for T threads (in DISK_DIR, default
//! `/var/tmp`, which must be on a disk). Each repetition prints its rate;
//! appends also print the rate by the appending thread's CPU time.

use std::path::{Path, PathBuf};

use kekbit_benches::journal::{self, Plan};
use kekbit_benches::{Res, fail};

fn main() {
    if let Err(e) = run() {
        eprintln!("journal_profile: {e}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || fail("usage: journal_profile WORKLOAD [REPS] [DISK_DIR] (see the source)");
    let workload = args.first().ok_or_else(usage)?.as_str();
    let reps: usize = match args.get(1) {
        Some(n) => n.parse().map_err(|_| usage())?,
        None => 5,
    };
    let disk = args
        .get(2)
        .map_or_else(|| PathBuf::from("/var/tmp"), PathBuf::from);
    let plan = Plan::new(false);
    let shm = Path::new("/dev/shm");
    let one = journal::one_segment_bytes(plan.records)?;
    for _ in 0..reps {
        let appends = match workload {
            "channel" => Some(journal::channel_appends(shm, plan.records, true)?),
            "channel-plain" => Some(journal::channel_appends(shm, plan.records, false)?),
            "journal-rolls" => Some(journal::journal_appends(
                shm,
                &plan,
                plan.roll_segment,
                true,
            )?),
            "journal-rolls-plain" => Some(journal::journal_appends(
                shm,
                &plan,
                plan.roll_segment,
                false,
            )?),
            "journal-one" => Some(journal::journal_appends(shm, &plan, one, true)?),
            "latency-rolls" | "latency-one" => {
                let segment = if workload == "latency-one" {
                    one
                } else {
                    plan.roll_segment
                };
                let (all, rolled) = journal::journal_latency(shm, &plan, segment)?;
                println!(
                    "{workload}: p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns; {} rolls, roll p50 {} ns",
                    all.value_at_quantile(0.5),
                    all.value_at_quantile(0.99),
                    all.value_at_quantile(0.999),
                    all.max(),
                    rolled.len(),
                    rolled.value_at_quantile(0.5),
                );
                None
            }
            other => {
                let (system, threads) = other
                    .strip_prefix("commit-")
                    .and_then(|rest| rest.rsplit_once('-'))
                    .ok_or_else(usage)?;
                let threads: usize = threads.parse().map_err(|_| usage())?;
                match system {
                    "journal" => {
                        let (rate, per_sync) = journal::journal_commits(&disk, &plan, threads)?;
                        println!("{other}: {rate:.0} commits/s, {per_sync:.1} commits per sync");
                    }
                    "floor" => {
                        let rate = journal::floor_commits(&disk, &plan, threads)?;
                        println!("{other}: {rate:.0} commits/s");
                    }
                    "pkv" => {
                        let rate = journal::pkv_commits(&disk, &plan, threads)?;
                        println!("{other}: {rate:.0} commits/s");
                    }
                    _ => return Err(usage()),
                }
                None
            }
        };
        if let Some(a) = appends {
            println!(
                "{workload}: {:.2} M records/s (by CPU time {:.2} M/s), {} rolls",
                a.rate / 1e6,
                a.cpu_rate / 1e6,
                a.rolls
            );
        }
    }
    Ok(())
}
