//! The `kekbit` command, as a library so its parts can be unit-tested.
//!
//! The binary (`src/main.rs`) parses the command line with [`cli::Cli`],
//! calls [`run`], and turns a [`CliError`] into one line on standard error
//! (`kekbit: error: <path>: <cause>`) and an exit status: 0 on success, 1
//! on a runtime error, 2 on a usage error. No command panics on what a
//! file contains.

#![warn(missing_docs)]

pub mod cli;
mod commands;
pub mod error;
pub mod inspect;
pub mod journal;
pub mod output;
pub mod units;

pub use error::{CliError, CliResult};

/// Runs one parsed command line.
pub fn run(cli: cli::Cli) -> CliResult {
    use cli::Command;
    match cli.command {
        Command::Write(args) => commands::write::run(&args),
        Command::Cat(args) => commands::cat::run(&args),
        Command::Info(args) => commands::info::run(&args),
        Command::Verify(args) => commands::verify::run(&args),
        Command::Kv(command) => commands::kv::run(&command),
        Command::Demo(args) => commands::demo::run(&args),
        #[cfg(feature = "relay")]
        Command::Relay(command) => commands::relay::run(command),
        Command::DemoWriter(args) => commands::demo::run_writer(&args),
        Command::DemoReader(args) => commands::demo::run_reader(&args),
    }
}
