//! Power loss, simulated on copies of a journal's folder, round after
//! round on the same journal: after the last durable position, pages are
//! kept or lost at random, the last segment is cut short at a random
//! offset, and segments created since may vanish. Then a writer recovers
//! the copy: it must not panic, must keep every record a sync covered,
//! must not bring back any record a previous recovery discarded (each
//! round's records carry its generation), and must resume writing.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use kekbit_std::journal::{JournalOptions, JournalWriter, LOCK_FILE_NAME};
use kekbit_tests::journal::{
    check_journal_record, checkpoint_of, copy_folder, journal_record, lose_power, read_journal,
};
use kekbit_tests::{SplitMix, scratch_dir};

const ROUNDS: u32 = 40;

/// Small segments, so that many are written (and lost) after each sync.
fn options() -> JournalOptions {
    JournalOptions::new().segment_bytes(8192)
}

#[test]
#[cfg_attr(miri, ignore)]
fn recovery_keeps_every_synced_record_and_resurrects_none() {
    let root = scratch_dir("journal-power-loss");
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
    // The generation that wrote each record the journal should hold.
    let mut model: Vec<u32> = Vec::new();
    let mut dir = root.join("round-0");
    let mut synced_records = 0usize;
    for generation in 0..ROUNDS {
        let mut writer = options()
            .open_writer(&dir)
            .unwrap_or_else(|e| panic!("round {generation}: recovery failed: {e}"));
        println!("round {generation}: recovered {:?}", writer.recovery());
        check_against_model(&dir, seed, &mut model, synced_records, generation);
        assert_eq!(writer.durable_position(), writer.end_position());
        // Append up to 1500 records, syncing at random points: often, now
        // and then, or never.
        let mut durable_records = model.len();
        let mut record = Vec::new();
        let sync_one_in = [10, 100, 1000, u64::MAX][(rng.next_u64() % 4) as usize];
        for _ in 0..rng.next_u64() % 1500 {
            journal_record(seed, model.len() as u64, generation, &mut record);
            writer.append(&record).unwrap();
            model.push(generation);
            if rng.next_u64().is_multiple_of(sync_one_in) {
                writer.sync().unwrap();
                durable_records = model.len();
            }
        }
        if rng.next_u64().is_multiple_of(8) {
            writer.roll().unwrap(); // a fresh, empty segment at the end
        }
        // The power fails: what the page cache holds now, minus whatever
        // had not reached the device.
        let next = root.join(format!("round-{}", generation + 1));
        copy_folder(&dir, &next);
        // The writer's background thread syncs sealed segments and notes
        // a checkpoint: what it synced survives too. One round in three,
        // the note itself is lost, and so may be whatever it covered that
        // no sync did: recovery must then walk every segment.
        let durable = if rng.next_u64().is_multiple_of(3) {
            std::fs::write(next.join(LOCK_FILE_NAME), b"").unwrap();
            writer.durable_position()
        } else {
            writer.durable_position().max(checkpoint_of(&next))
        };
        let loss = lose_power(&next, durable, &mut rng);
        println!(
            "round {generation}: {} records, {durable_records} synced, durable {durable}: {loss:?}",
            model.len()
        );
        synced_records = durable_records;
        drop(writer);
        std::fs::remove_dir_all(&dir).unwrap();
        dir = next;
    }
    let writer = options().open_writer(&dir).unwrap();
    check_against_model(&dir, seed, &mut model, synced_records, ROUNDS);
    resumes(writer, &dir, seed, model.len());
    std::fs::remove_dir_all(&root).unwrap();
}

/// Reads the recovered journal and checks it against the model: a prefix
/// of it, at least `synced` long, every record from the generation the
/// model says; then cuts the model to what survived.
fn check_against_model(dir: &Path, seed: u64, model: &mut Vec<u32>, synced: usize, round: u32) {
    let records = read_journal(dir).unwrap_or_else(|e| panic!("round {round}: {e}"));
    assert!(
        records.len() >= synced,
        "round {round}: {} records survived, {synced} were synced",
        records.len()
    );
    assert!(
        records.len() <= model.len(),
        "round {round}: records from nowhere"
    );
    for (i, (_, bytes)) in records.iter().enumerate() {
        let (seq, generation) = check_journal_record(seed, bytes)
            .unwrap_or_else(|e| panic!("round {round}: record {i}: {e}"));
        assert_eq!(seq, i as u64, "round {round}: out of sequence");
        assert_eq!(
            generation, model[i],
            "round {round}: record {i} came back from generation {generation}"
        );
    }
    model.truncate(records.len());
}

/// The recovered journal takes new records after the old ones.
fn resumes(mut writer: JournalWriter, dir: &Path, seed: u64, count: usize) {
    let mut record = Vec::new();
    for seq in count..count + 100 {
        journal_record(seed, seq as u64, 9999, &mut record);
        writer.append(&record).unwrap();
    }
    writer.close().unwrap();
    let records = read_journal(dir).unwrap();
    assert_eq!(records.len(), count + 100);
}
