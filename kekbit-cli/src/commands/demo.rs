//! `kekbit demo`: one writer process streams records to reader processes
//! over a fresh channel; each record carries a timestamp, so the readers
//! measure one-way latency as well as throughput.
//!
//! The parent process only orchestrates, through pipes. It starts
//! `kekbit demo-writer`, which creates the channel and says `ready`, and R
//! times `kekbit demo-reader`, which open it and say `ready`. On `go` the
//! writer streams most records flat out (throughput), saying `progress K`
//! now and then and `fast-done` at the end of that phase; each reader says
//! `caught-up` once it has read them all. On `paced` the writer sends the
//! rest one every 2 µs (latency) and says `done NANOS`; each reader reads
//! to the close and says `result ...`. Then the parent prints the table.

use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use kekbit_nostd::format::{HEADER_LEN, MARKER_LEN, MAX_CAPACITY, PAYLOAD_OFFSET};
use kekbit_nostd::{ChannelConfig, TickUnit};
use kekbit_std::{ShmReader, ShmWriter, WaitStrategy, WriterOptions, default_root, storage_path};

use crate::cli::{DemoArgs, DemoReaderArgs, DemoWriterArgs};
use crate::error::{CliError, CliResult, stdout_error};
use crate::inspect::{self, State};
use crate::units::{human_bytes, human_nanos};

/// The demo channel's id: "kbdemo" in ASCII. Its path under the root is
/// `0000_6b62/6465_6d6f.kekbit`; each run replaces the last run's channel.
pub const DEMO_CHANNEL_ID: u64 = 0x6b62_6465_6d6f;

/// Bytes at the start of every demo record: sequence number, timestamp.
const STAMP_LEN: usize = 16;

/// In the flat-out phase, every this many records (and the first and the
/// last) carry a timestamp; the others carry 0. Reading the clock costs
/// more than writing or reading a small record, so stamping each one would
/// measure the clock rather than the channel.
const SAMPLE_EVERY: u64 = 16;

/// The paced phase's records: a tenth of the stream, at most this many.
const MAX_PACED: u64 = 50_000;

/// One paced record every this many nanoseconds (500,000 a second): slow
/// enough for any reader to keep up, so the latency measured is the
/// channel's, not a queue's.
const PACE_NANOS: u64 = 2_000;

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
    check_space(&path, plan.capacity)?;
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Other(format!("cannot find the kekbit executable: {e}")))?;

    let mut out = io::stdout().lock();
    writeln!(
        out,
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
    )
    .and_then(|()| {
        writeln!(
            out,
            "channel: {} ({})",
            path.display(),
            human_bytes(plan.capacity)
        )
    })
    .and_then(|()| out.flush())
    .map_err(stdout_error)?;
    drop(out);

    let mut writer_cmd = Command::new(&exe);
    writer_cmd
        .arg("demo-writer")
        .arg(&plan.root)
        .arg("--records")
        .arg(plan.records.to_string())
        .arg("--record-size")
        .arg(plan.record_size.to_string())
        .arg("--channel-id")
        .arg(DEMO_CHANNEL_ID.to_string())
        .arg("--paced")
        .arg(plan.paced.to_string());
    if args.checksums {
        writer_cmd.arg("--checksums");
    }
    let mut writer = Proc::spawn("writer", writer_cmd, true)?;
    writer.expect_ready()?;

    let mut readers = Vec::new();
    for i in 1..=plan.readers {
        let mut cmd = Command::new(&exe);
        cmd.arg("demo-reader")
            .arg(&path)
            .arg("--paced-from")
            .arg(plan.fast().to_string());
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
    let streamed = stream(&mut writer, &mut readers, &bar);
    bar.finish_and_clear();
    let writer_done = match streamed {
        Ok(done) => done,
        Err(e) => {
            stop_all(&mut writer, &mut readers);
            return Err(e);
        }
    };
    if let Err(e) = writer.finish() {
        for reader in &mut readers {
            reader.kill();
        }
        return Err(e);
    }
    let mut results = Vec::new();
    let mut readers = readers.into_iter();
    while let Some(reader) = readers.next() {
        let result = reader.finish().and_then(|output| {
            ReaderResult::parse(&output).ok_or_else(|| {
                CliError::Other(format!("a demo reader printed no result: {output:?}"))
            })
        });
        match result {
            Ok(result) => results.push(result),
            Err(e) => {
                // Leave no reader behind.
                for mut rest in readers {
                    rest.kill();
                }
                return Err(e);
            }
        }
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
    /// Records of the paced phase, at the end of the stream.
    paced: u64,
    capacity: u64,
    root: PathBuf,
    busy_spin: bool,
}

impl Plan {
    /// Records of the flat-out phase, at the start of the stream.
    fn fast(&self) -> u64 {
        self.records - self.paced
    }

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
            paced: (args.records / 10).min(MAX_PACED),
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

/// Checks that the channel's folder has room for it. A file-backed mapping
/// of a full tmpfs kills its writer with `SIGBUS` on the first page that
/// cannot be allocated; `/dev/shm` in a container is often only 64 MiB.
fn check_space(path: &Path, capacity: u64) -> CliResult {
    // The writer makes the missing folders, with the modes kekbit-std
    // gives them; until then, the nearest one that exists tells the space.
    let Some(folder) = path.ancestors().skip(1).find(|dir| dir.is_dir()) else {
        return Ok(());
    };
    let needed = capacity + HEADER_LEN as u64;
    match available_bytes(folder) {
        // Some slack for the file system's own blocks.
        Some(free) if free < needed + (1 << 20) => Err(CliError::path(
            folder,
            format_args!(
                "the demo channel needs {} but only {} are free here; use fewer --records \
                 or another --dir",
                human_bytes(needed),
                human_bytes(free)
            ),
        )),
        _ => Ok(()),
    }
}

/// Bytes an unprivileged user may still allocate in the file system that
/// holds `folder`; `None` if the system cannot tell.
fn available_bytes(folder: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(folder.as_os_str().as_bytes()).ok()?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c_path` is a NUL-terminated path and `stats` points to
    // writable memory for one `statvfs`, which the call only writes.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), stats.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: the call succeeded, so it filled in `stats` (which was
    // zeroed anyway, a valid value for this plain C struct).
    let stats = unsafe { stats.assume_init() };
    #[allow(clippy::useless_conversion)] // the field types differ by target
    let (blocks, block_size) = (u64::from(stats.f_bavail), u64::from(stats.f_frsize));
    Some(blocks.saturating_mul(block_size))
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
        self.expect("ready")
    }

    /// Sends one command line to the process.
    fn tell(&mut self, command: &str) -> CliResult {
        let name = &self.name;
        let stdin = self
            .child
            .stdin
            .as_mut()
            .ok_or_else(|| CliError::Other(format!("demo {name} has no input pipe")))?;
        writeln!(stdin, "{command}")
            .and_then(|()| stdin.flush())
            .map_err(|e| CliError::Other(format!("cannot reach the demo {name}: {e}")))
    }

    /// Moves the bar with the writer's progress until it says `until`;
    /// returns the rest of that line.
    fn follow_progress(&mut self, bar: &ProgressBar, until: &str) -> CliResult<String> {
        loop {
            let Some(line) = self.next_line()? else {
                return Err(self.failure());
            };
            if let Some(n) = line.strip_prefix("progress ") {
                if let Ok(n) = n.parse() {
                    bar.set_position(n);
                }
            } else if let Some(rest) = line.strip_prefix(until) {
                return Ok(rest.trim().to_string());
            }
        }
    }

    /// Waits for the process to say `line`.
    fn expect(&mut self, line: &str) -> CliResult {
        match self.next_line()? {
            Some(got) if got == line => Ok(()),
            _ => Err(self.failure()),
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

/// Runs the stream: flat out, then (once every reader caught up) paced.
fn stream(writer: &mut Proc, readers: &mut [Proc], bar: &ProgressBar) -> CliResult<WriterDone> {
    writer.tell("go")?;
    writer.follow_progress(bar, "fast-done")?;
    for reader in readers.iter_mut() {
        reader.expect("caught-up")?;
    }
    writer.tell("paced")?;
    let nanos = writer.follow_progress(bar, "done")?;
    let fast_nanos = nanos
        .parse()
        .map_err(|_| CliError::Other(format!("the demo writer reported {nanos:?} as its time")))?;
    Ok(WriterDone { fast_nanos })
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

/// What the writer reports at the end: how long the flat-out phase took.
struct WriterDone {
    fast_nanos: u64,
}

/// What a reader reports at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ReaderResult {
    records: u64,
    payload_bytes: u64,
    /// From the writer's timestamp in the first record to this reader
    /// reading the last record of the flat-out phase; 0 without one.
    fast_nanos: u64,
    /// Latency samples: the paced phase's records.
    samples: u64,
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
            self.fast_nanos,
            self.samples,
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
            fast_nanos,
            samples,
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
            fast_nanos,
            samples,
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
    let payload = f64::from(plan.record_size);
    let fast = plan.fast();
    let throughput = |nanos: u64| -> (String, String) {
        if fast < 2 || nanos == 0 {
            return (String::from("-"), String::from("-"));
        }
        let per_sec = fast as f64 * 1e9 / nanos as f64;
        (
            human_rate(per_sec),
            format!("{:.2}", per_sec * payload / 1e9),
        )
    };
    let latency = |r: &ReaderResult, value: u64| {
        if r.samples == 0 {
            String::from("-")
        } else {
            human_nanos(value)
        }
    };
    writeln!(out)?;
    writeln!(
        out,
        "{:<10} {:>12} {:>8} {:>10} {:>10} {:>10} {:>10}",
        "", "records/s", "GB/s", "p50", "p99", "p99.9", "max"
    )?;
    let (rate, gbs) = throughput(writer.fast_nanos);
    writeln!(out, "{:<10} {rate:>12} {gbs:>8}", "writer")?;
    for (i, r) in readers.iter().enumerate() {
        let (rate, gbs) = throughput(r.fast_nanos);
        writeln!(
            out,
            "{:<10} {rate:>12} {gbs:>8} {:>10} {:>10} {:>10} {:>10}",
            format!("reader {}", i + 1),
            latency(r, r.p50),
            latency(r, r.p99),
            latency(r, r.p999),
            latency(r, r.max)
        )?;
    }
    writeln!(out)?;
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    writeln!(
        out,
        "Throughput: the first {fast} records, written flat out; each reader reads every record."
    )?;
    writeln!(
        out,
        "Latency: one-way, from the writer's CLOCK_MONOTONIC timestamp in each of the last {} \
         records (one every {}) to the reader reading it.",
        plan.paced,
        human_nanos(PACE_NANOS)
    )?;
    writeln!(
        out,
        "Readers {} while they wait; this machine has {cores} core{}.",
        if plan.busy_spin {
            "busy-spin"
        } else {
            "spin, then yield the CPU,"
        },
        if cores == 1 { "" } else { "s" }
    )?;
    if readers.iter().any(|r| r.samples > 0 && r.p99 >= 1_000_000) {
        let load = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().map(str::to_string))
            .map_or_else(String::new, |l| format!(" (load average now {l})"));
        writeln!(
            out,
            "Milliseconds of latency mean the scheduler took a core from a reader or the \
             writer: other work is running here{load}. With idle cores the channel itself typically \
             takes well under a microsecond."
        )?;
    }
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
    // Under the root, so the root and the channel's folder are checked
    // (and made private where missing) as for any channel in the id layout.
    let mut writer = WriterOptions::new(config).create_in(&args.root)?;

    let stdout = io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "ready")
        .and_then(|()| out.flush())
        .map_err(stdout_error)?;

    // The parent's commands, read on their own thread so this one can
    // heartbeat while it waits: the readers must not give up on us.
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |command: &str, writer: &mut ShmWriter| -> CliResult {
        loop {
            match rx.recv_timeout(Duration::from_millis(WRITER_TIMEOUT_MS / 4)) {
                Ok(line) if line.trim() == command => return Ok(()),
                Ok(_) | Err(RecvTimeoutError::Disconnected) => {
                    return Err(CliError::Other(String::from("the demo was called off")));
                }
                Err(RecvTimeoutError::Timeout) => writer.heartbeat(),
            }
        }
    };
    wait_for("go", &mut writer)?;

    let mut record = vec![0u8; STAMP_LEN];
    record.extend(FILLER.iter().copied().cycle().take(record_size - STAMP_LEN));
    let fast = args.records.saturating_sub(args.paced);
    let step = (args.records / 100).max(1);
    let mut until_progress = step;
    let mut progress = |seq: u64, out: &mut io::StdoutLock<'_>| -> CliResult {
        until_progress -= 1;
        if until_progress == 0 {
            until_progress = step;
            writeln!(out, "progress {}", seq + 1)
                .and_then(|()| out.flush())
                .map_err(stdout_error)?;
        }
        Ok(())
    };

    // Flat out: stamps on a sample of records, for throughput.
    let start = monotonic_nanos();
    for seq in 0..fast {
        let stamp = if seq % SAMPLE_EVERY == 0 || seq + 1 == fast {
            monotonic_nanos()
        } else {
            0
        };
        record[..8].copy_from_slice(&seq.to_le_bytes());
        record[8..STAMP_LEN].copy_from_slice(&stamp.to_le_bytes());
        writer.write(&record)?;
        progress(seq, &mut out)?;
    }
    let fast_nanos = if fast == 0 {
        0
    } else {
        monotonic_nanos().saturating_sub(start)
    };
    // Readers trail a writer going flat out; wait until every one has
    // caught up, so the paced records measure the channel, not a queue.
    writeln!(out, "fast-done")
        .and_then(|()| out.flush())
        .map_err(stdout_error)?;
    writer.heartbeat();
    wait_for("paced", &mut writer)?;

    // Paced: every record stamped, for latency.
    let mut due = monotonic_nanos();
    for seq in fast..args.records {
        let mut now = monotonic_nanos();
        while now < due {
            std::hint::spin_loop();
            now = monotonic_nanos();
        }
        due = now + PACE_NANOS;
        record[..8].copy_from_slice(&seq.to_le_bytes());
        record[8..STAMP_LEN].copy_from_slice(&now.max(1).to_le_bytes());
        writer.write(&record)?;
        progress(seq, &mut out)?;
    }
    writer.close()?;
    writeln!(out, "done {fast_nanos}")
        .and_then(|()| out.flush())
        .map_err(stdout_error)
}

/// Runs `kekbit demo-reader`: open, say `ready`, read to the end, report.
pub fn run_reader(args: &DemoReaderArgs) -> CliResult {
    let channel = inspect::open(&args.path, false)?;
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
    let fast = args.paced_from;
    let mut records = 0u64;
    let mut payload_bytes = 0u64;
    let mut first_sent = 0u64;
    let mut fast_nanos = 0u64;
    for record in reader.blocking() {
        let record = record?;
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
        if sent != 0 {
            let now = monotonic_nanos();
            if seq >= fast {
                histogram.saturating_record(now.saturating_sub(sent).max(1));
            } else if seq == 0 {
                first_sent = sent;
            }
            if seq + 1 == fast {
                fast_nanos = now.saturating_sub(first_sent);
                writeln!(out, "caught-up")
                    .and_then(|()| out.flush())
                    .map_err(stdout_error)?;
            }
        }
        records += 1;
        payload_bytes += record.len() as u64;
    }
    let result = ReaderResult {
        records,
        payload_bytes,
        fast_nanos,
        samples: histogram.len(),
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
            fast_nanos: 5,
            samples: 99,
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
    #[cfg_attr(miri, ignore)] // calls into the OS
    fn free_space_is_known_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        assert!(available_bytes(dir.path()).is_some_and(|n| n > 0));
        assert_eq!(available_bytes(Path::new("/nonexistent/folder")), None);
        let path = dir.path().join("x/y.kekbit");
        check_space(&path, 4096).unwrap();
        assert!(
            !dir.path().join("x").exists(),
            "the writer makes the folders"
        );
        let huge = check_space(&path, u64::MAX / 2).unwrap_err();
        assert!(huge.to_string().contains("use fewer --records"), "{huge}");
    }

    #[test]
    #[cfg_attr(miri, ignore)] // calls into the OS
    fn the_monotonic_clock_moves_forward() {
        let a = monotonic_nanos();
        let b = monotonic_nanos();
        assert!(a > 0 && b >= a);
    }
}
