//! Compago's wire format (PROVIDERS.md section 3, seeds S000 and S002): the JSON bodies, the
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
    /// The refund's description is sent as Compago's `reason` (CONTRACT.md).
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
mod tests {

    use chrono::Utc;

    use super::*;
    use crate::domain::{PaymentRef, TenantId, reason};

    const PAYMENT_ID: &str = "11111111-2222-3333-4444-555555555555";

    /// S000: the documented refund answer.
    const S000_REFUND_RESPONSE: &str = r#"{
      "id": "11111111-2222-3333-4444-555555555555",
      "status": "REFUNDED",
      "amount": 500,
      "currency": "MXN"
    }"#;

    /// S002: the documented payment.
    const S002_PAYMENT: &str = r#"{
      "id": "11111111-2222-3333-4444-555555555555",
      "status": "CONFIRMED",
      "amount": 500,
      "currency": "MXN"
    }"#;

    /// S002: the documented payment list.
    const S002_PAYMENT_LIST: &str = r#"{
      "count": 10,
      "page": 1,
      "pageSize": 100,
      "items": [
        {
          "id": "11111111-2222-3333-4444-555555555555",
          "status": "CONFIRMED",
          "amount": 500,
          "currency": "MXN",
          "createdAt": "2025-02-01T12:00:00Z"
        },
        {
          "id": "66666666-7777-8888-9999-000000000000",
          "status": "REFUNDED",
          "amount": 250,
          "currency": "MXN",
          "createdAt": "2025-01-15T09:30:00Z"
        }
      ]
    }"#;

    fn mxn(minor: i64) -> Money {
        Money::new(minor, Currency::parse("MXN").unwrap())
    }

    fn refund(payment_id: &str, amount: Money, description: &str) -> Refund {
        let now = Utc::now();
        Refund {
            description: description.into(),
            ..Refund::new_pending(
                TenantId::new("t"),
                "r-1",
                "compago",
                PaymentRef {
                    payment_id: payment_id.into(),
                    payment_method_id: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".into(),
                    invoice_id: String::new(),
                },
                amount,
                now,
            )
        }
    }

    fn payment(json: &str) -> Payment {
        serde_json::from_str(json).unwrap()
    }

    /// The documented refund answer parses, and it is a success for the refund it answers.
    #[test]
    fn s000_refund_response_parses_and_succeeds() {
        let answer: RefundResponse = payment(S000_REFUND_RESPONSE);
        assert_eq!(answer.id, PAYMENT_ID);
        assert_eq!(answer.status, PaymentStatus::Refunded);
        assert_eq!(answer.amount, Decimal::from(500));
        assert_eq!(answer.currency, "MXN");

        let obs = answer.observe_refund(&refund(PAYMENT_ID, mxn(50000), ""));
        assert_eq!(
            obs,
            Observation {
                status: RefundStatus::Succeeded,
                provider_refund_id: Some(PAYMENT_ID.into()),
                provider_status: Some("REFUNDED".into()),
                failure: None,
                amount: Some(mxn(50000)),
                payment_id: Some(PAYMENT_ID.into()),
            }
        );
    }

    /// The documented payment parses into 500.00 MXN, captured and refundable.
    #[test]
    fn s002_payment_parses() {
        let p = payment(S002_PAYMENT).to_provider_payment().unwrap();
        assert_eq!(
            p,
            ProviderPayment {
                status: domain::PaymentStatus::Captured,
                provider_status: "CONFIRMED".into(),
                amount: mxn(50000),
                refunded: None,
                needs_bank_account: false,
            }
        );
    }

    /// The documented payment list parses; a REFUNDED item reports its whole amount refunded.
    #[test]
    fn s002_payment_list_parses() {
        let list: PaymentList = serde_json::from_str(S002_PAYMENT_LIST).unwrap();
        assert_eq!((list.count, list.page, list.page_size), (10, 1, 100));
        assert_eq!(list.items.len(), 2);
        assert_eq!(
            list.items[0].created_at.as_deref(),
            Some("2025-02-01T12:00:00Z")
        );
        let refunded = list.items[1].to_provider_payment().unwrap();
        assert_eq!(refunded.status, domain::PaymentStatus::Refunded);
        assert_eq!(refunded.amount, mxn(25000));
        assert_eq!(refunded.refunded, Some(mxn(25000)));
    }

    /// Decimal pesos convert exactly, whatever JSON form they come in.
    #[test]
    fn decimal_pesos_convert_exactly() {
        for (json_amount, minor) in [
            ("505.95", 50595),
            ("500", 50000),
            ("500.00", 50000),
            ("0.01", 1),
            ("1234.56", 123456),
            ("5e2", 50000),
            ("\"100.00\"", 10000),
            ("0.1", 10),
            ("19999999.99", 1999999999),
        ] {
            let json = format!(
                r#"{{"id":"x","status":"CONFIRMED","amount":{json_amount},"currency":"MXN"}}"#
            );
            assert_eq!(payment(&json).money().unwrap(), mxn(minor), "{json_amount}");
        }
    }

    /// Amounts that are not a whole number of centavos, not positive, or in an unknown
    /// currency are refused rather than rounded.
    #[test]
    fn odd_amounts_are_refused() {
        for (amount, currency) in [
            ("1.005", "MXN"),
            ("500.001", "MXN"),
            ("0", "MXN"),
            ("-500", "MXN"),
            ("500", "XYZ"),
            ("500", "mxn"),
        ] {
            let json = format!(
                r#"{{"id":"x","status":"CONFIRMED","amount":{amount},"currency":"{currency}"}}"#
            );
            assert!(
                payment(&json).to_provider_payment().is_err(),
                "{amount} {currency} should be refused"
            );
        }
    }

    /// A body without a usable amount or with an unknown status does not parse at all.
    #[test]
    fn malformed_bodies_do_not_parse() {
        for json in [
            r#"{"id":"x","status":"CONFIRMED","currency":"MXN"}"#,
            r#"{"id":"x","status":"CONFIRMED","amount":null,"currency":"MXN"}"#,
            r#"{"id":"x","status":"CONFIRMED","amount":"five","currency":"MXN"}"#,
            r#"{"id":"x","status":"SETTLED","amount":5,"currency":"MXN"}"#,
            r#"{"id":"x","status":"confirmed","amount":5,"currency":"MXN"}"#,
            r#"{"id":"x","amount":5,"currency":"MXN"}"#,
            r#"{"message":"Unauthorized"}"#,
            "not json",
        ] {
            assert!(serde_json::from_str::<Payment>(json).is_err(), "{json}");
        }
    }

    /// Every status word parses and maps, and only REFUNDED means a refund exists.
    #[test]
    fn every_status_maps() {
        use domain::PaymentStatus as P;
        let table = [
            (
                "NOT_INITIALIZED",
                PaymentStatus::NotInitialized,
                P::Pending,
                None,
            ),
            ("PENDING", PaymentStatus::Pending, P::Pending, None),
            ("CONFIRMED", PaymentStatus::Confirmed, P::Captured, None),
            ("CANCELLED", PaymentStatus::Cancelled, P::Canceled, None),
            (
                "REFUNDED",
                PaymentStatus::Refunded,
                P::Refunded,
                Some(RefundStatus::Succeeded),
            ),
        ];
        assert_eq!(table.len(), PaymentStatus::ALL.len());
        for (word, wire, gateway, refund) in table {
            assert_eq!(PaymentStatus::parse(word), Some(wire));
            assert_eq!(wire.as_str(), word);
            let parsed: PaymentStatus = serde_json::from_str(&format!("\"{word}\"")).unwrap();
            assert_eq!(parsed, wire);
            assert_eq!(wire.payment_status(), gateway, "{word}");
            assert_eq!(wire.refund_status(), refund, "{word}");
        }
        assert_eq!(PaymentStatus::parse("REFUND"), None);
    }

    /// The description goes out as `reason`; without one the field is left out.
    #[test]
    fn refund_request_body() {
        let with = refund(PAYMENT_ID, mxn(50000), "Customer returned item #SKU-1234");
        assert_eq!(
            serde_json::to_string(&RefundRequest::for_refund(&with)).unwrap(),
            r#"{"reason":"Customer returned item #SKU-1234"}"#
        );
        let without = refund(PAYMENT_ID, mxn(50000), "");
        assert_eq!(
            serde_json::to_string(&RefundRequest::for_refund(&without)).unwrap(),
            "{}"
        );
    }

    /// An answer about another payment, amount or currency, or not REFUNDED, is not a
    /// success: applied to the refund (the integrity rule, for what the answer states; the
    /// adapter, for the status and amounts that cannot be), it needs review, and the failure
    /// names what differs.
    #[test]
    fn mismatching_answers_need_review() {
        let r = refund(PAYMENT_ID, mxn(50000), "");
        let cases = [
            (
                r#"{"id":"99999999-2222-3333-4444-555555555555","status":"REFUNDED","amount":500,"currency":"MXN"}"#,
                "payment \"99999999-2222-3333-4444-555555555555\"",
            ),
            (
                r#"{"id":"11111111-2222-3333-4444-555555555555","status":"REFUNDED","amount":500.01,"currency":"MXN"}"#,
                "amount 500.01 MXN instead of 500.00 MXN",
            ),
            (
                r#"{"id":"11111111-2222-3333-4444-555555555555","status":"REFUNDED","amount":50000,"currency":"MXN"}"#,
                "amount 50000.00 MXN instead of 500.00 MXN",
            ),
            (
                r#"{"id":"11111111-2222-3333-4444-555555555555","status":"REFUNDED","amount":500.005,"currency":"MXN"}"#,
                "an amount that cannot be the refund's",
            ),
            (
                r#"{"id":"11111111-2222-3333-4444-555555555555","status":"REFUNDED","amount":500,"currency":"USD"}"#,
                "currency USD instead of MXN",
            ),
            (
                r#"{"id":"11111111-2222-3333-4444-555555555555","status":"CONFIRMED","amount":500,"currency":"MXN"}"#,
                "status CONFIRMED instead of REFUNDED",
            ),
        ];
        for (json, expected) in cases {
            let obs = payment(json).observe_refund(&r);
            let after = r.observe(&obs, Utc::now()).unwrap();
            assert_eq!(after.status, RefundStatus::RequiresReview, "{json}");
            let failure = after.failure.expect("a failure says what differs");
            assert_eq!(failure.code, reason::PROVIDER_MISMATCH);
            assert!(
                failure.message.contains(expected),
                "{:?} should mention {expected:?}",
                failure.message
            );
            assert!(failure.provider_message.contains("amount="), "{failure:?}");
            assert_eq!(after.provider_refund_id.as_deref(), Some(PAYMENT_ID));
        }
    }

    /// Equal values written differently still match: 500 vs 500.00, upper-case UUIDs.
    #[test]
    fn equal_values_in_other_forms_match() {
        let r = refund(PAYMENT_ID, mxn(50000), "");
        let json = r#"{"id":"11111111-2222-3333-4444-555555555555","status":"REFUNDED","amount":500.00,"currency":"MXN"}"#;
        let obs = payment(json).observe_refund(&r);
        assert_eq!(
            r.observe(&obs, Utc::now()).unwrap().status,
            RefundStatus::Succeeded
        );
        let upper = r#"{"id":"11111111-2222-3333-4444-555555555555","status":"REFUNDED","amount":5e2,"currency":"MXN"}"#
            .replace("11111111-2222-3333-4444-555555555555", &PAYMENT_ID.to_uppercase());
        let obs = payment(&upper).observe_refund(&r);
        let after = r.observe(&obs, Utc::now()).unwrap();
        assert_eq!(after.status, RefundStatus::Succeeded, "{:?}", after.failure);
    }
}
