//! Group commit under `kill -9`: threads of a child process each commit
//! records with `append_durable` and print each acknowledgement. The child
//! is killed at a random point; then power loss is simulated on a copy of
//! the journal, losing whatever lies after the last acknowledged record.
//! Every acknowledged record must be in the recovered journal, at the
//! position it was acknowledged at, and the commits must have shared syncs.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kekbit_std::journal::JournalOptions;
use kekbit_tests::journal::{copy_folder, lose_power, read_journal};
use kekbit_tests::{SplitMix, scratch_dir};

const ROUNDS: u64 = 6;
const THREADS: &str = "8";

#[test]
#[cfg_attr(miri, ignore)]
fn every_acknowledged_commit_survives_a_kill_and_power_loss() {
    let root = scratch_dir("journal-group-commit");
    // KEKBIT_TEST_SEED replays a run.
    let start_seed = std::env::var("KEKBIT_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("random seed {start_seed}");
    let mut rng = SplitMix::new(start_seed);
    for round in 0..ROUNDS {
        let dir = root.join(format!("round-{round}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_journal-helper"))
            .args(["commit", dir.to_str().unwrap(), "16384", THREADS])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let (lines, inbox) = mpsc::channel();
        let out = BufReader::new(child.stdout.take().unwrap());
        let listener = std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        assert_eq!(
            inbox.recv_timeout(Duration::from_secs(60)).unwrap(),
            "ready"
        );
        std::thread::sleep(Duration::from_millis(50 + rng.next_u64() % 400));
        child.kill().unwrap();
        child.wait().unwrap();
        listener.join().unwrap();
        // (thread, i) -> position, and the end of the last acknowledged.
        let mut acked = HashMap::new();
        let mut acked_end = 0;
        for line in inbox.try_iter() {
            let fields: Vec<u64> = line
                .strip_prefix("ack ")
                .unwrap_or_else(|| panic!("{line}"))
                .split(' ')
                .map(|f| f.parse().unwrap())
                .collect();
            acked.insert((fields[0] as u32, fields[1] as u32), fields[2]);
            acked_end = acked_end.max(fields[3]);
        }
        assert!(!acked.is_empty(), "round {round}: nothing was committed");
        let copy = root.join(format!("round-{round}-power-loss"));
        copy_folder(&dir, &copy);
        let loss = lose_power(&copy, acked_end, &mut rng);
        let writer = JournalOptions::new()
            .segment_bytes(16384)
            .open_writer(&copy)
            .unwrap_or_else(|e| panic!("round {round}: {e} after {loss:?}"));
        drop(writer);
        let found: HashMap<u64, (u32, u32)> = read_journal(&copy)
            .unwrap()
            .into_iter()
            .map(|(position, r)| {
                let t = u32::from_le_bytes(r[..4].try_into().unwrap());
                let i = u32::from_le_bytes(r[4..8].try_into().unwrap());
                (position, (t, i))
            })
            .collect();
        for (&(t, i), &position) in &acked {
            assert_eq!(
                found.get(&position),
                Some(&(t, i)),
                "round {round}: commit {i} of thread {t} at {position} was acknowledged, then lost ({loss:?})"
            );
        }
        // Each thread's commits are in its order, with no gap before the
        // last acknowledged one.
        let mut per_thread: HashMap<u32, Vec<u32>> = HashMap::new();
        let mut positions: Vec<_> = found.iter().collect();
        positions.sort();
        for (_, &(t, i)) in positions {
            per_thread.entry(t).or_default().push(i);
        }
        for (t, is) in &per_thread {
            assert!(
                is.iter().enumerate().all(|(k, &i)| k as u32 == i),
                "thread {t}: {is:?}"
            );
        }
        println!(
            "round {round}: {} acknowledged, {} in the journal",
            acked.len(),
            found.len()
        );
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&copy).unwrap();
    }
    std::fs::remove_dir_all(&root).unwrap();
}
