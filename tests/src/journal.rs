//! What the journal tests share: a record stream whose every record says
//! where it belongs, and a power-loss simulation on a copy of a journal.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;

use kekbit_nostd::format::HEADER_LEN;
use kekbit_std::journal::{JournalReader, parse_segment_file_name};

use crate::{SplitMix, record};

/// Journal record `seq` of stream `seed`, written by generation `gen` (the
/// writer's incarnation): `[seq u64][gen u32][payload]`, the payload
/// derived from all three, so that a record from another place or another
/// generation never passes for this one.
pub fn journal_record(seed: u64, seq: u64, generation: u32, out: &mut Vec<u8>) {
    let mut payload = Vec::new();
    record(
        seed ^ u64::from(generation).rotate_left(17),
        seq,
        &mut payload,
    );
    out.clear();
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&generation.to_le_bytes());
    out.extend_from_slice(&payload);
}

/// The sequence number and generation a journal record says it has, if it
/// is one of `seed`'s stream and intact.
pub fn check_journal_record(seed: u64, bytes: &[u8]) -> Result<(u64, u32), String> {
    let (Some(seq), Some(generation)) = (bytes.get(..8), bytes.get(8..12)) else {
        return Err(format!("a record of {} bytes is too short", bytes.len()));
    };
    let seq = u64::from_le_bytes(seq.try_into().unwrap_or_default());
    let generation = u32::from_le_bytes(generation.try_into().unwrap_or_default());
    let mut expected = Vec::new();
    journal_record(seed, seq, generation, &mut expected);
    if expected != bytes {
        return Err(format!(
            "record {seq} of generation {generation} is damaged ({} bytes, expected {})",
            bytes.len(),
            expected.len()
        ));
    }
    Ok((seq, generation))
}

/// Reads the journal in `dir` from its beginning to its end now: every
/// record's position and bytes.
pub fn read_journal(dir: &Path) -> Result<Vec<(u64, Vec<u8>)>, String> {
    let mut reader = JournalReader::open(dir).map_err(|e| e.to_string())?;
    let mut all = Vec::new();
    loop {
        match reader.try_read() {
            Ok(Some(r)) => all.push((r.position, r.payload.to_vec())),
            Ok(None) => return Ok(all),
            Err(e) if e.is_end() => return Ok(all),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Copies the files of folder `from` into `to` (made if missing).
pub fn copy_folder(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("make the copy's folder");
    for entry in fs::read_dir(from).expect("list the folder") {
        let entry = entry.expect("list the folder");
        // A file made ahead may vanish while we copy: that is a crash too.
        let _ = fs::copy(entry.path(), to.join(entry.file_name()));
    }
}

/// The page size the simulation loses or keeps data by.
const PAGE: u64 = 4096;

/// What [`lose_power`] did, for the test's log.
#[derive(Debug, Default)]
pub struct Loss {
    pub zeroed_pages: usize,
    pub truncated_to: Option<(String, u64)>,
    pub deleted: Vec<String>,
}

/// Simulates power loss on a copy of a journal folder whose writer had made
/// everything before journal position `durable` durable: every 4 KiB page
/// of segment data after it is kept or lost (zeroed) at random, the page
/// that holds `durable` may lose its part after it, the last segment may be
/// cut short anywhere after it, and trailing segments created after it may
/// vanish (their folder entry never synced). Nothing before `durable` is
/// touched: that is the promise under test.
pub fn lose_power(dir: &Path, durable: u64, rng: &mut SplitMix) -> Loss {
    let mut loss = Loss::default();
    let mut segments: Vec<(u64, std::path::PathBuf)> = fs::read_dir(dir)
        .expect("list the copy")
        .filter_map(|e| {
            let e = e.ok()?;
            let base = parse_segment_file_name(e.file_name().to_str()?)?;
            Some((base, e.path()))
        })
        .collect();
    segments.sort();
    // Segments created after the durable position may vanish, the newest first.
    while let Some((base, path)) = segments.last() {
        if *base > durable && segments.len() > 1 && rng.next_u64().is_multiple_of(4) {
            loss.deleted.push(path.display().to_string());
            fs::remove_file(path).expect("delete a segment");
            segments.pop();
        } else {
            break;
        }
    }
    let last = segments.len().saturating_sub(1);
    for (i, (base, path)) in segments.iter().enumerate() {
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .expect("open a segment of the copy");
        let len = file.metadata().expect("stat a segment").len();
        // File offsets below `kept` hold durable bytes.
        let kept = if *base >= durable {
            0
        } else {
            (HEADER_LEN as u64 + (durable - base)).min(len)
        };
        let policy = rng.next_u64() % 3; // 0: keep all, 1: lose all, 2: each page at random
        let mut page = kept / PAGE * PAGE;
        while page < len {
            let from = page.max(kept);
            let to = (page + PAGE).min(len);
            let lose = match policy {
                0 => false,
                1 => true,
                _ => rng.next_u64().is_multiple_of(2),
            };
            if lose && to > from {
                file.write_all_at(&vec![0u8; (to - from) as usize], from)
                    .expect("zero a page");
                loss.zeroed_pages += 1;
            }
            page += PAGE;
        }
        if i == last && rng.next_u64().is_multiple_of(2) && len > kept {
            let cut = kept + rng.next_u64() % (len - kept);
            file.set_len(cut).expect("truncate the last segment");
            loss.truncated_to = Some((path.display().to_string(), cut));
        }
    }
    loss
}

/// The checkpoint a journal's lock file holds (0 if none): every sealed
/// segment that ends at or before it was synced by its writer's
/// background thread, so a power-loss simulation must keep it.
pub fn checkpoint_of(dir: &Path) -> u64 {
    fs::read_to_string(dir.join(kekbit_std::journal::LOCK_FILE_NAME))
        .ok()
        .and_then(|text| text.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(0)
}
