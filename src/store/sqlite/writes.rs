//! Writes of refunds: the insert with its over-refund guard, the compare-and-set update with
//! its event, and the worker's leases. Each runs in one `BEGIN IMMEDIATE` transaction on the
//! writer connection.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{SqliteConnection, sqlite::SqlitePool};

use super::rows::{
    self, REFUND_COLUMNS, col, duration_micros, micros, refund_from_row, to_json, truncated,
};
use super::{begin_write, db_error, misuse};
use crate::domain::{Money, Refund, RefundEvent, RefundStatus};
use crate::store::codec::HOLDING;
use crate::store::{InsertOutcome, RequestKey, RequestResult, StoreError, UpdateOutcome};

/// What the refunds of one payment that hold money add up to, per currency. The guard and
/// `held_amount` both use this one query.
pub(super) async fn held_by_currency(
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

#[tracing::instrument(level = "debug", skip_all, fields(refund_id = %refund.id, provider = %refund.provider))]
pub(super) async fn insert_refund(
    writer: &SqlitePool,
    refund: &Refund,
    key: &RequestKey,
    limit: Money,
) -> Result<InsertOutcome, StoreError> {
    if refund.tenant != key.tenant || refund.request_id != key.request_id {
        return Err(misuse(
            "insert_refund: the refund does not match its request key",
        ));
    }
    if refund.amount.minor <= 0 {
        return Err(misuse("insert_refund: a refund amount must be above zero"));
    }
    let refund = truncated(refund);
    let mut tx = begin_write(writer).await?;

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
        return Err(misuse(
            "insert_refund: the request key is not claimed (missing, completed or linked)",
        ));
    }
    tx.commit().await.map_err(db_error)?;
    Ok(InsertOutcome::Inserted(event))
}

#[tracing::instrument(level = "debug", skip_all, fields(refund_id = %prev.id))]
pub(super) async fn update_refund(
    writer: &SqlitePool,
    prev: &Refund,
    next: &Refund,
    completes: Option<(&RequestKey, &RequestResult)>,
) -> Result<UpdateOutcome, StoreError> {
    if next.id != prev.id {
        return Err(misuse("update_refund: prev and next are different refunds"));
    }
    // The status machine is checked here too: a FAILED or CANCELED refund has released
    // its amount to other refunds, so it must never hold money again.
    prev.status
        .check(next.status)
        .map_err(|e| StoreError::Other(Box::new(e)))?;
    let next = truncated(next);
    let mut tx = begin_write(writer).await?;
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
    // The request key settles in the same transaction as the change that decides it.
    if let Some((key, result)) = completes {
        let linked: Option<Option<String>> = sqlx::query_scalar(
            "SELECT refund_id FROM idempotency_keys WHERE tenant_id = ? AND request_id = ?",
        )
        .bind(key.tenant.as_str())
        .bind(&key.request_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        if linked.flatten().as_deref() != Some(prev.id.as_str()) {
            // Dropping the transaction rolls the refund change back too.
            return Err(misuse(
                "update_refund_completing: the key is not this refund's",
            ));
        }
        super::requests::complete_on(&mut *tx, key, result).await?;
    }
    let event = if next.differs_visibly(prev) {
        Some(insert_event(&mut tx, &refund, Some(prev.status), refund.updated_at).await?)
    } else {
        None
    };
    tx.commit().await.map_err(db_error)?;
    Ok(UpdateOutcome::Updated { refund, event })
}

#[tracing::instrument(level = "debug", skip_all)]
pub(super) async fn claim_due(
    writer: &SqlitePool,
    now: DateTime<Utc>,
    limit: u32,
    lease: Duration,
) -> Result<Vec<Refund>, StoreError> {
    let now = micros(now);
    let until = now.saturating_add(duration_micros(lease));
    let mut tx = begin_write(writer).await?;
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
