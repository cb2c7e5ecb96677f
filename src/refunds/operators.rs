//! What people do with refunds: read a refund's history (ListRefundEvents), approve or cancel
//! a refund waiting for approval, and settle one in review. Every change goes through the
//! writer with the caller as its actor and the operator's note.
//!
//! Rules (docs/API.md, "Operators"):
//! - ResolveRefund and ApproveRefund need an operator key (open mode: anyone);
//!   CancelRefund is also allowed to the key that created the refund.
//! - ApproveRefund by the key that created the refund is refused (`SELF_APPROVAL`). An
//!   approval records the submission attempt before sending (the writer's fence), so of two
//!   approvals at once only one sends; the other, and any repeat, gets the refund as it is.
//! - A repeat of a cancel or of the same resolution returns the refund unchanged.

use super::{
    ATTEMPT_MARGIN, Refunds, page_token, reconcile,
    writer::{self, Change, Start},
};
use crate::{
    auth::{Caller, Role},
    domain::{ApiError, ErrorCode, FieldViolation, Refund, RefundEvent, RefundStatus, reason},
    store::EventScope,
};

pub const DEFAULT_EVENTS_PAGE_SIZE: u32 = 100;
pub const MAX_EVENTS_PAGE_SIZE: u32 = 1000;
/// The longest operator note, in characters.
pub const MAX_NOTE_CHARS: usize = 1000;

/// One page of a refund's history, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventPage {
    pub events: Vec<RefundEvent>,
    pub next_page_token: String,
}

/// A ResolveRefund request in domain terms (`status` `None`: unspecified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    pub id: String,
    pub status: Option<RefundStatus>,
    pub note: String,
    pub provider_refund_id: Option<String>,
}

fn operator_only(caller: &Caller, rpc: &str) -> Result<(), ApiError> {
    if caller.is_operator() {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::PermissionDenied,
        reason::OPERATOR_ONLY,
        format!("{rpc} needs an operator key"),
    ))
}

fn note_violation(note: &str) -> Option<FieldViolation> {
    (note.chars().count() > MAX_NOTE_CHARS).then(|| {
        FieldViolation::new(
            "note",
            format!("must be at most {MAX_NOTE_CHARS} characters"),
        )
    })
}

fn not_awaiting(refund: &Refund) -> ApiError {
    ApiError::failed_precondition(
        reason::NOT_AWAITING_APPROVAL,
        format!(
            "refund {} is {}, not waiting for approval",
            refund.id, refund.status
        ),
    )
    .with("refundId", refund.id.as_str())
    .with("status", refund.status.as_str())
}

/// The refund's history, oldest first, a page at a time.
pub(super) async fn events(
    refunds: &Refunds,
    caller: &Caller,
    id: &str,
    page_size: i32,
    page_token: &str,
) -> Result<EventPage, ApiError> {
    let limit = match page_size {
        n if n < 0 => {
            return Err(ApiError::invalid(vec![FieldViolation::new(
                "page_size",
                "must not be negative",
            )]));
        }
        0 => DEFAULT_EVENTS_PAGE_SIZE,
        n => n.unsigned_abs().min(MAX_EVENTS_PAGE_SIZE),
    };
    let refund = refunds.load_own(caller, id).await?;
    let key = &refunds.inner.page_key;
    let after = if page_token.is_empty() {
        0
    } else {
        page_token::open_events(key, page_token, &caller.tenant, &refund.id)?
    };
    let scope = EventScope::Refund(refund.id.clone());
    let mut events = refunds
        .inner
        .store
        .events_after(&scope, after, limit + 1)
        .await?;
    let next_page_token = if events.len() > limit as usize {
        events.truncate(limit as usize);
        let last = events.last().expect("limit is at least 1");
        page_token::seal_events(key, &caller.tenant, &refund.id, last.sequence)
    } else {
        String::new()
    };
    Ok(EventPage {
        events,
        next_page_token,
    })
}

/// Whether `refund`, no longer waiting, was approved (it waited, and was sent).
async fn was_approved(refunds: &Refunds, refund: &Refund) -> Result<bool, ApiError> {
    if refund.sent_at.is_none() {
        return Ok(false);
    }
    let scope = EventScope::Refund(refund.id.clone());
    let first = refunds.inner.store.events_after(&scope, 0, 1).await?;
    Ok(first
        .first()
        .is_some_and(|e| e.refund.status == RefundStatus::RequiresApproval))
}

/// ApproveRefund: sends a refund waiting for approval, through the same fence and outcome
/// recording as CreateRefund's submission, and returns it after the provider answered.
pub(super) async fn approve(
    refunds: &Refunds,
    caller: &Caller,
    id: &str,
    note: &str,
) -> Result<Refund, ApiError> {
    operator_only(caller, "ApproveRefund")?;
    if let Some(violation) = note_violation(note) {
        return Err(ApiError::invalid(vec![violation]));
    }
    let refund = refunds.load_own(caller, id).await?;
    if refund.status != RefundStatus::RequiresApproval {
        return answered(refunds, refund).await;
    }
    let actor = caller.actor();
    // Open mode has one caller, who may do everything (and no approval limits to meet).
    if caller.role != Role::Open && refund.created_by.as_ref() == Some(&actor) {
        return Err(ApiError::new(
            ErrorCode::PermissionDenied,
            reason::SELF_APPROVAL,
            "the key that created a refund may not approve it; another operator key must",
        )
        .with("refundId", refund.id.as_str()));
    }
    let account = reconcile::account_of(refunds, &refund)?;
    let note = if note.trim().is_empty() {
        "approved"
    } else {
        note
    }
    .to_owned();
    // Finished in a task of its own, as CreateRefund's submission: a caller that goes away
    // cannot leave an approved refund sent but unrecorded.
    let this = refunds.clone();
    let task = async move {
        let recheck_at = Refunds::now() + account.timeout + ATTEMPT_MARGIN;
        let change = Change::Approved {
            note: &note,
            recheck_at,
        };
        let written = writer::write(&this, Start::Known(Box::new(refund)), change, &actor).await?;
        if !written.applies {
            // Someone else approved (or canceled) it first: nothing is sent from here.
            return answered(&this, written.refund).await;
        }
        let approved = written.refund;
        tracing::info!(refund_id = %approved.id, provider = %approved.provider, actor = %actor, "refund approved; sending it");
        let outcome = writer::submit(&account, &approved).await;
        let change = Change::Submitted {
            provider: &account.name,
            outcome: &outcome,
            key: None,
        };
        let known = Box::new(approved.clone());
        match writer::write(&this, Start::Known(known), change, &actor).await {
            Ok(written) => Ok(written.refund.into_public_view()),
            Err(err) => {
                tracing::warn!(refund_id = %approved.id, error = %err.message, "could not record an approved refund's submission; the worker follows it up");
                Ok(approved.into_public_view())
            }
        }
    };
    // Boxed once: a large state machine, moved several times on its way into a task.
    tokio::spawn(Box::pin(task))
        .await
        .unwrap_or_else(|join_error| Err(ApiError::internal(join_error)))
}

/// ApproveRefund of a refund no longer waiting: as it is now if it was approved, else
/// FAILED_PRECONDITION.
async fn answered(refunds: &Refunds, refund: Refund) -> Result<Refund, ApiError> {
    if was_approved(refunds, &refund).await? {
        Ok(refund.into_public_view())
    } else {
        Err(not_awaiting(&refund))
    }
}

/// CancelRefund: withdraws a refund waiting for approval (CANCELED, never sent).
pub(super) async fn cancel(
    refunds: &Refunds,
    caller: &Caller,
    id: &str,
    note: &str,
) -> Result<Refund, ApiError> {
    if let Some(violation) = note_violation(note) {
        return Err(ApiError::invalid(vec![violation]));
    }
    let refund = refunds.load_own(caller, id).await?;
    let actor = caller.actor();
    if !caller.is_operator() && refund.created_by.as_ref() != Some(&actor) {
        return Err(ApiError::new(
            ErrorCode::PermissionDenied,
            reason::NOT_CREATOR,
            "only the key that created a refund, or an operator key, may cancel it",
        )
        .with("refundId", refund.id.as_str()));
    }
    let withdrawn = |r: &Refund| r.status == RefundStatus::Canceled && r.sent_at.is_none();
    if withdrawn(&refund) {
        return Ok(refund.into_public_view());
    }
    if refund.status != RefundStatus::RequiresApproval {
        return Err(not_awaiting(&refund));
    }
    let written = writer::write(
        refunds,
        Start::Known(Box::new(refund)),
        Change::Withdrawn { note },
        &actor,
    )
    .await?;
    if withdrawn(&written.refund) {
        tracing::info!(refund_id = %written.refund.id, actor = %actor, "refund waiting for approval canceled");
        Ok(written.refund.into_public_view())
    } else {
        Err(not_awaiting(&written.refund))
    }
}

/// ResolveRefund: settles a refund in REQUIRES_REVIEW as a person established it.
pub(super) async fn resolve(
    refunds: &Refunds,
    caller: &Caller,
    req: Resolution,
) -> Result<Refund, ApiError> {
    operator_only(caller, "ResolveRefund")?;
    let mut violations = Vec::new();
    let status = req.status.filter(|s| {
        matches!(
            s,
            RefundStatus::Succeeded | RefundStatus::Failed | RefundStatus::Canceled
        )
    });
    if status.is_none() {
        violations.push(FieldViolation::new(
            "status",
            "must be REFUND_STATUS_SUCCEEDED, REFUND_STATUS_FAILED or REFUND_STATUS_CANCELED",
        ));
    }
    if req.note.trim().is_empty() {
        violations.push(FieldViolation::new(
            "note",
            "required: say what was established at the provider",
        ));
    }
    violations.extend(note_violation(&req.note));
    if req
        .provider_refund_id
        .as_ref()
        .is_some_and(|id| id.chars().count() > 255)
    {
        violations.push(FieldViolation::new(
            "provider_refund_id",
            "must be at most 255 characters",
        ));
    }
    let Some(status) = status.filter(|_| violations.is_empty()) else {
        return Err(ApiError::invalid(violations));
    };
    let refund = refunds.load_own(caller, &req.id).await?;
    let refund = if refund.status == RefundStatus::RequiresReview {
        let change = Change::Resolved {
            status,
            provider_refund_id: req.provider_refund_id.as_deref(),
            note: &req.note,
        };
        let actor = caller.actor();
        let written =
            writer::write(refunds, Start::Known(Box::new(refund)), change, &actor).await?;
        if written.applies {
            tracing::info!(refund_id = %written.refund.id, status = %status, actor = %actor, "refund in review resolved by an operator");
            return Ok(written.refund.into_public_view());
        }
        written.refund
    } else {
        refund
    };
    // Not in review (any more): a repeat of the resolution it got returns it unchanged.
    let latest = refunds.inner.store.latest_event(&refund.id).await?;
    let same = latest.is_some_and(|e| {
        e.previous_status == Some(RefundStatus::RequiresReview)
            && e.refund.status == status
            && refund.status == status
            && (e.cause.actor.as_str().starts_with("operator:")
                || e.cause.actor.as_str() == "caller:open")
    });
    if same {
        return Ok(refund.into_public_view());
    }
    Err(ApiError::failed_precondition(
        reason::NOT_IN_REVIEW,
        format!(
            "refund {} is {}, not REQUIRES_REVIEW",
            refund.id, refund.status
        ),
    )
    .with("refundId", refund.id.as_str())
    .with("status", refund.status.as_str()))
}
