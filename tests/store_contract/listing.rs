//! Listing, lookups and the worker's queue.

use crate::fixtures::*;

/// Listing is per tenant, newest first, and each filter (provider, status, payment id, and
/// combinations) keeps exactly the matching refunds; `limit` cuts the list.
pub(crate) async fn list_applies_each_filter_within_the_tenant(store: Store) {
    let make = |tenant, provider, payment, status, secs| {
        let mut r = new_refund(tenant, provider, payment, 100);
        r.status = status;
        r.created_at = at(secs);
        r.updated_at = at(secs);
        r
    };
    let r1 = make("acme", "compago", "pay-1", RefundStatus::Pending, 1);
    let r2 = make("acme", "compago", "pay-2", RefundStatus::Processing, 2);
    let r3 = make("acme", "d24", "pay-1", RefundStatus::Succeeded, 3);
    let r4 = make("acme", "d24", "pay-3", RefundStatus::Failed, 4);
    let b1 = make("bravo", "compago", "pay-1", RefundStatus::Pending, 5);
    for r in [&r1, &r2, &r3, &r4, &b1] {
        record(&store, r).await;
    }

    let q = list_query;
    assert_eq!(
        store.list_refunds(&q("acme")).await.unwrap(),
        [&r4, &r3, &r2, &r1].map(as_stored)
    );
    let by_provider = ListQuery {
        provider: Some("compago".into()),
        ..q("acme")
    };
    assert_eq!(
        list(&store, by_provider).await,
        [&r2.id, &r1.id].map(Clone::clone)
    );
    let by_status = ListQuery {
        status: Some(RefundStatus::Pending),
        ..q("acme")
    };
    assert_eq!(list(&store, by_status).await, vec![r1.id.clone()]);
    let by_payment = ListQuery {
        payment_id: Some("pay-1".into()),
        ..q("acme")
    };
    assert_eq!(
        list(&store, by_payment).await,
        [&r3.id, &r1.id].map(Clone::clone)
    );
    let combined = ListQuery {
        provider: Some("d24".into()),
        status: Some(RefundStatus::Failed),
        ..q("acme")
    };
    assert_eq!(list(&store, combined).await, vec![r4.id.clone()]);
    let provider_and_payment = ListQuery {
        provider: Some("compago".into()),
        payment_id: Some("pay-1".into()),
        ..q("acme")
    };
    assert_eq!(
        list(&store, provider_and_payment).await,
        vec![r1.id.clone()]
    );
    let nothing = ListQuery {
        status: Some(RefundStatus::Canceled),
        ..q("acme")
    };
    assert!(list(&store, nothing).await.is_empty());
    let limited = ListQuery {
        limit: 2,
        ..q("acme")
    };
    assert_eq!(
        list(&store, limited).await,
        [&r4.id, &r3.id].map(Clone::clone)
    );

    assert_eq!(list(&store, q("bravo")).await, vec![b1.id.clone()]);
    assert!(list(&store, q("nobody")).await.is_empty());
}

/// Keyset pages (`before` = the last refund's (created_at, id)) walk a tenant's refunds
/// newest first with no duplicate and no gap, also where several refunds share a created_at
/// (the id breaks the tie), and never show another tenant's refunds.
pub(crate) async fn list_pages_by_keyset_without_gaps_or_duplicates(store: Store) {
    let mut expected = Vec::new();
    for i in 0..23_i64 {
        for tenant in ["acme", "bravo"] {
            if tenant == "bravo" && i % 5 != 0 {
                continue;
            }
            let mut r = new_refund(tenant, "compago", &format!("pay-{tenant}-{i}"), 100);
            // Groups of three share a created_at; nanoseconds are dropped by the store.
            r.created_at = at(i / 3) + TimeDelta::nanoseconds(i);
            record(&store, &r).await;
            if tenant == "acme" {
                expected.push(as_stored(&r));
            }
        }
    }
    expected.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .list_refunds(&ListQuery {
                before: before.clone(),
                limit: 5,
                ..list_query("acme")
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        sizes.push(page.len());
        let last = page.last().unwrap();
        before = Some((last.created_at, last.id.clone()));
        seen.extend(page);
    }
    assert_eq!(sizes, [5, 5, 5, 5, 3]);
    assert_eq!(ids(&seen), ids(&expected));
    assert_eq!(seen.iter().map(|r| &r.id).collect::<HashSet<_>>().len(), 23);
    assert!(seen.iter().all(|r| r.tenant.as_str() == "acme"));
}

/// `claim_due` takes the refunds whose next check has come, earliest first and at most
/// `limit`, pushes their next check to now + lease and bumps their version (so a worker
/// holding an older copy conflicts); claimed refunds are not handed out again until the
/// lease passes. It writes no event.
pub(crate) async fn claim_due_leases_due_refunds(store: Store) {
    let mut due_first = new_refund("acme", "compago", "pay-1", 100);
    due_first.next_check_at = Some(at(-10));
    let mut due_second = new_refund("acme", "compago", "pay-2", 100);
    due_second.next_check_at = Some(at(-5));
    let mut later = new_refund("acme", "compago", "pay-3", 100);
    later.next_check_at = Some(at(60));
    let never = new_refund("acme", "compago", "pay-4", 100);
    for r in [&due_first, &due_second, &later, &never] {
        record(&store, r).await;
    }
    let before_claim = get(&store, &due_first.id).await;

    let claimed = store.claim_due(at(0), 10, LEASE).await.unwrap();
    assert_eq!(
        ids(&claimed),
        [&due_first.id, &due_second.id].map(Clone::clone)
    );
    for (got, original) in claimed.iter().zip([&due_first, &due_second]) {
        let mut expected = as_stored(original);
        expected.next_check_at = Some(micros(at(30)));
        expected.version = original.version + 1;
        assert_eq!(got, &expected);
        assert_eq!(&get(&store, &got.id).await, got);
    }

    assert!(store.claim_due(at(1), 10, LEASE).await.unwrap().is_empty());
    assert!(store.claim_due(at(29), 10, LEASE).await.unwrap().is_empty());

    let mut stale = before_claim.clone();
    stale.status = RefundStatus::Processing;
    assert_eq!(
        store
            .update_refund(&before_claim, &stale, &cause())
            .await
            .unwrap(),
        UpdateOutcome::Conflict
    );

    let one = store.claim_due(at(30), 1, LEASE).await.unwrap();
    assert_eq!(one.len(), 1);
    let rest = store.claim_due(at(30), 10, LEASE).await.unwrap();
    assert_eq!(rest.len(), 1);
    let both: HashSet<_> = [&one[0].id, &rest[0].id].into_iter().collect();
    assert_eq!(both, HashSet::from([&due_first.id, &due_second.id]));
    assert_eq!(rest[0].version, 3);

    // At t0+60s the second leases run out together with `later`'s first check.
    assert!(store.claim_due(at(59), 10, LEASE).await.unwrap().is_empty());
    let all: HashSet<RefundId> = ids(&store.claim_due(at(60), 10, LEASE).await.unwrap())
        .into_iter()
        .collect();
    assert_eq!(
        all,
        HashSet::from([
            due_first.id.clone(),
            due_second.id.clone(),
            later.id.clone()
        ])
    );
    assert_eq!(all_events(&store).await.len(), 4);
}

/// A provider refund id finds the refund only through the provider account that issued it.
pub(crate) async fn find_by_provider_refund_id_is_scoped_to_the_account(store: Store) {
    let mut at_compago = new_refund("acme", "compago", "pay-1", 100);
    at_compago.provider_refund_id = Some("re_1".into());
    let mut at_d24 = new_refund("bravo", "d24", "dep-1", 100);
    at_d24.provider_refund_id = Some("re_1".into());
    let unsent = new_refund("acme", "compago", "pay-2", 100);
    for r in [&at_compago, &at_d24, &unsent] {
        record(&store, r).await;
    }
    let found = |provider: &'static str, id: &'static str| {
        let store = store.clone();
        async move {
            store
                .find_by_provider_refund_id(provider, id)
                .await
                .unwrap()
                .map(|r| r.id)
        }
    };
    assert_eq!(found("compago", "re_1").await, Some(at_compago.id.clone()));
    assert_eq!(found("d24", "re_1").await, Some(at_d24.id.clone()));
    assert_eq!(found("paymongo", "re_1").await, None);
    assert_eq!(found("compago", "re_2").await, None);

    // An id learnt later through update_refund is found too.
    let (updated, _) = update(&store, &get(&store, &unsent.id).await, |n| {
        n.provider_refund_id = Some("re_2".into());
    })
    .await;
    assert_eq!(found("compago", "re_2").await, Some(updated.id));
}

/// `held_amount` adds up the refunds of one payment at one provider account that hold money,
/// in the asked currency, across tenants; 0 for a payment with none.
pub(crate) async fn held_amount_adds_up_holding_refunds_of_one_payment(store: Store) {
    let plain = |tenant, provider, payment, minor| new_refund(tenant, provider, payment, minor);
    let mut failed = plain("acme", "compago", "pay-1", 5_000);
    failed.status = RefundStatus::Failed;
    let mut review = plain("bravo", "compago", "pay-1", 300);
    review.status = RefundStatus::RequiresReview;
    for r in [
        &plain("acme", "compago", "pay-1", 1_000),
        &failed,
        &review,
        &plain("acme", "compago", "pay-2", 7_000),
        &plain("acme", "d24", "pay-1", 9_000),
    ] {
        record(&store, r).await;
    }
    assert_eq!(
        store.held_amount("compago", "pay-1", mxn()).await.unwrap(),
        mxn_amount(1_300)
    );
    assert_eq!(
        store.held_amount("compago", "pay-9", mxn()).await.unwrap(),
        mxn_amount(0)
    );
    let php = Currency::parse("PHP").unwrap();
    assert_eq!(
        store.held_amount("compago", "pay-1", php).await.unwrap(),
        Money::new(0, php)
    );
}

/// `refunds_of_payment` lists every refund of one payment at one provider account, of every
/// tenant and status, oldest first; nothing of another payment or account.
pub(crate) async fn refunds_of_payment_lists_one_payment_at_one_account(store: Store) {
    let first = new_refund("acme", "d24", "300000001", 1_000);
    let mut failed = new_refund("bravo", "d24", "300000001", 500);
    failed.status = RefundStatus::Failed;
    let mut later = new_refund("acme", "d24", "300000001", 200);
    later.created_at = at(60);
    later.updated_at = at(60);
    for r in [
        &later,
        &first,
        &failed,
        &new_refund("acme", "d24", "300000002", 100),
        &new_refund("acme", "compago", "300000001", 100),
    ] {
        record(&store, r).await;
    }
    let found = store.refunds_of_payment("d24", "300000001").await.unwrap();
    assert_eq!(ids(&found), vec![first.id, failed.id, later.id]);
    assert_eq!(found[1].status, RefundStatus::Failed);
    assert!(
        store
            .refunds_of_payment("d24", "300000009")
            .await
            .unwrap()
            .is_empty()
    );
}

/// `count_by_status` counts every refund, per provider account and status.
pub(crate) async fn count_by_status_counts_every_refund(store: Store) {
    let make = |provider, status, check: Option<i64>| {
        let mut r = new_refund("acme", provider, "pay-1", 1);
        r.status = status;
        r.next_check_at = check.map(at);
        r
    };
    use RefundStatus::*;
    for r in [
        make("compago", Pending, Some(1)),
        make("compago", Pending, Some(100)),
        make("compago", Processing, Some(1)),
        make("d24", Pending, Some(1)),
        make("compago", Succeeded, None),
        make("d24", Failed, None),
    ] {
        record(&store, &r).await;
    }
    let mut counts = store.count_by_status().await.unwrap();
    counts.sort_by(|a, b| (&a.0, a.1.as_str()).cmp(&(&b.0, b.1.as_str())));
    assert_eq!(
        counts,
        [
            ("compago".to_owned(), Pending, 2),
            ("compago".to_owned(), Processing, 1),
            ("compago".to_owned(), Succeeded, 1),
            ("d24".to_owned(), Failed, 1),
            ("d24".to_owned(), Pending, 1),
        ]
    );
}

/// The store answers a readiness ping.
pub(crate) async fn ping_answers(store: Store) {
    store.ping().await.unwrap();
}
