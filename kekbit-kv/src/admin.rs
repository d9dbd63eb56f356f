//! Looking after a store's folder from outside: what `kekbit kv info`,
//! `prune`, `clean`, `get` and `dump` do.
//!
//! `prune` and `clean` change the folder, so they take the store's lock and
//! refuse to run beside a live store ([`Error::Locked`]). `info`, `get` and
//! `dump` only read; run beside a live store they may meet a snapshot being
//! replaced or log segments being reclaimed, and then return an error
//! (try again), never a wrong state.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::log::{self, Log};
use crate::record::{self, Op};
use crate::snapshot::{self, Manifest, SnapshotInfo, snapshot_name};
use crate::{Error, Result};

/// What a store folder holds, from [`info`].
#[derive(Clone, Debug)]
pub struct FolderInfo {
    /// The folder.
    pub dir: PathBuf,
    /// The published manifest, if there is one.
    pub manifest: Option<Manifest>,
    /// Every snapshot file: its seq, its size, and whether the manifest
    /// lists it (an unlisted one is left by a failed or interrupted
    /// snapshot; `clean` deletes it).
    pub snapshot_files: Vec<(u64, u64, bool)>,
    /// Hidden temporaries of interrupted writes.
    pub temporaries: Vec<PathBuf>,
    /// Bytes of log segments.
    pub log_bytes: u64,
    /// The oldest log position kept.
    pub log_first_position: u64,
    /// `Some(pid)` while a live store holds the folder (`Some(None)` when
    /// its pid is unknown).
    pub live_owner: Option<Option<u32>>,
}

fn require_store(dir: &Path) -> Result<()> {
    if dir.join(snapshot::MANIFEST).exists() || Log::path(dir).is_dir() {
        Ok(())
    } else {
        Err(Error::corrupt(
            dir,
            "not a kekbit-kv store (no MANIFEST and no journal/ folder)",
        ))
    }
}

/// Describes a store folder without changing it.
///
/// ```
/// use kekbit_kv::{Config, PersistentKeyValueStore, admin};
/// let dir = tempfile::tempdir()?;
/// let store: PersistentKeyValueStore<u8, u8> =
///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
/// store.set(1u8, 1u8)?;
/// store.snapshot()?;
/// let info = admin::info(dir.path())?;
/// assert_eq!(info.manifest.unwrap().snapshots.len(), 1);
/// assert!(info.live_owner.is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn info(dir: &Path) -> Result<FolderInfo> {
    require_store(dir)?;
    let manifest = Manifest::read(dir)?;
    let files = snapshot::list(dir)?;
    let listed = |seq: u64| {
        manifest
            .as_ref()
            .is_some_and(|m| m.snapshots.iter().any(|s| s.seq == seq))
    };
    let snapshot_files = files
        .snapshots
        .iter()
        .map(|&seq| {
            let bytes = fs::metadata(dir.join(snapshot_name(seq)))
                .map(|m| m.len())
                .unwrap_or(0);
            (seq, bytes, listed(seq))
        })
        .collect();
    let log_dir = Log::path(dir);
    Ok(FolderInfo {
        dir: dir.to_path_buf(),
        manifest,
        snapshot_files,
        temporaries: files.temporaries,
        log_bytes: log::disk_bytes(&log_dir),
        log_first_position: log::first_position(&log_dir)?,
        live_owner: log::live_owner(dir),
    })
}

/// What [`prune`] and [`clean`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cleanup {
    /// Snapshots still listed, newest first.
    pub kept: Vec<u64>,
    /// Files deleted.
    pub deleted: Vec<PathBuf>,
}

/// Keeps the newest complete snapshot and `backups` older ones; deletes the
/// rest, after publishing a manifest that no longer names them.
///
/// # Errors
///
/// [`Error::Locked`] beside a live store; [`Error::Corrupt`] for a damaged
/// manifest. With no snapshot at all there is nothing to prune: `Ok`.
///
/// ```
/// use kekbit_kv::{Config, PersistentKeyValueStore, admin};
/// let dir = tempfile::tempdir()?;
/// let config = Config { snapshot_backups: 5, ..Config::default() };
/// let store: PersistentKeyValueStore<u8, u8> = PersistentKeyValueStore::new(dir.path(), config)?;
/// for i in 0..3u8 {
///     store.set(i, i)?;
///     store.snapshot()?;
/// }
/// drop(store);
/// let done = admin::prune(dir.path(), 1)?;
/// assert_eq!(done.kept.len(), 2);
/// assert_eq!(done.deleted.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn prune(dir: &Path, backups: usize) -> Result<Cleanup> {
    require_store(dir)?;
    let _lock = log::lock_folder(dir)?;
    let Some(manifest) = Manifest::read(dir)? else {
        return Ok(Cleanup::default());
    };
    let keep = backups.saturating_add(1);
    let mut done = Cleanup::default();
    if manifest.snapshots.len() > keep {
        let next = Manifest {
            generation: manifest.generation + 1,
            snapshots: manifest.snapshots[..keep].to_vec(),
        };
        next.publish(dir)?;
        for s in &manifest.snapshots[keep..] {
            let path = dir.join(snapshot_name(s.seq));
            remove(&path, &mut done)?;
        }
        snapshot::sync_dir(dir)?;
        done.kept = next.snapshots.iter().map(|s| s.seq).collect();
    } else {
        done.kept = manifest.snapshots.iter().map(|s| s.seq).collect();
    }
    Ok(done)
}

fn remove(path: &Path, done: &mut Cleanup) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {
            done.deleted.push(path.to_path_buf());
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, "delete", e)),
    }
}

/// Deletes what failed or interrupted snapshots left: temporaries, and
/// snapshot files the manifest does not list.
///
/// # Errors
///
/// [`Error::Locked`] beside a live store; [`Error::Corrupt`] for a damaged
/// manifest (then nothing is deleted: which snapshot is complete is unknown).
///
/// ```
/// use kekbit_kv::{Config, PersistentKeyValueStore, admin};
/// let dir = tempfile::tempdir()?;
/// drop(PersistentKeyValueStore::<u8, u8>::new(dir.path(), Config::default())?);
/// std::fs::write(dir.path().join("snapshot-00000000000000000009.kvs"), b"half")?;
/// let done = admin::clean(dir.path())?;
/// assert_eq!(done.deleted.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn clean(dir: &Path) -> Result<Cleanup> {
    require_store(dir)?;
    let _lock = log::lock_folder(dir)?;
    let manifest = Manifest::read(dir)?.unwrap_or_default();
    let files = snapshot::list(dir)?;
    let mut done = Cleanup {
        kept: manifest.snapshots.iter().map(|s| s.seq).collect(),
        ..Cleanup::default()
    };
    for tmp in &files.temporaries {
        remove(tmp, &mut done)?;
    }
    for seq in files.snapshots {
        if !done.kept.contains(&seq) {
            remove(&dir.join(snapshot_name(seq)), &mut done)?;
        }
    }
    if !done.deleted.is_empty() {
        snapshot::sync_dir(dir)?;
    }
    Ok(done)
}

/// The store's contents as raw key and value bytes, rebuilt from its files
/// without taking its lock: the newest snapshot that reads back whole, then
/// the log after it.
///
/// ```
/// use kekbit_kv::{Config, PersistentKeyValueStore, admin};
/// let dir = tempfile::tempdir()?;
/// let store: PersistentKeyValueStore<String, String> =
///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
/// store.set("k", "v")?;
/// let all = admin::contents(dir.path())?;
/// assert_eq!(all.get(&b"k"[..]), Some(&b"v".to_vec()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn contents(dir: &Path) -> Result<HashMap<Vec<u8>, Vec<u8>>> {
    require_store(dir)?;
    // A live store may publish a snapshot and reclaim what the old one
    // needed while we read: then the manifest has changed, and we start
    // over from the new one.
    let mut attempts = 0;
    loop {
        let before = Manifest::read(dir)?.unwrap_or_default();
        match contents_once(dir, &before) {
            Ok(map) => return Ok(map),
            Err(e) => {
                let after = Manifest::read(dir)?.unwrap_or_default();
                attempts += 1;
                if after.generation == before.generation || attempts >= 10 {
                    return Err(e);
                }
            }
        }
    }
}

fn contents_once(dir: &Path, manifest: &Manifest) -> Result<HashMap<Vec<u8>, Vec<u8>>> {
    let log_dir = Log::path(dir);
    let first = log::first_position(&log_dir)?;
    let mut map = HashMap::new();
    let mut from = None;
    let mut failures = Vec::new();
    for info in &manifest.snapshots {
        if info.log_position < first {
            failures.push(format!("{}: log reclaimed", snapshot_name(info.seq)));
            continue;
        }
        match snapshot::read(dir, info, |k, v| {
            map.insert(k.to_vec(), v.to_vec());
        }) {
            Ok(()) => {
                from = Some(*info);
                break;
            }
            Err(e) => {
                map.clear();
                failures.push(e.to_string());
            }
        }
    }
    if from.is_none() && !manifest.snapshots.is_empty() {
        return Err(Error::Unrecoverable {
            dir: dir.to_path_buf(),
            reason: failures.join("; "),
        });
    }
    let start = from.map_or(first, |s: SnapshotInfo| s.log_position);
    log::replay(&log_dir, start, |pos, payload| {
        record::decode(payload, |op| match op {
            Op::Set(k, v) => {
                map.insert(k.to_vec(), v.to_vec());
            }
            Op::Delete(k) => {
                map.remove(k);
            }
            Op::Clear => map.clear(),
        })
        .map_err(|why| Error::corrupt(&log_dir, format!("record at position {pos}: {why}")))
    })?;
    Ok(map)
}
