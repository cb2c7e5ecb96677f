//! Payments as providers report them.

use serde::{Deserialize, Serialize};

use super::{Money, PaymentRef};

/// A payment's status in the gateway's terms (CONTRACT.md, `PaymentStatus`).
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
