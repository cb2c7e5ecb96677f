//! What has been refunded of a payment and what is left: pure arithmetic shared by
//! GetPayment and the reservation.

use crate::{
    domain::{Money, PaymentStatus},
    providers::ProviderPayment,
};

/// What has been refunded of `payment` (the larger of what the provider reports and `held`,
/// what the gateway's refunds that still hold money add up to), and what is left.
pub(super) fn refunded_and_left(payment: &ProviderPayment, held: Money) -> (Money, Money) {
    let currency = payment.amount.currency;
    let reported = payment
        .refunded
        .filter(|m| m.currency == currency)
        .unwrap_or(Money::zero(currency));
    let refunded = if held.minor >= reported.minor {
        held
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
    (refunded, refundable)
}
