//! Journals (`kekbit_std::journal`) as a system under test, in three
//! tables: appends in `/dev/shm` across segment rolls against the same
//! records into one big channel; the latency of each append with and
//! without rolls; and durable commits on disk from 1, 4 and 16 threads,
//! each waiting for its own record (`SharedJournal::append_durable`, group
//! commit) against one `pwrite` + `fdatasync` per commit and
//! persistent-kv's `BlockAndSync`.
//!
//! `compare` calls [`declare`] once, [`rep`] once per repetition (systems
//! alternate inside it) and [`targets`] at the end.

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use kekbit_nostd::ChannelConfig;
use kekbit_nostd::format::HEADER_LEN;
use kekbit_std::journal::{JournalOptions, JournalWriter, SharedJournal};
use kekbit_std::{ShmWriter, WriterOptions};

use crate::kek::{Remove, record_span};

use crate::pipe::{pin, stamp};
use crate::report::{Report, Unit};
use crate::{Res, fail};

/// Payload bytes of every record here.
pub const LEN: usize = 64;
/// Table: appends per second, writer alone.
pub const T_APPENDS: &str = "Journal appends in /dev/shm (64 B, writer alone)";
/// Table: append latency percentiles.
pub const T_LATENCY: &str = "Journal append latency in /dev/shm (64 B)";
/// Table: durable commits per second.
pub const T_COMMITS: &str = "Durable commits on disk (64 B, each thread waits for its own record)";
/// Table: how many commits shared one sync.
pub const T_PER_SYNC: &str = "Group commit: commits per sync";

/// Rows and columns shared by the tables and the targets.
const CHANNEL: &str = "one channel";
const CHANNEL_PLAIN: &str = "one channel, checksums off";
const CHANNEL_CREATED: &str = "one channel, pre-faulting timed too";
/// The appends table's columns.
const WALL: &str = "64 B";
const CPU: &str = "64 B, by the writer thread's CPU time";
const ONE_SEGMENT: &str = "journal, one segment (no rolls)";
const JOURNAL_COMMIT: &str = "journal: SharedJournal::append_durable";
const FLOOR: &str = "floor: pwrite + fdatasync per commit";
const PKV: &str = "persistent-kv 1.0.2: set, BlockAndSync";
const THREADS: [usize; 3] = [1, 4, 16];
const P999: &str = "p99.9";

/// How big and how long.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Records per append and latency run.
    pub records: u64,
    /// Segment size of the rolling journal (64 MiB; 1 MiB with `--quick`,
    /// so that the smaller volume still rolls).
    pub roll_segment: u32,
    /// A second, small segment size for the latency table (none in
    /// `--quick`).
    pub small_segment: Option<u32>,
    /// Segment size of the journals the commit workloads write.
    pub commit_segment: u32,
    /// How long each commit measurement runs.
    pub commit_time: Duration,
    /// Pause after a journal's background thread has made (allocated) its
    /// next segment, for the last of its pre-faulting, before the first
    /// append.
    pub settle: Duration,
}

impl Plan {
    /// The full run's plan, or `--quick`'s.
    pub fn new(quick: bool) -> Self {
        if quick {
            Self {
                records: 1 << 17,
                roll_segment: 1 << 20,
                small_segment: None,
                commit_segment: 1 << 20,
                commit_time: Duration::from_millis(100),
                settle: Duration::from_millis(50),
            }
        } else {
            Self {
                records: 6 << 20,
                roll_segment: 64 << 20,
                small_segment: Some(1 << 20),
                commit_segment: 16 << 20,
                commit_time: Duration::from_millis(500),
                settle: Duration::from_millis(50),
            }
        }
    }

    fn rolling(&self) -> String {
        format!("journal, {} segments", mib(self.roll_segment))
    }

    fn rolling_plain(&self) -> String {
        format!("{}, checksums off", self.rolling())
    }

    fn rolls(&self, segment: u32) -> u64 {
        let per = u64::from(segment) / record_span(LEN) as u64;
        self.records.saturating_sub(1) / per.max(1)
    }
}

fn mib(bytes: u32) -> String {
    format!("{} MiB", bytes >> 20)
}

fn threads_col(t: usize) -> String {
    if t == 1 {
        String::from("1 thread")
    } else {
        format!("{t} threads")
    }
}

/// Declares the journal tables, in order, with their notes.
pub fn declare(report: &mut Report, plan: &Plan, disk_fs: &str) {
    let n = plan.records;
    report.section(
        T_APPENDS,
        &format!(
            "One thread appends {n} records of {LEN} B, with nothing reading, and the time \
             from the first append to the last is taken, by the wall clock and (second \
             column) in the appending thread's own CPU time, which leaves out the time other \
             processes took its CPU (and any wait for a segment). \"{channel}\": a kekbit-std \
             channel made for all of them (pre-faulted when created, outside the timed \
             window; \"{created}\" counts the creation), written with `ShmWriter::write`. \
             Journals: `JournalWriter::append` with the journal's defaults (checksums on, \
             each segment pre-faulted by the writer's background thread while the writer \
             fills the one before), first appended to once the background thread has made \
             the next segment; \"{rolling}\" rolls {rolls} times; \"{one}\" is one segment \
             big enough for every record. The channel has checksums on too, as the journal \
             has; the last two rows turn them off in both. Ratios are to \"{channel}\".",
            channel = CHANNEL,
            created = CHANNEL_CREATED,
            rolling = plan.rolling(),
            rolls = plan.rolls(plan.roll_segment),
            one = ONE_SEGMENT,
        ),
    );
    report.set_baseline(T_APPENDS, CHANNEL);
    let small = plan.small_segment.map_or(String::new(), |s| {
        format!("; \"journal, {}\" rolls {} times", mib(s), plan.rolls(s))
    });
    report.section(
        T_LATENCY,
        &format!(
            "The same {n} appends into journals, each timed alone (`Instant::now()` before \
             and after, whose own cost is in every figure) into an HDR histogram; medians \
             over repetitions. \"{rolling}\" rolls {rolls} times{small}; the rows \"the \
             appends that rolled\" give the latency of those appends alone. Ratios are to \
             \"{one}\". Lower is better.",
            rolling = plan.rolling(),
            rolls = plan.rolls(plan.roll_segment),
            one = ONE_SEGMENT,
        ),
    );
    report.set_baseline(T_LATENCY, ONE_SEGMENT);
    report.section(
        T_COMMITS,
        &format!(
            "On disk ({disk_fs}, not tmpfs). 1, 4 or 16 threads each append a {LEN} B record \
             and wait until it is durable, over and over, for {} ms; cells are commits per \
             second, all threads together. Journal: `SharedJournal::append_durable` (group \
             commit: one thread syncs for every record appended before its sync started, \
             the others wait and are woken), segments of {}. Floor: each commit is a \
             `pwrite` of its record at its own offset in a file written and synced in full \
             beforehand, then `fdatasync` of that file. persistent-kv: `set` of a new `u64` \
             key to a {LEN} B value with `SyncMode::BlockAndSync` (its write-ahead log, \
             `sync_all` after every write), otherwise its defaults. Ratios are to the \
             journal.",
            plan.commit_time.as_millis(),
            mib(plan.commit_segment),
        ),
    );
    report.set_baseline(T_COMMITS, JOURNAL_COMMIT);
    report.section(
        T_PER_SYNC,
        "Commits of the journal rows above divided by the syncs that made them durable \
         (`SharedJournal::sync_count`).",
    );
    report.set_baseline(T_PER_SYNC, JOURNAL_COMMIT);
}

/// One repetition of every journal workload.
pub fn rep(report: &mut Report, plan: &Plan, shm: &Path, disk: &Path) -> Res<()> {
    appends_rep(report, plan, shm)?;
    latency_rep(report, plan, shm)?;
    commits_rep(report, plan, disk)
}

// ---------------------------------------------------------------------------
// Appends

fn appends_rep(report: &mut Report, plan: &Plan, shm: &Path) -> Res<()> {
    let unit = Unit::Records { bytes: LEN };
    let n = plan.records;
    let one_segment = one_segment_bytes(n)?;
    let mut put = |row: &str, (wall, cpu): (f64, f64)| {
        report.add(T_APPENDS, row, WALL, unit, wall);
        report.add(T_APPENDS, row, CPU, unit, cpu);
    };
    let run = channel_appends(shm, n, true)?;
    put(CHANNEL, (run.rate, run.cpu_rate));
    put(CHANNEL_CREATED, run.with_creation(n));
    let run = journal_appends(shm, plan, plan.roll_segment, true)?;
    put(&plan.rolling(), (run.rate, run.cpu_rate));
    let run = journal_appends(shm, plan, one_segment, true)?;
    put(ONE_SEGMENT, (run.rate, run.cpu_rate));
    let run = channel_appends(shm, n, false)?;
    put(CHANNEL_PLAIN, (run.rate, run.cpu_rate));
    let run = journal_appends(shm, plan, plan.roll_segment, false)?;
    put(&plan.rolling_plain(), (run.rate, run.cpu_rate));
    Ok(())
}

/// A segment (or channel) big enough for `n` records.
pub fn one_segment_bytes(n: u64) -> Res<u32> {
    let bytes = (record_span(LEN) as u64 * n + 4096).next_multiple_of(4096);
    u32::try_from(bytes).map_err(|_| fail("journal: one segment over 4 GiB"))
}

/// Removes a folder and everything in it when dropped.
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh path for folder `name` under `root`, removed when dropped.
fn fresh(root: &Path, name: &str) -> Res<(PathBuf, RemoveDir)> {
    let dir = root.join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    Ok((dir.clone(), RemoveDir(dir)))
}

/// What one append run measured.
#[derive(Debug, Clone, Copy)]
pub struct Appends {
    /// Records per second, by the wall clock.
    pub rate: f64,
    /// Records per second of the appending thread's own CPU time: what the
    /// rate would be if no other process ever took its CPU (waits for the
    /// next segment do not count either).
    pub cpu_rate: f64,
    /// Segments rolled.
    pub rolls: u64,
    /// For a channel: how long creating it took (pre-faulting included),
    /// by the wall clock and in the thread's CPU time; zero for journals.
    pub created: (Duration, Duration),
}

impl Appends {
    /// The rates if creating the channel had been timed too.
    pub fn with_creation(&self, n: u64) -> (f64, f64) {
        let with =
            |rate: f64, created: Duration| n as f64 / (n as f64 / rate + created.as_secs_f64());
        (
            with(self.rate, self.created.0),
            with(self.cpu_rate, self.created.1),
        )
    }
}

/// The calling thread's CPU time so far.
pub fn thread_cpu_time() -> Duration {
    // SAFETY: all-zero is a valid `timespec`, and `ts` is a valid,
    // writable one for the call.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: as above; the clock id is a constant the kernel knows.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Times `n` calls of `append(seq)` on CPU 0, by the wall clock and by the
/// thread's CPU time.
fn timed(n: u64, mut append: impl FnMut(u64) -> Res<()>) -> Res<(Duration, Duration)> {
    let _pinned = pin(0);
    let (start, cpu) = (Instant::now(), thread_cpu_time());
    for seq in 0..n {
        append(seq)?;
    }
    Ok((start.elapsed(), thread_cpu_time() - cpu))
}

/// `n` appends into one channel made for them all (pre-faulted, checksums
/// on or off), in `shm`.
pub fn channel_appends(shm: &Path, n: u64, checksums: bool) -> Res<Appends> {
    let path = shm.join(format!("journal-baseline-{}.kekbit", std::process::id()));
    let _remove = Remove(path.clone());
    let _ = std::fs::remove_file(&path);
    let config = ChannelConfig::new(0xC4A7)
        .capacity_bytes(one_segment_bytes(n)?)
        .max_record_len(LEN as u32)
        .checksums(checksums);
    let (start, start_cpu) = (Instant::now(), thread_cpu_time());
    let mut writer: ShmWriter = WriterOptions::new(config).create(&path)?;
    let created = (start.elapsed(), thread_cpu_time() - start_cpu);
    let mut record = [0xA5u8; LEN];
    let (wall, cpu) = timed(n, |seq| {
        stamp(&mut record, seq);
        writer.write(&record)?;
        Ok(())
    })?;
    writer.close()?;
    Ok(Appends {
        rate: n as f64 / wall.as_secs_f64(),
        cpu_rate: n as f64 / cpu.as_secs_f64(),
        rolls: 0,
        created,
    })
}

/// Opens a fresh journal in `dir` with `segment` bytes per segment, and
/// waits until its background thread has made the next segment, as it has
/// in a long-running writer (then `settle` more, for the last of the
/// pre-faulting).
fn open_journal(dir: &Path, segment: u32, checksums: bool, settle: Duration) -> Res<JournalWriter> {
    let writer = JournalOptions::new()
        .segment_bytes(segment)
        .max_record_len(LEN as u32)
        .checksums(checksums)
        .open_writer(dir)?;
    wait_made_ahead(dir, HEADER_LEN as u64 + u64::from(segment))?;
    std::thread::sleep(settle);
    Ok(writer)
}

/// Waits until `dir` holds a segment made ahead (a hidden `.segment.*.tmp`
/// file) with all its `file_len` bytes allocated.
fn wait_made_ahead(dir: &Path, file_len: u64) -> Res<()> {
    use std::os::unix::fs::MetadataExt as _;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(".segment.") && name.ends_with(".tmp") {
                let blocks = entry.metadata().map_or(0, |m| m.blocks());
                if blocks * 512 >= file_len {
                    return Ok(());
                }
            }
        }
        if Instant::now() > deadline {
            return Err(fail(format!(
                "{}: no segment made ahead after 60 s",
                dir.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The plan's appends into a fresh journal in `shm` whose segments hold
/// `segment` bytes.
pub fn journal_appends(shm: &Path, plan: &Plan, segment: u32, checksums: bool) -> Res<Appends> {
    let (dir, _remove) = fresh(shm, "journal-appends")?;
    let mut writer = open_journal(&dir, segment, checksums, plan.settle)?;
    let mut record = [0xA5u8; LEN];
    let n = plan.records;
    let (wall, cpu) = timed(n, |seq| {
        stamp(&mut record, seq);
        writer.append(&record)?;
        Ok(())
    })?;
    let rolls = writer.segment_count() as u64 - 1;
    let expected = if segment >= one_segment_bytes(n)? {
        0
    } else {
        plan.rolls(segment)
    };
    writer.close()?;
    if rolls != expected {
        return Err(fail(format!(
            "journal appends: {rolls} rolls, expected {expected}"
        )));
    }
    Ok(Appends {
        rate: n as f64 / wall.as_secs_f64(),
        cpu_rate: n as f64 / cpu.as_secs_f64(),
        rolls,
        created: (Duration::ZERO, Duration::ZERO),
    })
}

// ---------------------------------------------------------------------------
// Latency

fn latency_rep(report: &mut Report, plan: &Plan, shm: &Path) -> Res<()> {
    let one = one_segment_bytes(plan.records)?;
    let (all, _) = journal_latency(shm, plan, one)?;
    put_hist(report, ONE_SEGMENT, &all, true);
    let mut segments = vec![plan.roll_segment];
    segments.extend(plan.small_segment);
    for segment in segments {
        let (all, rolled) = journal_latency(shm, plan, segment)?;
        let row = format!("journal, {} segments", mib(segment));
        put_hist(report, &row, &all, true);
        put_hist(
            report,
            &format!("{row}: the appends that rolled"),
            &rolled,
            false,
        );
    }
    Ok(())
}

fn put_hist(report: &mut Report, row: &str, h: &Histogram<u64>, all: bool) {
    if h.is_empty() {
        return;
    }
    let mut cols = vec![("p50", 0.5)];
    if all {
        cols.extend([("p99", 0.99), (P999, 0.999), ("p99.99", 0.9999)]);
    }
    for (col, q) in cols {
        report.add(
            T_LATENCY,
            row,
            col,
            Unit::Nanos,
            h.value_at_quantile(q) as f64,
        );
    }
    report.add(T_LATENCY, row, "max", Unit::Nanos, h.max() as f64);
}

/// Every append's latency, and those of the appends that rolled, in a
/// fresh journal in `shm` whose segments hold `segment` bytes.
pub fn journal_latency(
    shm: &Path,
    plan: &Plan,
    segment: u32,
) -> Res<(Histogram<u64>, Histogram<u64>)> {
    let (dir, _remove) = fresh(shm, "journal-latency")?;
    let mut writer = open_journal(&dir, segment, true, plan.settle)?;
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let mut rolled = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let _pinned = pin(0);
    let mut record = [0xA5u8; LEN];
    let mut base = writer.segment_base();
    for seq in 0..plan.records {
        stamp(&mut record, seq);
        let t0 = Instant::now();
        writer.append(&record)?;
        let took = t0.elapsed().as_nanos() as u64;
        all.saturating_record(took.max(1));
        if writer.segment_base() != base {
            base = writer.segment_base();
            rolled.saturating_record(took.max(1));
        }
    }
    writer.close()?;
    Ok((all, rolled))
}

// ---------------------------------------------------------------------------
// Durable commits

fn commits_rep(report: &mut Report, plan: &Plan, disk: &Path) -> Res<()> {
    for threads in THREADS {
        let col = threads_col(threads);
        let (rate, per_sync) = journal_commits(disk, plan, threads)?;
        report.add(T_COMMITS, JOURNAL_COMMIT, &col, Unit::RecordsOnly, rate);
        report.add(T_PER_SYNC, JOURNAL_COMMIT, &col, Unit::Count, per_sync);
        let rate = floor_commits(disk, plan, threads)?;
        report.add(T_COMMITS, FLOOR, &col, Unit::RecordsOnly, rate);
        let rate = pkv_commits(disk, plan, threads)?;
        report.add(T_COMMITS, PKV, &col, Unit::RecordsOnly, rate);
    }
    Ok(())
}

/// Runs `commit(thread, seq)` on `threads` threads for `time`; returns the
/// commits per second, all threads together, and the commits.
fn commit_loop<F>(threads: usize, time: Duration, commit: F) -> Res<(f64, u64)>
where
    F: Fn(usize, u64) -> Res<()> + Sync,
{
    let stop = AtomicBool::new(false);
    let commits = AtomicU64::new(0);
    let start_line = Barrier::new(threads + 1);
    let (elapsed, results) = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (stop, commits, start_line, commit) = (&stop, &commits, &start_line, &commit);
                s.spawn(move || -> Res<()> {
                    start_line.wait();
                    let mut seq = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        commit(t, seq)?;
                        seq += 1;
                        commits.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        start_line.wait();
        let start = Instant::now();
        std::thread::sleep(time);
        stop.store(true, Ordering::Relaxed);
        let results: Vec<Res<()>> = workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(fail("a commit thread panicked")))
            })
            .collect();
        (start.elapsed(), results)
    });
    for r in results {
        r?;
    }
    let commits = commits.load(Ordering::Relaxed);
    Ok((commits as f64 / elapsed.as_secs_f64(), commits))
}

/// A record for thread `t`'s commit number `seq`.
fn commit_record(t: usize, seq: u64) -> [u8; LEN] {
    let mut record = [0x5Au8; LEN];
    stamp(&mut record, seq);
    record[8..16].copy_from_slice(&(t as u64).to_le_bytes());
    record
}

/// Group commit from `threads` threads in a fresh journal in `disk`:
/// commits per second, and commits per sync.
pub fn journal_commits(disk: &Path, plan: &Plan, threads: usize) -> Res<(f64, f64)> {
    let (dir, _remove) = fresh(disk, "journal-commits")?;
    let journal: SharedJournal =
        open_journal(&dir, plan.commit_segment, true, plan.settle)?.into_shared();
    let syncs_before = journal.sync_count();
    let span = record_span(LEN) as u64;
    let (rate, commits) = commit_loop(threads, plan.commit_time, |t, seq| {
        let record = commit_record(t, seq);
        let position = journal.append_durable(&record)?;
        // Acknowledged means durable: the whole record is covered.
        if journal.durable_position() < position + span {
            return Err(fail(
                "append_durable returned before its record was durable",
            ));
        }
        Ok(())
    })?;
    let syncs = journal.sync_count() - syncs_before;
    drop(journal);
    Ok((rate, commits as f64 / syncs.max(1) as f64))
}

/// Upper bound on floor commits in one measurement (the file is written
/// in full beforehand).
const FLOOR_MAX: u64 = 1 << 20;

/// One `pwrite` + `fdatasync` per commit, from `threads` threads, in a
/// file in `disk`: commits per second.
pub fn floor_commits(disk: &Path, plan: &Plan, threads: usize) -> Res<f64> {
    let path = disk.join(format!("journal-floor-{}", std::process::id()));
    let _remove = Remove(path.clone());
    let file = File::create(&path)?;
    let size = LEN as u64 * FLOOR_MAX;
    let zeros = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < size {
        file.write_all_at(&zeros, at)?;
        at += zeros.len() as u64;
    }
    file.sync_all()?;
    let next = AtomicU64::new(0);
    let (rate, _) = commit_loop(threads, plan.commit_time, |t, seq| {
        let slot = next.fetch_add(1, Ordering::Relaxed) % FLOOR_MAX;
        file.write_all_at(&commit_record(t, seq), slot * LEN as u64)?;
        file.sync_data()?;
        Ok(())
    })?;
    Ok(rate)
}

/// persistent-kv's `set` with `BlockAndSync`, from `threads` threads, in
/// a fresh store in `disk`: commits per second.
pub fn pkv_commits(disk: &Path, plan: &Plan, threads: usize) -> Res<f64> {
    use persistent_kv::{Config, PersistentKeyValueStore, SyncMode};
    let (dir, _remove) = fresh(disk, "journal-pkv")?;
    let config = Config {
        sync_mode: SyncMode::BlockAndSync,
        silent: true,
        ..Config::default()
    };
    let store: PersistentKeyValueStore<u64, Vec<u8>> =
        PersistentKeyValueStore::new(&dir, config)
            .map_err(|e| fail(format!("persistent-kv: {e}")))?;
    let (rate, _) = commit_loop(threads, plan.commit_time, |t, seq| {
        let key = ((t as u64) << 40) | seq;
        store
            .set(key, commit_record(t, seq).to_vec())
            .map_err(|e| fail(format!("persistent-kv: {e}")))
    })?;
    drop(store);
    Ok(rate)
}

// ---------------------------------------------------------------------------
// Targets

/// The journal rows of the targets table: (target, measured, met).
pub fn targets(report: &Report, plan: &Plan) -> Vec<(String, String, Option<bool>)> {
    let mut out = Vec::new();
    if let Some(t) = report.get(T_APPENDS) {
        let col = WALL;
        if let (Some(j), Some(c)) = (t.median(&plan.rolling(), col), t.median(CHANNEL, col)) {
            out.push((
                format!(
                    "64 B appends across rolls ({}) ≥ 0.9× one channel",
                    plan.rolling()
                ),
                format!("{:.2} M/s vs {:.2} M/s = {:.2}×", j / 1e6, c / 1e6, j / c),
                Some(j >= 0.9 * c),
            ));
        }
        for (row, col) in [(CHANNEL, CPU), (CHANNEL_CREATED, WALL)] {
            if let (Some(j), Some(c)) = (t.median(&plan.rolling(), col), t.median(row, col)) {
                let by = if col == CPU { ", by CPU time" } else { "" };
                out.push((
                    format!("64 B appends across rolls vs {row}{by} (no target)"),
                    format!("{:.2} M/s vs {:.2} M/s = {:.2}×", j / 1e6, c / 1e6, j / c),
                    None,
                ));
            }
        }
    }
    let latency = report.get(T_LATENCY);
    let p999 = |row: &str| latency.and_then(|t| t.median(row, P999));
    if let (Some(r), Some(one)) = (p999(&plan.rolling()), p999(ONE_SEGMENT)) {
        out.push((
            format!(
                "append latency p99.9 across rolls ({}) ≤ 2× without rolls",
                plan.rolling()
            ),
            format!("{r:.0} ns vs {one:.0} ns = {:.2}×", r / one),
            Some(r <= 2.0 * one),
        ));
    }
    if let Some(t) = report.get(T_COMMITS) {
        let (one, sixteen) = (threads_col(1), threads_col(16));
        if let (Some(a), Some(b)) = (
            t.median(JOURNAL_COMMIT, &one),
            t.median(JOURNAL_COMMIT, &sixteen),
        ) {
            out.push((
                "durable commits: journal with 16 threads ≥ 10× 1 thread".into(),
                format!("{:.0} /s vs {:.0} /s = {:.1}×", b, a, b / a),
                Some(b >= 10.0 * a),
            ));
        }
        for row in [FLOOR, PKV] {
            if let (Some(j), Some(o)) =
                (t.median(JOURNAL_COMMIT, &sixteen), t.median(row, &sixteen))
            {
                out.push((
                    format!("durable commits, 16 threads: journal vs {row} (no target)"),
                    format!("{j:.0} /s vs {o:.0} /s = {:.1}×", j / o),
                    None,
                ));
            }
        }
    }
    out
}
