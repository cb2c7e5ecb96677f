//! How every backend encodes the domain in columns: the column lists, times as unix
//! microseconds, JSON text, and the spellings of enums. Backend-neutral (no row types), so
//! SQLite and PostgreSQL store exactly the same values and hand back exactly the same
//! refunds. A value that does not decode is `StoreError::Corrupt` naming the column.

use std::{sync::LazyLock, time::Duration};

use chrono::{DateTime, SubsecRound as _, Utc};
use serde::{Serialize, de::DeserializeOwned};

use crate::domain::{ApiError, Refund, RefundId, RefundReason, RefundStatus};
use crate::store::StoreError;

/// A failed migration as a store error: a database error is classified by the backend's
/// `db_error`, anything else (a missing or changed migration) is `Other`.
pub(crate) fn migration_error(
    err: sqlx::migrate::MigrateError,
    db_error: fn(sqlx::Error) -> StoreError,
) -> StoreError {
    match err {
        sqlx::migrate::MigrateError::Execute(e) => db_error(e),
        other => StoreError::Other(Box::new(other)),
    }
}

/// Every column of `refunds`, in the order the backends' `refund_from_row` read them by name.
pub(crate) const REFUND_COLUMNS: &str = "id, tenant_id, request_id, provider, payment_id, \
     payment_method_id, invoice_id, currency, amount_minor, status, provider_refund_id, \
     provider_status, reason, description, metadata, bank_account, failure, created_at, \
     updated_at, version, submission, next_check_at, check_attempts, sent_at, created_by";

/// Every column of `refund_events`.
pub(crate) const EVENT_COLUMNS: &str = "sequence, refund_id, tenant_id, provider, status, \
     previous_status, snapshot, event_time, actor, note";

/// `status IN (...)` of the statuses that hold money, from `RefundStatus::holds_amount`, so
/// the SQL of every backend follows the domain's rule.
pub(crate) static HOLDING: LazyLock<String> = LazyLock::new(|| {
    let list: Vec<String> = RefundStatus::ALL
        .into_iter()
        .filter(|s| s.holds_amount())
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    format!("status IN ({})", list.join(", "))
});

/// `t` cut to whole microseconds: the precision the store keeps.
pub(crate) fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// `t` as unix microseconds. Every `DateTime<Utc>` chrono can hold fits in an `i64` of
/// microseconds (chrono's range is about ±262,000 years, i64 microseconds ±292,000).
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// A lease in microseconds, saturating (a lease of centuries is still a lease).
pub(crate) fn duration_micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

pub(crate) fn time_from_micros(column: &str, us: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| StoreError::Corrupt(format!("{column}: {us} is not a valid time")))
}

/// The refund with every time truncated to microseconds, as the store will hand it back.
pub(crate) fn truncated(refund: &Refund) -> Refund {
    let mut r = refund.clone();
    r.created_at = truncate(r.created_at);
    r.updated_at = truncate(r.updated_at);
    r.next_check_at = r.next_check_at.map(truncate);
    r.sent_at = r.sent_at.map(truncate);
    r
}

pub(crate) fn to_json<T: Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Other(format!("cannot encode {what} as JSON: {e}").into()))
}

pub(crate) fn from_json<T: DeserializeOwned>(column: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

pub(crate) fn reason_str(reason: RefundReason) -> &'static str {
    match reason {
        RefundReason::Duplicate => "DUPLICATE",
        RefundReason::Fraudulent => "FRAUDULENT",
        RefundReason::RequestedByCustomer => "REQUESTED_BY_CUSTOMER",
        RefundReason::Other => "OTHER",
    }
}

pub(crate) fn parse_reason(s: &str) -> Option<RefundReason> {
    Some(match s {
        "DUPLICATE" => RefundReason::Duplicate,
        "FRAUDULENT" => RefundReason::Fraudulent,
        "REQUESTED_BY_CUSTOMER" => RefundReason::RequestedByCustomer,
        "OTHER" => RefundReason::Other,
        _ => return None,
    })
}

/// `text` parsed by `parse`, or `Corrupt` naming the column and the value.
pub(crate) fn parsed<T>(
    column: &str,
    text: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, StoreError> {
    parse(text).ok_or_else(|| StoreError::Corrupt(format!("{column}: unknown value {text:?}")))
}

pub(crate) fn refund_id(column: &str, text: &str) -> Result<RefundId, StoreError> {
    parsed(column, text, RefundId::parse)
}

pub(crate) fn status(column: &str, text: &str) -> Result<RefundStatus, StoreError> {
    parsed(column, text, RefundStatus::parse)
}

/// The stored error JSON of an idempotency key.
pub(crate) fn api_error(text: &str) -> Result<ApiError, StoreError> {
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

    #[test]
    fn holding_lists_exactly_the_statuses_that_hold_money() {
        assert_eq!(
            *HOLDING,
            "status IN ('PENDING', 'PROCESSING', 'SUCCEEDED', 'REQUIRES_REVIEW', 'REQUIRES_APPROVAL')"
        );
    }
}
