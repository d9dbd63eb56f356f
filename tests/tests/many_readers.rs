//! One writer process and three reader processes on one `/dev/shm` channel:
//! every reader sees every record, in order, byte for byte, whether the
//! writer publishes them one by one or in batches.

use std::process::{Command, Stdio};

use kekbit_tests::scratch_dir;

const RECORDS: u64 = 1_000_000;
/// Records of the batched run (fewer: CI runs both on two cores).
const BATCHED_RECORDS: u64 = 500_000;
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
    let writer = |path: &str| {
        helper()
            .args([
                "write",
                path,
                &RECORDS.to_string(),
                &SEED.to_string(),
                &CAPACITY.to_string(),
                "5000",
                "0",
            ])
            .output()
            .expect("run the writer")
    };
    three_readers("many-readers", RECORDS, writer);
}

#[test]
#[cfg_attr(miri, ignore)]
fn three_reader_processes_see_every_record_of_half_a_million_in_batches() {
    let writer = |path: &str| {
        helper()
            .args([
                "write-batches",
                path,
                &BATCHED_RECORDS.to_string(),
                &SEED.to_string(),
                &CAPACITY.to_string(),
                "64",
            ])
            .output()
            .expect("run the writer")
    };
    three_readers("many-readers-batches", BATCHED_RECORDS, writer);
}

/// Starts three reader processes, runs `writer` on the channel's path, and
/// checks every reader saw exactly what it wrote.
fn three_readers(name: &str, records: u64, writer: impl FnOnce(&str) -> std::process::Output) {
    let dir = scratch_dir(name);
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
    let writer = writer(path_arg);
    assert!(writer.status.success(), "writer failed: {writer:?}");
    let written = String::from_utf8(writer.stdout).unwrap();
    assert_eq!(field(&written, "records"), records.to_string());
    let digest = field(&written, "digest").to_string();

    for reader in readers {
        let out = reader.wait_with_output().expect("wait for a reader");
        let line = String::from_utf8(out.stdout).unwrap();
        assert!(
            out.status.success(),
            "reader failed: {line} {:?}",
            out.status
        );
        assert_eq!(field(&line, "records"), records.to_string(), "{line}");
        assert_eq!(field(&line, "digest"), digest, "{line}");
        assert_eq!(field(&line, "end"), "closed", "{line}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
