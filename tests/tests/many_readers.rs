//! One writer process and three reader processes on one `/dev/shm` channel:
//! every reader sees every record, in order, byte for byte.

use std::process::{Command, Stdio};

use kekbit_tests::scratch_dir;

const RECORDS: u64 = 1_000_000;
const SEED: u64 = 0x5EED_0001;
/// Room for a million records averaging under 200 bytes, with margin.
const CAPACITY: u64 = 256 << 20;

fn helper() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kekbit-helper"))
}

/// `key=value` from a helper's result line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

#[test]
#[cfg_attr(miri, ignore)]
fn three_reader_processes_see_every_record_of_a_million() {
    let dir = scratch_dir("many-readers");
    let path = dir.join("channel.kekbit");
    let path_arg = path.to_str().unwrap();

    // Readers first: they wait for the writer to create the channel.
    let readers: Vec<_> = (0..3)
        .map(|_| {
            helper()
                .args(["read", path_arg, &SEED.to_string(), "60000"])
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn a reader")
        })
        .collect();
    let writer = helper()
        .args([
            "write",
            path_arg,
            &RECORDS.to_string(),
            &SEED.to_string(),
            &CAPACITY.to_string(),
            "5000",
            "0",
        ])
        .output()
        .expect("run the writer");
    assert!(writer.status.success(), "writer failed: {writer:?}");
    let written = String::from_utf8(writer.stdout).unwrap();
    assert_eq!(field(&written, "records"), RECORDS.to_string());
    let digest = field(&written, "digest").to_string();

    for reader in readers {
        let out = reader.wait_with_output().expect("wait for a reader");
        let line = String::from_utf8(out.stdout).unwrap();
        assert!(
            out.status.success(),
            "reader failed: {line} {:?}",
            out.status
        );
        assert_eq!(field(&line, "records"), RECORDS.to_string(), "{line}");
        assert_eq!(field(&line, "digest"), digest, "{line}");
        assert_eq!(field(&line, "end"), "closed", "{line}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
