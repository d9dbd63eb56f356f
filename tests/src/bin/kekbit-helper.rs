//! The process that kekbit's cross-process tests spawn, in several roles.
//!
//! ```text
//! kekbit-helper write  PATH COUNT SEED CAPACITY TIMEOUT_MS PACE   # PACE: sleep 1 ms every PACE records (0: never)
//! kekbit-helper write-batches PATH COUNT SEED CAPACITY MAX_BATCH  # batches of 1..=MAX_BATCH records
//! kekbit-helper read   PATH SEED OPEN_TIMEOUT_MS
//! kekbit-helper create PATH START_UNIX_NANOS [parents]   # parents: make missing folders
//! kekbit-helper create-mode PATH MODE_OCTAL
//! kekbit-helper create-in ROOT CHANNEL_ID MODE_OCTAL   # prints the channel's path
//! kekbit-helper create-parents PATH MODE_OCTAL
//! kekbit-helper open   PATH
//! kekbit-helper open-shared PATH
//! kekbit-helper maps   PATH
//! ```
//!
//! Each prints one result line on stdout; exit code 0 unless the role's
//! check failed (1) or its arguments were bad (2).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kekbit_nostd::{ChannelConfig, Header, ReadError, TickUnit};
use kekbit_std::{ChannelError, ShmReader, ShmWriter, WaitStrategy, WriterOptions};
use kekbit_tests::{Digest, MAX_RECORD_LEN, record};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["write", path, count, seed, capacity, timeout, pace] => write(
            Path::new(path),
            num(count),
            num(seed),
            num(capacity),
            num(timeout),
            num(pace),
        ),
        ["write-batches", path, count, seed, capacity, max_batch] => write_batches(
            Path::new(path),
            num(count),
            num(seed),
            num(capacity),
            num(max_batch),
        ),
        ["read", path, seed, open_timeout] => read(Path::new(path), num(seed), num(open_timeout)),
        ["create", path, start] => create(Path::new(path), num(start), false),
        ["create", path, start, "parents"] => create(Path::new(path), num(start), true),
        ["create-mode", path, mode] => create_mode(Path::new(path), mode),
        ["create-in", root, id, mode] => create_in(Path::new(root), num(id), mode),
        ["create-parents", path, mode] => create_parents(Path::new(path), mode),
        ["open", path] => {
            println!("{}", open_outcome(Path::new(path), false));
            Ok(())
        }
        ["open-shared", path] => {
            println!("{}", open_outcome(Path::new(path), true));
            Ok(())
        }
        ["maps", path] => maps(Path::new(path)),
        _ => {
            eprintln!("usage: see the source of kekbit-helper; got {args:?}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("kekbit-helper: {message}");
            ExitCode::from(1)
        }
    }
}

fn num(text: &str) -> u64 {
    text.parse().unwrap_or_else(|_| {
        eprintln!("kekbit-helper: not a number: {text}");
        std::process::exit(2)
    })
}

fn config(capacity: u64, timeout_ms: u64) -> ChannelConfig {
    ChannelConfig::new(1)
        .capacity_bytes(capacity as u32)
        .max_record_len((MAX_RECORD_LEN as u32).min(Header::max_record_len_limit(capacity as u32)))
        .timeout(timeout_ms, TickUnit::Millis)
        .checksums(true)
}

/// Writes `count` records of stream `seed`, then closes; prints the digest.
fn write(
    path: &Path,
    count: u64,
    seed: u64,
    capacity: u64,
    timeout_ms: u64,
    pace: u64,
) -> Result<(), String> {
    let mut writer =
        ShmWriter::create(path, &config(capacity, timeout_ms)).map_err(|e| e.to_string())?;
    let mut digest = Digest::default();
    let mut buf = Vec::with_capacity(MAX_RECORD_LEN);
    for i in 0..count {
        record(seed, i, &mut buf);
        writer.write(&buf).map_err(|e| e.to_string())?;
        digest.add(&buf);
        if pace != 0 && i % pace == pace - 1 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    writer.close().map_err(|e| e.to_string())?;
    println!("records={count} digest={:016x}", digest.value());
    Ok(())
}

/// Writes `count` records of stream `seed` in batches of 1 to `max_batch`
/// records (sizes from the seed), through every batch entry point in turn:
/// `ShmBatch::write`, `ShmBatch::reserve`, `ShmWriter::write_all`; then
/// closes and prints the digest.
fn write_batches(
    path: &Path,
    count: u64,
    seed: u64,
    capacity: u64,
    max_batch: u64,
) -> Result<(), String> {
    let mut writer = ShmWriter::create(path, &config(capacity, 5000)).map_err(|e| e.to_string())?;
    let mut digest = Digest::default();
    let mut bufs: Vec<Vec<u8>> = Vec::new();
    let mut i = 0;
    let mut batches = 0u64;
    while i < count {
        let size = 1 + (seed ^ batches.wrapping_mul(0x9E37_79B9_7F4A_7C15)) % max_batch.max(1);
        let size = size.min(count - i) as usize;
        bufs.resize_with(size, Vec::new);
        for (k, buf) in bufs.iter_mut().enumerate() {
            record(seed, i + k as u64, buf);
            digest.add(buf);
        }
        match batches % 3 {
            0 => {
                let mut batch = writer.batch();
                for buf in &bufs {
                    batch.write(buf).map_err(|e| e.to_string())?;
                }
                batch.publish().map_err(|e| e.to_string())?;
            }
            1 => {
                let mut batch = writer.batch();
                for buf in &bufs {
                    let mut grant = batch.reserve(buf.len()).map_err(|e| e.to_string())?;
                    grant[..buf.len()].copy_from_slice(buf);
                    grant.commit(buf.len()).map_err(|e| e.to_string())?;
                }
                // Dropped: published.
            }
            _ => {
                let refs: Vec<&[u8]> = bufs.iter().map(Vec::as_slice).collect();
                writer.write_all(&refs).map_err(|e| e.to_string())?;
            }
        }
        i += size as u64;
        batches += 1;
    }
    writer.close().map_err(|e| e.to_string())?;
    println!(
        "records={count} batches={batches} digest={:016x}",
        digest.value()
    );
    Ok(())
}

/// Waits for the channel, reads it to its end, checking every record
/// against stream `seed`; prints the count, digest and how it ended.
fn read(path: &Path, seed: u64, open_timeout_ms: u64) -> Result<(), String> {
    let channel = ShmReader::open_timeout(path, Duration::from_millis(open_timeout_ms))
        .map_err(|e| e.to_string())?;
    let mut reader = channel.reader().map_err(|e| e.to_string())?;
    // Several processes share two cores in CI: sleep rather than spin, so
    // the writer is not starved.
    reader.set_wait_strategy(WaitStrategy::Backoff {
        spins: 0,
        yields: 4,
        max_sleep: Duration::from_millis(2),
    });
    let mut digest = Digest::default();
    let mut expected = Vec::with_capacity(MAX_RECORD_LEN);
    let mut count = 0u64;
    let mut end = "closed".to_string();
    for item in reader.blocking() {
        match item {
            Ok(got) => {
                record(seed, count, &mut expected);
                if got != expected.as_slice() {
                    return Err(format!(
                        "record {count} differs: {} bytes, expected {}",
                        got.len(),
                        expected.len()
                    ));
                }
                digest.add(got);
                count += 1;
            }
            Err(ChannelError::Abandoned { .. }) => end = "abandoned".into(),
            Err(e) => end = format!("error:{e}"),
        }
    }
    if end == "closed"
        && reader
            .try_read()
            .is_err_and(|e| e.read_error() == Some(ReadError::Full))
    {
        end = "full".into();
    }
    println!("records={count} digest={:016x} end={end}", digest.value());
    Ok(())
}

/// Waits until `start` (Unix nanoseconds), then races to create the channel.
fn create(path: &Path, start: u64, parents: bool) -> Result<(), String> {
    let start = UNIX_EPOCH + Duration::from_nanos(start);
    while SystemTime::now() < start {
        std::hint::spin_loop();
    }
    let options = WriterOptions::new(config(4096, 0)).create_parents(parents);
    match options.create(path) {
        Ok(mut writer) => {
            let pid = std::process::id();
            writer
                .write(&pid.to_le_bytes())
                .map_err(|e| e.to_string())?;
            writer.close().map_err(|e| e.to_string())?;
            println!("created {pid}");
            Ok(())
        }
        Err(ChannelError::AlreadyExists { .. }) => {
            println!("exists");
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

fn create_mode(path: &Path, mode: &str) -> Result<(), String> {
    let mode = u32::from_str_radix(mode, 8).map_err(|e| e.to_string())?;
    WriterOptions::new(config(4096, 0))
        .mode(mode)
        .create(path)
        .map_err(|e| e.to_string())?;
    println!("created");
    Ok(())
}

fn create_in(root: &Path, id: u64, mode: &str) -> Result<(), String> {
    let mode = u32::from_str_radix(mode, 8).map_err(|e| e.to_string())?;
    let writer = WriterOptions::new(ChannelConfig {
        channel_id: id,
        ..config(4096, 0)
    })
    .mode(mode)
    .create_in(root)
    .map_err(|e| e.to_string())?;
    println!("{}", writer.path().display());
    Ok(())
}

fn create_parents(path: &Path, mode: &str) -> Result<(), String> {
    let mode = u32::from_str_radix(mode, 8).map_err(|e| e.to_string())?;
    WriterOptions::new(config(4096, 0))
        .mode(mode)
        .create_parents(true)
        .create(path)
        .map_err(|e| e.to_string())?;
    println!("created");
    Ok(())
}

/// How opening `path` went, as `ok RECORDS` or `error VARIANT: message`;
/// `shared` opens it with `ShmReader::open_shared`.
fn open_outcome(path: &Path, shared: bool) -> String {
    let opened = if shared {
        // SAFETY: the tests that ask for this write the file only through
        // its kekbit writer, and truncate it only while no helper has it
        // open.
        unsafe { ShmReader::open_shared(path) }
    } else {
        ShmReader::open(path)
    };
    match opened {
        Ok(channel) => match channel.reader() {
            Ok(mut reader) => {
                let mut records = 0u64;
                loop {
                    match reader.try_read() {
                        Ok(Some(_)) => records += 1,
                        Ok(None) => return format!("ok {records} open"),
                        Err(e) if e.is_end() => return format!("ok {records} end"),
                        Err(e) => return format!("error Read: {e}"),
                    }
                }
            }
            Err(e) => format!("error {}: {e}", variant(&e)),
        },
        Err(e) => format!("error {}: {e}", variant(&e)),
    }
}

fn variant(e: &ChannelError) -> String {
    let debug = format!("{e:?}");
    let name_end = debug.find([' ', '{', '(']).unwrap_or(debug.len());
    let name = &debug[..name_end];
    match e {
        ChannelError::Header { source, .. } => {
            let inner = format!("{source:?}");
            let end = inner.find([' ', '{', '(']).unwrap_or(inner.len());
            format!("{name}.{}", &inner[..end])
        }
        _ => name.to_string(),
    }
}

/// Opens the channel and prints the permissions of every mapping of it,
/// from `/proc/self/maps`.
fn maps(path: &Path) -> Result<(), String> {
    let channel = ShmReader::open(path).map_err(|e| e.to_string())?;
    let canonical: PathBuf = std::fs::canonicalize(path).map_err(|e| e.to_string())?;
    let maps = std::fs::read_to_string("/proc/self/maps").map_err(|e| e.to_string())?;
    let perms: Vec<&str> = maps
        .lines()
        .filter(|line| line.ends_with(canonical.to_string_lossy().as_ref()))
        .filter_map(|line| line.split_whitespace().nth(1))
        .collect();
    println!("{}", perms.join(" "));
    drop(channel);
    Ok(())
}
