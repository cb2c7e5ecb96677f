//! The changes people make: an approval, a cancel of a refund waiting for approval, the
//! expiry of an approval nobody gave, and the resolution of a refund in review. Each applies
//! only to a refund in the status it is meant for; otherwise the refund is kept as it is and
//! `applies` is false, so the caller answers from the refund as it is now.

use chrono::{DateTime, Utc};

use super::Decision;
use crate::{
    domain::{Refund, RefundFailure, RefundStatus, Submission},
    refunds::Settings,
};

/// Failure code of a refund withdrawn before it was sent (CancelRefund).
pub(in crate::refunds) const CANCELED_BEFORE_SENDING: &str = "CANCELED_BEFORE_SENDING";
/// Failure code of a refund whose approval window ended.
pub(in crate::refunds) const APPROVAL_EXPIRED: &str = "APPROVAL_EXPIRED";
/// Failure code of a refund an operator settled as FAILED or CANCELED.
pub(in crate::refunds) const RESOLVED_BY_OPERATOR: &str = "RESOLVED_BY_OPERATOR";

fn not_applied() -> Decision {
    Decision::default()
}

fn operator_note(note: &str, default: &str) -> String {
    if note.trim().is_empty() {
        default.to_owned()
    } else {
        note.to_owned()
    }
}

/// REQUIRES_APPROVAL -> PENDING, with the submission attempt recorded before it is sent: the
/// same fence as a refund CreateRefund records (`sent_at`), so whoever loses the race to
/// approve sends nothing.
pub(super) fn approved(
    current: &Refund,
    note: &str,
    recheck_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Decision {
    if current.status != RefundStatus::RequiresApproval {
        return not_applied();
    }
    let mut next = current.clone();
    next.status = RefundStatus::Pending;
    next.submission = Submission::Sending;
    next.sent_at = Some(now);
    next.next_check_at = Some(recheck_at);
    next.check_attempts = 0;
    next.updated_at = now;
    Decision {
        note: operator_note(note, "approved"),
        ..Decision::save(next)
    }
}

/// REQUIRES_APPROVAL -> CANCELED (CancelRefund): never sent, its amount released.
pub(super) fn withdrawn(current: &Refund, note: &str, now: DateTime<Utc>) -> Decision {
    if current.status != RefundStatus::RequiresApproval {
        return not_applied();
    }
    let next = canceled(
        current,
        RefundFailure::new(
            CANCELED_BEFORE_SENDING,
            "canceled while waiting for approval; never sent, nothing was refunded",
        ),
        now,
    );
    Decision {
        note: operator_note(note, "canceled before it was sent"),
        ..Decision::save(next)
    }
}

/// The worker's look at a refund waiting for approval: CANCELED once the window is over,
/// else looked at again when it ends.
pub(super) fn approval_due(settings: &Settings, current: &Refund, now: DateTime<Utc>) -> Decision {
    if current.status != RefundStatus::RequiresApproval {
        return not_applied();
    }
    let ends = current.created_at + settings.approval_expiry;
    let mut next = current.clone();
    if ends > now {
        next.next_check_at = Some(ends);
        return Decision::save(next);
    }
    let next = canceled(
        current,
        RefundFailure::new(
            APPROVAL_EXPIRED,
            "nobody approved the refund within the approval window; never sent, nothing was refunded",
        ),
        now,
    );
    Decision::save(next)
}

fn canceled(current: &Refund, failure: RefundFailure, now: DateTime<Utc>) -> Refund {
    let mut next = current.clone();
    next.status = RefundStatus::Canceled;
    next.failure = Some(failure);
    next.submission = Submission::NotSent;
    next.next_check_at = None;
    next.check_attempts = 0;
    next.updated_at = now;
    next
}

/// REQUIRES_REVIEW -> SUCCEEDED, FAILED or CANCELED, as a person established at the
/// provider. The gateway stops following the refund up: a person settled it. A provider's
/// later word still goes through the status machine (a SUCCEEDED refund may still be
/// reversed to FAILED by the provider; FAILED and CANCELED stay as they are).
pub(super) fn resolved(
    current: &Refund,
    status: RefundStatus,
    provider_refund_id: Option<&str>,
    note: &str,
    now: DateTime<Utc>,
) -> Decision {
    if current.status != RefundStatus::RequiresReview || current.status.check(status).is_err() {
        return not_applied();
    }
    let mut next = current.clone();
    next.status = status;
    if let Some(id) = provider_refund_id.filter(|id| !id.is_empty()) {
        next.provider_refund_id = Some(id.to_owned());
    }
    next.failure = match status {
        RefundStatus::Succeeded => None,
        _ => Some(RefundFailure::new(
            RESOLVED_BY_OPERATOR,
            format!("settled as {status} by an operator: {note}"),
        )),
    };
    if status == RefundStatus::Succeeded {
        next.submission = Submission::Accepted;
    } else if next.submission.is_uncertain() {
        next.submission = Submission::Rejected;
    }
    next.updated_at = now;
    next.next_check_at = None;
    next.check_attempts = 0;
    Decision {
        note: note.to_owned(),
        ..Decision::save(next)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::{Currency, Money, PaymentRef, TenantId};

    fn waiting() -> Refund {
        let mut r = Refund::new_pending(
            TenantId::new("t"),
            "r",
            "compago",
            PaymentRef::default(),
            Money::new(100, Currency::parse("MXN").unwrap()),
            Utc::now(),
        );
        r.status = RefundStatus::RequiresApproval;
        r.submission = Submission::NotSent;
        r
    }

    #[test]
    fn approval_records_the_attempt_before_it_is_sent() {
        let now = Utc::now();
        let d = approved(&waiting(), "ok by finance", now, now);
        let next = d.next.unwrap();
        assert_eq!(next.status, RefundStatus::Pending);
        assert_eq!(next.sent_at, Some(now));
        assert!(next.submission.is_uncertain());
        assert_eq!(d.note, "ok by finance");
        // Already approved: nothing to do.
        assert!(approved(&next, "again", now, now).next.is_none());
    }

    #[test]
    fn an_approval_waits_until_its_window_ends() {
        let settings = super::super::tests::settings();
        let r = waiting();
        let early = approval_due(&settings, &r, r.created_at).next.unwrap();
        assert_eq!(early.status, RefundStatus::RequiresApproval);
        assert_eq!(
            early.next_check_at,
            Some(r.created_at + Duration::from_secs(3600))
        );
        let late = approval_due(&settings, &r, r.created_at + Duration::from_secs(3600))
            .next
            .unwrap();
        assert_eq!(late.status, RefundStatus::Canceled);
        assert!(late.next_check_at.is_none());
    }

    #[test]
    fn only_a_refund_in_review_is_resolved() {
        let now = Utc::now();
        let mut r = waiting();
        assert!(
            resolved(&r, RefundStatus::Failed, None, "n", now)
                .next
                .is_none()
        );
        r.status = RefundStatus::RequiresReview;
        r.submission = Submission::Unknown;
        let d = resolved(&r, RefundStatus::Succeeded, Some("p-1"), "seen paid", now);
        let next = d.next.unwrap();
        assert_eq!(next.provider_refund_id.as_deref(), Some("p-1"));
        assert_eq!(next.submission, Submission::Accepted);
        assert!(next.next_check_at.is_none());
        assert_eq!(d.note, "seen paid");
    }
}
