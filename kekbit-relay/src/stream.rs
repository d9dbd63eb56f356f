//! The JetStream side shared by push and pull: connecting, the stream, its
//! last message, and finding the message that holds a position.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::{self, stream::Stream};

use crate::RelayError;
use crate::events::{Backoff, Event, EventSink};
use crate::message::{FormatError, Header, Message};

/// How a failed attempt should be handled.
pub(crate) enum Attempt {
    /// Worth another try (the server is away or busy).
    Transient(String),
    /// Not worth another try.
    Fatal(RelayError),
}

impl From<RelayError> for Attempt {
    fn from(e: RelayError) -> Self {
        Self::Fatal(e)
    }
}

/// Runs `f` until it succeeds or fails fatally, reporting each retry.
pub(crate) async fn retrying<T, F, Fut>(
    action: &str,
    events: &EventSink,
    max_backoff: Duration,
    mut f: F,
) -> Result<T, RelayError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Attempt>>,
{
    let mut backoff = Backoff::new(max_backoff);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(Attempt::Fatal(e)) => return Err(e),
            Err(Attempt::Transient(error)) => {
                let delay = backoff.next_delay();
                events(&Event::Retrying {
                    action: action.to_string(),
                    error,
                    delay,
                });
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Connects, reporting disconnections and reconnections as events. An
/// unreachable server is an error at once (the client then reconnects by
/// itself for as long as the relay runs).
pub(crate) async fn connect(
    server: &str,
    timeout: Duration,
    events: &EventSink,
) -> Result<async_nats::Client, RelayError> {
    let sink = events.clone();
    // The first connection is not news; a reconnection after a loss is.
    let lost = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    async_nats::ConnectOptions::new()
        .name("kekbit-relay")
        .connection_timeout(timeout)
        .max_reconnects(None)
        .event_callback(move |event| {
            let sink = sink.clone();
            let lost = lost.clone();
            async move {
                use std::sync::atomic::Ordering;
                match event {
                    async_nats::Event::Disconnected => {
                        lost.store(true, Ordering::Relaxed);
                        sink(&Event::Disconnected);
                    }
                    async_nats::Event::Connected if lost.swap(false, Ordering::Relaxed) => {
                        sink(&Event::Connected);
                    }
                    _ => {}
                }
            }
        })
        .connect(server)
        .await
        .map_err(|source| RelayError::Connect {
            server: server.to_string(),
            source,
        })
}

/// Whether a JetStream API error is the server being away or busy.
fn is_transient_js(e: &jetstream::Error) -> bool {
    e.code() == 503 || e.code() == 408
}

/// Fetches the stream's handle with fresh info; `Ok(None)` if it does not exist.
pub(crate) async fn get_stream(
    js: &jetstream::Context,
    name: &str,
) -> Result<Option<Stream>, Attempt> {
    use async_nats::jetstream::context::GetStreamErrorKind;
    match js.get_stream(name).await {
        Ok(stream) => Ok(Some(stream)),
        Err(e) => match e.kind() {
            GetStreamErrorKind::JetStream(js_err)
                if js_err.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
            {
                Ok(None)
            }
            GetStreamErrorKind::JetStream(js_err) if !is_transient_js(&js_err) => {
                Err(Attempt::Fatal(RelayError::Nats {
                    action: "get the stream's info",
                    source: Box::new(e),
                }))
            }
            GetStreamErrorKind::EmptyName | GetStreamErrorKind::InvalidStreamName => {
                Err(Attempt::Fatal(RelayError::StreamConfig {
                    stream: name.to_string(),
                    reason: e.to_string(),
                }))
            }
            _ => Err(Attempt::Transient(e.to_string())),
        },
    }
}

/// The message at the end of the stream, or another one, decoded.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    pub(crate) sequence: u64,
    pub(crate) header: Header,
    pub(crate) end: u64,
    pub(crate) message_id: String,
}

/// Reads and decodes the message at `sequence`; `Ok(None)` if there is none
/// (deleted, or past the end).
pub(crate) async fn get_message<I>(
    stream: &Stream<I>,
    name: &str,
    sequence: u64,
) -> Result<Option<Stored>, Attempt> {
    use async_nats::jetstream::stream::LastRawMessageErrorKind;
    let raw = match stream.get_raw_message(sequence).await {
        Ok(raw) => raw,
        Err(e) => {
            return match e.kind() {
                LastRawMessageErrorKind::NoMessageFound => Ok(None),
                LastRawMessageErrorKind::JetStream(js_err)
                    if js_err.error_code() == jetstream::ErrorCode::NO_MESSAGE_FOUND =>
                {
                    Ok(None)
                }
                LastRawMessageErrorKind::JetStream(js_err) if !is_transient_js(&js_err) => {
                    Err(Attempt::Fatal(RelayError::Nats {
                        action: "read a stream message",
                        source: Box::new(e),
                    }))
                }
                _ => Err(Attempt::Transient(e.to_string())),
            };
        }
    };
    let message = Message::parse(&raw.payload).map_err(|source| RelayError::BadMessage {
        stream: name.to_string(),
        sequence,
        source,
    })?;
    let message_id = raw
        .headers
        .get(async_nats::header::NATS_MESSAGE_ID)
        .map(|v| v.as_str().to_string())
        .ok_or_else(|| RelayError::BadMessage {
            stream: name.to_string(),
            sequence,
            source: FormatError::Field {
                what: "no Nats-Msg-Id header",
            },
        })?;
    Ok(Some(Stored {
        sequence,
        header: *message.header(),
        end: message.end_position(),
        message_id,
    }))
}

/// The stream's sequence range `(first, last)`; `last == 0` when empty.
pub(crate) async fn sequences(js: &jetstream::Context, name: &str) -> Result<(u64, u64), Attempt> {
    let mut stream = get_stream(js, name).await?.ok_or_else(|| {
        Attempt::Fatal(RelayError::StreamConfig {
            stream: name.to_string(),
            reason: "does not exist".into(),
        })
    })?;
    let info = stream
        .info()
        .await
        .map_err(|e| Attempt::Transient(e.to_string()))?;
    Ok((info.state.first_sequence, info.state.last_sequence))
}

/// The stream's last message, decoded; `None` when the stream is empty.
pub(crate) async fn last_message(
    js: &jetstream::Context,
    name: &str,
) -> Result<Option<Stored>, Attempt> {
    // A message can be appended between the two requests; the loop takes
    // the last one it can read.
    loop {
        let (_, last) = sequences(js, name).await?;
        if last == 0 {
            return Ok(None);
        }
        let stream = js
            .get_stream_no_info(name)
            .await
            .map_err(|e| Attempt::Transient(e.to_string()))?;
        if let Some(stored) = get_message(&stream, name, last).await? {
            return Ok(Some(stored));
        }
    }
}

/// The first stream sequence whose message ends after `position`
/// (messages are in position order, so this is a binary search); `None` if
/// every message ends at or before it. Returns the message too.
pub(crate) async fn first_ending_after(
    js: &jetstream::Context,
    name: &str,
    position: u64,
) -> Result<(u64, Option<Stored>), Attempt> {
    let (first, last) = sequences(js, name).await?;
    if last == 0 || last < first {
        return Ok((last + 1, None));
    }
    let stream = js
        .get_stream_no_info(name)
        .await
        .map_err(|e| Attempt::Transient(e.to_string()))?;
    let (mut lo, mut hi) = (first, last + 1);
    let mut found = None;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        // A message may be missing (removed by the stream's limits): take
        // the next one that exists.
        let mut probe = mid;
        let stored = loop {
            if probe > last {
                break None;
            }
            match get_message(&stream, name, probe).await? {
                Some(s) => break Some(s),
                None => probe += 1,
            }
        };
        match stored {
            Some(s) if s.end > position => {
                hi = mid;
                found = Some(s);
            }
            Some(s) => lo = s.sequence + 1,
            None => hi = mid,
        }
    }
    // `found` is the message at the smallest probed sequence ending after
    // `position`; the search converges on it.
    match found {
        Some(s) => Ok((s.sequence, Some(s))),
        None => Ok((last + 1, None)),
    }
}
