//! Where channels live: a root folder and a path per channel id, and the
//! folders made and checked for them.

use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::ChannelError;
use crate::trust;

/// The extension of every channel file that [`storage_path`] names.
pub const CHANNEL_EXTENSION: &str = "kekbit";

/// The folder channels live in unless the caller chooses another:
/// `/dev/shm/kekbit` where `/dev/shm` exists (memory-backed, for IPC), else
/// `kekbit` in the system temporary directory.
///
/// Channels on `/dev/shm` are lost at reboot; put journals that must survive
/// one under a root on disk instead.
///
/// This only names the folder. The functions that take a root
/// ([`shm_writer`](crate::shm_writer),
/// [`WriterOptions::create_in`](crate::WriterOptions::create_in),
/// [`shm_reader`](crate::shm_reader), [`try_shm_reader`](crate::try_shm_reader))
/// use it only if nobody but this user (or root) can change it: it must be
/// a real folder, not a symbolic link, owned by this user or root, that
/// group and others cannot write, and so must the channel's folder in it.
/// Otherwise they return [`ChannelError::Untrusted`]. `/dev/shm` is
/// writable by everyone, so another user could have made
/// `/dev/shm/kekbit` first; then choose another root. Writers make the
/// missing folders `0700` (see [`WriterOptions::mode`](crate::WriterOptions::mode)
/// for channels others may read), whatever the umask.
///
/// # Example
///
/// ```
/// let root = kekbit_std::default_root();
/// assert!(root.ends_with("kekbit"));
/// ```
pub fn default_root() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.join("kekbit")
    } else {
        std::env::temp_dir().join("kekbit")
    }
}

/// The path of channel `channel_id` under `root`, as kekbit 0.3 laid it out.
///
/// The id's high 32 bits name a folder and its low 32 bits the file, each
/// as two groups of four lower-case hex digits:
/// `root/hhhh_hhhh/llll_llll.kekbit`. Channels that share their high bits
/// (one application's, say) share a folder.
///
/// # Example
///
/// ```
/// use std::path::Path;
/// let path = kekbit_std::storage_path(Path::new("/dev/shm/kekbit"), 0x0001_0002_0003_0004);
/// assert_eq!(path, Path::new("/dev/shm/kekbit/0001_0002/0003_0004.kekbit"));
/// ```
pub fn storage_path(root: &Path, channel_id: u64) -> PathBuf {
    let high = (channel_id >> 32) as u32;
    let low = channel_id as u32;
    let folder = format!("{:04x}_{:04x}", high >> 16, high & 0xffff);
    let file = format!("{:04x}_{:04x}.{CHANNEL_EXTENSION}", low >> 16, low & 0xffff);
    root.join(folder).join(file)
}

/// The mode of a folder made for a channel file of `file_mode`: everything
/// for its owner, read and search for whoever may read the channel, and
/// write for nobody else. `0700` for the default `0600`.
pub(crate) fn folder_mode(file_mode: u32) -> u32 {
    let read = file_mode & 0o044;
    0o700 | read | (read >> 2)
}

/// Makes `folder` and its missing ancestors, each with exactly `mode`
/// whatever the umask, as `mkdir -p` does. A folder that appears meanwhile
/// (another creator) is left as it is.
pub(crate) fn make_folders(folder: &Path, mode: u32) -> Result<(), ChannelError> {
    let mut missing = Vec::new();
    let mut dir = folder;
    loop {
        match fs::symlink_metadata(dir) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing.push(dir);
                match dir.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => dir = parent,
                    _ => break,
                }
            }
            Err(e) => return Err(ChannelError::io(dir, "look for the channel folder", e)),
        }
    }
    for dir in missing.into_iter().rev() {
        match DirBuilder::new().mode(mode).create(dir) {
            // The umask may have narrowed it; set it exactly, through a
            // descriptor of the folder just made, never through a link.
            Ok(()) => OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
                .open(dir)
                .and_then(|made| made.set_permissions(Permissions::from_mode(mode)))
                .map_err(|e| ChannelError::io(dir, "set the channel folder's permissions", e))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(ChannelError::io(dir, "create the channel folder", e)),
        }
    }
    Ok(())
}

/// Checks a root or channel folder: `Ok(false)` if it does not exist, an
/// error if it is not a folder that only this user or root can change.
pub(crate) fn check_folder(folder: &Path) -> Result<bool, ChannelError> {
    // Without a trailing `/`, which would make `lstat` follow a link.
    let bare: PathBuf = folder.components().collect();
    let metadata = match fs::symlink_metadata(&bare) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(ChannelError::io(folder, "look at the channel folder", e)),
    };
    trust::check(&metadata).map_err(|source| ChannelError::Untrusted {
        path: folder.to_path_buf(),
        source,
    })?;
    if !metadata.is_dir() {
        let e = io::Error::new(io::ErrorKind::NotADirectory, "not a folder");
        return Err(ChannelError::io(folder, "use it as a channel folder", e));
    }
    Ok(true)
}

/// Makes `root` and the channel's `folder` in it where missing (with
/// `mode`), and checks both; for writers.
pub(crate) fn prepare_layout(root: &Path, folder: &Path, mode: u32) -> Result<(), ChannelError> {
    // The root first: nothing is made inside one that fails the check.
    for dir in [root, folder] {
        make_folders(dir, mode)?;
        if !check_folder(dir)? {
            let e = io::Error::from(io::ErrorKind::NotFound);
            return Err(ChannelError::io(dir, "create the channel folder", e));
        }
    }
    Ok(())
}

/// Checks `root` and the folder of the channel at `path` in it, for
/// readers: [`ChannelError::NotFound`] for the channel if either is
/// missing (a reader may wait for its writer to make them).
pub(crate) fn check_layout(root: &Path, path: &Path) -> Result<(), ChannelError> {
    let folder = path.parent().unwrap_or(root);
    for dir in [root, folder] {
        if !check_folder(dir)? {
            return Err(ChannelError::NotFound {
                path: path.to_path_buf(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, Instant};

    use kekbit_nostd::ChannelConfig;

    use crate::{ChannelError, TrustError, WriterOptions, shm_reader, shm_writer, try_shm_reader};

    fn mode_of(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn set_mode(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn config(id: u64) -> ChannelConfig {
        ChannelConfig::new(id).capacity_bytes(4096)
    }

    /// Asserts that every way of using `root` for channel `id` (creating
    /// and opening, waiting or not) is refused because of `folder`, at
    /// once, for `why`.
    fn assert_refused(root: &Path, id: u64, folder: &Path, why: TrustError) {
        let started = Instant::now();
        let results = [
            shm_writer(root, &config(id)).map(drop),
            WriterOptions::new(config(id)).create_in(root).map(drop),
            shm_reader(root, id).map(drop),
            try_shm_reader(root, id, Duration::from_secs(60)).map(drop),
        ];
        for result in results {
            let err = result.expect_err("used a root others may change");
            assert!(
                matches!(&err, ChannelError::Untrusted { path, source }
                    if path == folder && *source == why),
                "{}: {err}",
                folder.display()
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "a refusal waited"
        );
    }

    #[test]
    fn folders_let_through_exactly_who_may_read_the_channel() {
        assert_eq!(folder_mode(0o600), 0o700);
        assert_eq!(folder_mode(0o640), 0o750);
        assert_eq!(folder_mode(0o604), 0o705);
        assert_eq!(folder_mode(0o666), 0o755);
        assert_eq!(folder_mode(0o400), 0o700);
        assert_eq!(folder_mode(0o7777), 0o755);
    }

    #[test]
    #[cfg_attr(miri, ignore)] // creates folders
    fn folders_made_for_the_id_layout_let_nobody_else_write() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("new/root");
        let writer = shm_writer(&root, &config(1)).unwrap();
        let folder = writer.path().parent().unwrap().to_path_buf();
        // 0700 exactly; tests/tests/permissions.rs checks it under a
        // permissive umask too.
        for made in [&dir.path().join("new"), &root, &folder] {
            assert_eq!(mode_of(made), 0o700, "{}", made.display());
        }
        drop(writer);
        shm_reader(&root, 1).unwrap();

        // A channel others may read gets folders they can pass through.
        let shared_root = dir.path().join("shared");
        let writer = WriterOptions::new(config(1))
            .mode(0o640)
            .create_in(&shared_root)
            .unwrap();
        assert_eq!(mode_of(&shared_root), 0o750);
        assert_eq!(mode_of(writer.path().parent().unwrap()), 0o750);
    }

    #[test]
    #[cfg_attr(miri, ignore)] // creates folders
    fn a_root_that_others_can_write_or_that_is_a_link_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir(&root).unwrap();
        // World-writable, even with the sticky bit of /tmp: others could
        // make the channel's folder before us.
        for mode in [0o777, 0o1777, 0o775, 0o757] {
            set_mode(&root, mode);
            assert_refused(&root, 1, &root, TrustError::Writable { mode });
            assert_eq!(fs::read_dir(&root).unwrap().count(), 0, "made something");
        }
        set_mode(&root, 0o755);
        let writer = shm_writer(&root, &config(1)).unwrap();
        shm_reader(&root, 1).unwrap();

        // The channel's folder is checked as well.
        let folder = writer.path().parent().unwrap().to_path_buf();
        set_mode(&folder, 0o770);
        // Channel 2 shares channel 1's folder.
        assert_refused(&root, 2, &folder, TrustError::Writable { mode: 0o770 });
        assert_refused(&root, 1, &folder, TrustError::Writable { mode: 0o770 });
        set_mode(&folder, 0o700);
        drop(writer);

        // A link, as root or as the channel's folder.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&root, &link).unwrap();
        assert_refused(&link, 1, &link, TrustError::Symlink);
        let slashed = PathBuf::from(format!("{}/", link.display()));
        assert_refused(&slashed, 1, &slashed, TrustError::Symlink);
        let moved = root.join("moved");
        fs::rename(&folder, &moved).unwrap();
        std::os::unix::fs::symlink(&moved, &folder).unwrap();
        assert_refused(&root, 1, &folder, TrustError::Symlink);
    }

    #[test]
    #[cfg_attr(miri, ignore)] // creates folders, changes owners
    fn a_root_another_user_owns_is_refused() {
        // SAFETY: `geteuid` takes no arguments, touches no memory and
        // cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root to make a folder another user owns");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("theirs");
        fs::create_dir(&root).unwrap();
        set_mode(&root, 0o755);
        std::os::unix::fs::chown(&root, Some(65534), None).unwrap();
        let why = TrustError::Owner {
            owner_uid: 65534,
            our_uid: 0,
        };
        assert_refused(&root, 1, &root, why);
        // Root's own folder is trusted.
        std::os::unix::fs::chown(&root, Some(0), None).unwrap();
        shm_writer(&root, &config(1)).unwrap();
    }

    #[test]
    fn ids_map_to_distinct_paths() {
        let root = Path::new("/r");
        assert_eq!(
            storage_path(root, 0),
            Path::new("/r/0000_0000/0000_0000.kekbit")
        );
        assert_eq!(
            storage_path(root, u64::MAX),
            Path::new("/r/ffff_ffff/ffff_ffff.kekbit")
        );
        assert_ne!(storage_path(root, 1), storage_path(root, 1 << 32));
    }
}
