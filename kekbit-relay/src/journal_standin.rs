//! TEMPORARY stand-in for `kekbit_std::journal` (issue 11, not on main
//! yet), with the names and position rules of /work/notes/JOURNAL_API.md.
//! It is deleted when the real journal lands; nothing here is part of the
//! relay's API.
//!
//! Storage: `standin.meta` (journal id, segment bytes, max record length)
//! and `standin.log`, a sequence of frames `[u32 kind][u32 len][payload,
//! padded to 8]`: kind 1 a record, 2 a batch marker (8 position bytes),
//! 3 a roll (a new segment starts at the current end), 4 closed.
#![allow(missing_docs, clippy::missing_errors_doc)]

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

const RECORD: u32 = 1;
const GAP: u32 = 2;
const ROLL: u32 = 3;
const CLOSED: u32 = 4;

#[derive(Debug)]
pub enum JournalError {
    Locked {
        dir: PathBuf,
        pid: Option<u32>,
    },
    BeyondEnd {
        dir: PathBuf,
        position: u64,
        end: u64,
    },
    NotARecordBoundary {
        dir: PathBuf,
        position: u64,
    },
    NotAJournal {
        dir: PathBuf,
        reason: String,
    },
    TooLarge {
        len: usize,
        max: u32,
    },
    Closed {
        dir: PathBuf,
    },
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
}

impl std::fmt::Display for JournalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Locked { dir, pid } => {
                write!(f, "{}: locked by another writer ({pid:?})", dir.display())
            }
            Self::BeyondEnd { dir, position, end } => {
                write!(
                    f,
                    "{}: position {position} is beyond the end {end}",
                    dir.display()
                )
            }
            Self::NotARecordBoundary { dir, position } => {
                write!(f, "{}: {position} is not a record boundary", dir.display())
            }
            Self::NotAJournal { dir, reason } => {
                write!(f, "{}: not a journal: {reason}", dir.display())
            }
            Self::TooLarge { len, max } => {
                write!(f, "record of {len} bytes is over the maximum {max}")
            }
            Self::Closed { dir } => write!(f, "{}: closed", dir.display()),
            Self::Io {
                path,
                action,
                source,
            } => write!(f, "{}: {action}: {source}", path.display()),
        }
    }
}

impl std::error::Error for JournalError {}

fn io_err<'p>(path: &'p Path, action: &'static str) -> impl FnOnce(io::Error) -> JournalError + 'p {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}

#[derive(Clone, Debug)]
pub struct JournalOptions {
    segment_bytes: u32,
    max_record_len: Option<u32>,
    journal_id: Option<u64>,
}

impl Default for JournalOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl JournalOptions {
    pub fn new() -> Self {
        Self {
            segment_bytes: 64 << 20,
            max_record_len: None,
            journal_id: None,
        }
    }
    pub fn segment_bytes(mut self, bytes: u32) -> Self {
        self.segment_bytes = bytes;
        self
    }
    pub fn max_record_len(mut self, len: u32) -> Self {
        self.max_record_len = Some(len);
        self
    }
    pub fn journal_id(mut self, id: u64) -> Self {
        self.journal_id = Some(id);
        self
    }
    pub fn checksums(self, _on: bool) -> Self {
        self
    }
    pub fn prefault(self, _on: bool) -> Self {
        self
    }
    pub fn open_writer(&self, dir: impl AsRef<Path>) -> Result<JournalWriter, JournalError> {
        JournalWriter::open_with(dir.as_ref(), self)
    }
}

#[derive(Clone, Copy, Debug)]
struct Meta {
    journal_id: u64,
    segment_bytes: u32,
    max_record_len: u32,
}

fn read_meta(dir: &Path) -> Result<Meta, JournalError> {
    let path = dir.join("standin.meta");
    let bytes = fs::read(&path).map_err(|e| JournalError::NotAJournal {
        dir: dir.into(),
        reason: e.to_string(),
    })?;
    if bytes.len() != 16 {
        return Err(JournalError::NotAJournal {
            dir: dir.into(),
            reason: "bad meta".into(),
        });
    }
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap_or([0; 8]));
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap_or([0; 4]));
    Ok(Meta {
        journal_id: u64_at(0),
        segment_bytes: u32_at(8),
        max_record_len: u32_at(12),
    })
}

/// One frame read from the log.
enum Raw {
    Incomplete,
    Frame { kind: u32, len: u32, next: u64 },
}

fn read_frame(file: &File, offset: u64, buf: &mut Vec<u8>) -> io::Result<Raw> {
    let mut head = [0u8; 8];
    let n = read_at_most(file, &mut head, offset)?;
    if n < 8 {
        return Ok(Raw::Incomplete);
    }
    let kind = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if kind == 0 {
        return Ok(Raw::Incomplete);
    }
    let padded = (len as usize).next_multiple_of(8);
    buf.resize(padded, 0);
    let n = read_at_most(file, buf, offset + 8)?;
    if n < padded {
        return Ok(Raw::Incomplete);
    }
    buf.truncate(len as usize);
    Ok(Raw::Frame {
        kind,
        len,
        next: offset + 8 + padded as u64,
    })
}

fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64)? {
            0 => break,
            n => done += n,
        }
    }
    Ok(done)
}

pub struct JournalWriter {
    dir: PathBuf,
    log: File,
    _lock: File,
    meta: Meta,
    offset: u64,
    end: u64,
    segment_base: u64,
}

impl JournalWriter {
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, JournalError> {
        JournalOptions::new().open_writer(dir)
    }

    fn open_with(dir: &Path, options: &JournalOptions) -> Result<Self, JournalError> {
        fs::create_dir_all(dir).map_err(io_err(dir, "create the folder"))?;
        let lock_path = dir.join("writer.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path, "open the lock"))?;
        // SAFETY: plain FFI call on a descriptor we own.
        if unsafe { libc_flock(&lock) } != 0 {
            return Err(JournalError::Locked {
                dir: dir.into(),
                pid: None,
            });
        }
        let meta_path = dir.join("standin.meta");
        if !meta_path.exists() {
            let id = options.journal_id.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64 ^ u64::from(std::process::id()))
            });
            let max = options.max_record_len.unwrap_or(options.segment_bytes - 16);
            let mut bytes = Vec::new();
            bytes.extend_from_slice(&id.to_le_bytes());
            bytes.extend_from_slice(&options.segment_bytes.to_le_bytes());
            bytes.extend_from_slice(&max.to_le_bytes());
            fs::write(&meta_path, bytes).map_err(io_err(&meta_path, "write the meta"))?;
        }
        let meta = read_meta(dir)?;
        let log_path = dir.join("standin.log");
        let log = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&log_path)
            .map_err(io_err(&log_path, "open the log"))?;
        let mut writer = Self {
            dir: dir.into(),
            log,
            _lock: lock,
            meta,
            offset: 0,
            end: 0,
            segment_base: 0,
        };
        let mut buf = Vec::new();
        let mut closed = false;
        loop {
            match read_frame(&writer.log, writer.offset, &mut buf)
                .map_err(io_err(&log_path, "read"))?
            {
                Raw::Incomplete => break,
                Raw::Frame { kind, len, next } => {
                    closed = false;
                    match kind {
                        RECORD => writer.end += 8 + u64::from(len).next_multiple_of(8),
                        GAP => writer.end += 8,
                        ROLL => writer.segment_base = writer.end,
                        _ => closed = true,
                    }
                    writer.offset = next;
                }
            }
        }
        writer
            .log
            .set_len(writer.offset)
            .map_err(io_err(&log_path, "truncate"))?;
        if closed {
            writer.frame(ROLL, &[])?;
            writer.segment_base = writer.end;
        }
        Ok(writer)
    }

    fn frame(&mut self, kind: u32, payload: &[u8]) -> Result<(), JournalError> {
        let mut bytes = Vec::with_capacity(8 + payload.len().next_multiple_of(8));
        bytes.extend_from_slice(&kind.to_le_bytes());
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(payload);
        bytes.resize(8 + payload.len().next_multiple_of(8), 0);
        self.log
            .write_all_at(&bytes, self.offset)
            .map_err(io_err(&self.dir, "append"))?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    fn fit(&mut self, bytes: u64) -> Result<(), JournalError> {
        if self.end - self.segment_base + bytes + 8 > u64::from(self.meta.segment_bytes) {
            self.roll()?;
        }
        Ok(())
    }

    pub fn append(&mut self, record: &[u8]) -> Result<u64, JournalError> {
        if record.len() > self.meta.max_record_len as usize {
            return Err(JournalError::TooLarge {
                len: record.len(),
                max: self.meta.max_record_len,
            });
        }
        self.fit(8 + (record.len() as u64).next_multiple_of(8))?;
        let position = self.end;
        self.frame(RECORD, record)?;
        self.end += 8 + (record.len() as u64).next_multiple_of(8);
        Ok(position)
    }

    pub fn append_all(&mut self, records: &[&[u8]]) -> Result<u64, JournalError> {
        let mut total = 8;
        for r in records {
            if r.len() > self.meta.max_record_len as usize {
                return Err(JournalError::TooLarge {
                    len: r.len(),
                    max: self.meta.max_record_len,
                });
            }
            total += 8 + (r.len() as u64).next_multiple_of(8);
        }
        self.fit(total)?;
        self.frame(GAP, &[])?;
        self.end += 8;
        let first = self.end;
        for r in records {
            self.frame(RECORD, r)?;
            self.end += 8 + (r.len() as u64).next_multiple_of(8);
        }
        Ok(first)
    }

    pub fn roll(&mut self) -> Result<u64, JournalError> {
        self.frame(ROLL, &[])?;
        self.segment_base = self.end;
        Ok(self.end)
    }

    pub fn sync(&mut self) -> Result<u64, JournalError> {
        self.log.sync_data().map_err(io_err(&self.dir, "sync"))?;
        Ok(self.end)
    }

    pub fn end_position(&self) -> u64 {
        self.end
    }

    pub fn journal_id(&self) -> u64 {
        self.meta.journal_id
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn close(mut self) -> Result<(), JournalError> {
        self.frame(CLOSED, &[])
    }

    /// Stand-in for the real writer's segment base (the relay tracks it).
    pub fn segment_base(&self) -> u64 {
        self.segment_base
    }
}

unsafe fn libc_flock(file: &File) -> i32 {
    unsafe extern "C" {
        fn flock(fd: i32, op: i32) -> i32;
    }
    // SAFETY: flock takes any descriptor; LOCK_EX | LOCK_NB = 2 | 4.
    unsafe { flock(std::os::fd::AsRawFd::as_raw_fd(file), 6) }
}

#[derive(Clone, Copy, Debug)]
pub enum Start {
    Beginning,
    End,
    Position(u64),
}

pub struct JournalRecord<'r> {
    pub position: u64,
    pub payload: &'r [u8],
}

pub struct JournalReader {
    dir: PathBuf,
    log: File,
    meta: Meta,
    offset: u64,
    position: u64,
    segment_base: u64,
    buf: Vec<u8>,
}

impl JournalReader {
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, JournalError> {
        Self::open_at(dir, Start::Beginning)
    }

    pub fn open_at(dir: impl AsRef<Path>, start: Start) -> Result<Self, JournalError> {
        let dir = dir.as_ref();
        let meta = read_meta(dir)?;
        let log_path = dir.join("standin.log");
        let log = File::open(&log_path).map_err(io_err(&log_path, "open"))?;
        let mut reader = Self {
            dir: dir.into(),
            log,
            meta,
            offset: 0,
            position: 0,
            segment_base: 0,
            buf: Vec::new(),
        };
        match start {
            Start::Beginning => {}
            Start::End => reader.seek(u64::MAX)?,
            Start::Position(p) => reader.seek(p)?,
        }
        Ok(reader)
    }

    pub fn journal_id(&self) -> u64 {
        self.meta.journal_id
    }

    pub fn position(&self) -> u64 {
        self.position
    }

    pub fn segment_base(&self) -> u64 {
        self.segment_base
    }

    /// Stand-in: the capacity of the journal's segments.
    pub fn segment_bytes(&self) -> u32 {
        self.meta.segment_bytes
    }

    /// Stand-in: the longest record the journal allows.
    pub fn max_record_len(&self) -> u32 {
        self.meta.max_record_len
    }

    pub fn seek(&mut self, position: u64) -> Result<(), JournalError> {
        self.offset = 0;
        self.position = 0;
        self.segment_base = 0;
        loop {
            if self.position == position {
                return Ok(());
            }
            let at = (self.offset, self.position, self.segment_base);
            match self.step()? {
                Some(_) => {}
                None => {
                    if position == u64::MAX {
                        return Ok(());
                    }
                    return Err(JournalError::BeyondEnd {
                        dir: self.dir.clone(),
                        position,
                        end: self.position,
                    });
                }
            }
            if self.position > position {
                (self.offset, self.position, self.segment_base) = at;
                return Err(JournalError::NotARecordBoundary {
                    dir: self.dir.clone(),
                    position,
                });
            }
        }
    }

    /// Advances over one record; `None` at the end of what is written.
    fn step(&mut self) -> Result<Option<u64>, JournalError> {
        loop {
            let raw = read_frame(&self.log, self.offset, &mut self.buf)
                .map_err(io_err(&self.dir, "read"))?;
            let Raw::Frame { kind, len, next } = raw else {
                return Ok(None);
            };
            match kind {
                RECORD => {
                    let position = self.position;
                    self.offset = next;
                    self.position += 8 + u64::from(len).next_multiple_of(8);
                    return Ok(Some(position));
                }
                GAP => self.position += 8,
                ROLL => self.segment_base = self.position,
                _ => {
                    let mut probe = [0u8; 8];
                    if read_at_most(&self.log, &mut probe, next)
                        .map_err(io_err(&self.dir, "read"))?
                        < 8
                    {
                        return Err(JournalError::Closed {
                            dir: self.dir.clone(),
                        });
                    }
                }
            }
            self.offset = next;
        }
    }

    pub fn try_read(&mut self) -> Result<Option<JournalRecord<'_>>, JournalError> {
        match self.step() {
            Ok(Some(position)) => Ok(Some(JournalRecord {
                position,
                payload: &self.buf,
            })),
            Ok(None) => Ok(None),
            Err(JournalError::Closed { dir }) => Err(JournalError::Closed { dir }),
            Err(e) => Err(e),
        }
    }

    pub fn read_timeout(&mut self, t: Duration) -> Result<Option<JournalRecord<'_>>, JournalError> {
        let deadline = std::time::Instant::now() + t;
        loop {
            if self.step_ready()? {
                return self.try_read();
            }
            if std::time::Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    fn step_ready(&mut self) -> Result<bool, JournalError> {
        let mut probe = [0u8; 8];
        Ok(
            read_at_most(&self.log, &mut probe, self.offset).map_err(io_err(&self.dir, "read"))?
                == 8,
        )
    }
}
