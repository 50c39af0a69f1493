//! [`SqliteFile`]: is the SQLite file the server opened still the one at
//! its path?
//!
//! SQLite keeps writing to the files it has open. When a cleanup job
//! deletes the database's directory, or someone moves the file away, every
//! later commit goes into a file that no longer has that name and is lost
//! at the next start, which opens whatever is at the path then. SQLite can
//! tell (`SQLITE_FCNTL_HAS_MOVED`), but only through its C API, and the
//! workspace forbids unsafe code; comparing the device and inode numbers of
//! the path with those recorded at open is the same test. One `stat` costs
//! about a microsecond: writers run it after every commit, before they
//! acknowledge, and the checkpointer every 50 ms.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

use crate::error::{Error, StorageFault};

/// The SQLite database file of this server, as it was at open.
#[derive(Debug)]
pub(crate) struct SqliteFile {
    path: PathBuf,
    /// (device, inode) of the file at open; `None` where the platform has
    /// no such numbers (then nothing is ever detected).
    identity: Option<(u64, u64)>,
    /// Whether the last check found the path naming another file or none.
    moved: AtomicBool,
    /// Woken at every change of `moved`: the health monitor waits on it.
    changed: Arc<Notify>,
}

impl SqliteFile {
    /// Records the identity of the file now at `path` (which must exist).
    pub(crate) fn at(path: &Path) -> std::io::Result<Self> {
        let metadata = fs::metadata(path)?;
        Ok(Self {
            path: path.to_owned(),
            identity: identity(&metadata),
            moved: AtomicBool::new(false),
            changed: Arc::default(),
        })
    }

    /// The path the server opened.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Checks (one `stat`) that the path still names the file opened. A
    /// change either way is logged once and wakes [`SqliteFile::changed`].
    pub(crate) fn check(&self) -> Result<(), Error> {
        let in_place = match fs::metadata(&self.path) {
            Ok(metadata) => identity(&metadata) == self.identity,
            Err(error) if matches!(error.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => false,
            // Cannot tell (permissions, I/O): refusing writes on a guess
            // would turn a hiccup into an outage; SQLite reports real I/O
            // errors itself.
            Err(_) => true,
        };
        let was_moved = self.moved.swap(!in_place, Ordering::SeqCst);
        if was_moved == in_place {
            if in_place {
                tracing::info!(path = %self.path.display(), "the SQLite database file is back at its path: writes are accepted again");
            } else {
                tracing::error!(
                    path = %self.path.display(),
                    "the SQLite database file was moved, deleted or replaced while the server ran: \
                     refusing writes until it is back (or restart the server on the file now at that path)"
                );
            }
            self.changed.notify_one();
        }
        if in_place { Ok(()) } else { Err(self.moved_error()) }
    }

    /// Fails at once when the last check found the file gone and it still
    /// is; otherwise costs one atomic load.
    pub(crate) fn refuse_if_moved(&self) -> Result<(), Error> {
        if self.moved.load(Ordering::SeqCst) {
            self.check()
        } else {
            Ok(())
        }
    }

    /// Woken whenever the file goes away or comes back.
    pub(crate) fn changed(&self) -> Arc<Notify> {
        Arc::clone(&self.changed)
    }

    fn moved_error(&self) -> Error {
        Error::storage_with(
            StorageFault::Moved,
            format!(
                "SQLite database file {} was moved, deleted or replaced while the server ran: writes are \
                 refused so that none is acknowledged into a file without a name; move it back, or restart the server",
                self.path.display()
            ),
            format!("{} is no longer the file the server opened", self.path.display()),
        )
    }
}

#[cfg(unix)]
fn identity(metadata: &fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    Some((metadata.dev(), metadata.ino()))
}

#[cfg(not(unix))]
fn identity(_metadata: &fs::Metadata) -> Option<(u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_a_moved_deleted_or_replaced_file_and_its_return() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        fs::write(&path, b"x").unwrap();
        let file = SqliteFile::at(&path).unwrap();
        file.check().unwrap();
        file.refuse_if_moved().unwrap();

        let away = dir.path().join("b.db");
        fs::rename(&path, &away).unwrap();
        assert!(file.refuse_if_moved().is_ok(), "no stat without a check");
        let refused = file.check().unwrap_err().to_string();
        assert!(refused.contains("a.db") && refused.contains("moved"), "{refused}");
        assert!(file.refuse_if_moved().is_err());

        fs::write(&path, b"x").unwrap();
        assert!(file.check().is_err(), "another file at the path is not ours");
        fs::rename(&away, &path).unwrap();
        file.check().unwrap();
        file.refuse_if_moved().unwrap();

        drop(dir);
        assert!(file.check().is_err(), "the directory is gone");
    }
}
