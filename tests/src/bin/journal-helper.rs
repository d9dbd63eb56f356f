//! The process that the journal's cross-process tests spawn and kill.
//!
//! ```text
//! journal-helper append DIR SEED SEGMENT_BYTES FIRST_SEQ GENERATION
//!     # opens (recovers) the journal, prints `ready END`, then appends
//!     # records FIRST_SEQ, FIRST_SEQ + 1, ... of stream SEED for ever, in
//!     # bursts, syncing at random points: each sync prints `synced POSITION`.
//! journal-helper commit DIR SEGMENT_BYTES THREADS
//!     # THREADS threads each commit records `[thread u32][i u32]` with
//!     # append_durable for ever, printing `ack THREAD I POSITION END` once
//!     # each is acknowledged.
//! journal-helper hold DIR     # opens the writer, prints `opened PID`, closes at end of stdin
//! journal-helper try-open DIR # prints `locked PID` or `opened`
//! ```
//!
//! Output lines are flushed one by one. Exit code 0 unless the role failed
//! (1) or its arguments were bad (2).

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use kekbit_std::journal::{JournalError, JournalOptions};
use kekbit_tests::SplitMix;
use kekbit_tests::journal::journal_record;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["append", dir, seed, segment, first, generation] => append(
            Path::new(dir),
            num(seed),
            num(segment) as u32,
            num(first),
            num(generation) as u32,
        ),
        ["commit", dir, segment, threads] => {
            commit(Path::new(dir), num(segment) as u32, num(threads))
        }
        ["hold", dir] => hold(Path::new(dir)),
        ["try-open", dir] => try_open(Path::new(dir)),
        _ => {
            eprintln!("usage: see the source of journal-helper; got {args:?}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("journal-helper: {message}");
            ExitCode::from(1)
        }
    }
}

fn num(text: &str) -> u64 {
    text.parse().unwrap_or_else(|_| {
        eprintln!("journal-helper: not a number: {text}");
        std::process::exit(2)
    })
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // The parent may have stopped reading; then nobody needs the line.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn append(dir: &Path, seed: u64, segment: u32, first: u64, generation: u32) -> Result<(), String> {
    let mut writer = JournalOptions::new()
        .segment_bytes(segment)
        .open_writer(dir)
        .map_err(|e| e.to_string())?;
    say(&format!("ready {}", writer.end_position()));
    let mut rng = SplitMix::new(seed ^ first.rotate_left(7) ^ u64::from(generation));
    let mut record = Vec::new();
    let mut seq = first;
    loop {
        // A burst, then maybe a sync, then a breath (the parent reads too).
        for _ in 0..1 + rng.next_u64() % 64 {
            journal_record(seed, seq, generation, &mut record);
            writer.append(&record).map_err(|e| e.to_string())?;
            seq += 1;
        }
        if rng.next_u64().is_multiple_of(3) {
            let durable = writer.sync().map_err(|e| e.to_string())?;
            say(&format!("synced {durable}"));
        }
        if rng.next_u64().is_multiple_of(4) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn commit(dir: &Path, segment: u32, threads: u64) -> Result<(), String> {
    let journal = JournalOptions::new()
        .segment_bytes(segment)
        .open_writer(dir)
        .map_err(|e| e.to_string())?
        .into_shared();
    say("ready");
    std::thread::scope(|s| {
        for t in 0..threads as u32 {
            let journal = journal.clone();
            s.spawn(move || -> Result<(), String> {
                for i in 0u32.. {
                    let mut record = t.to_le_bytes().to_vec();
                    record.extend_from_slice(&i.to_le_bytes());
                    let position = journal.append_durable(&record).map_err(|e| e.to_string())?;
                    say(&format!("ack {t} {i} {position} {}", position + 16));
                }
                Ok(())
            });
        }
    });
    Ok(())
}

fn hold(dir: &Path) -> Result<(), String> {
    let writer = JournalOptions::new()
        .segment_bytes(4096)
        .open_writer(dir)
        .map_err(|e| e.to_string())?;
    say(&format!("opened {}", std::process::id()));
    for line in std::io::stdin().lock().lines() {
        if line.is_err() {
            break;
        }
    }
    writer.close().map_err(|e| e.to_string())
}

fn try_open(dir: &Path) -> Result<(), String> {
    match JournalOptions::new().segment_bytes(4096).open_writer(dir) {
        Ok(writer) => {
            say("opened");
            writer.close().map_err(|e| e.to_string())
        }
        Err(JournalError::Locked { pid, dir: locked }) if locked == dir => {
            say(&format!("locked {}", pid.map_or(-1, i64::from)));
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}
