//! The decisions of every change, one behaviour per test.

use std::time::Duration;

use chrono::Utc;

use super::*;
use crate::{
    domain::{Currency, Money, PaymentRef, TenantId},
    providers::Rejection,
};

/// The worker's settings the tests decide with (approvals expire after an hour).
pub(super) fn settings() -> Settings {
    Settings {
        first_check: Duration::from_secs(1),
        max_check_interval: Duration::from_secs(60),
        max_reconcile_attempts: 3,
        lease: Duration::from_secs(30),
        view_cache_entries: 0,
        approval_expiry: Duration::from_secs(3600),
    }
}

fn key() -> RequestKey {
    RequestKey {
        tenant: TenantId::new("t"),
        request_id: "r".into(),
    }
}

fn observation(status: RefundStatus, id: &str) -> Observation {
    Observation {
        status,
        provider_refund_id: Some(id.into()),
        provider_status: None,
        failure: None,
        amount: None,
        payment_id: None,
    }
}

fn after_submission(current: &Refund, outcome: &SubmitOutcome) -> Decision {
    let key = key();
    let change = Change::Submitted {
        provider: "d24",
        outcome,
        key: Some(&key),
    };
    decide(&settings(), current, &change, Utc::now(), true)
}

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

/// A submission that never reached the provider withdraws a refund still waiting for it
/// (CANCELED, nothing refunded) and settles the request with the caller's UNAVAILABLE.
#[test]
fn not_sent_cancels_a_waiting_refund_and_settles_the_request_with_the_error() {
    let current = refund(RefundStatus::Pending, Submission::Sending, None);
    let decision = after_submission(&current, &SubmitOutcome::NotSent("down".into()));
    let next = decision.next.expect("saved");
    assert_eq!(next.status, RefundStatus::Canceled);
    assert_eq!(next.submission, Submission::NotSent);
    assert_eq!(
        decision.reply.as_ref().map(|e| e.code),
        Some(ErrorCode::Unavailable)
    );
    assert!(matches!(decision.settles, Some(RequestResult::Error(_))));
}

/// A refusal arriving after the refund moved on (a webhook was faster) changes nothing and
/// settles nothing.
#[test]
fn a_late_refusal_leaves_a_refund_that_moved_on() {
    let current = refund(RefundStatus::Processing, Submission::Accepted, Some("1"));
    let rejection = Rejection::new(ErrorCode::FailedPrecondition, reason::INTERNAL, "no");
    let decision = after_submission(&current, &SubmitOutcome::Rejected(rejection));
    assert!(decision.next.is_none());
    assert!(decision.settles.is_none());
    assert!(decision.reply.is_none());
}

/// An unknown outcome keeps the refund PENDING, settles the request with it, and has the
/// worker look soon.
#[test]
fn an_unknown_outcome_is_reconciled_soon() {
    let current = refund(RefundStatus::Pending, Submission::Sending, None);
    let decision = after_submission(&current, &SubmitOutcome::Unknown("timeout".into()));
    let next = decision.next.expect("saved");
    assert_eq!(next.status, RefundStatus::Pending);
    assert_eq!(next.submission, Submission::Unknown);
    assert!(decision.wake_worker);
    assert!(matches!(decision.settles, Some(RequestResult::Refund(_))));
}

/// A resend without an answer marks the submission unknown on the first try only; after a
/// lost race the refund as stored is kept.
#[test]
fn an_unanswered_resend_marks_the_submission_unknown_on_the_first_try_only() {
    let current = refund(RefundStatus::Pending, Submission::Sending, None);
    let change = Change::Unchanged {
        at_least: None,
        unknown: true,
    };
    let first = decide(&settings(), &current, &change, Utc::now(), true);
    assert_eq!(first.next.expect("saved").submission, Submission::Unknown);
    let retry = decide(&settings(), &current, &change, Utc::now(), false);
    assert_eq!(retry.next.expect("saved").submission, Submission::Sending);
}

/// When the checks run out, a refund in doubt goes to REQUIRES_REVIEW.
#[test]
fn an_outcome_unknown_for_too_many_checks_goes_to_review() {
    let mut current = refund(RefundStatus::Pending, Submission::Unknown, None);
    current.check_attempts = 2;
    let change = Change::Unchanged {
        at_least: None,
        unknown: false,
    };
    let next = decide(&settings(), &current, &change, Utc::now(), true)
        .next
        .expect("saved");
    assert_eq!(next.status, RefundStatus::RequiresReview);
    assert_eq!(
        next.failure.map(|f| f.code),
        Some(OUTCOME_UNKNOWN.to_owned())
    );
}

/// Linking records the provider id only on a refund still in doubt; a repeat of the
/// notification records the status like any observation.
#[test]
fn linking_takes_only_a_refund_in_doubt() {
    let obs = observation(RefundStatus::Succeeded, "9");
    let change = Change::Linked {
        provider_refund_id: "9",
        obs: &obs,
    };
    let in_doubt = refund(RefundStatus::Pending, Submission::Unknown, None);
    let linked = decide(&settings(), &in_doubt, &change, Utc::now(), true);
    assert!(linked.applies && linked.links);
    let next = linked.next.expect("saved");
    assert_eq!(next.provider_refund_id.as_deref(), Some("9"));
    assert_eq!(next.submission, Submission::Accepted);

    let settled = refund(RefundStatus::Failed, Submission::Rejected, None);
    let refused = decide(&settings(), &settled, &change, Utc::now(), true);
    assert!(!refused.applies && refused.next.is_none());

    let repeat = refund(RefundStatus::Processing, Submission::Accepted, Some("9"));
    let observed = decide(&settings(), &repeat, &change, Utc::now(), true);
    assert!(observed.applies && !observed.links);
    assert_eq!(
        observed.next.expect("saved").status,
        RefundStatus::Succeeded
    );
}

/// A refusal answering a resend proves nothing about the earlier attempt: a refund in doubt
/// stays PENDING with its outcome unknown (the check is counted), never FAILED.
#[test]
fn a_refused_resend_leaves_the_outcome_unknown() {
    let failure = RefundFailure::new("DECLINED", "no");
    let change = Change::Refused { failure: &failure };
    let in_doubt = refund(RefundStatus::Pending, Submission::Sending, None);
    let next = decide(&settings(), &in_doubt, &change, Utc::now(), true)
        .next
        .expect("saved");
    assert_eq!(next.status, RefundStatus::Pending);
    assert_eq!(next.submission, Submission::Unknown);
    assert_eq!(next.check_attempts, in_doubt.check_attempts + 1);
    let accepted = refund(RefundStatus::Processing, Submission::Accepted, Some("1"));
    assert!(
        decide(&settings(), &accepted, &change, Utc::now(), true)
            .next
            .is_none()
    );
}
