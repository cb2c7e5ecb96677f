//! Idempotency keys: claims of a request key, and what they answer.

use crate::fixtures::*;

/// A new key is `Owned`; the same key and parameters while the owner works are `InFlight`;
/// other parameters are `Mismatch` (also once completed); a completed key replays its refund,
/// or exactly the stored error (code, reason, message, metadata, violations, retry).
pub(crate) async fn claim_request_answers_every_state(store: Store) {
    let k = key("acme", "req-1");
    assert_eq!(claim(&store, &k, t0()).await, RequestClaim::Owned);
    assert_eq!(claim(&store, &k, at(1)).await, RequestClaim::InFlight);
    assert_eq!(
        store
            .claim_request(&k, "fp-other", at(1), LEASE)
            .await
            .unwrap(),
        RequestClaim::Mismatch
    );

    let error = ApiError::invalid(vec![
        FieldViolation::new("amount.minor_units", "must be above zero"),
        FieldViolation::new("description", "longer than 200 characters"),
    ])
    .with("provider", "d24")
    .with_retry_after(Duration::from_millis(1_500));
    store
        .complete_request(&k, &RequestResult::Error(error.clone()))
        .await
        .unwrap();
    assert_eq!(
        claim(&store, &k, at(2)).await,
        RequestClaim::Done(RequestResult::Error(error))
    );
    assert_eq!(
        store
            .claim_request(&k, "fp-other", at(2), LEASE)
            .await
            .unwrap(),
        RequestClaim::Mismatch
    );

    let precondition = ApiError::failed_precondition(
        reason::AMOUNT_EXCEEDS_REFUNDABLE,
        "only 10.00 MXN is left to refund",
    )
    .with("provider", "compago");
    let k2 = key("acme", "req-2");
    assert_eq!(claim(&store, &k2, t0()).await, RequestClaim::Owned);
    store
        .complete_request(&k2, &RequestResult::Error(precondition.clone()))
        .await
        .unwrap();
    match claim(&store, &k2, at(1)).await {
        RequestClaim::Done(RequestResult::Error(e)) => {
            assert_eq!(e.code, ErrorCode::FailedPrecondition);
            assert_eq!(e, precondition);
        }
        other => panic!("expected the stored error, got {other:?}"),
    }

    let r = new_refund("acme", "compago", "pay-1", 100);
    record(&store, &r).await;
    store
        .complete_request(&key_of(&r), &RequestResult::Refund(r.id.clone()))
        .await
        .unwrap();
    assert_eq!(
        claim(&store, &key_of(&r), at(1)).await,
        RequestClaim::Done(RequestResult::Refund(r.id.clone()))
    );

    // Keys are per tenant.
    assert_eq!(
        claim(&store, &key("bravo", "req-1"), at(1)).await,
        RequestClaim::Owned
    );
}

/// An owner whose lease ran out before it recorded anything loses the key: the next caller
/// takes it over (`Owned`) with a new lease, and is itself protected by that lease.
pub(crate) async fn expired_claim_with_nothing_recorded_is_taken_over(store: Store) {
    let k = key("acme", "req-1");
    assert_eq!(claim(&store, &k, at(0)).await, RequestClaim::Owned);
    assert_eq!(claim(&store, &k, at(29)).await, RequestClaim::InFlight);
    assert_eq!(claim(&store, &k, at(30)).await, RequestClaim::Owned);
    assert_eq!(claim(&store, &k, at(45)).await, RequestClaim::InFlight);
    assert_eq!(claim(&store, &k, at(59)).await, RequestClaim::InFlight);
    assert_eq!(claim(&store, &k, at(61)).await, RequestClaim::Owned);
}

/// An owner that recorded a refund and then stopped (lease expired, never completed): the
/// refund is the answer from then on, and the key stays done.
pub(crate) async fn expired_claim_with_a_refund_is_done(store: Store) {
    let r = new_refund("acme", "compago", "pay-1", 100);
    record(&store, &r).await; // claimed at t0, inserted, never completed
    let k = key_of(&r);
    assert_eq!(claim(&store, &k, at(10)).await, RequestClaim::InFlight);
    let done = RequestClaim::Done(RequestResult::Refund(r.id.clone()));
    assert_eq!(claim(&store, &k, at(31)).await, done);
    assert_eq!(claim(&store, &k, at(1)).await, done);
    assert_eq!(claim(&store, &k, at(500)).await, done);
}

/// `release_request` forgets an open key with nothing recorded (a repeat owns it at once),
/// and leaves completed keys and keys linked to a refund alone.
pub(crate) async fn release_forgets_only_unrecorded_claims(store: Store) {
    let open = key("acme", "req-open");
    assert_eq!(claim(&store, &open, t0()).await, RequestClaim::Owned);
    store.release_request(&open).await.unwrap();
    assert_eq!(claim(&store, &open, at(1)).await, RequestClaim::Owned);

    let failed = key("acme", "req-failed");
    let error = ApiError::failed_precondition(reason::PAYMENT_NOT_REFUNDABLE, "not captured");
    assert_eq!(claim(&store, &failed, t0()).await, RequestClaim::Owned);
    store
        .complete_request(&failed, &RequestResult::Error(error.clone()))
        .await
        .unwrap();
    store.release_request(&failed).await.unwrap();
    assert_eq!(
        claim(&store, &failed, at(1)).await,
        RequestClaim::Done(RequestResult::Error(error))
    );

    let r = new_refund("acme", "compago", "pay-1", 100);
    record(&store, &r).await;
    store.release_request(&key_of(&r)).await.unwrap();
    assert_eq!(
        claim(&store, &key_of(&r), at(1)).await,
        RequestClaim::InFlight
    );
    assert_eq!(
        claim(&store, &key_of(&r), at(31)).await,
        RequestClaim::Done(RequestResult::Refund(r.id.clone()))
    );
}

/// 32 simultaneous claims of one new key: exactly one caller owns it, all others see it in
/// flight.
pub(crate) async fn concurrent_claims_of_one_key_have_one_owner(store: Store) {
    const TASKS: usize = 32;
    let barrier = Arc::new(Barrier::new(TASKS));
    let mut tasks = JoinSet::new();
    for _ in 0..TASKS {
        let (store, barrier) = (store.clone(), barrier.clone());
        tasks.spawn(async move {
            barrier.wait().await;
            claim(&store, &key("acme", "req-contended"), t0()).await
        });
    }
    let mut owned = 0;
    let mut in_flight = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap() {
            RequestClaim::Owned => owned += 1,
            RequestClaim::InFlight => in_flight += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((owned, in_flight), (1, TASKS - 1));
}

/// A key completes with a refund only when that refund was inserted under it, and with an
/// error while it is linked to a refund only once that refund FAILED (so an error is never
/// replayed for a refund that may have gone through: the caller could refund again). Keys
/// completed with an error replay that error.
pub(crate) async fn a_linked_refund_is_replaced_by_an_error_only_once_failed(store: Store) {
    let r = new_refund("acme", "compago", "pay-1", 100);
    record(&store, &r).await;
    let k = key_of(&r);
    let error = ApiError::unavailable(reason::PROVIDER_UNAVAILABLE, "provider down");
    assert!(
        store
            .complete_request(&k, &RequestResult::Error(error.clone()))
            .await
            .is_err(),
        "a PENDING refund may still go through: no error may be stored for it"
    );
    assert!(
        store
            .complete_request(&k, &RequestResult::Refund(RefundId::generate()))
            .await
            .is_err()
    );
    let unlinked = key("acme", "req-unlinked");
    assert_eq!(claim(&store, &unlinked, t0()).await, RequestClaim::Owned);
    assert!(
        store
            .complete_request(&unlinked, &RequestResult::Refund(r.id.clone()))
            .await
            .is_err()
    );
    assert_eq!(
        claim(&store, &unlinked, at(1)).await,
        RequestClaim::InFlight
    );

    // Once the provider refused it (FAILED, nothing refunded), the error is what repeats get.
    let stored = get(&store, &r.id).await;
    update(&store, &stored, |n| {
        n.status = RefundStatus::Failed;
        n.submission = Submission::Rejected;
    })
    .await;
    store
        .complete_request(&k, &RequestResult::Error(error.clone()))
        .await
        .unwrap();
    assert_eq!(
        claim(&store, &k, at(2)).await,
        RequestClaim::Done(RequestResult::Error(error))
    );
    assert_eq!(
        store.held_amount("compago", "pay-1", mxn()).await.unwrap(),
        Money::new(0, mxn())
    );
}

/// `update_refund_completing` records a refused refund FAILED and its request's error in one
/// transaction: the key then replays the error. When the key cannot take the error (here: a
/// key not linked to that refund), nothing is written at all: the refund keeps its status
/// and version, and no event appears.
pub(crate) async fn a_refusal_and_its_error_are_one_transaction(store: Store) {
    let r = new_refund("acme", "compago", "pay-atomic", 100);
    record(&store, &r).await;
    let error =
        ApiError::failed_precondition(reason::PAYMENT_NOT_REFUNDABLE, "payment not CONFIRMED");
    let stored = get(&store, &r.id).await;
    let mut failed = stored.clone();
    failed.status = RefundStatus::Failed;
    failed.submission = Submission::Rejected;

    // A key that is not this refund's: refused, and the refund change is rolled back with it.
    let other = key("acme", "req-someone-else");
    assert_eq!(claim(&store, &other, t0()).await, RequestClaim::Owned);
    let events_before = all_events(&store).await.len();
    assert!(
        store
            .update_refund_completing(
                &stored,
                &failed,
                &other,
                &RequestResult::Error(error.clone()),
                &cause()
            )
            .await
            .is_err()
    );
    let unchanged = get(&store, &r.id).await;
    assert_eq!(unchanged.status, RefundStatus::Pending);
    assert_eq!(unchanged.version, stored.version);
    assert_eq!(all_events(&store).await.len(), events_before);

    // Its own key: both happen.
    match store
        .update_refund_completing(
            &stored,
            &failed,
            &key_of(&r),
            &RequestResult::Error(error.clone()),
            &cause(),
        )
        .await
        .unwrap()
    {
        UpdateOutcome::Updated { refund, event } => {
            assert_eq!(refund.status, RefundStatus::Failed);
            assert!(event.is_some());
        }
        UpdateOutcome::Conflict => panic!("unexpected conflict"),
    }
    assert_eq!(
        claim(&store, &key_of(&r), at(1)).await,
        RequestClaim::Done(RequestResult::Error(error))
    );
}

/// A refund the gateway withdrew before the provider took it (CANCELED: final, nothing
/// refunded, e.g. the provider was rate limiting) lets its key replay the error the caller
/// got, and releases its amount.
pub(crate) async fn a_canceled_refund_is_replaced_by_its_error(store: Store) {
    let r = new_refund("acme", "paymongo", "pay_1", 100);
    record(&store, &r).await;
    let k = key_of(&r);
    let error = ApiError::unavailable(reason::PROVIDER_RATE_LIMITED, "rate limited")
        .with_retry_after(std::time::Duration::from_secs(3));
    let stored = get(&store, &r.id).await;
    update(&store, &stored, |n| {
        n.status = RefundStatus::Canceled;
        n.submission = Submission::Rejected;
    })
    .await;
    store
        .complete_request(&k, &RequestResult::Error(error.clone()))
        .await
        .unwrap();
    assert_eq!(
        claim(&store, &k, at(2)).await,
        RequestClaim::Done(RequestResult::Error(error))
    );
    assert_eq!(
        store.held_amount("paymongo", "pay_1", mxn()).await.unwrap(),
        Money::new(0, mxn())
    );
}

/// `insert_refund` needs the caller to own an open claim on the refund's key: with no claim,
/// with a key of another request, or a second refund for a key that already has one, it
/// fails and writes nothing.
pub(crate) async fn insert_requires_an_open_claim_on_its_key(store: Store) {
    let limit = mxn_amount(BIG_LIMIT);
    let unclaimed = new_refund("acme", "compago", "pay-1", 100);
    assert!(
        store
            .insert_refund(&unclaimed, &key_of(&unclaimed), limit, &[], &cause())
            .await
            .is_err()
    );
    assert_eq!(store.get_refund(&unclaimed.id).await.unwrap(), None);

    let other_key = key("acme", "req-other");
    assert_eq!(claim(&store, &other_key, t0()).await, RequestClaim::Owned);
    assert!(
        store
            .insert_refund(&unclaimed, &other_key, limit, &[], &cause())
            .await
            .is_err()
    );

    let first = new_refund("acme", "compago", "pay-1", 100);
    record(&store, &first).await;
    let mut second = new_refund("acme", "compago", "pay-1", 100);
    second.request_id = first.request_id.clone();
    assert!(
        store
            .insert_refund(&second, &key_of(&first), limit, &[], &cause())
            .await
            .is_err()
    );
    assert_eq!(store.get_refund(&second.id).await.unwrap(), None);
    assert_eq!(all_events(&store).await.len(), 1);
    assert_eq!(
        store.held_amount("compago", "pay-1", mxn()).await.unwrap(),
        mxn_amount(100)
    );
}
