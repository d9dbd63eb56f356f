//! How a thread that polls a journal waits when there is nothing new.

use std::time::Duration;

/// How the relay's journal-polling thread waits for new records.
///
/// Journals signal nothing: readers poll. Spinning gives the lowest latency
/// and burns a core; sleeping frees the core and adds up to the sleep.
///
/// ```
/// use std::time::Duration;
/// use kekbit_relay::IdleStrategy;
/// let low_latency = IdleStrategy::Yield;
/// let frugal = IdleStrategy::Backoff { max_sleep: Duration::from_millis(1) };
/// assert_ne!(low_latency, frugal);
/// assert_eq!(IdleStrategy::default(), frugal);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleStrategy {
    /// Spin on the CPU.
    Spin,
    /// Give the CPU to other threads between polls (`sched_yield`).
    Yield,
    /// Spin a little, yield a little, then sleep, doubling from 20 µs up to
    /// `max_sleep`.
    Backoff {
        /// The longest sleep, which bounds the latency it adds.
        max_sleep: Duration,
    },
}

impl Default for IdleStrategy {
    fn default() -> Self {
        Self::Backoff {
            max_sleep: Duration::from_millis(1),
        }
    }
}

impl IdleStrategy {
    /// Waits after `rounds` empty polls in a row.
    pub(crate) fn wait(self, rounds: u32) {
        match self {
            Self::Spin => std::hint::spin_loop(),
            Self::Yield => std::thread::yield_now(),
            Self::Backoff { max_sleep } => {
                if rounds < 64 {
                    std::hint::spin_loop();
                } else if rounds < 128 {
                    std::thread::yield_now();
                } else {
                    let shift = (rounds - 128).min(10);
                    std::thread::sleep((Duration::from_micros(20) * (1 << shift)).min(max_sleep));
                }
            }
        }
    }
}
