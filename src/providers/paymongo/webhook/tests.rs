//! PayMongo webhook signatures and events, against the documented examples.
use http::{HeaderMap, HeaderValue};

use super::*;
use crate::domain::RefundStatus;
use crate::providers::paymongo::wire::GATEWAY_ID_KEY;

const SECRET: &[u8] = b"whsk_test_secret";
const NOW: i64 = 1_700_000_000;

/// docs/PROVIDERS.md section 2.5's vector.
#[test]
fn signature_test_vector() {
    assert_eq!(
        sign(
            b"whsk_test_secret",
            1496734173,
            br#"{"data":{"id":"evt_1","type":"event"}}"#
        ),
        "8034a98f781edb913cb333537ca0ad53ef865bac311ca7dddf43a9f824788c1b"
    );
}

fn refund(id: &str, status: &str, gateway_id: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "type": "refund",
        "attributes": {
            "amount": 5000, "currency": "PHP", "livemode": false, "notes": null,
            "payment_id": "pay_1", "reason": "others", "status": status,
            "metadata": {GATEWAY_ID_KEY: gateway_id},
            "created_at": NOW, "updated_at": NOW
        }
    })
}

fn event(event_type: &str, livemode: bool, data: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"data": {
        "id": "evt_9", "type": "event",
        "attributes": {
            "type": event_type, "livemode": livemode, "data": data,
            "previous_data": {}, "pending_webhooks": 1,
            "created_at": NOW, "updated_at": NOW
        }
    }}))
    .unwrap()
}

fn test_header(t: i64, body: &[u8]) -> String {
    format!("t={t},te={},li=", sign(SECRET, t, body))
}

fn headers(value: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("Paymongo-Signature", HeaderValue::from_str(value).unwrap());
    h
}

fn observed(n: &WebhookNotice) -> (&str, Option<&str>, RefundStatus) {
    match n {
        WebhookNotice::Observed {
            provider_refund_id,
            gateway_refund_id,
            observation,
        } => (
            provider_refund_id,
            gateway_refund_id.as_deref(),
            observation.status,
        ),
        other => panic!("{other:?}"),
    }
}

/// The header parses in any order; missing parts are refused.
#[test]
fn header_parses() {
    assert_eq!(
        Signature::parse("li=,t=12, te=ab").unwrap(),
        Signature {
            timestamp: 12,
            test: "ab".into(),
            live: String::new()
        }
    );
    for bad in [
        "",
        "t=1",
        "t=x,te=ab",
        "te=ab,li=",
        "t=1,te=,li=",
        "t1,te=ab",
    ] {
        assert!(Signature::parse(bad).is_err(), "{bad:?}");
    }
}

/// `payment.refund.updated` with a Refund inside names that refund, with its gateway id
/// and mapped status.
#[test]
fn refund_updated_with_a_refund() {
    let body = event(REFUND_UPDATED, false, refund("ref_1", "succeeded", "rf_x"));
    let notices = parse(
        SECRET,
        &headers(&test_header(NOW, &body)),
        &body,
        Some(false),
        NOW,
    )
    .unwrap();
    assert_eq!(notices.len(), 1);
    assert_eq!(
        observed(&notices[0]),
        ("ref_1", Some("rf_x"), RefundStatus::Succeeded)
    );
}

/// `payment.refund.updated` with a Payment inside, and `payment.refunded`, name every
/// refund of the payment.
#[test]
fn payment_inside_names_every_refund() {
    let payment = serde_json::json!({
        "id": "pay_1", "type": "payment",
        "attributes": {
            "amount": 20000, "currency": "PHP", "status": "paid", "livemode": false,
            "refunds": [refund("ref_1", "succeeded", "rf_a"), refund("ref_2", "failed", "rf_b")]
        }
    });
    for event_type in [REFUND_UPDATED, PAYMENT_REFUNDED] {
        let body = event(event_type, false, payment.clone());
        let notices = parse(SECRET, &headers(&test_header(NOW, &body)), &body, None, NOW).unwrap();
        let got: Vec<_> = notices.iter().map(observed).collect();
        assert_eq!(
            got,
            [
                ("ref_1", Some("rf_a"), RefundStatus::Succeeded),
                ("ref_2", Some("rf_b"), RefundStatus::Failed)
            ],
            "{event_type}"
        );
    }
}

/// Other event types are accepted and ignored; a refund event about something else is
/// malformed.
#[test]
fn other_events_are_ignored() {
    let body = event(
        "source.chargeable",
        false,
        serde_json::json!({"id": "src_1", "type": "source"}),
    );
    let h = headers(&test_header(NOW, &body));
    assert_eq!(parse(SECRET, &h, &body, None, NOW).unwrap(), vec![]);
    let body = event(
        REFUND_UPDATED,
        false,
        serde_json::json!({"id": "src_1", "type": "source"}),
    );
    let h = headers(&test_header(NOW, &body));
    assert!(matches!(
        parse(SECRET, &h, &body, None, NOW),
        Err(WebhookError::Malformed(_))
    ));
}

/// A forged signature, another secret, a changed body, a missing header: all refused.
#[test]
fn forged_signatures_are_refused() {
    let body = event(REFUND_UPDATED, false, refund("ref_1", "succeeded", "rf_x"));
    let good = test_header(NOW, &body);
    let other_secret = format!("t={NOW},te={},li=", sign(b"whsk_other", NOW, &body));
    let mut tampered = body.clone();
    let at = tampered.len() / 2;
    tampered[at] ^= 1;
    let cases: Vec<(HeaderMap, Vec<u8>)> = vec![
        (headers(&other_secret), body.clone()),
        (headers(&good), tampered),
        (
            headers(&format!("t={NOW},te={},li=", "0".repeat(64))),
            body.clone(),
        ),
        (headers(&format!("t={NOW},te=zz,li=")), body.clone()),
        (
            headers(&good.replace(&format!("t={NOW}"), &format!("t={}", NOW - 1))),
            body.clone(),
        ),
        (HeaderMap::new(), body.clone()),
    ];
    for (h, b) in cases {
        assert!(
            matches!(
                parse(SECRET, &h, &b, None, NOW),
                Err(WebhookError::BadSignature(_))
            ),
            "{h:?}"
        );
    }
    // Upper-case hex is still the same signature.
    let upper = format!("t={NOW},te={},li=", sign(SECRET, NOW, &body).to_uppercase());
    assert!(parse(SECRET, &headers(&upper), &body, None, NOW).is_ok());
}

/// A timestamp more than the tolerance away, in either direction, is refused even when
/// correctly signed; within it, accepted.
#[test]
fn stale_and_future_timestamps_are_refused() {
    let body = event(REFUND_UPDATED, false, refund("ref_1", "succeeded", "rf_x"));
    let tol = TOLERANCE.as_secs() as i64;
    for t in [NOW - tol - 1, NOW + tol + 1, 0] {
        let err = parse(SECRET, &headers(&test_header(t, &body)), &body, None, NOW).unwrap_err();
        assert!(matches!(err, WebhookError::BadSignature(_)), "{t}");
    }
    for t in [NOW - tol, NOW + tol] {
        assert!(
            parse(SECRET, &headers(&test_header(t, &body)), &body, None, NOW).is_ok(),
            "{t}"
        );
    }
}

/// Test events are verified against `te`, live events against `li`; a signature in the
/// wrong slot does not vouch for the event.
#[test]
fn live_and_test_mode_select_the_signature() {
    let live_body = event(REFUND_UPDATED, true, refund("ref_1", "succeeded", "rf_x"));
    let sig = sign(SECRET, NOW, &live_body);
    let live = headers(&format!("t={NOW},te=,li={sig}"));
    assert_eq!(
        parse(SECRET, &live, &live_body, Some(true), NOW)
            .unwrap()
            .len(),
        1
    );
    // The live event's signature sent as a test signature.
    let wrong_slot = headers(&format!("t={NOW},te={sig},li="));
    assert!(matches!(
        parse(SECRET, &wrong_slot, &live_body, None, NOW),
        Err(WebhookError::BadSignature(_))
    ));
    // A test event signed in the li slot.
    let test_body = event(REFUND_UPDATED, false, refund("ref_1", "succeeded", "rf_x"));
    let sig = sign(SECRET, NOW, &test_body);
    assert!(matches!(
        parse(
            SECRET,
            &headers(&format!("t={NOW},te=,li={sig}")),
            &test_body,
            None,
            NOW
        ),
        Err(WebhookError::BadSignature(_))
    ));
    // Both filled, only the right one valid: accepted.
    let both = headers(&format!("t={NOW},te={sig},li={}", "ab".repeat(32)));
    assert_eq!(
        parse(SECRET, &both, &test_body, None, NOW).unwrap().len(),
        1
    );
    // A genuine test event delivered to a live account is acknowledged and ignored.
    let h = headers(&test_header(NOW, &test_body));
    assert_eq!(
        parse(SECRET, &h, &test_body, Some(true), NOW).unwrap(),
        vec![]
    );
}

/// A correctly signed body that is not an event is malformed (400), not a bad signature.
#[test]
fn signed_garbage_is_malformed() {
    let body = b"{\"hello\":1}".to_vec();
    assert!(matches!(
        parse(SECRET, &headers(&test_header(NOW, &body)), &body, None, NOW),
        Err(WebhookError::Malformed(_))
    ));
}
