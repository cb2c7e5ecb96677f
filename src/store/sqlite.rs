//! SQLite backend: the embedded default. One process owns the file (SQLite means a single
//! gateway replica).
//!
//! # How it keeps the store's promises
//!
//! - **One writer.** Every write transaction goes through a pool of exactly one connection and
//!   starts with `BEGIN IMMEDIATE`, so our own writers queue in the pool instead of failing
//!   with `SQLITE_BUSY`, and each transaction sees everything committed before it. The
//!   over-refund guard, the idempotency claim and every compare-and-set rely on this: the read
//!   and the write of one transaction cannot interleave with another writer's.
//! - **Events in order.** Sequences come from an `AUTOINCREMENT` key (never reused, even after
//!   deletes or restarts) and are assigned inside those serialized transactions, so they
//!   become visible in increasing order.
//! - **Durable.** WAL journal with `synchronous = FULL`: a method that returned `Ok` has its
//!   transaction on disk.
//! - **Readers never block the writer.** Reads use a separate pool of `max_connections`
//!   connections (`query_only`), each reading a consistent WAL snapshot.
//! - Write transactions hold nothing but their SQL: no provider call happens inside a store
//!   method.
//!
//! # Times
//!
//! Times are stored as unix microseconds. The store truncates every time it writes to whole
//! microseconds and hands back exactly what it stored, so callers should expect microsecond
//! precision: a `Refund` read back (or returned by `insert_refund`/`update_refund`) equals the
//! one written with its times truncated.

mod rows;

use std::{str::FromStr, sync::LazyLock, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{
    QueryBuilder, Sqlite, SqliteConnection, Transaction,
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
    },
};

use self::rows::{
    EVENT_COLUMNS, REFUND_COLUMNS, col, duration_micros, event_from_row, micros, refund_from_row,
    to_json, truncate, truncated,
};
use super::{
    EventScope, InsertOutcome, ListQuery, RefundStore, RequestClaim, RequestKey, RequestResult,
    StoreError, UpdateOutcome,
};
use crate::config::StoreConfig;
use crate::domain::{Currency, Money, Refund, RefundEvent, RefundId, RefundStatus};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/sqlite/migrations");

/// `status IN (...)` of the statuses that hold money, from `RefundStatus::holds_amount`, so
/// the SQL follows the domain's rule.
static HOLDING: LazyLock<String> = LazyLock::new(|| {
    let list: Vec<String> = RefundStatus::ALL
        .into_iter()
        .filter(|s| s.holds_amount())
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    format!("status IN ({})", list.join(", "))
});

/// The SQLite store. Cheap to clone (two pool handles).
#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// Exactly one connection: every write transaction.
    writer: SqlitePool,
    /// `max_connections` read-only (`query_only`) connections.
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `cfg.url` (`sqlite://relative.db` or
    /// `sqlite:///absolute.db`) and brings its schema up to date.
    pub async fn connect(cfg: &StoreConfig) -> Result<SqliteStore, StoreError> {
        if cfg.url.contains(":memory:") || cfg.url.contains("mode=memory") {
            return Err(StoreError::Other(
                "an in-memory SQLite store would lose every refund; use a file".into(),
            ));
        }
        let wait = Duration::from_millis(cfg.busy_timeout_ms);
        let options = SqliteConnectOptions::from_str(&cfg.url)
            .map_err(db_error)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(wait);
        // The writer connection stays open for the life of the store, which also keeps the
        // WAL index alive for the readers.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(wait)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await
            .map_err(db_error)?;
        MIGRATOR.run(&writer).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => db_error(e),
            other => StoreError::Other(Box::new(other)),
        })?;
        let reader = SqlitePoolOptions::new()
            .max_connections(cfg.max_connections.max(1))
            .acquire_timeout(wait)
            .connect_with(options.pragma("query_only", "ON"))
            .await
            .map_err(db_error)?;
        Ok(SqliteStore { writer, reader })
    }

    /// Closes both pools, waiting for connections in use to come back.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_error)
    }
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

fn rows_error(what: &str) -> StoreError {
    StoreError::Other(what.to_owned().into())
}

/// What the refunds of one payment that hold money add up to, per currency. The guard and
/// `held_amount` both use this one query.
async fn held_by_currency(
    conn: &mut SqliteConnection,
    provider: &str,
    payment_id: &str,
) -> Result<Vec<(String, i64)>, StoreError> {
    let sql = format!(
        "SELECT currency, SUM(amount_minor) AS held FROM refunds \
         WHERE provider = ? AND payment_id = ? AND {} GROUP BY currency",
        *HOLDING
    );
    let rows = sqlx::query(&sql)
        .bind(provider)
        .bind(payment_id)
        .fetch_all(conn)
        .await
        .map_err(db_error)?;
    rows.iter()
        .map(|row| Ok((col(row, "currency")?, col(row, "held")?)))
        .collect()
}

async fn insert_event(
    tx: &mut SqliteConnection,
    refund: &Refund,
    previous_status: Option<RefundStatus>,
    event_time: DateTime<Utc>,
) -> Result<RefundEvent, StoreError> {
    let snapshot = refund.public_view();
    let sequence: i64 = sqlx::query_scalar(
        "INSERT INTO refund_events \
         (refund_id, tenant_id, provider, status, previous_status, snapshot, event_time) \
         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING sequence",
    )
    .bind(refund.id.as_str())
    .bind(refund.tenant.as_str())
    .bind(&refund.provider)
    .bind(refund.status.as_str())
    .bind(previous_status.map(RefundStatus::as_str))
    .bind(to_json("event snapshot", &snapshot)?)
    .bind(micros(event_time))
    .fetch_one(tx)
    .await
    .map_err(db_error)?;
    Ok(RefundEvent {
        sequence: u64::try_from(sequence)
            .map_err(|_| StoreError::Corrupt(format!("sequence {sequence} is negative")))?,
        refund: snapshot,
        previous_status,
        event_time,
    })
}

#[async_trait]
impl RefundStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all, fields(tenant = %key.tenant, request_id = %key.request_id))]
    async fn claim_request(
        &self,
        key: &RequestKey,
        fingerprint: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<RequestClaim, StoreError> {
        let now = micros(now);
        let until = now.saturating_add(duration_micros(lease));
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT fingerprint, refund_id, error, completed, locked_until \
             FROM idempotency_keys WHERE tenant_id = ? AND request_id = ?",
        )
        .bind(key.tenant.as_str())
        .bind(&key.request_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let Some(row) = row else {
            sqlx::query(
                "INSERT INTO idempotency_keys (tenant_id, request_id, fingerprint, refund_id, \
                 error, completed, locked_until, created_at) VALUES (?, ?, ?, NULL, NULL, 0, ?, ?)",
            )
            .bind(key.tenant.as_str())
            .bind(&key.request_id)
            .bind(fingerprint)
            .bind(until)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            tx.commit().await.map_err(db_error)?;
            return Ok(RequestClaim::Owned);
        };
        if col::<String>(&row, "fingerprint")? != fingerprint {
            return Ok(RequestClaim::Mismatch);
        }
        let refund_id: Option<String> = col(&row, "refund_id")?;
        let refund_id = refund_id
            .map(|id| rows::refund_id("idempotency_keys.refund_id", &id))
            .transpose()?;
        let error: Option<String> = col(&row, "error")?;
        let completed: bool = col(&row, "completed")?;
        let expired = col::<i64>(&row, "locked_until")? <= now;
        let claim = match (completed, refund_id, error) {
            (true, Some(id), _) => RequestClaim::Done(RequestResult::Refund(id)),
            (true, None, Some(error)) => {
                RequestClaim::Done(RequestResult::Error(rows::api_error(&error)?))
            }
            (true, None, None) => {
                return Err(StoreError::Corrupt(format!(
                    "idempotency key {} is completed with neither a refund nor an error",
                    key.request_id
                )));
            }
            (false, Some(id), _) if expired => {
                // The owner recorded a refund and stopped before completing: the refund is
                // the answer (the worker follows it up).
                sqlx::query(
                    "UPDATE idempotency_keys SET completed = 1 \
                     WHERE tenant_id = ? AND request_id = ?",
                )
                .bind(key.tenant.as_str())
                .bind(&key.request_id)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                RequestClaim::Done(RequestResult::Refund(id))
            }
            (false, None, _) if expired => {
                // The owner stopped before recording anything: take the key over.
                sqlx::query(
                    "UPDATE idempotency_keys SET locked_until = ? \
                     WHERE tenant_id = ? AND request_id = ?",
                )
                .bind(until)
                .bind(key.tenant.as_str())
                .bind(&key.request_id)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                RequestClaim::Owned
            }
            (false, _, _) => RequestClaim::InFlight,
        };
        Ok(claim)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(tenant = %key.tenant, request_id = %key.request_id))]
    async fn complete_request(
        &self,
        key: &RequestKey,
        result: &RequestResult,
    ) -> Result<(), StoreError> {
        // A key linked to a refund only ever completes with that refund: replaying an error
        // for a request that made a refund could lead the caller to refund again.
        let done = match result {
            RequestResult::Refund(id) => sqlx::query(
                "UPDATE idempotency_keys SET completed = 1, refund_id = ?, error = NULL \
                 WHERE tenant_id = ? AND request_id = ? AND (refund_id IS NULL OR refund_id = ?)",
            )
            .bind(id.as_str())
            .bind(key.tenant.as_str())
            .bind(&key.request_id)
            .bind(id.as_str()),
            RequestResult::Error(error) => sqlx::query(
                "UPDATE idempotency_keys SET completed = 1, error = ? \
                 WHERE tenant_id = ? AND request_id = ? AND refund_id IS NULL",
            )
            .bind(to_json("request error", error)?)
            .bind(key.tenant.as_str())
            .bind(&key.request_id),
        }
        .execute(&self.writer)
        .await
        .map_err(db_error)?;
        if done.rows_affected() != 1 {
            return Err(rows_error(&format!(
                "cannot complete request {}: no such key, or it is linked to another refund",
                key.request_id
            )));
        }
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(tenant = %key.tenant, request_id = %key.request_id))]
    async fn release_request(&self, key: &RequestKey) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE tenant_id = ? AND request_id = ? \
             AND completed = 0 AND refund_id IS NULL",
        )
        .bind(key.tenant.as_str())
        .bind(&key.request_id)
        .execute(&self.writer)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(refund_id = %refund.id, provider = %refund.provider))]
    async fn insert_refund(
        &self,
        refund: &Refund,
        key: &RequestKey,
        limit: Money,
    ) -> Result<InsertOutcome, StoreError> {
        if refund.tenant != key.tenant || refund.request_id != key.request_id {
            return Err(rows_error(
                "insert_refund: the refund does not match its request key",
            ));
        }
        if refund.amount.minor <= 0 {
            return Err(rows_error(
                "insert_refund: a refund amount must be above zero",
            ));
        }
        let refund = truncated(refund);
        let mut tx = self.begin_write().await?;

        // The over-refund guard. Inside the one write transaction, so no other insert can
        // slip in between this sum and the insert below.
        let held = held_by_currency(&mut tx, &refund.provider, &refund.payment.payment_id).await?;
        let mut same = 0_i64;
        let mut foreign = false;
        for (currency, sum) in held {
            if currency == limit.currency.code() {
                same = sum;
            } else if sum != 0 {
                foreign = true;
            }
        }
        if foreign {
            // Money held in another currency cannot be added to this limit: count the payment
            // as fully held rather than guess.
            tracing::warn!("refunds of this payment hold money in another currency");
            let held = Money::new(same.max(limit.minor), limit.currency);
            return Ok(InsertOutcome::ExceedsPayment { held });
        }
        let held = Money::new(same, limit.currency);
        let fits = refund.amount.currency == limit.currency
            && same
                .checked_add(refund.amount.minor)
                .is_some_and(|total| total <= limit.minor);
        if !fits {
            return Ok(InsertOutcome::ExceedsPayment { held });
        }

        let sql = format!(
            "INSERT INTO refunds ({REFUND_COLUMNS}) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        sqlx::query(&sql)
            .bind(refund.id.as_str())
            .bind(refund.tenant.as_str())
            .bind(&refund.request_id)
            .bind(&refund.provider)
            .bind(&refund.payment.payment_id)
            .bind(&refund.payment.payment_method_id)
            .bind(&refund.payment.invoice_id)
            .bind(refund.amount.currency.code())
            .bind(refund.amount.minor)
            .bind(refund.status.as_str())
            .bind(&refund.provider_refund_id)
            .bind(&refund.provider_status)
            .bind(rows::reason_str(refund.reason))
            .bind(&refund.description)
            .bind(to_json("metadata", &refund.metadata)?)
            .bind(
                refund
                    .bank_account
                    .as_ref()
                    .map(|b| to_json("bank account", b))
                    .transpose()?,
            )
            .bind(
                refund
                    .failure
                    .as_ref()
                    .map(|f| to_json("failure", f))
                    .transpose()?,
            )
            .bind(micros(refund.created_at))
            .bind(micros(refund.updated_at))
            .bind(refund.version)
            .bind(refund.submission.as_str())
            .bind(refund.next_check_at.map(micros))
            .bind(refund.check_attempts)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        let event = insert_event(&mut tx, &refund, None, refund.created_at).await?;
        // The caller owns the claim on `key`, so the key is open and not linked yet.
        let linked = sqlx::query(
            "UPDATE idempotency_keys SET refund_id = ? WHERE tenant_id = ? AND request_id = ? \
             AND completed = 0 AND refund_id IS NULL",
        )
        .bind(refund.id.as_str())
        .bind(key.tenant.as_str())
        .bind(&key.request_id)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if linked.rows_affected() != 1 {
            return Err(rows_error(
                "insert_refund: the request key is not claimed (missing, completed or linked)",
            ));
        }
        tx.commit().await.map_err(db_error)?;
        Ok(InsertOutcome::Inserted(event))
    }

    async fn get_refund(&self, id: &RefundId) -> Result<Option<Refund>, StoreError> {
        let sql = format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE id = ?");
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .fetch_optional(&self.reader)
            .await
            .map_err(db_error)?;
        row.as_ref().map(refund_from_row).transpose()
    }

    async fn find_by_provider_refund_id(
        &self,
        provider: &str,
        provider_refund_id: &str,
    ) -> Result<Option<Refund>, StoreError> {
        let sql = format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE provider = ? AND provider_refund_id = ? \
             ORDER BY created_at, id LIMIT 1"
        );
        let row = sqlx::query(&sql)
            .bind(provider)
            .bind(provider_refund_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(db_error)?;
        row.as_ref().map(refund_from_row).transpose()
    }

    async fn list_refunds(&self, query: &ListQuery) -> Result<Vec<Refund>, StoreError> {
        let mut sql = QueryBuilder::<Sqlite>::new("SELECT ");
        sql.push(REFUND_COLUMNS)
            .push(" FROM refunds WHERE tenant_id = ")
            .push_bind(query.tenant.as_str());
        if let Some(provider) = &query.provider {
            sql.push(" AND provider = ").push_bind(provider);
        }
        if let Some(status) = query.status {
            sql.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(payment_id) = &query.payment_id {
            sql.push(" AND payment_id = ").push_bind(payment_id);
        }
        if let Some((created_at, id)) = &query.before {
            sql.push(" AND (created_at, id) < (")
                .push_bind(micros(truncate(*created_at)))
                .push(", ")
                .push_bind(id.as_str())
                .push(")");
        }
        sql.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(query.limit));
        let rows = sql
            .build()
            .fetch_all(&self.reader)
            .await
            .map_err(db_error)?;
        rows.iter().map(refund_from_row).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(refund_id = %prev.id))]
    async fn update_refund(
        &self,
        prev: &Refund,
        next: &Refund,
    ) -> Result<UpdateOutcome, StoreError> {
        if next.id != prev.id {
            return Err(rows_error(
                "update_refund: prev and next are different refunds",
            ));
        }
        // The status machine is checked here too: a FAILED or CANCELED refund has released
        // its amount to other refunds, so it must never hold money again.
        prev.status
            .check(next.status)
            .map_err(|e| StoreError::Other(Box::new(e)))?;
        let next = truncated(next);
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "UPDATE refunds SET status = ?, provider_refund_id = ?, provider_status = ?, \
             failure = ?, updated_at = ?, submission = ?, next_check_at = ?, check_attempts = ?, \
             version = version + 1 \
             WHERE id = ? AND version = ? AND status = ? RETURNING {REFUND_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(next.status.as_str())
            .bind(&next.provider_refund_id)
            .bind(&next.provider_status)
            .bind(
                next.failure
                    .as_ref()
                    .map(|f| to_json("failure", f))
                    .transpose()?,
            )
            .bind(micros(next.updated_at))
            .bind(next.submission.as_str())
            .bind(next.next_check_at.map(micros))
            .bind(next.check_attempts)
            .bind(prev.id.as_str())
            .bind(prev.version)
            .bind(prev.status.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
        let Some(row) = row else {
            return Ok(UpdateOutcome::Conflict);
        };
        let refund = refund_from_row(&row)?;
        let event = if next.differs_visibly(prev) {
            Some(insert_event(&mut tx, &refund, Some(prev.status), refund.updated_at).await?)
        } else {
            None
        };
        tx.commit().await.map_err(db_error)?;
        Ok(UpdateOutcome::Updated { refund, event })
    }

    async fn latest_event(&self, id: &RefundId) -> Result<Option<RefundEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM refund_events WHERE refund_id = ? \
             ORDER BY sequence DESC LIMIT 1"
        );
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .fetch_optional(&self.reader)
            .await
            .map_err(db_error)?;
        row.as_ref().map(event_from_row).transpose()
    }

    async fn events_after(
        &self,
        scope: &EventScope,
        after: u64,
        limit: u32,
    ) -> Result<Vec<RefundEvent>, StoreError> {
        let Ok(after) = i64::try_from(after) else {
            return Ok(Vec::new()); // no sequence is that large
        };
        let mut sql = QueryBuilder::<Sqlite>::new("SELECT ");
        sql.push(EVENT_COLUMNS)
            .push(" FROM refund_events WHERE sequence > ")
            .push_bind(after);
        match scope {
            EventScope::Tenant(tenant) => {
                sql.push(" AND tenant_id = ").push_bind(tenant.as_str());
            }
            EventScope::Refund(id) => {
                sql.push(" AND refund_id = ").push_bind(id.as_str());
            }
            EventScope::All => {}
        }
        sql.push(" ORDER BY sequence LIMIT ")
            .push_bind(i64::from(limit));
        let rows = sql
            .build()
            .fetch_all(&self.reader)
            .await
            .map_err(db_error)?;
        rows.iter().map(event_from_row).collect()
    }

    async fn last_sequence(&self) -> Result<u64, StoreError> {
        // sqlite_sequence remembers the largest sequence ever handed out, even if those rows
        // were deleted since; MAX(sequence) covers a table whose counter was never written.
        let last: i64 = sqlx::query_scalar(
            "SELECT MAX(\
               COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'refund_events'), 0), \
               COALESCE((SELECT MAX(sequence) FROM refund_events), 0))",
        )
        .fetch_one(&self.reader)
        .await
        .map_err(db_error)?;
        u64::try_from(last).map_err(|_| StoreError::Corrupt(format!("sequence {last} is negative")))
    }

    async fn held_amount(
        &self,
        provider: &str,
        payment_id: &str,
        currency: Currency,
    ) -> Result<Money, StoreError> {
        // Refunds in another currency (which insert_refund never lets in beside this one) are
        // not converted or added.
        let mut conn = self.reader.acquire().await.map_err(db_error)?;
        let held = held_by_currency(&mut conn, provider, payment_id).await?;
        let minor = held
            .into_iter()
            .find(|(c, _)| c == currency.code())
            .map_or(0, |(_, sum)| sum);
        Ok(Money::new(minor, currency))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<Refund>, StoreError> {
        let now = micros(now);
        let until = now.saturating_add(duration_micros(lease));
        let mut tx = self.begin_write().await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM refunds WHERE next_check_at IS NOT NULL AND next_check_at <= ? \
             ORDER BY next_check_at, id LIMIT ?",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        let sql = format!(
            "UPDATE refunds SET next_check_at = ?, version = version + 1 WHERE id = ? \
             RETURNING {REFUND_COLUMNS}"
        );
        let mut claimed = Vec::with_capacity(ids.len());
        for id in ids {
            let row = sqlx::query(&sql)
                .bind(until)
                .bind(&id)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error)?;
            claimed.push(refund_from_row(&row)?);
        }
        tx.commit().await.map_err(db_error)?;
        Ok(claimed)
    }

    async fn count_by_status(&self) -> Result<Vec<(String, RefundStatus, u64)>, StoreError> {
        // "Waiting for a check": the refunds the worker still follows (next_check_at set).
        let rows = sqlx::query(
            "SELECT provider, status, COUNT(*) AS n FROM refunds \
             WHERE next_check_at IS NOT NULL GROUP BY provider, status ORDER BY provider, status",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                let n: i64 = col(row, "n")?;
                Ok((
                    col(row, "provider")?,
                    rows::status("status", &col::<String>(row, "status")?)?,
                    u64::try_from(n).unwrap_or(0),
                ))
            })
            .collect()
    }

    async fn secret(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        let existing: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT value FROM gateway_secrets WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.reader)
                .await
                .map_err(db_error)?;
        if let Some(value) = existing {
            return Ok(value);
        }
        // First use. INSERT OR IGNORE then read back: if two callers race, both get the one
        // value that was stored.
        let fresh: [u8; 32] = rand::random();
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT OR IGNORE INTO gateway_secrets (name, value) VALUES (?, ?)")
            .bind(name)
            .bind(fresh.as_slice())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        let value: Vec<u8> = sqlx::query_scalar("SELECT value FROM gateway_secrets WHERE name = ?")
            .bind(name)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(value)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}
