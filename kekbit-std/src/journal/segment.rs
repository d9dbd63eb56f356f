//! One segment as the writer holds it: an ordinary channel whose header
//! says which journal it belongs to and where it starts.

use std::fs::{File, OpenOptions};
use std::io;
use std::mem::ManuallyDrop;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use kekbit_nostd::format::{
    HEADER_LEN, IMMUTABLE_HEADER_LEN, MARKER_LEN, PAYLOAD_OFFSET, RECORD_ALIGN,
};
use kekbit_nostd::{Clock, Header, Reader, SeekError, TickUnit, Writer};

use super::error::JournalError;
use super::layout::segment_path;
use super::options::JournalOptions;
use super::retention::Entry;
use crate::clock::SystemClock;
use crate::creation::NewFile;
use crate::error::ChannelError;
use crate::mapping::MappedRegion;
use crate::writer::Pacer;

/// The bytes a record of `len` payload bytes takes in a segment, framing
/// and padding included (as the core lays it out).
#[inline]
pub(crate) const fn record_span(len: u64) -> u64 {
    PAYLOAD_OFFSET as u64 + len.next_multiple_of(RECORD_ALIGN as u64)
}

/// How a new segment file gets its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Publish {
    /// A link that never replaces a file: every new segment.
    Link,
    /// A rename over an empty, closed segment at the same base, which a
    /// reopened journal replaces rather than follow (both cannot have the
    /// same name).
    Replace,
}

/// The segment the writer is writing. Dropping it seals it (the core
/// writer closes on drop) unless it was [`left open`](Self::leave_open).
pub(crate) struct Segment {
    /// Taken only by `drop`.
    pub(crate) writer: ManuallyDrop<Writer<MappedRegion>>,
    /// Journal position of the record area's first byte.
    pub(crate) base: u64,
    pub(crate) path: PathBuf,
    pub(crate) pacer: Pacer,
    /// Dropping must not seal it: the next writer resumes it.
    left_open: bool,
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: `writer` is taken here, once, and never used again: the
        // segment is being dropped.
        let writer = unsafe { ManuallyDrop::take(&mut self.writer) };
        if self.left_open {
            drop(writer.leave_open());
        }
        // Otherwise `writer` is dropped here, which seals the segment.
    }
}

impl Segment {
    /// Writes the header of a segment at `base` into a file made ahead,
    /// then publishes it; returns the segment and its file, whose creation
    /// is not synced yet.
    pub(crate) fn install(
        dir: &Path,
        options: &JournalOptions,
        journal_id: u64,
        base: u64,
        sequence: u64,
        new: NewFile,
        how: Publish,
    ) -> Result<(Self, File), JournalError> {
        let now = SystemClock::new(TickUnit::Millis).now();
        let config = options.segment_config(dir, journal_id, base, sequence, now)?;
        let path = segment_path(dir, base);
        let NewFile { temp, file, region } = new;
        // SAFETY: the file was created with `create_new` under a temporary
        // name unique to this process, by the writer that holds the
        // journal's lock; it becomes visible only through the link (or
        // rename) below; `region` moves into this writer, and the only
        // other handle to it is the syncer's, which only flushes.
        let writer = unsafe { Writer::create_unchecked(region, &config) }.map_err(|source| {
            ChannelError::Config {
                path: path.clone(),
                source,
            }
        })?;
        match how {
            Publish::Link => temp.publish(&path)?,
            Publish::Replace => temp.replace(&path)?,
        }
        let pacer = Pacer::new(writer.header());
        Ok((
            Self {
                writer: ManuallyDrop::new(writer),
                base,
                path,
                pacer,
                left_open: false,
            },
            file,
        ))
    }

    /// A segment resumed by recovery.
    pub(crate) fn resumed(writer: Writer<MappedRegion>, path: PathBuf) -> Self {
        let base = writer.header().base_position;
        let pacer = Pacer::new(writer.header());
        Self {
            writer: ManuallyDrop::new(writer),
            base,
            path,
            pacer,
            left_open: false,
        }
    }

    /// Makes dropping the segment leave it open (no end marker), as a
    /// crash would, so that the next writer resumes it.
    pub(crate) fn leave_open(&mut self) {
        self.left_open = true;
    }

    /// Where the next record goes.
    #[inline]
    pub(crate) fn end(&self) -> u64 {
        self.base + u64::from(self.writer.position())
    }

    /// Whether it holds no record.
    pub(crate) fn is_empty(&self) -> bool {
        self.writer.position() == 0
    }

    /// Its catalog entry.
    pub(crate) fn entry(&self) -> Entry {
        let header = self.writer.header();
        Entry {
            base: self.base,
            path: self.path.clone(),
            file_len: HEADER_LEN as u64 + u64::from(header.capacity_bytes),
            created_millis: creation_millis(header),
        }
    }
}

/// A header's creation time in Unix milliseconds (journals write it in
/// milliseconds; other units are converted).
pub(crate) fn creation_millis(header: &Header) -> u64 {
    header
        .creation_time
        .saturating_mul(header.tick_unit.nanos())
        / 1_000_000
}

/// What a segment file's first bytes say, read without mapping it.
#[derive(Debug)]
pub(crate) enum Probe {
    /// A valid header, and the file's length.
    Valid { header: Header, file_len: u64 },
    /// No valid header: a file whose creation never completed (or damage).
    Invalid,
}

/// Reads and checks the header of the segment file at `path`.
pub(crate) fn probe(path: &Path) -> Result<Probe, JournalError> {
    use std::io::Read;
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| JournalError::io(path, "open the segment", e))?;
    let metadata = file
        .metadata()
        .map_err(|e| JournalError::io(path, "read the segment's metadata", e))?;
    if !metadata.is_file() {
        return Err(JournalError::io(
            path,
            "open the segment",
            io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
        ));
    }
    let mut bytes = [0u8; IMMUTABLE_HEADER_LEN];
    let mut got = 0;
    while got < bytes.len() {
        match file.read(&mut bytes[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(JournalError::io(path, "read the segment's header", e)),
        }
    }
    Ok(match Header::decode(&bytes[..got]) {
        Ok(header) => Probe::Valid {
            header,
            file_len: metadata.len(),
        },
        Err(_) => Probe::Invalid,
    })
}

/// Maps the segment file at `path`, `file_len` bytes long, for writing. A
/// file that power loss left short first gets its length back (the bytes
/// it gains read as zeros: no record), and its space reserved if `reserve`.
pub(crate) fn map_writable(
    path: &Path,
    file_len: u64,
    reserve: bool,
) -> Result<(File, MappedRegion), JournalError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| JournalError::io(path, "open the segment for writing", e))?;
    let len = file
        .metadata()
        .map_err(|e| JournalError::io(path, "read the segment's metadata", e))?
        .len();
    if len < file_len {
        file.set_len(file_len)
            .map_err(|e| JournalError::io(path, "restore the segment's length", e))?;
        if reserve {
            let len = usize::try_from(file_len).unwrap_or(usize::MAX);
            crate::creation::reserve_space(&file, len)
                .map_err(|e| JournalError::io(path, "reserve space for the segment", e))?;
        }
    }
    let len = usize::try_from(file_len).map_err(|_| {
        JournalError::io(
            path,
            "map the segment",
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "too large for this address space",
            ),
        )
    })?;
    let region = MappedRegion::map(&file, len, true).map_err(|e| e.at(path))?;
    Ok((file, region))
}

/// How a segment's records end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// No end marker: the writer may add records (or died).
    Open,
    /// Sealed with the CLOSED marker.
    Closed,
    /// Sealed with the FULL marker.
    Full,
}

/// Where the records of the channel in `region` end, by their framing
/// (checksums are not verified), and how: the offset of the first empty
/// commit word or of the end marker. Damaged framing is an error, which
/// says what is wrong.
pub(crate) fn framing_end<R: kekbit_nostd::Region + ?Sized>(
    region: &R,
) -> Result<(u32, Ending), String> {
    let mut reader = Reader::open(region).map_err(|e| e.to_string())?;
    let last = reader.header().capacity_bytes - MARKER_LEN as u32;
    let end = match reader.seek(last) {
        Ok(()) => last,
        Err(SeekError::BeyondEnd { end, .. }) => end,
        Err(e) => return Err(e.to_string()),
    };
    reader.seek(end).map_err(|e| e.to_string())?;
    let ending = match reader.try_read() {
        Err(kekbit_nostd::ReadError::Closed) => Ending::Closed,
        Err(kekbit_nostd::ReadError::Full) => Ending::Full,
        // Empty, or a record the writer has just added.
        _ => Ending::Open,
    };
    Ok((end, ending))
}
