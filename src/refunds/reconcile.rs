//! Learning what happened to a refund from its provider: SyncRefund ([`sync`]) and the
//! worker's check of a refund it has leased ([`check`]). What each answer means for the
//! refund is the writer's to decide and record.
//!
//! A refund whose submission outcome is unknown is reconciled from the provider's answer,
//! never guessed. It is sent again only when the provider shows no trace of it, the earlier
//! attempt is surely over (counted from its `sent_at`), and the provider makes a second send
//! harmless; the resend is fenced by the writer (recorded by compare-and-set before it is
//! sent). A refusal answering a resend proves nothing about the earlier attempt: the outcome
//! stays unknown, never FAILED.

use std::{sync::Arc, time::Duration};

use super::{
    Refunds, attempt_over_at,
    writer::{self, Change, Start},
};
use crate::{
    auth::Caller,
    domain::{
        Actor, ApiError, ErrorCode, Observation, Refund, RefundId, RefundStatus, Submission, reason,
    },
    providers::{ProviderAccount, RefundLookup, SubmitOutcome},
};

/// What one worker check did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckOutcome {
    /// The refund changed.
    Changed,
    /// Nothing new; checked again later.
    Unchanged,
    /// The provider could not be asked; checked again later.
    Failed,
}

/// SyncRefund: ask the provider now, even for a final refund, and record the answer.
pub(super) async fn sync(refunds: &Refunds, caller: &Caller, id: &str) -> Result<Refund, ApiError> {
    let refund = refunds.load_own(caller, id).await?;
    let actor = &caller.actor();
    if refund.status == RefundStatus::RequiresApproval {
        // Never sent: the provider has nothing to say about it yet.
        return Ok(refund.into_public_view());
    }
    let account = account_of(refunds, &refund)?;
    let synced = match account.fetch_refund(&refund).await {
        Ok(RefundLookup::Found(obs)) => observed(refunds, &refund.id, &obs, "sync", actor).await?,
        Ok(RefundLookup::Absent) => absent(refunds, &account, refund, actor).await?,
        Err(err) => return Err(err.to_api_error(&account.name)),
    };
    Ok(synced.public_view())
}

/// One worker check of a refund it has leased.
pub(super) async fn check(refunds: &Refunds, refund: Refund) -> CheckOutcome {
    let actor = &Actor::worker();
    if refund.status == RefundStatus::RequiresApproval {
        return approval_due(refunds, refund).await;
    }
    let Ok(account) = account_of(refunds, &refund) else {
        tracing::warn!(refund_id = %refund.id, provider = %refund.provider, "provider account no longer configured; checking again later");
        let _ = unchanged(refunds, refund, None, actor).await;
        return CheckOutcome::Failed;
    };
    let result = match account.fetch_refund(&refund).await {
        Ok(RefundLookup::Found(obs)) => observed(refunds, &refund.id, &obs, "poll", actor)
            .await
            .map(|r| (r, true)),
        Ok(RefundLookup::Absent) => absent(refunds, &account, refund.clone(), actor)
            .await
            .map(|r| (r, true)),
        Err(err) => {
            let wait = err.not_now().flatten();
            tracing::info!(refund_id = %refund.id, provider = %account.name, error = %err, retry_after_s = wait.map(|w| w.as_secs()), "provider check failed; retrying later");
            unchanged(refunds, refund.clone(), wait, actor)
                .await
                .map(|r| (r, false))
        }
    };
    let outcome = match result {
        Ok((after, true)) if after.differs_visibly(&refund) => CheckOutcome::Changed,
        Ok((_, true)) => CheckOutcome::Unchanged,
        Ok((_, false)) | Err(_) => CheckOutcome::Failed,
    };
    metrics::counter!(
        "refund_gateway_worker_checks_total",
        "provider" => refund.provider.clone(),
        "outcome" => match outcome {
            CheckOutcome::Changed => "changed",
            CheckOutcome::Unchanged => "unchanged",
            CheckOutcome::Failed => "failed",
        }
    )
    .increment(1);
    outcome
}

/// The worker's look at a refund waiting for approval: canceled once its window has ended.
async fn approval_due(refunds: &Refunds, refund: Refund) -> CheckOutcome {
    let id = refund.id.clone();
    let written = writer::write(
        refunds,
        Start::Known(Box::new(refund)),
        Change::ApprovalDue,
        &Actor::worker(),
    )
    .await;
    match written {
        Ok(w) if w.refund.status == RefundStatus::Canceled => {
            tracing::info!(refund_id = %id, "approval window ended; refund canceled, never sent");
            CheckOutcome::Changed
        }
        Ok(_) => CheckOutcome::Unchanged,
        Err(err) => {
            tracing::warn!(refund_id = %id, error = %err.message, "could not end an approval window; trying again later");
            CheckOutcome::Failed
        }
    }
}

/// The provider holds no such refund.
async fn absent(
    refunds: &Refunds,
    account: &ProviderAccount,
    refund: Refund,
    actor: &Actor,
) -> Result<Refund, ApiError> {
    let now = Refunds::now();
    let in_doubt = refund.status == RefundStatus::Pending && refund.submission.is_uncertain();
    if !in_doubt {
        if !refund.status.is_final() && refund.submission == Submission::Accepted {
            tracing::warn!(refund_id = %refund.id, provider = %account.name, status = %refund.status, "provider shows no trace of a refund it had accepted");
        }
        return unchanged(refunds, refund, None, actor).await;
    }
    // The clock starts at the latest attempt (a refund stored before attempts were recorded:
    // at its latest change).
    let last_sent = refund.sent_at.unwrap_or(refund.updated_at);
    if !account.provider.resubmit_is_safe() {
        return unchanged(refunds, refund, None, actor).await;
    }
    let over_at = attempt_over_at(account, last_sent);
    if over_at > now {
        // Look again once the attempt is surely over, not before: a check meanwhile could
        // not send it again and would only use up the refund's checks.
        return unchanged(refunds, refund, (over_at - now).to_std().ok(), actor).await;
    }
    // The earlier attempt is over and left no trace, and sending again is harmless.
    tracing::info!(refund_id = %refund.id, provider = %account.name, "no trace of the refund at the provider; sending it again");
    let Some((refund, outcome)) = writer::resend(refunds, account, &refund, actor).await? else {
        // Someone else changed or leased it meanwhile: they carry it on.
        return Ok(refund);
    };
    match outcome {
        SubmitOutcome::Accepted(obs) => {
            observed(refunds, &refund.id, &obs, "resubmit", actor).await
        }
        // "Not now" (rate limited) proves nothing about the earlier attempt: look again later,
        // no earlier than the provider asked.
        SubmitOutcome::Rejected(rejection) if rejection.code == ErrorCode::Unavailable => {
            tracing::info!(refund_id = %refund.id, provider = %account.name, retry_after_s = rejection.retry_after.map(|w| w.as_secs()), "provider asked the gateway to back off; reconciling later");
            unchanged(refunds, refund, rejection.retry_after, actor).await
        }
        SubmitOutcome::Rejected(rejection) => {
            // A refusal answers this resend only: the earlier attempt may have landed (and,
            // say, used the amount up). Look again; still no trace keeps the outcome unknown
            // (followed up, then REQUIRES_REVIEW), never FAILED.
            match account.fetch_refund(&refund).await {
                Ok(RefundLookup::Found(obs)) => {
                    observed(refunds, &refund.id, &obs, "resubmit", actor).await
                }
                Ok(RefundLookup::Absent) => {
                    let failure = rejection.to_failure();
                    let change = Change::Refused { failure: &failure };
                    let written =
                        writer::write(refunds, Start::Stored(refund.id), change, actor).await?;
                    Ok(written.refund)
                }
                Err(err) => unchanged(refunds, refund, err.not_now().flatten(), actor).await,
            }
        }
        SubmitOutcome::NotSent(_) | SubmitOutcome::Unknown(_) => {
            let change = Change::Unchanged {
                at_least: None,
                unknown: true,
            };
            let written = writer::write(refunds, Start::Stored(refund.id), change, actor).await?;
            Ok(written.refund)
        }
    }
}

/// Records what the provider reported about refund `id`.
async fn observed(
    refunds: &Refunds,
    id: &RefundId,
    obs: &Observation,
    source: &'static str,
    actor: &Actor,
) -> Result<Refund, ApiError> {
    let change = Change::Observed { obs, source };
    let written = writer::write(refunds, Start::Stored(id.clone()), change, actor).await?;
    Ok(written.refund)
}

/// Nothing new was learned about `refund` (as last read): the next check comes later, no
/// earlier than `at_least` from now.
async fn unchanged(
    refunds: &Refunds,
    refund: Refund,
    at_least: Option<Duration>,
    actor: &Actor,
) -> Result<Refund, ApiError> {
    let change = Change::Unchanged {
        at_least,
        unknown: false,
    };
    let written = writer::write(refunds, Start::Known(Box::new(refund)), change, actor).await?;
    Ok(written.refund)
}

/// The account `refund` was made with, or FAILED_PRECONDITION if it is no longer configured.
pub(super) fn account_of(
    refunds: &Refunds,
    refund: &Refund,
) -> Result<Arc<ProviderAccount>, ApiError> {
    refunds
        .inner
        .providers
        .get(&refund.provider)
        .cloned()
        .ok_or_else(|| {
            ApiError::failed_precondition(
                reason::PROVIDER_NOT_CONFIGURED,
                format!(
                    "provider account {:?} is no longer configured",
                    refund.provider
                ),
            )
            .with("provider", refund.provider.clone())
        })
}
