//! The health monitor: `grpc.health.v1` says SERVING only while the
//! database is usable.
//!
//! Every [`INTERVAL`] the monitor runs the store's [`Probe`] (a trivial
//! query on a connection of its own, so a busy pool cannot starve it; on
//! SQLite also the check that the file is still at its path) on a blocking
//! thread. While it fails, or gives no answer within [`PROBE_TIMEOUT`],
//! both the overall status (`""`) and `mlmeta.v1.MetadataService` are
//! NOT_SERVING; once it succeeds again they are SERVING. Each change is
//! logged once. On SQLite a moved or returned file wakes the monitor at
//! once instead of at the next tick. The HTTP listener's `/readyz` reads
//! the same finding ([`Readiness`]).

use std::time::{Duration, Instant};

use mlmeta_proto::metadata_service_server::SERVICE_NAME;
use tokio::task::JoinHandle;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::db::Probe;
use crate::error::Error;
use crate::http::Readiness;
use crate::store::Store;

/// How often the database is probed.
const INTERVAL: Duration = Duration::from_secs(1);

/// How long a probe may take before the database counts as unusable (a
/// PostgreSQL server that accepts connections but does not answer). The
/// probe keeps running; the next one starts when it has returned.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The running monitor; dropping it (when the server stops) stops it.
pub(crate) struct Monitor {
    task: JoinHandle<()>,
}

impl Monitor {
    /// Starts watching `store`'s database and reporting it on `reporter`
    /// and `ready`.
    pub(crate) fn spawn(reporter: HealthReporter, ready: Readiness, store: &Store) -> Self {
        let probe = store.probe();
        Self {
            task: tokio::spawn(run(reporter, ready, probe)),
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A probe waiting for its next turn, or running on a blocking thread.
enum Slot {
    Idle(Probe),
    Running(JoinHandle<(Probe, Result<(), Error>)>),
}

async fn run(reporter: HealthReporter, ready: Readiness, probe: Probe) {
    let file_changes = probe.file_changes();
    let mut slot = Slot::Idle(probe.fresh());
    let mut serving = true;
    let mut since = Instant::now();
    loop {
        let (next, outcome) = probe_once(slot, probe.fresh()).await;
        slot = next;
        let usable = outcome.is_ok();
        if usable != serving {
            serving = usable;
            ready.set(usable);
            let status = if usable {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            reporter.set_service_status("", status).await;
            reporter.set_service_status(SERVICE_NAME, status).await;
            let after = since.elapsed();
            since = Instant::now();
            match outcome {
                Ok(()) => tracing::info!(?after, "database usable again: health SERVING"),
                Err(error) => tracing::error!(%error, ?after, "database unusable: health NOT_SERVING"),
            }
        }
        match &file_changes {
            Some(changed) => {
                tokio::select! {
                    () = tokio::time::sleep(INTERVAL) => {}
                    () = changed.notified() => {}
                }
            }
            None => tokio::time::sleep(INTERVAL).await,
        }
    }
}

/// Runs one probe (or keeps waiting for the one still running) for at most
/// [`PROBE_TIMEOUT`]. `spare` (not connected yet, so cheap) stands in for a
/// probe that was lost.
async fn probe_once(slot: Slot, spare: Probe) -> (Slot, Result<(), Error>) {
    let mut running = match slot {
        Slot::Idle(mut probe) => tokio::task::spawn_blocking(move || {
            let outcome = probe.check();
            (probe, outcome)
        }),
        Slot::Running(running) => running,
    };
    match tokio::time::timeout(PROBE_TIMEOUT, &mut running).await {
        Ok(Ok((probe, outcome))) => (Slot::Idle(probe), outcome),
        // The probe panicked (or the runtime is shutting down): a new one
        // takes over at the next tick.
        Ok(Err(error)) => (Slot::Idle(spare), Err(error.into())),
        Err(_) => (
            Slot::Running(running),
            Err(Error::Unavailable(format!(
                "the database gave no answer to a trivial query within {PROBE_TIMEOUT:?}"
            ))),
        ),
    }
}
