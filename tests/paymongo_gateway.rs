//! PayMongo through the whole gateway: each test starts a gateway in-process
//! (`app::start`, gRPC and HTTP on 127.0.0.1:0, a temporary SQLite file, a sandbox PayMongo
//! account served by the built-in simulator, a fast worker) and talks to it with the generated
//! gRPC client and plain HTTP, then checks what the simulator saw.

mod support;

use std::time::Duration;

use refund_gateway::{
    pb,
    providers::paymongo::{webhook, wire::GATEWAY_ID_KEY},
};
use serde_json::json;
use simulators::{
    PAYMONGO_SANDBOX_WEBHOOK_SECRET, PayMongoSim,
    paymongo::{
        fixtures::{
            FAILED, FULLY_REFUNDED, PAID_25000, PAID_50000, PAID_123456, PARTLY_REFUNDED, PENDING,
            WINDOW_PASSED,
        },
        state::{Faults, Outcome, RefundStatus, SettingsPatch},
    },
};
use support::gateway::{Account, Gateway as Harness, Setup};
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

const ACCOUNT: &str = "paymongo";

/// This file's gateway: one sandbox PayMongo account, a fast worker.
fn setup() -> Setup {
    Setup {
        accounts: vec![Account::sandbox(ACCOUNT)],
        max_reconcile_attempts: None,
        ..Setup::default()
    }
}

/// The shared harness, with the calls these tests make.
struct Gateway {
    harness: Harness,
}

impl std::ops::Deref for Gateway {
    type Target = Harness;

    fn deref(&self) -> &Harness {
        &self.harness
    }
}

impl std::ops::DerefMut for Gateway {
    fn deref_mut(&mut self) -> &mut Harness {
        &mut self.harness
    }
}

impl Gateway {
    async fn start() -> Self {
        Self::with(setup()).await
    }

    async fn with(setup: Setup) -> Self {
        let gateway = Self {
            harness: Harness::start(setup).await,
        };
        // Refunds stay pending at PayMongo until a test says otherwise.
        gateway.settings(SettingsPatch {
            settle_delay_ms: Some(600_000),
            ..SettingsPatch::default()
        });
        gateway
    }

    fn sim(&self) -> &PayMongoSim {
        self.paymongo()
    }

    fn settings(&self, patch: SettingsPatch) {
        self.sim().update_settings(&patch).unwrap();
    }

    fn faults(&self, faults: Faults) {
        self.sim().set_faults(faults).unwrap();
    }

    fn webhook_url(&self) -> String {
        format!(
            "http://{}/webhooks/paymongo/{ACCOUNT}",
            self.running.http_addr
        )
    }

    async fn create(
        &mut self,
        request_id: &str,
        payment: &str,
        amount: Option<i64>,
    ) -> Result<pb::Refund, Status> {
        let request = pb::CreateRefundRequest {
            request_id: request_id.into(),
            provider: ACCOUNT.into(),
            payment: Some(pb::PaymentReference {
                payment_id: payment.into(),
                ..Default::default()
            }),
            amount: amount.map(|minor| pb::Money {
                currency_code: "PHP".into(),
                minor_units: minor,
            }),
            reason: pb::RefundReason::RequestedByCustomer as i32,
            description: "Customer returned the item".into(),
            metadata: [("order".to_owned(), "A-17".to_owned())].into(),
            bank_account: None,
        };
        self.client
            .clone()
            .create_refund(request)
            .await
            .map(|r| r.into_inner().refund.unwrap())
    }

    /// Waits (at most `within`) for the refund to reach `status`.
    async fn wait_for(
        &mut self,
        id: &str,
        status: pb::RefundStatus,
        within: Duration,
    ) -> pb::Refund {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let refund = self.get(id).await;
            if refund.status == status as i32 {
                return refund;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "refund {id} is {:?}, not {status:?}, after {within:?}",
                pb::RefundStatus::try_from(refund.status)
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn list(&mut self) -> Vec<pb::Refund> {
        self.client
            .clone()
            .list_refunds(pb::ListRefundsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .refunds
    }

    /// POSTs a webhook delivery to the gateway's HTTP port.
    async fn post_webhook(&self, signature: Option<&str>, body: &[u8]) -> u16 {
        let mut request = reqwest::Client::new()
            .post(self.webhook_url())
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header("Paymongo-Signature", signature);
        }
        request.send().await.unwrap().status().as_u16()
    }
}

fn status(code: pb::RefundStatus) -> i32 {
    code as i32
}

/// The ErrorInfo reason and metadata of a gRPC error.
fn error_info(err: &Status) -> (String, std::collections::HashMap<String, String>) {
    let info = err
        .get_error_details()
        .error_info()
        .cloned()
        .expect("every error carries ErrorInfo");
    assert_eq!(info.domain, "refunds.v1");
    (info.reason, info.metadata)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A `payment.refund.updated` event saying the refund succeeded, as PayMongo would send it.
fn succeeded_event(refund: &pb::Refund) -> Vec<u8> {
    serde_json::to_vec(&json!({"data": {
        "id": "evt_ForgedOrStale000000000001",
        "type": "event",
        "attributes": {
            "type": "payment.refund.updated",
            "livemode": false,
            "data": {
                "id": refund.provider_refund_id,
                "type": "refund",
                "attributes": {
                    "amount": refund.amount.as_ref().unwrap().minor_units,
                    "currency": "PHP",
                    "livemode": false,
                    "metadata": {GATEWAY_ID_KEY: refund.id},
                    "notes": null,
                    "payment_id": refund.payment.as_ref().unwrap().payment_id,
                    "reason": "requested_by_customer",
                    "status": "succeeded",
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

/// A refund accepted by PayMongo completes by its signed webhook: WatchRefund shows
/// PROCESSING then SUCCEEDED and ends. The worker waits a minute before polling and
/// PayMongo's reads fail anyway, so polling cannot be what completed it.
#[tokio::test]
async fn refund_completes_by_signed_webhook_seen_on_watch() {
    let mut gw = Gateway::with(Setup {
        first_check_ms: 60_000,
        ..setup()
    })
    .await;
    assert_eq!(gw.sim().webhook_urls(), [gw.webhook_url()]);
    let refund = gw
        .create("req-webhook", PAID_50000, Some(20000))
        .await
        .unwrap();
    assert_eq!(refund.status, status(pb::RefundStatus::Processing));
    assert_eq!(refund.provider_status, "pending");
    assert!(refund.provider_refund_id.starts_with("ref_"));

    gw.faults(Faults {
        fail_reads_status: Some(503),
        ..Faults::default()
    });
    let mut watch = gw
        .client
        .watch_refund(pb::WatchRefundRequest {
            id: refund.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap().event.unwrap();
    assert_eq!(
        first.refund.as_ref().unwrap().status,
        status(pb::RefundStatus::Processing)
    );

    assert!(
        gw.sim()
            .settle_now(&refund.provider_refund_id, Some(Outcome::Succeeded))
    );
    let change = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("the webhook arrives")
        .unwrap()
        .unwrap()
        .event
        .unwrap();
    assert_eq!(change.previous_status, status(pb::RefundStatus::Processing));
    // Recorded as the notification's doing, with why.
    assert_eq!(first.actor, "caller:open");
    assert_eq!(first.note, "provider accepted");
    assert_eq!(change.actor, "webhook");
    assert_eq!(change.note, "provider reported SUCCEEDED");
    let done = change.refund.unwrap();
    assert_eq!(done.status, status(pb::RefundStatus::Succeeded));
    assert_eq!(done.provider_status, "succeeded");
    assert_eq!(done.failure, None);
    // A final status ends the stream.
    assert!(watch.message().await.unwrap().is_none());
    let stats = gw.sim().stats();
    assert!(stats.webhooks_sent >= 1, "{stats:?}");
    assert_eq!(
        stats.refund_reads, 0,
        "polling never got an answer: {stats:?}"
    );
}

/// With webhooks off, the worker's polling alone brings the refund to SUCCEEDED.
#[tokio::test]
async fn refund_completes_by_polling_alone() {
    let mut gw = Gateway::start().await;
    gw.settings(SettingsPatch {
        webhooks_enabled: Some(false),
        settle_delay_ms: Some(300),
        ..SettingsPatch::default()
    });
    let refund = gw.create("req-poll", PAID_123456, None).await.unwrap();
    assert_eq!(refund.amount.as_ref().unwrap().minor_units, 123456);
    let done = gw
        .wait_for(
            &refund.id,
            pb::RefundStatus::Succeeded,
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(done.provider_refund_id, refund.provider_refund_id);
    let stats = gw.sim().stats();
    assert_eq!((stats.webhook_attempts, stats.webhooks_sent), (0, 0));
    assert!(stats.refund_reads >= 1, "{stats:?}");
}

/// SyncRefund asks PayMongo at once (the worker would wait a minute) and records the answer.
#[tokio::test]
async fn sync_refund_asks_paymongo_at_once() {
    let mut gw = Gateway::with(Setup {
        first_check_ms: 60_000,
        ..setup()
    })
    .await;
    gw.settings(SettingsPatch {
        webhooks_enabled: Some(false),
        ..SettingsPatch::default()
    });
    let refund = gw.create("req-sync", PAID_50000, Some(5000)).await.unwrap();
    assert!(
        gw.sim()
            .settle_now(&refund.provider_refund_id, Some(Outcome::Succeeded))
    );
    assert_eq!(
        gw.get(&refund.id).await.status,
        status(pb::RefundStatus::Processing)
    );
    let synced = gw
        .client
        .sync_refund(pb::SyncRefundRequest {
            id: refund.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(synced.status, status(pb::RefundStatus::Succeeded));
}

/// Forged, stale, unsigned and wrongly-slotted webhooks are refused with 401 and change
/// nothing (GetRefund and the event feed are as before); the same event correctly signed
/// is taken, which shows the refused ones would have changed the refund.
#[tokio::test]
async fn forged_and_stale_webhooks_are_refused_and_change_nothing() {
    let mut gw = Gateway::start().await;
    gw.settings(SettingsPatch {
        webhooks_enabled: Some(false),
        ..SettingsPatch::default()
    });
    let refund = gw
        .create("req-forged", PAID_50000, Some(3000))
        .await
        .unwrap();
    let before = gw.get(&refund.id).await;
    let events_before = gw.events_of(&refund.id).await;
    assert_eq!(before.status, status(pb::RefundStatus::Processing));

    let body = succeeded_event(&refund);
    let secret = PAYMONGO_SANDBOX_WEBHOOK_SECRET.as_bytes();
    let t = now();
    let good = webhook::sign(secret, t, &body);
    let stale_t = t - 600;
    let mut tampered = body.clone();
    let at = tampered.len() / 2;
    tampered[at] ^= 0x01;
    let cases: Vec<(&str, Option<String>, &[u8])> = vec![
        (
            "another secret",
            Some(format!(
                "t={t},te={},li=",
                webhook::sign(b"whsk_attacker", t, &body)
            )),
            &body,
        ),
        (
            "stale but genuine",
            Some(format!(
                "t={stale_t},te={},li=",
                webhook::sign(secret, stale_t, &body)
            )),
            &body,
        ),
        (
            "tampered body",
            Some(format!("t={t},te={good},li=")),
            &tampered,
        ),
        (
            "live slot for a test event",
            Some(format!("t={t},te=,li={good}")),
            &body,
        ),
        ("no signature", None, &body),
    ];
    for (what, signature, body) in cases {
        assert_eq!(
            gw.post_webhook(signature.as_deref(), body).await,
            401,
            "{what}"
        );
    }
    assert_eq!(gw.get(&refund.id).await, before);
    assert_eq!(gw.events_of(&refund.id).await, events_before);

    assert_eq!(
        gw.post_webhook(Some(&format!("t={t},te={good},li=")), &body)
            .await,
        200
    );
    let after = gw.get(&refund.id).await;
    assert_eq!(after.status, status(pb::RefundStatus::Succeeded));
    // A repeat of the same delivery is harmless.
    assert_eq!(
        gw.post_webhook(Some(&format!("t={t},te={good},li=")), &body)
            .await,
        200
    );
    assert_eq!(
        gw.events_of(&refund.id).await.len(),
        events_before.len() + 1
    );
}

/// Amounts below PayMongo's minimum, above what is left (counting refunds made outside the
/// gateway and the gateway's own), or on a payment with nothing left are refused by the
/// gateway itself: PayMongo never sees a refund request for them.
#[tokio::test]
async fn amounts_the_gateway_can_refuse_never_reach_paymongo() {
    let mut gw = Gateway::start().await;
    let err = gw
        .create("req-min", PAID_50000, Some(99))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(error_info(&err).0, "AMOUNT_BELOW_MINIMUM");
    assert!(err.get_error_details().bad_request().is_some());

    let err = gw
        .create("req-above", PARTLY_REFUNDED, Some(70001))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let (reason, metadata) = error_info(&err);
    assert_eq!(reason, "AMOUNT_EXCEEDS_REFUNDABLE");
    assert_eq!(metadata["refundableMinorUnits"], "70000");

    let err = gw
        .create("req-none-left", FULLY_REFUNDED, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(error_info(&err).0, "NOTHING_LEFT_TO_REFUND");
    assert_eq!(gw.sim().stats().refund_posts, 0);

    // What the gateway itself holds counts too.
    gw.create("req-part", PAID_50000, Some(40000))
        .await
        .unwrap();
    let err = gw
        .create("req-rest", PAID_50000, Some(10001))
        .await
        .unwrap_err();
    assert_eq!(error_info(&err).0, "AMOUNT_EXCEEDS_REFUNDABLE");
    assert_eq!(gw.sim().stats().refund_posts, 1);

    let payment = gw
        .client
        .get_payment(pb::GetPaymentRequest {
            provider: ACCOUNT.into(),
            payment: Some(pb::PaymentReference {
                payment_id: PARTLY_REFUNDED.into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .payment
        .unwrap();
    assert_eq!(payment.status, pb::PaymentStatus::PartiallyRefunded as i32);
    assert_eq!(payment.refunded_amount.unwrap().minor_units, 30000);
    assert_eq!(payment.refundable_amount.unwrap().minor_units, 70000);
}

/// A refund made outside the gateway (from PayMongo's dashboard) counts in the same atomic
/// step as the gateway's own refunds. PayMongo here accepts refunds above what is left (the
/// real one refuses them), so only the gateway stands in the way: after a dashboard refund of
/// 200.00 on a payment of 500.00, six concurrent CreateRefund calls of 200.00 (their payment
/// lookups slowed so they all see the same report before any of them is recorded) leave
/// PayMongo holding at most 500.00; the excess is refused with AMOUNT_EXCEEDS_REFUNDABLE.
#[tokio::test]
async fn outside_refunds_count_atomically_against_concurrent_refunds() {
    const CALLS: usize = 6;
    let gw = Gateway::start().await;
    gw.settings(SettingsPatch {
        accept_over_refunds: Some(true),
        ..SettingsPatch::default()
    });
    gw.sim()
        .add_outside_refund(PAID_50000, 20000, RefundStatus::Succeeded)
        .unwrap();
    gw.faults(Faults {
        delay_ms: 300,
        ..Faults::default()
    });
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..CALLS {
        let mut client = gw.client.clone();
        calls.spawn(async move {
            client
                .create_refund(pb::CreateRefundRequest {
                    request_id: format!("req-race-{i}"),
                    provider: ACCOUNT.into(),
                    payment: Some(pb::PaymentReference {
                        payment_id: PAID_50000.into(),
                        ..Default::default()
                    }),
                    amount: Some(pb::Money {
                        currency_code: "PHP".into(),
                        minor_units: 20000,
                    }),
                    reason: pb::RefundReason::RequestedByCustomer as i32,
                    ..Default::default()
                })
                .await
        });
    }
    let (mut accepted, mut refused) = (0, 0);
    while let Some(answer) = calls.join_next().await {
        match answer.unwrap() {
            Ok(_) => accepted += 1,
            Err(err) => {
                assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
                let (reason, metadata) = error_info(&err);
                assert_eq!(reason, "AMOUNT_EXCEEDS_REFUNDABLE");
                assert_eq!(metadata["refundableMinorUnits"], "10000");
                refused += 1;
            }
        }
    }
    gw.sim().clear_faults();
    let held: i64 = gw
        .sim()
        .refunds_of(PAID_50000)
        .iter()
        .filter(|r| r.status != RefundStatus::Failed)
        .map(|r| r.amount)
        .sum();
    assert!(held <= 50000, "PayMongo holds {held} of a payment of 50000");
    assert_eq!((accepted, refused), (1, CALLS - 1));
    assert_eq!(held, 40000);
}

/// A payment that is not `paid` is refused before any refund is sent; one PayMongo refuses
/// for its own reasons comes back with PayMongo's code, and nothing was refunded.
#[tokio::test]
async fn payments_that_cannot_be_refunded_are_refused() {
    let mut gw = Gateway::start().await;
    for (request_id, payment) in [("req-pending", PENDING), ("req-failed", FAILED)] {
        let err = gw.create(request_id, payment, None).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{payment}");
        let (reason, metadata) = error_info(&err);
        assert_eq!(reason, "PAYMENT_NOT_REFUNDABLE");
        assert_eq!(metadata["paymentId"], payment);
    }
    assert_eq!(gw.sim().stats().refund_posts, 0);
    assert!(gw.list().await.is_empty());

    let err = gw
        .create("req-window", WINDOW_PASSED, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let (reason, metadata) = error_info(&err);
    assert_eq!(reason, "PAYMENT_NOT_REFUNDABLE");
    assert_eq!(metadata["providerCode"], "allowed_date_exceeded");
    let recorded = gw.list().await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].status, status(pb::RefundStatus::Failed));
    assert_eq!(
        recorded[0].failure.as_ref().unwrap().provider_code,
        "allowed_date_exceeded"
    );
    assert_eq!(gw.sim().stats().refunds_created, 0);
}

/// A refund PayMongo fails ends FAILED with the failure's details, and its amount is free
/// again.
#[tokio::test]
async fn failed_refund_carries_its_failure_details() {
    let mut gw = Gateway::start().await;
    gw.sim().queue_outcomes([Outcome::Failed]);
    gw.settings(SettingsPatch {
        settle_delay_ms: Some(200),
        ..SettingsPatch::default()
    });
    let refund = gw.create("req-fail", PAID_25000, None).await.unwrap();
    let failed = gw
        .wait_for(
            &refund.id,
            pb::RefundStatus::Failed,
            Duration::from_secs(10),
        )
        .await;
    let failure = failed.failure.unwrap();
    assert_eq!(failure.code, "PROVIDER_DECLINED");
    assert_eq!(failure.provider_code, "failed");
    assert!(
        failure.message.contains(&refund.provider_refund_id),
        "{}",
        failure.message
    );
    assert!(!failure.provider_message.is_empty());
    assert_eq!(failed.provider_status, "failed");
    // Failed refunds do not count: the whole amount can be refunded again.
    let again = gw.create("req-again", PAID_25000, None).await.unwrap();
    assert_eq!(again.amount.unwrap().minor_units, 25000);
}

/// A rate-limited PayMongo is back-off, not failure. Limited on every call: UNAVAILABLE with
/// RetryInfo, nothing recorded, and the same request_id works once the limit lifts. Limited
/// on the create only: UNAVAILABLE with RetryInfo, the refund withdrawn (CANCELED, not
/// FAILED) with its amount released, and nothing created at PayMongo.
#[tokio::test]
async fn rate_limits_are_back_off_not_failures() {
    let mut gw = Gateway::start().await;
    gw.faults(Faults {
        fail_all_status: Some(429),
        retry_after_s: Some(7),
        ..Faults::default()
    });
    let err = gw
        .create("req-limited", PAID_50000, Some(1000))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    let details = err.get_error_details();
    assert_eq!(
        details.retry_info().unwrap().retry_delay,
        Some(Duration::from_secs(7))
    );
    let (reason, metadata) = error_info(&err);
    assert_eq!(reason, "PROVIDER_RATE_LIMITED");
    assert_eq!(metadata["providerCode"], "too_many_requests");
    assert!(gw.list().await.is_empty());
    gw.sim().clear_faults();
    let refund = gw
        .create("req-limited", PAID_50000, Some(1000))
        .await
        .unwrap();
    assert_eq!(refund.status, status(pb::RefundStatus::Processing));

    gw.faults(Faults {
        fail_before_apply_status: Some(429),
        retry_after_s: Some(2),
        ..Faults::default()
    });
    let err = gw
        .create("req-limited-create", PAID_50000, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(
        err.get_error_details().retry_info().unwrap().retry_delay,
        Some(Duration::from_secs(2))
    );
    assert_eq!(error_info(&err).0, "PROVIDER_RATE_LIMITED");
    // The same request_id answers the same.
    let again = gw
        .create("req-limited-create", PAID_50000, None)
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::Unavailable);
    let withdrawn = gw
        .list()
        .await
        .into_iter()
        .find(|r| r.request_id == "req-limited-create")
        .unwrap();
    assert_eq!(withdrawn.status, status(pb::RefundStatus::Canceled));
    assert_eq!(withdrawn.failure.unwrap().code, "PROVIDER_RATE_LIMITED");
    assert!(
        gw.list()
            .await
            .iter()
            .all(|r| r.status != status(pb::RefundStatus::Failed))
    );
    assert_eq!(gw.sim().stats().refunds_created, 1);

    gw.sim().clear_faults();
    let rest = gw
        .create("req-after-limit", PAID_50000, None)
        .await
        .unwrap();
    assert_eq!(rest.amount.unwrap().minor_units, 49000);
}

/// The create reaches PayMongo but its answer comes after the adapter's timeout: the refund
/// is PENDING (not failed), then reconciled from PayMongo's refunds of the payment, with
/// exactly one refund at PayMongo.
#[tokio::test]
async fn unknown_outcome_is_reconciled_to_exactly_one_refund() {
    let mut gw = Gateway::with(Setup {
        timeout_ms: 400,
        ..setup()
    })
    .await;
    gw.settings(SettingsPatch {
        webhooks_enabled: Some(false),
        settle_delay_ms: Some(1_000),
        ..SettingsPatch::default()
    });
    gw.faults(Faults {
        refund_delay_ms: 1_500,
        ..Faults::default()
    });
    let refund = gw
        .create("req-unknown", PAID_50000, Some(15000))
        .await
        .unwrap();
    assert_eq!(refund.status, status(pb::RefundStatus::Pending));
    assert_eq!(refund.provider_refund_id, "");
    let done = gw
        .wait_for(
            &refund.id,
            pb::RefundStatus::Succeeded,
            Duration::from_secs(15),
        )
        .await;
    let at_paymongo = gw.sim().refunds_of(PAID_50000);
    assert_eq!(at_paymongo.len(), 1, "{at_paymongo:?}");
    assert_eq!(done.provider_refund_id, at_paymongo[0].id);
    let stats = gw.sim().stats();
    // Found by listing the payment's refunds: never sent again.
    assert_eq!((stats.refund_posts, stats.refunds_created), (1, 1));
    assert!(stats.refund_lists >= 1, "{stats:?}");
}

/// The create is applied but its answer is lost (502), and PayMongo's lists do not show the
/// new refund yet: the gateway, seeing no trace, sends it again once the attempt is surely
/// over, and PayMongo replays its first answer for the same Idempotency-Key. Exactly one
/// refund exists at PayMongo, and the gateway's refund is that one.
#[tokio::test]
async fn lost_answer_is_recovered_by_idempotent_replay() {
    let mut gw = Gateway::with(Setup {
        timeout_ms: 300,
        ..setup()
    })
    .await;
    gw.settings(SettingsPatch {
        webhooks_enabled: Some(false),
        settle_delay_ms: Some(200),
        ..SettingsPatch::default()
    });
    gw.faults(Faults {
        fail_after_apply_status: Some(502),
        lists_omit_api_refunds: true,
        ..Faults::default()
    });
    let refund = gw
        .create("req-replay", PAID_50000, Some(8000))
        .await
        .unwrap();
    assert_eq!(refund.status, status(pb::RefundStatus::Pending));
    gw.faults(Faults {
        lists_omit_api_refunds: true,
        ..Faults::default()
    });
    let done = gw
        .wait_for(
            &refund.id,
            pb::RefundStatus::Succeeded,
            Duration::from_secs(20),
        )
        .await;
    let at_paymongo = gw.sim().refunds_of(PAID_50000);
    assert_eq!(at_paymongo.len(), 1, "{at_paymongo:?}");
    assert_eq!(done.provider_refund_id, at_paymongo[0].id);
    let stats = gw.sim().stats();
    assert_eq!(
        (
            stats.refund_posts,
            stats.refunds_created,
            stats.idempotent_replays
        ),
        (2, 1, 1)
    );
}

/// A create that PayMongo answered 503 without doing anything is "unknown" too; once the
/// attempt is surely over and PayMongo shows no trace of it, the gateway sends it again
/// (same Idempotency-Key) and PayMongo ends up with exactly one refund.
#[tokio::test]
async fn absent_refund_is_sent_again_once() {
    let mut gw = Gateway::with(Setup {
        timeout_ms: 300,
        ..setup()
    })
    .await;
    gw.settings(SettingsPatch {
        webhooks_enabled: Some(false),
        settle_delay_ms: Some(200),
        ..SettingsPatch::default()
    });
    gw.faults(Faults {
        fail_before_apply_status: Some(503),
        ..Faults::default()
    });
    let refund = gw
        .create("req-absent", PAID_123456, Some(10000))
        .await
        .unwrap();
    assert_eq!(refund.status, status(pb::RefundStatus::Pending));
    gw.sim().clear_faults();
    // The gateway waits out the attempt (timeout + 5 s margin) before sending again.
    let done = gw
        .wait_for(
            &refund.id,
            pb::RefundStatus::Succeeded,
            Duration::from_secs(20),
        )
        .await;
    let at_paymongo = gw.sim().refunds_of(PAID_123456);
    assert_eq!(at_paymongo.len(), 1, "{at_paymongo:?}");
    assert_eq!(done.provider_refund_id, at_paymongo[0].id);
    let stats = gw.sim().stats();
    assert_eq!((stats.refund_posts, stats.refunds_created), (2, 1));
}
