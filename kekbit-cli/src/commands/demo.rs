//! `kekbit demo`: one writer process streams records to reader processes
//! over a fresh channel; each record carries a timestamp, so the readers
//! measure one-way latency as well as throughput.
//!
//! The parent process only orchestrates. It starts `kekbit demo-writer`
//! (creates the channel, says `ready`, waits for `go`, streams, says
//! `progress K` now and then and `done N NANOS` at the end) and R times
//! `kekbit demo-reader` (opens the channel, says `ready`, reads to the end,
//! says `result ...`), all through pipes, then prints the table.

use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use kekbit_nostd::format::{MARKER_LEN, MAX_CAPACITY, PAYLOAD_OFFSET};
use kekbit_nostd::{ChannelConfig, TickUnit};
use kekbit_std::{ShmReader, WaitStrategy, WriterOptions, default_root, storage_path};

use crate::cli::{DemoArgs, DemoReaderArgs, DemoWriterArgs};
use crate::error::{CliError, CliResult, stdout_error};
use crate::inspect::{self, State};
use crate::units::{human_bytes, human_nanos};

/// The demo channel's id: "kbdemo" in ASCII. Its path under the root is
/// `0000_6b62/6465_6d6f.kekbit`; each run replaces the last run's channel.
pub const DEMO_CHANNEL_ID: u64 = 0x6b62_6465_6d6f;

/// Bytes at the start of every demo record: sequence number, timestamp.
const STAMP_LEN: usize = 16;

/// The demo channel's writer timeout: readers give up on a writer this
/// long silent.
const WRITER_TIMEOUT_MS: u64 = 5_000;

/// What fills each record after its stamp, so `cat` shows something legible.
const FILLER: &[u8] = b"kekbit demo record ";

/// Runs `kekbit demo`.
pub fn run(args: &DemoArgs) -> CliResult {
    let plan = Plan::new(args)?;
    let path = storage_path(&plan.root, DEMO_CHANNEL_ID);
    remove_previous_demo(&path)?;
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Other(format!("cannot find the kekbit executable: {e}")))?;

    println!(
        "kekbit demo: 1 writer process -> {} reader process{}, {} records of {} bytes{}",
        plan.readers,
        if plan.readers == 1 { "" } else { "es" },
        plan.records,
        plan.record_size,
        if args.checksums {
            ", with checksums"
        } else {
            ""
        }
    );
    println!(
        "channel: {} ({})",
        path.display(),
        human_bytes(plan.capacity)
    );
    io::stdout().flush().map_err(stdout_error)?;

    let mut writer_cmd = Command::new(&exe);
    writer_cmd
        .arg("demo-writer")
        .arg(&path)
        .arg("--records")
        .arg(plan.records.to_string())
        .arg("--record-size")
        .arg(plan.record_size.to_string())
        .arg("--channel-id")
        .arg(DEMO_CHANNEL_ID.to_string());
    if args.checksums {
        writer_cmd.arg("--checksums");
    }
    let mut writer = Proc::spawn("writer", writer_cmd, true)?;
    writer.expect_ready()?;

    let mut readers = Vec::new();
    for i in 1..=plan.readers {
        let mut cmd = Command::new(&exe);
        cmd.arg("demo-reader").arg(&path);
        if plan.busy_spin {
            cmd.arg("--busy-spin");
        }
        match Proc::spawn(&format!("reader {i}"), cmd, false) {
            Ok(reader) => readers.push(reader),
            Err(e) => {
                stop_all(&mut writer, &mut readers);
                return Err(e);
            }
        }
    }
    for i in 0..readers.len() {
        if let Err(e) = readers[i].expect_ready() {
            stop_all(&mut writer, &mut readers);
            return Err(e);
        }
    }

    let bar = progress_bar(plan.records);
    let streamed = writer.send_go().and_then(|()| writer.follow_progress(&bar));
    bar.finish_and_clear();
    let writer_done = match streamed {
        Ok(done) => done,
        Err(e) => {
            stop_all(&mut writer, &mut readers);
            return Err(e);
        }
    };
    writer.finish()?;
    let mut results = Vec::new();
    for reader in readers {
        let output = reader.finish()?;
        results.push(ReaderResult::parse(&output).ok_or_else(|| {
            CliError::Other(format!("a demo reader printed no result: {output:?}"))
        })?);
    }
    for (i, result) in results.iter().enumerate() {
        if result.records != plan.records {
            return Err(CliError::Other(format!(
                "reader {} read {} records, expected {}",
                i + 1,
                result.records,
                plan.records
            )));
        }
    }
    print_table(&plan, &writer_done, &results, &path, &exe).map_err(stdout_error)
}

/// The demo's sizes, checked.
struct Plan {
    records: u64,
    readers: u32,
    record_size: u32,
    capacity: u64,
    root: PathBuf,
    busy_spin: bool,
}

impl Plan {
    fn new(args: &DemoArgs) -> CliResult<Self> {
        if args.records == 0 {
            return Err(CliError::Usage(String::from(
                "--records must be at least 1",
            )));
        }
        let cores = thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        let readers = args
            .readers
            .unwrap_or_else(|| cores.saturating_sub(1).clamp(1, 4));
        if readers == 0 || readers > 64 {
            return Err(CliError::Usage(String::from(
                "--readers must be between 1 and 64",
            )));
        }
        let record_size = u32::try_from(args.record_size)
            .ok()
            .filter(|&n| n as usize >= STAMP_LEN && n <= 1 << 30)
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "--record-size must be between {STAMP_LEN} bytes (a sequence number and a \
                     timestamp) and 1 GiB"
                ))
            })?;
        let span = (PAYLOAD_OFFSET as u64) + u64::from(record_size).next_multiple_of(8);
        let capacity = args
            .records
            .checked_mul(span)
            .and_then(|n| n.checked_add(MARKER_LEN as u64))
            .filter(|&n| n <= u64::from(MAX_CAPACITY))
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "{} records of {record_size} bytes do not fit in one channel (at most 4 GiB); \
                     use fewer --records or a smaller --record-size",
                    args.records
                ))
            })?;
        Ok(Self {
            records: args.records,
            readers,
            record_size,
            capacity,
            root: args.dir.clone().unwrap_or_else(default_root),
            // Spinning readers give the lowest latency, but only while every
            // process has a core of its own; otherwise they steal the
            // writer's and each other's time slices.
            busy_spin: readers < cores,
        })
    }
}

/// Removes the channel a previous demo left at `path`, after checking that
/// it is one and that its writer is gone.
fn remove_previous_demo(path: &Path) -> CliResult {
    if !path.exists() {
        return Ok(());
    }
    let not_ours = || {
        CliError::path(
            path,
            "exists and is not a finished demo channel; remove it or choose another --dir",
        )
    };
    let channel = ShmReader::open(path).map_err(|_| not_ours())?;
    if channel.header().channel_id != DEMO_CHANNEL_ID {
        return Err(not_ours());
    }
    let mut reader = inspect::reader(&channel)?;
    let walk = inspect::walk(&mut reader);
    let timeout =
        inspect::ticks_to_duration(channel.header().timeout_ticks, channel.header().tick_unit);
    if inspect::state(walk.end, reader.heartbeat_age(), timeout) == State::Open {
        return Err(CliError::path(
            path,
            "another demo is writing this channel now; wait for it or choose another --dir",
        ));
    }
    drop(channel);
    std::fs::remove_file(path).map_err(|e| CliError::io(path, "remove the last demo's channel", &e))
}

/// A child process with its standard output read line by line.
struct Proc {
    name: String,
    child: Child,
    lines: BufReader<ChildStdout>,
}

impl Proc {
    fn spawn(name: &str, mut cmd: Command, stdin: bool) -> CliResult<Self> {
        cmd.stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| CliError::Other(format!("cannot start the demo {name}: {e}")))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(CliError::Other(format!("demo {name} has no output pipe")));
        };
        Ok(Self {
            name: name.to_string(),
            child,
            lines: BufReader::new(stdout),
        })
    }

    /// The next line of output, without its newline; `None` at its end.
    fn next_line(&mut self) -> CliResult<Option<String>> {
        let mut line = String::new();
        match self.lines.read_line(&mut line) {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(line.trim_end().to_string())),
            Err(e) => Err(CliError::Other(format!(
                "cannot read from the demo {}: {e}",
                self.name
            ))),
        }
    }

    fn expect_ready(&mut self) -> CliResult {
        match self.next_line()? {
            Some(line) if line == "ready" => Ok(()),
            _ => Err(self.failure()),
        }
    }

    fn send_go(&mut self) -> CliResult {
        let name = &self.name;
        let stdin = self
            .child
            .stdin
            .as_mut()
            .ok_or_else(|| CliError::Other(format!("demo {name} has no input pipe")))?;
        stdin
            .write_all(b"go\n")
            .and_then(|()| stdin.flush())
            .map_err(|e| CliError::Other(format!("cannot start the demo {name}: {e}")))
    }

    /// Moves the bar with the writer's progress until it says `done`.
    fn follow_progress(&mut self, bar: &ProgressBar) -> CliResult<WriterDone> {
        loop {
            let Some(line) = self.next_line()? else {
                return Err(self.failure());
            };
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some("progress"), Some(n), None) => {
                    if let Ok(n) = n.parse() {
                        bar.set_position(n);
                    }
                }
                (Some("done"), Some(records), Some(nanos)) => {
                    if let (Ok(records), Ok(nanos)) = (records.parse(), nanos.parse()) {
                        return Ok(WriterDone { records, nanos });
                    }
                }
                _ => {}
            }
        }
    }

    /// Waits for the process to end and returns the rest of its output.
    fn finish(mut self) -> CliResult<String> {
        let mut rest = String::new();
        let read = self.lines.read_to_string(&mut rest);
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        let status = self
            .child
            .wait()
            .map_err(|e| CliError::Other(format!("cannot wait for the demo {}: {e}", self.name)))?;
        if !status.success() || read.is_err() {
            return Err(child_error(&self.name, &stderr, &status.to_string()));
        }
        Ok(rest)
    }

    /// Why the process stopped talking: it ended (with its own error line),
    /// or it said something unexpected. Kills it either way.
    fn failure(&mut self) -> CliError {
        let _ = self.child.kill();
        let status = self
            .child
            .wait()
            .map_or_else(|e| e.to_string(), |s| s.to_string());
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        child_error(&self.name, &stderr, &status)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child's own error line if it printed one, else its exit status.
fn child_error(name: &str, stderr: &str, status: &str) -> CliError {
    let own = stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("kekbit: error: "));
    match own {
        Some(message) => CliError::Other(format!("demo {name}: {message}")),
        None => CliError::Other(format!("demo {name} failed ({status})")),
    }
}

fn stop_all(writer: &mut Proc, readers: &mut [Proc]) {
    writer.kill();
    for reader in readers {
        reader.kill();
    }
}

fn progress_bar(records: u64) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(records);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} streaming [{bar:40}] {human_pos}/{human_len} records",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// What the writer reports at the end.
struct WriterDone {
    records: u64,
    nanos: u64,
}

/// What a reader reports at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ReaderResult {
    records: u64,
    payload_bytes: u64,
    /// Writer's timestamp in the first record.
    first_sent: u64,
    /// When the reader read the last record.
    last_read: u64,
    p50: u64,
    p99: u64,
    p999: u64,
    max: u64,
}

impl ReaderResult {
    fn line(&self) -> String {
        format!(
            "result {} {} {} {} {} {} {} {}",
            self.records,
            self.payload_bytes,
            self.first_sent,
            self.last_read,
            self.p50,
            self.p99,
            self.p999,
            self.max
        )
    }

    fn parse(output: &str) -> Option<Self> {
        let line = output.lines().find_map(|l| l.strip_prefix("result "))?;
        let n: Vec<u64> = line
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        let [
            records,
            payload_bytes,
            first_sent,
            last_read,
            p50,
            p99,
            p999,
            max,
        ] = n[..]
        else {
            return None;
        };
        Some(Self {
            records,
            payload_bytes,
            first_sent,
            last_read,
            p50,
            p99,
            p999,
            max,
        })
    }
}

fn print_table(
    plan: &Plan,
    writer: &WriterDone,
    readers: &[ReaderResult],
    path: &Path,
    exe: &Path,
) -> io::Result<()> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let payload = u64::from(plan.record_size);
    writeln!(out)?;
    writeln!(
        out,
        "{:<10} {:>12} {:>8} {:>10} {:>10} {:>10} {:>10}",
        "", "records/s", "GB/s", "p50", "p99", "p99.9", "max"
    )?;
    let rate = |records: u64, nanos: u64| records as f64 * 1e9 / nanos.max(1) as f64;
    let writer_rate = rate(writer.records, writer.nanos);
    writeln!(
        out,
        "{:<10} {:>12} {:>8.2}",
        "writer",
        human_rate(writer_rate),
        writer_rate * payload as f64 / 1e9
    )?;
    for (i, r) in readers.iter().enumerate() {
        let rate = rate(r.records, r.last_read.saturating_sub(r.first_sent));
        writeln!(
            out,
            "{:<10} {:>12} {:>8.2} {:>10} {:>10} {:>10} {:>10}",
            format!("reader {}", i + 1),
            human_rate(rate),
            rate * payload as f64 / 1e9,
            human_nanos(r.p50),
            human_nanos(r.p99),
            human_nanos(r.p999),
            human_nanos(r.max)
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "Latency is one-way: from the writer's timestamp in each record to the reader \
         reading it (CLOCK_MONOTONIC)."
    )?;
    writeln!(
        out,
        "Readers {} for records; the machine has {} core{}.",
        if plan.busy_spin {
            "busy-spin"
        } else {
            "spin, then yield the CPU,"
        },
        thread::available_parallelism().map_or(1, |n| n.get()),
        if thread::available_parallelism().map_or(1, |n| n.get()) == 1 {
            ""
        } else {
            "s"
        }
    )?;
    writeln!(out)?;
    let kekbit = command_name(exe);
    let shown = quote(path.as_os_str());
    writeln!(out, "The channel stays at {shown}. Try next:")?;
    writeln!(out, "  {kekbit} info {shown}")?;
    writeln!(out, "  {kekbit} verify {shown}")?;
    writeln!(out, "  {kekbit} cat --format hex {shown} | head -3")?;
    out.flush()
}

/// Records per second, for people: `21.4 M`.
fn human_rate(per_sec: f64) -> String {
    if per_sec >= 1e9 {
        format!("{:.2} G", per_sec / 1e9)
    } else if per_sec >= 1e6 {
        format!("{:.2} M", per_sec / 1e6)
    } else if per_sec >= 1e3 {
        format!("{:.2} k", per_sec / 1e3)
    } else {
        format!("{per_sec:.0}")
    }
}

/// How the user can run this executable again: `kekbit` if that is what
/// the shell finds, else its path (relative to here when it is below).
fn command_name(exe: &Path) -> String {
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            let candidate = dir.join("kekbit");
            candidate.canonicalize().ok().as_deref() == exe.canonicalize().ok().as_deref()
        })
    });
    if on_path {
        return String::from("kekbit");
    }
    let relative = std::env::current_dir()
        .ok()
        .and_then(|cwd| exe.strip_prefix(cwd).ok().map(Path::to_path_buf));
    match relative {
        Some(rel) => quote(rel.as_os_str()),
        None => quote(exe.as_os_str()),
    }
}

/// Quotes a path for a POSIX shell when it needs quoting.
fn quote(text: &OsStr) -> String {
    let text = text.to_string_lossy();
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:,@%".contains(c))
    {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// Nanoseconds on `CLOCK_MONOTONIC`, which every process on the machine
/// shares: the demo's timestamps.
fn monotonic_nanos() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Runs `kekbit demo-writer`: create, say `ready`, wait for `go`, stream.
pub fn run_writer(args: &DemoWriterArgs) -> CliResult {
    let record_size = args.record_size as usize;
    if record_size < STAMP_LEN {
        return Err(CliError::Usage(format!(
            "--record-size must be at least {STAMP_LEN}"
        )));
    }
    let span = (PAYLOAD_OFFSET as u64) + (record_size as u64).next_multiple_of(8);
    let capacity = args
        .records
        .checked_mul(span)
        .and_then(|n| n.checked_add(MARKER_LEN as u64))
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| CliError::Usage(String::from("too many records for one channel")))?;
    let config = ChannelConfig::new(args.channel_id)
        .capacity_bytes(capacity)
        .max_record_len(args.record_size)
        .timeout(WRITER_TIMEOUT_MS, TickUnit::Millis)
        .checksums(args.checksums);
    let mut writer = WriterOptions::new(config).create(&args.path)?;

    let stdout = io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "ready")
        .and_then(|()| out.flush())
        .map_err(stdout_error)?;

    // Wait for `go`, heartbeating so the readers do not give up on us.
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = io::stdin().lock().read_line(&mut line);
        let _ = tx.send(line);
    });
    loop {
        match rx.recv_timeout(Duration::from_millis(WRITER_TIMEOUT_MS / 4)) {
            Ok(line) if line.trim() == "go" => break,
            Ok(_) | Err(RecvTimeoutError::Disconnected) => {
                writer.close()?;
                return Err(CliError::Other(String::from(
                    "the demo was called off before it started",
                )));
            }
            Err(RecvTimeoutError::Timeout) => writer.heartbeat(),
        }
    }

    let mut record = vec![0u8; STAMP_LEN];
    record.extend(FILLER.iter().copied().cycle().take(record_size - STAMP_LEN));
    let step = (args.records / 100).max(1);
    let start = monotonic_nanos();
    for seq in 0..args.records {
        record[..8].copy_from_slice(&seq.to_le_bytes());
        record[8..STAMP_LEN].copy_from_slice(&monotonic_nanos().to_le_bytes());
        writer.write(&record)?;
        if seq % step == step - 1 {
            writeln!(out, "progress {}", seq + 1)
                .and_then(|()| out.flush())
                .map_err(stdout_error)?;
        }
    }
    let elapsed = monotonic_nanos().saturating_sub(start);
    writer.close()?;
    writeln!(out, "done {} {elapsed}", args.records)
        .and_then(|()| out.flush())
        .map_err(stdout_error)
}

/// Runs `kekbit demo-reader`: open, say `ready`, read to the end, report.
pub fn run_reader(args: &DemoReaderArgs) -> CliResult {
    let channel = inspect::open(&args.path)?;
    let strategy = if args.busy_spin {
        WaitStrategy::BusySpin
    } else {
        WaitStrategy::Backoff {
            spins: 256,
            yields: u32::MAX,
            max_sleep: Duration::from_micros(50),
        }
    };
    let mut reader = inspect::reader(&channel)?.with_wait_strategy(strategy);
    let stdout = io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "ready")
        .and_then(|()| out.flush())
        .map_err(stdout_error)?;

    // Latencies from 1 ns to 100 s, to 3 significant digits; longer ones
    // are clamped to the top.
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 100_000_000_000, 3)
        .map_err(|e| CliError::Other(format!("cannot make a histogram: {e}")))?;
    let mut records = 0u64;
    let mut payload_bytes = 0u64;
    let mut first_sent = 0u64;
    let mut last_read = 0u64;
    for record in reader.blocking() {
        let record = record?;
        let now = monotonic_nanos();
        let (Some(seq), Some(sent)) = (le_u64(record, 0), le_u64(record, 8)) else {
            return Err(CliError::path(
                &args.path,
                format_args!("record {records} is too short to be a demo record"),
            ));
        };
        if seq != records {
            return Err(CliError::path(
                &args.path,
                format_args!("record {records} carries sequence number {seq}"),
            ));
        }
        if records == 0 {
            first_sent = sent;
        }
        histogram.saturating_record(now.saturating_sub(sent).max(1));
        records += 1;
        payload_bytes += record.len() as u64;
        last_read = now;
    }
    let result = ReaderResult {
        records,
        payload_bytes,
        first_sent,
        last_read,
        p50: histogram.value_at_quantile(0.5),
        p99: histogram.value_at_quantile(0.99),
        p999: histogram.value_at_quantile(0.999),
        max: histogram.max(),
    };
    writeln!(out, "{}", result.line())
        .and_then(|()| out.flush())
        .map_err(stdout_error)
}

/// The little-endian `u64` at `at`, if the record is long enough.
fn le_u64(record: &[u8], at: usize) -> Option<u64> {
    let bytes = record.get(at..at + 8)?;
    let mut word = [0u8; 8];
    word.copy_from_slice(bytes);
    Some(u64::from_le_bytes(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_results_round_trip() {
        let r = ReaderResult {
            records: 10,
            payload_bytes: 640,
            first_sent: 5,
            last_read: 99,
            p50: 100,
            p99: 200,
            p999: 300,
            max: 400,
        };
        let output = format!("ready\n{}\n", r.line());
        assert_eq!(ReaderResult::parse(&output), Some(r));
        assert_eq!(ReaderResult::parse("result 1 2 3"), None);
        assert_eq!(ReaderResult::parse("nothing"), None);
    }

    #[test]
    fn child_errors_keep_the_childs_message() {
        let e = child_error(
            "writer",
            "noise\nkekbit: error: /x: full\n",
            "exit status: 1",
        );
        assert_eq!(e.to_string(), "demo writer: /x: full");
        let e = child_error("reader 2", "", "signal: 9");
        assert_eq!(e.to_string(), "demo reader 2 failed (signal: 9)");
    }

    #[test]
    fn figures_and_quoting() {
        assert_eq!(human_rate(21_400_000.0), "21.40 M");
        assert_eq!(human_rate(950.0), "950");
        assert_eq!(
            quote(OsStr::new("/dev/shm/a_b.kekbit")),
            "/dev/shm/a_b.kekbit"
        );
        assert_eq!(quote(OsStr::new("/tmp/a b")), "'/tmp/a b'");
        assert_eq!(le_u64(&[1, 0, 0, 0, 0, 0, 0, 0, 9], 0), Some(1));
        assert_eq!(le_u64(&[1, 0], 0), None);
    }

    #[test]
    fn the_monotonic_clock_moves_forward() {
        let a = monotonic_nanos();
        let b = monotonic_nanos();
        assert!(a > 0 && b >= a);
    }
}
