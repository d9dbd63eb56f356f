//! Creating a channel file and writing to it.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use kekbit_nostd::format::{HEADER_LEN, MARKER_LEN, PAYLOAD_OFFSET, RECORD_ALIGN};
use kekbit_nostd::{ChannelConfig, Clock, Encode, Handler, Header, TickUnit, WriteError, Writer};

use crate::batch::{BatchError, ShmBatch};
use crate::clock::{SystemClock, coarse_nanos};
use crate::creation::{self, NewFile, parent_folder};
use crate::durability::Durability;
use crate::error::ChannelError;
use crate::fault::{self, Step};
use crate::location::{folder_mode, make_folders, prepare_layout, storage_path};
use crate::mapping::MappedRegion;

/// The record area of a channel whose configuration leaves it unset: 1 MiB.
pub const DEFAULT_CAPACITY_BYTES: u32 = 1 << 20;

/// The permissions of a new channel file unless the caller chooses others:
/// read and write for its owner only.
pub const DEFAULT_MODE: u32 = 0o600;

/// How to create a channel file: the core configuration plus what only a
/// file has (permissions, pre-faulting, durability).
///
/// # Example
///
/// ```
/// use kekbit_nostd::{ChannelConfig, TickUnit};
/// use kekbit_std::{Durability, ShmReader, WriterOptions};
///
/// let dir = tempfile::tempdir()?;
/// let config = ChannelConfig::new(1)
///     .capacity_bytes(64 * 1024)
///     .max_record_len(1024)
///     .timeout(1_000, TickUnit::Millis);
/// let mut writer = WriterOptions::new(config)
///     .mode(0o640)
///     .durability(Durability::OnClose)
///     .create_in(dir.path().join("channels"))?;
/// writer.write(b"hello")?;
///
/// let channel = ShmReader::open(writer.path())?;
/// assert_eq!(channel.reader()?.try_read()?, Some(&b"hello"[..]));
/// writer.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterOptions {
    config: ChannelConfig,
    mode: u32,
    prefault: bool,
    durability: Durability,
    create_parents: bool,
}

impl WriterOptions {
    /// Options for a channel configured by `config`, with the defaults:
    /// mode [`DEFAULT_MODE`], pre-faulted, [`Durability::None`].
    ///
    /// A configuration without a capacity gets [`DEFAULT_CAPACITY_BYTES`];
    /// one without a creation time gets the [`SystemClock`]'s time now.
    pub fn new(config: ChannelConfig) -> Self {
        Self {
            config,
            mode: DEFAULT_MODE,
            prefault: true,
            durability: Durability::None,
            create_parents: false,
        }
    }

    /// Sets the new file's permission bits exactly (the umask does not
    /// apply), e.g. `0o644` to let other users read the channel.
    ///
    /// Folders made for the channel (the id layout's under a root, or with
    /// [`create_parents`](Self::create_parents)) get read and search
    /// permission for whoever may read the file, and write permission for
    /// its owner only: `0700` for the default `0600`, `0750` for `0640`.
    ///
    /// A mode that lets group or others write the file (`0o660`) shares the
    /// file with them: readers can then open it only with the `unsafe`
    /// [`ShmReader::open_shared`](crate::ShmReader::open_shared), whose
    /// contract is that nobody but this writer writes it. The writer itself
    /// relies on the same: another process writing the file could change
    /// the bytes of a [`Grant`] under its `&mut [u8]`.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::{ShmReader, WriterOptions};
    /// # let dir = tempfile::tempdir()?;
    /// use std::os::unix::fs::PermissionsExt;
    ///
    /// let writer = WriterOptions::new(ChannelConfig::new(1).capacity_bytes(4096))
    ///     .mode(0o640) // the group may read it
    ///     .create_in(dir.path().join("channels"))?;
    /// let folder = writer.path().parent().unwrap();
    /// assert_eq!(std::fs::metadata(folder)?.permissions().mode() & 0o777, 0o750);
    /// assert!(ShmReader::open(writer.path()).is_ok()); // nobody else may write it
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o7777;
        self
    }

    /// Turns pre-faulting on (the default) or off.
    ///
    /// Pre-faulting reserves the file's space (`posix_fallocate`) and faults
    /// in every page for writing before the header is published, so writes
    /// never pay a page fault, and a full file system is an error at
    /// creation. Turn it off for huge, sparsely used channels: it allocates
    /// all of the file's memory (on tmpfs) or blocks (on disk) at once.
    /// Without it, as with any mapped file, a write to a page the file
    /// system cannot supply (tmpfs full) kills the writer with `SIGBUS`.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::WriterOptions;
    /// # let dir = tempfile::tempdir()?;
    /// // 1 GiB of address space, paid for page by page as it fills.
    /// let writer = WriterOptions::new(ChannelConfig::new(1).capacity_bytes(1 << 30))
    ///     .prefault(false)
    ///     .create(dir.path().join("sparse.kekbit"))?;
    /// assert_eq!(writer.header().capacity_bytes, 1 << 30);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn prefault(mut self, on: bool) -> Self {
        self.prefault = on;
        self
    }

    /// Sets the durability policy; see [`Durability`] for what each survives.
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Whether [`create`](Self::create) makes the missing folders of an
    /// explicit path, as `mkdir -p` does; off by default.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::WriterOptions;
    /// # let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("new/folders/c.kekbit");
    /// let writer = WriterOptions::new(ChannelConfig::new(1).capacity_bytes(4096))
    ///     .create_parents(true)
    ///     .create(&path)?;
    /// assert!(path.exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn create_parents(mut self, on: bool) -> Self {
        self.create_parents = on;
        self
    }

    /// The core configuration these options create channels with.
    pub fn config(&self) -> &ChannelConfig {
        &self.config
    }

    /// Creates channel `config.channel_id` under `root`, at
    /// [`storage_path`]`(root, id)`, making the root and the channel's
    /// folder if they are missing.
    pub fn create_in(&self, root: impl AsRef<Path>) -> Result<ShmWriter, ChannelError> {
        let root = root.as_ref();
        let path = storage_path(root, self.config.channel_id);
        self.create_at(&path, Folders::Layout { root })
    }

    /// Creates a channel file at `path` and returns its writer.
    ///
    /// The file is built and its header written under a temporary name in
    /// the same folder, then published under `path` by a hard link, which
    /// never replaces an existing file: a reader that finds `path` always
    /// finds a complete channel, and of two racing creators exactly one
    /// succeeds; the other gets [`ChannelError::AlreadyExists`]. There is no
    /// lock file.
    ///
    /// The folder must exist: a missing one is
    /// [`ChannelError::FolderNotFound`], so a typing error in the path
    /// creates nothing. [`create_parents`](Self::create_parents) makes
    /// missing folders, as `mkdir -p` does.
    ///
    /// A failed `create` never leaves a channel at `path`, so it can be
    /// retried. Every step that can fail runs before the link, except the
    /// `fsync` of the folders that must follow it (under a [`Durability`]
    /// that syncs at creation); if that fails, the name is removed again
    /// before the error is returned, and the error says so. Should even
    /// the removal fail, `create` succeeds, since the channel is there and
    /// works, and every flush (and `close`) reports that its folder could
    /// not be synced.
    ///
    /// If the process dies between the link and the removal of the
    /// temporary name, a hidden `.*.tmp` file is left in the folder. Errors
    /// name `path`, even those met while the file had its temporary name.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::{ChannelError, WriterOptions};
    /// # let dir = tempfile::tempdir()?;
    /// let options = WriterOptions::new(ChannelConfig::new(1).capacity_bytes(4096));
    /// let path = dir.path().join("c.kekbit");
    /// let _writer = options.create(&path)?;
    /// assert!(matches!(options.create(&path), Err(ChannelError::AlreadyExists { .. })));
    ///
    /// let typo = dir.path().join("no/such/folder/c.kekbit");
    /// assert!(matches!(options.create(&typo), Err(ChannelError::FolderNotFound { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(&self, path: impl AsRef<Path>) -> Result<ShmWriter, ChannelError> {
        let folders = if self.create_parents {
            Folders::Make
        } else {
            Folders::MustExist
        };
        self.create_at(path.as_ref(), folders)
    }

    /// Creates the channel at `path`, in a folder that `folders` says how
    /// to find or make.
    fn create_at(&self, path: &Path, folders: Folders<'_>) -> Result<ShmWriter, ChannelError> {
        let mut config = self.config;
        if config.capacity_bytes.is_none() {
            config.capacity_bytes = Some(DEFAULT_CAPACITY_BYTES);
        }
        if config.creation_time == 0 {
            config.creation_time = SystemClock::new(config.tick_unit).now();
        }
        // Heartbeats come from the system clock, which counts from the Unix
        // epoch: readers on this machine can judge their age at once.
        config.epoch_time = true;
        let capacity = config.capacity_bytes.unwrap_or(DEFAULT_CAPACITY_BYTES);
        // Only a 32-bit target can fail here: 4 GiB does not fit its memory.
        let Some(file_len) = usize::try_from(capacity)
            .ok()
            .and_then(|c| c.checked_add(HEADER_LEN))
        else {
            let e = io::Error::new(
                io::ErrorKind::InvalidInput,
                "too large for this address space",
            );
            return Err(ChannelError::io(path, "size the channel", e));
        };
        // Reject a bad configuration before touching the file system.
        config
            .header_for(file_len)
            .map_err(|source| ChannelError::Config {
                path: path.to_path_buf(),
                source,
            })?;

        let folder = parent_folder(path);
        let folders = match folders {
            Folders::MustExist => {
                require_folder(path, folder)?;
                vec![folder.to_path_buf()]
            }
            Folders::Make => {
                let folders = folders_to_sync(folder);
                make_folders(folder, folder_mode(self.mode))?;
                folders
            }
            Folders::Layout { root } => {
                let folders = folders_to_sync(folder);
                prepare_layout(root, folder, folder_mode(self.mode))?;
                folders
            }
        };
        if fs::symlink_metadata(path).is_ok() {
            return Err(ChannelError::AlreadyExists {
                path: path.to_path_buf(),
            });
        }

        let NewFile { temp, file, region } =
            creation::prepare(path, file_len, self.mode, self.prefault)?;
        let flusher = region.handle();
        // SAFETY: the file was created with `create_new` under a name unique
        // to this call, and is published under `path` only by a link that
        // never replaces a file; `region` is moved into the writer and only
        // a flushing handle remains. So no other writer exists on it.
        let mut writer =
            unsafe { Writer::create_unchecked(region, &config) }.map_err(|source| {
                ChannelError::Config {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
        // Creating (reserving and pre-faulting a large file, syncing it) can
        // take longer than the timeout: readers judge the heartbeat by its
        // age, so it says "alive" as of now, just before the link publishes
        // the channel, not as of the start of `create`.
        let beat_nanos = coarse_nanos();
        writer.heartbeat(beat_nanos / config.tick_unit.nanos());
        let creation = Creation { file, folders };
        // Everything that can fail is done before the link, which makes the
        // channel visible, except the folders' fsync: only it can make the
        // link durable, so it must come after. If it fails, the name goes.
        let creation = if self.durability.flushes() {
            flusher
                .flush_range(0, file_len)
                .map_err(|e| ChannelError::io(path, "flush the new channel", e))?;
            creation
                .file
                .sync_all()
                .map_err(|e| ChannelError::io(path, "sync the new channel", e))?;
            let folders = creation.open_folders()?;
            temp.publish(path)?;
            match sync_folders(&folders) {
                Ok(()) => CreationSync::Done,
                Err((folder, e)) => match unpublish(path, &creation.file) {
                    Ok(()) => {
                        return Err(ChannelError::io(
                            path,
                            "sync the folder naming the new channel (the channel was removed again)",
                            e,
                        ));
                    }
                    // The channel stays visible, so creation succeeds; the
                    // failure is reported by every flush instead.
                    Err(_) => CreationSync::Failed {
                        folder: folder.to_path_buf(),
                        error: copy_error(&e),
                    },
                },
            }
        } else {
            temp.publish(path)?;
            CreationSync::Pending(creation)
        };
        let header = *writer.header();
        Ok(ShmWriter {
            writer,
            tail: Tail {
                flusher,
                durability: self.durability,
                synced_from: HEADER_LEN,
                end: HEADER_LEN,
                unsynced_records: 0,
                unsynced_bytes: 0,
                creation,
                path: path.to_path_buf(),
                #[cfg(test)]
                flushes: 0,
            },
            pacer: {
                let mut pacer = Pacer::new(&header);
                pacer.beaten(beat_nanos);
                pacer
            },
            closed: false,
        })
    }
}

/// Creates channel `config.channel_id` under `root` with default options
/// (mode 0600, pre-faulted, no durability): kekbit 0.3's entry point.
///
/// # Example
///
/// ```
/// use kekbit_nostd::ChannelConfig;
/// use kekbit_std::{shm_reader, shm_writer};
///
/// let tmp = tempfile::tempdir()?;
/// let root = tmp.path().join("kekbit"); // made 0700
/// let mut writer = shm_writer(&root, &ChannelConfig::new(42).capacity_bytes(4096))?;
/// writer.write(b"ping")?;
/// let channel = shm_reader(&root, 42)?;
/// assert_eq!(channel.reader()?.try_read()?, Some(&b"ping"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn shm_writer(root: &Path, config: &ChannelConfig) -> Result<ShmWriter, ChannelError> {
    WriterOptions::new(*config).create_in(root)
}

/// Where a new channel's folder comes from.
enum Folders<'a> {
    /// It must exist (an explicit path).
    MustExist,
    /// Missing ones are made, as `mkdir -p` does
    /// ([`WriterOptions::create_parents`]).
    Make,
    /// The id layout under `root`: missing folders are made, and the root
    /// and the channel's folder must pass the trust check.
    Layout { root: &'a Path },
}

/// Checks that `folder`, where the channel at `path` goes, exists.
fn require_folder(path: &Path, folder: &Path) -> Result<(), ChannelError> {
    match fs::metadata(folder) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(ChannelError::io(
            folder,
            "create a channel in it",
            io::Error::new(io::ErrorKind::NotADirectory, "not a folder"),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ChannelError::FolderNotFound {
            path: path.to_path_buf(),
            folder: folder.to_path_buf(),
        }),
        Err(e) => Err(ChannelError::io(folder, "find the channel folder", e)),
    }
}

/// The folders whose entries name a channel in `folder`: `folder` itself,
/// and the parent of each folder that does not exist yet (deepest first), so
/// that syncing them all makes the channel's name survive power loss.
pub(crate) fn folders_to_sync(folder: &Path) -> Vec<PathBuf> {
    let mut folders = vec![folder.to_path_buf()];
    let mut dir = folder;
    while !dir.exists() {
        match dir.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => {
                folders.push(parent.to_path_buf());
                dir = parent;
            }
            _ => {
                folders.push(PathBuf::from("."));
                break;
            }
        }
    }
    folders
}

/// What makes a published channel survive power loss: its file's contents
/// (header included) and the folder entries that name it.
struct Creation {
    file: File,
    /// From [`folders_to_sync`].
    folders: Vec<PathBuf>,
}

impl Creation {
    /// Opens every folder to sync. Done before the link where the sync
    /// follows it at once, so that no open can fail once the channel is
    /// visible.
    fn open_folders(&self) -> Result<Vec<(&Path, File)>, ChannelError> {
        self.folders
            .iter()
            .map(|folder| {
                File::open(folder)
                    .map(|dir| (folder.as_path(), dir))
                    .map_err(|e| ChannelError::io(folder, "open the channel folder to sync it", e))
            })
            .collect()
    }

    /// Syncs the file (`fsync` also writes back pages dirtied through the
    /// mapping), then the folders, so a name never survives without its file.
    fn sync(&self, path: &Path) -> Result<(), ChannelError> {
        self.file
            .sync_all()
            .map_err(|e| ChannelError::io(path, "sync the new channel", e))?;
        sync_folders(&self.open_folders()?)
            .map_err(|(folder, e)| ChannelError::io(folder, "sync the channel folder", e))
    }
}

/// `fsync`s each folder; on failure, which one and why.
fn sync_folders<'a>(folders: &[(&'a Path, File)]) -> Result<(), (&'a Path, io::Error)> {
    for (folder, dir) in folders {
        fault::check(Step::FolderSync)
            .and_then(|()| dir.sync_all())
            .map_err(|e| (*folder, e))?;
    }
    Ok(())
}

/// Removes `path` if it still names `file`: undoes a publication whose
/// folder sync failed. A name that now points elsewhere is left alone, and
/// shows no channel of ours.
fn unpublish(path: &Path, file: &File) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    fault::check(Step::Unpublish)?;
    let ours = file.metadata()?;
    match fs::symlink_metadata(path) {
        Ok(named) if named.dev() == ours.dev() && named.ino() == ours.ino() => {
            fs::remove_file(path)
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// An equal `io::Error`, since it is not `Clone`: to report a failure again.
pub(crate) fn copy_error(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

/// Whether a channel's creation (its file and the folder entries naming
/// it) has reached the device.
enum CreationSync {
    /// Synced when it was created.
    Done,
    /// Under [`Durability::None`]: left to the first flush.
    Pending(Creation),
    /// A folder's sync failed after the channel became visible, and its
    /// name could not be removed again. The channel works, but every flush
    /// reports this: its name may not survive power loss, and a second
    /// `fsync` after a failed one can report success without having
    /// written anything.
    Failed {
        /// The folder whose sync failed.
        folder: PathBuf,
        /// Why.
        error: io::Error,
    },
}

/// The writer of a channel file: appends records, heartbeats, flushes
/// according to its [`Durability`], and closes the channel when dropped.
///
/// Create one with [`shm_writer`] or [`WriterOptions`]. It owns its
/// mapping; records written are visible at once to readers in any process.
///
/// It is `Send` and `Sync`: every method that changes anything takes
/// `&mut self`. To write from several threads, wrap it in a
/// [`SharedWriter`](crate::SharedWriter).
///
/// # Heartbeats
///
/// If the channel has a timeout, each write checks a coarse clock (a few
/// nanoseconds) and stores a heartbeat when a quarter of the timeout has
/// passed since the last one. A writer that goes quiet for longer than its
/// timeout must call [`heartbeat`](ShmWriter::heartbeat) from its idle loop,
/// or readers will report it abandoned. Heartbeats on writes have the
/// coarse clock's resolution (a few milliseconds): use timeouts of 100 ms
/// or more.
///
/// # Example
///
/// ```
/// use kekbit_nostd::ChannelConfig;
/// use kekbit_std::{ShmReader, WriterOptions};
///
/// let dir = tempfile::tempdir()?;
/// let mut writer = WriterOptions::new(ChannelConfig::new(3).capacity_bytes(4096))
///     .create(dir.path().join("events.kekbit"))?;
/// writer.write(b"one")?;
/// writer.write(b"two")?;
/// assert_eq!(writer.records_written(), 2);
/// writer.close()?;
///
/// let channel = ShmReader::open(dir.path().join("events.kekbit"))?;
/// let records: Vec<_> = channel.reader()?.blocking().collect::<Result<_, _>>()?;
/// assert_eq!(records, [b"one", b"two"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ShmWriter {
    pub(crate) writer: Writer<MappedRegion>,
    pub(crate) tail: Tail,
    pub(crate) pacer: Pacer,
    /// Set once `close` ran, so `Drop` does not close and flush again.
    closed: bool,
}

/// What the writer does after publishing: durability bookkeeping. Kept
/// apart from the core writer so a [`Grant`] or a
/// [`ShmBatch`](crate::ShmBatch) can borrow both.
pub(crate) struct Tail {
    /// A handle to the writer's mapping, only for `msync`.
    flusher: MappedRegion,
    durability: Durability,
    /// Region offset from which bytes may be unflushed.
    pub(crate) synced_from: usize,
    /// Region offset of the next commit word (where the next record or the
    /// end marker goes); everything before it is published.
    pub(crate) end: usize,
    pub(crate) unsynced_records: u64,
    pub(crate) unsynced_bytes: u64,
    /// Whether the channel's header and name are on the device; under
    /// [`Durability::None`] they are not until the first flush.
    creation: CreationSync,
    path: PathBuf,
    /// Flushes made, so tests can count them.
    #[cfg(test)]
    pub(crate) flushes: u64,
}

impl Tail {
    /// Accounts for a record published at `position` with `len` payload
    /// bytes, flushing if the policy says so.
    #[inline]
    fn published(&mut self, position: u32, len: usize) -> Result<(), ChannelError> {
        let span = PAYLOAD_OFFSET + len.next_multiple_of(RECORD_ALIGN);
        self.published_span(position, position + span as u32, 1)
    }

    /// Accounts for `records` records published between the record-area
    /// offsets `from` and `to` (framing and batch markers included), with
    /// one look at the policy: a batch counts as one write.
    #[inline]
    pub(crate) fn published_span(
        &mut self,
        from: u32,
        to: u32,
        records: u64,
    ) -> Result<(), ChannelError> {
        self.end = HEADER_LEN + to as usize;
        self.unsynced_records += records;
        self.unsynced_bytes += u64::from(to - from);
        let due = match self.durability {
            Durability::None | Durability::OnClose => false,
            Durability::EveryRecord => true,
            Durability::EveryRecords(n) => self.unsynced_records >= n.max(1),
            Durability::EveryBytes(n) => self.unsynced_bytes >= n,
        };
        if due { self.flush() } else { Ok(()) }
    }

    /// Flushes every byte published since the last flush, and the commit
    /// word after them.
    fn flush(&mut self) -> Result<(), ChannelError> {
        let to = self.end + MARKER_LEN;
        self.flusher
            .flush_range(self.synced_from, to.saturating_sub(self.synced_from))
            .map_err(|e| ChannelError::io(&self.path, "flush the channel", e))?;
        match &self.creation {
            CreationSync::Done => {}
            CreationSync::Pending(creation) => {
                creation.sync(&self.path)?;
                self.creation = CreationSync::Done;
            }
            CreationSync::Failed { folder, error } => {
                return Err(ChannelError::io(
                    folder,
                    "sync the channel folder when the channel was created (its name may not survive power loss)",
                    copy_error(error),
                ));
            }
        }
        #[cfg(test)]
        {
            self.flushes += 1;
        }
        // The commit word at `end` will change again: flush from there next.
        self.synced_from = self.end;
        self.unsynced_records = 0;
        self.unsynced_bytes = 0;
        Ok(())
    }

    pub(crate) fn write_error(&self, source: WriteError) -> ChannelError {
        ChannelError::Write {
            path: self.path.clone(),
            source,
        }
    }
}

/// Stores heartbeats on writes, reading only the coarse clock, in
/// nanoseconds: a write costs one clock read and one comparison; the
/// division into ticks happens only when a heartbeat is due.
pub(crate) struct Pacer {
    unit: TickUnit,
    /// Nanoseconds between heartbeats: a quarter of the timeout; 0 = never.
    interval_nanos: u64,
    /// Coarse time (Unix nanoseconds) at or after which the next heartbeat
    /// is due.
    due_nanos: u64,
}

impl Pacer {
    pub(crate) fn new(header: &Header) -> Self {
        let interval_nanos = if header.timeout_ticks == 0 {
            0
        } else {
            // In nanoseconds, so a timeout of under 4 ticks (1 s, say) still
            // gets a quarter, not a whole tick.
            (header
                .timeout_ticks
                .saturating_mul(header.tick_unit.nanos())
                / 4)
            .max(1)
        };
        let created = header
            .creation_time
            .saturating_mul(header.tick_unit.nanos());
        Self {
            unit: header.tick_unit,
            interval_nanos,
            due_nanos: created.saturating_add(interval_nanos),
        }
    }

    #[inline]
    pub(crate) fn beat_if_due(&mut self, writer: &mut Writer<MappedRegion>) {
        if self.interval_nanos == 0 {
            return;
        }
        let now = coarse_nanos();
        if now >= self.due_nanos {
            writer.heartbeat(now / self.unit.nanos());
            self.due_nanos = now.saturating_add(self.interval_nanos);
        }
    }

    /// Makes a heartbeat due on the next write, as if a quarter timeout had
    /// passed.
    #[cfg(test)]
    pub(crate) fn make_due(&mut self) {
        self.due_nanos = 0;
    }

    /// Records an explicit heartbeat at `now_nanos`.
    pub(crate) fn beaten(&mut self, now_nanos: u64) {
        self.due_nanos = self
            .due_nanos
            .max(now_nanos.saturating_add(self.interval_nanos));
    }
}

impl ShmWriter {
    /// Creates a channel file at `path` with default [`WriterOptions`].
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::ChannelConfig;
    /// use kekbit_std::{ChannelError, ShmWriter};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("c.kekbit");
    /// let _writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// let again = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096));
    /// assert!(matches!(again, Err(ChannelError::AlreadyExists { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(path: impl AsRef<Path>, config: &ChannelConfig) -> Result<Self, ChannelError> {
        WriterOptions::new(*config).create(path)
    }

    /// Appends one record and publishes it; returns its position.
    ///
    /// A record that does not fit marks the channel full and returns
    /// [`ChannelError::Write`] with [`WriteError::Full`]. Under a durability
    /// policy that flushes on this write, an I/O error means the record was
    /// published but may not be on the device.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{ChannelConfig, WriteError};
    /// # use kekbit_std::ShmWriter;
    /// # let dir = tempfile::tempdir()?;
    /// let config = ChannelConfig::new(1).capacity_bytes(4096).max_record_len(8);
    /// let mut writer = ShmWriter::create(dir.path().join("c.kekbit"), &config)?;
    /// assert_eq!(writer.write(b"12345678")?, 0);
    /// let err = writer.write(b"123456789").unwrap_err();
    /// assert!(matches!(err.write_error(), Some(WriteError::TooLarge { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn write(&mut self, payload: &[u8]) -> Result<u32, ChannelError> {
        let position = self
            .writer
            .write(payload)
            .map_err(|e| self.tail.write_error(e))?;
        self.pacer.beat_if_due(&mut self.writer);
        self.tail.published(position, payload.len())?;
        Ok(position)
    }

    /// Encodes `record` through `handler` straight into the channel; returns
    /// its position. See [`Writer::write_with`].
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{ChannelConfig, PlainHandler};
    /// # use kekbit_std::{ShmReader, ShmWriter};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// let mut writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// writer.write_with(&mut PlainHandler, "text")?;
    /// # let channel = ShmReader::open(&path)?;
    /// # assert_eq!(channel.reader()?.try_read()?, Some(&b"text"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_with<H, E>(&mut self, handler: &mut H, record: &E) -> Result<u32, ChannelError>
    where
        H: Handler + ?Sized,
        E: Encode + ?Sized,
    {
        let position = self
            .writer
            .write_with(handler, record)
            .map_err(|e| self.tail.write_error(e))?;
        self.pacer.beat_if_due(&mut self.writer);
        let len = self.writer.position() as usize - position as usize - PAYLOAD_OFFSET;
        self.tail.published(position, len)?;
        Ok(position)
    }

    /// Reserves space for a record of up to `len` bytes, to fill in place
    /// and publish with [`Grant::commit`]; a dropped grant publishes nothing.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::{ShmReader, ShmWriter};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// let mut writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// let mut grant = writer.reserve(16)?;
    /// grant[..4].copy_from_slice(b"abcd");
    /// grant.commit(4)?;
    /// # let channel = ShmReader::open(&path)?;
    /// # assert_eq!(channel.reader()?.try_read()?, Some(&b"abcd"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reserve(&mut self, len: usize) -> Result<Grant<'_>, ChannelError> {
        self.pacer.beat_if_due(&mut self.writer);
        let grant = self
            .writer
            .reserve(len)
            .map_err(|e| self.tail.write_error(e))?;
        Ok(Grant {
            grant,
            tail: &mut self.tail,
        })
    }

    /// Begins a batch: records written through it are published together,
    /// by one store, when it is [published](ShmBatch::publish) or dropped.
    ///
    /// A batch saves the reader and the writer a cache-line hand-over per
    /// record, and readers read ahead over a published batch, so small
    /// records move several times faster; it costs 8 bytes of framing (the
    /// batch's marker). The durability policy and the heartbeat see the
    /// batch as one write: see [`ShmBatch`].
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::{ShmReader, ShmWriter};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// let mut writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// {
    ///     let mut batch = writer.batch();
    ///     batch.write(b"one")?;
    ///     batch.write(b"two")?;
    /// } // dropped: published
    /// assert_eq!(writer.records_written(), 2);
    /// let channel = ShmReader::open(&path)?;
    /// assert_eq!(channel.reader()?.records().count(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn batch(&mut self) -> ShmBatch<'_> {
        ShmBatch::new(self)
    }

    /// Writes every record of `records` as one batch; returns the position
    /// of the first (where the next record would go, if there is none).
    ///
    /// If a record cannot be written (too large, or the channel filled),
    /// the records before it are published and [`BatchError::published`]
    /// says how many; a channel that filled is marked full, as a single
    /// write does. The durability policy applies once, to all of them.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{ChannelConfig, WriteError};
    /// # use kekbit_std::{ShmReader, ShmWriter};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// let mut writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(64))?;
    /// writer.write_all(&[b"a", b"bc"])?;
    /// // 40 of the 56 bytes for records are used: one more fits, then it is full.
    /// let err = writer.write_all(&[&[1; 8], &[2; 8]]).unwrap_err();
    /// assert_eq!(err.published, 1);
    /// assert!(matches!(err.write_error(), Some(WriteError::Full { .. })));
    /// assert!(!writer.is_open());
    ///
    /// let channel = ShmReader::open(&path)?;
    /// assert_eq!(channel.reader()?.records().count(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_all(&mut self, records: &[&[u8]]) -> Result<u32, BatchError> {
        self.pacer.beat_if_due(&mut self.writer);
        let start = self.writer.position();
        let result = self.writer.write_all(records);
        let published = match &result {
            Ok(_) => records.len(),
            Err(e) => e.published,
        };
        let flushed = if published > 0 {
            let end = self.writer.position();
            self.tail.published_span(start, end, published as u64)
        } else {
            Ok(())
        };
        match (result, flushed) {
            // A refused record first: the flush is retried by the next one.
            (Err(e), _) => Err(BatchError {
                published: e.published,
                error: self.tail.write_error(e.error),
            }),
            (Ok(_), Err(error)) => Err(BatchError { published, error }),
            (Ok(position), Ok(())) => Ok(position),
        }
    }

    /// Stores a heartbeat now, from the [`SystemClock`]: call it from an
    /// idle loop more often than the channel's timeout.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{ChannelConfig, TickUnit};
    /// # use kekbit_std::{ShmReader, ShmWriter};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// let config = ChannelConfig::new(1).capacity_bytes(4096).timeout(500, TickUnit::Millis);
    /// let mut writer = ShmWriter::create(&path, &config)?;
    /// writer.heartbeat();
    /// let channel = ShmReader::open(&path)?;
    /// assert!(channel.reader()?.heartbeat_age().is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn heartbeat(&mut self) {
        let unit = self.writer.header().tick_unit;
        let now = SystemClock::new(unit).now();
        self.writer.heartbeat(now);
        self.pacer.beaten(now.saturating_mul(unit.nanos()));
    }

    /// Flushes every record written so far to the storage device
    /// (`msync(MS_SYNC)`), whatever the durability policy.
    ///
    /// Under [`Durability::None`], the first flush also syncs what creation
    /// skipped (the header, the file and the folder entries naming it), so
    /// that the records flushed are found after a power loss.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::ShmWriter;
    /// # let dir = tempfile::tempdir()?;
    /// let mut writer = ShmWriter::create(dir.path().join("j.kekbit"), &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// writer.write(b"must survive power loss")?;
    /// writer.flush()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush(&mut self) -> Result<(), ChannelError> {
        self.tail.end = HEADER_LEN + self.writer.position() as usize;
        self.tail.flush()
    }

    /// Closes the channel (readers see every record, then the end) and, under
    /// any policy but [`Durability::None`], flushes it. Dropping the writer
    /// does the same but cannot report a flush error.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::ShmWriter;
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// # use kekbit_std::ShmReader;
    /// let mut writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// writer.write(b"the end")?;
    /// writer.close()?;
    /// let channel = ShmReader::open(&path)?;
    /// let mut reader = channel.reader()?;
    /// assert_eq!(reader.try_read()?, Some(&b"the end"[..]));
    /// assert!(reader.try_read().unwrap_err().is_end());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(mut self) -> Result<(), ChannelError> {
        self.close_inner()
    }

    fn close_inner(&mut self) -> Result<(), ChannelError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        self.writer.close();
        if self.tail.durability.flushes() {
            self.flush()?;
        }
        Ok(())
    }

    /// The channel's path.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::ShmWriter;
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// let writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// assert_eq!(writer.path(), path);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn path(&self) -> &Path {
        &self.tail.path
    }

    /// The channel's header.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::ShmWriter;
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// let writer = ShmWriter::create(&path, &ChannelConfig::new(9).capacity_bytes(4096))?;
    /// assert_eq!(writer.header().channel_id, 9);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn header(&self) -> &Header {
        self.writer.header()
    }

    /// The durability policy.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::ShmWriter;
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// # use kekbit_std::Durability;
    /// let writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// assert_eq!(writer.durability(), Durability::None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn durability(&self) -> Durability {
        self.tail.durability
    }

    /// Offset in the record area where the next record goes.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::ShmWriter;
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// let mut writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// writer.write(b"12345")?; // 8 bytes of framing, payload padded to 8
    /// assert_eq!(writer.position(), 16);
    /// assert_eq!(writer.remaining_bytes(), 4096 - 16 - 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn position(&self) -> u32 {
        self.writer.position()
    }

    /// Bytes left for records, framing included; the end marker's 8 bytes
    /// are kept aside. See [`position`](Self::position) for an example.
    pub fn remaining_bytes(&self) -> u32 {
        self.writer.remaining_bytes()
    }

    /// Records written by this writer.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::ShmWriter;
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// let mut writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// writer.write(b"a")?;
    /// assert_eq!(writer.records_written(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn records_written(&self) -> u64 {
        self.writer.records_written()
    }

    /// Whether the channel still accepts records: false once it is full.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::ShmWriter;
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// let mut writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(64))?;
    /// assert!(writer.is_open());
    /// while writer.write(b"fill").is_ok() {}
    /// assert!(!writer.is_open());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_open(&self) -> bool {
        self.writer.is_open()
    }
}

impl Drop for ShmWriter {
    fn drop(&mut self) {
        // Nowhere to report a flush error from a drop; `close` reports it.
        let _ = self.close_inner();
    }
}

impl std::fmt::Debug for ShmWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmWriter")
            .field("path", &self.tail.path)
            .field("writer", &self.writer)
            .field("durability", &self.tail.durability)
            .finish_non_exhaustive()
    }
}

/// Space reserved in a channel file for one record; see
/// [`ShmWriter::reserve`]. Dereferences to the reserved bytes.
pub struct Grant<'w> {
    grant: kekbit_nostd::Grant<'w, MappedRegion>,
    tail: &'w mut Tail,
}

impl Grant<'_> {
    /// Publishes the first `len` bytes as one record, applies the
    /// durability policy, and returns the record's position.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::ChannelConfig;
    /// # use kekbit_std::ShmWriter;
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.kekbit");
    /// let mut writer = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(4096))?;
    /// let mut grant = writer.reserve(100)?;
    /// let n = {
    ///     let text = b"only what was written";
    ///     grant[..text.len()].copy_from_slice(text);
    ///     text.len()
    /// };
    /// assert_eq!(grant.commit(n)?, 0);
    /// assert_eq!(writer.position(), 8 + 24);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn commit(self, len: usize) -> Result<u32, ChannelError> {
        let Self { grant, tail } = self;
        let position = grant.commit(len).map_err(|e| tail.write_error(e))?;
        tail.published(position, len)?;
        Ok(position)
    }
}

impl std::ops::Deref for Grant<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.grant
    }
}

impl std::ops::DerefMut for Grant<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.grant
    }
}

impl std::fmt::Debug for Grant<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("len", &self.grant.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ShmReader;
    use kekbit_nostd::ReadError;

    fn small() -> ChannelConfig {
        ChannelConfig::new(1)
            .capacity_bytes(4096)
            .max_record_len(256)
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn creation_leaves_only_the_channel_and_never_replaces_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.kekbit");
        let writer = ShmWriter::create(&path, &small()).unwrap();
        assert_eq!(names_in(dir.path()), ["c.kekbit"]);
        drop(writer);
        let err = ShmWriter::create(&path, &small()).unwrap_err();
        assert!(matches!(err, ChannelError::AlreadyExists { .. }), "{err}");
        assert_eq!(names_in(dir.path()), ["c.kekbit"]);
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn an_explicit_path_needs_its_folder_unless_asked_to_make_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("typo/dir/c.kekbit");
        for options in [
            WriterOptions::new(small()),
            WriterOptions::new(small()).durability(Durability::OnClose),
        ] {
            let result = options.create(&path);
            assert!(
                !dir.path().join("typo").exists(),
                "create made the folders of an explicit path ({result:?})"
            );
            let err = result.unwrap_err();
            assert!(
                matches!(&err, ChannelError::FolderNotFound { folder, .. }
                    if *folder == dir.path().join("typo/dir")),
                "{err}"
            );
            assert_eq!(err.path(), path);
            assert!(err.to_string().contains("typo/dir does not exist"), "{err}");
        }
        let err = ShmWriter::create(&path, &small()).unwrap_err();
        assert!(matches!(err, ChannelError::FolderNotFound { .. }), "{err}");
        assert!(names_in(dir.path()).is_empty());

        // As `mkdir -p` does, when asked.
        let writer = WriterOptions::new(small())
            .create_parents(true)
            .create(&path)
            .unwrap();
        assert_eq!(writer.path(), path);
        assert_eq!(names_in(&dir.path().join("typo/dir")), ["c.kekbit"]);

        // The id layout under a root makes its folders by default.
        let root = dir.path().join("new/root");
        let writer = WriterOptions::new(small()).create_in(&root).unwrap();
        assert!(writer.path().starts_with(&root));
        assert!(writer.path().exists());
    }

    #[test]
    fn a_bare_file_name_goes_in_the_working_folder() {
        assert_eq!(parent_folder(Path::new("c.kekbit")), Path::new("."));
        assert_eq!(parent_folder(Path::new("a/c.kekbit")), Path::new("a"));
        assert_eq!(parent_folder(Path::new("/c.kekbit")), Path::new("/"));
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn a_name_as_long_as_the_file_system_allows_is_a_channel() {
        let dir = tempfile::tempdir().unwrap();
        let name = format!("{}.kekbit", "n".repeat(255 - 7));
        let path = dir.path().join(&name);
        let writer = ShmWriter::create(&path, &small()).unwrap();
        assert_eq!(names_in(dir.path()), std::slice::from_ref(&name));
        drop(writer);
        // Too long a name: the error names the channel, not a temporary file.
        let path = dir.path().join(format!("{name}x"));
        let err = ShmWriter::create(&path, &small()).unwrap_err();
        assert_eq!(err.path(), path, "{err}");
        assert!(matches!(err, ChannelError::Io { .. }), "{err}");
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn a_bad_configuration_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/c.kekbit");
        let err = ShmWriter::create(&path, &ChannelConfig::new(1).capacity_bytes(12)).unwrap_err();
        assert!(matches!(err, ChannelError::Config { .. }), "{err}");
        assert!(!dir.path().join("sub").exists());
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn the_file_is_exactly_header_plus_capacity_and_defaults_apply() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.kekbit");
        let writer = ShmWriter::create(&path, &ChannelConfig::new(1)).unwrap();
        let len = fs::metadata(&path).unwrap().len();
        assert_eq!(len, (HEADER_LEN as u64) + u64::from(DEFAULT_CAPACITY_BYTES));
        assert!(
            writer.header().creation_time > 0,
            "creation time from the system clock"
        );
        let unprefaulted = WriterOptions::new(small())
            .prefault(false)
            .create(dir.path().join("lazy.kekbit"))
            .unwrap();
        assert_eq!(unprefaulted.remaining_bytes(), 4096 - 8);
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn grants_publish_on_commit_only_and_a_full_channel_ends_readers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.kekbit");
        let mut writer = ShmWriter::create(&path, &small()).unwrap();
        let channel = ShmReader::open(&path).unwrap();
        let mut reader = channel.reader().unwrap();

        {
            let _never_committed = writer.reserve(8).unwrap();
        }
        assert_eq!(reader.try_read().unwrap(), None);
        let mut grant = writer.reserve(8).unwrap();
        grant[..3].copy_from_slice(b"abc");
        assert_eq!(grant.commit(3).unwrap(), 0);
        assert_eq!(reader.try_read().unwrap(), Some(&b"abc"[..]));

        let record = [7u8; 256];
        let err = loop {
            match writer.write(&record) {
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        assert!(
            matches!(err.write_error(), Some(WriteError::Full { .. })),
            "{err}"
        );
        assert!(!writer.is_open());
        let mut count = 0;
        let end = loop {
            match reader.try_read() {
                Ok(Some(r)) => {
                    assert_eq!(r, record);
                    count += 1;
                }
                Ok(None) => panic!("a full channel must end"),
                Err(e) => break e,
            }
        };
        assert_eq!(end.read_error(), Some(ReadError::Full));
        assert_eq!(count + 1, writer.records_written());
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn every_policy_flushes_when_it_says() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (Durability::None, 5, 5),
            (Durability::OnClose, 5, 5),
            (Durability::EveryRecord, 5, 0),
            (Durability::EveryRecords(2), 5, 1),
            (Durability::EveryRecords(0), 5, 0),
            // 16-byte records: 48 bytes trigger a flush every third record.
            (Durability::EveryBytes(48), 5, 2),
        ];
        for (i, (policy, writes, unsynced)) in cases.into_iter().enumerate() {
            let path = dir.path().join(format!("{i}.kekbit"));
            let mut writer = WriterOptions::new(small())
                .durability(policy)
                .create(&path)
                .unwrap();
            for _ in 0..writes {
                writer.write(b"12345678").unwrap();
            }
            assert_eq!(writer.tail.unsynced_records, unsynced, "{policy:?}");
            writer.flush().unwrap();
            assert_eq!(writer.tail.unsynced_records, 0, "{policy:?}");
            assert_eq!(writer.tail.synced_from, HEADER_LEN + writes * 16);
            writer.write(b"after").unwrap();
            writer.close().unwrap();
            let channel = ShmReader::open(&path).unwrap();
            assert_eq!(channel.reader().unwrap().records().count(), writes + 1);
        }
    }

    #[test]
    fn heartbeats_are_paced_at_a_quarter_timeout_even_for_few_ticks() {
        let header = |ticks, unit| {
            small()
                .timeout(ticks, unit)
                .header_for(HEADER_LEN + 4096)
                .unwrap()
        };
        let pacer = Pacer::new(&header(1, TickUnit::Seconds));
        assert_eq!(pacer.interval_nanos, 250_000_000);
        let pacer = Pacer::new(&header(400, TickUnit::Millis));
        assert_eq!(pacer.interval_nanos, 100_000_000);
        let pacer = Pacer::new(&header(3, TickUnit::Nanos));
        assert_eq!(pacer.interval_nanos, 1);
        let pacer = Pacer::new(&header(0, TickUnit::Millis));
        assert_eq!(pacer.interval_nanos, 0, "no timeout, no heartbeats");
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn the_channel_and_every_folder_made_for_it_are_synced() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("new/root");
        let id = 1 << 32;
        let path = storage_path(&root, id);
        let folder = path.parent().unwrap();
        assert_eq!(
            folders_to_sync(folder),
            [folder, &root, &dir.path().join("new"), dir.path()]
        );
        assert_eq!(
            folders_to_sync(Path::new("a/b")),
            [Path::new("a/b"), Path::new("a"), Path::new(".")]
        );

        // Any policy but `None` syncs at creation.
        let config = ChannelConfig {
            channel_id: id,
            ..small()
        };
        let synced = WriterOptions::new(config)
            .durability(Durability::OnClose)
            .create_in(&root)
            .unwrap();
        assert!(matches!(synced.tail.creation, CreationSync::Done));
        drop(synced);
        fs::remove_file(&path).unwrap();

        // `None` leaves it to the first flush: the header and the name too.
        let mut lazy = WriterOptions::new(config).create_in(&root).unwrap();
        let CreationSync::Pending(pending) = &lazy.tail.creation else {
            panic!("creation synced under `Durability::None`");
        };
        assert_eq!(pending.folders, [folder]);
        lazy.write(b"durable").unwrap();
        lazy.flush().unwrap();
        assert!(matches!(lazy.tail.creation, CreationSync::Done));
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn a_create_that_fails_after_the_link_leaves_no_channel_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.kekbit");
        let options = WriterOptions::new(small()).durability(Durability::OnClose);
        // The folder's fsync, which must follow the link, fails.
        fault::armed::arm(Step::FolderSync);
        let err = options.create(&path).unwrap_err();
        assert!(fault::armed::all_fired(), "the folder was never synced");
        assert!(
            names_in(dir.path()).is_empty(),
            "a failed create ({err}) left {:?}",
            names_in(dir.path())
        );
        assert!(matches!(err, ChannelError::Io { .. }), "{err}");
        assert_eq!(err.path(), path, "{err}");
        assert!(err.to_string().contains("removed again"), "{err}");
        // So a retry creates the channel, rather than meeting `AlreadyExists`.
        let mut writer = options.create(&path).unwrap();
        writer.write(b"second try").unwrap();
        writer.close().unwrap();
        let channel = ShmReader::open(&path).unwrap();
        assert_eq!(
            channel.reader().unwrap().try_read().unwrap(),
            Some(&b"second try"[..])
        );
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn a_channel_that_cannot_be_removed_again_is_created_and_every_flush_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.kekbit");
        fault::armed::arm(Step::FolderSync);
        fault::armed::arm(Step::Unpublish);
        // The channel stays visible, so creation must not report failure.
        let mut writer = WriterOptions::new(small())
            .durability(Durability::EveryRecord)
            .create(&path)
            .unwrap();
        assert!(fault::armed::all_fired());
        assert_eq!(names_in(dir.path()), ["c.kekbit"]);
        // It works, but never claims a durability it could not get.
        let err = writer.write(b"published, not durable").unwrap_err();
        assert!(matches!(err, ChannelError::Io { .. }), "{err}");
        assert_eq!(err.path(), dir.path(), "names the folder: {err}");
        assert!(err.to_string().contains("power loss"), "{err}");
        assert!(writer.flush().is_err());
        let channel = ShmReader::open(&path).unwrap();
        let mut reader = channel.reader().unwrap();
        assert_eq!(
            reader.try_read().unwrap(),
            Some(&b"published, not durable"[..])
        );
        assert!(writer.close().is_err());
        assert!(reader.try_read().unwrap_err().is_end());
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files
    fn a_name_that_no_longer_shows_the_channel_is_not_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.kekbit");
        let other = tempfile::tempfile().unwrap();
        fs::write(&path, b"not ours").unwrap();
        unpublish(&path, &other).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"not ours");
        fs::remove_file(&path).unwrap();
        unpublish(&path, &other).unwrap();
    }

    #[test]
    #[cfg_attr(miri, ignore)] // maps files, reads the clock
    fn writes_heartbeat_once_a_quarter_timeout_has_passed() {
        use std::time::{Duration, Instant};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.kekbit");
        // A heartbeat is due on the first write 100 ms after creation.
        let config = small()
            .capacity_bytes(1 << 20)
            .timeout(400, TickUnit::Millis);
        let before_creation = Instant::now();
        let mut writer = ShmWriter::create(&path, &config).unwrap();
        let channel = ShmReader::open(&path).unwrap();
        let reader = channel.reader().unwrap();
        let first = reader.inner().heartbeat().expect("a still heartbeat");
        writer.write(b"soon").unwrap();
        // Only checkable if this (possibly loaded) machine got here quickly.
        if before_creation.elapsed() < Duration::from_millis(90) {
            assert_eq!(
                reader.inner().heartbeat(),
                Some(first),
                "too soon for a heartbeat"
            );
        }
        // Bounded wait, generous for a loaded machine: writes until one beats.
        let deadline = Instant::now() + Duration::from_secs(20);
        let beat = loop {
            std::thread::sleep(Duration::from_millis(10));
            writer.write(b"later").unwrap();
            let beat = reader.inner().heartbeat().expect("a still heartbeat");
            if beat != first {
                break beat;
            }
            assert!(Instant::now() < deadline, "writes never heartbeat");
        };
        assert!(
            beat - first >= 100,
            "heartbeat {first} -> {beat}: before a quarter timeout"
        );
        let age = reader.heartbeat_age().expect("a heartbeat in the past");
        assert!(age < Duration::from_secs(10), "{age:?}");
    }
}
