//! Row <-> domain mapping for the SQLite store: the readers that turn a row into a `Refund` or
//! a `RefundEvent`, for rows read through sqlx (the reader pool) and through rusqlite (the
//! writer thread) alike. The encodings themselves (column lists, times, JSON, enum spellings)
//! are shared with the other backends in `store::codec`. A row that does not decode is
//! `StoreError::Corrupt` naming the column, never a panic.

use sqlx::{Decode, Row as _, Sqlite, Type, sqlite::SqliteRow};

use crate::domain::{Currency, Money, PaymentRef, Refund, RefundEvent, Submission, TenantId};
use crate::store::StoreError;
pub(super) use crate::store::codec::{
    EVENT_COLUMNS, REFUND_COLUMNS, api_error, duration_micros, micros, reason_str, refund_id,
    status, to_json, truncate, truncated,
};
use crate::store::codec::{from_json, parse_reason, parsed, time_from_micros};

/// One column, decode failures reported as corruption of that column (sqlx rows).
pub(super) fn col<'r, T>(row: &'r SqliteRow, column: &str) -> Result<T, StoreError>
where
    T: Decode<'r, Sqlite> + Type<Sqlite>,
{
    row.try_get(column)
        .map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

/// What the decoders need of a row, whichever driver read it.
pub(super) trait Columns {
    fn text(&self, column: &str) -> Result<String, StoreError>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
}

impl Columns for SqliteRow {
    fn text(&self, column: &str) -> Result<String, StoreError> {
        col(self, column)
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        col(self, column)
    }
    fn int(&self, column: &str) -> Result<i64, StoreError> {
        col(self, column)
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        col(self, column)
    }
}

fn rcol<T: rusqlite::types::FromSql>(
    row: &rusqlite::Row<'_>,
    column: &str,
) -> Result<T, StoreError> {
    row.get(column)
        .map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

impl Columns for rusqlite::Row<'_> {
    fn text(&self, column: &str) -> Result<String, StoreError> {
        rcol(self, column)
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        rcol(self, column)
    }
    fn int(&self, column: &str) -> Result<i64, StoreError> {
        rcol(self, column)
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        rcol(self, column)
    }
}

/// A `refunds` row selected with [`REFUND_COLUMNS`].
pub(super) fn refund_from_row(row: &(impl Columns + ?Sized)) -> Result<Refund, StoreError> {
    let currency = row.text("currency")?;
    let currency =
        Currency::parse(&currency).map_err(|e| StoreError::Corrupt(format!("currency: {e}")))?;
    Ok(Refund {
        id: refund_id("id", &row.text("id")?)?,
        tenant: TenantId::new(row.text("tenant_id")?),
        request_id: row.text("request_id")?,
        provider: row.text("provider")?,
        payment: PaymentRef {
            payment_id: row.text("payment_id")?,
            payment_method_id: row.text("payment_method_id")?,
            invoice_id: row.text("invoice_id")?,
        },
        amount: Money::new(row.int("amount_minor")?, currency),
        status: status("status", &row.text("status")?)?,
        provider_refund_id: row.opt_text("provider_refund_id")?,
        provider_status: row.opt_text("provider_status")?,
        reason: parsed("reason", &row.text("reason")?, parse_reason)?,
        description: row.text("description")?,
        metadata: from_json("metadata", &row.text("metadata")?)?,
        bank_account: row
            .opt_text("bank_account")?
            .map(|s| from_json("bank_account", &s))
            .transpose()?,
        failure: row
            .opt_text("failure")?
            .map(|s| from_json("failure", &s))
            .transpose()?,
        created_at: time_from_micros("created_at", row.int("created_at")?)?,
        updated_at: time_from_micros("updated_at", row.int("updated_at")?)?,
        version: row.int("version")?,
        submission: parsed("submission", &row.text("submission")?, Submission::parse)?,
        next_check_at: row
            .opt_int("next_check_at")?
            .map(|us| time_from_micros("next_check_at", us))
            .transpose()?,
        check_attempts: i32::try_from(row.int("check_attempts")?)
            .map_err(|e| StoreError::Corrupt(format!("check_attempts: {e}")))?,
    })
}

/// A `refund_events` row selected with [`EVENT_COLUMNS`].
pub(super) fn event_from_row(row: &(impl Columns + ?Sized)) -> Result<RefundEvent, StoreError> {
    let sequence = row.int("sequence")?;
    let sequence = u64::try_from(sequence)
        .map_err(|_| StoreError::Corrupt(format!("sequence: {sequence} is negative")))?;
    let refund: Refund = from_json("snapshot", &row.text("snapshot")?)?;
    Ok(RefundEvent {
        sequence,
        refund,
        previous_status: row
            .opt_text("previous_status")?
            .map(|s| status("previous_status", &s))
            .transpose()?,
        event_time: time_from_micros("event_time", row.int("event_time")?)?,
    })
}
