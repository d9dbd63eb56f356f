//! Keeps the kekbit-kv part of `docs/FORMAT.md` and the code in agreement.
#![cfg_attr(miri, ignore)]

use kekbit_kv::{Config, PersistentKeyValueStore, WriteBatch, snapshot::snapshot_name};

fn section() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/FORMAT.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let at = doc.find("# kekbit-kv files").expect("the kekbit-kv part");
    let part = &doc[at..];
    // Up to the next part of the document, if any.
    let end = part[1..].find("\n# ").map_or(part.len(), |i| i + 2);
    part[..end].to_string()
}

/// Rows `| decimal offset | size | name | ... |`.
fn rows(doc: &str) -> Vec<(usize, String, String)> {
    doc.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let offset = cells.get(1)?.parse().ok()?;
            Some((offset, cells.get(2)?.to_string(), cells.get(3)?.to_string()))
        })
        .filter(|(_, size, _)| size.parse::<usize>().is_ok() || size == "…")
        .collect()
}

#[test]
fn snapshot_and_manifest_tables_match_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let config = Config {
        silent: true,
        snapshot_interval: 0,
        ..Config::default()
    };
    let store: PersistentKeyValueStore<String, String> =
        PersistentKeyValueStore::new(tmp.path(), config).unwrap();
    store.set("k", "value").unwrap();
    let info = store.snapshot().unwrap();
    drop(store);
    let snap = std::fs::read(tmp.path().join(snapshot_name(info.seq))).unwrap();
    let man = std::fs::read(tmp.path().join("MANIFEST")).unwrap();
    let doc = section();
    let rows = rows(&doc);
    let field = |name: &str| -> (usize, usize) {
        let (o, s, _) = rows
            .iter()
            .find(|r| r.2 == name)
            .unwrap_or_else(|| panic!("no row {name}"));
        (*o, s.parse().unwrap_or(0))
    };
    let u32_at = |b: &[u8], (o, s): (usize, usize)| {
        assert_eq!(s, 4);
        u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
    };
    let u64_at = |b: &[u8], (o, s): (usize, usize)| {
        assert_eq!(s, 8);
        u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
    };
    assert_eq!(&snap[..8], b"KKVSNAP\x01");
    assert_eq!(field("snap_magic"), (0, 8));
    assert_eq!(u32_at(&snap, field("snap_version")), 1);
    assert_eq!(u32_at(&snap, field("snap_flags")), 0);
    assert_eq!(u64_at(&snap, field("snap_seq")), info.seq);
    assert_eq!(u64_at(&snap, field("snap_log_position")), info.log_position);
    let (entries_at, _) = field("entries");
    assert_eq!(entries_at, 32);
    assert_eq!(u32::from_le_bytes(snap[32..36].try_into().unwrap()), 1);
    assert_eq!(u32::from_le_bytes(snap[36..40].try_into().unwrap()), 5);
    assert_eq!(&snap[40..41], b"k");
    assert_eq!(snap.len(), 32 + 8 + 6 + 16);
    assert_eq!(&snap[snap.len() - 4..], b"KVND");
    assert_eq!(u64::from_le_bytes(snap[46..54].try_into().unwrap()), 1);

    assert_eq!(&man[..8], b"KKVMANI\x01");
    assert_eq!(field("man_magic"), (0, 8));
    assert_eq!(u32_at(&man, field("man_version")), 1);
    assert_eq!(u32_at(&man, field("man_count")), 1);
    assert!(u64_at(&man, field("man_generation")) >= 1);
    assert_eq!(field("man_entry"), (24, 40));
    assert_eq!(man.len(), 24 + 40 + 4);
    assert_eq!(
        u64::from_le_bytes(man[24..32].try_into().unwrap()),
        info.seq
    );
    assert_eq!(
        u64::from_le_bytes(man[32..40].try_into().unwrap()),
        info.log_position
    );
    for name in [
        "snap_magic",
        "snap_version",
        "snap_flags",
        "snap_seq",
        "snap_log_position",
        "entries",
        "man_magic",
        "man_version",
        "man_count",
        "man_generation",
        "man_entry",
    ] {
        field(name);
    }
    assert_eq!(rows.len(), 11, "a row the test does not check: {rows:?}");
}

#[test]
fn the_record_table_names_the_kinds_the_log_holds() {
    let doc = section();
    for row in [
        "| 1 | SET |",
        "| 2 | DELETE |",
        "| 3 | BATCH |",
        "| 4 | CLEAR |",
    ] {
        assert!(doc.contains(row), "{row}");
    }
    // Each kind round-trips through a real store and its log.
    let tmp = tempfile::tempdir().unwrap();
    let config = Config {
        silent: true,
        ..Config::default()
    };
    let store: PersistentKeyValueStore<String, String> =
        PersistentKeyValueStore::new(tmp.path(), config.clone()).unwrap();
    store.set("a", "").unwrap();
    store.unset("x").unwrap();
    store
        .write_batch(WriteBatch::new().set("b", "2").unset("a"))
        .unwrap();
    store.clear().unwrap();
    store.set("c", "3").unwrap();
    drop(store);
    let all = kekbit_kv::admin::contents(tmp.path()).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all.get(&b"c"[..]), Some(&b"3".to_vec()));
}
