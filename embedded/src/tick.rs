//! The second party: the SysTick interrupt. It preempts the main loop at
//! whatever instruction it is on, does one step of the current check's job
//! (append records, or read them), and counts how often it found the main
//! loop inside a kekbit call.
//!
//! The job is handed over in a critical section; the interrupt then owns
//! the writer (or reader) until the job ends. The counters are written only
//! by the interrupt and read by the main loop, so plain atomic loads and
//! stores suffice: no compare-and-swap, which the Cortex-M0 lacks.

use core::cell::RefCell;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering, compiler_fence};

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;
use critical_section::Mutex;

use crate::board;
use crate::interrupt_reader::Drain;
use crate::interrupt_writer::Feed;

/// What the interrupt does on each tick.
pub enum Job {
    /// Nothing: ticks are only counted, and the stack sampled.
    Idle,
    /// Check 2: append records to two channels.
    Write(Feed),
    /// Check 3: read the records the main loop writes.
    Read(Drain),
}

struct State {
    job: Job,
    syst: Option<SYST>,
    /// xorshift32 state for the jittered tick period.
    jitter: u32,
}

static STATE: Mutex<RefCell<State>> = Mutex::new(RefCell::new(State {
    job: Job::Idle,
    syst: None,
    jitter: 0x2545_F491,
}));

/// Interrupts taken. Written only by the interrupt.
static TICKS: AtomicU32 = AtomicU32::new(0);
/// Interrupts taken while the main loop was inside a kekbit call. Written
/// only by the interrupt.
static PREEMPTED: AtomicU32 = AtomicU32::new(0);
/// Whether the main loop is inside a kekbit call. Written only by the main loop.
static IN_CALL: AtomicBool = AtomicBool::new(false);
/// The lowest stack pointer any interrupt found (the interrupt's own frame
/// sits on the main loop's stack). Written only by the interrupt.
static LOWEST_SP: AtomicU32 = AtomicU32::new(u32::MAX);

/// Starts SysTick on the core clock, with a period that varies tick to tick
/// around [`board::TICK_CYCLES`], so preemptions land all over the main loop.
pub fn start(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(board::TICK_CYCLES);
    syst.clear_current();
    syst.enable_counter();
    critical_section::with(|cs| {
        // The first tick waits for the critical section to end, by which
        // time the handler can reach the timer.
        syst.enable_interrupt();
        STATE.borrow_ref_mut(cs).syst = Some(syst);
    });
}

/// Stops the interrupt.
pub fn stop() {
    critical_section::with(|cs| {
        if let Some(syst) = STATE.borrow_ref_mut(cs).syst.as_mut() {
            syst.disable_interrupt();
            syst.disable_counter();
        }
    });
}

/// Hands `job` to the interrupt and returns the one it replaces.
pub fn swap_job(job: Job) -> Job {
    critical_section::with(|cs| core::mem::replace(&mut STATE.borrow_ref_mut(cs).job, job))
}

/// Runs `f` on the current job, with the interrupt held off.
pub fn with_job<T>(f: impl FnOnce(&mut Job) -> T) -> T {
    critical_section::with(|cs| f(&mut STATE.borrow_ref_mut(cs).job))
}

/// Interrupts taken so far.
pub fn ticks() -> u32 {
    TICKS.load(Ordering::Relaxed)
}

/// Interrupts that found the main loop inside a kekbit call.
pub fn preempted() -> u32 {
    PREEMPTED.load(Ordering::Relaxed)
}

/// The lowest stack pointer seen at any interrupt so far.
pub fn lowest_sp() -> u32 {
    LOWEST_SP.load(Ordering::Relaxed)
}

/// Runs `f`, a kekbit call of the main loop, marked so that an interrupt
/// landing inside it is counted as a preemption.
#[inline(always)]
pub fn in_call<T>(f: impl FnOnce() -> T) -> T {
    IN_CALL.store(true, Ordering::Relaxed);
    // The interrupt runs on this core: compiler fences keep the call between
    // the two stores; no hardware fence is needed.
    compiler_fence(Ordering::SeqCst);
    let result = f();
    compiler_fence(Ordering::SeqCst);
    IN_CALL.store(false, Ordering::Relaxed);
    result
}

/// Turns a wait that would hang into a failure: the timer stopped (no
/// tick for many spins), or the other party stopped making progress (many
/// ticks and no record, no end).
pub struct Watchdog {
    last_tick: u32,
    spins: u32,
    progress_tick: u32,
}

/// Ticks without progress before a wait fails; a round makes progress on
/// every tick or two when all is well.
const STALL_TICKS: u32 = 5_000;
/// Spins without a tick before a wait fails: far longer than any tick period.
const STALL_SPINS: u32 = 50_000_000;

impl Watchdog {
    pub fn new() -> Self {
        let now = ticks();
        Self {
            last_tick: now,
            spins: 0,
            progress_tick: now,
        }
    }

    /// Something happened: a record arrived, or a channel ended.
    pub fn progress(&mut self) {
        self.progress_tick = ticks();
    }

    /// Call once per idle spin; `Err` says why waiting longer is pointless.
    pub fn check(&mut self) -> Result<(), &'static str> {
        let now = ticks();
        if now.wrapping_sub(self.progress_tick) > STALL_TICKS {
            return Err("no progress in 5000 interrupts");
        }
        if now != self.last_tick {
            self.last_tick = now;
            self.spins = 0;
            return Ok(());
        }
        self.spins += 1;
        if self.spins > STALL_SPINS {
            return Err("the timer interrupt stopped");
        }
        Ok(())
    }
}

#[exception]
fn SysTick() {
    let preempted = IN_CALL.load(Ordering::Relaxed);
    let sp = cortex_m::register::msp::read();
    if sp < LOWEST_SP.load(Ordering::Relaxed) {
        LOWEST_SP.store(sp, Ordering::Relaxed);
    }
    // Single writer of both counters, never preempted by the main loop:
    // a load and a store are an increment.
    TICKS.store(
        TICKS.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
    if preempted {
        PREEMPTED.store(
            PREEMPTED.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }
    critical_section::with(|cs| {
        let mut state = STATE.borrow_ref_mut(cs);
        let state = &mut *state;
        // Next period: TICK_CYCLES / 2 .. 3 * TICK_CYCLES / 2.
        let mut x = state.jitter;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        state.jitter = x;
        if let Some(syst) = state.syst.as_mut() {
            syst.set_reload(board::TICK_CYCLES / 2 + x % board::TICK_CYCLES);
        }
        match &mut state.job {
            Job::Idle => {}
            Job::Write(feed) => feed.step(x),
            Job::Read(drain) => drain.step(),
        }
    });
}
