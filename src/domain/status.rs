//! The refund status machine: which changes are allowed, and which statuses are final.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a refund is in its life (docs/API.md "Statuses"; `RefundStatus` in the proto).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundStatus {
    /// Recorded; the provider has not confirmed receipt (this includes an unknown outcome).
    Pending,
    /// The provider accepted the refund and completes it later.
    Processing,
    Succeeded,
    Failed,
    Canceled,
    /// The gateway could not establish the outcome, or the provider contradicted the request.
    RequiresReview,
    /// Recorded and holding its amount, not sent: above the tenant's approval limit, it waits
    /// for an operator's approval (then PENDING, on its way to the provider) or a cancel.
    RequiresApproval,
}

/// A status change the machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("refund status cannot change from {from} to {to}")]
pub struct IllegalTransition {
    pub from: RefundStatus,
    pub to: RefundStatus,
}

impl RefundStatus {
    pub const ALL: [RefundStatus; 7] = [
        RefundStatus::Pending,
        RefundStatus::Processing,
        RefundStatus::Succeeded,
        RefundStatus::Failed,
        RefundStatus::Canceled,
        RefundStatus::RequiresReview,
        RefundStatus::RequiresApproval,
    ];

    /// SUCCEEDED, FAILED and CANCELED are final.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Canceled)
    }

    /// Whether a refund in this status counts against what is left to refund of its payment.
    /// Failed and canceled refunds release their amount; everything else holds it (a pending
    /// or in-review refund may still complete).
    pub fn holds_amount(self) -> bool {
        !matches!(self, Self::Failed | Self::Canceled)
    }

    /// Whether `self -> to` is an allowed edge. Staying in the same status is always allowed
    /// (provider details may change without a status change).
    ///
    /// ```text
    /// PENDING         -> PROCESSING | SUCCEEDED | FAILED | CANCELED | REQUIRES_REVIEW
    /// PROCESSING      -> SUCCEEDED | FAILED | CANCELED | REQUIRES_REVIEW
    /// REQUIRES_REVIEW -> PROCESSING | SUCCEEDED | FAILED | CANCELED
    /// REQUIRES_APPROVAL -> PENDING (approved: now sent) | CANCELED (withdrawn or expired)
    /// SUCCEEDED       -> FAILED   (only a provider's explicit reversal, D24 COMPLETED -> REJECTED)
    /// FAILED, CANCELED: no way out
    /// ```
    pub fn can_become(self, to: RefundStatus) -> bool {
        use RefundStatus::*;
        if self == to {
            return true;
        }
        match self {
            Pending => to != RequiresApproval,
            RequiresApproval => matches!(to, Pending | Canceled),
            Processing => matches!(to, Succeeded | Failed | Canceled | RequiresReview),
            RequiresReview => matches!(to, Processing | Succeeded | Failed | Canceled),
            Succeeded => to == Failed,
            Failed | Canceled => false,
        }
    }

    /// `Ok(())` when the machine allows `self -> to`.
    pub fn check(self, to: RefundStatus) -> Result<(), IllegalTransition> {
        if self.can_become(to) {
            Ok(())
        } else {
            Err(IllegalTransition { from: self, to })
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Processing => "PROCESSING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Canceled => "CANCELED",
            Self::RequiresReview => "REQUIRES_REVIEW",
            Self::RequiresApproval => "REQUIRES_APPROVAL",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for RefundStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::RefundStatus::{self, *};

    /// The full table: every (from, to) pair, written out so a change to the machine has to
    /// change this test too.
    #[test]
    fn every_pair_follows_the_table() {
        let allowed: &[(RefundStatus, &[RefundStatus])] = &[
            (
                Pending,
                &[
                    Pending,
                    Processing,
                    Succeeded,
                    Failed,
                    Canceled,
                    RequiresReview,
                ],
            ),
            (
                Processing,
                &[Processing, Succeeded, Failed, Canceled, RequiresReview],
            ),
            (Succeeded, &[Succeeded, Failed]),
            (Failed, &[Failed]),
            (Canceled, &[Canceled]),
            (
                RequiresReview,
                &[RequiresReview, Processing, Succeeded, Failed, Canceled],
            ),
            (RequiresApproval, &[RequiresApproval, Pending, Canceled]),
        ];
        for (from, tos) in allowed {
            for to in RefundStatus::ALL {
                assert_eq!(
                    from.can_become(to),
                    tos.contains(&to),
                    "{from} -> {to} should be {}",
                    if tos.contains(&to) {
                        "allowed"
                    } else {
                        "refused"
                    }
                );
                assert_eq!(from.check(to).is_ok(), tos.contains(&to));
            }
        }
    }

    #[test]
    fn nothing_goes_back_to_pending() {
        // An approved refund leaves REQUIRES_APPROVAL for PENDING: it is sent only then.
        for from in RefundStatus::ALL {
            if from != Pending && from != RequiresApproval {
                assert!(!from.can_become(Pending), "{from} -> PENDING");
            }
        }
    }

    #[test]
    fn final_statuses_and_reservations() {
        assert!(Succeeded.is_final() && Failed.is_final() && Canceled.is_final());
        assert!(!Pending.is_final() && !Processing.is_final() && !RequiresReview.is_final());
        assert!(!RequiresApproval.is_final() && RequiresApproval.holds_amount());
        assert!(!Failed.holds_amount() && !Canceled.holds_amount());
        assert!(
            Pending.holds_amount() && RequiresReview.holds_amount() && Succeeded.holds_amount()
        );
    }

    #[test]
    fn names_round_trip() {
        for st in RefundStatus::ALL {
            assert_eq!(RefundStatus::parse(st.as_str()), Some(st));
        }
        assert_eq!(RefundStatus::parse("DONE"), None);
    }
}
