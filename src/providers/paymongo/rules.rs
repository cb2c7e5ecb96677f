//! PayMongo's rules for a refund request: what a draft must look like, and what the payment
//! allows. Pure.

use super::*;
use crate::providers::profile::{other_currency, parts_of_others};

pub(super) const PROFILE: Profile = Profile {
    kind: ProviderKind::PayMongo,
    // The create carries Idempotency-Key = the refund id, so a re-send within 24 hours gets
    // the first answer back instead of a second refund (PM-IDEM). Reconciliation re-sends
    // only after `fetch_refund` listed the payment's refunds and found none with this
    // refund's id in its metadata, which also covers re-sends after the key expired.
    resubmit_is_safe: true,
    // Any part of a payment, in several refunds; signed `payment.refund.updated` and
    // `payment.refunded` events.
    capabilities: Capabilities::partial_refunds_in(&[wire::CURRENCY]).with_webhooks(),
    validate,
    check_refund,
};

fn validate(draft: &RefundDraft) -> Vec<FieldViolation> {
    let mut violations = Vec::new();
    if let Err(v) = check_payment_id(&draft.payment.payment_id) {
        violations.push(v);
    }
    let (kind, refunds_go_to) = (ProviderKind::PayMongo, "the original payment method");
    violations.extend(parts_of_others(draft, kind, "PayMongo", refunds_go_to));
    violations.extend(other_currency(draft, "PayMongo", wire::CURRENCY));
    let chars = draft.description.chars().count();
    if chars > wire::MAX_NOTES_CHARS {
        violations.push(FieldViolation::new(
            "description",
            format!(
                "PayMongo keeps at most {} characters of notes; this has {chars}",
                wire::MAX_NOTES_CHARS
            ),
        ));
    }
    if draft.metadata.contains_key(wire::GATEWAY_ID_KEY) {
        violations.push(FieldViolation::new(
            format!("metadata[{:?}]", wire::GATEWAY_ID_KEY),
            "reserved: the gateway sends its own refund id under this key",
        ));
    }
    violations
}

/// PayMongo refunds PHP payments only, and at least 1.00 PHP.
fn check_refund(_: &RefundDraft, payment: &ProviderPayment, amount: Money) -> Result<(), ApiError> {
    if payment.amount.currency.code() != wire::CURRENCY {
        return Err(ApiError::failed_precondition(
            reason::CURRENCY_NOT_SUPPORTED,
            format!(
                "the payment is in {}; PayMongo refunds PHP only",
                payment.amount.currency
            ),
        ));
    }
    if amount.minor < wire::MIN_REFUND_CENTAVOS {
        return Err(ApiError::invalid_field(
            reason::AMOUNT_BELOW_MINIMUM,
            "amount",
            format!("PayMongo refunds at least 1.00 PHP (100 centavos), not {amount}"),
        ));
    }
    Ok(())
}
