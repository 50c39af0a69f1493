//! Test harness of mlmeta's integration tests.
//!
//! - [`TestServer`]: a real mlmeta server, started in-process on an
//!   ephemeral loopback port, over a fresh SQLite file
//!   ([`TestServer::sqlite`]) or a fresh PostgreSQL database
//!   ([`TestServer::postgres`]), stopped (and its database removed) when
//!   dropped.
//! - [`backend_tests!`]: writes each test body once and instantiates it
//!   as `sqlite::NAME` and `postgres::NAME`, each bounded in time.
//! - [`records`]: builders of API records; [`calls`]: calls that follow
//!   pages, status assertions and store snapshots.
//! - [`database`]: the server's database seen from outside (a write lock
//!   that makes epoch writes wait).
//! - [`process`]: the real `mlmeta-server` binary as a child process.
//! - [`tls`]: a throwaway CA with server and client certificates.
//! - [`cluster`]: a private PostgreSQL server a test may stop and start;
//!   [`mounts`]: a small tmpfs to fill, a read-only bind mount;
//!   [`health`]: the gRPC health status and waits for it.
//! - [`http`]: plain HTTP/1.1 and HTTP/2 requests to the HTTP listener
//!   (`/metrics`, `/healthz`), over TLS too, and a parser of the
//!   Prometheus text format.
//! - [`wire`]: raw protobuf bytes over gRPC, for values prost cannot
//!   encode (`-0.0`), and requests whose body stalls.
//!
//! Run everything with `cargo nextest run -p mlmeta-tests` (the binary
//! tests build `mlmeta-server` first when needed); one backend with
//! `-E 'test(/::sqlite::/)'` or `-E 'test(/::postgres::/)'`.
//!
//! PostgreSQL is reached through `MLMETA_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). When it is unreachable,
//! PostgreSQL tests print a notice and pass as skipped, unless
//! `MLMETA_REQUIRE_POSTGRES=1`, which makes them fail instead.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod browser;
pub mod calls;
pub mod cluster;
pub mod database;
pub mod health;
pub mod http;
mod macros;
pub mod mounts;
pub mod postgres;
pub mod process;
pub mod records;
mod server;
pub mod tls;
pub mod wire;

pub use calls::Client;
pub use macros::{DEFAULT_TEST_TIMEOUT, run_bounded};
pub use postgres::TestDatabase;
pub use server::{Backend, TestServer, wait_healthy};

/// Writes `text` to `path`, readable and writable by its owner only, as a
/// tokens file must be (the server refuses one that group or others may
/// write, whatever the umask of the machine running the tests).
pub fn write_private(path: &std::path::Path, text: impl AsRef<[u8]>) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}
