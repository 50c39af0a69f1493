//! PostgreSQL: the one `LISTEN` connection of a replica, outside the
//! pool (a pooled connection would lose its `LISTEN` when recycled, and a
//! transaction-mode pooler does not pass notifications at all).
//!
//! diesel's `notifications_iter` reads what has arrived without waiting
//! (there is no socket to await), so a dedicated thread polls it every
//! [`POLL`]. A broken connection is re-opened with backoff, then every
//! watcher is told to re-read ([`Change::Any`]): notifications sent while
//! it was down are lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use diesel::{Connection, PgConnection, RunQueryDsl};

use super::CHANNEL;
use super::hub::{Change, Hub};
use crate::db::{DatabaseUrl, Threads};

/// How often arrived notifications are read. Commit-to-watcher across
/// two replicas (bench `watch-latency`, PostgreSQL) measured p50 / p99
/// 20.3 / 22.8 ms polling every 20 ms and 10.3 / 11.2 ms every 5 ms; an
/// idle server's CPU went from 0.5 % to 1.25 % of a core.
const POLL: Duration = Duration::from_millis(5);

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The running listener; dropping it stops the thread (within a poll).
pub(crate) struct Listener {
    stop: Arc<AtomicBool>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Listener {
    /// Starts listening on `url` for the hub.
    pub(crate) fn start(url: DatabaseUrl, hub: Arc<Hub>, threads: &Threads) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        threads.spawn("watch-listener".to_owned(), move || listen(&url, &hub, &stopped))?;
        Ok(Self { stop })
    }
}

fn listen(url: &DatabaseUrl, hub: &Hub, stop: &AtomicBool) {
    let mut backoff = POLL;
    let mut connected_before = false;
    while !stop.load(Ordering::Relaxed) {
        let mut conn = match connect(url) {
            Ok(conn) => conn,
            Err(error) => {
                tracing::warn!(%error, ?backoff, "watch listener cannot connect; retrying");
                thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = POLL;
        if connected_before {
            tracing::info!("watch listener reconnected; watchers re-read");
            hub.tail().remote_commit();
            hub.send(Change::Any);
        }
        connected_before = true;
        if let Err(error) = relay(&mut conn, hub, stop) {
            tracing::warn!(%error, "watch listener lost its connection");
        }
    }
}

fn connect(url: &DatabaseUrl) -> diesel::QueryResult<PgConnection> {
    let mut conn = PgConnection::establish(url.expose_secret())
        .map_err(|e| diesel::result::Error::QueryBuilderError(e.to_string().into()))?;
    diesel::sql_query(format!("LISTEN {CHANNEL}")).execute(&mut conn)?;
    Ok(conn)
}

/// Hands arrived notifications to the hub until the connection breaks or
/// the listener stops. A quiet connection is checked every few seconds
/// (a dead peer is otherwise noticed only by the kernel's keep-alive).
fn relay(conn: &mut PgConnection, hub: &Hub, stop: &AtomicBool) -> diesel::QueryResult<()> {
    let mut quiet = Duration::ZERO;
    while !stop.load(Ordering::Relaxed) {
        let mut any = false;
        for notification in conn.notifications_iter() {
            let notification = notification?;
            hub.relay(notification.process_id, &notification.payload);
            any = true;
        }
        if any {
            quiet = Duration::ZERO;
        } else if quiet >= Duration::from_secs(2) {
            diesel::sql_query("SELECT 1").execute(conn)?;
            quiet = Duration::ZERO;
        }
        thread::sleep(POLL);
        quiet += POLL;
    }
    Ok(())
}
