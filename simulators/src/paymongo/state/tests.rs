//! Tests of the PayMongo simulator's refund rules.

use chrono::Duration as ChronoDuration;

use super::*;
use crate::paymongo::fixtures::*;

fn attrs(amount: i64, payment_id: &str) -> Value {
    json!({"amount": amount, "payment_id": payment_id, "reason": "others",
               "metadata": {"order_id": "rf_1"}})
}

fn codes(answer: &Answer) -> Vec<&str> {
    answer.body["errors"]
        .as_array()
        .map(|e| e.iter().filter_map(|i| i["code"].as_str()).collect())
        .unwrap_or_default()
}

/// A refund of a paid payment is created pending; what is left shrinks; more than what
/// is left is parameter_above_maximum; refunds that failed do not count.
#[test]
fn refunds_respect_what_is_left() {
    let mut s = State::with_fixtures();
    let now = Utc::now();
    let p = s.payments[PARTLY_REFUNDED].clone();
    assert_eq!(s.remaining(&p), 70000);
    let r = s.create_refund(&attrs(70001, PARTLY_REFUNDED), None, now);
    assert_eq!(
        (r.answer.status, codes(&r.answer)),
        (400, vec!["parameter_above_maximum"])
    );
    let r = s.create_refund(&attrs(70000, PARTLY_REFUNDED), None, now);
    assert_eq!(r.answer.status, 200);
    assert_eq!(r.answer.body["data"]["attributes"]["status"], "pending");
    let id = r.created.unwrap();
    assert_eq!(s.remaining(&s.payments[PARTLY_REFUNDED].clone()), 0);
    s.settle(&id, Some(Outcome::Failed), now).unwrap();
    assert_eq!(s.remaining(&s.payments[PARTLY_REFUNDED].clone()), 70000);
    assert_eq!(s.stats.refunds_created, 1);
}

/// With `accept_over_refunds` the simulator takes a refund above what is left (PayMongo
/// would not), so only the gateway's guard stands between a caller and an over-refund.
#[test]
fn over_refunds_accepted_only_when_switched_on() {
    let mut s = State::with_fixtures();
    let now = Utc::now();
    s.settings
        .apply(&SettingsPatch {
            accept_over_refunds: Some(true),
            ..SettingsPatch::default()
        })
        .unwrap();
    let r = s.create_refund(&attrs(70001, PARTLY_REFUNDED), None, now);
    assert_eq!(r.answer.status, 200);
    assert_eq!(s.remaining(&s.payments[PARTLY_REFUNDED].clone()), -1);
    s.settings.accept_over_refunds = false;
    let r = s.create_refund(&attrs(100, PARTLY_REFUNDED), None, now);
    assert_eq!(codes(&r.answer), vec!["parameter_above_maximum"]);
}

/// Only paid payments; unknown ones are resource_not_found; a payment's set refusal.
#[test]
fn payment_rules() {
    let mut s = State::with_fixtures();
    let now = Utc::now();
    for (id, status, code) in [
        (PENDING, 400, "resource_failed_state"),
        (FAILED, 400, "resource_failed_state"),
        ("pay_nope", 404, "resource_not_found"),
        (WINDOW_PASSED, 400, "allowed_date_exceeded"),
        (LOW_BALANCE, 400, "available_balance_insufficient"),
    ] {
        let r = s.create_refund(&attrs(1000, id), None, now);
        assert_eq!(
            (r.answer.status, codes(&r.answer)),
            (status, vec![code]),
            "{id}"
        );
    }
    assert_eq!(s.stats.refunds_created, 0);
}

/// Validation reports every bad attribute at once.
#[test]
fn validation_reports_every_error() {
    let mut s = State::with_fixtures();
    let r = s.create_refund(
        &json!({"amount": 99, "reason": "because", "notes": "x".repeat(256), "metadata": {"n": 1}}),
        Some("k"),
        Utc::now(),
    );
    assert_eq!(r.answer.status, 400);
    assert_eq!(
        codes(&r.answer),
        [
            "parameter_below_minimum",
            "parameter_required",
            "parameter_invalid",
            "parameter_above_maximum",
            "parameter_data_type_invalid"
        ]
    );
    // Validation failures are not stored against the key.
    assert!(s.keys.is_empty());
}

/// The same key and attributes replay the first answer (a refusal too); other attributes
/// are refused; after 24 hours the key is new again.
#[test]
fn idempotency_keys_replay_for_24_hours() {
    let mut s = State::with_fixtures();
    let t0 = Utc::now();
    let first = s.create_refund(&attrs(1000, PAID_50000), Some("k1"), t0);
    assert!(first.created.is_some());
    let again = s.create_refund(
        &attrs(1000, PAID_50000),
        Some("k1"),
        t0 + ChronoDuration::hours(23),
    );
    assert!(again.replayed);
    assert_eq!(again.answer, first.answer);
    let other = s.create_refund(&attrs(2000, PAID_50000), Some("k1"), t0);
    assert_eq!(codes(&other.answer), ["idempotency_key_in_use"]);
    assert_eq!(s.stats.refunds_created, 1);

    let refused = s.create_refund(&attrs(1000, PENDING), Some("k2"), t0);
    let replayed = s.create_refund(&attrs(1000, PENDING), Some("k2"), t0);
    assert!(replayed.replayed);
    assert_eq!(replayed.answer, refused.answer);

    let later = s.create_refund(
        &attrs(1000, PAID_50000),
        Some("k1"),
        t0 + ChronoDuration::hours(25),
    );
    assert!(!later.replayed);
    assert!(later.created.is_some());
    assert_eq!(s.stats.refunds_created, 2);
}

/// Settling announces the refund: payment.refund.updated (Refund or Payment inside, as
/// set), plus payment.refunded on success; nothing when webhooks are off; only once.
#[test]
fn settling_announces_once() {
    let mut s = State::with_fixtures();
    let now = Utc::now();
    s.webhook_urls = vec!["http://a/hook".into()];
    let id = s
        .create_refund(&attrs(1000, PAID_50000), None, now)
        .created
        .unwrap();
    let deliveries = s.settle(&id, None, now).unwrap();
    let types: Vec<_> = deliveries.iter().map(|d| d.event_type.as_str()).collect();
    assert_eq!(types, ["payment.refund.updated", "payment.refunded"]);
    let body: Value = serde_json::from_slice(&deliveries[0].body).unwrap();
    assert_eq!(body["data"]["attributes"]["data"]["type"], "refund");
    assert_eq!(body["data"]["attributes"]["livemode"], false);
    assert!(s.settle(&id, None, now).is_none());

    s.settings.refund_updated_carries = RefundUpdatedCarries::Payment;
    let id = s
        .create_refund(&attrs(1000, PAID_50000), None, now)
        .created
        .unwrap();
    let deliveries = s.settle(&id, Some(Outcome::Failed), now).unwrap();
    assert_eq!(deliveries.len(), 1);
    let body: Value = serde_json::from_slice(&deliveries[0].body).unwrap();
    assert_eq!(body["data"]["attributes"]["data"]["type"], "payment");

    s.settings.webhooks_enabled = false;
    let id = s
        .create_refund(&attrs(1000, PAID_50000), None, now)
        .created
        .unwrap();
    assert_eq!(s.settle(&id, None, now).unwrap(), vec![]);
}

/// Queued outcomes are used in order, then the default.
#[test]
fn queued_outcomes_come_first() {
    let mut s = State::with_fixtures();
    let now = Utc::now();
    s.next_outcomes = VecDeque::from([Outcome::Failed]);
    let a = s
        .create_refund(&attrs(1000, PAID_50000), None, now)
        .created
        .unwrap();
    let b = s
        .create_refund(&attrs(1000, PAID_50000), None, now)
        .created
        .unwrap();
    assert_eq!(s.refunds[&a].outcome, Outcome::Failed);
    assert_eq!(s.refunds[&b].outcome, Outcome::Succeeded);
}
