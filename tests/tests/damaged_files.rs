//! Truncated files, flipped header bytes, wrong lengths and damaged records
//! each give a typed error: never a panic, never a fault. Each damaged file
//! is opened by a separate helper process, which reports the error's type.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use kekbit_nostd::format::{HEADER_LEN, IMMUTABLE_HEADER_LEN};
use kekbit_tests::scratch_dir;

fn helper() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kekbit-helper"))
}

/// What the helper says about opening and reading `path`.
fn open(path: &std::path::Path) -> String {
    let out = helper()
        .args(["open", path.to_str().unwrap()])
        .output()
        .expect("run the helper");
    assert!(
        out.status.success(),
        "opening {} crashed the reader: {out:?}",
        path.display()
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A closed channel with 3 records, as bytes.
fn valid_channel(dir: &std::path::Path) -> Vec<u8> {
    let path = dir.join("valid.kekbit");
    let out = helper()
        .args([
            "write",
            path.to_str().unwrap(),
            "3",
            "9",
            "65536",
            "1000",
            "0",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(open(&path), "ok 3 end");
    std::fs::read(&path).unwrap()
}

#[test]
#[cfg_attr(miri, ignore)]
fn damaged_files_give_typed_errors() {
    let dir = scratch_dir("damaged-files");
    let bytes = valid_channel(&dir);
    let path = dir.join("damaged.kekbit");
    let check = |content: &[u8], expected: &str, what: &str| {
        std::fs::write(&path, content).unwrap();
        // Only we may write it, whatever the umask: else it is refused
        // before its bytes are looked at.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let outcome = open(&path);
        assert!(
            outcome.starts_with(expected),
            "{what}: expected {expected}, got {outcome}"
        );
    };

    // Truncated: inside the header, then inside the record area.
    for len in [0, 1, 8, 63, 64, 127] {
        check(
            &bytes[..len],
            "error Header.Truncated",
            &format!("truncated to {len}"),
        );
    }
    // Too short to hold even the smallest record area: refused before mapping.
    for len in [HEADER_LEN, HEADER_LEN + 16] {
        check(
            &bytes[..len],
            "error Region",
            &format!("truncated to {len}"),
        );
    }
    for len in [HEADER_LEN + 24, bytes.len() - 8, bytes.len() - 1] {
        check(
            &bytes[..len],
            "error Header.CapacityExceedsRegion",
            &format!("truncated to {len}"),
        );
    }
    // Extended: the wrong length for its header.
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 4096]);
    check(&longer, "error LengthMismatch", "extended by a page");

    // Any flipped byte of the immutable header: signature, version, or checksum.
    for at in 0..IMMUTABLE_HEADER_LEN {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x5A;
        let expected = match at {
            0..8 => "error Header.BadSignature",
            8..12 => "error Header.UnsupportedVersion",
            _ => "error Header.BadHeaderChecksum",
        };
        check(&flipped, expected, &format!("byte {at} flipped"));
    }
    // Not a channel at all.
    check(
        &vec![0xFF; bytes.len()],
        "error Header.BadSignature",
        "all ones",
    );

    // A damaged record: the reader opens, reads what is sound, then reports it.
    let mut torn = bytes.clone();
    let second_payload = HEADER_LEN + 8 + first_record_span(&bytes) + 8;
    torn[second_payload] ^= 0xFF;
    check(
        &torn,
        "error Read",
        "payload of record 2 flipped (checksums on)",
    );
    let mut bad_word = bytes.clone();
    bad_word[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&0x4000_0000u32.to_le_bytes());
    check(&bad_word, "error Read", "commit word of record 1 invalid");

    std::fs::remove_dir_all(&dir).unwrap();
}

/// Bytes the first record occupies, from its commit word.
fn first_record_span(bytes: &[u8]) -> usize {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[HEADER_LEN..HEADER_LEN + 4]);
    let len = (u32::from_le_bytes(word) & 0x3FFF_FFFF) as usize;
    len.next_multiple_of(8)
}
