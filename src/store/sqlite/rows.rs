//! Row -> domain mapping for the SQLite store: the readers that turn a rusqlite row into a
//! `Refund` or a `RefundEvent`. The encodings themselves (column lists, times, JSON, enum
//! spellings) are shared with the other backends in `store::codec`. A row that does not
//! decode is `StoreError::Corrupt` naming the column, never a panic.
//!
//! Columns are read by position: every statement that decodes a row selects exactly
//! [`REFUND_COLUMNS`] or [`EVENT_COLUMNS`], and [`REFUND_FIELDS`]/[`EVENT_FIELDS`] spell those
//! lists out (a test keeps them equal). rusqlite's lookup by name asks SQLite for every
//! column's name and compares C strings, which took over a third of a ListRefunds page.

use rusqlite::types::FromSql;

use crate::domain::{
    Actor, Cause, Currency, Money, PaymentRef, Refund, RefundEvent, Submission, TenantId,
};
use crate::store::StoreError;
pub(super) use crate::store::codec::{
    EVENT_COLUMNS, REFUND_COLUMNS, duration_micros, micros, reason_str, refund_id, status, to_json,
    truncate,
};
use crate::store::codec::{from_json, parse_reason, parsed, time_from_micros};

/// [`REFUND_COLUMNS`], one name per position.
const REFUND_FIELDS: [&str; 25] = [
    "id",
    "tenant_id",
    "request_id",
    "provider",
    "payment_id",
    "payment_method_id",
    "invoice_id",
    "currency",
    "amount_minor",
    "status",
    "provider_refund_id",
    "provider_status",
    "reason",
    "description",
    "metadata",
    "bank_account",
    "failure",
    "created_at",
    "updated_at",
    "version",
    "submission",
    "next_check_at",
    "check_attempts",
    "sent_at",
    "created_by",
];

/// [`EVENT_COLUMNS`], one name per position.
const EVENT_FIELDS: [&str; 10] = [
    "sequence",
    "refund_id",
    "tenant_id",
    "provider",
    "status",
    "previous_status",
    "snapshot",
    "event_time",
    "actor",
    "note",
];

/// A row selected with a known column list.
struct Columns<'a, 'r> {
    row: &'a rusqlite::Row<'r>,
    names: &'static [&'static str],
}

impl Columns<'_, '_> {
    /// One column, decode failures reported as corruption of that column.
    fn get<T: FromSql>(&self, column: &str) -> Result<T, StoreError> {
        let index = self
            .names
            .iter()
            .position(|name| *name == column)
            .ok_or_else(|| StoreError::Corrupt(format!("{column}: not selected")))?;
        self.row
            .get(index)
            .map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
    }
    fn text(&self, column: &str) -> Result<String, StoreError> {
        self.get(column)
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        self.get(column)
    }
    fn int(&self, column: &str) -> Result<i64, StoreError> {
        self.get(column)
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        self.get(column)
    }
}

/// A `refunds` row selected with [`REFUND_COLUMNS`].
pub(super) fn refund_from_row(row: &rusqlite::Row<'_>) -> Result<Refund, StoreError> {
    let row = Columns {
        row,
        names: &REFUND_FIELDS,
    };
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
        sent_at: row
            .opt_int("sent_at")?
            .map(|us| time_from_micros("sent_at", us))
            .transpose()?,
        created_by: row.opt_text("created_by")?.map(Actor::from_stored),
    })
}

/// A `refund_events` row selected with [`EVENT_COLUMNS`].
pub(super) fn event_from_row(row: &rusqlite::Row<'_>) -> Result<RefundEvent, StoreError> {
    let row = Columns {
        row,
        names: &EVENT_FIELDS,
    };
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
        cause: Cause::new(Actor::from_stored(row.text("actor")?), row.text("note")?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(list: &str) -> Vec<&str> {
        list.split(',').map(str::trim).collect()
    }

    #[test]
    fn positions_follow_the_column_lists() {
        assert_eq!(split(REFUND_COLUMNS), REFUND_FIELDS);
        assert_eq!(split(EVENT_COLUMNS), EVENT_FIELDS);
    }
}
