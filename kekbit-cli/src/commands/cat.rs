//! `kekbit cat`: print the records of a channel or a journal, optionally
//! following the writer.

use std::io::{self, BufWriter, Write};
use std::path::Path;

use kekbit_nostd::{ReadError, SeekError};
use kekbit_std::journal::{JournalError, JournalReader, Start};
use kekbit_std::{ChannelError, ChannelReader};

use crate::cli::CatArgs;
use crate::error::{CliError, CliResult, stdout_error};
use crate::inspect::{self, describe_damage};
use crate::journal;
use crate::output::write_record;

/// Runs `kekbit cat`.
pub fn run(args: &CatArgs) -> CliResult {
    let path = args.path.as_path();
    if journal::is_journal(path) {
        return run_journal(path, args);
    }
    let channel = inspect::open(path, args.shared)?;
    let mut reader = inspect::reader(&channel)?;
    if let Some(position) = args.from {
        let capacity = channel.header().capacity_bytes;
        let offset = u32::try_from(position).map_err(|_| {
            CliError::path(
                path,
                format_args!(
                    "--from {position}: past the end of the record area ({capacity} bytes)"
                ),
            )
        })?;
        reader.seek(offset).map_err(|e| {
            let cause = match e {
                SeekError::Read(damage) => format!(
                    "cannot reach position {position}: {}",
                    describe_damage(&damage)
                ),
                other => format!("--from {position}: {other}"),
            };
            CliError::path(path, cause)
        })?;
    }
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let result = copy_records(&mut reader, &mut out, args);
    // Print every record read before reporting what stopped the walk.
    out.flush().map_err(stdout_error)?;
    result
}

/// `kekbit cat` on a journal folder: its records in order, across its
/// segments, from the oldest retained (or `--from`).
fn run_journal(dir: &Path, args: &CatArgs) -> CliResult {
    journal::check_folder(dir, args.shared)?;
    journal::list_segments(dir)?;
    let start = args.from.map_or(Start::Beginning, Start::Position);
    let reader = if args.shared {
        // SAFETY: `--shared` is the user's word that nobody but the
        // journal's kekbit writer writes or truncates its segment files
        // while this process reads them, as the option's help says.
        unsafe { JournalReader::open_shared_at(dir, start) }
    } else {
        JournalReader::open_at(dir, start)
    };
    let mut reader = reader.map_err(|e| match (e, args.from) {
        (
            e @ (JournalError::NotARecordBoundary { .. }
            | JournalError::BeyondEnd { .. }
            | JournalError::BehindRetention { .. }),
            Some(position),
        ) => CliError::path(
            dir,
            format_args!(
                "--from {position}: {}",
                e.to_string()
                    .split_once(": ")
                    .map_or("", |(_, cause)| cause)
            ),
        ),
        (e, _) => journal::describe_error(e),
    })?;
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let result = copy_journal(&mut reader, &mut out, args);
    out.flush().map_err(stdout_error)?;
    result
}

/// Prints a journal's records until the end (or, following, until the
/// journal is closed).
fn copy_journal(reader: &mut JournalReader, out: &mut impl Write, args: &CatArgs) -> CliResult {
    loop {
        match reader.try_read() {
            Ok(Some(record)) => {
                write_record(out, args.format, record.position, record.payload)
                    .map_err(stdout_error)?;
            }
            Ok(None) if !args.follow => return Ok(()),
            Ok(None) => {
                // Caught up: show what we have, then wait for the writer,
                // across rolls, until the journal is closed.
                out.flush().map_err(stdout_error)?;
                match reader.blocking().next() {
                    Some(Ok((position, payload))) => {
                        write_record(out, args.format, position, &payload).map_err(stdout_error)?;
                    }
                    None => return Ok(()), // closed
                    Some(Err(e)) => return Err(journal::describe_error(e)),
                }
            }
            Err(e) if e.is_end() => return Ok(()),
            Err(e) => return Err(journal::describe_error(e)),
        }
    }
}

/// Prints records until the end (or, following, until the channel ends).
fn copy_records(reader: &mut ChannelReader<'_>, out: &mut impl Write, args: &CatArgs) -> CliResult {
    loop {
        let position = reader.position();
        match reader.try_read() {
            Ok(Some(record)) => {
                write_record(out, args.format, position.into(), record).map_err(stdout_error)?;
            }
            Ok(None) if !args.follow => return Ok(()),
            Ok(None) => {
                // Caught up: show what we have, then wait for the writer.
                out.flush().map_err(stdout_error)?;
                match reader.blocking().next() {
                    Some(Ok(record)) => {
                        write_record(out, args.format, position.into(), record)
                            .map_err(stdout_error)?;
                    }
                    None => return Ok(()), // closed or full
                    Some(Err(e)) => return Err(read_failure(e)),
                }
            }
            Err(e) if e.is_end() => return Ok(()),
            Err(e) => return Err(read_failure(e)),
        }
    }
}

/// A read error as one line naming the path and the offset.
fn read_failure(e: ChannelError) -> CliError {
    match e.read_error() {
        Some(damage @ (ReadError::Corrupt { .. } | ReadError::Checksum { .. })) => {
            CliError::path(e.path(), describe_damage(&damage))
        }
        _ => CliError::Channel(e),
    }
}
