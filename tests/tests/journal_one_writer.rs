//! One writer per journal, across processes: whichever process holds the
//! lock, a second writer elsewhere is refused with the holder's pid, and
//! the lock goes with the holder.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use kekbit_std::journal::{JournalError, JournalOptions};
use kekbit_tests::scratch_dir;

fn helper() -> Command {
    Command::new(env!("CARGO_BIN_EXE_journal-helper"))
}

#[test]
#[cfg_attr(miri, ignore)]
fn a_second_writer_in_another_process_is_refused() {
    let root = scratch_dir("journal-one-writer");
    let dir = root.join("journal");
    let dir_arg = dir.to_str().unwrap();

    // Another process holds the journal: this one is refused.
    let mut holder = helper()
        .args(["hold", dir_arg])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), format!("opened {}", holder.id()));
    match JournalOptions::new().segment_bytes(4096).open_writer(&dir) {
        Err(JournalError::Locked { dir: locked, pid }) => {
            assert_eq!(locked, dir);
            assert_eq!(pid, Some(holder.id()));
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    holder.stdin.take().unwrap().write_all(b"").unwrap(); // closes its stdin
    assert!(holder.wait().unwrap().success());

    // This process holds it: another process is refused.
    let mut writer = JournalOptions::new()
        .segment_bytes(4096)
        .open_writer(&dir)
        .unwrap();
    writer.append(b"mine").unwrap();
    let out = helper().args(["try-open", dir_arg]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("locked {}", std::process::id())
    );

    // A holder killed with -9 lets the lock go.
    drop(writer);
    let mut holder = helper()
        .args(["hold", dir_arg])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("opened"), "{line}");
    holder.kill().unwrap();
    holder.wait().unwrap();
    let out = helper().args(["try-open", dir_arg]).output().unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "opened");
    std::fs::remove_dir_all(&root).unwrap();
}
