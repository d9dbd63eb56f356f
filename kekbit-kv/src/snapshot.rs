//! Snapshot files and the manifest that publishes them.
//!
//! A snapshot is written under a hidden temporary name, synced, renamed to
//! `snapshot-{seq:020}.kvs`, and the folder synced. It becomes part of the
//! store only when a new `MANIFEST` naming it is written (again under a
//! temporary name, synced, renamed over the old one, folder synced): that
//! rename is the one atomic step of publishing. Nothing the old manifest
//! names is deleted before the new one is durable. The byte layouts are in
//! `docs/FORMAT.md`; every integer is little-endian.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The manifest's file name.
pub const MANIFEST: &str = "MANIFEST";

/// Snapshot magic: the first 8 bytes of every snapshot file.
pub(crate) const SNAPSHOT_MAGIC: [u8; 8] = *b"KKVSNAP\x01";
/// Snapshot footer magic: the last 4 bytes of every snapshot file.
pub(crate) const SNAPSHOT_END: [u8; 4] = *b"KVND";
/// Manifest magic: its first 8 bytes.
pub(crate) const MANIFEST_MAGIC: [u8; 8] = *b"KKVMANI\x01";
/// The format version both carry.
pub(crate) const VERSION: u32 = 1;

// Snapshot header offsets, each from the previous one.
pub(crate) const SNAP_MAGIC_AT: usize = 0;
pub(crate) const SNAP_VERSION_AT: usize = SNAP_MAGIC_AT + 8;
pub(crate) const SNAP_FLAGS_AT: usize = SNAP_VERSION_AT + 4;
pub(crate) const SNAP_SEQ_AT: usize = SNAP_FLAGS_AT + 4;
pub(crate) const SNAP_LOG_POSITION_AT: usize = SNAP_SEQ_AT + 8;
pub(crate) const SNAP_HEADER_LEN: usize = SNAP_LOG_POSITION_AT + 8;
const _: () = assert!(SNAP_HEADER_LEN == 32);
// Footer: entry count u64, CRC32C u32 of every byte before it, magic.
pub(crate) const SNAP_FOOTER_LEN: usize = 8 + 4 + 4;

// Manifest offsets.
pub(crate) const MAN_MAGIC_AT: usize = 0;
pub(crate) const MAN_VERSION_AT: usize = MAN_MAGIC_AT + 8;
pub(crate) const MAN_COUNT_AT: usize = MAN_VERSION_AT + 4;
pub(crate) const MAN_GENERATION_AT: usize = MAN_COUNT_AT + 4;
pub(crate) const MAN_ENTRIES_AT: usize = MAN_GENERATION_AT + 8;
const _: () = assert!(MAN_ENTRIES_AT == 24);
/// One snapshot's line in the manifest: seq, log position, entries, file
/// bytes (each u64), file CRC32C u32, reserved u32.
pub(crate) const MAN_ENTRY_LEN: usize = 8 + 8 + 8 + 8 + 4 + 4;
/// The most snapshots one manifest lists.
pub(crate) const MAN_MAX_ENTRIES: usize = 4096;

static CRC32C: crc::Crc<u32, crc::Table<16>> =
    crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISCSI);

/// A complete snapshot, as the manifest lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Its sequence number (the file is `snapshot-{seq:020}.kvs`).
    pub seq: u64,
    /// The log position replay starts from on top of it.
    pub log_position: u64,
    /// How many entries it holds.
    pub entries: u64,
    /// Its file's size.
    pub file_bytes: u64,
    /// CRC32C of the whole file but its last 8 bytes (checksum and magic).
    pub crc: u32,
}

/// The published list of complete snapshots, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Incremented by each publish.
    pub generation: u64,
    /// Newest first.
    pub snapshots: Vec<SnapshotInfo>,
}

/// The file name of snapshot `seq`.
pub fn snapshot_name(seq: u64) -> String {
    format!("snapshot-{seq:020}.kvs")
}

/// The `seq` of a snapshot file name, if it is one.
pub fn parse_snapshot_name(name: &str) -> Option<u64> {
    let stem = name.strip_prefix("snapshot-")?.strip_suffix(".kvs")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, "sync the folder", e))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

impl Manifest {
    /// The bytes of this manifest.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(MAN_ENTRIES_AT + self.snapshots.len() * MAN_ENTRY_LEN + 4);
        b.extend_from_slice(&MANIFEST_MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.extend_from_slice(&(self.snapshots.len() as u32).to_le_bytes());
        b.extend_from_slice(&self.generation.to_le_bytes());
        for s in &self.snapshots {
            b.extend_from_slice(&s.seq.to_le_bytes());
            b.extend_from_slice(&s.log_position.to_le_bytes());
            b.extend_from_slice(&s.entries.to_le_bytes());
            b.extend_from_slice(&s.file_bytes.to_le_bytes());
            b.extend_from_slice(&s.crc.to_le_bytes());
            b.extend_from_slice(&0u32.to_le_bytes());
        }
        let crc = CRC32C.checksum(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses manifest bytes read from `path`.
    pub(crate) fn decode(b: &[u8], path: &Path) -> Result<Manifest> {
        let bad = |why: String| Error::corrupt(path, why);
        if b.len() < MAN_ENTRIES_AT + 4 {
            return Err(bad(format!("{} bytes: too short for a manifest", b.len())));
        }
        if b[..8] != MANIFEST_MAGIC {
            return Err(bad("not a kekbit-kv manifest (bad magic)".into()));
        }
        let version = u32_at(b, MAN_VERSION_AT);
        if version != VERSION {
            return Err(bad(format!(
                "manifest version {version}; this build reads {VERSION}"
            )));
        }
        let count = u32_at(b, MAN_COUNT_AT) as usize;
        if count > MAN_MAX_ENTRIES || b.len() != MAN_ENTRIES_AT + count * MAN_ENTRY_LEN + 4 {
            return Err(bad(format!(
                "{} bytes for {count} snapshots (torn or damaged)",
                b.len()
            )));
        }
        let body = &b[..b.len() - 4];
        if CRC32C.checksum(body) != u32_at(b, b.len() - 4) {
            return Err(bad("checksum mismatch (torn or damaged)".into()));
        }
        let snapshots = (0..count)
            .map(|i| {
                let at = MAN_ENTRIES_AT + i * MAN_ENTRY_LEN;
                SnapshotInfo {
                    seq: u64_at(b, at),
                    log_position: u64_at(b, at + 8),
                    entries: u64_at(b, at + 16),
                    file_bytes: u64_at(b, at + 24),
                    crc: u32_at(b, at + 32),
                }
            })
            .collect();
        Ok(Manifest {
            generation: u64_at(b, MAN_GENERATION_AT),
            snapshots,
        })
    }

    /// Reads `dir/MANIFEST`; `None` if there is none.
    pub fn read(dir: &Path) -> Result<Option<Manifest>> {
        let path = dir.join(MANIFEST);
        match fs::read(&path) {
            Ok(bytes) => Manifest::decode(&bytes, &path).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, "read", e)),
        }
    }

    /// Writes this manifest over `dir/MANIFEST` atomically and durably.
    pub(crate) fn publish(&self, dir: &Path) -> Result<()> {
        let tmp = dir.join(".MANIFEST.tmp");
        let mut f = create_new(&tmp)?;
        f.write_all(&self.encode())
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io(&tmp, "write", e))?;
        drop(f);
        let path = dir.join(MANIFEST);
        fs::rename(&tmp, &path).map_err(|e| Error::io(&path, "publish", e))?;
        sync_dir(dir)
    }
}

fn create_new(path: &Path) -> Result<File> {
    // A stale temporary from a crash is ours to replace: we hold the lock.
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(path, "delete a stale temporary", e)),
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path, "create", e))
}

/// Writes a snapshot: `fill` is handed a sink and pushes each entry into it;
/// the file is synced and renamed into place, and the folder synced.
pub(crate) fn write(
    dir: &Path,
    seq: u64,
    log_position: u64,
    fill: impl FnOnce(&mut SnapshotSink) -> Result<()>,
) -> Result<SnapshotInfo> {
    let name = snapshot_name(seq);
    let tmp = dir.join(format!(".{name}.tmp"));
    let file = create_new(&tmp)?;
    let mut sink = SnapshotSink {
        out: BufWriter::with_capacity(1 << 20, file),
        digest: CRC32C.digest(),
        bytes: 0,
        entries: 0,
        path: tmp.clone(),
    };
    let mut header = [0u8; SNAP_HEADER_LEN];
    header[SNAP_MAGIC_AT..SNAP_MAGIC_AT + 8].copy_from_slice(&SNAPSHOT_MAGIC);
    header[SNAP_VERSION_AT..SNAP_VERSION_AT + 4].copy_from_slice(&VERSION.to_le_bytes());
    header[SNAP_SEQ_AT..SNAP_SEQ_AT + 8].copy_from_slice(&seq.to_le_bytes());
    header[SNAP_LOG_POSITION_AT..SNAP_LOG_POSITION_AT + 8]
        .copy_from_slice(&log_position.to_le_bytes());
    sink.put(&header)?;
    fill(&mut sink)?;
    let entries = sink.entries;
    sink.put(&entries.to_le_bytes())?;
    let crc = sink.digest.clone().finalize();
    let mut tail = [0u8; 8];
    tail[..4].copy_from_slice(&crc.to_le_bytes());
    tail[4..].copy_from_slice(&SNAPSHOT_END);
    sink.out
        .write_all(&tail)
        .map_err(|e| Error::io(&tmp, "write", e))?;
    let file_bytes = sink.bytes + 8;
    let file = sink
        .out
        .into_inner()
        .map_err(|e| Error::io(&tmp, "write", e.into_error()))?;
    file.sync_all().map_err(|e| Error::io(&tmp, "sync", e))?;
    drop(file);
    let path = dir.join(&name);
    fs::rename(&tmp, &path).map_err(|e| Error::io(&path, "rename into place", e))?;
    sync_dir(dir)?;
    Ok(SnapshotInfo {
        seq,
        log_position,
        entries,
        file_bytes,
        crc,
    })
}

/// Where a snapshot's entries go while it is written.
pub(crate) struct SnapshotSink {
    out: BufWriter<File>,
    digest: crc::Digest<'static, u32, crc::Table<16>>,
    bytes: u64,
    entries: u64,
    path: PathBuf,
}

impl SnapshotSink {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.digest.update(bytes);
        self.bytes += bytes.len() as u64;
        self.out
            .write_all(bytes)
            .map_err(|e| Error::io(&self.path, "write", e))
    }

    /// Adds an already encoded run of `count` entries (see [`encode_entry`]).
    pub(crate) fn put_entries(&mut self, encoded: &[u8], count: u64) -> Result<()> {
        self.entries += count;
        self.put(encoded)
    }
}

/// Appends one entry's bytes (key length u32, value length u32, key, value).
pub(crate) fn encode_entry(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(value);
}

/// Reads snapshot `info` from `dir`, calling `f` for each entry, and checks
/// all of it (size, header, entry count, checksum). On an error some
/// entries may have been passed to `f` already: the caller discards them.
pub(crate) fn read(dir: &Path, info: &SnapshotInfo, mut f: impl FnMut(&[u8], &[u8])) -> Result<()> {
    let path = dir.join(snapshot_name(info.seq));
    let bad = |why: String| Error::corrupt(&path, why);
    let file = File::open(&path).map_err(|e| Error::io(&path, "open", e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io(&path, "stat", e))?
        .len();
    if len != info.file_bytes {
        return Err(bad(format!(
            "{len} bytes; the manifest says {}",
            info.file_bytes
        )));
    }
    if len < (SNAP_HEADER_LEN + SNAP_FOOTER_LEN) as u64 {
        return Err(bad(format!("{len} bytes: too short for a snapshot")));
    }
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut digest = CRC32C.digest();
    let mut header = [0u8; SNAP_HEADER_LEN];
    r.read_exact(&mut header)
        .map_err(|e| Error::io(&path, "read", e))?;
    digest.update(&header);
    if header[..8] != SNAPSHOT_MAGIC {
        return Err(bad("not a kekbit-kv snapshot (bad magic)".into()));
    }
    let version = u32_at(&header, SNAP_VERSION_AT);
    if version != VERSION {
        return Err(bad(format!(
            "snapshot version {version}; this build reads {VERSION}"
        )));
    }
    if u64_at(&header, SNAP_SEQ_AT) != info.seq
        || u64_at(&header, SNAP_LOG_POSITION_AT) != info.log_position
    {
        return Err(bad("its header does not match the manifest".into()));
    }
    let body_end = len - SNAP_FOOTER_LEN as u64;
    let mut at = SNAP_HEADER_LEN as u64;
    let mut count = 0u64;
    let mut buf = Vec::new();
    while at < body_end {
        if body_end - at < 8 {
            return Err(bad(format!("a torn entry at offset {at}")));
        }
        let mut lens = [0u8; 8];
        r.read_exact(&mut lens)
            .map_err(|e| Error::io(&path, "read", e))?;
        digest.update(&lens);
        let klen = u32_at(&lens, 0) as u64;
        let vlen = u32_at(&lens, 4) as u64;
        if klen + vlen > body_end - at - 8 {
            return Err(bad(format!(
                "an entry at offset {at} runs past the end ({klen} + {vlen} bytes)"
            )));
        }
        buf.resize((klen + vlen) as usize, 0);
        r.read_exact(&mut buf)
            .map_err(|e| Error::io(&path, "read", e))?;
        digest.update(&buf);
        f(&buf[..klen as usize], &buf[klen as usize..]);
        at += 8 + klen + vlen;
        count += 1;
    }
    let mut footer = [0u8; SNAP_FOOTER_LEN];
    r.read_exact(&mut footer)
        .map_err(|e| Error::io(&path, "read", e))?;
    digest.update(&footer[..8]);
    if footer[12..] != SNAPSHOT_END {
        return Err(bad("no end marker (torn)".into()));
    }
    let crc = digest.finalize();
    if crc != u32_at(&footer, 8) || crc != info.crc {
        return Err(bad("checksum mismatch (damaged)".into()));
    }
    if u64_at(&footer, 0) != count || count != info.entries {
        return Err(bad(format!(
            "{count} entries; the footer says {} and the manifest {}",
            u64_at(&footer, 0),
            info.entries
        )));
    }
    Ok(())
}

/// What a store folder holds besides the log.
#[derive(Debug, Default)]
pub(crate) struct FolderFiles {
    /// Snapshot files by seq.
    pub(crate) snapshots: Vec<u64>,
    /// Hidden temporaries left by an interrupted write.
    pub(crate) temporaries: Vec<PathBuf>,
}

pub(crate) fn list(dir: &Path) -> Result<FolderFiles> {
    let mut out = FolderFiles::default();
    let rd = fs::read_dir(dir).map_err(|e| Error::io(dir, "list", e))?;
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(dir, "list", e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(seq) = parse_snapshot_name(name) {
            out.snapshots.push(seq);
        } else if name.starts_with('.') && name.ends_with(".tmp") {
            out.temporaries.push(entry.path());
        }
    }
    out.snapshots.sort_unstable();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let m = Manifest {
            generation: 3,
            snapshots: vec![
                SnapshotInfo {
                    seq: 2,
                    log_position: 99,
                    entries: 5,
                    file_bytes: 100,
                    crc: 7,
                },
                SnapshotInfo {
                    seq: 1,
                    log_position: 9,
                    entries: 1,
                    file_bytes: 60,
                    crc: 8,
                },
            ],
        };
        m.publish(dir.path()).unwrap();
        assert_eq!(Manifest::read(dir.path()).unwrap(), Some(m.clone()));
        let bytes = m.encode();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(Manifest::decode(&b, Path::new("M")).is_err(), "flip at {i}");
        }
        for cut in 0..bytes.len() {
            assert!(
                Manifest::decode(&bytes[..cut], Path::new("M")).is_err(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn snapshot_round_trip_and_every_flipped_byte() {
        let dir = tempfile::tempdir().unwrap();
        let info = write(dir.path(), 7, 1234, |sink| {
            let mut b = Vec::new();
            encode_entry(&mut b, b"a", b"1");
            encode_entry(&mut b, b"", b"");
            encode_entry(&mut b, b"key", b"");
            sink.put_entries(&b, 3)
        })
        .unwrap();
        assert_eq!(info.entries, 3);
        let mut got = Vec::new();
        read(dir.path(), &info, |k, v| got.push((k.to_vec(), v.to_vec()))).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[2], (b"key".to_vec(), vec![]));
        let path = dir.path().join(snapshot_name(7));
        let clean = fs::read(&path).unwrap();
        for i in 0..clean.len() {
            let mut b = clean.clone();
            b[i] ^= 0x01;
            fs::write(&path, &b).unwrap();
            assert!(read(dir.path(), &info, |_, _| {}).is_err(), "flip at {i}");
        }
        fs::write(&path, &clean[..clean.len() - 1]).unwrap();
        assert!(read(dir.path(), &info, |_, _| {}).is_err());
        fs::remove_file(&path).unwrap();
        assert!(matches!(
            read(dir.path(), &info, |_, _| {}),
            Err(Error::Io { .. })
        ));
    }

    #[test]
    fn names() {
        assert_eq!(parse_snapshot_name(&snapshot_name(42)), Some(42));
        assert_eq!(parse_snapshot_name("snapshot-42.kvs"), None);
        assert_eq!(
            parse_snapshot_name("snapshot-0000000000000000004x.kvs"),
            None
        );
    }
}
