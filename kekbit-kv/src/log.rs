//! The seam between the store and its write-ahead log.
//!
//! INTERIM: until `kekbit_std::journal` lands on main, this module keeps a
//! minimal segmented log of its own (length, CRC32C, payload, padded to 8)
//! with the journal's contract (JOURNAL_API.md): a writer lock taken before
//! the folder is scanned, positions that strictly increase across segments,
//! group commit, recovery that stops at the last valid record before
//! anything is appended, and `truncate_before`. It is replaced by the
//! journal, method for method, when the journal lands.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::{Error, Result};

/// The journal's folder inside the store's.
pub(crate) const LOG_DIR: &str = "journal";
const LOCK_FILE: &str = "writer.lock";
const SEGMENT_EXT: &str = ".seg";
const FRAME: usize = 8;
/// Largest record payload.
pub(crate) const MAX_RECORD_LEN: usize = 64 * 1024 * 1024;

static CRC32C: crc::Crc<u32, crc::Table<16>> = crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISCSI);

fn checksum(payload: &[u8]) -> u32 {
    let mut d = CRC32C.digest();
    d.update(&(payload.len() as u32).to_le_bytes());
    d.update(payload);
    d.finalize()
}

fn padded(len: usize) -> u64 {
    (FRAME + len).next_multiple_of(8) as u64
}

struct Tail {
    file: Arc<File>,
    base: u64,
    /// Bytes used in the current segment.
    used: u64,
}

pub(crate) struct Log {
    dir: PathBuf,
    segment_bytes: u64,
    tail: Mutex<Tail>,
    /// Serialises syncs: the holder syncs for everyone waiting (group commit).
    sync_lock: Mutex<()>,
    end: AtomicU64,
    durable: AtomicU64,
    first: AtomicU64,
    _lock: File,
}

fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}{SEGMENT_EXT}"))
}

/// Segment bases in the folder, sorted.
fn segments(dir: &Path) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(dir, "list the log folder", e)),
    };
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(dir, "list the log folder", e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(SEGMENT_EXT) {
            if stem.len() == 20 {
                if let Ok(base) = stem.parse() {
                    out.push(base);
                }
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Walks the valid records of one segment's bytes; returns the offset after
/// the last valid one.
fn scan(bytes: &[u8], base: u64, mut f: impl FnMut(u64, &[u8]) -> Result<()>) -> Result<u64> {
    let mut off = 0usize;
    while off + FRAME <= bytes.len() {
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap_or([0; 4])) as usize;
        let sum = u32::from_le_bytes(bytes[off + 4..off + 8].try_into().unwrap_or([0; 4]));
        if len == 0 && sum == 0 {
            break;
        }
        if len > MAX_RECORD_LEN || off + FRAME + len > bytes.len() {
            break;
        }
        let payload = &bytes[off + FRAME..off + FRAME + len];
        if checksum(payload) != sum {
            break;
        }
        f(base + off as u64, payload)?;
        off += padded(len) as usize;
    }
    Ok(off.min(bytes.len()) as u64)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, "sync the folder", e))
}

fn fdatasync(file: &File, path: &Path) -> Result<()> {
    file.sync_data().map_err(|e| Error::io(path, "sync", e))
}

/// Takes the store's writer lock without opening the log (for `prune` and
/// `clean`, which must not run beside a live store).
pub(crate) fn lock_folder(store: &Path) -> Result<File> {
    let path = Log::path(store).join(LOCK_FILE);
    let mut lock = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, "open the lock file", e))?;
    // SAFETY: flock on a descriptor we own; no memory is involved.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let mut text = String::new();
        let _ = lock.read_to_string(&mut text);
        return Err(Error::Locked {
            dir: store.to_path_buf(),
            pid: text.trim().parse().ok(),
        });
    }
    Ok(lock)
}

/// Whether a live store holds the folder's lock, and its pid if known.
pub(crate) fn live_owner(store: &Path) -> Option<Option<u32>> {
    match lock_folder(store) {
        Err(Error::Locked { pid, .. }) => Some(pid),
        _ => None,
    }
}

impl Log {
    pub(crate) fn path(store: &Path) -> PathBuf {
        store.join(LOG_DIR)
    }

    /// Opens (or creates) the log in `store`'s `journal/` folder: lock
    /// first, then recovery.
    pub(crate) fn open(store: &Path, segment_bytes: u32) -> Result<Log> {
        let dir = Self::path(store);
        match fs::create_dir(&dir) {
            Ok(()) => sync_dir(store)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(&dir, "create the log folder", e)),
        }
        let lock_path = dir.join(LOCK_FILE);
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, "open the lock file", e))?;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let mut text = String::new();
            let _ = lock.read_to_string(&mut text);
            return Err(Error::Locked {
                dir: store.to_path_buf(),
                pid: text.trim().parse().ok(),
            });
        }
        lock.set_len(0)
            .and_then(|()| lock.write_all_at(std::process::id().to_string().as_bytes(), 0))
            .map_err(|e| Error::io(&lock_path, "write the lock file", e))?;

        let bases = segments(&dir)?;
        let (base, used, file) = match bases.last() {
            None => {
                let path = segment_path(&dir, 0);
                let file = open_segment(&path, true)?;
                sync_dir(&dir)?;
                (0, 0, file)
            }
            Some(&base) => {
                let path = segment_path(&dir, base);
                let bytes = fs::read(&path).map_err(|e| Error::io(&path, "read", e))?;
                let used = scan(&bytes, base, |_, _| Ok(()))?;
                let file = open_segment(&path, false)?;
                if used < bytes.len() as u64 {
                    // Clear the torn tail before anything is appended.
                    file.set_len(used)
                        .map_err(|e| Error::io(&path, "cut the torn tail", e))?;
                    fdatasync(&file, &path)?;
                }
                (base, used, file)
            }
        };
        let end = base + used;
        Ok(Log {
            segment_bytes: u64::from(segment_bytes.max(4096)),
            first: AtomicU64::new(bases.first().copied().unwrap_or(0)),
            dir,
            tail: Mutex::new(Tail {
                file: Arc::new(file),
                base,
                used,
            }),
            sync_lock: Mutex::new(()),
            end: AtomicU64::new(end),
            durable: AtomicU64::new(end),
            _lock: lock,
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one record; returns its position.
    pub(crate) fn append(&self, record: &[u8]) -> Result<u64> {
        if record.len() > MAX_RECORD_LEN {
            return Err(Error::TooLarge {
                len: record.len(),
                max: MAX_RECORD_LEN,
            });
        }
        let mut tail = self.tail.lock();
        let need = padded(record.len());
        if tail.used > 0 && tail.used + need > self.segment_bytes {
            let old = segment_path(&self.dir, tail.base);
            fdatasync(&tail.file, &old)?;
            let base = tail.base + tail.used;
            let path = segment_path(&self.dir, base);
            let file = open_segment(&path, true)?;
            sync_dir(&self.dir)?;
            *tail = Tail {
                file: Arc::new(file),
                base,
                used: 0,
            };
        }
        let mut frame = Vec::with_capacity(need as usize);
        frame.extend_from_slice(&(record.len() as u32).to_le_bytes());
        frame.extend_from_slice(&checksum(record).to_le_bytes());
        frame.extend_from_slice(record);
        frame.resize(need as usize, 0);
        let pos = tail.base + tail.used;
        tail.file
            .write_all_at(&frame, tail.used)
            .map_err(|e| Error::io(segment_path(&self.dir, tail.base), "append", e))?;
        tail.used += need;
        self.end.store(pos + need, Ordering::Release);
        Ok(pos)
    }

    /// Appends and returns once a sync covers the record; concurrent
    /// callers share one sync.
    pub(crate) fn append_durable(&self, record: &[u8]) -> Result<u64> {
        let pos = self.append(record)?;
        self.sync_through(pos + 1)?;
        Ok(pos)
    }

    fn sync_through(&self, pos: u64) -> Result<u64> {
        let d = self.durable.load(Ordering::Acquire);
        if d >= pos {
            return Ok(d);
        }
        let _g = self.sync_lock.lock();
        let d = self.durable.load(Ordering::Acquire);
        if d >= pos {
            return Ok(d);
        }
        let (file, base, end) = {
            let t = self.tail.lock();
            (t.file.clone(), t.base, t.base + t.used)
        };
        fdatasync(&file, &segment_path(&self.dir, base))?;
        self.durable.fetch_max(end, Ordering::AcqRel);
        Ok(end)
    }

    pub(crate) fn sync(&self) -> Result<u64> {
        self.sync_through(self.end_position())
    }

    pub(crate) fn end_position(&self) -> u64 {
        self.end.load(Ordering::Acquire)
    }

    pub(crate) fn durable_position(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    pub(crate) fn first_position(&self) -> u64 {
        self.first.load(Ordering::Acquire)
    }

    /// Deletes whole segments that end at or before `position`.
    pub(crate) fn truncate_before(&self, position: u64) -> Result<()> {
        let current = self.tail.lock().base;
        let bases = segments(&self.dir)?;
        let mut removed = false;
        for pair in bases.windows(2) {
            let (base, next) = (pair[0], pair[1]);
            if next <= position && base < current {
                let path = segment_path(&self.dir, base);
                fs::remove_file(&path).map_err(|e| Error::io(&path, "delete", e))?;
                self.first.store(next, Ordering::Release);
                removed = true;
            }
        }
        if removed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Bytes of the log's segments on disk.
    pub(crate) fn disk_bytes(&self) -> u64 {
        disk_bytes(&self.dir)
    }

    /// Calls `f` for each record from `from` on, in order.
    pub(crate) fn replay(&self, from: u64, f: impl FnMut(u64, &[u8]) -> Result<()>) -> Result<u64> {
        replay(&self.dir, from, f)
    }
}

fn open_segment(path: &Path, create: bool) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(create)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path, "open the segment", e))
}

pub(crate) fn disk_bytes(dir: &Path) -> u64 {
    segments(dir)
        .unwrap_or_default()
        .iter()
        .filter_map(|b| fs::metadata(segment_path(dir, *b)).ok())
        .map(|m| m.len())
        .sum()
}

/// The first retained position of the log in `dir` (no lock taken).
pub(crate) fn first_position(dir: &Path) -> Result<u64> {
    Ok(segments(dir)?.first().copied().unwrap_or(0))
}

/// Reads the log in `dir` (no lock taken) from `from`; returns the end.
pub(crate) fn replay(dir: &Path, from: u64, mut f: impl FnMut(u64, &[u8]) -> Result<()>) -> Result<u64> {
    let bases = segments(dir)?;
    let first = bases.first().copied().unwrap_or(0);
    if from < first {
        return Err(Error::Log {
            dir: dir.to_path_buf(),
            reason: format!("position {from} was reclaimed; the oldest record kept is at {first}"),
        });
    }
    let mut end = first;
    for (i, &base) in bases.iter().enumerate() {
        if let Some(&next) = bases.get(i + 1) {
            if next <= from {
                end = next;
                continue;
            }
        }
        if base != end && i > 0 {
            return Err(Error::Log {
                dir: dir.to_path_buf(),
                reason: format!("segment {base} does not follow the previous one, which ends at {end}"),
            });
        }
        let path = segment_path(dir, base);
        let bytes = fs::read(&path).map_err(|e| Error::io(&path, "read", e))?;
        let used = scan(&bytes, base, |pos, payload| {
            if pos >= from { f(pos, payload) } else { Ok(()) }
        })?;
        end = base + used;
        if i + 1 < bases.len() && used < bytes.len() as u64 && bytes[used as usize..].iter().any(|&b| b != 0) {
            return Err(Error::corrupt(&path, format!("a damaged record at offset {used} of a sealed segment")));
        }
    }
    Ok(end)
}
