//! CreateRefund, stage 5: record how the submission ended and settle the request key.
//!
//! The four-way outcome: accepted -> its status; rejected -> FAILED and the provider's error,
//! except a "not now" (UNAVAILABLE: rate limited) -> CANCELED and UNAVAILABLE with the delay;
//! not sent -> CANCELED and UNAVAILABLE; unknown -> stays PENDING, returned as such, reconciled
//! later. The key is settled in the same transaction that records the outcome when it can be
//! (with the refund, or with the error when the outcome is one for its caller); otherwise
//! here, afterwards.
//!
//! Once the refund is recorded and was sent, the caller gets the refund: when recording the
//! outcome fails (the store is unavailable, the refund kept changing), the provider may hold
//! it, so the caller gets it as last known (PENDING, followed up by the worker) rather than
//! an error that would invite a retry under a new `request_id`.

use super::{Refunds, submit::Submitted, validate::Request, writer};
use crate::{
    domain::{ApiError, Refund},
    store::RequestResult,
};

/// What the caller of `request` gets, given how the reservation and submission went
/// (`Err`: the reservation failed, nothing was recorded).
pub(super) async fn record(
    refunds: &Refunds,
    request: &Request,
    sent: Result<Submitted, ApiError>,
) -> Result<Refund, ApiError> {
    let key = &request.key;
    let (result, recorded, settled) = match sent {
        Ok(Submitted { refund, outcome }) => {
            let change = writer::Change::Submitted {
                provider: &request.account.name,
                outcome: &outcome,
                key: Some(key),
            };
            let known = Box::new(refund.clone());
            match writer::write(refunds, writer::Start::Known(known), change, &request.actor).await
            {
                Ok(written) => {
                    let result = written
                        .reply
                        .map_or_else(|| Ok(written.refund.public_view()), Err);
                    (result, true, written.settled)
                }
                Err(err) => {
                    tracing::warn!(refund_id = %refund.id, provider = %request.account.name, error = %err.message, "could not record the submission's outcome; answering the refund as last known, the worker follows it up");
                    (Ok(last_known(refunds, refund).await), true, false)
                }
            }
        }
        Err(err) => (Err(err), false, false),
    };
    if settled {
        return result;
    }
    let store = &refunds.inner.store;
    let settling = match &result {
        Ok(refund) => {
            store
                .complete_request(key, &RequestResult::Refund(refund.id.clone()))
                .await
        }
        // Nothing was recorded and a repeat may fare better: forget the attempt.
        Err(err) if !recorded && err.is_transient() => store.release_request(key).await,
        Err(err) => {
            store
                .complete_request(key, &RequestResult::Error(err.clone()))
                .await
        }
    };
    if let Err(err) = settling {
        // The claim's lease runs out and the next repeat settles it from what is stored.
        tracing::warn!(request_id = %key.request_id, error = %err, "could not settle the request key");
    }
    result
}

/// A refund recorded as REQUIRES_APPROVAL: nothing was sent, so there is no outcome to
/// record; its request is settled with the refund, and repeats return it as it is then.
pub(super) async fn waiting(
    refunds: &Refunds,
    request: &Request,
    reserved: super::reserve::Reserved,
) -> Result<Refund, ApiError> {
    let super::reserve::Reserved(refund) = reserved;
    tracing::info!(refund_id = %refund.id, provider = %refund.provider, amount = %refund.amount, "refund waits for approval");
    let settled = refunds
        .inner
        .store
        .complete_request(&request.key, &RequestResult::Refund(refund.id.clone()))
        .await;
    if let Err(err) = settled {
        // The claim's lease runs out and the next repeat settles it from what is stored.
        tracing::warn!(request_id = %request.key.request_id, error = %err, "could not settle the request key");
    }
    Ok(refund.into_public_view())
}

/// `refund` as stored now if the store answers, else as this call last knew it.
async fn last_known(refunds: &Refunds, refund: Refund) -> Refund {
    match refunds.inner.store.get_refund(&refund.id).await {
        Ok(Some(stored)) => stored.into_public_view(),
        _ => refund.into_public_view(),
    }
}
