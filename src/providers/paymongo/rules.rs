//! PayMongo's rules for a refund request: what a draft must look like, and what the payment
//! allows. Pure.

use super::*;

pub(super) fn validate(draft: &RefundDraft) -> Vec<FieldViolation> {
    let mut violations = Vec::new();
    if let Err(v) = check_payment_id(&draft.payment.payment_id) {
        violations.push(v);
    }
    if !draft.payment.payment_method_id.is_empty() {
        violations.push(FieldViolation::new(
            "payment.payment_method_id",
            "not used by PayMongo (Compago only); leave it empty",
        ));
    }
    if !draft.payment.invoice_id.is_empty() {
        violations.push(FieldViolation::new(
            "payment.invoice_id",
            "not used by PayMongo (D24 only); leave it empty",
        ));
    }
    if draft.bank_account.is_some() {
        violations.push(FieldViolation::new(
            "bank_account",
            "not used by PayMongo: refunds go back to the original payment method; leave it unset",
        ));
    }
    if let Some(amount) = draft.amount
        && amount.currency.code() != wire::CURRENCY
    {
        violations.push(FieldViolation::new(
            "amount.currency_code",
            format!("PayMongo refunds PHP only, got {}", amount.currency),
        ));
    }
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

pub(super) fn check_refund(
    _draft: &RefundDraft,
    payment: &ProviderPayment,
    amount: Money,
) -> Result<(), ApiError> {
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
