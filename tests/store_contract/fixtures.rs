//! Fixtures and small helpers of the contract tests, and the imports every topic file uses
//! (`use crate::fixtures::*;`).

pub(crate) use std::{
    collections::{BTreeMap, HashSet},
    str::FromStr,
    sync::{Arc, Mutex},
    time::Duration,
};

pub(crate) use chrono::{DateTime, SubsecRound as _, TimeDelta, Utc};
pub(crate) use refund_gateway::{
    config::{Config, StoreConfig},
    domain::{
        Actor, ApiError, BankAccount, BankAccountType, Cause, Currency, ErrorCode, FieldViolation,
        Money, PaymentRef, Refund, RefundEvent, RefundFailure, RefundId, RefundReason,
        RefundStatus, Submission, TenantId, reason,
    },
    store::{
        EventScope, InsertOutcome, ListQuery, PostgresStore, RefundStore, RequestClaim, RequestKey,
        RequestResult, SqliteStore, StoreError, UpdateOutcome,
    },
};
pub(crate) use sqlx::{
    Connection as _, PgConnection,
    postgres::{PgConnectOptions, PgListener},
};
pub(crate) use tempfile::TempDir;
pub(crate) use tokio::{sync::Barrier, task::JoinSet};

pub(crate) use crate::{
    backends::{Backend, Store, postgres_config, sqlite_config},
    support::postgres::TestDatabase,
};

/// The cause the contract tests record with every change unless a test says otherwise.
pub(crate) fn cause() -> Cause {
    Cause::new(Actor::caller("0a1b2c3d"), "a change")
}

pub(crate) fn mxn() -> Currency {
    Currency::parse("MXN").unwrap()
}

pub(crate) fn mxn_amount(minor: i64) -> Money {
    Money::new(minor, mxn())
}

/// A fixed instant with nanoseconds, so truncation to microseconds is visible.
pub(crate) fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_760_000_000, 123_456_789).unwrap()
}

pub(crate) fn at(secs: i64) -> DateTime<Utc> {
    t0() + TimeDelta::seconds(secs)
}

/// What the store keeps of a time.
pub(crate) fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// What the store keeps of a refund.
pub(crate) fn as_stored(r: &Refund) -> Refund {
    let mut r = r.clone();
    r.created_at = micros(r.created_at);
    r.updated_at = micros(r.updated_at);
    r.next_check_at = r.next_check_at.map(micros);
    r
}

pub(crate) const BIG_LIMIT: i64 = 1_000_000_000;

pub(crate) fn account() -> BankAccount {
    BankAccount {
        beneficiary: "Carlos Ramirez".into(),
        bank_code: "01".into(),
        branch: "9283".into(),
        account_number: "18293435".into(),
        account_type: BankAccountType::Saving,
    }
}

/// A new PENDING refund with its own request id.
pub(crate) fn new_refund(tenant: &str, provider: &str, payment_id: &str, minor: i64) -> Refund {
    let refund = Refund::new_pending(
        TenantId::new(tenant),
        "",
        provider,
        PaymentRef {
            payment_id: payment_id.into(),
            ..PaymentRef::default()
        },
        mxn_amount(minor),
        t0(),
    );
    Refund {
        request_id: format!("req-{}", refund.id),
        reason: RefundReason::RequestedByCustomer,
        ..refund
    }
}

pub(crate) fn key_of(r: &Refund) -> RequestKey {
    RequestKey {
        tenant: r.tenant.clone(),
        request_id: r.request_id.clone(),
    }
}

pub(crate) fn key(tenant: &str, request_id: &str) -> RequestKey {
    RequestKey {
        tenant: TenantId::new(tenant),
        request_id: request_id.into(),
    }
}

pub(crate) const LEASE: Duration = Duration::from_secs(30);

pub(crate) async fn claim(store: &Store, key: &RequestKey, now: DateTime<Utc>) -> RequestClaim {
    store
        .claim_request(key, "fp-1", now, LEASE)
        .await
        .expect("claim_request")
}

/// Claims the refund's key and inserts it; both must succeed.
pub(crate) async fn record_with_limit(store: &Store, refund: &Refund, limit: Money) -> RefundEvent {
    assert_eq!(
        claim(store, &key_of(refund), t0()).await,
        RequestClaim::Owned
    );
    match store
        .insert_refund(refund, &key_of(refund), limit, &[], &cause())
        .await
        .expect("insert_refund")
    {
        InsertOutcome::Inserted(event) => event,
        other => panic!("expected Inserted, got {other:?}"),
    }
}

pub(crate) async fn record(store: &Store, refund: &Refund) -> RefundEvent {
    let limit = Money::new(BIG_LIMIT, refund.amount.currency);
    record_with_limit(store, refund, limit).await
}

/// Claims the refund's key and tries to insert it.
pub(crate) async fn try_insert(store: &Store, refund: &Refund, limit: Money) -> InsertOutcome {
    assert_eq!(
        claim(store, &key_of(refund), t0()).await,
        RequestClaim::Owned
    );
    store
        .insert_refund(refund, &key_of(refund), limit, &[], &cause())
        .await
        .expect("insert_refund")
}

pub(crate) async fn get(store: &Store, id: &RefundId) -> Refund {
    store
        .get_refund(id)
        .await
        .expect("get_refund")
        .expect("refund exists")
}

/// Applies `change` to a copy of `prev` and stores it; the update must go through.
pub(crate) async fn update(
    store: &Store,
    prev: &Refund,
    change: impl FnOnce(&mut Refund),
) -> (Refund, Option<RefundEvent>) {
    let mut next = prev.clone();
    change(&mut next);
    match store
        .update_refund(prev, &next, &cause())
        .await
        .expect("update_refund")
    {
        UpdateOutcome::Updated { refund, event } => (refund, event),
        UpdateOutcome::Conflict => panic!("unexpected conflict updating {}", prev.id),
    }
}

pub(crate) async fn all_events(store: &Store) -> Vec<RefundEvent> {
    store
        .events_after(&EventScope::All, 0, 100_000)
        .await
        .expect("events_after")
}

pub(crate) fn ids(refunds: &[Refund]) -> Vec<RefundId> {
    refunds.iter().map(|r| r.id.clone()).collect()
}

pub(crate) fn list_query(tenant: &str) -> ListQuery {
    ListQuery {
        tenant: TenantId::new(tenant),
        provider: None,
        status: None,
        payment_id: None,
        before: None,
        limit: 100,
    }
}

pub(crate) async fn list(store: &Store, query: ListQuery) -> Vec<RefundId> {
    ids(&store.list_refunds(&query).await.expect("list_refunds"))
}
