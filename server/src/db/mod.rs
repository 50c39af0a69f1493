//! Database connections: the backend is chosen from the URL scheme, pooled
//! with r2d2, set up per connection (SQLite pragmas) and migrated at open.

mod migrations;
mod pool;
pub mod schema;

pub use pool::{DbConnection, DbPool, open_pool};
pub(crate) use pool::{connect_and_migrate, sqlite_checkpointer_connection};

/// Which database a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite file (created if missing).
    Sqlite { path: String },
    /// A PostgreSQL connection string, passed to libpq as given.
    Postgres { url: String },
}

impl DatabaseUrl {
    /// Parses `sqlite://PATH`, `postgres://…` or `postgresql://…`; anything
    /// else is an error naming the accepted forms (never a silent SQLite
    /// file called after the string).
    pub fn parse(url: &str) -> Result<Self, crate::error::StartupError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() || path == ":memory:" {
                return Err(crate::error::StartupError::DatabaseUrl(
                    "sqlite:// needs a file path, e.g. sqlite://mlmeta.db (an in-memory database cannot be shared by the connection pool)".into(),
                ));
            }
            return Ok(Self::Sqlite {
                path: path.to_owned(),
            });
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres { url: url.to_owned() });
        }
        Err(crate::error::StartupError::DatabaseUrl(format!(
            "unsupported database URL scheme in {:?}: use sqlite://PATH or postgres://USER@HOST/DB",
            redact(url)
        )))
    }
}

/// The URL without any password, for logs and messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_choose_the_backend() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://mlmeta.db").unwrap(),
            DatabaseUrl::Sqlite {
                path: "mlmeta.db".into()
            }
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///tmp/x.db").unwrap(),
            DatabaseUrl::Sqlite {
                path: "/tmp/x.db".into()
            }
        );
        assert!(matches!(
            DatabaseUrl::parse("postgresql://u@h/db").unwrap(),
            DatabaseUrl::Postgres { .. }
        ));
        for bad in ["mlmeta.db", "mysql://x", "sqlite://", "sqlite://:memory:", ""] {
            assert!(DatabaseUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://a.db"), "sqlite://a.db");
    }
}
