//! Group commit: every write of the SQLite store runs on one thread that owns the one write
//! connection (rusqlite, no hop per statement). Writes that arrive while a commit is on its
//! way to the disk wait in a queue; the thread then runs all of them in ONE transaction,
//! commits once, and only then answers each caller. One fsync covers the whole batch, and no
//! write is acknowledged before it is on disk (`synchronous = FULL`).
//!
//! A write that fails must leave no trace, whatever it did before failing. Rather than a
//! savepoint per write (which costs a page copy for every page a write touches), the batch
//! is rolled back, the failed write keeps its error, and the others run again from the start
//! in a fresh transaction. Writes are therefore functions that may run more than once; they
//! only see the committed state and the writes before them, so a re-run decides the same.
//!
//! Writes are plain functions over the connection: they see everything committed before
//! them and every earlier write of their batch, and nothing can interleave with them, which
//! is what the over-refund guard, the idempotency claims and the compare-and-set updates rely
//! on.

use std::{
    path::Path,
    sync::{Mutex, mpsc},
    thread,
    time::Duration,
};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use crate::store::StoreError;

/// The most writes committed together.
const MAX_BATCH: usize = 512;

/// How long a batch waits for more writes when writes arrive concurrently.
const LINGER: Duration = Duration::from_micros(250);

/// One queued write.
trait Job: Send {
    /// Runs in the batch's transaction (again, if an earlier run was rolled back with its
    /// batch). `false`: it failed.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Whether its last run failed (it is then left out of the batch's next try).
    fn failed(&self) -> bool;
    /// Answers the caller once the batch's fate is known.
    fn finish(self: Box<Self>, committed: Result<(), String>);
}

struct Typed<T, F> {
    f: F,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Typed<T, F>
where
    T: Send,
    F: Fn(&Connection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let result = (self.f)(conn);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn failed(&self) -> bool {
        matches!(self.result, Some(Err(_)))
    }

    fn finish(self: Box<Self>, committed: Result<(), String>) {
        let answer = match (committed, self.result) {
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(StoreError::Other("the write never ran".into())),
            (Err(why), _) => Err(StoreError::Unavailable(
                format!("the write was not committed: {why}").into(),
            )),
        };
        // The caller may have gone away; the write stands either way.
        let _ = self.reply.send(answer);
    }
}

/// The handle to the writer thread.
#[derive(Debug)]
pub(super) struct Writer {
    jobs: Mutex<Option<mpsc::Sender<Box<dyn Job>>>>,
    thread: Mutex<Option<thread::JoinHandle<()>>>,
}

impl Writer {
    /// Opens the write connection to `path` (already created and migrated) and starts the
    /// thread.
    pub(super) fn open(path: &Path, busy_timeout: Duration) -> Result<Writer, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sqlite_error)?;
        conn.busy_timeout(busy_timeout).map_err(sqlite_error)?;
        // SQLite's own automatic checkpoint (every 1000 pages, in the committing thread)
        // keeps the WAL small. (A checkpoint thread of its own let the WAL grow without
        // bound under steady writes: the WAL only restarts after a complete checkpoint.)
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
        )
        .map_err(sqlite_error)?;
        conn.set_prepared_statement_cache_capacity(64);
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
        let thread = thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(conn, rx))
            .map_err(|e| StoreError::Other(Box::new(e)))?;
        Ok(Writer {
            jobs: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Runs `f` in the next batch and returns its result once the batch is committed. `f`
    /// may run more than once (see the module documentation).
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Typed {
            f,
            result: None,
            reply,
        });
        {
            let jobs = self.jobs.lock().expect("writer lock");
            let sender = jobs.as_ref().ok_or_else(closed)?;
            sender.send(job).map_err(|_| closed())?;
        }
        answer.await.map_err(|_| closed())?
    }

    /// Stops taking writes, lets the queued ones finish, and waits for the thread.
    pub(super) fn close(&self) {
        self.jobs.lock().expect("writer lock").take();
        if let Some(thread) = self.thread.lock().expect("writer lock").take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.close();
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable("the store is closed".into())
}

fn run(conn: Connection, jobs: mpsc::Receiver<Box<dyn Job>>) {
    let mut busy = false;
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        // Under concurrent load (the last batch had company), wait a moment for more
        // writes: a bigger batch costs about one commit instead of many. Alone, commit at
        // once.
        let linger_until = busy.then(|| std::time::Instant::now() + LINGER);
        while batch.len() < MAX_BATCH {
            let next = match linger_until {
                Some(until) => match until.checked_duration_since(std::time::Instant::now()) {
                    Some(left) => jobs.recv_timeout(left).ok(),
                    None => jobs.try_recv().ok(),
                },
                None => jobs.try_recv().ok(),
            };
            match next {
                Some(job) => batch.push(job),
                None => break,
            }
        }
        busy = batch.len() > 1;
        let started = std::time::Instant::now();
        let committed = run_batch(&conn, &mut batch);
        metrics::histogram!("refund_gateway_store_write_batch_size").record(batch.len() as f64);
        metrics::histogram!("refund_gateway_store_write_batch_seconds")
            .record(started.elapsed().as_secs_f64());
        if committed.is_err() {
            // Whatever the batch did is undone; nothing of it is acknowledged.
            let _ = conn.execute_batch("ROLLBACK");
        }
        let committed = committed.map_err(|e| e.to_string());
        for job in batch {
            job.finish(committed.clone());
        }
    }
}

fn run_batch(conn: &Connection, batch: &mut [Box<dyn Job>]) -> Result<(), rusqlite::Error> {
    loop {
        // IMMEDIATE: the write lock is taken now, so each write's reads see the final state
        // it writes over (another process could only be a tool holding the file).
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let mut clean = true;
        for job in batch.iter_mut().filter(|job| !job.failed()) {
            if !job.run(conn) {
                clean = false;
                break;
            }
        }
        if clean {
            return conn.execute_batch("COMMIT");
        }
        // A write failed: undo the whole batch and run the others again without it.
        conn.execute_batch("ROLLBACK")?;
    }
}

/// Maps a rusqlite error to the store's classes, like `db_error` does for sqlx.
pub(super) fn sqlite_error(err: rusqlite::Error) -> StoreError {
    use rusqlite::{Error as E, ErrorCode as C};
    match &err {
        E::SqliteFailure(f, _) => match f.code {
            C::DatabaseBusy
            | C::DatabaseLocked
            | C::SystemIoFailure
            | C::DiskFull
            | C::CannotOpen => StoreError::Unavailable(Box::new(err)),
            C::DatabaseCorrupt | C::NotADatabase => StoreError::Corrupt(err.to_string()),
            _ => StoreError::Other(Box::new(err)),
        },
        E::FromSqlConversionFailure(..)
        | E::InvalidColumnType(..)
        | E::InvalidColumnName(_)
        | E::IntegralValueOutOfRange(..) => StoreError::Corrupt(err.to_string()),
        _ => StoreError::Other(Box::new(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> (tempfile::TempDir, Writer) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v INTEGER UNIQUE)")
            .unwrap();
        let w = Writer::open(&path, Duration::from_secs(1)).unwrap();
        (dir, w)
    }

    /// A write that fails rolls back alone; the others of its batch commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_write_does_not_take_its_batch_down() {
        let (_dir, w) = writer();
        let w = std::sync::Arc::new(w);
        let mut calls = Vec::new();
        for v in [1, 2, 2, 3] {
            let w = w.clone();
            calls.push(tokio::spawn(async move {
                w.write(move |c| {
                    c.execute("INSERT INTO t (v) VALUES (?1)", [v])
                        .map_err(sqlite_error)
                })
                .await
            }));
        }
        let mut ok = 0;
        for c in calls {
            ok += usize::from(c.await.unwrap().is_ok());
        }
        assert_eq!(ok, 3, "the duplicate 2 fails, the rest commit");
        let n: i64 = w
            .write(|c| {
                c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
                    .map_err(sqlite_error)
            })
            .await
            .unwrap();
        assert_eq!(n, 3);
    }

    /// A closed writer refuses new writes as unavailable.
    #[tokio::test]
    async fn closed_writers_refuse_writes() {
        let (_dir, w) = writer();
        w.close();
        assert!(matches!(
            w.write(|_| Ok(())).await,
            Err(StoreError::Unavailable(_))
        ));
    }
}
