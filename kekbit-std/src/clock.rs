//! The operating system's clock, in a channel's tick unit.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kekbit_nostd::{Clock, TickUnit};

/// Wall-clock time as ticks of a channel's unit since the Unix epoch.
///
/// Every process on a machine counts the same ticks from the same epoch, so
/// a reader in one process can tell how long ago a writer in another
/// heartbeated ([`ChannelReader::heartbeat_age`](crate::ChannelReader::heartbeat_age)),
/// and recognises a long-dead writer at once. A time before the epoch reads
/// as 0.
///
/// # Example
///
/// ```
/// use kekbit_nostd::{Clock, TickUnit};
/// use kekbit_std::SystemClock;
///
/// let millis = SystemClock::new(TickUnit::Millis).now();
/// let secs = SystemClock::new(TickUnit::Seconds).now();
/// assert!(millis / 1000 >= secs && millis / 1000 - secs <= 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemClock {
    unit: TickUnit,
}

impl SystemClock {
    /// A clock counting ticks of `unit`; the type's example shows it.
    pub const fn new(unit: TickUnit) -> Self {
        Self { unit }
    }

    /// The unit this clock counts.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::TickUnit;
    /// # use kekbit_std::SystemClock;
    /// assert_eq!(SystemClock::new(TickUnit::Micros).unit(), TickUnit::Micros);
    /// ```
    pub const fn unit(&self) -> TickUnit {
        self.unit
    }
}

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        to_ticks(since_epoch, self.unit)
    }

    fn epoch_time(&self) -> bool {
        true
    }
}

/// `duration` in whole ticks of `unit`, saturating; 64-bit arithmetic only
/// (a 128-bit division would cost more than the clock read).
pub(crate) fn to_ticks(duration: Duration, unit: TickUnit) -> u64 {
    let per_tick = unit.nanos();
    duration
        .as_secs()
        .saturating_mul(1_000_000_000 / per_tick)
        .saturating_add(u64::from(duration.subsec_nanos()) / per_tick)
}

/// `ticks` of `unit` as a duration, saturating.
pub(crate) fn to_duration(ticks: u64, unit: TickUnit) -> Duration {
    let nanos = u128::from(ticks) * u128::from(unit.nanos());
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    Duration::new(secs, (nanos % 1_000_000_000) as u32)
}

/// Nanoseconds since the Unix epoch (saturating; 0 before it), from the
/// kernel's coarse clock: updated once per scheduler tick (a few
/// milliseconds), about ten times cheaper to read than [`SystemClock`]. The
/// writer reads it on every write to pace heartbeats.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn coarse_nanos() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    if rc != 0 {
        return precise_nanos();
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// Elsewhere the precise clock stands in for the coarse one.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn coarse_nanos() -> u64 {
    precise_nanos()
}

fn precise_nanos() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    to_ticks(since_epoch, TickUnit::Nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_round_trip() {
        let d = Duration::new(3, 250_000_000);
        assert_eq!(to_ticks(d, TickUnit::Millis), 3250);
        assert_eq!(to_duration(3250, TickUnit::Millis), d);
        assert_eq!(to_ticks(d, TickUnit::Seconds), 3);
        assert_eq!(to_duration(u64::MAX, TickUnit::Seconds).as_secs(), u64::MAX);
    }

    #[test]
    #[cfg_attr(miri, ignore)] // calls into the OS clock
    fn coarse_clock_tracks_the_precise_one() {
        for unit in [TickUnit::Millis, TickUnit::Micros, TickUnit::Nanos] {
            let precise = SystemClock::new(unit).now();
            let coarse = coarse_nanos() / unit.nanos();
            let slack = to_ticks(Duration::from_millis(100), unit);
            assert!(
                coarse.abs_diff(precise) < slack,
                "{unit:?}: {coarse} vs {precise}"
            );
        }
    }
}
