//! The gateway's own short reasons for the changes it decides, stored with their events
//! (`RefundEvent.note`). An operator's change carries the operator's note instead.

use super::Change;
use crate::{
    domain::{ErrorCode, Refund, RefundStatus},
    providers::SubmitOutcome,
};

/// The gateway's own short reason for a change it decided.
pub(super) fn note(current: &Refund, change: &Change<'_>, next: Option<&Refund>) -> String {
    let status = next.map_or(current.status, |n| n.status);
    match *change {
        Change::Submitted { outcome, .. } => match outcome {
            SubmitOutcome::Accepted(_) => "provider accepted".to_owned(),
            SubmitOutcome::Rejected(r) if r.code == ErrorCode::Unavailable => {
                "provider asked to wait; withdrawn, nothing refunded".to_owned()
            }
            SubmitOutcome::Rejected(_) => "provider refused".to_owned(),
            SubmitOutcome::NotSent(_) => {
                "provider could not be reached; withdrawn, nothing refunded".to_owned()
            }
            SubmitOutcome::Unknown(_) => "provider's answer did not arrive".to_owned(),
        },
        Change::Observed { obs, .. } | Change::Linked { obs, .. } => {
            let differences = obs.contradictions(current);
            if differences.is_empty() {
                format!("provider reported {}", obs.status)
            } else {
                format!(
                    "provider's answer contradicts the refund ({})",
                    differences.join(", ")
                )
            }
        }
        Change::Refused { .. } => "provider refused a resend; outcome still unknown".to_owned(),
        Change::Unchanged { .. } if status == RefundStatus::RequiresReview => {
            "provider's outcome could not be established".to_owned()
        }
        Change::Unchanged { .. } => "checked; nothing new".to_owned(),
        Change::Approved { .. } => "approved".to_owned(),
        Change::Withdrawn { .. } => "canceled before it was sent".to_owned(),
        Change::ApprovalDue => "approval window ended".to_owned(),
        Change::Resolved { .. } => "resolved".to_owned(),
    }
}
