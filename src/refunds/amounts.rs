//! What has been refunded of a payment and what is left, shared by GetPayment and the
//! reservation's pre-check (the store's guard decides, atomically, with the same rule).

use super::Refunds;
use crate::{
    domain::{ApiError, HeldRefund, Money, PaymentStatus, outside_minor},
    providers::ProviderPayment,
};

/// What has been refunded of `payment` through provider account `provider`, and what is
/// left. Refunded: what the gateway's refunds that hold money add up to, plus what the
/// provider reports beyond them ([`outside_minor`]: refunds made outside the gateway, or
/// that the gateway no longer holds), and never less than the total the provider reports.
pub(super) async fn refunded_and_left(
    refunds: &Refunds,
    provider: &str,
    payment_id: &str,
    payment: &ProviderPayment,
) -> Result<(Money, Money), ApiError> {
    let currency = payment.amount.currency;
    let store = &refunds.inner.store;
    let held = store.held_amount(provider, payment_id, currency).await?;
    let outside = if payment.refunds.is_empty() {
        0
    } else {
        let holding: Vec<HeldRefund> = store
            .refunds_of_payment(provider, payment_id)
            .await?
            .into_iter()
            .filter(|r| r.status.holds_amount())
            .map(|r| HeldRefund {
                id: r.id.as_str().to_owned(),
                provider_refund_id: r.provider_refund_id,
            })
            .collect();
        outside_minor(&payment.refunds, &holding, currency, payment.amount.minor)
    };
    let counted = Money::new(held.minor.saturating_add(outside), currency);
    let reported = payment
        .refunded
        .filter(|m| m.currency == currency)
        .unwrap_or(Money::zero(currency));
    let refunded = if counted.minor >= reported.minor {
        counted
    } else {
        reported
    };
    let refundable = match payment.status {
        PaymentStatus::Captured | PaymentStatus::PartiallyRefunded => payment
            .amount
            .saturating_sub(refunded)
            .unwrap_or(Money::zero(currency)),
        _ => Money::zero(currency),
    };
    Ok((refunded, refundable))
}
