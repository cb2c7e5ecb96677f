//! The over-refund guard: refunds of one payment never add up to more than it.

use refund_gateway::domain::ReportedRefund;

use crate::fixtures::*;

/// Refunds of one payment may add up to exactly its amount; one more minor unit is refused
/// with what is already held, and a refusal writes nothing (no refund, no event, the key not
/// linked). Other payments, and the same payment id at another provider account, are counted
/// apart.
pub(crate) async fn guard_allows_up_to_the_payment_and_refuses_beyond(store: Store) {
    let limit = mxn_amount(10_000);
    let first = new_refund("acme", "compago", "pay-1", 6_000);
    let second = new_refund("acme", "compago", "pay-1", 4_000);
    record_with_limit(&store, &first, limit).await;
    record_with_limit(&store, &second, limit).await;

    let over = new_refund("acme", "compago", "pay-1", 1);
    assert_eq!(
        try_insert(&store, &over, limit).await,
        InsertOutcome::ExceedsPayment {
            held: mxn_amount(10_000)
        }
    );
    assert_eq!(store.get_refund(&over.id).await.unwrap(), None);
    assert_eq!(all_events(&store).await.len(), 2);
    // The refused request's key is still open and unlinked: its owner may release it.
    store.release_request(&key_of(&over)).await.unwrap();
    assert_eq!(
        claim(&store, &key_of(&over), t0()).await,
        RequestClaim::Owned
    );

    // A different payment, and the same payment id at another provider account.
    record_with_limit(
        &store,
        &new_refund("acme", "compago", "pay-2", 10_000),
        limit,
    )
    .await;
    record_with_limit(&store, &new_refund("acme", "d24", "pay-1", 10_000), limit).await;
    assert_eq!(
        store.held_amount("compago", "pay-1", mxn()).await.unwrap(),
        mxn_amount(10_000)
    );
}

/// FAILED and CANCELED refunds stop counting against their payment, so their amount can be
/// refunded again; every other status (PENDING, PROCESSING, REQUIRES_REVIEW, SUCCEEDED)
/// keeps holding it.
pub(crate) async fn failed_and_canceled_refunds_release_their_amount(store: Store) {
    let limit = mxn_amount(10_000);
    let held = |store: Store| async move {
        store
            .held_amount("compago", "pay-1", mxn())
            .await
            .unwrap()
            .minor
    };

    let whole = new_refund("acme", "compago", "pay-1", 10_000);
    record_with_limit(&store, &whole, limit).await;
    let mut current = get(&store, &whole.id).await;
    for status in [RefundStatus::RequiresReview, RefundStatus::Processing] {
        current = update(&store, &current, |n| n.status = status).await.0;
        assert_eq!(held(store.clone()).await, 10_000, "{status}");
        let probe = new_refund("acme", "compago", "pay-1", 1);
        assert!(matches!(
            try_insert(&store, &probe, limit).await,
            InsertOutcome::ExceedsPayment { .. }
        ));
    }
    update(&store, &current, |n| n.status = RefundStatus::Failed).await;
    assert_eq!(held(store.clone()).await, 0);

    let half = new_refund("acme", "compago", "pay-1", 5_000);
    record_with_limit(&store, &half, limit).await;
    update(&store, &get(&store, &half.id).await, |n| {
        n.status = RefundStatus::Canceled;
    })
    .await;
    assert_eq!(held(store.clone()).await, 0);

    let again = new_refund("acme", "compago", "pay-1", 10_000);
    record_with_limit(&store, &again, limit).await;
    update(&store, &get(&store, &again.id).await, |n| {
        n.status = RefundStatus::Succeeded;
    })
    .await;
    assert_eq!(held(store.clone()).await, 10_000);
    let probe = new_refund("acme", "compago", "pay-1", 1);
    assert_eq!(
        try_insert(&store, &probe, limit).await,
        InsertOutcome::ExceedsPayment {
            held: mxn_amount(10_000)
        }
    );
}

/// Amounts in different currencies are never added up: a refund in another currency than
/// the limit is refused, and so is any refund of a payment that already holds money in
/// another currency.
pub(crate) async fn guard_never_adds_mixed_currencies(store: Store) {
    let php = Currency::parse("PHP").unwrap();
    let mut in_php = new_refund("acme", "paymongo", "pay_1", 100);
    in_php.amount = Money::new(100, php);
    assert!(matches!(
        try_insert(&store, &in_php, mxn_amount(10_000)).await,
        InsertOutcome::ExceedsPayment { .. }
    ));
    assert_eq!(store.get_refund(&in_php.id).await.unwrap(), None);

    let mut held_php = new_refund("acme", "paymongo", "pay_2", 100);
    held_php.amount = Money::new(100, php);
    record_with_limit(&store, &held_php, Money::new(10_000, php)).await;
    let in_mxn = new_refund("acme", "paymongo", "pay_2", 100);
    assert!(matches!(
        try_insert(&store, &in_mxn, mxn_amount(10_000)).await,
        InsertOutcome::ExceedsPayment { .. }
    ));
    assert_eq!(store.get_refund(&in_mxn.id).await.unwrap(), None);
    assert_eq!(all_events(&store).await.len(), 1);
}

/// 40 requests from two tenants race (tokio tasks released together by a barrier) for a
/// payment of 100.00 with 3.00 each: exactly the 33 that fit are stored, the others are
/// refused, and the stored refunds add up to 99.00, never more than the payment.
pub(crate) async fn concurrent_inserts_never_exceed_the_payment(store: Store) {
    const TASKS: usize = 40;
    let limit = mxn_amount(10_000);
    let barrier = Arc::new(Barrier::new(TASKS));
    let mut tasks = JoinSet::new();
    for i in 0..TASKS {
        let (store, barrier) = (store.clone(), barrier.clone());
        tasks.spawn(async move {
            let tenant = if i % 2 == 0 { "acme" } else { "bravo" };
            let r = new_refund(tenant, "compago", "pay-race", 300);
            assert_eq!(claim(&store, &key_of(&r), t0()).await, RequestClaim::Owned);
            barrier.wait().await;
            let outcome = store
                .insert_refund(&r, &key_of(&r), limit, &[], &cause())
                .await
                .unwrap();
            (r, outcome)
        });
    }
    let mut inserted = Vec::new();
    let mut refused = 0;
    while let Some(joined) = tasks.join_next().await {
        let (r, outcome) = joined.unwrap();
        match outcome {
            InsertOutcome::Inserted(event) => {
                assert_eq!(event.refund.id, r.id);
                inserted.push(event);
            }
            InsertOutcome::ExceedsPayment { held } => {
                assert!(held.minor + 300 > limit.minor, "refused with {held}");
                assert_eq!(store.get_refund(&r.id).await.unwrap(), None);
                refused += 1;
            }
        }
    }
    assert_eq!(inserted.len(), 33);
    assert_eq!(refused, TASKS - 33);
    let total: i64 = inserted.iter().map(|e| e.refund.amount.minor).sum();
    assert_eq!(total, 9_900);
    assert_eq!(
        store
            .held_amount("compago", "pay-race", mxn())
            .await
            .unwrap(),
        mxn_amount(9_900)
    );
    let sequences: HashSet<u64> = inserted.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences.len(), 33);
    assert_eq!(all_events(&store).await.len(), 33);
}

/// A refund the provider reports on the payment, as `get_payment` lists them.
fn reported(provider_refund_id: &str, gateway: Option<&Refund>, minor: i64) -> ReportedRefund {
    ReportedRefund {
        provider_refund_id: provider_refund_id.to_owned(),
        gateway_refund_id: gateway.map(|r| r.id.as_str().to_owned()),
        amount: mxn_amount(minor),
    }
}

/// Inserts `refund` with what the provider `reports`; its key claimed first.
async fn try_insert_reported(
    store: &Store,
    refund: &Refund,
    limit: Money,
    reports: &[ReportedRefund],
) -> InsertOutcome {
    assert_eq!(
        claim(store, &key_of(refund), t0()).await,
        RequestClaim::Owned
    );
    store
        .insert_refund(refund, &key_of(refund), limit, reports, &cause())
        .await
        .expect("insert_refund")
}

/// What the provider reports as refunded counts in the guard beside the gateway's held
/// refunds, each refund once: a reported refund that is one of the gateway's holding
/// refunds (by provider refund id, or by the gateway id the provider keeps with it, for one
/// whose answer was lost) is counted by the store only; a refund made outside the gateway,
/// a second provider refund naming the same gateway refund, and a gateway refund the store
/// no longer holds (FAILED) while the provider reports it all count in full.
pub(crate) async fn guard_counts_what_the_provider_reports_once(store: Store) {
    let limit = mxn_amount(10_000);
    let known = new_refund("acme", "paymongo", "pay-r", 3_000);
    record_with_limit(&store, &known, limit).await;
    let known = update(&store, &get(&store, &known.id).await, |n| {
        n.provider_refund_id = Some("ref_known".into());
    })
    .await
    .0;
    let answer_lost = new_refund("acme", "paymongo", "pay-r", 1_000);
    record_with_limit(&store, &answer_lost, limit).await;
    let mut reports = vec![
        reported("ref_known", None, 3_000),
        reported("ref_lost", Some(&answer_lost), 1_000),
        reported("ref_dashboard", None, 2_000),
    ];

    // Held 4_000 by the gateway, 2_000 outside: 4_000 left.
    let over = new_refund("acme", "paymongo", "pay-r", 4_001);
    assert_eq!(
        try_insert_reported(&store, &over, limit, &reports).await,
        InsertOutcome::ExceedsPayment {
            held: mxn_amount(6_000)
        }
    );
    assert_eq!(store.get_refund(&over.id).await.unwrap(), None);
    // Without the provider's report the same refund fits: the report is what refuses it.
    let probe = new_refund("acme", "paymongo", "pay-r", 4_001);
    assert!(matches!(
        try_insert_reported(&store, &probe, limit, &[]).await,
        InsertOutcome::Inserted(_)
    ));
    update(&store, &get(&store, &probe.id).await, |n| {
        n.status = RefundStatus::Canceled;
    })
    .await;

    // A second provider refund naming the answer-lost refund is money gone as well.
    reports.push(reported("ref_lost_again", Some(&answer_lost), 1_000));
    let fits_not = new_refund("acme", "paymongo", "pay-r", 3_001);
    assert_eq!(
        try_insert_reported(&store, &fits_not, limit, &reports).await,
        InsertOutcome::ExceedsPayment {
            held: mxn_amount(7_000)
        }
    );

    // Recorded FAILED while the provider reports it: no longer held, counted as reported.
    update(&store, &known, |n| n.status = RefundStatus::Failed).await;
    assert_eq!(
        try_insert_reported(
            &store,
            &new_refund("acme", "paymongo", "pay-r", 3_001),
            limit,
            &reports
        )
        .await,
        InsertOutcome::ExceedsPayment {
            held: mxn_amount(7_000)
        }
    );
    let rest = new_refund("acme", "paymongo", "pay-r", 3_000);
    assert!(matches!(
        try_insert_reported(&store, &rest, limit, &reports).await,
        InsertOutcome::Inserted(_)
    ));
}

/// 40 requests race for a payment of 100.00 of which 25.00 was refunded outside the gateway
/// (every request carries the provider's report of it): exactly the 25 refunds of 3.00
/// that fit in the 75.00 left are stored, never more.
pub(crate) async fn concurrent_inserts_count_what_the_provider_reports(store: Store) {
    const TASKS: usize = 40;
    let limit = mxn_amount(10_000);
    let reports = Arc::new(vec![reported("ref_dashboard", None, 2_500)]);
    let barrier = Arc::new(Barrier::new(TASKS));
    let mut tasks = JoinSet::new();
    for _ in 0..TASKS {
        let (store, barrier, reports) = (store.clone(), barrier.clone(), reports.clone());
        tasks.spawn(async move {
            let r = new_refund("acme", "paymongo", "pay-race", 300);
            assert_eq!(claim(&store, &key_of(&r), t0()).await, RequestClaim::Owned);
            barrier.wait().await;
            store
                .insert_refund(&r, &key_of(&r), limit, &reports, &cause())
                .await
                .unwrap()
        });
    }
    let mut inserted = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap() {
            InsertOutcome::Inserted(_) => inserted += 1,
            InsertOutcome::ExceedsPayment { held } => {
                assert!(held.minor + 300 > limit.minor, "refused with {held}");
            }
        }
    }
    assert_eq!(inserted, 25);
    assert_eq!(
        store
            .held_amount("paymongo", "pay-race", mxn())
            .await
            .unwrap(),
        mxn_amount(7_500)
    );
}
