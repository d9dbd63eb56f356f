//! `kekbit cat`: print a channel's records, optionally following the writer.

use std::io::{self, BufWriter, Write};

use kekbit_nostd::{ReadError, SeekError};
use kekbit_std::{ChannelError, ChannelReader};

use crate::cli::CatArgs;
use crate::error::{CliError, CliResult, stdout_error};
use crate::inspect::{self, describe_damage};
use crate::output::write_record;

/// Runs `kekbit cat`.
pub fn run(args: &CatArgs) -> CliResult {
    let path = args.path.as_path();
    let channel = inspect::open(path, args.shared)?;
    let mut reader = inspect::reader(&channel)?;
    if let Some(position) = args.from {
        reader.seek(position).map_err(|e| {
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

/// Prints records until the end (or, following, until the channel ends).
fn copy_records(reader: &mut ChannelReader<'_>, out: &mut impl Write, args: &CatArgs) -> CliResult {
    loop {
        let position = reader.position();
        match reader.try_read() {
            Ok(Some(record)) => {
                write_record(out, args.format, position, record).map_err(stdout_error)?;
            }
            Ok(None) if !args.follow => return Ok(()),
            Ok(None) => {
                // Caught up: show what we have, then wait for the writer.
                out.flush().map_err(stdout_error)?;
                match reader.blocking().next() {
                    Some(Ok(record)) => {
                        write_record(out, args.format, position, record).map_err(stdout_error)?;
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
