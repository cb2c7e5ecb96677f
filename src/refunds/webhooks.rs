//! Webhook deliveries: verify and parse them with the account's provider, find the refunds
//! they name, and have the writer record what they say.
//!
//! Linking, when a notification names a provider id no refund carries:
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

use super::{
    Refunds,
    writer::{self, Change, Start, in_doubt},
};
use crate::{
    domain::{Money, Refund, RefundId},
    providers::{
        ProviderAccount, ProviderError, ProviderKind, ProviderRefundRecord, RefundLookup,
        WebhookError, WebhookNotice,
    },
};

/// Why a webhook delivery was not taken.
#[derive(Debug, thiserror::Error)]
pub enum WebhookFailure {
    #[error("no provider account of this kind with this name")]
    UnknownAccount,
    #[error(transparent)]
    Refused(WebhookError),
    /// Valid, but it could not be processed now; the provider should deliver it again.
    #[error("try again later: {0}")]
    Retry(String),
}

/// Whether a provider amount (major units, in the payment's currency) is exactly `money`.
fn same_amount(record: &ProviderRefundRecord, money: Money) -> bool {
    record
        .amount
        .is_some_and(|amount| Money::from_major(amount, money.currency).is_ok_and(|m| m == money))
}

/// A delivery for account `account_name`, arriving on the route for `kind`. Returns how many
/// refunds it named that the gateway knows.
pub(super) async fn handle(
    refunds: &Refunds,
    account_name: &str,
    kind: ProviderKind,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<usize, WebhookFailure> {
    let account = refunds
        .inner
        .providers
        .get(account_name)
        .filter(|a| a.provider.kind() == kind)
        .cloned()
        .ok_or(WebhookFailure::UnknownAccount)?;
    let notices = account
        .provider
        .parse_webhook(headers, body)
        .map_err(WebhookFailure::Refused)?;
    let mut known = 0;
    for notice in notices {
        let (provider_refund_id, gateway_id) = match &notice {
            WebhookNotice::Refetch { provider_refund_id } => (provider_refund_id.as_str(), None),
            WebhookNotice::Observed {
                provider_refund_id,
                gateway_refund_id,
                ..
            } => (provider_refund_id.as_str(), gateway_refund_id.as_deref()),
        };
        let mut refund = refunds
            .inner
            .store
            .find_by_provider_refund_id(&account.name, provider_refund_id)
            .await
            .map_err(|e| WebhookFailure::Retry(e.to_string()))?;
        if refund.is_none()
            && let Some(id) = gateway_id.and_then(RefundId::parse)
        {
            refund = refunds
                .inner
                .store
                .get_refund(&id)
                .await
                .map_err(|e| WebhookFailure::Retry(e.to_string()))?
                .filter(|r| r.provider == account.name);
        }
        let Some(refund) = refund else {
            match &notice {
                // An id the gateway never learnt may be a refund whose submission answer was
                // lost: recognise it by payment and amount (which logs what it cannot link).
                WebhookNotice::Refetch { provider_refund_id } => {
                    if link_unknown(refunds, &account, provider_refund_id)
                        .await?
                        .is_some()
                    {
                        known += 1;
                    }
                }
                WebhookNotice::Observed { .. } => {
                    tracing::warn!(provider = %account.name, provider_refund_id, "webhook names a refund the gateway does not know; ignored");
                }
            }
            continue;
        };
        known += 1;
        let result = match notice {
            WebhookNotice::Refetch { .. } => match account.fetch_refund(&refund).await {
                Ok(RefundLookup::Found(obs)) => observed(refunds, &refund.id, &obs).await,
                Ok(RefundLookup::Absent) => Ok(()),
                Err(err) => Err(err.to_api_error(&account.name)),
            },
            WebhookNotice::Observed { observation, .. } => {
                observed(refunds, &refund.id, &observation).await
            }
        };
        if let Err(err) = result {
            return Err(WebhookFailure::Retry(err.message));
        }
    }
    Ok(known)
}

/// Records what a notification says about refund `id`.
async fn observed(
    refunds: &Refunds,
    id: &RefundId,
    obs: &crate::domain::Observation,
) -> Result<(), crate::domain::ApiError> {
    let change = Change::Observed {
        obs,
        source: "webhook",
    };
    writer::write(refunds, Start::Stored(id.clone()), change).await?;
    Ok(())
}

/// A notification of `account` names `provider_refund_id`, which no refund carries. Returns
/// the refund it was linked to, or `None` (logged) when it cannot be. Fails only when the
/// provider or the store cannot be asked now, so the notification should come again.
async fn link_unknown(
    refunds: &Refunds,
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
        Err(ProviderError::Unreachable(why)) => {
            return Err(WebhookFailure::Retry(why));
        }
        Err(err) => {
            tracing::warn!(provider, provider_refund_id, error = %err, "webhook names an unknown refund that could not be read; ignored");
            return Ok(None);
        }
    };
    let candidates = refunds
        .inner
        .store
        .refunds_of_payment(provider, &record.payment_id)
        .await
        .map_err(|e| WebhookFailure::Retry(e.to_string()))?;
    let candidates: Vec<&Refund> = candidates
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
    // Recorded only while the refund is still in doubt (or already carries this id).
    let change = Change::Linked {
        provider_refund_id,
        obs: &record.observation,
    };
    let written = writer::write(refunds, Start::Stored(candidate.id.clone()), change)
        .await
        .map_err(|e| WebhookFailure::Retry(e.message))?;
    Ok(written.applies.then_some(written.refund))
}

#[cfg(test)]
mod tests {

    use rust_decimal::Decimal;

    use super::*;
    use crate::domain::{Currency, Observation, RefundStatus};

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
