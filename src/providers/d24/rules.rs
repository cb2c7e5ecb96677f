//! D24's rules for a refund request: what a draft must look like, and what the payment
//! allows. Pure.

use super::*;
use crate::providers::profile::parts_of_others;

pub(super) const PROFILE: Profile = Profile {
    kind: ProviderKind::D24,
    // Every create carries the refund's id as X-Idempotency-Key: D24 answers 104 instead of
    // creating a second refund.
    resubmit_is_safe: true,
    // Many refunds per deposit, each of any part of it; D24 POSTs `{"refund_id": N}` on
    // every status change.
    capabilities: Capabilities::partial_refunds_in(CURRENCIES).with_webhooks(),
    validate,
    check_refund,
};

fn validate(draft: &RefundDraft) -> Vec<FieldViolation> {
    let mut v = Vec::new();
    let payment = &draft.payment;
    if payment.payment_id.is_empty() {
        v.push(FieldViolation::new(
            "payment.payment_id",
            "required for D24: the deposit_id",
        ));
    } else if wire::deposit_id(&payment.payment_id).is_none() {
        v.push(FieldViolation::new(
            "payment.payment_id",
            "must be a D24 deposit_id: a positive integer such as 300533647",
        ));
    }
    if payment.invoice_id.is_empty() {
        v.push(FieldViolation::new(
            "payment.invoice_id",
            "required for D24: the deposit's invoice_id",
        ));
    } else if payment.invoice_id.chars().count() > wire::MAX_INVOICE_ID {
        v.push(FieldViolation::new(
            "payment.invoice_id",
            format!("at most {} characters for D24", wire::MAX_INVOICE_ID),
        ));
    }
    // D24 takes a bank account, so no message says where else refunds go.
    v.extend(parts_of_others(draft, ProviderKind::D24, "D24", ""));
    if draft.description.chars().count() > wire::MAX_COMMENTS {
        v.push(FieldViolation::new(
            "description",
            format!(
                "at most {} characters for D24 (sent as comments)",
                wire::MAX_COMMENTS
            ),
        ));
    }
    if let Some(amount) = draft.amount
        && amount.currency.exponent() > wire::MAX_DECIMALS
    {
        v.push(FieldViolation::new(
            "amount.currency_code",
            format!(
                "D24 amounts have at most {} decimals; {} has {}",
                wire::MAX_DECIMALS,
                amount.currency,
                amount.currency.exponent()
            ),
        ));
    }
    v
}

/// A deposit not paid by card is refunded to a bank account; D24 amounts have few decimals.
fn check_refund(
    draft: &RefundDraft,
    payment: &ProviderPayment,
    amount: Money,
) -> Result<(), ApiError> {
    if payment.needs_bank_account && draft.bank_account.is_none() {
        return Err(ApiError::invalid_field(
            reason::BANK_ACCOUNT_REQUIRED,
            "bank_account",
            format!(
                "deposit {} was not paid by card ({}), so D24 refunds it to a bank \
                 account: give the beneficiary's bank_account",
                draft.payment.payment_id, payment.provider_status
            ),
        ));
    }
    if amount.currency.exponent() > wire::MAX_DECIMALS {
        return Err(ApiError::invalid_field(
            reason::CURRENCY_NOT_SUPPORTED,
            "amount.currency_code",
            format!("D24 cannot refund amounts in {}", amount.currency),
        ));
    }
    Ok(())
}
