//! The command line: every command and option, as clap parses them.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use kekbit_std::Durability;

use crate::output::RecordFormat;
use crate::units::{parse_duration, parse_size};

/// Ultralight persistent data channels: look inside them, write them, and
/// see how fast they are on this machine.
#[derive(Debug, Parser)]
#[command(name = "kekbit", version, about, propagate_version = true)]
#[command(
    after_help = "Start with `kekbit demo`: one writer process streams to reader \
                        processes over a /dev/shm channel and reports throughput and latency."
)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a channel at PATH (or append to the journal in --journal DIR)
    /// and write standard input into it, then close it.
    Write(WriteArgs),
    /// Print the records of a channel or a journal, one per line.
    Cat(CatArgs),
    /// Show a channel's header, state, record count, space and heartbeat, or
    /// a journal's segments, positions and durable position.
    Info(InfoArgs),
    /// Check every record and checksum of a channel, or of every segment of
    /// a journal and how they chain.
    Verify(VerifyArgs),
    /// Look after a kekbit-kv store's folder: info, get, dump, prune, clean.
    #[command(subcommand)]
    Kv(KvCommand),
    /// Stream records from a writer process to reader processes over a fresh
    /// channel and report throughput and one-way latency.
    Demo(DemoArgs),
    /// Replicate a journal to other machines through a NATS JetStream stream.
    #[cfg(feature = "relay")]
    #[command(subcommand)]
    Relay(RelayCommand),
    /// The demo's writer process (started by `kekbit demo`).
    #[command(hide = true)]
    DemoWriter(DemoWriterArgs),
    /// The demo's reader processes (started by `kekbit demo`).
    #[command(hide = true)]
    DemoReader(DemoReaderArgs),
}

/// How `write` cuts standard input into records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Framing {
    /// One record per line; the newline is not stored (a final line without
    /// one is a record too).
    Lines,
    /// Each record is a little-endian u32 length, then that many bytes.
    Len32,
}

/// `kekbit write`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["path", "journal"])))]
pub struct WriteArgs {
    /// Where to create the channel; it must not exist yet.
    pub path: Option<PathBuf>,
    /// Append to the journal in folder DIR instead, creating it if missing
    /// and recovering it if its last writer died (one writer per journal).
    #[arg(long, value_name = "DIR", conflicts_with = "path")]
    pub journal: Option<PathBuf>,
    /// Size of the channel's record area: plain bytes or with a unit (64KiB,
    /// 1MiB, 1GiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "1MiB",
          conflicts_with = "journal")]
    pub capacity: u64,
    /// Journals: the record area of each new segment (a multiple of 8); the
    /// writer rolls to a new segment when a record does not fit [default:
    /// the journal's last segment's, or 64MiB for a new journal].
    #[arg(long, value_name = "SIZE", value_parser = parse_size, conflicts_with = "path")]
    pub segment_size: Option<u64>,
    /// The longest record allowed [default: the largest the capacity, or a
    /// journal's segment size, holds].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_record: Option<u64>,
    /// Silence after which readers call the writer abandoned (500ms, 30s, 2m;
    /// 0 turns detection off; journals count whole milliseconds, rounding
    /// up). The writer heartbeats while it waits for input.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "10s")]
    pub timeout: Duration,
    /// Give every record a CRC32C checksum (journals always do, unless
    /// --no-checksums).
    #[arg(long, overrides_with = "no_checksums")]
    pub checksums: bool,
    /// No checksums: for a journal, whose records have them by default (a
    /// journal's recovery relies on them to find records torn by power
    /// loss: turn them off only in /dev/shm).
    #[arg(long, overrides_with = "checksums")]
    pub no_checksums: bool,
    /// When to flush records to storage: none, close, record (after each),
    /// records:N (every N records) or bytes:SIZE (every SIZE bytes); for a
    /// journal also interval:DUR. Journals: record and records:N sync in
    /// line; bytes:SIZE and interval:DUR start a background flusher; close
    /// always syncs.
    #[arg(long, value_name = "POLICY", value_parser = parse_sync_policy, default_value = "none")]
    pub sync: SyncPolicy,
    /// How standard input is cut into records.
    #[arg(long, value_enum, default_value_t = Framing::Lines)]
    pub framing: Framing,
    /// Journals: also roll to a new segment once the current one is this old
    /// (checked at each record).
    #[arg(long, value_name = "DUR", value_parser = parse_duration, conflicts_with = "path")]
    pub roll_after: Option<Duration>,
    /// Journals: keep at most this many segments (the one being written
    /// included); older sealed segments are deleted.
    #[arg(long, value_name = "N", conflicts_with = "path",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub retain_segments: Option<u64>,
    /// Journals: keep at most this many bytes of segment files; the oldest
    /// sealed segments are deleted first.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, conflicts_with = "path")]
    pub retain_bytes: Option<u64>,
    /// Journals: delete sealed segments older than this.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, conflicts_with = "path")]
    pub retain_age: Option<Duration>,
    /// The channel id recorded in the header.
    #[arg(
        long,
        value_name = "ID",
        default_value_t = 0,
        conflicts_with = "journal"
    )]
    pub channel_id: u64,
    /// The writer id recorded in the header.
    #[arg(
        long,
        value_name = "ID",
        default_value_t = 0,
        conflicts_with = "journal"
    )]
    pub writer_id: u64,
    /// Create the missing folders above PATH (or above a journal's folder),
    /// as `mkdir -p` does; without it, a missing folder is an error.
    #[arg(long, short)]
    pub parents: bool,
}

/// When `kekbit write` makes records durable: a channel's [`Durability`],
/// or a journal's background flusher on a timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// A channel's policy; journals map each onto `sync()` or their
    /// flusher (see `--sync`).
    Durability(Durability),
    /// Journals only: a background flusher syncs every interval.
    Interval(Duration),
}

/// `kekbit cat`.
#[derive(Debug, Args)]
pub struct CatArgs {
    /// The channel file, or journal folder, to read.
    pub path: PathBuf,
    /// Keep waiting for new records until the channel is closed, full or
    /// abandoned by its writer (silent past the header's timeout; with a
    /// timeout of 0 a dead writer cannot be told, and cat waits until
    /// interrupted). A journal is followed across its segments until it is
    /// closed.
    #[arg(long, short)]
    pub follow: bool,
    /// Start at this position: an offset in a channel's record area, or a
    /// journal position (a record boundary, as `--format json` shows them).
    #[arg(long, value_name = "POSITION")]
    pub from: Option<u64>,
    /// How to print each record.
    #[arg(long, value_enum, default_value_t = RecordFormat::Text)]
    pub format: RecordFormat,
    /// Also open a channel file that other users may write (owned by
    /// another user, or writable by group or others). Without it such a
    /// file is refused: a process that changes the file while kekbit reads
    /// it could crash kekbit or make it print what was never written. Pass
    /// it only if you trust every user who can write the file to leave it
    /// to its kekbit writer.
    #[arg(long)]
    pub shared: bool,
}

/// `kekbit info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The channel file, or journal folder, to describe.
    pub path: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also open a channel file that other users may write (owned by
    /// another user, or writable by group or others). Without it such a
    /// file is refused: a process that changes the file while kekbit reads
    /// it could crash kekbit or make it print what was never written. Pass
    /// it only if you trust every user who can write the file to leave it
    /// to its kekbit writer.
    #[arg(long)]
    pub shared: bool,
}

/// `kekbit verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The channel file, or journal folder, to check.
    pub path: PathBuf,
    /// Also open a channel file that other users may write (owned by
    /// another user, or writable by group or others). Without it such a
    /// file is refused: a process that changes the file while kekbit reads
    /// it could crash kekbit or make it print what was never written. Pass
    /// it only if you trust every user who can write the file to leave it
    /// to its kekbit writer.
    #[arg(long)]
    pub shared: bool,
}

/// `kekbit demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Records to stream.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 2_000_000)]
    pub records: u64,
    /// Reader processes [default: one per spare core, at least 1, at most 4].
    #[arg(long, short = 'r', value_name = "R")]
    pub readers: Option<u32>,
    /// Payload bytes per record, at least 16 (a sequence number and a timestamp).
    #[arg(long, value_name = "BYTES", value_parser = parse_size, default_value = "64")]
    pub record_size: u64,
    /// Folder to create the channel in [default: /dev/shm/kekbit where /dev/shm
    /// exists, else kekbit in the temporary folder].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Give every record a CRC32C checksum (readers check each one).
    #[arg(long)]
    pub checksums: bool,
}

/// `kekbit relay`.
#[cfg(feature = "relay")]
#[derive(Debug, Subcommand)]
pub enum RelayCommand {
    /// Tail a journal and publish every record to a JetStream stream,
    /// exactly once, resuming where the stream left off.
    Push(RelayPushArgs),
    /// Feed a stream into a local replica journal, every record at the
    /// position it has in the source.
    Pull(RelayPullArgs),
}

/// How the push waits for new records.
#[cfg(feature = "relay")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Idle {
    /// Spin on a core: the lowest latency.
    Spin,
    /// Yield the core between polls.
    Yield,
    /// Spin, yield, then sleep up to 1 ms.
    Backoff,
}

/// Storage of a stream the push creates.
#[cfg(feature = "relay")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Storage {
    /// On the server's disk.
    File,
    /// In the server's memory (lost when it stops).
    Memory,
}

/// `kekbit relay push`.
#[cfg(feature = "relay")]
#[derive(Debug, Args)]
pub struct RelayPushArgs {
    /// The journal folder to publish.
    pub journal: PathBuf,
    /// The NATS server, nats://HOST:PORT.
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// The JetStream stream (created if missing).
    #[arg(long, value_name = "NAME")]
    pub stream: String,
    /// The subject to publish on [default: kekbit.STREAM, after --stream].
    #[arg(long, value_name = "S")]
    pub subject: Option<String>,
    /// Start at this journal position when the stream is empty [default:
    /// the journal's first record]. A stream that holds records always
    /// resumes after its last one.
    #[arg(long, value_name = "POSITION")]
    pub from: Option<u64>,
    /// The largest message, within the server's max_payload.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "256KiB")]
    pub max_message: u64,
    /// Messages published and not yet acknowledged, at most.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub in_flight: usize,
    /// Stop once the journal is closed and the stream says so.
    #[arg(long)]
    pub until_closed: bool,
    /// How to wait for new records.
    #[arg(long, value_enum, default_value_t = Idle::Backoff)]
    pub idle: Idle,
    /// A new stream's duplicate window.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "2m")]
    pub duplicate_window: Duration,
    /// A new stream's storage.
    #[arg(long, value_enum, default_value_t = Storage::File)]
    pub storage: Storage,
    /// A new stream's copies in a cluster.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub replicas: usize,
    /// Print the statistics as one JSON object on standard output at the end.
    #[arg(long)]
    pub json: bool,
}

/// `kekbit relay pull`.
#[cfg(feature = "relay")]
#[derive(Debug, Args)]
pub struct RelayPullArgs {
    /// The NATS server, nats://HOST:PORT.
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// The JetStream stream to read.
    #[arg(long, value_name = "NAME")]
    pub stream: String,
    /// The replica journal folder (created on the first message if missing).
    pub journal: PathBuf,
    /// The durable consumer's name [default: kekbit-HOST-HASH, from this
    /// host's name and a hash of the replica's path].
    #[arg(long, value_name = "NAME")]
    pub consumer: Option<String>,
    /// Stop once the source's close is applied (the replica is then closed too).
    #[arg(long)]
    pub until_closed: bool,
    /// Print the statistics as one JSON object on standard output at the end.
    #[arg(long)]
    pub json: bool,
}

/// `kekbit demo-writer` (hidden).
#[derive(Debug, Args)]
pub struct DemoWriterArgs {
    /// The root to create the channel in, at its id's path.
    pub root: PathBuf,
    /// Records to write.
    #[arg(long)]
    pub records: u64,
    /// Payload bytes per record.
    #[arg(long)]
    pub record_size: u32,
    /// Channel id.
    #[arg(long)]
    pub channel_id: u64,
    /// Give every record a checksum.
    #[arg(long)]
    pub checksums: bool,
    /// Records at the end of the stream to send paced, for latency.
    #[arg(long, default_value_t = 0)]
    pub paced: u64,
}

/// `kekbit demo-reader` (hidden).
#[derive(Debug, Args)]
pub struct DemoReaderArgs {
    /// The channel to read.
    pub path: PathBuf,
    /// Spin on the CPU while waiting for records, never yielding it.
    #[arg(long)]
    pub busy_spin: bool,
    /// Sequence number of the first paced record (the latency phase).
    #[arg(long, default_value_t = 0)]
    pub paced_from: u64,
}

/// Folds clap's report of a usage error into the one line the command
/// prints after `kekbit: error: `: the message, then any tip and the
/// usage line in parentheses.
///
/// # Example
///
/// ```
/// use kekbit_cli::cli::usage_error_line;
/// let report = "error: the following required arguments were not provided:\n  <PATH>\n\n\
///               Usage: kekbit write <PATH>\n\nFor more information, try '--help'.\n";
/// assert_eq!(
///     usage_error_line(report),
///     "the following required arguments were not provided: <PATH> \
///      (usage: kekbit write <PATH>)"
/// );
/// ```
pub fn usage_error_line(report: &str) -> String {
    let mut parts = Vec::new();
    let mut usage = None;
    for line in report.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Usage:") {
            usage = Some(rest.trim());
        } else if line.starts_with("tip:") {
            parts.push(format!("({line})"));
        } else if !line.is_empty() && !line.starts_with("For more information") {
            parts.push(
                line.strip_prefix("error:")
                    .map_or(line, str::trim)
                    .to_string(),
            );
        }
    }
    let mut text = parts.join(" ");
    if let Some(usage) = usage {
        text.push_str(&format!(" (usage: {usage})"));
    }
    text
}

/// Parses a `--sync` policy.
///
/// # Example
///
/// ```
/// use kekbit_cli::cli::parse_sync;
/// use kekbit_std::Durability;
/// assert_eq!(parse_sync("records:64"), Ok(Durability::EveryRecords(64)));
/// assert_eq!(parse_sync("bytes:1MiB"), Ok(Durability::EveryBytes(1 << 20)));
/// assert!(parse_sync("sometimes").is_err());
/// ```
pub fn parse_sync(text: &str) -> Result<Durability, String> {
    let help = "expected none, close, record, records:N or bytes:SIZE";
    match text.trim() {
        "none" => Ok(Durability::None),
        "close" => Ok(Durability::OnClose),
        "record" => Ok(Durability::EveryRecord),
        other => {
            if let Some(n) = other.strip_prefix("records:") {
                match n.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Ok(Durability::EveryRecords(n)),
                    _ => Err(format!(
                        "invalid sync policy '{text}': N must be a whole number above 0"
                    )),
                }
            } else if let Some(size) = other.strip_prefix("bytes:") {
                match parse_size(size) {
                    Ok(n) if n > 0 => Ok(Durability::EveryBytes(n)),
                    Ok(_) => Err(format!(
                        "invalid sync policy '{text}': SIZE must be above 0"
                    )),
                    Err(e) => Err(format!("invalid sync policy '{text}': {e}")),
                }
            } else {
                Err(format!("invalid sync policy '{text}': {help}"))
            }
        }
    }
}

/// Parses a `--sync` policy: a channel's [`Durability`] (see
/// [`parse_sync`]), or `interval:DUR`, a journal's background flusher.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use kekbit_cli::cli::{SyncPolicy, parse_sync_policy};
/// use kekbit_std::Durability;
/// assert_eq!(parse_sync_policy("record"), Ok(SyncPolicy::Durability(Durability::EveryRecord)));
/// assert_eq!(parse_sync_policy("interval:100ms"), Ok(SyncPolicy::Interval(Duration::from_millis(100))));
/// assert!(parse_sync_policy("interval:0s").is_err());
/// ```
pub fn parse_sync_policy(text: &str) -> Result<SyncPolicy, String> {
    match text.trim().strip_prefix("interval:") {
        Some(interval) => match parse_duration(interval) {
            Ok(d) if !d.is_zero() => Ok(SyncPolicy::Interval(d)),
            Ok(_) => Err(format!("invalid sync policy '{text}': DUR must be above 0")),
            Err(e) => Err(format!("invalid sync policy '{text}': {e}")),
        },
        None => parse_sync(text)
            .map(SyncPolicy::Durability)
            .map_err(|e| e.replace("or bytes:SIZE", "bytes:SIZE or interval:DUR")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sync_policies() {
        assert_eq!(parse_sync("none"), Ok(Durability::None));
        assert_eq!(parse_sync("close"), Ok(Durability::OnClose));
        assert_eq!(parse_sync("record"), Ok(Durability::EveryRecord));
        assert_eq!(parse_sync("records:1"), Ok(Durability::EveryRecords(1)));
        assert_eq!(parse_sync("bytes:4096"), Ok(Durability::EveryBytes(4096)));
        for junk in [
            "",
            "always",
            "records:",
            "records:0",
            "records:x",
            "bytes:0",
            "bytes:lots",
        ] {
            assert!(parse_sync(junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn parses_every_command() {
        let cli = Cli::try_parse_from([
            "kekbit",
            "write",
            "c.kekbit",
            "--capacity",
            "64KiB",
            "--max-record",
            "1KiB",
            "--timeout",
            "500ms",
            "--checksums",
            "--sync",
            "records:8",
            "--framing",
            "len32",
        ])
        .unwrap();
        let Command::Write(w) = cli.command else {
            panic!("not write")
        };
        assert_eq!(w.capacity, 64 << 10);
        assert_eq!(w.max_record, Some(1024));
        assert_eq!(w.timeout, Duration::from_millis(500));
        assert!(w.checksums);
        assert_eq!(w.sync, SyncPolicy::Durability(Durability::EveryRecords(8)));
        assert_eq!(w.path.as_deref(), Some(std::path::Path::new("c.kekbit")));
        assert!(w.journal.is_none() && w.checksums && !w.no_checksums);
        assert_eq!(w.framing, Framing::Len32);

        let cli = Cli::try_parse_from([
            "kekbit", "cat", "c", "-f", "--from", "16", "--format", "json",
        ])
        .unwrap();
        let Command::Cat(c) = cli.command else {
            panic!("not cat")
        };
        assert!(c.follow);
        assert_eq!(c.from, Some(16));
        assert_eq!(c.format, RecordFormat::Json);

        let cli = Cli::try_parse_from(["kekbit", "write", "a/b/c", "--parents"]).unwrap();
        let Command::Write(w) = cli.command else {
            panic!("not write")
        };
        assert!(w.parents);
        for (args, shared) in [
            (&["kekbit", "cat", "c"][..], false),
            (&["kekbit", "cat", "--shared", "c"], true),
            (&["kekbit", "info", "c", "--shared"], true),
            (&["kekbit", "verify", "--shared", "c"], true),
        ] {
            let shared_flag = match Cli::try_parse_from(args).unwrap().command {
                Command::Cat(c) => c.shared,
                Command::Info(i) => i.shared,
                Command::Verify(v) => v.shared,
                _ => panic!("{args:?}"),
            };
            assert_eq!(shared_flag, shared, "{args:?}");
        }

        for args in [
            &["kekbit", "info", "c", "--json"][..],
            &["kekbit", "verify", "c"],
            &[
                "kekbit",
                "demo",
                "--records",
                "10",
                "--readers",
                "1",
                "--record-size",
                "1KiB",
                "--dir",
                "/tmp",
            ],
        ] {
            assert!(Cli::try_parse_from(args).is_ok(), "{args:?}");
        }
    }

    #[test]
    fn parses_journal_writes() {
        let cli = Cli::try_parse_from([
            "kekbit",
            "write",
            "--journal",
            "j",
            "--segment-size",
            "4KiB",
            "--max-record",
            "100",
            "--timeout",
            "1500us",
            "--no-checksums",
            "--sync",
            "interval:250ms",
            "--framing",
            "len32",
            "--roll-after",
            "1h",
            "--retain-segments",
            "3",
            "--retain-bytes",
            "1MiB",
            "--retain-age",
            "2m",
            "--parents",
        ])
        .unwrap();
        let Command::Write(w) = cli.command else {
            panic!("not write")
        };
        assert_eq!(w.journal.as_deref(), Some(std::path::Path::new("j")));
        assert!(w.path.is_none());
        assert_eq!(w.segment_size, Some(4096));
        assert_eq!(w.max_record, Some(100));
        assert_eq!(w.timeout, Duration::from_micros(1500));
        assert!(w.no_checksums && !w.checksums);
        assert_eq!(w.sync, SyncPolicy::Interval(Duration::from_millis(250)));
        assert_eq!(w.roll_after, Some(Duration::from_secs(3600)));
        assert_eq!(w.retain_segments, Some(3));
        assert_eq!(w.retain_bytes, Some(1 << 20));
        assert_eq!(w.retain_age, Some(Duration::from_secs(120)));
        assert!(w.parents);

        // Defaults: the segment size is the journal's (decided when it is
        // opened); the last of --checksums and --no-checksums wins.
        let cli = Cli::try_parse_from([
            "kekbit",
            "write",
            "--journal",
            "j",
            "--no-checksums",
            "--checksums",
        ])
        .unwrap();
        let Command::Write(w) = cli.command else {
            panic!("not write")
        };
        assert_eq!(w.segment_size, None);
        assert!(w.checksums && !w.no_checksums);
        assert_eq!(w.sync, SyncPolicy::Durability(Durability::None));

        let cli = Cli::try_parse_from(["kekbit", "cat", "j", "--from", "8589934592"]).unwrap();
        let Command::Cat(c) = cli.command else {
            panic!("not cat")
        };
        assert_eq!(c.from, Some(1 << 33));
    }

    #[test]
    fn sync_policies_for_journals() {
        assert_eq!(
            parse_sync_policy("interval:1s"),
            Ok(SyncPolicy::Interval(Duration::from_secs(1)))
        );
        assert_eq!(
            parse_sync_policy("bytes:1MiB"),
            Ok(SyncPolicy::Durability(Durability::EveryBytes(1 << 20)))
        );
        let e = parse_sync_policy("sometimes").unwrap_err();
        assert!(e.contains("interval:DUR"), "{e}");
        for junk in ["interval:", "interval:0", "interval:0s", "interval:x"] {
            assert!(parse_sync_policy(junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn usage_errors_fold_into_one_line() {
        for args in [
            &["kekbit", "write"][..],
            &["kekbit", "cat", "c", "--format", "xml"],
            &["kekbit", "cat", "--frm", "3", "c"],
        ] {
            let err = Cli::try_parse_from(args).unwrap_err();
            let line = usage_error_line(&err.render().to_string());
            assert!(!line.contains('\n') && !line.starts_with("error"), "{line}");
            assert!(line.len() > 20, "{line}");
        }
    }

    #[test]
    fn usage_errors_are_clap_errors() {
        for args in [
            &["kekbit"][..],
            &["kekbit", "write"],
            &["kekbit", "write", "c", "--capacity", "lots"],
            &["kekbit", "write", "c", "--timeout", "30"],
            // A channel's options and a journal's do not mix.
            &["kekbit", "write", "--journal", "j", "--capacity", "1MiB"],
            &["kekbit", "write", "--journal", "j", "--channel-id", "3"],
            &["kekbit", "write", "--journal", "j", "--writer-id", "3"],
            &["kekbit", "write", "c", "--segment-size", "4KiB"],
            &["kekbit", "write", "c", "--retain-segments", "2"],
            &["kekbit", "write", "c", "--roll-after", "1s"],
            &["kekbit", "write", "c", "--journal", "j"],
            &[
                "kekbit",
                "write",
                "--journal",
                "j",
                "--retain-segments",
                "0",
            ],
            &[
                "kekbit",
                "write",
                "--journal",
                "j",
                "--sync",
                "interval:0ms",
            ],
            &[
                "kekbit",
                "write",
                "--journal",
                "j",
                "--sync",
                "interval:soon",
            ],
            &["kekbit", "cat", "c", "--format", "xml"],
            &["kekbit", "cat", "c", "--from", "-8"],
            &["kekbit", "frobnicate"],
        ] {
            let err = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }
}

/// `kekbit kv`.
#[derive(Debug, Subcommand)]
pub enum KvCommand {
    /// Keep the newest complete snapshot and N older ones; delete the rest.
    /// Refused while a store has the folder open.
    Prune {
        /// The store's folder.
        dir: PathBuf,
        /// How many snapshots to keep besides the newest.
        #[arg(long, value_name = "N")]
        keep: usize,
    },
    /// Delete what failed or interrupted snapshots left (temporaries, and
    /// snapshot files the manifest does not list). Refused while a store
    /// has the folder open.
    Clean {
        /// The store's folder.
        dir: PathBuf,
    },
    /// Show the manifest, the snapshot files, the log and whether a store
    /// has the folder open.
    Info {
        /// The store's folder.
        dir: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print one key's value (raw bytes) as the store's files hold it.
    Get {
        /// The store's folder.
        dir: PathBuf,
        /// The key: its UTF-8 bytes, or with --hex, hex digits.
        key: String,
        /// KEY is hex (`00ff10`).
        #[arg(long)]
        hex: bool,
    },
    /// Print every entry, one per line: key, a tab, value (text where the
    /// bytes are UTF-8 without control characters, else `0x` and hex).
    Dump {
        /// The store's folder.
        dir: PathBuf,
    },
}
