//! The one-writer lock: `flock` on the journal's lock file, taken before
//! the folder is scanned, held for the writer's whole life.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::JournalError;
use super::layout::LOCK_FILE_NAME;

/// Bytes of the lock file's text, `{pid:>10} {durable:>20} {checkpoint:>20}\n`,
/// always rewritten whole and in place, so it never changes length.
const TEXT_LEN: usize = 10 + 1 + 20 + 1 + 20 + 1;

/// The journal writer's lock: an exclusive `flock` on `writer.lock`.
///
/// `flock` locks belong to the open file description, so a second writer
/// in the same process is refused as surely as one in another process, and
/// the kernel releases the lock when the holder dies, however it dies.
#[derive(Debug)]
pub(crate) struct WriterLock {
    file: File,
    path: PathBuf,
}

impl WriterLock {
    /// Takes the lock of the journal in `dir` (creating the lock file with
    /// `mode`), or says who holds it; also returns what the lock file said
    /// before (the previous writer's checkpoint, for recovery).
    pub(crate) fn acquire(dir: &Path, mode: u32) -> Result<(Self, Option<LockText>), JournalError> {
        let path = dir.join(LOCK_FILE_NAME);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| JournalError::io(&path, "open the journal's lock file", e))?;
        loop {
            // SAFETY: the descriptor is open (borrowed from `file`) for the
            // whole call, which touches no memory of ours.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                break;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EWOULDBLOCK) => {
                    return Err(JournalError::Locked {
                        dir: dir.to_path_buf(),
                        pid: read_text(&path).map(|text| text.pid),
                    });
                }
                _ => return Err(JournalError::io(&path, "lock the journal", e)),
            }
        }
        // A lock file left by another user's umask keeps its mode: set it.
        if file.metadata().map(|m| m.mode() & 0o7777).ok() != Some(mode) {
            file.set_permissions(Permissions::from_mode(mode))
                .map_err(|e| JournalError::io(&path, "set the lock file's permissions", e))?;
        }
        let previous = read_text(&path);
        let lock = Self { file, path };
        lock.note()?
            .write()
            .map_err(|e| JournalError::io(&lock.path, "write the journal's lock file", e))?;
        Ok((lock, previous))
    }

    /// What the lock file says: this process's pid, the durable position
    /// and the checkpoint, noted by whichever thread learns them.
    pub(crate) fn note(&self) -> Result<LockNote, JournalError> {
        let file = self
            .file
            .try_clone()
            .map_err(|e| JournalError::io(&self.path, "open the journal's lock file", e))?;
        Ok(LockNote {
            file,
            durable: AtomicU64::new(UNKNOWN),
            checkpoint: AtomicU64::new(UNKNOWN),
        })
    }
}

/// Not known yet: the atomics hold a position plus one, so that 0 can
/// mean this.
const UNKNOWN: u64 = 0;

/// The lock file's text, which other processes read: the writer's pid, its
/// durable position (informational, not itself synced) and its checkpoint
/// (synced: every sealed segment that ends at or before it is on the
/// device, so recovery need not walk it).
///
/// It holds a second descriptor of the lock file, which shares the lock.
#[derive(Debug)]
pub(crate) struct LockNote {
    file: File,
    durable: AtomicU64,
    checkpoint: AtomicU64,
}

impl LockNote {
    /// Notes the durable position (a best effort: the text is
    /// informational).
    pub(crate) fn durable(&self, position: u64) {
        self.durable
            .fetch_max(position.wrapping_add(1), Ordering::AcqRel);
        let _ = self.write();
    }

    /// Notes the checkpoint and syncs the lock file: recovery trusts it.
    pub(crate) fn checkpoint(&self, position: u64) -> io::Result<()> {
        self.checkpoint
            .fetch_max(position.wrapping_add(1), Ordering::AcqRel);
        self.write()?;
        self.file.sync_data()
    }

    /// Rewrites the whole text from the latest values. Two threads writing
    /// at once each write a consistent text; the values only grow, and a
    /// stale checkpoint only makes recovery walk more.
    fn write(&self) -> io::Result<()> {
        let show = |v: u64| {
            if v == UNKNOWN {
                "-".to_string()
            } else {
                (v - 1).to_string()
            }
        };
        let text = format!(
            "{:>10} {:>20} {:>20}\n",
            std::process::id(),
            show(self.durable.load(Ordering::Acquire)),
            show(self.checkpoint.load(Ordering::Acquire)),
        );
        debug_assert_eq!(text.len(), TEXT_LEN);
        self.file.set_len(TEXT_LEN as u64)?;
        self.file.write_all_at(text.as_bytes(), 0)
    }
}

/// What a journal's lock file says, if it can be read and parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LockText {
    pub(crate) pid: u32,
    pub(crate) durable: Option<u64>,
    pub(crate) checkpoint: Option<u64>,
}

/// Reads a journal's lock file.
pub(crate) fn read_text(path: &Path) -> Option<LockText> {
    let mut text = String::new();
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?
        .take(256)
        .read_to_string(&mut text)
        .ok()?;
    let mut words = text.split_whitespace();
    let pid = words.next()?.parse().ok()?;
    let durable = words.next().and_then(|w| w.parse().ok());
    let checkpoint = words.next().and_then(|w| w.parse().ok());
    Some(LockText {
        pid,
        durable,
        checkpoint,
    })
}

/// The pid of the process that holds an `flock` on the file at `path` now,
/// from `/proc/locks`; `None` if nobody does (or it cannot be told).
/// Unlike trying the lock, looking never makes a writer's open fail.
pub(crate) fn holder(path: &Path) -> Option<u32> {
    let metadata = std::fs::symlink_metadata(path).ok()?;
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let (major, minor) = (dev_major(metadata.dev()), dev_minor(metadata.dev()));
    let ino = metadata.ino();
    // "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF" (hex major:minor).
    locks.lines().find_map(|line| {
        let mut words = line.split_whitespace().skip(1);
        if words.next()? != "FLOCK" {
            return None;
        }
        let pid = words.nth(2)?.parse().ok()?;
        let mut id = words.next()?.split(':');
        let ma = u64::from_str_radix(id.next()?, 16).ok()?;
        let mi = u64::from_str_radix(id.next()?, 16).ok()?;
        let i: u64 = id.next()?.parse().ok()?;
        (ma == major && mi == minor && i == ino).then_some(pid)
    })
}

/// The major number of a device id, as glibc's `gnu_dev_major` computes it.
fn dev_major(dev: u64) -> u64 {
    ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff)
}

/// The minor number of a device id, as glibc's `gnu_dev_minor` computes it.
fn dev_minor(dev: u64) -> u64 {
    ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore)] // locks files
    fn one_holder_at_a_time_even_in_one_process() {
        let dir = tempfile::tempdir().unwrap();
        let (first, previous) = WriterLock::acquire(dir.path(), 0o600).unwrap();
        assert_eq!(previous, None);
        match WriterLock::acquire(dir.path(), 0o600) {
            Err(JournalError::Locked { dir: d, pid }) => {
                assert_eq!(d, dir.path());
                assert_eq!(pid, Some(std::process::id()));
            }
            other => panic!("{other:?}"),
        }
        let path = dir.path().join(LOCK_FILE_NAME);
        assert_eq!(holder(&path), Some(std::process::id()));
        let pid = std::process::id();
        let none = LockText {
            pid,
            durable: None,
            checkpoint: None,
        };
        assert_eq!(read_text(&path), Some(none));
        let note = first.note().unwrap();
        note.durable(0);
        note.durable(4096);
        note.durable(8); // positions only grow
        assert_eq!(
            read_text(&path),
            Some(LockText {
                durable: Some(4096),
                ..none
            })
        );
        note.checkpoint(1024).unwrap();
        assert_eq!(
            read_text(&path),
            Some(LockText {
                pid,
                durable: Some(4096),
                checkpoint: Some(1024)
            })
        );
        assert_eq!(std::fs::read(&path).unwrap().len(), TEXT_LEN);
        drop((first, note));
        assert_eq!(holder(&path), None);
        let (_again, previous) = WriterLock::acquire(dir.path(), 0o600).unwrap();
        assert_eq!(previous.and_then(|t| t.checkpoint), Some(1024));
    }

    #[test]
    fn device_numbers_split_as_glibc_does() {
        // makedev(8, 1) and makedev(4100, 70000), as glibc builds them.
        assert_eq!((dev_major(0x801), dev_minor(0x801)), (8, 1));
        let (major, minor) = (4100u64, 70000u64);
        let dev = ((major & 0xfff) << 8)
            | ((major & !0xfff) << 32)
            | (minor & 0xff)
            | ((minor & !0xff) << 12);
        assert_eq!((dev_major(dev), dev_minor(dev)), (major, minor));
    }
}
