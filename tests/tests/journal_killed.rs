//! `kill -9` a journal writer that appends and syncs, at random points, 50
//! times. After each kill the next writer recovers and resumes; a reader in
//! this process follows the journal through every crash and must see one
//! continuous sequence, with no gap and no duplicate, including every
//! record up to the last position a `sync()` returned. Every tenth round,
//! power loss is also simulated on a copy: every record a sync covered
//! survives it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kekbit_std::WaitStrategy;
use kekbit_std::journal::{JournalOptions, JournalReader};
use kekbit_tests::journal::{
    check_journal_record, checkpoint_of, copy_folder, lose_power, read_journal,
};
use kekbit_tests::{SplitMix, scratch_dir};

const ROUNDS: u64 = 50;
const SEGMENT_BYTES: &str = "65536";

fn helper() -> Command {
    Command::new(env!("CARGO_BIN_EXE_journal-helper"))
}

#[test]
#[cfg_attr(miri, ignore)]
fn every_synced_record_survives_fifty_kills_and_readers_see_one_sequence() {
    let root = scratch_dir("journal-killed");
    let dir = root.join("journal");
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
    let seed = rng.next_u64();
    let mut reader: Option<JournalReader> = None;
    let mut next_seq = 0u64;
    let mut seen_end = 0u64;
    for round in 0..ROUNDS {
        let mut child = helper()
            .args([
                "append",
                dir.to_str().unwrap(),
                &seed.to_string(),
                SEGMENT_BYTES,
                &next_seq.to_string(),
                &round.to_string(),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the writer");
        let (lines, inbox) = mpsc::channel();
        let out = BufReader::new(child.stdout.take().unwrap());
        let listener = std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let ready = inbox
            .recv_timeout(Duration::from_secs(60))
            .expect("the writer opens the journal");
        let resumed_at: u64 = ready.strip_prefix("ready ").unwrap().parse().unwrap();
        // The journal keeps everything a reader saw: a kill loses nothing
        // of the page cache, and recovery cuts nothing that is sound.
        assert_eq!(resumed_at, seen_end, "round {round}: resumed elsewhere");
        let reader = reader.get_or_insert_with(|| {
            let mut r = JournalReader::open(&dir).unwrap();
            r.set_wait_strategy(WaitStrategy::Yield);
            r
        });
        // Read along while the writer runs, then kill it at a random point.
        let kill_at = Instant::now() + Duration::from_millis(5 + rng.next_u64() % 200);
        while Instant::now() < kill_at {
            match reader.read_timeout(Duration::from_millis(2)) {
                Ok(Some(r)) => {
                    let (seq, generation) = check_journal_record(seed, r.payload).unwrap();
                    assert_eq!(seq, next_seq, "round {round}: out of sequence");
                    assert!(generation as u64 <= round);
                    next_seq += 1;
                }
                Ok(None) => {}
                Err(e) => panic!("round {round}: {e}"),
            }
        }
        child.kill().expect("SIGKILL the writer");
        child.wait().unwrap();
        listener.join().unwrap();
        let synced = inbox
            .try_iter()
            .filter_map(|l| l.strip_prefix("synced ")?.parse::<u64>().ok())
            .max()
            .unwrap_or(resumed_at);
        // Whatever was published is there, the synced records included.
        loop {
            match reader.try_read() {
                Ok(Some(r)) => {
                    let (seq, _) = check_journal_record(seed, r.payload).unwrap();
                    assert_eq!(seq, next_seq, "round {round}: out of sequence");
                    next_seq += 1;
                }
                Ok(None) => break,
                Err(e) => panic!("round {round}: {e}"),
            }
        }
        seen_end = reader.position();
        assert!(
            seen_end >= synced,
            "round {round}: synced {synced}, found {seen_end}"
        );
        if round % 10 == 9 {
            power_loss_keeps_the_synced(&root, &dir, round, seed, synced, &mut rng);
        }
        println!("round {round}: {next_seq} records, end {seen_end}, synced {synced}");
    }
    drop(reader);
    std::fs::remove_dir_all(&root).unwrap();
}

/// On a copy of the killed writer's journal, power loss after `synced`
/// loses no record before it; a writer recovers the copy and resumes.
fn power_loss_keeps_the_synced(
    root: &std::path::Path,
    dir: &std::path::Path,
    round: u64,
    seed: u64,
    synced: u64,
    rng: &mut SplitMix,
) {
    let copy = root.join(format!("power-loss-{round}"));
    copy_folder(dir, &copy);
    let durable = synced.max(checkpoint_of(&copy));
    let loss = lose_power(&copy, durable, rng);
    let mut writer = JournalOptions::new()
        .segment_bytes(SEGMENT_BYTES.parse().unwrap())
        .open_writer(&copy)
        .unwrap_or_else(|e| panic!("round {round}: recovery after {loss:?}: {e}"));
    let records = read_journal(&copy).unwrap();
    for (i, (_, r)) in records.iter().enumerate() {
        let (seq, _) = check_journal_record(seed, r).unwrap();
        assert_eq!(seq, i as u64, "round {round}: after power loss");
    }
    let end = writer.end_position();
    assert!(
        end >= synced,
        "round {round}: lost synced records: end {end} < {synced} ({loss:?})"
    );
    writer.append(b"resumed").unwrap();
    writer.close().unwrap();
    std::fs::remove_dir_all(&copy).unwrap();
}
