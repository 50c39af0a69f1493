//! Fresh PostgreSQL databases for tests: created on demand, dropped with
//! `DROP DATABASE ... WITH (FORCE)` when the [`TestDatabase`] is dropped.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel::{Connection, PgConnection, RunQueryDsl};

/// Variable naming the PostgreSQL server used by tests (any database on
/// it; tests create their own).
pub const POSTGRES_URL_VAR: &str = "MLMETA_TEST_POSTGRES_URL";
/// Default of [`POSTGRES_URL_VAR`].
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Variable that, set to `1`, makes an unreachable PostgreSQL a test
/// failure instead of a skip.
pub const REQUIRE_POSTGRES_VAR: &str = "MLMETA_REQUIRE_POSTGRES";

/// How long connecting to PostgreSQL may take before it counts as
/// unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A fresh, empty PostgreSQL database, dropped when this value is.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates a database `mlmeta_test_<unique>` on the server named by
    /// [`POSTGRES_URL_VAR`].
    ///
    /// Returns `None` after a notice on stderr when PostgreSQL cannot be
    /// reached, unless [`REQUIRE_POSTGRES_VAR`] is `1`: then it panics.
    pub async fn create() -> Option<Self> {
        Self::create_with("").await
    }

    /// Like [`TestDatabase::create`], with `options` appended to the
    /// `CREATE DATABASE` statement (for example
    /// `LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8' TEMPLATE template0`).
    pub async fn create_with(options: &str) -> Option<Self> {
        let admin_url = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let name = unique_name();
        // Before this process's first PostgreSQL connection (see there).
        mlmeta_server::skip_openssl_exit_cleanup();
        let task = {
            let admin_url = admin_url.clone();
            let name = name.clone();
            let options = options.to_owned();
            tokio::task::spawn_blocking(move || -> Result<(), String> {
                let mut conn = PgConnection::establish(&admin_url).map_err(|e| e.to_string())?;
                diesel::sql_query(format!("CREATE DATABASE \"{name}\" {options}"))
                    .execute(&mut conn)
                    .map_err(|e| format!("CREATE DATABASE {name}: {e}"))?;
                Ok(())
            })
        };
        let outcome = match tokio::time::timeout(CONNECT_TIMEOUT, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(join.to_string()),
            Err(_) => Err(format!("no answer within {CONNECT_TIMEOUT:?}")),
        };
        match outcome {
            Ok(()) => {
                let url = with_database(&admin_url, &name);
                Some(Self { admin_url, name, url })
            }
            Err(error) => {
                let message = format!(
                    "PostgreSQL at {} is unusable ({}); set {POSTGRES_URL_VAR} to a reachable server",
                    redact(&admin_url),
                    error.trim().replace('\n', " ")
                );
                if std::env::var(REQUIRE_POSTGRES_VAR).as_deref() == Ok("1") {
                    panic!("{message} ({REQUIRE_POSTGRES_VAR}=1, so this is a failure)");
                }
                eprintln!(
                    "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                     !!! SKIPPED: {message}.\n\
                     !!! Set {REQUIRE_POSTGRES_VAR}=1 to make this a failure.\n\
                     !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
                );
                None
            }
        }
    }

    /// URL of this database, for the server's `--database-url`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Name of this database.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let dropped = PgConnection::establish(&self.admin_url)
            .map_err(|e| e.to_string())
            .and_then(|mut conn| {
                diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name))
                    .execute(&mut conn)
                    .map_err(|e| e.to_string())
            });
        if let Err(error) = dropped {
            eprintln!("warning: cannot drop test database {}: {error}", self.name);
        }
    }
}

/// Runs `sql` as the administrator on the server named by
/// [`POSTGRES_URL_VAR`] (connected to its default database), panicking on
/// error: for `ALTER DATABASE` and `pg_terminate_backend`. Blocking.
pub fn run_as_admin(sql: &str) {
    let admin_url = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    mlmeta_server::skip_openssl_exit_cleanup();
    let mut conn = PgConnection::establish(&admin_url)
        .unwrap_or_else(|e| panic!("connect to {}: {e}", redact(&admin_url)));
    diesel::sql_query(sql)
        .execute(&mut conn)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Ends every session on database `name` but the caller's, as a server
/// restart or a failover would. Blocking.
pub fn terminate_sessions(name: &str) {
    run_as_admin(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    ));
}

/// A database name no other test (of this or another process) uses.
fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "mlmeta_test_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// `url` with its password masked, for messages (the server's own
/// redaction: [`mlmeta_server::DatabaseUrl`]'s `Display`).
pub fn redact(url: &str) -> String {
    mlmeta_server::DatabaseUrl::parse(url)
        .map_or_else(|_| "<not a database URL>".to_owned(), |url| url.to_string())
}

/// `url` with its database (path) replaced by `database`, keeping the
/// user, host, port and query parameters.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{redact, with_database};

    #[test]
    fn redacts_only_the_password() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db?x=a:b@c"), "postgres://h/db?x=a:b@c");
    }

    #[test]
    fn replaces_only_the_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "x"),
            "postgresql://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "x"), "postgres://h:1/x");
    }
}
