//! Crash tests: a child process does random sets, unsets, CAS, batches and
//! clears on a store (with background snapshots every few KB, so many kills
//! land while one is being written) and is killed with SIGKILL at a random
//! point, 50 times. After each kill the store is reopened and must hold
//! exactly the state of the first `acked` or `acked + 1` operations of the
//! child's (deterministic) sequence: every acknowledged operation is there,
//! in every sync mode (the process crashed, not the machine), nothing that
//! was never written, and never part of a batch.
#![cfg_attr(miri, ignore)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use kekbit_kv::{Config, PersistentKeyValueStore, SyncMode, WriteBatch};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
type Store = PersistentKeyValueStore<Vec<u8>, Vec<u8>>;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug)]
enum Op {
    Set(Vec<u8>, Vec<u8>),
    Unset(Vec<u8>),
    Cas(Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>),
    Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>),
    Clear,
}

fn key(rng: &mut Rng) -> Vec<u8> {
    format!("key{:02}", rng.below(48)).into_bytes()
}

/// Values come from a small set per key, so CAS often matches; some are
/// empty, some large (to make snapshots and the log grow).
fn value(rng: &mut Rng, key: &[u8]) -> Vec<u8> {
    match rng.below(8) {
        0 => Vec::new(),
        1 => vec![b'L'; 1500 + rng.below(2000) as usize],
        n => {
            let mut v = key.to_vec();
            v.extend_from_slice(format!("={n}").as_bytes());
            v
        }
    }
}

fn op(rng: &mut Rng) -> Op {
    match rng.below(100) {
        0..40 => {
            let k = key(rng);
            let v = value(rng, &k);
            Op::Set(k, v)
        }
        40..55 => Op::Unset(key(rng)),
        55..80 => {
            let k = key(rng);
            let expected = (rng.below(4) != 0).then(|| value(rng, &k));
            let new = (rng.below(5) != 0).then(|| value(rng, &k));
            Op::Cas(k, expected, new)
        }
        80..99 => {
            let n = 2 + rng.below(5);
            Op::Batch(
                (0..n)
                    .map(|_| {
                        let k = key(rng);
                        let v = (rng.below(4) != 0).then(|| value(rng, &k));
                        (k, v)
                    })
                    .collect(),
            )
        }
        _ => Op::Clear,
    }
}

fn apply_model(m: &mut Model, op: &Op) {
    match op {
        Op::Set(k, v) => {
            m.insert(k.clone(), v.clone());
        }
        Op::Unset(k) => {
            m.remove(k);
        }
        Op::Cas(k, expected, new) => {
            if m.get(k) == expected.as_ref() {
                match new {
                    Some(v) => m.insert(k.clone(), v.clone()),
                    None => m.remove(k),
                };
            }
        }
        Op::Batch(ops) => {
            for (k, v) in ops {
                match v {
                    Some(v) => m.insert(k.clone(), v.clone()),
                    None => m.remove(k),
                };
            }
        }
        Op::Clear => m.clear(),
    }
}

fn apply_store(s: &Store, op: &Op) {
    match op {
        Op::Set(k, v) => s.set(k.clone(), v.clone()).unwrap(),
        Op::Unset(k) => s.unset(k).unwrap(),
        Op::Cas(k, expected, new) => {
            s.compare_and_swap(k.clone(), expected.as_ref(), new.as_ref())
                .unwrap();
        }
        Op::Batch(ops) => {
            let mut b = WriteBatch::new();
            for (k, v) in ops {
                match v {
                    Some(v) => b.set(k.clone(), v.clone()),
                    None => b.unset(k),
                };
            }
            s.write_batch(&b).unwrap();
        }
        Op::Clear => s.clear().unwrap(),
    }
}

fn config(mode: SyncMode) -> Config {
    Config {
        silent: true,
        sync_mode: mode,
        snapshot_interval: 20,
        min_compaction_bytes: 4 * 1024,
        log_segment_bytes: 32 * 1024,
        buffered_sync_interval: Duration::from_millis(5),
        ..Config::default()
    }
}

fn mode_of(i: u64) -> SyncMode {
    match i % 3 {
        0 => SyncMode::BlockAndSync,
        1 => SyncMode::BlockNoExplicitSync,
        _ => SyncMode::Buffered,
    }
}

fn contents(dir: &Path, mode: SyncMode) -> Model {
    let s: Store = PersistentKeyValueStore::new(dir, config(mode)).unwrap();
    s.iter().collect()
}

/// The child: runs when the parent starts this test binary with the
/// environment variable set; otherwise it is an empty test.
#[test]
fn crash_child() {
    let Ok(spec) = std::env::var("KEKBIT_KV_CRASH_CHILD") else {
        return;
    };
    let mut parts = spec.split(',');
    let dir = parts.next().unwrap().to_string();
    let seed: u64 = parts.next().unwrap().parse().unwrap();
    let iteration: u64 = parts.next().unwrap().parse().unwrap();
    let store: Store = PersistentKeyValueStore::new(&dir, config(mode_of(iteration))).unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    let mut rng = Rng(seed);
    for i in 0u64.. {
        let op = op(&mut rng);
        apply_store(&store, &op);
        writeln!(out, "ack {i}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn killed_at_random_points_fifty_times() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let mut state = Model::new();
    let mut pick = Rng(0x5eed_0000_0000_0001);
    let mut total_acked = 0;
    for iteration in 0..50u64 {
        let seed = pick.next();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(
                "KEKBIT_KV_CRASH_CHILD",
                format!("{},{seed},{iteration}", dir.display()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut acked = 0u64;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.ends_with("ready") {
                    let _ = tx.send(());
                } else if let Some(n) = line.strip_prefix("ack ") {
                    acked = n.parse::<u64>().unwrap() + 1;
                }
            }
            acked
        });
        rx.recv_timeout(Duration::from_secs(60))
            .expect("the child opened the store");
        std::thread::sleep(Duration::from_millis(2 + pick.below(80)));
        child.kill().unwrap();
        child.wait().unwrap();
        let acked = reader.join().unwrap();
        total_acked += acked;

        // The child's sequence, from the state it started from.
        let mut rng = Rng(seed);
        let mut model = state.clone();
        for _ in 0..acked {
            apply_model(&mut model, &op(&mut rng));
        }
        let at_acked = model.clone();
        apply_model(&mut model, &op(&mut rng));
        let at_next = model;

        let got = contents(&dir, mode_of(iteration));
        assert!(
            got == at_acked || got == at_next,
            "iteration {iteration} ({:?}): after {acked} acknowledged operations the store \
             holds neither their state nor the next one's",
            mode_of(iteration)
        );
        state = got;
    }
    assert!(total_acked > 500, "only {total_acked} operations ran");
}
