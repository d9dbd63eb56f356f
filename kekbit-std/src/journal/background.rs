//! The writer's background threads. One is Chronicle's pre-toucher: it
//! creates and pre-faults the next segment file while the writer fills the
//! current one. The other takes the slow steps of a roll off the writer's
//! path: unmapping the old segment, syncing it and advancing the
//! checkpoint, deleting what retention no longer keeps. Two threads, so a
//! slow device never delays the next segment file.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;

use super::durable::sync_file;
use super::error::JournalError;
use super::lock::LockNote;
use super::retention::{Retained, delete};
use crate::creation::{self, NewFile};
use crate::error::ChannelError;

/// The most segment files kept made ahead.
const MAX_AHEAD: usize = 2;

/// How to make a segment file ahead of time.
#[derive(Debug, Clone)]
pub(crate) struct FileSpec {
    /// Temporary names are made beside it; errors name it.
    pub(crate) stem: PathBuf,
    pub(crate) file_len: usize,
    pub(crate) mode: u32,
    pub(crate) prefault: bool,
}

impl FileSpec {
    fn prepare(&self) -> Result<NewFile, ChannelError> {
        creation::prepare(&self.stem, self.file_len, self.mode, self.prefault)
    }
}

/// A job for the maintenance thread.
enum Job {
    /// Drop this (an old segment's writer: unmapping costs).
    Dispose(Box<dyn Any + Send>),
    /// A segment was sealed at journal position `end`: sync it, then move
    /// the checkpoint there if every earlier one is synced too.
    Sealed { path: PathBuf, end: u64 },
    /// Delete these segments, then sync the folder.
    Delete(Vec<PathBuf>),
}

/// The handle the writer keeps on its background threads.
pub(crate) struct Background {
    /// Each message asks the pre-toucher for one more file.
    prepare: Option<Sender<()>>,
    ready: Receiver<Result<NewFile, ChannelError>>,
    /// Files asked for and not taken yet.
    requested: usize,
    /// How many files to keep asked for: 1, or [`MAX_AHEAD`] once a roll
    /// had to wait for one (the pre-toucher is slower than the writer).
    ahead: usize,
    jobs: Option<Sender<Job>>,
    spec: FileSpec,
    threads: Vec<JoinHandle<()>>,
}

impl Background {
    /// Starts the thread for the journal in `dir`, and asks it for the
    /// first file ahead.
    pub(crate) fn start(
        dir: &Path,
        spec: FileSpec,
        retained: Arc<Retained>,
        note: Option<Arc<LockNote>>,
    ) -> Result<Self, JournalError> {
        let (prepare, asks) = mpsc::channel::<()>();
        let (outbox, ready) = mpsc::channel();
        let (jobs, inbox) = mpsc::channel();
        let mut background = Self {
            prepare: Some(prepare),
            ready,
            requested: 0,
            ahead: 1,
            jobs: Some(jobs),
            spec: spec.clone(),
            threads: Vec::with_capacity(2),
        };
        let spawn_error = |e| JournalError::io(dir, "start the journal's background threads", e);
        let pretoucher = std::thread::Builder::new()
            .name("kekbit-pretouch".into())
            .spawn(move || {
                while asks.recv().is_ok() {
                    // If the writer is gone, the file is dropped (removed).
                    if outbox.send(spec.prepare()).is_err() {
                        break;
                    }
                }
            })
            .map_err(spawn_error)?;
        background.threads.push(pretoucher);
        let worker = Worker {
            dir: dir.to_path_buf(),
            retained,
            note,
            checkpoint_ok: true,
        };
        let maintainer = std::thread::Builder::new()
            .name("kekbit-journal".into())
            .spawn(move || {
                yield_to_writer();
                worker.run(&inbox);
            })
            .map_err(spawn_error)?;
        background.threads.push(maintainer);
        background.request();
        Ok(background)
    }

    fn send(&self, job: Job) -> bool {
        self.jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(job).is_ok())
    }

    /// Asks for one more file ahead.
    fn request(&mut self) {
        if self.prepare.as_ref().is_some_and(|p| p.send(()).is_ok()) {
            self.requested += 1;
        }
    }

    /// The next segment file: the one made ahead if there is one (waiting
    /// for it if it is still being made), else one made now. Asks for the
    /// next one ahead.
    pub(crate) fn take_file(&mut self) -> Result<NewFile, JournalError> {
        let file = if self.requested > 0 {
            self.requested -= 1;
            match self.ready.try_recv() {
                Ok(file) => file,
                Err(TryRecvError::Empty) => {
                    // The writer caught up with the pre-toucher: keep one
                    // more file ahead from now on.
                    self.ahead = MAX_AHEAD;
                    self.ready.recv().unwrap_or_else(|_| self.spec.prepare())
                }
                // The thread is gone (it never panics on purpose).
                Err(TryRecvError::Disconnected) => self.spec.prepare(),
            }
        } else {
            self.spec.prepare()
        };
        while self.requested < self.ahead {
            let before = self.requested;
            self.request();
            if self.requested == before {
                break;
            }
        }
        Ok(file?)
    }

    /// Drops `value` on the background thread.
    pub(crate) fn dispose(&self, value: impl Any + Send) {
        // If the thread is gone, `value` is dropped here instead.
        self.send(Job::Dispose(Box::new(value)));
    }

    /// Syncs a segment sealed at `end`, in the background.
    pub(crate) fn sealed(&self, path: PathBuf, end: u64) {
        self.send(Job::Sealed { path, end });
    }

    /// Deletes segments in the background, then syncs the folder.
    pub(crate) fn delete(&self, paths: Vec<PathBuf>) {
        if !paths.is_empty() {
            self.send(Job::Delete(paths));
        }
    }

    /// Finishes every job sent, stops the threads, and removes the files
    /// made ahead and not used.
    pub(crate) fn stop(&mut self) {
        self.prepare = None;
        self.jobs = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        while self.ready.try_recv().is_ok() {}
        self.requested = 0;
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Background {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Background")
            .field("requested", &self.requested)
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

/// The maintenance thread's side.
struct Worker {
    dir: PathBuf,
    retained: Arc<Retained>,
    note: Option<Arc<LockNote>>,
    /// Whether every segment sealed so far was synced: the checkpoint
    /// moves only while it is.
    checkpoint_ok: bool,
}

impl Worker {
    fn run(mut self, inbox: &Receiver<Job>) {
        while let Ok(job) = inbox.recv() {
            match job {
                Job::Dispose(value) => drop(value),
                Job::Sealed { path, end } => self.sealed(&path, end),
                Job::Delete(paths) => {
                    if let Err(e) = delete(&self.dir, &paths) {
                        self.retained.background_failed(e);
                    }
                }
            }
        }
    }

    fn sealed(&mut self, path: &Path, end: u64) {
        if !self.checkpoint_ok {
            return;
        }
        let synced = sync_file(path, true).and_then(|()| match &self.note {
            Some(note) => note
                .checkpoint(end)
                .map_err(|e| JournalError::io(path, "note the journal's checkpoint", e)),
            None => Ok(()),
        });
        if synced.is_err() {
            // Recovery will walk every segment after the last checkpoint;
            // the durable position is the syncs' business, not ours.
            self.checkpoint_ok = false;
        }
    }
}

/// Lowers the maintenance thread's priority (nice +10), so that waking it
/// at a roll does not preempt the writer on its core: it runs on an idle
/// core at once, and on a busy machine after the writer; nothing it does
/// is urgent. (The pre-toucher keeps the writer's priority: the writer
/// waits for it when it falls behind.) Best effort: a failure changes
/// nothing but the scheduling.
fn yield_to_writer() {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: `setpriority` reads and writes no memory of ours; on Linux,
    // `PRIO_PROCESS` with id 0 means the calling thread.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}
