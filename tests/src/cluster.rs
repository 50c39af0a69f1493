//! [`PostgresCluster`]: a PostgreSQL server of a test's own, which the test
//! may stop and start (and put on a small [`Tmpfs`] to fill its disk)
//! without disturbing the shared server other tests run on.
//!
//! Built with the installed `initdb` and `pg_ctl` (the newest
//! `/usr/lib/postgresql/*/bin`, or `MLMETA_TEST_PG_BIN`). PostgreSQL refuses
//! to run as root, so as root they run as the `postgres` user (`runuser`).
//! Without these programs the constructor prints a notice and returns
//! `None` (the test passes as skipped), unless `MLMETA_REQUIRE_POSTGRES=1`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use crate::mounts::Tmpfs;
use crate::postgres::REQUIRE_POSTGRES_VAR;
use crate::process::free_port;

/// Variable naming the directory of `initdb` and `pg_ctl`.
pub const PG_BIN_VAR: &str = "MLMETA_TEST_PG_BIN";

/// Where the cluster lives: a temporary directory, or a tmpfs.
#[derive(Debug)]
#[allow(dead_code)]
enum Home {
    Dir(TempDir),
    Tmpfs(Tmpfs),
}

impl Home {
    fn path(&self) -> &Path {
        match self {
            Self::Dir(dir) => dir.path(),
            Self::Tmpfs(tmpfs) => tmpfs.path(),
        }
    }
}

/// A running private PostgreSQL cluster on `127.0.0.1:<free port>`, user
/// `postgres` with trust authentication; stopped and removed when dropped.
#[derive(Debug)]
pub struct PostgresCluster {
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    // Dropped last (declaration order), after `Drop::drop` stopped the server.
    home: Home,
}

impl PostgresCluster {
    /// Creates and starts a cluster in a temporary directory.
    pub fn start_new() -> Option<Self> {
        let dir = tempfile::Builder::new()
            .prefix("mlmeta-pg-")
            .tempdir()
            .expect("create the cluster's directory");
        Self::create(Home::Dir(dir))
    }

    /// Creates and starts a cluster on a tmpfs of `size` (e.g. `64m`; the
    /// cluster takes about 30 MB), so that a test can fill its disk.
    pub fn start_on_tmpfs(size: &str) -> Option<Self> {
        Self::create(Home::Tmpfs(Tmpfs::mount(size)?))
    }

    fn create(home: Home) -> Option<Self> {
        let Some(bin) = pg_bin() else {
            let message = format!("no initdb found under /usr/lib/postgresql/*/bin; set {PG_BIN_VAR}");
            if std::env::var(REQUIRE_POSTGRES_VAR).as_deref() == Ok("1") {
                panic!("{message} ({REQUIRE_POSTGRES_VAR}=1, so this is a failure)");
            }
            eprintln!("\n!!! SKIPPED: {message}\n");
            return None;
        };
        let as_postgres = is_root();
        if as_postgres {
            chown_to_postgres(home.path());
        }
        let cluster = Self {
            bin,
            port: free_port(),
            as_postgres,
            home,
        };
        cluster.pg(
            "initdb",
            &[
                "-D",
                &cluster.data().display().to_string(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "--no-instructions",
                // 1 MiB WAL segments: a cluster of ~30 MB fits a small tmpfs.
                "--wal-segsize=1",
            ],
        );
        cluster.start();
        Some(cluster)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    /// The URL of database `name` on this cluster.
    pub fn url_of(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts the server (after [`PostgresCluster::stop`]) and waits until
    /// it accepts connections.
    pub fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_wal_size=4MB -c min_wal_size=2MB",
            self.port,
            self.home.path().display()
        );
        let log = self.home.path().join("server.log").display().to_string();
        let data = self.data().display().to_string();
        self.pg(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-o", &options, "-w", "-t", "60", "start"],
        );
    }

    /// Stops the server the way an operator's restart does (`-m fast`:
    /// sessions are terminated), and waits until it is down.
    pub fn stop(&self) {
        let data = self.data().display().to_string();
        self.pg("pg_ctl", &["-D", &data, "-m", "fast", "-w", "-t", "60", "stop"]);
    }

    /// The cluster's directory (on the tmpfs when made with
    /// [`PostgresCluster::start_on_tmpfs`]).
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    fn data(&self) -> PathBuf {
        self.home.path().join("data")
    }

    /// Runs the PostgreSQL program `program` with `args`, panicking with its
    /// output when it fails.
    fn pg(&self, program: &str, args: &[&str]) {
        let mut command = self.pg_command(program, args);
        let output = command
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
        assert!(
            output.status.success(),
            "{command:?} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `program args`, as the `postgres` user when running as root.
    fn pg_command(&self, program: &str, args: &[&str]) -> Command {
        let path = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        };
        command.args(args);
        command
    }
}

impl Drop for PostgresCluster {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let _ = self
            .pg_command(
                "pg_ctl",
                &["-D", &data, "-m", "immediate", "-w", "-t", "30", "stop"],
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// `chown postgres:postgres path`.
fn chown_to_postgres(path: &Path) {
    let status = Command::new("chown")
        .arg("postgres:postgres")
        .arg(path)
        .status()
        .expect("run chown");
    assert!(status.success(), "chown postgres {}: {status}", path.display());
}

/// The directory of `initdb` and `pg_ctl`.
fn pg_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var(PG_BIN_VAR) {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}
