//! `kekbit verify`: walk every record, check every checksum, and look past
//! the end for records that a zeroed commit word cut off (or any data more
//! than one record past the end, where no writer ever puts any). A journal
//! gets that for each segment, and a check of how its segments chain.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::thread;
use std::time::Duration;

use kekbit_nostd::format::{
    BATCH_MARKER_LEN, COMMIT_BATCH_TAG, COMMIT_CLOSED, COMMIT_EMPTY, COMMIT_FULL, COMMIT_LEN_MASK,
    COMMIT_RECORD_TAG, COMMIT_TAG_MASK, HEADER_LEN, MARKER_LEN, MAX_BATCH_SPAN, PAYLOAD_OFFSET,
    RECORD_ALIGN,
};
use kekbit_nostd::{Header, ReadError};

use crate::cli::VerifyArgs;
use crate::error::{CliError, CliResult, stdout_error};
use crate::inspect::{self, End, State, describe_damage};
use crate::journal::{self, Ending, Segment};

/// Runs `kekbit verify`.
pub fn run(args: &VerifyArgs) -> CliResult {
    let path = args.path.as_path();
    if journal::is_journal(path) {
        return run_journal(path, args.shared);
    }
    let checked = check_channel(path, args.shared, None)?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    writeln!(
        out,
        "{}: ok: {} records, {} payload bytes, {}; {}{}",
        path.display(),
        checked.records,
        checked.payload_bytes,
        checked.ending.name(),
        checksums_text(checked.header.checksums()),
        unpublished_text(checked.staged),
    )
    .and_then(|()| out.flush())
    .map_err(stdout_error)
}

/// What checking one channel found.
#[derive(Debug, Clone, Copy)]
struct Checked {
    header: Header,
    records: u64,
    payload_bytes: u64,
    /// Where the records end (the end marker, if sealed).
    end_position: u32,
    ending: Ending,
    /// Records of a batch staged past the end, not published.
    staged: Option<u64>,
}

fn checksums_text(checksums: bool) -> &'static str {
    if checksums {
        "every checksum matches"
    } else {
        "no checksums (created without --checksums); lengths and framing are sound"
    }
}

fn unpublished_text(staged: Option<u64>) -> String {
    match staged {
        Some(records) => format!(
            "; {records} unpublished records of a batch past the end (being written, or left \
             by a writer that died)"
        ),
        None => String::new(),
    }
}

/// Damage as one line; in a journal's segment (whose base is `base`), with
/// its journal position too.
fn damage_text(e: &ReadError, base: Option<u64>) -> String {
    let text = describe_damage(e);
    match (base, e) {
        (
            Some(base),
            ReadError::Corrupt { position, .. } | ReadError::Checksum { position, .. },
        ) => format!(
            "at journal position {}: {text}",
            base.saturating_add(u64::from(*position))
        ),
        _ => text,
    }
}

/// Checks every record of the channel at `path` (a journal's segment if
/// `base` is given) and what lies past its end.
fn check_channel(path: &Path, shared: bool, base: Option<u64>) -> CliResult<Checked> {
    let channel = inspect::open(path, shared)?;
    let mut reader = inspect::reader(&channel)?;
    let header = *channel.header();
    let mut walk = inspect::walk(&mut reader);
    if let End::Damaged(e) = walk.end {
        return Err(CliError::path(path, damage_text(&e, base)));
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
            return Err(CliError::path(path, damage_text(&e, base)));
        }
        walk.records += more.records;
        walk.payload_bytes += more.payload_bytes;
        walk.end = more.end;
        walk.end_position = more.end_position;
    }
    let ending = match walk.end {
        End::Closed => Ending::Closed,
        End::Full => Ending::Full,
        End::Open | End::Damaged(_) => Ending::Open,
    };
    Ok(Checked {
        header,
        records: walk.records,
        payload_bytes: walk.payload_bytes,
        end_position: walk.end_position,
        ending,
        staged: match staged {
            Some((records, _)) if ending == Ending::Open => Some(records),
            _ => None,
        },
    })
}

/// How many times `verify` looks again at a journal whose live writer may
/// have rolled (or retention deleted a segment) while it looked.
const LIVE_RETRIES: usize = 3;

/// `kekbit verify` on a journal folder: every segment as a channel, then
/// how they chain.
fn run_journal(dir: &Path, shared: bool) -> CliResult {
    journal::check_folder(dir, shared)?;
    let mut attempt = 0;
    let (listing, writer_pid, segments, checked) = loop {
        attempt += 1;
        let listing = journal::list_segments(dir)?;
        let (writer_pid, _) = journal::writer(dir);
        let mut segments = Vec::with_capacity(listing.segments.len());
        let mut checked = Vec::with_capacity(listing.segments.len());
        let mut problems = Vec::new();
        for (base, path) in &listing.segments {
            match check_channel(path, shared, Some(*base)) {
                Ok(c) => {
                    segments.push(Segment {
                        base: *base,
                        path: path.clone(),
                        file_len: 0,
                        header: Some(c.header),
                        end: Some((*base + u64::from(c.end_position), c.ending)),
                        damage: None,
                    });
                    checked.push(c);
                }
                Err(e) => {
                    problems.push(e.to_string());
                    segments.push(Segment::damaged(*base, path.clone(), None, &e));
                }
            }
        }
        problems.extend(journal::chain_problems(dir, &segments));
        if problems.is_empty() {
            break (listing, writer_pid, segments, checked);
        }
        if writer_pid.is_none() || attempt >= LIVE_RETRIES {
            let more = match problems.len() {
                1 => String::new(),
                n => format!(" (and {} more problems; `kekbit info` lists them)", n - 1),
            };
            return Err(CliError::Other(format!("{}{more}", problems[0])));
        }
        // A live writer may have been in the middle of a roll.
        thread::sleep(Duration::from_millis(20));
    };
    let records: u64 = checked.iter().map(|c| c.records).sum();
    let payload_bytes: u64 = checked.iter().map(|c| c.payload_bytes).sum();
    let (Some(first), Some(last)) = (segments.first(), segments.last()) else {
        return Err(CliError::path(dir, "no segment files"));
    };
    let (end, ending) = last.end.unwrap_or((last.base, Ending::Open));
    let journal_id = checked.first().map_or(0, |c| c.header.journal_id);
    let state = match (writer_pid, ending.is_sealed()) {
        (Some(pid), _) => format!("open (writer process {pid})"),
        (None, true) => String::from("closed"),
        (None, false) => {
            String::from("open, no writer (its writer died; `kekbit write --journal` resumes it)")
        }
    };
    let with = checked.iter().filter(|c| c.header.checksums()).count();
    let checks = if with == checked.len() {
        String::from(checksums_text(true))
    } else if with == 0 {
        String::from("no checksums (written with --no-checksums); lengths and framing are sound")
    } else {
        format!(
            "every checksum matches; {} segments have none (lengths and framing are sound)",
            checked.len() - with
        )
    };
    let mut notes = unpublished_text(checked.last().and_then(|c| c.staged));
    if !listing.temporary.is_empty() {
        let why = if writer_pid.is_some() {
            "segments being made ahead"
        } else {
            "left by a writer that died; the next writer removes them"
        };
        notes.push_str(&format!(
            "; {} temporary files ({why})",
            listing.temporary.len()
        ));
    }
    if !listing.discarded.is_empty() {
        notes.push_str(&format!(
            "; {} segments set aside by recovery (*.discarded, not read)",
            listing.discarded.len()
        ));
    }
    if !listing.other.is_empty() {
        let names: Vec<String> = listing
            .other
            .iter()
            .map(|p| journal::file_name(p))
            .collect();
        notes.push_str(&format!(
            "; {} other files ignored ({})",
            names.len(),
            names.join(", ")
        ));
    }
    let stdout = io::stdout();
    let mut out = stdout.lock();
    writeln!(
        out,
        "{}: ok: journal {journal_id:#x}, {} segments, {records} records, {payload_bytes} \
         payload bytes, positions {} to {end}, {state}; {checks}{notes}",
        dir.display(),
        segments.len(),
        first.base,
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
