//! The fault matrix: every fault switch of the provider simulators against every provider,
//! through the whole gateway.
//!
//! Each case starts a fresh gateway in-process (`app::start`: gRPC and HTTP on 127.0.0.1:0, a
//! temporary SQLite file, the three sandbox accounts served by the built-in simulators, a
//! short provider timeout and a fast worker), switches one fault on through the simulator's
//! admin API, creates one refund through the gRPC API, and then checks three things against
//! each other:
//! - the provider-side truth: how many refunds the simulator holds for the payment (0 or 1,
//!   never 2) and what they hold (`GET /<provider>/sandbox/stats`), and how many refund
//!   requests it received;
//! - the gateway's record (`GetRefund` once reconciled: status, failure);
//! - the streamed events (`WatchRefunds` from sequence 0: increasing sequences, no
//!   duplicate, only allowed status changes, the last one the record's status).
//!
//! The cases run concurrently (each on its own gateway); a failing case does not hide the
//! others: the test prints the whole matrix and fails listing every case that broke.

mod support;

use std::{
    collections::BTreeSet,
    ops::RangeInclusive,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use refund_gateway::pb;
use serde_json::{Value, json};
use simulators::{
    compago::fixtures::{ACTIVE_METHOD, CONFIRMED_500},
    d24::fixtures::{CARD_MXN_1000, CARD_MXN_1000_INVOICE},
    paymongo::fixtures::PAID_50000,
};
use support::gateway::{Gateway as Harness, Setup};
use tokio::sync::Semaphore;
use tonic::Code;
use tonic_types::StatusExt as _;

/// Every provider account's per-request timeout.
const TIMEOUT_MS: u64 = 600;
/// Longer than the timeout: the gateway gives up before the provider answers.
const SLOW_MS: u64 = 1_500;
/// How long a case may take to reach its end state.
const SETTLE_WITHIN: Duration = Duration::from_secs(15);
/// How many cases run at once.
const PARALLEL: usize = 6;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Provider {
    Compago,
    D24,
    PayMongo,
}

impl Provider {
    const ALL: [Provider; 3] = [Provider::Compago, Provider::D24, Provider::PayMongo];

    fn account(self) -> &'static str {
        match self {
            Provider::Compago => "compago",
            Provider::D24 => "d24",
            Provider::PayMongo => "paymongo",
        }
    }

    fn sends_webhooks(self) -> bool {
        self != Provider::Compago
    }

    /// The payment a case refunds, and the key the simulator's stats use for it.
    fn payment(self) -> (pb::PaymentReference, String) {
        match self {
            Provider::Compago => (
                pb::PaymentReference {
                    payment_id: CONFIRMED_500.into(),
                    payment_method_id: ACTIVE_METHOD.into(),
                    invoice_id: String::new(),
                },
                CONFIRMED_500.to_owned(),
            ),
            Provider::D24 => (
                pb::PaymentReference {
                    payment_id: CARD_MXN_1000.to_string(),
                    invoice_id: CARD_MXN_1000_INVOICE.into(),
                    payment_method_id: String::new(),
                },
                CARD_MXN_1000.to_string(),
            ),
            Provider::PayMongo => (
                pb::PaymentReference {
                    payment_id: PAID_50000.into(),
                    ..Default::default()
                },
                PAID_50000.to_owned(),
            ),
        }
    }

    /// The amount refunded: Compago refunds whole payments only; the others a part.
    fn amount(self) -> (Option<pb::Money>, i64) {
        match self {
            Provider::Compago => (None, 50_000),
            Provider::D24 => (Some(money("MXN", 10_000)), 10_000),
            Provider::PayMongo => (Some(money("PHP", 5_000)), 5_000),
        }
    }
}

fn money(currency: &str, minor: i64) -> pb::Money {
    pb::Money {
        currency_code: currency.into(),
        minor_units: minor,
    }
}

/// What a case must end in.
#[derive(Clone, Debug)]
enum Expect {
    /// CreateRefund returns the refund (PENDING, unless a webhook already told the truth;
    /// never an error, never FAILED or CANCELED); it is reconciled to SUCCEEDED with exactly
    /// one refund at the provider, after this many refund requests reached it.
    Reconciled { posts: RangeInclusive<u64> },
    /// CreateRefund returns UNAVAILABLE with RetryInfo and PROVIDER_RATE_LIMITED; the record
    /// is CANCELED; the provider holds nothing.
    RateLimited { retry_after_s: u64 },
    /// The provider never applies it: CreateRefund returns PENDING, the record ends in
    /// REQUIRES_REVIEW (OUTCOME_UNKNOWN), never FAILED; the provider holds nothing.
    Review,
    /// The answer misreports the amount: CreateRefund returns the refund in REQUIRES_REVIEW
    /// (the integrity check), the provider holds exactly one refund of the amount asked, and
    /// the record keeps that amount (later reads may settle the review either way).
    Integrity,
    /// No fault on the create: the refund succeeds with one refund at the provider, after
    /// exactly this many webhook deliveries (duplicates and stale ones included).
    Webhooks { sent: u64 },
}

/// One row of the matrix.
#[derive(Clone, Debug)]
struct Case {
    name: &'static str,
    provider: Provider,
    faults: Value,
    /// Extra simulator settings (`POST /<provider>/sandbox/{path}`), if any.
    setup: Option<(&'static str, Value)>,
    /// The switches once CreateRefund has returned, if they change then.
    then: Option<Value>,
    expect: Expect,
}

/// Every fault against every provider that has what it acts on.
fn matrix() -> Vec<Case> {
    let mut cases = Vec::new();
    for provider in Provider::ALL {
        let mut add = |name, faults: Value, expect| {
            cases.push(Case {
                name,
                provider,
                faults,
                setup: None,
                then: None,
                expect,
            })
        };
        // D24 may get a second POST: the reconciler's re-send under the same idempotency
        // key (answered 104) when the notification has not linked the refund yet.
        let after_apply_posts = match provider {
            Provider::D24 => 1..=3,
            _ => 1..=1,
        };
        add(
            "500 after apply",
            json!({"fail_after_apply_status": 500}),
            Expect::Reconciled {
                posts: after_apply_posts.clone(),
            },
        );
        add(
            "503 after apply, Retry-After",
            json!({"fail_after_apply_status": 503, "retry_after_s": 1}),
            Expect::Reconciled {
                posts: after_apply_posts.clone(),
            },
        );
        add(
            "delay after apply",
            json!({"refund_delay_ms": SLOW_MS}),
            Expect::Reconciled {
                posts: after_apply_posts.clone(),
            },
        );
        add(
            "drop connection after apply",
            json!({"drop_after_apply": true}),
            Expect::Reconciled {
                posts: after_apply_posts.clone(),
            },
        );
        add(
            "malformed JSON after apply",
            json!({"malformed_refund_body": true}),
            Expect::Reconciled {
                posts: after_apply_posts.clone(),
            },
        );
        add(
            "truncated JSON after apply",
            json!({"corrupt_refund_body": true}),
            Expect::Reconciled {
                posts: after_apply_posts.clone(),
            },
        );
        // Applied after the client gave up: the reconciler must not send a second refund
        // meanwhile (a re-send is harmless: Compago refuses a refunded payment, D24 and
        // PayMongo get the same idempotency key).
        add(
            "delay before apply",
            json!({"refund_delay_before_apply_ms": SLOW_MS}),
            Expect::Reconciled { posts: 1..=3 },
        );
        // The first attempt fails without applying; the reconciler proves it absent and
        // sends it again exactly once.
        add(
            "500 before apply, once",
            json!({"fail_before_apply_status": 500, "times": 1}),
            Expect::Reconciled { posts: 2..=2 },
        );
        add(
            "500 before apply, always",
            json!({"fail_before_apply_status": 500}),
            Expect::Review,
        );
        add(
            "misreported amount",
            json!({"misreport_refund_amount": true}),
            Expect::Integrity,
        );
        add(
            "429 with Retry-After",
            json!({"rate_limit_status": 429, "retry_after_s": 3}),
            Expect::RateLimited { retry_after_s: 3 },
        );
        if provider.sends_webhooks() {
            // D24: two status changes (IN_PROGRESS at creation, COMPLETED), each notified.
            // PayMongo: settling sends payment.refund.updated and payment.refunded.
            add(
                "duplicate webhooks",
                json!({"duplicate_webhooks": true}),
                Expect::Webhooks { sent: 4 },
            );
            // D24: the creation's notification overtaken by the completion's. PayMongo: the
            // refund's pending state, announced last, after its final events.
            let sent = match provider {
                Provider::D24 => 2,
                _ => 3,
            };
            add(
                "out-of-order webhooks",
                json!({"reorder_webhooks": true}),
                Expect::Webhooks { sent },
            );
        }
        if provider == Provider::PayMongo {
            // No webhook and a lagging list: only the idempotency replay of a second send
            // under the same key can find the refund whose answer was lost.
            cases.push(Case {
                name: "500 after apply, lists lag",
                provider,
                faults: json!({"fail_after_apply_status": 500, "lists_omit_api_refunds": true}),
                setup: Some(("settings", json!({"webhooks_enabled": false}))),
                then: Some(json!({"lists_omit_api_refunds": true})),
                expect: Expect::Reconciled { posts: 2..=2 },
            });
        }
    }
    cases
}

/// The shared harness with the calls a case makes.
struct Gateway {
    harness: Harness,
}

impl std::ops::Deref for Gateway {
    type Target = Harness;

    fn deref(&self) -> &Harness {
        &self.harness
    }
}

impl Gateway {
    /// The three sandbox accounts with a short timeout; the worker gives up after four
    /// checks.
    async fn start() -> Self {
        let harness = Harness::start(Setup {
            timeout_ms: TIMEOUT_MS,
            shutdown_grace_ms: Some(500),
            max_reconcile_attempts: Some(4),
            ..Setup::default()
        })
        .await;
        Self { harness }
    }

    /// POSTs to a simulator's admin API; the answer must be 200.
    async fn admin(&self, provider: Provider, path: &str, body: &Value) -> Value {
        let response = self
            .http
            .post(format!(
                "{}/{}/sandbox/{path}",
                self.sandbox_url,
                provider.account()
            ))
            .json(body)
            .send()
            .await
            .expect("admin API");
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 200, "{path} {body}: {answer}");
        answer
    }

    async fn stats(&self, provider: Provider) -> Value {
        self.http
            .get(format!(
                "{}/{}/sandbox/stats",
                self.sandbox_url,
                provider.account()
            ))
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("json")
    }

    /// Polls GetRefund until `done` holds.
    async fn wait_for(
        &self,
        id: &str,
        what: &str,
        done: impl Fn(&pb::Refund) -> bool,
    ) -> pb::Refund {
        let deadline = Instant::now() + SETTLE_WITHIN;
        loop {
            let refund = self.get(id).await;
            if done(&refund) {
                return refund;
            }
            assert!(
                Instant::now() < deadline,
                "refund never became {what}; last seen {} ({:?})",
                name(refund.status),
                refund.failure
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Collects every event of the feed from sequence 0, in the background.
    async fn record_events(&self) -> Arc<Mutex<Vec<pb::RefundEvent>>> {
        let mut stream = self
            .client
            .clone()
            .watch_refunds(pb::WatchRefundsRequest {
                after_sequence: Some(0),
                ..Default::default()
            })
            .await
            .expect("WatchRefunds")
            .into_inner();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        tokio::spawn(async move {
            while let Ok(Some(message)) = stream.message().await {
                if let Some(event) = message.event {
                    sink.lock().unwrap().push(event);
                }
            }
        });
        events
    }

    async fn metric(&self, name_and_labels: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .filter(|l| l.starts_with(name_and_labels.split('{').next().unwrap_or("")))
            .filter(|l| {
                name_and_labels
                    .split(['{', '}', ','])
                    .skip(1)
                    .filter(|p| !p.is_empty())
                    .all(|label| l.contains(label))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

fn status_of(r: &pb::Refund) -> pb::RefundStatus {
    pb::RefundStatus::try_from(r.status).expect("known status")
}

fn name(status: i32) -> &'static str {
    pb::RefundStatus::try_from(status).map_or("?", short)
}

fn short(status: pb::RefundStatus) -> &'static str {
    let name = status.as_str_name();
    name.strip_prefix("REFUND_STATUS_").unwrap_or(name)
}

/// The status changes the gateway allows (README, "Statuses").
fn allowed(from: pb::RefundStatus, to: pb::RefundStatus) -> bool {
    use pb::RefundStatus::*;
    from == to
        || matches!(
            (from, to),
            (Unspecified, Pending)
                | (Pending, _)
                | (Processing, Succeeded | Failed | Canceled | RequiresReview)
                | (RequiresReview, Processing | Succeeded | Failed | Canceled)
                | (Succeeded, Failed)
        )
}

/// What a case saw, for the printed matrix.
#[derive(Debug)]
struct Row {
    created: String,
    end: String,
    held: u64,
    posts: u64,
    webhooks: u64,
    events: usize,
}

/// Runs one case; panics (with the reason) when an expectation does not hold.
async fn run(case: Case) -> Row {
    let gw = Gateway::start().await;
    let p = case.provider;
    match p {
        Provider::PayMongo => {
            gw.admin(p, "settings", &json!({"settle_delay_ms": 300}))
                .await;
        }
        Provider::D24 if matches!(case.expect, Expect::Webhooks { .. }) => {
            gw.admin(
                p,
                "timing",
                &json!({"card_in_progress": true, "card_completed_after_ms": 300}),
            )
            .await;
        }
        _ => {}
    }
    if let Some((path, body)) = &case.setup {
        gw.admin(p, path, body).await;
    }
    let set = gw.admin(p, "faults", &case.faults).await;
    assert_eq!(
        set.as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| case.faults.get(k.as_str()).is_some())
            .count(),
        case.faults.as_object().unwrap().len(),
        "the admin API did not take every switch: {set}"
    );
    let events = gw.record_events().await;
    let (payment, key) = p.payment();
    let (amount, minor) = p.amount();
    let request = pb::CreateRefundRequest {
        request_id: format!("fault-{}", uuid::Uuid::new_v4()),
        provider: p.account().into(),
        payment: Some(payment),
        amount,
        reason: pb::RefundReason::RequestedByCustomer.into(),
        description: "fault matrix".into(),
        ..Default::default()
    };
    let created = gw.client.clone().create_refund(request).await;
    if let Some(faults) = &case.then {
        gw.admin(p, "faults", faults).await;
    }

    let (id, created_status) = match (&case.expect, created) {
        (Expect::RateLimited { retry_after_s }, Err(status)) => {
            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
            let details = status.get_error_details();
            let info = details.error_info().expect("ErrorInfo");
            assert_eq!(info.reason, "PROVIDER_RATE_LIMITED", "{status:?}");
            assert_eq!(
                details.retry_info().and_then(|r| r.retry_delay),
                Some(Duration::from_secs(*retry_after_s)),
                "RetryInfo carries the provider's Retry-After"
            );
            let id = info
                .metadata
                .get("refundId")
                .cloned()
                .expect("the error names the withdrawn refund");
            (id, "UNAVAILABLE".to_owned())
        }
        (Expect::RateLimited { .. }, Ok(r)) => {
            panic!(
                "a rate-limited create returned a refund: {:?}",
                r.into_inner()
            )
        }
        (_, Err(status)) => panic!("CreateRefund failed: {status:?}"),
        (_, Ok(r)) => {
            let refund = r.into_inner().refund.expect("refund");
            let status = status_of(&refund);
            assert!(
                !matches!(
                    status,
                    pb::RefundStatus::Failed | pb::RefundStatus::Canceled
                ),
                "CreateRefund answered {status:?}: {:?}",
                refund.failure
            );
            // An unknown outcome is PENDING, unless a webhook (D24, PayMongo) told the truth
            // before the lost answer was recorded.
            if matches!(case.expect, Expect::Integrity) {
                assert_eq!(
                    status,
                    pb::RefundStatus::RequiresReview,
                    "an answer that contradicts the request is not accepted"
                );
            }
            let unknown = match case.expect {
                Expect::Review => true,
                Expect::Reconciled { .. } => !p.sends_webhooks(),
                _ => false,
            };
            if unknown {
                assert_eq!(
                    status,
                    pb::RefundStatus::Pending,
                    "an unknown outcome is PENDING"
                );
            }
            (refund.id, short(status).to_owned())
        }
    };

    let (end, want_held) = match &case.expect {
        Expect::Reconciled { .. } | Expect::Webhooks { .. } => {
            let end = gw
                .wait_for(&id, "SUCCEEDED", |r| {
                    status_of(r) == pb::RefundStatus::Succeeded
                })
                .await;
            (end, 1)
        }
        Expect::Integrity => {
            // Give the worker time to read the refund back; the record must then hold still.
            tokio::time::sleep(Duration::from_millis(1_500)).await;
            let end = gw.get(&id).await;
            assert_eq!(
                status_of(&end),
                pb::RefundStatus::RequiresReview,
                "a mismatch waits for a person: {:?}",
                end.failure
            );
            assert_eq!(
                end.failure.as_ref().map(|f| f.code.as_str()),
                Some("PROVIDER_MISMATCH")
            );
            (end, 1)
        }
        Expect::RateLimited { .. } => {
            let end = gw.get(&id).await;
            assert_eq!(status_of(&end), pb::RefundStatus::Canceled);
            assert_eq!(
                end.failure.as_ref().map(|f| f.code.as_str()),
                Some("PROVIDER_RATE_LIMITED")
            );
            (end, 0)
        }
        Expect::Review => {
            let end = gw
                .wait_for(&id, "REQUIRES_REVIEW", |r| {
                    assert_ne!(status_of(r), pb::RefundStatus::Failed, "{:?}", r.failure);
                    status_of(r) == pb::RefundStatus::RequiresReview
                })
                .await;
            assert_eq!(
                end.failure.as_ref().map(|f| f.code.as_str()),
                Some("OUTCOME_UNKNOWN")
            );
            (end, 0)
        }
    };
    if let Expect::Webhooks { sent } = case.expect {
        let deadline = Instant::now() + SETTLE_WITHIN;
        while gw.stats(p).await["webhooks_sent"].as_u64() < Some(sent) {
            assert!(Instant::now() < deadline, "webhooks never all delivered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Let late deliveries and checks land before looking at the truth.
    tokio::time::sleep(Duration::from_millis(400)).await;

    // The provider-side truth.
    let stats = gw.stats(p).await;
    let held = &stats["refunds_by_payment"][&key];
    let held_count = held["count"].as_u64().unwrap_or(0);
    assert_eq!(
        held_count, want_held,
        "refunds held at the provider for {key}: {stats}"
    );
    if want_held == 1 {
        assert_eq!(held["amount_minor"].as_i64(), Some(minor), "{stats}");
    }
    let posts = stats["refund_posts_by_payment"][&key].as_u64().unwrap_or(0);
    if let Expect::Reconciled { posts: range } = &case.expect {
        assert!(
            range.contains(&posts),
            "{posts} refund requests, not {range:?}: {stats}"
        );
    }
    assert!(
        stats["faults_applied"].as_u64() >= Some(1),
        "the fault never fired: {stats}"
    );
    let webhooks = stats["webhooks_sent"].as_u64().unwrap_or(0);
    if let Expect::Webhooks { sent } = case.expect {
        assert_eq!(webhooks, sent, "webhook deliveries: {stats}");
    }

    // The gateway's record, as it is now, agrees with what it ended in.
    let now = gw.get(&id).await;
    assert_eq!(now.status, end.status, "the record moved after it settled");
    if let Some(amount) = &now.amount {
        assert_eq!(amount.minor_units, minor);
    }

    // The streamed events.
    let deadline = Instant::now() + Duration::from_secs(3);
    let events = loop {
        let seen = events.lock().unwrap().clone();
        if seen
            .last()
            .and_then(|e| e.refund.as_ref())
            .map(|r| r.status)
            == Some(now.status)
        {
            break seen;
        }
        assert!(
            Instant::now() < deadline,
            "the stream never reached {}: {:?}",
            name(now.status),
            seen.iter()
                .map(|e| name(e.refund.as_ref().map_or(0, |r| r.status)))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let mut sequences = BTreeSet::new();
    let mut last_sequence = 0;
    let mut last_status = pb::RefundStatus::Unspecified;
    for event in &events {
        let refund = event.refund.as_ref().expect("event refund");
        assert_eq!(refund.id, id, "an event of another refund");
        assert!(event.sequence > last_sequence, "sequences go backwards");
        assert!(sequences.insert(event.sequence), "duplicate event");
        last_sequence = event.sequence;
        let previous = pb::RefundStatus::try_from(event.previous_status).unwrap();
        let status = status_of(refund);
        assert_eq!(previous, last_status, "the stream skipped a change");
        assert!(
            allowed(previous, status),
            "streamed an impossible change {previous:?} -> {status:?}"
        );
        last_status = status;
    }
    assert_eq!(
        last_status,
        status_of(&now),
        "the stream ends where the record is"
    );

    if case.name == "out-of-order webhooks" && p == Provider::PayMongo {
        // The stale `pending` webhook came after SUCCEEDED: refused and counted.
        let refused = gw
            .metric("refund_gateway_refund_transitions_refused_total{provider=\"paymongo\",from=\"SUCCEEDED\"}")
            .await;
        assert!(refused >= 1.0, "the stale webhook was not refused");
    }

    Row {
        created: created_status,
        end: format!(
            "{}{}",
            name(now.status),
            now.failure
                .as_ref()
                .map(|f| format!(" ({})", f.code))
                .unwrap_or_default()
        ),
        held: held_count,
        posts,
        webhooks,
        events: events.len(),
    }
}

/// Every fault switch against every provider ends in the provider's truth: an unknown
/// outcome (5xx, delay, dropped connection, malformed or truncated body after applying)
/// is PENDING and reconciled to exactly one refund; a failure before applying is sent
/// again exactly once, or ends in REQUIRES_REVIEW with nothing refunded; a 429 is
/// UNAVAILABLE with RetryInfo, CANCELED and nothing refunded; duplicate and out-of-order
/// webhooks end in the right status with no status going backwards. Never two refunds at a
/// provider, never FAILED for an unknown outcome, and the event stream agrees with the
/// record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_matrix() {
    let started = Instant::now();
    let mut cases = matrix();
    assert!(cases.len() >= 30, "the matrix lost rows");
    // FAULT_CASE=text runs only the cases whose "fault provider" contains it (debugging).
    if let Ok(only) = std::env::var("FAULT_CASE") {
        cases.retain(|c| format!("{} {}", c.name, c.provider.account()).contains(&only));
    }
    let limit = Arc::new(Semaphore::new(PARALLEL));
    let mut tasks = Vec::new();
    for case in cases {
        let limit = limit.clone();
        let label = format!("{:<30} {:<9}", case.name, case.provider.account());
        tasks.push((
            label,
            tokio::spawn(async move {
                let _permit = limit.acquire_owned().await.unwrap();
                run(case).await
            }),
        ));
    }
    let mut failures = Vec::new();
    let mut table = String::from(
        "fault                          provider  create        end                         held posts hooks events\n",
    );
    for (label, task) in tasks {
        match task.await {
            Ok(row) => table.push_str(&format!(
                "{label} {:<13} {:<27} {:>4} {:>5} {:>5} {:>6}\n",
                row.created, row.end, row.held, row.posts, row.webhooks, row.events
            )),
            Err(e) => {
                let why = e
                    .try_into_panic()
                    .ok()
                    .and_then(|p| {
                        p.downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    })
                    .unwrap_or_else(|| "cancelled".to_owned());
                table.push_str(&format!("{label} FAILED: {why}\n"));
                failures.push(format!("{label}: {why}"));
            }
        }
    }
    eprintln!("{table}fault matrix took {:?}", started.elapsed());
    assert!(
        failures.is_empty(),
        "{} case(s) broke:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A simulator refuses switches it does not have and values that make no sense, and the
/// admin API shows the shared vocabulary for every provider.
#[tokio::test]
async fn admin_api_validates_switches() {
    let gw = Gateway::start().await;
    for p in Provider::ALL {
        let url = format!("{}/{}/sandbox/faults", gw.sandbox_url, p.account());
        for bad in [
            json!({"fail_after_apply_status": 200}),
            json!({"times": 0}),
            json!({"no_such_switch": true}),
            json!({"refund_delay_ms": 600_001}),
        ] {
            let status = gw.http.post(&url).json(&bad).send().await.unwrap().status();
            assert_eq!(status, 400, "{} took {bad}", p.account());
        }
        let webhooks = gw
            .http
            .post(&url)
            .json(&json!({"duplicate_webhooks": true}))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(webhooks == 200, p.sends_webhooks(), "{}", p.account());
        let lists = gw
            .http
            .post(&url)
            .json(&json!({"lists_omit_api_refunds": true}))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(lists == 200, p == Provider::PayMongo, "{}", p.account());
        let shown: Value = gw
            .http
            .get(&url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for switch in [
            "delay_ms",
            "rate_limit_status",
            "refund_delay_before_apply_ms",
            "drop_after_apply",
            "malformed_refund_body",
            "corrupt_refund_body",
            "duplicate_webhooks",
            "reorder_webhooks",
            "times",
        ] {
            assert!(
                shown.get(switch).is_some(),
                "{} hides {switch}: {shown}",
                p.account()
            );
        }
        let cleared = gw.http.delete(&url).send().await.unwrap().status();
        assert_eq!(cleared, 200);
    }
}
