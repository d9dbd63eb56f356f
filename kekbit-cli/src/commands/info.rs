//! `kekbit info`: everything about a channel, as text or JSON.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kekbit_nostd::format::{HEADER_CHECKSUM_OFFSET, HEADER_LEN, IMMUTABLE_HEADER_LEN};
use serde_json::json;

use crate::cli::InfoArgs;
use crate::error::{CliError, CliResult, stdout_error};
use crate::inspect::{
    self, End, State, describe_damage, ticks_to_duration, unit_name, unit_symbol,
};
use crate::journal::{self, Segment};
use crate::units::{human_bytes, human_nanos};

/// Runs `kekbit info`.
pub fn run(args: &InfoArgs) -> CliResult {
    let path = args.path.as_path();
    if journal::is_journal(path) {
        return run_journal(path, args);
    }
    let channel = inspect::open(path, args.shared)?;
    let mut reader = inspect::reader(&channel)?;
    let header = *channel.header();
    let header_checksum = read_header_checksum(path)?;
    let walk = inspect::walk(&mut reader);
    let heartbeat_ticks = reader.inner().heartbeat();
    let heartbeat_age = reader.heartbeat_age();
    let timeout = ticks_to_duration(header.timeout_ticks, header.tick_unit);
    let state = inspect::state(walk.end, heartbeat_age, timeout);
    let capacity = u64::from(header.capacity_bytes);
    let used = u64::from(walk.end_position);
    let free = capacity.saturating_sub(used);
    let created = ticks_to_duration(header.creation_time, header.tick_unit);
    let damage = match walk.end {
        End::Damaged(e) => Some(e),
        _ => None,
    };

    let stdout = io::stdout();
    let mut out = stdout.lock();
    if args.json {
        let value = json!({
            "kind": "channel",
            "path": path.display().to_string(),
            "file_bytes": channel.file_len(),
            "state": state.name(),
            "records": walk.records,
            "payload_bytes": walk.payload_bytes,
            "used_bytes": used,
            "free_bytes": free,
            "end_position": walk.end_position,
            "heartbeat": {
                "ticks": heartbeat_ticks,
                "age_ms": heartbeat_age.map(millis),
            },
            "header": {
                "version": header.version,
                "flags": header.flags,
                "checksums": header.checksums(),
                "epoch_time": header.epoch_time(),
                "segment": header.is_segment(),
                "journal_id": header.journal_id,
                "base_position": header.base_position,
                "writer_id": header.writer_id,
                "channel_id": header.channel_id,
                "capacity_bytes": header.capacity_bytes,
                "max_record_len": header.max_record_len,
                "timeout_ticks": header.timeout_ticks,
                "timeout_ms": millis(timeout),
                "creation_time": header.creation_time,
                "tick_unit": unit_name(header.tick_unit),
                "header_checksum": header_checksum,
            },
            "damage": damage.map(|e| json!({
                "record_offset": damage_position(&e),
                "file_offset": damage_position(&e).map(|p| HEADER_LEN as u64 + u64::from(p)),
                "message": describe_damage(&e),
            })),
        });
        writeln!(out, "{value}").map_err(stdout_error)?;
    } else {
        let unit = unit_symbol(header.tick_unit);
        let mut names = Vec::new();
        if header.checksums() {
            names.push("checksums");
        }
        if header.epoch_time() {
            names.push("epoch time");
        }
        if header.is_segment() {
            names.push("journal segment");
        }
        let flags = if names.is_empty() {
            String::from("none")
        } else {
            names.join(", ")
        };
        let heartbeat = match heartbeat_age {
            Some(age) => format!("{} ago", human_duration(age)),
            None => String::from("unknown (in the future or too old to tell)"),
        };
        let timeout_text = if header.timeout_ticks == 0 {
            String::from("0 (abandonment detection off)")
        } else {
            format!(
                "{} {unit} ({})",
                header.timeout_ticks,
                human_duration(timeout)
            )
        };
        let created_text = match since_epoch().checked_sub(created) {
            Some(ago) => format!(
                "{} {unit} since the Unix epoch ({} ago)",
                header.creation_time,
                human_duration(ago)
            ),
            None => format!("{} {unit} since the Unix epoch", header.creation_time),
        };
        let lines = [
            ("path", path.display().to_string()),
            ("state", state_text(state, timeout)),
            ("records", walk.records.to_string()),
            (
                "payload",
                format!(
                    "{} ({} bytes)",
                    human_bytes(walk.payload_bytes),
                    walk.payload_bytes
                ),
            ),
            (
                "used",
                format!(
                    "{} of {} ({used} bytes, {:.1}%)",
                    human_bytes(used),
                    human_bytes(capacity),
                    percent(used, capacity)
                ),
            ),
            ("free", format!("{} ({free} bytes)", human_bytes(free))),
            (
                "last heartbeat",
                match heartbeat_ticks {
                    Some(ticks) => format!("{heartbeat} ({ticks} {unit})"),
                    None => format!("{heartbeat} (being stored)"),
                },
            ),
            ("version", header.version.to_string()),
            ("flags", format!("{:#010x} ({flags})", header.flags)),
            ("channel id", format!("{0} ({0:#x})", header.channel_id)),
            ("writer id", format!("{0} ({0:#x})", header.writer_id)),
            (
                "capacity",
                format!(
                    "{} ({} bytes)",
                    human_bytes(capacity),
                    header.capacity_bytes
                ),
            ),
            (
                "max record",
                format!(
                    "{} ({} bytes)",
                    human_bytes(u64::from(header.max_record_len)),
                    header.max_record_len
                ),
            ),
            ("timeout", timeout_text),
            ("created", created_text),
            ("tick unit", unit_name(header.tick_unit).to_string()),
            (
                "header crc",
                format!("{header_checksum:#010x} (CRC32C, matches)"),
            ),
            ("file", format!("{} bytes", channel.file_len())),
        ];
        for (name, value) in lines {
            writeln!(out, "{name:<15} {value}").map_err(stdout_error)?;
        }
        if header.is_segment() {
            let segment = format!(
                "journal {0} ({0:#x}), base position {1}",
                header.journal_id, header.base_position
            );
            writeln!(out, "{:<15} {segment}", "segment").map_err(stdout_error)?;
        }
        if let Some(e) = damage {
            writeln!(out, "{:<15} {}", "damage", describe_damage(&e)).map_err(stdout_error)?;
        }
    }
    out.flush().map_err(stdout_error)?;
    match damage {
        Some(e) => Err(CliError::path(path, describe_damage(&e))),
        None => Ok(()),
    }
}

/// How many times `info` looks again at a journal whose live writer may
/// have been rolling (or deleting a segment) while it looked.
const LIVE_RETRIES: usize = 3;

/// `kekbit info` on a journal folder: its segments (by their framing;
/// `verify` checks every record), positions, writer and durable position.
fn run_journal(dir: &Path, args: &InfoArgs) -> CliResult {
    journal::check_folder(dir, args.shared)?;
    let mut attempt = 0;
    let (listing, writer_pid, noted_durable, segments, problems) = loop {
        attempt += 1;
        let listing = journal::list_segments(dir)?;
        let (writer_pid, noted_durable) = journal::writer(dir);
        let segments: Vec<Segment> = listing
            .segments
            .iter()
            .map(|(base, path)| journal::probe(*base, path, args.shared))
            .collect();
        let mut problems: Vec<String> = segments.iter().filter_map(|s| s.damage.clone()).collect();
        problems.extend(journal::chain_problems(dir, &segments));
        if problems.is_empty() || writer_pid.is_none() || attempt >= LIVE_RETRIES {
            break (listing, writer_pid, noted_durable, segments, problems);
        }
        thread::sleep(Duration::from_millis(20));
    };
    let (Some(first), Some(last)) = (segments.first(), segments.last()) else {
        return Err(CliError::path(dir, "no segment files"));
    };
    let journal_id = segments
        .iter()
        .find_map(|s| s.header.filter(|h| h.is_segment()).map(|h| h.journal_id));
    let end = last.end.map(|(end, _)| end);
    let last_sealed = last.end.is_some_and(|(_, ending)| ending.is_sealed());
    let state = if !problems.is_empty() {
        "damaged"
    } else if writer_pid.is_some() {
        "open"
    } else if last_sealed {
        "closed"
    } else {
        "abandoned"
    };
    let durable = match writer_pid {
        Some(_) => noted_durable,
        None if last_sealed && problems.is_empty() => end,
        None => None,
    };
    let file_bytes: u64 = segments.iter().map(|s| s.file_len).sum();
    let segment_state = |s: &Segment| match s.end {
        _ if s.damage.is_some() => "damaged",
        Some((_, ending)) => ending.name(),
        None => "damaged",
    };

    let stdout = io::stdout();
    let mut out = stdout.lock();
    if args.json {
        let names = |paths: &[std::path::PathBuf]| -> Vec<String> {
            paths.iter().map(|p| p.display().to_string()).collect()
        };
        let value = json!({
            "kind": "journal",
            "path": dir.display().to_string(),
            "journal_id": journal_id,
            "state": state,
            "writer_pid": writer_pid,
            "first_position": first.base,
            "end_position": end,
            "durable_position": durable,
            "segment_count": segments.len(),
            "file_bytes": file_bytes,
            "segments": segments.iter().map(|s| json!({
                "base": s.base,
                "path": s.path.display().to_string(),
                "state": segment_state(s),
                "end_position": s.end.map(|(end, _)| end),
                "used_bytes": s.end.map(|(end, _)| end - s.base),
                "capacity_bytes": s.header.map(|h| h.capacity_bytes),
                "max_record_len": s.header.map(|h| h.max_record_len),
                "file_bytes": s.file_len,
                "sequence": s.header.map(|h| h.channel_id),
                "checksums": s.header.map(|h| h.checksums()),
                "writer_id": s.header.map(|h| h.writer_id),
                "creation_time": s.header.map(|h| h.creation_time),
                "tick_unit": s.header.map(|h| unit_name(h.tick_unit)),
                "damage": s.damage,
            })).collect::<Vec<_>>(),
            "temporary_files": names(&listing.temporary),
            "discarded_files": names(&listing.discarded),
            "other_files": names(&listing.other),
            "problems": problems,
        });
        writeln!(out, "{value}").map_err(stdout_error)?;
    } else {
        let state_text = match state {
            "damaged" => String::from("damaged (see below)"),
            "open" => format!(
                "open (writer process {} holds its lock)",
                writer_pid.unwrap_or_default()
            ),
            "closed" => String::from("closed"),
            _ => String::from(
                "abandoned (no writer holds its lock and its last segment is not sealed: the \
                 writer died; `kekbit write --journal` resumes it)",
            ),
        };
        let end_text = end.map_or_else(
            || String::from("unknown (the last segment cannot be read)"),
            |end| {
                format!(
                    "{end} ({} of records retained)",
                    human_bytes(end - first.base)
                )
            },
        );
        let durable_text = match (durable, end) {
            (Some(d), Some(end)) if d >= end => format!("{d} (everything)"),
            (Some(d), Some(end)) => format!(
                "{d} ({} appended since the last sync)",
                human_bytes(end - d)
            ),
            (Some(d), None) => d.to_string(),
            (None, _) if writer_pid.is_some() => {
                String::from("unknown (the writer has not noted one yet)")
            }
            (None, _) => String::from(
                "unknown (its writer died; what a sync covered survives, and the next \
                 writer's recovery keeps it)",
            ),
        };
        let lines = [
            ("path", dir.display().to_string()),
            (
                "kind",
                format!(
                    "journal of {} segments ({} of files)",
                    segments.len(),
                    human_bytes(file_bytes)
                ),
            ),
            (
                "journal id",
                journal_id.map_or_else(|| String::from("unknown"), |id| format!("{id} ({id:#x})")),
            ),
            ("state", state_text),
            (
                "first position",
                format!("{} (the oldest retained record)", first.base),
            ),
            ("end position", end_text),
            ("durable", durable_text),
        ];
        for (name, value) in lines {
            writeln!(out, "{name:<15} {value}").map_err(stdout_error)?;
        }
        let mut others = Vec::new();
        if !listing.temporary.is_empty() {
            others.push(format!(
                "{} temporary (segments being made; a dead writer's are removed by the next)",
                listing.temporary.len()
            ));
        }
        if !listing.discarded.is_empty() {
            others.push(format!(
                "{} set aside by recovery (*.discarded)",
                listing.discarded.len()
            ));
        }
        if !listing.other.is_empty() {
            let names: Vec<String> = listing
                .other
                .iter()
                .map(|p| journal::file_name(p))
                .collect();
            others.push(format!("{} ignored ({})", names.len(), names.join(", ")));
        }
        if !others.is_empty() {
            writeln!(out, "{:<15} {}", "other files", others.join("; ")).map_err(stdout_error)?;
        }
        writeln!(
            out,
            "\n{:>6} {:>20} {:>20} {:>10} {:>10} {:<8} file",
            "seq", "base", "end", "used", "capacity", "state"
        )
        .map_err(stdout_error)?;
        for s in &segments {
            let (seq, capacity) = match s.header {
                Some(h) => (
                    h.channel_id.to_string(),
                    human_bytes(u64::from(h.capacity_bytes)),
                ),
                None => (String::from("?"), String::from("?")),
            };
            let (end, used) = match s.end {
                Some((end, _)) => (end.to_string(), human_bytes(end - s.base)),
                None => (String::from("?"), String::from("?")),
            };
            writeln!(
                out,
                "{seq:>6} {:>20} {end:>20} {used:>10} {capacity:>10} {:<8} {}",
                s.base,
                segment_state(s),
                s.name()
            )
            .map_err(stdout_error)?;
        }
        for problem in &problems {
            writeln!(out, "{:<15} {problem}", "damage").map_err(stdout_error)?;
        }
    }
    out.flush().map_err(stdout_error)?;
    match problems.first() {
        Some(problem) => Err(CliError::Other(problem.clone())),
        None => Ok(()),
    }
}

fn state_text(state: State, timeout: Duration) -> String {
    match state {
        State::Open => String::from("open (the writer may add records)"),
        State::Closed => String::from("closed"),
        State::Full => String::from("full"),
        State::Abandoned => format!(
            "abandoned (open, but no heartbeat for more than the {} timeout)",
            human_duration(timeout)
        ),
        State::Damaged => String::from("damaged"),
    }
}

fn damage_position(e: &kekbit_nostd::ReadError) -> Option<u32> {
    match *e {
        kekbit_nostd::ReadError::Corrupt { position, .. }
        | kekbit_nostd::ReadError::Checksum { position, .. } => Some(position),
        _ => None,
    }
}

/// The header's stored CRC32C, which the header type does not keep. Read
/// from the file: the immutable header never changes once published.
fn read_header_checksum(path: &Path) -> CliResult<u32> {
    let mut bytes = [0u8; IMMUTABLE_HEADER_LEN];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| CliError::io(path, "read the channel's header", &e))?;
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[HEADER_CHECKSUM_OFFSET..HEADER_CHECKSUM_OFFSET + 4]);
    Ok(u32::from_le_bytes(word))
}

/// Milliseconds, to the microsecond, without binary-fraction noise.
fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1e3
}

fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

fn human_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 2.0 * 86_400.0 {
        format!("{:.1} days", secs / 86_400.0)
    } else if secs >= 2.0 * 3_600.0 {
        format!("{:.1} h", secs / 3_600.0)
    } else if secs >= 120.0 {
        format!("{:.1} min", secs / 60.0)
    } else {
        human_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}
