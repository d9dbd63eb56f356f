//! Time, as the caller supplies it: `no_std` has no clock of its own.

/// The unit of every time field in a channel: timeout, creation time, heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u32)]
pub enum TickUnit {
    /// Nanoseconds.
    Nanos = 0,
    /// Microseconds.
    Micros = 1,
    /// Milliseconds: the default, and what `kekbit-std`'s clock counts since
    /// the Unix epoch.
    Millis = 2,
    /// Seconds.
    Seconds = 3,
}

impl TickUnit {
    /// The unit's code in the header.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(kekbit_nostd::TickUnit::Micros.code(), 1);
    /// ```
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// The unit for a header code, if the code is defined.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::TickUnit;
    /// assert_eq!(TickUnit::from_code(2), Some(TickUnit::Millis));
    /// assert_eq!(TickUnit::from_code(9), None);
    /// ```
    pub const fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(Self::Nanos),
            1 => Some(Self::Micros),
            2 => Some(Self::Millis),
            3 => Some(Self::Seconds),
            _ => None,
        }
    }

    /// Nanoseconds in one tick.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(kekbit_nostd::TickUnit::Millis.nanos(), 1_000_000);
    /// ```
    pub const fn nanos(self) -> u64 {
        match self {
            Self::Nanos => 1,
            Self::Micros => 1_000,
            Self::Millis => 1_000_000,
            Self::Seconds => 1_000_000_000,
        }
    }
}

/// A monotonic-enough source of time, in the channel's [`TickUnit`].
///
/// The writer stamps heartbeats with it and readers judge abandonment with
/// it. Readers detect a silent writer even when their clock and the
/// writer's differ, one timeout after they start watching; when both sides
/// count the same ticks from the same epoch (as `kekbit-std`'s system clock
/// does) they also recognise a long-dead writer at once.
///
/// # Example
///
/// ```
/// use core::cell::Cell;
/// use kekbit_nostd::Clock;
///
/// /// A clock driven by a timer interrupt, here by hand.
/// struct Ticks(Cell<u64>);
/// impl Clock for Ticks {
///     fn now(&self) -> u64 {
///         self.0.get()
///     }
/// }
/// let clock = Ticks(Cell::new(5));
/// assert_eq!(clock.now(), 5);
/// ```
pub trait Clock {
    /// The current time, in ticks of the channel's unit.
    fn now(&self) -> u64;

    /// Whether [`now`](Clock::now) counts ticks since the Unix epoch, as
    /// every process on a machine can. When it does and the channel's header
    /// says its writer's clock does too ([`FLAG_EPOCH_TIME`](crate::format::FLAG_EPOCH_TIME)),
    /// a reader judges a heartbeat's age from its value alone. The default
    /// is `false`: a clock of its own, like a firmware tick counter.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::Clock;
    /// struct Uptime;
    /// impl Clock for Uptime { fn now(&self) -> u64 { 0 } }
    /// assert!(!Uptime.epoch_time());
    /// ```
    fn epoch_time(&self) -> bool {
        false
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> u64 {
        (**self).now()
    }
    fn epoch_time(&self) -> bool {
        (**self).epoch_time()
    }
}
