//! Who may change a file the crate maps, or a folder it makes channels in.
//!
//! A reader lends out `&[u8]` borrows of a shared mapping. They stay
//! valid only while nobody but the channel's writer changes the file, and
//! nobody truncates it. The safe constructors therefore map only files that
//! no one but this process's user (or root, who can do anything anyway)
//! can write: owned by one of them, with no write permission for group or
//! others. A POSIX ACL that lets anyone else write a file raises its group
//! write bit (the ACL mask), so it is refused too.
//!
//! Roots and channel folders pass the same check, so nobody else can make
//! the folder a channel is created in, or put something else at its name.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;

use crate::error::TrustError;

/// Permission bits that let group or others write.
const OTHERS_WRITE: u32 = 0o022;

/// The user the kernel checks this process's file accesses against.
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: `geteuid` takes no arguments, touches no memory and cannot
    // fail.
    unsafe { libc::geteuid() }
}

/// Checks that only this process's user or root can write what `metadata`
/// describes (an `fstat` of an open file, or an `lstat` of a folder).
pub(crate) fn check(metadata: &Metadata) -> Result<(), TrustError> {
    if metadata.file_type().is_symlink() {
        return Err(TrustError::Symlink);
    }
    let owner_uid = metadata.uid();
    let our_uid = effective_uid();
    if owner_uid != our_uid && owner_uid != 0 {
        return Err(TrustError::Owner { owner_uid, our_uid });
    }
    let mode = metadata.mode() & 0o7777;
    if mode & OTHERS_WRITE != 0 {
        return Err(TrustError::Writable { mode });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    #[cfg_attr(miri, ignore)] // creates files
    fn write_bits_for_group_or_others_are_refused_and_read_bits_are_not() {
        let file = tempfile::NamedTempFile::new().unwrap();
        for mode in 0..0o1000 {
            fs::set_permissions(file.path(), fs::Permissions::from_mode(mode)).unwrap();
            let metadata = fs::metadata(file.path()).unwrap();
            let expected = if mode & 0o022 == 0 {
                Ok(())
            } else {
                Err(TrustError::Writable { mode })
            };
            assert_eq!(check(&metadata), expected, "{mode:o}");
        }
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(file.path(), &link).unwrap();
        assert_eq!(
            check(&fs::symlink_metadata(&link).unwrap()),
            Err(TrustError::Symlink)
        );
    }
}
