//! The one output path, for both builds: formatted text over semihosting,
//! or, with the `defmt` feature, defmt frames over semihosting that the host
//! decodes with `defmt-print`.
//!
//! Format strings stay in the subset both understand: `{}` with integers,
//! `&str` and kekbit's errors (which implement `Display`, and
//! `defmt::Format` when kekbit-nostd's `defmt` feature is on).

/// Prints one line on the host.
#[cfg(not(feature = "defmt"))]
macro_rules! say {
    ($($arg:tt)*) => { cortex_m_semihosting::hprintln!($($arg)*) };
}

/// Prints one line on the host.
#[cfg(feature = "defmt")]
macro_rules! say {
    ($($arg:tt)*) => { defmt::println!($($arg)*) };
}

/// Unless `cond` holds, prints the line (which names the check and says
/// what went wrong) and returns `Err(Failed)` from the enclosing check.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            $crate::report::say!($($arg)*);
            return Err($crate::report::Failed);
        }
    };
}

/// The value of an `Ok`; on `Err(e)`, prints `FAIL <check>: <what>: <e>`
/// and returns `Err(Failed)` from the enclosing check.
macro_rules! attempt {
    ($result:expr, $check:expr, $what:expr) => {
        match $result {
            Ok(value) => value,
            Err(e) => {
                $crate::report::say!("FAIL {}: {}: {}", $check, $what, e);
                return Err($crate::report::Failed);
            }
        }
    };
}

pub(crate) use {attempt, ensure, say};

/// A check failed; the line saying why has been printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed;

/// Ends the QEMU run: semihosting's exit call makes `qemu-system-arm` exit
/// with status 0 on success and 1 on failure.
pub fn exit(success: bool) -> ! {
    cortex_m_semihosting::debug::exit(if success {
        cortex_m_semihosting::debug::EXIT_SUCCESS
    } else {
        cortex_m_semihosting::debug::EXIT_FAILURE
    });
    // Only reached without a debugger or emulator to exit to.
    loop {
        cortex_m::asm::bkpt();
    }
}
