//! Making a new channel file: built under a hidden temporary name in its
//! folder, sized, its space reserved and its pages faulted in for writing,
//! then published under its real name by a link that never replaces a file.
//!
//! [`WriterOptions::create`](crate::WriterOptions::create) runs every step at
//! once; a journal runs [`prepare`] ahead of time on a background thread and
//! publishes the file when it rolls, once it knows the segment's base.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::ChannelError;
use crate::mapping::MappedRegion;

/// A channel file made but not yet published: its temporary name (removed
/// if this is dropped unpublished), the open file, and its writable
/// mapping, whose header is still all zeros.
pub(crate) struct NewFile {
    pub(crate) temp: TempFile,
    pub(crate) file: File,
    pub(crate) region: MappedRegion,
}

impl std::fmt::Debug for NewFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewFile")
            .field("temp", &self.temp.path)
            .field("len", &kekbit_nostd::Region::len(&self.region))
            .finish()
    }
}

/// Makes a channel file of `file_len` bytes under a temporary name beside
/// `path` (errors name `path`), with exactly `mode`; with `prefault`, its
/// space is reserved and every page faulted in for writing. The folder must
/// exist.
pub(crate) fn prepare(
    path: &Path,
    file_len: usize,
    mode: u32,
    prefault: bool,
) -> Result<NewFile, ChannelError> {
    let (temp, file) = TempFile::create(path, mode)?;
    file.set_permissions(Permissions::from_mode(mode))
        .map_err(|e| ChannelError::io(path, "set the channel's permissions", e))?;
    file.set_len(file_len as u64)
        .map_err(|e| ChannelError::io(path, "size the channel file", e))?;
    if prefault {
        reserve_space(&file, file_len)
            .map_err(|e| ChannelError::io(path, "reserve space for the channel", e))?;
    }
    let region = MappedRegion::map(&file, file_len, true).map_err(|e| e.at(path))?;
    if prefault {
        region
            .prefault_for_writing()
            .map_err(|e| ChannelError::io(path, "pre-fault the channel", e))?;
    }
    Ok(NewFile { temp, file, region })
}

/// The folder a channel at `path` goes in: its parent, or the working
/// folder for a bare file name.
pub(crate) fn parent_folder(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Allocates the file's blocks (tmpfs pages) now, so that a full file
/// system is a typed error at creation rather than a `SIGBUS` on some later
/// write. File systems that cannot preallocate are left as they are.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn reserve_space(file: &File, len: usize) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let len =
        libc::off_t::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: the descriptor is open (borrowed from `file`) for the whole
    // call, which touches no memory of ours.
    match unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) } {
        0 | libc::EOPNOTSUPP | libc::EINVAL => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// Elsewhere the file stays sparse until written.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn reserve_space(_file: &File, _len: usize) -> io::Result<()> {
    Ok(())
}

/// The most characters of the channel's file name a temporary name keeps:
/// with the dot, pid, counter and suffix, at most 4 * 60 + 45 bytes, within
/// the 255 bytes Linux file systems allow a name.
const TEMP_NAME_CHARS: usize = 60;

/// A temporary file that removes itself unless published.
pub(crate) struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl TempFile {
    /// Creates `.{name}.{pid}.{n}.tmp` beside `path`, exclusively, with
    /// `name` cut short so the temporary name fits wherever `path`'s does.
    pub(crate) fn create(path: &Path, mode: u32) -> Result<(Self, File), ChannelError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name: String = path.file_name().map_or_else(
            || "channel".into(),
            |n| n.to_string_lossy().chars().take(TEMP_NAME_CHARS).collect(),
        );
        let mut attempts = 0;
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let temp = path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()));
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&temp)
            {
                Ok(file) => {
                    return Ok((
                        Self {
                            path: temp,
                            armed: true,
                        },
                        file,
                    ));
                }
                // A stale file from a dead process with our pid: try the next name.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 16 => {
                    attempts += 1;
                }
                // The folder went away since it was checked or made.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(ChannelError::FolderNotFound {
                        path: path.to_path_buf(),
                        folder: parent_folder(path).to_path_buf(),
                    });
                }
                Err(e) => return Err(ChannelError::io(path, "create the channel file", e)),
            }
        }
    }

    /// Links the file under `path` (failing if anything is there), then
    /// removes the temporary name.
    pub(crate) fn publish(mut self, path: &Path) -> Result<(), ChannelError> {
        fs::hard_link(&self.path, path).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                ChannelError::AlreadyExists {
                    path: path.to_path_buf(),
                }
            } else {
                ChannelError::io(path, "publish the channel", e)
            }
        })?;
        self.armed = false;
        // The channel is published; a leftover temporary name is harmless.
        let _ = fs::remove_file(&self.path);
        Ok(())
    }
}

impl TempFile {
    /// Renames the file to `path`, replacing what is there: only for a
    /// journal segment that replaces an empty one of its own.
    pub(crate) fn replace(mut self, path: &Path) -> Result<(), ChannelError> {
        fs::rename(&self.path, path)
            .map_err(|e| ChannelError::io(path, "publish the channel", e))?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}
