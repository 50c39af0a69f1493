//! The server under test: an external URL, or an `mlmeta-server` process
//! the harness spawns on a fresh SQLite file or PostgreSQL database, waits
//! for, watches (peak RSS) and stops.

use std::fs::{self, File};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mlmeta_proto::ListDataBlobsRequest;
use mlmeta_server::DatabaseUrl;
use tempfile::TempDir;

use crate::BenchResult;
use crate::cli::{Args, Backend};
use crate::client::{Client, connect};

/// PostgreSQL server on which `--spawn postgres` creates its database.
const POSTGRES_URL_VAR: &str = "MLMETA_BENCH_POSTGRES_URL";

/// Used when [`POSTGRES_URL_VAR`] is not set.
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// How long a spawned server may take to answer its first call.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a spawned server gets to stop after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The server the workloads run against.
#[derive(Debug)]
pub struct Target {
    /// gRPC URL (`http://HOST:PORT`).
    pub url: String,
    /// `sqlite`, `postgres` or `external`.
    pub backend: &'static str,
    /// Where the data lives (a database URL's password masked).
    pub database: String,
    spawned: Option<Spawned>,
}

/// A server process started by the harness, with what it needs cleaned up.
/// Dropping it stops the process, then drops the PostgreSQL database and
/// removes the temporary directory (fields drop after `Drop::drop`).
#[derive(Debug)]
struct Spawned {
    child: Child,
    log: PathBuf,
    _postgres: Option<PostgresDatabase>,
    _dir: TempDir,
}

impl Target {
    /// Uses `--server`, or spawns a server on the backend of `--spawn`, and
    /// returns once it answers calls, with a connected client.
    pub async fn start(args: &Args) -> BenchResult<(Target, Client)> {
        let Some(backend) = args.spawn_backend() else {
            let url = args.server.clone().unwrap_or_default();
            let url = if url.contains("://") {
                url
            } else {
                format!("http://{url}")
            };
            let client = connect(&url).await?;
            let target = Target {
                url: url.clone(),
                backend: "external",
                database: format!("served by {url}"),
                spawned: None,
            };
            return Ok((target, client));
        };
        let binary = match &args.server_bin {
            Some(path) => path.clone(),
            None => default_server_binary()?,
        };
        if !binary.is_file() {
            return Err(format!(
                "server binary {} not found: build it with `cargo build --release -p mlmeta-server` or pass --server-bin",
                binary.display()
            )
            .into());
        }
        let dir = tempfile::Builder::new().prefix("mlmeta-bench-").tempdir()?;
        let (database_url, postgres) = fresh_database(backend, dir.path(), "bench")?;
        let backend_name = backend.name();
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = dir.path().join("server.log");
        let log_file = File::create(&log)?;
        let mut command = Command::new(&binary);
        if !args.server_arg.iter().any(|arg| arg.starts_with("--http-listen")) {
            command.args(["--http-listen", "off"]);
        }
        let child = command
            .args(&args.server_arg)
            .arg("--database-url")
            .arg(database_url.expose_secret())
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--shutdown-grace-secs")
            .arg("2")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut target = Target {
            url: format!("http://127.0.0.1:{port}"),
            backend: backend_name,
            database: database_url.to_string(),
            spawned: Some(Spawned {
                child,
                log,
                _postgres: postgres,
                _dir: dir,
            }),
        };
        let client = target.wait_ready().await?;
        Ok((target, client))
    }

    /// Process id of the spawned server.
    pub fn pid(&self) -> Option<u32> {
        self.spawned.as_ref().map(|s| s.child.id())
    }

    /// Peak resident set size (VmHWM) of the spawned server, in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.pid().and_then(|pid| status_kib(pid, "VmHWM:"))
    }

    /// Current resident set size (VmRSS) of the spawned server, in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        self.pid().and_then(|pid| status_kib(pid, "VmRSS:"))
    }

    /// CPU time (user + system) the spawned server has used so far, in
    /// seconds (`/proc/PID/stat`, clock ticks of 1/100 s, as on every
    /// Linux this runs on).
    pub fn cpu_seconds(&self) -> Option<f64> {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid()?)).ok()?;
        // Fields after the command name, which is in parentheses and may
        // hold spaces: state is field 3, utime 14, stime 15.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        Some((utime + stime) / 100.0)
    }

    /// Resets the spawned server's VmHWM to its current RSS (Linux
    /// `clear_refs` 5), so the next reading is the peak of what follows.
    /// False when that is not possible.
    pub fn reset_peak_rss(&self) -> bool {
        self.pid()
            .is_some_and(|pid| fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok())
    }

    /// An error when the spawned server is no longer running.
    pub fn check_alive(&mut self) -> BenchResult<()> {
        let Some(spawned) = &mut self.spawned else {
            return Ok(());
        };
        match spawned.child.try_wait()? {
            Some(status) => Err(format!(
                "mlmeta-server exited ({status}); its log ends with:\n{}",
                spawned.log_tail()
            )
            .into()),
            None => Ok(()),
        }
    }

    /// Waits until the spawned server answers a cheap call.
    async fn wait_ready(&mut self) -> BenchResult<Client> {
        let start = Instant::now();
        loop {
            self.check_alive()?;
            if let Ok(mut client) = connect(&self.url).await {
                let probe = ListDataBlobsRequest {
                    page_size: 1,
                    ..Default::default()
                };
                if client.list_data_blobs(probe).await.is_ok() {
                    return Ok(client);
                }
            }
            if start.elapsed() > READY_TIMEOUT {
                let tail = self.spawned.as_ref().map(Spawned::log_tail).unwrap_or_default();
                return Err(format!(
                    "mlmeta-server not ready after {READY_TIMEOUT:?}; its log ends with:\n{tail}"
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Spawned {
    /// The last lines of the server's output.
    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .stderr(Stdio::null())
                .status();
            let start = Instant::now();
            while matches!(self.child.try_wait(), Ok(None)) && start.elapsed() < STOP_TIMEOUT {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The value in KiB of the line starting with `key` in `/proc/<pid>/status`.
pub fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A new, empty database of `backend` for one run: the SQLite file
/// `<dir>/<name>.db` (removed with `dir`), or the PostgreSQL database
/// `mlmeta_<name>_<pid>`, dropped with the returned guard. Returns its URL.
pub fn fresh_database(
    backend: Backend,
    dir: &Path,
    name: &str,
) -> BenchResult<(DatabaseUrl, Option<PostgresDatabase>)> {
    match backend {
        Backend::Sqlite => {
            let path = dir.join(format!("{name}.db"));
            Ok((DatabaseUrl::parse(&format!("sqlite://{}", path.display()))?, None))
        }
        Backend::Postgres => {
            let admin_url =
                std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
            let db = PostgresDatabase::create(&admin_url, &format!("mlmeta_{name}_{}", std::process::id()))?;
            let url = DatabaseUrl::parse(&with_database(&admin_url, &db.name)?)?;
            Ok((url, Some(db)))
        }
    }
}

/// A database created with `psql` for one run, dropped (with FORCE) when
/// this is dropped.
#[derive(Debug)]
pub struct PostgresDatabase {
    admin_url: String,
    name: String,
}

impl PostgresDatabase {
    /// Creates database `name` (dropping a leftover of that name first).
    fn create(admin_url: &str, name: &str) -> BenchResult<Self> {
        psql(admin_url, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
        psql(admin_url, &format!("CREATE DATABASE {name}"))?;
        Ok(Self {
            admin_url: admin_url.to_owned(),
            name: name.to_owned(),
        })
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        if let Err(error) = psql(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        ) {
            eprintln!("warning: cannot drop database {}: {error}", self.name);
        }
    }
}

/// Runs one SQL statement with `psql`.
fn psql(url: &str, sql: &str) -> BenchResult<()> {
    let output = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "psql `{sql}` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )
        .into())
    }
}

/// `url` with its database (path) replaced by `db`, keeping any query.
fn with_database(url: &str, db: &str) -> BenchResult<String> {
    let scheme_end = url
        .find("://")
        .ok_or_else(|| format!("{POSTGRES_URL_VAR} is not a URL: {url}"))?
        + 3;
    let (base, query) = url.split_at(url.find('?').unwrap_or(url.len()));
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    Ok(format!("{}/{db}{query}", &base[..authority_end]))
}

/// `mlmeta-server` next to the running binary (same target profile).
fn default_server_binary() -> BenchResult<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    Ok(dir.join(format!("mlmeta-server{}", std::env::consts::EXE_SUFFIX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_is_replaced_in_urls() {
        let cases = [
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://postgres@127.0.0.1:5432/x",
            ),
            (
                "postgres://u:p@h/db?sslmode=disable",
                "postgres://u:p@h/x?sslmode=disable",
            ),
            ("postgresql://h:1", "postgresql://h:1/x"),
        ];
        for (url, expected) in cases {
            assert_eq!(with_database(url, "x").ok().as_deref(), Some(expected), "{url}");
        }
        assert!(with_database("nonsense", "x").is_err());
    }
}
