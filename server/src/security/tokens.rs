//! Bearer tokens: the tokens file, its hashes, and looking a presented
//! token up in constant time.
//!
//! The file holds one token per line, never the token itself:
//!
//! ```text
//! # name         scope  hash of the token                                                        projects (optional)
//! trainer-01     write  sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
//! dashboard      read   sha256:1c8bfe8f801d79745c4631d09fff36c82aa37fc4cce4fc946683d7b336b63032  projects=vision,nlp
//! ```
//!
//! Blank lines and lines starting with `#` are ignored. `write` includes
//! `read`. A fourth field `projects=a,b` restricts the token to those
//! projects; `projects=*` or no fourth field means every project. Tokens are long random strings (see [`generate_token`]), so an
//! unsalted SHA-256 is enough: there is nothing to guess from the hash.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::caller::Projects;

/// Prefix of every hash in the tokens file, naming the algorithm so that a
/// later one can be told apart.
const HASH_PREFIX: &str = "sha256:";
/// Prefix of generated tokens, so that a leaked one is recognisable (for
/// secret scanners) as an mlmeta token.
const TOKEN_PREFIX: &str = "mlm_";
/// Random bytes in a generated token (256 bits).
const TOKEN_RANDOM_BYTES: usize = 32;
/// Longest token name accepted in the tokens file.
const MAX_NAME_CHARS: usize = 64;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// List and query calls.
    Read,
    /// Puts and epoch inserts, and everything `Read` may do.
    Write,
}

impl Scope {
    /// Whether a token of this scope may make a call that needs `needed`.
    pub fn allows(self, needed: Scope) -> bool {
        self >= needed
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            _ => None,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Read => "read",
            Self::Write => "write",
        })
    }
}

/// Why a tokens file cannot be used. Each names the file and line.
#[derive(Debug, thiserror::Error)]
pub enum TokensFileError {
    /// The file cannot be read.
    #[error("cannot read the tokens file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A line breaks the format.
    #[error("tokens file {path}, line {line}: {rule}")]
    Line {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// The rule the line breaks.
        rule: String,
    },
    /// Others than the owner may write the file: whoever can write it can
    /// add a token for themselves (ssh refuses such key files too).
    #[error(
        "tokens file {path} is writable by {who} (mode {mode:04o}): anyone who can write it can add a token; \
         run `chmod go-w {path}`"
    )]
    Permissions {
        /// The file.
        path: String,
        /// "group", "others" or "group and others".
        who: &'static str,
        /// Its permission bits.
        mode: u32,
    },
    /// The file has no token, which would lock every caller out.
    #[error("tokens file {path} holds no token (add one with `mlmeta-server hash-token`)")]
    Empty {
        /// The file.
        path: String,
    },
}

/// One token of the file: its name (for logs), scope and hash.
#[derive(Clone)]
struct TokenEntry {
    name: String,
    scope: Scope,
    hash: [u8; 32],
    projects: Projects,
}

/// A token that matched: who it is and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The token's name from the tokens file.
    pub name: String,
    /// The token's scope.
    pub scope: Scope,
    /// The projects it may use.
    pub projects: Projects,
}

/// The tokens the server accepts.
#[derive(Clone)]
pub struct Tokens {
    entries: Vec<TokenEntry>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.entries.iter().map(|e| e.name.as_str()).collect();
        f.debug_struct("Tokens").field("names", &names).finish()
    }
}

impl Tokens {
    /// Reads and checks the tokens file at `path`.
    pub fn load(path: &Path) -> Result<Self, TokensFileError> {
        let shown = path.display().to_string();
        let read_error = |source| TokensFileError::Read {
            path: shown.clone(),
            source,
        };
        let metadata = std::fs::metadata(path).map_err(read_error)?;
        check_permissions(&metadata, &shown)?;
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        Self::parse(&text, &shown)
    }

    /// Parses the text of a tokens file; `path` only names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Self, TokensFileError> {
        let mut entries: Vec<TokenEntry> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fail = |rule: String| TokensFileError::Line {
                path: path.to_owned(),
                line: index + 1,
                rule,
            };
            let entry = parse_line(line).map_err(fail)?;
            if entries.iter().any(|e| e.name == entry.name) {
                return Err(fail(format!("the name {:?} is used twice", entry.name)));
            }
            if entries.iter().any(|e| e.hash == entry.hash) {
                return Err(fail(format!(
                    "this hash is already listed (token {:?})",
                    entries
                        .iter()
                        .find(|e| e.hash == entry.hash)
                        .map_or("", |e| &e.name)
                )));
            }
            entries.push(entry);
        }
        if entries.is_empty() {
            return Err(TokensFileError::Empty {
                path: path.to_owned(),
            });
        }
        Ok(Self { entries })
    }

    /// The identity of `token`, or `None` when no entry matches.
    ///
    /// Every entry is compared, each in constant time, so the time taken
    /// says nothing about which entry or how much of a hash matched.
    pub fn identify(&self, token: &str) -> Option<Identity> {
        let presented = hash_token(token);
        let mut found: Option<&TokenEntry> = None;
        for entry in &self.entries {
            if bool::from(entry.hash.ct_eq(&presented)) {
                found = Some(entry);
            }
        }
        found.map(|entry| Identity {
            name: entry.name.clone(),
            scope: entry.scope,
            projects: entry.projects.clone(),
        })
    }

    /// Number of tokens in the file.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file holds no token (never true of a loaded file).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn parse_line(line: &str) -> Result<TokenEntry, String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (name, scope, hash, projects) = match fields.as_slice() {
        [name, scope, hash] => (name, scope, hash, Projects::All),
        [name, scope, hash, projects] => (name, scope, hash, parse_projects(projects)?),
        _ => {
            return Err(format!(
                "expected `NAME SCOPE sha256:HEX [projects=NAME,...]` (3 or 4 fields), found {} field(s)",
                fields.len()
            ));
        }
    };
    check_name(name)?;
    let scope =
        Scope::parse(scope).ok_or_else(|| format!("scope must be `read` or `write`, not {scope:?}"))?;
    let hex_digits = hash
        .strip_prefix(HASH_PREFIX)
        .ok_or_else(|| format!("the hash must start with {HASH_PREFIX:?}"))?;
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_digits, &mut bytes)
        .map_err(|_| "the hash must be 64 hexadecimal digits after `sha256:`".to_owned())?;
    Ok(TokenEntry {
        name: (*name).to_owned(),
        scope,
        hash: bytes,
        projects,
    })
}

/// The fourth field: `projects=*` or `projects=a,b`, each a valid name.
fn parse_projects(field: &str) -> Result<Projects, String> {
    let list = field.strip_prefix("projects=").ok_or_else(|| {
        format!("the fourth field must be `projects=NAME,...` or `projects=*`, not {field:?}")
    })?;
    if list == "*" {
        return Ok(Projects::All);
    }
    let mut names = std::collections::BTreeSet::new();
    for name in list.split(',') {
        if !crate::validate::is_name(name) || name == "*" {
            return Err(format!("projects: {name:?} is not a project name"));
        }
        names.insert(name.to_owned());
    }
    Ok(Projects::Only(names))
}

/// Token names appear in logs, so they are kept to a plain alphabet.
fn check_name(name: &str) -> Result<(), String> {
    let plain = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if !plain || name.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "the name {name:?} must be 1 to {MAX_NAME_CHARS} of A-Z a-z 0-9 - _ . @"
        ));
    }
    Ok(())
}

fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A new random token: `mlm_` and 43 URL-safe characters (256 bits).
pub fn generate_token() -> String {
    let mut bytes = [0u8; TOKEN_RANDOM_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The tokens-file line for `token`, or why it cannot be one.
pub fn tokens_file_line(name: &str, scope: Scope, token: &str) -> Result<String, String> {
    check_name(name)?;
    check_token(token)?;
    Ok(format!(
        "{name} {scope} {HASH_PREFIX}{}",
        hex::encode(hash_token(token))
    ))
}

/// Tokens travel in an HTTP/2 header, so they must be visible ASCII; and a
/// short one could be guessed.
fn check_token(token: &str) -> Result<(), String> {
    if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("a token must be at least 16 visible ASCII characters (no spaces)".to_owned());
    }
    Ok(())
}

/// Refuses a tokens file that group or others may write.
#[cfg(unix)]
fn check_permissions(metadata: &std::fs::Metadata, path: &str) -> Result<(), TokensFileError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = metadata.permissions().mode() & 0o7777;
    let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (false, false) => return Ok(()),
        (true, false) => "group",
        (false, true) => "others",
        (true, true) => "group and others",
    };
    Err(TokensFileError::Permissions {
        path: path.to_owned(),
        who,
        mode,
    })
}

/// Windows has no permission bits of this kind.
#[cfg(not(unix))]
fn check_permissions(_metadata: &std::fs::Metadata, _path: &str) -> Result<(), TokensFileError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(lines: &[(&str, Scope, &str)]) -> Tokens {
        let text: Vec<String> = lines
            .iter()
            .map(|(name, scope, token)| tokens_file_line(name, *scope, token).unwrap())
            .collect();
        Tokens::parse(&format!("# comment\n\n{}\n", text.join("\n")), "tokens").unwrap()
    }

    #[test]
    fn generated_tokens_are_distinct_and_long() {
        let (a, b) = (generate_token(), generate_token());
        assert_ne!(a, b);
        assert!(a.starts_with("mlm_") && a.len() == 4 + 43, "{a}");
        assert!(check_token(&a).is_ok());
    }

    #[test]
    fn identify_finds_the_matching_entry_only() {
        let tokens = file_with(&[
            ("trainer", Scope::Write, "write-token-0123456789"),
            ("dash", Scope::Read, "read-token-0123456789"),
        ]);
        assert_eq!(
            tokens.identify("read-token-0123456789"),
            Some(Identity {
                name: "dash".into(),
                scope: Scope::Read,
                projects: Projects::All,
            })
        );
        assert_eq!(
            tokens.identify("write-token-0123456789").map(|i| i.scope),
            Some(Scope::Write)
        );
        assert_eq!(tokens.identify("read-token-012345678"), None);
        assert_eq!(tokens.identify(""), None);
    }

    #[test]
    fn write_includes_read() {
        assert!(Scope::Write.allows(Scope::Read));
        assert!(Scope::Write.allows(Scope::Write));
        assert!(Scope::Read.allows(Scope::Read));
        assert!(!Scope::Read.allows(Scope::Write));
    }

    #[test]
    fn bad_lines_name_the_line_and_rule() {
        let good = tokens_file_line("a", Scope::Read, "0123456789abcdef").unwrap();
        let cases = [
            ("a read", "3 or 4 fields"),
            ("a read sha256:00 vision", "projects=NAME"),
            ("a admin sha256:00", "scope must be"),
            ("a read md5:00", "must start with"),
            ("a read sha256:xyz", "64 hexadecimal"),
            ("bad/name read sha256:00", "must be 1 to 64"),
        ];
        for (line, rule) in cases {
            let err = Tokens::parse(&format!("{good}\n{line}\n"), "f")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("tokens file f, line 2") && err.contains(rule),
                "{line}: {err}"
            );
        }
        let twice = Tokens::parse(&format!("{good}\n{good}\n"), "f")
            .unwrap_err()
            .to_string();
        assert!(
            twice.contains("line 2") && twice.contains("used twice"),
            "{twice}"
        );
        let empty = Tokens::parse("# nothing\n", "f").unwrap_err().to_string();
        assert!(empty.contains("holds no token"), "{empty}");
    }

    #[test]
    fn a_fourth_field_restricts_the_projects() {
        let line = tokens_file_line("t", Scope::Read, "0123456789abcdef").unwrap();
        let only = Tokens::parse(&format!("{line} projects=vision,nlp\n"), "f").unwrap();
        let identity = only.identify("0123456789abcdef").unwrap();
        assert!(identity.projects.allows("nlp") && !identity.projects.allows("default"));
        let all = Tokens::parse(&format!("{line} projects=*\n"), "f").unwrap();
        assert_eq!(all.identify("0123456789abcdef").unwrap().projects, Projects::All);
        let plain = Tokens::parse(&format!("{line}\n"), "f").unwrap();
        assert_eq!(
            plain.identify("0123456789abcdef").unwrap().projects,
            Projects::All
        );
        for bad in ["projects=", "projects=a,,b", "projects=a,*"] {
            let error = Tokens::parse(&format!("{line} {bad}\n"), "f")
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("line 1") && error.contains("not a project name"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn debug_shows_names_not_hashes() {
        let tokens = file_with(&[("trainer", Scope::Write, "write-token-0123456789")]);
        let text = format!("{tokens:?}");
        assert!(
            text.contains("trainer") && !text.contains("write-token"),
            "{text}"
        );
    }

    #[test]
    fn weak_tokens_are_refused() {
        assert!(tokens_file_line("a", Scope::Read, "short").is_err());
        assert!(tokens_file_line("a", Scope::Read, "has a space in it ok").is_err());
    }
}
