//! `kekbit kv`: the commands on real store folders.
#![cfg_attr(miri, ignore)]

use std::process::{Command, Output};

use kekbit_kv::{Config, PersistentKeyValueStore};

fn kekbit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kekbit"))
        .args(args)
        .output()
        .expect("run kekbit")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn quiet() -> Config {
    Config {
        silent: true,
        snapshot_backups: 10,
        ..Config::default()
    }
}

#[test]
fn info_get_dump_prune_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let d = dir.to_str().unwrap();
    {
        let store: PersistentKeyValueStore<String, String> =
            PersistentKeyValueStore::new(&dir, quiet()).unwrap();
        for i in 0..3 {
            store.set(format!("k{i}"), format!("v{i}")).unwrap();
            store.snapshot().unwrap();
        }
        store.set("after", "").unwrap();
        // Refused beside a live store, with a clear message.
        let out = kekbit(&["kv", "prune", d, "--keep", "0"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr).contains("open in another instance"),
            "{}",
            text(&out.stderr)
        );
        let out = kekbit(&["kv", "info", d, "--json"]);
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["live"], true);
        assert_eq!(v["owner_pid"], std::process::id());
        assert_eq!(v["snapshots"].as_array().unwrap().len(), 3);
    }
    let out = kekbit(&["kv", "get", d, "k1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout, b"v1");
    let out = kekbit(&["kv", "get", d, "6166746572", "--hex"]);
    assert_eq!(out.stdout, b"");
    assert!(out.status.success());
    let out = kekbit(&["kv", "get", d, "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no such key"));
    let out = kekbit(&["kv", "dump", d]);
    assert_eq!(text(&out.stdout), "after\t\nk0\tv0\nk1\tv1\nk2\tv2\n");

    std::fs::write(dir.join("snapshot-00000000000000000099.kvs"), b"half").unwrap();
    std::fs::write(dir.join(".snapshot-00000000000000000100.kvs.tmp"), b"x").unwrap();
    let out = kekbit(&["kv", "info", d]);
    let t = text(&out.stdout);
    assert!(
        t.contains("state      closed") && t.contains("unlisted") && t.contains("temporary"),
        "{t}"
    );
    let out = kekbit(&["kv", "clean", d]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("3 snapshot(s) kept, 2 file(s) deleted"),
        "{}",
        text(&out.stdout)
    );
    let out = kekbit(&["kv", "prune", d, "--keep", "0"]);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("1 snapshot(s) kept, 2 file(s) deleted"),
        "{}",
        text(&out.stdout)
    );
    // The data survived both.
    let out = kekbit(&["kv", "dump", d]);
    assert_eq!(text(&out.stdout), "after\t\nk0\tv0\nk1\tv1\nk2\tv2\n");
    // Not a store.
    let out = kekbit(&["kv", "info", tmp.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not a kekbit-kv store"));
    let out = kekbit(&["kv", "prune", d]);
    assert_eq!(out.status.code(), Some(2));
}
