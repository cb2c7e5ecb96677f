//! When the worker looks at a refund next: pure arithmetic over the service's [`Settings`].

use chrono::{DateTime, Utc};

use crate::{domain::Refund, refunds::Settings};

/// Sets when the worker looks at the refund next. `changed`: something was learned, so the
/// backoff starts over.
pub(super) fn schedule(settings: &Settings, next: &mut Refund, changed: bool, now: DateTime<Utc>) {
    if next.status == crate::domain::RefundStatus::RequiresApproval {
        // Nothing to ask a provider: the worker looks when the approval window ends.
        next.check_attempts = 0;
        next.next_check_at = Some(next.created_at + settings.approval_expiry);
    } else if (next.status.is_final() && !next.submission.is_uncertain())
        || next.under_mismatch_review()
    {
        // Nothing left to learn automatically (a mismatch waits for a person).
        next.next_check_at = None;
        next.check_attempts = 0;
    } else if changed {
        next.check_attempts = 0;
        next.next_check_at = Some(now + settings.first_check);
    } else {
        next.check_attempts = next.check_attempts.saturating_add(1);
        next.next_check_at = Some(now + backoff(settings, next.check_attempts));
    }
}

/// The wait before check number `attempt` (exponential with jitter, capped).
fn backoff(settings: &Settings, attempt: i32) -> std::time::Duration {
    use backon::BackoffBuilder as _;
    backon::ExponentialBuilder::default()
        .with_min_delay(settings.first_check)
        .with_max_delay(settings.max_check_interval)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
        .nth(usize::try_from(attempt.max(0)).unwrap_or(usize::MAX))
        .unwrap_or(settings.max_check_interval)
}
