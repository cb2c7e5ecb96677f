//! Opening the SQLite store: the lock that makes this process the file's one user, the
//! connection options, the schema, and what a database error means for callers.

use std::{str::FromStr, sync::Arc, time::Duration};

use chrono::Utc;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{MIGRATOR, SqliteStore, readers, writer, writes};
use crate::store::{StoreError, StoreOptions, codec::migration_error};

impl SqliteStore {
    /// Opens (creating if missing) the database at `cfg.url` (`sqlite://relative.db` or
    /// `sqlite:///absolute.db`) and brings its schema up to date.
    pub async fn connect(options: impl Into<StoreOptions>) -> Result<SqliteStore, StoreError> {
        let cfg = &options.into();
        if cfg.url.contains(":memory:") || cfg.url.contains("mode=memory") {
            return Err(StoreError::Other(
                "an in-memory SQLite store would lose every refund; use a file".into(),
            ));
        }
        let wait = Duration::from_millis(cfg.busy_timeout_ms);
        let options = connect_options(cfg)?;
        let owner = own_file(options.get_filename(), wait).await?;
        // Create the file and bring the schema up to date on a connection of its own.
        let setup = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(wait)
            .connect_with(options.clone())
            .await
            .map_err(db_error)?;
        let migrated = MIGRATOR.run(&setup).await;
        migrated.map_err(|e| migration_error(e, db_error))?;
        let writer = writer::Writer::open(options.get_filename(), wait)?;
        setup.close().await;
        // Whatever this file's previous user had claimed, it will never finish: check it now.
        let now = Utc::now();
        let released = writer
            .write(move |c| writes::release_leases(c, now))
            .await?;
        if released > 0 {
            tracing::info!(
                refunds = released,
                "checking at once the refunds the previous run had claimed"
            );
        }
        let readers = readers::Readers::new(
            options.get_filename(),
            wait,
            usize::try_from(cfg.max_connections).unwrap_or(8),
        )?;
        Ok(SqliteStore {
            writer: Arc::new(writer),
            readers: Arc::new(readers),
            _owner: Arc::new(owner),
        })
    }

    /// Stops the writer (after the writes queued) and closes the idle readers.
    pub async fn close(&self) {
        self.readers.close();
        let writer = self.writer.clone();
        // Joining the thread blocks: let the runtime carry on meanwhile.
        let _ = tokio::task::spawn_blocking(move || writer.close()).await;
    }
}

/// Takes the exclusive lock on `<db>.lock` (created if missing), waiting up to `wait` for a
/// previous user that is shutting down. A SQLite file has one gateway process: another one
/// on the same file would take its worker's leases back and check refunds twice.
async fn own_file(db: &std::path::Path, wait: Duration) -> Result<std::fs::File, StoreError> {
    let mut path = db.as_os_str().to_owned();
    path.push(".lock");
    let path = std::path::PathBuf::from(path);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
    let deadline = tokio::time::Instant::now() + wait.max(Duration::from_secs(2));
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Other(
                    format!(
                        "{} is in use by another refund-gateway process (it holds {}); \
                         a SQLite store serves one process, use PostgreSQL to run several",
                        db.display(),
                        path.display()
                    )
                    .into(),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(StoreError::Unavailable(Box::new(e)));
            }
        }
    }
}

/// The options every connection opens with: file created if missing, WAL, `synchronous =
/// FULL` (an acknowledged write is on disk), foreign keys, and the configured busy timeout.
fn connect_options(cfg: &StoreOptions) -> Result<SqliteConnectOptions, StoreError> {
    Ok(SqliteConnectOptions::from_str(&cfg.url)
        .map_err(db_error)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_millis(cfg.busy_timeout_ms)))
}

/// Maps a database error to the store's classes: cannot reach or busy beyond the timeout is
/// `Unavailable`, a row that does not decode is `Corrupt`, the rest `Other`.
fn db_error(err: sqlx::Error) -> StoreError {
    use sqlx::Error as E;
    match &err {
        E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::WorkerCrashed => {
            StoreError::Unavailable(Box::new(err))
        }
        E::ColumnDecode { .. }
        | E::Decode(_)
        | E::ColumnNotFound(_)
        | E::ColumnIndexOutOfBounds { .. } => StoreError::Corrupt(err.to_string()),
        E::Database(db) => {
            // `code()` is SQLite's extended result code; the primary code is its low byte.
            let primary = db
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .map(|c| c & 0xff);
            match primary {
                // BUSY, LOCKED, IOERR, FULL, CANTOPEN: the file is there but not usable now.
                Some(5 | 6 | 10 | 13 | 14) => StoreError::Unavailable(Box::new(err)),
                // CORRUPT, NOTADB
                Some(11 | 26) => StoreError::Corrupt(err.to_string()),
                _ if db.message().contains("database is locked") => {
                    StoreError::Unavailable(Box::new(err))
                }
                _ => StoreError::Other(Box::new(err)),
            }
        }
        _ => StoreError::Other(Box::new(err)),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn cfg(url: &str) -> StoreOptions {
        StoreOptions {
            url: url.to_owned(),
            ..StoreOptions::default()
        }
    }

    #[test]
    fn urls_name_relative_and_absolute_files() {
        let relative = connect_options(&cfg("sqlite://refund-gateway.db")).unwrap();
        assert_eq!(relative.get_filename(), Path::new("refund-gateway.db"));
        let absolute = connect_options(&cfg("sqlite:///var/lib/rg/store.db")).unwrap();
        assert_eq!(absolute.get_filename(), Path::new("/var/lib/rg/store.db"));
    }

    #[tokio::test]
    async fn in_memory_databases_are_refused() {
        for url in ["sqlite::memory:", "sqlite://x.db?mode=memory"] {
            assert!(matches!(
                SqliteStore::connect(&cfg(url)).await,
                Err(StoreError::Other(_))
            ));
        }
    }
}
