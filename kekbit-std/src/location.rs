//! Where channels live: a root folder and a path per channel id.

use std::path::{Path, PathBuf};

/// The extension of every channel file that [`storage_path`] names.
pub const CHANNEL_EXTENSION: &str = "kekbit";

/// The folder channels live in unless the caller chooses another:
/// `/dev/shm/kekbit` where `/dev/shm` exists (memory-backed, for IPC), else
/// `kekbit` in the system temporary directory.
///
/// Channels on `/dev/shm` are lost at reboot; put journals that must survive
/// one under a root on disk instead.
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

#[cfg(test)]
mod tests {
    use super::*;

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
