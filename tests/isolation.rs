//! Isolation between providers and Retry-After, through the gRPC API of an in-process gateway
//! with the three sandbox accounts (real HTTP to the simulators):
//!
//! - one provider stalled (its simulator delays every answer by 5 s, longer than the
//!   account's 2 s timeout) does not slow the other providers' calls nor the read RPCs; its
//!   own calls beyond its concurrency limit fail fast, its breaker opens after repeated
//!   timeouts and then refuses calls without sending them, and `/metrics` shows it open;
//! - a 429, or a 503 with `Retry-After`, met by the worker's checks pushes that refund's
//!   next check back by at least the delay asked, and does not open the breaker.

mod support;

use std::{
    future::Future,
    time::{Duration, Instant},
};

use refund_gateway::{domain::RefundId, pb, providers::isolation::BreakerState};
use simulators::{
    compago::fixtures::{CONFIRMED_250, CONFIRMED_500},
    d24::{
        fixtures::{CARD_IN_PROGRESS, CARD_IN_PROGRESS_INVOICE, CARD_MXN, CARD_MXN_INVOICE},
        state::Faults as D24Faults,
    },
    paymongo::{
        fixtures::{PAID_25000, PAID_50000},
        state::{Faults as PayMongoFaults, SettingsPatch},
    },
};
use support::{
    gateway::{Gateway, Setup},
    messages::{compago_payment, d24_payment, metric, money, paymongo_payment, request, status_of},
};
use tonic::Code;
use tonic_types::StatusExt as _;

/// How long the stalled provider's simulator holds every answer.
const STALL: Duration = Duration::from_secs(5);

/// The bound for calls that must keep their normal latency while a provider is stalled
/// (normal is a few milliseconds; the stall is 5 s).
const NORMAL: Duration = Duration::from_secs(1);

async fn timed<T>(call: impl Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let out = call.await;
    (out, started.elapsed())
}

/// PayMongo's simulator delays every answer by 5 s (its account times out after 2 s).
/// Meanwhile D24 and Compago refunds are created, payments looked up and refunds read and
/// listed at their normal latency; PayMongo calls beyond its 4 slots fail fast; after 3
/// timeouts its breaker is open, PayMongo calls fail at once without reaching the
/// simulator, and `/metrics` shows the breaker open and the calls refused.
#[tokio::test]
async fn a_stalled_provider_does_not_slow_the_others() {
    let gw = Gateway::start(Setup {
        timeout_ms: 2_000,
        paymongo: "max_in_flight = 4\nqueue_timeout_ms = 200\nbreaker_failures = 3\nbreaker_open_ms = 60000".into(),
        ..Setup::default()
    })
    .await;
    let mut client = gw.new_client().await;

    // Before: a refund to read, and the normal latencies.
    let before = client
        .create_refund(request(
            "before",
            "compago",
            compago_payment(CONFIRMED_250),
            None,
        ))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    let (_, get_before) = timed(gw.get(&before.id)).await;

    gw.paymongo()
        .set_faults(PayMongoFaults {
            delay_ms: STALL.as_millis() as u64,
            ..PayMongoFaults::default()
        })
        .unwrap();
    let stalled_started = Instant::now();
    let stalled: Vec<_> = (0..10)
        .map(|_| {
            let gw_client = client.clone();
            tokio::spawn(async move {
                let mut c = gw_client;
                timed(c.get_payment(pb::GetPaymentRequest {
                    provider: "paymongo".into(),
                    payment: Some(paymongo_payment(PAID_50000)),
                }))
                .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;

    // While PayMongo stalls: the other providers and the read RPCs.
    let mut measured = Vec::new();
    let (d24, took) = timed(client.create_refund(request(
        "d24-during-stall",
        "d24",
        d24_payment(CARD_MXN, CARD_MXN_INVOICE),
        None,
    )))
    .await;
    let d24 = d24.expect("D24 refund").into_inner().refund.unwrap();
    assert_eq!(status_of(&d24), pb::RefundStatus::Succeeded);
    measured.push(("CreateRefund d24", took));
    let (compago, took) = timed(client.create_refund(request(
        "compago-during-stall",
        "compago",
        compago_payment(CONFIRMED_500),
        None,
    )))
    .await;
    compago.expect("Compago refund");
    measured.push(("CreateRefund compago", took));
    let (payment, took) = timed(client.get_payment(pb::GetPaymentRequest {
        provider: "d24".into(),
        payment: Some(d24_payment(CARD_MXN, CARD_MXN_INVOICE)),
    }))
    .await;
    payment.expect("D24 payment");
    measured.push(("GetPayment d24", took));
    let (_, took) = timed(gw.get(&before.id)).await;
    measured.push(("GetRefund", took));
    let (list, took) = timed(client.list_refunds(pb::ListRefundsRequest::default())).await;
    assert!(list.unwrap().into_inner().refunds.len() >= 3);
    measured.push(("ListRefunds", took));
    let in_flight = metric(
        &gw.metrics().await,
        "refund_gateway_provider_in_flight",
        &[("provider", "paymongo")],
    );
    let during = stalled_started.elapsed();
    assert!(
        during < Duration::from_secs(2),
        "all of it happened while PayMongo was stalled ({during:?})"
    );
    for (what, took) in &measured {
        assert!(
            *took < NORMAL,
            "{what} took {took:?} while PayMongo stalled"
        );
    }
    assert_eq!(in_flight, 4.0, "PayMongo's 4 slots are all taken");

    // PayMongo's own calls: 4 ran into the timeout, the 6 beyond the limit failed fast.
    let mut slow = 0;
    let mut fast = 0;
    for call in stalled {
        let (result, took) = call.await.unwrap();
        let status = result.expect_err("PayMongo cannot answer");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        if took >= Duration::from_millis(1_500) {
            slow += 1;
        } else {
            assert!(took < NORMAL, "a refused call failed fast ({took:?})");
            fast += 1;
        }
    }
    assert_eq!((slow, fast), (4, 6));
    assert_eq!(gw.paymongo().stats().requests, 4, "only 4 calls were sent");

    // The breaker is open now: PayMongo calls fail at once, and nothing reaches it.
    let state = &gw
        .running
        .refunds
        .providers()
        .get("paymongo")
        .unwrap()
        .guard;
    assert_eq!(state.breaker_state(), BreakerState::Open);
    let (refused, took) = timed(client.create_refund(request(
        "paymongo-breaker-open",
        "paymongo",
        paymongo_payment(PAID_25000),
        None,
    )))
    .await;
    let refused = refused.expect_err("the breaker refuses");
    assert_eq!(refused.code(), Code::Unavailable);
    assert!(took < Duration::from_millis(500), "{took:?}");
    assert_eq!(
        refused.get_error_details().error_info().unwrap().reason,
        "PROVIDER_UNAVAILABLE"
    );
    assert_eq!(gw.paymongo().stats().requests, 4, "nothing was sent");
    assert_eq!(gw.paymongo().stats().refund_posts, 0);

    let text = gw.metrics().await;
    let breaker = |provider: &str, state: &str| {
        metric(
            &text,
            "refund_gateway_provider_breaker_state",
            &[("provider", provider), ("state", state)],
        )
    };
    assert_eq!(breaker("paymongo", "open"), 1.0, "{text}");
    assert_eq!(breaker("paymongo", "closed"), 0.0);
    assert_eq!(breaker("d24", "closed"), 1.0);
    assert_eq!(breaker("compago", "closed"), 1.0);
    let refused_calls = |reason: &str| {
        metric(
            &text,
            "refund_gateway_provider_calls_refused_total",
            &[("provider", "paymongo"), ("reason", reason)],
        )
    };
    assert!(refused_calls("saturated") >= 6.0);
    assert!(refused_calls("breaker_open") >= 1.0);

    // The others are still served normally.
    let (again, took) = timed(client.get_payment(pb::GetPaymentRequest {
        provider: "compago".into(),
        payment: Some(compago_payment(CONFIRMED_500)),
    }))
    .await;
    again.unwrap();
    assert!(took < NORMAL);
    eprintln!(
        "PayMongo stalled {STALL:?}: GetRefund before {get_before:?}; during: {}; then PayMongo refused in {took:?}",
        measured
            .iter()
            .map(|(what, took)| format!("{what} {took:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// The next check time the store holds for refund `id`, from now.
async fn next_check_in(gw: &Gateway, id: &str) -> Option<Duration> {
    let refund = gw
        .running
        .refunds
        .store()
        .get_refund(&RefundId::parse(id).unwrap())
        .await
        .unwrap()
        .unwrap();
    refund
        .next_check_at
        .map(|at| (at - chrono::Utc::now()).to_std().unwrap_or_default())
}

/// Waits until `requests()` goes above `seen`, at most `within`.
async fn next_request(requests: impl Fn() -> u64, seen: u64, within: Duration) -> u64 {
    let deadline = Instant::now() + within;
    loop {
        let now = requests();
        if now > seen {
            return now;
        }
        assert!(Instant::now() < deadline, "no request within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The worker polls a refund every few hundred milliseconds. When the provider answers
/// "not now" with `Retry-After: 3` (PayMongo: 429; D24: 503), the next check of that refund
/// is no earlier than 3 s later, nothing is asked meanwhile, and the breaker (which opens
/// after 2 faults) stays closed; once the provider answers again, the checks go on.
#[tokio::test]
async fn retry_after_pushes_the_next_check_back() {
    let gw = Gateway::start(Setup {
        first_check_ms: 100,
        max_check_interval_ms: 300,
        d24: "breaker_failures = 2".into(),
        paymongo: "breaker_failures = 2".into(),
        ..Setup::default()
    })
    .await;
    // Refunds that stay in progress at the provider, so the worker keeps polling them.
    gw.paymongo()
        .update_settings(&SettingsPatch {
            settle_delay_ms: Some(600_000),
            ..SettingsPatch::default()
        })
        .unwrap();
    gw.d24()
        .set_timing(simulators::d24::state::Timing {
            card_completed_after_ms: None,
            // Only the worker's checks read the refund (a notification would make the
            // gateway read it too).
            notifications: false,
            ..gw.d24().timing()
        })
        .unwrap();
    let mut client = gw.new_client().await;
    let paymongo = client
        .create_refund(request(
            "retry-after-paymongo",
            "paymongo",
            paymongo_payment(PAID_50000),
            Some(money("PHP", 10_000)),
        ))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    let d24 = client
        .create_refund(request(
            "retry-after-d24",
            "d24",
            d24_payment(CARD_IN_PROGRESS, CARD_IN_PROGRESS_INVOICE),
            Some(money("MXN", 10_000)),
        ))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(status_of(&paymongo), pb::RefundStatus::Processing);
    assert_eq!(status_of(&d24), pb::RefundStatus::Processing);

    let retry_after = Duration::from_secs(3);
    gw.paymongo()
        .set_faults(PayMongoFaults {
            fail_reads_status: Some(429),
            retry_after_s: Some(retry_after.as_secs()),
            ..PayMongoFaults::default()
        })
        .unwrap();
    gw.d24()
        .set_faults(D24Faults {
            fail_reads_status: Some(503),
            retry_after_s: Some(retry_after.as_secs()),
            ..D24Faults::default()
        })
        .unwrap();

    let paymongo_requests = || gw.paymongo().stats().requests;
    let d24_requests = || gw.d24().stats().requests;
    let cases: [(&str, &str, &dyn Fn() -> u64); 2] = [
        ("paymongo", paymongo.id.as_str(), &paymongo_requests),
        ("d24", d24.id.as_str(), &d24_requests),
    ];
    let starts: Vec<u64> = cases.iter().map(|(_, _, requests)| requests()).collect();
    // The first check answered "not now" for each.
    for ((provider, _, requests), start) in cases.iter().zip(&starts) {
        next_request(requests, *start, Duration::from_secs(2)).await;
        eprintln!("{provider}: a check met 'not now'");
    }
    // Let the answers be recorded.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for (provider, id, _) in &cases {
        let wait = next_check_in(&gw, id).await.expect("checked again later");
        assert!(
            wait >= Duration::from_millis(2_500),
            "{provider}: next check in {wait:?}, sooner than Retry-After"
        );
    }
    let quiet_from: Vec<u64> = cases.iter().map(|(_, _, requests)| requests()).collect();
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    for ((provider, _, requests), before) in cases.iter().zip(&quiet_from) {
        assert_eq!(
            requests(),
            *before,
            "{provider}: nothing asked before the delay ran out"
        );
    }
    for provider in ["paymongo", "d24"] {
        let guard = &gw.running.refunds.providers().get(provider).unwrap().guard;
        assert_eq!(
            guard.breaker_state(),
            BreakerState::Closed,
            "{provider}: 'not now' is not a fault"
        );
    }

    // The provider answers again: the checks go on.
    gw.paymongo().clear_faults();
    gw.d24().clear_faults();
    for ((provider, _, requests), before) in cases.iter().zip(&quiet_from) {
        next_request(requests, *before, Duration::from_secs(3)).await;
        eprintln!("{provider}: checked again after the delay");
    }
    assert_eq!(
        status_of(&gw.get(&paymongo.id).await),
        pb::RefundStatus::Processing
    );
    assert_eq!(
        status_of(&gw.get(&d24.id).await),
        pb::RefundStatus::Processing
    );
}
