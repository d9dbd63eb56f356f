//! Four threads mixing sets, unsets, CAS, batches and reads, checked
//! against what a sequential history allows:
//! - no lost update: counters incremented by CAS loops end at the number of
//!   successful CAS calls;
//! - no half batch: a batch writes the same token to a pair of keys, and a
//!   reader that reads the pair at one instant (`get_many`) never sees two
//!   different tokens, nor one key without the other;
//! - no value that was never set: every value read is a token some thread
//!   wrote (tokens name their thread and sequence number);
//! - the log holds the same history as memory: after the run, the state
//!   rebuilt from the files alone equals the state in memory, and a reopen
//!   gives it again. Snapshots run all along (in the background and asked
//!   for by a thread), so this also checks that a snapshot taken while
//!   writers run, plus the log after it, is the same state.
#![cfg_attr(miri, ignore)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kekbit_kv::{Config, PersistentKeyValueStore, SyncMode, WriteBatch, admin};

type Store = PersistentKeyValueStore<String, String>;

const THREADS: u64 = 4;
const COUNTERS: u64 = 4;
const PAIRS: u64 = 8;
const FREE_KEYS: u64 = 32;

fn token(thread: u64, seq: u64) -> String {
    format!("t{thread}:{seq}")
}

fn parse_token(v: &str) -> Option<(u64, u64)> {
    let (t, s) = v.strip_prefix('t')?.split_once(':')?;
    Some((t.parse().ok()?, s.parse().ok()?))
}

fn run(mode: SyncMode, ops_per_thread: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let config = Config {
        silent: true,
        sync_mode: mode,
        snapshot_interval: 200,
        min_compaction_bytes: 8 * 1024,
        log_segment_bytes: 64 * 1024,
        ..Config::default()
    };
    let store: Arc<Store> =
        Arc::new(PersistentKeyValueStore::new(tmp.path(), config.clone()).unwrap());
    for c in 0..COUNTERS {
        store.set(format!("counter{c}"), "0").unwrap();
    }
    let increments = Arc::new(AtomicU64::new(0));
    let highest: Arc<Vec<AtomicU64>> = Arc::new((0..THREADS).map(|_| AtomicU64::new(0)).collect());
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = store.clone();
            let increments = increments.clone();
            let highest = highest.clone();
            std::thread::spawn(move || {
                let mut rng = t * 7919 + 1;
                let mut next = || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                for seq in 1..=ops_per_thread {
                    highest[t as usize].store(seq, Ordering::Release);
                    let value = token(t, seq);
                    match next() % 10 {
                        0 | 1 => {
                            store
                                .set(format!("free{}", next() % FREE_KEYS), value)
                                .unwrap();
                        }
                        2 => store.unset(&format!("free{}", next() % FREE_KEYS)).unwrap(),
                        3 | 4 => {
                            // A CAS loop: increment a counter.
                            let key = format!("counter{}", next() % COUNTERS);
                            loop {
                                let old = store.get(&key).unwrap();
                                let new = (old.parse::<u64>().unwrap() + 1).to_string();
                                if store
                                    .compare_and_swap(
                                        key.clone(),
                                        Some(old.as_str()),
                                        Some(new.as_str()),
                                    )
                                    .unwrap()
                                {
                                    increments.fetch_add(1, Ordering::Relaxed);
                                    break;
                                }
                            }
                        }
                        5 | 6 => {
                            let p = next() % PAIRS;
                            let mut batch = WriteBatch::new();
                            if next() % 4 == 0 {
                                batch.unset(&format!("a{p}")).unset(&format!("b{p}"));
                            } else {
                                batch
                                    .set(format!("a{p}"), value.clone())
                                    .set(format!("b{p}"), value);
                            }
                            store.write_batch(&batch).unwrap();
                        }
                        7 if seq % 97 == 0 && t == 0 => {
                            store.snapshot().unwrap();
                        }
                        _ => {
                            let p = next() % PAIRS;
                            let (a, b) = (format!("a{p}"), format!("b{p}"));
                            let got = store.get_many(&[a.as_str(), b.as_str()]);
                            assert_eq!(got[0], got[1], "half a batch seen");
                            if let Some(v) = &got[0] {
                                let (wt, ws) = parse_token(v).expect("a value never written");
                                assert!(
                                    wt < THREADS
                                        && ws <= highest[wt as usize].load(Ordering::Acquire)
                                );
                            }
                            let f = store.get(&format!("free{}", next() % FREE_KEYS));
                            if let Some(v) = f {
                                let (wt, ws) = parse_token(&v).expect("a value never written");
                                assert!(
                                    wt < THREADS
                                        && ws <= highest[wt as usize].load(Ordering::Acquire)
                                );
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let total: u64 = (0..COUNTERS)
        .map(|c| {
            store
                .get(&format!("counter{c}"))
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(total, increments.load(Ordering::Relaxed), "lost updates");
    let memory: HashMap<String, String> = store.iter().collect();
    let files: HashMap<String, String> = admin::contents(tmp.path())
        .unwrap()
        .into_iter()
        .map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()))
        .collect();
    assert_eq!(memory, files, "the files hold another history than memory");
    let stats = store.stats();
    assert!(stats.last_snapshot.is_some(), "{stats:?}");
    assert_eq!(stats.last_snapshot_error, None);
    drop(store);
    let store: Store = PersistentKeyValueStore::new(tmp.path(), config).unwrap();
    let reopened: HashMap<String, String> = store.iter().collect();
    assert_eq!(memory, reopened);
}

#[test]
fn four_threads_default_mode() {
    run(SyncMode::BlockNoExplicitSync, 20_000);
}

#[test]
fn four_threads_block_and_sync() {
    run(SyncMode::BlockAndSync, 1000);
}
