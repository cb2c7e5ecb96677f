//! CreateRefund idempotency keys: claim, complete, release. Each is a function the writer
//! thread runs inside its batch transaction, so two racing claims of one key are serialized
//! and at most one of them is `Owned`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension as _, params};

use super::rows::{duration_micros, micros, to_json};
use super::writer::sqlite_error;
use crate::store::keys::{KeyDecision, StoredKey};
use crate::store::rules::misuse;
use crate::store::{RequestClaim, RequestKey, RequestResult, StoreError};

pub(super) fn claim(
    conn: &Connection,
    key: &RequestKey,
    fingerprint: &str,
    now: DateTime<Utc>,
    lease: Duration,
) -> Result<RequestClaim, StoreError> {
    type Row = (String, Option<String>, Option<String>, bool, i64);
    let now = micros(now);
    let until = now.saturating_add(duration_micros(lease));
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT fingerprint, refund_id, error, completed, locked_until \
             FROM idempotency_keys WHERE tenant_id = ? AND request_id = ?",
        )
        .map_err(sqlite_error)?
        .query_row(params![key.tenant.as_str(), &key.request_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()
        .map_err(sqlite_error)?;
    let Some((stored_fingerprint, refund_id, error, completed, locked_until)) = row else {
        conn.prepare_cached(
            "INSERT INTO idempotency_keys (tenant_id, request_id, fingerprint, refund_id, \
             error, completed, locked_until, created_at) VALUES (?, ?, ?, NULL, NULL, 0, ?, ?)",
        )
        .map_err(sqlite_error)?
        .execute(params![
            key.tenant.as_str(),
            &key.request_id,
            fingerprint,
            until,
            now
        ])
        .map_err(sqlite_error)?;
        return Ok(RequestClaim::Owned);
    };
    let stored = StoredKey {
        fingerprint: stored_fingerprint,
        refund_id,
        error,
        completed,
        locked_until,
    };
    Ok(match stored.decide(key, fingerprint, now)? {
        KeyDecision::Answer(claim) => claim,
        KeyDecision::Complete(id) => {
            conn.prepare_cached(
                "UPDATE idempotency_keys SET completed = 1 WHERE tenant_id = ? AND request_id = ?",
            )
            .map_err(sqlite_error)?
            .execute(params![key.tenant.as_str(), &key.request_id])
            .map_err(sqlite_error)?;
            RequestClaim::Done(RequestResult::Refund(id))
        }
        KeyDecision::TakeOver => {
            conn.prepare_cached(
                "UPDATE idempotency_keys SET locked_until = ? \
                 WHERE tenant_id = ? AND request_id = ?",
            )
            .map_err(sqlite_error)?
            .execute(params![until, key.tenant.as_str(), &key.request_id])
            .map_err(sqlite_error)?;
            RequestClaim::Owned
        }
    })
}

pub(super) fn complete(
    conn: &Connection,
    key: &RequestKey,
    result: &RequestResult,
) -> Result<(), StoreError> {
    // A key completes with a refund only if insert_refund linked that very refund to it. A key
    // linked to a refund completes with an error only if that refund FAILED (refused by the
    // provider, or never sent) or was CANCELED (withdrawn before the provider took it, e.g.
    // rate limited): both are final and refunded nothing. Replaying an error for a refund that
    // may have gone through could lead the caller to refund again.
    let done = match result {
        RequestResult::Refund(id) => conn
            .prepare_cached(
                "UPDATE idempotency_keys SET completed = 1 \
                 WHERE tenant_id = ? AND request_id = ? AND refund_id = ?",
            )
            .map_err(sqlite_error)?
            .execute(params![key.tenant.as_str(), &key.request_id, id.as_str()]),
        RequestResult::Error(error) => conn
            .prepare_cached(
                "UPDATE idempotency_keys SET completed = 1, error = ? \
                 WHERE tenant_id = ? AND request_id = ? AND (refund_id IS NULL OR refund_id IN \
                 (SELECT id FROM refunds WHERE status IN ('FAILED', 'CANCELED')))",
            )
            .map_err(sqlite_error)?
            .execute(params![
                to_json("request error", error)?,
                key.tenant.as_str(),
                &key.request_id
            ]),
    }
    .map_err(sqlite_error)?;
    if done != 1 {
        return Err(misuse(&format!(
            "cannot complete request {}: no such key, or not linked to that refund",
            key.request_id
        )));
    }
    Ok(())
}

pub(super) fn release(conn: &Connection, key: &RequestKey) -> Result<(), StoreError> {
    conn.prepare_cached(
        "DELETE FROM idempotency_keys WHERE tenant_id = ? AND request_id = ? \
         AND completed = 0 AND refund_id IS NULL",
    )
    .map_err(sqlite_error)?
    .execute(params![key.tenant.as_str(), &key.request_id])
    .map_err(sqlite_error)?;
    Ok(())
}
