//! How hard the writer works to get records onto the storage device.

/// When the writer flushes records to the file's storage (`msync(MS_SYNC)`,
/// which on Linux also waits for the device to acknowledge the data).
///
/// What each policy survives:
///
/// | policy | process crash (`kill -9`, panic, abort) | OS crash or power loss |
/// | --- | --- | --- |
/// | [`None`](Durability::None) | every published record | whatever the kernel happened to write back (by default within ~30 s); pages may land out of order |
/// | [`OnClose`](Durability::OnClose) | every published record | everything, once [`ShmWriter::close`](crate::ShmWriter::close) has returned `Ok`; before that, as `None` |
/// | [`EveryRecords(n)`](Durability::EveryRecords) | every published record | all but at most the last `n - 1` records (plus any the kernel wrote back anyway) |
/// | [`EveryBytes(n)`](Durability::EveryBytes) | every published record | all but at most the last `n` bytes of records |
/// | [`EveryRecord`](Durability::EveryRecord) | every published record | every record whose write returned `Ok` |
///
/// A process crash loses nothing under any policy: the mapping is shared, so
/// a published record is in the kernel's page cache the moment it is
/// published, and the kernel writes it back whether or not the process
/// lives. Durability matters only for the machine going down.
///
/// After a power loss, a record that was being written back may be torn
/// (its commit word on disk, part of its payload not). Create journals with
/// checksums ([`ChannelConfig::checksums`](kekbit_nostd::ChannelConfig::checksums))
/// so readers report such a record as [`ReadError::Checksum`](kekbit_nostd::ReadError::Checksum)
/// instead of returning it.
///
/// On `/dev/shm` (tmpfs) nothing survives a reboot whatever the policy, and
/// flushes cost almost nothing: the memory is the storage.
///
/// Any policy other than `None` also syncs the new file and its folder
/// (and every folder creation made, up to one that existed) when the
/// channel is created, so the channel itself survives power loss; if that
/// fails, creation fails and leaves no channel behind (see
/// [`WriterOptions::create`](crate::WriterOptions::create)). Under `None`,
/// the first [`ShmWriter::flush`](crate::ShmWriter::flush) does it.
///
/// # Example
///
/// ```
/// use kekbit_std::{Durability, WriterOptions};
/// use kekbit_nostd::ChannelConfig;
///
/// // A journal on disk that loses at most the last 64 records on power loss.
/// let options = WriterOptions::new(ChannelConfig::new(7).checksums(true))
///     .durability(Durability::EveryRecords(64));
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Never flush; the kernel writes pages back when it chooses.
    #[default]
    None,
    /// Flush once, when the writer is closed (or dropped).
    OnClose,
    /// Flush after every `n` records (`0` counts as 1), and on close.
    EveryRecords(u64),
    /// Flush once `n` bytes of records (framing included) are unflushed,
    /// and on close.
    EveryBytes(u64),
    /// Flush after every record, before `write` returns.
    EveryRecord,
}

impl Durability {
    /// Whether the writer flushes at all: at creation and at close.
    pub(crate) fn flushes(self) -> bool {
        self != Self::None
    }
}
