//! Opening the PostgreSQL store: the pool and the settings of its connections, the schema,
//! write transactions, and what a database error means for callers.

use std::{str::FromStr, time::Duration};

use sqlx::{
    Executor as _, Postgres, Transaction,
    postgres::{PgConnectOptions, PgPool, PgPoolOptions},
};

use super::{MIGRATOR, PostgresStore};
use crate::store::{StoreError, StoreOptions, codec::migration_error};

impl PostgresStore {
    /// Connects to the database at `cfg.url` (`postgres://` or `postgresql://`), with a pool
    /// of `max_connections`, and brings its schema up to date. Replicas starting together
    /// are safe: sqlx runs migrations under a database-wide advisory lock.
    pub async fn connect(options: impl Into<StoreOptions>) -> Result<PostgresStore, StoreError> {
        let cfg = &options.into();
        let mut options = PgConnectOptions::from_str(&cfg.url).map_err(db_error)?;
        if options.get_application_name().is_none() {
            options = options.application_name("refund-gateway");
        }
        let settings = session_settings(cfg);
        let pool = PgPoolOptions::new()
            .max_connections(cfg.max_connections.max(1))
            .acquire_timeout(Duration::from_millis(cfg.connect_timeout_ms))
            .after_connect(move |conn, _meta| {
                let settings = settings.clone();
                Box::pin(async move {
                    conn.execute(settings.as_str()).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(db_error)?;
        let migrated = MIGRATOR.run(&pool).await;
        migrated.map_err(|e| migration_error(e, db_error))?;
        Ok(PostgresStore { pool })
    }

    /// Closes the pool, waiting for connections in use to come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The `SET`s every connection runs once opened (see "Timeouts and failures").
fn session_settings(cfg: &StoreOptions) -> String {
    format!(
        "SET statement_timeout = {statement}; SET lock_timeout = {lock}; \
         SET idle_in_transaction_session_timeout = {statement}",
        statement = cfg.statement_timeout_ms,
        lock = cfg.busy_timeout_ms,
    )
}

/// A write transaction. READ COMMITTED on purpose: a statement that waited for a lock must
/// see what the lock's previous holder committed, which a REPEATABLE READ snapshot taken
/// before the wait would not.
pub(super) async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>, StoreError> {
    pool.begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
        .await
        .map_err(db_error)
}

/// Maps a database error to the store's classes: cannot reach, shutting down or too busy is
/// `Unavailable`, a row or value that does not decode is `Corrupt`, the rest `Other`.
pub(crate) fn db_error(err: sqlx::Error) -> StoreError {
    use sqlx::Error as E;
    match &err {
        E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::Tls(_) | E::WorkerCrashed => {
            StoreError::Unavailable(Box::new(err))
        }
        E::ColumnDecode { .. }
        | E::Decode(_)
        | E::ColumnNotFound(_)
        | E::ColumnIndexOutOfBounds { .. } => StoreError::Corrupt(err.to_string()),
        E::Database(db) => match db.code().as_deref().map(classify_sqlstate) {
            Some(Class::Unavailable) => StoreError::Unavailable(Box::new(err)),
            Some(Class::Corrupt) => StoreError::Corrupt(err.to_string()),
            Some(Class::Other) | None => StoreError::Other(Box::new(err)),
        },
        _ => StoreError::Other(Box::new(err)),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Class {
    Unavailable,
    Corrupt,
    Other,
}

/// What a SQLSTATE means for the caller.
fn classify_sqlstate(code: &str) -> Class {
    match code {
        // 08: connection exceptions. 53: out of connections, memory or disk. 57P: admin or
        // crash shutdown, cannot connect now, database dropped. 58: I/O errors.
        _ if ["08", "53", "57P", "58"]
            .iter()
            .any(|p| code.starts_with(p)) =>
        {
            Class::Unavailable
        }
        // query_canceled (statement_timeout), serialization_failure, deadlock_detected,
        // lock_not_available (lock_timeout), read_only_sql_transaction (connected to a standby
        // during a failover).
        "57014" | "40001" | "40P01" | "55P03" | "25006" => Class::Unavailable,
        // data_corrupted, index_corrupted
        "XX001" | "XX002" => Class::Corrupt,
        _ => Class::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_shutting_down_and_unreachable_databases_are_unavailable() {
        for code in [
            "08006", "08001", "53300", "53100", "57P01", "57P02", "57P03", "57014", "40001",
            "40P01", "55P03", "25006", "58030",
        ] {
            assert_eq!(classify_sqlstate(code), Class::Unavailable, "{code}");
        }
        for code in ["XX001", "XX002"] {
            assert_eq!(classify_sqlstate(code), Class::Corrupt, "{code}");
        }
        // Constraint violations, syntax errors, bad input: bugs, not outages.
        for code in ["23505", "23514", "42601", "22P02", "22021", "42P01"] {
            assert_eq!(classify_sqlstate(code), Class::Other, "{code}");
        }
        assert!(matches!(
            db_error(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            db_error(sqlx::Error::ColumnNotFound("x".into())),
            StoreError::Corrupt(_)
        ));
    }

    #[test]
    fn every_connection_sets_the_configured_timeouts() {
        let cfg = StoreOptions {
            statement_timeout_ms: 2_500,
            busy_timeout_ms: 700,
            ..StoreOptions::default()
        };
        assert_eq!(
            session_settings(&cfg),
            "SET statement_timeout = 2500; SET lock_timeout = 700; \
             SET idle_in_transaction_session_timeout = 2500"
        );
    }
}
