//! The Compago adapter against the Compago simulator, over real HTTP: each test starts its own
//! simulator on 127.0.0.1:0 and drives the real `Compago` adapter, then checks what the
//! simulator saw through its admin API. What matters most: a refund is never applied twice,
//! and an answer that does not prove the outcome is never reported as a failure.

use std::{collections::BTreeMap, time::Duration};

use chrono::Utc;
use refund_gateway::providers::ProviderKind;
use refund_gateway::{
    domain::{
        Currency, ErrorCode, Money, Observation, PaymentRef, PaymentStatus, Refund, RefundReason,
        RefundStatus, TenantId, reason,
    },
    providers::{
        Provider, ProviderError, ProviderPayment, RefundDraft, RefundLookup, Rejection,
        SubmitOutcome, WebhookError, compago::Compago,
    },
};
use secrecy::SecretString;
use serde_json::{Value, json};
use simulators::{
    COMPAGO_SANDBOX_API_KEY, RunningSandbox, Simulator,
    compago::fixtures::{
        ACTIVE_METHOD, CANCELLED_PAYMENT, CONFIRMED_250, CONFIRMED_500, CONFIRMED_505_95,
        CONFIRMED_1234_56, NOT_INITIALIZED_PAYMENT, PENDING_PAYMENT, REFUNDED_PAYMENT,
        REVOKED_METHOD, REVOKED_METHOD_PAYMENT,
    },
};

const UNKNOWN_ID: &str = "00000000-0000-4000-8000-000000000000";

/// A running simulator and an adapter pointed at it.
struct Env {
    running: RunningSandbox,
    compago: Compago,
    admin: reqwest::Client,
}

impl Env {
    async fn start() -> Self {
        Self::with_timeout(Duration::from_secs(5)).await
    }

    async fn with_timeout(timeout: Duration) -> Self {
        let running = simulators::start("127.0.0.1:0".parse().unwrap())
            .await
            .expect("the simulator starts");
        let compago = Compago::new(
            running.base_url(Simulator::Compago),
            SecretString::from(COMPAGO_SANDBOX_API_KEY),
            timeout,
        );
        Self {
            running,
            compago,
            admin: reqwest::Client::new(),
        }
    }

    fn base(&self) -> String {
        self.running.base_url(Simulator::Compago)
    }

    fn adapter_with_key(&self, key: &str) -> Compago {
        Compago::new(self.base(), SecretString::from(key), Duration::from_secs(5))
    }

    async fn admin_get(&self, path: &str) -> Value {
        let response = self
            .admin
            .get(format!("{}{path}", self.base()))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    async fn stats(&self) -> Value {
        self.admin_get("/sandbox/stats").await
    }

    /// The simulator's own record of a payment.
    async fn sim_payment(&self, id: &str) -> Value {
        self.admin_get(&format!("/sandbox/payments/{id}")).await
    }

    async fn set_faults(&self, faults: Value) {
        let response = self
            .admin
            .post(format!("{}/sandbox/faults", self.base()))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "faults {faults}");
    }

    async fn clear_faults(&self) {
        let response = self
            .admin
            .delete(format!("{}/sandbox/faults", self.base()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    /// Creates a payment through the admin API and returns its id.
    async fn create_payment(&self, body: Value) -> String {
        let response = self
            .admin
            .post(format!("{}/sandbox/payments", self.base()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let created: Value = response.json().await.unwrap();
        created["id"].as_str().unwrap().to_owned()
    }
}

fn mxn(minor: i64) -> Money {
    Money::new(minor, Currency::parse("MXN").unwrap())
}

fn pay_ref(method: &str, payment: &str) -> PaymentRef {
    PaymentRef {
        payment_id: payment.into(),
        payment_method_id: method.into(),
        invoice_id: String::new(),
    }
}

/// A recorded refund, as the gateway would hand it to the adapter.
fn refund(method: &str, payment: &str, amount: Money, description: &str) -> Refund {
    let now = Utc::now();
    Refund {
        reason: RefundReason::RequestedByCustomer,
        description: description.into(),
        ..Refund::new_pending(
            TenantId::new("acme"),
            "req-1",
            "compago",
            pay_ref(method, payment),
            amount,
            now,
        )
    }
}

fn draft(method: &str, payment: &str) -> RefundDraft {
    RefundDraft {
        tenant: TenantId::new("acme"),
        request_id: "req-1".into(),
        provider: "compago".into(),
        payment: pay_ref(method, payment),
        amount: None,
        reason: RefundReason::Other,
        description: String::new(),
        metadata: BTreeMap::new(),
        bank_account: None,
    }
}

/// A success for refund `r`: Compago states the payment and its whole amount.
fn succeeded(r: &Refund) -> Observation {
    Observation {
        status: RefundStatus::Succeeded,
        provider_refund_id: Some(r.payment.payment_id.clone()),
        provider_status: Some("REFUNDED".into()),
        failure: None,
        amount: Some(r.amount),
        payment_id: Some(r.payment.payment_id.clone()),
    }
}

fn rejected_read(result: Result<ProviderPayment, ProviderError>) -> Rejection {
    match result {
        Err(ProviderError::Rejected(r)) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn rejected_submit(outcome: SubmitOutcome) -> Rejection {
    match outcome {
        SubmitOutcome::Rejected(r) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn assert_unknown(outcome: &SubmitOutcome) {
    assert!(
        matches!(outcome, SubmitOutcome::Unknown(_)),
        "expected an unknown outcome, got {outcome:?}"
    );
}

/// Every fixture payment reads with its status mapped and its exact amount; a refunded one
/// reports its whole amount refunded.
#[tokio::test]
async fn get_payment_reads_every_fixture_status() {
    let env = Env::start().await;
    let cases = [
        (CONFIRMED_500, PaymentStatus::Captured, "CONFIRMED", 50000),
        (
            CONFIRMED_1234_56,
            PaymentStatus::Captured,
            "CONFIRMED",
            123456,
        ),
        (
            CONFIRMED_505_95,
            PaymentStatus::Captured,
            "CONFIRMED",
            50595,
        ),
        (PENDING_PAYMENT, PaymentStatus::Pending, "PENDING", 30000),
        (
            NOT_INITIALIZED_PAYMENT,
            PaymentStatus::Pending,
            "NOT_INITIALIZED",
            15000,
        ),
        (
            CANCELLED_PAYMENT,
            PaymentStatus::Canceled,
            "CANCELLED",
            9990,
        ),
        (REFUNDED_PAYMENT, PaymentStatus::Refunded, "REFUNDED", 25000),
    ];
    for (id, status, word, minor) in cases {
        let p = env
            .compago
            .get_payment(&pay_ref(ACTIVE_METHOD, id))
            .await
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(p.status, status, "{id}");
        assert_eq!(p.provider_status, word, "{id}");
        assert_eq!(p.amount, mxn(minor), "{id}");
        let refunded = (status == PaymentStatus::Refunded).then_some(mxn(minor));
        assert_eq!(p.refunded, refunded, "{id}");
        assert!(!p.needs_bank_account);
    }
    let p = env
        .compago
        .get_payment(&pay_ref(REVOKED_METHOD, REVOKED_METHOD_PAYMENT))
        .await
        .unwrap();
    assert_eq!(p.amount, mxn(42000));
}

/// An unknown payment, an unknown payment method, and a payment asked for under another
/// method are all NOT_FOUND, with Compago's HTTP status and text kept.
#[tokio::test]
async fn unknown_payment_or_method_is_not_found() {
    let env = Env::start().await;

    let r = rejected_read(
        env.compago
            .get_payment(&pay_ref(ACTIVE_METHOD, UNKNOWN_ID))
            .await,
    );
    assert_eq!(
        (r.code, r.reason),
        (ErrorCode::NotFound, reason::PAYMENT_NOT_FOUND)
    );
    assert_eq!(r.provider_code, "404");
    assert!(r.provider_message.contains("Payment not found"), "{r:?}");
    assert!(r.message.contains(UNKNOWN_ID), "{}", r.message);

    let r = rejected_read(
        env.compago
            .get_payment(&pay_ref(UNKNOWN_ID, CONFIRMED_500))
            .await,
    );
    assert_eq!(
        (r.code, r.reason),
        (ErrorCode::NotFound, reason::PAYMENT_NOT_FOUND)
    );
    assert!(
        r.provider_message.contains("Payment method not found"),
        "{r:?}"
    );
    assert!(r.message.contains("payment method"), "{}", r.message);

    let r = rejected_read(
        env.compago
            .get_payment(&pay_ref(REVOKED_METHOD, CONFIRMED_500))
            .await,
    );
    assert_eq!(r.code, ErrorCode::NotFound);

    let r = rejected_submit(
        env.compago
            .submit_refund(&refund(ACTIVE_METHOD, UNKNOWN_ID, mxn(100), ""))
            .await,
    );
    assert_eq!(
        (r.code, r.reason),
        (ErrorCode::NotFound, reason::PAYMENT_NOT_FOUND)
    );
}

/// A wrong API key is an authentication failure on reads and refunds, and refunds nothing.
#[tokio::test]
async fn wrong_api_key_is_an_authentication_failure() {
    let env = Env::start().await;
    let wrong = env.adapter_with_key("not-the-key");

    let r = rejected_read(
        wrong
            .get_payment(&pay_ref(ACTIVE_METHOD, CONFIRMED_500))
            .await,
    );
    assert_eq!(
        (r.code, r.reason),
        (
            ErrorCode::FailedPrecondition,
            reason::PROVIDER_AUTHENTICATION_FAILED
        )
    );
    assert_eq!(r.provider_code, "401");
    assert!(!r.message.contains("not-the-key"));

    let r = rejected_submit(
        wrong
            .submit_refund(&refund(ACTIVE_METHOD, CONFIRMED_500, mxn(50000), ""))
            .await,
    );
    assert_eq!(r.reason, reason::PROVIDER_AUTHENTICATION_FAILED);
    assert_eq!(env.stats().await["refunds_applied"], 0);
    assert_eq!(env.sim_payment(CONFIRMED_500).await["status"], "CONFIRMED");
}

/// A refund of a CONFIRMED payment succeeds at once, the simulator shows the payment
/// REFUNDED, and the description went out as Compago's `reason`.
#[tokio::test]
async fn submit_on_confirmed_succeeds_and_is_applied() {
    let env = Env::start().await;
    let r = refund(
        ACTIVE_METHOD,
        CONFIRMED_505_95,
        mxn(50595),
        "Customer returned item #SKU-1234",
    );
    let outcome = env.compago.submit_refund(&r).await;
    assert_eq!(outcome, SubmitOutcome::Accepted(succeeded(&r)));

    let sim = env.sim_payment(CONFIRMED_505_95).await;
    assert_eq!(sim["status"], "REFUNDED");
    assert_eq!(sim["refund_reason"], "Customer returned item #SKU-1234");
    let stats = env.stats().await;
    assert_eq!(
        (
            stats["refund_posts"].as_u64(),
            stats["refunds_applied"].as_u64()
        ),
        (Some(1), Some(1))
    );

    // Without a description no reason is sent.
    let r = refund(ACTIVE_METHOD, CONFIRMED_250, mxn(25000), "");
    assert_eq!(
        env.compago.submit_refund(&r).await,
        SubmitOutcome::Accepted(succeeded(&r))
    );
    assert_eq!(
        env.sim_payment(CONFIRMED_250).await["refund_reason"],
        Value::Null
    );
}

/// Sending the same refund twice never refunds twice: the second POST is refused as
/// FAILED_PRECONDITION, and the simulator counts two POSTs but one refund.
#[tokio::test]
async fn second_submit_is_refused_and_not_applied_again() {
    let env = Env::start().await;
    let r = refund(ACTIVE_METHOD, CONFIRMED_500, mxn(50000), "dup test");
    assert_eq!(
        env.compago.submit_refund(&r).await,
        SubmitOutcome::Accepted(succeeded(&r))
    );
    let again = rejected_submit(env.compago.submit_refund(&r).await);
    assert_eq!(
        (again.code, again.reason),
        (
            ErrorCode::FailedPrecondition,
            reason::PAYMENT_NOT_REFUNDABLE
        )
    );
    assert_eq!(again.provider_code, "400");
    assert!(
        again.provider_message.contains("Payment not CONFIRMED"),
        "{again:?}"
    );

    let stats = env.stats().await;
    assert_eq!(stats["refund_posts"], 2);
    assert_eq!(stats["refunds_applied"], 1);
    assert_eq!(stats["refund_posts_by_payment"][CONFIRMED_500], 2);
}

/// Refunds of payments that are not CONFIRMED are refused and change nothing.
#[tokio::test]
async fn refunds_of_unrefundable_payments_are_refused() {
    let env = Env::start().await;
    for id in [
        PENDING_PAYMENT,
        NOT_INITIALIZED_PAYMENT,
        CANCELLED_PAYMENT,
        REFUNDED_PAYMENT,
    ] {
        let before = env.sim_payment(id).await["status"].clone();
        let r = rejected_submit(
            env.compago
                .submit_refund(&refund(ACTIVE_METHOD, id, mxn(100), ""))
                .await,
        );
        assert_eq!(r.reason, reason::PAYMENT_NOT_REFUNDABLE, "{id}");
        assert_eq!(env.sim_payment(id).await["status"], before, "{id}");
    }
    assert_eq!(env.stats().await["refunds_applied"], 0);
}

/// Reading a refund back: absent while the payment is CONFIRMED, found SUCCEEDED once it is
/// REFUNDED.
#[tokio::test]
async fn fetch_refund_is_absent_before_and_found_after() {
    let env = Env::start().await;
    let r = refund(ACTIVE_METHOD, CONFIRMED_1234_56, mxn(123456), "");
    assert_eq!(env.compago.fetch_refund(&r).await, Ok(RefundLookup::Absent));
    assert!(matches!(
        env.compago.submit_refund(&r).await,
        SubmitOutcome::Accepted(_)
    ));
    assert_eq!(
        env.compago.fetch_refund(&r).await,
        Ok(RefundLookup::Found(succeeded(&r)))
    );
    // Other statuses hold no refund.
    for id in [PENDING_PAYMENT, CANCELLED_PAYMENT, NOT_INITIALIZED_PAYMENT] {
        let r = refund(ACTIVE_METHOD, id, mxn(100), "");
        assert_eq!(
            env.compago.fetch_refund(&r).await,
            Ok(RefundLookup::Absent),
            "{id}"
        );
    }
}

/// Nothing listening: the refund provably never left, so NOT_SENT; reads are unreachable.
#[tokio::test]
async fn connection_refused_is_not_sent() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let compago = Compago::new(
        format!("http://127.0.0.1:{port}/compago"),
        SecretString::from(COMPAGO_SANDBOX_API_KEY),
        Duration::from_secs(2),
    );
    let r = refund(ACTIVE_METHOD, CONFIRMED_500, mxn(50000), "");
    let outcome = compago.submit_refund(&r).await;
    assert!(matches!(outcome, SubmitOutcome::NotSent(_)), "{outcome:?}");
    assert!(matches!(
        compago.get_payment(&r.payment).await,
        Err(ProviderError::Unreachable(_))
    ));
    assert!(matches!(
        compago.fetch_refund(&r).await,
        Err(ProviderError::Unreachable(_))
    ));
}

/// An answer slower than the adapter's timeout is UNKNOWN, never a failure: the simulator
/// applied the refund before answering, and a later read-back finds it.
#[tokio::test]
async fn timeout_after_sending_is_unknown_although_applied() {
    let env = Env::with_timeout(Duration::from_millis(300)).await;
    env.set_faults(json!({ "delay_ms": 1500 })).await;
    let r = refund(ACTIVE_METHOD, CONFIRMED_500, mxn(50000), "");
    let outcome = env.compago.submit_refund(&r).await;
    assert_unknown(&outcome);

    assert_eq!(env.sim_payment(CONFIRMED_500).await["status"], "REFUNDED");
    assert_eq!(env.stats().await["refunds_applied"], 1);

    // Reads time out too while the fault holds...
    assert!(matches!(
        env.compago.fetch_refund(&r).await,
        Err(ProviderError::Unreachable(_))
    ));
    // ...and once it is gone, reconciliation finds the refund.
    env.clear_faults().await;
    assert_eq!(
        env.compago.fetch_refund(&r).await,
        Ok(RefundLookup::Found(succeeded(&r)))
    );
}

/// A 500 after the refund was applied is UNKNOWN (not failed), and it was applied.
#[tokio::test]
async fn error_500_after_apply_is_unknown() {
    let env = Env::start().await;
    env.set_faults(json!({ "fail_after_apply_status": 500 }))
        .await;
    let r = refund(ACTIVE_METHOD, CONFIRMED_500, mxn(50000), "");
    assert_unknown(&env.compago.submit_refund(&r).await);
    assert_eq!(env.sim_payment(CONFIRMED_500).await["status"], "REFUNDED");
}

/// A 503 before anything was applied is UNKNOWN too: a 5xx never proves nothing happened.
/// Here nothing did, the read-back says so, and sending again is then safe and succeeds.
#[tokio::test]
async fn error_503_before_apply_is_unknown() {
    let env = Env::start().await;
    env.set_faults(json!({ "fail_before_apply_status": 503 }))
        .await;
    let r = refund(ACTIVE_METHOD, CONFIRMED_500, mxn(50000), "");
    assert_unknown(&env.compago.submit_refund(&r).await);
    assert_eq!(env.sim_payment(CONFIRMED_500).await["status"], "CONFIRMED");

    env.clear_faults().await;
    assert_eq!(env.compago.fetch_refund(&r).await, Ok(RefundLookup::Absent));
    assert!(env.compago.resubmit_is_safe());
    assert_eq!(
        env.compago.submit_refund(&r).await,
        SubmitOutcome::Accepted(succeeded(&r))
    );
    assert_eq!(env.stats().await["refunds_applied"], 1);
}

/// A 200 whose body cannot be read is UNKNOWN: the refund was applied.
#[tokio::test]
async fn unreadable_200_is_unknown() {
    let env = Env::start().await;
    env.set_faults(json!({ "corrupt_refund_body": true })).await;
    let r = refund(ACTIVE_METHOD, CONFIRMED_250, mxn(25000), "");
    assert_unknown(&env.compago.submit_refund(&r).await);
    assert_eq!(env.sim_payment(CONFIRMED_250).await["status"], "REFUNDED");
}

/// 429 is a rate-limit rejection with the provider's Retry-After, on refunds and reads.
#[tokio::test]
async fn rate_limits_carry_retry_after() {
    let env = Env::start().await;
    env.set_faults(
        json!({ "fail_before_apply_status": 429, "fail_reads_status": 429, "retry_after_s": 7 }),
    )
    .await;
    let r = refund(ACTIVE_METHOD, CONFIRMED_500, mxn(50000), "");
    let rej = rejected_submit(env.compago.submit_refund(&r).await);
    assert_eq!(
        (rej.code, rej.reason, rej.retry_after),
        (
            ErrorCode::Unavailable,
            reason::PROVIDER_RATE_LIMITED,
            Some(Duration::from_secs(7))
        )
    );
    let rej = rejected_read(env.compago.get_payment(&r.payment).await);
    assert_eq!(rej.reason, reason::PROVIDER_RATE_LIMITED);
    assert_eq!(rej.retry_after, Some(Duration::from_secs(7)));
    assert_eq!(env.sim_payment(CONFIRMED_500).await["status"], "CONFIRMED");
}

/// A 5xx on a read is "unreachable", not a rejection or a bad answer.
#[tokio::test]
async fn read_5xx_is_unreachable() {
    let env = Env::start().await;
    env.set_faults(json!({ "fail_reads_status": 502 })).await;
    let r = refund(ACTIVE_METHOD, CONFIRMED_500, mxn(50000), "");
    assert!(matches!(
        env.compago.get_payment(&r.payment).await,
        Err(ProviderError::Unreachable(_))
    ));
    assert!(matches!(
        env.compago.fetch_refund(&r).await,
        Err(ProviderError::Unreachable(_))
    ));
}

/// A payment amount that is not a whole number of centavos is a bad answer, never rounded.
#[tokio::test]
async fn unconvertible_amount_is_a_bad_response() {
    let env = Env::start().await;
    let id = env.create_payment(json!({ "amount": "1.005" })).await;
    let result = env.compago.get_payment(&pay_ref(ACTIVE_METHOD, &id)).await;
    assert!(
        matches!(result, Err(ProviderError::BadResponse(_))),
        "{result:?}"
    );
}

/// An answer that contradicts the request (Compago refunds the whole 500.00 while the
/// gateway's record says 400.00) is not a success: the adapter states what Compago said, and
/// the gateway's integrity rule, applying it to the refund, sends it to review.
#[tokio::test]
async fn answer_contradicting_the_request_needs_review() {
    let env = Env::start().await;
    let r = refund(ACTIVE_METHOD, CONFIRMED_500, mxn(40000), "");
    let SubmitOutcome::Accepted(obs) = env.compago.submit_refund(&r).await else {
        panic!("Compago took the refund: it must be recorded as accepted");
    };
    assert_eq!(obs.amount, Some(mxn(50000)));
    let after = r.observe(&obs, Utc::now()).unwrap();
    assert_eq!(after.status, RefundStatus::RequiresReview);
    let failure = after.failure.expect("the failure says what differs");
    assert_eq!(failure.code, reason::PROVIDER_MISMATCH);
    assert!(
        failure
            .message
            .contains("amount 500.00 MXN instead of 400.00 MXN"),
        "{}",
        failure.message
    );

    // The read-back says the same, not SUCCEEDED.
    let Ok(RefundLookup::Found(obs)) = env.compago.fetch_refund(&r).await else {
        panic!("the payment is refunded");
    };
    let after = r.observe(&obs, Utc::now()).unwrap();
    assert_eq!(after.status, RefundStatus::RequiresReview);
}

/// Compago refunds whole payments only: a partial amount is refused before any call.
#[tokio::test]
async fn check_refund_refuses_a_partial_amount() {
    let env = Env::start().await;
    let d = draft(ACTIVE_METHOD, CONFIRMED_500);
    let payment = env.compago.get_payment(&d.payment).await.unwrap();
    let requests = env.stats().await["requests"].clone();

    let err = env
        .compago
        .check_refund(&d, &payment, mxn(25000))
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    assert_eq!(err.reason, reason::PARTIAL_REFUND_NOT_SUPPORTED);
    assert_eq!(err.violations[0].field, "amount");
    assert_eq!(env.compago.check_refund(&d, &payment, mxn(50000)), Ok(()));
    assert_eq!(env.stats().await["requests"], requests, "no provider call");
}

/// Missing and non-UUID ids are refused by validation; and a refund with such ids is never
/// sent (no request reaches the simulator).
#[tokio::test]
async fn validate_refuses_missing_or_non_uuid_ids() {
    let env = Env::start().await;
    let fields = |d: &RefundDraft| -> Vec<String> {
        env.compago
            .validate(d)
            .into_iter()
            .map(|v| v.field)
            .collect()
    };
    assert!(fields(&draft(ACTIVE_METHOD, CONFIRMED_500)).is_empty());
    assert_eq!(
        fields(&draft("", "")),
        ["payment.payment_method_id", "payment.payment_id"]
    );
    assert_eq!(
        fields(&draft(ACTIVE_METHOD, "pay_123")),
        ["payment.payment_id"]
    );
    assert_eq!(
        fields(&draft("../../../admin", CONFIRMED_500)),
        ["payment.payment_method_id"]
    );
    let mut d = draft(ACTIVE_METHOD, CONFIRMED_500);
    d.amount = Some(Money::new(50000, Currency::parse("PHP").unwrap()));
    assert_eq!(fields(&d), ["amount.currency_code"]);

    let r = rejected_submit(
        env.compago
            .submit_refund(&refund("../../sandbox", "reset", mxn(100), ""))
            .await,
    );
    assert_eq!(r.code, ErrorCode::InvalidArgument);
    assert_eq!(env.stats().await["requests"], 0);
}

/// What Compago supports: MXN, full refunds, no webhooks; re-sending is safe.
#[tokio::test]
async fn capabilities_and_webhooks() {
    let env = Env::start().await;
    let caps = env.compago.capabilities();
    assert_eq!(caps.currencies, ["MXN"]);
    assert!(!caps.partial_refunds && !caps.webhooks);
    assert!(env.compago.resubmit_is_safe());
    assert_eq!(env.compago.kind(), ProviderKind::Compago);
    assert_eq!(
        env.compago.parse_webhook(&http::HeaderMap::new(), b"{}"),
        Err(WebhookError::Unsupported)
    );
}
