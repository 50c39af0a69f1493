use std::io::{Read as _, Write as _};

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

/// Runs the server (or a subcommand), then ends the process without
/// running the C library's exit handlers.
///
/// Their teardown races the threads that are still ending (r2d2's
/// connection workers and tokio's blocking threads cannot be joined):
/// OpenSSL's, which libpq brings in, crashed a cleanly stopped server with
/// SIGSEGV or SIGABRT (seen in CI, and 2 exits in 60 of three PostgreSQL
/// servers stopped under load). OpenSSL's is also switched off at start
/// ([`mlmeta_server::skip_openssl_exit_cleanup`]); this covers the
/// handlers of any other library. Everything that matters is done by
/// then: calls answered, epochs committed, the store's own threads
/// finished (`serve_on` waits for them), stdout flushed below.
fn main() {
    let code = match tokio::runtime::Runtime::new() {
        Ok(runtime) => {
            let code = runtime.block_on(run());
            // Blocking tasks still running (a call past the grace period)
            // get a bounded time, like everything else at shutdown.
            runtime.shutdown_timeout(std::time::Duration::from_secs(5));
            code
        }
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            FAILURE
        }
    };
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    exit_now(code)
}

/// `_exit(2)`: ends the process with `code`, skipping `atexit` handlers.
#[cfg(unix)]
#[allow(unsafe_code)]
fn exit_now(code: u8) -> ! {
    // SAFETY: `_exit` takes any status and returns never; it touches no
    // memory of this process.
    unsafe { libc::_exit(i32::from(code)) }
}

#[cfg(not(unix))]
fn exit_now(code: u8) -> ! {
    std::process::exit(i32::from(code))
}

/// Exit statuses.
const SUCCESS: u8 = 0;
const FAILURE: u8 = 1;
/// `backup`: PostgreSQL, or the target exists.
const REFUSED: u8 = 2;

async fn run() -> u8 {
    // Before any connection (the backup's too).
    mlmeta_server::skip_openssl_exit_cleanup();
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
            return FAILURE;
        }
    };
    match serve_on(config, listeners, shutdown_signal()).await {
        Ok(()) => SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            FAILURE
        }
    }
}

/// `mlmeta-server backup --to FILE`: the copy's summary on stdout.
async fn backup(url: mlmeta_server::DatabaseUrl, to: std::path::PathBuf) -> u8 {
    use mlmeta_server::backup::{BackupError, backup};
    let report = match tokio::task::spawn_blocking(move || backup(&url, &to)).await {
        Ok(report) => report,
        Err(error) => {
            eprintln!("error: the backup task failed: {error}");
            return FAILURE;
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
            SUCCESS
        }
        Err(error @ (BackupError::Postgres | BackupError::TargetExists(_))) => {
            eprintln!("error: {error}");
            REFUSED
        }
        Err(error) => {
            eprintln!("error: {error}");
            FAILURE
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
fn hash_token(name: &str, scope: mlmeta_server::security::Scope, from_stdin: bool) -> u8 {
    let token = if from_stdin {
        let mut text = String::new();
        if let Err(error) = std::io::stdin().read_to_string(&mut text) {
            eprintln!("error: cannot read the token from stdin: {error}");
            return FAILURE;
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
            SUCCESS
        }
        Err(rule) => {
            eprintln!("error: {rule}");
            FAILURE
        }
    }
}
