//! The store: the sharded map, the log, and the background snapshots.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::config::shard_count;
use crate::log::Log;
use crate::map::{Entry, Map, Shard};
use crate::record::{self, Op};
use crate::snapshot::{self, Manifest, SnapshotInfo};
use crate::{Config, Deserializable, Error, Result, Serializable, SyncMode};

/// A concurrent hash map that keeps its contents: every change goes to a
/// write-ahead log (the kekbit journal) before memory shows it, and a
/// background thread compacts the log into snapshots.
///
/// Any number of threads may read and write through `&self`. Only one live
/// instance may have a folder open ([`Error::Locked`] for a second one).
///
/// # Example
///
/// ```
/// use kekbit_kv::{Config, PersistentKeyValueStore};
/// let dir = tempfile::tempdir()?;
/// let store: PersistentKeyValueStore<String, String> =
///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
/// store.set("foo", "is here to stay")?;
/// drop(store);
/// let store: PersistentKeyValueStore<String, String> =
///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
/// assert_eq!(store.get("foo"), Some("is here to stay".to_string()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PersistentKeyValueStore<K, V> {
    inner: Arc<Inner>,
    worker: Option<JoinHandle<()>>,
    // The store holds bytes only; `fn() -> (K, V)` keeps it Send + Sync
    // whatever K and V are, as persistent-kv's is.
    _types: PhantomData<fn() -> (K, V)>,
}

/// A snapshot of the store's figures, from [`PersistentKeyValueStore::stats`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Entries.
    pub keys: usize,
    /// Key and value bytes of all entries.
    pub bytes: usize,
    /// Bytes of log on disk (every retained segment).
    pub log_bytes: u64,
    /// Log bytes written since the newest snapshot.
    pub log_bytes_since_snapshot: u64,
    /// The newest complete snapshot, if any.
    pub last_snapshot: Option<SnapshotInfo>,
    /// When the newest snapshot was published by this instance.
    pub last_snapshot_at: Option<SystemTime>,
    /// Everything logged before this position survives a power loss.
    pub durable_position: u64,
    /// Where the next record goes.
    pub end_position: u64,
    /// The last background snapshot's error, if it failed (cleared by the
    /// next success).
    pub last_snapshot_error: Option<String>,
}

struct SnapState {
    manifest: Manifest,
    next_seq: u64,
    last_at: Option<SystemTime>,
    last_error: Option<String>,
}

struct Inner {
    dir: PathBuf,
    config: Config,
    map: Map,
    log: Log,
    /// Modifications since the newest snapshot started.
    mods: AtomicU64,
    /// Log position the newest snapshot covers.
    snapshot_position: AtomicU64,
    /// Size of the newest snapshot's file.
    snapshot_bytes: AtomicU64,
    /// One snapshot at a time; also the manifest's state.
    snap: Mutex<SnapState>,
    /// Worker wake-up: `true` once a snapshot is asked for.
    wake: Mutex<bool>,
    wake_cv: Condvar,
    pending: AtomicBool,
    stop: AtomicBool,
    /// Set when the log failed to take or sync a record: what memory shows
    /// may then differ from what the log holds, so no write is accepted.
    failed: Mutex<Option<String>>,
    has_failed: AtomicBool,
}

thread_local! {
    static RECORD: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A set of sets and unsets applied as one: one log record, and no reader
/// sees some of them without the others.
///
/// # Example
///
/// ```
/// use kekbit_kv::{Config, PersistentKeyValueStore, WriteBatch};
/// let dir = tempfile::tempdir()?;
/// let store: PersistentKeyValueStore<String, u64> =
///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
/// store.set("alice", 10u64)?;
/// let mut batch = WriteBatch::new();
/// batch.set("alice", 5u64).set("bob", 5u64).unset("carol");
/// store.write_batch(&batch)?;
/// assert_eq!(store.get("bob"), Some(5));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct WriteBatch<K, V> {
    ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Default for WriteBatch<K, V> {
    fn default() -> Self {
        WriteBatch {
            ops: Vec::new(),
            _types: PhantomData,
        }
    }
}

impl<K: Serializable, V: Serializable> WriteBatch<K, V> {
    /// An empty batch.
    ///
    /// ```
    /// let batch = kekbit_kv::WriteBatch::<String, String>::new();
    /// assert!(batch.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a set; a later op on the same key in the batch wins.
    ///
    /// ```
    /// let mut batch = kekbit_kv::WriteBatch::<String, String>::new();
    /// batch.set("k", "v");
    /// assert_eq!(batch.len(), 1);
    /// ```
    pub fn set(&mut self, key: impl Into<K>, value: impl Into<V>) -> &mut Self {
        let key = key.into().serialize().into_owned();
        let value = value.into().serialize().into_owned();
        self.ops.push((key, Some(value)));
        self
    }

    /// Adds an unset.
    ///
    /// ```
    /// let mut batch = kekbit_kv::WriteBatch::<String, String>::new();
    /// batch.unset("k");
    /// assert_eq!(batch.len(), 1);
    /// ```
    pub fn unset<Q>(&mut self, key: &Q) -> &mut Self
    where
        K: Borrow<Q>,
        Q: ?Sized + Serializable,
    {
        self.ops.push((key.serialize().into_owned(), None));
        self
    }

    /// The number of ops.
    ///
    /// ```
    /// assert_eq!(kekbit_kv::WriteBatch::<u8, u8>::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch holds no op.
    ///
    /// ```
    /// assert!(kekbit_kv::WriteBatch::<u8, u8>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

impl<K, V> PersistentKeyValueStore<K, V>
where
    K: Serializable,
{
    /// Opens the store in `path` (created if missing, with its parents) and
    /// restores it: the newest complete snapshot, then the log after it.
    /// Returns once memory holds everything the log held.
    ///
    /// # Errors
    ///
    /// [`Error::Locked`] if another live instance has the folder open;
    /// [`Error::Corrupt`] or [`Error::Unrecoverable`] for damaged files (a
    /// damaged newest snapshot falls back to an older complete one while the
    /// log still reaches back to it); [`Error::Io`] for the system's errors.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_kv::{Config, PersistentKeyValueStore};
    /// let dir = tempfile::tempdir()?;
    /// let store: PersistentKeyValueStore<u64, Vec<u8>> =
    ///     PersistentKeyValueStore::new(dir.path().join("a/b"), Config::default())?;
    /// assert!(store.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(path: impl AsRef<Path>, config: Config) -> Result<Self> {
        let inner = Arc::new(Inner::open(path.as_ref(), config)?);
        let worker = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("kekbit-kv".into())
                .spawn(move || inner.work())
                .map_err(|e| Error::io(path.as_ref(), "start the snapshot thread", e))?
        };
        Ok(PersistentKeyValueStore {
            inner,
            worker: Some(worker),
            _types: PhantomData,
        })
    }

    /// Removes a key (nothing happens if it is absent). Borrowed keys work:
    /// `&str` for a `String` key.
    ///
    /// # Example
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use kekbit_kv::{Config, PersistentKeyValueStore};
    /// let store: PersistentKeyValueStore<String, String> =
    ///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
    /// store.set("foo", "1")?;
    /// store.unset("foo")?;
    /// assert_eq!(store.get("foo"), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unset<Q>(&self, key: &Q) -> Result<()>
    where
        K: Borrow<Q>,
        Q: ?Sized + Serializable,
    {
        self.inner.put(&key.serialize(), None).map(drop)
    }

    /// Whether the key is present.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # use kekbit_kv::{Config, PersistentKeyValueStore};
    /// let store: PersistentKeyValueStore<u32, String> =
    ///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
    /// store.set(7u32, "")?;
    /// assert!(store.contains_key(&7));
    /// assert!(!store.contains_key(&8));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Serializable,
    {
        self.inner.read(&key.serialize(), |_| ()).is_some()
    }

    /// Reads a value's bytes in place, without allocating: `f` runs under
    /// the shard's read lock, so it must be short and must not call back
    /// into the store.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # use kekbit_kv::{Config, PersistentKeyValueStore};
    /// let store: PersistentKeyValueStore<String, String> =
    ///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
    /// store.set("k", "hello")?;
    /// assert_eq!(store.get_with("k", |bytes| bytes.len()), Some(5));
    /// assert_eq!(store.get_with("x", |bytes| bytes.len()), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_with<Q, R>(&self, key: &Q, f: impl FnOnce(&[u8]) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: ?Sized + Serializable,
    {
        self.inner.read(&key.serialize(), f)
    }

    /// The number of entries (summed shard by shard while writers go on).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # use kekbit_kv::{Config, PersistentKeyValueStore};
    /// let store: PersistentKeyValueStore<u8, u8> =
    ///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
    /// store.set(1u8, 1u8)?;
    /// assert_eq!(store.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.inner.map.size().0
    }

    /// Whether the store holds no entry.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # use kekbit_kv::{Config, PersistentKeyValueStore};
    /// let store: PersistentKeyValueStore<u8, u8> =
    ///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
    /// assert!(store.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every entry (one log record).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # use kekbit_kv::{Config, PersistentKeyValueStore};
    /// let store: PersistentKeyValueStore<u8, u8> =
    ///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
    /// store.set(1u8, 1u8)?;
    /// store.clear()?;
    /// assert!(store.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clear(&self) -> Result<()> {
        self.inner.clear()
    }

    /// Applies a batch: one log record, and no reader sees part of it (a
    /// reader holding [`get_many`](Self::get_many) sees all or none).
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set); [`Error::TooLarge`] if the batch does not fit
    /// in one log record. On an error nothing is applied.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # use kekbit_kv::{Config, PersistentKeyValueStore, WriteBatch};
    /// let store: PersistentKeyValueStore<String, String> =
    ///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
    /// let mut batch = WriteBatch::new();
    /// batch.set("a", "1").set("b", "2");
    /// store.write_batch(&batch)?;
    /// assert_eq!(store.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_batch(&self, batch: &WriteBatch<K, V>) -> Result<()> {
        self.inner.batch(&batch.ops)
    }

    /// Forces the log to the disk; returns the durable position.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # use kekbit_kv::{Config, PersistentKeyValueStore};
    /// let store: PersistentKeyValueStore<u8, u8> =
    ///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
    /// store.set(1u8, 2u8)?;
    /// assert_eq!(store.sync()?, store.stats().end_position);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync(&self) -> Result<u64> {
        self.inner.log.sync()
    }

    /// Takes a snapshot now, in this thread, and publishes it; older
    /// snapshots beyond [`Config::snapshot_backups`] and the log it covers
    /// are then deleted. Writers go on meanwhile (each shard is held only
    /// while it is copied).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # use kekbit_kv::{Config, PersistentKeyValueStore};
    /// let store: PersistentKeyValueStore<u8, u8> =
    ///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
    /// store.set(1u8, 2u8)?;
    /// let info = store.snapshot()?;
    /// assert_eq!(info.entries, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn snapshot(&self) -> Result<SnapshotInfo> {
        self.inner.take_snapshot()
    }

    /// Figures: keys, bytes, log size, newest snapshot, positions.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # use kekbit_kv::{Config, PersistentKeyValueStore};
    /// let store: PersistentKeyValueStore<u8, u8> =
    ///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
    /// store.set(1u8, 2u8)?;
    /// let stats = store.stats();
    /// assert_eq!((stats.keys, stats.bytes), (1, 2));
    /// assert!(stats.last_snapshot.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// The store's folder.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # use kekbit_kv::{Config, PersistentKeyValueStore};
    /// let store: PersistentKeyValueStore<u8, u8> =
    ///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
    /// assert_eq!(store.path(), dir.path());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    /// Stops the background thread, syncs the log and releases the folder,
    /// reporting what dropping the store would ignore.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # use kekbit_kv::{Config, PersistentKeyValueStore};
    /// let store: PersistentKeyValueStore<u8, u8> =
    ///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
    /// store.close()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }
}

impl<K, V> PersistentKeyValueStore<K, V>
where
    K: Serializable,
    V: Deserializable + Serializable,
{
    /// Sets a key to a value. When it returns, the log holds the change
    /// (and, under [`SyncMode::BlockAndSync`], the disk does); readers see
    /// it from then on, never before.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] for a key and value larger than one log record;
    /// [`Error::Io`]/[`Error::Log`] if the log fails, after which the store
    /// refuses writes ([`Error::Stopped`]). On an error memory is unchanged.
    ///
    /// # Example
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use kekbit_kv::{Config, PersistentKeyValueStore};
    /// let store: PersistentKeyValueStore<String, String> =
    ///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
    /// store.set("foo", "1")?;
    /// assert_eq!(store.get("foo"), Some("1".to_string()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set(&self, key: impl Into<K>, value: impl Into<V>) -> Result<()> {
        let key = key.into();
        let value = value.into();
        self.inner
            .put(&key.serialize(), Some(&value.serialize()))
            .map(drop)
    }

    /// The value of a key, if present and decodable as `V` (see
    /// [`try_get`](Self::try_get) to tell the two apart). Borrowed keys
    /// work: `&str` for a `String` key.
    ///
    /// # Example
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use kekbit_kv::{Config, PersistentKeyValueStore};
    /// let store: PersistentKeyValueStore<String, String> =
    ///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
    /// store.set("foo", "1")?;
    /// assert_eq!(store.get("foo"), Some("1".to_string()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Serializable,
    {
        self.try_get(key).ok().flatten()
    }

    /// The value of a key; an error if its bytes do not decode as `V`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # use kekbit_kv::{Config, PersistentKeyValueStore};
    /// let store: PersistentKeyValueStore<String, Vec<u8>> =
    ///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
    /// store.set("bad", vec![0xff])?;
    /// drop(store);
    /// let store: PersistentKeyValueStore<String, String> =
    ///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
    /// assert!(store.try_get("bad").is_err());
    /// assert_eq!(store.get("bad"), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_get<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Serializable,
    {
        match self.inner.read(&key.serialize(), V::try_from_bytes) {
            None => Ok(None),
            Some(Ok(v)) => Ok(Some(v)),
            Some(Err(e)) => Err(e.into()),
        }
    }

    /// Values of several keys read at one instant: all their shards are
    /// read-locked together, so a batch is seen whole or not at all.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # use kekbit_kv::{Config, PersistentKeyValueStore};
    /// let store: PersistentKeyValueStore<u32, u32> =
    ///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
    /// store.set(1u32, 10u32)?;
    /// assert_eq!(store.get_many(&[&1, &2]), vec![Some(10), None]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_many<Q>(&self, keys: &[&Q]) -> Vec<Option<V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Serializable,
    {
        let keys: Vec<_> = keys.iter().map(|k| k.serialize()).collect();
        let raw = self.inner.read_many(keys.iter().map(|k| &k[..]));
        raw.into_iter()
            .map(|v| v.and_then(|b| V::try_from_bytes(&b).ok()))
            .collect()
    }

    /// Removes a key; returns its old value.
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set); [`Error::Decode`] if the old value does not
    /// decode as `V` (the key is removed even then).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # use kekbit_kv::{Config, PersistentKeyValueStore};
    /// let store: PersistentKeyValueStore<String, String> =
    ///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
    /// store.set("k", "v")?;
    /// assert_eq!(store.remove("k")?, Some("v".to_string()));
    /// assert_eq!(store.remove("k")?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Serializable,
    {
        match self.inner.put(&key.serialize(), None)? {
            None => Ok(None),
            Some(old) => Ok(Some(V::try_from_bytes(old.value())?)),
        }
    }

    /// Sets `key` to `new` only if its value is `expected` (`None`: absent;
    /// a `new` of `None` removes it). Returns whether it did.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # use kekbit_kv::{Config, PersistentKeyValueStore};
    /// let store: PersistentKeyValueStore<String, String> =
    ///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
    /// assert!(store.compare_and_swap("k", None, Some("a"))?);
    /// assert!(!store.compare_and_swap("k", None, Some("b"))?);
    /// assert!(store.compare_and_swap("k", Some("a"), Some("b"))?);
    /// assert_eq!(store.get("k"), Some("b".to_string()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn compare_and_swap<E>(
        &self,
        key: impl Into<K>,
        expected: Option<&E>,
        new: Option<&E>,
    ) -> Result<bool>
    where
        V: Borrow<E>,
        E: ?Sized + Serializable,
    {
        let key = key.into();
        let expected = expected.map(|e| e.serialize());
        let new = new.map(|n| n.serialize());
        self.inner
            .cas(&key.serialize(), expected.as_deref(), new.as_deref())
    }
}

impl<K, V> PersistentKeyValueStore<K, V>
where
    K: Deserializable + Serializable,
    V: Deserializable + Serializable,
{
    /// The entries, as of one instant per shard: each shard is copied under
    /// its read lock (writers to it wait that long, no longer), then its
    /// entries are handed out. A change made while the iterator runs may or
    /// may not be seen, and a batch spanning shards may be seen in part;
    /// entries that do not decode as `(K, V)` are skipped (see
    /// [`try_iter`](Self::try_iter)).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # use kekbit_kv::{Config, PersistentKeyValueStore};
    /// let store: PersistentKeyValueStore<String, String> =
    ///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
    /// store.set("a", "1")?;
    /// let all: Vec<(String, String)> = store.iter().collect();
    /// assert_eq!(all, vec![("a".to_string(), "1".to_string())]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter(&self) -> Box<dyn Iterator<Item = (K, V)> + '_> {
        Box::new(self.try_iter().filter_map(|r| r.ok()))
    }

    /// As [`iter`](Self::iter), but an entry that does not decode is an
    /// error instead of being skipped.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # use kekbit_kv::{Config, PersistentKeyValueStore};
    /// let store: PersistentKeyValueStore<u8, u8> =
    ///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
    /// store.set(1u8, 1u8)?;
    /// assert_eq!(store.try_iter().collect::<Result<Vec<_>, _>>()?, vec![(1, 1)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_iter(&self) -> impl Iterator<Item = Result<(K, V)>> + '_ {
        ShardCopies::new(&self.inner.map).map(|(k, v)| decode_pair(&k, &v))
    }
}

fn decode_pair<K: Deserializable, V: Deserializable>(k: &[u8], v: &[u8]) -> Result<(K, V)> {
    Ok((K::try_from_bytes(k)?, V::try_from_bytes(v)?))
}

/// Copies the map one shard at a time.
struct ShardCopies<'a> {
    map: &'a Map,
    next: usize,
    buf: std::vec::IntoIter<(Vec<u8>, Vec<u8>)>,
}

impl<'a> ShardCopies<'a> {
    fn new(map: &'a Map) -> Self {
        ShardCopies {
            map,
            next: 0,
            buf: Vec::new().into_iter(),
        }
    }
}

impl Iterator for ShardCopies<'_> {
    type Item = (Vec<u8>, Vec<u8>);
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.buf.next() {
                return Some(e);
            }
            let shard = self.map.shards().get(self.next)?;
            self.next += 1;
            let t = shard.table.read();
            let copy: Vec<_> = t
                .iter()
                .map(|e| (e.key().to_vec(), e.value().to_vec()))
                .collect();
            drop(t);
            self.buf = copy.into_iter();
        }
    }
}

impl<K, V> IntoIterator for PersistentKeyValueStore<K, V>
where
    K: Deserializable + Serializable,
    V: Deserializable + Serializable,
{
    type Item = (K, V);
    type IntoIter = Box<dyn Iterator<Item = (K, V)> + 'static>;

    /// Closes the store (the files stay) and hands out its entries.
    fn into_iter(mut self) -> Self::IntoIter {
        let _ = self.shutdown();
        let inner = self.inner.clone();
        let shards = inner.map.shards().len();
        Box::new(
            (0..shards)
                .flat_map(move |i| {
                    let entries: Vec<Entry> = inner.map.shard(i).table.write().drain().collect();
                    entries
                })
                .filter_map(|e| decode_pair(e.key(), e.value()).ok()),
        )
    }
}

impl<'a, K, V> IntoIterator for &'a PersistentKeyValueStore<K, V>
where
    K: Deserializable + Serializable,
    V: Deserializable + Serializable,
{
    type Item = (K, V);
    type IntoIter = Box<dyn Iterator<Item = (K, V)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<K, V> fmt::Debug for PersistentKeyValueStore<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (n, bytes) = self.inner.map.size();
        write!(
            f,
            "PersistentKeyValueStore({n} elements, {} KiB total size)",
            bytes / 1024
        )
    }
}

impl<K, V> Drop for PersistentKeyValueStore<K, V> {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

impl<K, V> PersistentKeyValueStore<K, V> {
    fn shutdown(&mut self) -> Result<()> {
        if let Some(worker) = self.worker.take() {
            self.inner.stop.store(true, Ordering::Release);
            {
                let mut w = self.inner.wake.lock();
                *w = true;
                self.inner.wake_cv.notify_all();
            }
            let _ = worker.join();
            if !self.inner.has_failed.load(Ordering::Acquire) {
                self.inner.log.sync()?;
            }
        }
        Ok(())
    }
}

#[cfg(feature = "prost")]
impl<K, V> PersistentKeyValueStore<K, V>
where
    K: Serializable,
    V: prost::Message + Default,
{
    /// Sets a key to a protobuf-coded value.
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use kekbit_kv::{Config, PersistentKeyValueStore};
    /// #[derive(Clone, PartialEq, prost::Message)]
    /// pub struct Foo {
    ///     #[prost(uint32, tag = "1")]
    ///     pub bar: u32,
    /// }
    /// let store: PersistentKeyValueStore<String, Foo> =
    ///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
    /// store.set_proto("foo", Foo { bar: 42 })?;
    /// assert_eq!(store.get_proto("foo")?, Some(Foo { bar: 42 }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_proto(&self, key: impl Into<K>, value: impl prost::Message) -> Result<()> {
        let key = key.into();
        self.inner
            .put(&key.serialize(), Some(&value.encode_to_vec()))
            .map(drop)
    }

    /// The protobuf-coded value of a key.
    ///
    /// # Errors
    ///
    /// prost's decode error for bytes that are not a `V`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # use kekbit_kv::{Config, PersistentKeyValueStore};
    /// # #[derive(Clone, PartialEq, prost::Message)]
    /// # pub struct Foo { #[prost(uint32, tag = "1")] pub bar: u32 }
    /// let store: PersistentKeyValueStore<String, Foo> =
    ///     PersistentKeyValueStore::new(dir.path(), Config::default())?;
    /// assert_eq!(store.get_proto("missing")?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_proto<Q>(&self, key: &Q) -> std::result::Result<Option<V>, prost::DecodeError>
    where
        K: Borrow<Q>,
        Q: ?Sized + Serializable,
    {
        self.inner
            .read(&key.serialize(), |b| V::decode(b))
            .transpose()
    }
}

impl Inner {
    fn open(dir: &Path, config: Config) -> Result<Inner> {
        let started = Instant::now();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create the store's folder", e))?;
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        // The log's lock is the store's: taken before anything is read.
        let log = Log::open(&dir, config.log_segment_bytes)?;
        let files = snapshot::list(&dir)?;
        for tmp in &files.temporaries {
            std::fs::remove_file(tmp).map_err(|e| Error::io(tmp, "delete a stale temporary", e))?;
        }
        let map = Map::new(shard_count(&config));
        let manifest = match Manifest::read(&dir)? {
            Some(m) => m,
            None if !files.snapshots.is_empty() => {
                return Err(Error::Unrecoverable {
                    dir,
                    reason: format!(
                        "{} snapshot files but no MANIFEST to say which is complete \
                         (run `kekbit kv info` on the folder)",
                        files.snapshots.len()
                    ),
                });
            }
            None => {
                let m = Manifest::default();
                m.publish(&dir)?;
                m
            }
        };
        let first = log.first_position();
        let end = log.end_position();
        let mut failures = Vec::new();
        let mut chosen = None;
        for info in &manifest.snapshots {
            if info.log_position > end {
                // The log was synced past this point before the snapshot was
                // published: losing it is damage, not a crash, and the
                // snapshot may hold changes the lost log ordered after others
                // it does not hold.
                failures.push(format!(
                    "{}: the log ends at {end}, before its position {} (synced log data was lost)",
                    snapshot::snapshot_name(info.seq),
                    info.log_position
                ));
                continue;
            }
            if info.log_position < first {
                failures.push(format!(
                    "{}: the log no longer reaches back to its position {} (it starts at {first})",
                    snapshot::snapshot_name(info.seq),
                    info.log_position
                ));
                continue;
            }
            map.reserve(usize::try_from(info.entries).unwrap_or(0).min(1 << 32));
            match snapshot::read(&dir, info, |k, v| map.apply_locked(k, Some(v))) {
                Ok(()) => {
                    chosen = Some(*info);
                    break;
                }
                Err(e) => {
                    map.clear_all();
                    failures.push(e.to_string());
                }
            }
        }
        if chosen.is_none() && !manifest.snapshots.is_empty() {
            return Err(Error::Unrecoverable {
                dir,
                reason: failures.join("; "),
            });
        }
        if chosen.is_none() && first > 0 {
            return Err(Error::Unrecoverable {
                dir,
                reason: format!("no snapshot, and the log starts at {first}, not at 0"),
            });
        }
        if !failures.is_empty() && !config.silent {
            eprintln!(
                "kekbit-kv: {}: fell back to an older snapshot: {}",
                dir.display(),
                failures.join("; ")
            );
        }
        let from = chosen.map_or(first, |c| c.log_position);
        let mut replayed = 0u64;
        let log_dir = log.dir().to_path_buf();
        log.replay(from, |pos, payload| {
            replayed += 1;
            record::decode(payload, |op| match op {
                Op::Set(k, v) => map.apply_locked(k, Some(v)),
                Op::Delete(k) => map.apply_locked(k, None),
                Op::Clear => map.clear_all(),
            })
            .map_err(|why| Error::corrupt(&log_dir, format!("record at position {pos}: {why}")))
        })?;
        if !config.silent {
            println!(
                "kekbit-kv: restored {} from {} and {replayed} log records in {:?}",
                dir.display(),
                chosen.map_or("no snapshot".to_string(), |c| snapshot::snapshot_name(
                    c.seq
                )),
                started.elapsed()
            );
        }
        let next_seq = files
            .snapshots
            .iter()
            .copied()
            .chain(manifest.snapshots.iter().map(|s| s.seq))
            .max()
            .map_or(1, |s| s + 1);
        Ok(Inner {
            mods: AtomicU64::new(replayed),
            snapshot_position: AtomicU64::new(from),
            snapshot_bytes: AtomicU64::new(chosen.map_or(0, |c| c.file_bytes)),
            snap: Mutex::new(SnapState {
                manifest,
                next_seq,
                last_at: None,
                last_error: None,
            }),
            dir,
            config,
            map,
            log,
            wake: Mutex::new(false),
            wake_cv: Condvar::new(),
            pending: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            failed: Mutex::new(None),
            has_failed: AtomicBool::new(false),
        })
    }

    fn check_open(&self) -> Result<()> {
        if self.has_failed.load(Ordering::Acquire) {
            let why = self.failed.lock().clone().unwrap_or_default();
            return Err(Error::Stopped { reason: why });
        }
        Ok(())
    }

    /// Logs one record as the sync mode asks. An error of the log itself
    /// (not a too-large record) stops all later writes.
    fn log_record(&self, rec: &[u8]) -> Result<u64> {
        let r = match self.config.sync_mode {
            SyncMode::BlockAndSync => self.log.append_durable(rec),
            SyncMode::BlockNoExplicitSync | SyncMode::Buffered => self.log.append(rec),
        };
        if let Err(e) = &r {
            if !matches!(e, Error::TooLarge { .. }) {
                *self.failed.lock() = Some(format!("the log failed: {e}"));
                self.has_failed.store(true, Ordering::Release);
            }
        }
        r
    }

    fn with_record<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        RECORD.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buf) => {
                buf.clear();
                let r = f(&mut buf);
                if buf.capacity() > 1 << 20 {
                    *buf = Vec::new();
                }
                r
            }
            Err(_) => f(&mut Vec::new()),
        })
    }

    fn locate(&self, key: &[u8]) -> (u64, &Shard) {
        let hash = self.map.hash(key);
        (hash, self.map.shard(self.map.shard_index(hash)))
    }

    fn read<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let (hash, shard) = self.locate(key);
        let t = shard.table.read();
        t.get(hash, key).map(|e| f(e.value()))
    }

    fn read_many<'k>(&self, keys: impl Iterator<Item = &'k [u8]>) -> Vec<Option<Vec<u8>>> {
        let located: Vec<(u64, usize, &[u8])> = keys
            .map(|k| {
                let h = self.map.hash(k);
                (h, self.map.shard_index(h), k)
            })
            .collect();
        let mut idx: Vec<usize> = located.iter().map(|l| l.1).collect();
        idx.sort_unstable();
        idx.dedup();
        let guards: Vec<_> = idx
            .iter()
            .map(|&i| (i, self.map.shard(i).table.read()))
            .collect();
        located
            .iter()
            .map(|(h, s, k)| {
                let g = &guards[guards.binary_search_by_key(s, |g| g.0).unwrap_or(0)].1;
                g.get(*h, k).map(|e| e.value().to_vec())
            })
            .collect()
    }

    /// Sets (`Some`) or removes (`None`) one key; a removal returns the old
    /// entry.
    fn put(&self, key: &[u8], value: Option<&[u8]>) -> Result<Option<Entry>> {
        self.check_open()?;
        let (hash, shard) = self.locate(key);
        let writer = shard.writer.lock();
        Self::with_record(|rec| {
            match value {
                Some(v) => record::encode_set(rec, key, v),
                None => record::encode_delete(rec, key),
            }
            self.log_record(rec)
        })?;
        let old = {
            let mut t = shard.table.write();
            match value {
                Some(v) => {
                    t.set(&self.map, hash, key, v);
                    None
                }
                None => t.remove(hash, key),
            }
        };
        drop(writer);
        self.after_write(1);
        Ok(old)
    }

    fn cas(&self, key: &[u8], expected: Option<&[u8]>, new: Option<&[u8]>) -> Result<bool> {
        self.check_open()?;
        let (hash, shard) = self.locate(key);
        let writer = shard.writer.lock();
        let matches = {
            let t = shard.table.read();
            t.get(hash, key).map(Entry::value) == expected
        };
        if !matches {
            return Ok(false);
        }
        Self::with_record(|rec| {
            match new {
                Some(v) => record::encode_set(rec, key, v),
                None => record::encode_delete(rec, key),
            }
            self.log_record(rec)
        })?;
        {
            let mut t = shard.table.write();
            self.map.apply(&mut t, hash, key, new);
        }
        drop(writer);
        self.after_write(1);
        Ok(true)
    }

    fn batch(&self, ops: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()> {
        self.check_open()?;
        if ops.is_empty() {
            return Ok(());
        }
        let located: Vec<(u64, usize)> = ops
            .iter()
            .map(|(k, _)| {
                let h = self.map.hash(k);
                (h, self.map.shard_index(h))
            })
            .collect();
        let mut idx: Vec<usize> = located.iter().map(|l| l.1).collect();
        idx.sort_unstable();
        idx.dedup();
        // Shards are always locked in index order, so batches never deadlock.
        let writers: Vec<MutexGuard<'_, ()>> = idx
            .iter()
            .map(|&i| self.map.shard(i).writer.lock())
            .collect();
        Self::with_record(|rec| {
            record::encode_batch(
                rec,
                ops.iter().map(|(k, v)| match v {
                    Some(v) => Op::Set(k, v),
                    None => Op::Delete(k),
                }),
            );
            self.log_record(rec)
        })?;
        {
            let mut tables: Vec<_> = idx
                .iter()
                .map(|&i| self.map.shard(i).table.write())
                .collect();
            for ((k, v), (h, s)) in ops.iter().zip(&located) {
                let at = idx.binary_search(s).unwrap_or(0);
                self.map.apply(&mut tables[at], *h, k, v.as_deref());
            }
        }
        drop(writers);
        self.after_write(ops.len() as u64);
        Ok(())
    }

    fn clear(&self) -> Result<()> {
        self.check_open()?;
        let writers: Vec<_> = self.map.shards().iter().map(|s| s.writer.lock()).collect();
        Self::with_record(|rec| {
            record::encode_clear(rec);
            self.log_record(rec)
        })?;
        {
            let mut tables: Vec<_> = self.map.shards().iter().map(|s| s.table.write()).collect();
            for t in tables.iter_mut() {
                t.clear();
            }
        }
        drop(writers);
        self.after_write(1);
        Ok(())
    }

    /// Counts modifications and wakes the snapshot thread once a snapshot
    /// is due (see `Config::snapshot_interval`).
    fn after_write(&self, n: u64) {
        let mods = self.mods.fetch_add(n, Ordering::Relaxed) + n;
        let interval = self.config.snapshot_interval;
        if interval == 0 || mods < interval || self.pending.load(Ordering::Relaxed) {
            return;
        }
        if !self.snapshot_due() {
            return;
        }
        if !self.pending.swap(true, Ordering::AcqRel) {
            let mut w = self.wake.lock();
            *w = true;
            self.wake_cv.notify_one();
        }
    }

    /// The log since the newest snapshot is larger than half that snapshot
    /// and than `min_compaction_bytes`.
    fn snapshot_due(&self) -> bool {
        let since = self
            .log
            .end_position()
            .saturating_sub(self.snapshot_position.load(Ordering::Relaxed));
        let snap = self.snapshot_bytes.load(Ordering::Relaxed);
        since >= self.config.min_compaction_bytes && since.saturating_mul(2) > snap
    }

    /// The background thread: snapshots when asked; under `Buffered`, syncs
    /// the log every `buffered_sync_interval`.
    fn work(&self) {
        let period = match self.config.sync_mode {
            SyncMode::Buffered => self
                .config
                .buffered_sync_interval
                .max(Duration::from_millis(1)),
            _ => Duration::from_secs(3600),
        };
        loop {
            {
                let mut w = self.wake.lock();
                if !*w {
                    self.wake_cv.wait_for(&mut w, period);
                }
                *w = false;
            }
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            if self.config.sync_mode == SyncMode::Buffered
                && !self.has_failed.load(Ordering::Acquire)
            {
                if let Err(e) = self.log.sync() {
                    self.note_error(&e);
                }
            }
            if self.pending.load(Ordering::Acquire) {
                let ok = match self.take_snapshot() {
                    Ok(_) => true,
                    Err(e) => {
                        self.note_error(&e);
                        false
                    }
                };
                // Writes that came in while it ran may have made the next
                // snapshot due already; writers that find one pending do not
                // ask again, so look now (after a failure, the next write
                // asks again).
                let again = ok
                    && self.config.snapshot_interval > 0
                    && self.mods.load(Ordering::Acquire) >= self.config.snapshot_interval
                    && self.snapshot_due();
                if again {
                    *self.wake.lock() = true;
                } else {
                    self.pending.store(false, Ordering::Release);
                }
            }
        }
    }

    fn note_error(&self, e: &Error) {
        if !self.config.silent {
            eprintln!(
                "kekbit-kv: {}: background snapshot failed: {e}",
                self.dir.display()
            );
        }
        self.snap.lock().last_error = Some(e.to_string());
    }

    fn take_snapshot(&self) -> Result<SnapshotInfo> {
        let started = Instant::now();
        let mut st = self.snap.lock();
        // Everything logged before `from` is in memory by the time its shard
        // is copied: its writer holds the shard until memory has it, and the
        // copy takes the shard's writer lock.
        let from = self.log.end_position();
        let mods_before = self.mods.swap(0, Ordering::AcqRel);
        let seq = st.next_seq;
        st.next_seq += 1;
        let written = snapshot::write(&self.dir, seq, from, |sink| {
            let mut buf = Vec::new();
            for shard in self.map.shards() {
                buf.clear();
                let count = {
                    let _w = shard.writer.lock();
                    let t = shard.table.read();
                    for e in t.iter() {
                        snapshot::encode_entry(&mut buf, e.key(), e.value());
                    }
                    t.len()
                };
                sink.put_entries(&buf, count as u64)?;
            }
            // Every change the copy may hold was logged before this point:
            // make it durable before the snapshot is, so a power loss can
            // never leave a snapshot ahead of the log it builds on.
            self.log.sync()?;
            Ok(())
        });
        let info = match written {
            Ok(info) => info,
            Err(e) => {
                self.mods.fetch_add(mods_before, Ordering::AcqRel);
                return Err(e);
            }
        };
        let mut next = Manifest {
            generation: st.manifest.generation + 1,
            snapshots: vec![info],
        };
        next.snapshots.extend(
            st.manifest
                .snapshots
                .iter()
                .take(self.config.snapshot_backups)
                .copied(),
        );
        if let Err(e) = next.publish(&self.dir) {
            self.mods.fetch_add(mods_before, Ordering::AcqRel);
            return Err(e);
        }
        let dropped: Vec<u64> = st
            .manifest
            .snapshots
            .iter()
            .map(|s| s.seq)
            .filter(|s| !next.snapshots.iter().any(|n| n.seq == *s))
            .collect();
        st.manifest = next;
        st.last_at = Some(SystemTime::now());
        st.last_error = None;
        self.snapshot_position.store(from, Ordering::Release);
        self.snapshot_bytes
            .store(info.file_bytes, Ordering::Release);
        // The new manifest is durable: what it no longer names can go.
        for seq in dropped {
            let path = self.dir.join(snapshot::snapshot_name(seq));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(path, "delete an old snapshot", e)),
            }
        }
        snapshot::sync_dir(&self.dir)?;
        // With backups kept, the log is kept back to the oldest of them, so
        // that a damaged newest snapshot can fall back to a backup.
        let oldest_needed = st
            .manifest
            .snapshots
            .last()
            .map_or(from, |s| s.log_position);
        self.log.truncate_before(oldest_needed)?;
        if !self.config.silent {
            println!(
                "kekbit-kv: {}: published {} ({} entries) in {:?}",
                self.dir.display(),
                snapshot::snapshot_name(seq),
                info.entries,
                started.elapsed()
            );
        }
        Ok(info)
    }

    fn stats(&self) -> Stats {
        let (keys, bytes) = self.map.size();
        let st = self.snap.lock();
        Stats {
            keys,
            bytes,
            log_bytes: self.log.disk_bytes(),
            log_bytes_since_snapshot: self
                .log
                .end_position()
                .saturating_sub(self.snapshot_position.load(Ordering::Acquire)),
            last_snapshot: st.manifest.snapshots.first().copied(),
            last_snapshot_at: st.last_at,
            durable_position: self.log.durable_position(),
            end_position: self.log.end_position(),
            last_snapshot_error: st.last_error.clone(),
        }
    }
}
