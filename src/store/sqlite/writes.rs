//! Writes of refunds: the insert with its over-refund guard, the compare-and-set update with
//! its event, and the worker's leases. Each is a function the writer thread runs inside its
//! batch transaction (see `writer`), so nothing interleaves with it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension as _, params};

use super::rows::{self, REFUND_COLUMNS, duration_micros, micros, refund_from_row, to_json};
use super::writer::sqlite_error;
use crate::domain::{Actor, Cause, Money, Refund, RefundEvent, RefundStatus};
use crate::store::codec::HOLDING;
use crate::store::rules::{checked_change, checked_new, held_in, misuse, refused, written_event};
use crate::store::{InsertOutcome, RequestKey, RequestResult, StoreError, UpdateOutcome};

/// The SQL of what the refunds of one payment that hold money add up to, per currency. The
/// guard and `held_amount` both use it.
pub(super) fn held_sql() -> String {
    format!(
        "SELECT currency, SUM(amount_minor) AS held FROM refunds \
         WHERE provider = ? AND payment_id = ? AND {} GROUP BY currency",
        *HOLDING
    )
}

pub(super) fn held_by_currency(
    conn: &Connection,
    provider: &str,
    payment_id: &str,
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut stmt = conn.prepare_cached(&held_sql()).map_err(sqlite_error)?;
    let rows = stmt
        .query_map(params![provider, payment_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })
        .map_err(sqlite_error)?;
    rows.collect::<Result<_, _>>().map_err(sqlite_error)
}

fn insert_event(
    conn: &Connection,
    refund: &Refund,
    previous_status: Option<RefundStatus>,
    event_time: DateTime<Utc>,
    cause: &Cause,
) -> Result<RefundEvent, StoreError> {
    let snapshot = refund.public_view();
    let sequence: i64 = conn
        .prepare_cached(
            "INSERT INTO refund_events \
             (refund_id, tenant_id, provider, status, previous_status, snapshot, event_time, \
              actor, note) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING sequence",
        )
        .map_err(sqlite_error)?
        .query_row(
            params![
                refund.id.as_str(),
                refund.tenant.as_str(),
                &refund.provider,
                refund.status.as_str(),
                previous_status.map(RefundStatus::as_str),
                to_json("event snapshot", &snapshot)?,
                micros(event_time),
                cause.actor.as_str(),
                &cause.note,
            ],
            |r| r.get(0),
        )
        .map_err(sqlite_error)?;
    written_event(sequence, snapshot, previous_status, event_time, cause)
}

pub(super) fn insert_refund(
    conn: &Connection,
    refund: &Refund,
    key: &RequestKey,
    limit: Money,
    reported: &[crate::domain::ReportedRefund],
    cause: &Cause,
) -> Result<InsertOutcome, StoreError> {
    let refund = checked_new(refund, key)?;

    // The over-refund guard: this sum and the insert below are in one serialized write, so
    // no other insert can slip in between.
    let held = held_by_currency(conn, &refund.provider, &refund.payment.payment_id)?;
    let (mut same, foreign) = held_in(held, limit.currency);
    // What the provider reports as refunded beyond the refunds holding money in this same
    // write (so a refund is never counted twice, nor an outside one left out; see
    // `outside_minor`) counts as held.
    if !reported.is_empty() {
        let sql = format!(
            "SELECT id, provider_refund_id FROM refunds \
             WHERE provider = ? AND payment_id = ? AND {}",
            *HOLDING
        );
        let mut stmt = conn.prepare_cached(&sql).map_err(sqlite_error)?;
        let holding = stmt
            .query_map(params![&refund.provider, &refund.payment.payment_id], |r| {
                Ok(crate::domain::HeldRefund {
                    id: r.get(0)?,
                    provider_refund_id: r.get(1)?,
                })
            })
            .map_err(sqlite_error)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sqlite_error)?;
        let outside = crate::domain::outside_minor(reported, &holding, limit.currency, limit.minor);
        same = same.saturating_add(outside);
    }
    if let Some(refused) = refused(&refund, limit, same, foreign) {
        if foreign {
            tracing::warn!(refund_id = %refund.id, "refunds of this payment hold money in another currency");
        }
        return Ok(refused);
    }

    let sql = format!(
        "INSERT INTO refunds ({REFUND_COLUMNS}) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    );
    conn.prepare_cached(&sql)
        .map_err(sqlite_error)?
        .execute(params![
            refund.id.as_str(),
            refund.tenant.as_str(),
            &refund.request_id,
            &refund.provider,
            &refund.payment.payment_id,
            &refund.payment.payment_method_id,
            &refund.payment.invoice_id,
            refund.amount.currency.code(),
            refund.amount.minor,
            refund.status.as_str(),
            &refund.provider_refund_id,
            &refund.provider_status,
            rows::reason_str(refund.reason),
            &refund.description,
            to_json("metadata", &refund.metadata)?,
            refund
                .bank_account
                .as_ref()
                .map(|b| to_json("bank account", b))
                .transpose()?,
            refund
                .failure
                .as_ref()
                .map(|f| to_json("failure", f))
                .transpose()?,
            micros(refund.created_at),
            micros(refund.updated_at),
            refund.version,
            refund.submission.as_str(),
            refund.next_check_at.map(micros),
            refund.check_attempts,
            refund.sent_at.map(micros),
            refund.created_by.as_ref().map(Actor::as_str),
        ])
        .map_err(sqlite_error)?;
    let event = insert_event(conn, &refund, None, refund.created_at, cause)?;
    // The caller owns the claim on `key`, so the key is open and not linked yet.
    let linked = conn
        .prepare_cached(
            "UPDATE idempotency_keys SET refund_id = ? WHERE tenant_id = ? AND request_id = ? \
             AND completed = 0 AND refund_id IS NULL",
        )
        .map_err(sqlite_error)?
        .execute(params![
            refund.id.as_str(),
            key.tenant.as_str(),
            &key.request_id
        ])
        .map_err(sqlite_error)?;
    if linked != 1 {
        return Err(misuse(
            "insert_refund: the request key is not claimed (missing, completed or linked)",
        ));
    }
    Ok(InsertOutcome::Inserted(event))
}

pub(super) fn update_refund(
    conn: &Connection,
    prev: &Refund,
    next: &Refund,
    completes: Option<(&RequestKey, &RequestResult)>,
    cause: &Cause,
) -> Result<UpdateOutcome, StoreError> {
    let next = checked_change(prev, next)?;
    let sql = format!(
        "UPDATE refunds SET status = ?, provider_refund_id = ?, provider_status = ?, \
         failure = ?, updated_at = ?, submission = ?, next_check_at = ?, check_attempts = ?, \
         sent_at = ?, leased = 0, version = version + 1 \
         WHERE id = ? AND version = ? AND status = ? RETURNING {REFUND_COLUMNS}"
    );
    let refund = conn
        .prepare_cached(&sql)
        .map_err(sqlite_error)?
        .query_row(
            params![
                next.status.as_str(),
                &next.provider_refund_id,
                &next.provider_status,
                next.failure
                    .as_ref()
                    .map(|f| to_json("failure", f))
                    .transpose()?,
                micros(next.updated_at),
                next.submission.as_str(),
                next.next_check_at.map(micros),
                next.check_attempts,
                next.sent_at.map(micros),
                prev.id.as_str(),
                prev.version,
                prev.status.as_str(),
            ],
            |row| Ok(refund_from_row(row)),
        )
        .optional()
        .map_err(sqlite_error)?;
    let Some(refund) = refund else {
        return Ok(UpdateOutcome::Conflict);
    };
    let refund = refund?;
    // The request key settles in the same transaction as the change that decides it.
    if let Some((key, result)) = completes {
        let linked: Option<Option<String>> = conn
            .prepare_cached(
                "SELECT refund_id FROM idempotency_keys WHERE tenant_id = ? AND request_id = ?",
            )
            .map_err(sqlite_error)?
            .query_row(params![key.tenant.as_str(), &key.request_id], |r| r.get(0))
            .optional()
            .map_err(sqlite_error)?;
        if linked.flatten().as_deref() != Some(prev.id.as_str()) {
            // A failed write's batch is rolled back: the refund change goes with it.
            return Err(misuse(
                "update_refund_completing: the key is not this refund's",
            ));
        }
        super::requests::complete(conn, key, result)?;
    }
    let event = if next.differs_visibly(prev) {
        Some(insert_event(
            conn,
            &refund,
            Some(prev.status),
            refund.updated_at,
            cause,
        )?)
    } else {
        None
    };
    Ok(UpdateOutcome::Updated { refund, event })
}

pub(super) fn claim_due(
    conn: &Connection,
    now: DateTime<Utc>,
    limit: u32,
    lease: Duration,
) -> Result<Vec<Refund>, StoreError> {
    let now = micros(now);
    let until = now.saturating_add(duration_micros(lease));
    let ids: Vec<String> = conn
        .prepare_cached(
            "SELECT id FROM refunds WHERE next_check_at IS NOT NULL AND next_check_at <= ? \
             ORDER BY next_check_at, id LIMIT ?",
        )
        .map_err(sqlite_error)?
        .query_map(params![now, i64::from(limit)], |r| r.get(0))
        .map_err(sqlite_error)?
        .collect::<Result<_, _>>()
        .map_err(sqlite_error)?;
    let sql = format!(
        "UPDATE refunds SET next_check_at = ?, leased = 1, version = version + 1 WHERE id = ? \
         RETURNING {REFUND_COLUMNS}"
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(sqlite_error)?;
    let mut claimed = Vec::with_capacity(ids.len());
    for id in ids {
        let refund = stmt
            .query_row(params![until, id], |row| Ok(refund_from_row(row)))
            .map_err(sqlite_error)??;
        claimed.push(refund);
    }
    Ok(claimed)
}

/// Makes every check a worker had claimed due at `now`: for a store only one process uses,
/// when that process starts (the leases are its previous run's). Returns how many.
pub(super) fn release_leases(conn: &Connection, now: DateTime<Utc>) -> Result<usize, StoreError> {
    conn.prepare_cached(
        "UPDATE refunds SET next_check_at = ?, leased = 0, version = version + 1 \
         WHERE leased = 1",
    )
    .map_err(sqlite_error)?
    .execute(params![micros(now)])
    .map_err(sqlite_error)
}

/// `secret`'s first use: store a fresh value unless one is there, and read back the one
/// that is.
pub(super) fn secret(conn: &Connection, name: &str, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
    conn.prepare_cached("INSERT OR IGNORE INTO gateway_secrets (name, value) VALUES (?, ?)")
        .map_err(sqlite_error)?
        .execute(params![name, fresh])
        .map_err(sqlite_error)?;
    conn.prepare_cached("SELECT value FROM gateway_secrets WHERE name = ?")
        .map_err(sqlite_error)?
        .query_row(params![name], |r| r.get(0))
        .map_err(sqlite_error)
}
