//! SQLite backend: the embedded default. One process owns the file (SQLite means a single
//! gateway replica).
//!
//! # How it keeps the store's promises
//!
//! - **One writer, group commit.** Every write runs on one thread that owns the one write
//!   connection (`writer`): writes queue, run one after another inside one `BEGIN IMMEDIATE`
//!   transaction per batch (a write that fails rolls the batch back and the others run
//!   again without it), and are acknowledged after the batch commits. Each write sees everything committed or written before it, and nothing
//!   interleaves with it: the over-refund guard, the idempotency claim and every
//!   compare-and-set rely on this. One fsync covers a whole batch.
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

mod open;
mod readers;
mod requests;
mod rows;
mod writer;
mod writes;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use self::rows::{
    EVENT_COLUMNS, REFUND_COLUMNS, event_from_row, micros, refund_from_row, truncate,
};
use self::writer::sqlite_error;
use super::rules::{held_in, sequence};
use super::{
    EventScope, InsertOutcome, ListQuery, RefundStore, RequestClaim, RequestKey, RequestResult,
    StoreError, UpdateOutcome,
};
use crate::domain::{Cause, Currency, Money, Refund, RefundEvent, RefundId, RefundStatus};
use rusqlite::OptionalExtension as _;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/sqlite/migrations");

/// The SQLite store. Cheap to clone (a writer handle and a pool handle).
#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// The group-commit thread with the one write connection.
    writer: Arc<writer::Writer>,
    /// Read-only connections (at most `max_connections` kept).
    readers: Arc<readers::Readers>,
    /// The exclusive lock on `<file>.lock` that makes this process the file's only user;
    /// released when the last clone is dropped (or the process dies).
    _owner: Arc<std::fs::File>,
}

/// Collects decoded rows, a row that does not decode failing the whole read.
fn collect_rows<T>(
    rows: impl Iterator<Item = rusqlite::Result<Result<T, StoreError>>>,
) -> Result<Vec<T>, StoreError> {
    rows.map(|row| row.map_err(sqlite_error)?).collect()
}

/// The first of `rows`, if any (for queries that find one row at most).
fn first<T>(rows: Result<Vec<T>, StoreError>) -> Result<Option<T>, StoreError> {
    rows.map(|rows| rows.into_iter().next())
}

/// Every row `sql` finds with `params`, as `decode` reads them.
fn all_rows<T>(
    c: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
    decode: fn(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = c.prepare_cached(sql).map_err(sqlite_error)?;
    let rows = stmt
        .query_map(params, |row| Ok(decode(row)))
        .map_err(sqlite_error)?;
    collect_rows(rows)
}

#[async_trait]
impl RefundStore for SqliteStore {
    async fn claim_request(
        &self,
        key: &RequestKey,
        fingerprint: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<RequestClaim, StoreError> {
        let (key, fingerprint) = (key.clone(), fingerprint.to_owned());
        self.writer
            .write(move |c| requests::claim(c, &key, &fingerprint, now, lease))
            .await
    }

    async fn complete_request(
        &self,
        key: &RequestKey,
        result: &RequestResult,
    ) -> Result<(), StoreError> {
        let (key, result) = (key.clone(), result.clone());
        self.writer
            .write(move |c| requests::complete(c, &key, &result))
            .await
    }

    async fn release_request(&self, key: &RequestKey) -> Result<(), StoreError> {
        let key = key.clone();
        self.writer.write(move |c| requests::release(c, &key)).await
    }

    async fn insert_refund(
        &self,
        refund: &Refund,
        key: &RequestKey,
        limit: Money,
        reported: &[crate::domain::ReportedRefund],
        cause: &Cause,
    ) -> Result<InsertOutcome, StoreError> {
        let (refund, key, reported) = (refund.clone(), key.clone(), reported.to_vec());
        let cause = cause.clone();
        self.writer
            .write(move |c| writes::insert_refund(c, &refund, &key, limit, &reported, &cause))
            .await
    }

    async fn get_refund(&self, id: &RefundId) -> Result<Option<Refund>, StoreError> {
        let sql = format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE id = ?");
        self.readers
            .read(|c| first(all_rows(c, &sql, [id.as_str()], refund_from_row)))
    }

    async fn find_by_provider_refund_id(
        &self,
        provider: &str,
        provider_refund_id: &str,
    ) -> Result<Option<Refund>, StoreError> {
        let params = [provider, provider_refund_id];
        let sql = format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE provider = ? AND provider_refund_id = ? \
             ORDER BY created_at, id LIMIT 1"
        );
        self.readers
            .read(|c| first(all_rows(c, &sql, params, refund_from_row)))
    }

    async fn refunds_of_payment(
        &self,
        provider: &str,
        payment_id: &str,
    ) -> Result<Vec<Refund>, StoreError> {
        let sql = format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE provider = ? AND payment_id = ? \
             ORDER BY created_at, id"
        );
        let (provider, payment_id) = (provider.to_owned(), payment_id.to_owned());
        self.readers
            .read_blocking(move |c| all_rows(c, &sql, [provider, payment_id], refund_from_row))
            .await
    }

    async fn list_refunds(&self, query: &ListQuery) -> Result<Vec<Refund>, StoreError> {
        let mut sql = format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE tenant_id = ?");
        let mut args: Vec<rusqlite::types::Value> = vec![query.tenant.as_str().to_owned().into()];
        if let Some(provider) = &query.provider {
            sql.push_str(" AND provider = ?");
            args.push(provider.clone().into());
        }
        if let Some(status) = query.status {
            sql.push_str(" AND status = ?");
            args.push(status.as_str().to_owned().into());
        }
        if let Some(payment_id) = &query.payment_id {
            sql.push_str(" AND payment_id = ?");
            args.push(payment_id.clone().into());
        }
        if let Some((created_at, id)) = &query.before {
            sql.push_str(" AND (created_at, id) < (?, ?)");
            args.push(micros(truncate(*created_at)).into());
            args.push(id.as_str().to_owned().into());
        }
        sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT ?");
        args.push(i64::from(query.limit).into());
        let run = move |c: &rusqlite::Connection| {
            let params = rusqlite::params_from_iter(args.iter());
            all_rows(c, &sql, params, refund_from_row)
        };
        // A page of the default size reads in well under a millisecond; bigger ones go to
        // the blocking pool.
        if query.limit <= 101 {
            self.readers.read(run)
        } else {
            self.readers.read_blocking(run).await
        }
    }

    async fn update_refund(
        &self,
        prev: &Refund,
        next: &Refund,
        cause: &Cause,
    ) -> Result<UpdateOutcome, StoreError> {
        let (prev, next, cause) = (prev.clone(), next.clone(), cause.clone());
        self.writer
            .write(move |c| writes::update_refund(c, &prev, &next, None, &cause))
            .await
    }

    async fn update_refund_completing(
        &self,
        prev: &Refund,
        next: &Refund,
        key: &RequestKey,
        result: &RequestResult,
        cause: &Cause,
    ) -> Result<UpdateOutcome, StoreError> {
        let (prev, next, key, result) = (prev.clone(), next.clone(), key.clone(), result.clone());
        let cause = cause.clone();
        self.writer
            .write(move |c| writes::update_refund(c, &prev, &next, Some((&key, &result)), &cause))
            .await
    }

    async fn latest_event(&self, id: &RefundId) -> Result<Option<RefundEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM refund_events WHERE refund_id = ? \
             ORDER BY sequence DESC LIMIT 1"
        );
        self.readers
            .read(|c| first(all_rows(c, &sql, [id.as_str()], event_from_row)))
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
        let mut sql = format!("SELECT {EVENT_COLUMNS} FROM refund_events WHERE sequence > ?");
        let mut args: Vec<rusqlite::types::Value> = vec![after.into()];
        match scope {
            EventScope::Tenant(tenant) => {
                sql.push_str(" AND tenant_id = ?");
                args.push(tenant.as_str().to_owned().into());
            }
            EventScope::Refund(id) => {
                sql.push_str(" AND refund_id = ?");
                args.push(id.as_str().to_owned().into());
            }
            EventScope::All => {}
        }
        sql.push_str(" ORDER BY sequence LIMIT ?");
        args.push(i64::from(limit).into());
        self.readers
            .read_blocking(move |c| {
                let params = rusqlite::params_from_iter(args.iter());
                all_rows(c, &sql, params, event_from_row)
            })
            .await
    }

    async fn last_sequence(&self) -> Result<u64, StoreError> {
        // sqlite_sequence remembers the largest sequence ever handed out, even if those rows
        // were deleted since; MAX(sequence) covers a table whose counter was never written.
        let last: i64 = self.readers.read(|c| {
            c.prepare_cached(
                "SELECT MAX(\
                   COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'refund_events'), 0), \
                   COALESCE((SELECT MAX(sequence) FROM refund_events), 0))",
            )
            .map_err(sqlite_error)?
            .query_row([], |r| r.get(0))
            .map_err(sqlite_error)
        })?;
        sequence(last)
    }

    async fn held_amount(
        &self,
        provider: &str,
        payment_id: &str,
        currency: Currency,
    ) -> Result<Money, StoreError> {
        // Refunds in another currency (which insert_refund never lets in beside this one) are
        // not converted or added.
        let held = self
            .readers
            .read(|c| writes::held_by_currency(c, provider, payment_id))?;
        Ok(Money::new(held_in(held, currency).0, currency))
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<Refund>, StoreError> {
        self.writer
            .write(move |c| writes::claim_due(c, now, limit, lease))
            .await
    }

    async fn count_by_status(&self) -> Result<Vec<(String, RefundStatus, u64)>, StoreError> {
        self.readers
            .read_blocking(|c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT provider, status, COUNT(*) AS n FROM refunds \
                         GROUP BY provider, status ORDER BY provider, status",
                    )
                    .map_err(sqlite_error)?;
                let rows = stmt
                    .query_map([], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, i64>(2)?,
                        ))
                    })
                    .map_err(sqlite_error)?;
                let mut out = Vec::new();
                for row in rows {
                    let (provider, status, n) = row.map_err(sqlite_error)?;
                    out.push((
                        provider,
                        rows::status("status", &status)?,
                        u64::try_from(n).unwrap_or(0),
                    ));
                }
                Ok(out)
            })
            .await
    }

    async fn secret(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        let existing: Option<Vec<u8>> = self.readers.read(|c| {
            c.prepare_cached("SELECT value FROM gateway_secrets WHERE name = ?")
                .map_err(sqlite_error)?
                .query_row([name], |r| r.get(0))
                .optional()
                .map_err(sqlite_error)
        })?;
        if let Some(value) = existing {
            return Ok(value);
        }
        // First use. INSERT OR IGNORE then read back: if two callers race, both get the one
        // value that was stored.
        let fresh: [u8; 32] = rand::random();
        let name = name.to_owned();
        self.writer
            .write(move |c| writes::secret(c, &name, &fresh))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // Reads the schema, so a file that went away or cannot be read fails here.
        self.readers.read(|c| {
            c.prepare_cached("SELECT COUNT(*) FROM sqlite_master")
                .map_err(sqlite_error)?
                .query_row([], |r| r.get::<_, i64>(0))
                .map_err(sqlite_error)
        })?;
        Ok(())
    }
}
