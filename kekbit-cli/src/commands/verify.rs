//! `kekbit verify`: walk every record, check every checksum, and look past
//! the end for records that a zeroed commit word cut off (or any data more
//! than one record past the end, where no writer ever puts any).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use kekbit_nostd::Header;
use kekbit_nostd::format::{
    COMMIT_CLOSED, COMMIT_EMPTY, COMMIT_FULL, COMMIT_LEN_MASK, COMMIT_RECORD_TAG, COMMIT_TAG_MASK,
    HEADER_LEN, MARKER_LEN, PAYLOAD_OFFSET, RECORD_ALIGN,
};

use crate::cli::VerifyArgs;
use crate::error::{CliError, CliResult, stdout_error};
use crate::inspect::{self, End, State, describe_damage};

/// Runs `kekbit verify`.
pub fn run(args: &VerifyArgs) -> CliResult {
    let path = args.path.as_path();
    let channel = inspect::open(path, args.shared)?;
    let mut reader = inspect::reader(&channel)?;
    let header = *channel.header();
    let mut walk = inspect::walk(&mut reader);
    if let End::Damaged(e) = walk.end {
        return Err(CliError::path(path, describe_damage(&e)));
    }
    // Within one record of the end, payload bytes may lie that nobody
    // published: the record a live writer is copying in now, what a record
    // committed shorter than its grant left, or a grant dropped unpublished.
    // Past that, data means a record's commit word was zeroed, cutting off
    // the records after it (or the writer died in the middle of a record,
    // which a resumed writer discards). Within it, so does a run of sound
    // records (or an end marker) that no walk reaches.
    let timeout = inspect::ticks_to_duration(header.timeout_ticks, header.tick_unit);
    let live = inspect::state(walk.end, reader.heartbeat_age(), timeout) == State::Open;
    let end = HEADER_LEN as u64 + u64::from(walk.end_position);
    let window_end =
        end + PAYLOAD_OFFSET as u64 + u64::from(header.max_record_len).next_multiple_of(8);
    let found = match cut_off_records(path, &header, end + MARKER_LEN as u64, window_end)? {
        Some(offset) => Some(offset),
        None => first_nonzero_byte(path, window_end + MARKER_LEN as u64)?,
    };
    if let Some(offset) = found {
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

/// The file offset of the first record in `from..to` (8-aligned file
/// offsets) that starts a run of records no walk reaches: records whose
/// lengths fit (and whose checksums match, when the channel has them),
/// ending in an empty commit word after at least one record, or in an end
/// marker. Payload bytes left past the end by an unpublished grant do not
/// form such a run, but the records after a zeroed commit word do.
fn cut_off_records(path: &Path, header: &Header, from: u64, to: u64) -> CliResult<Option<u64>> {
    let io_error = |e: io::Error| CliError::io(path, "read the channel", &e);
    let file = File::open(path).map_err(io_error)?;
    let file_len = HEADER_LEN as u64 + u64::from(header.capacity_bytes);
    let to = to.min(file_len);
    let mut buf = vec![0u8; 1 << 16];
    let mut at = from;
    while at < to {
        let n = usize::try_from(to - at).map_or(buf.len(), |left| left.min(buf.len()));
        let chunk = &mut buf[..n];
        read_at(&file, chunk, at).map_err(io_error)?;
        for (i, word) in chunk.chunks_exact(RECORD_ALIGN).enumerate() {
            let word = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
            let plausible = matches!(word, COMMIT_CLOSED | COMMIT_FULL)
                || (word & COMMIT_TAG_MASK == COMMIT_RECORD_TAG
                    && word & COMMIT_LEN_MASK <= header.max_record_len);
            if !plausible {
                continue;
            }
            let start = at + (i * RECORD_ALIGN) as u64;
            if run_of_records(&file, header, start, file_len).map_err(io_error)? {
                return Ok(Some(start));
            }
        }
        at += n as u64;
    }
    Ok(None)
}

/// Whether sound records start at file offset `at` and run to an end
/// marker, or to an empty commit word after at least one record (at most
/// 64 records are followed: that many sound ones are proof enough).
fn run_of_records(file: &File, header: &Header, mut at: u64, file_len: u64) -> io::Result<bool> {
    for records in 0..64 {
        if at + MARKER_LEN as u64 > file_len {
            return Ok(false);
        }
        let mut head = [0u8; PAYLOAD_OFFSET];
        read_at(file, &mut head, at)?;
        let word = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        match word {
            COMMIT_CLOSED | COMMIT_FULL => return Ok(true),
            COMMIT_EMPTY => return Ok(records > 0),
            _ if word & COMMIT_TAG_MASK != COMMIT_RECORD_TAG => return Ok(false),
            _ => {}
        }
        let len = word & COMMIT_LEN_MASK;
        let next = at + PAYLOAD_OFFSET as u64 + u64::from(len).next_multiple_of(8);
        if len > header.max_record_len || next + MARKER_LEN as u64 > file_len {
            return Ok(false);
        }
        if header.checksums() {
            let mut payload = vec![0u8; len as usize];
            read_at(file, &mut payload, at + PAYLOAD_OFFSET as u64)?;
            let stored = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
            if kekbit_nostd::record_checksum(&payload) != Some(stored) {
                return Ok(false);
            }
        }
        at = next;
    }
    Ok(true)
}

/// Fills `buf` from file offset `at`.
fn read_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, at)
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
