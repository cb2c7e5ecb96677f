//! Writes of refunds: the insert with its over-refund guard, the compare-and-set update with
//! its event, the event itself (numbered by the one `event_counter` row), and the worker's
//! leases. See the module docs of `postgres.rs` for why each is safe across replicas.

use std::{sync::LazyLock, time::Duration};

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, postgres::PgPool};

use super::rows::{self, REFUND_COLUMNS, col, duration_micros, micros, refund_from_row, to_json};
use super::{EVENTS_CHANNEL, begin, db_error};
use crate::domain::{Actor, Cause, Money, Refund, RefundEvent, RefundStatus};
use crate::store::codec::HOLDING;
use crate::store::rules::{checked_change, checked_new, held_in, misuse, refused, written_event};
use crate::store::{InsertOutcome, RequestKey, RequestResult, StoreError, UpdateOutcome};

/// What the refunds of one payment that hold money add up to, per currency. The guard and
/// `held_amount` both use this one query.
pub(super) async fn held_by_currency<'e>(
    exec: impl PgExecutor<'e>,
    provider: &str,
    payment_id: &str,
) -> Result<Vec<(String, i64)>, StoreError> {
    let sql = format!(
        "SELECT currency, SUM(amount_minor)::BIGINT AS held FROM refunds \
         WHERE provider = $1 AND payment_id = $2 AND {} GROUP BY currency",
        *HOLDING
    );
    let rows = sqlx::query(&sql)
        .bind(provider)
        .bind(payment_id)
        .fetch_all(exec)
        .await
        .map_err(db_error)?;
    rows.iter()
        .map(|row| Ok((col(row, "currency")?, col(row, "held")?)))
        .collect()
}

/// Locks the payment for the rest of `tx`: every insert for the same (provider account,
/// payment), on any replica, waits here until this transaction ends.
async fn lock_payment(
    tx: &mut PgConnection,
    provider: &str,
    payment_id: &str,
) -> Result<(), StoreError> {
    // Two statements on purpose. The insert creates the lock row the first time (a racing
    // first insert waits for the other's commit and does nothing). The SELECT runs with a
    // new snapshot, so it finds the row even if another transaction committed it while the
    // insert waited, and takes the lock; one statement would miss such a row.
    sqlx::query(
        "INSERT INTO payment_locks (provider, payment_id) VALUES ($1, $2) \
         ON CONFLICT (provider, payment_id) DO NOTHING",
    )
    .bind(provider)
    .bind(payment_id)
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    sqlx::query("SELECT 1 FROM payment_locks WHERE provider = $1 AND payment_id = $2 FOR UPDATE")
        .bind(provider)
        .bind(payment_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Writes `refund`'s event with the next sequence and announces it to other replicas. The
/// last statement of its transaction: from here to COMMIT this transaction holds the
/// `event_counter` row, so event-writing transactions commit in sequence order, and the
/// NOTIFY goes out at that commit (or never, on rollback).
async fn insert_event(
    tx: &mut PgConnection,
    refund: &Refund,
    previous_status: Option<RefundStatus>,
    event_time: DateTime<Utc>,
    cause: &Cause,
) -> Result<RefundEvent, StoreError> {
    let snapshot = refund.public_view();
    let sequence: i64 = sqlx::query_scalar(
        "WITH next AS (UPDATE event_counter SET last = last + 1 RETURNING last), \
         event AS (INSERT INTO refund_events \
           (sequence, refund_id, tenant_id, provider, status, previous_status, snapshot, \
            event_time, actor, note) \
           SELECT next.last, $1, $2, $3, $4, $5, $6, $7, $9, $10 FROM next RETURNING sequence) \
         SELECT event.sequence FROM event, pg_notify($8, event.sequence::TEXT)",
    )
    .bind(refund.id.as_str())
    .bind(refund.tenant.as_str())
    .bind(&refund.provider)
    .bind(refund.status.as_str())
    .bind(previous_status.map(RefundStatus::as_str))
    .bind(to_json("event snapshot", &snapshot)?)
    .bind(micros(event_time))
    .bind(EVENTS_CHANNEL)
    .bind(cause.actor.as_str())
    .bind(&cause.note)
    .fetch_one(tx)
    .await
    .map_err(db_error)?;
    written_event(sequence, snapshot, previous_status, event_time, cause)
}

#[tracing::instrument(level = "debug", skip_all, fields(refund_id = %refund.id, provider = %refund.provider))]
pub(super) async fn insert_refund(
    pool: &PgPool,
    refund: &Refund,
    key: &RequestKey,
    limit: Money,
    reported: &[crate::domain::ReportedRefund],
    cause: &Cause,
) -> Result<InsertOutcome, StoreError> {
    let refund = checked_new(refund, key)?;
    let mut tx = begin(pool).await?;

    // The over-refund guard: with the payment locked, no other insert for it (on any
    // replica) can slip in between this sum and the insert below.
    lock_payment(&mut tx, &refund.provider, &refund.payment.payment_id).await?;
    let held = held_by_currency(&mut *tx, &refund.provider, &refund.payment.payment_id).await?;
    let (mut same, foreign) = held_in(held, limit.currency);
    // What the provider reports as refunded beyond the refunds holding money under this same
    // lock (so a refund is never counted twice, nor an outside one left out; see
    // `outside_minor`) counts as held.
    if !reported.is_empty() {
        let sql = format!(
            "SELECT id, provider_refund_id FROM refunds \
             WHERE provider = $1 AND payment_id = $2 AND {}",
            *HOLDING
        );
        let rows = sqlx::query(&sql)
            .bind(&refund.provider)
            .bind(&refund.payment.payment_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;
        let holding = rows
            .iter()
            .map(|row| {
                Ok(crate::domain::HeldRefund {
                    id: col(row, "id")?,
                    provider_refund_id: col(row, "provider_refund_id")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let outside = crate::domain::outside_minor(reported, &holding, limit.currency, limit.minor);
        same = same.saturating_add(outside);
    }
    if let Some(refused) = refused(&refund, limit, same, foreign) {
        if foreign {
            tracing::warn!("refunds of this payment hold money in another currency");
        }
        tx.rollback().await.map_err(db_error)?;
        return Ok(refused);
    }

    let sql = format!(
        "INSERT INTO refunds ({REFUND_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
         $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)"
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
        .bind(refund.sent_at.map(micros))
        .bind(refund.created_by.as_ref().map(Actor::as_str))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    // The caller owns the claim on `key`, so the key is open and not linked yet.
    let linked = sqlx::query(
        "UPDATE idempotency_keys SET refund_id = $1 WHERE tenant_id = $2 AND request_id = $3 \
         AND completed = FALSE AND refund_id IS NULL",
    )
    .bind(refund.id.as_str())
    .bind(key.tenant.as_str())
    .bind(&key.request_id)
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    if linked.rows_affected() != 1 {
        tx.rollback().await.map_err(db_error)?;
        return Err(misuse(
            "insert_refund: the request key is not claimed (missing, completed or linked)",
        ));
    }
    let event = insert_event(&mut tx, &refund, None, refund.created_at, cause).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(InsertOutcome::Inserted(event))
}

#[tracing::instrument(level = "debug", skip_all, fields(refund_id = %prev.id))]
pub(super) async fn update_refund(
    pool: &PgPool,
    prev: &Refund,
    next: &Refund,
    completes: Option<(&RequestKey, &RequestResult)>,
    cause: &Cause,
) -> Result<UpdateOutcome, StoreError> {
    let next = checked_change(prev, next)?;
    let mut tx = begin(pool).await?;
    // A concurrent writer that committed first moved the version on: this then matches no
    // row (READ COMMITTED re-checks the condition on the newest version after waiting).
    let sql = format!(
        "UPDATE refunds SET status = $1, provider_refund_id = $2, provider_status = $3, \
         failure = $4, updated_at = $5, submission = $6, next_check_at = $7, \
         check_attempts = $8, sent_at = $9, version = version + 1 \
         WHERE id = $10 AND version = $11 AND status = $12 RETURNING {REFUND_COLUMNS}"
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
        .bind(next.sent_at.map(micros))
        .bind(prev.id.as_str())
        .bind(prev.version)
        .bind(prev.status.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
    let Some(row) = row else {
        tx.rollback().await.map_err(db_error)?;
        return Ok(UpdateOutcome::Conflict);
    };
    let refund = refund_from_row(&row)?;
    // The request key settles in the same transaction as the change that decides it.
    if let Some((key, result)) = completes {
        let linked: Option<Option<String>> = sqlx::query_scalar(
            "SELECT refund_id FROM idempotency_keys WHERE tenant_id = $1 AND request_id = $2",
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
        Some(
            insert_event(
                &mut tx,
                &refund,
                Some(prev.status),
                refund.updated_at,
                cause,
            )
            .await?,
        )
    } else {
        None
    };
    tx.commit().await.map_err(db_error)?;
    Ok(UpdateOutcome::Updated { refund, event })
}

/// The statement of [`claim_due`].
static CLAIM_DUE: LazyLock<String> = LazyLock::new(|| {
    let returning: Vec<String> = REFUND_COLUMNS
        .split(", ")
        .map(|c| format!("r.{c}"))
        .collect();
    format!(
        "WITH due AS (\
           SELECT id, next_check_at AS due_at FROM refunds \
           WHERE next_check_at IS NOT NULL AND next_check_at <= $1 \
           ORDER BY next_check_at, id LIMIT $2 FOR NO KEY UPDATE SKIP LOCKED), \
         claimed AS (\
           UPDATE refunds r SET next_check_at = $3, version = r.version + 1 FROM due \
           WHERE r.id = due.id RETURNING {}, due.due_at) \
         SELECT {REFUND_COLUMNS} FROM claimed ORDER BY due_at, id",
        returning.join(", ")
    )
});

/// One statement (its own transaction): lock up to `limit` due refunds nobody else holds
/// (`SKIP LOCKED`: another replica's claim in progress is passed over, not waited for), push
/// their next check to the end of the lease, and return them earliest-due first. A row
/// another replica claimed and committed meanwhile is re-checked on its new
/// `next_check_at` and dropped, so a refund is never handed to two replicas.
#[tracing::instrument(level = "debug", skip_all)]
pub(super) async fn claim_due(
    pool: &PgPool,
    now: DateTime<Utc>,
    limit: u32,
    lease: Duration,
) -> Result<Vec<Refund>, StoreError> {
    let now = micros(now);
    let until = now.saturating_add(duration_micros(lease));
    let rows = sqlx::query(&CLAIM_DUE)
        .bind(now)
        .bind(i64::from(limit))
        .bind(until)
        .fetch_all(pool)
        .await
        .map_err(db_error)?;
    rows.iter().map(refund_from_row).collect()
}
