//! `kekbit write`: standard input into a new channel, one record per line
//! or per length-prefixed frame.

use std::io::{self, BufRead, Read};
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use kekbit_nostd::{ChannelConfig, TickUnit, WriteError};
use kekbit_std::{ChannelError, ShmWriter, WriterOptions};

use crate::cli::{Framing, WriteArgs};
use crate::error::{CliError, CliResult};

/// Records handed from the input thread to the writer in one message.
const BATCH: usize = 256;

/// What the input thread sends: records, or why input stopped early.
enum Input {
    Records(Vec<Vec<u8>>),
    Failed(String),
}

/// Runs `kekbit write`.
pub fn run(args: &WriteArgs) -> CliResult {
    let path = args.path.as_path();
    let config = config(args)?;
    let mut writer = WriterOptions::new(config)
        .durability(args.sync)
        .create_parents(args.parents)
        .create(path)
        .map_err(|e| match e {
            // The options are the user's: a channel they cannot make is a
            // usage error.
            ChannelError::Config { .. } => CliError::Usage(e.to_string()),
            ChannelError::AlreadyExists { .. } if path.is_dir() => {
                CliError::path(path, "is a folder; give the path of a new channel file")
            }
            ChannelError::FolderNotFound { path, folder } => CliError::path(
                &path,
                format_args!(
                    "cannot create the channel: folder {} does not exist (pass --parents to \
                     create it)",
                    folder.display()
                ),
            ),
            other => CliError::Channel(other),
        })?;
    let max_record_len = writer.header().max_record_len;
    let (tx, rx) = mpsc::sync_channel::<Input>(64);
    let framing = args.framing;
    // Standard input is read on its own thread so this one can heartbeat
    // while input is slow: readers must not take a quiet pipe for a dead
    // writer. The thread is never joined: when this one returns (say, the
    // channel is full) the process exits and takes it along.
    thread::spawn(move || read_input(framing, max_record_len, &tx));

    // Heartbeat four times per timeout; with no timeout, never.
    let beat = (args.timeout / 4).max(Duration::from_millis(1));
    let mut count = 0u64;
    loop {
        let input = if args.timeout.is_zero() {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            rx.recv_timeout(beat)
        };
        match input {
            Ok(Input::Records(batch)) => {
                for record in batch {
                    count += 1;
                    write_one(&mut writer, &record, count, path)?;
                }
            }
            Ok(Input::Failed(cause)) => {
                // The records before the fault stay, and readers see the end.
                writer.close()?;
                return Err(CliError::path(
                    path,
                    format_args!("standard input, after {count} records: {cause}"),
                ));
            }
            Err(RecvTimeoutError::Timeout) => writer.heartbeat(),
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    writer.close()?;
    Ok(())
}

/// The channel configuration the options ask for.
fn config(args: &WriteArgs) -> CliResult<ChannelConfig> {
    let path = args.path.display();
    let capacity = u32::try_from(args.capacity).map_err(|_| {
        CliError::Usage(format!(
            "{path}: --capacity {} is too large: a channel holds at most 4 GiB of records",
            args.capacity
        ))
    })?;
    let (ticks, unit) = timeout_ticks(args.timeout);
    let mut config = ChannelConfig::new(args.channel_id)
        .writer_id(args.writer_id)
        .capacity_bytes(capacity)
        .timeout(ticks, unit)
        .checksums(args.checksums);
    if let Some(max) = args.max_record {
        let max = u32::try_from(max).map_err(|_| {
            CliError::Usage(format!(
                "{path}: --max-record {max} is larger than any channel allows"
            ))
        })?;
        config = config.max_record_len(max);
    }
    Ok(config)
}

/// A timeout as header ticks: milliseconds when it is a whole number of
/// them, else microseconds (rounded up, so it never becomes 0, which would
/// turn detection off).
fn timeout_ticks(timeout: Duration) -> (u64, TickUnit) {
    let nanos = timeout.as_nanos();
    if nanos.is_multiple_of(1_000_000) {
        let ticks = u64::try_from(nanos / 1_000_000).unwrap_or(u64::MAX);
        (ticks, TickUnit::Millis)
    } else {
        let ticks = u64::try_from(nanos.div_ceil(1_000)).unwrap_or(u64::MAX);
        (ticks, TickUnit::Micros)
    }
}

/// Writes record number `n` (from 1), with an error that says which.
fn write_one(writer: &mut ShmWriter, record: &[u8], n: u64, path: &Path) -> CliResult {
    match writer.write(record) {
        Ok(_) => Ok(()),
        Err(e) => Err(match e.write_error() {
            Some(WriteError::TooLarge { len, max }) => CliError::path(
                path,
                format_args!(
                    "record {n} is {len} bytes, more than the channel's maximum of {max} \
                     (see --max-record and --capacity)"
                ),
            ),
            Some(WriteError::Full { .. }) => CliError::path(
                path,
                format_args!(
                    "channel full: record {n} does not fit; {} records were written and the \
                     channel is now marked full (see --capacity)",
                    n - 1
                ),
            ),
            _ => CliError::Channel(e),
        }),
    }
}

/// Reads standard input into records and sends them in batches.
fn read_input(framing: Framing, max_record_len: u32, tx: &mpsc::SyncSender<Input>) {
    // Our own buffer, so we can see whether input has more bytes ready.
    let mut input = io::BufReader::with_capacity(1 << 16, io::stdin().lock());
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let next = match framing {
            Framing::Lines => next_line(&mut input, max_record_len),
            Framing::Len32 => next_frame(&mut input, max_record_len),
        };
        match next {
            Ok(Some(record)) => {
                batch.push(record);
                // Hand over a full batch, or whatever is read once the
                // input has nothing more buffered, so a slow producer's
                // records reach readers without waiting for a batch to fill.
                if batch.len() == BATCH || input.buffer().is_empty() {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    if tx.send(Input::Records(full)).is_err() {
                        return;
                    }
                }
            }
            Ok(None) => break,
            Err(cause) => {
                if !batch.is_empty() {
                    let _ = tx.send(Input::Records(std::mem::take(&mut batch)));
                }
                let _ = tx.send(Input::Failed(cause));
                return;
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(Input::Records(batch));
    }
}

/// The next line without its `\n`; `None` at the end of input. A line
/// longer than `max_record_len` is an error as soon as that is clear, so
/// input without newlines cannot fill memory.
fn next_line(input: &mut impl BufRead, max_record_len: u32) -> Result<Option<Vec<u8>>, String> {
    let mut line = Vec::new();
    // At most the longest record and its newline.
    let limit = u64::from(max_record_len) + 1;
    match input.take(limit).read_until(b'\n', &mut line) {
        Ok(0) => Ok(None),
        Ok(_) => {
            if line.last() == Some(&b'\n') {
                line.pop();
            } else if line.len() as u64 == limit {
                return Err(format!(
                    "a line is longer than the channel's maximum record of {max_record_len} \
                     bytes (see --max-record and --capacity)"
                ));
            }
            Ok(Some(line))
        }
        Err(e) => Err(format!("cannot read: {e}")),
    }
}

/// The next `len32` frame's payload; `None` at the end of input, exactly
/// between frames.
fn next_frame(input: &mut impl BufRead, max_record_len: u32) -> Result<Option<Vec<u8>>, String> {
    let mut prefix = [0u8; 4];
    let got = read_full(input, &mut prefix)?;
    if got == 0 {
        return Ok(None);
    }
    if got < prefix.len() {
        return Err(format!(
            "input ends inside a length prefix ({got} of 4 bytes)"
        ));
    }
    let len = u32::from_le_bytes(prefix);
    if len > max_record_len {
        return Err(format!(
            "a frame of {len} bytes is more than the channel's maximum record of {max_record_len}"
        ));
    }
    let mut payload = vec![0u8; len as usize];
    let got = read_full(input, &mut payload)?;
    if got < payload.len() {
        return Err(format!("input ends inside a frame ({got} of {len} bytes)"));
    }
    Ok(Some(payload))
}

/// Reads until `buf` is full or input ends; returns the bytes read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> Result<usize, String> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot read: {e}")),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_empty_ones_and_a_last_unterminated_one() {
        let mut input = &b"a\n\nb\r\nlast"[..];
        let mut lines = Vec::new();
        while let Some(line) = next_line(&mut input, 4).unwrap() {
            lines.push(line);
        }
        assert_eq!(lines, [&b"a"[..], b"", b"b\r", b"last"]);
    }

    #[test]
    fn lines_stop_at_the_maximum_record() {
        let mut input = &b"abcd\nabcd"[..];
        assert_eq!(next_line(&mut input, 4).unwrap(), Some(b"abcd".to_vec()));
        assert_eq!(next_line(&mut input, 4).unwrap(), Some(b"abcd".to_vec()));
        assert_eq!(next_line(&mut input, 4).unwrap(), None);
        let mut input = &b"abcde\n"[..];
        let err = next_line(&mut input, 4).unwrap_err();
        assert!(err.contains("maximum record of 4 bytes"), "{err}");
        // Only the maximum and one byte more are read.
        assert_eq!(input, b"\n");
    }

    #[test]
    fn frames_round_trip_and_reject_truncation() {
        let mut bytes = Vec::new();
        for payload in [&b""[..], b"\xff\x00\n", b"xyz"] {
            bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            bytes.extend_from_slice(payload);
        }
        let mut input = &bytes[..];
        let mut frames = Vec::new();
        while let Some(frame) = next_frame(&mut input, 100).unwrap() {
            frames.push(frame);
        }
        assert_eq!(frames, [&b""[..], b"\xff\x00\n", b"xyz"]);

        let cut = &bytes[..bytes.len() - 1];
        let mut input = cut;
        next_frame(&mut input, 100).unwrap();
        next_frame(&mut input, 100).unwrap();
        let err = next_frame(&mut input, 100).unwrap_err();
        assert!(err.contains("inside a frame (2 of 3 bytes)"), "{err}");

        let mut input = &[1u8, 0][..];
        assert!(
            next_frame(&mut input, 100)
                .unwrap_err()
                .contains("length prefix")
        );

        let mut input = &[0xff, 0xff, 0xff, 0xff][..];
        assert!(
            next_frame(&mut input, 100)
                .unwrap_err()
                .contains("maximum record")
        );
    }

    #[test]
    fn timeouts_keep_their_precision() {
        assert_eq!(timeout_ticks(Duration::ZERO), (0, TickUnit::Millis));
        assert_eq!(
            timeout_ticks(Duration::from_secs(10)),
            (10_000, TickUnit::Millis)
        );
        assert_eq!(
            timeout_ticks(Duration::from_micros(1500)),
            (1500, TickUnit::Micros)
        );
        assert_eq!(
            timeout_ticks(Duration::from_nanos(1)),
            (1, TickUnit::Micros)
        );
    }
}
