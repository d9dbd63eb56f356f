//! Polling several channels at once, for firmware that listens to more
//! than one, with no allocator.

use heapless::Vec;

use crate::error::ReadError;
use crate::reader::Reader;
use crate::region::Region;

/// Round-robin over up to `N` readers: each call to [`Poller::poll`] starts
/// after the channel that produced the last record, so no busy channel
/// starves the others.
///
/// # Example
///
/// ```
/// use kekbit_nostd::{AlignedBuffer, ChannelConfig, Poller, Reader, SliceRegion, Writer};
///
/// let mut a = AlignedBuffer::<512>::new();
/// let mut b = AlignedBuffer::<512>::new();
/// let mut ra = SliceRegion::new(a.as_mut_slice())?;
/// let mut rb = SliceRegion::new(b.as_mut_slice())?;
/// let mut wa = Writer::create(&mut ra, &ChannelConfig::new(1))?;
/// let mut wb = Writer::create(&mut rb, &ChannelConfig::new(2))?;
///
/// let mut poller = Poller::<_, 2>::new();
/// let ia = poller.add(Reader::open(wa.shared_region())?).unwrap();
/// let ib = poller.add(Reader::open(wb.shared_region())?).unwrap();
/// wa.write(b"from a")?;
/// wb.write(b"from b")?;
/// assert_eq!(poller.poll(), Some((ia, Ok(&b"from a"[..]))));
/// assert_eq!(poller.poll(), Some((ib, Ok(&b"from b"[..]))));
/// assert_eq!(poller.poll(), None);
/// # Ok::<(), Box<dyn core::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Poller<'a, R: Region + ?Sized, const N: usize> {
    readers: Vec<Slot<'a, R>, N>,
    /// Index to try first on the next poll.
    next: usize,
}

#[derive(Debug)]
struct Slot<'a, R: Region + ?Sized> {
    reader: Reader<'a, R>,
    /// Whether the channel's end (or damage) was already reported.
    ended: bool,
}

impl<'a, R: Region + ?Sized, const N: usize> Poller<'a, R, N> {
    /// An empty poller.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::{Poller, SliceRegion};
    /// let poller = Poller::<SliceRegion<'_>, 4>::new();
    /// assert!(poller.all_ended()); // nothing to poll
    /// ```
    pub const fn new() -> Self {
        Self {
            readers: Vec::new(),
            next: 0,
        }
    }

    /// Adds a reader and returns its index, or gives it back if `N` are
    /// already polled.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::{AlignedBuffer, ChannelConfig, Poller, Reader, SliceRegion, Writer};
    /// let mut buffer = AlignedBuffer::<512>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// let mut poller = Poller::<_, 1>::new();
    /// let index = poller.add(Reader::open(writer.shared_region())?).unwrap();
    /// assert_eq!(index, 0);
    /// // Full: the reader comes back.
    /// assert!(poller.add(Reader::open(writer.shared_region())?).is_err());
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn add(&mut self, reader: Reader<'a, R>) -> Result<usize, Reader<'a, R>> {
        let index = self.readers.len();
        self.readers
            .push(Slot {
                reader,
                ended: false,
            })
            .map_err(|slot| slot.reader)?;
        Ok(index)
    }

    /// The reader at `index`, to ask its status or position.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::{AlignedBuffer, ChannelConfig, Poller, Reader, SliceRegion, Writer};
    /// let mut buffer = AlignedBuffer::<512>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// let mut poller = Poller::<_, 1>::new();
    /// let index = poller.add(Reader::open(writer.shared_region())?).unwrap();
    /// writer.write(b"x")?;
    /// poller.poll();
    /// assert_eq!(poller.reader(index).unwrap().position(), 16);
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn reader(&mut self, index: usize) -> Option<&mut Reader<'a, R>> {
        self.readers.get_mut(index).map(|slot| &mut slot.reader)
    }

    /// Whether every channel has ended (closed, full or damaged) and been reported.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::{AlignedBuffer, ChannelConfig, Poller, Reader, SliceRegion, Writer};
    /// let mut buffer = AlignedBuffer::<512>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// let mut poller = Poller::<_, 1>::new();
    /// poller.add(Reader::open(writer.shared_region())?).unwrap();
    /// writer.close();
    /// assert!(!poller.all_ended());
    /// assert!(poller.poll().is_some()); // reports the close once
    /// assert!(poller.all_ended());
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn all_ended(&self) -> bool {
        self.readers.iter().all(|slot| slot.ended)
    }

    /// The next record from any channel, with its reader's index; `None`
    /// when no channel has anything new.
    ///
    /// A channel's end or damage is returned once as an error, after which
    /// that channel is skipped.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::{AlignedBuffer, ChannelConfig, Poller, Reader, SliceRegion, Writer};
    /// let mut buffer = AlignedBuffer::<512>::new();
    /// let mut region = SliceRegion::new(buffer.as_mut_slice())?;
    /// let mut writer = Writer::create(&mut region, &ChannelConfig::new(1))?;
    /// let mut poller = Poller::<_, 1>::new();
    /// let index = poller.add(Reader::open(writer.shared_region())?).unwrap();
    /// assert_eq!(poller.poll(), None);
    /// writer.write(b"ping")?;
    /// assert_eq!(poller.poll(), Some((index, Ok(&b"ping"[..]))));
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn poll(&mut self) -> Option<(usize, Result<&'a [u8], ReadError>)> {
        let count = self.readers.len();
        for step in 0..count {
            let index = (self.next + step) % count;
            let slot = &mut self.readers[index];
            if slot.ended {
                continue;
            }
            let result = match slot.reader.try_read() {
                Ok(None) => continue,
                Ok(Some(record)) => Ok(record),
                Err(e) => {
                    slot.ended = true;
                    Err(e)
                }
            };
            self.next = (index + 1) % count;
            return Some((index, result));
        }
        None
    }
}

impl<R: Region + ?Sized, const N: usize> Default for Poller<'_, R, N> {
    fn default() -> Self {
        Self::new()
    }
}
