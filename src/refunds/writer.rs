//! The one writer: every change of a stored refund, whoever causes it (CreateRefund's outcome,
//! SyncRefund, the worker, a webhook, linking), goes through [`write`], and every submission
//! to a provider (the first and a reconciliation's resend) starts in [`submit`].
//!
//! [`write`]: take the refund as stored, decide what the change does to it through the
//! domain's status machine ([`change`]), schedule the next check ([`schedule`]), save it with
//! compare-and-set (deciding again on the reloaded refund after a lost race), then update the
//! views and publish the event. Every write names its actor (the caller's key, an operator,
//! a webhook, the worker); the decision adds the note, and both are stored with the event.
//!
//! Submissions are fenced: at most one attempt of a refund is in flight anywhere (the
//! worker, SyncRefund, every replica). Each attempt is recorded (`sent_at`) before it is
//! sent: the first one with the refund itself, a resend by compare-and-set on the refund as
//! its sender read it ([`resend`]), which also pushes the next check out to the end of the
//! attempt window. Whoever read the refund before someone else changed or leased it loses
//! that race and sends nothing; and nobody sends again before the latest attempt is surely
//! over (`attempt_over_at` of `sent_at`), however long a check or its lease lasts.

mod change;
mod schedule;

pub(super) use change::{Change, in_doubt};
use tracing::Instrument as _;

use super::Refunds;
use crate::{
    domain::{Actor, ApiError, Cause, Refund, RefundId, RefundStatus},
    providers::{ProviderAccount, SubmitOutcome},
    store::{RequestKey, RequestResult, UpdateOutcome},
};

/// How many times a write is retried when someone else changed the refund first.
const CAS_RETRIES: usize = 8;

/// Where a write starts.
#[derive(Debug)]
pub(super) enum Start {
    /// Read the refund from the store first.
    Stored(RefundId),
    /// The refund as the caller last read it; read again only after a lost race.
    Known(Box<Refund>),
}

/// What a write did.
#[derive(Debug)]
pub(super) struct Written {
    /// The refund as stored now (as found, when the change left it as it was).
    pub(super) refund: Refund,
    /// CreateRefund: the error its caller gets instead of the refund.
    pub(super) reply: Option<ApiError>,
    /// CreateRefund: whether the request key was settled in the same transaction.
    pub(super) settled: bool,
    /// Linking: false when the refund turned out not to be the one the notification names.
    pub(super) applies: bool,
}

/// Records `change` on a refund. See the module documentation.
pub(super) async fn write(
    refunds: &Refunds,
    start: Start,
    change: Change<'_>,
    actor: &Actor,
) -> Result<Written, ApiError> {
    let (id, known) = match start {
        Start::Stored(id) => (id, None),
        Start::Known(refund) => (refund.id.clone(), Some(*refund)),
    };
    let span = tracing::debug_span!("refund.write", refund_id = %id);
    write_in(refunds, id, known, change, actor)
        .instrument(span)
        .await
}

async fn write_in(
    refunds: &Refunds,
    id: RefundId,
    mut known: Option<Refund>,
    change: Change<'_>,
    actor: &Actor,
) -> Result<Written, ApiError> {
    for attempt in 0..CAS_RETRIES {
        let current = match known.take() {
            Some(refund) => refund,
            None => reload(refunds, &id, &change).await?,
        };
        let now = Refunds::now();
        let decision = change::decide(
            &refunds.inner.settings,
            &current,
            &change,
            now,
            attempt == 0,
        );
        if decision.wake_worker {
            refunds.inner.wake_worker.notify_one();
        }
        let Some(next) = decision.next else {
            return Ok(Written {
                refund: current,
                reply: decision.reply,
                settled: false,
                applies: decision.applies,
            });
        };
        let settles = match (&change, &decision.settles) {
            (Change::Submitted { key: Some(key), .. }, Some(result)) => Some((*key, result)),
            _ => None,
        };
        let cause = Cause::new(actor.clone(), decision.note);
        let Some(saved) = save(refunds, &current, &next, settles, &cause).await? else {
            continue;
        };
        if decision.links {
            tracing::info!(
                refund_id = %saved.id,
                provider = %saved.provider,
                provider_refund_id = saved.provider_refund_id.as_deref().unwrap_or(""),
                status = %saved.status,
                "a refund whose submission outcome was unknown was recognised from the provider's notification"
            );
            metrics::counter!("refund_gateway_refunds_linked_total", "provider" => saved.provider.clone())
                .increment(1);
        }
        return Ok(Written {
            refund: saved,
            reply: decision.reply,
            settled: settles.is_some(),
            applies: decision.applies,
        });
    }
    Err(change.busy())
}

/// Sends `refund` to its provider the first time (CreateRefund): the refund was inserted
/// with this attempt recorded (`sent_at`), so nobody else sends it before the attempt is
/// surely over.
pub(super) async fn submit(account: &ProviderAccount, refund: &Refund) -> SubmitOutcome {
    account.submit_refund(refund).await
}

/// Sends `refund` (as its caller read it) to its provider again, a reconciliation's resend:
/// records the attempt first (compare-and-set on the refund as read), then sends. `None`:
/// someone else changed or leased the refund since it was read, so nothing was sent. The
/// refund returned is the one recorded before the send.
pub(super) async fn resend(
    refunds: &Refunds,
    account: &ProviderAccount,
    refund: &Refund,
    actor: &Actor,
) -> Result<Option<(Refund, SubmitOutcome)>, ApiError> {
    let now = Refunds::now();
    let mut next = refund.clone();
    next.sent_at = Some(now);
    // Nobody looks again before this attempt is surely over.
    next.next_check_at = Some(super::attempt_over_at(account, now));
    // Not a visible change: no event is written, the cause is for the store's signature.
    let cause = Cause::new(actor.clone(), "sent again");
    let Some(recorded) = save(refunds, refund, &next, None, &cause).await? else {
        tracing::info!(refund_id = %refund.id, provider = %account.name, "the refund changed since it was read; not sending it again");
        return Ok(None);
    };
    let outcome = account.submit_refund(&recorded).await;
    Ok(Some((recorded, outcome)))
}

/// The refund as stored now.
async fn reload(refunds: &Refunds, id: &RefundId, change: &Change<'_>) -> Result<Refund, ApiError> {
    match refunds.inner.store.get_refund(id).await? {
        Some(refund) => Ok(refund),
        None if matches!(change, Change::Submitted { .. }) => {
            Err(ApiError::internal(format!("refund {id} vanished")))
        }
        None => Err(ApiError::refund_not_found(id.as_str())),
    }
}

/// Writes `next` over `current` (compare-and-set), settling a request key in the same
/// transaction if given, and publishes the event. `None`: someone else changed the refund
/// first.
async fn save(
    refunds: &Refunds,
    current: &Refund,
    next: &Refund,
    settles: Option<(&RequestKey, &RequestResult)>,
    cause: &Cause,
) -> Result<Option<Refund>, ApiError> {
    let store = &refunds.inner.store;
    let outcome = match settles {
        None => store.update_refund(current, next, cause).await?,
        Some((key, result)) => {
            store
                .update_refund_completing(current, next, key, result, cause)
                .await?
        }
    };
    let (refund, event) = match outcome {
        UpdateOutcome::Updated { refund, event } => (refund, event),
        UpdateOutcome::Conflict => return Ok(None),
    };
    refunds.inner.views.put(&refund);
    if let Some(event) = event {
        if refund.status != current.status {
            tracing::info!(
                refund_id = %refund.id,
                provider = %refund.provider,
                from = %current.status,
                to = %refund.status,
                provider_status = refund.provider_status.as_deref().unwrap_or(""),
                "refund status changed"
            );
        }
        if refund.status == RefundStatus::RequiresReview
            && current.status != RefundStatus::RequiresReview
        {
            let code = refund
                .failure
                .as_ref()
                .map_or("", |f| f.code.as_str())
                .to_owned();
            tracing::warn!(refund_id = %refund.id, provider = %refund.provider, code, "refund needs review");
            metrics::counter!(
                "refund_gateway_refunds_requires_review_total",
                "provider" => refund.provider.clone(),
                "reason" => code
            )
            .increment(1);
        }
        refunds.inner.bus.publish(event);
    }
    Ok(Some(refund))
}
