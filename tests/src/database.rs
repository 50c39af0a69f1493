//! A test server's database seen from outside the server.

use diesel::{Connection as _, PgConnection, RunQueryDsl as _, SqliteConnection};

use crate::TestServer;

/// Holds the database's write lock from outside the server, so that the
/// server's epoch writes wait for it (reads do not).
pub enum WriteLock {
    /// `BEGIN IMMEDIATE` on the SQLite file.
    Sqlite(SqliteConnection),
    /// `LOCK TABLE epochs IN EXCLUSIVE MODE` in an open transaction.
    Postgres(PgConnection),
}

impl WriteLock {
    /// Takes the lock on `server`'s database.
    pub fn take(server: &TestServer) -> Self {
        let url = server.database_url();
        match url.sqlite_path() {
            Some(path) => {
                let mut conn = SqliteConnection::establish(path).unwrap();
                diesel::sql_query("BEGIN IMMEDIATE").execute(&mut conn).unwrap();
                Self::Sqlite(conn)
            }
            None => {
                let mut conn = PgConnection::establish(url.expose_secret()).unwrap();
                diesel::sql_query("BEGIN").execute(&mut conn).unwrap();
                diesel::sql_query("LOCK TABLE epochs IN EXCLUSIVE MODE")
                    .execute(&mut conn)
                    .unwrap();
                Self::Postgres(conn)
            }
        }
    }

    /// Releases the lock (rolls the transaction back).
    pub fn release(self) {
        let rollback = diesel::sql_query("ROLLBACK");
        match self {
            Self::Sqlite(mut conn) => rollback.execute(&mut conn).unwrap(),
            Self::Postgres(mut conn) => rollback.execute(&mut conn).unwrap(),
        };
    }
}
