//! The process's limit of open files, which bounds how many connections
//! it can hold (each is a file descriptor).

#[cfg(unix)]
use tracing::{info, warn};

/// Raises the soft limit of open files (`RLIMIT_NOFILE`) to the hard
/// limit, logging both values; a failure is logged and otherwise ignored.
///
/// The soft limit is often 1,024, which a thousand idle or silent
/// connections use up, after which nobody can connect; the hard limit
/// (often 524,288 or more) is what the administrator allows.
///
/// It changes the whole process, so the binary calls it once at start;
/// [`crate::serve`] does not, leaving programs that embed the server
/// (tests) their own limits.
#[cfg(unix)]
pub fn raise_open_files_limit() {
    let (soft, hard) = match rlimit::Resource::NOFILE.get() {
        Ok(limits) => limits,
        Err(error) => {
            warn!(%error, "cannot read the open-files limit (RLIMIT_NOFILE)");
            return;
        }
    };
    if soft >= hard {
        info!(
            soft,
            hard, "open-files limit (RLIMIT_NOFILE) already at the hard limit"
        );
        return;
    }
    // On macOS the usable maximum can be below the hard limit;
    // `increase_nofile_limit` stops there.
    match rlimit::increase_nofile_limit(hard) {
        Ok(raised) => info!(
            from = soft,
            to = raised,
            hard,
            "raised the soft open-files limit (RLIMIT_NOFILE)"
        ),
        Err(error) => warn!(%error, soft, hard, "cannot raise the soft open-files limit (RLIMIT_NOFILE)"),
    }
}

/// Elsewhere there is no such limit to raise.
#[cfg(not(unix))]
pub fn raise_open_files_limit() {}
