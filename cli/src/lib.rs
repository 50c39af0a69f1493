//! `mlmeta`, the command-line client of the mlmeta training-metadata
//! service, built on `mlmeta-client` (it never touches a database).
//!
//! - `args`: the clap definitions (the `--help` text);
//! - `commands/`: one file per command group, each a thin layer over one
//!   or a few client calls;
//! - `output/`: the one printer of the `table`, `csv` and `json` formats;
//! - `import`: the streamed CSV / JSON Lines epoch reader;
//! - `error` and `exit`: what can fail, and the exit status it means.
//!
//! Errors are printed once, here, as one `error: ...` line on stderr.

#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod args;
mod commands;
mod error;
mod exit;
mod import;
mod jsonl;
mod output;

use std::io::Write;

use clap::Parser;

pub use exit::ExitStatus;

use args::Cli;
use error::CliError;

/// Runs `mlmeta` with the process's arguments, printing results on stdout
/// and the error, if any, on stderr.
pub fn main() -> ExitStatus {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            // Not clap's own exit code 2, which here means "not found".
            return if error.use_stderr() {
                ExitStatus::Failure
            } else {
                ExitStatus::Success
            };
        }
    };
    match run(&cli) {
        Ok(()) => ExitStatus::Success,
        Err(error) if error.is_broken_pipe() => ExitStatus::Success,
        Err(error) => {
            let error = error.with_server(&cli.server);
            // One line, whatever the server's message holds.
            let line = error.to_string().replace(['\n', '\r'], " ");
            let _ = writeln!(std::io::stderr(), "error: {line}");
            error.exit_status()
        }
    }
}

fn run(cli: &Cli) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let result = runtime.block_on(commands::run(cli));
    // An import reader may still be blocked on standard input: do not wait
    // for it.
    runtime.shutdown_background();
    output::print(result?.as_ref(), cli.format)
}
