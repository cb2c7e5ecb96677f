//! PayMongo's wire format (docs/PROVIDERS.md section 2): the JSON:API envelopes, the
//! Refund and Payment resources, the status words and what they mean for the gateway, the
//! create body, and what each documented error code says. No I/O.
//!
//! - Requests are `{"data":{"attributes":{...}}}`; answers `{"data":{"id","type","attributes"}}`;
//!   lists `{"data":[...],"has_more":bool}`.
//! - Amounts are integer centavos, PHP only; a refund is at least 100 centavos.
//! - Errors are `{"errors":[{"code","detail","source":{"pointer","attribute"}}]}`, possibly
//!   several at once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    domain::{
        self, Currency, ErrorCode, Money, Observation, Refund, RefundFailure, RefundReason,
        RefundStatus, ReportedRefund, reason,
    },
    providers::{ProviderPayment, Rejection},
};

mod errors;
pub use self::errors::*;

/// The only currency PayMongo refunds ("PHP is the only supported currency", S004).
pub const CURRENCY: &str = "PHP";

/// The smallest refund, in centavos (S004: "minimum amount of 100").
pub const MIN_REFUND_CENTAVOS: i64 = 100;

/// The longest `notes` PayMongo keeps (S004: "The maximum characters is 255").
pub const MAX_NOTES_CHARS: usize = 255;

/// The metadata key under which the gateway sends its own refund id, so a refund whose
/// create answer was lost can be found again by listing the payment's refunds. Callers may
/// not use it.
pub const GATEWAY_ID_KEY: &str = "refund_gateway_id";

/// `{"data": T}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub data: T,
}

/// A page of a list: `{"data": [...], "has_more": bool}`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct List<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub has_more: bool,
}

/// A resource: `{"id", "type", "attributes"}`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Resource<A> {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub attributes: A,
}

pub type RefundResource = Resource<RefundAttributes>;
pub type PaymentResource = Resource<PaymentAttributes>;

/// A Refund's attributes (S004, PM-PY `refund_entity.py`). Fields the gateway does not use
/// (`payout_id`, `balance_transaction_id`, `available_at`, ...) are ignored.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct RefundAttributes {
    /// Centavos.
    pub amount: i64,
    pub currency: String,
    #[serde(default)]
    pub livemode: bool,
    #[serde(default)]
    pub notes: Option<String>,
    pub payment_id: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// `pending`, `processing`, `succeeded`, `failed`; kept as text so a word PayMongo adds
    /// later is seen (and reviewed) rather than making the whole answer unreadable.
    pub status: String,
    /// String values only (S004); read leniently.
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub created_at: Option<i64>,
    #[serde(default)]
    pub updated_at: Option<i64>,
}

/// A Payment's attributes (PM-PAY), as far as refunds are concerned.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PaymentAttributes {
    /// Centavos.
    pub amount: i64,
    pub currency: String,
    /// `paid`, `failed`, likely `pending`; the full list is not documented.
    pub status: String,
    #[serde(default)]
    pub livemode: bool,
    /// Every refund of the payment, made through the gateway or not.
    #[serde(default)]
    pub refunds: Option<Vec<RefundResource>>,
}

/// The payment's status in the gateway's terms. Only `paid` is refundable (PM-RERR
/// `resource_failed_state`); a word not listed here is treated as not (yet) paid.
pub fn payment_status(word: &str) -> domain::PaymentStatus {
    use domain::PaymentStatus as P;
    match word {
        "paid" => P::Captured,
        "failed" => P::Failed,
        "cancelled" | "canceled" | "voided" | "expired" => P::Canceled,
        "refunded" => P::Refunded,
        "partially_refunded" => P::PartiallyRefunded,
        // "pending", "awaiting_payment_method", "awaiting_next_action", "processing", and
        // anything unknown: not refundable.
        _ => P::Pending,
    }
}

/// A refund status word in the gateway's terms (docs/PROVIDERS.md sections 2.3 and 4); `None` for
/// a word PayMongo does not document.
pub fn refund_status(word: &str) -> Option<RefundStatus> {
    match word {
        "pending" | "processing" => Some(RefundStatus::Processing),
        "succeeded" => Some(RefundStatus::Succeeded),
        "failed" => Some(RefundStatus::Failed),
        _ => None,
    }
}

/// `RefundReason` as PayMongo's `reason` (S004).
pub fn reason_word(reason: RefundReason) -> &'static str {
    match reason {
        RefundReason::Duplicate => "duplicate",
        RefundReason::Fraudulent => "fraudulent",
        RefundReason::RequestedByCustomer => "requested_by_customer",
        RefundReason::Other => "others",
    }
}

/// Centavos of PHP as money, refusing anything but a positive PHP amount.
pub fn money(amount: i64, currency: &str) -> Result<Money, String> {
    if currency != CURRENCY {
        return Err(format!("currency {currency:?} instead of {CURRENCY}"));
    }
    let currency = Currency::parse(currency).map_err(|e| e.to_string())?;
    if amount <= 0 {
        return Err(format!("amount {amount} is not positive"));
    }
    Ok(Money::new(amount, currency))
}

impl PaymentResource {
    /// The payment in the gateway's terms. What has been refunded is the sum of its refunds
    /// that did not fail (pending, processing or succeeded), whoever made them (so refunds
    /// made outside the gateway count), each also listed for the over-refund guard.
    pub fn to_provider_payment(&self) -> Result<ProviderPayment, String> {
        let a = &self.attributes;
        let amount =
            money(a.amount, &a.currency).map_err(|e| format!("payment {}: {e}", self.id))?;
        let mut refunded = Money::zero(amount.currency);
        let mut refunds = Vec::new();
        for r in a.refunds.iter().flatten() {
            if r.attributes.status == "failed" {
                continue;
            }
            let m = money(r.attributes.amount, &r.attributes.currency)
                .map_err(|e| format!("payment {} refund {}: {e}", self.id, r.id))?;
            refunded = refunded
                .checked_add(m)
                .map_err(|e| format!("payment {}: refunds do not add up: {e}", self.id))?;
            refunds.push(ReportedRefund {
                provider_refund_id: r.id.clone(),
                gateway_refund_id: r.gateway_id().map(str::to_owned),
                amount: m,
            });
        }
        Ok(ProviderPayment {
            status: payment_status(&a.status),
            provider_status: a.status.clone(),
            amount,
            refunded: Some(refunded),
            refunds,
            needs_bank_account: false,
        })
    }
}

impl RefundResource {
    /// The gateway refund id the refund carries in its metadata, if any.
    pub fn gateway_id(&self) -> Option<&str> {
        self.attributes
            .metadata
            .as_ref()?
            .get(GATEWAY_ID_KEY)?
            .as_str()
    }

    /// What the refund's status says, on its own (webhooks: the refund's record is not at
    /// hand). A status word PayMongo does not document needs a person.
    pub fn observe(&self) -> Observation {
        let word = &self.attributes.status;
        let (status, failure) = match refund_status(word) {
            Some(RefundStatus::Failed) => (
                RefundStatus::Failed,
                Some(
                    RefundFailure::new(
                        reason::PROVIDER_DECLINED,
                        format!(
                            "PayMongo could not process refund {}; nothing was refunded. \
                             PayMongo advises refunding again, and contacting its support if \
                             it keeps failing",
                            self.id
                        ),
                    )
                    .with_provider(
                        "failed",
                        format!(
                            "refund {} of payment {} failed",
                            self.id, self.attributes.payment_id
                        ),
                    ),
                ),
            ),
            Some(status) => (status, None),
            None => (
                RefundStatus::RequiresReview,
                Some(
                    RefundFailure::new(
                        reason::PROVIDER_BAD_RESPONSE,
                        format!(
                            "PayMongo reports refund {} with status {word:?}, which the gateway \
                             does not know; check it at PayMongo",
                            self.id
                        ),
                    )
                    .with_provider(word.clone(), ""),
                ),
            ),
        };
        let obs = Observation {
            status,
            provider_refund_id: Some(self.id.clone()),
            provider_status: Some(word.clone()),
            failure,
            amount: None,
            payment_id: Some(self.attributes.payment_id.clone()),
        };
        // The amount and currency PayMongo states, for the gateway's integrity rule
        // (`Refund::observe`); a currency that is not one cannot be compared, so it needs a
        // person.
        match Currency::parse(&self.attributes.currency) {
            Ok(currency) => Observation {
                amount: Some(Money::new(self.attributes.amount, currency)),
                ..obs
            },
            Err(_) => obs.contradicted(
                &[format!(
                    "currency {:?}, which is not a currency",
                    self.attributes.currency
                )],
                &self.attributes.payment_id,
            ),
        }
    }

    /// What this answer says about `refund`: [`Self::observe`], whose payment, amount and
    /// currency the gateway's integrity rule checks (`Refund::observe`); and, checked here
    /// since only PayMongo's answers carry it, the gateway id in its metadata: another
    /// refund's id there means this is not the refund asked for, and it needs review.
    pub fn observe_for(&self, refund: &Refund) -> Observation {
        let obs = self.observe();
        match self.gateway_id() {
            Some(id) if id != refund.id.as_str() => obs.contradicted(
                &[format!(
                    "{GATEWAY_ID_KEY} {id:?} instead of {:?}",
                    refund.id.as_str()
                )],
                &refund.payment.payment_id,
            ),
            _ => obs,
        }
    }
}

/// `POST /v1/refunds` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CreateRefundRequest<'a> {
    pub data: CreateRefundData<'a>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CreateRefundData<'a> {
    pub attributes: CreateRefundAttributes<'a>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CreateRefundAttributes<'a> {
    /// Centavos.
    pub amount: i64,
    pub payment_id: &'a str,
    pub reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<&'a str>,
    /// The caller's metadata and the gateway's refund id under [`GATEWAY_ID_KEY`].
    pub metadata: BTreeMap<&'a str, &'a str>,
}

impl<'a> CreateRefundRequest<'a> {
    /// The body for a recorded refund: its amount, payment, reason, description as `notes`
    /// (left out when empty) and metadata plus its own id.
    pub fn for_refund(refund: &'a Refund) -> Self {
        let mut metadata: BTreeMap<&str, &str> = refund
            .metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        metadata.insert(GATEWAY_ID_KEY, refund.id.as_str());
        let notes = refund.description.as_str();
        Self {
            data: CreateRefundData {
                attributes: CreateRefundAttributes {
                    amount: refund.amount.minor,
                    payment_id: &refund.payment.payment_id,
                    reason: reason_word(refund.reason),
                    notes: (!notes.is_empty()).then_some(notes),
                    metadata,
                },
            },
        }
    }
}

#[cfg(test)]
mod tests;
