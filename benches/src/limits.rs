//! The machine's limits, measured in the same run as the channels: how fast
//! memory takes the same bytes, and how fast two cores can hand a cache line
//! back and forth.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use memmap2::MmapMut;

use crate::kek::ChannelFile;
use crate::{Res, fail};

/// Where a memcpy writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Memory {
    /// Fresh anonymous memory: every page faults in on first write.
    FreshAnon,
    /// A fresh file in `/dev/shm` (tmpfs), mapped shared: the kind of
    /// memory a kekbit channel lives in.
    FreshShm,
    /// Anonymous memory whose pages were all written once before timing.
    Prefaulted,
    /// A `/dev/shm` file whose pages were all written once before timing:
    /// what a pre-faulted kekbit channel writes into.
    PrefaultedShm,
}

/// Copies `records` chunks of `len` bytes, one after another, into memory of
/// kind `memory`, as a writer copies records; returns the time taken.
pub fn memcpy(memory: Memory, shm_dir: &Path, len: usize, records: u64) -> Res<Duration> {
    let volume = len * records as usize;
    let source = vec![0x5Au8; len];
    let file;
    let mut anon;
    let dst: &mut [u8] = match memory {
        Memory::FreshAnon | Memory::Prefaulted => {
            anon = MmapMut::map_anon(volume)?;
            if memory == Memory::Prefaulted {
                for page in anon.chunks_mut(4096) {
                    page[0] = 1;
                }
            }
            &mut anon[..]
        }
        Memory::FreshShm | Memory::PrefaultedShm => {
            file = ChannelFile::create(&shm_dir.join("memcpy"), volume, false)?;
            // SAFETY: this process alone maps the file it just created.
            let bytes = unsafe { file.bytes_mut() };
            if memory == Memory::PrefaultedShm {
                for page in bytes.chunks_mut(4096) {
                    page[0] = 1;
                }
            }
            bytes
        }
    };
    let start = Instant::now();
    for chunk in dst.chunks_exact_mut(len) {
        chunk.copy_from_slice(&source);
    }
    let elapsed = start.elapsed();
    std::hint::black_box(&dst[volume - 1]);
    Ok(elapsed)
}

/// [`memcpy`] while another thread spins on the other core, as a channel's
/// reader does while its writer copies: what one core's copy bandwidth is
/// when the core beside it is busy too.
pub fn memcpy_beside_spinner(
    memory: Memory,
    shm_dir: &Path,
    len: usize,
    records: u64,
) -> Res<Duration> {
    let stop = AtomicU64::new(0);
    std::thread::scope(|s| {
        let spinner = s.spawn(|| {
            let _pinned = crate::pipe::pin(1);
            while stop.load(Ordering::Relaxed) == 0 {
                std::hint::spin_loop();
            }
        });
        // Let the spinner get going first.
        std::thread::sleep(Duration::from_millis(2));
        let pinned = crate::pipe::pin(0);
        let result = memcpy(memory, shm_dir, len, records);
        drop(pinned);
        stop.store(1, Ordering::Relaxed);
        spinner
            .join()
            .map_err(|_| fail("spinner thread panicked"))?;
        result
    })
}

/// One cache line, alone on it.
#[repr(C, align(128))]
pub struct Line(pub AtomicU64);

/// Answers the pinger: waits for each odd value and stores the next even
/// one, `rounds` times.
pub fn pong(line: &AtomicU64, rounds: u64) -> Res<()> {
    let start = Instant::now();
    for i in 0..rounds {
        let ping = 2 * i + 1;
        let mut spins = 0u32;
        while line.load(Ordering::Acquire) != ping {
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins == 0 && start.elapsed().as_secs() > 60 {
                return Err(fail("ping-pong: pinger went away"));
            }
        }
        line.store(ping + 1, Ordering::Release);
    }
    Ok(())
}

/// One round trip of the ping-pong: `i` counts from 0.
#[inline]
pub fn ping(line: &AtomicU64, i: u64) {
    line.store(2 * i + 1, Ordering::Release);
    while line.load(Ordering::Acquire) != 2 * i + 2 {
        std::hint::spin_loop();
    }
}

/// Maps the cache line of the ping-pong between processes: the first
/// 8 bytes of a `/dev/shm` file.
pub fn shared_line(file: &ChannelFile) -> &AtomicU64 {
    // SAFETY: the mapping is page-aligned, at least 8 bytes long, lives as
    // long as `file`, and both processes touch those bytes only atomically.
    unsafe { AtomicU64::from_ptr(file.bytes_mut().as_mut_ptr().cast::<u64>()) }
}
