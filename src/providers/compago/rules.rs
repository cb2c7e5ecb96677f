//! Compago's rules for a refund request: what a draft must look like, and what the payment
//! allows. Pure.

use super::*;

pub(super) fn validate(draft: &RefundDraft) -> Vec<FieldViolation> {
    let mut violations = Ids::of(&draft.payment).err().unwrap_or_default();
    if !draft.payment.invoice_id.is_empty() {
        violations.push(FieldViolation::new(
            "payment.invoice_id",
            "not used by Compago (D24 only); leave it empty",
        ));
    }
    if draft.bank_account.is_some() {
        violations.push(FieldViolation::new(
            "bank_account",
            "not used by Compago: refunds go back to the card that paid; leave it unset",
        ));
    }
    if let Some(amount) = draft.amount
        && amount.currency.code() != wire::CURRENCY
    {
        violations.push(FieldViolation::new(
            "amount.currency_code",
            format!("Compago refunds MXN only, got {}", amount.currency),
        ));
    }
    violations
}

pub(super) fn check_refund(
    _draft: &RefundDraft,
    payment: &ProviderPayment,
    amount: Money,
) -> Result<(), ApiError> {
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
