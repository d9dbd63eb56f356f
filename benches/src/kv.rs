//! The key-value workload: kekbit-kv, persistent-kv 1.0.2, fjall and redb
//! doing the same loop (keys and values built inside it).
//!
//! Each system runs in a child process of its own (`compare __child kv
//! SYSTEM ...`), so its peak RSS is its own; the child prints one
//! `result NAME VALUE` line per figure.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{Res, fail};

/// The systems, as the child's argument names them.
pub const SYSTEMS: [&str; 4] = ["kekbit-kv", "persistent-kv", "fjall", "redb"];

/// The longest a set phase may run before it is cut short.
const SET_CAP: Duration = Duration::from_secs(60);

/// Key length and value length of the workload.
pub const KEY_LEN: usize = 16;
/// Value length.
pub const VALUE_LEN: usize = 100;

/// A store under test: set and get by bytes.
trait Kv: Send + Sync {
    fn set(&self, key: &[u8], value: &[u8]) -> Res<()>;
    /// The value's length, if present.
    fn get(&self, key: &[u8]) -> Res<Option<usize>>;
    /// Makes everything durable (outside the timed loops).
    fn finish(&self) -> Res<()>;
}

struct KekbitKv(kekbit_kv::PersistentKeyValueStore<Vec<u8>, Vec<u8>>);

impl Kv for KekbitKv {
    fn set(&self, key: &[u8], value: &[u8]) -> Res<()> {
        Ok(self.0.set(key.to_vec(), value.to_vec())?)
    }
    fn get(&self, key: &[u8]) -> Res<Option<usize>> {
        Ok(self.0.get(key).map(|v| v.len()))
    }
    fn finish(&self) -> Res<()> {
        self.0.sync()?;
        Ok(())
    }
}

struct PersistentKv(persistent_kv::PersistentKeyValueStore<Vec<u8>, Vec<u8>>);

impl Kv for PersistentKv {
    fn set(&self, key: &[u8], value: &[u8]) -> Res<()> {
        self.0.set(key.to_vec(), value.to_vec())
    }
    fn get(&self, key: &[u8]) -> Res<Option<usize>> {
        // persistent-kv looks up by `[u8]` only through `Vec<u8>`.
        Ok(self.0.get(&key.to_vec()).map(|v| v.len()))
    }
    fn finish(&self) -> Res<()> {
        Ok(())
    }
}

struct Fjall {
    keyspace: fjall::Keyspace,
    items: fjall::PartitionHandle,
    sync: bool,
}

impl Kv for Fjall {
    fn set(&self, key: &[u8], value: &[u8]) -> Res<()> {
        self.items.insert(key.to_vec(), value.to_vec())?;
        if self.sync {
            self.keyspace.persist(fjall::PersistMode::SyncData)?;
        }
        Ok(())
    }
    fn get(&self, key: &[u8]) -> Res<Option<usize>> {
        Ok(self.items.get(key)?.map(|v| v.len()))
    }
    fn finish(&self) -> Res<()> {
        Ok(self.keyspace.persist(fjall::PersistMode::SyncAll)?)
    }
}

const REDB_TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("kv");

struct Redb {
    db: redb::Database,
    durability: redb::Durability,
    commits: std::sync::atomic::AtomicU64,
}

/// redb frees the pages of `Durability::None` commits only at a durable
/// commit ("exclusively using this durability level will result in rapid
/// growth of the database file", its docs say), so the default rows make
/// every this-many-th commit `Immediate`.
const REDB_DURABLE_EVERY: u64 = 1000;

impl Kv for Redb {
    fn set(&self, key: &[u8], value: &[u8]) -> Res<()> {
        let (key, value) = (key.to_vec(), value.to_vec());
        let mut tx = self.db.begin_write()?;
        let n = self.commits.fetch_add(1, Ordering::Relaxed) + 1;
        tx.set_durability(if n.is_multiple_of(REDB_DURABLE_EVERY) {
            redb::Durability::Immediate
        } else {
            self.durability
        });
        {
            let mut table = tx.open_table(REDB_TABLE)?;
            table.insert(key.as_slice(), value.as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }
    fn get(&self, key: &[u8]) -> Res<Option<usize>> {
        let tx = self.db.begin_read()?;
        let table = match tx.open_table(REDB_TABLE) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(table.get(key)?.map(|v| v.value().len()))
    }
    fn finish(&self) -> Res<()> {
        // A durable commit: redb frees the pages of non-durable commits
        // only then, and makes them durable.
        let mut tx = self.db.begin_write()?;
        tx.set_durability(redb::Durability::Immediate);
        tx.open_table(REDB_TABLE)?;
        tx.commit()?;
        Ok(())
    }
}

fn open(system: &str, dir: &Path, sync: bool) -> Res<Box<dyn Kv>> {
    Ok(match system {
        "kekbit-kv" => {
            let config = kekbit_kv::Config {
                silent: true,
                sync_mode: if sync {
                    kekbit_kv::SyncMode::BlockAndSync
                } else {
                    kekbit_kv::SyncMode::BlockNoExplicitSync
                },
                ..kekbit_kv::Config::default()
            };
            Box::new(KekbitKv(kekbit_kv::PersistentKeyValueStore::new(
                dir, config,
            )?))
        }
        "persistent-kv" => {
            let config = persistent_kv::Config {
                silent: true,
                sync_mode: if sync {
                    persistent_kv::SyncMode::BlockAndSync
                } else {
                    persistent_kv::SyncMode::BlockNoExplicitSync
                },
                ..persistent_kv::Config::default()
            };
            Box::new(PersistentKv(persistent_kv::PersistentKeyValueStore::new(
                dir, config,
            )?))
        }
        "fjall" => {
            // Its README's setup: one keyspace, one partition, defaults
            // (writes reach the OS, no fsync, like ours); `persist` after
            // each write for the sync rows.
            let keyspace = fjall::Config::new(dir).open()?;
            let items =
                keyspace.open_partition("items", fjall::PartitionCreateOptions::default())?;
            Box::new(Fjall {
                keyspace,
                items,
                sync,
            })
        }
        "redb" => {
            std::fs::create_dir_all(dir)?;
            Box::new(Redb {
                db: redb::Database::create(dir.join("db.redb"))?,
                durability: if sync {
                    redb::Durability::Immediate
                } else {
                    redb::Durability::None
                },
                commits: AtomicU64::new(0),
            })
        }
        other => return Err(fail(format!("unknown kv system {other}"))),
    })
}

/// The key of index `i`: 16 ASCII digits.
fn key(i: u64, out: &mut [u8; KEY_LEN]) {
    let mut n = i;
    for b in out.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// The value of index `i` in round `round`.
fn value(i: u64, round: u8, out: &mut [u8; VALUE_LEN]) {
    out.fill(round);
    out[..8].copy_from_slice(&i.to_le_bytes());
}

/// A fixed permutation of `0..n` for lookups (odd multiplier mod 2^64,
/// reduced into range), so gets do not walk keys in insertion order.
fn scatter(i: u64, n: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % n
}

fn timed_threads(threads: u64, n: u64, f: impl Fn(u64, u64) -> Res<()> + Sync) -> Res<f64> {
    let start = Instant::now();
    std::thread::scope(|s| -> Res<()> {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let f = &f;
                let (from, to) = (n * t / threads, n * (t + 1) / threads);
                s.spawn(move || f(from, to))
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| fail("a worker panicked"))??;
        }
        Ok(())
    })?;
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

fn disk_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                total += disk_bytes(&e.path());
            } else {
                total += m.blocks() * 512;
            }
        }
    }
    total
}

/// Peak resident set (VmHWM) of this process, in bytes: heap plus every
/// mapped page it touched, the journal's included.
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// With `KEKBIT_BENCH_MEMORY` set, prints where the resident set is.
fn memory_note(phase: &str) {
    if std::env::var_os("KEKBIT_BENCH_MEMORY").is_none() {
        return;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let keep: Vec<&str> = status
        .lines()
        .filter(|l| {
            l.starts_with("VmRSS")
                || l.starts_with("RssAnon")
                || l.starts_with("RssFile")
                || l.starts_with("VmHWM")
        })
        .collect();
    eprintln!(
        "{phase}: {}",
        keep.join(" ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    );
}

fn result(name: &str, value: f64) {
    println!("result {name} {value}");
}

/// The child's default-mode run: load `n` keys with one thread, overwrite
/// them with two, get them all with one and with two, close; report the
/// peak RSS and the disk.
pub fn child_default(system: &str, dir: &Path, n: u64) -> Res<()> {
    let store = open(system, dir, false)?;
    // A system too slow to load every key within the cap (redb, one write
    // transaction per set) is measured on the keys it loaded by then.
    let deadline = Instant::now() + SET_CAP;
    let loaded = AtomicU64::new(0);
    let start = Instant::now();
    timed_threads(1, n, |from, to| {
        let (mut k, mut v) = ([0u8; KEY_LEN], [0u8; VALUE_LEN]);
        for i in from..to {
            if i.is_multiple_of(1024) && Instant::now() > deadline {
                break;
            }
            key(i, &mut k);
            value(i, 1, &mut v);
            store.set(&k, &v)?;
            loaded.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    })?;
    let n = loaded.load(Ordering::Relaxed).max(1);
    result("set1", n as f64 / start.elapsed().as_secs_f64());
    memory_note("after set1");
    let deadline2 = Instant::now() + SET_CAP;
    let overwritten = AtomicU64::new(0);
    let start = Instant::now();
    timed_threads(2, n, |from, to| {
        let (mut k, mut v) = ([0u8; KEY_LEN], [0u8; VALUE_LEN]);
        for i in from..to {
            if i.is_multiple_of(1024) && Instant::now() > deadline2 {
                break;
            }
            key(i, &mut k);
            value(i, 2, &mut v);
            store.set(&k, &v)?;
            overwritten.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    })?;
    result(
        "set2",
        overwritten.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64(),
    );
    memory_note("after set2");
    let get = |from: u64, to: u64| -> Res<()> {
        let mut k = [0u8; KEY_LEN];
        for i in from..to {
            key(scatter(i, n), &mut k);
            if store.get(&k)? != Some(VALUE_LEN) {
                return Err(fail(format!("{system}: key {i} lost")));
            }
        }
        Ok(())
    };
    result("get1", timed_threads(1, n, get)?);
    result("get2", timed_threads(2, n, get)?);
    store.finish()?;
    drop(store);
    memory_note("after close");
    result("peak_rss", peak_rss() as f64);
    result("disk", disk_bytes(dir) as f64);
    Ok(())
}

/// The child's reopen: a fresh process opens the store the run left (its
/// files in the page cache) and checks the last key.
pub fn child_reopen(system: &str, dir: &Path, n: u64) -> Res<()> {
    let start = Instant::now();
    let store = open(system, dir, false)?;
    let reopen = start.elapsed();
    let mut k = [0u8; KEY_LEN];
    key(0, &mut k);
    if store.get(&k)? != Some(VALUE_LEN) {
        return Err(fail(format!("{system}: the first key did not survive")));
    }
    let _ = n;
    result("reopen_ns", reopen.as_nanos() as f64);
    memory_note("after reopen");
    drop(store);
    Ok(())
}

/// The child's durable run: `threads` threads set fresh keys for `time`
/// under each system's "durable before it returns" mode.
pub fn child_sync(system: &str, dir: &Path, threads: u64, time: Duration) -> Res<()> {
    let store = open(system, dir, true)?;
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| -> Res<()> {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (store, stop, done) = (&store, &stop, &done);
                s.spawn(move || -> Res<()> {
                    let (mut k, mut v) = ([0u8; KEY_LEN], [0u8; VALUE_LEN]);
                    let mut i = t << 40;
                    while !stop.load(Ordering::Relaxed) {
                        key(i, &mut k);
                        value(i, 1, &mut v);
                        store.set(&k, &v)?;
                        done.fetch_add(1, Ordering::Relaxed);
                        i += 1;
                    }
                    Ok(())
                })
            })
            .collect();
        std::thread::sleep(time);
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.join().map_err(|_| fail("a worker panicked"))??;
        }
        Ok(())
    })?;
    let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    result("sync_set", rate);
    Ok(())
}

/// Runs a child and collects its `result` lines.
pub fn run_child(exe: &Path, args: &[String]) -> Res<Vec<(String, f64)>> {
    let out = std::process::Command::new(exe)
        .arg("__child")
        .arg("kv")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(fail(format!(
            "kv child {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let mut results = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(rest) = line.strip_prefix("result ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(v)) = (parts.next(), parts.next()) {
                results.push((name.to_string(), v.parse().map_err(|_| fail("bad result"))?));
            }
        }
    }
    Ok(results)
}
