//! `kekbit info`: everything about a channel, as text or JSON.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kekbit_nostd::format::{HEADER_CHECKSUM_OFFSET, HEADER_LEN, IMMUTABLE_HEADER_LEN};
use serde_json::json;

use crate::cli::InfoArgs;
use crate::error::{CliError, CliResult, stdout_error};
use crate::inspect::{
    self, End, State, describe_damage, ticks_to_duration, unit_name, unit_symbol,
};
use crate::units::{human_bytes, human_nanos};

/// Runs `kekbit info`.
pub fn run(args: &InfoArgs) -> CliResult {
    let path = args.path.as_path();
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
