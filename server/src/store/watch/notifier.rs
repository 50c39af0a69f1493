//! PostgreSQL: tells the other replicas' watchers about this replica's
//! epoch commits, from one connection of its own, after the commits.
//!
//! A `pg_notify` inside a writer's transaction makes its commit take
//! PostgreSQL's global notification lock, so concurrent writers' commits
//! queue behind each other (measured: about 15% of 8-writer throughput).
//! Here the group commit's hook hands the committed model ids to this
//! thread without waiting, and the thread sends one notification for
//! everything that arrived since its last one: never more than one per
//! committed transaction, never per row. A notification lost here (the
//! process dies between a commit and its notification, the connection
//! breaks) costs the other replicas' watchers latency, never data: they
//! re-read from their cursors on the safety-net poll.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread;
use std::time::Duration;

use diesel::sql_types::Text;
use diesel::{Connection, PgConnection, RunQueryDsl};

use super::CHANNEL;
use super::hub::Hub;
use crate::db::{DatabaseUrl, Threads};
use crate::store::ingest::hook::{CommitHook, Committed};

/// Commits queued for the thread; when it falls this far behind, the
/// next notification says "any" instead of naming models.
const QUEUE: usize = 4096;

/// Most model ids one notification names (well under NOTIFY's 8000
/// bytes); past that it names none, which watchers read as "any".
const MAX_IDS: usize = 400;

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// After a commit arrives, the thread waits this long for more before it
/// notifies: a busy replica sends a few hundred notifications a second,
/// not one per commit (each is a transaction of its own), and watchers on
/// other replicas, which poll their listener every 20 ms, hardly notice.
const GATHER: Duration = Duration::from_millis(2);

/// What one committed transaction asks the thread to announce.
enum Notice {
    /// New epochs for these models.
    Epochs(Vec<i64>),
    /// Something watchers of models care about too (a run revived):
    /// everyone re-reads.
    Any,
}

/// The hook side of the notifier; the thread stops once it is dropped.
pub(crate) struct Notifier {
    queue: SyncSender<Notice>,
    /// A notice did not fit in the queue: the next notification is "any".
    overflowed: Arc<AtomicBool>,
}

impl Notifier {
    /// Starts the notifier thread for the database at `url`; it connects
    /// when the first commit arrives.
    pub(crate) fn start(url: DatabaseUrl, hub: Arc<Hub>, threads: &Threads) -> std::io::Result<Self> {
        let (queue, received) = mpsc::sync_channel(QUEUE);
        let overflowed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&overflowed);
        threads.spawn("watch-notifier".to_owned(), move || {
            run(&url, &hub, &received, &flag)
        })?;
        Ok(Self { queue, overflowed })
    }
}

impl CommitHook for Notifier {
    fn committed(&self, committed: &Committed) {
        if committed.models.is_empty() {
            return;
        }
        let notice = if committed.models.iter().any(|m| m.revived) {
            Notice::Any
        } else {
            Notice::Epochs(committed.models.iter().map(|m| m.model_id).collect())
        };
        match self.queue.try_send(notice) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => self.overflowed.store(true, Ordering::Relaxed),
        }
    }
}

/// Sends a notification for each group of notices that arrived together,
/// until every sender is gone.
fn run(url: &DatabaseUrl, hub: &Hub, received: &Receiver<Notice>, overflowed: &AtomicBool) {
    let mut conn: Option<PgConnection> = None;
    let mut backoff = Duration::from_millis(20);
    while let Ok(first) = received.recv() {
        thread::sleep(GATHER);
        let payload = payload(first, received, overflowed);
        loop {
            let connection = match conn.as_mut() {
                Some(connection) => connection,
                None => match connect(url, hub) {
                    Ok(connection) => conn.insert(connection),
                    Err(error) => {
                        tracing::warn!(%error, ?backoff, "watch notifier cannot connect; retrying");
                        thread::sleep(backoff);
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                },
            };
            match notify(connection, &payload) {
                Ok(()) => {
                    backoff = Duration::from_millis(20);
                    break;
                }
                // One retry on a fresh connection, then the notification
                // is given up (the watchers' poll covers it).
                Err(error) => {
                    tracing::warn!(%error, "watch notifier lost its connection");
                    conn = None;
                    if let Ok(mut fresh) = connect(url, hub)
                        && notify(&mut fresh, &payload).is_ok()
                    {
                        conn = Some(fresh);
                    }
                    break;
                }
            }
        }
    }
}

/// The payload announcing `first` and every notice queued behind it:
/// `e` with the model ids, or `e` alone for "any".
fn payload(first: Notice, received: &Receiver<Notice>, overflowed: &AtomicBool) -> String {
    let mut ids = BTreeSet::new();
    let mut any = overflowed.swap(false, Ordering::Relaxed);
    let mut next = Some(first);
    while let Some(notice) = next {
        match notice {
            Notice::Epochs(models) if !any => ids.extend(models),
            Notice::Epochs(_) => {}
            Notice::Any => any = true,
        }
        next = received.try_recv().ok();
    }
    if any || ids.len() > MAX_IDS {
        return "e".to_owned();
    }
    let listed: Vec<String> = ids.iter().map(i64::to_string).collect();
    format!("e{}", listed.join(","))
}

/// The notifier's connection. Its transactions commit without waiting for
/// the WAL flush: a notification lost in a database crash costs watchers
/// latency, never data. The hub learns its backend pid, so that this
/// process's listener can leave its notifications out.
fn connect(url: &DatabaseUrl, hub: &Hub) -> diesel::ConnectionResult<PgConnection> {
    #[derive(diesel::QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    let mut conn = PgConnection::establish(url.expose_secret())?;
    diesel::sql_query("SET synchronous_commit = off")
        .execute(&mut conn)
        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    let pid: Pid = diesel::sql_query("SELECT pg_backend_pid() AS pid")
        .get_result(&mut conn)
        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    hub.set_notifier_pid(pid.pid);
    Ok(conn)
}

fn notify(conn: &mut PgConnection, payload: &str) -> diesel::QueryResult<()> {
    diesel::sql_query("SELECT pg_notify($1, $2)")
        .bind::<Text, _>(CHANNEL)
        .bind::<Text, _>(payload)
        .execute(conn)
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload_of(notices: Vec<Notice>, overflowed: bool) -> String {
        let (queue, received) = mpsc::sync_channel(16);
        let mut notices = notices.into_iter();
        let first = notices.next().unwrap();
        for notice in notices {
            queue.send(notice).unwrap();
        }
        payload(first, &received, &AtomicBool::new(overflowed))
    }

    #[test]
    fn queued_commits_share_one_notification() {
        let notices = vec![Notice::Epochs(vec![3, 1]), Notice::Epochs(vec![1, 2])];
        assert_eq!(payload_of(notices, false), "e1,2,3");
    }

    #[test]
    fn revivals_overflow_and_many_ids_say_any() {
        let revived = vec![Notice::Epochs(vec![1]), Notice::Any];
        assert_eq!(payload_of(revived, false), "e");
        assert_eq!(payload_of(vec![Notice::Epochs(vec![1])], true), "e");
        let many = vec![Notice::Epochs((0..=MAX_IDS as i64).collect())];
        assert_eq!(payload_of(many, false), "e");
    }
}
