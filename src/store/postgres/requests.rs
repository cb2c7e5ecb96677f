//! CreateRefund idempotency keys: claim, complete, release. The same states and answers as
//! the SQLite store; what differs is how racing replicas are kept apart. A new key is created
//! by `INSERT ... ON CONFLICT DO NOTHING`, so exactly one racing caller inserts it and owns
//! it; every other caller then locks the existing row (`SELECT ... FOR UPDATE`) and decides
//! on its latest committed state, one at a time.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgPool;

use super::rows::{col, duration_micros, micros, to_json};
use super::{begin, db_error};
use crate::store::keys::{KeyDecision, StoredKey};
use crate::store::rules::misuse;
use crate::store::{RequestClaim, RequestKey, RequestResult, StoreError};

/// How often a claim retries when the key vanishes between its insert attempt and its lock
/// (its owner released it at that very moment).
const CLAIM_ATTEMPTS: usize = 5;

#[tracing::instrument(level = "debug", skip_all, fields(tenant = %key.tenant, request_id = %key.request_id))]
pub(super) async fn claim(
    pool: &PgPool,
    key: &RequestKey,
    fingerprint: &str,
    now: DateTime<Utc>,
    lease: Duration,
) -> Result<RequestClaim, StoreError> {
    let now = micros(now);
    let until = now.saturating_add(duration_micros(lease));
    for _ in 0..CLAIM_ATTEMPTS {
        let mut tx = begin(pool).await?;
        // A racing insert of the same key makes this wait for that transaction's end; a key
        // that exists already is left alone (and not locked).
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (tenant_id, request_id, fingerprint, refund_id, \
             error, completed, locked_until, created_at) \
             VALUES ($1, $2, $3, NULL, NULL, FALSE, $4, $5) \
             ON CONFLICT (tenant_id, request_id) DO NOTHING",
        )
        .bind(key.tenant.as_str())
        .bind(&key.request_id)
        .bind(fingerprint)
        .bind(until)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if inserted.rows_affected() == 1 {
            tx.commit().await.map_err(db_error)?;
            return Ok(RequestClaim::Owned);
        }
        // A new statement: it sees the key as committed, and waits for anyone deciding on it.
        let row = sqlx::query(
            "SELECT fingerprint, refund_id, error, completed, locked_until \
             FROM idempotency_keys WHERE tenant_id = $1 AND request_id = $2 FOR UPDATE",
        )
        .bind(key.tenant.as_str())
        .bind(&key.request_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let Some(row) = row else {
            tx.rollback().await.map_err(db_error)?;
            continue; // released in between: try to create it again
        };
        let claim = decide(&mut tx, key, fingerprint, &row, now, until).await?;
        tx.commit().await.map_err(db_error)?;
        return Ok(claim);
    }
    Err(StoreError::Unavailable(
        format!(
            "idempotency key {} kept being released while claimed",
            key.request_id
        )
        .into(),
    ))
}

/// The claim on an existing key, whose row `tx` holds locked.
async fn decide(
    tx: &mut sqlx::PgConnection,
    key: &RequestKey,
    fingerprint: &str,
    row: &sqlx::postgres::PgRow,
    now: i64,
    until: i64,
) -> Result<RequestClaim, StoreError> {
    let stored = StoredKey {
        fingerprint: col(row, "fingerprint")?,
        refund_id: col(row, "refund_id")?,
        error: col(row, "error")?,
        completed: col(row, "completed")?,
        locked_until: col(row, "locked_until")?,
    };
    Ok(match stored.decide(key, fingerprint, now)? {
        KeyDecision::Answer(claim) => claim,
        KeyDecision::Complete(id) => {
            sqlx::query(
                "UPDATE idempotency_keys SET completed = TRUE \
                 WHERE tenant_id = $1 AND request_id = $2",
            )
            .bind(key.tenant.as_str())
            .bind(&key.request_id)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            RequestClaim::Done(RequestResult::Refund(id))
        }
        KeyDecision::TakeOver => {
            sqlx::query(
                "UPDATE idempotency_keys SET locked_until = $1 \
                 WHERE tenant_id = $2 AND request_id = $3",
            )
            .bind(until)
            .bind(key.tenant.as_str())
            .bind(&key.request_id)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            RequestClaim::Owned
        }
    })
}

#[tracing::instrument(level = "debug", skip_all, fields(tenant = %key.tenant, request_id = %key.request_id))]
pub(super) async fn complete(
    pool: &PgPool,
    key: &RequestKey,
    result: &RequestResult,
) -> Result<(), StoreError> {
    complete_on(pool, key, result).await
}

/// [`complete`] on any executor (a pool, or an open transaction).
pub(super) async fn complete_on<'e, E>(
    exec: E,
    key: &RequestKey,
    result: &RequestResult,
) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    // A key completes with a refund only if insert_refund linked that very refund to it. A key
    // linked to a refund completes with an error only if that refund FAILED (refused by the
    // provider) or was CANCELED (withdrawn before the provider took it): replaying an error
    // for a refund that may have gone through could lead the caller to refund again. FAILED
    // and CANCELED are final, so the check cannot go stale
    // before this one statement commits.
    let done = match result {
        RequestResult::Refund(id) => sqlx::query(
            "UPDATE idempotency_keys SET completed = TRUE \
             WHERE tenant_id = $1 AND request_id = $2 AND refund_id = $3",
        )
        .bind(key.tenant.as_str())
        .bind(&key.request_id)
        .bind(id.as_str()),
        RequestResult::Error(error) => sqlx::query(
            "UPDATE idempotency_keys SET completed = TRUE, error = $1 \
             WHERE tenant_id = $2 AND request_id = $3 AND (refund_id IS NULL OR refund_id IN \
             (SELECT id FROM refunds WHERE status IN ('FAILED', 'CANCELED')))",
        )
        .bind(to_json("request error", error)?)
        .bind(key.tenant.as_str())
        .bind(&key.request_id),
    }
    .execute(exec)
    .await
    .map_err(db_error)?;
    if done.rows_affected() != 1 {
        return Err(misuse(&format!(
            "cannot complete request {}: no such key, or not linked to that refund",
            key.request_id
        )));
    }
    Ok(())
}

#[tracing::instrument(level = "debug", skip_all, fields(tenant = %key.tenant, request_id = %key.request_id))]
pub(super) async fn release(pool: &PgPool, key: &RequestKey) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND request_id = $2 \
         AND completed = FALSE AND refund_id IS NULL",
    )
    .bind(key.tenant.as_str())
    .bind(&key.request_id)
    .execute(pool)
    .await
    .map_err(db_error)?;
    Ok(())
}
