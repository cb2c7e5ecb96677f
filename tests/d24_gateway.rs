//! D24 through the gateway's gRPC API: each test starts a D24 simulator and a whole gateway
//! in-process (`app::start` on 127.0.0.1:0, a temporary SQLite file, fast worker settings),
//! drives it with the generated client, and checks both what callers see and what the
//! simulator saw (its counters prove which calls were, or were not, made).

mod support;

use std::time::{Duration, Instant};

use refund_gateway::pb;
use simulators::{
    self, D24Sim,
    d24::RefundState,
    d24::fixtures::{
        BANK_BRL, BANK_BRL_INVOICE, BANK_CLP, BANK_CLP_INVOICE, CARD_CLP, CARD_CLP_INVOICE,
        CARD_IN_PROGRESS, CARD_IN_PROGRESS_INVOICE, CARD_MXN, CARD_MXN_1000, CARD_MXN_1000_INVOICE,
        CARD_MXN_INVOICE, CASH_MXN, CASH_MXN_INVOICE, PENDING_DEPOSIT, PENDING_DEPOSIT_INVOICE,
    },
    d24::state::{Faults, Timing},
};
use support::{
    gateway::{Account, Endpoint, Gateway as Harness, Setup},
    sims,
};
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

/// The accounts: `d24` (the sandbox credentials) and `d24_badsig` (the right login, a wrong
/// signature secret), both on the simulator. With `Endpoint::OwnSim` the simulator is the
/// test's own, reached like the real D24; with `Endpoint::Sandbox` the `d24` account is
/// served from the gateway's own sandbox (`sandbox = true`).
fn accounts(endpoint: Endpoint) -> Vec<Account> {
    let badsig = match endpoint {
        Endpoint::Sandbox => Endpoint::Url("http://127.0.0.1:9/d24".to_owned()),
        _ => endpoint.clone(),
    };
    vec![
        Account {
            endpoint,
            ..Account::sandbox("d24")
        },
        Account {
            name: "d24_badsig".to_owned(),
            endpoint: badsig,
            credentials: Some(sims::d24_wrong_secret()),
            keys: "timeout_ms = 2000\n".to_owned(),
            ..Account::sandbox("d24")
        },
    ]
}

/// This file's gateway: the accounts above on the test's own simulator, a fast worker.
fn setup() -> Setup {
    Setup {
        accounts: accounts(Endpoint::OwnSim),
        max_reconcile_attempts: None,
        shutdown_grace_ms: None,
        ..Setup::default()
    }
}

/// The shared harness, with the D24 simulator its accounts point at and the calls these
/// tests make.
struct Gateway {
    harness: Harness,
    sim: D24Sim,
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
        let harness = Harness::start(setup).await;
        let sim = harness.d24().clone();
        Self { harness, sim }
    }

    fn set_timing(&self, timing: Timing) {
        self.sim.set_timing(timing).unwrap();
    }

    async fn create(&self, req: pb::CreateRefundRequest) -> Result<pb::Refund, Status> {
        self.client
            .clone()
            .create_refund(req)
            .await
            .map(|r| r.into_inner().refund.expect("a refund"))
    }

    async fn payment(&self, deposit: u64, invoice: &str) -> pb::Payment {
        self.client
            .clone()
            .get_payment(pb::GetPaymentRequest {
                provider: "d24".into(),
                payment: Some(payment_ref(deposit, invoice)),
            })
            .await
            .unwrap()
            .into_inner()
            .payment
            .unwrap()
    }

    async fn list(&self, provider: &str) -> Vec<pb::Refund> {
        self.client
            .clone()
            .list_refunds(pb::ListRefundsRequest {
                provider: provider.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .refunds
    }

    async fn watch(&self, id: &str) -> tonic::Streaming<pb::WatchRefundResponse> {
        self.client
            .clone()
            .watch_refund(pb::WatchRefundRequest { id: id.into() })
            .await
            .unwrap()
            .into_inner()
    }

    /// POSTs a notification body to the gateway's D24 webhook of `account`.
    async fn notify(&self, account: &str, body: &str) -> u16 {
        reqwest::Client::new()
            .post(format!(
                "http://{}/webhooks/d24/{account}",
                self.running.http_addr
            ))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// The simulator's refund behind a gateway refund.
    fn sim_refund(&self, refund: &pb::Refund) -> simulators::d24::state::Refund {
        let id: u64 = refund.provider_refund_id.parse().expect("a D24 id");
        self.sim.refund(id).expect("the simulator holds it")
    }
}

fn payment_ref(deposit: u64, invoice: &str) -> pb::PaymentReference {
    pb::PaymentReference {
        payment_id: deposit.to_string(),
        payment_method_id: String::new(),
        invoice_id: invoice.into(),
    }
}

fn money(currency: &str, minor: i64) -> pb::Money {
    pb::Money {
        currency_code: currency.into(),
        minor_units: minor,
    }
}

fn request(
    request_id: &str,
    deposit: u64,
    invoice: &str,
    amount: Option<pb::Money>,
) -> pb::CreateRefundRequest {
    pb::CreateRefundRequest {
        request_id: request_id.into(),
        provider: "d24".into(),
        payment: Some(payment_ref(deposit, invoice)),
        amount,
        reason: pb::RefundReason::RequestedByCustomer as i32,
        description: "customer asked".into(),
        metadata: Default::default(),
        bank_account: None,
    }
}

fn bank_account() -> pb::BankAccount {
    pb::BankAccount {
        beneficiary: "Carlos Ramirez".into(),
        bank_code: "1".into(),
        branch: "9283".into(),
        account_number: "18293435".into(),
        account_type: pb::BankAccountType::Saving as i32,
    }
}

fn status_of(refund: &pb::Refund) -> pb::RefundStatus {
    pb::RefundStatus::try_from(refund.status).unwrap()
}

/// The `ErrorInfo` reason and metadata of an error.
fn info(status: &Status) -> (String, std::collections::HashMap<String, String>) {
    let details = status.get_error_details();
    let info = details.error_info().expect("every error carries ErrorInfo");
    assert_eq!(info.domain, "refunds.v1");
    (info.reason.clone(), info.metadata.clone())
}

/// The next message of a watch stream (at most 10 s).
async fn next_event(stream: &mut tonic::Streaming<pb::WatchRefundResponse>) -> pb::RefundEvent {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("a message within 10 s")
        .expect("the stream is healthy")
        .expect("the stream has not ended")
        .event
        .unwrap()
}

fn event_status(event: &pb::RefundEvent) -> pb::RefundStatus {
    status_of(event.refund.as_ref().unwrap())
}

/// The first event of a watch stream in `status`; the events before it may only be
/// PROCESSING (provider details changing, such as D24's creation notification read back).
async fn until_status(
    stream: &mut tonic::Streaming<pb::WatchRefundResponse>,
    status: pb::RefundStatus,
) -> pb::RefundEvent {
    loop {
        let event = next_event(stream).await;
        match event_status(&event) {
            s if s == status => return event,
            pb::RefundStatus::Processing => continue,
            other => panic!("expected {status:?}, got {other:?}: {event:?}"),
        }
    }
}

/// A card refund through a `sandbox = true` account completes at once: SUCCEEDED with
/// D24's id, the simulator holds exactly one refund with the gateway's id as idempotency
/// key and the gateway's webhook as notification URL, and the deposit reads REFUNDED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn card_refund_completes_at_once() {
    let gw = Gateway::with(Setup {
        accounts: accounts(Endpoint::Sandbox),
        ..setup()
    })
    .await;
    let refund = gw
        .create(request("card-1", CARD_MXN, CARD_MXN_INVOICE, None))
        .await
        .unwrap();
    assert_eq!(status_of(&refund), pb::RefundStatus::Succeeded);
    assert_eq!(refund.amount, Some(money("MXN", 50595)));
    assert_eq!(refund.provider_refund_id, "80000001");
    assert_eq!(refund.provider_status, "SUCCESS");

    let held = gw.sim_refund(&refund);
    assert_eq!(held.amount.to_string(), "505.95");
    assert_eq!(held.idempotency_key.as_deref(), Some(refund.id.as_str()));
    assert_eq!(held.comments.as_deref(), Some("customer asked"));
    assert_eq!(
        held.notification_url,
        Some(format!("http://{}/webhooks/d24/d24", gw.running.http_addr))
    );
    assert_eq!(gw.sim.stats().refunds_created, 1);

    let payment = gw.payment(CARD_MXN, CARD_MXN_INVOICE).await;
    assert_eq!(payment.status, pb::PaymentStatus::Refunded as i32);
    assert_eq!(payment.refundable_amount, Some(money("MXN", 0)));

    let providers = gw
        .client
        .clone()
        .list_providers(pb::ListProvidersRequest {})
        .await
        .unwrap()
        .into_inner()
        .providers;
    let d24 = providers.iter().find(|p| p.name == "d24").unwrap();
    assert_eq!(d24.kind, "d24");
    assert!(d24.sandbox && d24.supports_partial_refunds && d24.supports_webhooks);
}

/// An IN_PROGRESS card refund is PROCESSING, and D24's notification of its completion
/// reaches WatchRefund as SUCCEEDED, with a worker that polls nothing meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_progress_card_refund_is_completed_by_notification() {
    let gw = Gateway::with(Setup {
        first_check_ms: 600_000,
        max_check_interval_ms: 600_000,
        ..setup()
    })
    .await;
    gw.set_timing(Timing {
        card_completed_after_ms: None,
        ..Timing::default()
    });
    let refund = gw
        .create(request(
            "slow-1",
            CARD_IN_PROGRESS,
            CARD_IN_PROGRESS_INVOICE,
            Some(money("MXN", 25000)),
        ))
        .await
        .unwrap();
    assert_eq!(status_of(&refund), pb::RefundStatus::Processing);
    assert_eq!(refund.provider_status, "IN_PROGRESS");

    let mut watch = gw.watch(&refund.id).await;
    assert_eq!(
        event_status(&next_event(&mut watch).await),
        pb::RefundStatus::Processing
    );
    gw.sim
        .force_status(
            refund.provider_refund_id.parse().unwrap(),
            RefundState::Completed,
        )
        .unwrap();
    let event = until_status(&mut watch, pb::RefundStatus::Succeeded).await;
    assert_eq!(event.previous_status, pb::RefundStatus::Processing as i32);
    assert_eq!(event.refund.unwrap().provider_status, "COMPLETED");
    // SUCCEEDED is final: the stream ends.
    assert!(watch.message().await.unwrap().is_none());
    assert!(gw.sim.stats().notifications_sent >= 1);
}

/// With D24's notifications switched off, a bank refund still reaches SUCCEEDED through
/// the worker's polling, passing DELIVERED on the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refund_without_notifications_completes_by_polling() {
    let gw = Gateway::start().await;
    gw.set_timing(Timing {
        notifications: false,
        delivered_after_ms: Some(150),
        completed_after_ms: Some(300),
        ..Timing::default()
    });
    let mut req = request(
        "bank-1",
        BANK_BRL,
        BANK_BRL_INVOICE,
        Some(money("BRL", 50000)),
    );
    req.bank_account = Some(bank_account());
    let refund = gw.create(req).await.unwrap();
    assert_eq!(status_of(&refund), pb::RefundStatus::Processing);
    assert_eq!(
        refund.bank_account.as_ref().unwrap().account_number,
        "****3435"
    );

    let mut watch = gw.watch(&refund.id).await;
    let mut seen = Vec::new();
    loop {
        let event = next_event(&mut watch).await;
        let r = event.refund.unwrap();
        seen.push(r.provider_status.clone());
        if status_of(&r) == pb::RefundStatus::Succeeded {
            break;
        }
    }
    assert_eq!(seen.last().map(String::as_str), Some("COMPLETED"));
    assert!(seen.iter().any(|s| s == "DELIVERED"), "{seen:?}");
    assert!(gw.sim.notifications().is_empty());
    assert_eq!(gw.sim.stats().notifications_sent, 0);
}

/// SyncRefund asks D24 at once: with notifications off and a worker that polls nothing, a
/// refund completed at D24 reads SUCCEEDED right after SyncRefund.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_refund_asks_d24_at_once() {
    let gw = Gateway::with(Setup {
        first_check_ms: 600_000,
        max_check_interval_ms: 600_000,
        ..setup()
    })
    .await;
    gw.set_timing(Timing {
        notifications: false,
        card_completed_after_ms: None,
        ..Timing::default()
    });
    let refund = gw
        .create(request(
            "sync-1",
            CARD_IN_PROGRESS,
            CARD_IN_PROGRESS_INVOICE,
            None,
        ))
        .await
        .unwrap();
    gw.sim
        .force_status(
            refund.provider_refund_id.parse().unwrap(),
            RefundState::Completed,
        )
        .unwrap();
    assert_eq!(
        status_of(&gw.get(&refund.id).await),
        pb::RefundStatus::Processing
    );
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
    assert_eq!(status_of(&synced), pb::RefundStatus::Succeeded);
}

/// Partial refunds add up to the deposit; one more is refused with FAILED_PRECONDITION by
/// the gateway itself, with no refund POST reaching D24.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_refunds_up_to_the_deposit_then_refused_without_a_call() {
    let gw = Gateway::start().await;
    for (i, minor) in [30000, 30000].into_iter().enumerate() {
        let r = gw
            .create(request(
                &format!("part-{i}"),
                CARD_MXN_1000,
                CARD_MXN_1000_INVOICE,
                Some(money("MXN", minor)),
            ))
            .await
            .unwrap();
        assert_eq!(status_of(&r), pb::RefundStatus::Succeeded);
    }
    // More than the 400.00 left: refused before D24 is asked.
    let err = gw
        .create(request(
            "part-too-much",
            CARD_MXN_1000,
            CARD_MXN_1000_INVOICE,
            Some(money("MXN", 40001)),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let (reason, meta) = info(&err);
    assert_eq!(reason, "AMOUNT_EXCEEDS_REFUNDABLE");
    assert_eq!(meta["refundableMinorUnits"], "40000");
    assert_eq!(gw.sim.stats().refund_posts, 2);

    // The rest, with no amount: exactly what is left.
    let last = gw
        .create(request(
            "part-rest",
            CARD_MXN_1000,
            CARD_MXN_1000_INVOICE,
            None,
        ))
        .await
        .unwrap();
    assert_eq!(last.amount, Some(money("MXN", 40000)));
    let err = gw
        .create(request(
            "part-after",
            CARD_MXN_1000,
            CARD_MXN_1000_INVOICE,
            Some(money("MXN", 1)),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(info(&err).0, "NOTHING_LEFT_TO_REFUND");
    let stats = gw.sim.stats();
    assert_eq!((stats.refund_posts, stats.refunds_created), (3, 3));
    assert_eq!(stats.refund_posts_by_deposit[&CARD_MXN_1000.to_string()], 3);
    let payment = gw.payment(CARD_MXN_1000, CARD_MXN_1000_INVOICE).await;
    assert_eq!(payment.refunded_amount, Some(money("MXN", 100000)));
    assert_eq!(payment.status, pb::PaymentStatus::Refunded as i32);
}

/// A cash deposit refunded without a bank account is INVALID_ARGUMENT (bank_account named)
/// with no refund POST; with one it is PROCESSING, the account number masked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_bank_account_is_refused_without_a_call() {
    let gw = Gateway::start().await;
    let err = gw
        .create(request(
            "cash-1",
            CASH_MXN,
            CASH_MXN_INVOICE,
            Some(money("MXN", 10000)),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(info(&err).0, "BANK_ACCOUNT_REQUIRED");
    let violations = err
        .get_error_details()
        .bad_request()
        .unwrap()
        .field_violations
        .clone();
    assert_eq!(violations[0].field, "bank_account");
    assert_eq!(gw.sim.stats().refund_posts, 0);
    assert!(gw.list("d24").await.is_empty());

    let mut req = request(
        "cash-2",
        CASH_MXN,
        CASH_MXN_INVOICE,
        Some(money("MXN", 10000)),
    );
    req.bank_account = Some(bank_account());
    let refund = gw.create(req).await.unwrap();
    assert_eq!(status_of(&refund), pb::RefundStatus::Processing);
    assert_eq!(refund.bank_account.unwrap().account_number, "****3435");
    let held = gw.sim_refund(&gw.get(&refund.id).await);
    assert_eq!(held.bank_account.unwrap()["account_number"], "18293435");
}

/// A deposit that is not COMPLETED is FAILED_PRECONDITION with no refund POST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposit_not_completed_is_refused() {
    let gw = Gateway::start().await;
    let err = gw
        .create(request(
            "pending-1",
            PENDING_DEPOSIT,
            PENDING_DEPOSIT_INVOICE,
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let (reason, meta) = info(&err);
    assert_eq!(reason, "PAYMENT_NOT_REFUNDABLE");
    assert_eq!(meta["paymentStatus"], "PENDING");
    assert_eq!(gw.sim.stats().refund_posts, 0);
}

/// An unknown deposit is NOT_FOUND (D24 code 208) with no refund POST; an invoice that is
/// not the deposit's is NOT_FOUND from D24's answer, and that refund holds no money.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_deposit_is_not_found() {
    let gw = Gateway::start().await;
    let err = gw
        .create(request("ghost-1", 399999999, "ghost", None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let (reason, meta) = info(&err);
    assert_eq!(reason, "PAYMENT_NOT_FOUND");
    assert_eq!(meta["providerCode"], "208");
    // The name the API documents (and the earlier spelling, kept for existing callers).
    assert_eq!(meta["provider_code"], "208");
    assert_eq!(gw.sim.stats().refund_posts, 0);

    let err = gw
        .create(request("ghost-2", CARD_MXN, "not-its-invoice", None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(info(&err).1["providerCode"], "208");
    let recorded = gw.list("d24").await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(status_of(&recorded[0]), pb::RefundStatus::Failed);
    let payment = gw.payment(CARD_MXN, CARD_MXN_INVOICE).await;
    assert_eq!(payment.refundable_amount, Some(money("MXN", 50595)));
    assert_eq!(gw.sim.stats().refunds_created, 0);
}

/// An account whose secret is wrong is reported as a configuration problem: FAILED_PRECONDITION
/// with D24's code 102, no refund recorded or holding money, nothing created at D24.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_signature_is_a_configuration_problem() {
    let gw = Gateway::start().await;
    let mut req = request("badsig-1", CARD_MXN, CARD_MXN_INVOICE, None);
    req.provider = "d24_badsig".into();
    let err = gw.create(req.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let (reason, meta) = info(&err);
    assert_eq!(reason, "PROVIDER_AUTHENTICATION_FAILED");
    assert_eq!(meta["providerCode"], "102");
    assert_eq!(meta["provider"], "d24_badsig");
    assert!(!err.message().contains("not-the-secret"));
    // The same answer again (it is a stable refusal), still nothing recorded.
    let again = gw.create(req).await.unwrap_err();
    assert_eq!(info(&again).1["providerCode"], "102");
    assert!(gw.list("d24_badsig").await.is_empty());
    let stats = gw.sim.stats();
    assert_eq!(stats.refunds_created, 0);
    assert!(stats.header_errors[&102] >= 1);
    let payment = gw.payment(CARD_MXN, CARD_MXN_INVOICE).await;
    assert_eq!(payment.refundable_amount, Some(money("MXN", 50595)));
}

/// A COMPLETED refund the bank later rejects reaches WatchRefunds as a change from
/// SUCCEEDED to FAILED, WatchRefund shows it FAILED, and its amount is free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reversal_reaches_subscribers_as_failed() {
    let gw = Gateway::start().await;
    let refund = gw
        .create(request("rev-1", CARD_MXN, CARD_MXN_INVOICE, None))
        .await
        .unwrap();
    assert_eq!(status_of(&refund), pb::RefundStatus::Succeeded);
    let mut feed = gw
        .client
        .clone()
        .watch_refunds(pb::WatchRefundsRequest {
            after_sequence: None,
            provider: "d24".into(),
            statuses: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    // Let the creation notification settle first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    gw.sim
        .force_status(
            refund.provider_refund_id.parse().unwrap(),
            RefundState::Rejected,
        )
        .unwrap();
    let event = loop {
        let event = tokio::time::timeout(Duration::from_secs(10), feed.message())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .unwrap()
            .event
            .unwrap();
        if event.refund.as_ref().unwrap().id == refund.id
            && event_status(&event) == pb::RefundStatus::Failed
        {
            break event;
        }
    };
    assert_eq!(event.previous_status, pb::RefundStatus::Succeeded as i32);
    let failed = event.refund.unwrap();
    assert_eq!(failed.provider_status, "REJECTED");
    assert_eq!(failed.failure.unwrap().code, "PROVIDER_DECLINED");

    let mut watch = gw.watch(&refund.id).await;
    let current = next_event(&mut watch).await;
    assert_eq!(event_status(&current), pb::RefundStatus::Failed);
    assert_eq!(current.previous_status, pb::RefundStatus::Succeeded as i32);
    let payment = gw.payment(CARD_MXN, CARD_MXN_INVOICE).await;
    assert_eq!(payment.refundable_amount, Some(money("MXN", 50595)));
}

/// CLP has no decimals: 1500 CLP goes to D24 as `1500`, comes back exact, and what is left
/// is counted in whole pesos; a bank refund of the rest of a CLP deposit completes too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clp_amounts_end_to_end() {
    let gw = Gateway::start().await;
    gw.set_timing(Timing {
        delivered_after_ms: Some(50),
        completed_after_ms: Some(50),
        ..Timing::default()
    });
    let card = gw
        .create(request(
            "clp-1",
            CARD_CLP,
            CARD_CLP_INVOICE,
            Some(money("CLP", 1500)),
        ))
        .await
        .unwrap();
    assert_eq!(status_of(&card), pb::RefundStatus::Succeeded);
    assert_eq!(gw.sim_refund(&card).amount.to_string(), "1500");
    let payment = gw.payment(CARD_CLP, CARD_CLP_INVOICE).await;
    assert_eq!(payment.amount, Some(money("CLP", 15000)));
    assert_eq!(payment.refundable_amount, Some(money("CLP", 13500)));

    let mut req = request("clp-2", BANK_CLP, BANK_CLP_INVOICE, None);
    req.bank_account = Some(bank_account());
    let bank = gw.create(req).await.unwrap();
    assert_eq!(bank.amount, Some(money("CLP", 25000)));
    assert_eq!(gw.sim_refund(&bank).amount.to_string(), "25000");
    gw.wait_for(&bank.id, Duration::from_secs(10), |r| {
        status_of(r) == pb::RefundStatus::Succeeded
    })
    .await;
}

/// Notifications are handled idempotently: repeats of a known id answer 200 and add no
/// event; an id D24 does not hold answers 200 and changes nothing; a body that is not a
/// notification is 400; an unknown account is 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_repeats_are_harmless_and_unknown_ids_answer_200() {
    let gw = Gateway::with(Setup {
        first_check_ms: 600_000,
        max_check_interval_ms: 600_000,
        ..setup()
    })
    .await;
    gw.set_timing(Timing {
        notifications: false,
        ..Timing::default()
    });
    let refund = gw
        .create(request("hook-1", CARD_MXN, CARD_MXN_INVOICE, None))
        .await
        .unwrap();
    let events = |gw: &Gateway| {
        let mut client = gw.client.clone();
        async move {
            let mut feed = client
                .watch_refunds(pb::WatchRefundsRequest {
                    after_sequence: Some(0),
                    provider: String::new(),
                    statuses: vec![],
                })
                .await
                .unwrap()
                .into_inner();
            let mut n = 0;
            while let Ok(Some(Ok(_))) =
                tokio::time::timeout(Duration::from_millis(300), feed.message())
                    .await
                    .map(|m| m.transpose())
            {
                n += 1;
            }
            n
        }
    };
    // The first notification records what D24 says now (provider status COMPLETED)...
    let body = format!(r#"{{"refund_id": {}}}"#, refund.provider_refund_id);
    assert_eq!(gw.notify("d24", &body).await, 200);
    let after_first = gw.get(&refund.id).await;
    assert_eq!(status_of(&after_first), pb::RefundStatus::Succeeded);
    assert_eq!(after_first.provider_status, "COMPLETED");
    let before = events(&gw).await;
    // ...and repeats change nothing.
    for _ in 0..3 {
        assert_eq!(gw.notify("d24", &body).await, 200);
    }
    assert_eq!(events(&gw).await, before);
    assert_eq!(gw.get(&refund.id).await, after_first);
    assert_eq!(gw.notify("d24", r#"{"refund_id": 999999}"#).await, 200);
    assert_eq!(gw.notify("d24", r#"{"refund_id": "80009999"}"#).await, 200);
    assert_eq!(gw.notify("d24", r#"{"id": 1}"#).await, 400);
    assert_eq!(gw.notify("nope", &body).await, 404);
    assert_eq!(events(&gw).await, before);
}

/// The answer to a refund POST is lost (D24 answers after the adapter's timeout), but D24's
/// notification of the new refund names it: the gateway recognises its refund by deposit
/// and amount and records D24's id and status. One refund exists at D24, and the gateway's
/// record matches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answer_is_recognised_from_the_notification() {
    let gw = Gateway::with(Setup {
        timeout_ms: 400,
        ..setup()
    })
    .await;
    gw.sim
        .set_faults(Faults {
            refund_delay_ms: 1_500,
            ..Faults::default()
        })
        .unwrap();
    let created = gw
        .create(request(
            "lost-1",
            CARD_MXN,
            CARD_MXN_INVOICE,
            Some(money("MXN", 20000)),
        ))
        .await
        .unwrap();
    // Either still PENDING (the answer was lost) or already recognised: never FAILED.
    assert!(
        matches!(
            status_of(&created),
            pb::RefundStatus::Pending | pb::RefundStatus::Succeeded
        ),
        "{created:?}"
    );
    let done = gw
        .wait_for(&created.id, Duration::from_secs(10), |r| {
            status_of(r) == pb::RefundStatus::Succeeded
        })
        .await;
    let at_d24 = gw.sim.refunds_of(CARD_MXN);
    assert_eq!(at_d24.len(), 1);
    assert_eq!(done.provider_refund_id, at_d24[0].id.to_string());
    assert_eq!(at_d24[0].amount.to_string(), "200.00");
    assert_eq!(
        at_d24[0].idempotency_key.as_deref(),
        Some(created.id.as_str())
    );
    // Recognised from the notification alone: no resend was needed (or made yet).
    let stats = gw.sim.stats();
    assert_eq!((stats.refunds_created, stats.refund_posts), (1, 1));
    assert_eq!(stats.idempotency_key_reuses, 0);
}

/// The answer is lost and D24 sends no notification: the gateway re-sends the refund under
/// the same idempotency key once the first attempt is surely over, D24 answers 104 (it
/// landed), and the refund stays PENDING, never FAILED. When D24's notification is finally
/// sent (the Merchant Panel's resend), the gateway recognises the refund. Exactly one
/// refund exists at D24 throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answer_resend_is_104_then_the_notification_resolves_it() {
    let gw = Gateway::with(Setup {
        timeout_ms: 300,
        max_reconcile_attempts: Some(1000),
        ..setup()
    })
    .await;
    gw.set_timing(Timing {
        notifications: false,
        ..Timing::default()
    });
    gw.sim
        .set_faults(Faults {
            refund_delay_ms: 1_000,
            ..Faults::default()
        })
        .unwrap();
    let created = gw
        .create(request("lost-2", CARD_MXN, CARD_MXN_INVOICE, None))
        .await
        .unwrap();
    assert_eq!(status_of(&created), pb::RefundStatus::Pending);

    // The resend waits until the first attempt is surely over (timeout + 5 s margin).
    let deadline = Instant::now() + Duration::from_secs(15);
    while gw.sim.stats().idempotency_key_reuses == 0 {
        assert!(Instant::now() < deadline, "no resend: {:?}", gw.sim.stats());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pending = gw.get(&created.id).await;
    assert_eq!(status_of(&pending), pb::RefundStatus::Pending);
    assert_eq!(pending.provider_refund_id, "");
    assert_eq!(gw.sim.refunds_of(CARD_MXN).len(), 1);

    let at_d24 = gw.sim.refunds_of(CARD_MXN).remove(0);
    assert!(gw.sim.resend_notification(at_d24.id));
    let done = gw
        .wait_for(&created.id, Duration::from_secs(10), |r| {
            status_of(r) == pb::RefundStatus::Succeeded
        })
        .await;
    assert_eq!(done.provider_refund_id, at_d24.id.to_string());
    let stats = gw.sim.stats();
    assert_eq!(stats.refunds_created, 1);
    assert!(stats.refund_posts >= 2, "{stats:?}");
}

/// The answer is lost, no notification comes, and the configured checks run out: the
/// refund goes to REQUIRES_REVIEW (OUTCOME_UNKNOWN) rather than anything it cannot prove,
/// and a notification sent afterwards still resolves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_outcome_ends_in_review_until_d24_names_it() {
    let gw = Gateway::with(Setup {
        timeout_ms: 300,
        first_check_ms: 50,
        max_check_interval_ms: 100,
        max_reconcile_attempts: Some(3),
        ..setup()
    })
    .await;
    gw.set_timing(Timing {
        notifications: false,
        ..Timing::default()
    });
    gw.sim
        .set_faults(Faults {
            refund_delay_ms: 1_000,
            ..Faults::default()
        })
        .unwrap();
    let created = gw
        .create(request("review-1", CARD_MXN, CARD_MXN_INVOICE, None))
        .await
        .unwrap();
    let review = gw
        .wait_for(&created.id, Duration::from_secs(10), |r| {
            status_of(r) == pb::RefundStatus::RequiresReview
        })
        .await;
    assert_eq!(review.failure.unwrap().code, "OUTCOME_UNKNOWN");
    // The amount stays held while in review.
    let payment = gw.payment(CARD_MXN, CARD_MXN_INVOICE).await;
    assert_eq!(payment.refundable_amount, Some(money("MXN", 0)));

    let at_d24 = gw.sim.refunds_of(CARD_MXN).remove(0);
    assert!(gw.sim.resend_notification(at_d24.id));
    let done = gw
        .wait_for(&created.id, Duration::from_secs(10), |r| {
            status_of(r) == pb::RefundStatus::Succeeded
        })
        .await;
    assert_eq!(done.provider_refund_id, at_d24.id.to_string());
    assert_eq!(gw.sim.stats().refunds_created, 1);
}

/// A 503 before D24 did anything leaves the refund PENDING (a 5xx proves nothing); once
/// the attempt is surely over the gateway re-sends it, D24 creates it, and the gateway
/// records that answer: one refund at D24.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_outcome_that_never_landed_is_resent_once() {
    let gw = Gateway::with(Setup {
        timeout_ms: 300,
        max_reconcile_attempts: Some(1000),
        ..setup()
    })
    .await;
    gw.sim
        .set_faults(Faults {
            fail_before_apply_status: Some(503),
            ..Faults::default()
        })
        .unwrap();
    let created = gw
        .create(request("never-1", CARD_MXN, CARD_MXN_INVOICE, None))
        .await
        .unwrap();
    assert_eq!(status_of(&created), pb::RefundStatus::Pending);
    gw.sim.clear_faults();
    let done = gw
        .wait_for(&created.id, Duration::from_secs(15), |r| {
            status_of(r) == pb::RefundStatus::Succeeded
        })
        .await;
    let at_d24 = gw.sim.refunds_of(CARD_MXN);
    assert_eq!(at_d24.len(), 1);
    assert_eq!(done.provider_refund_id, at_d24[0].id.to_string());
    assert_eq!(gw.sim.stats().refund_posts, 2);
}

/// Measures how long a D24 status change takes to reach a WatchRefund subscriber: from the
/// moment the simulator starts POSTing the notification to the moment the client receives
/// the message (the gateway re-reads the refund from D24 in between). Prints the figures;
/// fails if any sample is over a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_to_subscriber_latency() {
    let gw = Gateway::with(Setup {
        first_check_ms: 600_000,
        max_check_interval_ms: 600_000,
        ..setup()
    })
    .await;
    gw.set_timing(Timing {
        card_completed_after_ms: None,
        ..Timing::default()
    });
    let mut samples = Vec::new();
    for i in 0..20 {
        let refund = gw
            .create(request(
                &format!("lat-{i}"),
                CARD_IN_PROGRESS,
                CARD_IN_PROGRESS_INVOICE,
                Some(money("MXN", 100)),
            ))
            .await
            .unwrap();
        let mut watch = gw.watch(&refund.id).await;
        next_event(&mut watch).await;
        let d24_id: u64 = refund.provider_refund_id.parse().unwrap();
        // Wait until the gateway has answered the creation's notification, so the change
        // measured is the completion's alone.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !gw.sim.notifications().iter().any(|n| n.refund_id == d24_id) {
            assert!(Instant::now() < deadline, "the creation was not notified");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let forced_at = chrono::Utc::now();
        gw.sim.force_status(d24_id, RefundState::Completed).unwrap();
        until_status(&mut watch, pb::RefundStatus::Succeeded).await;
        let received_at = chrono::Utc::now();
        // The simulator logs an attempt once it is answered, which is after the gateway has
        // published the change: wait for the entry.
        let deadline = Instant::now() + Duration::from_secs(5);
        let sent_at = loop {
            let started = gw
                .sim
                .notifications()
                .into_iter()
                .filter(|n| n.refund_id == d24_id && n.started_at >= forced_at)
                .map(|n| n.started_at)
                .min();
            if let Some(at) = started {
                break at;
            }
            assert!(Instant::now() < deadline, "the completion was not notified");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        samples.push((received_at - sent_at).to_std().unwrap());
    }
    samples.sort();
    let median = samples[samples.len() / 2];
    eprintln!(
        "D24 notification -> WatchRefund latency over {} samples: min {:?}, median {:?}, p90 {:?}, max {:?}",
        samples.len(),
        samples[0],
        median,
        samples[samples.len() * 9 / 10],
        samples[samples.len() - 1]
    );
    assert!(samples[samples.len() - 1] < Duration::from_secs(1));
}

/// A code D24 does not document, answered to a refund create, proves nothing about the
/// refund: CreateRefund answers it PENDING (not FAILED, nothing released), the gateway keeps
/// asking, and when the outcome stays unknown the refund goes to REQUIRES_REVIEW with its
/// amount still held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undocumented_code_is_an_unknown_outcome() {
    let gw = Gateway::with(Setup {
        timeout_ms: 300,
        first_check_ms: 50,
        max_check_interval_ms: 100,
        max_reconcile_attempts: Some(3),
        ..setup()
    })
    .await;
    gw.set_timing(Timing {
        notifications: false,
        refund_error_code: Some(999),
        ..Timing::default()
    });
    let created = gw
        .create(request("undocumented-1", CARD_MXN, CARD_MXN_INVOICE, None))
        .await
        .expect("an undocumented code is no refusal");
    assert_eq!(status_of(&created), pb::RefundStatus::Pending);
    let review = gw
        .wait_for(&created.id, Duration::from_secs(15), |r| {
            status_of(r) == pb::RefundStatus::RequiresReview
        })
        .await;
    assert_eq!(review.failure.unwrap().code, "OUTCOME_UNKNOWN");
    let payment = gw.payment(CARD_MXN, CARD_MXN_INVOICE).await;
    assert_eq!(payment.refundable_amount, Some(money("MXN", 0)));
    assert!(
        gw.events_of(&created.id)
            .await
            .iter()
            .all(|e| event_status(e) != pb::RefundStatus::Failed),
        "never FAILED"
    );
}

/// A TCP relay in front of the test PostgreSQL server that can be cut (every connection
/// dropped, nothing listening) and restored on the same port: the store becoming
/// unavailable, for real, at a chosen moment.
struct Relay {
    addr: std::net::SocketAddr,
    target: (String, u16),
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Relay {
    async fn start(target: (String, u16)) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay = Relay {
            addr: listener.local_addr().unwrap(),
            target,
            tasks: Default::default(),
        };
        relay.serve(listener);
        relay
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let (target, tasks) = (self.target.clone(), self.tasks.clone());
        let accept = tokio::spawn({
            let tasks = tasks.clone();
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    let target = target.clone();
                    let pipe = tokio::spawn(async move {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    tasks.lock().unwrap().push(pipe.abort_handle());
                }
            }
        });
        tasks.lock().unwrap().push(accept.abort_handle());
    }

    async fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    async fn restore(&self) {
        self.serve(tokio::net::TcpListener::bind(self.addr).await.unwrap());
    }

    /// The URL of `database` reached through this relay.
    fn url(&self, database: &support::postgres::TestDatabase) -> String {
        let mut url = reqwest::Url::parse(&database.url).unwrap();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(self.addr.port())).unwrap();
        url.to_string()
    }
}

/// A fresh PostgreSQL database behind a relay.
async fn database_behind_relay() -> (support::postgres::TestDatabase, Relay) {
    let database = support::postgres::TestDatabase::create().await;
    let url = reqwest::Url::parse(&database.url).unwrap();
    let target = (
        url.host_str().unwrap_or("127.0.0.1").to_owned(),
        url.port().unwrap_or(5432),
    );
    let relay = Relay::start(target).await;
    (database, relay)
}

/// A gateway on PostgreSQL through `relay`, failing fast while it is cut.
fn on_relay(relay: &Relay, database: &support::postgres::TestDatabase) -> Setup {
    Setup {
        store: support::gateway::Store::Postgres(relay.url(database)),
        store_keys: "connect_timeout_ms = 300\nstatement_timeout_ms = 2000\n".to_owned(),
        timeout_ms: 3_000,
        ..setup()
    }
}

/// Starts CreateRefund `req` in a task, and cuts the store once D24 has applied the refund
/// (its answer is held back by `refund_delay_ms`), so the outcome cannot be recorded. The
/// store comes back once CreateRefund has answered. Returns its answer.
async fn create_while_the_store_goes_away(
    gw: &Gateway,
    relay: &Relay,
    deposit: u64,
    req: pb::CreateRefundRequest,
) -> Result<pb::Refund, Status> {
    gw.sim
        .set_faults(Faults {
            refund_delay_ms: 1_000,
            times: Some(1),
            ..Faults::default()
        })
        .unwrap();
    let mut client = gw.client.clone();
    let call = tokio::spawn(async move {
        client
            .create_refund(req)
            .await
            .map(|r| r.into_inner().refund.expect("a refund"))
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw.sim.refunds_of(deposit).is_empty() {
        assert!(Instant::now() < deadline, "D24 never applied the refund");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    relay.cut().await;
    let answer = tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("CreateRefund answers while the store is away")
        .unwrap();
    relay.restore().await;
    answer
}

/// D24 accepted the refund, and then the store went away before the outcome was recorded:
/// CreateRefund answers the refund as last known (PENDING, with its id), not an error that
/// would invite a retry under a new request_id; a repeat with the same request_id answers
/// the same refund, and D24 holds exactly one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_refund_whose_outcome_cannot_be_recorded_is_answered() {
    let (database, relay) = database_behind_relay().await;
    let gw = Gateway::with(Setup {
        max_reconcile_attempts: Some(1000),
        ..on_relay(&relay, &database)
    })
    .await;
    gw.set_timing(Timing {
        notifications: false,
        ..Timing::default()
    });
    let req = request("store-away-1", CARD_MXN, CARD_MXN_INVOICE, None);
    let answered = create_while_the_store_goes_away(&gw, &relay, CARD_MXN, req.clone())
        .await
        .expect("the refund, not an error");
    assert_eq!(status_of(&answered), pb::RefundStatus::Pending);
    assert!(!answered.id.is_empty());
    // Once the claim on the request runs out, a repeat replays what the store holds.
    let deadline = Instant::now() + Duration::from_secs(20);
    let again = loop {
        match gw.create(req.clone()).await {
            Ok(refund) => break refund,
            Err(status) if status.code() == Code::Aborted => {
                assert!(Instant::now() < deadline, "{status:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(status) => panic!("the repeat got an error: {status:?}"),
        }
    };
    assert_eq!(again.id, answered.id);
    assert_eq!(gw.sim.stats().refunds_created, 1);
    assert_eq!(gw.sim.refunds_of(CARD_MXN).len(), 1);
    drop(gw);
}

/// A D24 cash refund of the whole deposit is applied, and its answer is lost (the store went
/// away before the outcome was recorded, so the refund stays "sending" with no D24 id).
/// The worker sends it again under the same idempotency key; D24 answers 104 (key checked
/// first) or 802 (amount checked first: the deposit is used up by the first attempt). Either
/// way the refund never becomes FAILED nor releases its amount: it ends in REQUIRES_REVIEW
/// with the amount held, and D24 holds one refund.
async fn lost_answer_of_a_full_refund_is_never_failed(amount_before_key: bool) {
    let (database, relay) = database_behind_relay().await;
    let gw = Gateway::with(Setup {
        first_check_ms: 50,
        max_check_interval_ms: 100,
        max_reconcile_attempts: Some(3),
        ..on_relay(&relay, &database)
    })
    .await;
    gw.set_timing(Timing {
        notifications: false,
        amount_before_key,
        ..Timing::default()
    });
    let req = pb::CreateRefundRequest {
        bank_account: Some(bank_account()),
        ..request(
            &format!("full-lost-{amount_before_key}"),
            CASH_MXN,
            CASH_MXN_INVOICE,
            None,
        )
    };
    // Whatever CreateRefund answered (that is another guarantee), the refund is stored.
    let _ = create_while_the_store_goes_away(&gw, &relay, CASH_MXN, req).await;
    let id = gw.sim.refunds_of(CASH_MXN)[0]
        .idempotency_key
        .clone()
        .expect("sent with the gateway's id as key");
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let refund = gw.get(&id).await;
        assert_ne!(
            status_of(&refund),
            pb::RefundStatus::Failed,
            "a refund D24 holds was marked FAILED: {refund:?}"
        );
        if status_of(&refund) == pb::RefundStatus::RequiresReview {
            break;
        }
        assert!(Instant::now() < deadline, "still {refund:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = gw.sim.stats();
    assert!(
        stats.refund_posts >= 2,
        "the worker sent it again: {stats:?}"
    );
    if amount_before_key {
        assert_eq!(stats.idempotency_key_reuses, 0, "{stats:?}");
    } else {
        assert!(stats.idempotency_key_reuses >= 1, "{stats:?}");
    }
    assert_eq!(stats.refunds_created, 1);
    let payment = gw.payment(CASH_MXN, CASH_MXN_INVOICE).await;
    assert_eq!(payment.refundable_amount, Some(money("MXN", 0)));
    assert!(
        gw.events_of(&id)
            .await
            .iter()
            .all(|e| event_status(e) != pb::RefundStatus::Failed),
        "never FAILED"
    );
    drop(gw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answer_of_a_full_refund_is_never_failed_key_checked_first() {
    lost_answer_of_a_full_refund_is_never_failed(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answer_of_a_full_refund_is_never_failed_amount_checked_first() {
    lost_answer_of_a_full_refund_is_never_failed(true).await;
}

/// Resends are fenced: two gateways on one PostgreSQL database, leases far shorter than a
/// check, D24 answering every create near the timeout with a 503 (so every attempt's outcome
/// stays unknown and the refund keeps being reconciled), and SyncRefund called over and
/// over on both gateways: D24 never sees two submissions of the refund in flight at once,
/// and holds one refund.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resends_are_fenced_across_replicas_and_sync() {
    let database = support::postgres::TestDatabase::create().await;
    let replica = |accounts| Setup {
        accounts,
        store: support::gateway::Store::Postgres(database.url.clone()),
        timeout_ms: 1_000,
        first_check_ms: 50,
        max_check_interval_ms: 200,
        max_reconcile_attempts: Some(1000),
        lease_ms: Some(100),
        ..setup()
    };
    let first = Gateway::with(replica(accounts(Endpoint::OwnSim))).await;
    let second = Harness::start(replica(accounts(Endpoint::Url(format!(
        "{}/d24",
        first.sandbox_url
    )))))
    .await;
    first.set_timing(Timing {
        notifications: false,
        ..Timing::default()
    });
    first
        .sim
        .set_faults(Faults {
            refund_delay_before_apply_ms: 800,
            fail_after_apply_status: Some(503),
            ..Faults::default()
        })
        .unwrap();
    let created = first
        .create(request("fenced-1", CARD_MXN, CARD_MXN_INVOICE, None))
        .await
        .unwrap();
    assert_eq!(status_of(&created), pb::RefundStatus::Pending);

    let until = Instant::now() + Duration::from_secs(10);
    let sync = |client: support::gateway::Client, id: String| async move {
        let mut client = client;
        while Instant::now() < until {
            let _ = client
                .sync_refund(pb::SyncRefundRequest { id: id.clone() })
                .await;
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    };
    tokio::join!(
        sync(first.client.clone(), created.id.clone()),
        sync(second.client.clone(), created.id.clone()),
        sync(first.new_client().await, created.id.clone()),
    );
    // Let the attempts in flight end.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let stats = first.sim.stats();
    assert!(stats.refund_posts >= 3, "it was sent again: {stats:?}");
    assert_eq!(
        stats.max_in_flight_per_key, 1,
        "two submissions of one refund in flight at once: {stats:?}"
    );
    assert_eq!(stats.refunds_created, 1);
    assert_eq!(first.sim.refunds_of(CARD_MXN).len(), 1);
    drop(second);
}

/// A deposit of the test's own in the simulator (an id no other test uses, so log lines can
/// be told apart), like fixture `like` but for `amount`. Returns its id and invoice.
async fn own_deposit(gw: &Gateway, like: u64, amount: &str) -> (u64, String) {
    let like = gw.sim.deposit(like).expect("a fixture deposit");
    let id = 320_000_000 + u64::from(uuid::Uuid::new_v4().as_u128() as u32 % 9_000_000);
    let invoice = format!("inv-own-{id}");
    gw.http
        .post(format!("{}/d24/sandbox/deposits", gw.sandbox_url))
        .json(&serde_json::json!({
            "id": id,
            "invoice_id": invoice,
            "amount": amount,
            "currency": like.currency,
            "country": like.country,
            "payment_type": like.payment_type,
            "payment_method": like.payment_method,
        }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .expect("deposit created");
    (id, invoice)
}

/// D24 notifies a refund's creation (and here its next two status changes) before it answers
/// the submission (the simulator holds its answer back for a second after applying it), so
/// every notification names an id the gateway has not recorded yet, the first one while D24
/// still omits the amount. They are matched once the answer is recorded, not dropped (parked
/// until then, and answered "deliver again" so that D24's next delivery keeps them safe): the
/// refund reaches SUCCEEDED through them alone (the worker's first check is ten minutes
/// away), and nothing "names a refund the gateway has no id for" is logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_before_the_answer_is_matched_not_dropped() {
    let gw = Gateway::with(Setup {
        first_check_ms: 600_000,
        max_check_interval_ms: 600_000,
        timeout_ms: 5_000,
        ..setup()
    })
    .await;
    assert!(
        support::logs::install(),
        "the gateway's log lines are captured"
    );
    let (deposit, invoice) = own_deposit(&gw, CASH_MXN, "250.00").await;
    gw.set_timing(Timing {
        delivered_after_ms: Some(100),
        completed_after_ms: Some(100),
        ..Timing::default()
    });
    gw.sim
        .set_faults(Faults {
            refund_delay_ms: 1_000,
            ..Faults::default()
        })
        .unwrap();
    let created = gw
        .create(pb::CreateRefundRequest {
            bank_account: Some(bank_account()),
            ..request("race-1", deposit, &invoice, None)
        })
        .await
        .unwrap();
    // D24 had the refund COMPLETED (and notified it) before it answered.
    let at_d24 = gw.sim.refunds_of(deposit);
    assert_eq!(at_d24.len(), 1);
    assert_eq!(at_d24[0].status, RefundState::Completed);
    let done = gw
        .wait_for(&created.id, Duration::from_secs(5), |r| {
            status_of(r) == pb::RefundStatus::Succeeded
        })
        .await;
    assert_eq!(done.provider_refund_id, at_d24[0].id.to_string());
    let stats = gw.sim.stats();
    assert_eq!((stats.refunds_created, stats.refund_posts), (1, 1));
    // Creation, DELIVERED, COMPLETED: each delivered at least once (those that came while the
    // answer was outstanding were answered "deliver again").
    assert!(
        stats.notifications_sent + stats.notifications_failed >= 3,
        "{stats:?}"
    );
    let logs = support::logs::captured();
    assert!(
        logs.lines()
            .any(|l| l.contains(&created.id) && l.contains("refund status changed")),
        "the gateway's lines are in the capture"
    );
    let payment = format!("payment_id={deposit}");
    let dropped: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains(&payment) && l.contains("WARN"))
        .collect();
    assert!(dropped.is_empty(), "{dropped:#?}");
}

/// Sends notifications one after the other until `stop` (at most 3000), alternating an
/// account that does not exist (a new random name each time), a D24 id nobody holds on the
/// real account, and `real` (an id the gateway knows) on the real account. Returns the names
/// it made up.
async fn flood(
    http_addr: std::net::SocketAddr,
    real: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut names = Vec::new();
    for round in 0..3000 {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        let (account, body) = match round % 3 {
            0 => {
                let name = format!("flood{}", uuid::Uuid::new_v4().simple());
                names.push(name.clone());
                (name, r#"{"refund_id": 1}"#.to_owned())
            }
            1 => (
                "d24".to_owned(),
                format!(r#"{{"refund_id": {}}}"#, 900_000_000 + round),
            ),
            _ => ("d24".to_owned(), format!(r#"{{"refund_id": {real}}}"#)),
        };
        let answer = client
            .post(format!("http://{http_addr}/webhooks/d24/{account}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("the webhook port answers");
        assert!(
            matches!(answer.status().as_u16(), 200 | 404 | 503),
            "{answer:?}"
        );
    }
    names
}

/// The webhook endpoints cannot be turned against the gateway. While eight senders flood
/// D24's webhook (random account names, random D24 ids on the real account, and a known
/// refund's id again and again), every CreateRefund of the real account succeeds: the reads
/// those notifications cause have a budget of their own, apart from submissions (the account
/// has 4 slots, D24 answers each request after 150 ms). The made-up account names never
/// appear in /metrics (their deliveries count under `provider="unknown"`), and a body over
/// the webhook limit is refused with 413 before anything is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_flood_never_fails_a_create_refund() {
    let gw = Gateway::with(Setup {
        d24: "max_in_flight = 4\nqueue_timeout_ms = 200\n".to_owned(),
        timeout_ms: 3_000,
        ..setup()
    })
    .await;
    // D24's own notifications (and their redeliveries) stay out of the counts below.
    gw.set_timing(Timing {
        notifications: false,
        ..Timing::default()
    });
    let (deposit, invoice) = own_deposit(&gw, CARD_MXN, "1000.00").await;
    let first = gw
        .create(request(
            "flood-0",
            deposit,
            &invoice,
            Some(money("MXN", 10000)),
        ))
        .await
        .unwrap();
    gw.sim
        .set_faults(Faults {
            delay_ms: 150,
            ..Faults::default()
        })
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let senders: Vec<_> = (0..8)
        .map(|_| {
            tokio::spawn(flood(
                gw.running.http_addr,
                first.provider_refund_id.clone(),
                stop.clone(),
            ))
        })
        .collect();
    // The flood is under way before the first CreateRefund.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for n in 1..=6 {
        let refund = gw
            .create(request(
                &format!("flood-{n}"),
                deposit,
                &invoice,
                Some(money("MXN", 10000)),
            ))
            .await
            .unwrap_or_else(|status| panic!("CreateRefund {n} failed under the flood: {status:?}"));
        assert_eq!(
            status_of(&refund),
            pb::RefundStatus::Succeeded,
            "{refund:?}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut names = Vec::new();
    for sender in senders {
        names.extend(sender.await.unwrap());
    }
    assert_eq!(gw.sim.refunds_of(deposit).len(), 7);

    let metrics = gw.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("refund_gateway_webhooks_total{")
                && l.contains(r#"provider="unknown""#)
                && l.contains(r#"outcome="unknown_account""#)),
        "deliveries for unknown accounts are counted under one label"
    );
    let leaked: Vec<&String> = names
        .iter()
        .filter(|n| metrics.contains(n.as_str()))
        .collect();
    assert!(
        leaked.is_empty(),
        "{} made-up names became series",
        leaked.len()
    );

    // Over the limit: 413, and nothing read (D24 sees no request).
    gw.sim.clear_faults();
    // Reads the flood started may still be landing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = gw.sim.stats().requests;
    // 64 KiB is the documented limit.
    let padding = "x".repeat(64 * 1024);
    let body = format!(
        r#"{{"refund_id": {}, "padding": "{padding}"}}"#,
        first.provider_refund_id
    );
    assert_eq!(gw.notify("d24", &body).await, 413);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(gw.sim.stats().requests, before);
}
