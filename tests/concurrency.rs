//! Concurrency proofs through the gRPC API of an in-process gateway with the three sandbox
//! accounts (real HTTP to the simulators):
//!
//! - many simultaneous CreateRefund calls with one `request_id` make one refund and at most
//!   one provider submission, and every caller gets the winner's refund, also when they
//!   arrive while the winner's submission is still in flight;
//! - concurrent partial refunds racing for the last of a payment never add up to more than
//!   the payment: exactly the ones that fit succeed, the others get FAILED_PRECONDITION
//!   (AMOUNT_EXCEEDS_REFUNDABLE), and the provider holds exactly the refunds the gateway
//!   reports.

mod support;

use std::time::{Duration, Instant};

use refund_gateway::{
    domain::{Currency, Money},
    pb,
};
use simulators::{
    compago::{fixtures::CONFIRMED_500, state::Faults as CompagoFaults},
    d24::{
        fixtures::{CARD_MXN, CARD_MXN_1000, CARD_MXN_1000_INVOICE, CARD_MXN_INVOICE},
        state::Faults as D24Faults,
    },
    paymongo::{fixtures::PAID_50000, state::Faults as PayMongoFaults},
};
use support::{
    gateway::{Client, Gateway, Setup},
    messages::{compago_payment, d24_payment, money, paymongo_payment, request, status_of},
};
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

/// Simultaneous callers with one request id (the issue asks for at least 50).
const DUPLICATES: usize = 64;

/// How many refund POSTs each simulator received for a payment.
fn refund_posts(gw: &Gateway, provider: &str, payment_id: &str) -> u64 {
    match provider {
        "compago" => gw
            .compago()
            .stats()
            .refund_posts_by_payment
            .get(&payment_id.to_lowercase())
            .copied()
            .unwrap_or(0),
        "d24" => gw
            .d24()
            .stats()
            .refund_posts_by_deposit
            .get(payment_id)
            .copied()
            .unwrap_or(0),
        "paymongo" => gw
            .paymongo()
            .stats()
            .refund_posts_by_payment
            .get(payment_id)
            .copied()
            .unwrap_or(0),
        other => panic!("no simulator for {other}"),
    }
}

/// Sends `n` copies of `req` at once, each on one of a few connections.
async fn all_at_once(
    gw: &Gateway,
    req: pb::CreateRefundRequest,
    n: usize,
) -> Vec<Result<pb::Refund, Status>> {
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(gw.new_client().await);
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let calls = (0..n).map(|i| {
        let mut client: Client = clients[i % clients.len()].clone();
        let req = req.clone();
        let barrier = barrier.clone();
        tokio::spawn(async move {
            barrier.wait().await;
            client
                .create_refund(req)
                .await
                .map(|r| r.into_inner().refund.unwrap())
        })
    });
    futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|joined| joined.expect("caller task"))
        .collect()
}

/// Every result is the same refund; returns it.
#[track_caller]
fn one_refund(results: &[Result<pb::Refund, Status>]) -> pb::Refund {
    let first = results[0].as_ref().expect("the winner's refund").clone();
    for result in results {
        let refund = result
            .as_ref()
            .unwrap_or_else(|e| panic!("a duplicate got an error instead of the refund: {e:?}"));
        assert_eq!(refund.id, first.id, "every caller gets the same refund");
    }
    first
}

/// 64 simultaneous CreateRefund calls with one request id, for each provider: one refund,
/// one refund POST at the simulator, and every caller gets that refund.
#[tokio::test]
async fn simultaneous_duplicates_make_one_refund_per_provider() {
    let gw = Gateway::start(Setup::default()).await;
    let cases = [
        (
            "compago",
            compago_payment(CONFIRMED_500),
            CONFIRMED_500.to_owned(),
        ),
        (
            "d24",
            d24_payment(CARD_MXN, CARD_MXN_INVOICE),
            CARD_MXN.to_string(),
        ),
        (
            "paymongo",
            paymongo_payment(PAID_50000),
            PAID_50000.to_owned(),
        ),
    ];
    for (provider, payment, payment_id) in cases {
        let started = Instant::now();
        let req = request(&format!("dup-{provider}"), provider, payment, None);
        let results = all_at_once(&gw, req, DUPLICATES).await;
        let refund = one_refund(&results);
        assert_eq!(
            refund_posts(&gw, provider, &payment_id),
            1,
            "{provider}: exactly one submission reached the provider"
        );
        let listed = gw
            .client
            .clone()
            .list_refunds(pb::ListRefundsRequest {
                payment_id: payment_id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .refunds;
        assert_eq!(listed.len(), 1, "{provider}: one refund recorded");
        assert_eq!(listed[0].id, refund.id);
        eprintln!(
            "{provider}: {DUPLICATES} simultaneous duplicates -> refund {} ({:?}) in {:?}",
            refund.id,
            status_of(&refund),
            started.elapsed()
        );
    }
    assert_eq!(gw.paymongo().stats().refunds_created, 1);
    assert_eq!(gw.d24().stats().refunds_created, 1);
    assert_eq!(gw.compago().stats().refunds_applied, 1);
}

/// Duplicates that arrive while the first call's submission is in flight (the simulator
/// holds its answer for 1.5 s after applying the refund) wait for it and get the winner's
/// refund once it completes, not REQUEST_IN_PROGRESS; the provider sees one POST.
#[tokio::test]
async fn duplicates_arriving_mid_flight_wait_for_the_winner() {
    let gw = Gateway::start(Setup {
        timeout_ms: 5_000,
        ..Setup::default()
    })
    .await;
    let hold = Duration::from_millis(1_500);
    gw.compago()
        .set_faults(CompagoFaults {
            refund_delay_ms: hold.as_millis() as u64,
            ..CompagoFaults::default()
        })
        .unwrap();
    gw.d24()
        .set_faults(D24Faults {
            refund_delay_ms: hold.as_millis() as u64,
            ..D24Faults::default()
        })
        .unwrap();
    gw.paymongo()
        .set_faults(PayMongoFaults {
            refund_delay_ms: hold.as_millis() as u64,
            ..PayMongoFaults::default()
        })
        .unwrap();
    let cases = [
        (
            "compago",
            compago_payment(CONFIRMED_500),
            CONFIRMED_500.to_owned(),
        ),
        (
            "d24",
            d24_payment(CARD_MXN, CARD_MXN_INVOICE),
            CARD_MXN.to_string(),
        ),
        (
            "paymongo",
            paymongo_payment(PAID_50000),
            PAID_50000.to_owned(),
        ),
    ];
    let runs = cases.into_iter().map(|(provider, payment, payment_id)| {
        let gw = &gw;
        async move {
            let req = request(&format!("mid-flight-{provider}"), provider, payment, None);
            let started = Instant::now();
            let mut first_client = gw.new_client().await;
            let first_req = req.clone();
            let first = tokio::spawn(async move {
                first_client
                    .create_refund(first_req)
                    .await
                    .map(|r| r.into_inner().refund.unwrap())
            });
            // The winner is now waiting for the provider's answer.
            tokio::time::sleep(Duration::from_millis(400)).await;
            assert_eq!(refund_posts(gw, provider, &payment_id), 1, "{provider}");
            let late = all_at_once(gw, req, 16).await;
            let late_done = started.elapsed();
            let mut all = vec![first.await.unwrap()];
            all.extend(late);
            let refund = one_refund(&all);
            assert!(
                late_done >= hold,
                "{provider}: the duplicates waited for the winner ({late_done:?})"
            );
            assert_eq!(refund_posts(gw, provider, &payment_id), 1, "{provider}");
            eprintln!(
                "{provider}: 16 duplicates arriving mid-flight got refund {} ({:?}) after {late_done:?}",
                refund.id,
                status_of(&refund)
            );
        }
    });
    futures::future::join_all(runs).await;
}

/// 20 callers each ask for 30% of a payment at once, with distinct request ids. Exactly
/// three fit: they succeed, the other 17 get FAILED_PRECONDITION AMOUNT_EXCEEDS_REFUNDABLE,
/// the refunds that hold money add up to 90% of the payment, and the provider holds
/// exactly the three refunds the gateway reports. D24 and PayMongo (Compago refunds whole
/// payments only).
#[tokio::test]
async fn concurrent_partial_refunds_never_exceed_the_payment() {
    let gw = Gateway::start(Setup::default()).await;
    let cases = [
        (
            "d24",
            d24_payment(CARD_MXN_1000, CARD_MXN_1000_INVOICE),
            CARD_MXN_1000.to_string(),
            money("MXN", 100_000),
        ),
        (
            "paymongo",
            paymongo_payment(PAID_50000),
            PAID_50000.to_owned(),
            money("PHP", 50_000),
        ),
    ];
    for (provider, payment, payment_id, paid) in cases {
        let part = money(&paid.currency_code, paid.minor_units * 30 / 100);
        let mut clients = Vec::new();
        for _ in 0..4 {
            clients.push(gw.new_client().await);
        }
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(20));
        let calls = (0..20).map(|i| {
            let mut client = clients[i % clients.len()].clone();
            let req = request(
                &format!("race-{provider}-{i}"),
                provider,
                payment.clone(),
                Some(part.clone()),
            );
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                client
                    .create_refund(req)
                    .await
                    .map(|r| r.into_inner().refund.unwrap())
            })
        });
        let started = Instant::now();
        let results: Vec<_> = futures::future::join_all(calls)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let elapsed = started.elapsed();
        let won: Vec<&pb::Refund> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        for result in &results {
            if let Err(status) = result {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                let details = status.get_error_details();
                let info = details.error_info().expect("ErrorInfo");
                assert_eq!(info.reason, "AMOUNT_EXCEEDS_REFUNDABLE", "{status:?}");
            }
        }
        assert_eq!(
            won.len(),
            3,
            "{provider}: exactly the refunds that fit succeed"
        );
        for refund in &won {
            assert_ne!(status_of(refund), pb::RefundStatus::Failed);
            assert_ne!(status_of(refund), pb::RefundStatus::Canceled);
        }

        // The gateway's record: the refunds holding money add up to at most the payment.
        let listed = gw
            .client
            .clone()
            .list_refunds(pb::ListRefundsRequest {
                payment_id: payment_id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .refunds;
        let holding: Vec<&pb::Refund> = listed
            .iter()
            .filter(|r| {
                !matches!(
                    status_of(r),
                    pb::RefundStatus::Failed | pb::RefundStatus::Canceled
                )
            })
            .collect();
        let held: i64 = holding
            .iter()
            .map(|r| r.amount.as_ref().unwrap().minor_units)
            .sum();
        assert_eq!(holding.len(), 3, "{provider}");
        assert_eq!(held, 3 * part.minor_units, "{provider}");
        assert!(held <= paid.minor_units, "{provider}");

        // The provider's truth: exactly those three refunds, for exactly those amounts.
        let mut ours: Vec<(String, i64)> = holding
            .iter()
            .map(|r| {
                (
                    r.provider_refund_id.clone(),
                    r.amount.as_ref().unwrap().minor_units,
                )
            })
            .collect();
        let mut theirs: Vec<(String, i64)> = match provider {
            "d24" => gw
                .d24()
                .refunds_of(CARD_MXN_1000)
                .iter()
                .map(|r| {
                    let currency = Currency::parse(&r.currency).unwrap();
                    let amount = Money::from_major(r.amount, currency).unwrap();
                    (r.id.to_string(), amount.minor)
                })
                .collect(),
            _ => gw
                .paymongo()
                .refunds_of(PAID_50000)
                .iter()
                .map(|r| (r.id.clone(), r.amount))
                .collect(),
        };
        ours.sort();
        theirs.sort();
        assert_eq!(
            ours, theirs,
            "{provider}: the provider holds what the gateway reports"
        );
        assert_eq!(
            refund_posts(&gw, provider, &payment_id),
            3,
            "{provider}: only the refunds that fit were sent"
        );
        eprintln!(
            "{provider}: 20 concurrent 30% refunds -> 3 succeeded ({held} of {} minor units held), 17 refused, in {elapsed:?}",
            paid.minor_units
        );
    }
}
