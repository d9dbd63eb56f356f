//! `kekbit verify`: walk every record, check every checksum, and look for
//! data where a finished channel should have none.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use kekbit_nostd::format::{HEADER_LEN, MARKER_LEN, PAYLOAD_OFFSET};

use crate::cli::VerifyArgs;
use crate::error::{CliError, CliResult, stdout_error};
use crate::inspect::{self, End, State, describe_damage};

/// Runs `kekbit verify`.
pub fn run(args: &VerifyArgs) -> CliResult {
    let path = args.path.as_path();
    let channel = inspect::open(path)?;
    let mut reader = inspect::reader(&channel)?;
    let header = *channel.header();
    let mut walk = inspect::walk(&mut reader);
    if let End::Damaged(e) = walk.end {
        return Err(CliError::path(path, describe_damage(&e)));
    }
    // Nothing is ever written after a finished channel's end marker, nor
    // after the end of an abandoned one. In an open one with a live writer,
    // data may lie one record past the end, the one being copied in now.
    // Data anywhere else means a record's commit word was zeroed, cutting
    // off the records after it (or the writer died in the middle of a
    // record, which a resumed writer discards).
    let timeout = inspect::ticks_to_duration(header.timeout_ticks, header.tick_unit);
    let live = inspect::state(walk.end, reader.heartbeat_age(), timeout) == State::Open;
    let end = HEADER_LEN as u64 + u64::from(walk.end_position);
    let in_flight = if live {
        PAYLOAD_OFFSET as u64 + u64::from(header.max_record_len).next_multiple_of(8)
    } else {
        0
    };
    let quiet_from = end + in_flight + MARKER_LEN as u64;
    if let Some(offset) = first_nonzero_byte(path, quiet_from)? {
        // A live writer may have appended records since the walk: if they
        // now reach past the data found, it was theirs.
        let more = inspect::walk(&mut reader);
        let appended = live && HEADER_LEN as u64 + u64::from(more.end_position) > offset;
        if !appended {
            return Err(CliError::path(
                path,
                format_args!(
                    "data after the end of the records at file offset {offset} (record offset \
                     {}): the commit word at record offset {} was zeroed, cutting off what \
                     follows, or the writer died while writing that record",
                    offset - HEADER_LEN as u64,
                    walk.end_position
                ),
            ));
        }
        if let End::Damaged(e) = more.end {
            return Err(CliError::path(path, describe_damage(&e)));
        }
        walk.records += more.records;
        walk.payload_bytes += more.payload_bytes;
        walk.end = more.end;
    }
    let ending = match walk.end {
        End::Closed => "closed",
        End::Full => "full",
        End::Open | End::Damaged(_) => "open",
    };
    let checks = if header.checksums() {
        "every checksum matches"
    } else {
        "no checksums (created without --checksums); lengths and framing are sound"
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    writeln!(
        out,
        "{}: ok: {} records, {} payload bytes, {ending}; {checks}",
        path.display(),
        walk.records,
        walk.payload_bytes
    )
    .and_then(|()| out.flush())
    .map_err(stdout_error)
}

/// The file offset of the first non-zero byte at or after `from`, if any.
/// Reads the file itself rather than the mapping: a plain read can never
/// race with the writer in this process's memory model.
fn first_nonzero_byte(path: &Path, from: u64) -> CliResult<Option<u64>> {
    let io_error = |e: io::Error| CliError::io(path, "read the channel", &e);
    let mut file = File::open(path).map_err(io_error)?;
    file.seek(SeekFrom::Start(from)).map_err(io_error)?;
    let mut buf = vec![0u8; 1 << 16];
    let mut offset = from;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return Ok(None),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(e)),
        };
        if let Some(i) = buf[..n].iter().position(|&b| b != 0) {
            return Ok(Some(offset + i as u64));
        }
        offset += n as u64;
    }
}
