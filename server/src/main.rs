use std::io::Read as _;
use std::process::ExitCode;

use clap::Parser;
use mlmeta_server::security::tokens::{generate_token, tokens_file_line};
use mlmeta_server::{
    Command, Config, Listeners, LogFormat, bind, raise_open_files_limit, serve_on, shutdown_signal,
};
use tracing_subscriber::EnvFilter;

/// jemalloc, with the options compiled in from `.cargo/config.toml` (two
/// arenas, pages returned after a second). With glibc's malloc each of the
/// server's threads (tokio workers, the blocking pool that builds listing
/// pages, the epoch writers) kept its own arena's freed memory: the bulk
/// benchmark peaked at 100-106 MiB resident, against 51-56 MiB now at the
/// same throughput.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    init_logging(config.log_format);
    match &config.command {
        Some(Command::HashToken { name, scope, stdin }) => return hash_token(name, (*scope).into(), *stdin),
        Some(Command::Backup { database_url, to }) => return backup(database_url.clone(), to.clone()).await,
        None => {}
    }
    // Process-wide, hence here rather than in `serve` (which tests run
    // in-process): each connection is a file descriptor.
    raise_open_files_limit();
    let bound = async {
        let grpc = bind("--listen", config.listen).await?;
        let http = match config.http_listen.addr() {
            Some(addr) => Some(bind("--http-listen", addr).await?),
            None => None,
        };
        Ok::<_, mlmeta_server::StartupError>(Listeners { grpc, http })
    };
    let listeners = match bound.await {
        Ok(listeners) => listeners,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    match serve_on(config, listeners, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `mlmeta-server backup --to FILE`: the copy's summary on stdout.
async fn backup(url: mlmeta_server::DatabaseUrl, to: std::path::PathBuf) -> ExitCode {
    use mlmeta_server::backup::{BackupError, backup};
    let report = match tokio::task::spawn_blocking(move || backup(&url, &to)).await {
        Ok(report) => report,
        Err(error) => {
            eprintln!("error: the backup task failed: {error}");
            return ExitCode::FAILURE;
        }
    };
    match report {
        Ok(report) => {
            println!(
                "backed up {} models and {} epochs ({} bytes) to {} in {} ms",
                report.models,
                report.epochs,
                report.bytes,
                report.path.display(),
                report.elapsed.as_millis()
            );
            ExitCode::SUCCESS
        }
        Err(error @ (BackupError::Postgres | BackupError::TargetExists(_))) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The log on stderr (leaving stdout to `hash-token`'s output), in
/// `format`, at the levels of `RUST_LOG` (default `info`).
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match format {
        LogFormat::Human => builder.init(),
        // Span fields flattened into each line; the current span is enough
        // (the server opens few) and keeps lines short.
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// `mlmeta-server hash-token`: the line for the tokens file on stdout (so
/// `>> tokens.txt` appends it), a generated token on stderr.
fn hash_token(name: &str, scope: mlmeta_server::security::Scope, from_stdin: bool) -> ExitCode {
    let token = if from_stdin {
        let mut text = String::new();
        if let Err(error) = std::io::stdin().read_to_string(&mut text) {
            eprintln!("error: cannot read the token from stdin: {error}");
            return ExitCode::FAILURE;
        }
        text.trim().to_owned()
    } else {
        generate_token()
    };
    match tokens_file_line(name, scope, &token) {
        Ok(line) => {
            if !from_stdin {
                eprintln!("token (give it to the client; it is not stored anywhere): {token}");
            }
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(rule) => {
            eprintln!("error: {rule}");
            ExitCode::FAILURE
        }
    }
}
