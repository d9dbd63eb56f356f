//! persistent-kv 1.0.2's README and doc examples, with only the crate name
//! changed (and their `/tmp/...` and `tmp/...` paths moved into a fresh
//! temporary folder so runs do not meet each other). The protobuf ones need
//! the `prost` feature, as `set_proto` does: `.ci/doctests.sh` runs them
//! (`cargo test -p kekbit-kv --all-features`).
#![cfg_attr(miri, ignore)]

use kekbit_kv::{Config, PersistentKeyValueStore, Result};
#[cfg(feature = "prost")]
use prost::Message;

fn fresh(name: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name).to_str().unwrap().to_string();
    (dir, path)
}

/// README, "Basic usage" (its last line, an expression, becomes an assert).
#[test]
fn readme_basic_usage() -> Result<()> {
    let (_tmp, root) = fresh("tmp");
    let path = format!("{root}/mystore");
    let path = path.as_str();

    // Create a new store and write one key value pair to it, then drop the store.
    let store: PersistentKeyValueStore<String, String> =
        PersistentKeyValueStore::new(path, Config::default())?;
    store.set("foo", "is here to stay")?;
    drop(store);

    // Create a fresh store instance and observe the key is still there.
    let store: PersistentKeyValueStore<String, String> =
        PersistentKeyValueStore::new(path, Config::default())?;
    assert_eq!(store.get("foo"), Some("is here to stay".to_string()));
    Ok(())
}

#[cfg(feature = "prost")]
#[derive(Clone, PartialEq, Message)]
pub struct Foo {
    #[prost(uint32, tag = "1")]
    pub bar: u32,
}

/// README, "Protobufs as value", as a `main` returning `Result<()>` with
/// `?` on `get_proto`.
#[cfg(feature = "prost")]
#[test]
fn readme_protobufs_as_value() {
    fn main() -> Result<()> {
        let (_tmp, path) = fresh("mystore");
        let store: PersistentKeyValueStore<String, Foo> =
            PersistentKeyValueStore::new(path, Config::default())?;
        store.set_proto("foo", Foo { bar: 42 })?;
        assert_eq!(store.get_proto("foo")?, Some(Foo { bar: 42 }));
        Ok(())
    }
    main().unwrap();
}

/// Doc example of `new`.
#[test]
fn doc_new() {
    fn main() -> kekbit_kv::Result<()> {
        let (_tmp, path) = fresh("mystore1");
        let path = path.as_str();
        let store: PersistentKeyValueStore<String, String> =
            PersistentKeyValueStore::new(path, Config::default())?;
        store.set("foo", "1")?;
        // Drop the first store instance to ensure no two instances are alive.
        drop(store);
        // Second instance constructed from same path recovers the data.
        let store: PersistentKeyValueStore<String, String> =
            PersistentKeyValueStore::new(path, Config::default())?;
        assert_eq!(store.get("foo"), Some("1".to_string()));
        Ok(())
    }
    main().unwrap();
}

/// Doc example of `unset`.
#[test]
fn doc_unset() {
    fn main() -> kekbit_kv::Result<()> {
        let (_tmp, path) = fresh("mystore2");
        let store: PersistentKeyValueStore<String, String> =
            PersistentKeyValueStore::new(path, Config::default())?;
        store.set("foo", "1")?;
        assert_eq!(store.get("foo"), Some("1".to_string()));
        store.unset("foo")?;
        assert_eq!(store.get("foo"), None);
        Ok(())
    }
    main().unwrap();
}

/// Doc examples of `set` and `get` (identical there).
#[test]
fn doc_set_get() {
    fn main() -> kekbit_kv::Result<()> {
        let (_tmp, path) = fresh("mystore3");
        let store: PersistentKeyValueStore<String, String> =
            PersistentKeyValueStore::new(path, Config::default())?;
        store.set("foo", "1")?;
        assert_eq!(store.get("foo"), Some("1".to_string()));
        Ok(())
    }
    main().unwrap();
}

/// Doc examples of `set_proto` and `get_proto`.
#[cfg(feature = "prost")]
#[test]
fn doc_set_get_proto() {
    fn main() -> kekbit_kv::Result<()> {
        let (_tmp, path) = fresh("mystore5");
        let store: PersistentKeyValueStore<String, Foo> =
            PersistentKeyValueStore::new(path, Config::default())?;
        store.set_proto("foo", Foo { bar: 42 })?;
        assert_eq!(store.get_proto("foo")?, Some(Foo { bar: 42 }));
        Ok(())
    }
    main().unwrap();
}

/// persistent-kv's own unit tests of its public API.
#[test]
fn their_api_tests() {
    let tmp = tempfile::TempDir::new().unwrap();
    let store: PersistentKeyValueStore<u64, u64> =
        PersistentKeyValueStore::new(tmp.path().join("a"), Config::default()).unwrap();
    store.set(35293853295u64, 1139131311u64).unwrap();
    assert_eq!(store.get(&35293853295u64), Some(1139131311u64));
    store.unset(&35293853295u64).unwrap();
    assert_eq!(store.get(&35293853295u64), None);

    let store: PersistentKeyValueStore<i32, i32> =
        PersistentKeyValueStore::new(tmp.path().join("b"), Config::default()).unwrap();
    store.set(352938539, 113913131).unwrap();
    assert_eq!(store.get(&352938539), Some(113913131));

    let store: PersistentKeyValueStore<String, String> =
        PersistentKeyValueStore::new(tmp.path().join("c"), Config::default()).unwrap();
    store.set("foo", "1".repeat(2048)).unwrap();
    assert_eq!(
        format!("{store:?}"),
        "PersistentKeyValueStore(1 elements, 2 KiB total size)"
    );
    store.set("bar", "2").unwrap();
    let mut all: Vec<(String, String)> = store.iter().collect();
    all.sort();
    assert_eq!(all[0], ("bar".to_string(), "2".to_string()));
    let mut by_ref: Vec<(String, String)> = (&store).into_iter().collect();
    by_ref.sort();
    assert_eq!(all, by_ref);
    let mut owned: Vec<(String, String)> = store.into_iter().collect();
    owned.sort();
    assert_eq!(all, owned);
    // into_iter() consumes the store instance but not the on-disk data.
    let store: PersistentKeyValueStore<String, String> =
        PersistentKeyValueStore::new(tmp.path().join("c"), Config::default()).unwrap();
    assert_eq!(store.get("bar"), Some("2".to_string()));

    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PersistentKeyValueStore<u32, u32>>();
    // Every Config field of persistent-kv, set by name.
    let _ = Config {
        silent: true,
        snapshot_interval: 1,
        memory_bucket_count: 1,
        sync_mode: kekbit_kv::SyncMode::Buffered,
        target_io_parallelism_snapshots: 1,
        target_io_parallelism_writelog: 1,
        target_snapshot_shard_size_bytes: 1,
        use_positioned_writes: false,
        ..Config::default()
    };
}
