//! What a change does to a refund as it is stored now: every change, whoever causes it, is
//! decided here through the domain's status machine. No I/O (logs and counters only); the
//! writer reloads, saves and retries around it.
//!
//! Rules:
//! - A change the status machine refuses is logged and counted, and the record stays as it was.
//! - A provider answer that contradicts the refund's amount, currency or payment is logged;
//!   the refund goes to REQUIRES_REVIEW instead of accepting it (`Refund::observe`).
//! - When the truth cannot be established within the configured number of checks, the refund
//!   goes to REQUIRES_REVIEW (streamed and counted), so nothing stays pending silently.
//! - Every change carries a short note saying why (`Decision::note`), stored with its event;
//!   an operator's change carries the operator's note ([`operator`]).

mod notes;
mod operator;

use chrono::{DateTime, Utc};

use super::schedule::schedule;
use crate::{
    domain::{
        ApiError, ErrorCode, IllegalTransition, Observation, Refund, RefundFailure, RefundStatus,
        Submission, reason,
    },
    providers::SubmitOutcome,
    refunds::Settings,
    store::{RequestKey, RequestResult},
};

/// Failure code of a refund whose outcome could not be established.
const OUTCOME_UNKNOWN: &str = "OUTCOME_UNKNOWN";

/// Something that happened to a refund.
#[derive(Clone, Copy, Debug)]
pub(in crate::refunds) enum Change<'a> {
    /// How the submission of a refund just recorded ended (CreateRefund). `key`: the request
    /// that made it, settled in the same transaction when the outcome is for its caller.
    Submitted {
        /// The provider account's name.
        provider: &'a str,
        outcome: &'a SubmitOutcome,
        /// `None` for an approved refund: its request was settled when it was recorded.
        key: Option<&'a RequestKey>,
    },
    /// A provider reported the refund's state; `source`: sync, poll, webhook or resubmit.
    Observed {
        obs: &'a Observation,
        source: &'static str,
    },
    /// A notification names `provider_refund_id`, which no refund carries, and this refund in
    /// doubt is the one it can be: record the id and the status, while it is still in doubt.
    Linked {
        provider_refund_id: &'a str,
        obs: &'a Observation,
    },
    /// The provider showed no trace of the refund and refused it when sent again. The
    /// refusal answers the resend only: the earlier attempt may have landed (D24 may judge
    /// the amount before the idempotency key and refuse a repeat of a refund it made), so
    /// the outcome stays unknown, followed up like any unknown outcome and, when still
    /// unknown after the configured checks, REQUIRES_REVIEW with its amount held. Never
    /// FAILED.
    Refused { failure: &'a RefundFailure },
    /// Nothing new was learned: count the check and push the next one out, no earlier than
    /// `at_least` from now (a provider's `Retry-After`). `unknown`: a resend ended without an
    /// answer; the submission is marked unknown (on the first try only: after a lost race the
    /// refund as stored is kept).
    Unchanged {
        at_least: Option<std::time::Duration>,
        unknown: bool,
    },
    /// An operator approved a refund waiting in REQUIRES_APPROVAL: it becomes PENDING with
    /// its submission attempt recorded (`sent_at`), to be sent by whoever made this change;
    /// `recheck_at`: when the worker looks if nobody recorded the outcome by then.
    Approved {
        note: &'a str,
        recheck_at: DateTime<Utc>,
    },
    /// A refund waiting for approval is withdrawn (CancelRefund): CANCELED, never sent.
    Withdrawn { note: &'a str },
    /// The worker's look at a refund waiting for approval: CANCELED once its approval
    /// window has ended, else looked at again then.
    ApprovalDue,
    /// An operator settles a refund in REQUIRES_REVIEW.
    Resolved {
        status: RefundStatus,
        provider_refund_id: Option<&'a str>,
        note: &'a str,
    },
}

impl Change<'_> {
    /// The error when the refund kept changing under every retry.
    pub(super) fn busy(&self) -> ApiError {
        match self {
            Change::Submitted { .. } => ApiError::new(
                ErrorCode::Aborted,
                reason::INTERNAL,
                "the refund kept changing while its outcome was recorded; read it with GetRefund",
            ),
            _ => ApiError::new(
                ErrorCode::Aborted,
                reason::INTERNAL,
                "the refund kept changing; try again",
            ),
        }
    }
}

/// What to do with the refund as stored.
#[derive(Debug, Default)]
pub(super) struct Decision {
    /// The refund to store over the current one; `None`: leave it as it is.
    pub(super) next: Option<Refund>,
    /// The request result settled in the same transaction.
    pub(super) settles: Option<RequestResult>,
    /// CreateRefund: the error its caller gets instead of the refund.
    pub(super) reply: Option<ApiError>,
    /// Linked: false when the refund turned out not to be the one named.
    pub(super) applies: bool,
    /// Linked: the provider id is recorded now (not a repeat of the notification).
    pub(super) links: bool,
    /// The worker should look sooner than its next tick.
    pub(super) wake_worker: bool,
    /// Why: stored with the change's event.
    pub(super) note: String,
}

impl Decision {
    fn keep() -> Self {
        Self {
            applies: true,
            ..Self::default()
        }
    }

    fn save(next: Refund) -> Self {
        Self {
            next: Some(next),
            applies: true,
            ..Self::default()
        }
    }
}

/// Whether a refund may be the provider refund a notification names: its submission's
/// outcome is unknown and no provider id is known.
pub(in crate::refunds) fn in_doubt(refund: &Refund) -> bool {
    matches!(
        refund.status,
        RefundStatus::Pending | RefundStatus::RequiresReview
    ) && refund.submission.is_uncertain()
        && refund.provider_refund_id.is_none()
}

/// What `change` does to `current` at `now`. `first`: the first try (no race lost yet).
pub(super) fn decide(
    settings: &Settings,
    current: &Refund,
    change: &Change<'_>,
    now: DateTime<Utc>,
    first: bool,
) -> Decision {
    let mut decision = match *change {
        Change::Submitted {
            provider, outcome, ..
        } => submitted(settings, provider, current, outcome, now),
        Change::Observed { obs, source } => observed(settings, current, obs, source, now),
        Change::Linked {
            provider_refund_id,
            obs,
        } => linked(settings, current, provider_refund_id, obs, now),
        Change::Approved { note, recheck_at } => operator::approved(current, note, recheck_at, now),
        Change::Withdrawn { note } => operator::withdrawn(current, note, now),
        Change::ApprovalDue => operator::approval_due(settings, current, now),
        Change::Resolved {
            status,
            provider_refund_id,
            note,
        } => operator::resolved(current, status, provider_refund_id, note, now),
        Change::Refused { failure } => {
            if !(current.status == RefundStatus::Pending && current.submission.is_uncertain()) {
                return Decision::keep();
            }
            tracing::warn!(
                refund_id = %current.id,
                provider = %current.provider,
                code = %failure.code,
                provider_code = %failure.provider_code,
                "the provider refused a resend of a refund whose earlier attempt may have landed; the outcome stays unknown"
            );
            let mut next = current.clone();
            if first {
                next.submission = Submission::Unknown;
            }
            unchanged(settings, current, next, None, now)
        }
        Change::Unchanged { at_least, unknown } => {
            let mut next = current.clone();
            if unknown && first {
                next.submission = Submission::Unknown;
            }
            unchanged(settings, current, next, at_least, now)
        }
    };
    if decision.note.is_empty() {
        decision.note = notes::note(current, change, decision.next.as_ref());
    }
    decision
}

/// A provider's observation, recorded unless the refund is held for review after a mismatch
/// (only SyncRefund records it then) or the status machine refuses it.
fn observed(
    settings: &Settings,
    current: &Refund,
    obs: &Observation,
    source: &'static str,
    now: DateTime<Utc>,
) -> Decision {
    if current.status == RefundStatus::RequiresApproval {
        // Never sent: nothing a provider says can be about it (and it must not leave
        // REQUIRES_APPROVAL but by an approval, a cancel or its expiry).
        tracing::warn!(refund_id = %current.id, provider = %current.provider, source, "ignored a provider report about a refund that was never sent (waiting for approval)");
        return Decision::keep();
    }
    if current.under_mismatch_review() && source != "sync" {
        tracing::info!(
            refund_id = %current.id,
            provider = %current.provider,
            source,
            "refund held for review after a provider mismatch; not updated automatically (SyncRefund records the provider's answer)"
        );
        return Decision::keep();
    }
    let mut next = match apply_observation(current, obs, now, source) {
        Ok(next) => next,
        Err(illegal) => {
            refuse_transition(current, illegal.to, source);
            return Decision::keep();
        }
    };
    // The provider has it, so the submission is no longer in doubt.
    if next.submission.is_uncertain() {
        next.submission = Submission::Accepted;
    }
    let changed = next.differs_visibly(current) || next.submission != current.submission;
    schedule(settings, &mut next, changed, now);
    Decision::save(next)
}

fn linked(
    settings: &Settings,
    current: &Refund,
    provider_refund_id: &str,
    obs: &Observation,
    now: DateTime<Utc>,
) -> Decision {
    if current.provider_refund_id.as_deref() == Some(provider_refund_id) {
        // Linked meanwhile (a repeat of the notification): just record the status.
        return observed(settings, current, obs, "webhook", now);
    }
    if !in_doubt(current) {
        tracing::info!(refund_id = %current.id, provider_refund_id, "refund learnt its outcome meanwhile; not linked");
        return Decision::default();
    }
    let mut next = match apply_observation(current, obs, now, "link") {
        Ok(next) => next,
        Err(illegal) => {
            refuse_transition(current, illegal.to, "link");
            return Decision::default();
        }
    };
    next.provider_refund_id = Some(provider_refund_id.to_owned());
    next.submission = Submission::Accepted;
    schedule(settings, &mut next, true, now);
    Decision {
        links: true,
        ..Decision::save(next)
    }
}

/// Nothing was learned: count the check, and send a refund whose outcome stays unknown for
/// too long to REQUIRES_REVIEW.
fn unchanged(
    settings: &Settings,
    current: &Refund,
    mut next: Refund,
    at_least: Option<std::time::Duration>,
    now: DateTime<Utc>,
) -> Decision {
    schedule(settings, &mut next, false, now);
    if let Some(wait) = at_least {
        let earliest = now + wait;
        if next.next_check_at.is_some_and(|at| at < earliest) {
            next.next_check_at = Some(earliest);
        }
    }
    let exhausted = next.check_attempts >= settings.max_reconcile_attempts;
    if exhausted && current.status == RefundStatus::Pending && current.submission.is_uncertain() {
        next.status = RefundStatus::RequiresReview;
        next.failure = Some(RefundFailure::new(
            OUTCOME_UNKNOWN,
            format!(
                "the provider's outcome could not be established after {} checks",
                next.check_attempts
            ),
        ));
        next.updated_at = now;
        // Keep looking, slowly: the provider may still tell.
        next.next_check_at = Some(now + settings.max_check_interval);
    }
    Decision::save(next)
}

/// The refund after its submission's outcome, the error its caller gets instead of it (if
/// any), and the request result settled with it.
fn submitted(
    settings: &Settings,
    provider: &str,
    current: &Refund,
    outcome: &SubmitOutcome,
    now: DateTime<Utc>,
) -> Decision {
    // Only a refund still waiting for its submission's outcome takes it; anything else means
    // the worker or a webhook already learned more.
    let waiting = current.status == RefundStatus::Pending && current.submission.is_uncertain();
    let mut next = current.clone();
    let mut wake_worker = false;
    let reply = match outcome {
        SubmitOutcome::Accepted(obs) => {
            match apply_observation(current, obs, now, "submission") {
                Ok(observed) => next = observed,
                Err(illegal) => refuse_transition(current, illegal.to, "submission"),
            }
            next.submission = Submission::Accepted;
            schedule(settings, &mut next, true, now);
            None
        }
        // "Not now" (rate limited): the provider created nothing, and the refund did not fail.
        // The gateway withdraws it (CANCELED: final, nothing refunded, its amount released)
        // and the caller gets UNAVAILABLE with the delay to wait. The refund is not sent later
        // behind the caller's back: an error means no refund.
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
            schedule(settings, &mut next, true, now);
            let mut err = rejection
                .to_api_error(provider)
                .with("refundId", current.id.as_str());
            err.message = format!(
                "{}; nothing was refunded. Retry after the delay with a new request_id",
                rejection.message
            );
            Some(err)
        }
        SubmitOutcome::Rejected(rejection) if waiting => {
            next.status = RefundStatus::Failed;
            next.failure = Some(rejection.to_failure());
            next.submission = Submission::Rejected;
            next.updated_at = now;
            schedule(settings, &mut next, true, now);
            Some(rejection.to_api_error(provider))
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
            schedule(settings, &mut next, true, now);
            let err = ApiError::unavailable(
                reason::PROVIDER_UNAVAILABLE,
                format!(
                    "provider {provider} could not be reached; nothing was refunded. Retry with a new request_id"
                ),
            )
            .with("provider", provider)
            .with("refundId", current.id.as_str());
            Some(err)
        }
        SubmitOutcome::Unknown(_) if waiting => {
            next.submission = Submission::Unknown;
            next.next_check_at = Some(now + settings.first_check);
            next.check_attempts = 0;
            wake_worker = true;
            None
        }
        // Rejected, not sent or unknown, but the refund already moved on: keep it.
        _ => None,
    };
    let settles = match &reply {
        Some(err) if next.status != current.status => Some(RequestResult::Error(err.clone())),
        Some(_) => None,
        None => Some(RequestResult::Refund(current.id.clone())),
    };
    Decision {
        settles: if next == *current { None } else { settles },
        next: (next != *current).then_some(next),
        reply,
        applies: true,
        links: false,
        wake_worker,
        note: String::new(),
    }
}

/// Applies a provider's observation to `current` (`Refund::observe`, which holds the
/// integrity rule), logging an observation that contradicts the refund's amount, currency or
/// payment: the refund goes to REQUIRES_REVIEW instead of accepting it.
fn apply_observation(
    current: &Refund,
    obs: &Observation,
    now: DateTime<Utc>,
    source: &'static str,
) -> Result<Refund, IllegalTransition> {
    let differences = obs.contradictions(current);
    if !differences.is_empty() {
        tracing::error!(
            refund_id = %current.id,
            provider = %current.provider,
            source,
            provider_refund_id = obs.provider_refund_id.as_deref().unwrap_or(""),
            differences = %differences.join(", "),
            "the provider's answer contradicts the refund; it goes to review, not accepted"
        );
    }
    current.observe(obs, now)
}

/// Logs and counts a change the status machine refuses.
fn refuse_transition(current: &Refund, to: RefundStatus, source: &'static str) {
    tracing::error!(
        refund_id = %current.id,
        provider = %current.provider,
        from = %current.status,
        to = %to,
        source,
        "refused an impossible refund status change"
    );
    metrics::counter!(
        "refund_gateway_refund_transitions_refused_total",
        "provider" => current.provider.clone(),
        "from" => current.status.as_str(),
        "to" => to.as_str()
    )
    .increment(1);
}

#[cfg(test)]
mod tests;
