//! The D24 adapter against the D24 simulator, over real HTTP: each test starts its own
//! simulator on 127.0.0.1:0 and drives the real `D24` adapter, then checks what the simulator
//! saw through its admin API. What matters most: a refund is never created twice, an answer
//! that does not prove the outcome is never reported as a failure, and a configuration
//! problem is never a failed refund.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, http::StatusCode, routing::post};
use chrono::Utc;
use refund_gateway::{
    domain::{
        BankAccount, BankAccountType, Currency, ErrorCode, Money, PaymentRef, PaymentStatus,
        Refund, RefundReason, RefundStatus, Submission, TenantId, reason,
    },
    providers::{
        Provider, ProviderError, ProviderKind, ProviderPayment, RefundDraft, RefundLookup,
        Rejection, SubmitOutcome, WebhookNotice, d24::D24,
    },
};
use secrecy::SecretString;
use serde_json::{Value, json};
use simulators::{
    D24_SANDBOX_LOGIN, D24_SANDBOX_SECRET, RunningSandbox, Simulator,
    d24::fixtures::{
        BANK_BRL, BANK_BRL_INVOICE, CANCELLED_DEPOSIT, CARD_CLP, CARD_CLP_INVOICE,
        CARD_IN_PROGRESS, CARD_IN_PROGRESS_INVOICE, CARD_MXN, CARD_MXN_1000, CARD_MXN_1000_INVOICE,
        CARD_MXN_INVOICE, CARD_REJECTED, CARD_REJECTED_INVOICE, CASH_MXN, CASH_MXN_INVOICE,
        EXPIRED_DEPOSIT, FOR_REVIEW_DEPOSIT, PENDING_DEPOSIT, PENDING_DEPOSIT_INVOICE,
    },
};

/// A running simulator and an adapter pointed at it.
struct Env {
    running: RunningSandbox,
    d24: D24,
    admin: reqwest::Client,
}

impl Env {
    async fn start() -> Self {
        Self::with(Duration::from_secs(5), None).await
    }

    async fn with(timeout: Duration, notification_url: Option<String>) -> Self {
        let running = simulators::start("127.0.0.1:0".parse().unwrap())
            .await
            .expect("the simulator starts");
        let d24 = D24::new(
            running.base_url(Simulator::D24),
            SecretString::from(D24_SANDBOX_LOGIN),
            SecretString::from(D24_SANDBOX_SECRET),
            notification_url,
            timeout,
        );
        Self {
            running,
            d24,
            admin: reqwest::Client::new(),
        }
    }

    fn base(&self) -> String {
        self.running.base_url(Simulator::D24)
    }

    fn adapter_with(&self, login: &str, secret: &str) -> D24 {
        D24::new(
            self.base(),
            SecretString::from(login),
            SecretString::from(secret),
            None,
            Duration::from_secs(5),
        )
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .admin
            .request(method.clone(), format!("{}{path}", self.base()));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{method} {path}: {}",
            response.status()
        );
        response.json().await.unwrap_or(Value::Null)
    }

    async fn stats(&self) -> Value {
        self.admin(reqwest::Method::GET, "/sandbox/stats", None)
            .await
    }

    /// The simulator's refunds of a deposit.
    async fn sim_refunds(&self, deposit: u64) -> Vec<Value> {
        let list = self
            .admin(
                reqwest::Method::GET,
                &format!("/sandbox/refunds?deposit_id={deposit}"),
                None,
            )
            .await;
        list["items"].as_array().unwrap().clone()
    }

    /// The amounts of a deposit's refunds at the simulator, exactly as it holds them (the
    /// admin API's JSON would go through floating point here).
    fn held_amounts(&self, deposit: u64) -> Vec<String> {
        self.running
            .sandbox
            .d24
            .refunds_of(deposit)
            .iter()
            .map(|r| r.amount.to_string())
            .collect()
    }

    async fn set_faults(&self, faults: Value) {
        self.admin(reqwest::Method::POST, "/sandbox/faults", Some(faults))
            .await;
    }

    async fn clear_faults(&self) {
        self.admin(reqwest::Method::DELETE, "/sandbox/faults", None)
            .await;
    }

    async fn set_timing(&self, timing: Value) {
        self.admin(reqwest::Method::POST, "/sandbox/timing", Some(timing))
            .await;
    }

    async fn force(&self, refund_id: &str, status: &str) {
        self.admin(
            reqwest::Method::POST,
            &format!("/sandbox/refunds/{refund_id}/status"),
            Some(json!({ "status": status })),
        )
        .await;
    }
}

fn money(minor: i64, currency: &str) -> Money {
    Money::new(minor, Currency::parse(currency).unwrap())
}

fn mxn(minor: i64) -> Money {
    money(minor, "MXN")
}

fn pay_ref(deposit: u64, invoice: &str) -> PaymentRef {
    PaymentRef {
        payment_id: deposit.to_string(),
        payment_method_id: String::new(),
        invoice_id: invoice.into(),
    }
}

fn account() -> BankAccount {
    BankAccount {
        beneficiary: "Carlos Ramirez".into(),
        bank_code: "1".into(),
        branch: "9283".into(),
        account_number: "18293435".into(),
        account_type: BankAccountType::Saving,
    }
}

/// A recorded refund, as the gateway would hand it to the adapter.
fn refund(deposit: u64, invoice: &str, amount: Money) -> Refund {
    let now = Utc::now();
    Refund {
        reason: RefundReason::RequestedByCustomer,
        ..Refund::new_pending(
            TenantId::new("acme"),
            "req-1",
            "d24",
            pay_ref(deposit, invoice),
            amount,
            now,
        )
    }
}

fn rejected_read(result: Result<ProviderPayment, ProviderError>) -> Rejection {
    match result {
        Err(ProviderError::Rejected(r)) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn rejected(outcome: SubmitOutcome) -> Rejection {
    match outcome {
        SubmitOutcome::Rejected(r) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn accepted(outcome: SubmitOutcome) -> refund_gateway::domain::Observation {
    match outcome {
        SubmitOutcome::Accepted(obs) => obs,
        other => panic!("expected an acceptance, got {other:?}"),
    }
}

fn assert_unknown(outcome: &SubmitOutcome) {
    assert!(
        matches!(outcome, SubmitOutcome::Unknown(_)),
        "expected an unknown outcome, got {outcome:?}"
    );
}

/// The refund as the gateway would hold it after recording an observation.
fn with_id(mut r: Refund, obs: &refund_gateway::domain::Observation) -> Refund {
    r.provider_refund_id.clone_from(&obs.provider_refund_id);
    r.status = obs.status;
    r.submission = Submission::Accepted;
    r
}

/// Every fixture deposit reads with its status mapped, its exact amount in its currency,
/// and whether a refund needs a bank account.
#[tokio::test]
async fn get_payment_reads_every_fixture() {
    let env = Env::start().await;
    let cases = [
        (
            CARD_MXN,
            PaymentStatus::Captured,
            "COMPLETED",
            mxn(50595),
            false,
        ),
        (
            CASH_MXN,
            PaymentStatus::Captured,
            "COMPLETED",
            mxn(25000),
            true,
        ),
        (
            CARD_CLP,
            PaymentStatus::Captured,
            "COMPLETED",
            money(15000, "CLP"),
            false,
        ),
        (
            BANK_BRL,
            PaymentStatus::Captured,
            "COMPLETED",
            money(150000, "BRL"),
            true,
        ),
        (
            PENDING_DEPOSIT,
            PaymentStatus::Pending,
            "PENDING",
            mxn(20000),
            false,
        ),
        (
            EXPIRED_DEPOSIT,
            PaymentStatus::Canceled,
            "EXPIRED",
            money(9000, "PEN"),
            true,
        ),
        (
            CANCELLED_DEPOSIT,
            PaymentStatus::Canceled,
            "CANCELLED",
            money(5000, "USD"),
            false,
        ),
        (
            FOR_REVIEW_DEPOSIT,
            PaymentStatus::Pending,
            "FOR_REVIEW",
            money(7500, "ARS"),
            false,
        ),
    ];
    for (deposit, status, word, amount, needs_bank) in cases {
        let p = env
            .d24
            .get_payment(&pay_ref(deposit, "any"))
            .await
            .unwrap_or_else(|e| panic!("{deposit}: {e}"));
        assert_eq!(
            (
                p.status,
                p.provider_status.as_str(),
                p.amount,
                p.needs_bank_account
            ),
            (status, word, amount, needs_bank),
            "{deposit}"
        );
        assert_eq!(p.refunded, None);
    }
}

/// An unknown deposit is NOT_FOUND with D24's code 208 (from the nested error shape).
#[tokio::test]
async fn unknown_deposit_is_not_found() {
    let env = Env::start().await;
    let r = rejected_read(env.d24.get_payment(&pay_ref(399999999, "x")).await);
    assert_eq!(
        (r.code, r.reason, r.provider_code.as_str()),
        (ErrorCode::NotFound, reason::PAYMENT_NOT_FOUND, "208")
    );
    let r = rejected(
        env.d24
            .submit_refund(&refund(399999999, "x", mxn(100)))
            .await,
    );
    assert_eq!(
        (r.code, r.provider_code.as_str()),
        (ErrorCode::NotFound, "208")
    );
    // An invoice that is not the deposit's is "not found" too.
    let r = rejected(
        env.d24
            .submit_refund(&refund(CARD_MXN, "not-its-invoice", mxn(100)))
            .await,
    );
    assert_eq!(r.provider_code, "208");
    assert_eq!(env.stats().await["refunds_created"], 0);
}

/// A wrong secret (102) or login (100) is a configuration problem on reads and refunds:
/// FAILED_PRECONDITION, never a declined refund, nothing created, no secret in messages.
#[tokio::test]
async fn wrong_credentials_are_configuration_problems() {
    let env = Env::start().await;
    for (adapter, code) in [
        (env.adapter_with(D24_SANDBOX_LOGIN, "wrong-secret"), "102"),
        (env.adapter_with("wrong-login", D24_SANDBOX_SECRET), "100"),
    ] {
        let r = rejected_read(adapter.get_payment(&pay_ref(CARD_MXN, "x")).await);
        assert_eq!(
            (r.code, r.reason, r.provider_code.as_str()),
            (
                ErrorCode::FailedPrecondition,
                reason::PROVIDER_AUTHENTICATION_FAILED,
                code
            )
        );
        assert!(!r.message.contains("wrong-secret") && !r.provider_message.contains("wrong"));
        let r = rejected(
            adapter
                .submit_refund(&refund(CARD_MXN, CARD_MXN_INVOICE, mxn(100)))
                .await,
        );
        assert_eq!(
            (r.code, r.reason, r.provider_code.as_str()),
            (
                ErrorCode::FailedPrecondition,
                reason::PROVIDER_AUTHENTICATION_FAILED,
                code
            )
        );
    }
    let stats = env.stats().await;
    assert_eq!(stats["refunds_created"], 0);
    assert_eq!(stats["header_errors"]["102"], 2);
    assert_eq!(stats["header_errors"]["100"], 2);
}

/// A card refund succeeds at once: the simulator holds it with the exact amount, the
/// gateway's refund id as idempotency key, the description as comments and the
/// notification URL; reading it back says COMPLETED.
#[tokio::test]
async fn card_refund_succeeds_and_is_recorded_as_sent() {
    let env = Env::with(
        Duration::from_secs(5),
        Some("http://127.0.0.1:9/webhooks/d24/d24".into()),
    )
    .await;
    let mut r = refund(CARD_MXN, CARD_MXN_INVOICE, mxn(50595));
    r.description = "Customer returned item".into();
    let obs = accepted(env.d24.submit_refund(&r).await);
    assert_eq!(obs.status, RefundStatus::Succeeded);
    assert_eq!(obs.provider_status.as_deref(), Some("SUCCESS"));
    let id = obs.provider_refund_id.clone().unwrap();
    assert_eq!(id, "80000001");

    let held = env.sim_refunds(CARD_MXN).await;
    assert_eq!(held.len(), 1);
    assert_eq!(env.held_amounts(CARD_MXN), ["505.95"]);
    assert_eq!(held[0]["idempotency_key"], r.id.as_str());
    assert_eq!(held[0]["comments"], "Customer returned item");
    assert_eq!(
        held[0]["notification_url"],
        "http://127.0.0.1:9/webhooks/d24/d24"
    );

    let found = env.d24.fetch_refund(&with_id(r, &obs)).await.unwrap();
    let RefundLookup::Found(read) = found else {
        panic!("{found:?}")
    };
    assert_eq!(read.status, RefundStatus::Succeeded);
    assert_eq!(read.provider_status.as_deref(), Some("COMPLETED"));
}

/// IN_PROGRESS card refunds are PROCESSING until D24 completes them; REJECTED card refunds
/// are accepted and FAILED, with D24's reason and reason code.
#[tokio::test]
async fn card_in_progress_and_rejected() {
    let env = Env::start().await;
    env.set_timing(json!({ "card_completed_after_ms": null }))
        .await;
    let r = refund(CARD_IN_PROGRESS, CARD_IN_PROGRESS_INVOICE, mxn(10000));
    let obs = accepted(env.d24.submit_refund(&r).await);
    assert_eq!(obs.status, RefundStatus::Processing);
    assert_eq!(obs.provider_status.as_deref(), Some("IN_PROGRESS"));
    let r = with_id(r, &obs);
    let read = env.d24.fetch_refund(&r).await.unwrap();
    assert!(
        matches!(&read, RefundLookup::Found(o) if o.status == RefundStatus::Processing && o.provider_status.as_deref() == Some("PENDING")),
        "{read:?}"
    );
    env.force(r.provider_refund_id.as_deref().unwrap(), "COMPLETED")
        .await;
    let read = env.d24.fetch_refund(&r).await.unwrap();
    assert!(
        matches!(&read, RefundLookup::Found(o) if o.status == RefundStatus::Succeeded),
        "{read:?}"
    );

    let obs = accepted(
        env.d24
            .submit_refund(&refund(CARD_REJECTED, CARD_REJECTED_INVOICE, mxn(30000)))
            .await,
    );
    assert_eq!(obs.status, RefundStatus::Failed);
    let failure = obs.failure.unwrap();
    assert_eq!(failure.code, reason::PROVIDER_DECLINED);
    assert_eq!(
        (
            failure.provider_code.as_str(),
            failure.provider_message.as_str()
        ),
        ("1", "Card expired")
    );
}

/// A cash refund needs a bank account (804, nothing created); with one it is PROCESSING
/// and moves PENDING -> DELIVERED -> COMPLETED at D24, read back at each step.
#[tokio::test]
async fn cash_refund_needs_a_bank_account_and_completes_later() {
    let env = Env::start().await;
    env.set_timing(json!({ "delivered_after_ms": null })).await;
    let mut r = refund(CASH_MXN, CASH_MXN_INVOICE, mxn(10000));
    let no_account = rejected(env.d24.submit_refund(&r).await);
    assert_eq!(
        (
            no_account.code,
            no_account.reason,
            no_account.provider_code.as_str()
        ),
        (
            ErrorCode::InvalidArgument,
            reason::BANK_ACCOUNT_REQUIRED,
            "804"
        )
    );
    assert_eq!(env.stats().await["refunds_created"], 0);

    r.bank_account = Some(account());
    let obs = accepted(env.d24.submit_refund(&r).await);
    assert_eq!(obs.status, RefundStatus::Processing);
    let id = obs.provider_refund_id.clone().unwrap();
    assert_eq!(id, "168284");
    let held = env.sim_refunds(CASH_MXN).await;
    assert_eq!(held[0]["bank_account"]["account_type"], "SAVING");
    assert_eq!(held[0]["bank_account"]["account_number"], "18293435");
    assert_eq!(env.held_amounts(CASH_MXN), ["100.00"]);

    let r = with_id(r, &obs);
    for (word, status) in [
        ("PENDING", RefundStatus::Processing),
        ("DELIVERED", RefundStatus::Processing),
        ("INCORRECT_DETAILS", RefundStatus::Processing),
        ("COMPLETED", RefundStatus::Succeeded),
        ("REJECTED", RefundStatus::Failed),
        ("CANCELLED", RefundStatus::Canceled),
    ] {
        if word != "PENDING" {
            env.force(&id, word).await;
        }
        match env.d24.fetch_refund(&r).await.unwrap() {
            RefundLookup::Found(o) => {
                assert_eq!(o.status, status, "{word}");
                assert_eq!(o.provider_status.as_deref(), Some(word));
            }
            RefundLookup::Absent => panic!("{word}: absent"),
        }
    }
}

/// Partial refunds add up to the deposit exactly; the next one is refused with 802
/// (FAILED_PRECONDITION, AMOUNT_EXCEEDS_REFUNDABLE) and creates nothing.
#[tokio::test]
async fn partial_refunds_up_to_the_deposit_then_802() {
    let env = Env::start().await;
    for minor in [30000, 30000, 40000] {
        let obs = accepted(
            env.d24
                .submit_refund(&refund(CARD_MXN_1000, CARD_MXN_1000_INVOICE, mxn(minor)))
                .await,
        );
        assert_eq!(obs.status, RefundStatus::Succeeded);
    }
    let r = rejected(
        env.d24
            .submit_refund(&refund(CARD_MXN_1000, CARD_MXN_1000_INVOICE, mxn(1)))
            .await,
    );
    assert_eq!(
        (r.code, r.reason, r.provider_code.as_str()),
        (
            ErrorCode::FailedPrecondition,
            reason::AMOUNT_EXCEEDS_REFUNDABLE,
            "802"
        )
    );
    assert_eq!(
        env.held_amounts(CARD_MXN_1000),
        ["300.00", "300.00", "400.00"]
    );
}

/// A deposit that is not COMPLETED is refused with 801 (PAYMENT_NOT_REFUNDABLE).
#[tokio::test]
async fn not_completed_deposit_is_801() {
    let env = Env::start().await;
    let r = rejected(
        env.d24
            .submit_refund(&refund(PENDING_DEPOSIT, PENDING_DEPOSIT_INVOICE, mxn(100)))
            .await,
    );
    assert_eq!(
        (r.code, r.reason, r.provider_code.as_str()),
        (
            ErrorCode::FailedPrecondition,
            reason::PAYMENT_NOT_REFUNDABLE,
            "801"
        )
    );
}

/// Zero-decimal amounts go out as whole numbers and come back exact.
#[tokio::test]
async fn clp_amounts_have_no_decimals() {
    let env = Env::start().await;
    let r = refund(CARD_CLP, CARD_CLP_INVOICE, money(1500, "CLP"));
    let obs = accepted(env.d24.submit_refund(&r).await);
    assert_eq!(obs.status, RefundStatus::Succeeded);
    assert_eq!(env.held_amounts(CARD_CLP), ["1500"]);
    let read = env.d24.fetch_refund(&with_id(r, &obs)).await.unwrap();
    assert!(matches!(read, RefundLookup::Found(o) if o.status == RefundStatus::Succeeded));
}

/// The same refund sent twice is created once: the second answer is 104, an UNKNOWN
/// outcome (never a failure).
#[tokio::test]
async fn sending_the_same_refund_again_never_makes_a_second() {
    let env = Env::start().await;
    let r = refund(CARD_MXN, CARD_MXN_INVOICE, mxn(10000));
    accepted(env.d24.submit_refund(&r).await);
    let again = env.d24.submit_refund(&r).await;
    assert_unknown(&again);
    let SubmitOutcome::Unknown(why) = again else {
        unreachable!()
    };
    assert!(why.contains("104"), "{why}");
    let stats = env.stats().await;
    assert_eq!(stats["refunds_created"], 1);
    assert_eq!(stats["idempotency_key_reuses"], 1);
    assert_eq!(stats["refund_posts"], 2);
}

/// An answer slower than the timeout is UNKNOWN although D24 created the refund; sending
/// it again is answered 104 (still unknown), and only one refund exists. Reading it back by
/// D24's id tells the deposit and the amount to recognise it by.
#[tokio::test]
async fn timeout_is_unknown_and_the_resend_is_104() {
    let env = Env::with(Duration::from_millis(300), None).await;
    env.set_faults(json!({ "refund_delay_ms": 1500 })).await;
    let mut r = refund(CARD_MXN, CARD_MXN_INVOICE, mxn(50595));
    assert_unknown(&env.d24.submit_refund(&r).await);
    let held = env.sim_refunds(CARD_MXN).await;
    assert_eq!(held.len(), 1);
    // No id known: nothing to read, reconciliation may resend.
    assert_eq!(env.d24.fetch_refund(&r).await, Ok(RefundLookup::Absent));

    env.clear_faults().await;
    r.submission = Submission::Unknown;
    assert!(env.d24.resubmit_is_safe());
    assert_unknown(&env.d24.submit_refund(&r).await);
    assert_eq!(env.sim_refunds(CARD_MXN).await.len(), 1);

    let id = held[0]["id"].to_string();
    let record = env.d24.refund_by_provider_id(&id).await.unwrap().unwrap();
    assert_eq!(record.payment_id, CARD_MXN.to_string());
    assert_eq!(record.amount.unwrap().to_string(), "505.95");
    assert_eq!(record.observation.status, RefundStatus::Succeeded);
    assert_eq!(env.d24.refund_by_provider_id("999").await, Ok(None));
}

/// A 503 before D24 did anything is UNKNOWN (a 5xx proves nothing); the resend under the
/// same key then creates the refund, once.
#[tokio::test]
async fn error_503_before_apply_is_unknown_and_the_resend_creates_it() {
    let env = Env::start().await;
    env.set_faults(json!({ "fail_before_apply_status": 503 }))
        .await;
    let mut r = refund(CARD_MXN, CARD_MXN_INVOICE, mxn(10000));
    assert_unknown(&env.d24.submit_refund(&r).await);
    assert!(env.sim_refunds(CARD_MXN).await.is_empty());
    env.clear_faults().await;
    r.submission = Submission::Unknown;
    let obs = accepted(env.d24.submit_refund(&r).await);
    assert_eq!(obs.status, RefundStatus::Succeeded);
    assert_eq!(env.stats().await["refunds_created"], 1);
}

/// A 500 after D24 created the refund, and a 200 with an unreadable body, are UNKNOWN.
#[tokio::test]
async fn errors_after_apply_and_unreadable_200_are_unknown() {
    let env = Env::start().await;
    env.set_faults(json!({ "fail_after_apply_status": 500 }))
        .await;
    assert_unknown(
        &env.d24
            .submit_refund(&refund(CARD_MXN, CARD_MXN_INVOICE, mxn(100)))
            .await,
    );
    env.set_faults(json!({ "corrupt_refund_body": true })).await;
    assert_unknown(
        &env.d24
            .submit_refund(&refund(CARD_MXN, CARD_MXN_INVOICE, mxn(100)))
            .await,
    );
    assert_eq!(env.stats().await["refunds_created"], 2);
}

/// Nothing listening: the refund provably never left (NOT_SENT); reads are unreachable.
#[tokio::test]
async fn connection_refused_is_not_sent() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let d24 = D24::new(
        format!("http://127.0.0.1:{port}/d24"),
        SecretString::from(D24_SANDBOX_LOGIN),
        SecretString::from(D24_SANDBOX_SECRET),
        None,
        Duration::from_secs(2),
    );
    let r = refund(CARD_MXN, CARD_MXN_INVOICE, mxn(100));
    let outcome = d24.submit_refund(&r).await;
    assert!(matches!(outcome, SubmitOutcome::NotSent(_)), "{outcome:?}");
    assert!(matches!(
        d24.get_payment(&r.payment).await,
        Err(ProviderError::Unreachable(_))
    ));
}

/// Reads answered 5xx are unreachable; a refund D24 does not hold is absent.
#[tokio::test]
async fn read_errors_and_absent_refunds() {
    let env = Env::start().await;
    let mut r = refund(CARD_MXN, CARD_MXN_INVOICE, mxn(100));
    r.provider_refund_id = Some("424242".into());
    r.submission = Submission::Accepted;
    assert_eq!(env.d24.fetch_refund(&r).await, Ok(RefundLookup::Absent));
    env.set_faults(json!({ "fail_reads_status": 503 })).await;
    assert!(matches!(
        env.d24.fetch_refund(&r).await,
        Err(ProviderError::Unreachable(_))
    ));
    assert!(matches!(
        env.d24.get_payment(&r.payment).await,
        Err(ProviderError::Unreachable(_))
    ));
}

/// A COMPLETED refund the bank later rejects reads back FAILED (the reversal).
#[tokio::test]
async fn reversal_reads_back_as_failed() {
    let env = Env::start().await;
    let r = refund(CARD_MXN, CARD_MXN_INVOICE, mxn(100));
    let obs = accepted(env.d24.submit_refund(&r).await);
    let r = with_id(r, &obs);
    env.force(r.provider_refund_id.as_deref().unwrap(), "REJECTED")
        .await;
    match env.d24.fetch_refund(&r).await.unwrap() {
        RefundLookup::Found(o) => {
            assert_eq!(o.status, RefundStatus::Failed);
            assert_eq!(o.failure.unwrap().code, reason::PROVIDER_DECLINED);
        }
        other => panic!("{other:?}"),
    }
}

/// The simulator POSTs `{"refund_id": N}` to the notification URL on each status change,
/// and sends it again while the answer is not 200; the adapter reads such a body as "read
/// refund N again".
#[tokio::test]
async fn notifications_are_sent_and_retried_until_200() {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let app = {
        let seen = seen.clone();
        Router::new().route(
            "/hook",
            post(move |body: String| {
                let seen = seen.clone();
                async move {
                    let mut seen = seen.lock().unwrap();
                    seen.push(body);
                    // The first delivery fails; later ones are taken.
                    if seen.len() == 1 {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let env = Env::with(Duration::from_secs(5), Some(hook)).await;
    env.set_timing(
        json!({ "notify_retry_ms": 20, "delivered_after_ms": 50, "completed_after_ms": 50 }),
    )
    .await;
    let mut r = refund(CASH_MXN, CASH_MXN_INVOICE, mxn(10000));
    r.bank_account = Some(account());
    accepted(env.d24.submit_refund(&r).await);

    // PENDING (failed once, then taken), DELIVERED, COMPLETED: 4 deliveries.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while env.stats().await["notifications_sent"] != 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            env.stats().await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = env.stats().await;
    assert_eq!(stats["notifications_failed"], 1);
    let bodies = seen.lock().unwrap().clone();
    assert_eq!(bodies.len(), 4);
    assert!(
        bodies.iter().all(|b| b == r#"{"refund_id":168284}"#),
        "{bodies:?}"
    );
    assert_eq!(
        env.d24
            .parse_webhook(&http::HeaderMap::new(), bodies[0].as_bytes())
            .unwrap(),
        vec![WebhookNotice::Refetch {
            provider_refund_id: "168284".into()
        }]
    );
}

/// Checks the adapter makes before anything is recorded: bank account for non-card
/// deposits; partial refunds allowed; what it advertises.
#[tokio::test]
async fn checks_and_capabilities() {
    let env = Env::start().await;
    let draft = RefundDraft {
        tenant: TenantId::new("acme"),
        request_id: "r".into(),
        provider: "d24".into(),
        payment: pay_ref(BANK_BRL, BANK_BRL_INVOICE),
        amount: None,
        reason: RefundReason::Other,
        description: String::new(),
        metadata: BTreeMap::new(),
        bank_account: None,
    };
    let payment = env.d24.get_payment(&draft.payment).await.unwrap();
    let err = env
        .d24
        .check_refund(&draft, &payment, money(100, "BRL"))
        .unwrap_err();
    assert_eq!(err.reason, reason::BANK_ACCOUNT_REQUIRED);
    let card = env
        .d24
        .get_payment(&pay_ref(CARD_MXN, CARD_MXN_INVOICE))
        .await
        .unwrap();
    assert_eq!(env.d24.check_refund(&draft, &card, mxn(1)), Ok(()));
    let caps = env.d24.capabilities();
    assert!(caps.partial_refunds && caps.webhooks);
    for c in ["MXN", "CLP", "BRL", "COP", "ARS", "PEN", "USD"] {
        assert!(caps.currencies.contains(&c), "{c}");
    }
    assert_eq!(env.d24.kind(), ProviderKind::D24);
}
