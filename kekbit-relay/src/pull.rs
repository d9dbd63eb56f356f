//! `Pull`: feeds a durable pull consumer into a local journal, every record
//! at the position it has in the source.
//!
//! The replica journal is the only record of progress: on every start (and
//! after every lost connection) the puller finds, by binary search, the
//! first stream message that ends after the replica's end, and (re)creates
//! its durable consumer there. Records the replica already holds are
//! skipped, so a restart at any point neither loses nor duplicates one.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;

use crate::RelayError;
use crate::events::{Event, EventSink, stderr_events};
use crate::journal::Replica;
use crate::message::{Frame, Message};
use crate::progress::{Counters, Progress};
use crate::stream::{self as js_stream, Attempt, retrying};

/// What a pull does, and how.
#[derive(Clone)]
pub struct PullOptions {
    server: String,
    stream: String,
    journal: PathBuf,
    consumer: Option<String>,
    until_closed: bool,
    batch: usize,
    connect_timeout: Duration,
    max_backoff: Duration,
    events: EventSink,
}

impl std::fmt::Debug for PullOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullOptions")
            .field("server", &self.server)
            .field("stream", &self.stream)
            .field("journal", &self.journal)
            .field("consumer", &self.consumer_name())
            .field("until_closed", &self.until_closed)
            .finish_non_exhaustive()
    }
}

impl PullOptions {
    /// Pulls stream `stream` on `server` into the replica journal at
    /// `journal` (created on the first message if missing). The durable
    /// consumer is named after this host and the replica's path unless
    /// [`PullOptions::consumer`] names it.
    ///
    /// ```
    /// let options = kekbit_relay::PullOptions::new("nats://127.0.0.1:4222", "ORDERS", "/srv/orders-copy")
    ///     .consumer("standby-1")
    ///     .until_closed(true);
    /// assert_eq!(options.consumer_name(), "standby-1");
    /// ```
    pub fn new(
        server: impl Into<String>,
        stream: impl Into<String>,
        journal: impl AsRef<Path>,
    ) -> Self {
        Self {
            server: server.into(),
            stream: stream.into(),
            journal: journal.as_ref().to_path_buf(),
            consumer: None,
            until_closed: false,
            batch: 64,
            connect_timeout: Duration::from_secs(5),
            max_backoff: Duration::from_secs(5),
            events: stderr_events(),
        }
    }

    /// Names the durable consumer.
    #[must_use]
    pub fn consumer(mut self, name: impl Into<String>) -> Self {
        self.consumer = Some(name.into());
        self
    }

    /// The durable consumer's name: the one given, else
    /// `kekbit-<host>-<hash of the replica's path>`, so that two replicas
    /// never share a consumer.
    pub fn consumer_name(&self) -> String {
        if let Some(name) = &self.consumer {
            return name.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        let host: String = host
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let path = std::path::absolute(&self.journal).unwrap_or_else(|_| self.journal.clone());
        // FNV-1a: stable across runs and Rust versions.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in path.as_os_str().as_encoded_bytes() {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
        format!("kekbit-{host}-{hash:016x}")
    }

    /// Stop once the source journal's end marker is applied (the replica
    /// is then closed as the source was); otherwise keep following.
    #[must_use]
    pub fn until_closed(mut self, on: bool) -> Self {
        self.until_closed = on;
        self
    }

    /// Messages asked for in one pull request (at least 1).
    #[must_use]
    pub fn batch(mut self, messages: usize) -> Self {
        self.batch = messages.max(1);
        self
    }

    /// How long to wait for the server at start-up.
    #[must_use]
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// The longest wait between retries.
    #[must_use]
    pub fn max_backoff(mut self, t: Duration) -> Self {
        self.max_backoff = t;
        self
    }

    /// Where retries and reconnections are reported (default: stderr).
    #[must_use]
    pub fn events(mut self, sink: EventSink) -> Self {
        self.events = sink;
        self
    }
}

/// What a pull did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PullStats {
    /// Records appended to the replica during this run.
    pub records: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// Messages applied.
    pub messages: u64,
    /// Records delivered again that the replica already held (skipped).
    pub skipped_records: u64,
    /// The replica's end position when the run started.
    pub start_position: u64,
    /// The replica's end position now.
    pub end_position: u64,
    /// Times the consumer was restarted (after a lost connection).
    pub resyncs: u64,
    /// Whether the source's end marker was applied (the replica is closed).
    pub closed: bool,
    /// How long the run took.
    pub elapsed: Duration,
}

/// A pull, ready to run.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = nats_fixture::NatsServer::start();
/// # let url = server.url();
/// # let dir = tempfile::tempdir()?;
/// # let journal = dir.path().join("orders");
/// # let mut writer = kekbit_std::journal::JournalOptions::new()
/// #     .segment_bytes(1 << 20).max_record_len(1024).open_writer(&journal)?;
/// # writer.append(b"order 1")?;
/// # writer.close()?;
/// use kekbit_relay::{Pull, PullOptions, Push, PushOptions};
/// let runtime = tokio::runtime::Runtime::new()?;
/// runtime.block_on(Push::new(PushOptions::new(&url, "ORDERS", &journal).until_closed(true)).run())?;
/// let copy = dir.path().join("orders-copy");
/// let pull = Pull::new(PullOptions::new(&url, "ORDERS", &copy).until_closed(true));
/// let stats = runtime.block_on(pull.run())?;
/// assert_eq!((stats.records, stats.closed), (1, true));
/// # Ok(()) }
/// ```
pub struct Pull {
    options: PullOptions,
    counters: Arc<Counters>,
}

/// What applying a message did.
enum Applied {
    Records,
    Closed,
}

impl Pull {
    /// A pull with `options`.
    pub fn new(options: PullOptions) -> Self {
        Self {
            options,
            counters: Arc::new(Counters::default()),
        }
    }

    /// A handle on the live counters, for a progress line.
    pub fn progress(&self) -> Progress {
        Progress::new(Arc::clone(&self.counters))
    }

    /// Runs until the source's end marker is applied (with
    /// [`PullOptions::until_closed`]) or an unrecoverable error.
    pub async fn run(self) -> Result<PullStats, RelayError> {
        self.run_until(std::future::pending()).await
    }

    /// Runs until `stop` completes; the message being applied is finished
    /// first. The replica is synced and left open, not sealed
    /// ([`JournalWriter::leave_open`](kekbit_std::journal::JournalWriter::leave_open)),
    /// so that the next pull resumes its last segment and its segment
    /// boundaries keep following the source's.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> Result<PullStats, RelayError> {
        let started = Instant::now();
        let o = &self.options;
        let events = o.events.clone();
        let client = js_stream::connect(&o.server, o.connect_timeout, &events).await?;
        let js = jetstream::new(client);
        retrying("find the stream", &events, o.max_backoff, || async {
            match js_stream::get_stream(&js, &o.stream).await? {
                Some(_) => Ok(()),
                None => Err(Attempt::Transient(format!(
                    "stream {} does not exist yet",
                    o.stream
                ))),
            }
        })
        .await?;
        let mut state = State {
            stream: o.stream.clone(),
            dir: o.journal.clone(),
            replica: Replica::open_existing(&o.journal)?,
            counters: &self.counters,
            stats: PullStats::default(),
            pending: 0,
        };
        state.stats.start_position = state.replica.as_ref().map_or(0, Replica::end_position);
        state.stats.end_position = state.stats.start_position;
        self.counters.set_start(state.stats.start_position);
        let consumer_name = o.consumer_name();
        let mut stop = std::pin::pin!(stop);
        let mut first_session = true;
        loop {
            // Where the replica ends, and which message continues it.
            let end = state.replica.as_ref().map(Replica::end_position);
            let start = retrying(
                "find where the replica resumes",
                &events,
                o.max_backoff,
                || start_sequence(&js, &o.stream, end),
            )
            .await?;
            if let Some(last_end) = start.stream_end {
                self.counters.stream_end(last_end);
            }
            if let (Some(replica), Some(last)) = (&state.replica, &start.last)
                && last.header.journal_id != replica.journal_id()
            {
                return Err(RelayError::ForeignStream {
                    stream: o.stream.clone(),
                    expected: replica.journal_id(),
                    found: last.header.journal_id,
                });
            }
            if let (Some(replica), Some(next)) = (&state.replica, &start.next)
                && next.header.first_position > replica.end_position()
            {
                return Err(RelayError::StreamGap {
                    stream: o.stream.clone(),
                    replica_end: replica.end_position(),
                    available: next.header.first_position,
                });
            }
            if o.until_closed && start.closed_at.is_some() && start.closed_at == end {
                state.stats.closed = true;
                return state.finish(started);
            }
            if !first_session {
                state.stats.resyncs += 1;
                self.counters.resynced();
            }
            first_session = false;
            let consumer = retrying("create the consumer", &events, o.max_backoff, || {
                recreate_consumer(&js, &o.stream, &consumer_name, start.sequence)
            })
            .await?;
            events(&Event::ConsumerStarted {
                consumer: consumer_name.clone(),
                sequence: start.sequence,
                position: end.unwrap_or(0),
            });
            let mut messages = match consumer
                .stream()
                .max_messages_per_batch(o.batch)
                .heartbeat(Duration::from_secs(2))
                .expires(Duration::from_secs(10))
                .messages()
                .await
            {
                Ok(m) => m,
                Err(e) => {
                    report_retry(&events, "start pulling", &e.to_string(), o.max_backoff).await;
                    continue;
                }
            };
            loop {
                let next = tokio::select! {
                    biased;
                    () = &mut stop => return state.finish(started),
                    next = messages.next() => next,
                };
                let message = match next {
                    Some(Ok(message)) => message,
                    Some(Err(e)) => {
                        report_retry(&events, "pull messages", &e.to_string(), o.max_backoff).await;
                        break;
                    }
                    None => {
                        report_retry(
                            &events,
                            "pull messages",
                            "the consumer's stream ended",
                            o.max_backoff,
                        )
                        .await;
                        break;
                    }
                };
                let (sequence, pending) = message
                    .info()
                    .map(|i| (i.stream_sequence, i.pending))
                    .unwrap_or((0, 0));
                state.pending = pending;
                let applied = state.apply(&message.payload, sequence)?;
                // Acknowledging is only bookkeeping for the server: the
                // replica's end position is what a restart trusts.
                if let Err(e) = message.ack().await {
                    report_retry(
                        &events,
                        "acknowledge a message",
                        &e.to_string(),
                        o.max_backoff,
                    )
                    .await;
                    break;
                }
                if let Applied::Closed = applied {
                    events(&Event::SourceClosed {
                        position: state.stats.end_position,
                    });
                    if o.until_closed {
                        return state.finish(started);
                    }
                }
            }
        }
    }
}

async fn report_retry(events: &EventSink, action: &str, error: &str, max_backoff: Duration) {
    let delay = Duration::from_millis(200).min(max_backoff);
    events(&Event::Retrying {
        action: action.to_string(),
        error: error.to_string(),
        delay,
    });
    tokio::time::sleep(delay).await;
}

/// Where a consumer session starts.
struct Start {
    /// The first stream sequence to deliver.
    sequence: u64,
    /// Its message, if it exists yet.
    next: Option<js_stream::Stored>,
    /// The stream's end position, if it holds messages.
    stream_end: Option<u64>,
    /// The stream's last message.
    last: Option<js_stream::Stored>,
    /// The position of the stream's end marker, if its last message is one.
    closed_at: Option<u64>,
}

async fn start_sequence(
    js: &jetstream::Context,
    stream: &str,
    end: Option<u64>,
) -> Result<Start, Attempt> {
    let last = js_stream::last_message(js, stream).await?;
    let stream_end = last.as_ref().map(|l| l.end);
    let closed_at = last
        .as_ref()
        .filter(|l| l.header.is_closed_marker())
        .map(|l| l.header.first_position);
    match end {
        None => {
            let (first, _) = js_stream::sequences(js, stream).await?;
            Ok(Start {
                sequence: first.max(1),
                next: None,
                stream_end,
                closed_at,
                last,
            })
        }
        Some(end) => {
            let (sequence, next) = js_stream::first_ending_after(js, stream, end).await?;
            Ok(Start {
                sequence,
                next,
                stream_end,
                closed_at,
                last,
            })
        }
    }
}

async fn recreate_consumer(
    js: &jetstream::Context,
    stream: &str,
    name: &str,
    sequence: u64,
) -> Result<consumer::Consumer<consumer::pull::Config>, Attempt> {
    let handle = js
        .get_stream_no_info(stream)
        .await
        .map_err(|e| Attempt::Transient(e.to_string()))?;
    // The consumer's own position is not trusted: the replica's is. A
    // missing consumer is fine.
    if let Err(e) = handle.delete_consumer(name).await {
        use async_nats::jetstream::stream::ConsumerErrorKind;
        match e.kind() {
            ConsumerErrorKind::JetStream(js_err)
                if js_err.error_code() == jetstream::ErrorCode::CONSUMER_NOT_FOUND => {}
            ConsumerErrorKind::InvalidName => {
                return Err(Attempt::Fatal(RelayError::Options {
                    reason: format!("consumer name {name:?}: {e}"),
                }));
            }
            _ => return Err(Attempt::Transient(e.to_string())),
        }
    }
    let config = consumer::pull::Config {
        durable_name: Some(name.to_string()),
        deliver_policy: consumer::DeliverPolicy::ByStartSequence {
            start_sequence: sequence,
        },
        ack_policy: consumer::AckPolicy::All,
        ack_wait: Duration::from_secs(30),
        ..Default::default()
    };
    handle
        .create_consumer(config)
        .await
        .map_err(|e| Attempt::Transient(e.to_string()))
}

struct State<'a> {
    stream: String,
    dir: PathBuf,
    replica: Option<Replica>,
    counters: &'a Counters,
    stats: PullStats,
    pending: u64,
}

impl State<'_> {
    fn finish(mut self, started: Instant) -> Result<PullStats, RelayError> {
        self.stats.elapsed = started.elapsed();
        self.stats.end_position = self
            .replica
            .as_ref()
            .map_or(self.stats.end_position, Replica::end_position);
        // Left open, not sealed (everything synced first): the next pull
        // resumes the same segment, so that segment boundaries stay the
        // source's.
        if let Some(replica) = self.replica.take() {
            replica.leave_open()?;
        }
        Ok(self.stats)
    }

    fn mismatch(&self, sequence: u64, expected: u64, found: u64) -> RelayError {
        RelayError::PositionMismatch {
            dir: self.dir.clone(),
            sequence,
            expected,
            found,
        }
    }

    /// Applies one message to the replica, checking every position.
    fn apply(&mut self, bytes: &[u8], sequence: u64) -> Result<Applied, RelayError> {
        let message = Message::parse(bytes).map_err(|source| RelayError::BadMessage {
            stream: self.stream.clone(),
            sequence,
            source,
        })?;
        let header = *message.header();
        let replica = match self.replica.take() {
            Some(replica) => replica,
            // No replica (new, or closed by an end marker): open it, or
            // create it as the source's segments are.
            None => match Replica::open_existing(&self.dir)? {
                Some(replica) => replica,
                None => Replica::create(
                    &self.dir,
                    header.journal_id,
                    header.segment_bytes,
                    header.max_record_len,
                    header.first_position,
                )?,
            },
        };
        let mut replica = replica;
        if replica.journal_id() != header.journal_id {
            return Err(RelayError::ForeignStream {
                stream: self.stream.clone(),
                expected: replica.journal_id(),
                found: header.journal_id,
            });
        }
        let end = replica.end_position();
        self.counters.stream_end(message.end_position());
        if header.is_closed_marker() {
            if header.first_position == end {
                replica.close()?;
                self.stats.closed = true;
                self.stats.messages += 1;
                return Ok(Applied::Closed);
            }
            self.replica = Some(replica);
            if header.first_position > end {
                return Err(self.mismatch(sequence, header.first_position, end));
            }
            return Ok(Applied::Records);
        }
        self.stats.closed = false;
        if message.end_position() <= end {
            // Delivered again: the replica has all of it.
            self.stats.skipped_records += u64::from(header.record_count);
            self.replica = Some(replica);
            return Ok(Applied::Records);
        }
        if header.first_position > end {
            self.replica = Some(replica);
            return Err(self.mismatch(sequence, header.first_position, end));
        }
        let result = self.write_frames(&mut replica, &message, sequence);
        self.stats.end_position = replica.end_position();
        self.replica = Some(replica);
        result?;
        self.stats.messages += 1;
        Ok(Applied::Records)
    }

    fn write_frames(
        &mut self,
        replica: &mut Replica,
        message: &Message<'_>,
        sequence: u64,
    ) -> Result<(), RelayError> {
        let header = message.header();
        let mut end = replica.end_position();
        // The source rolled here, and so does the replica. (A replica
        // whose first segment starts inside a source segment, because the
        // stream starts there, has a base past the source's until then.)
        if header.segment_base > replica.segment_base() {
            if header.segment_base != end || header.first_position < end {
                return Err(self.mismatch(sequence, header.segment_base, end));
            }
            let base = replica.roll()?;
            if base != header.segment_base {
                return Err(self.mismatch(sequence, header.segment_base, base));
            }
        }
        let mut batch: Vec<&[u8]> = Vec::new();
        let mut batch_at: Option<u64> = None;
        let (mut records, mut bytes, mut skipped) = (0u64, 0u64, 0u64);
        let flush = |replica: &mut Replica, batch: &mut Vec<&[u8]>, batch_at: &mut Option<u64>| {
            if let Some(marker) = batch_at.take() {
                let first = replica.append_batch(batch)?;
                if first != marker + 8 {
                    return Err(self.mismatch(sequence, marker + 8, first));
                }
                batch.clear();
            }
            Ok(())
        };
        for frame in message.frames() {
            match frame {
                Frame::Gap { position } if position < end => {}
                Frame::Gap { position } => {
                    flush(replica, &mut batch, &mut batch_at)?;
                    if position != replica.end_position() {
                        return Err(self.mismatch(sequence, position, replica.end_position()));
                    }
                    batch_at = Some(position);
                }
                Frame::Record { position, .. } if position < end => skipped += 1,
                Frame::Record { position, payload } => {
                    records += 1;
                    bytes += payload.len() as u64;
                    if batch_at.is_some() {
                        batch.push(payload);
                        continue;
                    }
                    if position != end {
                        return Err(self.mismatch(sequence, position, end));
                    }
                    let got = replica.append(payload)?;
                    if got != position {
                        return Err(self.mismatch(sequence, position, got));
                    }
                    end = replica.end_position();
                }
            }
        }
        flush(replica, &mut batch, &mut batch_at)?;
        let end = replica.end_position();
        if end != message.end_position() {
            return Err(self.mismatch(sequence, message.end_position(), end));
        }
        self.stats.records += records;
        self.stats.bytes += bytes;
        self.stats.skipped_records += skipped;
        self.counters.appended(records, bytes, end, self.pending);
        Ok(())
    }
}
