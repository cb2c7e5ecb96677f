//! Row <-> domain mapping for the PostgreSQL store: the readers that turn a row into a
//! `Refund` or a `RefundEvent`. The encodings (column lists, times, JSON, enum spellings) are
//! shared with SQLite in `store::codec`. A row that does not decode is `StoreError::Corrupt`
//! naming the column, never a panic.

use sqlx::{Decode, Postgres, Row as _, Type, postgres::PgRow};

use crate::domain::{
    Actor, Cause, Currency, Money, PaymentRef, Refund, RefundEvent, Submission, TenantId,
};
use crate::store::StoreError;
pub(super) use crate::store::codec::{
    EVENT_COLUMNS, REFUND_COLUMNS, duration_micros, micros, reason_str, refund_id, status, to_json,
    truncate,
};
use crate::store::codec::{from_json, parse_reason, parsed, time_from_micros};

/// One column, decode failures reported as corruption of that column.
pub(super) fn col<'r, T>(row: &'r PgRow, column: &str) -> Result<T, StoreError>
where
    T: Decode<'r, Postgres> + Type<Postgres>,
{
    row.try_get(column)
        .map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

/// A `refunds` row selected with [`REFUND_COLUMNS`].
pub(super) fn refund_from_row(row: &PgRow) -> Result<Refund, StoreError> {
    let currency: String = col(row, "currency")?;
    let currency =
        Currency::parse(&currency).map_err(|e| StoreError::Corrupt(format!("currency: {e}")))?;
    let bank_account: Option<String> = col(row, "bank_account")?;
    let failure: Option<String> = col(row, "failure")?;
    let next_check_at: Option<i64> = col(row, "next_check_at")?;
    Ok(Refund {
        id: refund_id("id", &col::<String>(row, "id")?)?,
        tenant: TenantId::new(col::<String>(row, "tenant_id")?),
        request_id: col(row, "request_id")?,
        provider: col(row, "provider")?,
        payment: PaymentRef {
            payment_id: col(row, "payment_id")?,
            payment_method_id: col(row, "payment_method_id")?,
            invoice_id: col(row, "invoice_id")?,
        },
        amount: Money::new(col(row, "amount_minor")?, currency),
        status: status("status", &col::<String>(row, "status")?)?,
        provider_refund_id: col(row, "provider_refund_id")?,
        provider_status: col(row, "provider_status")?,
        reason: parsed("reason", &col::<String>(row, "reason")?, parse_reason)?,
        description: col(row, "description")?,
        metadata: from_json("metadata", &col::<String>(row, "metadata")?)?,
        bank_account: bank_account
            .map(|s| from_json("bank_account", &s))
            .transpose()?,
        failure: failure.map(|s| from_json("failure", &s)).transpose()?,
        created_at: time_from_micros("created_at", col(row, "created_at")?)?,
        updated_at: time_from_micros("updated_at", col(row, "updated_at")?)?,
        version: col(row, "version")?,
        submission: parsed(
            "submission",
            &col::<String>(row, "submission")?,
            Submission::parse,
        )?,
        next_check_at: next_check_at
            .map(|us| time_from_micros("next_check_at", us))
            .transpose()?,
        check_attempts: col(row, "check_attempts")?,
        sent_at: col::<Option<i64>>(row, "sent_at")?
            .map(|us| time_from_micros("sent_at", us))
            .transpose()?,
        created_by: col::<Option<String>>(row, "created_by")?.map(Actor::from_stored),
    })
}

/// A `refund_events` row selected with [`EVENT_COLUMNS`].
pub(super) fn event_from_row(row: &PgRow) -> Result<RefundEvent, StoreError> {
    let sequence: i64 = col(row, "sequence")?;
    let sequence = u64::try_from(sequence)
        .map_err(|_| StoreError::Corrupt(format!("sequence: {sequence} is negative")))?;
    let previous: Option<String> = col(row, "previous_status")?;
    let refund: Refund = from_json("snapshot", &col::<String>(row, "snapshot")?)?;
    Ok(RefundEvent {
        sequence,
        refund,
        previous_status: previous
            .map(|s| status("previous_status", &s))
            .transpose()?,
        event_time: time_from_micros("event_time", col(row, "event_time")?)?,
        cause: Cause::new(
            Actor::from_stored(col::<String>(row, "actor")?),
            col::<String>(row, "note")?,
        ),
    })
}
