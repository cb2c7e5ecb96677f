//! Who made each change and why (`actor`, `note` on every event), who created a refund
//! (`created_by`), and refunds waiting for approval (REQUIRES_APPROVAL holds its amount).

use crate::fixtures::*;

/// Each event comes back with the actor and note it was written with: from the insert, from
/// `update_refund`, from `update_refund_completing`; through `events_after` of every scope and
/// `latest_event`, and in the events the writes return. `created_by` round-trips.
pub(crate) async fn events_keep_their_actor_and_note(store: Store) {
    let mut r = new_refund("acme", "compago", "pay-1", 1_000);
    r.created_by = Some(Actor::caller("0a1b2c3d"));
    let created = Cause::new(Actor::caller("0a1b2c3d"), "created");
    assert_eq!(claim(&store, &key_of(&r), t0()).await, RequestClaim::Owned);
    let InsertOutcome::Inserted(first) = store
        .insert_refund(&r, &key_of(&r), mxn_amount(BIG_LIMIT), &[], &created)
        .await
        .unwrap()
    else {
        panic!("inserted")
    };
    assert_eq!(first.cause, created);
    let stored = get(&store, &r.id).await;
    assert_eq!(stored.created_by, Some(Actor::caller("0a1b2c3d")));

    let mut processing = stored.clone();
    processing.status = RefundStatus::Processing;
    let webhook = Cause::new(Actor::webhook(), "provider reported PROCESSING");
    let UpdateOutcome::Updated { refund, event } = store
        .update_refund(&stored, &processing, &webhook)
        .await
        .unwrap()
    else {
        panic!("updated")
    };
    assert_eq!(event.unwrap().cause, webhook);
    // The creator is kept by every update.
    assert_eq!(refund.created_by, Some(Actor::caller("0a1b2c3d")));

    let mut failed = refund.clone();
    failed.status = RefundStatus::Failed;
    let operator = Cause::new(
        Actor::operator("99aa88bb"),
        "checked at the provider: ñandú ✓ \"quoted\"",
    );
    let UpdateOutcome::Updated { event, .. } = store
        .update_refund_completing(
            &refund,
            &failed,
            &key_of(&r),
            &RequestResult::Refund(r.id.clone()),
            &operator,
        )
        .await
        .unwrap()
    else {
        panic!("updated")
    };
    assert_eq!(event.unwrap().cause, operator);

    let expected = vec![created, webhook, operator.clone()];
    for scope in [
        EventScope::All,
        EventScope::Tenant(TenantId::new("acme")),
        EventScope::Refund(r.id.clone()),
    ] {
        let causes: Vec<Cause> = store
            .events_after(&scope, 0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.cause)
            .collect();
        assert_eq!(causes, expected, "{scope:?}");
    }
    let latest = store.latest_event(&r.id).await.unwrap().unwrap();
    assert_eq!(latest.cause, operator);
}

/// A refund recorded as REQUIRES_APPROVAL is stored (the status is allowed), holds its
/// amount against the payment, and may become PENDING (approved) or CANCELED (released).
pub(crate) async fn a_refund_waiting_for_approval_holds_its_amount(store: Store) {
    let mut waiting = new_refund("acme", "compago", "pay-1", 800);
    waiting.status = RefundStatus::RequiresApproval;
    waiting.submission = Submission::NotSent;
    record_with_limit(&store, &waiting, mxn_amount(1_000)).await;
    assert_eq!(
        get(&store, &waiting.id).await.status,
        RefundStatus::RequiresApproval
    );
    assert_eq!(
        store.held_amount("compago", "pay-1", mxn()).await.unwrap(),
        mxn_amount(800)
    );
    let more = new_refund("acme", "compago", "pay-1", 300);
    assert!(matches!(
        try_insert(&store, &more, mxn_amount(1_000)).await,
        InsertOutcome::ExceedsPayment { .. }
    ));
    let stored = get(&store, &waiting.id).await;
    let (canceled, event) = update(&store, &stored, |r| r.status = RefundStatus::Canceled).await;
    assert_eq!(
        event.unwrap().previous_status,
        Some(RefundStatus::RequiresApproval)
    );
    assert_eq!(canceled.status, RefundStatus::Canceled);
    assert_eq!(
        store.held_amount("compago", "pay-1", mxn()).await.unwrap(),
        mxn_amount(0)
    );
    let again = new_refund("acme", "compago", "pay-1", 1_000);
    assert!(matches!(
        try_insert(&store, &again, mxn_amount(1_000)).await,
        InsertOutcome::Inserted(_)
    ));
    // And approval: REQUIRES_APPROVAL -> PENDING.
    let mut second = new_refund("acme", "compago", "pay-2", 10);
    second.status = RefundStatus::RequiresApproval;
    record(&store, &second).await;
    let stored = get(&store, &second.id).await;
    let (pending, _) = update(&store, &stored, |r| r.status = RefundStatus::Pending).await;
    assert_eq!(pending.status, RefundStatus::Pending);
}
