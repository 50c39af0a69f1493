//! [`DatabaseUrl`]: `--database-url` parsed once, at the command line,
//! into the backend it names. Its `Debug` and `Display` hide passwords, so
//! the configuration can be logged whole.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// A database URL, parsed: `sqlite://PATH` or `postgres://…` /
/// `postgresql://…`.
///
/// `Display` and `Debug` show it with any password replaced by `***` (in
/// the user info and in a `password=` query parameter); only
/// [`DatabaseUrl::expose_secret`] gives the URL as written.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    /// As given (with its password): for connecting only.
    given: String,
    backend: Backend,
}

/// What a [`DatabaseUrl`] points at.
#[derive(Clone, PartialEq, Eq)]
enum Backend {
    /// A SQLite file (created if missing) at this path.
    Sqlite { path: String },
    /// A PostgreSQL server; libpq is given the whole URL.
    Postgres,
}

/// Why a string is not a usable database URL; the message names the
/// accepted forms but never repeats a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidDatabaseUrl(String);

impl DatabaseUrl {
    /// Parses `sqlite://PATH`, `postgres://…` or `postgresql://…`; anything
    /// else is an error naming the accepted forms (never a silent SQLite
    /// file called after the string).
    pub fn parse(url: &str) -> Result<Self, InvalidDatabaseUrl> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() || path == ":memory:" {
                return Err(InvalidDatabaseUrl(
                    "sqlite:// needs a file path, e.g. sqlite://mlmeta.db (an in-memory database cannot be shared by the connection pool)".into(),
                ));
            }
            return Ok(Self {
                given: url.to_owned(),
                backend: Backend::Sqlite {
                    path: path.to_owned(),
                },
            });
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self {
                given: url.to_owned(),
                backend: Backend::Postgres,
            });
        }
        Err(InvalidDatabaseUrl(format!(
            "unsupported database URL scheme in {:?}: use sqlite://PATH or postgres://USER@HOST/DB",
            redact(url)
        )))
    }

    /// The path of the SQLite file, or `None` for PostgreSQL.
    pub fn sqlite_path(&self) -> Option<&str> {
        match &self.backend {
            Backend::Sqlite { path } => Some(path),
            Backend::Postgres => None,
        }
    }

    /// The SQLite file's path as a [`Path`], or `None` for PostgreSQL.
    pub fn sqlite_file(&self) -> Option<&Path> {
        self.sqlite_path().map(Path::new)
    }

    /// Whether this names a PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres)
    }

    /// The URL exactly as given, password included: to connect with, or to
    /// hand to another program's `--database-url`. Never log it; log the
    /// value itself (its `Display` hides the password).
    pub fn expose_secret(&self) -> &str {
        &self.given
    }
}

impl FromStr for DatabaseUrl {
    type Err = InvalidDatabaseUrl;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        Self::parse(url)
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.given))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl").field(&redact(&self.given)).finish()
    }
}

/// The clap parser of `--database-url`: unlike clap's default one, its
/// error does not repeat the value given (which may hold a password).
#[derive(Debug, Clone, Copy, Default)]
pub struct DatabaseUrlParser;

impl clap::builder::TypedValueParser for DatabaseUrlParser {
    type Value = DatabaseUrl;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<DatabaseUrl, clap::Error> {
        let invalid = |why: &dyn fmt::Display| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid --database-url / MLMETA_DATABASE_URL: {why}\n"),
            )
        };
        let text = value.to_str().ok_or_else(|| invalid(&"not valid UTF-8"))?;
        DatabaseUrl::parse(text).map_err(|error| invalid(&error))
    }
}

/// `url` with the password of its user info and of a `password=` query
/// parameter replaced by `***`.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let (head, query) = match url.find('?') {
        Some(mark) if mark >= scheme_end => (&url[..mark], Some(&url[mark + 1..])),
        _ => (url, None),
    };
    let rest = &head[scheme_end..];
    // libpq ends the user info at the first `@` before the path; a password
    // cannot hold a raw `@` or `/`, so everything from the first `:` to the
    // last `@` of the authority is secret.
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let mut out = String::with_capacity(url.len());
    out.push_str(&head[..scheme_end]);
    match authority
        .rfind('@')
        .and_then(|at| Some((authority[..at].find(':')?, at)))
    {
        Some((colon, at)) => {
            out.push_str(&rest[..=colon]);
            out.push_str("***");
            out.push_str(&rest[at..]);
        }
        None => out.push_str(rest),
    }
    if let Some(query) = query {
        out.push('?');
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => param.to_owned(),
            })
            .collect();
        out.push_str(&params.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_choose_the_backend() {
        let sqlite = DatabaseUrl::parse("sqlite://mlmeta.db").unwrap();
        assert_eq!(sqlite.sqlite_path(), Some("mlmeta.db"));
        assert!(!sqlite.is_postgres());
        let absolute = DatabaseUrl::parse("sqlite:///tmp/x.db").unwrap();
        assert_eq!(absolute.sqlite_file(), Some(Path::new("/tmp/x.db")));
        for postgres in ["postgresql://u@h/db", "postgres://u@h/db"] {
            let url = DatabaseUrl::parse(postgres).unwrap();
            assert!(url.is_postgres() && url.sqlite_path().is_none());
            assert_eq!(url.expose_secret(), postgres);
        }
        for bad in ["mlmeta.db", "mysql://x", "sqlite://", "sqlite://:memory:", ""] {
            assert!(DatabaseUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_never_show() {
        for (given, shown) in [
            ("postgres://u:secret@h/db", "postgres://u:***@h/db"),
            (
                "postgres://u:secret@h:5432,h2:5433/db",
                "postgres://u:***@h:5432,h2:5433/db",
            ),
            (
                "postgres://u@h/db?password=secret&sslmode=require",
                "postgres://u@h/db?password=***&sslmode=require",
            ),
            (
                "postgresql://u:secret@h/db?PASSWORD=secret",
                "postgresql://u:***@h/db?PASSWORD=***",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("postgres://h/db?x=a:b@c", "postgres://h/db?x=a:b@c"),
            ("sqlite://a.db", "sqlite://a.db"),
        ] {
            let url = DatabaseUrl::parse(given).unwrap();
            assert_eq!(url.to_string(), shown);
            assert_eq!(format!("{url:?}"), format!("DatabaseUrl({shown:?})"));
            assert_eq!(url.expose_secret(), given);
        }
        let error = DatabaseUrl::parse("mysql://u:secret@h/db").unwrap_err();
        assert!(!error.to_string().contains("secret"), "{error}");
    }
}
