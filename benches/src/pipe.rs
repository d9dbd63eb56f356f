//! What every system under test offers the workloads: a sender and a receiver
//! of byte records.
//!
//! Records carry a sequence number in their first 8 bytes (little-endian),
//! which every receiver checks: a benchmark that loses or reorders records
//! fails instead of printing a figure.

use crate::{Res, fail};

/// The sending half of a system under test.
pub trait Sender {
    /// Sends one record, waiting (spinning) while the system is full.
    fn send(&mut self, record: &[u8]) -> Res<()>;

    /// Sends `count` records as one batch, published together: `record`
    /// stamped with the sequence numbers `first..first + count` in turn
    /// (see [`stamp`]). Systems without batches refuse.
    fn send_batch(&mut self, record: &mut [u8], first: u64, count: u64) -> Res<()> {
        let _ = (record, first, count);
        Err(fail("this system has no batches"))
    }
}

/// The receiving half of a system under test.
pub trait Receiver {
    /// Hands every record available now to `each`, without waiting;
    /// returns how many it handed over.
    fn poll<F: FnMut(&[u8])>(&mut self, each: F) -> Res<usize>;
}

/// Writes `seq` into the first 8 bytes of `record` (which has at least 8).
#[inline]
pub fn stamp(record: &mut [u8], seq: u64) {
    record[..8].copy_from_slice(&seq.to_le_bytes());
}

/// The sequence number of a received record.
#[inline]
pub fn seq_of(record: &[u8]) -> u64 {
    match record.get(..8) {
        Some(head) => {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(head);
            u64::from_le_bytes(bytes)
        }
        None => u64::MAX,
    }
}

/// Checks that records arrive in order, without gaps, with the right size.
#[derive(Debug)]
pub struct SeqCheck {
    next: u64,
    len: usize,
    error: Option<String>,
}

impl SeqCheck {
    /// Expects records of `len` bytes numbered from 0.
    pub fn new(len: usize) -> Self {
        Self {
            next: 0,
            len,
            error: None,
        }
    }

    /// Checks one record.
    #[inline]
    pub fn check(&mut self, record: &[u8]) {
        let seq = seq_of(record);
        if (seq != self.next || record.len() != self.len) && self.error.is_none() {
            self.error = Some(format!(
                "record {} arrived as #{seq} with {} bytes (expected {} bytes)",
                self.next,
                record.len(),
                self.len
            ));
        }
        self.next += 1;
    }

    /// Records checked so far.
    pub fn count(&self) -> u64 {
        self.next
    }

    /// The first error seen, if any.
    pub fn finish(&self) -> Res<()> {
        match &self.error {
            Some(e) => Err(fail(e.clone())),
            None => Ok(()),
        }
    }
}

/// How every waiting loop in the harness waits: spin (with the CPU's pause
/// hint) for a while, then yield the core, so that a waiter sharing a core
/// with the party it waits for lets that party run. Every system waits the
/// same way.
#[derive(Debug, Default)]
pub struct Backoff {
    spins: u32,
}

impl Backoff {
    /// Spins before the first yield.
    const SPINS: u32 = 1 << 10;

    /// Waits a little.
    #[inline]
    pub fn snooze(&mut self) {
        if self.spins < Self::SPINS {
            self.spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }

    /// Progress was made: spin again next time.
    #[inline]
    pub fn reset(&mut self) {
        self.spins = 0;
    }
}

/// Pins the calling thread to CPU `cpu` (modulo the CPUs this process may
/// use) until the returned guard drops; then it may run anywhere it could
/// before. Two-party workloads pin their parties to different CPUs, so they
/// never share one core while the other idles. Returns `None` (and pins
/// nothing) on a single-CPU machine or if the kernel refuses.
pub fn pin(cpu: usize) -> Option<Pinned> {
    // SAFETY: `cpu_set_t` is a plain bit set; all-zero is the empty set.
    let mut old: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: `old` is a valid, writable `cpu_set_t` of `size` bytes.
    if unsafe { libc::sched_getaffinity(0, size, &mut old) } != 0 {
        return None;
    }
    let allowed: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `i` is below CPU_SETSIZE, the set's capacity.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &old) })
        .collect();
    if allowed.len() < 2 {
        return None;
    }
    // SAFETY: as above, all-zero is the empty set.
    let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the index is one of the allowed CPUs, below CPU_SETSIZE.
    unsafe { libc::CPU_SET(allowed[cpu % allowed.len()], &mut one) };
    // SAFETY: `one` is a valid `cpu_set_t` of `size` bytes.
    if unsafe { libc::sched_setaffinity(0, size, &one) } != 0 {
        return None;
    }
    Some(Pinned { old })
}

/// Undoes [`pin`] when dropped.
pub struct Pinned {
    old: libc::cpu_set_t,
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: `old` is the valid set `sched_getaffinity` returned.
        unsafe { libc::sched_setaffinity(0, size, &self.old) };
    }
}
