//! kekbit-nostd on a microcontroller, under QEMU: a channel in a static
//! buffer, and an interrupt as the second party, in both roles.
//!
//! Prints one line per check (`PASS <check>: ...` or `FAIL <check>: ...`),
//! then `N passed, M failed`, and exits through semihosting: QEMU's exit
//! status is 0 only if every check passed. See `README.md`.

#![no_std]
#![no_main]

mod board;
mod interrupt_reader;
mod interrupt_writer;
mod pattern;
mod report;
mod static_channel;
mod tick;

use cortex_m_rt::{ExceptionFrame, entry, exception};
#[cfg(feature = "defmt")]
use defmt_semihosting as _;
use kekbit_nostd::{AlignedBuffer, SliceRegion};

use crate::report::{Failed, exit, say};

#[entry]
fn main() -> ! {
    // `#[entry]` turns these into `&'static mut` references: `main` runs once.
    static mut STATIC_CHANNEL: AlignedBuffer<
        { board::STATIC_REGION_BYTES + static_channel::CANARY_BYTES },
    > = AlignedBuffer::new();
    static mut FEED_0: AlignedBuffer<{ board::FEED_REGION_BYTES }> = AlignedBuffer::new();
    static mut FEED_1: AlignedBuffer<{ board::FEED_REGION_BYTES }> = AlignedBuffer::new();
    static mut FEED_REGIONS: Option<[SliceRegion<'static>; 2]> = None;

    say!(
        "kekbit-embedded on {}: QEMU machine {}, target {}",
        board::CPU,
        board::MACHINE,
        board::TARGET
    );
    let mut passed = 0u32;
    let mut failed = 0u32;
    let mut tally = |result: Result<(), Failed>| match result {
        Ok(()) => passed += 1,
        Err(Failed) => failed += 1,
    };

    let Some(core) = cortex_m::Peripherals::take() else {
        say!("FAIL setup: the core peripherals were already taken");
        exit(false)
    };
    // Ticking from the start, with nothing to do yet, samples the stack
    // during check 1 too.
    tick::start(core.SYST);

    tally(static_channel::run(STATIC_CHANNEL.as_mut_slice()));

    let regions: &'static [SliceRegion<'static>; 2] = match (
        SliceRegion::new(FEED_0.as_mut_slice()),
        SliceRegion::new(FEED_1.as_mut_slice()),
    ) {
        (Ok(r0), Ok(r1)) => FEED_REGIONS.insert([r0, r1]),
        (Err(e), _) | (_, Err(e)) => {
            say!("FAIL setup: feed region: {}", e);
            exit(false)
        }
    };
    tally(interrupt_writer::run(regions));
    // A failed check may leave the interrupt holding a writer or a reader:
    // drop it, so the next check starts on its own.
    drop(tick::swap_job(tick::Job::Idle));
    tally(interrupt_reader::run(regions));
    drop(tick::swap_job(tick::Job::Idle));
    tick::stop();
    tally(stack_headroom());

    say!("{} passed, {} failed", passed, failed);
    exit(failed == 0)
}

// Symbols of cortex-m-rt's linker script: only their addresses are used.
unsafe extern "C" {
    /// The initial stack pointer: the top of RAM.
    static _stack_start: u32;
    /// The end of the statics: the stack must never reach below it.
    static __sheap: u32;
}

/// The stack never ran into the statics (where the channels live): its
/// deepest point, sampled at every interrupt, at any instruction of the
/// checks, stays above them.
fn stack_headroom() -> Result<(), Failed> {
    let top = (&raw const _stack_start) as u32;
    let floor = (&raw const __sheap) as u32;
    let lowest = tick::lowest_sp();
    report::ensure!(
        lowest != u32::MAX,
        "FAIL stack: no interrupt sampled the stack pointer"
    );
    report::ensure!(
        lowest > floor,
        "FAIL stack: the stack reached {} bytes below the statics",
        floor - lowest
    );
    say!(
        "PASS stack: at most {} of {} bytes used (sampled at {} interrupts)",
        top - lowest,
        top - floor,
        tick::ticks()
    );
    Ok(())
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    #[cfg(not(feature = "defmt"))]
    say!("FAIL panic: {}", info);
    #[cfg(feature = "defmt")]
    say!("FAIL panic: {}", defmt::Display2Format(info));
    exit(false)
}

// A fault or a stray exception ends the run with a failure instead of a
// hang. (`cortex-m-rt` requires both handlers to be `unsafe fn`.)
#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    say!("FAIL hard fault at pc {}", frame.pc());
    exit(false)
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    say!("FAIL unexpected exception {}", irqn);
    exit(false)
}
