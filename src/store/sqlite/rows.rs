//! Row <-> domain mapping for the SQLite store: column lists, time and JSON encodings, and the
//! readers that turn a row into a `Refund` or a `RefundEvent`. A row that does not decode is
//! `StoreError::Corrupt` naming the column, never a panic.

use std::time::Duration;

use chrono::{DateTime, SubsecRound as _, Utc};
use serde::{Serialize, de::DeserializeOwned};
use sqlx::{Decode, Row as _, Sqlite, Type, sqlite::SqliteRow};

use crate::domain::{
    Currency, Money, PaymentRef, Refund, RefundEvent, RefundId, RefundReason, RefundStatus,
    Submission, TenantId,
};
use crate::store::StoreError;

/// Every column of `refunds`, in the order `refund_from_row` reads them by name.
pub(super) const REFUND_COLUMNS: &str = "id, tenant_id, request_id, provider, payment_id, \
     payment_method_id, invoice_id, currency, amount_minor, status, provider_refund_id, \
     provider_status, reason, description, metadata, bank_account, failure, created_at, \
     updated_at, version, submission, next_check_at, check_attempts";

/// Every column of `refund_events`.
pub(super) const EVENT_COLUMNS: &str =
    "sequence, refund_id, tenant_id, provider, status, previous_status, snapshot, event_time";

/// `t` cut to whole microseconds: the precision the store keeps.
pub(super) fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// `t` as unix microseconds. Every `DateTime<Utc>` chrono can hold fits in an `i64` of
/// microseconds (chrono's range is about ±262,000 years, i64 microseconds ±292,000).
pub(super) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// A lease in microseconds, saturating (a lease of centuries is still a lease).
pub(super) fn duration_micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn time_from_micros(column: &str, us: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| StoreError::Corrupt(format!("{column}: {us} is not a valid time")))
}

/// The refund with every time truncated to microseconds, as the store will hand it back.
pub(super) fn truncated(refund: &Refund) -> Refund {
    let mut r = refund.clone();
    r.created_at = truncate(r.created_at);
    r.updated_at = truncate(r.updated_at);
    r.next_check_at = r.next_check_at.map(truncate);
    r
}

pub(super) fn to_json<T: Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Other(format!("cannot encode {what} as JSON: {e}").into()))
}

fn from_json<T: DeserializeOwned>(column: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

pub(super) fn reason_str(reason: RefundReason) -> &'static str {
    match reason {
        RefundReason::Duplicate => "DUPLICATE",
        RefundReason::Fraudulent => "FRAUDULENT",
        RefundReason::RequestedByCustomer => "REQUESTED_BY_CUSTOMER",
        RefundReason::Other => "OTHER",
    }
}

fn parse_reason(s: &str) -> Option<RefundReason> {
    Some(match s {
        "DUPLICATE" => RefundReason::Duplicate,
        "FRAUDULENT" => RefundReason::Fraudulent,
        "REQUESTED_BY_CUSTOMER" => RefundReason::RequestedByCustomer,
        "OTHER" => RefundReason::Other,
        _ => return None,
    })
}

/// One column, decode failures reported as corruption of that column.
pub(super) fn col<'r, T>(row: &'r SqliteRow, column: &str) -> Result<T, StoreError>
where
    T: Decode<'r, Sqlite> + Type<Sqlite>,
{
    row.try_get(column)
        .map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

fn parsed<T>(
    column: &str,
    text: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, StoreError> {
    parse(text).ok_or_else(|| StoreError::Corrupt(format!("{column}: unknown value {text:?}")))
}

pub(super) fn refund_id(column: &str, text: &str) -> Result<RefundId, StoreError> {
    parsed(column, text, RefundId::parse)
}

pub(super) fn status(column: &str, text: &str) -> Result<RefundStatus, StoreError> {
    parsed(column, text, RefundStatus::parse)
}

/// A `refunds` row selected with [`REFUND_COLUMNS`].
pub(super) fn refund_from_row(row: &SqliteRow) -> Result<Refund, StoreError> {
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
    })
}

/// A `refund_events` row selected with [`EVENT_COLUMNS`].
pub(super) fn event_from_row(row: &SqliteRow) -> Result<RefundEvent, StoreError> {
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
    })
}

/// The stored error JSON of an idempotency key.
pub(super) fn api_error(text: &str) -> Result<crate::domain::ApiError, StoreError> {
    from_json("idempotency_keys.error", text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip() {
        for r in [
            RefundReason::Duplicate,
            RefundReason::Fraudulent,
            RefundReason::RequestedByCustomer,
            RefundReason::Other,
        ] {
            assert_eq!(parse_reason(reason_str(r)), Some(r));
            // Same spelling as the serde form, so JSON snapshots and columns agree.
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", reason_str(r))
            );
        }
        assert_eq!(parse_reason("other"), None);
    }

    #[test]
    fn times_round_trip_at_microsecond_precision() {
        let t = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        let cut = truncate(t);
        assert_eq!(cut.timestamp_subsec_nanos(), 123_456_000);
        assert_eq!(time_from_micros("t", micros(t)).unwrap(), cut);
        assert_eq!(truncate(cut), cut);
        assert!(time_from_micros("t", i64::MAX).is_err());
    }
}
