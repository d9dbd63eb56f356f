//! Opening a channel file read-only, and reading it with waiting.

use std::fs::OpenOptions;
use std::io;
use std::iter::FusedIterator;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kekbit_nostd::format::HEADER_LEN;
#[cfg(test)]
use kekbit_nostd::format::{HEARTBEAT_HI_OFFSET, HEARTBEAT_LO_OFFSET};
use kekbit_nostd::{Header, Region};
use kekbit_nostd::{HeaderError, ReadError, Reader, Records, SeekError, Status};

use crate::clock::{SystemClock, to_duration};
use crate::error::{ChannelError, TrustError};
use crate::location::{check_layout, storage_path};
use crate::mapping::MappedRegion;
use crate::trust;
use crate::wait::{WaitStrategy, Waiter};

/// The longest pause between two looks for a channel that does not exist yet.
const OPEN_POLL_MAX: Duration = Duration::from_millis(10);

/// A channel file mapped read-only: hands out [`ChannelReader`]s.
///
/// Opening checks the header (signature, version, checksum, fields) and
/// that the file's length is exactly the header's size plus its record
/// area, so a damaged file gives a typed error, never a panic or a fault.
/// What no check of the bytes can catch is a file changed or truncated
/// while it is mapped: as with any memory-mapped file, a read past its new
/// end kills the process with `SIGBUS`. Only the channel's writer may
/// change the file, and nobody may shorten it; so the safe opens map only
/// files that nobody but this user or root can write (see
/// [`open`](Self::open)), and [`open_shared`](Self::open_shared) is
/// `unsafe`.
///
/// Any number of readers, in any threads, can read one `ShmReader`; each
/// has its own position. Records they return borrow this mapping and
/// cannot outlive it.
///
/// # Example
///
/// ```
/// use kekbit_nostd::ChannelConfig;
/// use kekbit_std::{ShmReader, ShmWriter};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("c.kekbit");
/// let mut writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?;
/// writer.write(b"a")?;
/// writer.write(b"b")?;
///
/// let channel = ShmReader::open(&path)?;
/// let mut first = channel.reader()?;
/// let mut second = channel.reader()?;
/// let a = first.try_read()?.unwrap();
/// let b = first.try_read()?.unwrap(); // `a` is still valid: it borrows `channel`
/// assert_eq!((a, b), (&b"a"[..], &b"b"[..]));
/// assert_eq!(second.try_read()?, Some(&b"a"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A record cannot outlive its mapping (kekbit 0.3's records could):
///
/// ```compile_fail,E0597
/// # use kekbit_std::ShmReader;
/// # fn leak(path: &std::path::Path) -> Result<&'static [u8], kekbit_std::ChannelError> {
/// let record = {
///     let channel = ShmReader::open(path)?;
///     let mut reader = channel.reader()?;
///     reader.try_read()?.unwrap_or_default()
/// }; // `channel` is unmapped here, while `record` would still point into it
/// # Ok(record)
/// # }
/// ```
#[derive(Debug)]
pub struct ShmReader {
    region: MappedRegion,
    header: Header,
    path: PathBuf,
    /// The file's device and inode, to tell it from a file that later takes
    /// its name.
    file_id: (u64, u64),
}

impl ShmReader {
    /// Opens the channel at `path` read-only; fails at once if it is not
    /// there ([`ChannelError::NotFound`]) or not valid.
    ///
    /// # Who may write the file
    ///
    /// Records are `&[u8]` borrows of a shared mapping of the file, so they
    /// stay as read only while nobody but the channel's writer changes the
    /// file, and nobody truncates it (a read past a new end is `SIGBUS`).
    /// That is why `open` maps only a file that nobody but this process's
    /// user (or root) can write. On the opened descriptor, not the path, it
    /// checks that the file's owner is the effective user or root, and that
    /// its mode gives group and others no write permission. A file that
    /// fails gets [`ChannelError::Untrusted`], which says which. A symbolic
    /// link at `path` is refused too (the file is opened with
    /// `O_NOFOLLOW`): give the real path. To read a channel other users may
    /// write, a group's say, use the `unsafe`
    /// [`open_shared`](Self::open_shared).
    ///
    /// What the check cannot exclude is a process of the same user (or
    /// root) that deliberately writes or truncates the file while it is
    /// mapped. That is the same class as writing this process's memory
    /// through `/proc/self/mem`, which Rust does not count as unsafety: the
    /// operating system lets a user change their own processes in ways no
    /// language can prevent. Permissions are checked when the file is
    /// opened: a process that opened it for writing while it was shared
    /// keeps that access after its mode is narrowed.
    ///
    /// Whatever bytes the file holds, the reader never panics, never reads
    /// outside the mapping and never hangs: damage is a typed error.
    ///
    /// # Example
    ///
    /// ```
    /// use std::os::unix::fs::PermissionsExt;
    /// use kekbit_std::{ChannelError, ShmReader, TrustError};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("not-a-channel");
    /// std::fs::write(&path, [0u8; 4096])?;
    /// std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    /// let err = ShmReader::open(&path).unwrap_err();
    /// assert!(matches!(err, ChannelError::Header { .. }));
    /// println!("{err}"); // names the path, then what is wrong
    ///
    /// // A file the group may write is refused before it is mapped.
    /// std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))?;
    /// let err = ShmReader::open(&path).unwrap_err();
    /// assert!(matches!(
    ///     err,
    ///     ChannelError::Untrusted { source: TrustError::Writable { mode: 0o660 }, .. }
    /// ));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ChannelError> {
        Self::open_as(path.as_ref(), Trust::OwnerOnly)
    }

    pub(crate) fn open_as(path: &Path, trust: Trust) -> Result<Self, ChannelError> {
        // Non-blocking, so that a FIFO at the path cannot hang the open; it
        // changes nothing for a regular file. Never through a link at the
        // path, whose target whoever controls the link could change.
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    ChannelError::NotFound {
                        path: path.to_path_buf(),
                    }
                } else if e.raw_os_error() == Some(libc::ELOOP) && is_symlink(path) {
                    ChannelError::Untrusted {
                        path: path.to_path_buf(),
                        source: TrustError::Symlink,
                    }
                } else {
                    ChannelError::io(path, "open the channel", e)
                }
            })?;
        // `fstat` of the descriptor: what is checked is what gets mapped.
        let metadata = file
            .metadata()
            .map_err(|e| ChannelError::io(path, "read the channel's metadata", e))?;
        if !metadata.is_file() {
            let e = io::Error::new(io::ErrorKind::InvalidInput, "not a regular file");
            return Err(ChannelError::io(path, "open the channel", e));
        }
        if trust == Trust::OwnerOnly {
            trust::check(&metadata).map_err(|source| ChannelError::Untrusted {
                path: path.to_path_buf(),
                source,
            })?;
        }
        let file_len = metadata.len();
        let header_error = |source| ChannelError::Header {
            path: path.to_path_buf(),
            source,
        };
        if file_len < HEADER_LEN as u64 {
            return Err(header_error(HeaderError::Truncated {
                len: file_len as usize,
                needed: HEADER_LEN,
            }));
        }
        let Ok(len) = usize::try_from(file_len) else {
            return Err(ChannelError::LengthMismatch {
                path: path.to_path_buf(),
                file_len,
                expected: usize::MAX as u64,
            });
        };
        let region = MappedRegion::map(&file, len, false).map_err(|e| e.at(path))?;
        let header = *Reader::open(&region).map_err(header_error)?.header();
        let expected = HEADER_LEN as u64 + u64::from(header.capacity_bytes);
        if file_len != expected {
            return Err(ChannelError::LengthMismatch {
                path: path.to_path_buf(),
                file_len,
                expected,
            });
        }
        Ok(Self {
            region,
            header,
            path: path.to_path_buf(),
            file_id: (metadata.dev(), metadata.ino()),
        })
    }

    /// The mapped file's device and inode numbers.
    pub(crate) fn file_id(&self) -> (u64, u64) {
        self.file_id
    }

    /// Opens the channel at `path`, waiting up to `timeout` for it to
    /// appear: for a reader started before its writer.
    ///
    /// Only a missing channel is waited for; a damaged one, or one that
    /// [`open`](Self::open) does not trust, fails at once.
    /// Past the deadline it returns [`ChannelError::Timeout`].
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use kekbit_std::{ChannelError, ShmReader};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let err = ShmReader::open_timeout(dir.path().join("late.kekbit"), Duration::from_millis(20));
    /// assert!(matches!(err, Err(ChannelError::Timeout { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_timeout(path: impl AsRef<Path>, timeout: Duration) -> Result<Self, ChannelError> {
        Self::open_waiting(
            path.as_ref(),
            deadline_after(timeout),
            Trust::OwnerOnly,
            None,
        )
    }

    /// Opens the channel at `path`, waiting until `deadline` for it to
    /// appear; as [`open_timeout`](Self::open_timeout).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use kekbit_nostd::ChannelConfig;
    /// use kekbit_std::{ShmReader, ShmWriter};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("c.kekbit");
    /// let _writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// let channel = ShmReader::open_until(&path, Instant::now() + Duration::from_secs(1))?;
    /// assert_eq!(channel.header().capacity_bytes, 4096);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_until(path: impl AsRef<Path>, deadline: Instant) -> Result<Self, ChannelError> {
        Self::open_waiting(path.as_ref(), Some(deadline), Trust::OwnerOnly, None)
    }

    /// Opens the channel at `path` read-only, like [`open`](Self::open),
    /// but also a file that other users may write: one owned by another
    /// user, or whose mode lets group or others write it. A symbolic link
    /// is still refused.
    ///
    /// # Safety
    ///
    /// As for every file mapping (memmap2 states the same contract): the
    /// file must not be modified, in or out of process, while it is mapped,
    /// except by this channel's kekbit writer, and nobody may truncate it.
    /// That holds until the returned `ShmReader` and every record borrowed
    /// from it are dropped. Another process writing the file could change
    /// a record under its `&[u8]` borrow; truncating it turns a read past
    /// the new end into `SIGBUS`.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::ChannelConfig;
    /// use kekbit_std::{ShmReader, WriterOptions};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("team.kekbit");
    /// // Group members may write this channel too.
    /// let mut writer = WriterOptions::new(ChannelConfig::new(1).capacity_bytes(4096))
    ///     .mode(0o660)
    ///     .create(&path)?;
    /// writer.write(b"shared")?;
    /// // SAFETY: only `writer` writes the file, and nobody truncates it.
    /// let channel = unsafe { ShmReader::open_shared(&path)? };
    /// assert_eq!(channel.reader()?.try_read()?, Some(&b"shared"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub unsafe fn open_shared(path: impl AsRef<Path>) -> Result<Self, ChannelError> {
        Self::open_as(path.as_ref(), Trust::Shared)
    }

    /// Opens a channel that other users may write, waiting up to `timeout`
    /// for it to appear: [`open_timeout`](Self::open_timeout) for the files
    /// [`open_shared`](Self::open_shared) opens.
    ///
    /// # Safety
    ///
    /// The contract of [`open_shared`](Self::open_shared): while the
    /// returned `ShmReader` or a record borrowed from it lives, nobody but
    /// this channel's kekbit writer modifies the file, and nobody
    /// truncates it.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use kekbit_std::{ChannelError, ShmReader};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let late = dir.path().join("late.kekbit");
    /// // SAFETY: no channel appears, so nothing is ever mapped.
    /// let err = unsafe { ShmReader::open_shared_timeout(&late, Duration::from_millis(20)) };
    /// assert!(matches!(err, Err(ChannelError::Timeout { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub unsafe fn open_shared_timeout(
        path: impl AsRef<Path>,
        timeout: Duration,
    ) -> Result<Self, ChannelError> {
        Self::open_waiting(path.as_ref(), deadline_after(timeout), Trust::Shared, None)
    }

    /// Opens a channel that other users may write, waiting until
    /// `deadline` for it to appear: [`open_until`](Self::open_until) for
    /// the files [`open_shared`](Self::open_shared) opens.
    ///
    /// # Safety
    ///
    /// The contract of [`open_shared`](Self::open_shared): while the
    /// returned `ShmReader` or a record borrowed from it lives, nobody but
    /// this channel's kekbit writer modifies the file, and nobody
    /// truncates it.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use kekbit_nostd::ChannelConfig;
    /// use kekbit_std::{ShmReader, WriterOptions};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("c.kekbit");
    /// let _writer = WriterOptions::new(ChannelConfig::new(1).capacity_bytes(4096))
    ///     .mode(0o664)
    ///     .create(&path)?;
    /// let deadline = Instant::now() + Duration::from_secs(1);
    /// // SAFETY: only `_writer` writes the file, and nobody truncates it.
    /// let channel = unsafe { ShmReader::open_shared_until(&path, deadline)? };
    /// assert_eq!(channel.header().capacity_bytes, 4096);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub unsafe fn open_shared_until(
        path: impl AsRef<Path>,
        deadline: Instant,
    ) -> Result<Self, ChannelError> {
        Self::open_waiting(path.as_ref(), Some(deadline), Trust::Shared, None)
    }

    /// Opens the channel at `path` as `trust` allows, waiting until
    /// `deadline` (or for ever) for it, and for `root`'s layout if given,
    /// to appear.
    fn open_waiting(
        path: &Path,
        deadline: Option<Instant>,
        trust: Trust,
        root: Option<&Path>,
    ) -> Result<Self, ChannelError> {
        let start = Instant::now();
        let mut pause = Duration::from_micros(100);
        let attempt = || {
            if let Some(root) = root {
                check_layout(root, path)?;
            }
            Self::open_as(path, trust)
        };
        loop {
            match attempt() {
                Err(ChannelError::NotFound { path }) => {
                    let now = Instant::now();
                    if deadline.is_some_and(|d| now >= d) {
                        return Err(ChannelError::Timeout {
                            path,
                            waited: now - start,
                        });
                    }
                    let left = deadline.map_or(pause, |d| d - now);
                    std::thread::sleep(pause.min(left));
                    pause = (pause * 2).min(OPEN_POLL_MAX);
                }
                other => return other,
            }
        }
    }

    /// A reader at the first record, waiting with the default
    /// [`WaitStrategy`].
    ///
    /// It re-validates the header, which never changes once published; an
    /// error here means something other than the writer overwrote it.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::{ShmReader, ShmWriter};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// # let mut writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// writer.write(b"x")?;
    /// let channel = ShmReader::open(&path)?;
    /// let mut reader = channel.reader()?;
    /// assert_eq!(reader.try_read()?, Some(&b"x"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reader(&self) -> Result<ChannelReader<'_>, ChannelError> {
        let reader = Reader::open(&self.region).map_err(|source| ChannelError::Header {
            path: self.path.clone(),
            source,
        })?;
        Ok(ChannelReader {
            reader,
            path: &self.path,
            wait: WaitStrategy::default(),
            clock: SystemClock::new(self.header.tick_unit),
        })
    }

    /// The channel's header.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::{ShmReader, ShmWriter};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// # let mut writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// let channel = ShmReader::open(&path)?;
    /// assert_eq!(channel.header().capacity_bytes, 4096);
    /// assert_eq!(channel.path(), path);
    /// assert_eq!(channel.file_len(), 192 + 4096);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The channel's path; see [`header`](Self::header) for an example.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's length in bytes: header plus record area; see
    /// [`header`](Self::header) for an example.
    pub fn file_len(&self) -> usize {
        self.region.len()
    }

    /// The read-only mapping, for the core's own readers and
    /// [`Poller`](kekbit_nostd::Poller).
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::{ShmReader, ShmWriter};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// # let mut writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// use kekbit_nostd::{Poller, Reader};
    /// writer.write(b"polled")?;
    /// let channel = ShmReader::open(&path)?;
    /// assert!(!channel.region().is_writable());
    /// let mut poller = Poller::<_, 4>::new();
    /// let id = poller.add(Reader::open(channel.region())?).unwrap();
    /// assert_eq!(poller.poll(), Some((id, Ok(&b"polled"[..]))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn region(&self) -> &MappedRegion {
        &self.region
    }
}

/// Opens channel `channel_id` under `root` read-only, failing at once if it
/// does not exist: kekbit 0.3's entry point.
///
/// The root and the channel's folder in it must be folders that nobody but
/// this user or root can change (see [`default_root`](crate::default_root)),
/// and the file must pass [`ShmReader::open`]'s check; otherwise
/// [`ChannelError::Untrusted`] names the one that failed.
///
/// # Example
///
/// ```
/// use kekbit_std::{ChannelError, shm_reader};
/// let tmp = tempfile::tempdir()?;
/// let root = tmp.path().join("kekbit"); // not made yet
/// assert!(matches!(shm_reader(&root, 9), Err(ChannelError::NotFound { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn shm_reader(root: &Path, channel_id: u64) -> Result<ShmReader, ChannelError> {
    let path = storage_path(root, channel_id);
    check_layout(root, &path)?;
    ShmReader::open(path)
}

/// Opens channel `channel_id` under `root` read-only, waiting up to
/// `timeout` for its writer to create it (and its folders). The root, the
/// channel's folder and the file are checked as by [`shm_reader`]; one
/// that fails the check is refused at once.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use kekbit_nostd::ChannelConfig;
/// use kekbit_std::{shm_writer, try_shm_reader};
///
/// let tmp = tempfile::tempdir()?;
/// let root = tmp.path().join("kekbit");
/// let writer_root = root.clone();
/// let writer = std::thread::spawn(move || {
///     std::thread::sleep(Duration::from_millis(20));
///     shm_writer(&writer_root, &ChannelConfig::new(5).capacity_bytes(4096)).map(drop)
/// });
/// // Waits for the root, the channel's folder and the file to appear.
/// let channel = try_shm_reader(&root, 5, Duration::from_secs(10))?;
/// assert_eq!(channel.header().channel_id, 5);
/// writer.join().unwrap()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn try_shm_reader(
    root: &Path,
    channel_id: u64,
    timeout: Duration,
) -> Result<ShmReader, ChannelError> {
    let path = storage_path(root, channel_id);
    ShmReader::open_waiting(&path, deadline_after(timeout), Trust::OwnerOnly, Some(root))
}

/// Which files an open maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trust {
    /// Only what nobody but this user or root can write: the safe opens.
    OwnerOnly,
    /// Also what other users may write: the `unsafe` `_shared` opens.
    Shared,
}

/// `timeout` from now; `None` (for ever) past what `Instant` can hold.
fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Whether `path` itself is a symbolic link (not followed).
fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Opens the channel file at `path` read-only, failing at once; the same
/// as [`ShmReader::open`].
///
/// # Example
///
/// ```
/// # use kekbit_std::{open_reader, ChannelError};
/// assert!(matches!(open_reader("/no/such.kekbit"), Err(ChannelError::NotFound { .. })));
/// ```
pub fn open_reader(path: impl AsRef<Path>) -> Result<ShmReader, ChannelError> {
    ShmReader::open(path)
}

/// A reader of a mapped channel, with waiting: the core
/// [`Reader`](kekbit_nostd::Reader) plus a [`WaitStrategy`] and the
/// [`SystemClock`].
///
/// Records borrow the [`ShmReader`] (`'a`), not this reader, so several can
/// be held at once, but none outlives the mapping.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use kekbit_nostd::ChannelConfig;
/// use kekbit_std::{ShmReader, ShmWriter, WaitStrategy};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("c.kekbit");
/// let mut writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?;
/// let channel = ShmReader::open(&path)?;
/// let mut reader = channel.reader()?.with_wait_strategy(WaitStrategy::Yield);
///
/// assert_eq!(reader.read_timeout(Duration::from_millis(5))?, None); // nothing yet
/// writer.write(b"now")?;
/// assert_eq!(reader.read_timeout(Duration::from_secs(5))?, Some(&b"now"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ChannelReader<'a> {
    reader: Reader<'a, MappedRegion>,
    path: &'a Path,
    wait: WaitStrategy,
    clock: SystemClock,
}

impl<'a> ChannelReader<'a> {
    /// This reader, waiting with `strategy`.
    #[must_use]
    pub fn with_wait_strategy(mut self, strategy: WaitStrategy) -> Self {
        self.wait = strategy;
        self
    }

    /// Changes how this reader waits.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::{ShmReader, ShmWriter};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// # let mut writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// use kekbit_std::WaitStrategy;
    /// let channel = ShmReader::open(&path)?;
    /// let mut reader = channel.reader()?;
    /// assert_eq!(reader.wait_strategy(), WaitStrategy::default());
    /// reader.set_wait_strategy(WaitStrategy::BusySpin);
    /// assert_eq!(reader.wait_strategy(), WaitStrategy::BusySpin);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.wait = strategy;
    }

    /// How this reader waits; see [`set_wait_strategy`](Self::set_wait_strategy).
    pub fn wait_strategy(&self) -> WaitStrategy {
        self.wait
    }

    /// Returns the next record if one is committed, without blocking.
    ///
    /// `Ok(None)`: nothing yet. At the channel's end it returns
    /// [`ChannelError::Read`] with [`ReadError::Closed`] or
    /// [`ReadError::Full`] ([`ChannelError::is_end`]); on damage, the
    /// reader stays put and returns the same error again.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::{ShmReader, ShmWriter};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// # let mut writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// let channel = ShmReader::open(&path)?;
    /// let mut reader = channel.reader()?;
    /// assert_eq!(reader.try_read()?, None);
    /// writer.write(b"one")?;
    /// assert_eq!(reader.try_read()?, Some(&b"one"[..]));
    /// drop(writer);
    /// assert!(reader.try_read().unwrap_err().is_end());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn try_read(&mut self) -> Result<Option<&'a [u8]>, ChannelError> {
        self.reader.try_read().map_err(|e| self.read_error(e))
    }

    /// Returns the next record, waiting up to `timeout` for one; `Ok(None)`
    /// if none came. Errors as [`try_read`](Self::try_read), and
    /// [`ChannelError::Abandoned`] as soon as the writer has been silent
    /// past the channel's timeout, so even `Duration::MAX` never hangs on a
    /// dead writer (unless the channel has no timeout). The type's example
    /// shows it.
    pub fn read_timeout(&mut self, timeout: Duration) -> Result<Option<&'a [u8]>, ChannelError> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.read_until(deadline),
            None => self.read_until_inner(None),
        }
    }

    /// Returns the next record, waiting until `deadline` for one;
    /// `Ok(None)` if none came, [`ChannelError::Abandoned`] if the writer
    /// died meanwhile. A sleeping [`WaitStrategy`] never sleeps past the
    /// deadline, whatever its `max_sleep`.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::{ShmReader, ShmWriter};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// # let writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// # let channel = ShmReader::open(&path)?;
    /// let mut reader = channel.reader()?;
    /// let deadline = Instant::now() + Duration::from_millis(10);
    /// assert_eq!(reader.read_until(deadline)?, None);
    /// assert!(Instant::now() >= deadline);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_until(&mut self, deadline: Instant) -> Result<Option<&'a [u8]>, ChannelError> {
        self.read_until_inner(Some(deadline))
    }

    fn read_until_inner(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Option<&'a [u8]>, ChannelError> {
        let mut waiter = Waiter::new(self.wait);
        loop {
            if let Some(record) = self.try_read()? {
                return Ok(Some(record));
            }
            if waiter.pause(deadline) {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    // One last look, so a record that came during the last
                    // pause is not missed.
                    return self.try_read();
                }
                // A dead writer ends the wait, however long the timeout.
                if self.status() == Status::Abandoned {
                    return match self.try_read()? {
                        Some(record) => Ok(Some(record)),
                        None => Err(ChannelError::Abandoned {
                            path: self.path.to_path_buf(),
                        }),
                    };
                }
            }
        }
    }

    /// A blocking iterator: each item waits for the next record.
    ///
    /// It ends after the last record of a closed or full channel. It yields
    /// one error and ends on damage, or with [`ChannelError::Abandoned`]
    /// when the writer has been silent past the channel's timeout, so a
    /// dead writer never hangs it (with a timeout of 0 it waits forever).
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::{ShmReader, ShmWriter};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// let mut writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// let channel = ShmReader::open(&path)?;
    /// let mut reader = channel.reader()?;
    /// let consumer = std::thread::scope(|s| {
    ///     let handle = s.spawn(move || reader.blocking().count());
    ///     for i in 0..10u8 {
    ///         writer.write(&[i]).unwrap();
    ///     }
    ///     drop(writer); // closes: the iterator ends
    ///     handle.join().unwrap()
    /// });
    /// assert_eq!(consumer, 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn blocking(&mut self) -> Blocking<'_, 'a> {
        Blocking {
            reader: self,
            done: false,
        }
    }

    /// The records committed now, without waiting: the core's fused
    /// iterator (ends when caught up; call again to poll).
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::{ShmReader, ShmWriter};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// # let mut writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// let channel = ShmReader::open(&path)?;
    /// let mut reader = channel.reader()?;
    /// writer.write(b"a")?;
    /// writer.write(b"b")?;
    /// assert_eq!(reader.records().count(), 2);
    /// assert_eq!(reader.records().count(), 0); // caught up
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn records(&mut self) -> Records<'_, 'a, MappedRegion> {
        self.reader.records()
    }

    /// The channel's state at this reader's position, judged with the
    /// [`SystemClock`]: `Abandoned` once the writer has neither
    /// heartbeated nor written for longer than the channel's timeout.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{ChannelConfig, Status};
    /// # use kekbit_std::{ShmReader, ShmWriter};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// let writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// let channel = ShmReader::open(&path)?;
    /// let mut reader = channel.reader()?;
    /// assert_eq!(reader.status(), Status::Open);
    /// drop(writer);
    /// assert_eq!(reader.status(), Status::Closed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn status(&mut self) -> Status {
        self.reader.status(&self.clock)
    }

    /// Time since the writer's last heartbeat, by the [`SystemClock`];
    /// `None` if the heartbeat lies in the future or too far back to tell.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::{ShmReader, ShmWriter};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// # let mut writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// # use std::time::Duration;
    /// writer.heartbeat();
    /// let channel = ShmReader::open(&path)?;
    /// let age = channel.reader()?.heartbeat_age().expect("a fresh heartbeat");
    /// assert!(age < Duration::from_secs(60));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn heartbeat_age(&self) -> Option<Duration> {
        self.reader
            .heartbeat_age(&self.clock)
            .map(|ticks| to_duration(ticks, self.clock.unit()))
    }

    /// Offset in the record area of the next record this reader reads.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::{ShmReader, ShmWriter};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// # let mut writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// writer.write(b"first")?;
    /// let second = writer.write(b"second")?;
    /// let channel = ShmReader::open(&path)?;
    /// let mut reader = channel.reader()?;
    /// assert_eq!(reader.position(), 0);
    /// reader.seek(second)?;
    /// assert_eq!(reader.position(), second);
    /// assert_eq!(reader.try_read()?, Some(&b"second"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn position(&self) -> u32 {
        self.reader.position()
    }

    /// Moves to `position`, which must be a record boundary; see
    /// [`Reader::seek`](kekbit_nostd::Reader::seek), and
    /// [`position`](Self::position) for an example.
    pub fn seek(&mut self, position: u32) -> Result<(), SeekError> {
        self.reader.seek(position)
    }

    /// The channel's header.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::{ShmReader, ShmWriter};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// # let mut writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// let channel = ShmReader::open(&path)?;
    /// let reader = channel.reader()?;
    /// assert_eq!(reader.header().channel_id, 1);
    /// assert_eq!(reader.path(), path);
    /// assert_eq!(reader.inner().position(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn header(&self) -> &Header {
        self.reader.header()
    }

    /// The channel's path; see [`header`](Self::header) for an example.
    pub fn path(&self) -> &'a Path {
        self.path
    }

    /// The core reader underneath; see [`header`](Self::header) for an example.
    pub fn inner(&self) -> &Reader<'a, MappedRegion> {
        &self.reader
    }

    fn read_error(&self, source: ReadError) -> ChannelError {
        ChannelError::Read {
            path: self.path.to_path_buf(),
            source,
        }
    }
}

/// Waits for each record in turn; see [`ChannelReader::blocking`].
#[derive(Debug)]
pub struct Blocking<'r, 'a> {
    reader: &'r mut ChannelReader<'a>,
    done: bool,
}

impl<'a> Iterator for Blocking<'_, 'a> {
    type Item = Result<&'a [u8], ChannelError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut waiter = Waiter::new(self.reader.wait);
        loop {
            match self.reader.reader.try_read() {
                Ok(Some(record)) => return Some(Ok(record)),
                Ok(None) => {}
                Err(ReadError::Closed | ReadError::Full) => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(self.reader.read_error(e)));
                }
            }
            if waiter.pause(None) && self.reader.status() == Status::Abandoned {
                self.done = true;
                return Some(Err(ChannelError::Abandoned {
                    path: self.reader.path.to_path_buf(),
                }));
            }
        }
    }
}

impl FusedIterator for Blocking<'_, '_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ShmWriter;

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn an_endless_read_timeout_ends_when_the_writer_is_abandoned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.kekbit");
        let config = config().timeout(50, TickUnit::Millis);
        let writer = ShmWriter::create(&path, &config).unwrap();
        let channel = ShmReader::open(&path).unwrap();
        let mut reader = channel.reader().unwrap();
        std::mem::forget(writer); // dies without closing or beating again
        let started = Instant::now();
        let result = reader.read_timeout(Duration::MAX);
        assert!(
            matches!(result, Err(ChannelError::Abandoned { .. })),
            "{result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(60));
    }
    use kekbit_nostd::{ChannelConfig, TickUnit};

    fn config() -> ChannelConfig {
        ChannelConfig::new(1).capacity_bytes(4096)
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn readers_map_read_only_and_check_the_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.kekbit");
        let writer = ShmWriter::create(&path, &config()).unwrap();
        let channel = ShmReader::open(&path).unwrap();
        assert!(!channel.region().is_writable());
        assert_eq!(channel.file_len(), HEADER_LEN + 4096);
        drop(channel);
        drop(writer);

        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len((HEADER_LEN + 4096 + 8) as u64).unwrap();
        let err = ShmReader::open(&path).unwrap_err();
        assert!(
            matches!(err, ChannelError::LengthMismatch { file_len, expected, .. }
                if file_len == expected + 8),
            "{err}"
        );
        file.set_len(100).unwrap();
        let err = ShmReader::open(&path).unwrap_err();
        assert!(
            matches!(
                err,
                ChannelError::Header {
                    source: HeaderError::Truncated { len: 100, .. },
                    ..
                }
            ),
            "{err}"
        );
    }

    fn set_mode(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn effective_uid() -> u32 {
        // SAFETY: `geteuid` takes no arguments, touches no memory and
        // cannot fail.
        unsafe { libc::geteuid() }
    }

    /// Every safe way to open the file at `path`. The waiting ones wait a
    /// minute for a missing file: a refused one must fail at once.
    fn every_safe_open(path: &Path) -> Vec<Result<ShmReader, ChannelError>> {
        let minute = Duration::from_secs(60);
        vec![
            ShmReader::open(path),
            ShmReader::open_timeout(path, minute),
            ShmReader::open_until(path, Instant::now() + minute),
            open_reader(path),
        ]
    }

    /// Every `unsafe` way, whose contract the caller keeps.
    ///
    /// # Safety
    ///
    /// That of [`ShmReader::open_shared`], for the file at `path`.
    unsafe fn every_shared_open(path: &Path) -> Vec<Result<ShmReader, ChannelError>> {
        let minute = Duration::from_secs(60);
        // SAFETY: forwarded to the caller.
        unsafe {
            vec![
                ShmReader::open_shared(path),
                ShmReader::open_shared_timeout(path, minute),
                ShmReader::open_shared_until(path, Instant::now() + minute),
            ]
        }
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn only_a_file_that_only_this_user_can_write_opens_safely() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.kekbit");
        // Creating a channel that the group may write is allowed.
        let mut writer = crate::WriterOptions::new(config())
            .mode(0o660)
            .create(&path)
            .unwrap();
        writer.write(b"shared").unwrap();
        let started = Instant::now();
        for mode in [0o660, 0o620, 0o602, 0o666, 0o622, 0o1664, 0o4620] {
            set_mode(&path, mode);
            for result in every_safe_open(&path) {
                let err = result.expect_err("opened a file others may write");
                assert!(
                    matches!(err, ChannelError::Untrusted {
                        source: TrustError::Writable { mode: m }, ..
                    } if m == mode),
                    "{mode:o}: {err}"
                );
                assert_eq!(err.path(), path);
                assert!(
                    err.to_string().contains(&format!("mode {mode:04o}")),
                    "{err}"
                );
            }
            // SAFETY: only `writer` writes the file; nobody truncates it.
            for result in unsafe { every_shared_open(&path) } {
                let channel = result.unwrap();
                let mut reader = channel.reader().unwrap();
                assert_eq!(reader.try_read().unwrap(), Some(&b"shared"[..]));
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "a refusal waited"
        );
        for mode in [0o600, 0o644, 0o640, 0o604, 0o400, 0o444, 0o000] {
            set_mode(&path, mode);
            for result in every_safe_open(&path) {
                let channel = result.unwrap_or_else(|e| panic!("{mode:o}: {e}"));
                assert_eq!(channel.header().capacity_bytes, 4096);
            }
        }
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn a_symbolic_link_is_refused_by_every_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.kekbit");
        let _writer = ShmWriter::create(&path, &config()).unwrap();
        let link = dir.path().join("link.kekbit");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let dangling = dir.path().join("dangling.kekbit");
        std::os::unix::fs::symlink(dir.path().join("missing"), &dangling).unwrap();
        let started = Instant::now();
        for link in [&link, &dangling] {
            // SAFETY: nothing but `_writer` writes the channel, and the
            // opens must fail before mapping anything.
            let shared = unsafe { every_shared_open(link) };
            for result in every_safe_open(link).into_iter().chain(shared) {
                let err = result.expect_err("followed a symbolic link");
                assert!(
                    matches!(
                        err,
                        ChannelError::Untrusted {
                            source: TrustError::Symlink,
                            ..
                        }
                    ),
                    "{}: {err}",
                    link.display()
                );
                assert_eq!(err.path(), link);
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "a refusal waited"
        );
        // Links to folders on the way are followed: only the file itself
        // must not be one.
        let alias = dir.path().join("alias");
        std::os::unix::fs::symlink(dir.path(), &alias).unwrap();
        ShmReader::open(alias.join("c.kekbit")).unwrap();
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files, changes owners
    fn a_file_another_user_owns_is_refused() {
        let ours = effective_uid();
        if ours != 0 {
            // Only root can give a file away; tests/tests/permissions.rs
            // covers the other users' view as well.
            eprintln!("skipped: needs root to make a file another user owns");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.kekbit");
        let mut writer = ShmWriter::create(&path, &config()).unwrap();
        writer.write(b"theirs").unwrap();
        // Owned by `nobody`, and only the owner may write it.
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        for result in every_safe_open(&path) {
            let err = result.expect_err("opened a file another user owns");
            assert!(
                matches!(
                    err,
                    ChannelError::Untrusted {
                        source: TrustError::Owner {
                            owner_uid: 65534,
                            our_uid: 0
                        },
                        ..
                    }
                ),
                "{err}"
            );
            assert!(err.to_string().contains("owned by uid 65534"), "{err}");
        }
        // SAFETY: only `writer` writes the file; nobody truncates it.
        for result in unsafe { every_shared_open(&path) } {
            let channel = result.unwrap();
            assert_eq!(
                channel.reader().unwrap().try_read().unwrap(),
                Some(&b"theirs"[..])
            );
        }
        // Root owns it: trusted, as this user and as root.
        std::os::unix::fs::chown(&path, Some(0), None).unwrap();
        for result in every_safe_open(&path) {
            result.unwrap();
        }
    }

    #[test]
    #[cfg_attr(miri, ignore)] // opens files
    fn folders_and_fifos_are_not_channels() {
        let dir = tempfile::tempdir().unwrap();
        let err = ShmReader::open(dir.path()).unwrap_err();
        assert!(matches!(err, ChannelError::Io { .. }), "{err}");
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status();
        if status.is_ok_and(|s| s.success()) {
            let err = ShmReader::open(&fifo).unwrap_err();
            assert!(err.to_string().contains("not a regular file"), "{err}");
        }
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn read_timeout_waits_then_gives_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.kekbit");
        let _writer = ShmWriter::create(&path, &config()).unwrap();
        let channel = ShmReader::open(&path).unwrap();
        for strategy in [
            WaitStrategy::BusySpin,
            WaitStrategy::Yield,
            WaitStrategy::default(),
        ] {
            let mut reader = channel.reader().unwrap().with_wait_strategy(strategy);
            let start = Instant::now();
            assert_eq!(
                reader.read_timeout(Duration::from_millis(20)).unwrap(),
                None
            );
            assert!(start.elapsed() >= Duration::from_millis(20), "{strategy:?}");
        }
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files, reads the clock
    fn a_silent_writer_ends_the_blocking_iterator_as_abandoned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.kekbit");
        let config = config().timeout(100, TickUnit::Millis);
        let start = Instant::now();
        let mut writer = ShmWriter::create(&path, &config).unwrap();
        writer.write(b"last words").unwrap();
        // As if the process died: never closed, never heartbeats again.
        std::mem::forget(writer);
        let channel = ShmReader::open(&path).unwrap();
        let mut reader = channel.reader().unwrap();
        let items: Vec<_> = reader.blocking().collect();
        let waited = start.elapsed();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].as_ref().unwrap(), b"last words");
        assert!(
            matches!(items[1], Err(ChannelError::Abandoned { .. })),
            "{:?}",
            items[1]
        );
        // The writer stamps heartbeats from the coarse clock, a few
        // milliseconds behind: abandonment is that much early at most.
        assert!(waited >= Duration::from_millis(85), "{waited:?}");
        assert_eq!(reader.status(), Status::Abandoned);
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files, reads the clock
    fn a_writer_dead_for_a_day_is_abandoned_at_the_first_look() {
        // Defect 4 of the hardening review: the reader timed the silence
        // from its first call, so a writer dead for a day read as `Open`
        // for one more timeout, though the system clock is shared.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.kekbit");
        let config = config().timeout(60_000, TickUnit::Millis);
        let writer = ShmWriter::create(&path, &config).unwrap();
        // Died a day ago: its last heartbeat is a day old.
        std::mem::forget(writer);
        let day_ago = kekbit_nostd::Clock::now(&SystemClock::new(TickUnit::Millis)) - 86_400_000;
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        let halves = [day_ago as u32, (day_ago >> 32) as u32];
        for (offset, half) in [HEARTBEAT_LO_OFFSET, HEARTBEAT_HI_OFFSET]
            .into_iter()
            .zip(halves)
        {
            std::os::unix::fs::FileExt::write_all_at(&file, &half.to_le_bytes(), offset as u64)
                .unwrap();
        }
        let channel = ShmReader::open(&path).unwrap();
        let mut reader = channel.reader().unwrap();
        assert_eq!(reader.status(), Status::Abandoned);
        let start = Instant::now();
        assert!(matches!(
            reader.read_timeout(Duration::MAX),
            Err(ChannelError::Abandoned { .. })
        ));
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn records_outlive_the_reader_but_not_the_mapping() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.kekbit");
        let mut writer = ShmWriter::create(&path, &config()).unwrap();
        writer.write(b"kept").unwrap();
        let channel = ShmReader::open(&path).unwrap();
        let record = {
            let mut reader = channel.reader().unwrap();
            reader.try_read().unwrap().unwrap()
        };
        assert_eq!(record, b"kept");
    }
}
