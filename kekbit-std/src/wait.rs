//! How a reader waits for the next record.

use std::time::{Duration, Instant};

/// How a [`ChannelReader`](crate::ChannelReader) waits when no record is
/// ready: chosen per reader, trading CPU for latency.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use kekbit_std::WaitStrategy;
///
/// // Lowest latency, one core burnt per reader:
/// let hot = WaitStrategy::BusySpin;
/// // Spin briefly, then yield, then sleep up to 1 ms between polls:
/// let polite = WaitStrategy::Backoff { spins: 100, yields: 10, max_sleep: Duration::from_millis(1) };
/// assert_ne!(hot, polite);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitStrategy {
    /// Poll in a tight loop with a spin-loop hint: lowest latency, one busy core.
    BusySpin,
    /// Yield the CPU to the scheduler between polls.
    Yield,
    /// Spin `spins` times, then yield `yields` times, then sleep between
    /// polls, doubling the sleep from 1 µs up to `max_sleep`. A record
    /// resets the backoff.
    Backoff {
        /// Polls with a spin-loop hint before yielding.
        spins: u32,
        /// Polls with a yield before sleeping.
        yields: u32,
        /// The longest sleep between polls: the worst added latency.
        max_sleep: Duration,
    },
}

impl Default for WaitStrategy {
    /// `Backoff { spins: 64, yields: 16, max_sleep: 1 ms }`.
    fn default() -> Self {
        Self::Backoff {
            spins: 64,
            yields: 16,
            max_sleep: Duration::from_millis(1),
        }
    }
}

/// One wait in progress: where in the backoff it is.
#[derive(Debug, Clone)]
pub(crate) struct Waiter {
    strategy: WaitStrategy,
    /// Pauses so far in this wait.
    pauses: u32,
    /// The next sleep, for `Backoff`.
    sleep: Duration,
}

/// Busy pauses between two looks at the clock: reading it costs far more
/// than a spin.
const SPINS_PER_CLOCK_CHECK: u32 = 64;

impl Waiter {
    pub(crate) fn new(strategy: WaitStrategy) -> Self {
        Self {
            strategy,
            pauses: 0,
            sleep: Duration::from_micros(1),
        }
    }

    /// Pauses once, as the strategy says, but never sleeps past `deadline`;
    /// returns whether the caller should look at the clock (deadline,
    /// abandonment) before the next poll.
    pub(crate) fn pause(&mut self, deadline: Option<Instant>) -> bool {
        self.pauses = self.pauses.saturating_add(1);
        match self.strategy {
            WaitStrategy::BusySpin => {
                std::hint::spin_loop();
                self.pauses % SPINS_PER_CLOCK_CHECK == 0
            }
            WaitStrategy::Yield => {
                std::thread::yield_now();
                true
            }
            WaitStrategy::Backoff {
                spins,
                yields,
                max_sleep,
            } => {
                if self.pauses <= spins {
                    std::hint::spin_loop();
                    self.pauses % SPINS_PER_CLOCK_CHECK == 0
                } else if self.pauses <= spins.saturating_add(yields) {
                    std::thread::yield_now();
                    true
                } else {
                    let mut sleep = self.sleep.min(max_sleep);
                    if let Some(deadline) = deadline {
                        sleep = sleep.min(deadline.saturating_duration_since(Instant::now()));
                    }
                    std::thread::sleep(sleep);
                    self.sleep = self
                        .sleep
                        .saturating_mul(2)
                        .min(max_sleep.max(Duration::from_micros(1)));
                    true
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_moves_from_spinning_to_sleeping() {
        let mut w = Waiter::new(WaitStrategy::Backoff {
            spins: 2,
            yields: 1,
            max_sleep: Duration::from_micros(4),
        });
        assert!(!w.pause(None)); // spin
        assert!(!w.pause(None)); // spin
        assert!(w.pause(None)); // yield
        for _ in 0..5 {
            assert!(w.pause(None)); // sleeps, capped
        }
        assert_eq!(w.sleep, Duration::from_micros(4));
    }

    #[test]
    #[cfg_attr(miri, ignore)] // sleeps
    fn a_sleep_never_runs_past_the_deadline() {
        let long = Duration::from_secs(30);
        let mut w = Waiter::new(WaitStrategy::Backoff {
            spins: 0,
            yields: 0,
            max_sleep: long,
        });
        w.sleep = long; // as after a long wait
        let start = Instant::now();
        assert!(w.pause(Some(start + Duration::from_millis(10))));
        // Generous for a loaded machine, far below the 30 s sleep.
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
        let start = Instant::now();
        assert!(w.pause(Some(start))); // already past
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn busy_spin_checks_the_clock_now_and_then() {
        let mut w = Waiter::new(WaitStrategy::BusySpin);
        let checks = (0..640).filter(|_| w.pause(None)).count();
        assert_eq!(checks, 10);
    }
}
