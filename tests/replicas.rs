//! Several real `refund-gateway` processes sharing one PostgreSQL database, with the provider
//! simulators in a process of their own (`refund-gateway sandbox`), as a deployment behind a
//! load balancer would run: streams see every replica's changes, idempotency and the
//! over-refund guard hold across replicas, webhooks may land on any replica, a dead
//! replica's work is taken over, and a database restart is survived.
//!
//! The tests in this file run one at a time (one of them restarts the PostgreSQL server). They
//! use this test binary's own throwaway PostgreSQL server (tests/support/postgres.rs), also
//! when `DATABASE_URL` is set: the restart must never hit a server someone else runs.

mod support;

use std::{
    collections::BTreeSet,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use refund_gateway::pb::{self, refund_service_client::RefundServiceClient};
use serde_json::{Value, json};
use support::{
    postgres::TestDatabase,
    process::{Gateway, Sandbox},
};
use tokio::sync::Mutex;
use tonic::{
    Code, Request, Status,
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

const KEY: &str = "replica-test-key";

/// One test at a time in this file.
static SERIAL: Mutex<()> = Mutex::const_new(());

type Client = RefundServiceClient<InterceptedService<Channel, Bearer>>;

#[derive(Clone)]
struct Bearer;

impl Interceptor for Bearer {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        req.metadata_mut()
            .insert("authorization", format!("Bearer {KEY}").parse().unwrap());
        Ok(req)
    }
}

/// A deployment: the simulators, a database, and the config every replica shares.
struct Deployment {
    sandbox: Sandbox,
    _db: TestDatabase,
    config: PathBuf,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Deployment {
    async fn new(worker: &str) -> Deployment {
        let sandbox = Sandbox::start();
        let db = TestDatabase::create_on_own_server().await;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("gateway.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[server]
grpc_listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
shutdown_grace_ms = 3000

[store]
url = "{url}"
max_connections = 8
statement_timeout_ms = 5000
connect_timeout_ms = 2000

[[tenants]]
id = "acme"
api_keys = ["{KEY}"]

[worker]
{worker}
{providers}
"#,
                url = db.url,
                providers = sandbox.provider_config(800),
            ),
        )
        .unwrap();
        Deployment {
            sandbox,
            _db: db,
            config,
            _dir: dir,
            http: reqwest::Client::new(),
        }
    }

    fn replica(&self) -> Gateway {
        Gateway::start(&self.config, &[])
    }

    async fn admin(&self, url: String, body: Value) -> Value {
        let res = self.http.post(url).json(&body).send().await.unwrap();
        assert!(res.status().is_success(), "{:?}", res.text().await);
        res.json().await.unwrap_or(Value::Null)
    }

    async fn get(&self, url: String) -> Value {
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A fresh captured Compago payment of `amount` pesos.
    async fn compago_payment(&self, amount: &str) -> pb::PaymentReference {
        let p = self
            .admin(
                format!("{}/sandbox/payments", self.sandbox.compago),
                json!({ "amount": amount }),
            )
            .await;
        pb::PaymentReference {
            payment_id: p["id"].as_str().unwrap().into(),
            payment_method_id: p["payment_method_id"].as_str().unwrap().into(),
            invoice_id: String::new(),
        }
    }

    /// A fresh COMPLETED D24 card deposit.
    async fn d24_deposit(&self, amount: &str) -> pb::PaymentReference {
        let d = self
            .admin(
                format!("{}/sandbox/deposits", self.sandbox.d24),
                json!({ "amount": amount }),
            )
            .await;
        pb::PaymentReference {
            payment_id: d["deposit_id"]
                .as_u64()
                .or_else(|| d["id"].as_u64())
                .map(|n| n.to_string())
                .unwrap_or_else(|| panic!("no deposit id in {d}")),
            payment_method_id: String::new(),
            invoice_id: d["invoice_id"].as_str().unwrap().into(),
        }
    }
}

async fn client(gw: &Gateway) -> Client {
    let channel = Channel::from_shared(gw.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    RefundServiceClient::with_interceptor(channel, Bearer)
}

fn create(
    request_id: &str,
    provider: &str,
    payment: &pb::PaymentReference,
    minor: Option<i64>,
    currency: &str,
) -> pb::CreateRefundRequest {
    pb::CreateRefundRequest {
        request_id: request_id.into(),
        provider: provider.into(),
        payment: Some(payment.clone()),
        amount: minor.map(|m| pb::Money {
            currency_code: currency.into(),
            minor_units: m,
        }),
        ..Default::default()
    }
}

fn status(r: &pb::Refund) -> pb::RefundStatus {
    pb::RefundStatus::try_from(r.status).unwrap()
}

async fn get(client: &mut Client, id: &str) -> pb::Refund {
    client
        .get_refund(pb::GetRefundRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap()
}

async fn wait_status(
    client: &mut Client,
    id: &str,
    want: pb::RefundStatus,
    within: Duration,
) -> pb::Refund {
    let deadline = Instant::now() + within;
    loop {
        let r = get(client, id).await;
        if status(&r) == want {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "{id} never became {want:?}: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const FAST_WORKER: &str = "tick_ms = 50\nfirst_check_ms = 200\nmax_check_interval_ms = 500\nmax_reconcile_attempts = 200\nlease_ms = 3000";

/// A refund created on replica A reaches a WatchRefunds subscriber connected to replica B,
/// and so does its later completion (recorded by whichever replica learns it), promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscriber_on_one_replica_sees_changes_made_on_another() {
    let _serial = SERIAL.lock().await;
    let dep = Deployment::new(FAST_WORKER).await;
    let a = dep.replica();
    let b = dep.replica();
    let mut on_a = client(&a).await;
    let mut on_b = client(&b).await;
    let mut feed = on_b
        .watch_refunds(pb::WatchRefundsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let payment = dep.compago_payment("321.00").await;
    let started = Instant::now();
    let refund = on_a
        .create_refund(create("cross-1", "compago", &payment, None, "MXN"))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    let created = tokio::time::timeout(Duration::from_secs(5), feed.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .event
        .unwrap();
    let done = tokio::time::timeout(Duration::from_secs(5), feed.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .event
        .unwrap();
    eprintln!("created on A, seen on B within {:?}", started.elapsed());
    assert_eq!(created.refund.as_ref().unwrap().id, refund.id);
    assert_eq!(
        status(created.refund.as_ref().unwrap()),
        pb::RefundStatus::Pending
    );
    assert_eq!(done.refund.as_ref().unwrap(), &refund);
    assert!(created.sequence < done.sequence);

    // Resume on B from the start: the same events, same sequences.
    let mut replay = on_b
        .watch_refunds(pb::WatchRefundsRequest {
            after_sequence: Some(0),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        replay.message().await.unwrap().unwrap().event.unwrap(),
        created
    );
    assert_eq!(
        replay.message().await.unwrap().unwrap().event.unwrap(),
        done
    );
    assert_eq!(get(&mut on_b, &refund.id).await, refund);
}

/// Simultaneous CreateRefund calls with one request_id, spread over three replicas, make one
/// refund and one provider submission; every caller gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_request_id_across_replicas_makes_one_refund() {
    let _serial = SERIAL.lock().await;
    let dep = Deployment::new(FAST_WORKER).await;
    let replicas = [dep.replica(), dep.replica(), dep.replica()];
    let payment = dep.d24_deposit("900.00").await;
    let req = create("dup-across", "d24", &payment, Some(30_000), "MXN");
    let mut calls = Vec::new();
    for i in 0..45 {
        let mut c = client(&replicas[i % 3]).await;
        let req = req.clone();
        calls.push(tokio::spawn(async move {
            c.create_refund(req)
                .await
                .map(|r| r.into_inner().refund.unwrap())
        }));
    }
    let mut ids = BTreeSet::new();
    for call in calls {
        ids.insert(
            call.await
                .unwrap()
                .expect("every duplicate gets the refund")
                .id,
        );
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    let stats = dep.get(format!("{}/sandbox/stats", dep.sandbox.d24)).await;
    assert_eq!(
        stats["refund_posts_by_payment"][&payment.payment_id], 1,
        "{stats}"
    );
}

/// Partial refunds racing for the last of a deposit across replicas never add up to more
/// than the deposit: exactly the ones that fit are made, at D24 too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partial_refunds_racing_across_replicas_never_exceed_the_payment() {
    let _serial = SERIAL.lock().await;
    let dep = Deployment::new(FAST_WORKER).await;
    let replicas = [dep.replica(), dep.replica(), dep.replica()];
    let payment = dep.d24_deposit("1000.00").await;
    let mut calls = Vec::new();
    for i in 0..15 {
        let mut c = client(&replicas[i % 3]).await;
        let req = create(&format!("part-{i}"), "d24", &payment, Some(10_000), "MXN");
        calls.push(tokio::spawn(async move { c.create_refund(req).await }));
    }
    let (mut made, mut refused) = (0, 0);
    for call in calls {
        match call.await.unwrap() {
            Ok(r) => {
                assert_eq!(
                    status(r.get_ref().refund.as_ref().unwrap()),
                    pb::RefundStatus::Succeeded
                );
                made += 1;
            }
            Err(s) => {
                assert_eq!(s.code(), Code::FailedPrecondition, "{s:?}");
                refused += 1;
            }
        }
    }
    assert_eq!((made, refused), (10, 5));
    let stats = dep.get(format!("{}/sandbox/stats", dep.sandbox.d24)).await;
    assert_eq!(
        stats["refunds_by_payment"][&payment.payment_id]["count"], 10,
        "{stats}"
    );
    assert_eq!(
        stats["refunds_by_payment"][&payment.payment_id]["amount_minor"], 100_000,
        "{stats}"
    );
}

/// A D24 notification delivered to the replica that did not create the refund is handled:
/// that replica reads the refund back from D24 and records it for everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_webhook_to_the_other_replica_is_handled() {
    let _serial = SERIAL.lock().await;
    // The worker must not find out by polling first.
    let dep =
        Deployment::new("tick_ms = 50\nfirst_check_ms = 600000\nmax_check_interval_ms = 600000")
            .await;
    let a = dep.replica();
    let b = dep.replica();
    let mut on_a = client(&a).await;
    dep.admin(format!("{}/sandbox/timing", dep.sandbox.d24), json!({ "card_in_progress": true, "notifications": false, "card_completed_after_ms": null })).await;
    let payment = dep.d24_deposit("400.00").await;
    let refund = on_a
        .create_refund(create("hook-1", "d24", &payment, Some(10_000), "MXN"))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(status(&refund), pb::RefundStatus::Processing);
    let d24_id = refund.provider_refund_id.clone();
    dep.admin(
        format!("{}/sandbox/refunds/{d24_id}/status", dep.sandbox.d24),
        json!({ "status": "COMPLETED" }),
    )
    .await;
    let res = dep
        .http
        .post(format!("{}/webhooks/d24/d24", b.http))
        .body(format!("{{\"refund_id\": {d24_id}}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let done = get(&mut on_a, &refund.id).await;
    assert_eq!(status(&done), pb::RefundStatus::Succeeded);
    assert_eq!(done.provider_status, "COMPLETED");
}

/// A replica killed (SIGKILL) while it holds a reconciliation lease leaves the refund to
/// another replica once the lease runs out; the refund reaches the provider's truth with
/// exactly one refund at the provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_replica_s_reconciliation_is_taken_over() {
    let _serial = SERIAL.lock().await;
    let dep = Deployment::new("tick_ms = 50\nfirst_check_ms = 100\nmax_check_interval_ms = 400\nmax_reconcile_attempts = 200\nlease_ms = 2000").await;
    let mut a = dep.replica();
    let mut on_a = client(&a).await;
    let payment = dep.compago_payment("610.00").await;
    // The refund is applied but its answer comes too late: PENDING, outcome unknown.
    dep.admin(
        format!("{}/sandbox/faults", dep.sandbox.compago),
        json!({ "refund_delay_ms": 2000 }),
    )
    .await;
    let refund = on_a
        .create_refund(create("kill-1", "compago", &payment, None, "MXN"))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(status(&refund), pb::RefundStatus::Pending);
    // Every answer is now slow, so A's worker is in the middle of a check when it dies.
    dep.admin(
        format!("{}/sandbox/faults", dep.sandbox.compago),
        json!({ "delay_ms": 5000 }),
    )
    .await;
    let reads_before = dep
        .get(format!("{}/sandbox/stats", dep.sandbox.compago))
        .await["requests"]
        .as_u64()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while dep
        .get(format!("{}/sandbox/stats", dep.sandbox.compago))
        .await["requests"]
        .as_u64()
        .unwrap()
        == reads_before
    {
        assert!(Instant::now() < deadline, "A never checked the refund");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.proc.kill9();
    let killed_at = Instant::now();
    dep.http
        .delete(format!("{}/sandbox/faults", dep.sandbox.compago))
        .send()
        .await
        .unwrap();
    let b = dep.replica();
    let mut on_b = client(&b).await;
    let done = wait_status(
        &mut on_b,
        &refund.id,
        pb::RefundStatus::Succeeded,
        Duration::from_secs(20),
    )
    .await;
    eprintln!(
        "taken over and finished {:?} after the kill",
        killed_at.elapsed()
    );
    assert_eq!(done.provider_status, "REFUNDED");
    let stats = dep
        .get(format!("{}/sandbox/stats", dep.sandbox.compago))
        .await;
    assert_eq!(stats["refunds_applied"], 1, "{stats}");
    drop(on_a);
}

/// PostgreSQL restarts while two replicas take refunds: calls fail cleanly with UNAVAILABLE
/// while it is down, /readyz says so, both replicas recover by themselves, and nothing an
/// acknowledged call recorded is lost or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_gateway_survives_a_database_restart_under_load() {
    let _serial = SERIAL.lock().await;
    let dep = Arc::new(Deployment::new(FAST_WORKER).await);
    let replicas = [dep.replica(), dep.replica()];
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for (i, gw) in replicas.iter().enumerate() {
        let mut c = client(gw).await;
        let dep = dep.clone();
        let stop = stop.clone();
        load.push(tokio::spawn(async move {
            let (mut ok, mut unavailable) = (Vec::new(), Vec::new());
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let payment = dep.compago_payment("10.00").await;
                match c
                    .create_refund(create(
                        &format!("load-{i}-{n}"),
                        "compago",
                        &payment,
                        None,
                        "MXN",
                    ))
                    .await
                {
                    Ok(r) => ok.push((r.into_inner().refund.unwrap(), payment)),
                    Err(s) => {
                        assert_eq!(
                            s.code(),
                            Code::Unavailable,
                            "only UNAVAILABLE while the database is down: {s:?}"
                        );
                        unavailable.push(payment);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (ok, unavailable)
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    // Stop the server for a couple of seconds, then start it again: this test binary's own
    // throwaway server, never one someone else runs.
    let server = support::postgres::own_server();
    server.stop();
    let restart = scopeguard(|| server.start_again());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut saw_unready = false;
    for gw in &replicas {
        let ready = dep
            .http
            .get(format!("{}/readyz", gw.http))
            .send()
            .await
            .unwrap();
        saw_unready |= ready.status() == 503;
    }
    assert!(
        saw_unready,
        "/readyz must say 503 while the database is down"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(restart);
    // Ready again by itself.
    let deadline = Instant::now() + Duration::from_secs(30);
    for gw in &replicas {
        loop {
            let ready = dep
                .http
                .get(format!("{}/readyz", gw.http))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            if ready == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "replica never became ready again"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    let mut unavailable = Vec::new();
    for l in load {
        let (ok, u) = l.await.unwrap();
        acknowledged.extend(ok);
        unavailable.extend(u);
    }
    eprintln!(
        "{} refunds acknowledged, {} calls UNAVAILABLE during the restart",
        acknowledged.len(),
        unavailable.len()
    );
    assert!(acknowledged.len() > 10);
    assert!(
        !unavailable.is_empty(),
        "calls made while the database was down must fail with UNAVAILABLE"
    );
    let mut c = client(&replicas[0]).await;
    for (refund, payment) in &acknowledged {
        let stored = wait_status(
            &mut c,
            &refund.id,
            pb::RefundStatus::Succeeded,
            Duration::from_secs(20),
        )
        .await;
        assert_eq!(stored.id, refund.id);
        let at_provider = dep
            .get(format!(
                "{}/sandbox/payments/{}",
                dep.sandbox.compago, payment.payment_id
            ))
            .await;
        assert_eq!(at_provider["status"], "REFUNDED", "{at_provider}");
    }
    // A call answered UNAVAILABLE refunded nothing, or the gateway has the refund on record
    // and follows it to its end: whatever the provider holds, the gateway knows.
    for payment in &unavailable {
        let at_provider = dep
            .get(format!(
                "{}/sandbox/payments/{}",
                dep.sandbox.compago, payment.payment_id
            ))
            .await;
        if at_provider["status"] == "REFUNDED" {
            let listed = c
                .list_refunds(pb::ListRefundsRequest {
                    payment_id: payment.payment_id.clone(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .refunds;
            assert_eq!(
                listed.len(),
                1,
                "the provider refunded {}: the gateway must know it",
                payment.payment_id
            );
            wait_status(
                &mut c,
                &listed[0].id,
                pb::RefundStatus::Succeeded,
                Duration::from_secs(20),
            )
            .await;
        }
    }
    let stats = dep
        .get(format!("{}/sandbox/stats", dep.sandbox.compago))
        .await;
    // One POST per payment at most (a retry never refunded twice: Compago would refuse).
    for (_, payment) in &acknowledged {
        assert!(
            stats["refund_posts_by_payment"][&payment.payment_id]
                .as_u64()
                .unwrap()
                <= 2
        );
    }
}

/// Runs `f` when dropped (also when the test panics), so the database is always started again.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}
