//! CreateRefund: idempotency, pre-checks, the atomic reservation, submission, and the
//! four-way outcome.
//!
//! Order of work, and why:
//! 1. Validate, and check the caller may use the provider account (no I/O).
//! 2. Claim the request id. A repeat with the same parameters gets the first call's result,
//!    waiting for it while it is in flight; different parameters get ALREADY_EXISTS.
//! 3. Look the payment up (a read with no side effect) and check what is left to refund.
//! 4. Insert the refund as PENDING with its creation event, reserving its amount against the
//!    payment atomically. From here the refund exists whatever happens next: if the process
//!    dies, the worker finds it (its first check is already scheduled) and reconciles it.
//! 5. Submit to the provider (no transaction is open), then record the outcome:
//!    accepted -> its status; rejected -> FAILED and the provider's error, except a "not now"
//!    (UNAVAILABLE: rate limited) -> CANCELED and UNAVAILABLE with the delay; not sent ->
//!    CANCELED and UNAVAILABLE; unknown -> stays PENDING, returned as such, reconciled later.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::DateTime;

use super::{Refunds, fingerprint};
use crate::{
    auth::Caller,
    domain::{
        ApiError, ErrorCode, Money, PaymentStatus, Refund, RefundFailure, RefundStatus, Submission,
        reason,
    },
    metrics,
    providers::{ProviderAccount, ProviderPayment, RefundDraft, SubmitOutcome},
    store::{InsertOutcome, RequestClaim, RequestKey, RequestResult},
};

/// Extra time on top of a provider's timeout for leases and the first safety-net check.
pub(super) const ATTEMPT_MARGIN: Duration = Duration::from_secs(5);

/// When an attempt that started at `started` is surely over at the provider as well: twice
/// the timeout (our side gave up after one), and at least a second.
pub(super) fn attempt_over_at(
    account: &ProviderAccount,
    started: DateTime<chrono::Utc>,
) -> DateTime<chrono::Utc> {
    started + (account.timeout * 2).max(Duration::from_secs(1))
}

/// How many times a write is retried when someone else changed the refund first.
pub(super) const CAS_RETRIES: usize = 8;

impl Refunds {
    /// Records a refund durably, then submits it. See the module documentation.
    pub async fn create_refund(
        &self,
        caller: &Caller,
        draft: RefundDraft,
    ) -> Result<Refund, ApiError> {
        let account = self.account(caller, &draft.provider, "provider")?;
        let violations = account.provider.validate(&draft);
        if !violations.is_empty() {
            return Err(ApiError::invalid(violations));
        }
        let key = RequestKey {
            tenant: caller.tenant.clone(),
            request_id: draft.request_id.clone(),
        };
        if let Some(done) = self.claim(&account, &key, &fingerprint::of(&draft)).await? {
            return done;
        }
        // This call owns the request now. Finish it in a task of its own, so a caller that
        // goes away (and drops this future) cannot leave a refund half recorded.
        let this = self.clone();
        let clock = metrics::provider_clock();
        let owned = async move { this.create_owned(account, draft, key).await };
        tokio::spawn(metrics::with_provider_clock(clock, owned))
            .await
            .unwrap_or_else(|join_error| Err(ApiError::internal(join_error)))
    }

    /// Claims the request key. `None`: this call owns it. `Some(result)`: the result to
    /// return (a replay, a mismatch, or a wait that ran out).
    async fn claim(
        &self,
        account: &ProviderAccount,
        key: &RequestKey,
        fingerprint: &str,
    ) -> Result<Option<Result<Refund, ApiError>>, ApiError> {
        // The owner's lease outlives any attempt it can make: a payment lookup and a
        // submission, each bounded by the provider timeout.
        let lease = account.timeout * 2 + ATTEMPT_MARGIN;
        let deadline = Instant::now() + lease + ATTEMPT_MARGIN;
        let mut pause = Duration::from_millis(5);
        loop {
            let claim = self
                .inner
                .store
                .claim_request(key, fingerprint, Self::now(), lease)
                .await?;
            match claim {
                RequestClaim::Owned => return Ok(None),
                RequestClaim::Mismatch => {
                    return Ok(Some(Err(ApiError::new(
                        ErrorCode::AlreadyExists,
                        reason::REQUEST_ID_REUSED,
                        format!(
                            "request_id {:?} was already used with different parameters",
                            key.request_id
                        ),
                    )
                    .with("requestId", key.request_id.clone()))));
                }
                RequestClaim::Done(RequestResult::Error(err)) => return Ok(Some(Err(err))),
                RequestClaim::Done(RequestResult::Refund(id)) => {
                    let refund = self.inner.store.get_refund(&id).await?.ok_or_else(|| {
                        ApiError::internal(format!("request key points at missing refund {id}"))
                    })?;
                    return Ok(Some(Ok(refund.public_view())));
                }
                RequestClaim::InFlight => {
                    if Instant::now() >= deadline {
                        return Ok(Some(Err(ApiError::new(
                            ErrorCode::Aborted,
                            reason::REQUEST_IN_PROGRESS,
                            "a call with this request_id is still in progress; repeat it shortly",
                        )
                        .with("requestId", key.request_id.clone()))));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
            }
        }
    }

    async fn create_owned(
        &self,
        account: Arc<ProviderAccount>,
        draft: RefundDraft,
        key: RequestKey,
    ) -> Result<Refund, ApiError> {
        let (result, recorded, settled) = match self.reserve(&account, &draft, &key).await {
            Ok(refund) => {
                let (result, settled) = self.submit_new(&account, refund, &key).await;
                (result, true, settled)
            }
            Err(err) => (Err(err), false, false),
        };
        if settled {
            return result;
        }
        let store = &self.inner.store;
        let settling = match &result {
            Ok(refund) => {
                store
                    .complete_request(&key, &RequestResult::Refund(refund.id.clone()))
                    .await
            }
            // Nothing was recorded and a repeat may fare better: forget the attempt.
            Err(err) if !recorded && err.is_transient() => store.release_request(&key).await,
            Err(err) => {
                store
                    .complete_request(&key, &RequestResult::Error(err.clone()))
                    .await
            }
        };
        if let Err(err) = settling {
            // The claim's lease runs out and the next repeat settles it from what is stored.
            tracing::warn!(request_id = %key.request_id, error = %err, "could not settle the request key");
        }
        result
    }

    /// Steps 3 and 4: look the payment up, check the amount, insert the refund.
    async fn reserve(
        &self,
        account: &ProviderAccount,
        draft: &RefundDraft,
        key: &RequestKey,
    ) -> Result<Refund, ApiError> {
        let payment = account
            .get_payment(&draft.payment)
            .await
            .map_err(|e| e.to_api_error(&account.name))?;
        let amount = self.amount_to_refund(account, draft, &payment).await?;
        let now = Self::now();
        let refund = Refund {
            reason: draft.reason,
            description: draft.description.clone(),
            metadata: draft.metadata.clone(),
            bank_account: draft.bank_account.clone(),
            // The safety net: if this process stops before recording the outcome, the worker
            // asks the provider once the attempt is surely over.
            next_check_at: Some(now + account.timeout + ATTEMPT_MARGIN),
            ..Refund::new_pending(
                draft.tenant.clone(),
                draft.request_id.clone(),
                account.name.clone(),
                draft.payment.clone(),
                amount,
                now,
            )
        };
        match self
            .inner
            .store
            .insert_refund(&refund, key, payment.amount)
            .await?
        {
            InsertOutcome::Inserted(event) => {
                tracing::info!(refund_id = %refund.id, provider = %account.name, request_id = %refund.request_id, amount = %refund.amount, "refund recorded");
                self.inner.views.put(&refund);
                self.inner.bus.publish(event);
                Ok(refund)
            }
            InsertOutcome::ExceedsPayment { held } => {
                let left = payment
                    .amount
                    .saturating_sub(held)
                    .unwrap_or(payment.amount);
                Err(exceeds(&account.name, amount, left))
            }
        }
    }

    /// The amount this refund will be for, after the checks every provider shares and the
    /// provider's own.
    async fn amount_to_refund(
        &self,
        account: &ProviderAccount,
        draft: &RefundDraft,
        payment: &ProviderPayment,
    ) -> Result<Money, ApiError> {
        if !matches!(
            payment.status,
            PaymentStatus::Captured | PaymentStatus::PartiallyRefunded
        ) {
            return Err(ApiError::failed_precondition(
                reason::PAYMENT_NOT_REFUNDABLE,
                format!(
                    "payment {} is {} at {}; only captured payments can be refunded",
                    draft.payment.payment_id, payment.provider_status, account.name
                ),
            )
            .with("provider", account.name.clone())
            .with("paymentId", draft.payment.payment_id.clone())
            .with("paymentStatus", payment.provider_status.clone()));
        }
        if let Some(asked) = draft.amount
            && asked.currency != payment.amount.currency
        {
            return Err(ApiError::invalid_field(
                reason::CURRENCY_MISMATCH,
                "amount.currency_code",
                format!(
                    "the payment is in {}, not {}",
                    payment.amount.currency, asked.currency
                ),
            )
            .with("provider", account.name.clone()));
        }
        let (_, left) = self
            .refunded_and_left(account, &draft.payment, payment)
            .await?;
        if left.minor == 0 {
            return Err(ApiError::failed_precondition(
                reason::NOTHING_LEFT_TO_REFUND,
                format!(
                    "payment {} has nothing left to refund",
                    draft.payment.payment_id
                ),
            )
            .with("provider", account.name.clone())
            .with("paymentId", draft.payment.payment_id.clone()));
        }
        let amount = draft.amount.unwrap_or(left);
        if amount.minor > left.minor {
            return Err(exceeds(&account.name, amount, left));
        }
        account.provider.check_refund(draft, payment, amount)?;
        Ok(amount)
    }

    /// Step 5 for a refund just inserted.
    async fn submit_new(
        &self,
        account: &ProviderAccount,
        refund: Refund,
        key: &RequestKey,
    ) -> (Result<Refund, ApiError>, bool) {
        let outcome = account.submit_refund(&refund).await;
        self.record_submission(account, refund, &outcome, Some(key))
            .await
    }

    /// Records how a submission ended and returns what the caller gets, and whether `key`
    /// was settled with it. Retries when someone else (the worker, a webhook) changed the
    /// refund in the meantime. `refund`: the refund as the caller last knew it (re-read only
    /// after a conflict).
    ///
    /// `key`: the request that made this submission. It is settled in the same transaction
    /// that records the outcome: with the refund, or with the error when the outcome is one
    /// for its caller (refused, not sent: the refund is then FAILED or CANCELED).
    pub(super) async fn record_submission(
        &self,
        account: &ProviderAccount,
        refund: Refund,
        outcome: &SubmitOutcome,
        key: Option<&RequestKey>,
    ) -> (Result<Refund, ApiError>, bool) {
        let mut current = refund;
        for attempt in 0..CAS_RETRIES {
            if attempt > 0 {
                current = match self.inner.store.get_refund(&current.id).await {
                    Ok(Some(r)) => r,
                    Ok(None) => {
                        return (
                            Err(ApiError::internal(format!(
                                "refund {} vanished",
                                current.id
                            ))),
                            false,
                        );
                    }
                    Err(err) => return (Err(err.into()), false),
                };
            }
            let now = Self::now();
            let (next, reply) = self.after_submission(account, &current, outcome, now);
            let settles = match (&reply, key) {
                (Some(err), Some(key)) if next.status != current.status => {
                    Some((key, RequestResult::Error(err.clone())))
                }
                (None, Some(key)) => Some((key, RequestResult::Refund(current.id.clone()))),
                _ => None,
            };
            if next == current {
                return (reply.map_or_else(|| Ok(current.public_view()), Err), false);
            }
            match self
                .save_settling(&current, &next, settles.as_ref().map(|(k, r)| (*k, r)))
                .await
            {
                Ok(Some(saved)) => {
                    let settled = settles.is_some();
                    return (reply.map_or_else(|| Ok(saved.public_view()), Err), settled);
                }
                Ok(None) => continue,
                Err(err) => return (Err(err), false),
            }
        }
        (
            Err(ApiError::new(
                ErrorCode::Aborted,
                reason::INTERNAL,
                "the refund kept changing while its outcome was recorded; read it with GetRefund",
            )),
            false,
        )
    }

    /// The refund after a submission outcome, and the error to return instead of it (if any).
    fn after_submission(
        &self,
        account: &ProviderAccount,
        current: &Refund,
        outcome: &SubmitOutcome,
        now: DateTime<chrono::Utc>,
    ) -> (Refund, Option<ApiError>) {
        // Only a refund still waiting for its submission's outcome takes it; anything else
        // means the worker or a webhook already learned more.
        let waiting = current.status == RefundStatus::Pending && current.submission.is_uncertain();
        let mut next = current.clone();
        match outcome {
            SubmitOutcome::Accepted(obs) => {
                match self.apply_observation(current, obs, now, "submission") {
                    Ok(observed) => next = observed,
                    Err(illegal) => self.refuse_transition(current, illegal.to, "submission"),
                }
                next.submission = Submission::Accepted;
                self.schedule(&mut next, true, now);
                (next, None)
            }
            // "Not now" (rate limited): the provider created nothing, and the refund did not
            // fail. The gateway withdraws it (CANCELED: final, nothing refunded, its amount
            // released) and the caller gets UNAVAILABLE with the delay to wait. The refund
            // is not sent later behind the caller's back: an error means no refund.
            SubmitOutcome::Rejected(rejection)
                if waiting && rejection.code == ErrorCode::Unavailable =>
            {
                next.status = RefundStatus::Canceled;
                next.failure = Some(RefundFailure {
                    message: format!(
                        "{}; the gateway withdrew the refund, nothing was refunded",
                        rejection.message
                    ),
                    ..rejection.to_failure()
                });
                next.submission = Submission::Rejected;
                next.updated_at = now;
                self.schedule(&mut next, true, now);
                let mut err = rejection
                    .to_api_error(&account.name)
                    .with("refundId", current.id.as_str());
                err.message = format!(
                    "{}; nothing was refunded. Retry after the delay with a new request_id",
                    rejection.message
                );
                (next, Some(err))
            }
            SubmitOutcome::Rejected(rejection) if waiting => {
                next.status = RefundStatus::Failed;
                next.failure = Some(rejection.to_failure());
                next.submission = Submission::Rejected;
                next.updated_at = now;
                self.schedule(&mut next, true, now);
                (next, Some(rejection.to_api_error(&account.name)))
            }
            // Never reached the provider: nothing can exist there. As for "not now", the gateway
            // withdraws the refund (CANCELED) rather than sending it later behind the caller's
            // back, and the caller gets UNAVAILABLE.
            SubmitOutcome::NotSent(why) if waiting => {
                next.status = RefundStatus::Canceled;
                next.failure = Some(RefundFailure::new(
                    reason::PROVIDER_UNAVAILABLE,
                    format!(
                        "not sent: the provider could not be reached ({why}); the gateway withdrew the refund, nothing was refunded"
                    ),
                ));
                next.submission = Submission::NotSent;
                next.updated_at = now;
                self.schedule(&mut next, true, now);
                let err = ApiError::unavailable(
                    reason::PROVIDER_UNAVAILABLE,
                    format!(
                        "provider {} could not be reached; nothing was refunded. Retry with a new request_id",
                        account.name
                    ),
                )
                .with("provider", account.name.clone())
                .with("refundId", current.id.as_str());
                (next, Some(err))
            }
            SubmitOutcome::Unknown(_) if waiting => {
                next.submission = Submission::Unknown;
                next.next_check_at = Some(now + self.inner.settings.first_check);
                next.check_attempts = 0;
                self.inner.wake_worker.notify_one();
                (next, None)
            }
            // Rejected, not sent or unknown, but the refund already moved on: keep it.
            _ => (next, None),
        }
    }
}

fn exceeds(provider: &str, asked: Money, left: Money) -> ApiError {
    ApiError::failed_precondition(
        reason::AMOUNT_EXCEEDS_REFUNDABLE,
        format!("{asked} is more than the {left} left to refund"),
    )
    .with("provider", provider)
    .with("refundableMinorUnits", left.minor.to_string())
    .with("currencyCode", left.currency.code())
}
