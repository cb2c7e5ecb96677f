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
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::{PaymentRef, RefundId, TenantId};

    const PAY: &str = "pay_qOShdAuD3p8tKa6Ac4SRfbjs";

    /// S004: the documented Refund resource.
    const S004_REFUND: &str = r#"{
      "data": {
        "id": "ref_vPSqdAPD2pmtKj6Ac5SRfXjs",
        "type": "refund",
        "attributes": {
          "amount": 10000,
          "currency": "PHP",
          "livemode": true,
          "notes": "Double payment created",
          "payment_id": "pay_qOShdAuD3p8tKa6Ac4SRfbjs",
          "payout_id": null,
          "reason": "requested_by_customer",
          "status": "succeeded",
          "created_at": 1612746914,
          "updated_at": 1612746914
        }
      }
    }"#;

    fn php(minor: i64) -> Money {
        Money::new(minor, Currency::parse("PHP").unwrap())
    }

    fn refund(amount: i64) -> Refund {
        let now = Utc::now();
        Refund {
            reason: RefundReason::RequestedByCustomer,
            ..Refund::new_pending(
                TenantId::new("t"),
                "r-1",
                "paymongo",
                PaymentRef {
                    payment_id: PAY.into(),
                    ..PaymentRef::default()
                },
                php(amount),
                now,
            )
        }
    }

    fn refund_json(id: &str, amount: i64, status: &str, gateway_id: Option<&str>) -> String {
        let metadata = gateway_id
            .map(|g| format!(r#","metadata":{{"{GATEWAY_ID_KEY}":"{g}","order":"A-1"}}"#))
            .unwrap_or_default();
        format!(
            r#"{{"id":"{id}","type":"refund","attributes":{{"amount":{amount},"currency":"PHP","livemode":false,"notes":null,"payment_id":"{PAY}","reason":"others","status":"{status}"{metadata}}}}}"#
        )
    }

    fn parse_refund(json: &str) -> RefundResource {
        serde_json::from_str(json).unwrap()
    }

    /// The documented Refund parses; `succeeded` is a success for the refund it answers.
    #[test]
    fn s004_refund_parses_and_succeeds() {
        let env: Envelope<RefundResource> = serde_json::from_str(S004_REFUND).unwrap();
        let r = &env.data;
        assert_eq!(r.id, "ref_vPSqdAPD2pmtKj6Ac5SRfXjs");
        assert_eq!(r.kind, "refund");
        assert_eq!(r.attributes.amount, 10000);
        assert_eq!(
            r.attributes.notes.as_deref(),
            Some("Double payment created")
        );
        assert_eq!(r.gateway_id(), None);
        let obs = r.observe_for(&refund(10000));
        assert_eq!(
            obs,
            Observation {
                status: RefundStatus::Succeeded,
                provider_refund_id: Some("ref_vPSqdAPD2pmtKj6Ac5SRfXjs".into()),
                provider_status: Some("succeeded".into()),
                failure: None,
                amount: Some(php(10000)),
                payment_id: Some(PAY.into()),
            }
        );
    }

    /// Every documented refund status maps; an unknown one needs review.
    #[test]
    fn refund_statuses_map() {
        for (word, status) in [
            ("pending", RefundStatus::Processing),
            ("processing", RefundStatus::Processing),
            ("succeeded", RefundStatus::Succeeded),
            ("failed", RefundStatus::Failed),
            ("queued", RefundStatus::RequiresReview),
        ] {
            let obs = parse_refund(&refund_json("ref_1", 500, word, None)).observe();
            assert_eq!(obs.status, status, "{word}");
            assert_eq!(obs.provider_status.as_deref(), Some(word));
            assert_eq!(obs.provider_refund_id.as_deref(), Some("ref_1"));
            assert_eq!(
                obs.failure.is_some(),
                matches!(status, RefundStatus::Failed | RefundStatus::RequiresReview),
                "{word}"
            );
        }
        let failed = parse_refund(&refund_json("ref_1", 500, "failed", None)).observe();
        let failure = failed.failure.unwrap();
        assert_eq!(failure.code, reason::PROVIDER_DECLINED);
        assert_eq!(failure.provider_code, "failed");
        assert!(failure.message.contains("ref_1"), "{}", failure.message);
    }

    /// The gateway id is read back from metadata; another one (checked here), or another
    /// amount, payment or currency (the integrity rule, once applied to the refund), makes
    /// the answer a mismatch that needs review.
    #[test]
    fn mismatching_answers_need_review() {
        let r = refund(5000);
        let ok = parse_refund(&refund_json("ref_1", 5000, "pending", Some(r.id.as_str())));
        assert_eq!(ok.gateway_id(), Some(r.id.as_str()));
        let obs = ok.observe_for(&r);
        assert_eq!(obs.status, RefundStatus::Processing);
        assert_eq!(
            r.observe(&obs, Utc::now()).unwrap().status,
            RefundStatus::Processing
        );

        let other_id = RefundId::generate();
        let cases = [
            (
                refund_json("ref_1", 5001, "pending", None),
                "amount 50.01 PHP instead of 50.00 PHP",
            ),
            (
                refund_json("ref_1", 5000, "succeeded", Some(other_id.as_str())),
                GATEWAY_ID_KEY,
            ),
            (
                refund_json("ref_1", 5000, "pending", None).replace("PHP", "USD"),
                "currency USD instead of PHP",
            ),
            (
                refund_json("ref_1", 5000, "pending", None).replace("PHP", "P-P"),
                "currency \"P-P\"",
            ),
            (
                refund_json("ref_1", 5000, "pending", None).replace(PAY, "pay_other"),
                "payment \"pay_other\"",
            ),
        ];
        for (json, expected) in cases {
            let obs = parse_refund(&json).observe_for(&r);
            let after = r.observe(&obs, Utc::now()).unwrap();
            assert_eq!(after.status, RefundStatus::RequiresReview, "{json}");
            let failure = after.failure.unwrap();
            assert_eq!(failure.code, reason::PROVIDER_MISMATCH);
            assert!(failure.message.contains(expected), "{}", failure.message);
            assert_eq!(after.provider_refund_id.as_deref(), Some("ref_1"));
        }
    }

    /// The create body: envelope, centavos, reason word, notes from the description (left out
    /// when empty), and the caller's metadata plus the gateway id.
    #[test]
    fn create_body() {
        let mut r = refund(12345);
        r.reason = RefundReason::Duplicate;
        r.description = "Double charge".into();
        r.metadata.insert("order".into(), "A-1".into());
        let json = serde_json::to_value(CreateRefundRequest::for_refund(&r)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"data": {"attributes": {
                "amount": 12345,
                "payment_id": PAY,
                "reason": "duplicate",
                "notes": "Double charge",
                "metadata": {"order": "A-1", GATEWAY_ID_KEY: r.id.as_str()},
            }}})
        );
        r.description.clear();
        let json = serde_json::to_value(CreateRefundRequest::for_refund(&r)).unwrap();
        assert!(json["data"]["attributes"].get("notes").is_none());
        for (reason, word) in [
            (RefundReason::Duplicate, "duplicate"),
            (RefundReason::Fraudulent, "fraudulent"),
            (RefundReason::RequestedByCustomer, "requested_by_customer"),
            (RefundReason::Other, "others"),
        ] {
            assert_eq!(reason_word(reason), word);
        }
    }

    /// A payment: status mapped, amount in centavos, refunded = the refunds that did not
    /// fail (including ones made outside the gateway).
    #[test]
    fn payment_parses_with_refunds() {
        let json = format!(
            r#"{{"data":{{"id":"{PAY}","type":"payment","attributes":{{
                "amount":100000,"currency":"PHP","status":"paid","livemode":false,
                "fee":2500,"refunds":[{},{},{}]}}}}}}"#,
            refund_json("ref_a", 30000, "succeeded", None),
            refund_json("ref_b", 20000, "failed", None),
            refund_json("ref_c", 1000, "pending", None),
        );
        let env: Envelope<PaymentResource> = serde_json::from_str(&json).unwrap();
        let p = env.data.to_provider_payment().unwrap();
        assert_eq!(
            p,
            ProviderPayment {
                status: domain::PaymentStatus::Captured,
                provider_status: "paid".into(),
                amount: php(100000),
                refunded: Some(php(31000)),
                needs_bank_account: false,
            }
        );
        let bare = format!(
            r#"{{"id":"{PAY}","type":"payment","attributes":{{"amount":500,"currency":"PHP","status":"pending","refunds":null}}}}"#
        );
        let p = serde_json::from_str::<PaymentResource>(&bare)
            .unwrap()
            .to_provider_payment()
            .unwrap();
        assert_eq!(p.status, domain::PaymentStatus::Pending);
        assert_eq!(p.refunded, Some(php(0)));
        let usd = bare.replace("PHP", "USD");
        assert!(
            serde_json::from_str::<PaymentResource>(&usd)
                .unwrap()
                .to_provider_payment()
                .is_err()
        );
    }

    /// Payment status words map; only `paid` is refundable.
    #[test]
    fn payment_statuses_map() {
        use domain::PaymentStatus as P;
        for (word, status) in [
            ("paid", P::Captured),
            ("pending", P::Pending),
            ("awaiting_payment_method", P::Pending),
            ("failed", P::Failed),
            ("cancelled", P::Canceled),
            ("refunded", P::Refunded),
            ("something_new", P::Pending),
        ] {
            assert_eq!(payment_status(word), status, "{word}");
        }
    }

    /// Error bodies parse, with several errors; anything else is not an error body.
    #[test]
    fn error_bodies_parse() {
        let body = r#"{"errors":[
            {"code":"parameter_below_minimum","detail":"The amount cannot be less than 100.","source":{"pointer":"amount","attribute":"amount"}},
            {"code":"parameter_invalid","detail":"The reason passed is invalid.","source":{"pointer":"/data/attributes/reason"}}
        ]}"#;
        let errors = parse_errors(body).unwrap();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].attribute(), Some("amount"));
        assert_eq!(errors[1].attribute(), Some("reason"));
        let rejection = create_rejection(&errors, PAY).unwrap();
        assert_eq!(rejection.code, ErrorCode::InvalidArgument);
        assert_eq!(rejection.reason, reason::AMOUNT_BELOW_MINIMUM);
        assert_eq!(rejection.provider_code, "parameter_below_minimum");
        assert!(
            rejection
                .provider_message
                .contains("parameter_invalid: The reason")
        );
        for not_errors in [
            r#"{"errors":[]}"#,
            r#"{"message":"nope"}"#,
            "Too many requests, please try again later.",
            "",
        ] {
            assert_eq!(parse_errors(not_errors), None, "{not_errors}");
        }
    }

    /// Each documented refund error code has its gRPC code and reason; processing errors,
    /// idempotency conflicts and unknown codes leave the outcome uncertain.
    #[test]
    fn error_codes_map() {
        let item = |code: &str, detail: &str, attribute: Option<&str>| ErrorItem {
            code: code.into(),
            detail: Some(detail.into()),
            source: attribute.map(|a| ErrorSource {
                pointer: None,
                attribute: Some(a.into()),
            }),
        };
        let refused = |i: ErrorItem| match meaning(&i, PAY) {
            ErrorMeaning::Refused { code, reason, .. } => (code, reason),
            ErrorMeaning::Uncertain => panic!("{i:?} should be refused"),
        };
        use ErrorCode::*;
        let table = [
            (
                item("parameter_below_minimum", "", Some("amount")),
                (InvalidArgument, reason::AMOUNT_BELOW_MINIMUM),
            ),
            (
                item(
                    "parameter_above_maximum",
                    "more than remaining",
                    Some("amount"),
                ),
                (FailedPrecondition, reason::AMOUNT_EXCEEDS_REFUNDABLE),
            ),
            (
                item(
                    "parameter_above_maximum",
                    "Only full amounts are allowed to be refunded for GrabPay payments",
                    Some("amount"),
                ),
                (InvalidArgument, reason::PARTIAL_REFUND_NOT_SUPPORTED),
            ),
            (
                item("parameter_above_maximum", "too long", Some("notes")),
                (InvalidArgument, reason::PROVIDER_DECLINED),
            ),
            (
                item(
                    "parameter_invalid",
                    "Refunds are not allowed for payments with source type",
                    Some("payment_id"),
                ),
                (FailedPrecondition, reason::PAYMENT_NOT_REFUNDABLE),
            ),
            (
                item("parameter_invalid", "bad reason", Some("reason")),
                (InvalidArgument, reason::PROVIDER_DECLINED),
            ),
            (
                item("parameter_required", "", Some("amount")),
                (InvalidArgument, reason::PROVIDER_DECLINED),
            ),
            (
                item("resource_not_found", "", None),
                (NotFound, reason::PAYMENT_NOT_FOUND),
            ),
            (
                item(
                    "resource_failed_state",
                    "Only payment in paid state can be refunded",
                    None,
                ),
                (FailedPrecondition, reason::PAYMENT_NOT_REFUNDABLE),
            ),
            (
                item("resource_processing_state", "", None),
                (FailedPrecondition, reason::PAYMENT_NOT_REFUNDABLE),
            ),
            (
                item("resource_disputed_state", "", None),
                (FailedPrecondition, reason::PAYMENT_NOT_REFUNDABLE),
            ),
            (
                item("refund_not_allowed", "", None),
                (FailedPrecondition, reason::PAYMENT_NOT_REFUNDABLE),
            ),
            (
                item("allowed_date_exceeded", "", None),
                (FailedPrecondition, reason::PAYMENT_NOT_REFUNDABLE),
            ),
            (
                item("available_balance_insufficient", "", None),
                (FailedPrecondition, reason::PROVIDER_DECLINED),
            ),
            (
                item("livemode_mismatched", "", None),
                (FailedPrecondition, reason::PROVIDER_DECLINED),
            ),
        ];
        for (i, want) in table {
            assert_eq!(refused(i.clone()), want, "{i:?}");
        }
        for code in [
            "provider_processing_error",
            "resource_processing_error",
            "idempotency_key_in_use",
            "something_new",
        ] {
            assert_eq!(
                meaning(&item(code, "", None), PAY),
                ErrorMeaning::Uncertain,
                "{code}"
            );
            // One uncertain error among refusals makes the whole answer uncertain.
            let errors = [
                item("parameter_required", "", Some("notes")),
                item(code, "", None),
            ];
            assert_eq!(create_rejection(&errors, PAY), None, "{code}");
        }
    }

    /// Amounts must be positive PHP centavos.
    #[test]
    fn money_is_positive_php() {
        assert_eq!(money(100, "PHP").unwrap(), php(100));
        assert!(money(0, "PHP").is_err());
        assert!(money(-5, "PHP").is_err());
        assert!(money(100, "USD").is_err());
        assert!(money(100, "php").is_err());
    }
}
