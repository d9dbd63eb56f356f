//! `kekbit kv`: a thin shell over `kekbit_kv::admin`.

use std::io::{self, Write};
use std::path::Path;

use kekbit_kv::admin;
use serde_json::json;

use crate::cli::KvCommand;
use crate::error::{CliError, CliResult, stdout_error};
use crate::units::human_bytes;

fn kv_error(e: kekbit_kv::Error) -> CliError {
    // kekbit-kv's messages already start with the path.
    CliError::Other(e.to_string())
}

/// Runs `kekbit kv ...`.
pub fn run(command: &KvCommand) -> CliResult {
    match command {
        KvCommand::Prune { dir, keep } => {
            let done = admin::prune(dir, *keep).map_err(kv_error)?;
            report(dir, &done)
        }
        KvCommand::Clean { dir } => {
            let done = admin::clean(dir).map_err(kv_error)?;
            report(dir, &done)
        }
        KvCommand::Info { dir, json } => info(dir, *json),
        KvCommand::Get { dir, key, hex } => {
            let key = if *hex {
                parse_hex(key).ok_or_else(|| CliError::Usage(format!("`{key}` is not hex")))?
            } else {
                key.as_bytes().to_vec()
            };
            let all = admin::contents(dir).map_err(kv_error)?;
            match all.get(&key) {
                Some(value) => {
                    let mut out = io::stdout().lock();
                    out.write_all(value).map_err(stdout_error)?;
                    out.flush().map_err(stdout_error)
                }
                None => Err(CliError::path(dir, "no such key")),
            }
        }
        KvCommand::Dump { dir } => {
            let all = admin::contents(dir).map_err(kv_error)?;
            let mut entries: Vec<_> = all.into_iter().collect();
            entries.sort();
            let mut out = io::BufWriter::new(io::stdout().lock());
            for (k, v) in entries {
                writeln!(out, "{}\t{}", printable(&k), printable(&v)).map_err(stdout_error)?;
            }
            out.flush().map_err(stdout_error)
        }
    }
}

fn report(dir: &Path, done: &admin::Cleanup) -> CliResult {
    let mut out = io::stdout().lock();
    for path in &done.deleted {
        writeln!(out, "deleted {}", path.display()).map_err(stdout_error)?;
    }
    writeln!(
        out,
        "{}: {} snapshot(s) kept, {} file(s) deleted",
        dir.display(),
        done.kept.len(),
        done.deleted.len()
    )
    .map_err(stdout_error)
}

fn info(dir: &Path, as_json: bool) -> CliResult {
    let info = admin::info(dir).map_err(kv_error)?;
    let snapshots: Vec<_> = info
        .manifest
        .as_ref()
        .map(|m| m.snapshots.clone())
        .unwrap_or_default();
    let mut out = io::stdout().lock();
    if as_json {
        let value = json!({
            "path": dir.display().to_string(),
            "live": info.live_owner.is_some(),
            "owner_pid": info.live_owner.flatten(),
            "manifest_generation": info.manifest.as_ref().map(|m| m.generation),
            "snapshots": snapshots.iter().map(|s| json!({
                "seq": s.seq,
                "file": kekbit_kv::snapshot::snapshot_name(s.seq),
                "log_position": s.log_position,
                "entries": s.entries,
                "bytes": s.file_bytes,
            })).collect::<Vec<_>>(),
            "unlisted_snapshot_files": info.snapshot_files.iter().filter(|f| !f.2)
                .map(|f| kekbit_kv::snapshot::snapshot_name(f.0)).collect::<Vec<_>>(),
            "temporaries": info.temporaries.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "log_bytes": info.log_bytes,
            "log_first_position": info.log_first_position,
        });
        writeln!(out, "{value}").map_err(stdout_error)
    } else {
        let w = |out: &mut io::StdoutLock<'_>, line: String| {
            writeln!(out, "{line}").map_err(stdout_error)
        };
        w(&mut out, format!("store      {}", dir.display()))?;
        w(
            &mut out,
            match info.live_owner {
                Some(Some(pid)) => format!("state      open (pid {pid})"),
                Some(None) => "state      open".to_string(),
                None => "state      closed".to_string(),
            },
        )?;
        match &info.manifest {
            Some(m) => w(&mut out, format!("manifest   generation {}", m.generation))?,
            None => w(&mut out, "manifest   none".to_string())?,
        }
        for (i, s) in snapshots.iter().enumerate() {
            w(
                &mut out,
                format!(
                    "snapshot   {} ({}): {} entries, {}, log from {}",
                    kekbit_kv::snapshot::snapshot_name(s.seq),
                    if i == 0 { "newest" } else { "backup" },
                    s.entries,
                    human_bytes(s.file_bytes),
                    s.log_position
                ),
            )?;
        }
        for f in info.snapshot_files.iter().filter(|f| !f.2) {
            w(
                &mut out,
                format!(
                    "unlisted   {} ({}; `kekbit kv clean` deletes it)",
                    kekbit_kv::snapshot::snapshot_name(f.0),
                    human_bytes(f.1)
                ),
            )?;
        }
        for t in &info.temporaries {
            w(&mut out, format!("temporary  {}", t.display()))?;
        }
        w(
            &mut out,
            format!(
                "log        {} from position {}",
                human_bytes(info.log_bytes),
                info.log_first_position
            ),
        )
    }
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn printable(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.chars().any(char::is_control) && !s.starts_with("0x") => s.to_string(),
        _ => {
            let mut out = String::from("0x");
            for b in bytes {
                out.push_str(&format!("{b:02x}"));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_printable() {
        assert_eq!(parse_hex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(parse_hex("0x0a"), Some(vec![10]));
        assert_eq!(parse_hex("abc"), None);
        assert_eq!(parse_hex("zz"), None);
        assert_eq!(printable(b"abc"), "abc");
        assert_eq!(printable(&[0, 1]), "0x0001");
        assert_eq!(printable(b"0x12"), "0x30783132");
        assert_eq!(printable(b"a\tb"), "0x610962");
    }
}
