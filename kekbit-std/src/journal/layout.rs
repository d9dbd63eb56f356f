//! The names in a journal's folder: segments named by their base position,
//! the lock file, hidden temporary files, and segments set aside by
//! recovery.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::error::JournalError;

/// The name of the lock file the one writer holds (`flock`), which holds the
/// writer's pid and, after each sync, its durable position, as text.
pub const LOCK_FILE_NAME: &str = "writer.lock";

/// The extension of segment files: segments are ordinary channels.
const SEGMENT_EXTENSION: &str = crate::CHANNEL_EXTENSION;

/// Digits of the zero-padded base position in a segment's name: every `u64`
/// fits, and `ls` sorts segments in journal order.
const BASE_DIGITS: usize = 20;

/// What the temporary files of a journal's writer start with: hidden, and
/// specific enough that recovery removes only its own leftovers.
pub(crate) const TEMP_PREFIX: &str = ".segment.";

/// What a temporary file's name ends with.
const TEMP_SUFFIX: &str = ".tmp";

/// What recovery appends to the name of a segment it sets aside (one after
/// a gap that power loss left): no longer a segment name, so readers and
/// writers ignore it, but kept for inspection.
pub(crate) const DISCARDED_SUFFIX: &str = ".discarded";

/// The file name of the segment whose first record-area byte is at journal
/// position `base`: `{base:020}.kekbit`.
///
/// # Example
///
/// ```
/// assert_eq!(kekbit_std::journal::segment_file_name(4096), "00000000000000004096.kekbit");
/// ```
pub fn segment_file_name(base: u64) -> String {
    format!("{base:0BASE_DIGITS$}.{SEGMENT_EXTENSION}")
}

/// The base position a segment file name stands for; `None` for any other
/// name (the lock file, temporary files, anything a user left there).
///
/// # Example
///
/// ```
/// use kekbit_std::journal::parse_segment_file_name;
/// assert_eq!(parse_segment_file_name("00000000000000004096.kekbit"), Some(4096));
/// assert_eq!(parse_segment_file_name("4096.kekbit"), None);
/// assert_eq!(parse_segment_file_name("writer.lock"), None);
/// ```
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_EXTENSION)?.strip_suffix('.')?;
    if digits.len() != BASE_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The path of the segment at `base` in `dir`.
pub(crate) fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(segment_file_name(base))
}

/// The path temporary segment files are named after (`.segment.*.tmp`);
/// errors met while preparing one name it.
pub(crate) fn temp_stem(dir: &Path) -> PathBuf {
    dir.join("segment")
}

/// Whether `name` is a temporary file of a journal writer.
pub(crate) fn is_temp_name(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)
}

/// The segment files in `dir`, sorted by base position, and the journal
/// writer's temporary files. Other names are ignored.
pub(crate) struct Listing {
    pub(crate) segments: Vec<(u64, PathBuf)>,
    pub(crate) temps: Vec<PathBuf>,
}

/// Lists `dir`.
pub(crate) fn list(dir: &Path) -> Result<Listing, JournalError> {
    let entries = fs::read_dir(dir).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            JournalError::NotAJournal {
                dir: dir.to_path_buf(),
                reason: "the folder does not exist".into(),
            }
        } else {
            JournalError::io(dir, "list the journal folder", e)
        }
    })?;
    let mut segments = Vec::new();
    let mut temps = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| JournalError::io(dir, "list the journal folder", e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(base) = parse_segment_file_name(name) {
            segments.push((base, entry.path()));
        } else if is_temp_name(name) {
            temps.push(entry.path());
        }
    }
    segments.sort_unstable_by_key(|&(base, _)| base);
    Ok(Listing { segments, temps })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_as_numbers() {
        let bases = [0, 8, 4096, 1 << 40, u64::MAX - 7];
        let mut names: Vec<String> = bases.iter().map(|&b| segment_file_name(b)).collect();
        for (name, base) in names.iter().zip(bases) {
            assert_eq!(name.len(), 20 + ".kekbit".len());
            assert_eq!(parse_segment_file_name(name), Some(base));
        }
        let sorted = names.clone();
        names.sort();
        assert_eq!(names, sorted);
        assert_eq!(segment_file_name(u64::MAX), "18446744073709551615.kekbit");
    }

    #[test]
    fn other_names_are_not_segments() {
        for name in [
            "",
            ".kekbit",
            "0000000000000000000.kekbit",   // 19 digits
            "000000000000000000000.kekbit", // 21 digits
            "0000000000000000000x.kekbit",
            "+0000000000000000001.kekbit",
            "00000000000000000000.kekbit.discarded",
            "00000000000000000000.kekbi",
            "99999999999999999999.kekbit", // beyond u64
            "writer.lock",
            ".segment.1.2.tmp",
        ] {
            assert_eq!(parse_segment_file_name(name), None, "{name:?}");
        }
        assert!(is_temp_name(".segment.123.4.tmp"));
        assert!(!is_temp_name(".bashrc"));
        assert!(!is_temp_name("segment.1.tmp"));
    }
}
