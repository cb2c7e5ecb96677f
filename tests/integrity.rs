//! The integrity rule and the status machine through the whole gateway (gRPC API, real HTTP
//! to the PayMongo simulator, signed webhooks to the gateway's HTTP port):
//!
//! - a create answer, or a signed webhook, whose amount or payment differs from the refund
//!   moves the refund to REQUIRES_REVIEW (PROVIDER_MISMATCH) instead of being accepted; the
//!   change is streamed and counted in `refund_gateway_refunds_requires_review_total`;
//! - a provider reporting an impossible change (a FAILED refund as succeeded) is refused,
//!   logged and counted in `refund_gateway_refund_transitions_refused_total`, and the record
//!   and the event feed stay as they were.

mod support;

use std::time::Duration;

use refund_gateway::{
    pb,
    providers::paymongo::{webhook, wire::GATEWAY_ID_KEY},
};
use serde_json::json;
use simulators::{
    PAYMONGO_SANDBOX_WEBHOOK_SECRET,
    paymongo::{
        fixtures::{PAID_25000, PAID_50000, PAID_123456},
        state::{Faults, Outcome, SettingsPatch},
    },
};
use support::{
    gateway::{Gateway, Setup},
    messages::{metric, money, paymongo_payment, request, status_of},
};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A signed `payment.refund.updated` event about `refund` as PayMongo would send it, with
/// the given status, amount and payment.
fn refund_event(refund: &pb::Refund, status: &str, amount: i64, payment_id: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"data": {
        "id": format!("evt_{}", uuid::Uuid::new_v4().simple()),
        "type": "event",
        "attributes": {
            "type": "payment.refund.updated",
            "livemode": false,
            "data": {
                "id": refund.provider_refund_id,
                "type": "refund",
                "attributes": {
                    "amount": amount,
                    "currency": "PHP",
                    "livemode": false,
                    "metadata": {GATEWAY_ID_KEY: refund.id},
                    "notes": null,
                    "payment_id": payment_id,
                    "reason": "requested_by_customer",
                    "status": status,
                    "created_at": now(),
                    "updated_at": now()
                }
            },
            "previous_data": {},
            "pending_webhooks": 1,
            "created_at": now(),
            "updated_at": now()
        }
    }}))
    .unwrap()
}

/// Delivers `body` to the gateway's PayMongo webhook, signed with the sandbox secret.
async fn deliver(gw: &Gateway, body: &[u8]) -> u16 {
    let t = now();
    let signature = webhook::sign(PAYMONGO_SANDBOX_WEBHOOK_SECRET.as_bytes(), t, body);
    gw.http
        .post(format!(
            "http://{}/webhooks/paymongo/paymongo",
            gw.running.http_addr
        ))
        .header("content-type", "application/json")
        .header("Paymongo-Signature", format!("t={t},te={signature},li="))
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn review_count(gw: &Gateway) -> f64 {
    metric(
        &gw.metrics().await,
        "refund_gateway_refunds_requires_review_total",
        &[("provider", "paymongo"), ("reason", "PROVIDER_MISMATCH")],
    )
}

/// PayMongo takes a 100.00 refund but its answer says 100.01: the refund is not accepted as
/// it is. CreateRefund returns it REQUIRES_REVIEW with PROVIDER_MISMATCH, the change is on
/// the event feed, and the review counter went up. The simulator holds the one refund.
#[tokio::test]
async fn a_misreported_create_answer_sends_the_refund_to_review() {
    let gw = Gateway::start(Setup {
        // Only the create answer decides here; the worker reads it back much later.
        first_check_ms: 60_000,
        ..Setup::default()
    })
    .await;
    gw.paymongo()
        .update_settings(&SettingsPatch {
            settle_delay_ms: Some(600_000),
            ..SettingsPatch::default()
        })
        .unwrap();
    gw.paymongo()
        .set_faults(Faults {
            misreport_refund_amount: true,
            ..Faults::default()
        })
        .unwrap();
    let reviewed_before = review_count(&gw).await;
    let refund = gw
        .client
        .clone()
        .create_refund(request(
            "misreported",
            "paymongo",
            paymongo_payment(PAID_50000),
            Some(money("PHP", 10_000)),
        ))
        .await
        .expect("the provider took the refund: it is returned, not an error")
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(status_of(&refund), pb::RefundStatus::RequiresReview);
    let failure = refund.failure.clone().expect("the failure says why");
    assert_eq!(failure.code, "PROVIDER_MISMATCH");
    assert!(
        failure
            .message
            .contains("amount 100.01 PHP instead of 100.00 PHP"),
        "{}",
        failure.message
    );
    assert!(
        !refund.provider_refund_id.is_empty(),
        "the provider's id is kept"
    );

    let events = gw.events_of(&refund.id).await;
    let statuses: Vec<_> = events
        .iter()
        .map(|e| status_of(e.refund.as_ref().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [pb::RefundStatus::Pending, pb::RefundStatus::RequiresReview]
    );
    assert!(review_count(&gw).await >= reviewed_before + 1.0);
    assert_eq!(gw.paymongo().refunds_of(PAID_50000).len(), 1);
}

/// A refund PayMongo took correctly (PROCESSING); then a genuine, signed webhook reports it
/// for another amount, and another one for another payment: each time the refund goes to
/// REQUIRES_REVIEW (PROVIDER_MISMATCH) instead of taking the reported status, streamed and
/// counted. A webhook that matches again does not clear the review; SyncRefund does.
#[tokio::test]
async fn a_signed_webhook_that_contradicts_the_refund_sends_it_to_review() {
    let gw = Gateway::start(Setup {
        first_check_ms: 60_000,
        ..Setup::default()
    })
    .await;
    gw.paymongo()
        .update_settings(&SettingsPatch {
            settle_delay_ms: Some(600_000),
            webhooks_enabled: Some(false),
            ..SettingsPatch::default()
        })
        .unwrap();
    for (i, (amount, payment)) in [(5_001, PAID_123456), (5_000, PAID_25000)]
        .into_iter()
        .enumerate()
    {
        let refund = gw
            .client
            .clone()
            .create_refund(request(
                &format!("webhook-mismatch-{i}"),
                "paymongo",
                paymongo_payment(PAID_123456),
                Some(money("PHP", 5_000)),
            ))
            .await
            .unwrap()
            .into_inner()
            .refund
            .unwrap();
        assert_eq!(status_of(&refund), pb::RefundStatus::Processing);
        let reviewed_before = review_count(&gw).await;

        let body = refund_event(&refund, "succeeded", amount, payment);
        assert_eq!(deliver(&gw, &body).await, 200);
        let after = gw.get(&refund.id).await;
        assert_eq!(
            status_of(&after),
            pb::RefundStatus::RequiresReview,
            "{after:?}"
        );
        let failure = after.failure.clone().unwrap();
        assert_eq!(failure.code, "PROVIDER_MISMATCH");
        assert!(review_count(&gw).await >= reviewed_before + 1.0);
        let events = gw.events_of(&refund.id).await;
        assert_eq!(
            events.last().map(|e| status_of(e.refund.as_ref().unwrap())),
            Some(pb::RefundStatus::RequiresReview)
        );

        // A later webhook that matches does not clear the review by itself: a person must
        // look, and a deliberate SyncRefund records the provider's word again.
        let good = refund_event(&refund, "succeeded", 5_000, PAID_123456);
        assert_eq!(deliver(&gw, &good).await, 200);
        let after = gw.get(&refund.id).await;
        assert_eq!(status_of(&after), pb::RefundStatus::RequiresReview);
        let synced = gw
            .client
            .clone()
            .sync_refund(pb::SyncRefundRequest {
                id: refund.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .refund
            .unwrap();
        assert_eq!(
            status_of(&synced),
            pb::RefundStatus::Processing,
            "{synced:?}"
        );
    }
}

/// A refund PayMongo failed is FAILED for good: a signed webhook later saying it succeeded
/// is refused (FAILED has no way out), logged and counted; the record and its events stay
/// as they were.
#[tokio::test]
async fn an_impossible_transition_is_refused_and_counted() {
    let gw = Gateway::start(Setup::default()).await;
    gw.paymongo()
        .update_settings(&SettingsPatch {
            settle_delay_ms: Some(600_000),
            ..SettingsPatch::default()
        })
        .unwrap();
    gw.paymongo().queue_outcomes([Outcome::Failed]);
    let refund = gw
        .client
        .clone()
        .create_refund(request(
            "fails-then-succeeds",
            "paymongo",
            paymongo_payment(PAID_25000),
            Some(money("PHP", 10_000)),
        ))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert!(gw.paymongo().settle_now(&refund.provider_refund_id, None));
    let failed = gw
        .wait_for(&refund.id, Duration::from_secs(5), |r| {
            status_of(r) == pb::RefundStatus::Failed
        })
        .await;
    let events_before = gw.events_of(&refund.id).await;
    let refused = |text: &str| {
        metric(
            text,
            "refund_gateway_refund_transitions_refused_total",
            &[
                ("provider", "paymongo"),
                ("from", "FAILED"),
                ("to", "SUCCEEDED"),
            ],
        )
    };
    let refused_before = refused(&gw.metrics().await);

    let body = refund_event(&refund, "succeeded", 10_000, PAID_25000);
    assert_eq!(deliver(&gw, &body).await, 200);
    // SyncRefund asks the provider, which still says failed: nothing to refuse there, and
    // the record is unchanged.
    let synced = gw
        .client
        .clone()
        .sync_refund(pb::SyncRefundRequest {
            id: refund.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(synced, failed);
    assert_eq!(gw.get(&refund.id).await, failed);
    assert_eq!(gw.events_of(&refund.id).await, events_before);
    assert!(refused(&gw.metrics().await) >= refused_before + 1.0);
}
