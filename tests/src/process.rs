//! The real `mlmeta-server` binary, run as a child process.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::NamedTempFile;
use tonic::transport::Endpoint;

/// Name of the server binary.
const BINARY: &str = "mlmeta-server";

/// How long building the server binary may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(900);

/// Path of the `mlmeta-server` binary of the same target profile as this
/// test executable (`target/<profile>/mlmeta-server`).
///
/// Under cargo-nextest (`NEXTEST=1`) it is first brought up to date with
/// `cargo build -p mlmeta-server [--profile <profile>]` (a no-op when
/// fresh). Under `cargo test`, which keeps the build directory locked while
/// tests run, an existing binary is used as is (with a warning when it is
/// older than this test executable) and a missing one is built with a time
/// limit. Panics with instructions when there is no binary.
pub fn server_binary() -> PathBuf {
    static BINARY_PATH: OnceLock<PathBuf> = OnceLock::new();
    BINARY_PATH.get_or_init(find_or_build_binary).clone()
}

/// See [`server_binary`].
fn find_or_build_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    // target/<profile>/deps/<test executable>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable under target/<profile>/deps")
        .to_path_buf();
    let binary = profile_dir.join(BINARY);
    let under_nextest = std::env::var("NEXTEST").as_deref() == Ok("1");
    if binary.is_file() && !under_nextest {
        if modified(&binary) < modified(&exe) {
            eprintln!(
                "warning: {} is older than this test executable; run `cargo build -p {BINARY}` if the server changed",
                binary.display()
            );
        }
        return binary;
    }
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug")
        .to_owned();
    build_binary(&profile);
    assert!(
        binary.is_file(),
        "`cargo build -p {BINARY}` did not produce {}; build it by hand with `cargo build -p {BINARY}`",
        binary.display()
    );
    binary
}

/// Modification time of `path`, if readable.
fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Runs `cargo build -p mlmeta-server` for `profile`, within
/// [`BUILD_TIMEOUT`].
fn build_binary(profile: &str) {
    let cargo = std::env::var("CARGO")
        .ok()
        .or_else(|| option_env!("CARGO").map(str::to_owned))
        .unwrap_or_else(|| "cargo".to_owned());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut build = Command::new(&cargo);
    build
        .args([
            "build",
            "--quiet",
            "-p",
            BINARY,
            "--bin",
            BINARY,
            "--manifest-path",
        ])
        .arg(&manifest)
        .stdin(Stdio::null());
    match profile {
        "debug" => {}
        "release" => {
            build.arg("--release");
        }
        other => {
            build.args(["--profile", other]);
        }
    }
    let mut child = build.spawn().unwrap_or_else(|e| {
        panic!("cannot run {cargo}: {e}; build the server with `cargo build -p {BINARY}`")
    });
    let deadline = Instant::now() + BUILD_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll cargo") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{build:?} took over {BUILD_TIMEOUT:?} (is the build directory locked by `cargo test`?); run `cargo build -p {BINARY}` first"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "{build:?} failed ({status}); the binary tests need the server binary"
    );
}

/// A loopback port that was free a moment ago (bound to port 0, read,
/// released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral loopback port")
}

/// A running `mlmeta-server` child process, killed (SIGKILL) if still
/// running when dropped. Its stdout and stderr go to temporary files.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    port: u16,
    stderr: NamedTempFile,
    stdout: NamedTempFile,
}

impl ServerProcess {
    /// Starts the binary with `args`, in `dir` when given, with no
    /// `MLMETA_*` variable inherited and `RUST_LOG=info`; without an HTTP
    /// listener (`MLMETA_HTTP_LISTEN=off`) unless `args` name
    /// `--http-listen`, since many servers run at once.
    /// `port` is where it is expected to listen.
    pub fn spawn(args: &[&str], dir: Option<&Path>, port: u16) -> Self {
        Self::spawn_logging(args, dir, port, "info")
    }

    /// [`spawn`](Self::spawn) with `RUST_LOG=rust_log`.
    pub fn spawn_logging(args: &[&str], dir: Option<&Path>, port: u16, rust_log: &str) -> Self {
        Self::spawn_under(&[], args, dir, port, rust_log)
    }

    /// [`spawn_logging`](Self::spawn_logging) through `wrapper`, a command
    /// that runs the binary (its path appended to `wrapper`) in its own
    /// process, such as `["prlimit", "--nofile=256:4096", "--"]`; it must
    /// exec the binary, so that signals reach the server.
    pub fn spawn_under(
        wrapper: &[&str],
        args: &[&str],
        dir: Option<&Path>,
        port: u16,
        rust_log: &str,
    ) -> Self {
        let stderr = NamedTempFile::new().expect("temporary file for stderr");
        let stdout = NamedTempFile::new().expect("temporary file for stdout");
        let mut command = match wrapper.split_first() {
            None => Command::new(server_binary()),
            Some((program, wrapper_args)) => {
                let mut command = Command::new(program);
                command.args(wrapper_args).arg(server_binary());
                command
            }
        };
        command
            .args(args)
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                File::create(stdout.path()).expect("open stdout file"),
            ))
            .stderr(Stdio::from(
                File::create(stderr.path()).expect("open stderr file"),
            ));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("MLMETA_") {
                command.env_remove(key);
            }
        }
        if !args.iter().any(|arg| arg.starts_with("--http-listen")) {
            command.env("MLMETA_HTTP_LISTEN", "off");
        }
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        let child = command.spawn().expect("start mlmeta-server");
        Self {
            child,
            port,
            stderr,
            stdout,
        }
    }

    /// Starts the binary on a free port with `--database-url url`.
    pub fn start(database_url: &str) -> Self {
        Self::start_with(database_url, &[])
    }

    /// Starts the binary on a free port with `--database-url url` and
    /// `extra` arguments.
    pub fn start_with(database_url: &str, extra: &[&str]) -> Self {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec!["--database-url", database_url, "--listen", &listen];
        args.extend_from_slice(extra);
        Self::spawn(&args, None, port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id of the server.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:PORT` of this server.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A lazily connecting client of this server.
    pub fn client(&self) -> crate::Client {
        let channel = Endpoint::from_shared(self.url())
            .expect("valid URL")
            .connect_timeout(Duration::from_secs(5))
            .connect_lazy();
        crate::Client::new(channel)
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr.path()).unwrap_or_default()
    }

    /// Everything the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.stdout.path()).unwrap_or_default()
    }

    /// Waits until the server reports SERVING; on failure, the error names
    /// the exit status (if it exited) and its stderr.
    pub async fn wait_healthy(&mut self, limit: Duration) -> Result<(), String> {
        let channel = Endpoint::from_shared(self.url())
            .expect("valid URL")
            .connect_timeout(Duration::from_secs(2))
            .connect_lazy();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                return Err(format!(
                    "exited with {status} before it was healthy; stderr:\n{}",
                    self.stderr()
                ));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let attempt = crate::wait_healthy(channel.clone(), Duration::from_millis(500).min(left));
            if attempt.await.is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "not healthy within {limit:?}; stderr:\n{}",
                    self.stderr()
                ));
            }
        }
    }

    /// Sends SIGTERM with `kill -TERM <pid>`.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends the signal `name` (`TERM`, `HUP`, ...) with `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(
            status.success(),
            "kill -{name} {} failed: {status}",
            self.child.id()
        );
    }

    /// Waits up to `limit` for the process to exit; `None` if it did not.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
