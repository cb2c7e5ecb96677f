//! CreateRefund, stage 1: the one place a draft refund's rules are checked.
//!
//! [`validate`] runs before anything is claimed or read (no I/O): the caller may use the
//! provider account, and the draft satisfies the provider's own rules. The rules that depend
//! on the payment ([`payment_refundable`], [`amount`]) are pure as well; the reservation
//! applies them once it has looked the payment up.

use std::{collections::BTreeMap, sync::Arc};

use super::Refunds;
use crate::{
    auth::Caller,
    domain::{Actor, ApiError, Money, PaymentStatus, reason},
    providers::{ProviderAccount, ProviderPayment, RefundDraft},
    store::RequestKey,
};

/// A valid CreateRefund request: the hand-off to the claim and every later stage.
#[derive(Debug)]
pub(super) struct Request {
    pub(super) account: Arc<ProviderAccount>,
    pub(super) draft: RefundDraft,
    pub(super) key: RequestKey,
    /// Who asks: the actor of the refund's creation and of its submission.
    pub(super) actor: Actor,
    /// The tenant's approval limits, minor units per currency code.
    pub(super) approval_above: Arc<BTreeMap<String, i64>>,
}

/// Checks `draft` for `caller`: INVALID_ARGUMENT or PERMISSION_DENIED with every violation.
pub(super) fn validate(
    refunds: &Refunds,
    caller: &Caller,
    draft: RefundDraft,
) -> Result<Request, ApiError> {
    let account = refunds.account(caller, &draft.provider, "provider")?;
    let violations = account.provider.validate(&draft);
    if !violations.is_empty() {
        return Err(ApiError::invalid(violations));
    }
    let key = RequestKey {
        tenant: caller.tenant.clone(),
        request_id: draft.request_id.clone(),
    };
    Ok(Request {
        account,
        draft,
        key,
        actor: caller.actor(),
        approval_above: caller.approval_above.clone(),
    })
}

/// The payment can be refunded at all, in the currency asked for.
pub(super) fn payment_refundable(
    account: &ProviderAccount,
    draft: &RefundDraft,
    payment: &ProviderPayment,
) -> Result<(), ApiError> {
    if !matches!(
        payment.status,
        PaymentStatus::Captured | PaymentStatus::PartiallyRefunded
    ) {
        return Err(ApiError::failed_precondition(
            reason::PAYMENT_NOT_REFUNDABLE,
            format!(
                "payment {} is {} at {}; only captured payments can be refunded",
                draft.payment.payment_id, payment.provider_status, account.name
            ),
        )
        .with("provider", account.name.clone())
        .with("paymentId", draft.payment.payment_id.clone())
        .with("paymentStatus", payment.provider_status.clone()));
    }
    if let Some(asked) = draft.amount
        && asked.currency != payment.amount.currency
    {
        return Err(ApiError::invalid_field(
            reason::CURRENCY_MISMATCH,
            "amount.currency_code",
            format!(
                "the payment is in {}, not {}",
                payment.amount.currency, asked.currency
            ),
        )
        .with("provider", account.name.clone()));
    }
    Ok(())
}

/// The amount this refund will be for, given `left` to refund of the payment: the checks
/// every provider shares, then the provider's own.
pub(super) fn amount(
    account: &ProviderAccount,
    draft: &RefundDraft,
    payment: &ProviderPayment,
    left: Money,
) -> Result<Money, ApiError> {
    if left.minor == 0 {
        return Err(ApiError::failed_precondition(
            reason::NOTHING_LEFT_TO_REFUND,
            format!(
                "payment {} has nothing left to refund",
                draft.payment.payment_id
            ),
        )
        .with("provider", account.name.clone())
        .with("paymentId", draft.payment.payment_id.clone()));
    }
    let amount = draft.amount.unwrap_or(left);
    if amount.minor > left.minor {
        return Err(exceeds(&account.name, amount, left));
    }
    account.provider.check_refund(draft, payment, amount)?;
    Ok(amount)
}

/// AMOUNT_EXCEEDS_REFUNDABLE: `asked` is more than the `left` to refund.
pub(super) fn exceeds(provider: &str, asked: Money, left: Money) -> ApiError {
    ApiError::failed_precondition(
        reason::AMOUNT_EXCEEDS_REFUNDABLE,
        format!("{asked} is more than the {left} left to refund"),
    )
    .with("provider", provider)
    .with("refundableMinorUnits", left.minor.to_string())
    .with("currencyCode", left.currency.code())
}
