//! File systems that fail the way real disks do, for storage-fault tests:
//! a small [`Tmpfs`] that fills up, and a [`ReadOnlyView`] of a directory
//! (a read-only bind mount).
//!
//! Tests run as root here, where permission bits do not stop writes, so a
//! "read-only database" must be a read-only mount. Mounting needs root (or
//! `CAP_SYS_ADMIN`): without it the constructors print a notice and return
//! `None`, and the test passes as skipped.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

/// A tmpfs of a fixed size mounted on a fresh temporary directory;
/// unmounted when dropped.
#[derive(Debug)]
pub struct Tmpfs {
    dir: TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount -o size=`, e.g. `8m`); `None`
    /// (after a notice) when mounting is not permitted.
    pub fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::Builder::new()
            .prefix("mlmeta-tmpfs-")
            .tempdir()
            .expect("create a mount point");
        let options = format!("size={size},mode=1777");
        run_mount(&["-t", "tmpfs", "-o", &options, "tmpfs"], dir.path())?;
        Some(Self { dir })
    }

    /// The mounted directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the file system's free space (see [`fill`]).
    pub fn fill(&self, name: &str) -> PathBuf {
        fill(self.path(), name)
    }
}

/// Fills the free space of the file system holding `dir` with the file
/// `dir/name` (zeros, written until `ENOSPC`); returns its path. Remove it
/// to free the space again.
pub fn fill(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let mut file = File::create(&path).expect("create the filler file");
    // Large writes first, then pages, then bytes: every last byte.
    for size in [64 * 1024, 4096, 1] {
        let chunk = vec![0u8; size];
        while file.write_all(&chunk).is_ok() {}
    }
    path
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        unmount(self.dir.path());
    }
}

/// A read-only view of a directory: `source` bind-mounted read-only on a
/// fresh temporary directory, so that files written through `source` can
/// only be read through the view. Unmounted when dropped.
#[derive(Debug)]
pub struct ReadOnlyView {
    dir: TempDir,
}

impl ReadOnlyView {
    /// Bind-mounts `source` read-only; `None` (after a notice) when
    /// mounting is not permitted.
    pub fn of(source: &Path) -> Option<Self> {
        let dir = tempfile::Builder::new()
            .prefix("mlmeta-ro-")
            .tempdir()
            .expect("create a mount point");
        let source = source.to_str().expect("UTF-8 source path");
        run_mount(&["--bind", source], dir.path())?;
        let view = Self { dir };
        // A bind mount takes its read-only flag in a second step.
        run_mount(&["-o", "remount,bind,ro"], view.path())?;
        Some(view)
    }

    /// The read-only directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for ReadOnlyView {
    fn drop(&mut self) {
        unmount(self.dir.path());
    }
}

/// `mount ARGS TARGET`; `None` after a notice when it fails.
fn run_mount(args: &[&str], target: &Path) -> Option<()> {
    let output = Command::new("mount")
        .args(args)
        .arg(target)
        .stdin(Stdio::null())
        .output();
    match output {
        Ok(output) if output.status.success() => Some(()),
        Ok(output) => skip(&format!(
            "mount {} {}: {}",
            args.join(" "),
            target.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(error) => skip(&format!("cannot run mount: {error}")),
    }
}

fn skip(why: &str) -> Option<()> {
    eprintln!("\n!!! SKIPPED: this test needs to mount a file system (run it as root): {why}\n");
    None
}

/// Lazily unmounts `target` (it goes once nothing uses it any more).
fn unmount(target: &Path) {
    let status = Command::new("umount")
        .arg("-l")
        .arg(target)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !status.is_ok_and(|s| s.success()) {
        eprintln!("warning: cannot unmount {}", target.display());
    }
}
