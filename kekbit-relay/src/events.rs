//! What the relay tells its user while it runs: retries, reconnections,
//! resynchronisations. Every retry is reported, so none happens silently.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Something worth a line on stderr.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A request to the server failed; the relay tries again after `delay`.
    Retrying {
        /// What the relay was doing.
        action: String,
        /// Why it failed.
        error: String,
        /// How long it waits before the next try.
        delay: Duration,
    },
    /// The connection to the server was lost; the client reconnects.
    Disconnected,
    /// The client is connected again after a loss.
    Connected,
    /// A publish failed; after draining the acks in flight, the relay
    /// resumes after the stream's last message.
    Resuming {
        /// Why the chain broke.
        error: String,
        /// The position the relay resumes at.
        position: u64,
    },
    /// The puller (re)started its consumer at a stream sequence.
    ConsumerStarted {
        /// The durable consumer's name.
        consumer: String,
        /// The first stream sequence it delivers.
        sequence: u64,
        /// The replica's end position.
        position: u64,
    },
    /// The source journal was closed, and the stream says so.
    SourceClosed {
        /// Where it was closed.
        position: u64,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Retrying {
                action,
                error,
                delay,
            } => {
                write!(f, "{action} failed ({error}); retrying in {delay:?}")
            }
            Self::Disconnected => f.write_str("disconnected from the NATS server; reconnecting"),
            Self::Connected => f.write_str("connected to the NATS server again"),
            Self::Resuming { error, position } => write!(
                f,
                "publish failed ({error}); resuming after the stream's last message, at position {position}"
            ),
            Self::ConsumerStarted {
                consumer,
                sequence,
                position,
            } => write!(
                f,
                "consumer {consumer} starts at stream sequence {sequence} (replica end {position})"
            ),
            Self::SourceClosed { position } => {
                write!(f, "the source journal is closed at position {position}")
            }
        }
    }
}

/// Where events go: a function called on the relay's threads.
pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;

/// The default sink: one line on stderr, `kekbit relay: <event>`.
///
/// ```
/// let sink = kekbit_relay::stderr_events();
/// sink(&kekbit_relay::Event::Connected);
/// ```
pub fn stderr_events() -> EventSink {
    Arc::new(|event: &Event| eprintln!("kekbit relay: {event}"))
}

/// Exponential backoff between retries: 100 ms, doubling, capped.
#[derive(Clone, Debug)]
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(max: Duration) -> Self {
        Self {
            next: Duration::from_millis(100).min(max),
            max,
        }
    }

    /// The next delay.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap() {
        let mut b = Backoff::new(Duration::from_millis(500));
        let delays: Vec<_> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
        let mut b = Backoff::new(Duration::from_millis(10));
        assert_eq!(b.next_delay(), Duration::from_millis(10));
    }
}
