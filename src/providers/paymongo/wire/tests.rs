//! PayMongo's wire types against recorded and hand-written bodies.
use chrono::Utc;

use super::*;
use crate::domain::{PaymentRef, RefundId, TenantId};
use crate::providers::samples;

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
    let expected = samples::succeeded("ref_vPSqdAPD2pmtKj6Ac5SRfXjs", "succeeded", php(10000), PAY);
    assert_eq!(obs, expected);
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
        samples::assert_contradicted(&r, &obs, &json, expected, "ref_1");
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
            refunds: vec![
                domain::ReportedRefund {
                    provider_refund_id: "ref_a".into(),
                    gateway_refund_id: None,
                    amount: php(30000),
                },
                domain::ReportedRefund {
                    provider_refund_id: "ref_c".into(),
                    gateway_refund_id: None,
                    amount: php(1000),
                },
            ],
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
