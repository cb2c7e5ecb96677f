//! PayMongo's wire format (PROVIDERS.md section 2, seed S004): the JSON:API envelopes, the
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
        RefundStatus, reason,
    },
    providers::{ProviderPayment, Rejection},
};

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

/// A refund status word in the gateway's terms (S004, PROVIDERS.md section 4); `None` for
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
    /// that did not fail, whoever made them (so refunds made outside the gateway count).
    pub fn to_provider_payment(&self) -> Result<ProviderPayment, String> {
        let a = &self.attributes;
        let amount =
            money(a.amount, &a.currency).map_err(|e| format!("payment {}: {e}", self.id))?;
        let mut refunded = Money::zero(amount.currency);
        for r in a.refunds.iter().flatten() {
            if r.attributes.status == "failed" {
                continue;
            }
            let m = money(r.attributes.amount, &r.attributes.currency)
                .map_err(|e| format!("payment {} refund {}: {e}", self.id, r.id))?;
            refunded = refunded
                .checked_add(m)
                .map_err(|e| format!("payment {}: refunds do not add up: {e}", self.id))?;
        }
        Ok(ProviderPayment {
            status: payment_status(&a.status),
            provider_status: a.status.clone(),
            amount,
            refunded: Some(refunded),
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

/// `{"errors": [...]}` (PM-ERR).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ErrorBody {
    pub errors: Vec<ErrorItem>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ErrorItem {
    pub code: String,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub source: Option<ErrorSource>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ErrorSource {
    #[serde(default)]
    pub pointer: Option<String>,
    #[serde(default)]
    pub attribute: Option<String>,
}

impl ErrorItem {
    /// The attribute the error is about (`amount`, `notes`, ...), from `source.attribute` or
    /// the last part of `source.pointer`.
    pub fn attribute(&self) -> Option<&str> {
        let source = self.source.as_ref()?;
        source
            .attribute
            .as_deref()
            .filter(|a| !a.is_empty())
            .or_else(|| source.pointer.as_deref()?.rsplit('/').next())
            .filter(|a| !a.is_empty())
    }

    /// `code: detail`, for messages.
    pub fn describe(&self) -> String {
        match &self.detail {
            Some(detail) if !detail.is_empty() => format!("{}: {detail}", self.code),
            _ => self.code.clone(),
        }
    }
}

/// The errors of an error body; `None` when the body is not the documented shape or lists
/// no error.
pub fn parse_errors(body: &str) -> Option<Vec<ErrorItem>> {
    serde_json::from_str::<ErrorBody>(body)
        .ok()
        .map(|b| b.errors)
        .filter(|e| !e.is_empty())
}

/// What one error code answered to a refund create says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorMeaning {
    /// PayMongo refused the request and created nothing.
    Refused {
        code: ErrorCode,
        reason: &'static str,
        message: String,
    },
    /// The answer does not prove that nothing was created (a processing error, an
    /// idempotency conflict, or a code the gateway does not know).
    Uncertain,
}

/// The meaning of one error answered to a refund create of `payment_id` (PM-RERR, PM-ERR).
pub fn meaning(item: &ErrorItem, payment_id: &str) -> ErrorMeaning {
    use ErrorCode::{FailedPrecondition, InvalidArgument, NotFound};
    let detail = item.detail.as_deref().unwrap_or("");
    let attribute = item.attribute().unwrap_or("");
    let refused = |code, reason, message: String| ErrorMeaning::Refused {
        code,
        reason,
        message,
    };
    let not_refundable = |why: &str| {
        refused(
            FailedPrecondition,
            reason::PAYMENT_NOT_REFUNDABLE,
            format!("PayMongo will not refund payment {payment_id}: {why}"),
        )
    };
    match item.code.as_str() {
        "parameter_below_minimum" if attribute == "amount" || attribute.is_empty() => refused(
            InvalidArgument,
            reason::AMOUNT_BELOW_MINIMUM,
            format!("the amount is below PayMongo's minimum for this payment ({detail})"),
        ),
        "parameter_above_maximum" if attribute == "amount" || attribute.is_empty() => {
            if detail.to_ascii_lowercase().contains("full amount") {
                refused(
                    InvalidArgument,
                    reason::PARTIAL_REFUND_NOT_SUPPORTED,
                    format!("PayMongo refunds only the whole of payment {payment_id} ({detail})"),
                )
            } else {
                refused(
                    FailedPrecondition,
                    reason::AMOUNT_EXCEEDS_REFUNDABLE,
                    format!(
                        "the amount is more than PayMongo has left to refund of payment \
                         {payment_id} ({detail})"
                    ),
                )
            }
        }
        "parameter_invalid" if attribute == "payment_id" || detail.contains("not allowed") => {
            not_refundable(&format!("refunds are not allowed for it ({detail})"))
        }
        "parameter_below_minimum"
        | "parameter_above_maximum"
        | "parameter_invalid"
        | "parameter_required"
        | "parameter_data_type_invalid"
        | "parameter_format_invalid" => refused(
            InvalidArgument,
            reason::PROVIDER_DECLINED,
            format!("PayMongo refused the refund request: {}", item.describe()),
        ),
        "resource_not_found" => refused(
            NotFound,
            reason::PAYMENT_NOT_FOUND,
            format!("PayMongo has no payment {payment_id}"),
        ),
        "resource_failed_state" => not_refundable("only paid payments can be refunded"),
        "resource_pending_state" => not_refundable("it is still pending"),
        "resource_disputed_state" => not_refundable("it is disputed"),
        "refund_not_allowed" | "payment_method_not_allowed" => {
            not_refundable(&format!("its payment method cannot be refunded ({detail})"))
        }
        "allowed_date_exceeded" => not_refundable("its refund window has passed"),
        "resource_processing_state" => not_refundable(
            "another refund of it is being processed; try again once that one completes",
        ),
        "available_balance_insufficient" => refused(
            FailedPrecondition,
            reason::PROVIDER_DECLINED,
            "the PayMongo account's balance is too low to fund this refund; try again after \
             the next payments settle"
                .to_owned(),
        ),
        "livemode_mismatched" => refused(
            FailedPrecondition,
            reason::PROVIDER_DECLINED,
            format!(
                "payment {payment_id} and the account's secret key are not in the same mode \
                 (test vs live)"
            ),
        ),
        // "provider_processing_error", "resource_processing_error", idempotency conflicts
        // and codes not documented: a refund may exist, so the outcome is reconciled.
        _ => ErrorMeaning::Uncertain,
    }
}

/// What the errors answered to a refund create mean together: a rejection (from the first
/// error; every error's text kept as the provider's message), or `None` when any of them
/// leaves the outcome uncertain.
pub fn create_rejection(errors: &[ErrorItem], payment_id: &str) -> Option<Rejection> {
    let mut first = None;
    for item in errors {
        match meaning(item, payment_id) {
            ErrorMeaning::Uncertain => return None,
            ErrorMeaning::Refused {
                code,
                reason,
                message,
            } => {
                first.get_or_insert((item, code, reason, message));
            }
        }
    }
    let (item, code, reason, message) = first?;
    let all = errors
        .iter()
        .map(ErrorItem::describe)
        .collect::<Vec<_>>()
        .join("; ");
    Some(Rejection::new(code, reason, message).with_provider(item.code.clone(), all))
}

#[cfg(test)]
mod tests;
