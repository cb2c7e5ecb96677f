//! Compago's rules for a refund request: what a draft must look like, and what the payment
//! allows. Pure.

use super::*;
use crate::providers::profile::{other_currency, parts_of_others};

pub(super) const PROFILE: Profile = Profile {
    kind: ProviderKind::Compago,
    // Compago refuses (400) to refund a payment that is not CONFIRMED, and a refunded one is
    // REFUNDED: a second send can never refund twice.
    resubmit_is_safe: true,
    // A refund is the payment's new state, all of it or nothing; Compago is poll-only.
    capabilities: Capabilities::whole_refunds_in(&[wire::CURRENCY]),
    validate,
    check_refund,
};

fn validate(draft: &RefundDraft) -> Vec<FieldViolation> {
    let mut violations = Ids::of(&draft.payment).err().unwrap_or_default();
    let kind = ProviderKind::Compago;
    violations.extend(parts_of_others(
        draft,
        kind,
        "Compago",
        "the card that paid",
    ));
    violations.extend(other_currency(draft, "Compago", wire::CURRENCY));
    violations
}

/// Compago refunds the whole payment or nothing.
fn check_refund(_: &RefundDraft, payment: &ProviderPayment, amount: Money) -> Result<(), ApiError> {
    if amount != payment.amount {
        return Err(ApiError::invalid_field(
            reason::PARTIAL_REFUND_NOT_SUPPORTED,
            "amount",
            format!(
                "Compago refunds only the whole payment ({}), not {amount}; ask for {} \
                 or leave amount unset",
                payment.amount, payment.amount
            ),
        ));
    }
    Ok(())
}
