//! The store's API at its boundaries, and what survives a reopen.
#![cfg_attr(miri, ignore)]

use std::path::Path;

use kekbit_kv::{Config, Error, PersistentKeyValueStore, SyncMode, WriteBatch, admin};

type Store = PersistentKeyValueStore<String, Vec<u8>>;

fn quiet() -> Config {
    Config {
        silent: true,
        ..Config::default()
    }
}

fn open(dir: &Path, config: Config) -> Store {
    PersistentKeyValueStore::new(dir, config).unwrap()
}

#[test]
fn empty_values_stay_values_after_reopen() {
    // persistent-kv restores an empty value as a delete.
    let tmp = tempfile::tempdir().unwrap();
    for snapshot in [false, true] {
        let dir = tmp.path().join(format!("s{snapshot}"));
        let s = open(&dir, quiet());
        s.set("empty", vec![]).unwrap();
        s.set("", b"empty key".to_vec()).unwrap();
        if snapshot {
            s.snapshot().unwrap();
        }
        drop(s);
        let s = open(&dir, quiet());
        assert_eq!(s.get("empty"), Some(vec![]));
        assert!(s.contains_key("empty"));
        assert_eq!(s.get(""), Some(b"empty key".to_vec()));
        assert_eq!(s.len(), 2);
    }
}

#[test]
fn every_operation_survives_reopen_in_every_mode() {
    for mode in [
        SyncMode::BlockAndSync,
        SyncMode::BlockNoExplicitSync,
        SyncMode::Buffered,
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let config = Config {
            sync_mode: mode,
            ..quiet()
        };
        let s = open(tmp.path(), config.clone());
        s.set("a", b"1".to_vec()).unwrap();
        s.set("b", b"2".to_vec()).unwrap();
        s.set("gone", b"x".to_vec()).unwrap();
        assert_eq!(s.remove("gone").unwrap(), Some(b"x".to_vec()));
        assert_eq!(s.remove("gone").unwrap(), None);
        assert!(
            s.compare_and_swap("a", Some(&b"1"[..]), Some(&b"11"[..]))
                .unwrap()
        );
        assert!(
            !s.compare_and_swap("a", Some(&b"1"[..]), Some(&b"12"[..]))
                .unwrap()
        );
        assert!(s.compare_and_swap("c", None, Some(&b"3"[..])).unwrap());
        assert!(s.compare_and_swap("b", Some(&b"2"[..]), None).unwrap());
        let mut batch = WriteBatch::new();
        batch
            .set("d", b"4".to_vec())
            .unset("c")
            .set("d", b"44".to_vec());
        s.write_batch(&batch).unwrap();
        s.write_batch(&WriteBatch::new()).unwrap();
        let expected = |s: &Store| {
            let mut all: Vec<_> = s.iter().collect();
            all.sort();
            assert_eq!(
                all,
                vec![
                    ("a".to_string(), b"11".to_vec()),
                    ("d".to_string(), b"44".to_vec())
                ],
                "{mode:?}"
            );
        };
        expected(&s);
        drop(s);
        let s = open(tmp.path(), config.clone());
        expected(&s);
        s.clear().unwrap();
        assert!(s.is_empty());
        s.set("after", b"clear".to_vec()).unwrap();
        drop(s);
        let s = open(tmp.path(), config);
        assert_eq!(s.len(), 1);
        assert_eq!(s.get("after"), Some(b"clear".to_vec()));
    }
}

#[test]
fn a_second_live_instance_is_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let first = open(tmp.path(), quiet());
    let err = Store::new(tmp.path(), quiet()).unwrap_err();
    assert!(matches!(err, Error::Locked { pid: Some(p), .. } if p == std::process::id()));
    assert!(
        err.to_string().contains("open in another instance"),
        "{err}"
    );
    drop(first);
    let again = open(tmp.path(), quiet());
    drop(again);
}

#[test]
fn largest_values_and_too_large_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path(), quiet());
    // One SET record is 5 bytes + key + value; a journal record fills at
    // most a segment less 16 bytes of framing.
    let segment = Config::default().log_segment_bytes as usize;
    let largest = segment - 16 - 5 - "big".len();
    let big = vec![7u8; largest];
    s.set("big", big.clone()).unwrap();
    let err = s.set("big", vec![7u8; largest + 1]).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    let huge = vec![1u8; 64 * 1024 * 1024];
    let err = s.set("huge", huge).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    // A refused write changes nothing and does not stop the store.
    assert_eq!(s.get("huge"), None);
    assert_eq!(s.get_with("big", |b| b.len()), Some(largest));
    s.set("small", vec![1]).unwrap();
    s.snapshot().unwrap();
    drop(s);
    let s = open(tmp.path(), quiet());
    assert_eq!(s.get("big"), Some(big));
    assert_eq!(s.len(), 2);
}

#[test]
fn typed_keys_and_values() {
    let tmp = tempfile::tempdir().unwrap();
    let s: PersistentKeyValueStore<u128, bool> =
        PersistentKeyValueStore::new(tmp.path().join("a"), quiet()).unwrap();
    s.set(u128::MAX, true).unwrap();
    s.set(0u128, false).unwrap();
    assert_eq!(s.get(&u128::MAX), Some(true));
    let s: PersistentKeyValueStore<i8, i64> =
        PersistentKeyValueStore::new(tmp.path().join("b"), quiet()).unwrap();
    s.set(-1i8, i64::MIN).unwrap();
    assert_eq!(s.get(&-1), Some(i64::MIN));
    drop(s);
    // Reopened with the wrong value type: errors, not panics.
    let s: PersistentKeyValueStore<i8, u32> =
        PersistentKeyValueStore::new(tmp.path().join("b"), quiet()).unwrap();
    assert!(matches!(s.try_get(&-1), Err(Error::Decode(_))));
    assert_eq!(s.get(&-1), None);
    assert_eq!(s.iter().count(), 0);
    assert!(s.try_iter().next().unwrap().is_err());
    assert!(matches!(s.remove(&-1), Err(Error::Decode(_))));
    assert!(s.is_empty());
}

#[test]
fn snapshots_reclaim_the_log_and_old_snapshots() {
    let tmp = tempfile::tempdir().unwrap();
    let config = Config {
        log_segment_bytes: 64 * 1024,
        snapshot_interval: 0,
        ..quiet()
    };
    let s = open(tmp.path(), config.clone());
    let value = vec![5u8; 1000];
    for round in 0..5 {
        for i in 0..300 {
            s.set(format!("key{i}"), value.clone()).unwrap();
        }
        let info = s.snapshot().unwrap();
        assert_eq!(info.entries, 300);
        let stats = s.stats();
        assert_eq!(stats.last_snapshot, Some(info));
        // The log keeps the segment being written and at most two the
        // journal makes ready ahead, each with its header, and the lock.
        assert!(
            stats.log_bytes <= 4 * (64 * 1024 + 4096),
            "round {round}: {stats:?}"
        );
        let on_disk = admin::info(tmp.path()).unwrap();
        assert_eq!(on_disk.snapshot_files.len(), 1, "round {round}");
    }
    drop(s);
    let s = open(tmp.path(), config);
    assert_eq!(s.len(), 300);
}

#[test]
fn automatic_snapshots_follow_the_live_data() {
    let tmp = tempfile::tempdir().unwrap();
    let config = Config {
        log_segment_bytes: 256 * 1024,
        snapshot_interval: 100,
        min_compaction_bytes: 64 * 1024,
        ..quiet()
    };
    let s = open(tmp.path(), config.clone());
    let value = vec![1u8; 100];
    // 1000 keys rewritten 20 times: 20,000 modifications of ~116 KB of data.
    for _ in 0..20 {
        for i in 0..1000u32 {
            s.set(format!("{i:016}"), value.clone()).unwrap();
        }
    }
    // Let the background snapshot finish, then look at the disk.
    for _ in 0..200 {
        if s.stats().log_bytes_since_snapshot < 200 * 1024 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let stats = s.stats();
    assert!(stats.last_snapshot.is_some(), "{stats:?}");
    assert!(stats.last_snapshot_error.is_none(), "{stats:?}");
    let live = stats.bytes as u64;
    let info = admin::info(tmp.path()).unwrap();
    let snaps: u64 = info.snapshot_files.iter().map(|f| f.1).sum();
    // persistent-kv would hold ~2 full snapshots per 10,000 modifications;
    // here: one snapshot, plus the log since it (bounded by the policy).
    assert_eq!(info.snapshot_files.len(), 1);
    assert!(
        snaps + info.log_bytes < 4 * live + 600 * 1024,
        "{snaps} + {} for {live}",
        info.log_bytes
    );
    drop(s);
    assert_eq!(open(tmp.path(), config).len(), 1000);
}

#[test]
fn backups_are_kept_and_the_log_reaches_back_to_them() {
    let tmp = tempfile::tempdir().unwrap();
    let config = Config {
        snapshot_backups: 2,
        snapshot_interval: 0,
        ..quiet()
    };
    let s = open(tmp.path(), config.clone());
    for i in 0..4u8 {
        s.set(format!("k{i}"), vec![i]).unwrap();
        s.snapshot().unwrap();
    }
    drop(s);
    let info = admin::info(tmp.path()).unwrap();
    assert_eq!(info.manifest.as_ref().unwrap().snapshots.len(), 3);
    assert_eq!(info.snapshot_files.len(), 3);
    // Damage the newest: the store falls back to a backup and replays the
    // log from there, losing nothing.
    let newest = info.manifest.unwrap().snapshots[0].seq;
    let path = tmp.path().join(kekbit_kv::snapshot::snapshot_name(newest));
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    let s = open(tmp.path(), config);
    assert_eq!(s.len(), 4);
    assert_eq!(s.get("k3"), Some(vec![3]));
}

#[test]
fn stats_debug_and_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path(), quiet());
    s.set("foo", vec![0u8; 2048]).unwrap();
    assert_eq!(
        format!("{s:?}"),
        "PersistentKeyValueStore(1 elements, 2 KiB total size)"
    );
    let st = s.stats();
    assert_eq!((st.keys, st.bytes), (1, 2051));
    assert!(st.end_position > 0);
    let durable = s.sync().unwrap();
    assert_eq!(durable, s.stats().durable_position);
    assert_eq!(durable, s.stats().end_position);
    assert_eq!(s.path(), std::fs::canonicalize(tmp.path()).unwrap());
    s.close().unwrap();
}

#[test]
fn consuming_iteration_leaves_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path(), quiet());
    s.set("a", vec![1]).unwrap();
    let all: Vec<_> = s.into_iter().collect();
    assert_eq!(all, vec![("a".to_string(), vec![1])]);
    let s = open(tmp.path(), quiet());
    assert_eq!(s.get("a"), Some(vec![1]));
}
