//! Refunds and events: what is stored, versions, and the event stream.

use crate::fixtures::*;

/// Every field of a refund comes back as written (times cut to microseconds): payment
/// reference parts, a non-MXN currency, provider ids, metadata with non-ASCII text, the full
/// bank account number (needed to submit), the failure, times, version, submission and the
/// worker's bookkeeping. An unknown id is `None`.
pub(crate) async fn insert_then_get_returns_every_field(store: Store) {
    let clp = Currency::parse("CLP").unwrap();
    let mut r = new_refund("acme", "d24", "dep-1", 12_345);
    r.amount = Money::new(12_345, clp);
    r.payment.payment_method_id = "pm-1".into();
    r.payment.invoice_id = "inv-1".into();
    r.status = RefundStatus::RequiresReview;
    r.provider_refund_id = Some("168".into());
    r.provider_status = Some("PENDING".into());
    r.reason = RefundReason::Fraudulent;
    r.description = "charged twice".into();
    r.metadata = BTreeMap::from([
        ("order".to_owned(), "A-17".to_owned()),
        ("note".to_owned(), "ñandú ✓ \"quoted\"".to_owned()),
    ]);
    r.bank_account = Some(account());
    r.failure = Some(
        RefundFailure::new("PROVIDER_DECLINED", "the bank refused the account")
            .with_provider("902", "Invalid bank account"),
    );
    r.created_at = t0();
    r.updated_at = t0() + TimeDelta::nanoseconds(1_500_000_999);
    r.next_check_at = Some(at(2) + TimeDelta::nanoseconds(1));
    r.version = 1;
    r.submission = Submission::Unknown;
    r.check_attempts = 3;

    record_with_limit(&store, &r, Money::new(20_000, clp)).await;

    let got = get(&store, &r.id).await;
    assert_eq!(got, as_stored(&r));
    assert_eq!(got.created_at.timestamp_subsec_nanos(), 123_456_000);
    assert_eq!(got.updated_at.timestamp_subsec_nanos(), 623_457_000);
    assert_eq!(
        got.bank_account.as_ref().unwrap().account_number,
        "18293435"
    );
    assert_eq!(got.amount.currency.code(), "CLP");
    assert_eq!(store.get_refund(&RefundId::generate()).await.unwrap(), None);
}

/// The creation event is the refund as callers may see it (account number masked), with no
/// previous status, the creation time, and a positive sequence; it is the latest event and
/// the only one. The stored refund keeps the full number. An empty store's last sequence is 0.
pub(crate) async fn creation_event_has_the_masked_snapshot_and_no_previous_status(store: Store) {
    assert_eq!(store.last_sequence().await.unwrap(), 0);
    let mut r = new_refund("acme", "d24", "dep-1", 5_000);
    r.bank_account = Some(account());

    let event = record(&store, &r).await;

    let stored = get(&store, &r.id).await;
    assert_eq!(event.previous_status, None);
    assert_eq!(event.refund, stored.public_view());
    assert_eq!(
        event.refund.bank_account.as_ref().unwrap().account_number,
        "****3435"
    );
    assert_eq!(
        stored.bank_account.as_ref().unwrap().account_number,
        "18293435"
    );
    assert_eq!(event.refund.status, RefundStatus::Pending);
    assert_eq!(event.event_time, micros(r.created_at));
    assert!(event.sequence >= 1);
    assert_eq!(
        store.latest_event(&r.id).await.unwrap(),
        Some(event.clone())
    );
    assert_eq!(all_events(&store).await, vec![event.clone()]);
    assert_eq!(store.last_sequence().await.unwrap(), event.sequence);
}

/// Compare-and-set: an update from a copy whose version is no longer current is a
/// `Conflict` and changes nothing (no field, no event); the current copy goes through and
/// the store sets version = prev.version + 1 whatever `next.version` says.
pub(crate) async fn stale_version_conflicts_and_writes_nothing(store: Store) {
    let r = new_refund("acme", "compago", "pay-1", 5_000);
    record(&store, &r).await;
    let v1 = get(&store, &r.id).await;

    let (v2, event) = update(&store, &v1, |n| {
        n.status = RefundStatus::Processing;
        n.provider_status = Some("IN_PROGRESS".into());
        n.updated_at = at(5);
        n.version = 77;
    })
    .await;
    assert_eq!(v2.version, v1.version + 1);
    assert!(event.is_some());

    let mut stale_next = v1.clone();
    stale_next.status = RefundStatus::Failed;
    stale_next.failure = Some(RefundFailure::new("X", "y"));
    assert_eq!(
        store
            .update_refund(&v1, &stale_next, &cause())
            .await
            .unwrap(),
        UpdateOutcome::Conflict
    );

    assert_eq!(get(&store, &r.id).await, v2);
    assert_eq!(all_events(&store).await.len(), 2);
}

/// An event is written exactly when a visible field changes (status, provider refund id,
/// provider status, failure), with `previous_status` = the status before and the stored
/// refund's public view; bookkeeping-only changes (next check, attempts, submission) are
/// stored, bump the version, and write no event.
pub(crate) async fn events_are_written_only_for_visible_changes(store: Store) {
    let mut r = new_refund("acme", "d24", "dep-1", 5_000);
    r.bank_account = Some(account());
    record(&store, &r).await;
    let v1 = get(&store, &r.id).await;

    let (v2, event) = update(&store, &v1, |n| {
        n.next_check_at = Some(at(60));
        n.check_attempts = 4;
        n.submission = Submission::Accepted;
    })
    .await;
    assert_eq!(event, None);
    assert_eq!(v2.version, 2);
    assert_eq!(v2.next_check_at, Some(micros(at(60))));
    assert_eq!(v2.check_attempts, 4);
    assert_eq!(v2.submission, Submission::Accepted);
    assert_eq!(get(&store, &r.id).await, v2);
    assert_eq!(all_events(&store).await.len(), 1);

    type Change = Box<dyn Fn(&mut Refund)>;
    let changes: [(&str, Change); 4] = [
        (
            "provider_refund_id",
            Box::new(|n| n.provider_refund_id = Some("168".into())),
        ),
        (
            "provider_status",
            Box::new(|n| n.provider_status = Some("IN_PROGRESS".into())),
        ),
        (
            "failure",
            Box::new(|n| n.failure = Some(RefundFailure::new("SLOW", "still waiting"))),
        ),
        ("status", Box::new(|n| n.status = RefundStatus::Processing)),
    ];
    let mut prev = v2;
    let mut last_sequence = store.last_sequence().await.unwrap();
    for (i, (field, change)) in changes.iter().enumerate() {
        let when = at(10 + i64::try_from(i).unwrap()) + TimeDelta::nanoseconds(777);
        let (stored, event) = update(&store, &prev, |n| {
            change(n);
            n.updated_at = when;
        })
        .await;
        let event = event.unwrap_or_else(|| panic!("a change of {field} must make an event"));
        assert_eq!(event.previous_status, Some(prev.status), "{field}");
        assert_eq!(event.refund, stored.public_view(), "{field}");
        assert_eq!(
            event.refund.bank_account.as_ref().unwrap().account_number,
            "****3435"
        );
        assert_eq!(event.event_time, micros(when), "{field}");
        assert!(event.sequence > last_sequence, "{field}");
        assert_eq!(stored.version, prev.version + 1);
        last_sequence = event.sequence;
        prev = stored;
    }
    assert_eq!(prev.status, RefundStatus::Processing);
    assert_eq!(all_events(&store).await.len(), 5);
}

/// A change the status machine forbids (FAILED -> SUCCEEDED) is an error and writes
/// nothing: a FAILED refund released its amount, so it must never hold money again.
pub(crate) async fn forbidden_status_changes_are_refused(store: Store) {
    let r = new_refund("acme", "compago", "pay-1", 5_000);
    record(&store, &r).await;
    let v1 = get(&store, &r.id).await;
    let (failed, _) = update(&store, &v1, |n| n.status = RefundStatus::Failed).await;

    let mut revived = failed.clone();
    revived.status = RefundStatus::Succeeded;
    assert!(
        store
            .update_refund(&failed, &revived, &cause())
            .await
            .is_err()
    );

    assert_eq!(get(&store, &r.id).await, failed);
    assert_eq!(all_events(&store).await.len(), 2);
}

/// `events_after` returns the events of its scope (one tenant, one refund, or all) with a
/// sequence above `after`, in increasing sequence order, at most `limit` of them.
pub(crate) async fn events_after_filters_by_scope_in_sequence_order(store: Store) {
    let a1 = new_refund("acme", "compago", "pay-1", 100);
    let a2 = new_refund("acme", "compago", "pay-2", 100);
    let b1 = new_refund("bravo", "compago", "pay-3", 100);
    for r in [&a1, &a2, &b1] {
        record(&store, r).await;
    }
    let processing = |n: &mut Refund| n.status = RefundStatus::Processing;
    let (a1v2, _) = update(&store, &get(&store, &a1.id).await, processing).await;
    update(&store, &get(&store, &b1.id).await, processing).await;
    update(&store, &a1v2, |n| n.status = RefundStatus::Succeeded).await;

    let all = all_events(&store).await;
    let order: Vec<&RefundId> = all.iter().map(|e| &e.refund.id).collect();
    assert_eq!(order, [&a1.id, &a2.id, &b1.id, &a1.id, &b1.id, &a1.id]);
    assert!(all.windows(2).all(|w| w[0].sequence < w[1].sequence));

    let acme = store
        .events_after(&EventScope::Tenant(TenantId::new("acme")), 0, 100)
        .await
        .unwrap();
    assert_eq!(acme, [&all[0], &all[1], &all[3], &all[5]].map(Clone::clone));
    let bravo = store
        .events_after(&EventScope::Tenant(TenantId::new("bravo")), 0, 100)
        .await
        .unwrap();
    assert_eq!(bravo, [all[2].clone(), all[4].clone()]);

    let of_a1 = store
        .events_after(&EventScope::Refund(a1.id.clone()), 0, 100)
        .await
        .unwrap();
    let statuses: Vec<_> = of_a1
        .iter()
        .map(|e| (e.previous_status, e.refund.status))
        .collect();
    assert_eq!(
        statuses,
        [
            (None, RefundStatus::Pending),
            (Some(RefundStatus::Pending), RefundStatus::Processing),
            (Some(RefundStatus::Processing), RefundStatus::Succeeded),
        ]
    );

    assert_eq!(
        store.events_after(&EventScope::All, 0, 2).await.unwrap(),
        all[..2]
    );
    assert_eq!(
        store
            .events_after(&EventScope::All, all[2].sequence, 100)
            .await
            .unwrap(),
        all[3..]
    );
    assert_eq!(
        store
            .events_after(
                &EventScope::Tenant(TenantId::new("acme")),
                all[1].sequence,
                1
            )
            .await
            .unwrap(),
        [all[3].clone()]
    );
    assert!(
        store
            .events_after(&EventScope::All, all[5].sequence, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .events_after(&EventScope::Tenant(TenantId::new("nobody")), 0, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .events_after(&EventScope::All, 0, 0)
            .await
            .unwrap()
            .is_empty()
    );
}

/// `latest_event` is the refund's most recent event (its current state), unaffected by other
/// refunds' later events and by bookkeeping updates; `None` for an unknown refund.
pub(crate) async fn latest_event_is_the_current_state(store: Store) {
    let a = new_refund("acme", "compago", "pay-1", 100);
    let b = new_refund("acme", "compago", "pay-2", 100);
    record(&store, &a).await;
    record(&store, &b).await;
    let (a2, event) = update(&store, &get(&store, &a.id).await, |n| {
        n.status = RefundStatus::Processing;
    })
    .await;
    let event = event.unwrap();
    update(&store, &get(&store, &b.id).await, |n| {
        n.status = RefundStatus::Processing;
    })
    .await;
    let (a3, none) = update(&store, &a2, |n| n.check_attempts = 2).await;
    assert_eq!(none, None);

    let latest = store.latest_event(&a.id).await.unwrap().unwrap();
    assert_eq!(latest, event);
    assert_eq!(latest.refund.status, a3.status);
    assert_eq!(
        store.latest_event(&RefundId::generate()).await.unwrap(),
        None
    );
}
