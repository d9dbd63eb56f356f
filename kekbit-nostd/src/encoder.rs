//! Encoders: how a record's bytes are produced, straight into the channel.
//!
//! A [`Handler`] writes whatever it adds (a sequence number, a timestamp)
//! and then the record; handlers chain without `Box`:
//! `SequenceHandler::new(0).chain(TimestampHandler::new(clock))`. Records are
//! anything that implements [`Encode`]. Everything writes into a
//! [`RecordSink`], which implements [`embedded_io::Write`], so any
//! embedded-io encoder can target a channel directly.

use embedded_io::{ErrorType, Write};

use crate::clock::Clock;
use crate::error::EncodeError;

/// The bytes of one record being encoded, in place in the channel.
///
/// Writes past the space available are counted but not stored, so the
/// writer learns the record's full length and can report
/// [`WriteError::TooLarge`](crate::WriteError::TooLarge) or
/// [`WriteError::Full`](crate::WriteError::Full) exactly; such a record is
/// never published.
///
/// # Example
///
/// ```
/// use embedded_io::Write;
/// use kekbit_nostd::RecordSink;
///
/// let mut space = [0u8; 4];
/// let mut sink = RecordSink::new(&mut space);
/// sink.write_all(b"abcdef")?;
/// assert_eq!(sink.len(), 6); // counted in full, though only 4 fit
/// assert!(sink.overflowed());
/// # Ok::<(), kekbit_nostd::EncodeError>(())
/// ```
#[derive(Debug)]
pub struct RecordSink<'g> {
    buf: &'g mut [u8],
    /// Bytes written so far, including those past `buf`'s end.
    len: usize,
}

impl<'g> RecordSink<'g> {
    /// A sink writing into `buf`.
    ///
    /// # Example
    ///
    /// ```
    /// use embedded_io::Write;
    /// let mut space = [0u8; 8];
    /// let mut sink = kekbit_nostd::RecordSink::new(&mut space);
    /// sink.write_all(b"hi").unwrap();
    /// assert_eq!(sink.len(), 2);
    /// ```
    pub fn new(buf: &'g mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// Bytes written so far, whether or not they fitted.
    ///
    /// # Example
    ///
    /// ```
    /// use embedded_io::Write;
    /// let mut space = [0u8; 2];
    /// let mut sink = kekbit_nostd::RecordSink::new(&mut space);
    /// sink.write_all(b"abc").unwrap();
    /// assert_eq!(sink.len(), 3);
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written.
    ///
    /// # Example
    ///
    /// ```
    /// let mut space = [0u8; 2];
    /// assert!(kekbit_nostd::RecordSink::new(&mut space).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether more was written than fits.
    ///
    /// # Example
    ///
    /// ```
    /// use embedded_io::Write;
    /// let mut space = [0u8; 2];
    /// let mut sink = kekbit_nostd::RecordSink::new(&mut space);
    /// sink.write_all(b"ab").unwrap();
    /// assert!(!sink.overflowed());
    /// sink.write_all(b"c").unwrap();
    /// assert!(sink.overflowed());
    /// ```
    pub fn overflowed(&self) -> bool {
        self.len > self.buf.len()
    }
}

impl ErrorType for RecordSink<'_> {
    type Error = EncodeError;
}

impl Write for RecordSink<'_> {
    fn write(&mut self, data: &[u8]) -> Result<usize, EncodeError> {
        if let Some(room) = self.buf.get_mut(self.len..) {
            let n = room.len().min(data.len());
            room[..n].copy_from_slice(&data[..n]);
        }
        self.len = self.len.saturating_add(data.len());
        Ok(data.len())
    }

    fn flush(&mut self) -> Result<(), EncodeError> {
        Ok(())
    }
}

/// A value that can be written as the body of a record.
///
/// # Example
///
/// ```
/// use embedded_io::Write;
/// use kekbit_nostd::{Encode, EncodeError, RecordSink};
///
/// struct Point { x: i32, y: i32 }
/// impl Encode for Point {
///     fn encode(&self, sink: &mut RecordSink<'_>) -> Result<(), EncodeError> {
///         sink.write_all(&self.x.to_le_bytes())?;
///         sink.write_all(&self.y.to_le_bytes())
///     }
/// }
/// let mut space = [0u8; 8];
/// Point { x: 1, y: 2 }.encode(&mut RecordSink::new(&mut space))?;
/// assert_eq!(space, [1, 0, 0, 0, 2, 0, 0, 0]);
/// # Ok::<(), EncodeError>(())
/// ```
pub trait Encode {
    /// Writes the value's bytes into `sink`.
    fn encode(&self, sink: &mut RecordSink<'_>) -> Result<(), EncodeError>;
}

impl Encode for [u8] {
    fn encode(&self, sink: &mut RecordSink<'_>) -> Result<(), EncodeError> {
        sink.write_all(self)
    }
}

impl<const N: usize> Encode for [u8; N] {
    fn encode(&self, sink: &mut RecordSink<'_>) -> Result<(), EncodeError> {
        sink.write_all(self)
    }
}

impl Encode for str {
    fn encode(&self, sink: &mut RecordSink<'_>) -> Result<(), EncodeError> {
        sink.write_all(self.as_bytes())
    }
}

impl<T: Encode + ?Sized> Encode for &T {
    fn encode(&self, sink: &mut RecordSink<'_>) -> Result<(), EncodeError> {
        (**self).encode(sink)
    }
}

/// One link in the chain that turns a value into a record.
///
/// A handler writes its own prefix, then the record. Chain handlers with
/// [`Handler::chain`]: each one's prefix comes in chain order, then the record.
///
/// # Example
///
/// ```
/// use kekbit_nostd::{Clock, Handler, RecordSink, SequenceHandler, TimestampHandler};
///
/// struct Fixed;
/// impl Clock for Fixed { fn now(&self) -> u64 { 9 } }
///
/// let mut handler = SequenceHandler::new(1).chain(TimestampHandler::new(Fixed));
/// let mut space = [0u8; 32];
/// let mut sink = RecordSink::new(&mut space);
/// handler.handle(&b"data"[..], &mut sink)?;
/// let (seq, rest) = SequenceHandler::split(&space[..20]).unwrap();
/// let (time, body) = TimestampHandler::<Fixed>::split(rest).unwrap();
/// assert_eq!((seq, time, body), (1, 9, &b"data"[..]));
/// # Ok::<(), kekbit_nostd::EncodeError>(())
/// ```
pub trait Handler {
    /// Writes what this handler adds before the record. The default adds nothing.
    fn prefix(&mut self, sink: &mut RecordSink<'_>) -> Result<(), EncodeError> {
        let _ = sink;
        Ok(())
    }

    /// Writes the prefix, then the record.
    fn handle<E: Encode + ?Sized>(
        &mut self,
        record: &E,
        sink: &mut RecordSink<'_>,
    ) -> Result<(), EncodeError> {
        self.prefix(sink)?;
        record.encode(sink)
    }

    /// Called once the record this handler last encoded was accepted: published,
    /// or staged in a batch (which publishes it). A record that was refused
    /// (too large, no room, an encoder error) never gets this call, so state
    /// such as a sequence number advances only for records readers will see.
    /// The default does nothing.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::{AlignedBuffer, ChannelConfig, Handler, SequenceHandler, SliceRegion, Writer};
    /// let mut buffer = AlignedBuffer::<1024>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1).max_record_len(16))?;
    /// let mut handler = SequenceHandler::new(0);
    /// writer.write_with(&mut handler, "fits")?;
    /// assert!(writer.write_with(&mut handler, "too long for sixteen").is_err());
    /// assert_eq!(handler.next_sequence(), 1); // the refused record took no number
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    fn published(&mut self) {}

    /// This handler, then `next`: both prefixes, in that order, then the record.
    fn chain<B: Handler>(self, next: B) -> ChainedHandler<Self, B>
    where
        Self: Sized,
    {
        ChainedHandler {
            first: self,
            second: next,
        }
    }
}

impl<H: Handler + ?Sized> Handler for &mut H {
    fn prefix(&mut self, sink: &mut RecordSink<'_>) -> Result<(), EncodeError> {
        (**self).prefix(sink)
    }
    fn published(&mut self) {
        (**self).published()
    }
}

/// Writes the record as it is, with nothing added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlainHandler;

impl Handler for PlainHandler {}

/// Prefixes each record with a little-endian `u64` sequence number, counting
/// up by one for every record published: a refused record takes no number,
/// so readers see no gap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SequenceHandler {
    next: u64,
}

impl SequenceHandler {
    /// Numbers records from `first`.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::SequenceHandler;
    /// assert_eq!(SequenceHandler::new(5).next_sequence(), 5);
    /// ```
    pub const fn new(first: u64) -> Self {
        Self { next: first }
    }

    /// The number the next record will carry.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::{Handler, RecordSink, SequenceHandler};
    /// let mut handler = SequenceHandler::new(0);
    /// let mut space = [0u8; 8];
    /// handler.prefix(&mut RecordSink::new(&mut space)).unwrap();
    /// assert_eq!(handler.next_sequence(), 0); // not published yet
    /// handler.published();
    /// assert_eq!(handler.next_sequence(), 1);
    /// ```
    pub const fn next_sequence(&self) -> u64 {
        self.next
    }

    /// Splits a record into its sequence number and the rest; `None` if the
    /// record is shorter than 8 bytes.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::SequenceHandler;
    /// let record = [7, 0, 0, 0, 0, 0, 0, 0, b'x'];
    /// assert_eq!(SequenceHandler::split(&record), Some((7, &b"x"[..])));
    /// assert_eq!(SequenceHandler::split(b"short"), None);
    /// ```
    pub fn split(record: &[u8]) -> Option<(u64, &[u8])> {
        split_u64(record)
    }
}

impl Handler for SequenceHandler {
    fn prefix(&mut self, sink: &mut RecordSink<'_>) -> Result<(), EncodeError> {
        sink.write_all(&self.next.to_le_bytes())
    }
    fn published(&mut self) {
        self.next = self.next.wrapping_add(1);
    }
}

/// Prefixes each record with a little-endian `u64` timestamp from a [`Clock`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimestampHandler<C: Clock> {
    clock: C,
}

impl<C: Clock> TimestampHandler<C> {
    /// Stamps records with `clock`.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::{Clock, Handler, RecordSink, TimestampHandler};
    /// struct Fixed;
    /// impl Clock for Fixed { fn now(&self) -> u64 { 42 } }
    /// let mut space = [0u8; 8];
    /// TimestampHandler::new(Fixed).prefix(&mut RecordSink::new(&mut space)).unwrap();
    /// assert_eq!(u64::from_le_bytes(space), 42);
    /// ```
    pub const fn new(clock: C) -> Self {
        Self { clock }
    }

    /// Splits a record into its timestamp and the rest; `None` if the record
    /// is shorter than 8 bytes.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::{Clock, TimestampHandler};
    /// struct Fixed;
    /// impl Clock for Fixed { fn now(&self) -> u64 { 0 } }
    /// let record = [1, 0, 0, 0, 0, 0, 0, 0];
    /// assert_eq!(TimestampHandler::<Fixed>::split(&record), Some((1, &b""[..])));
    /// ```
    pub fn split(record: &[u8]) -> Option<(u64, &[u8])> {
        split_u64(record)
    }
}

impl<C: Clock> Handler for TimestampHandler<C> {
    fn prefix(&mut self, sink: &mut RecordSink<'_>) -> Result<(), EncodeError> {
        sink.write_all(&self.clock.now().to_le_bytes())
    }
}

/// Two handlers in a row; built by [`Handler::chain`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChainedHandler<A, B> {
    first: A,
    second: B,
}

impl<A: Handler, B: Handler> Handler for ChainedHandler<A, B> {
    fn prefix(&mut self, sink: &mut RecordSink<'_>) -> Result<(), EncodeError> {
        self.first.prefix(sink)?;
        self.second.prefix(sink)
    }
    fn published(&mut self) {
        self.first.published();
        self.second.published();
    }
}

fn split_u64(record: &[u8]) -> Option<(u64, &[u8])> {
    let (head, rest) = record.split_first_chunk::<8>()?;
    Some((u64::from_le_bytes(*head), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_counts_overflow_without_storing_it() {
        let mut space = [0u8; 3];
        let mut sink = RecordSink::new(&mut space);
        sink.write_all(b"ab").unwrap();
        sink.write_all(b"cd").unwrap();
        sink.write_all(b"ef").unwrap();
        assert_eq!(sink.len(), 6);
        assert!(sink.overflowed());
        assert_eq!(&space, b"abc");
    }

    #[test]
    fn sequence_counts_up() {
        let mut handler = SequenceHandler::new(u64::MAX);
        let mut space = [0u8; 16];
        handler
            .handle(&b""[..], &mut RecordSink::new(&mut space))
            .unwrap();
        handler.published();
        handler
            .handle(&b""[..], &mut RecordSink::new(&mut space[8..]))
            .unwrap();
        handler.published();
        assert_eq!(
            SequenceHandler::split(&space),
            Some((u64::MAX, &[0u8; 8][..]))
        );
        assert_eq!(handler.next_sequence(), 1);
        assert_eq!(SequenceHandler::split(&space[..7]), None);
    }
}
