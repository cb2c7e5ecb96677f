//! CreateRefund, stage 2: claim the request key (idempotency).
//!
//! A repeat with the same parameters gets the first call's result, waiting for it while it is
//! in flight; different parameters get ALREADY_EXISTS.

use std::time::{Duration, Instant};

use super::{ATTEMPT_MARGIN, Refunds, fingerprint, validate::Request};
use crate::{
    domain::{ApiError, ErrorCode, Refund, reason},
    store::{RequestClaim, RequestResult},
};

/// How a claim ended.
#[derive(Debug)]
pub(super) enum Claimed {
    /// This call owns the request now and carries it on.
    Owned(Request),
    /// The result to return: a replay, a mismatch, or a wait that ran out.
    Answered(Result<Refund, ApiError>),
}

/// Claims `request`'s key.
pub(super) async fn claim(refunds: &Refunds, request: Request) -> Result<Claimed, ApiError> {
    let key = &request.key;
    let fingerprint = fingerprint::of(&request.draft);
    // The owner's lease outlives any attempt it can make: a payment lookup and a submission,
    // each bounded by the provider timeout.
    let lease = request.account.timeout * 2 + ATTEMPT_MARGIN;
    let deadline = Instant::now() + lease + ATTEMPT_MARGIN;
    let mut pause = Duration::from_millis(5);
    loop {
        let claim = refunds
            .inner
            .store
            .claim_request(key, &fingerprint, Refunds::now(), lease)
            .await?;
        let answer = match claim {
            RequestClaim::Owned => return Ok(Claimed::Owned(request)),
            RequestClaim::Mismatch => Err(ApiError::new(
                ErrorCode::AlreadyExists,
                reason::REQUEST_ID_REUSED,
                format!(
                    "request_id {:?} was already used with different parameters",
                    key.request_id
                ),
            )
            .with("requestId", key.request_id.clone())),
            RequestClaim::Done(RequestResult::Error(err)) => Err(err),
            RequestClaim::Done(RequestResult::Refund(id)) => {
                let refund = refunds.inner.store.get_refund(&id).await?.ok_or_else(|| {
                    ApiError::internal(format!("request key points at missing refund {id}"))
                })?;
                Ok(refund.public_view())
            }
            RequestClaim::InFlight if Instant::now() >= deadline => Err(ApiError::new(
                ErrorCode::Aborted,
                reason::REQUEST_IN_PROGRESS,
                "a call with this request_id is still in progress; repeat it shortly",
            )
            .with("requestId", key.request_id.clone())),
            RequestClaim::InFlight => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
                continue;
            }
        };
        return Ok(Claimed::Answered(answer));
    }
}
