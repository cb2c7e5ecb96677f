//! Recognising a refund whose submission answer was lost, when the provider names it.
//!
//! D24 knows a refund only by its own id, which the gateway learns from the answer to its
//! submission. When that answer is lost (timeout, dropped connection, 5xx, unreadable body)
//! the refund may or may not exist at D24. Sending it again under the same
//! `X-Idempotency-Key` is harmless: if the first attempt never landed, D24 creates the refund
//! and answers with its id; if it did land, D24 answers 104 and still does not say the id.
//! What D24 does say is a notification `{"refund_id": N}` for every status change of N (its
//! creation included) to the `notification_url` the submission carried.
//!
//! So when a notification names an id the gateway does not know, it reads N back (deposit,
//! amount, status) and looks for the refund N can be: one of the same provider account and
//! payment, for exactly that amount, that has no provider id and whose submission is still in
//! doubt (PENDING, or REQUIRES_REVIEW after its outcome stayed unknown). Exactly one: it is
//! N, and its id and status are recorded (compare-and-set, only while it is still in doubt).
//! None, or several (two refunds of the same amount in doubt at once): nothing is guessed; the
//! notification is logged and answered 200, and the worker's checks end the refund in
//! REQUIRES_REVIEW as for any outcome that cannot be established. A later notification of N
//! (a status change, or a resend from D24's Merchant Panel) tries again, also from
//! REQUIRES_REVIEW.
//!
//! Limits, stated: a refund made outside the gateway (D24's panel) for the same deposit and
//! amount while one of the gateway's is in doubt would be taken for it; and a notification
//! without an amount (D24 omits it while PENDING) cannot be matched.

use super::{Refunds, WebhookFailure, create::CAS_RETRIES};
use crate::{
    domain::{Money, Refund, RefundStatus, Submission},
    providers::{ProviderAccount, ProviderRefundRecord},
};

/// Whether a refund may be the provider refund a notification names: its submission's
/// outcome is unknown and no provider id is known.
fn in_doubt(refund: &Refund) -> bool {
    matches!(
        refund.status,
        RefundStatus::Pending | RefundStatus::RequiresReview
    ) && refund.submission.is_uncertain()
        && refund.provider_refund_id.is_none()
}

/// Whether a provider amount (major units, in the payment's currency) is exactly `money`.
fn same_amount(record: &ProviderRefundRecord, money: Money) -> bool {
    record
        .amount
        .is_some_and(|amount| Money::from_major(amount, money.currency).is_ok_and(|m| m == money))
}

impl Refunds {
    /// A notification of `account` names `provider_refund_id`, which no refund carries.
    /// Returns the refund it was linked to, or `None` (logged) when it cannot be. Fails only
    /// when the provider or the store cannot be asked now, so the notification should come
    /// again.
    pub(super) async fn link_unknown(
        &self,
        account: &ProviderAccount,
        provider_refund_id: &str,
    ) -> Result<Option<Refund>, WebhookFailure> {
        let provider = account.name.as_str();
        let record = match account.refund_by_provider_id(provider_refund_id).await {
            Ok(Some(record)) => record,
            Ok(None) => {
                tracing::warn!(
                    provider,
                    provider_refund_id,
                    "webhook names a refund the provider does not hold; ignored"
                );
                return Ok(None);
            }
            Err(crate::providers::ProviderError::Unreachable(why)) => {
                return Err(WebhookFailure::Retry(why));
            }
            Err(err) => {
                tracing::warn!(provider, provider_refund_id, error = %err, "webhook names an unknown refund that could not be read; ignored");
                return Ok(None);
            }
        };
        let refunds = self
            .inner
            .store
            .refunds_of_payment(provider, &record.payment_id)
            .await
            .map_err(|e| WebhookFailure::Retry(e.to_string()))?;
        let candidates: Vec<&Refund> = refunds
            .iter()
            .filter(|r| in_doubt(r) && same_amount(&record, r.amount))
            .collect();
        let [candidate] = candidates.as_slice() else {
            tracing::warn!(
                provider,
                provider_refund_id,
                payment_id = %record.payment_id,
                amount = ?record.amount,
                candidates = candidates.len(),
                "webhook names a refund the gateway has no id for, and no single refund in doubt matches it; ignored"
            );
            return Ok(None);
        };
        self.link(&candidate.id, provider_refund_id, &record)
            .await
            .map_err(|e| WebhookFailure::Retry(e.message))
    }

    /// Records `record` (the provider refund `provider_refund_id`) on refund `id`, if it is
    /// still in doubt.
    async fn link(
        &self,
        id: &crate::domain::RefundId,
        provider_refund_id: &str,
        record: &ProviderRefundRecord,
    ) -> Result<Option<Refund>, crate::domain::ApiError> {
        for _ in 0..CAS_RETRIES {
            let current = self.reload(id).await?;
            if current.provider_refund_id.as_deref() == Some(provider_refund_id) {
                // Linked meanwhile (a repeat of the notification): just record the status.
                return self
                    .record_observation(id, &record.observation, "webhook")
                    .await
                    .map(Some);
            }
            if !in_doubt(&current) {
                tracing::info!(refund_id = %id, provider_refund_id, "refund learnt its outcome meanwhile; not linked");
                return Ok(None);
            }
            let now = Self::now();
            let mut next = match self.apply_observation(&current, &record.observation, now, "link")
            {
                Ok(next) => next,
                Err(illegal) => {
                    self.refuse_transition(&current, illegal.to, "link");
                    return Ok(None);
                }
            };
            next.provider_refund_id = Some(provider_refund_id.to_owned());
            next.submission = Submission::Accepted;
            self.schedule(&mut next, true, now);
            if let Some(saved) = self.save(&current, &next).await? {
                tracing::info!(
                    refund_id = %id,
                    provider = %saved.provider,
                    provider_refund_id,
                    status = %saved.status,
                    "a refund whose submission outcome was unknown was recognised from the provider's notification"
                );
                metrics::counter!("refund_gateway_refunds_linked_total", "provider" => saved.provider.clone())
                    .increment(1);
                return Ok(Some(saved));
            }
        }
        Err(super::follow::busy())
    }
}

#[cfg(test)]
mod tests {

    use chrono::Utc;
    use rust_decimal::Decimal;

    use super::*;
    use crate::domain::{Currency, Observation, PaymentRef, TenantId};

    fn refund(status: RefundStatus, submission: Submission, id: Option<&str>) -> Refund {
        let now = Utc::now();
        Refund {
            status,
            provider_refund_id: id.map(str::to_owned),
            submission,
            ..Refund::new_pending(
                TenantId::new("t"),
                "r",
                "d24",
                PaymentRef::default(),
                Money::new(50595, Currency::parse("MXN").unwrap()),
                now,
            )
        }
    }

    /// Only a refund with an uncertain submission, no provider id, and PENDING or
    /// REQUIRES_REVIEW can be a lost submission.
    #[test]
    fn what_is_in_doubt() {
        use RefundStatus::*;
        use Submission::*;
        assert!(in_doubt(&refund(Pending, Sending, None)));
        assert!(in_doubt(&refund(Pending, Unknown, None)));
        assert!(in_doubt(&refund(RequiresReview, Unknown, None)));
        assert!(!in_doubt(&refund(Pending, Unknown, Some("1"))));
        assert!(!in_doubt(&refund(Processing, Accepted, None)));
        assert!(!in_doubt(&refund(Failed, NotSent, None)));
        assert!(!in_doubt(&refund(Failed, Rejected, None)));
        assert!(!in_doubt(&refund(RequiresReview, Accepted, None)));
        assert!(!in_doubt(&refund(Succeeded, Unknown, None)));
    }

    /// Amounts match exactly, in the refund's currency; a missing amount never matches.
    #[test]
    fn amounts_match_exactly() {
        let money = Money::new(50595, Currency::parse("MXN").unwrap());
        let record = |amount: Option<&str>| ProviderRefundRecord {
            payment_id: "1".into(),
            amount: amount.map(|a| a.parse::<Decimal>().unwrap()),
            observation: Observation {
                status: RefundStatus::Succeeded,
                provider_refund_id: Some("1".into()),
                provider_status: None,
                failure: None,
                amount: None,
                payment_id: None,
            },
        };
        assert!(same_amount(&record(Some("505.95")), money));
        assert!(same_amount(&record(Some("505.950")), money));
        assert!(!same_amount(&record(Some("505.96")), money));
        assert!(!same_amount(&record(Some("505.955")), money));
        assert!(!same_amount(&record(None), money));
    }
}
