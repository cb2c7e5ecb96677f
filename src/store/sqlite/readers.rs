//! Reads of the SQLite store: read-only rusqlite connections, used on the calling thread for
//! short reads (an indexed lookup from the page cache takes microseconds, less than handing
//! it to another thread and back) and on the blocking pool for long ones (scans, big pages).
//! Each read sees one consistent WAL snapshot; readers never block the writer.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use rusqlite::{Connection, OpenFlags};

use super::writer::sqlite_error;
use crate::store::StoreError;

/// Read-only connections, opened on demand and kept (at most `max` idle).
#[derive(Debug)]
pub(super) struct Readers {
    path: PathBuf,
    busy_timeout: Duration,
    max: usize,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(super) fn new(
        path: &Path,
        busy_timeout: Duration,
        max: usize,
    ) -> Result<Readers, StoreError> {
        let readers = Readers {
            path: path.to_owned(),
            busy_timeout,
            max: max.max(1),
            idle: Mutex::new(Vec::new()),
        };
        // Open one now, so a file that cannot be read fails at start-up.
        let conn = readers.open()?;
        readers.idle.lock().expect("readers lock").push(conn);
        Ok(readers)
    }

    fn open(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sqlite_error)?;
        conn.busy_timeout(self.busy_timeout).map_err(sqlite_error)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }

    /// Runs a short read here and now.
    pub(super) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.idle.lock().expect("readers lock").pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => self.open()?,
        };
        let result = f(&conn);
        let mut idle = self.idle.lock().expect("readers lock");
        if idle.len() < self.max {
            idle.push(conn);
        }
        result
    }

    /// Runs a long read on the blocking pool, so the async runtime keeps going meanwhile.
    pub(super) async fn read_blocking<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let readers = self.clone();
        tokio::task::spawn_blocking(move || readers.read(f))
            .await
            .map_err(|e| StoreError::Other(Box::new(e)))?
    }

    /// Closes the idle connections.
    pub(super) fn close(&self) {
        self.idle.lock().expect("readers lock").clear();
    }
}
