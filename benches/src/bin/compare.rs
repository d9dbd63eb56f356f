//! `compare`: every workload on every system, in one process run.
//!
//! ```text
//! cargo run --release -p kekbit-benches --bin compare -- [--quick] [--reps N]
//!     [--write-markdown BENCHMARKS.md]
//! ```
//!
//! Systems alternate inside each repetition, so a slow minute on a shared
//! machine hurts every system alike; each table cell is the median over the
//! repetitions. Process workloads re-run this binary with the hidden
//! `__child` subcommand for the other side.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use kekbit_benches::journal;
use kekbit_benches::kek::{self, ChannelFile, KekRx, Remove};
use kekbit_benches::kek035::Channel035;
use kekbit_benches::limits::{self, Line, Memory};
use kekbit_benches::pipe::{Pinned, Sender, pin};
use kekbit_benches::report::{Report, Unit, context};
use kekbit_benches::workload::{self, Pinger};
use kekbit_benches::{Res, fail, ice, kv, peers};
use kekbit_std::Durability;

/// Record sizes of the throughput workloads.
const SIZES: [usize; 4] = [8, 64, 1024, 65536];
/// Record size of the latency, fan-out and durable workloads.
const SMALL: usize = 64;
/// Warm-up rounds before each latency histogram.
const WARMUP: u64 = 10_000;
/// Records per batch in the batched rows.
const BATCH: u64 = 32;
/// Row names of the batched rows.
const KEK_BATCH: &str = "kekbit, batches of 32";
const RTRB_BATCH: &str = "rtrb, batches of 32 (write_chunk_uninit)";

const BUSY_MEMCPY: &str = "memcpy, pre-faulted /dev/shm, other core busy";
const T_THREADS: &str = "Throughput between threads";
const T_PROCS: &str = "Throughput between processes";
const T_LAT_THREADS: &str = "Latency between threads (one-way, 64 B)";
const T_LAT_PROCS: &str = "Latency between processes (one-way, 64 B)";
const T_FANOUT: &str = "Fan-out: 1 writer, 3 reader threads (64 B)";
const T_DURABLE: &str = "Durable writes to disk (64 B)";
const T_KV: &str = "Key-value store: operations (16 B keys, 100 B values)";
const T_KV_SYNC: &str = "Key-value store: durable sets (`BlockAndSync`)";
const T_KV_COST: &str = "Key-value store: reopen, disk and memory";
const T_RELAY: &str = "Relay through NATS JetStream: push, source to replica complete";
const T_RELAY_LAT: &str = "Relay through NATS JetStream: latency at 1,000 records/s";
const RAW_NATS: &str = "async-nats, 1 record per message, 256 in flight";
const RAW_NATS_LAT: &str = "async-nats, publish to pull-consumer receipt";
/// Relay records per measurement: (64 B, 1 KiB).
const RELAY_SIZES: [usize; 2] = [64, 1024];

/// How big and how long.
#[derive(Debug, Clone)]
struct Plan {
    quick: bool,
    reps: usize,
    /// Bytes of payload per throughput measurement (capped in records).
    volume: usize,
    max_records: u64,
    fanout_records: u64,
    durable_time: Duration,
    group: u64,
    /// Samples per latency histogram (after the warm-up).
    samples: u64,
    /// Keys of the key-value workload.
    kv_keys: u64,
    /// How long each durable key-value measurement runs.
    kv_sync_time: Duration,
    /// Records per relay throughput measurement, by size (64 B, 1 KiB).
    relay_records: [u64; 2],
    /// Records per relay latency measurement (at 1,000/s).
    relay_samples: u64,
}

impl Plan {
    fn new(quick: bool, reps: Option<usize>) -> Self {
        if quick {
            Self {
                quick,
                reps: reps.unwrap_or(3),
                volume: 8 << 20,
                max_records: 1 << 17,
                fanout_records: 1 << 16,
                durable_time: Duration::from_millis(50),
                group: 64,
                samples: 20_000,
                kv_keys: 20_000,
                kv_sync_time: Duration::from_millis(100),
                relay_records: [100_000, 20_000],
                relay_samples: 500,
            }
        } else {
            Self {
                quick,
                reps: reps.unwrap_or(5),
                volume: 512 << 20,
                max_records: 6 << 20,
                fanout_records: 4 << 20,
                durable_time: Duration::from_millis(500),
                group: 64,
                samples: 100_000,
                kv_keys: 1_000_000,
                kv_sync_time: Duration::from_secs(1),
                relay_records: [2_000_000, 500_000],
                relay_samples: 5_000,
            }
        }
    }

    fn records(&self, len: usize) -> u64 {
        ((self.volume / len) as u64).min(self.max_records)
    }
}

/// Folders the run works in; removed when dropped.
struct Dirs {
    shm: PathBuf,
    disk: PathBuf,
}

impl Dirs {
    fn new(disk_root: &Path) -> Res<Self> {
        let tag = format!("kekbit-bench-{}", std::process::id());
        let shm = Path::new("/dev/shm").join(&tag);
        let disk = disk_root.join(&tag);
        std::fs::create_dir_all(&shm)?;
        std::fs::create_dir_all(&disk)?;
        Ok(Self { shm, disk })
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.shm);
        let _ = std::fs::remove_dir_all(&self.disk);
    }
}

/// Unique names for channel files and services.
struct Names(u64);

impl Names {
    fn next(&mut self) -> u64 {
        self.0 += 1;
        self.0
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match (
        args.first().map(String::as_str),
        args.get(1).map(String::as_str),
    ) {
        (Some("__child"), Some("kv")) => kv_child(&args[2..]),
        (Some("__child"), _) => child(&args[1..]),
        (Some("__profile"), _) => profile(&args[1..]),
        _ => run(&args),
    };
    if let Err(e) = result {
        eprintln!("compare: {e}");
        std::process::exit(1);
    }
}

/// The command line was not understood.
#[derive(Debug)]
struct Usage;

fn usage() -> Usage {
    Usage
}

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "usage: compare [--quick] [--verbose] [--reps N] \
             [--only threads,processes,latency,fanout,durable,journal,kv,relay] \
             [--disk-dir DIR] [--write-markdown FILE]",
        )
    }
}

impl std::error::Error for Usage {}

fn run(args: &[String]) -> Res<()> {
    let mut quick = false;
    let mut verbose = false;
    let mut only: Option<String> = None;
    let mut reps = None;
    let mut markdown = None;
    let mut disk_root = PathBuf::from("/var/tmp");
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "-v" | "--verbose" => verbose = true,
            "--reps" => {
                let n = it.next().ok_or_else(usage)?;
                reps = Some(n.parse().map_err(|_| usage())?);
            }
            "--write-markdown" => markdown = Some(PathBuf::from(it.next().ok_or_else(usage)?)),
            "--only" => only = Some(it.next().ok_or_else(usage)?.clone()),
            "--disk-dir" => disk_root = PathBuf::from(it.next().ok_or_else(usage)?),
            "-h" | "--help" => {
                println!("{}", usage());
                return Ok(());
            }
            _ => return Err(usage().into()),
        }
    }
    ice::quiet();
    let plan = Plan::new(quick, reps);
    let dirs = Dirs::new(&disk_root)?;
    let disk_fs = fs_type(&dirs.disk)?;
    if disk_fs == "tmpfs" {
        return Err(fail(format!(
            "{} is on tmpfs; durable writes need a disk (--disk-dir)",
            dirs.disk.display()
        )));
    }
    eprintln!("CPU: {}", cpu_model());
    let started = Instant::now();
    let mut report = Report::default();
    report.verbose = verbose;
    declare(&mut report, &plan, &disk_fs);
    let journal_plan = journal::Plan::new(plan.quick);
    journal::declare(&mut report, &journal_plan, &disk_fs);
    declare_kv(&mut report, &plan, &disk_fs);
    let mut names = Names(0);
    for rep in 0..plan.reps {
        eprintln!("repetition {} of {}", rep + 1, plan.reps);
        let on = |w: &str| only.as_deref().is_none_or(|o| o.split(',').any(|x| x == w));
        if on("threads") {
            context(
                "threads",
                threads_rep(&mut report, &plan, &dirs, &mut names),
            )?;
        }
        if on("processes") {
            context(
                "processes",
                processes_rep(&mut report, &plan, &dirs, &mut names),
            )?;
        }
        if on("latency") {
            context(
                "latency",
                latency_rep(&mut report, &plan, &dirs, &mut names),
            )?;
        }
        if on("fanout") {
            context("fan-out", fanout_rep(&mut report, &plan, &dirs, &mut names))?;
        }
        if on("durable") {
            context(
                "durable",
                durable_rep(&mut report, &plan, &dirs, &mut names),
            )?;
        }
        if on("journal") {
            let done = journal::rep(&mut report, &journal_plan, &dirs.shm, &dirs.disk);
            context("journal", done)?;
        }
        if on("kv") {
            context("kv", kv_rep(&mut report, &plan, &dirs, &mut names))?;
        }
        if on("relay") {
            context("relay", relay_rep(&mut report, &plan, &dirs, rep))?;
        }
    }
    let elapsed = started.elapsed();
    let tables = report.markdown();
    let mut targets = targets(&report);
    journal_targets(&mut targets, &report, &journal_plan);
    println!("{tables}{targets}");
    eprintln!("done in {:.1} s", elapsed.as_secs_f64());
    if let Some(path) = markdown {
        let doc = document(&plan, args, elapsed, &tables, &targets)?;
        std::fs::write(&path, doc).map_err(|e| fail(format!("{}: {e}", path.display())))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn declare(report: &mut Report, plan: &Plan, disk_fs: &str) {
    let volume = plan.volume >> 20;
    report.section(
        T_THREADS,
        &format!(
            "Writer thread to reader thread; {volume} MiB of payload per measurement \
             (at most {} records). The reader checks every record's sequence number. \
             kekbit: a fresh kekbit-std channel in `/dev/shm` per measurement, with \
             kekbit-std's defaults (the channel is pre-faulted when created, outside the \
             timed window); \"batches of 32\" writes with `ShmWriter::batch`, 32 records \
             published by one store, and the reader reads ahead over each published batch; \
             \"pre-faulting timed too\" adds the creation time; \"writer \
             alone\" writes with no reader running; \"no \
             pre-fault\" turns pre-faulting off, so writes take the page faults; \"checksums on\" \
             adds a CRC32C per record, computed by the writer and checked by the reader. \
             kekbit 0.3.5 \
             does not pre-fault. rtrb and bbqueue carry length-prefixed frames in a 1 MiB \
             byte ring; rtrb's batched row reserves the frames of 32 records with one \
             `write_chunk_uninit`, fills them in place and commits them at once (only where \
             two batches fit the ring); crossbeam sends a `Vec<u8>` per record through a \
             bounded channel. \
             memcpy rows copy the same records, one after another, into memory of the named \
             kind: the machine's limit (\"other core busy\": while a second thread spins on \
             the other core, as a reader does). Cells: records/s · payload GB/s (ratio to kekbit).",
            plan.max_records
        ),
    );
    report.section(
        T_PROCS,
        "Writer and reader in separate processes (this binary re-executed as the writer); \
         same volumes and checks as between threads; \"batches of 32\" as between threads. iceoryx2: publish-subscribe of `[u8]` \
         slices, a subscriber buffer of about 16 MiB of records (256 to 8,192 samples), no overflow (the publisher retries until delivered).",
    );
    report.section(
        T_LAT_THREADS,
        &format!(
            "Ping-pong over two channels (one each way); one-way latency = half the round \
             trip, {} samples after {WARMUP} warm-up rounds, in an HDR histogram; \
             medians over repetitions of p50, p99 and p99.9. The floor is two threads \
             spinning on one cache line, measured the same way. Lower is better.",
            plan.samples
        ),
    );
    report.section(
        T_LAT_PROCS,
        "As between threads, with the echo side in another process; the floor's cache \
         line is in a shared `/dev/shm` mapping.",
    );
    report.section(
        T_FANOUT,
        &format!(
            "One writer thread and three reader threads on one channel, {} records; every \
             record carries its write time and each reader samples its lag (read time minus \
             write time) every 16 records. Readers yield the core when idle; with 4 threads \
             on this machine's cores, lag includes scheduling.",
            plan.fanout_records
        ),
    );
    report.section(
        T_DURABLE,
        &format!(
            "A channel in a file on disk ({disk_fs}, not tmpfs); each measurement runs for \
             {} ms. Per record: write, then `msync` the record's pages before the next. \
             Group: write {} records, then one `msync` of their pages; a record counts once \
             its group is durable (kekbit: `Durability::EveryRecord` and \
             `Durability::EveryRecords({})`). kekbit 0.3.5 can only flush its whole mapping. \
             The floor is `pwrite` + `fdatasync` into a plain file written and synced in \
             full beforehand.",
            plan.durable_time.as_millis(),
            plan.group,
            plan.group
        ),
    );
    report.section(
        T_RELAY,
        &format!(
            "kekbit-relay: a journal of {} records of 64 B ({} of 1 KiB) in `/dev/shm`, \
             pushed and pulled at once (kekbit-relay's defaults: messages of up to 256 KiB, 64 \
             in flight, a file stream) into a replica journal; the clock stops when the \
             replica holds every record. The anchor is the raw async-nats client against the \
             same nats-server {}: one record per JetStream message, 256 publishes in flight, \
             a file stream, until the last ack. Cells: records/s · payload GB/s.",
            plan.relay_records[0],
            plan.relay_records[1],
            nats_fixture::server_version()
        ),
    );
    report.section(
        T_RELAY_LAT,
        &format!(
            "{} records of 64 B at 1,000 records/s. kekbit-relay: from the source append to \
             the record being readable in the replica journal (the push polls the source \
             with `IdleStrategy::Yield`; a reader thread on the replica yields too). \
             async-nats: from a JetStream publish to its receipt by a pull consumer. \
             CLOCK_MONOTONIC timestamps in the records. Lower is better.",
            plan.relay_samples
        ),
    );
}

// ---------------------------------------------------------------------------
// Relay through NATS JetStream

fn relay_rep(report: &mut Report, plan: &Plan, dirs: &Dirs, rep: usize) -> Res<()> {
    use kekbit_benches::relay;
    // One server per repetition (its store in a temporary folder).
    let server = nats_fixture::NatsServer::start();
    for (k, len) in RELAY_SIZES.into_iter().enumerate() {
        let n = plan.relay_records[k];
        let col = size_name(len);
        let unit = Unit::Records { bytes: len };
        let raw = relay::raw_publish(&server, &format!("RAW{rep}_{len}"), n.min(200_000), len)?;
        report.add(T_RELAY, RAW_NATS, &col, unit, raw);
        let ours =
            relay::relay_throughput(&server, &dirs.shm, &format!("RELAY{rep}_{len}"), n, len)?;
        report.add(T_RELAY, "kekbit", &col, unit, ours);
    }
    let h = relay::raw_latency(&server, &format!("RAWLAT{rep}"), 1000, plan.relay_samples)?;
    put_hist(report, T_RELAY_LAT, RAW_NATS_LAT, &h);
    let h = relay::relay_latency(
        &server,
        &dirs.shm,
        &format!("RELAYLAT{rep}"),
        1000,
        plan.relay_samples,
    )?;
    put_hist(report, T_RELAY_LAT, "kekbit", &h);
    Ok(())
}

// ---------------------------------------------------------------------------
// Key-value stores

fn declare_kv(report: &mut Report, plan: &Plan, disk_fs: &str) {
    let n = plan.kv_keys;
    let data = n * (kv::KEY_LEN + kv::VALUE_LEN) as u64;
    report.section(
        T_KV,
        &format!(
            "{n} keys of {} B with {} B values ({:.1} MB of data), in a folder on disk \
             ({disk_fs}); every system in its own process, in its default sync mode (kekbit-kv \
             and persistent-kv: `BlockNoExplicitSync`; fjall: writes reach the OS, no fsync; \
             redb: one write transaction per set with `Durability::None`, every 1000th \
             `Immediate`, as its docs ask, or its file grows without bound). All run the same \
             loop, keys and values built in it: set loads the keys with one thread, then two \
             threads overwrite them (each set phase is cut at 60 s; a system too slow for \
             that is measured on the keys it loaded); get reads every key in a scattered \
             order with one thread, then with two, and checks each value. Cells: operations/s (ratio to \
             kekbit-kv).",
            kv::KEY_LEN,
            kv::VALUE_LEN,
            data as f64 / 1e6
        ),
    );
    report.section(
        T_KV_SYNC,
        &format!(
            "Threads setting fresh keys for {} ms, each set durable before it returns: \
             kekbit-kv and persistent-kv in `SyncMode::BlockAndSync`, fjall with \
             `persist(PersistMode::SyncData)` after each insert, redb with one write \
             transaction per set at `Durability::Immediate`. Cells: sets/s.",
            plan.kv_sync_time.as_millis()
        ),
    );
    report.section(
        T_KV_COST,
        &format!(
            "After the default-mode run above: the time a new process takes to open the \
             store again (its files in the page cache), the bytes its folder takes on disk \
             after it is closed (allocated blocks), and the run's peak resident set (VmHWM \
             of its process: heap plus every mapped page touched, the journal's included). \
             The data is {:.1} MB. Lower is better.",
            data as f64 / 1e6
        ),
    );
}

/// The row of each key-value system (kekbit-kv is the baseline row).
fn kv_row(system: &str) -> &'static str {
    match system {
        "kekbit-kv" => "kekbit",
        "persistent-kv" => "persistent-kv 1.0.2",
        "fjall" => "fjall",
        _ => "redb",
    }
}

fn kv_rep(report: &mut Report, plan: &Plan, dirs: &Dirs, names: &mut Names) -> Res<()> {
    let exe = std::env::current_exe()?;
    for system in kv::SYSTEMS {
        let row = kv_row(system);
        let dir = dirs.disk.join(format!("kv-{system}-{}", names.next()));
        let results = context(
            system,
            kv::run_child(
                &exe,
                &[
                    system.into(),
                    "default".into(),
                    path_str(&dir)?.into(),
                    plan.kv_keys.to_string(),
                ],
            ),
        );
        let reopened = match &results {
            Ok(_) => context(
                &format!("{system} reopen"),
                kv::run_child(
                    &exe,
                    &[
                        system.into(),
                        "reopen".into(),
                        path_str(&dir)?.into(),
                        plan.kv_keys.to_string(),
                    ],
                ),
            ),
            Err(_) => Ok(Vec::new()),
        };
        let _ = std::fs::remove_dir_all(&dir);
        for (name, v) in results?.into_iter().chain(reopened?) {
            let (title, col, unit) = match name.as_str() {
                "set1" => (T_KV, "set, 1 thread", Unit::RecordsOnly),
                "set2" => (T_KV, "set, 2 threads", Unit::RecordsOnly),
                "get1" => (T_KV, "get, 1 thread", Unit::RecordsOnly),
                "get2" => (T_KV, "get, 2 threads", Unit::RecordsOnly),
                "reopen_ns" => (T_KV_COST, "reopen (warm cache)", Unit::Nanos),
                "disk" => (T_KV_COST, "disk after the run", Unit::Bytes),
                "peak_rss" => (T_KV_COST, "peak RSS", Unit::Bytes),
                _ => continue,
            };
            report.add(title, row, col, unit, v);
        }
        for threads in [1u64, 4, 16] {
            let dir = dirs.disk.join(format!("kv-{system}-{}", names.next()));
            let results = context(
                &format!("{system} sync x{threads}"),
                kv::run_child(
                    &exe,
                    &[
                        system.into(),
                        "sync".into(),
                        path_str(&dir)?.into(),
                        threads.to_string(),
                        plan.kv_sync_time.as_millis().to_string(),
                    ],
                ),
            );
            let _ = std::fs::remove_dir_all(&dir);
            for (name, v) in results? {
                if name == "sync_set" {
                    let col = format!("{threads} thread{}", if threads == 1 { "" } else { "s" });
                    report.add(T_KV_SYNC, row, &col, Unit::RecordsOnly, v);
                }
            }
        }
    }
    Ok(())
}

/// `compare __child kv SYSTEM default DIR KEYS`,
/// `compare __child kv SYSTEM reopen DIR KEYS` or
/// `compare __child kv SYSTEM sync DIR THREADS MILLIS`.
fn kv_child(args: &[String]) -> Res<()> {
    let bad = || fail(format!("kv child: bad arguments {args:?}"));
    let num = |i: usize| -> Res<u64> { args.get(i).ok_or_else(bad)?.parse().map_err(|_| bad()) };
    let system = args.first().ok_or_else(bad)?;
    let dir = Path::new(args.get(2).ok_or_else(bad)?);
    match args.get(1).map(String::as_str) {
        Some("default") => kv::child_default(system, dir, num(3)?),
        Some("reopen") => kv::child_reopen(system, dir, num(3)?),
        Some("sync") => kv::child_sync(system, dir, num(3)?, Duration::from_millis(num(4)?)),
        _ => Err(bad()),
    }
}

// ---------------------------------------------------------------------------
// Throughput between threads

fn threads_rep(report: &mut Report, plan: &Plan, dirs: &Dirs, names: &mut Names) -> Res<()> {
    for len in SIZES {
        let n = plan.records(len);
        let col = size_name(len);
        let unit = Unit::Records { bytes: len };
        let mut put = |row: &str, rate: f64| report.add(T_THREADS, row, &col, unit, rate);

        let (rate, created) = context(
            &format!("kekbit {col}"),
            kekbit_threads(dirs, names, len, n, true, false, 1),
        )?;
        put("kekbit", rate);
        let (batched, _) = context(
            &format!("kekbit batches {col}"),
            kekbit_threads(dirs, names, len, n, true, false, BATCH),
        )?;
        put(KEK_BATCH, batched);
        put(
            "kekbit, pre-faulting timed too",
            n as f64 / (n as f64 / rate + created.as_secs_f64()),
        );
        put(
            "kekbit, writer alone (no reader)",
            context(
                &format!("kekbit writer {col}"),
                kekbit_writer_alone(dirs, names, len, n),
            )?,
        );
        put(
            "kekbit, no pre-fault",
            kekbit_threads(dirs, names, len, n, false, false, 1)?.0,
        );
        put(
            "kekbit, checksums on",
            kekbit_threads(dirs, names, len, n, true, true, 1)?.0,
        );
        {
            let ch = Channel035::new(&dirs.shm.join("v035"), names.next());
            let tx = ch.writer(len, n)?;
            let rate = context(
                &format!("kekbit 0.3.5 {col}"),
                workload::threads(tx, || ch.reader(), len, n),
            )?;
            put("kekbit 0.3.5", rate);
        }
        let (tx, rx) = peers::rtrb(len);
        let rate = context(
            &format!("rtrb {col}"),
            workload::threads(tx, move || Ok(rx), len, n),
        )?;
        put("rtrb", rate);
        // Two batches must fit the ring, or the writer would wait forever.
        if 2 * BATCH as usize * (len + 4) <= peers::ring_bytes(len) {
            let (tx, rx) = peers::rtrb(len);
            let rate = context(
                &format!("rtrb batches {col}"),
                workload::threads_in(tx, move || Ok(rx), len, n, BATCH),
            )?;
            put(RTRB_BATCH, rate);
        }
        let (tx, rx) = peers::bbqueue(len);
        let rate = context(
            &format!("bbqueue {col}"),
            workload::threads(tx, move || Ok(rx), len, n),
        )?;
        put("bbqueue", rate);
        let (tx, rx) = peers::crossbeam(len);
        let rate = context(
            &format!("crossbeam {col}"),
            workload::threads(tx, move || Ok(rx), len, n),
        )?;
        put("crossbeam-channel", rate);
        for (row, memory) in [
            ("memcpy, pre-faulted /dev/shm", Memory::PrefaultedShm),
            ("memcpy, fresh /dev/shm", Memory::FreshShm),
            ("memcpy, pre-faulted anonymous", Memory::Prefaulted),
            ("memcpy, fresh anonymous", Memory::FreshAnon),
        ] {
            let t = limits::memcpy(memory, &dirs.shm, len, n)?;
            put(row, n as f64 / t.as_secs_f64());
        }
        let t = limits::memcpy_beside_spinner(Memory::PrefaultedShm, &dirs.shm, len, n)?;
        put(BUSY_MEMCPY, n as f64 / t.as_secs_f64());
    }
    Ok(())
}

/// kekbit between threads, the writer writing batches of `batch` records
/// (1: one by one); returns records/s and the time creating the channel
/// took (pre-faulting included).
#[allow(clippy::too_many_arguments)]
fn kekbit_threads(
    dirs: &Dirs,
    names: &mut Names,
    len: usize,
    n: u64,
    prefault: bool,
    checksums: bool,
    batch: u64,
) -> Res<(f64, Duration)> {
    let path = dirs.shm.join(format!("kek-{}.kekbit", names.next()));
    let _remove = Remove(path.clone());
    let start = Instant::now();
    let tx = kek::create_config(&path, len, n, prefault, Durability::None, checksums, batch)?;
    let created = start.elapsed();
    let channel = kek::open(&path)?;
    let channel = &channel;
    let rate = workload::threads_in(tx, move || KekRx::new(channel), len, n, batch)?;
    Ok((rate, created))
}

/// kekbit's writer with no reader: the write path's own records/s.
fn kekbit_writer_alone(dirs: &Dirs, names: &mut Names, len: usize, n: u64) -> Res<f64> {
    let path = dirs.shm.join(format!("kek-{}.kekbit", names.next()));
    let _remove = Remove(path.clone());
    let mut tx = kek::create(&path, len, n, true, Durability::None)?;
    let start = Instant::now();
    workload::send_all(&mut tx, len, n)?;
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

fn size_name(len: usize) -> String {
    if len >= 1024 {
        format!("{} KiB", len / 1024)
    } else {
        format!("{len} B")
    }
}

// ---------------------------------------------------------------------------
// Throughput between processes

fn processes_rep(report: &mut Report, plan: &Plan, dirs: &Dirs, names: &mut Names) -> Res<()> {
    for len in SIZES {
        let n = plan.records(len);
        let col = size_name(len);
        let unit = Unit::Records { bytes: len };
        let (l, ns) = (len.to_string(), n.to_string());

        // kekbit: the child creates the channel and writes; we read.
        let path = dirs.shm.join(format!("kek-{}.kekbit", names.next()));
        let _remove = Remove(path.clone());
        let child = spawn(&["tp-writer", "kekbit", path_str(&path)?, &l, &ns])?;
        let rate = context(
            &format!("kekbit {col}"),
            read_from_child(child, |child| {
                let channel = kek::open(&path)?;
                let mut rx = KekRx::new(&channel)?;
                workload::receive_all(&mut rx, len, n, Some(go(child)?))
            }),
        )?;
        report.add(T_PROCS, "kekbit", &col, unit, rate);

        // The same, the child writing batches.
        let path = dirs.shm.join(format!("kek-{}.kekbit", names.next()));
        let _remove = Remove(path.clone());
        let child = spawn(&["tp-writer", "kekbit-batches", path_str(&path)?, &l, &ns])?;
        let rate = context(
            &format!("kekbit batches {col}"),
            read_from_child(child, |child| {
                let channel = kek::open(&path)?;
                let mut rx = KekRx::new(&channel)?;
                workload::receive_all(&mut rx, len, n, Some(go(child)?))
            }),
        )?;
        report.add(T_PROCS, KEK_BATCH, &col, unit, rate);

        // kekbit 0.3.5: the child creates the channel.
        let root = dirs.shm.join("v035");
        let id = names.next();
        let ch = Channel035::new(&root, id);
        let name = format!("{}:{id}", path_str(&root)?);
        let child = spawn(&["tp-writer", "kekbit-0.3.5", &name, &l, &ns])?;
        let rate = context(
            &format!("kekbit 0.3.5 {col}"),
            read_from_child(child, |child| {
                let mut rx = ch.reader()?;
                workload::receive_all(&mut rx, len, n, Some(go(child)?))
            }),
        )?;
        drop(ch);
        report.add(T_PROCS, "kekbit 0.3.5", &col, unit, rate);

        // iceoryx2: subscribe first, then the child publishes.
        let service = format!("kekbit-bench/{}/{}", std::process::id(), names.next());
        let mut rx = ice::IceRx::new(&service, len)?;
        let child = spawn(&["tp-writer", "iceoryx2", &service, &l, &ns])?;
        let rate = context(
            &format!("iceoryx2 {col}"),
            read_from_child(child, |child| {
                workload::receive_all(&mut rx, len, n, Some(go(child)?))
            }),
        )?;
        report.add(T_PROCS, "iceoryx2", &col, unit, rate);
    }
    Ok(())
}

fn path_str(path: &Path) -> Res<&str> {
    path.to_str()
        .ok_or_else(|| fail(format!("{} is not UTF-8", path.display())))
}

/// Starts this binary as a child for `role`; waits for its "ready" line.
fn spawn(args: &[&str]) -> Res<Child> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .arg("__child")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| fail("child has no stdout"))?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    if line.trim() != "ready" {
        let status = child.wait()?;
        return Err(fail(format!("child {args:?} failed to start ({status})")));
    }
    Ok(child)
}

/// Tells a child that waits for it to start writing; returns when.
fn go(child: &mut Child) -> Res<Instant> {
    use std::io::Write as _;
    let stdin = child
        .stdin
        .as_mut()
        .ok_or_else(|| fail("child has no stdin"))?;
    let now = Instant::now();
    stdin.write_all(b"go\n")?;
    stdin.flush()?;
    Ok(now)
}

/// Runs the parent's side, then checks that the child succeeded.
fn read_from_child<F>(mut child: Child, parent: F) -> Res<f64>
where
    F: FnOnce(&mut Child) -> Res<(Duration, u64)>,
{
    let pinned: Option<Pinned> = pin(0);
    let result = parent(&mut child);
    drop(pinned);
    if result.is_err() {
        let _ = child.kill();
    }
    // Closing its stdin tells the child we are done with its channel.
    drop(child.stdin.take());
    let status = child.wait()?;
    let (elapsed, spanned) = result?;
    if !status.success() {
        return Err(fail(format!("child failed: {status}")));
    }
    Ok(spanned as f64 / elapsed.as_secs_f64())
}

// ---------------------------------------------------------------------------
// Latency

fn put_hist(report: &mut Report, title: &str, row: &str, h: &Histogram<u64>) {
    for (col, q) in [("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999)] {
        report.add(title, row, col, Unit::Nanos, h.value_at_quantile(q) as f64);
    }
}

fn latency_rep(report: &mut Report, plan: &Plan, dirs: &Dirs, names: &mut Names) -> Res<()> {
    let samples = plan.samples;
    let rounds = WARMUP + samples;
    let len = SMALL;

    // Between threads.
    let line = Line(Default::default());
    let h = std::thread::scope(|s| {
        let ponger = s.spawn(|| {
            let _pinned = pin(1);
            limits::pong(&line.0, rounds)
        });
        let pinned = pin(0);
        let h = workload::one_way(WARMUP, samples, |i| {
            limits::ping(&line.0, i);
            Ok(())
        });
        drop(pinned);
        ponger.join().map_err(|_| fail("pong thread panicked"))??;
        h
    })?;
    put_hist(report, T_LAT_THREADS, "floor: cache-line ping-pong", &h);
    // kekbit with the workload's records, and with 8-byte records, whose
    // 16-byte span fits one cache line as the floor's counter does.
    for (row, len) in [("kekbit", len), ("kekbit, 8 B records", 8)] {
        let pa = dirs.shm.join(format!("kek-{}.kekbit", names.next()));
        let pb = dirs.shm.join(format!("kek-{}.kekbit", names.next()));
        let _remove = (Remove(pa.clone()), Remove(pb.clone()));
        let wa = kek::create(&pa, len, rounds, true, Durability::None)?;
        let wb = kek::create(&pb, len, rounds, true, Durability::None)?;
        let (ca, cb) = (kek::open(&pa)?, kek::open(&pb)?);
        let ca = &ca;
        let echo = move || Ok((wb, KekRx::new(ca)?));
        let h = workload::thread_latency((wa, KekRx::new(&cb)?), echo, len, WARMUP, samples)?;
        put_hist(report, T_LAT_THREADS, row, &h);
    }
    {
        let root = dirs.shm.join("v035");
        let (a, b) = (
            Channel035::new(&root, names.next()),
            Channel035::new(&root, names.next()),
        );
        let (wa, wb) = (a.writer(len, rounds)?, b.writer(len, rounds)?);
        let xb = b.reader()?;
        let a = &a;
        let echo = move || Ok((wb, a.reader()?));
        let h = workload::thread_latency((wa, xb), echo, len, WARMUP, samples)?;
        put_hist(report, T_LAT_THREADS, "kekbit 0.3.5", &h);
    }
    let ((ta, ra), (tb, rb)) = (peers::rtrb(len), peers::rtrb(len));
    let h = workload::thread_latency((ta, rb), move || Ok((tb, ra)), len, WARMUP, samples)?;
    put_hist(report, T_LAT_THREADS, "rtrb", &h);
    let ((ta, ra), (tb, rb)) = (peers::bbqueue(len), peers::bbqueue(len));
    let h = workload::thread_latency((ta, rb), move || Ok((tb, ra)), len, WARMUP, samples)?;
    put_hist(report, T_LAT_THREADS, "bbqueue", &h);
    let ((ta, ra), (tb, rb)) = (peers::crossbeam(len), peers::crossbeam(len));
    let h = workload::thread_latency((ta, rb), move || Ok((tb, ra)), len, WARMUP, samples)?;
    put_hist(report, T_LAT_THREADS, "crossbeam-channel", &h);

    // Between processes.
    let (l, r) = (len.to_string(), rounds.to_string());
    {
        let path = dirs.shm.join(format!("line-{}", names.next()));
        let file = ChannelFile::create(&path, 4096, true)?;
        let child = spawn(&["pong", "floor", path_str(&path)?, "-", &l, &r])?;
        let line = limits::shared_line(&file);
        let h = ping_child(child, || {
            workload::one_way(WARMUP, samples, |i| {
                limits::ping(line, i);
                Ok(())
            })
        })?;
        put_hist(report, T_LAT_PROCS, "floor: cache-line ping-pong", &h);
    }
    {
        let pa = dirs.shm.join(format!("kek-{}.kekbit", names.next()));
        let pb = dirs.shm.join(format!("kek-{}.kekbit", names.next()));
        let _remove = (Remove(pa.clone()), Remove(pb.clone()));
        let wa = kek::create(&pa, len, rounds, true, Durability::None)?;
        let child = spawn(&["pong", "kekbit", path_str(&pa)?, path_str(&pb)?, &l, &r])?;
        let h = ping_child(child, || {
            let cb = kek::open(&pb)?;
            let mut pinger = Pinger::new(wa, KekRx::new(&cb)?, len);
            workload::one_way(WARMUP, samples, |i| pinger.round_trip(i))
        })?;
        put_hist(report, T_LAT_PROCS, "kekbit", &h);
    }
    {
        let root = dirs.shm.join("v035");
        let (ia, ib) = (names.next(), names.next());
        let a = Channel035::new(&root, ia);
        let _b = Channel035::new(&root, ib);
        let wa = a.writer(len, rounds)?;
        let (sa, sb) = (
            format!("{}:{ia}", path_str(&root)?),
            format!("{}:{ib}", path_str(&root)?),
        );
        let child = spawn(&["pong", "kekbit-0.3.5", &sa, &sb, &l, &r])?;
        let h = ping_child(child, || {
            let xb = Channel035::new(&root, ib).reader()?;
            let mut pinger = Pinger::new(wa, xb, len);
            workload::one_way(WARMUP, samples, |i| pinger.round_trip(i))
        })?;
        put_hist(report, T_LAT_PROCS, "kekbit 0.3.5", &h);
    }
    {
        let base = format!("kekbit-bench/{}/{}", std::process::id(), names.next());
        let (sa, sb) = (format!("{base}/ping"), format!("{base}/pong"));
        let tx = ice::IceTx::new(&sa, len)?;
        let rx = ice::IceRx::new(&sb, len)?;
        let child = spawn(&["pong", "iceoryx2", &sa, &sb, &l, &r])?;
        let h = ping_child(child, || {
            let mut pinger = Pinger::new(tx, rx, len);
            workload::one_way(WARMUP, samples, |i| pinger.round_trip(i))
        })?;
        put_hist(report, T_LAT_PROCS, "iceoryx2", &h);
    }
    Ok(())
}

fn ping_child<F>(mut child: Child, parent: F) -> Res<Histogram<u64>>
where
    F: FnOnce() -> Res<Histogram<u64>>,
{
    let pinned: Option<Pinned> = pin(0);
    let result = parent();
    drop(pinned);
    if result.is_err() {
        let _ = child.kill();
    }
    drop(child.stdin.take());
    let status = child.wait()?;
    let h = result?;
    if !status.success() {
        return Err(fail(format!("child failed: {status}")));
    }
    Ok(h)
}

// ---------------------------------------------------------------------------
// Fan-out

fn fanout_rep(report: &mut Report, plan: &Plan, dirs: &Dirs, names: &mut Names) -> Res<()> {
    let (len, n) = (SMALL, plan.fanout_records);
    let put = |report: &mut Report, row: &str, f: workload::FanOut| {
        report.add(T_FANOUT, row, "writer", Unit::RecordsOnly, f.writer_rate);
        for (i, (p50, p99)) in f.lag.iter().enumerate() {
            let r = i + 1;
            report.add(
                T_FANOUT,
                row,
                &format!("reader {r} lag p50"),
                Unit::Nanos,
                *p50 as f64,
            );
            report.add(
                T_FANOUT,
                row,
                &format!("reader {r} lag p99"),
                Unit::Nanos,
                *p99 as f64,
            );
        }
    };
    {
        let path = dirs.shm.join(format!("kek-{}.kekbit", names.next()));
        let _remove = Remove(path.clone());
        let writer = kek::create(&path, len, n, true, Durability::None)?;
        let channel = kek::open(&path)?;
        let channel = &channel;
        let readers: Vec<_> = (0..3).map(|_| move || KekRx::new(channel)).collect();
        put(
            report,
            "kekbit",
            workload::fan_out(writer, readers, len, n)?,
        );
    }
    {
        let ch = Channel035::new(&dirs.shm.join("v035"), names.next());
        let writer = ch.writer(len, n)?;
        let ch = &ch;
        let readers: Vec<_> = (0..3).map(|_| move || ch.reader()).collect();
        put(
            report,
            "kekbit 0.3.5",
            workload::fan_out(writer, readers, len, n)?,
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Durable writes

fn durable_rep(report: &mut Report, plan: &Plan, dirs: &Dirs, names: &mut Names) -> Res<()> {
    let len = SMALL;
    let limit = plan.durable_time;
    let g = plan.group;
    let per = "per-record flush";
    let grp = format!("group flush ({g} records)");
    for (col, group) in [(per, 1), (grp.as_str(), g)] {
        let rate = kekbit_durable(dirs, names, len, group, limit)?;
        report.add(T_DURABLE, "kekbit", col, Unit::RecordsOnly, rate);
        let rate = v035_durable(dirs, names, len, group, limit)?;
        report.add(T_DURABLE, "kekbit 0.3.5", col, Unit::RecordsOnly, rate);
        let rate = fdatasync_floor(dirs, names, len, group, limit)?;
        report.add(
            T_DURABLE,
            "floor: pwrite + fdatasync",
            col,
            Unit::RecordsOnly,
            rate,
        );
    }
    Ok(())
}

/// Upper bound on records in one durable measurement.
const DURABLE_MAX: u64 = 200_000;

fn kekbit_durable(
    dirs: &Dirs,
    names: &mut Names,
    len: usize,
    group: u64,
    limit: Duration,
) -> Res<f64> {
    let path = dirs.disk.join(format!("kek-{}.kekbit", names.next()));
    let _remove = Remove(path.clone());
    let durability = if group == 1 {
        Durability::EveryRecord
    } else {
        Durability::EveryRecords(group)
    };
    let mut writer = kek::create(&path, len, DURABLE_MAX, true, durability)?;
    let mut record = vec![0xA5u8; len];
    let start = Instant::now();
    let mut seq = 0u64;
    // The writer flushes by itself after every `group` records.
    while start.elapsed() < limit && seq + group <= DURABLE_MAX {
        for _ in 0..group {
            kekbit_benches::pipe::stamp(&mut record, seq);
            writer.send(&record)?;
            seq += 1;
        }
    }
    Ok(seq as f64 / start.elapsed().as_secs_f64())
}

fn v035_durable(
    dirs: &Dirs,
    names: &mut Names,
    len: usize,
    group: u64,
    limit: Duration,
) -> Res<f64> {
    let ch = Channel035::new(&dirs.disk.join("v035"), names.next());
    let mut writer = ch.writer(len, DURABLE_MAX)?;
    let mut record = vec![0xA5u8; len];
    let start = Instant::now();
    let mut seq = 0u64;
    while start.elapsed() < limit && seq + group <= DURABLE_MAX {
        for _ in 0..group {
            kekbit_benches::pipe::stamp(&mut record, seq);
            writer.send(&record)?;
            seq += 1;
        }
        writer.flush()?;
    }
    Ok(seq as f64 / start.elapsed().as_secs_f64())
}

/// The disk's floor: `pwrite` + `fdatasync` into a file written and synced
/// in full beforehand (as a pre-faulted channel file is), so no flush has to
/// allocate blocks or change the file's size.
fn fdatasync_floor(
    dirs: &Dirs,
    names: &mut Names,
    len: usize,
    group: u64,
    limit: Duration,
) -> Res<f64> {
    use std::os::unix::fs::FileExt as _;
    let path = dirs.disk.join(format!("plain-{}", names.next()));
    let _remove = Remove(path.clone());
    let file = std::fs::File::create(&path)?;
    let size = len * DURABLE_MAX as usize;
    file.write_all_at(&vec![0u8; size], 0)?;
    file.sync_all()?;
    let batch = vec![0xA5u8; len * group as usize];
    let start = Instant::now();
    let mut seq = 0u64;
    while start.elapsed() < limit && seq + group <= DURABLE_MAX {
        file.write_all_at(&batch, seq * len as u64)?;
        file.sync_data()?;
        seq += group;
    }
    Ok(seq as f64 / start.elapsed().as_secs_f64())
}

// ---------------------------------------------------------------------------
// One workload, repeated, for a profiler

/// `compare __profile threads|processes SYSTEM LEN [REPS]`: runs one
/// throughput workload REPS times (default 5) and prints each rate, so that
/// `perf record` sees nothing else. SYSTEM: `kekbit`, `kekbit-batches`,
/// `kekbit-0.3.5`, and between threads `rtrb`, `rtrb-batches`.
fn profile(args: &[String]) -> Res<()> {
    let usage = || fail("usage: compare __profile threads|processes SYSTEM LEN [REPS]");
    let (place, system) = match args {
        [place, system, ..] => (place.as_str(), system.as_str()),
        _ => return Err(usage()),
    };
    let len: usize = args.get(2).and_then(|a| a.parse().ok()).ok_or_else(usage)?;
    let reps: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(5);
    ice::quiet();
    let plan = Plan::new(false, None);
    let dirs = Dirs::new(Path::new("/var/tmp"))?;
    let mut names = Names(0);
    let n = plan.records(len);
    for _ in 0..reps {
        let rate = match (place, system) {
            ("threads", "kekbit") => kekbit_threads(&dirs, &mut names, len, n, true, false, 1)?.0,
            ("threads", "kekbit-batches") => {
                kekbit_threads(&dirs, &mut names, len, n, true, false, BATCH)?.0
            }
            ("threads", "kekbit-0.3.5") => {
                let ch = Channel035::new(&dirs.shm.join("v035"), names.next());
                let tx = ch.writer(len, n)?;
                workload::threads(tx, || ch.reader(), len, n)?
            }
            ("threads", "rtrb") => {
                let (tx, rx) = peers::rtrb(len);
                workload::threads(tx, move || Ok(rx), len, n)?
            }
            ("threads", "rtrb-batches") => {
                let (tx, rx) = peers::rtrb(len);
                workload::threads_in(tx, move || Ok(rx), len, n, BATCH)?
            }
            ("processes", "kekbit" | "kekbit-batches") => {
                let path = dirs.shm.join(format!("kek-{}.kekbit", names.next()));
                let _remove = Remove(path.clone());
                let (l, ns) = (len.to_string(), n.to_string());
                let child = spawn(&["tp-writer", system, path_str(&path)?, &l, &ns])?;
                read_from_child(child, |child| {
                    let channel = kek::open(&path)?;
                    let mut rx = KekRx::new(&channel)?;
                    workload::receive_all(&mut rx, len, n, Some(go(child)?))
                })?
            }
            ("processes", "kekbit-0.3.5") => {
                let root = dirs.shm.join("v035");
                let id = names.next();
                let ch = Channel035::new(&root, id);
                let name = format!("{}:{id}", path_str(&root)?);
                let (l, ns) = (len.to_string(), n.to_string());
                let child = spawn(&["tp-writer", "kekbit-0.3.5", &name, &l, &ns])?;
                read_from_child(child, |child| {
                    let mut rx = ch.reader()?;
                    workload::receive_all(&mut rx, len, n, Some(go(child)?))
                })?
            }
            _ => return Err(usage()),
        };
        println!("{place} {system} {len} B: {:.2} M records/s", rate / 1e6);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Children

fn child(args: &[String]) -> Res<()> {
    let result = child_role(args);
    // Keep the channel until the parent has read it all (it closes stdin).
    let mut rest = String::new();
    while std::io::stdin().read_line(&mut rest).is_ok_and(|n| n > 0) {}
    result
}

fn child_role(args: &[String]) -> Res<()> {
    ice::quiet();
    // The parent runs its side on CPU 0.
    let _pinned = pin(1);
    let arg = |i: usize| -> Res<&str> {
        args.get(i)
            .map(String::as_str)
            .ok_or_else(|| fail(format!("child: missing argument {i} in {args:?}")))
    };
    let num = |i: usize| -> Res<u64> {
        arg(i)?
            .parse()
            .map_err(|_| fail(format!("child: bad number in {args:?}")))
    };
    let ready = || println!("ready");
    // Throughput writers start on the parent's "go", once it reads.
    let wait_go = || -> Res<()> {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        if line.trim() == "go" {
            Ok(())
        } else {
            Err(fail("child: parent went away before \"go\""))
        }
    };
    match (arg(0)?, arg(1)?) {
        ("tp-writer", system) => {
            let (name, len, n) = (arg(2)?, num(3)? as usize, num(4)?);
            match system {
                "kekbit" => {
                    let mut tx = kek::create(Path::new(name), len, n, true, Durability::None)?;
                    ready();
                    wait_go()?;
                    workload::send_all(&mut tx, len, n)
                }
                "kekbit-batches" => {
                    let path = Path::new(name);
                    let mut tx =
                        kek::create_config(path, len, n, true, Durability::None, false, BATCH)?;
                    ready();
                    wait_go()?;
                    workload::send_all_in(&mut tx, len, n, BATCH)
                }
                "kekbit-0.3.5" => {
                    let ch = channel035(name)?;
                    let mut tx = ch.writer(len, n)?;
                    ready();
                    wait_go()?;
                    let sent = workload::send_all(&mut tx, len, n);
                    std::mem::forget(ch); // the parent removes the file
                    sent
                }
                "iceoryx2" => {
                    let mut tx = ice::IceTx::new(name, len)?;
                    ready();
                    wait_go()?;
                    workload::send_all(&mut tx, len, n)
                }
                other => Err(fail(format!("child: unknown system {other}"))),
            }
        }
        ("pong", system) => {
            let (a, b, len, rounds) = (arg(2)?, arg(3)?, num(4)? as usize, num(5)?);
            match system {
                "floor" => {
                    let file = ChannelFile::open(Path::new(a))?;
                    ready();
                    limits::pong(limits::shared_line(&file), rounds)
                }
                "kekbit" => {
                    let mut tx = kek::create(Path::new(b), len, rounds, true, Durability::None)?;
                    ready();
                    let channel = kek::open(Path::new(a))?;
                    let mut rx = KekRx::new(&channel)?;
                    workload::echo(&mut tx, &mut rx, rounds)
                }
                "kekbit-0.3.5" => {
                    let (ca, cb) = (channel035(a)?, channel035(b)?);
                    let mut tx = cb.writer(len, rounds)?;
                    ready();
                    let mut rx = ca.reader()?;
                    let echoed = workload::echo(&mut tx, &mut rx, rounds);
                    std::mem::forget((ca, cb)); // the parent removes the files
                    echoed
                }
                "iceoryx2" => {
                    let mut rx = ice::IceRx::new(a, len)?;
                    let mut tx = ice::IceTx::new(b, len)?;
                    ready();
                    workload::echo(&mut tx, &mut rx, rounds)
                }
                other => Err(fail(format!("child: unknown system {other}"))),
            }
        }
        (role, _) => Err(fail(format!("child: unknown role {role}"))),
    }
}

/// A 0.3.5 channel named `root:id`.
fn channel035(name: &str) -> Res<Channel035> {
    let (root, id) = name
        .rsplit_once(':')
        .ok_or_else(|| fail(format!("bad 0.3.5 channel name {name}")))?;
    let id = id
        .parse()
        .map_err(|_| fail(format!("bad 0.3.5 channel id in {name}")))?;
    Ok(Channel035::new(Path::new(root), id))
}

// ---------------------------------------------------------------------------
// Targets and the document

fn kv_targets(report: &Report, line: &mut impl FnMut(&str, String, Option<bool>)) {
    let pkv = "persistent-kv 1.0.2";
    let ratio = |t: &str, col: &str| -> Option<(f64, f64)> {
        let s = report.get(t)?;
        Some((s.median("kekbit", col)?, s.median(pkv, col)?))
    };
    for (t, col, want, higher) in [
        (T_KV, "set, 1 thread", 10.0, true),
        (T_KV, "set, 2 threads", 10.0, true),
        (T_KV, "get, 1 thread", 3.0, true),
        (T_KV, "get, 2 threads", 3.0, true),
        (T_KV_SYNC, "16 threads", 5.0, true),
        (T_KV_COST, "reopen (warm cache)", 3.0, false),
    ] {
        let name = if higher {
            format!("kv {col} ≥ {want}× persistent-kv")
        } else {
            format!("kv {col} ≤ 1/{want} of persistent-kv")
        };
        match ratio(t, col) {
            Some((k, p)) => {
                let r = if higher { k / p } else { p / k };
                line(&name, format!("{r:.2}×"), Some(r >= want));
            }
            None => line(&name, "not measured".into(), None),
        }
    }
    if let Some(s) = report.get(T_KV_COST) {
        let data = report_kv_data(report);
        for col in ["disk after the run", "peak RSS"] {
            if let (Some(k), Some(data)) = (s.median("kekbit", col), data) {
                line(
                    &format!("kv {col} ≤ 1.5× the data"),
                    format!(
                        "{:.1} MB for {:.1} MB = {:.2}×",
                        k / 1e6,
                        data / 1e6,
                        k / data
                    ),
                    Some(k <= 1.5 * data),
                );
            }
        }
    }
    // Ahead of fjall and redb on every cell.
    for t in [T_KV, T_KV_SYNC, T_KV_COST] {
        let Some(s) = report.get(t) else { continue };
        for col in s.column_names() {
            let lower_better = t == T_KV_COST;
            let Some(k) = s.median("kekbit", &col) else {
                continue;
            };
            for peer in ["fjall", "redb"] {
                if let Some(p) = s.median(peer, &col) {
                    let ahead = if lower_better { k <= p } else { k >= p };
                    line(
                        &format!("kv {col}: ahead of {peer}"),
                        format!("{:.2}×", if lower_better { p / k } else { k / p }),
                        Some(ahead),
                    );
                }
            }
        }
    }
}

/// The key-value workload's data size, from the note of its table.
fn report_kv_data(report: &Report) -> Option<f64> {
    let note = &report.get(T_KV)?.note;
    let mb = note.split(" MB of data").next()?.rsplit('(').next()?;
    mb.parse::<f64>().ok().map(|m| m * 1e6)
}

/// Appends the journal's rows to the targets table `targets` (which ends
/// in a blank line).
fn journal_targets(targets: &mut String, report: &Report, plan: &journal::Plan) {
    let rows = journal::targets(report, plan);
    let blank = targets.trim_end().len();
    targets.truncate(blank);
    targets.push('\n');
    for (target, measured, met) in rows {
        let met = match met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "–",
        };
        targets.push_str(&format!("| {target} | {measured} | {met} |\n"));
    }
    targets.push('\n');
}

fn targets(report: &Report) -> String {
    let mut out = String::from("### Targets\n\n| target | measured | met |\n|---|---|:-:|\n");
    let mut line = |target: &str, measured: String, met: Option<bool>| {
        let met = match met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "–",
        };
        out.push_str(&format!("| {target} | {measured} | {met} |\n"));
    };
    let ratio = |t: &kekbit_benches::report::Section, row: &str, base: &str, col: &str| {
        t.median(row, col).zip(t.median(base, col))
    };
    for (title, place) in [(T_THREADS, "threads"), (T_PROCS, "processes")] {
        if let Some(t) = report.get(title) {
            let col = size_name(64);
            match ratio(t, KEK_BATCH, "kekbit 0.3.5", &col) {
                Some((k, old)) => line(
                    &format!("64 B between {place}, batches of 32, ≥ 3× kekbit 0.3.5"),
                    format!(
                        "{:.2} M/s vs {:.2} M/s = {:.2}×",
                        k / 1e6,
                        old / 1e6,
                        k / old
                    ),
                    Some(k >= 3.0 * old),
                ),
                None => line(
                    &format!("64 B between {place}, batches of 32, ≥ 3× kekbit 0.3.5"),
                    "not measured".into(),
                    None,
                ),
            }
        }
    }
    if let Some(t) = report.get(T_THREADS) {
        let col = size_name(8);
        if let Some((k, one)) = ratio(t, KEK_BATCH, "kekbit", &col) {
            line(
                "8 B between threads, batches of 32, ≥ 2× kekbit one by one",
                format!(
                    "{:.2} M/s vs {:.2} M/s = {:.2}×",
                    k / 1e6,
                    one / 1e6,
                    k / one
                ),
                Some(k >= 2.0 * one),
            );
        }
        let col = size_name(64);
        if let Some((k, r)) = ratio(t, KEK_BATCH, RTRB_BATCH, &col) {
            line(
                "64 B between threads, batches of 32: kekbit vs rtrb, same batches (no target)",
                format!("{:.2} M/s vs {:.2} M/s = {:.2}×", k / 1e6, r / 1e6, k / r),
                None,
            );
        }
    }
    if let Some(t) = report.get(T_THREADS) {
        let col = size_name(64);
        for row in [
            "kekbit",
            "kekbit, pre-faulting timed too",
            "kekbit, no pre-fault",
        ] {
            match (t.median(row, &col), t.median("kekbit 0.3.5", &col)) {
                (Some(k), Some(old)) => line(
                    &format!("64 B between threads ≥ 3× kekbit 0.3.5 ({row})"),
                    format!(
                        "{:.2} M/s vs {:.2} M/s = {:.2}×",
                        k / 1e6,
                        old / 1e6,
                        k / old
                    ),
                    Some(k >= 3.0 * old),
                ),
                _ => line(
                    "64 B between threads ≥ 3× kekbit 0.3.5",
                    "not measured".into(),
                    None,
                ),
            }
        }
        for len in [1024, 65536] {
            let col = size_name(len);
            for (row, memory) in [
                ("kekbit", "memcpy, pre-faulted /dev/shm"),
                ("kekbit", BUSY_MEMCPY),
                ("kekbit, no pre-fault", "memcpy, fresh /dev/shm"),
            ] {
                if let (Some(k), Some(m)) = (t.median(row, &col), t.median(memory, &col)) {
                    let gb = |r: f64| r * len as f64 / 1e9;
                    line(
                        &format!("{col} records ≥ 60% of {memory} ({row})"),
                        format!(
                            "{:.2} GB/s vs {:.2} GB/s = {:.0}%",
                            gb(k),
                            gb(m),
                            100.0 * k / m
                        ),
                        Some(k >= 0.6 * m),
                    );
                }
            }
        }
    }
    kv_targets(report, &mut line);
    if let Some(t) = report.get(T_LAT_THREADS) {
        let floor = "floor: cache-line ping-pong";
        if let (Some(k), Some(f)) = (t.median("kekbit", "p50"), t.median(floor, "p50")) {
            line(
                "thread latency p50 ≤ 2× ping-pong floor",
                format!("{k:.0} ns vs floor {f:.0} ns = {:.2}×", k / f),
                Some(k <= 2.0 * f),
            );
        }
        if let Some(k) = t.median("kekbit", "p99") {
            line(
                "thread latency p99 < 1 µs",
                format!("{k:.0} ns"),
                Some(k < 1000.0),
            );
        }
    }
    if let Some(t) = report.get(T_RELAY) {
        for (len, factor) in [(64, 10.0), (1024, 3.0)] {
            let col = size_name(len);
            if let (Some(k), Some(raw)) = (t.median("kekbit", &col), t.median(RAW_NATS, &col)) {
                line(
                    &format!(
                        "relay push {col}, source to replica ≥ {factor}× async-nats records/s"
                    ),
                    format!(
                        "{:.0} k/s vs {:.0} k/s = {:.2}×",
                        k / 1e3,
                        raw / 1e3,
                        k / raw
                    ),
                    Some(k >= factor * raw),
                );
            }
        }
    }
    if let Some(t) = report.get(T_RELAY_LAT) {
        for q in ["p50", "p99"] {
            if let (Some(k), Some(raw)) = (t.median("kekbit", q), t.median(RAW_NATS_LAT, q)) {
                line(
                    &format!("relay latency {q} at 1,000/s ≤ 1.2× async-nats publish-to-receive"),
                    format!("{:.0} µs vs {:.0} µs = {:.2}×", k / 1e3, raw / 1e3, k / raw),
                    Some(k <= 1.2 * raw),
                );
            }
        }
    }
    out.push('\n');
    out
}

fn document(
    plan: &Plan,
    args: &[String],
    elapsed: Duration,
    tables: &str,
    targets: &str,
) -> Res<String> {
    let mut doc = String::new();
    doc.push_str(
        "# kekbit benchmarks\n\n\
         <!-- Generated by `compare --write-markdown BENCHMARKS.md`; do not edit by hand. \
         The analysis comes from benches/ANALYSIS.md. -->\n\n\
         kekbit measured side by side with the crates a user would pick instead, and with \
         the machine's own limits, in one run of one process on one machine. Every cell is \
         the median over the repetitions; systems alternate inside each repetition.\n\n",
    );
    doc.push_str(
        "## How to reproduce\n\n```sh\ncargo run --release -p kekbit-benches --bin compare --",
    );
    for a in args {
        doc.push(' ');
        doc.push_str(a);
    }
    let when = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    doc.push_str(&format!(
        "\n```\n\nRun {when}: {} repetitions{}, {:.0} s wall time.\n\n",
        plan.reps,
        if plan.quick { " (--quick)" } else { "" },
        elapsed.as_secs_f64()
    ));
    doc.push_str("## Machine\n\n");
    doc.push_str(&machine());
    doc.push_str("\n## Results\n\n");
    doc.push_str(tables);
    doc.push_str(targets);
    doc.push_str(include_str!("../../ANALYSIS.md"));
    Ok(doc)
}

/// The processor as `/proc/cpuinfo` names it: the model name, with the
/// vendor's family, model and stepping numbers (which tell generations
/// apart where a hypervisor shows only "AMD EPYC"), the clock and the
/// number of logical CPUs.
fn cpu_model() -> String {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim() == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "?".into())
    };
    let cpus = text
        .lines()
        .filter(|l| l.split(':').next().is_some_and(|k| k.trim() == "processor"))
        .count();
    format!(
        "{} ({} family {} model {} stepping {}, {} MHz), {cpus} logical CPUs",
        field("model name"),
        field("vendor_id"),
        field("cpu family"),
        field("model"),
        field("stepping"),
        field("cpu MHz"),
    )
}

fn machine() -> String {
    let mut out = format!("- CPU model (/proc/cpuinfo): {}\n", cpu_model());
    let lscpu = Command::new("lscpu").output().ok();
    let text = lscpu
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let keep = [
        "Architecture",
        "Model name",
        "CPU(s)",
        "Thread(s) per core",
        "Core(s) per socket",
        "Hypervisor vendor",
        "L1d cache",
        "L2 cache",
        "L3 cache",
    ];
    for l in text.lines() {
        if let Some((k, v)) = l.split_once(':')
            && keep.contains(&k.trim())
        {
            out.push_str(&format!("- {}: {}\n", k.trim(), v.trim()));
        }
    }
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    out.push_str(&format!(
        "- Kernel: Linux {}\n",
        read("/proc/sys/kernel/osrelease").trim()
    ));
    if let Some(mem) = read("/proc/meminfo").lines().next() {
        out.push_str(&format!(
            "- {}\n",
            mem.split_whitespace().collect::<Vec<_>>().join(" ")
        ));
    }
    if let Ok(o) = Command::new("rustc").arg("--version").output() {
        out.push_str(&format!("- {}", String::from_utf8_lossy(&o.stdout)));
    }
    out
}

/// The file-system type of `dir` ("tmpfs", "ext2/ext3/ext4", ...).
fn fs_type(dir: &Path) -> Res<String> {
    let c = std::ffi::CString::new(path_str(dir)?)?;
    let mut st: libc::statfs = unsafe_zeroed_statfs();
    // SAFETY: `c` is a valid C string and `st` a valid out-parameter.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(fail(format!(
            "statfs {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        )));
    }
    // `f_type`'s integer type differs between targets.
    #[allow(clippy::unnecessary_cast)]
    let f_type = st.f_type as i64;
    Ok(match f_type {
        0x0102_1994 => "tmpfs".into(),
        0xEF53 => "ext4".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683E => "btrfs".into(),
        0x794C_7630 => "overlayfs".into(),
        other => format!("file system 0x{other:x}"),
    })
}

fn unsafe_zeroed_statfs() -> libc::statfs {
    // SAFETY: `statfs` is a plain C struct of integers; all-zero is valid.
    unsafe { std::mem::zeroed() }
}
