//! `kekbit verify`: walk every record, check every checksum, and look past
//! the end for records that a zeroed commit word cut off (or any data more
//! than one record past the end, where no writer ever puts any).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use kekbit_nostd::Header;
use kekbit_nostd::format::{
    BATCH_MARKER_LEN, COMMIT_BATCH_TAG, COMMIT_CLOSED, COMMIT_EMPTY, COMMIT_FULL, COMMIT_LEN_MASK,
    COMMIT_RECORD_TAG, COMMIT_TAG_MASK, HEADER_LEN, MARKER_LEN, MAX_BATCH_SPAN, PAYLOAD_OFFSET,
    RECORD_ALIGN,
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
    let mut end = HEADER_LEN as u64 + u64::from(walk.end_position);
    // A batch is staged after an empty 8-byte marker slot and published by
    // one store of that marker: records right after the slot, ending in an
    // empty word, are a batch not published yet (being written now, or left
    // by a writer that died; a resumed writer clears it). No reader sees it.
    let staged = if walk.end == End::Open {
        staged_batch(path, &header, end)?
    } else {
        None
    };
    if let Some((_, staged_end)) = staged {
        end = staged_end;
    }
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
    let unpublished = match staged {
        Some((records, _)) if walk.end == End::Open => format!(
            "; {records} unpublished records of a batch past the end (being written, or left \
             by a writer that died)"
        ),
        _ => String::new(),
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    writeln!(
        out,
        "{}: ok: {} records, {} payload bytes, {ending}; {checks}{unpublished}",
        path.display(),
        walk.records,
        walk.payload_bytes
    )
    .and_then(|()| out.flush())
    .map_err(stdout_error)
}

/// If the commit word at file offset `end` is empty and a run of sound
/// records starts 8 bytes after it and ends in an empty word (within one
/// batch marker's reach): how many records, and the file offset of that
/// empty word.
fn staged_batch(path: &Path, header: &Header, end: u64) -> CliResult<Option<(u64, u64)>> {
    let io_error = |e: io::Error| CliError::io(path, "read the channel", &e);
    let file = File::open(path).map_err(io_error)?;
    let file_len = HEADER_LEN as u64 + u64::from(header.capacity_bytes);
    let first = end + BATCH_MARKER_LEN as u64;
    if first + MARKER_LEN as u64 > file_len {
        return Ok(None);
    }
    let mut word = [0u8; 4];
    read_at(&file, &mut word, end).map_err(io_error)?;
    if u32::from_le_bytes(word) != COMMIT_EMPTY {
        return Ok(None);
    }
    let run = run_of_records(&file, header, first, file_len, u64::MAX).map_err(io_error)?;
    Ok(match run {
        Some(Run::Empty { records, at })
            if records > 0 && at - first <= u64::from(MAX_BATCH_SPAN) =>
        {
            Some((records, at))
        }
        _ => None,
    })
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
                || word & COMMIT_TAG_MASK == COMMIT_BATCH_TAG
                || (word & COMMIT_TAG_MASK == COMMIT_RECORD_TAG
                    && word & COMMIT_LEN_MASK <= header.max_record_len);
            if !plausible {
                continue;
            }
            let start = at + (i * RECORD_ALIGN) as u64;
            let run = run_of_records(&file, header, start, file_len, 64).map_err(io_error)?;
            let cut_off = match run {
                Some(Run::Empty { records, .. }) => records > 0,
                Some(Run::Marker | Run::Long) => true,
                None => false,
            };
            if cut_off {
                return Ok(Some(start));
            }
        }
        at += n as u64;
    }
    Ok(None)
}

/// How a run of sound records ends.
#[derive(Debug, Clone, Copy)]
enum Run {
    /// In an empty commit word at file offset `at`, after `records` records.
    Empty { records: u64, at: u64 },
    /// In an end marker.
    Marker,
    /// It went on for `limit` records: proof enough.
    Long,
}

/// Follows sound records from file offset `at`: lengths that fit (and
/// checksums that match, when the channel has them), for at most `limit`
/// records. `None` if something else than a record, an empty word or an
/// end marker comes first.
fn run_of_records(
    file: &File,
    header: &Header,
    mut at: u64,
    file_len: u64,
    limit: u64,
) -> io::Result<Option<Run>> {
    let mut records = 0;
    while records < limit {
        if at + MARKER_LEN as u64 > file_len {
            return Ok(None);
        }
        let mut head = [0u8; PAYLOAD_OFFSET];
        read_at(file, &mut head, at)?;
        let word = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        match word {
            COMMIT_CLOSED | COMMIT_FULL => return Ok(Some(Run::Marker)),
            COMMIT_EMPTY => return Ok(Some(Run::Empty { records, at })),
            _ if word & COMMIT_TAG_MASK == COMMIT_BATCH_TAG => {
                // A batch marker: its records follow it.
                let span = u64::from(word & COMMIT_LEN_MASK);
                let fits = at + (BATCH_MARKER_LEN + MARKER_LEN) as u64 + span <= file_len;
                if span == 0 || span % RECORD_ALIGN as u64 != 0 || !fits {
                    return Ok(None);
                }
                at += BATCH_MARKER_LEN as u64;
                continue;
            }
            _ if word & COMMIT_TAG_MASK != COMMIT_RECORD_TAG => return Ok(None),
            _ => {}
        }
        let len = word & COMMIT_LEN_MASK;
        let next = at + PAYLOAD_OFFSET as u64 + u64::from(len).next_multiple_of(8);
        if len > header.max_record_len || next + MARKER_LEN as u64 > file_len {
            return Ok(None);
        }
        if header.checksums() {
            let mut payload = vec![0u8; len as usize];
            read_at(file, &mut payload, at + PAYLOAD_OFFSET as u64)?;
            let stored = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
            if kekbit_nostd::record_checksum(&payload) != Some(stored) {
                return Ok(None);
            }
        }
        at = next;
        records += 1;
    }
    Ok(Some(Run::Long))
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
