//! The PayMongo adapter against the PayMongo simulator, over real HTTP: each test starts its
//! own simulator on 127.0.0.1:0 and drives the real `PayMongo` adapter, then checks what the
//! simulator saw. What matters most: a refund is created at most once (the idempotency key and
//! the metadata lookup), an answer that does not prove the outcome is never a failure, and a
//! webhook is believed only when PayMongo's signature says so.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, routing::post};
use chrono::Utc;
use refund_gateway::{
    domain::{
        Currency, ErrorCode, Money, Observation, PaymentRef, PaymentStatus, Refund, RefundReason,
        RefundStatus, TenantId, reason,
    },
    providers::{
        Provider, ProviderError, ProviderKind, RefundLookup, Rejection, SubmitOutcome,
        WebhookNotice,
        paymongo::{PayMongo, wire::GATEWAY_ID_KEY},
    },
};
use secrecy::SecretString;
use serde_json::Value;
use simulators::{
    PAYMONGO_SANDBOX_SECRET_KEY, PAYMONGO_SANDBOX_WEBHOOK_SECRET, RunningSandbox, Simulator,
    paymongo::{
        fixtures::{
            FAILED, LOW_BALANCE, PAID_50000, PAID_123456, PARTLY_REFUNDED, PENDING, WINDOW_PASSED,
        },
        state::{
            Faults, Outcome, RefundStatus as SimRefundStatus, RefundUpdatedCarries, SettingsPatch,
        },
    },
};
use tokio::sync::{Mutex, mpsc};

/// A running simulator and an adapter pointed at it.
struct Env {
    running: RunningSandbox,
    paymongo: PayMongo,
}

impl Env {
    async fn start() -> Self {
        Self::with_timeout(Duration::from_secs(5)).await
    }

    async fn with_timeout(timeout: Duration) -> Self {
        let running = simulators::start("127.0.0.1:0".parse().unwrap())
            .await
            .expect("the simulator starts");
        let paymongo = adapter(
            &running.base_url(Simulator::PayMongo),
            PAYMONGO_SANDBOX_SECRET_KEY,
            timeout,
        );
        // Nothing settles on its own unless a test asks.
        running
            .sandbox
            .paymongo
            .update_settings(&SettingsPatch {
                settle_delay_ms: Some(600_000),
                ..SettingsPatch::default()
            })
            .unwrap();
        Self { running, paymongo }
    }

    fn sim(&self) -> &simulators::PayMongoSim {
        &self.running.sandbox.paymongo
    }

    fn base(&self) -> String {
        self.running.base_url(Simulator::PayMongo)
    }

    fn faults(&self, faults: Faults) {
        self.sim().set_faults(faults).unwrap();
    }
}

fn adapter(base: &str, key: &str, timeout: Duration) -> PayMongo {
    PayMongo::new(
        base.to_owned(),
        SecretString::from(key),
        SecretString::from(PAYMONGO_SANDBOX_WEBHOOK_SECRET),
        timeout,
    )
}

fn php(minor: i64) -> Money {
    Money::new(minor, Currency::parse("PHP").unwrap())
}

fn pay_ref(payment: &str) -> PaymentRef {
    PaymentRef {
        payment_id: payment.into(),
        ..PaymentRef::default()
    }
}

/// A recorded refund, as the gateway would hand it to the adapter.
fn refund(payment: &str, minor: i64) -> Refund {
    let now = Utc::now();
    Refund {
        reason: RefundReason::Duplicate,
        description: "Charged twice".into(),
        metadata: BTreeMap::from([("order".to_owned(), "A-17".to_owned())]),
        ..Refund::new_pending(
            TenantId::new("acme"),
            "req-1",
            "paymongo",
            pay_ref(payment),
            php(minor),
            now,
        )
    }
}

fn rejected(outcome: SubmitOutcome) -> Rejection {
    match outcome {
        SubmitOutcome::Rejected(r) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn accepted(outcome: SubmitOutcome) -> Observation {
    match outcome {
        SubmitOutcome::Accepted(obs) => obs,
        other => panic!("expected acceptance, got {other:?}"),
    }
}

fn found(lookup: RefundLookup) -> Observation {
    match lookup {
        RefundLookup::Found(obs) => obs,
        RefundLookup::Absent => panic!("expected the refund to be found"),
    }
}

/// Payments read with their status, centavos, and what was refunded (outside refunds that
/// did not fail count); unknown ones are NOT_FOUND.
#[tokio::test]
async fn get_payment_reads_status_amount_and_refunded() {
    let env = Env::start().await;
    for (id, status, word, amount, refunded) in [
        (PAID_50000, PaymentStatus::Captured, "paid", 50000, 0),
        (
            PARTLY_REFUNDED,
            PaymentStatus::Captured,
            "paid",
            100000,
            30000,
        ),
        (PENDING, PaymentStatus::Pending, "pending", 30000, 0),
        (FAILED, PaymentStatus::Failed, "failed", 15000, 0),
    ] {
        let p = env.paymongo.get_payment(&pay_ref(id)).await.unwrap();
        assert_eq!(
            (p.status, p.provider_status.as_str(), p.amount, p.refunded),
            (status, word, php(amount), Some(php(refunded))),
            "{id}"
        );
    }
    match env.paymongo.get_payment(&pay_ref("pay_Unknown1")).await {
        Err(ProviderError::Rejected(r)) => {
            assert_eq!(
                (r.code, r.reason),
                (ErrorCode::NotFound, reason::PAYMENT_NOT_FOUND)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(env.sim().stats().payment_reads, 5);
}

/// A wrong secret key is an account problem, not a missing payment.
#[tokio::test]
async fn wrong_secret_key_is_an_authentication_failure() {
    let env = Env::start().await;
    let wrong = adapter(&env.base(), "sk_test_wrong", Duration::from_secs(5));
    match wrong.get_payment(&pay_ref(PAID_50000)).await {
        Err(ProviderError::Rejected(r)) => {
            assert_eq!(r.reason, reason::PROVIDER_AUTHENTICATION_FAILED);
            assert_eq!(r.code, ErrorCode::FailedPrecondition);
        }
        other => panic!("{other:?}"),
    }
    let r = rejected(wrong.submit_refund(&refund(PAID_50000, 1000)).await);
    assert_eq!(r.reason, reason::PROVIDER_AUTHENTICATION_FAILED);
    assert_eq!(env.sim().stats().refund_posts, 0);
}

/// A create sends the envelope with amount, reason word, notes, and metadata plus the gateway
/// id; the answer is PROCESSING with PayMongo's refund id and status word kept.
#[tokio::test]
async fn submit_creates_a_pending_refund_carrying_the_gateway_id() {
    let env = Env::start().await;
    let r = refund(PAID_50000, 12345);
    let obs = accepted(env.paymongo.submit_refund(&r).await);
    assert_eq!(obs.status, RefundStatus::Processing);
    assert_eq!(obs.provider_status.as_deref(), Some("pending"));
    assert_eq!(obs.failure, None);
    let id = obs.provider_refund_id.unwrap();
    assert!(id.starts_with("ref_"), "{id}");
    let at_sim = env.sim().refund(&id).unwrap();
    assert_eq!(at_sim.amount, 12345);
    assert_eq!(at_sim.reason, "duplicate");
    assert_eq!(at_sim.notes.as_deref(), Some("Charged twice"));
    let metadata = at_sim.metadata.unwrap();
    assert_eq!(metadata[GATEWAY_ID_KEY], r.id.as_str());
    assert_eq!(metadata["order"], "A-17");
}

/// Sending the same refund again replays PayMongo's first answer (same refund id) and
/// creates nothing more: the Idempotency-Key is the gateway's refund id.
#[tokio::test]
async fn resubmitting_replays_the_first_answer() {
    let env = Env::start().await;
    let r = refund(PAID_50000, 5000);
    let first = accepted(env.paymongo.submit_refund(&r).await);
    let again = accepted(env.paymongo.submit_refund(&r).await);
    assert_eq!(again, first);
    let stats = env.sim().stats();
    assert_eq!(
        (
            stats.refund_posts,
            stats.refunds_created,
            stats.idempotent_replays
        ),
        (2, 1, 1)
    );
    assert!(env.paymongo.resubmit_is_safe());
}

/// PayMongo's refusals come back as rejections with its code kept and the right gRPC code.
#[tokio::test]
async fn refusals_map_to_grpc_codes_with_paymongo_codes() {
    let env = Env::start().await;
    let cases = [
        (
            PARTLY_REFUNDED,
            70001,
            ErrorCode::FailedPrecondition,
            reason::AMOUNT_EXCEEDS_REFUNDABLE,
            "parameter_above_maximum",
        ),
        (
            PENDING,
            1000,
            ErrorCode::FailedPrecondition,
            reason::PAYMENT_NOT_REFUNDABLE,
            "resource_failed_state",
        ),
        (
            FAILED,
            1000,
            ErrorCode::FailedPrecondition,
            reason::PAYMENT_NOT_REFUNDABLE,
            "resource_failed_state",
        ),
        (
            "pay_Unknown1",
            1000,
            ErrorCode::NotFound,
            reason::PAYMENT_NOT_FOUND,
            "resource_not_found",
        ),
        (
            WINDOW_PASSED,
            1000,
            ErrorCode::FailedPrecondition,
            reason::PAYMENT_NOT_REFUNDABLE,
            "allowed_date_exceeded",
        ),
        (
            LOW_BALANCE,
            1000,
            ErrorCode::FailedPrecondition,
            reason::PROVIDER_DECLINED,
            "available_balance_insufficient",
        ),
        (
            PAID_50000,
            99,
            ErrorCode::InvalidArgument,
            reason::AMOUNT_BELOW_MINIMUM,
            "parameter_below_minimum",
        ),
    ];
    for (payment, amount, code, why, provider_code) in cases {
        let r = rejected(env.paymongo.submit_refund(&refund(payment, amount)).await);
        assert_eq!(
            (r.code, r.reason, r.provider_code.as_str()),
            (code, why, provider_code),
            "{payment}"
        );
        assert!(!r.provider_message.is_empty());
    }
    assert_eq!(env.sim().stats().refunds_created, 0);
}

/// 429 is back-off with PayMongo's Retry-After, and nothing was created.
#[tokio::test]
async fn rate_limit_is_back_off_with_retry_after() {
    let env = Env::start().await;
    env.faults(Faults {
        fail_before_apply_status: Some(429),
        retry_after_s: Some(3),
        ..Faults::default()
    });
    let r = rejected(env.paymongo.submit_refund(&refund(PAID_50000, 1000)).await);
    assert_eq!(
        (r.code, r.reason),
        (ErrorCode::Unavailable, reason::PROVIDER_RATE_LIMITED)
    );
    assert_eq!(r.retry_after, Some(Duration::from_secs(3)));
    env.faults(Faults {
        fail_reads_status: Some(429),
        retry_after_s: Some(4),
        ..Faults::default()
    });
    match env.paymongo.get_payment(&pay_ref(PAID_50000)).await {
        Err(ProviderError::Rejected(r)) => assert_eq!(r.retry_after, Some(Duration::from_secs(4))),
        other => panic!("{other:?}"),
    }
    assert_eq!(env.sim().stats().refunds_created, 0);
}

/// The connection never made: not sent.
#[tokio::test]
async fn connection_refused_is_not_sent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let p = adapter(
        &format!("http://127.0.0.1:{port}/paymongo"),
        PAYMONGO_SANDBOX_SECRET_KEY,
        Duration::from_secs(2),
    );
    let outcome = p.submit_refund(&refund(PAID_50000, 1000)).await;
    assert!(matches!(outcome, SubmitOutcome::NotSent(_)), "{outcome:?}");
}

/// A 5xx after the refund was created is "unknown"; the refund is then found by its gateway
/// id in the payment's refunds, and a re-send replays the same refund.
#[tokio::test]
async fn error_after_apply_is_unknown_then_found_by_metadata() {
    let env = Env::start().await;
    let r = refund(PAID_123456, 20000);
    env.faults(Faults {
        fail_after_apply_status: Some(500),
        ..Faults::default()
    });
    let outcome = env.paymongo.submit_refund(&r).await;
    assert!(matches!(outcome, SubmitOutcome::Unknown(_)), "{outcome:?}");
    env.sim().clear_faults();
    let obs = found(env.paymongo.fetch_refund(&r).await.unwrap());
    assert_eq!(obs.status, RefundStatus::Processing);
    let id = obs.provider_refund_id.clone().unwrap();
    let replay = accepted(env.paymongo.submit_refund(&r).await);
    assert_eq!(replay.provider_refund_id.as_deref(), Some(id.as_str()));
    assert_eq!(env.sim().stats().refunds_created, 1);
    assert_eq!(env.sim().refunds_of(PAID_123456).len(), 1);
}

/// A timeout after PayMongo applied the create is "unknown", never "failed"; the refund is
/// found afterwards.
#[tokio::test]
async fn timeout_after_apply_is_unknown_and_found_later() {
    let env = Env::with_timeout(Duration::from_millis(300)).await;
    env.faults(Faults {
        refund_delay_ms: 1500,
        ..Faults::default()
    });
    let r = refund(PAID_50000, 7000);
    let outcome = env.paymongo.submit_refund(&r).await;
    assert!(matches!(outcome, SubmitOutcome::Unknown(_)), "{outcome:?}");
    assert_eq!(env.sim().stats().refunds_created, 1);
    let obs = found(env.paymongo.fetch_refund(&r).await.unwrap());
    assert_eq!(obs.status, RefundStatus::Processing);
}

/// A 5xx before anything was applied is still "unknown" to the adapter; the lookup then
/// proves the refund absent.
#[tokio::test]
async fn error_before_apply_is_unknown_then_absent() {
    let env = Env::start().await;
    env.faults(Faults {
        fail_before_apply_status: Some(503),
        ..Faults::default()
    });
    let r = refund(PAID_50000, 1000);
    assert!(matches!(
        env.paymongo.submit_refund(&r).await,
        SubmitOutcome::Unknown(_)
    ));
    env.sim().clear_faults();
    assert_eq!(
        env.paymongo.fetch_refund(&r).await.unwrap(),
        RefundLookup::Absent
    );
}

/// A 200 whose body cannot be read is "unknown"; an answer about another amount needs review.
#[tokio::test]
async fn unreadable_or_contradicting_answers() {
    let env = Env::start().await;
    env.faults(Faults {
        corrupt_refund_body: true,
        ..Faults::default()
    });
    assert!(matches!(
        env.paymongo.submit_refund(&refund(PAID_50000, 1000)).await,
        SubmitOutcome::Unknown(_)
    ));
    env.faults(Faults {
        misreport_refund_amount: true,
        ..Faults::default()
    });
    // The adapter states what PayMongo said; the gateway's integrity rule, applying it to the
    // refund, sends it to review.
    let r = refund(PAID_50000, 1000);
    let obs = accepted(env.paymongo.submit_refund(&r).await);
    assert_eq!(obs.amount.map(|m| m.minor), Some(1001));
    let after = r.observe(&obs, chrono::Utc::now()).unwrap();
    assert_eq!(after.status, RefundStatus::RequiresReview);
    let failure = after.failure.unwrap();
    assert_eq!(failure.code, reason::PROVIDER_MISMATCH);
    assert!(
        failure
            .message
            .contains("amount 10.01 PHP instead of 10.00 PHP"),
        "{}",
        failure.message
    );
}

/// Read back by its PayMongo id, a refund shows its settled status: succeeded, or failed with
/// the failure details.
#[tokio::test]
async fn fetch_by_id_follows_the_refund_to_its_outcome() {
    let env = Env::start().await;
    env.sim()
        .queue_outcomes([Outcome::Succeeded, Outcome::Failed]);
    for want in [RefundStatus::Succeeded, RefundStatus::Failed] {
        let mut r = refund(PAID_50000, 1000);
        let id = accepted(env.paymongo.submit_refund(&r).await)
            .provider_refund_id
            .unwrap();
        r.provider_refund_id = Some(id.clone());
        assert_eq!(
            found(env.paymongo.fetch_refund(&r).await.unwrap()).status,
            RefundStatus::Processing
        );
        assert!(env.sim().settle_now(&id, None));
        let obs = found(env.paymongo.fetch_refund(&r).await.unwrap());
        assert_eq!(obs.status, want);
        if want == RefundStatus::Failed {
            let failure = obs.failure.unwrap();
            assert_eq!(failure.provider_code, "failed");
            assert!(failure.message.contains(&id));
        }
    }
    let mut gone = refund(PAID_50000, 1000);
    gone.provider_refund_id = Some("ref_NoSuchRefund".into());
    assert_eq!(
        env.paymongo.fetch_refund(&gone).await.unwrap(),
        RefundLookup::Absent
    );
}

/// A refund on a later page of the payment's refunds is still found by its metadata.
#[tokio::test]
async fn lookup_by_metadata_reads_every_page() {
    let env = Env::start().await;
    let r = refund(PAID_123456, 1000);
    accepted(env.paymongo.submit_refund(&r).await);
    // 150 newer refunds (made outside the gateway) push ours past the first page of 100.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..150 {
        env.sim()
            .add_outside_refund(PAID_123456, 100, SimRefundStatus::Failed)
            .unwrap();
    }
    let lists = env.sim().stats().refund_lists;
    let obs = found(env.paymongo.fetch_refund(&r).await.unwrap());
    assert_eq!(obs.status, RefundStatus::Processing);
    assert_eq!(env.sim().stats().refund_lists - lists, 2);
}

/// What the webhook receiver shares: where deliveries go, and how many to refuse first.
type ReceiverState = Arc<Mutex<(mpsc::UnboundedSender<(HeaderMap, Bytes)>, usize)>>;

/// Captures webhook deliveries; answers 500 to the first `fail_first` of them.
struct Receiver {
    url: String,
    deliveries: mpsc::UnboundedReceiver<(HeaderMap, Bytes)>,
}

async fn receiver(fail_first: usize) -> Receiver {
    let (tx, rx) = mpsc::unbounded_channel();
    let state = Arc::new(Mutex::new((tx, fail_first)));
    let app = Router::new()
        .route(
            "/hook",
            post(
                |State(state): State<ReceiverState>, headers: HeaderMap, body: Bytes| async move {
                    let mut s = state.lock().await;
                    if s.1 > 0 {
                        s.1 -= 1;
                        return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    let _ = s.0.send((headers, body));
                    axum::http::StatusCode::OK
                },
            ),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver {
        url: format!("http://{addr}/hook"),
        deliveries: rx,
    }
}

impl Receiver {
    async fn next(&mut self) -> (HeaderMap, Bytes) {
        tokio::time::timeout(Duration::from_secs(10), self.deliveries.recv())
            .await
            .expect("a webhook arrives")
            .unwrap()
    }
}

/// Waits (at most 5 s) until `done` holds.
async fn eventually(done: impl Fn() -> bool) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the condition holds within 5 s");
}

fn event_type(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap();
    v["data"]["attributes"]["type"].as_str().unwrap().to_owned()
}

/// The simulator's signed webhooks pass the adapter's verification (test mode, `te`), for
/// both shapes of `payment.refund.updated` and for `payment.refunded`, and name the refund
/// with its gateway id and final status; the same bytes with one changed byte do not.
#[tokio::test]
async fn simulator_webhooks_verify_and_name_the_refund() {
    for carries in [RefundUpdatedCarries::Refund, RefundUpdatedCarries::Payment] {
        let env = Env::start().await;
        let mut rx = receiver(0).await;
        env.sim().add_webhook_url(rx.url.clone());
        env.sim()
            .update_settings(&SettingsPatch {
                refund_updated_carries: Some(carries),
                ..SettingsPatch::default()
            })
            .unwrap();
        let r = refund(PAID_50000, 4000);
        let id = accepted(env.paymongo.submit_refund(&r).await)
            .provider_refund_id
            .unwrap();
        assert!(env.sim().settle_now(&id, Some(Outcome::Succeeded)));
        let mut types = Vec::new();
        for _ in 0..2 {
            let (headers, body) = rx.next().await;
            let signature = headers["paymongo-signature"].to_str().unwrap();
            assert!(
                signature.contains(",te=") && signature.ends_with(",li="),
                "{signature}"
            );
            types.push(event_type(&body));
            let notices = env.paymongo.parse_webhook(&headers, &body).unwrap();
            let ours: Vec<_> = notices
                .iter()
                .filter_map(|n| match n {
                    WebhookNotice::Observed {
                        provider_refund_id,
                        gateway_refund_id,
                        observation,
                    } if *provider_refund_id == id => {
                        Some((gateway_refund_id.clone(), observation.status))
                    }
                    _ => None,
                })
                .collect();
            assert_eq!(
                ours,
                [(Some(r.id.as_str().to_owned()), RefundStatus::Succeeded)],
                "{carries:?}"
            );
            let mut forged = body.to_vec();
            let at = forged.len() / 3;
            forged[at] ^= 0x01;
            assert!(env.paymongo.parse_webhook(&headers, &forged).is_err());
        }
        types.sort();
        assert_eq!(types, ["payment.refund.updated", "payment.refunded"]);
    }
}

/// Deliveries refused with 5xx are retried until accepted; a URL that never accepts is given
/// up on after the bounded number of attempts.
#[tokio::test]
async fn webhooks_are_retried_with_a_bound() {
    let env = Env::start().await;
    env.sim()
        .update_settings(&SettingsPatch {
            webhook_retry_ms: Some(20),
            webhook_max_attempts: Some(3),
            ..SettingsPatch::default()
        })
        .unwrap();
    let mut flaky = receiver(2).await;
    env.sim().set_webhook_urls(vec![flaky.url.clone()]);
    let id = accepted(env.paymongo.submit_refund(&refund(PAID_50000, 1000)).await)
        .provider_refund_id
        .unwrap();
    assert!(env.sim().settle_now(&id, Some(Outcome::Failed)));
    let (_, body) = flaky.next().await;
    assert_eq!(event_type(&body), "payment.refund.updated");
    // The simulator counts the delivery once it has read the answer.
    eventually(|| env.sim().stats().webhooks_sent == 1).await;
    assert_eq!(env.sim().stats().webhook_attempts, 3);

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/hook", listener.local_addr().unwrap());
    drop(listener);
    env.sim().set_webhook_urls(vec![dead]);
    let id = accepted(env.paymongo.submit_refund(&refund(PAID_50000, 1000)).await)
        .provider_refund_id
        .unwrap();
    assert!(env.sim().settle_now(&id, Some(Outcome::Failed)));
    eventually(|| env.sim().stats().webhooks_failed == 1).await;
    assert_eq!(env.sim().stats().webhook_attempts, 6);
}

/// Capabilities: PHP, partial refunds, webhooks.
#[tokio::test]
async fn capabilities() {
    let env = Env::start().await;
    let c = env.paymongo.capabilities();
    assert_eq!(c.currencies, ["PHP"]);
    assert!(c.partial_refunds && c.webhooks);
    assert_eq!(env.paymongo.kind(), ProviderKind::PayMongo);
}
