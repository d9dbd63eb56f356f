//! The optional background flusher: a sync every so often, and whenever
//! enough bytes were appended since the last one.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use super::durable::Syncer;
use super::error::JournalError;

#[derive(Debug, Default)]
struct Signals {
    stop: bool,
    kick: bool,
}

#[derive(Debug, Default)]
struct Shared {
    signals: Mutex<Signals>,
    wake: Condvar,
}

impl Shared {
    fn signals(&self) -> MutexGuard<'_, Signals> {
        self.signals.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The flusher thread's handle: kick it, stop it.
#[derive(Debug)]
pub(crate) struct Flusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    /// Starts a flusher that syncs every `interval` (if any) and when kicked.
    pub(crate) fn start(
        dir: &Path,
        syncer: Arc<Syncer>,
        interval: Option<Duration>,
    ) -> Result<Self, JournalError> {
        let shared = Arc::new(Shared::default());
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("kekbit-flusher".into())
            .spawn(move || run(&theirs, &syncer, interval))
            .map_err(|e| JournalError::io(dir, "start the journal's flusher", e))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Asks for a sync now.
    pub(crate) fn kick(&self) {
        self.shared.signals().kick = true;
        self.shared.wake.notify_one();
    }

    /// Stops the thread (after the sync it may be running).
    pub(crate) fn stop(&mut self) {
        self.shared.signals().stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(shared: &Shared, syncer: &Syncer, interval: Option<Duration>) {
    loop {
        let mut signals = shared.signals();
        while !signals.stop && !signals.kick {
            match interval {
                Some(interval) => {
                    let (guard, waited) = shared
                        .wake
                        .wait_timeout(signals, interval)
                        .unwrap_or_else(PoisonError::into_inner);
                    signals = guard;
                    if waited.timed_out() {
                        break;
                    }
                }
                None => {
                    signals = shared
                        .wake
                        .wait(signals)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
        if signals.stop {
            return;
        }
        signals.kick = false;
        drop(signals);
        // A failure is sticky in the syncer: the writer's next sync reports it.
        let _ = syncer.wait_durable(syncer.published_end());
    }
}
