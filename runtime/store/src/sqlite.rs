//! The embedded store: one SQLite file (WAL journal, full sync), documents in one table,
//! numbered schema migrations applied at open.
//!
//! One connection behind a mutex: a transaction holds it from `BEGIN IMMEDIATE` to commit,
//! so transactions are serial and a check made inside one cannot be invalidated by another
//! request before it commits. The control plane's request rate is far below what that
//! serializes.

use crate::{Store, StoreError, Tx};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The schema, one step per entry; a step never changes once released.
const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    "CREATE TABLE documents (
         kind TEXT NOT NULL,
         id   TEXT NOT NULL,
         body TEXT NOT NULL,
         PRIMARY KEY (kind, id)
     ) WITHOUT ROWID;",
)];

pub struct SqliteStore {
    connection: Mutex<Connection>,
    path: PathBuf,
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SqliteStore {
    /// Opens (creating when absent) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let open_error = |message: String| StoreError::Open {
            path: path.display().to_string(),
            message,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| open_error(format!("cannot create {}: {e}", parent.display())))?;
        }
        let connection = Connection::open(path).map_err(|e| open_error(e.to_string()))?;
        Self::prepare(connection, path.to_path_buf())
    }

    /// A private database that lives as long as the store (tests, `sma simulate`).
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        let connection = Connection::open_in_memory().map_err(backend)?;
        Self::prepare(connection, PathBuf::from(":memory:"))
    }

    fn prepare(connection: Connection, path: PathBuf) -> Result<SqliteStore, StoreError> {
        let open_error = |e: rusqlite::Error| StoreError::Open {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        // WAL keeps readers of other processes (backups, sqlite3 shell) from blocking us;
        // FULL sync makes a committed change survive power loss, not just a crash.
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(open_error)?;
        connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(open_error)?;
        connection
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_error)?;
        let store = SqliteStore {
            connection: Mutex::new(connection),
            path,
        };
        store.migrate()?;
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The schema version the file is at.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        let connection = self.lock();
        current_version(&connection)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut connection = self.lock();
        connection
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                     version INTEGER PRIMARY KEY,
                     applied_at_ms INTEGER NOT NULL
                 );",
            )
            .map_err(backend)?;
        let found = current_version(&connection)?;
        let known = MIGRATIONS.last().map_or(0, |m| m.0);
        if found > known {
            return Err(StoreError::NewerSchema { found, known });
        }
        for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > found) {
            let tx = connection.transaction().map_err(backend)?;
            tx.execute_batch(sql).map_err(backend)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at_ms) VALUES (?1, ?2)",
                params![version, crate::time::now_ms() as i64],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)?;
            tracing::info!(version, "store schema migrated");
        }
        Ok(())
    }
}

fn current_version(connection: &Connection) -> Result<i64, StoreError> {
    connection
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |row| row.get(0),
        )
        .map_err(backend)
}

struct SqliteTx<'a> {
    connection: MutexGuard<'a, Connection>,
    open: bool,
}

impl Tx for SqliteTx<'_> {
    fn get_raw(&mut self, kind: &str, id: &str) -> Result<Option<String>, StoreError> {
        self.connection
            .prepare_cached("SELECT body FROM documents WHERE kind = ?1 AND id = ?2")
            .and_then(|mut s| s.query_row(params![kind, id], |r| r.get(0)).optional())
            .map_err(backend)
    }

    fn put_raw(&mut self, kind: &str, id: &str, body: &str) -> Result<(), StoreError> {
        self.connection
            .prepare_cached(
                "INSERT INTO documents (kind, id, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body",
            )
            .and_then(|mut s| s.execute(params![kind, id, body]))
            .map(|_| ())
            .map_err(backend)
    }

    fn delete_raw(&mut self, kind: &str, id: &str) -> Result<bool, StoreError> {
        self.connection
            .prepare_cached("DELETE FROM documents WHERE kind = ?1 AND id = ?2")
            .and_then(|mut s| s.execute(params![kind, id]))
            .map(|n| n > 0)
            .map_err(backend)
    }

    fn list_raw(&mut self, kind: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut statement = self
            .connection
            .prepare_cached("SELECT id, body FROM documents WHERE kind = ?1 ORDER BY id")
            .map_err(backend)?;
        let rows = statement
            .query_map(params![kind], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(backend)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(backend)
    }

    fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        self.connection.execute_batch("COMMIT").map_err(backend)?;
        self.open = false;
        Ok(())
    }
}

impl Drop for SqliteTx<'_> {
    fn drop(&mut self) {
        if self.open {
            if let Err(e) = self.connection.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "store rollback failed");
            }
        }
    }
}

impl Store for SqliteStore {
    fn begin(&self) -> Result<Box<dyn Tx + '_>, StoreError> {
        let connection = self.lock();
        // A transaction a panic left open would wedge the store; close it first.
        if !connection.is_autocommit() {
            connection.execute_batch("ROLLBACK").map_err(backend)?;
        }
        connection
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(backend)?;
        Ok(Box::new(SqliteTx {
            connection,
            open: true,
        }))
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sma-store-test-{}-{name}-{}",
            std::process::id(),
            crate::time::now_ms()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("sma.db")
    }

    #[test]
    fn committed_documents_survive_reopening() {
        let path = temp_path("reopen");
        {
            let store = SqliteStore::open(&path).unwrap();
            let mut tx = store.begin().unwrap();
            tx.put_raw("sma", "a", "{\"x\":1}").unwrap();
            tx.put_raw("sma", "b", "{\"x\":2}").unwrap();
            tx.put_raw("rule", "a", "{}").unwrap();
            tx.commit().unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), 1);
        let mut tx = store.begin().unwrap();
        assert_eq!(
            tx.get_raw("sma", "b").unwrap().as_deref(),
            Some("{\"x\":2}")
        );
        let ids: Vec<_> = tx
            .list_raw("sma")
            .unwrap()
            .into_iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(ids, ["a", "b"]);
        assert!(tx.delete_raw("sma", "a").unwrap());
        assert!(!tx.delete_raw("sma", "a").unwrap());
    }

    #[test]
    fn a_dropped_transaction_leaves_nothing_behind() {
        let store = SqliteStore::in_memory().unwrap();
        {
            let mut tx = store.begin().unwrap();
            tx.put_raw("sma", "a", "{}").unwrap();
        }
        let mut tx = store.begin().unwrap();
        assert_eq!(tx.get_raw("sma", "a").unwrap(), None);
    }

    #[test]
    fn a_newer_schema_is_refused_by_name() {
        let path = temp_path("newer");
        {
            let connection = Connection::open(&path).unwrap();
            connection
                .execute_batch(
                    "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at_ms INTEGER NOT NULL);
                     INSERT INTO schema_migrations VALUES (99, 0);",
                )
                .unwrap();
        }
        match SqliteStore::open(&path) {
            Err(StoreError::NewerSchema {
                found: 99,
                known: 1,
            }) => {}
            Err(e) => panic!("unexpected error: {e}"),
            Ok(_) => panic!("a newer schema was accepted"),
        }
    }

    #[test]
    fn a_file_that_is_not_a_database_is_a_clear_error() {
        let path = temp_path("garbage");
        std::fs::write(
            &path,
            b"this is not sqlite at all, just some bytes ............",
        )
        .unwrap();
        let err = SqliteStore::open(&path).err().expect("garbage accepted");
        assert!(err.to_string().contains("sma.db"), "{err}");
    }

    /// Read-check-write transactions from many threads never lose an update: each is serial.
    #[test]
    fn concurrent_transactions_are_serial() {
        let store = Arc::new(SqliteStore::open(&temp_path("concurrent")).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        let mut tx = store.begin().unwrap();
                        let n: u64 = tx
                            .get_raw("counter", "c")
                            .unwrap()
                            .map_or(0, |b| b.parse().unwrap());
                        tx.put_raw("counter", "c", &(n + 1).to_string()).unwrap();
                        tx.commit().unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut tx = store.begin().unwrap();
        assert_eq!(tx.get_raw("counter", "c").unwrap().as_deref(), Some("200"));
    }
}
