//! `kekbit`: look inside channels, write them, and measure them.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use kekbit_cli::cli::{Cli, usage_error_line};
use kekbit_cli::error::{CliError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE};

fn main() -> ExitCode {
    // No command should ever panic; if one does, say so in one line
    // instead of a backtrace, and exit with the status Rust gives panics.
    std::panic::set_hook(Box::new(|info| {
        let _ = writeln!(
            std::io::stderr(),
            "kekbit: internal error (a bug, please report it): {info}"
        );
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // `--help` and `--version` come this way, with status 0; so does
        // `kekbit` alone, whose help goes to standard error with status 2.
        Err(e)
            if !e.use_stderr()
                || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
        Err(e) => {
            let line = usage_error_line(&e.render().to_string());
            let _ = writeln!(std::io::stderr(), "kekbit: error: {line}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match kekbit_cli::run(cli) {
        Ok(()) | Err(CliError::StdoutClosed) => ExitCode::from(EXIT_OK),
        Err(e) => {
            let _ = std::io::stdout().flush();
            let _ = writeln!(std::io::stderr(), "kekbit: error: {e}");
            let code = e.exit_code();
            ExitCode::from(if code == EXIT_OK { EXIT_FAILURE } else { code })
        }
    }
}
