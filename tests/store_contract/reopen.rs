//! Across restarts: what a store keeps when it is closed and opened again.

use crate::fixtures::*;

/// A named secret is 32 random bytes made on first use, the same on every later call and
/// after the store is closed and reopened; different names get different secrets.
pub(crate) async fn secret_is_created_once_and_survives_reopen(backend: &Backend) {
    let store = backend.open().await;
    let first = store.secret("page-token").await.unwrap();
    assert_eq!(first.len(), 32);
    assert_eq!(store.secret("page-token").await.unwrap(), first);
    let other = store.secret("other").await.unwrap();
    assert_eq!(other.len(), 32);
    assert_ne!(other, first);
    drop(store);
    backend.close().await;

    let store = backend.open().await;
    assert_eq!(store.secret("page-token").await.unwrap(), first);
    assert_eq!(store.secret("other").await.unwrap(), other);
}

/// Everything acknowledged survives closing and reopening the database: refunds (with every
/// field), events, idempotency keys in each state; and new sequences continue above the old
/// ones instead of being reused.
pub(crate) async fn reopen_keeps_everything_and_sequences_continue(backend: &Backend) {
    let store = backend.open().await;
    let mut r1 = new_refund("acme", "d24", "dep-1", 1_000);
    r1.bank_account = Some(account());
    r1.metadata = BTreeMap::from([("order".to_owned(), "A-17".to_owned())]);
    record(&store, &r1).await;
    update(&store, &get(&store, &r1.id).await, |n| {
        n.status = RefundStatus::Processing;
        n.provider_refund_id = Some("168".into());
        n.next_check_at = Some(at(5));
    })
    .await;
    let r2 = new_refund("acme", "compago", "pay-1", 2_000);
    record(&store, &r2).await;
    store
        .complete_request(&key_of(&r2), &RequestResult::Refund(r2.id.clone()))
        .await
        .unwrap();
    let failed_key = key("acme", "req-failed");
    let error = ApiError::failed_precondition(reason::NOTHING_LEFT_TO_REFUND, "nothing left");
    assert_eq!(claim(&store, &failed_key, t0()).await, RequestClaim::Owned);
    store
        .complete_request(&failed_key, &RequestResult::Error(error.clone()))
        .await
        .unwrap();
    let open_key = key("acme", "req-open");
    assert_eq!(claim(&store, &open_key, t0()).await, RequestClaim::Owned);

    let r1_before = get(&store, &r1.id).await;
    let events_before = all_events(&store).await;
    let last_before = store.last_sequence().await.unwrap();
    assert_eq!(events_before.len(), 3);
    assert_eq!(last_before, events_before.last().unwrap().sequence);
    drop(store);
    backend.close().await;

    let store = backend.open().await;
    assert_eq!(get(&store, &r1.id).await, r1_before);
    assert_eq!(
        get(&store, &r1.id)
            .await
            .bank_account
            .unwrap()
            .account_number,
        "18293435"
    );
    assert_eq!(get(&store, &r2.id).await, as_stored(&r2));
    assert_eq!(all_events(&store).await, events_before);
    assert_eq!(store.last_sequence().await.unwrap(), last_before);
    assert_eq!(
        claim(&store, &key_of(&r2), at(1)).await,
        RequestClaim::Done(RequestResult::Refund(r2.id.clone()))
    );
    assert_eq!(
        claim(&store, &failed_key, at(1)).await,
        RequestClaim::Done(RequestResult::Error(error))
    );
    assert_eq!(
        claim(&store, &open_key, at(1)).await,
        RequestClaim::InFlight
    );
    assert_eq!(
        store.held_amount("compago", "pay-1", mxn()).await.unwrap(),
        mxn_amount(2_000)
    );

    let r3 = new_refund("acme", "compago", "pay-2", 3_000);
    let event = record(&store, &r3).await;
    assert!(event.sequence > last_before);
    assert_eq!(store.last_sequence().await.unwrap(), event.sequence);
}
