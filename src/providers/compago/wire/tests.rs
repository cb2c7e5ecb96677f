//! Compago's wire types against recorded and hand-written bodies.
use chrono::Utc;

use super::*;
use crate::domain::{PaymentRef, TenantId};
use crate::providers::samples;

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
    let expected = samples::succeeded(PAYMENT_ID, "REFUNDED", mxn(50000), PAYMENT_ID);
    assert_eq!(obs, expected);
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
            refunds: Vec::new(),
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
        let json =
            format!(r#"{{"id":"x","status":"CONFIRMED","amount":{json_amount},"currency":"MXN"}}"#);
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
        let failure = samples::assert_contradicted(&r, &obs, json, expected, PAYMENT_ID);
        assert!(failure.provider_message.contains("amount="), "{failure:?}");
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
