//! Power loss, simulated on copies of a store's folder, and bad input.
//!
//! A power loss keeps what was synced and an arbitrary part of the rest;
//! the kernel writes pages back in any order, so the log's tail may be cut
//! short or hold zeroes, and a snapshot being written may be missing or
//! half there. Open must then recover to a prefix of the operations. A
//! damaged file that should have been durable gives a clear error, or
//! recovery from an older complete snapshot.
#![cfg_attr(miri, ignore)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use kekbit_kv::{Config, Error, PersistentKeyValueStore, SyncMode, snapshot};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
type Store = PersistentKeyValueStore<Vec<u8>, Vec<u8>>;

fn config() -> Config {
    Config {
        silent: true,
        snapshot_interval: 0,
        log_segment_bytes: 16 * 1024,
        ..Config::default()
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Bytes before a segment's record area (the kekbit channel header).
const SEGMENT_HEADER: u64 = 192;

/// The journal position of a segment file's first record byte.
fn segment_base(path: &Path) -> u64 {
    kekbit_std::journal::parse_segment_file_name(&path.file_name().unwrap().to_string_lossy())
        .unwrap()
}

/// The journal's segment files, sorted by name (so by base).
fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = fs::read_dir(dir.join("journal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            kekbit_std::journal::parse_segment_file_name(&p.file_name().unwrap().to_string_lossy())
                .is_some()
        })
        .collect();
    files.sort();
    files
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

#[test]
fn power_loss_on_copies_recovers_a_prefix() {
    for mode in [SyncMode::BlockAndSync, SyncMode::BlockNoExplicitSync] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("store");
        let cfg = Config {
            sync_mode: mode,
            ..config()
        };
        let store: Store = PersistentKeyValueStore::new(&dir, cfg.clone()).unwrap();
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let mut states = vec![Model::new()];
        let mut model = Model::new();
        let mut copies = Vec::new();
        for i in 0..400u64 {
            let k = format!("k{}", rng.below(40)).into_bytes();
            if rng.below(4) == 0 {
                store.unset(&k).unwrap();
                model.remove(&k);
            } else {
                let v = vec![(i % 251) as u8; rng.below(300) as usize];
                store.set(k.clone(), v.clone()).unwrap();
                model.insert(k, v);
            }
            states.push(model.clone());
            if rng.below(60) == 0 {
                store.snapshot().unwrap();
            }
            if rng.below(20) == 0 {
                let copy = tmp.path().join(format!("copy{i}"));
                copy_dir(&dir, &copy);
                copies.push((copy, states.len() - 1));
            }
        }
        drop(store);
        assert!(copies.len() > 10);
        for (n, (copy, ops)) in copies.iter().enumerate() {
            // Damage the copy as a power loss may: the journal's segment
            // files are pre-allocated, so what a power loss takes from the
            // log reads back as zeroes, after the point the newest snapshot
            // synced (a snapshot is published only once the log it builds on
            // is durable).
            let logs = log_files(copy);
            let last = logs.last().unwrap();
            let base = segment_base(last);
            let synced = kekbit_kv::Manifest::read(copy)
                .unwrap()
                .and_then(|m| m.snapshots.first().map(|s| s.log_position))
                .unwrap_or(0);
            let len = fs::metadata(last).unwrap().len();
            let from = SEGMENT_HEADER + synced.saturating_sub(base);
            let mut cut = from + rng.below(len.saturating_sub(from) + 1);
            if n % 3 == 1 {
                // Whole pages, as writeback loses them.
                cut = cut.next_multiple_of(4096).max(from);
            }
            if n % 3 != 2 && cut < len {
                let mut bytes = fs::read(last).unwrap();
                for b in &mut bytes[cut as usize..] {
                    *b = 0;
                }
                fs::write(last, bytes).unwrap();
            }
            if n % 3 == 2 {
                // A snapshot interrupted before it was published: a
                // half-written temporary and a renamed but unlisted file.
                let info = kekbit_kv::admin::info(copy).unwrap();
                let next = info.snapshot_files.iter().map(|f| f.0).max().unwrap_or(0) + 1;
                fs::write(
                    copy.join(format!(".{}.tmp", snapshot::snapshot_name(next))),
                    b"KKVSNAP",
                )
                .unwrap();
                fs::write(copy.join(snapshot::snapshot_name(next + 1)), vec![0u8; 100]).unwrap();
            }
            let store: Store = PersistentKeyValueStore::new(copy, cfg.clone())
                .unwrap_or_else(|e| panic!("{mode:?} copy {n}: {e}"));
            let got: Model = store.iter().collect();
            assert!(
                states[..=*ops].contains(&got),
                "{mode:?} copy {n}: not the state of any prefix of the first {ops} operations"
            );
            if n % 3 == 2 {
                assert_eq!(&got, &states[*ops], "nothing of the log was damaged");
            }
        }
    }
}

fn store_with_snapshot(dir: &Path, backups: usize) -> Model {
    let cfg = Config {
        snapshot_backups: backups,
        ..config()
    };
    let store: Store = PersistentKeyValueStore::new(dir, cfg).unwrap();
    let mut model = Model::new();
    for round in 0..=backups as u8 {
        for i in 0..50u8 {
            store.set(vec![i], vec![round; 20]).unwrap();
            model.insert(vec![i], vec![round; 20]);
        }
        store.snapshot().unwrap();
    }
    store.set(b"tail".to_vec(), b"after".to_vec()).unwrap();
    model.insert(b"tail".to_vec(), b"after".to_vec());
    model
}

fn newest_snapshot(dir: &Path) -> PathBuf {
    let m = kekbit_kv::Manifest::read(dir).unwrap().unwrap();
    dir.join(snapshot::snapshot_name(m.snapshots[0].seq))
}

fn reopen(dir: &Path) -> Result<Model, Error> {
    let store: Store = PersistentKeyValueStore::new(dir, config())?;
    Ok(store.iter().collect())
}

#[test]
fn garbage_files_are_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let model = store_with_snapshot(tmp.path(), 0);
    fs::write(tmp.path().join("notes.txt"), b"garbage").unwrap();
    fs::write(tmp.path().join("snapshot-1.kvs"), b"garbage").unwrap();
    fs::write(tmp.path().join(".partial.tmp"), b"garbage").unwrap();
    fs::create_dir(tmp.path().join("subdir")).unwrap();
    fs::write(tmp.path().join("journal").join("junk"), b"garbage").unwrap();
    assert_eq!(reopen(tmp.path()).unwrap(), model);
    // The stale temporary was removed by the open; the rest is left alone.
    assert!(!tmp.path().join(".partial.tmp").exists());
    assert!(tmp.path().join("notes.txt").exists());
}

#[test]
fn a_garbage_manifest_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    store_with_snapshot(tmp.path(), 0);
    for garbage in [&b""[..], b"KKVMANI", &[0xAB; 200]] {
        fs::write(tmp.path().join("MANIFEST"), garbage).unwrap();
        let err = reopen(tmp.path()).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("MANIFEST"), "{err}");
    }
}

#[test]
fn a_manifest_naming_a_missing_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    store_with_snapshot(tmp.path(), 0);
    let newest = newest_snapshot(tmp.path());
    fs::remove_file(&newest).unwrap();
    let err = reopen(tmp.path()).unwrap_err();
    assert!(matches!(err, Error::Unrecoverable { .. }), "{err}");
    let name = newest.file_name().unwrap().to_string_lossy().into_owned();
    assert!(err.to_string().contains(&name), "{err}");

    // With a backup, the store recovers from it (the log reaches back).
    let tmp = tempfile::tempdir().unwrap();
    let model = store_with_snapshot(tmp.path(), 1);
    fs::remove_file(newest_snapshot(tmp.path())).unwrap();
    assert_eq!(reopen(tmp.path()).unwrap(), model);
}

#[test]
fn a_flipped_byte_in_a_snapshot() {
    for at in [0usize, 9, 20, 40, 200, 1000] {
        let tmp = tempfile::tempdir().unwrap();
        store_with_snapshot(tmp.path(), 0);
        let path = newest_snapshot(tmp.path());
        let mut bytes = fs::read(&path).unwrap();
        let at = at.min(bytes.len() - 1);
        bytes[at] ^= 0x08;
        fs::write(&path, bytes).unwrap();
        let err = reopen(tmp.path()).unwrap_err();
        assert!(matches!(err, Error::Unrecoverable { .. }), "{err}");
        assert!(err.to_string().contains("corrupt"), "{err}");

        let tmp = tempfile::tempdir().unwrap();
        let model = store_with_snapshot(tmp.path(), 2);
        let path = newest_snapshot(tmp.path());
        let mut bytes = fs::read(&path).unwrap();
        let at = at.min(bytes.len() - 1);
        bytes[at] ^= 0x08;
        fs::write(&path, bytes).unwrap();
        assert_eq!(reopen(tmp.path()).unwrap(), model, "flip at {at}");
    }
}

#[test]
fn snapshots_without_a_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    store_with_snapshot(tmp.path(), 0);
    fs::remove_file(tmp.path().join("MANIFEST")).unwrap();
    let err = reopen(tmp.path()).unwrap_err();
    assert!(matches!(err, Error::Unrecoverable { .. }), "{err}");
    assert!(err.to_string().contains("no MANIFEST"), "{err}");
}

#[test]
fn damaged_log_bytes_never_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let model = store_with_snapshot(tmp.path(), 0);
    let clean = tmp.path().join("clean");
    fs::create_dir(&clean).unwrap();
    let mut rng = Rng(99);
    let work = tempfile::tempdir().unwrap();
    for n in 0..40 {
        let copy = work.path().join(format!("c{n}"));
        copy_dir(tmp.path(), &copy);
        let logs = log_files(&copy);
        let file = &logs[rng.below(logs.len() as u64) as usize];
        let mut bytes = fs::read(file).unwrap();
        if bytes.is_empty() {
            continue;
        }
        let at = rng.below(bytes.len() as u64) as usize;
        bytes[at] ^= 1 << rng.below(8);
        fs::write(file, bytes).unwrap();
        // An error, or a state no newer than the model: never a panic, and
        // never a value that was not written.
        if let Ok(got) = reopen(&copy) {
            for (k, v) in &got {
                assert_eq!(model.get(k), Some(v), "copy {n}");
            }
        }
    }
}
