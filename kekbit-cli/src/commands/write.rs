//! `kekbit write`: standard input into a new channel, or appended to a
//! journal, one record per line or per length-prefixed frame.

use std::fs;
use std::io::{self, BufRead, Read};
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use kekbit_nostd::{ChannelConfig, Header, TickUnit, WriteError};
use kekbit_std::journal::{
    DEFAULT_SEGMENT_BYTES, JournalError, JournalOptions, JournalWriter, LOCK_FILE_NAME, Retention,
    parse_segment_file_name,
};
use kekbit_std::{ChannelError, Durability, ShmReader, ShmWriter, WriterOptions};

use crate::cli::{Framing, SyncPolicy, WriteArgs};
use crate::error::{CliError, CliResult};
use crate::journal;

/// Records handed from the input thread to the writer in one message.
const BATCH: usize = 256;

/// What the input thread sends: records, or why input stopped early.
enum Input {
    Records(Vec<Vec<u8>>),
    Failed(String),
}

/// Runs `kekbit write`.
pub fn run(args: &WriteArgs) -> CliResult {
    match (&args.journal, &args.path) {
        (Some(dir), _) => run_journal(dir, args),
        (None, Some(path)) => run_channel(path, args),
        // clap requires one of them.
        (None, None) => Err(CliError::Usage(
            "give a channel's PATH or --journal DIR".into(),
        )),
    }
}

/// Where `write` puts the records: a channel or a journal.
trait Sink {
    /// Appends record number `n` (from 1).
    fn put(&mut self, record: &[u8], n: u64) -> CliResult;
    /// Tells readers the writer is alive while input is quiet.
    fn heartbeat(&mut self);
    /// Closes the channel or journal: readers see its end.
    fn close(self) -> CliResult;
}

/// Copies standard input into `sink`, heartbeating every quarter `timeout`
/// (never if zero) while input is quiet, then closes it.
fn pump(
    mut sink: impl Sink,
    framing: Framing,
    max_record_len: u32,
    timeout: Duration,
    path: &Path,
) -> CliResult {
    let (tx, rx) = mpsc::sync_channel::<Input>(64);
    // Standard input is read on its own thread so this one can heartbeat
    // while input is slow: readers must not take a quiet pipe for a dead
    // writer. The thread is never joined: when this one returns (say, the
    // channel is full) the process exits and takes it along.
    thread::spawn(move || read_input(framing, max_record_len, &tx));
    let beat = (timeout / 4).max(Duration::from_millis(1));
    let mut count = 0u64;
    loop {
        let input = if timeout.is_zero() {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            rx.recv_timeout(beat)
        };
        match input {
            Ok(Input::Records(batch)) => {
                for record in batch {
                    count += 1;
                    sink.put(&record, count)?;
                }
            }
            Ok(Input::Failed(cause)) => {
                // The records before the fault stay, and readers see the end.
                sink.close()?;
                return Err(CliError::path(
                    path,
                    format_args!("standard input, after {count} records: {cause}"),
                ));
            }
            Err(RecvTimeoutError::Timeout) => sink.heartbeat(),
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    sink.close()
}

/// `kekbit write PATH`: a new channel.
fn run_channel(path: &Path, args: &WriteArgs) -> CliResult {
    let config = config(path, args)?;
    let durability = match args.sync {
        SyncPolicy::Durability(d) => d,
        SyncPolicy::Interval(_) => {
            return Err(CliError::Usage(format!(
                "{}: --sync interval:DUR is for journals (--journal DIR); a channel takes \
                 none, close, record, records:N or bytes:SIZE",
                path.display()
            )));
        }
    };
    let writer = WriterOptions::new(config)
        .durability(durability)
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
    let sink = ChannelSink { writer, path };
    pump(sink, args.framing, max_record_len, args.timeout, path)
}

/// A channel being written.
struct ChannelSink<'p> {
    writer: ShmWriter,
    path: &'p Path,
}

impl Sink for ChannelSink<'_> {
    fn put(&mut self, record: &[u8], n: u64) -> CliResult {
        write_one(&mut self.writer, record, n, self.path)
    }

    fn heartbeat(&mut self) {
        self.writer.heartbeat();
    }

    fn close(self) -> CliResult {
        Ok(self.writer.close()?)
    }
}

/// `kekbit write --journal DIR`: appends to the journal in DIR, creating it
/// if missing; opening the writer recovers a journal whose writer died.
fn run_journal(dir: &Path, args: &WriteArgs) -> CliResult {
    let (options, sync_every) = journal_options(dir, args)?;
    check_journal_folder(dir, args.parents)?;
    let writer = options.open_writer(dir).map_err(|e| match e {
        JournalError::Channel(ChannelError::Config { .. }) => CliError::Usage(e.to_string()),
        other => journal::describe_error(other),
    })?;
    let recovery = writer.recovery();
    let (set_aside, deleted) = (
        recovery.discarded_segments.len(),
        recovery.deleted_segments.len(),
    );
    if set_aside + deleted > 0 {
        // Not an error: the journal goes on after its last sound record.
        // But records were dropped, and the user should know.
        eprintln!(
            "kekbit: {}: recovered the journal: {set_aside} segments after its first damage \
             set aside (renamed *.discarded), {deleted} never completed deleted; writing \
             resumes at position {}",
            dir.display(),
            writer.end_position()
        );
    }
    let max_record_len = args
        .max_record
        .map_or_else(
            || Ok(Header::max_record_len_limit(options.segment_capacity())),
            u32::try_from,
        )
        .unwrap_or(u32::MAX);
    let sink = JournalSink {
        writer,
        sync_every,
        unsynced: 0,
    };
    pump(sink, args.framing, max_record_len, args.timeout, dir)
}

/// The journal options `write --journal` asks for, and after how many
/// records to sync in line (`None`: never, until close).
///
/// `--sync` maps onto the journal's durability: `none` and `close` write
/// records to the page cache only, and closing the journal syncs it (a
/// journal always does); `record` and `records:N` call `sync()` after every
/// record or every N, so the writer waits for the device; `bytes:SIZE` and
/// `interval:DUR` start the journal's background flusher, which syncs
/// whenever SIZE bytes were appended or every DUR, without holding the
/// writer up.
fn journal_options(dir: &Path, args: &WriteArgs) -> CliResult<(JournalOptions, Option<u64>)> {
    let usage = |what: String| CliError::Usage(format!("{}: {what}", dir.display()));
    let segment_bytes = match args.segment_size {
        Some(size) => u32::try_from(size).map_err(|_| {
            usage(format!(
                "--segment-size {size} is too large: a segment holds at most 4 GiB of records"
            ))
        })?,
        None => last_segment_capacity(dir).unwrap_or(DEFAULT_SEGMENT_BYTES),
    };
    // Journals time in whole milliseconds: round up, so a short timeout
    // never becomes 0 (which would turn detection off).
    let timeout_ms = args.timeout.as_nanos().div_ceil(1_000_000);
    let timeout = Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(u64::MAX));
    let mut options = JournalOptions::new()
        .segment_bytes(segment_bytes)
        .checksums(!args.no_checksums)
        .timeout(timeout)
        .retention(Retention {
            max_segments: args
                .retain_segments
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            max_bytes: args.retain_bytes,
            max_age: args.retain_age,
        });
    if let Some(max) = args.max_record {
        let max = u32::try_from(max).map_err(|_| {
            usage(format!(
                "--max-record {max} is larger than any segment allows"
            ))
        })?;
        options = options.max_record_len(max);
    }
    if let Some(age) = args.roll_after {
        options = options.roll_after(age);
    }
    let mut sync_every = None;
    match args.sync {
        SyncPolicy::Durability(Durability::None | Durability::OnClose) => {}
        SyncPolicy::Durability(Durability::EveryRecord) => sync_every = Some(1),
        SyncPolicy::Durability(Durability::EveryRecords(n)) => sync_every = Some(n.max(1)),
        SyncPolicy::Durability(Durability::EveryBytes(bytes)) => {
            options = options.flush_every(None, Some(bytes));
        }
        SyncPolicy::Interval(interval) => options = options.flush_every(Some(interval), None),
    }
    Ok((options, sync_every))
}

/// The record area of the last segment of the journal in `dir`, if there
/// is one that opens: a journal goes on with the segment size it has.
fn last_segment_capacity(dir: &Path) -> Option<u32> {
    let last = fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let base = parse_segment_file_name(entry.file_name().to_str()?)?;
            Some((base, entry.path()))
        })
        .max_by_key(|&(base, _)| base)?;
    let channel = ShmReader::open(&last.1).ok()?;
    Some(channel.header().capacity_bytes)
}

/// Refuses what `--journal DIR` should not turn into a journal: a file, a
/// folder that holds other files but no journal, a folder under a missing
/// one (without `--parents`).
fn check_journal_folder(dir: &Path, parents: bool) -> CliResult {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {
            let entries =
                fs::read_dir(dir).map_err(|e| CliError::io(dir, "list the journal folder", &e))?;
            let mut others = 0usize;
            for entry in entries {
                let entry = entry.map_err(|e| CliError::io(dir, "list the journal folder", &e))?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name == LOCK_FILE_NAME || parse_segment_file_name(&name).is_some() {
                    return Ok(());
                }
                others += 1;
            }
            if others > 0 {
                return Err(CliError::path(
                    dir,
                    format_args!(
                        "holds {others} files but no journal; give a new or empty folder for \
                         a new journal"
                    ),
                ));
            }
            Ok(())
        }
        // A link is refused by the journal itself, with the reason.
        Ok(m) if m.file_type().is_symlink() => Ok(()),
        Ok(_) => Err(CliError::path(
            dir,
            "is a file, not a folder; --journal takes a journal's folder (a new path creates one)",
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
            match parent {
                Some(parent) if !parents && !parent.exists() => Err(CliError::path(
                    dir,
                    format_args!(
                        "cannot create the journal: folder {} does not exist (pass --parents to \
                         create it)",
                        parent.display()
                    ),
                )),
                _ => Ok(()),
            }
        }
        Err(e) => Err(CliError::io(dir, "look at the journal folder", &e)),
    }
}

/// A journal being appended to.
struct JournalSink {
    writer: JournalWriter,
    /// Sync after this many records (`None`: only at close).
    sync_every: Option<u64>,
    /// Records appended since the last sync.
    unsynced: u64,
}

impl Sink for JournalSink {
    fn put(&mut self, record: &[u8], n: u64) -> CliResult {
        match self.writer.append(record) {
            Ok(_) => {}
            Err(JournalError::TooLarge { len, max }) => {
                return Err(CliError::path(
                    self.writer.path(),
                    format_args!(
                        "record {n} is {len} bytes, more than the journal's maximum of {max} \
                         (see --max-record and --segment-size)"
                    ),
                ));
            }
            Err(e) => return Err(journal::describe_error(e)),
        }
        if let Some(every) = self.sync_every {
            self.unsynced += 1;
            if self.unsynced >= every {
                self.writer.sync().map_err(journal::describe_error)?;
                self.unsynced = 0;
            }
        }
        Ok(())
    }

    fn heartbeat(&mut self) {
        self.writer.heartbeat();
    }

    fn close(self) -> CliResult {
        self.writer.close().map_err(journal::describe_error)
    }
}

/// The channel configuration the options ask for.
fn config(path: &Path, args: &WriteArgs) -> CliResult<ChannelConfig> {
    let path = path.display();
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
        .checksums(args.checksums && !args.no_checksums);
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
