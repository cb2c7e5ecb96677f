//! Compago's wire format (docs/PROVIDERS.md section 3): the JSON bodies, the
//! payment status word and what it means for the gateway, and the amount conversion. No I/O.
//!
//! Compago has no refund object. A refund turns a `CONFIRMED` payment into a `REFUNDED` one,
//! and the refund answer is the payment after the refund: `{id, status, amount, currency}`
//! with `id` the *payment* id and `amount` in decimal pesos (major units, not centavos).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{
    domain::{self, Currency, Money, Observation, Refund, RefundStatus},
    providers::{ProviderPayment, json_decimal},
};

/// The only currency of saved-card charges and refunds ("Only MXN … currently supported").
pub const CURRENCY: &str = "MXN";

/// A payment's status at Compago (S002).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    NotInitialized,
    Pending,
    Confirmed,
    Cancelled,
    Refunded,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 5] = [
        Self::NotInitialized,
        Self::Pending,
        Self::Confirmed,
        Self::Cancelled,
        Self::Refunded,
    ];

    /// The word Compago uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotInitialized => "NOT_INITIALIZED",
            Self::Pending => "PENDING",
            Self::Confirmed => "CONFIRMED",
            Self::Cancelled => "CANCELLED",
            Self::Refunded => "REFUNDED",
        }
    }

    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == word)
    }

    /// The payment's status in the gateway's terms. Only `CONFIRMED` is refundable.
    pub fn payment_status(self) -> domain::PaymentStatus {
        match self {
            Self::NotInitialized | Self::Pending => domain::PaymentStatus::Pending,
            Self::Confirmed => domain::PaymentStatus::Captured,
            Self::Cancelled => domain::PaymentStatus::Canceled,
            Self::Refunded => domain::PaymentStatus::Refunded,
        }
    }

    /// What the payment's status says about a refund of it: refunds are synchronous and
    /// full, so `REFUNDED` means the refund succeeded and any other status means there is
    /// no refund.
    pub fn refund_status(self) -> Option<RefundStatus> {
        match self {
            Self::Refunded => Some(RefundStatus::Succeeded),
            Self::NotInitialized | Self::Pending | Self::Confirmed | Self::Cancelled => None,
        }
    }
}

/// `GET /api/payment-method/{id}/payment/{paymentId}`, an item of the payment list, and the
/// answer to a refund (S000, S002).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Payment {
    pub id: String,
    pub status: PaymentStatus,
    /// Decimal pesos, read exactly.
    #[serde(with = "json_decimal")]
    pub amount: Decimal,
    pub currency: String,
    /// Only in list items.
    #[serde(default, rename = "createdAt")]
    pub created_at: Option<String>,
}

/// The answer to a refund is the payment after the refund.
pub type RefundResponse = Payment;

/// `GET /api/payment-method/{id}/payment`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentList {
    pub count: u64,
    pub page: u32,
    pub page_size: u32,
    pub items: Vec<Payment>,
}

/// `POST /api/payment-method/{id}/payment/{paymentId}/refund`: `{"reason": "…"}`, the reason
/// left out when there is none (it is optional).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RefundRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
}

impl<'a> RefundRequest<'a> {
    /// The refund's description is sent as Compago's `reason` (`description` in
    /// proto/refunds/v1/refund_service.proto).
    pub fn for_refund(refund: &'a Refund) -> Self {
        let reason = refund.description.as_str();
        Self {
            reason: (!reason.is_empty()).then_some(reason),
        }
    }
}

/// Converts Compago's decimal pesos into money, exactly: `505.95` MXN is 50595 centavos, and
/// an amount that is not a whole number of the currency's minor units (`1.005`), not positive,
/// or in an unknown currency is refused.
pub fn money(amount: Decimal, currency: &str) -> Result<Money, String> {
    let currency = Currency::parse(currency)
        .map_err(|e| format!("currency {currency:?} is not usable: {e}"))?;
    if amount <= Decimal::ZERO {
        return Err(format!("amount {amount} {currency} is not positive"));
    }
    Money::from_major(amount, currency).map_err(|e| format!("amount {amount} {currency}: {e}"))
}

impl Payment {
    pub fn money(&self) -> Result<Money, String> {
        money(self.amount, &self.currency).map_err(|e| format!("payment {}: {e}", self.id))
    }

    /// The payment in the gateway's terms. A `REFUNDED` payment was refunded in full.
    pub fn to_provider_payment(&self) -> Result<ProviderPayment, String> {
        let amount = self.money()?;
        Ok(ProviderPayment {
            status: self.status.payment_status(),
            provider_status: self.status.as_str().to_owned(),
            amount,
            refunded: (self.status == PaymentStatus::Refunded).then_some(amount),
            refunds: Vec::new(),
            needs_bank_account: false,
        })
    }

    /// What this answer (to the refund POST, or a read of the payment that shows it
    /// `REFUNDED`) says about `refund`: `SUCCEEDED`, with the payment's id, amount and
    /// currency as Compago states them, for the gateway's integrity rule
    /// (`Refund::observe`) to check against the refund. What only Compago can say is checked
    /// here: a status other than `REFUNDED`, or an amount that cannot be one (not a whole
    /// number of centavos, not positive, an unknown currency), needs review.
    pub fn observe_refund(&self, refund: &Refund) -> Observation {
        let mut odd = Vec::new();
        if self.status != PaymentStatus::Refunded {
            odd.push(format!(
                "status {} instead of REFUNDED",
                self.status.as_str()
            ));
        }
        let amount = match money(self.amount, &self.currency) {
            Ok(amount) => Some(amount),
            Err(e) => {
                odd.push(format!("an amount that cannot be the refund's ({e})"));
                None
            }
        };
        // Compago may write the UUID in another case: the same UUID is the refund's payment.
        let payment_id = if same_uuid(&self.id, &refund.payment.payment_id) {
            refund.payment.payment_id.clone()
        } else {
            self.id.clone()
        };
        let obs = Observation {
            status: RefundStatus::Succeeded,
            // Compago has no refund id: the refund is known by its payment.
            provider_refund_id: Some(refund.payment.payment_id.clone()),
            provider_status: Some(self.status.as_str().to_owned()),
            failure: None,
            amount,
            payment_id: Some(payment_id),
        };
        if odd.is_empty() {
            obs
        } else {
            obs.contradicted(&odd, &refund.payment.payment_id)
        }
    }
}

/// Whether two texts name the same UUID (Compago may write it in another case).
pub fn same_uuid(a: &str, b: &str) -> bool {
    match (uuid::Uuid::try_parse(a), uuid::Uuid::try_parse(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests;
