//! The checks and the over-refund arithmetic every backend applies the same way inside its
//! write transactions; only the SQL around them differs per backend.

use super::codec::truncated;
use super::{InsertOutcome, RequestKey, StoreError};
use crate::domain::{Cause, Currency, Money, Refund, RefundEvent, RefundStatus};

/// A call refused because the caller broke the method's precondition (a bug: `Other`).
pub(crate) fn misuse(what: &str) -> StoreError {
    StoreError::Other(what.to_owned().into())
}

/// `refund` as `insert_refund` stores it (times truncated), once it matches its request key
/// and asks for a positive amount.
pub(crate) fn checked_new(refund: &Refund, key: &RequestKey) -> Result<Refund, StoreError> {
    if refund.tenant != key.tenant || refund.request_id != key.request_id {
        return Err(misuse(
            "insert_refund: the refund does not match its request key",
        ));
    }
    if refund.amount.minor <= 0 {
        return Err(misuse("insert_refund: a refund amount must be above zero"));
    }
    Ok(truncated(refund))
}

/// `next` as `update_refund` stores it (times truncated), once it is the same refund as
/// `prev` and the status machine allows the move.
pub(crate) fn checked_change(prev: &Refund, next: &Refund) -> Result<Refund, StoreError> {
    if next.id != prev.id {
        return Err(misuse("update_refund: prev and next are different refunds"));
    }
    // The status machine is checked here too: a FAILED or CANCELED refund has released
    // its amount to other refunds, so it must never hold money again.
    prev.status
        .check(next.status)
        .map_err(|e| StoreError::Other(Box::new(e)))?;
    Ok(truncated(next))
}

/// From the sums of a payment's refunds holding money, by currency code: the sum in
/// `currency`, and whether money is held in any other currency.
pub(crate) fn held_in(held: Vec<(String, i64)>, currency: Currency) -> (i64, bool) {
    let mut same = 0_i64;
    let mut foreign = false;
    for (code, sum) in held {
        if code == currency.code() {
            same = sum;
        } else if sum != 0 {
            foreign = true;
        }
    }
    (same, foreign)
}

/// `ExceedsPayment` when `refund` does not fit within `limit` beside `same` already held
/// (`foreign`: money is also held in another currency), `None` when it fits.
pub(crate) fn refused(
    refund: &Refund,
    limit: Money,
    same: i64,
    foreign: bool,
) -> Option<InsertOutcome> {
    if foreign {
        // Money held in another currency cannot be added to this limit: count the payment
        // as fully held rather than guess.
        let held = Money::new(same.max(limit.minor), limit.currency);
        return Some(InsertOutcome::ExceedsPayment { held });
    }
    let fits = refund.amount.currency == limit.currency
        && same
            .checked_add(refund.amount.minor)
            .is_some_and(|total| total <= limit.minor);
    (!fits).then(|| InsertOutcome::ExceedsPayment {
        held: Money::new(same, limit.currency),
    })
}

/// A sequence the database handed out, as the domain counts them (never negative).
pub(crate) fn sequence(sequence: i64) -> Result<u64, StoreError> {
    u64::try_from(sequence)
        .map_err(|_| StoreError::Corrupt(format!("sequence {sequence} is negative")))
}

/// The event a backend's `insert_event` wrote: `snapshot` with the `sequence` it was given.
pub(crate) fn written_event(
    sequence_written: i64,
    snapshot: Refund,
    previous_status: Option<RefundStatus>,
    event_time: chrono::DateTime<chrono::Utc>,
    cause: &Cause,
) -> Result<RefundEvent, StoreError> {
    Ok(RefundEvent {
        sequence: sequence(sequence_written)?,
        refund: snapshot,
        previous_status,
        event_time,
        cause: cause.clone(),
    })
}
