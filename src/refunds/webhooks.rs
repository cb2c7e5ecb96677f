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
//! A notification that arrives while the refund it names is still being sent (D24 notifies a
//! creation before its answer comes back) is parked until the answer is recorded, then
//! handled ([`parked`]); it is answered "deliver again" all the same, so that a process that
//! stops meanwhile loses nothing. Provider reads caused by notifications have a budget of their own
//! per account and are shared per refund ([`reads`]), so a flood of notifications cannot take
//! the account's capacity from submissions.
//!
//! Limits, stated: a refund made outside the gateway (D24's panel) for the same deposit and
//! amount while one of the gateway's is in doubt would be taken for it; and a notification
//! without an amount (D24 omits it while PENDING) cannot be matched.

mod parked;
mod reads;

pub(super) use parked::Parked;
pub(super) use reads::Reads;

use std::sync::Arc;

use self::reads::{Answer, OverBudget, Read};
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

impl From<OverBudget> for WebhookFailure {
    fn from(_: OverBudget) -> Self {
        Self::Retry("the account's budget for reads caused by webhooks is spent".to_owned())
    }
}

/// What became of a notification that names a provider refund id.
#[derive(Debug)]
enum Outcome {
    /// It names a refund the gateway knows (or has now linked).
    Known,
    /// It names no refund of the gateway's (logged).
    Unknown,
    /// It may name one of these refunds, whose submission is still being sent: look again
    /// once it is over.
    Park(Vec<RefundId>),
}

/// Whether a provider amount (major units, in the payment's currency) is exactly `money`.
fn same_amount(record: &ProviderRefundRecord, money: Money) -> bool {
    record
        .amount
        .is_some_and(|amount| Money::from_major(amount, money.currency).is_ok_and(|m| m == money))
}

/// A store failure while handling a delivery: the provider should deliver it again.
fn store_retry(err: crate::store::StoreError) -> WebhookFailure {
    tracing::warn!(error = %err, "webhook: the store could not be read");
    WebhookFailure::Retry("the store is unavailable".to_owned())
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
        match notice {
            WebhookNotice::Refetch { provider_refund_id } => {
                match refetch(refunds, &account, &provider_refund_id, true).await? {
                    Outcome::Known => known += 1,
                    Outcome::Unknown => {}
                    // Handled here once the answer is recorded, and still answered "deliver
                    // again": a parked notification lives in memory only, and the provider's
                    // next delivery must not be lost with it if this process stops.
                    Outcome::Park(candidates) => {
                        parked::park(refunds, account.clone(), provider_refund_id, candidates);
                        return Err(WebhookFailure::Retry(
                            "the refund it names is still being sent".to_owned(),
                        ));
                    }
                }
            }
            WebhookNotice::Observed {
                provider_refund_id,
                gateway_refund_id,
                observation,
            } => {
                let mut refund = refunds
                    .inner
                    .store
                    .find_by_provider_refund_id(&account.name, &provider_refund_id)
                    .await
                    .map_err(store_retry)?;
                if refund.is_none()
                    && let Some(id) = gateway_refund_id.as_deref().and_then(RefundId::parse)
                {
                    refund = refunds
                        .inner
                        .store
                        .get_refund(&id)
                        .await
                        .map_err(store_retry)?
                        .filter(|r| r.provider == account.name);
                }
                let Some(refund) = refund else {
                    tracing::warn!(provider = %account.name, provider_refund_id, "webhook names a refund the gateway does not know; ignored");
                    continue;
                };
                known += 1;
                observed(refunds, &refund.id, &observation)
                    .await
                    .map_err(|e| WebhookFailure::Retry(e.message))?;
            }
        }
    }
    Ok(known)
}

/// A notification that says only "refund `provider_refund_id` changed" (D24): reads it back
/// and records what it says. `may_park`: a notification racing its refund's submission answer
/// may be parked (`Outcome::Park`); `false` when it is the parked one handled again.
async fn refetch(
    refunds: &Refunds,
    account: &Arc<ProviderAccount>,
    provider_refund_id: &str,
    may_park: bool,
) -> Result<Outcome, WebhookFailure> {
    let refund = refunds
        .inner
        .store
        .find_by_provider_refund_id(&account.name, provider_refund_id)
        .await
        .map_err(store_retry)?;
    let Some(refund) = refund else {
        // An id the gateway never learnt may be a refund whose submission answer was lost, or
        // has not come back yet: recognise it by payment and amount (which logs what it
        // cannot link).
        return link_unknown(refunds, account, provider_refund_id, may_park).await;
    };
    let answer = refunds
        .inner
        .webhook_reads
        .read(account, provider_refund_id, Read::Fetch(&refund))
        .await?;
    let result = match answer {
        Answer::Fetched(Ok(RefundLookup::Found(obs))) => observed(refunds, &refund.id, &obs).await,
        Answer::Fetched(Ok(RefundLookup::Absent)) => Ok(()),
        Answer::Fetched(Err(err)) => Err(err.to_api_error(&account.name)),
        Answer::Record(_) => Err(crate::domain::ApiError::internal(
            "a webhook read answered another read",
        )),
    };
    result.map_err(|e| WebhookFailure::Retry(e.message))?;
    Ok(Outcome::Known)
}

/// Records what a notification says about refund `id`.
async fn observed(
    refunds: &Refunds,
    id: &RefundId,
    obs: &crate::domain::Observation,
) -> Result<(), crate::domain::ApiError> {
    tracing::Span::current().record("refund_id", id.as_str());
    let change = Change::Observed {
        obs,
        source: "webhook",
    };
    let actor = crate::domain::Actor::webhook();
    writer::write(refunds, Start::Stored(id.clone()), change, &actor).await?;
    Ok(())
}

/// A notification of `account` names `provider_refund_id`, which no refund carries. Links it
/// to the refund it is, or says it cannot (logged), or (`may_park`) that it may be a refund
/// still being sent. Fails only when the provider or the store cannot be asked now, so the
/// notification should come again.
async fn link_unknown(
    refunds: &Refunds,
    account: &Arc<ProviderAccount>,
    provider_refund_id: &str,
    may_park: bool,
) -> Result<Outcome, WebhookFailure> {
    let provider = account.name.as_str();
    let answer = refunds
        .inner
        .webhook_reads
        .read(account, provider_refund_id, Read::ByProviderId)
        .await?;
    let read = match answer {
        Answer::Record(read) => read,
        Answer::Fetched(_) => Err(ProviderError::Unreachable(
            "a webhook read answered another read".to_owned(),
        )),
    };
    let record = match read {
        Ok(Some(record)) => record,
        Ok(None) => {
            tracing::warn!(
                provider,
                provider_refund_id,
                "webhook names a refund the provider does not hold; ignored"
            );
            return Ok(Outcome::Unknown);
        }
        Err(ProviderError::Unreachable(why)) => {
            return Err(WebhookFailure::Retry(why));
        }
        Err(err) => {
            tracing::warn!(provider, provider_refund_id, error = %err, "webhook names an unknown refund that could not be read; ignored");
            return Ok(Outcome::Unknown);
        }
    };
    let all = refunds
        .inner
        .store
        .refunds_of_payment(provider, &record.payment_id)
        .await
        .map_err(store_retry)?;
    if may_park {
        let now = super::Refunds::now();
        let sending: Vec<RefundId> = all
            .iter()
            .filter(|r| parked::being_sent(r, account, now))
            .filter(|r| record.amount.is_none() || same_amount(&record, r.amount))
            .map(|r| r.id.clone())
            .collect();
        if !sending.is_empty() {
            return Ok(Outcome::Park(sending));
        }
    }
    let candidates: Vec<&Refund> = all
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
        return Ok(Outcome::Unknown);
    };
    // Recorded only while the refund is still in doubt (or already carries this id).
    let change = Change::Linked {
        provider_refund_id,
        obs: &record.observation,
    };
    let actor = crate::domain::Actor::webhook();
    let written = writer::write(refunds, Start::Stored(candidate.id.clone()), change, &actor)
        .await
        .map_err(|e| WebhookFailure::Retry(e.message))?;
    Ok(if written.applies {
        Outcome::Known
    } else {
        Outcome::Unknown
    })
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
