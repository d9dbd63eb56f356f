//! The journal's unit tests: boundaries, rolls, recovery of crafted
//! states, retention under a reader, group commit. Crashes are simulated
//! by copying the folder of a live writer, which is what a `kill -9`
//! leaves (the page cache); the cross-process tests in `tests/` kill real
//! processes and simulate power loss.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kekbit_nostd::SequenceHandler;
use kekbit_nostd::format::{COMMIT_CLOSED, HEADER_LEN};

use super::*;
use crate::error::ChannelError;
use crate::fault::{Step, armed};
use crate::journal::layout::{is_temp_name, segment_path};

/// A scratch folder in memory where there is one: the tests sync a lot.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}

fn small() -> JournalOptions {
    JournalOptions::new().segment_bytes(4096)
}

/// Record `i` of a test stream: 0 to 40 bytes, derived from `i`.
fn record(i: u64) -> Vec<u8> {
    let len = (i * 7 % 41) as usize;
    (0..len).map(|k| (i as u8).wrapping_add(k as u8)).collect()
}

/// Every record from the journal's beginning to its current end.
fn read_all(dir: &Path) -> Vec<(u64, Vec<u8>)> {
    let mut reader = JournalReader::open(dir).unwrap();
    let mut all = Vec::new();
    loop {
        match reader.try_read() {
            Ok(Some(r)) => all.push((r.position, r.payload.to_vec())),
            Ok(None) => return all,
            Err(e) if e.is_end() => return all,
            Err(e) => panic!("{e}"),
        }
    }
}

/// Copies the folder as it is now: what `kill -9` of its writer leaves.
fn snapshot(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn records_cross_many_segments_and_read_back_from_anywhere() {
    let dir = scratch();
    let mut writer = small().open_writer(dir.path()).unwrap();
    let mut positions = Vec::new();
    for i in 0..3000 {
        positions.push(writer.append(&record(i)).unwrap());
    }
    assert!(writer.segment_count() > 20, "{}", writer.segment_count());
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
    let all = read_all(dir.path());
    assert_eq!(all.len(), 3000);
    for (i, (position, payload)) in all.iter().enumerate() {
        assert_eq!(
            (*position, payload.as_slice()),
            (positions[i], &record(i as u64)[..])
        );
    }
    // From every 97th record, and from the end.
    for i in (0..3000).step_by(97) {
        let mut reader = JournalReader::open_at(dir.path(), Start::Position(positions[i])).unwrap();
        let r = reader.try_read().unwrap().unwrap();
        assert_eq!(
            (r.position, r.payload),
            (positions[i], &record(i as u64)[..])
        );
    }
    let mut end = JournalReader::open_at(dir.path(), Start::End).unwrap();
    assert_eq!(end.position(), writer.end_position());
    assert!(end.try_read().unwrap().is_none());
    let p = writer.append(b"after").unwrap();
    let r = end.try_read().unwrap().unwrap();
    assert_eq!((r.position, r.payload), (p, &b"after"[..]));
    // Segment files are named by base, and each ends where the next begins.
    let found = segments(dir.path()).unwrap();
    for pair in found.windows(2) {
        assert_eq!(pair[0].end, pair[1].base);
        assert_eq!(pair[0].state, SegmentState::Closed);
        assert_eq!(pair[1].path, segment_path(dir.path(), pair[1].base));
    }
    assert_eq!(found.last().unwrap().state, SegmentState::Open);
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn boundaries_exactly_full_empty_and_largest_records() {
    let dir = scratch();
    // Capacity 64: 56 bytes for records before the end marker.
    let mut writer = JournalOptions::new()
        .segment_bytes(64)
        .open_writer(dir.path())
        .unwrap();
    let largest = vec![0xAB; 48]; // 64 - 16: exactly fills an empty segment
    assert_eq!(writer.append(&largest).unwrap(), 0);
    assert_eq!(writer.end_position(), 56);
    assert_eq!(writer.append(&largest).unwrap(), 56); // rolled
    assert!(matches!(
        writer.append(&[0; 49]),
        Err(JournalError::TooLarge { len: 49, max: 48 })
    ));
    // Empty records: 8 bytes each, 7 fill a segment exactly.
    for k in 0..7 {
        assert_eq!(writer.append(b"").unwrap(), 112 + 8 * k);
    }
    assert_eq!(writer.segment_base(), 112);
    assert_eq!(writer.append(b"").unwrap(), 168);
    // A record that does not fit the remainder rolls; one that fits, not.
    assert_eq!(writer.append(&[1; 40]).unwrap(), 176); // 168 + 8 + 48 = 224 = 168 + 56
    assert_eq!(writer.segment_base(), 168);
    assert_eq!(writer.append(&[2; 1]).unwrap(), 224);
    writer.close().unwrap();
    let all = read_all(dir.path());
    let lens: Vec<usize> = all.iter().map(|(_, r)| r.len()).collect();
    assert_eq!(lens, [48, 48, 0, 0, 0, 0, 0, 0, 0, 0, 40, 1]);
    assert_eq!(all[0].1, largest);
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn grants_handlers_and_batches_roll_like_appends() {
    let dir = scratch();
    let mut writer = JournalOptions::new()
        .segment_bytes(128)
        .open_writer(dir.path())
        .unwrap();
    let mut expected = Vec::new();
    let mut handler = SequenceHandler::new(100);
    for i in 0..40u64 {
        match i % 3 {
            0 => {
                let mut grant = writer.reserve(24).unwrap();
                grant[..3].copy_from_slice(b"grt");
                let p = grant.commit(3).unwrap();
                expected.push((p, b"grt".to_vec()));
            }
            1 => {
                let p = writer.append_with(&mut handler, "handled").unwrap();
                let mut bytes = (100 + i / 3).to_le_bytes().to_vec();
                bytes.extend_from_slice(b"handled");
                expected.push((p, bytes));
            }
            _ => {
                let p = writer.append_all(&[b"b1", b"b22"]).unwrap();
                expected.push((p, b"b1".to_vec()));
                expected.push((p + 16, b"b22".to_vec()));
                assert_eq!(writer.end_position(), p + 32);
            }
        }
        let _unused = writer.reserve(8).unwrap(); // a dropped grant publishes nothing
    }
    assert!(writer.segment_count() > 5);
    assert_eq!(handler.next_sequence(), 100 + 13); // one number per record
    // A refused record takes no number.
    let too_long = [0u8; 200];
    assert!(matches!(
        writer.append_with(&mut handler, &too_long[..]),
        Err(JournalError::TooLarge { .. })
    ));
    assert_eq!(handler.next_sequence(), 100 + 13);
    assert_eq!(read_all(dir.path()), expected);
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn explicit_and_age_rolls() {
    let dir = scratch();
    // Long enough that a loaded machine does not age the segment between
    // two statements.
    let mut writer = small()
        .roll_after(Duration::from_millis(400))
        .open_writer(dir.path())
        .unwrap();
    assert_eq!(writer.roll().unwrap(), 0); // empty: no roll
    writer.append(b"a").unwrap();
    assert_eq!(writer.roll().unwrap(), 16);
    assert_eq!(writer.roll().unwrap(), 16); // empty again
    writer.append(b"b").unwrap();
    assert_eq!(writer.segment_count(), 2);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(writer.append(b"c").unwrap(), 32); // aged: rolled first
    assert_eq!(writer.segment_base(), 32);
    assert_eq!(writer.segment_count(), 3);
    assert_eq!(writer.append(b"d").unwrap(), 48); // young: same segment
    assert_eq!(writer.segment_count(), 3);
}

#[test]
#[cfg_attr(miri, ignore)] // locks files
fn a_second_writer_is_refused_with_the_holders_pid() {
    let dir = scratch();
    let writer = small().open_writer(dir.path()).unwrap();
    match small().open_writer(dir.path()) {
        Err(JournalError::Locked { dir: d, pid }) => {
            assert_eq!(d, dir.path());
            assert_eq!(pid, Some(std::process::id()));
        }
        other => panic!("{other:?}"),
    }
    drop(writer);
    assert!(small().open_writer(dir.path()).is_ok());
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn reopening_continues_positions_after_a_clean_close() {
    let dir = scratch();
    let mut writer = small().journal_id(9).open_writer(dir.path()).unwrap();
    writer.append(b"one").unwrap();
    writer.close().unwrap();
    let mut writer = small().journal_id(1234).open_writer(dir.path()).unwrap();
    assert_eq!(writer.journal_id(), 9); // the journal keeps its id
    assert_eq!(writer.recovery().walked_segments, 0);
    assert_eq!(writer.append(b"two").unwrap(), 16); // in a new segment
    assert_eq!(writer.segment_base(), 16);
    writer.close().unwrap();
    // A journal closed with no record in its last segment: the next writer
    // replaces that segment instead of following it at the same position.
    let writer = small().open_writer(dir.path()).unwrap();
    assert_eq!(writer.segment_base(), 32);
    drop(writer); // closed empty
    let mut writer = small().open_writer(dir.path()).unwrap();
    assert_eq!(writer.segment_count(), 3); // 0, 16 and the replaced 32
    assert_eq!(writer.append(b"three").unwrap(), 32);
    writer.close().unwrap();
    let all: Vec<Vec<u8>> = read_all(dir.path()).into_iter().map(|(_, r)| r).collect();
    assert_eq!(all, [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn a_reader_at_a_closed_end_follows_a_writer_that_reopens() {
    let dir = scratch();
    let mut writer = small().open_writer(dir.path()).unwrap();
    writer.append(b"before").unwrap();
    writer.close().unwrap();
    let mut reader = JournalReader::open(dir.path()).unwrap();
    assert_eq!(&*reader.try_read().unwrap().unwrap(), b"before");
    assert!(reader.try_read().unwrap_err().is_end());
    assert!(reader.try_read().unwrap_err().is_end());
    // Reopened with nothing written, closed again: the empty segment is
    // replaced, and the reader sees the end, then what follows.
    small().open_writer(dir.path()).unwrap().close().unwrap();
    assert!(reader.try_read().unwrap_err().is_end());
    let mut writer = small().open_writer(dir.path()).unwrap();
    writer.append(b"after").unwrap();
    assert_eq!(&*reader.try_read().unwrap().unwrap(), b"after");
    assert!(reader.try_read().unwrap().is_none());
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn recovery_after_a_kill_resumes_after_the_last_record() {
    let live = scratch();
    let mut writer = small().open_writer(live.path()).unwrap();
    for i in 0..500 {
        writer.append(&record(i)).unwrap();
    }
    let end = writer.end_position();
    let copy = scratch();
    snapshot(live.path(), copy.path());
    let mut recovered = small().open_writer(copy.path()).unwrap();
    let r = recovered.recovery().clone();
    assert!(!r.created);
    assert_eq!(r.resumed_at, Some(end));
    assert!(r.discarded_segments.is_empty() && r.deleted_segments.is_empty());
    assert_eq!(recovered.durable_position(), end); // synced at open
    assert_eq!(recovered.append(b"next").unwrap(), end);
    let all = read_all(copy.path());
    assert_eq!(all.len(), 501);
    assert_eq!(all[500].1, b"next");
    // The dead writer's files made ahead (if it had made one yet) are gone;
    // the new writer has its own.
    assert!(r.removed_temp_files.iter().all(|p| !p.exists()));
    assert!(
        r.removed_temp_files
            .iter()
            .all(|p| is_temp_name(&p.file_name().unwrap().to_string_lossy()))
    );
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn recovery_seals_a_complete_segment_left_unsealed() {
    // The writer died between publishing the next segment and sealing the
    // current one: undo the seal in a copy.
    let live = scratch();
    let mut writer = small().open_writer(live.path()).unwrap();
    writer.append(b"first").unwrap();
    let second = writer.roll().unwrap();
    writer.append(b"second").unwrap();
    let copy = scratch();
    snapshot(live.path(), copy.path());
    let first = fs::OpenOptions::new()
        .write(true)
        .open(segment_path(copy.path(), 0))
        .unwrap();
    first
        .write_all_at(&[0; 4], HEADER_LEN as u64 + second)
        .unwrap();
    let mut recovered = small().open_writer(copy.path()).unwrap();
    assert_eq!(recovered.recovery().sealed_segments, [0]);
    recovered.append(b"third").unwrap();
    let all: Vec<Vec<u8>> = read_all(copy.path()).into_iter().map(|(_, r)| r).collect();
    assert_eq!(
        all,
        [b"first".to_vec(), b"second".to_vec(), b"third".to_vec()]
    );
    let mut word = [0u8; 4];
    fs::File::open(segment_path(copy.path(), 0))
        .unwrap()
        .read_exact_at(&mut word, HEADER_LEN as u64 + second)
        .unwrap();
    assert_eq!(u32::from_le_bytes(word), COMMIT_CLOSED);
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn recovery_cuts_at_the_first_damage_and_sets_the_rest_aside() {
    let live = scratch();
    let mut writer = small().open_writer(live.path()).unwrap();
    let mut positions = Vec::new();
    for i in 0..1000 {
        positions.push(writer.append(&record(i)).unwrap());
    }
    let copy = scratch();
    snapshot(live.path(), copy.path());
    // Power loss zeroed a page in the middle of the third segment.
    let found = segments(copy.path()).unwrap();
    assert!(found.len() > 4);
    let third = &found[2];
    let file = fs::OpenOptions::new()
        .write(true)
        .open(&third.path)
        .unwrap();
    file.write_all_at(&[0; 1024], HEADER_LEN as u64 + 1024)
        .unwrap();
    // And the lock file's checkpoint was not written (the worst case).
    fs::write(copy.path().join(LOCK_FILE_NAME), b"").unwrap();
    let mut recovered = small().open_writer(copy.path()).unwrap();
    let r = recovered.recovery().clone();
    assert_eq!(r.discarded_segments.len(), found.len() - 3);
    assert!(r.walked_segments >= 3);
    let kept = read_all(copy.path());
    // Everything before the damaged record, in order, and nothing after.
    assert!(!kept.is_empty());
    for (i, (position, payload)) in kept.iter().enumerate() {
        assert_eq!(
            (*position, payload.as_slice()),
            (positions[i], &record(i as u64)[..])
        );
    }
    let end = kept
        .last()
        .map_or(0, |(p, r)| p + 8 + r.len().next_multiple_of(8) as u64);
    assert!(end <= third.base + 1024);
    assert_eq!(recovered.end_position(), end);
    assert_eq!(recovered.append(b"resumed").unwrap(), end);
    assert!(
        names(copy.path())
            .iter()
            .filter(|n| n.ends_with(".discarded"))
            .count()
            == found.len() - 3
    );
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn recovery_drops_a_trailing_segment_that_never_became_valid_and_stale_temp_files() {
    let live = scratch();
    let mut writer = small().open_writer(live.path()).unwrap();
    writer.append(b"kept").unwrap();
    let copy = scratch();
    snapshot(live.path(), copy.path());
    // A segment linked before its header reached the device, and a file
    // made ahead by a writer that died.
    fs::write(segment_path(copy.path(), 16), vec![0u8; HEADER_LEN + 4096]).unwrap();
    fs::write(copy.path().join(".segment.99999.3.tmp"), b"partial").unwrap();
    fs::write(copy.path().join(".unrelated"), b"kept").unwrap();
    let mut recovered = small().open_writer(copy.path()).unwrap();
    let r = recovered.recovery().clone();
    assert_eq!(r.deleted_segments, [segment_path(copy.path(), 16)]);
    assert!(
        r.removed_temp_files
            .iter()
            .any(|p| p.ends_with(".segment.99999.3.tmp"))
    );
    assert_eq!(recovered.append(b"next").unwrap(), 16);
    assert!(names(copy.path()).contains(&".unrelated".to_string()));
    let all: Vec<Vec<u8>> = read_all(copy.path()).into_iter().map(|(_, r)| r).collect();
    assert_eq!(all, [b"kept".to_vec(), b"next".to_vec()]);
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn a_segment_of_another_journal_is_refused() {
    let a = scratch();
    let b = scratch();
    let mut wa = small().journal_id(1).open_writer(a.path()).unwrap();
    wa.append(b"a").unwrap();
    wa.roll().unwrap();
    drop(wa);
    let mut wb = small().journal_id(2).open_writer(b.path()).unwrap();
    wb.append(b"b").unwrap();
    wb.roll().unwrap();
    drop(wb);
    fs::copy(segment_path(b.path(), 16), segment_path(a.path(), 16)).unwrap();
    assert!(matches!(
        small().open_writer(a.path()),
        Err(JournalError::ForeignSegment {
            expected: 2,
            found: 1,
            ..
        }) | Err(JournalError::ForeignSegment {
            expected: 1,
            found: 2,
            ..
        })
    ));
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn retention_deletes_sealed_segments_under_a_live_reader() {
    let dir = scratch();
    let mut writer = small()
        .retention(Retention {
            max_segments: Some(3),
            ..Retention::default()
        })
        .open_writer(dir.path())
        .unwrap();
    let mut positions = Vec::new();
    for i in 0..50 {
        positions.push(writer.append(&record(i)).unwrap());
    }
    let mut reader = JournalReader::open(dir.path()).unwrap();
    let first = reader.try_read().unwrap().unwrap();
    assert_eq!(first.payload, &record(0)[..]);
    // The writer runs far ahead; retention deletes the reader's segment.
    for i in 50..3000 {
        positions.push(writer.append(&record(i)).unwrap());
    }
    writer.sync().unwrap(); // the background deletions are done by now? wait for them:
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while segments(dir.path()).unwrap().len() > 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!segment_path(dir.path(), 0).exists());
    assert_eq!(writer.segment_count(), 3);
    // The reader reads the rest of its (deleted) segment, sound, then is told.
    let mut i = 1;
    let err = loop {
        match reader.try_read() {
            Ok(Some(r)) => {
                assert_eq!(
                    (r.position, r.payload),
                    (positions[i], &record(i as u64)[..])
                );
                i += 1;
            }
            Ok(None) => panic!("the writer is far ahead"),
            Err(e) => break e,
        }
    };
    match err {
        JournalError::BehindRetention {
            requested,
            first_available,
            ..
        } => {
            assert_eq!(requested, positions[i]);
            assert_eq!(first_available, writer.first_position());
            reader.seek(first_available).unwrap();
            let r = reader.try_read().unwrap().unwrap();
            let k = positions
                .iter()
                .position(|&p| p == first_available)
                .unwrap();
            assert_eq!(r.payload, &record(k as u64)[..]);
        }
        other => panic!("{other}"),
    }
    assert!(matches!(
        JournalReader::open_at(dir.path(), Start::Position(0)),
        Err(JournalError::BehindRetention { requested: 0, .. })
    ));
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn truncate_before_keeps_the_segment_a_position_falls_in() {
    let dir = scratch();
    let mut writer = small().open_writer(dir.path()).unwrap();
    writer.append(b"a").unwrap();
    let s1 = writer.roll().unwrap();
    writer.append(b"b").unwrap();
    let s2 = writer.roll().unwrap();
    writer.append(b"c").unwrap();
    writer.truncate_before(s2 - 8).unwrap(); // inside the second segment
    assert_eq!(writer.first_position(), s1);
    writer.truncate_before(u64::MAX).unwrap(); // never the current one
    assert_eq!(writer.first_position(), s2);
    assert_eq!(writer.segment_count(), 1);
    assert_eq!(segments(dir.path()).unwrap().len(), 1);
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn the_blocking_iterator_ends_at_close_and_a_dead_writer_is_abandoned() {
    let dir = scratch();
    // A timeout no scheduling delay of the writer reaches.
    let mut writer = small()
        .timeout(Duration::from_secs(30))
        .open_writer(dir.path())
        .unwrap();
    let mut reader = JournalReader::open(dir.path()).unwrap();
    let got = std::thread::scope(|s| {
        let consumer = s.spawn(|| reader.blocking().collect::<Result<Vec<_>, _>>());
        for i in 0..300 {
            writer.append(&record(i)).unwrap();
        }
        drop(writer);
        consumer.join().unwrap()
    });
    assert_eq!(got.unwrap().len(), 300);
    // A writer that stops without closing: abandoned after the timeout.
    let live = scratch();
    let mut writer = small()
        .timeout(Duration::from_millis(100))
        .open_writer(live.path())
        .unwrap();
    writer.append(b"last words").unwrap();
    let copy = scratch();
    snapshot(live.path(), copy.path());
    let mut reader = JournalReader::open(copy.path()).unwrap();
    let mut items = reader.blocking();
    assert_eq!(items.next().unwrap().unwrap().1, b"last words");
    assert!(matches!(
        items.next(),
        Some(Err(JournalError::Abandoned { .. }))
    ));
    assert!(items.next().is_none());
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn a_failed_sync_fails_every_later_one() {
    let dir = scratch();
    let mut writer = small().open_writer(dir.path()).unwrap();
    writer.append(b"x").unwrap();
    armed::arm(Step::JournalSync);
    let err = writer.sync().unwrap_err();
    assert!(armed::all_fired());
    assert!(matches!(err, JournalError::Io { .. }), "{err}");
    assert_eq!(writer.durable_position(), 0);
    writer.append(b"y").unwrap();
    let again = writer.sync().unwrap_err();
    assert!(
        again.to_string().contains("an earlier sync failed"),
        "{again}"
    );
    assert_eq!(writer.durable_position(), 0);
    // Reopening recovers: everything in the files is kept and synced.
    drop(writer);
    let writer = small().open_writer(dir.path()).unwrap();
    assert_eq!(writer.durable_position(), 32);
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn group_commit_shares_syncs_and_acknowledges_only_durable_records() {
    // On disk, where a sync takes long enough for others to queue behind it.
    let dir = tempfile::tempdir().unwrap();
    let journal = JournalOptions::new()
        .segment_bytes(16 << 10)
        .open_writer(dir.path())
        .unwrap()
        .into_shared();
    let before = journal.sync_count();
    const THREADS: u64 = 8;
    const EACH: u64 = 200;
    let violated = AtomicBool::new(false);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let journal = journal.clone();
            let violated = &violated;
            s.spawn(move || {
                for i in 0..EACH {
                    let p = journal
                        .append_durable(&(t << 32 | i).to_le_bytes())
                        .unwrap();
                    if journal.durable_position() <= p {
                        violated.store(true, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert!(!violated.load(Ordering::Relaxed));
    let syncs = journal.sync_count() - before;
    let commits = THREADS * EACH;
    // Concurrent commits shared syncs.
    println!("{commits} commits, {syncs} syncs");
    assert!(syncs * 2 < commits, "{syncs} syncs for {commits} commits");
    let all = read_all(dir.path());
    assert_eq!(all.len() as u64, commits);
    let mut next = vec![0u64; THREADS as usize];
    for (_, r) in all {
        let v = u64::from_le_bytes(r.try_into().unwrap());
        let (t, i) = ((v >> 32) as usize, v & 0xffff_ffff);
        assert_eq!(i, next[t], "thread {t}'s records in order");
        next[t] += 1;
    }
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn the_flusher_syncs_by_bytes() {
    let dir = scratch();
    let mut writer = small()
        .flush_every(None, Some(1024))
        .open_writer(dir.path())
        .unwrap();
    for i in 0..200 {
        writer.append(&record(i)).unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while writer.durable_position() + 1024 < writer.end_position()
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(writer.durable_position() + 1024 >= writer.end_position());
    assert!(writer.durable_position() > 0);
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn inspection_sees_the_live_writer_and_its_durable_position() {
    let dir = scratch();
    let mut writer = small().open_writer(dir.path()).unwrap();
    writer.append(b"x").unwrap();
    let info = inspect(dir.path()).unwrap();
    assert_eq!(info.writer_pid, Some(std::process::id()));
    assert_eq!(info.durable_position, Some(0));
    writer.sync().unwrap();
    assert_eq!(inspect(dir.path()).unwrap().durable_position, Some(16));
    let copy = scratch();
    snapshot(dir.path(), copy.path());
    let crashed = inspect(copy.path()).unwrap();
    assert_eq!(
        (crashed.writer_pid, crashed.durable_position, crashed.closed),
        (None, None, false)
    );
    assert_eq!(crashed.end_position, Some(16));
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn arcs_of_a_shared_journal_close_it_with_the_last() {
    let dir = scratch();
    let journal = small().open_writer(dir.path()).unwrap().into_shared();
    let other = journal.clone();
    journal.append(b"a").unwrap();
    drop(journal);
    other.append(b"b").unwrap();
    assert!(matches!(
        small().open_writer(dir.path()),
        Err(JournalError::Locked { .. })
    ));
    drop(other);
    assert!(inspect(dir.path()).unwrap().closed);
}

#[test]
fn threads_get_what_the_contract_says() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<JournalWriter>();
    send::<JournalReader>();
    send_sync::<SharedJournal>();
    send_sync::<JournalError>();
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn recovery_that_cannot_sync_what_it_cleared_fails() {
    let live = scratch();
    let mut writer = small().open_writer(live.path()).unwrap();
    writer.append(b"x").unwrap();
    let copy = scratch();
    snapshot(live.path(), copy.path());
    // The tail clearing must reach the device before anything is written.
    armed::arm(Step::JournalSync);
    let err = small().open_writer(copy.path()).unwrap_err();
    assert!(armed::all_fired());
    assert!(matches!(err, JournalError::Io { .. }), "{err}");
    assert!(small().open_writer(copy.path()).is_ok());
}

#[test]
#[cfg_attr(miri, ignore)] // makes folders
fn a_folder_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch();
    let journal = dir.path().join("j");
    small().open_writer(&journal).unwrap().close().unwrap();
    fs::set_permissions(&journal, fs::Permissions::from_mode(0o770)).unwrap();
    for err in [
        small().open_writer(&journal).unwrap_err(),
        JournalReader::open(&journal).unwrap_err(),
    ] {
        assert!(
            matches!(
                err,
                JournalError::Channel(crate::ChannelError::Untrusted { .. })
            ),
            "{err}"
        );
    }
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn a_sealed_last_segment_after_a_cut_is_walked_too() {
    // Regression: power loss damaged a sealed segment (its seal survived)
    // and the header of a later one. The cut at the damaged header left a
    // sound, sealed last segment, which once passed for a clean close, so
    // the damage in the segment before it was not looked for: readers
    // stopped there and never saw the records written after recovery.
    let live = scratch();
    let mut writer = small().open_writer(live.path()).unwrap();
    for i in 0..1000 {
        writer.append(&record(i)).unwrap();
    }
    let copy = scratch();
    snapshot(live.path(), copy.path());
    fs::write(copy.path().join(LOCK_FILE_NAME), b"").unwrap(); // no checkpoint
    let found = segments(copy.path()).unwrap();
    assert!(found.len() > 4);
    let (second, fourth) = (&found[1], &found[3]);
    fs::OpenOptions::new()
        .write(true)
        .open(&second.path)
        .unwrap()
        .write_all_at(&[0; 512], HEADER_LEN as u64 + 1024)
        .unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&fourth.path)
        .unwrap()
        .write_all_at(&[0; 4096], 0)
        .unwrap();
    let mut recovered = small().open_writer(copy.path()).unwrap();
    assert!(recovered.recovery().walked_segments >= 1);
    let end = recovered.end_position();
    assert!(end <= second.base + 1024, "{end}");
    assert_eq!(recovered.append(b"after").unwrap(), end);
    let all = read_all(copy.path());
    assert_eq!(all.last().unwrap(), &(end, b"after".to_vec()));
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn a_journal_that_starts_past_zero_reads_rolls_and_recovers_like_any_other() {
    const FIRST: u64 = (1 << 40) + 8;
    let dir = scratch();
    let options = small().first_position(FIRST);
    let mut writer = options.open_writer(dir.path()).unwrap();
    assert!(writer.recovery().created);
    assert_eq!(
        (
            writer.first_position(),
            writer.end_position(),
            writer.durable_position()
        ),
        (FIRST, FIRST, FIRST)
    );
    assert!(segment_path(dir.path(), FIRST).exists());
    let mut positions = Vec::new();
    for i in 0..1500 {
        positions.push(writer.append(&record(i)).unwrap());
    }
    assert_eq!(positions[0], FIRST);
    assert!(writer.segment_count() > 3);

    // Readers: from the beginning, from any record, past the end, and
    // before the start, which is not retained.
    let all = read_all(dir.path());
    assert_eq!(all.len(), 1500);
    for (i, (position, payload)) in all.iter().enumerate() {
        assert_eq!(
            (*position, &payload[..]),
            (positions[i], &record(i as u64)[..])
        );
    }
    let mut reader = JournalReader::open_at(dir.path(), Start::Position(positions[700])).unwrap();
    assert_eq!(
        reader.try_read().unwrap().unwrap().payload,
        &record(700)[..]
    );
    for before in [0, 8, FIRST - 8] {
        match JournalReader::open_at(dir.path(), Start::Position(before)) {
            Err(JournalError::BehindRetention {
                requested,
                first_available,
                ..
            }) => assert_eq!((requested, first_available), (before, FIRST)),
            other => panic!("{before}: {other:?}"),
        }
        let err = reader.seek(before).unwrap_err();
        assert!(
            matches!(
                err,
                JournalError::BehindRetention {
                    first_available: FIRST,
                    ..
                }
            ),
            "{err}"
        );
    }
    assert_eq!(
        JournalReader::open_at(dir.path(), Start::End)
            .unwrap()
            .position(),
        writer.end_position()
    );

    // Inspection.
    let info = inspect(dir.path()).unwrap();
    assert_eq!(info.first_position, Some(FIRST));
    assert_eq!(info.segments[0].base, FIRST);
    assert_eq!(info.end_position, Some(writer.end_position()));

    // A crash: recovery resumes after the last record.
    let end = writer.end_position();
    let copy = scratch();
    snapshot(dir.path(), copy.path());
    let mut recovered = small().open_writer(copy.path()).unwrap();
    assert_eq!(recovered.recovery().resumed_at, Some(end));
    assert_eq!(recovered.first_position(), FIRST);
    assert_eq!(recovered.append(b"after the crash").unwrap(), end);
    drop(recovered);

    // A clean close and reopen, with other options: the journal keeps its
    // start (as it keeps its id).
    writer.close().unwrap();
    let mut reopened = small().first_position(0).open_writer(dir.path()).unwrap();
    assert_eq!(reopened.first_position(), FIRST);
    assert_eq!(reopened.append(b"reopened").unwrap(), end);

    // Retention moves the start on, from there.
    reopened.truncate_before(positions[1000]).unwrap();
    let first = reopened.first_position();
    assert!(first > FIRST && first <= positions[1000]);
    assert_eq!(inspect(dir.path()).unwrap().first_position, Some(first));
    let mut reader = JournalReader::open(dir.path()).unwrap();
    assert_eq!(reader.position(), first);
    let k = positions.iter().position(|&p| p == first).unwrap();
    assert_eq!(
        reader.try_read().unwrap().unwrap().payload,
        &record(k as u64)[..]
    );
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn recovery_starts_a_journal_again_where_it_started_not_at_zero() {
    const FIRST: u64 = 4096 * 1000;
    let live = scratch();
    let mut writer = small()
        .first_position(FIRST)
        .open_writer(live.path())
        .unwrap();
    for i in 0..400 {
        writer.append(&record(i)).unwrap();
    }
    let copy = scratch();
    snapshot(live.path(), copy.path());
    // Power loss took the first segment's header: nothing is sound, and
    // the journal starts again where it did.
    let found = segments(copy.path()).unwrap();
    assert!(found.len() > 1);
    assert_eq!(found[0].base, FIRST);
    fs::OpenOptions::new()
        .write(true)
        .open(&found[0].path)
        .unwrap()
        .write_all_at(&[0; 64], 0)
        .unwrap();
    let mut recovered = small().open_writer(copy.path()).unwrap();
    assert_eq!(recovered.recovery().discarded_segments.len(), found.len());
    assert_eq!(recovered.append(b"again").unwrap(), FIRST);
    assert_eq!(recovered.journal_id(), writer.journal_id());

    // A first segment whose creation never completed: the new journal goes
    // where the options say, else where that segment was being made.
    for (asked, expected) in [(None, FIRST), (Some(64), 64)] {
        let dir = scratch();
        fs::write(
            segment_path(dir.path(), FIRST),
            vec![0u8; HEADER_LEN + 4096],
        )
        .unwrap();
        let mut options = small();
        if let Some(p) = asked {
            options = options.first_position(p);
        }
        let mut w = options.open_writer(dir.path()).unwrap();
        assert!(w.recovery().created);
        assert_eq!(w.append(b"x").unwrap(), expected, "{asked:?}");
    }
}

#[test]
#[cfg_attr(miri, ignore)] // makes folders
fn a_first_position_that_no_segment_can_start_at_is_refused() {
    let dir = scratch();
    let largest = (u64::MAX - 4096) / 8 * 8;
    for bad in [4, 12, 4097, largest + 8, u64::MAX] {
        let target = dir.path().join(format!("j{bad}"));
        let err = small()
            .first_position(bad)
            .open_writer(&target)
            .unwrap_err();
        assert!(
            matches!(
                &err,
                JournalError::Channel(ChannelError::Config {
                    source: kekbit_nostd::HeaderError::BasePositionOutOfRange { base_position },
                    ..
                }) if *base_position == bad
            ),
            "{bad}: {err}"
        );
        assert!(!target.exists(), "nothing is touched");
    }
    let mut writer = small()
        .first_position(largest)
        .open_writer(dir.path().join("last"))
        .unwrap();
    assert_eq!(writer.append(b"the last position").unwrap(), largest);
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn leaving_open_syncs_and_the_next_writer_resumes_the_same_segment() {
    let dir = scratch();
    let mut writer = small().open_writer(dir.path()).unwrap();
    for i in 0..300 {
        writer.append(&record(i)).unwrap();
    }
    let end = writer.end_position();
    let before: Vec<u64> = segments(dir.path())
        .unwrap()
        .iter()
        .map(|s| s.base)
        .collect();
    assert!(before.len() > 1);
    writer.leave_open().unwrap();

    // No seal, no file made ahead, the lock free.
    let info = inspect(dir.path()).unwrap();
    assert_eq!(info.segments.last().unwrap().state, SegmentState::Open);
    assert!(!info.closed && info.writer_pid.is_none());
    assert!(names(dir.path()).iter().all(|n| !is_temp_name(n)));
    let mut reader = JournalReader::open_at(dir.path(), Start::Position(end)).unwrap();
    assert!(
        reader.try_read().unwrap().is_none(),
        "no end: a writer may come back"
    );

    let mut writer = small().open_writer(dir.path()).unwrap();
    let r = writer.recovery().clone();
    assert_eq!(r.resumed_at, Some(end));
    assert_eq!(
        r.walked_segments, 0,
        "the checkpoint covers every sealed segment"
    );
    assert_eq!(writer.durable_position(), end);
    assert_eq!(writer.append(b"resumed").unwrap(), end);
    assert_eq!(reader.try_read().unwrap().unwrap().payload, b"resumed");
    let after: Vec<u64> = segments(dir.path())
        .unwrap()
        .iter()
        .map(|s| s.base)
        .collect();
    assert_eq!(before, after, "no new segment boundary");
    writer.close().unwrap();
    assert_eq!(read_all(dir.path()).len(), 301);

    // Left open again right after a clean close: the new (empty) segment
    // is resumed, not replaced by another.
    let writer = small().open_writer(dir.path()).unwrap();
    let base = writer.segment_base();
    writer.leave_open().unwrap();
    let mut writer = small().open_writer(dir.path()).unwrap();
    assert_eq!(writer.segment_base(), base);
    assert_eq!(writer.append(b"x").unwrap(), base);
}

#[test]
#[cfg_attr(miri, ignore)] // maps files
fn leaving_open_reports_a_failed_sync_and_still_does_not_seal() {
    let dir = scratch();
    let mut writer = small().open_writer(dir.path()).unwrap();
    writer.append(b"x").unwrap();
    armed::arm(Step::JournalSync);
    let err = writer.leave_open().unwrap_err();
    assert!(armed::all_fired(), "leaving open syncs");
    assert!(matches!(err, JournalError::Io { .. }), "{err}");
    let info = inspect(dir.path()).unwrap();
    assert_eq!(info.segments[0].state, SegmentState::Open);
    let writer = small().open_writer(dir.path()).unwrap();
    assert_eq!(writer.recovery().resumed_at, Some(16));
}
