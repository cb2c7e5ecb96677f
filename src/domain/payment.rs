//! Payments as providers report them.

use serde::{Deserialize, Serialize};

use super::{Money, PaymentRef};

/// A payment's status in the gateway's terms (`PaymentStatus` in proto/refunds/v1/payment.proto).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    Pending,
    Captured,
    Failed,
    Canceled,
    Refunded,
    PartiallyRefunded,
}

/// A payment with what is left to refund of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    pub provider: String,
    pub payment: PaymentRef,
    pub status: PaymentStatus,
    pub provider_status: String,
    pub amount: Money,
    pub refunded: Money,
    pub refundable: Money,
}

/// One refund a provider reports on a payment, whoever made it (the gateway or someone
/// else, e.g. a refund from the provider's dashboard), that did not fail there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportedRefund {
    /// The provider's id of the refund.
    pub provider_refund_id: String,
    /// The gateway refund id the provider keeps with the refund (PayMongo: its metadata),
    /// when there is one.
    pub gateway_refund_id: Option<String>,
    pub amount: Money,
}

/// A gateway refund of a payment that holds money, as the over-refund guard sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldRefund {
    pub id: String,
    pub provider_refund_id: Option<String>,
}

/// What the provider reports as refunded of a payment beyond what the gateway already holds
/// for it, in minor units of `currency`: the guard adds it to the gateway's held refunds.
///
/// The rule: a reported refund is the gateway's own, and already counted (at the gateway's
/// amount) among the `held` ones, when it is one of them: same provider refund id, or the
/// gateway refund id the provider keeps with it. Each held refund accounts for at most one
/// reported refund (a second one naming it, e.g. from a duplicate submission, is money gone
/// all the same). Every other reported refund counts in full: one made outside the gateway,
/// or one of the gateway's refunds that no longer holds money in the store (recorded FAILED
/// or CANCELED while the provider says it did not fail). So the gateway's own refunds are
/// counted once, by the store, and outside ones are never left out. A reported refund in
/// another currency counts as everything: it cannot be added, so nothing is left.
pub fn outside_minor(
    reported: &[ReportedRefund],
    held: &[HeldRefund],
    currency: super::Currency,
    payment_minor: i64,
) -> i64 {
    let mut used = vec![false; held.len()];
    let mut outside = 0_i64;
    for r in reported {
        let own = held.iter().enumerate().position(|(i, h)| {
            !used[i]
                && (h.provider_refund_id.as_deref() == Some(r.provider_refund_id.as_str())
                    || r.gateway_refund_id.as_deref() == Some(h.id.as_str()))
        });
        if let Some(i) = own {
            used[i] = true;
            continue;
        }
        if r.amount.currency != currency {
            return payment_minor;
        }
        outside = outside.saturating_add(r.amount.minor.max(0));
    }
    outside
}
