//! CreateRefund idempotency keys: claim, complete, release. Each is one statement or one
//! short write transaction on the writer connection, so two racing claims of one key are
//! serialized and at most one of them is `Owned`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqlitePool;

use super::rows::{self, col, duration_micros, micros, to_json};
use super::{begin_write, db_error, misuse};
use crate::store::{RequestClaim, RequestKey, RequestResult, StoreError};

#[tracing::instrument(level = "debug", skip_all, fields(tenant = %key.tenant, request_id = %key.request_id))]
pub(super) async fn claim(
    writer: &SqlitePool,
    key: &RequestKey,
    fingerprint: &str,
    now: DateTime<Utc>,
    lease: Duration,
) -> Result<RequestClaim, StoreError> {
    let now = micros(now);
    let until = now.saturating_add(duration_micros(lease));
    let mut tx = begin_write(writer).await?;
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
        (true, _, Some(error)) => {
            RequestClaim::Done(RequestResult::Error(rows::api_error(&error)?))
        }
        (true, Some(id), None) => RequestClaim::Done(RequestResult::Refund(id)),
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
pub(super) async fn complete(
    writer: &SqlitePool,
    key: &RequestKey,
    result: &RequestResult,
) -> Result<(), StoreError> {
    complete_on(writer, key, result).await
}

/// [`complete`] on any executor (a pool, or an open transaction).
pub(super) async fn complete_on<'e, E>(
    exec: E,
    key: &RequestKey,
    result: &RequestResult,
) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    // A key completes with a refund only if insert_refund linked that very refund to it. A key
    // linked to a refund completes with an error only if that refund FAILED (refused by the
    // provider, or never sent) or was CANCELED (withdrawn before the provider took it, e.g.
    // rate limited): both are final and refunded nothing. Replaying an error for a refund that
    // may have gone through could lead the caller to refund again.
    let done = match result {
        RequestResult::Refund(id) => sqlx::query(
            "UPDATE idempotency_keys SET completed = 1 \
             WHERE tenant_id = ? AND request_id = ? AND refund_id = ?",
        )
        .bind(key.tenant.as_str())
        .bind(&key.request_id)
        .bind(id.as_str()),
        RequestResult::Error(error) => sqlx::query(
            "UPDATE idempotency_keys SET completed = 1, error = ? \
             WHERE tenant_id = ? AND request_id = ? AND (refund_id IS NULL OR refund_id IN \
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
pub(super) async fn release(writer: &SqlitePool, key: &RequestKey) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE tenant_id = ? AND request_id = ? \
         AND completed = 0 AND refund_id IS NULL",
    )
    .bind(key.tenant.as_str())
    .bind(&key.request_id)
    .execute(writer)
    .await
    .map_err(db_error)?;
    Ok(())
}
