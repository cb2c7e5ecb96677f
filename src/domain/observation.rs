//! What a provider reported about a refund, and whether it contradicts the refund.

use super::{Money, Refund, RefundFailure, RefundStatus};

/// What a provider reported about a refund, in the gateway's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    pub status: RefundStatus,
    /// The provider's own id of the refund, when it gives one.
    pub provider_refund_id: Option<String>,
    /// The provider's own status word.
    pub provider_status: Option<String>,
    /// Why the refund failed or needs review, when it did.
    pub failure: Option<RefundFailure>,
    /// The refund's amount and currency as the provider states them, when it does.
    pub amount: Option<Money>,
    /// The payment the provider says the refund is of (in the form of
    /// `PaymentRef::payment_id`), when it says.
    pub payment_id: Option<String>,
}

impl Observation {
    /// Why this observation cannot be about `refund`: the provider states another amount,
    /// currency or payment than the refund's. Empty when nothing it states contradicts the
    /// refund (what it leaves out is not checked).
    pub fn contradictions(&self, refund: &Refund) -> Vec<String> {
        let mut found = Vec::new();
        if let Some(amount) = self.amount {
            if amount.currency != refund.amount.currency {
                found.push(format!(
                    "currency {} instead of {}",
                    amount.currency, refund.amount.currency
                ));
            } else if amount.minor != refund.amount.minor {
                found.push(format!("amount {amount} instead of {}", refund.amount));
            }
        }
        if let Some(payment_id) = &self.payment_id
            && *payment_id != refund.payment.payment_id
        {
            found.push(format!(
                "payment {payment_id:?} instead of {:?}",
                refund.payment.payment_id
            ));
        }
        found
    }

    /// This observation as one that needs a person: REQUIRES_REVIEW with a
    /// `PROVIDER_MISMATCH` failure naming what differs (`differences`, not empty) and what
    /// the provider said. The provider's id and status word are kept.
    pub fn contradicted(mut self, differences: &[String], payment_id: &str) -> Observation {
        let said = format!(
            "refund={} status={} amount={} payment={}",
            self.provider_refund_id.as_deref().unwrap_or("?"),
            self.provider_status.as_deref().unwrap_or("?"),
            self.amount
                .map_or_else(|| "?".to_owned(), |m| m.to_string()),
            self.payment_id.as_deref().unwrap_or("?"),
        );
        self.failure = Some(
            RefundFailure::new(
                super::reason::PROVIDER_MISMATCH,
                format!(
                    "the provider's answer does not match the refund: {}; check payment \
                     {payment_id} at the provider before doing anything else",
                    differences.join(", ")
                ),
            )
            .with_provider(self.provider_status.clone().unwrap_or_default(), said),
        );
        self.status = RefundStatus::RequiresReview;
        self
    }
}
