//! `Push`: tails a journal and publishes its records to a JetStream stream,
//! exactly once, in order.
//!
//! A blocking thread reads the journal and packs runs of records into
//! messages; the async side publishes them with chained
//! `Nats-Expected-Last-Msg-Id` headers, keeping a bounded number in flight.
//! Every message stays in memory until its ack arrives, so when a link of
//! the chain fails, the relay drains the acks in flight, reads the stream's
//! last message and publishes again from right after it.

use std::collections::VecDeque;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage, stream::StorageType};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use tokio::sync::mpsc;

use crate::events::{Event, EventSink, stderr_events};
use crate::journal::{Next, Source};
use crate::message::{
    self, FRAME_HEADER, HEADER_END, HEADER_JOURNAL, HEADER_LEN, HEADER_POSITION, HEADER_SEGMENT,
    RunBuilder,
};
use crate::progress::{Counters, Progress};
use crate::stream::{self as js_stream, Attempt, Stored, retrying};
use crate::{IdleStrategy, RelayError};

/// Bytes of `max_payload` kept for the NATS headers the relay writes.
pub const HEADER_ALLOWANCE: usize = 512;

/// Where a push starts when the stream is empty.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartAt {
    /// The journal's first record.
    #[default]
    Beginning,
    /// A record boundary.
    Position(u64),
}

/// How to create the stream when it does not exist.
#[derive(Clone, Debug)]
pub struct StreamSettings {
    /// How long the server remembers message ids to drop duplicates.
    pub duplicate_window: Duration,
    /// File or memory storage.
    pub storage: StorageType,
    /// Copies of the stream in a cluster.
    pub replicas: usize,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            duplicate_window: Duration::from_secs(120),
            storage: StorageType::File,
            replicas: 1,
        }
    }
}

/// What a push does, and how.
#[derive(Clone)]
pub struct PushOptions {
    server: String,
    stream: String,
    subject: Option<String>,
    journal: PathBuf,
    start: StartAt,
    max_message_bytes: usize,
    max_in_flight: usize,
    until_closed: bool,
    idle: IdleStrategy,
    settings: StreamSettings,
    connect_timeout: Duration,
    ack_timeout: Duration,
    max_backoff: Duration,
    events: EventSink,
}

impl std::fmt::Debug for PushOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushOptions")
            .field("server", &self.server)
            .field("stream", &self.stream)
            .field("subject", &self.subject_name())
            .field("journal", &self.journal)
            .field("start", &self.start)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("max_in_flight", &self.max_in_flight)
            .field("until_closed", &self.until_closed)
            .finish_non_exhaustive()
    }
}

impl PushOptions {
    /// Pushes the journal at `journal` to stream `stream` on `server`
    /// (`nats://host:port`). Defaults: subject `kekbit.<stream>`, messages of
    /// up to 256 KiB (never more than the server's `max_payload`), 64 in
    /// flight, running until stopped.
    ///
    /// ```
    /// let options = kekbit_relay::PushOptions::new("nats://127.0.0.1:4222", "ORDERS", "/var/lib/orders")
    ///     .subject("orders.journal")
    ///     .max_in_flight(128);
    /// assert_eq!(options.subject_name(), "orders.journal");
    /// ```
    pub fn new(
        server: impl Into<String>,
        stream: impl Into<String>,
        journal: impl AsRef<Path>,
    ) -> Self {
        Self {
            server: server.into(),
            stream: stream.into(),
            subject: None,
            journal: journal.as_ref().to_path_buf(),
            start: StartAt::Beginning,
            max_message_bytes: 256 << 10,
            max_in_flight: 64,
            until_closed: false,
            idle: IdleStrategy::default(),
            settings: StreamSettings::default(),
            connect_timeout: Duration::from_secs(5),
            ack_timeout: Duration::from_secs(5),
            max_backoff: Duration::from_secs(5),
            events: stderr_events(),
        }
    }

    /// The subject it publishes on (default `kekbit.<stream>`).
    pub fn subject_name(&self) -> String {
        self.subject
            .clone()
            .unwrap_or_else(|| format!("kekbit.{}", self.stream))
    }

    /// Publishes on `subject` (which the stream must capture; a stream the
    /// push creates captures exactly this subject).
    #[must_use]
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Where to start when the stream is empty (a non-empty stream always
    /// resumes after its last message; asking for another position there is
    /// [`RelayError::StartConflict`]).
    #[must_use]
    pub fn start(mut self, start: StartAt) -> Self {
        self.start = start;
        self
    }

    /// The largest message, header included (capped by the server's
    /// `max_payload` less [`HEADER_ALLOWANCE`]). A run holds at least one
    /// record whatever this says.
    #[must_use]
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Messages published and not yet acknowledged, at most (at least 1).
    #[must_use]
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }

    /// Stop once the source journal is closed and the stream says so;
    /// otherwise wait for it to be reopened.
    #[must_use]
    pub fn until_closed(mut self, on: bool) -> Self {
        self.until_closed = on;
        self
    }

    /// How the reading thread waits for new records.
    #[must_use]
    pub fn idle(mut self, idle: IdleStrategy) -> Self {
        self.idle = idle;
        self
    }

    /// How the stream is created if missing.
    #[must_use]
    pub fn stream_settings(mut self, settings: StreamSettings) -> Self {
        self.settings = settings;
        self
    }

    /// How long to wait for the server at start-up.
    #[must_use]
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// How long to wait for a publish ack before resynchronising.
    #[must_use]
    pub fn ack_timeout(mut self, t: Duration) -> Self {
        self.ack_timeout = t;
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

/// What a push did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushStats {
    /// Records acknowledged by the server during this run.
    pub records: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// Messages acknowledged.
    pub messages: u64,
    /// Where this run started (the stream's end when it began).
    pub start_position: u64,
    /// The position after the last acknowledged record.
    pub end_position: u64,
    /// Times the chain broke and the relay resumed after the stream's last message.
    pub resyncs: u64,
    /// How long the run took.
    pub elapsed: Duration,
}

/// One message on its way: what it carries, kept until acknowledged.
struct Run {
    first: u64,
    segment_base: u64,
    end: u64,
    records: u32,
    payload_bytes: u64,
    closed: bool,
    bytes: Bytes,
    message_id: String,
}

/// What the reading thread sends.
enum FromReader {
    Run(Run),
    Failed(RelayError),
}

/// A push, ready to run.
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
/// # writer.append(b"order 2")?;
/// # writer.close()?;
/// use kekbit_relay::{Push, PushOptions};
/// let runtime = tokio::runtime::Runtime::new()?;
/// let push = Push::new(PushOptions::new(&url, "ORDERS", &journal).until_closed(true));
/// let progress = push.progress();
/// let stats = runtime.block_on(push.run())?;
/// assert_eq!(stats.records, 2);
/// assert_eq!(progress.snapshot().lag_records, 0);
/// # Ok(()) }
/// ```
pub struct Push {
    options: PushOptions,
    counters: Arc<Counters>,
}

impl Push {
    /// A push with `options`.
    pub fn new(options: PushOptions) -> Self {
        Self {
            options,
            counters: Arc::new(Counters::default()),
        }
    }

    /// A handle on the live counters, for a progress line.
    pub fn progress(&self) -> Progress {
        Progress::new(Arc::clone(&self.counters))
    }

    /// Runs until the source is closed (with [`PushOptions::until_closed`])
    /// or an unrecoverable error.
    pub async fn run(self) -> Result<PushStats, RelayError> {
        self.run_until(std::future::pending()).await
    }

    /// Runs until `stop` completes: then it stops reading, waits for the acks
    /// in flight, and returns. Nothing is lost by stopping: the next run
    /// resumes after the stream's last message.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> Result<PushStats, RelayError> {
        let o = &self.options;
        if o.max_in_flight == 0 {
            return Err(RelayError::Options {
                reason: "max in flight must be at least 1".into(),
            });
        }
        let started = Instant::now();
        let events = o.events.clone();
        let client = js_stream::connect(&o.server, o.connect_timeout, &events).await?;
        let max_payload = client.server_info().max_payload;
        let js = jetstream::ContextBuilder::new()
            .timeout(o.ack_timeout)
            .max_ack_inflight(o.max_in_flight + 8)
            .build(client);
        let subject = o.subject_name();

        // The source, opened on a blocking thread (it maps files).
        let dir = o.journal.clone();
        let mut source = tokio::task::spawn_blocking(move || Source::open(&dir))
            .await
            .map_err(|e| RelayError::Internal {
                reason: format!("journal thread: {e}"),
            })??;

        let limit = max_payload.saturating_sub(HEADER_ALLOWANCE);
        // A record this long, behind a batch marker, fills a message. The
        // journal may allow longer ones: the push stops at the first it
        // meets (see `RelayError::RecordTooLarge`).
        let largest_record = limit.saturating_sub(HEADER_LEN + 8 + FRAME_HEADER) / 8 * 8;
        let budget = o
            .max_message_bytes
            .min(limit)
            .max(HEADER_LEN + 8 + FRAME_HEADER);

        ensure_stream(&js, o, &subject, &events).await?;
        let last = retrying(
            "read the stream's last message",
            &events,
            o.max_backoff,
            || js_stream::last_message(&js, &o.stream),
        )
        .await?;
        let journal_id = source.journal_id();
        let (resume, chain, closed_at) = match &last {
            Some(stored) => {
                check_journal(&o.stream, journal_id, stored)?;
                let resume = if stored.header.is_closed_marker() {
                    stored.header.first_position
                } else {
                    stored.end
                };
                if let StartAt::Position(p) = o.start
                    && p != resume
                {
                    return Err(RelayError::StartConflict {
                        stream: o.stream.clone(),
                        requested: p,
                        resume,
                    });
                }
                let closed = stored.header.is_closed_marker().then_some(resume);
                (resume, Chain::MessageId(stored.message_id.clone()), closed)
            }
            None => {
                let p = match o.start {
                    StartAt::Beginning => source.position(),
                    StartAt::Position(p) => p,
                };
                (p, Chain::Sequence(0), None)
            }
        };
        let dir = o.journal.clone();
        let source = tokio::task::spawn_blocking(move || {
            source.seek(resume).map_err(|e| match e {
                RelayError::Journal(e) if last.is_some() => RelayError::StreamAhead {
                    dir,
                    stream_end: resume,
                    source: e,
                },
                e => e,
            })?;
            Ok::<_, RelayError>(source)
        })
        .await
        .map_err(|e| RelayError::Internal {
            reason: format!("journal thread: {e}"),
        })??;

        self.counters.set_start(resume);
        let stop_reading = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel(o.max_in_flight.max(2));
        let reader = {
            let stop = Arc::clone(&stop_reading);
            let counters = Arc::clone(&self.counters);
            let idle = o.idle;
            let until_closed = o.until_closed;
            std::thread::Builder::new()
                .name("kekbit-relay-push".into())
                .spawn(move || {
                    read_runs(
                        source,
                        Limits {
                            budget,
                            largest_record,
                            max_payload,
                        },
                        closed_at,
                        until_closed,
                        idle,
                        &stop,
                        &counters,
                        &tx,
                    );
                })
                .map_err(|e| RelayError::Internal {
                    reason: format!("cannot start the reading thread: {e}"),
                })?
        };

        let mut publisher = Publisher {
            js: &js,
            subject,
            stream: o.stream.clone(),
            journal_id,
            events: &events,
            max_backoff: o.max_backoff,
            max_in_flight: o.max_in_flight,
            chain,
            window: VecDeque::new(),
            acks: FuturesOrdered::new(),
            counters: &self.counters,
            stats: PushStats {
                start_position: resume,
                end_position: resume,
                ..PushStats::default()
            },
            broken: None,
        };
        let result = publisher.run(rx, stop, o.until_closed).await;
        stop_reading.store(true, Ordering::Relaxed);
        let _ = tokio::task::spawn_blocking(move || reader.join()).await;
        let mut stats = result?;
        stats.elapsed = started.elapsed();
        Ok(stats)
    }
}

/// Creates the stream if missing; checks that it captures `subject`.
async fn ensure_stream(
    js: &jetstream::Context,
    o: &PushOptions,
    subject: &str,
    events: &EventSink,
) -> Result<(), RelayError> {
    retrying("set up the stream", events, o.max_backoff, || async {
        match js_stream::get_stream(js, &o.stream).await? {
            Some(mut stream) => {
                let info = stream
                    .info()
                    .await
                    .map_err(|e| Attempt::Transient(e.to_string()))?;
                if !info
                    .config
                    .subjects
                    .iter()
                    .any(|pattern| subject_matches(pattern, subject))
                {
                    return Err(Attempt::Fatal(RelayError::StreamConfig {
                        stream: o.stream.clone(),
                        reason: format!(
                            "it does not capture subject {subject} (its subjects: {})",
                            info.config.subjects.join(", ")
                        ),
                    }));
                }
                Ok(())
            }
            None => {
                let config = jetstream::stream::Config {
                    name: o.stream.clone(),
                    subjects: vec![subject.to_string()],
                    storage: o.settings.storage,
                    num_replicas: o.settings.replicas,
                    duplicate_window: o.settings.duplicate_window,
                    allow_direct: true,
                    ..Default::default()
                };
                match js.create_stream(config).await {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        use async_nats::jetstream::context::CreateStreamErrorKind as K;
                        match e.kind() {
                            K::TimedOut | K::JetStreamUnavailable | K::Response => {
                                Err(Attempt::Transient(e.to_string()))
                            }
                            _ => Err(Attempt::Fatal(RelayError::StreamConfig {
                                stream: o.stream.clone(),
                                reason: format!("cannot create it: {e}"),
                            })),
                        }
                    }
                }
            }
        }
    })
    .await
}

/// Whether NATS subject `pattern` (with `*` and `>`) matches `subject`.
pub(crate) fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

fn check_journal(stream: &str, journal_id: u64, stored: &Stored) -> Result<(), RelayError> {
    if stored.header.journal_id != journal_id {
        return Err(RelayError::ForeignStream {
            stream: stream.to_string(),
            expected: journal_id,
            found: stored.header.journal_id,
        });
    }
    Ok(())
}

/// The link the next publish expects at the end of the stream.
#[derive(Clone, Debug)]
enum Chain {
    MessageId(String),
    Sequence(u64),
}

type AckFuture =
    Pin<Box<dyn Future<Output = Result<jetstream::publish::PublishAck, String>> + Send>>;

struct Publisher<'a> {
    js: &'a jetstream::Context,
    subject: String,
    stream: String,
    journal_id: u64,
    events: &'a EventSink,
    max_backoff: Duration,
    max_in_flight: usize,
    chain: Chain,
    /// Published, not yet acknowledged, in order.
    window: VecDeque<Run>,
    /// Their acks, in the same order; shorter than `window` after a break.
    acks: FuturesOrdered<AckFuture>,
    counters: &'a Counters,
    stats: PushStats,
    /// The first error since the chain broke.
    broken: Option<String>,
}

impl Publisher<'_> {
    async fn run(
        &mut self,
        mut rx: mpsc::Receiver<FromReader>,
        stop: impl Future<Output = ()>,
        until_closed: bool,
    ) -> Result<PushStats, RelayError> {
        let mut stop = std::pin::pin!(stop);
        let mut stopping = false;
        let mut reader_done = false;
        // The reading thread's error, returned once every run it sent
        // before is acknowledged.
        let mut failed = None;
        loop {
            if let Some(error) = self.broken.take() {
                self.resync(error).await?;
                continue;
            }
            if (stopping || reader_done) && self.window.is_empty() {
                return match failed {
                    Some(e) => Err(e),
                    None => Ok(self.stats.clone()),
                };
            }
            let room = self.window.len() < self.max_in_flight;
            tokio::select! {
                biased;
                () = &mut stop, if !stopping => stopping = true,
                Some(ack) = self.acks.next(), if !self.acks.is_empty() => self.on_ack(ack),
                next = rx.recv(), if room && !stopping && !reader_done => match next {
                    Some(FromReader::Run(run)) => {
                        let done = run.closed && until_closed;
                        self.publish(run).await;
                        if done {
                            reader_done = true;
                        }
                    }
                    Some(FromReader::Failed(e)) => {
                        failed = Some(e);
                        reader_done = true;
                    }
                    // The reading thread ends by itself only at a closed
                    // journal whose end marker is already in the stream.
                    None if until_closed => reader_done = true,
                    None => {
                        return Err(RelayError::Internal {
                            reason: "the journal-reading thread stopped unexpectedly".into(),
                        });
                    }
                },
            }
        }
    }

    fn headers(&self, run: &Run) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, run.message_id.as_str());
        match &self.chain {
            Chain::MessageId(id) => headers.insert(
                async_nats::header::NATS_EXPECTED_LAST_MESSAGE_ID,
                id.as_str(),
            ),
            Chain::Sequence(seq) => {
                headers.insert(
                    async_nats::header::NATS_EXPECTED_LAST_SEQUENCE,
                    seq.to_string().as_str(),
                );
            }
        }
        headers.insert(HEADER_JOURNAL, format!("{:016x}", self.journal_id).as_str());
        headers.insert(HEADER_POSITION, run.first.to_string().as_str());
        headers.insert(HEADER_END, run.end.to_string().as_str());
        headers.insert(HEADER_SEGMENT, run.segment_base.to_string().as_str());
        headers
    }

    /// Publishes `run` as the next link of the chain and keeps it until its
    /// ack. A failure to send breaks the chain.
    async fn publish(&mut self, run: Run) {
        let headers = self.headers(&run);
        self.chain = Chain::MessageId(run.message_id.clone());
        let publish = PublishMessage::build()
            .payload(run.bytes.clone())
            .headers(headers);
        let sent = self.js.send_publish(self.subject.clone(), publish).await;
        self.window.push_back(run);
        if self.broken.is_some() {
            return;
        }
        match sent {
            Ok(ack) => {
                self.acks.push_back(Box::pin(
                    async move { ack.await.map_err(|e| e.to_string()) },
                ))
            }
            Err(e) => self.broken = Some(e.to_string()),
        }
    }

    fn on_ack(&mut self, ack: Result<jetstream::publish::PublishAck, String>) {
        if self.broken.is_some() {
            // Draining after a break: the resync reads what was stored.
            return;
        }
        match ack {
            Ok(ack) if !ack.duplicate && ack.stream == self.stream => {
                if let Some(run) = self.window.pop_front() {
                    self.acked(&run);
                }
            }
            Ok(ack) if ack.duplicate => {
                self.broken = Some("the server called a message a duplicate".into())
            }
            Ok(ack) => self.broken = Some(format!("the message went to stream {}", ack.stream)),
            Err(e) => self.broken = Some(e),
        }
    }

    fn acked(&mut self, run: &Run) {
        self.stats.records += u64::from(run.records);
        self.stats.bytes += run.payload_bytes;
        self.stats.messages += 1;
        self.stats.end_position = run.end;
        self.counters
            .acked(u64::from(run.records), run.payload_bytes, run.end);
    }

    /// After a break: drain the acks in flight, read the stream's last
    /// message, forget the runs it covers, and publish the rest again.
    async fn resync(&mut self, error: String) -> Result<(), RelayError> {
        while self.acks.next().await.is_some() {}
        let last = retrying(
            "read the stream's last message",
            self.events,
            self.max_backoff,
            || js_stream::last_message(self.js, &self.stream),
        )
        .await?;
        let Some(last) = last else {
            // Nothing stored: everything in the window is published again.
            self.chain = Chain::Sequence(0);
            return self
                .republish(error, self.window.front().map_or(0, |r| r.first))
                .await;
        };
        check_journal(&self.stream, self.journal_id, &last)?;
        while let Some(run) = self.window.front() {
            let stored = run.message_id == last.message_id;
            if run.end < last.end || (run.end == last.end && !run.closed) || stored {
                let run = self.window.pop_front().expect("front exists");
                self.acked(&run);
                if stored {
                    break;
                }
            } else {
                break;
            }
        }
        let resume = if last.header.is_closed_marker() {
            last.header.first_position
        } else {
            last.end
        };
        if let Some(front) = self.window.front()
            && front.first != resume
        {
            return Err(RelayError::StreamConfig {
                stream: self.stream.clone(),
                reason: format!(
                    "another publisher changed it: it ends at position {resume}, but this relay \
                     has position {} next",
                    front.first
                ),
            });
        }
        self.chain = Chain::MessageId(last.message_id.clone());
        self.republish(error, resume).await
    }

    async fn republish(&mut self, error: String, position: u64) -> Result<(), RelayError> {
        self.counters.resynced();
        self.stats.resyncs += 1;
        (self.events)(&Event::Resuming { error, position });
        let runs: Vec<Run> = self.window.drain(..).collect();
        for run in runs {
            self.publish(run).await;
        }
        Ok(())
    }
}

/// How large messages and records may be.
#[derive(Clone, Copy, Debug)]
struct Limits {
    /// The largest message the reading thread builds, header included
    /// (but a run always takes its first record).
    budget: usize,
    /// The longest record a message can carry on this server.
    largest_record: usize,
    /// The server's `max_payload`, for the error message.
    max_payload: usize,
}

/// The reading thread: packs the journal's records into runs and sends
/// them, a partial run as soon as the journal has nothing more.
#[allow(clippy::too_many_arguments)]
fn read_runs(
    mut source: Source,
    limits: Limits,
    mut closed_at: Option<u64>,
    until_closed: bool,
    idle: IdleStrategy,
    stop: &AtomicBool,
    counters: &Counters,
    tx: &mpsc::Sender<FromReader>,
) {
    let journal_id = source.journal_id();
    let mut payload = Vec::new();
    let mut run: Option<RunBuilder> = None;
    let mut expected = source.position();
    let mut idle_rounds = 0u32;
    let send = |builder: RunBuilder, closed: bool| -> bool {
        let header = *builder.header();
        let end = builder.end_position();
        let records = header.record_count;
        let payload_bytes = builder.payload_bytes();
        let bytes = builder.finish();
        let message_id = if closed {
            message::closed_message_id(journal_id, header.first_position)
        } else {
            message::message_id(journal_id, header.first_position)
        };
        counters.read(u64::from(records), payload_bytes, end);
        tx.blocking_send(FromReader::Run(Run {
            first: header.first_position,
            segment_base: header.segment_base,
            end,
            records,
            payload_bytes,
            closed,
            bytes: Bytes::from(bytes),
            message_id,
        }))
        .is_ok()
    };
    while !stop.load(Ordering::Relaxed) {
        let next = match source.next(&mut payload) {
            Ok(next) => next,
            Err(e) => {
                let _ = tx.blocking_send(FromReader::Failed(e));
                return;
            }
        };
        match next {
            Next::Record {
                position,
                segment_base,
            } => {
                idle_rounds = 0;
                closed_at = None;
                let gap = position == expected + 8 && position > segment_base;
                if position != expected && !gap {
                    let _ = tx.blocking_send(FromReader::Failed(RelayError::SourceGap {
                        dir: source.dir().to_path_buf(),
                        expected,
                        found: position,
                    }));
                    return;
                }
                if payload.len() > limits.largest_record {
                    // Everything before it goes; then the push stops, with
                    // the stream ending right before this record.
                    if let Some(b) = run.take()
                        && !send(b, false)
                    {
                        return;
                    }
                    let _ = tx.blocking_send(FromReader::Failed(RelayError::RecordTooLarge {
                        dir: source.dir().to_path_buf(),
                        position,
                        len: payload.len(),
                        max_payload: limits.max_payload,
                        largest_record: limits.largest_record,
                    }));
                    return;
                }
                // A record of another segment, or one that does not fit,
                // ends the run.
                if let Some(b) = &run {
                    let mut probe_len = b.len() + message::framed_len(payload.len());
                    if gap {
                        probe_len += 8;
                    }
                    if b.header().segment_base != segment_base
                        || (b.record_count() > 0 && probe_len > limits.budget)
                    {
                        let b = run.take().expect("run exists");
                        if !send(b, false) {
                            return;
                        }
                    }
                }
                let b = run.get_or_insert_with(|| {
                    let first = if gap { position - 8 } else { position };
                    RunBuilder::new(
                        journal_id,
                        first,
                        segment_base,
                        source.segment_bytes(),
                        source.max_record_len(),
                        limits.budget,
                    )
                });
                if gap {
                    b.gap();
                }
                let pushed = b.push(&payload);
                debug_assert!(pushed, "a run always takes a record that fits its budget");
                expected = position + message::framed_len(payload.len()) as u64;
            }
            Next::Empty | Next::Closed { .. } => {
                if let Some(b) = run.take() {
                    if !send(b, false) {
                        return;
                    }
                    continue;
                }
                if let Next::Closed { position } = next {
                    if closed_at != Some(position) {
                        let mut b = RunBuilder::new(
                            journal_id,
                            position,
                            source.segment_base(),
                            source.segment_bytes(),
                            source.max_record_len(),
                            limits.budget,
                        );
                        b.mark_closed();
                        if !send(b, true) {
                            return;
                        }
                        closed_at = Some(position);
                    }
                    if until_closed {
                        return;
                    }
                }
                idle.wait(idle_rounds);
                idle_rounds = idle_rounds.saturating_add(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::subject_matches;

    #[test]
    fn subjects() {
        assert!(subject_matches("kekbit.orders", "kekbit.orders"));
        assert!(subject_matches("kekbit.*", "kekbit.orders"));
        assert!(subject_matches("kekbit.>", "kekbit.orders.eu"));
        assert!(subject_matches(">", "a"));
        assert!(!subject_matches("kekbit.*", "kekbit.orders.eu"));
        assert!(!subject_matches("kekbit.orders", "kekbit"));
        assert!(!subject_matches("kekbit", "kekbit.orders"));
    }
}
