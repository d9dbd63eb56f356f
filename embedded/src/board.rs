//! What differs between boards: names, memory budgets and the tick period.
//!
//! `build.rs` picks the board from the target (one QEMU machine per target)
//! and sets `cfg(board = "...")`; the sizes below fit each board's RAM.

#[cfg(board = "microbit")]
mod selected {
    pub const MACHINE: &str = "microbit";
    pub const CPU: &str = "Cortex-M0 (nRF51822)";
    pub const TARGET: &str = "thumbv6m-none-eabi";
    /// 16 KiB of RAM: 4 KiB for check 1, 2 x 3 KiB for the two interrupt-fed
    /// channels, the rest for the stack.
    pub const STATIC_REGION_BYTES: usize = 4096;
    pub const STATIC_MAX_RECORD: u32 = 64;
    pub const FEED_REGION_BYTES: usize = 3072;
    /// Mean SysTick period in core clock cycles (16 MHz in QEMU's model).
    pub const TICK_CYCLES: u32 = 1600;
}

#[cfg(board = "lm3s6965evb")]
mod selected {
    pub const MACHINE: &str = "lm3s6965evb";
    pub const CPU: &str = "Cortex-M3 (LM3S6965)";
    pub const TARGET: &str = "thumbv7m-none-eabi";
    /// 64 KiB of RAM.
    pub const STATIC_REGION_BYTES: usize = 16 * 1024;
    pub const STATIC_MAX_RECORD: u32 = 160;
    pub const FEED_REGION_BYTES: usize = 16 * 1024;
    pub const TICK_CYCLES: u32 = 1200;
}

#[cfg(board = "mps2-an386")]
mod selected {
    pub const MACHINE: &str = "mps2-an386";
    pub const CPU: &str = "Cortex-M4F (MPS2 AN386)";
    pub const TARGET: &str = "thumbv7em-none-eabihf";
    /// 4 MiB of RAM: room for records up to 1 KiB in check 1.
    pub const STATIC_REGION_BYTES: usize = 576 * 1024;
    pub const STATIC_MAX_RECORD: u32 = 1024;
    pub const FEED_REGION_BYTES: usize = 64 * 1024;
    pub const TICK_CYCLES: u32 = 2500;
}

pub use selected::*;
