//! `Config` and `SyncMode`: persistent-kv's names, fields and defaults, with
//! what each means here.

use std::time::Duration;

/// When a change is written down, and what a crash can take.
///
/// Every mode writes each change into the journal (a `memcpy` into a mapped
/// file) before memory changes, so a reader never sees a change that the log
/// does not hold. The modes differ in when the journal is forced to the disk.
///
/// # Example
///
/// ```
/// use kekbit_kv::{Config, SyncMode};
/// let config = Config { sync_mode: SyncMode::BlockAndSync, ..Config::default() };
/// assert_eq!(Config::default().sync_mode, SyncMode::BlockNoExplicitSync);
/// # let _ = config;
/// ```
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum SyncMode {
    /// `set` returns once an `fdatasync` covers the change: nothing that
    /// returned is lost, even on power loss. Concurrent writers share one
    /// sync (group commit), and memory changes only once the sync covers the
    /// change, so no reader sees a value that a power loss could take back.
    BlockAndSync,
    /// The default. `set` returns once the change is in the journal's mapped
    /// pages, which belong to the kernel: a crash of the process loses
    /// nothing that returned. A power loss or kernel crash may lose what the
    /// kernel had not yet written back (by default up to about 30 seconds).
    BlockNoExplicitSync,
    /// As [`BlockNoExplicitSync`](Self::BlockNoExplicitSync) for a process
    /// crash (nothing that returned is lost), plus a bound for a power loss:
    /// a background thread syncs the journal every
    /// [`Config::buffered_sync_interval`] (1 s by default), so a power loss
    /// loses at most the changes of the last interval plus the time one sync
    /// takes. (persistent-kv buffers in user memory here and, with positioned
    /// writes, does nothing at all; our appends are already a `memcpy`, so
    /// this mode adds a bound instead of removing one.)
    Buffered,
}

/// How a store is opened: persistent-kv's fields and defaults, plus ours.
///
/// Code written for persistent-kv that sets its fields compiles unchanged;
/// the fields that mean nothing in this design are accepted and documented
/// as ignored.
///
/// # Example
///
/// ```
/// use kekbit_kv::Config;
/// let config = Config { snapshot_interval: 50_000, silent: true, ..Config::default() };
/// assert_eq!(config.memory_bucket_count, 32);
/// ```
#[derive(Clone, PartialEq, Debug)]
pub struct Config {
    /// Print nothing to stdout when a snapshot is published or the store is
    /// restored (errors of the background snapshot still go to stderr unless
    /// this is set; they are also kept and returned by
    /// [`snapshot`](crate::PersistentKeyValueStore::snapshot) and
    /// [`stats`](crate::PersistentKeyValueStore::stats)). Default `false`.
    pub silent: bool,
    /// The least number of modifications between two automatic snapshots.
    /// Default 10,000.
    ///
    /// persistent-kv takes a full snapshot every `snapshot_interval`
    /// modifications, so loading 1M keys writes a hundred snapshots of a
    /// growing store. Here a snapshot is due only once **both** at least
    /// `snapshot_interval` modifications were logged since the last one
    /// **and** the log since the last snapshot is larger than that snapshot
    /// (and than [`min_compaction_bytes`](Self::min_compaction_bytes)). The
    /// work of compaction is then proportional to the live data, and the disk
    /// holds at most about twice the live data plus one journal segment.
    /// `0` disables automatic snapshots (call
    /// [`snapshot`](crate::PersistentKeyValueStore::snapshot) yourself).
    pub snapshot_interval: u64,
    /// The least number of shards of the in-memory map. Default 32. The
    /// store uses at least 256 shards whatever this says, so that concurrent
    /// writers (which hold their shard while the journal takes their change)
    /// rarely meet; a larger number is rounded up to a power of two.
    pub memory_bucket_count: usize,
    /// See [`SyncMode`]. Default [`SyncMode::BlockNoExplicitSync`].
    pub sync_mode: SyncMode,
    /// Ignored: a snapshot is one file, written by one background thread
    /// while writers go on. Default 8.
    pub target_io_parallelism_snapshots: u64,
    /// Ignored: the write-ahead log is the kekbit journal, one sequence of
    /// segments. Default 1.
    pub target_io_parallelism_writelog: u64,
    /// Ignored: a snapshot is one file. Default 1 GiB.
    pub target_snapshot_shard_size_bytes: usize,
    /// Ignored: the journal writes through a memory mapping. Default `true`
    /// (as persistent-kv's default on Linux).
    pub use_positioned_writes: bool,

    /// How many complete snapshots to keep besides the newest, as backups.
    /// Default 0: an older snapshot is deleted once a newer one is durable.
    /// `kekbit kv prune DIR --keep N` trims them later.
    pub snapshot_backups: usize,
    /// The capacity of each journal segment. Default 2 MiB: segments are
    /// reclaimed whole once a snapshot covers them, and the journal keeps
    /// the one being written and up to two made ready ahead mapped, so small
    /// segments keep both the disk and the mapped memory close to the live
    /// data. One change (a key and its value, or a whole batch) must fit in
    /// one segment: raise this for larger values.
    pub log_segment_bytes: u32,
    /// The least size of the log since the last snapshot before an automatic
    /// snapshot is taken. Default 1 MiB.
    pub min_compaction_bytes: u64,
    /// Under [`SyncMode::Buffered`], how often the background thread syncs
    /// the journal. Default 1 s.
    pub buffered_sync_interval: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            silent: false,
            snapshot_interval: 10_000,
            memory_bucket_count: 32,
            sync_mode: SyncMode::BlockNoExplicitSync,
            target_io_parallelism_snapshots: 8,
            target_io_parallelism_writelog: 1,
            target_snapshot_shard_size_bytes: 1024 * 1024 * 1024,
            use_positioned_writes: true,
            snapshot_backups: 0,
            log_segment_bytes: 2 * 1024 * 1024,
            min_compaction_bytes: 1024 * 1024,
            buffered_sync_interval: Duration::from_secs(1),
        }
    }
}

/// The shards the map uses for a configuration: a power of two, at least 256.
pub(crate) fn shard_count(config: &Config) -> usize {
    config
        .memory_bucket_count
        .clamp(256, 1 << 16)
        .next_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_persistent_kv() {
        let ours = Config::default();
        let theirs = persistent_kv::Config::default();
        assert_eq!(ours.silent, theirs.silent);
        assert_eq!(ours.snapshot_interval, theirs.snapshot_interval);
        assert_eq!(ours.memory_bucket_count, theirs.memory_bucket_count);
        assert_eq!(
            ours.target_io_parallelism_snapshots,
            theirs.target_io_parallelism_snapshots
        );
        assert_eq!(
            ours.target_io_parallelism_writelog,
            theirs.target_io_parallelism_writelog
        );
        assert_eq!(
            ours.target_snapshot_shard_size_bytes,
            theirs.target_snapshot_shard_size_bytes
        );
        assert_eq!(ours.use_positioned_writes, theirs.use_positioned_writes);
        assert_eq!(
            theirs.sync_mode,
            persistent_kv::SyncMode::BlockNoExplicitSync
        );
        assert_eq!(ours.sync_mode, SyncMode::BlockNoExplicitSync);
    }

    #[test]
    fn shard_counts() {
        let mut c = Config::default();
        assert_eq!(shard_count(&c), 256);
        c.memory_bucket_count = 0;
        assert_eq!(shard_count(&c), 256);
        c.memory_bucket_count = 1000;
        assert_eq!(shard_count(&c), 1024);
        c.memory_bucket_count = usize::MAX;
        assert_eq!(shard_count(&c), 1 << 16);
    }
}
