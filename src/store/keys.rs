//! What a stored idempotency key means for a new claim of it: the same states and answers for
//! every backend. The backends read the key (each with its own locking) and write what the
//! decision asks for.

use super::codec::{api_error, refund_id};
use super::{RequestClaim, RequestKey, RequestResult, StoreError};
use crate::domain::RefundId;

/// An idempotency key as stored.
#[derive(Debug)]
pub(crate) struct StoredKey {
    pub fingerprint: String,
    pub refund_id: Option<String>,
    pub error: Option<String>,
    pub completed: bool,
    /// Unix microseconds until which its owner holds it.
    pub locked_until: i64,
}

/// What a claim of an existing key does.
#[derive(Debug)]
pub(crate) enum KeyDecision {
    /// Answer with this; nothing is written.
    Answer(RequestClaim),
    /// The owner recorded this refund and stopped before completing: mark the key completed;
    /// the refund is the answer (the worker follows it up).
    Complete(RefundId),
    /// The owner stopped before recording anything: the caller takes the key over with a new
    /// lease, and owns it.
    TakeOver,
}

impl StoredKey {
    /// The decision on a claim of `key` with `fingerprint` at `now` (unix microseconds).
    pub(crate) fn decide(
        self,
        key: &RequestKey,
        fingerprint: &str,
        now: i64,
    ) -> Result<KeyDecision, StoreError> {
        if self.fingerprint != fingerprint {
            return Ok(KeyDecision::Answer(RequestClaim::Mismatch));
        }
        let refund_id = self
            .refund_id
            .map(|id| refund_id("idempotency_keys.refund_id", &id))
            .transpose()?;
        let expired = self.locked_until <= now;
        Ok(match (self.completed, refund_id, self.error) {
            (true, _, Some(error)) => {
                KeyDecision::Answer(RequestClaim::Done(RequestResult::Error(api_error(&error)?)))
            }
            (true, Some(id), None) => {
                KeyDecision::Answer(RequestClaim::Done(RequestResult::Refund(id)))
            }
            (true, None, None) => {
                return Err(StoreError::Corrupt(format!(
                    "idempotency key {} is completed with neither a refund nor an error",
                    key.request_id
                )));
            }
            (false, Some(id), _) if expired => KeyDecision::Complete(id),
            (false, None, _) if expired => KeyDecision::TakeOver,
            (false, _, _) => KeyDecision::Answer(RequestClaim::InFlight),
        })
    }
}
