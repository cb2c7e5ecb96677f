//! The store contract: what every `RefundStore` backend must do, written once as generic async
//! functions over `Arc<dyn RefundStore>` (or over a [`Backend`] when the test has to close and
//! reopen the database), then instantiated per backend by `contract_suite!`.
//!
//! Adding a backend means one constructor like [`sqlite`] and one more `contract_suite!`
//! line. Tests that look inside the SQLite file live in `mod sqlite_only`; tests of what only
//! PostgreSQL promises (several replicas on one database, a server that goes away) in
//! `mod postgres_only`.
//!
//! Every test runs on its own fresh database, so counts and sequences are exact. All use the
//! multi-thread runtime: the races need real parallelism, and one flavor keeps it simple.
//!
//! The PostgreSQL tests run by default against `DATABASE_URL`, or
//! `postgres://postgres@127.0.0.1:5432/test` when it is unset: each creates its own database
//! `refund_gateway_test_<uuid>` there and drops it afterwards. A server that cannot be
//! reached fails them, with a message saying how to start one; they never pass silently.

mod support;

use std::{
    collections::{BTreeMap, HashSet},
    str::FromStr,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, SubsecRound as _, TimeDelta, Utc};
use futures::{FutureExt as _, future::BoxFuture};
use refund_gateway::{
    config::{Config, StoreConfig},
    domain::{
        ApiError, BankAccount, BankAccountType, Currency, ErrorCode, FieldViolation, Money,
        PaymentRef, Refund, RefundEvent, RefundFailure, RefundId, RefundReason, RefundStatus,
        Submission, TenantId, reason,
    },
    store::{
        EventScope, InsertOutcome, ListQuery, PostgresStore, RefundStore, RequestClaim, RequestKey,
        RequestResult, SqliteStore, StoreError, UpdateOutcome,
    },
};
use sqlx::{
    Connection as _, PgConnection,
    postgres::{PgConnectOptions, PgListener},
};
use support::postgres::TestDatabase;
use tempfile::TempDir;
use tokio::{sync::Barrier, task::JoinSet};

type Store = Arc<dyn RefundStore>;

// ---------------------------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------------------------

/// One database under test that can be opened, closed (as a process exit would) and opened
/// again.
struct Backend {
    open: Box<dyn Fn() -> BoxFuture<'static, Store> + Send + Sync>,
    close: Box<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>,
    /// What keeps the database alive until the test ends (a temporary directory, a
    /// database dropped when this is dropped).
    _database: Box<dyn Send + Sync>,
}

impl Backend {
    async fn open(&self) -> Store {
        (self.open)().await
    }

    /// Closes every store `open` returned so far.
    async fn close(&self) {
        (self.close)().await
    }
}

fn sqlite_config(dir: &TempDir) -> StoreConfig {
    StoreConfig {
        url: format!("sqlite://{}", dir.path().join("store.db").display()),
        max_connections: 4,
        busy_timeout_ms: 5_000,
        ..StoreConfig::default()
    }
}

/// A fresh SQLite file in a temporary directory.
async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = sqlite_config(&dir);
    let opened: Arc<Mutex<Vec<SqliteStore>>> = Arc::default();
    let open = {
        let opened = opened.clone();
        move || {
            let (cfg, opened) = (cfg.clone(), opened.clone());
            async move {
                let store = SqliteStore::connect(&cfg).await.expect("open sqlite store");
                opened.lock().unwrap().push(store.clone());
                Arc::new(store) as Store
            }
            .boxed()
        }
    };
    let close = move || {
        let stores = std::mem::take(&mut *opened.lock().unwrap());
        async move {
            for store in stores {
                store.close().await;
            }
        }
        .boxed()
    };
    Backend {
        open: Box::new(open),
        close: Box::new(close),
        _database: Box::new(dir),
    }
}

/// A fresh PostgreSQL database of its own, dropped when the test ends.
async fn postgres() -> Backend {
    let database = TestDatabase::create().await;
    let cfg = postgres_config(&database.url);
    let opened: Arc<Mutex<Vec<PostgresStore>>> = Arc::default();
    let open = {
        let opened = opened.clone();
        move || {
            let (cfg, opened) = (cfg.clone(), opened.clone());
            async move {
                let store = PostgresStore::connect(&cfg)
                    .await
                    .expect("open postgres store");
                opened.lock().unwrap().push(store.clone());
                Arc::new(store) as Store
            }
            .boxed()
        }
    };
    let close = move || {
        let stores = std::mem::take(&mut *opened.lock().unwrap());
        async move {
            for store in stores {
                store.close().await;
            }
        }
        .boxed()
    };
    Backend {
        open: Box::new(open),
        close: Box::new(close),
        _database: Box::new(database),
    }
}

fn postgres_config(url: &str) -> StoreConfig {
    StoreConfig {
        url: url.to_owned(),
        max_connections: 8,
        ..StoreConfig::default()
    }
}

/// Instantiates every contract test for one backend, as `<backend>::<test>`:
/// `contract_suite!(name)` for a constructor `async fn name() -> Backend`.
macro_rules! contract_suite {
    ($backend:ident) => {
        contract_suite!($backend;
            stores: [
                insert_then_get_returns_every_field,
                creation_event_has_the_masked_snapshot_and_no_previous_status,
                stale_version_conflicts_and_writes_nothing,
                events_are_written_only_for_visible_changes,
                forbidden_status_changes_are_refused,
                events_after_filters_by_scope_in_sequence_order,
                latest_event_is_the_current_state,
                guard_allows_up_to_the_payment_and_refuses_beyond,
                failed_and_canceled_refunds_release_their_amount,
                guard_never_adds_mixed_currencies,
                concurrent_inserts_never_exceed_the_payment,
                claim_request_answers_every_state,
                expired_claim_with_nothing_recorded_is_taken_over,
                expired_claim_with_a_refund_is_done,
                release_forgets_only_unrecorded_claims,
                concurrent_claims_of_one_key_have_one_owner,
                a_linked_refund_is_replaced_by_an_error_only_once_failed,
                a_canceled_refund_is_replaced_by_its_error,
                a_refusal_and_its_error_are_one_transaction,
                insert_requires_an_open_claim_on_its_key,
                list_applies_each_filter_within_the_tenant,
                list_pages_by_keyset_without_gaps_or_duplicates,
                claim_due_leases_due_refunds,
                find_by_provider_refund_id_is_scoped_to_the_account,
                held_amount_adds_up_holding_refunds_of_one_payment,
                refunds_of_payment_lists_one_payment_at_one_account,
                count_by_status_counts_every_refund,
                ping_answers,
            ];
            reopens: [
                secret_is_created_once_and_survives_reopen,
                reopen_keeps_everything_and_sequences_continue,
            ]
        );
    };
    ($backend:ident; stores: [$($store_test:ident),* $(,)?]; reopens: [$($reopen_test:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $store_test() {
                    let backend = super::$backend().await;
                    super::$store_test(backend.open().await).await;
                    backend.close().await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $reopen_test() {
                    let backend = super::$backend().await;
                    super::$reopen_test(&backend).await;
                    backend.close().await;
                }
            )*
        }
    };
}

contract_suite!(sqlite);
contract_suite!(postgres);

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

fn mxn() -> Currency {
    Currency::parse("MXN").unwrap()
}

fn mxn_amount(minor: i64) -> Money {
    Money::new(minor, mxn())
}

/// A fixed instant with nanoseconds, so truncation to microseconds is visible.
fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_760_000_000, 123_456_789).unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + TimeDelta::seconds(secs)
}

/// What the store keeps of a time.
fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// What the store keeps of a refund.
fn as_stored(r: &Refund) -> Refund {
    let mut r = r.clone();
    r.created_at = micros(r.created_at);
    r.updated_at = micros(r.updated_at);
    r.next_check_at = r.next_check_at.map(micros);
    r
}

const BIG_LIMIT: i64 = 1_000_000_000;

fn account() -> BankAccount {
    BankAccount {
        beneficiary: "Carlos Ramirez".into(),
        bank_code: "01".into(),
        branch: "9283".into(),
        account_number: "18293435".into(),
        account_type: BankAccountType::Saving,
    }
}

/// A new PENDING refund with its own request id.
fn new_refund(tenant: &str, provider: &str, payment_id: &str, minor: i64) -> Refund {
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

fn key_of(r: &Refund) -> RequestKey {
    RequestKey {
        tenant: r.tenant.clone(),
        request_id: r.request_id.clone(),
    }
}

fn key(tenant: &str, request_id: &str) -> RequestKey {
    RequestKey {
        tenant: TenantId::new(tenant),
        request_id: request_id.into(),
    }
}

const LEASE: Duration = Duration::from_secs(30);

async fn claim(store: &Store, key: &RequestKey, now: DateTime<Utc>) -> RequestClaim {
    store
        .claim_request(key, "fp-1", now, LEASE)
        .await
        .expect("claim_request")
}

/// Claims the refund's key and inserts it; both must succeed.
async fn record_with_limit(store: &Store, refund: &Refund, limit: Money) -> RefundEvent {
    assert_eq!(
        claim(store, &key_of(refund), t0()).await,
        RequestClaim::Owned
    );
    match store
        .insert_refund(refund, &key_of(refund), limit)
        .await
        .expect("insert_refund")
    {
        InsertOutcome::Inserted(event) => event,
        other => panic!("expected Inserted, got {other:?}"),
    }
}

async fn record(store: &Store, refund: &Refund) -> RefundEvent {
    let limit = Money::new(BIG_LIMIT, refund.amount.currency);
    record_with_limit(store, refund, limit).await
}

/// Claims the refund's key and tries to insert it.
async fn try_insert(store: &Store, refund: &Refund, limit: Money) -> InsertOutcome {
    assert_eq!(
        claim(store, &key_of(refund), t0()).await,
        RequestClaim::Owned
    );
    store
        .insert_refund(refund, &key_of(refund), limit)
        .await
        .expect("insert_refund")
}

async fn get(store: &Store, id: &RefundId) -> Refund {
    store
        .get_refund(id)
        .await
        .expect("get_refund")
        .expect("refund exists")
}

/// Applies `change` to a copy of `prev` and stores it; the update must go through.
async fn update(
    store: &Store,
    prev: &Refund,
    change: impl FnOnce(&mut Refund),
) -> (Refund, Option<RefundEvent>) {
    let mut next = prev.clone();
    change(&mut next);
    match store
        .update_refund(prev, &next)
        .await
        .expect("update_refund")
    {
        UpdateOutcome::Updated { refund, event } => (refund, event),
        UpdateOutcome::Conflict => panic!("unexpected conflict updating {}", prev.id),
    }
}

async fn all_events(store: &Store) -> Vec<RefundEvent> {
    store
        .events_after(&EventScope::All, 0, 100_000)
        .await
        .expect("events_after")
}

fn ids(refunds: &[Refund]) -> Vec<RefundId> {
    refunds.iter().map(|r| r.id.clone()).collect()
}

fn list_query(tenant: &str) -> ListQuery {
    ListQuery {
        tenant: TenantId::new(tenant),
        provider: None,
        status: None,
        payment_id: None,
        before: None,
        limit: 100,
    }
}

async fn list(store: &Store, query: ListQuery) -> Vec<RefundId> {
    ids(&store.list_refunds(&query).await.expect("list_refunds"))
}

// ---------------------------------------------------------------------------------------------
// Refunds and events
// ---------------------------------------------------------------------------------------------

/// Every field of a refund comes back as written (times cut to microseconds): payment
/// reference parts, a non-MXN currency, provider ids, metadata with non-ASCII text, the full
/// bank account number (needed to submit), the failure, times, version, submission and the
/// worker's bookkeeping. An unknown id is `None`.
async fn insert_then_get_returns_every_field(store: Store) {
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
async fn creation_event_has_the_masked_snapshot_and_no_previous_status(store: Store) {
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
async fn stale_version_conflicts_and_writes_nothing(store: Store) {
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
        store.update_refund(&v1, &stale_next).await.unwrap(),
        UpdateOutcome::Conflict
    );

    assert_eq!(get(&store, &r.id).await, v2);
    assert_eq!(all_events(&store).await.len(), 2);
}

/// An event is written exactly when a visible field changes (status, provider refund id,
/// provider status, failure), with `previous_status` = the status before and the stored
/// refund's public view; bookkeeping-only changes (next check, attempts, submission) are
/// stored, bump the version, and write no event.
async fn events_are_written_only_for_visible_changes(store: Store) {
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
async fn forbidden_status_changes_are_refused(store: Store) {
    let r = new_refund("acme", "compago", "pay-1", 5_000);
    record(&store, &r).await;
    let v1 = get(&store, &r.id).await;
    let (failed, _) = update(&store, &v1, |n| n.status = RefundStatus::Failed).await;

    let mut revived = failed.clone();
    revived.status = RefundStatus::Succeeded;
    assert!(store.update_refund(&failed, &revived).await.is_err());

    assert_eq!(get(&store, &r.id).await, failed);
    assert_eq!(all_events(&store).await.len(), 2);
}

/// `events_after` returns the events of its scope (one tenant, one refund, or all) with a
/// sequence above `after`, in increasing sequence order, at most `limit` of them.
async fn events_after_filters_by_scope_in_sequence_order(store: Store) {
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
async fn latest_event_is_the_current_state(store: Store) {
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

// ---------------------------------------------------------------------------------------------
// The over-refund guard
// ---------------------------------------------------------------------------------------------

/// Refunds of one payment may add up to exactly its amount; one more minor unit is refused
/// with what is already held, and a refusal writes nothing (no refund, no event, the key not
/// linked). Other payments, and the same payment id at another provider account, are counted
/// apart.
async fn guard_allows_up_to_the_payment_and_refuses_beyond(store: Store) {
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
async fn failed_and_canceled_refunds_release_their_amount(store: Store) {
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
async fn guard_never_adds_mixed_currencies(store: Store) {
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
async fn concurrent_inserts_never_exceed_the_payment(store: Store) {
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
            let outcome = store.insert_refund(&r, &key_of(&r), limit).await.unwrap();
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

// ---------------------------------------------------------------------------------------------
// Idempotency keys
// ---------------------------------------------------------------------------------------------

/// A new key is `Owned`; the same key and parameters while the owner works are `InFlight`;
/// other parameters are `Mismatch` (also once completed); a completed key replays its refund,
/// or exactly the stored error (code, reason, message, metadata, violations, retry).
async fn claim_request_answers_every_state(store: Store) {
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
async fn expired_claim_with_nothing_recorded_is_taken_over(store: Store) {
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
async fn expired_claim_with_a_refund_is_done(store: Store) {
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
async fn release_forgets_only_unrecorded_claims(store: Store) {
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
async fn concurrent_claims_of_one_key_have_one_owner(store: Store) {
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
async fn a_linked_refund_is_replaced_by_an_error_only_once_failed(store: Store) {
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
async fn a_refusal_and_its_error_are_one_transaction(store: Store) {
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
                &RequestResult::Error(error.clone())
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
async fn a_canceled_refund_is_replaced_by_its_error(store: Store) {
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
async fn insert_requires_an_open_claim_on_its_key(store: Store) {
    let limit = mxn_amount(BIG_LIMIT);
    let unclaimed = new_refund("acme", "compago", "pay-1", 100);
    assert!(
        store
            .insert_refund(&unclaimed, &key_of(&unclaimed), limit)
            .await
            .is_err()
    );
    assert_eq!(store.get_refund(&unclaimed.id).await.unwrap(), None);

    let other_key = key("acme", "req-other");
    assert_eq!(claim(&store, &other_key, t0()).await, RequestClaim::Owned);
    assert!(
        store
            .insert_refund(&unclaimed, &other_key, limit)
            .await
            .is_err()
    );

    let first = new_refund("acme", "compago", "pay-1", 100);
    record(&store, &first).await;
    let mut second = new_refund("acme", "compago", "pay-1", 100);
    second.request_id = first.request_id.clone();
    assert!(
        store
            .insert_refund(&second, &key_of(&first), limit)
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

// ---------------------------------------------------------------------------------------------
// Listing, lookups, the worker's queue
// ---------------------------------------------------------------------------------------------

/// Listing is per tenant, newest first, and each filter (provider, status, payment id, and
/// combinations) keeps exactly the matching refunds; `limit` cuts the list.
async fn list_applies_each_filter_within_the_tenant(store: Store) {
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
async fn list_pages_by_keyset_without_gaps_or_duplicates(store: Store) {
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
async fn claim_due_leases_due_refunds(store: Store) {
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
        store.update_refund(&before_claim, &stale).await.unwrap(),
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
async fn find_by_provider_refund_id_is_scoped_to_the_account(store: Store) {
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
async fn held_amount_adds_up_holding_refunds_of_one_payment(store: Store) {
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
async fn refunds_of_payment_lists_one_payment_at_one_account(store: Store) {
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
async fn count_by_status_counts_every_refund(store: Store) {
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
async fn ping_answers(store: Store) {
    store.ping().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Across restarts
// ---------------------------------------------------------------------------------------------

/// A named secret is 32 random bytes made on first use, the same on every later call and
/// after the store is closed and reopened; different names get different secrets.
async fn secret_is_created_once_and_survives_reopen(backend: &Backend) {
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
async fn reopen_keeps_everything_and_sequences_continue(backend: &Backend) {
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

// ---------------------------------------------------------------------------------------------
// SQLite only: what the file itself must look like
// ---------------------------------------------------------------------------------------------

mod sqlite_only {
    use sqlx::{Connection as _, SqliteConnection, sqlite::SqliteConnectOptions};

    use super::*;

    /// A second, raw connection to the store's file, as an operator's sqlite3 shell would be.
    async fn raw(cfg: &StoreConfig) -> SqliteConnection {
        let options = SqliteConnectOptions::from_str(&cfg.url)
            .unwrap()
            .busy_timeout(Duration::from_secs(5));
        SqliteConnection::connect_with(&options).await.unwrap()
    }

    /// The file is in WAL mode (set by the store; the raw connection does not ask for it).
    #[tokio::test]
    async fn file_is_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = sqlite_config(&dir);
        let store = SqliteStore::connect(&cfg).await.unwrap();
        let mut conn = raw(&cfg).await;
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        store.close().await;
    }

    /// Deleting the newest events (by hand, say) never makes their sequences available again:
    /// `last_sequence` does not go back, and the next event gets a larger sequence, also after
    /// a restart.
    #[tokio::test]
    async fn sequences_are_never_reused_after_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = sqlite_config(&dir);
        let store: Store = Arc::new(SqliteStore::connect(&cfg).await.unwrap());
        record(&store, &new_refund("acme", "compago", "pay-1", 100)).await;
        let second = record(&store, &new_refund("acme", "compago", "pay-2", 100)).await;

        let mut conn = raw(&cfg).await;
        sqlx::query("DELETE FROM refund_events WHERE sequence = ?")
            .bind(i64::try_from(second.sequence).unwrap())
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(store.last_sequence().await.unwrap(), second.sequence);
        let third = record(&store, &new_refund("acme", "compago", "pay-3", 100)).await;
        assert_eq!(third.sequence, second.sequence + 1);

        sqlx::query("DELETE FROM refund_events WHERE sequence = ?")
            .bind(i64::try_from(third.sequence).unwrap())
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        drop(store);
        let reopened = SqliteStore::connect(&cfg).await.unwrap();
        let store: Store = Arc::new(reopened.clone());
        assert_eq!(store.last_sequence().await.unwrap(), third.sequence);
        let fourth = record(&store, &new_refund("acme", "compago", "pay-4", 100)).await;
        assert_eq!(fourth.sequence, third.sequence + 1);
        reopened.close().await;
    }

    /// A SQLite file has one gateway process: a second store on the same file is refused
    /// with a message that says why, until the first one is gone.
    #[tokio::test]
    async fn a_second_user_of_the_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StoreConfig {
            busy_timeout_ms: 100,
            ..sqlite_config(&dir)
        };
        let first = SqliteStore::connect(&cfg).await.unwrap();
        let err = SqliteStore::connect(&cfg).await.unwrap_err().to_string();
        assert!(
            err.contains("in use by another refund-gateway process") && err.contains("PostgreSQL"),
            "{err}"
        );
        first.close().await;
        drop(first);
        let again = SqliteStore::connect(&cfg).await.unwrap();
        again.close().await;
    }

    /// Checks the previous run of the process had claimed (leases far in the future) are due
    /// at once when the file is opened again, since nobody will finish them; checks that were
    /// only scheduled for later stay where they were.
    #[tokio::test]
    async fn a_previous_runs_leases_are_due_at_once_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = sqlite_config(&dir);
        let hour = Duration::from_secs(3600);
        let now = Utc::now();
        let sqlite = SqliteStore::connect(&cfg).await.unwrap();
        let store: Store = Arc::new(sqlite.clone());
        let mut claimed = new_refund("acme", "compago", "pay-1", 100);
        claimed.next_check_at = Some(now - TimeDelta::seconds(1));
        let mut scheduled = new_refund("acme", "compago", "pay-2", 100);
        scheduled.next_check_at = Some(now + TimeDelta::seconds(600));
        record(&store, &claimed).await;
        record(&store, &scheduled).await;
        let leased = store.claim_due(now, 10, hour).await.unwrap();
        assert_eq!(ids(&leased), [claimed.id.clone()]);
        assert!(
            store
                .claim_due(Utc::now(), 10, hour)
                .await
                .unwrap()
                .is_empty()
        );
        sqlite.close().await;
        drop((store, sqlite));

        let reopened = SqliteStore::connect(&cfg).await.unwrap();
        let store: Store = Arc::new(reopened.clone());
        let due = store.claim_due(Utc::now(), 10, hour).await.unwrap();
        assert_eq!(ids(&due), [claimed.id.clone()]);
        assert_eq!(due[0].version, leased[0].version + 2);
        let kept = get(&store, &scheduled.id).await;
        assert_eq!(
            kept.next_check_at,
            Some(micros(now + TimeDelta::seconds(600)))
        );
        reopened.close().await;
    }

    /// While another process holds the write lock longer than busy_timeout, writes fail with
    /// `Unavailable` (gRPC UNAVAILABLE), reads still work (WAL), and the store recovers by
    /// itself once the lock is gone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_locked_database_is_unavailable_then_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StoreConfig {
            busy_timeout_ms: 200,
            ..sqlite_config(&dir)
        };
        let sqlite = SqliteStore::connect(&cfg).await.unwrap();
        let store: Store = Arc::new(sqlite.clone());
        let k = key("acme", "req-1");

        let mut conn = raw(&cfg).await;
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut conn)
            .await
            .unwrap();
        let err = store
            .claim_request(&k, "fp-1", t0(), LEASE)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        store.ping().await.unwrap();
        sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();

        assert_eq!(claim(&store, &k, t0()).await, RequestClaim::Owned);
        sqlite.close().await;
    }

    /// A row that does not decode into the domain (wrong JSON shape, unknown currency) is
    /// `Corrupt`, not a panic and not a silently wrong value.
    #[tokio::test]
    async fn undecodable_rows_are_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = sqlite_config(&dir);
        let sqlite = SqliteStore::connect(&cfg).await.unwrap();
        let store: Store = Arc::new(sqlite.clone());
        let r = new_refund("acme", "compago", "pay-1", 100);
        record(&store, &r).await;

        let mut conn = raw(&cfg).await;
        sqlx::query("UPDATE refunds SET metadata = '{\"n\": 1}' WHERE id = ?")
            .bind(r.id.as_str())
            .execute(&mut conn)
            .await
            .unwrap();
        let err = store.get_refund(&r.id).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt(ref m) if m.contains("metadata")),
            "{err:?}"
        );

        sqlx::query("UPDATE refunds SET metadata = '{}', currency = 'ZZZ' WHERE id = ?")
            .bind(r.id.as_str())
            .execute(&mut conn)
            .await
            .unwrap();
        let err = store.get_refund(&r.id).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt(ref m) if m.contains("currency")),
            "{err:?}"
        );
        conn.close().await.unwrap();
        sqlite.close().await;
    }

    /// The schema refuses a refund of zero or less at the database level too (it would lower
    /// the sum the guard adds up), and the store refuses it before writing.
    #[tokio::test]
    async fn non_positive_amounts_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = sqlite_config(&dir);
        let sqlite = SqliteStore::connect(&cfg).await.unwrap();
        let store: Store = Arc::new(sqlite.clone());
        for minor in [0, -500] {
            let r = new_refund("acme", "compago", "pay-1", minor);
            assert_eq!(claim(&store, &key_of(&r), t0()).await, RequestClaim::Owned);
            assert!(
                store
                    .insert_refund(&r, &key_of(&r), mxn_amount(10_000))
                    .await
                    .is_err()
            );
        }
        let ok = new_refund("acme", "compago", "pay-1", 100);
        record(&store, &ok).await;
        let mut conn = raw(&cfg).await;
        let refused = sqlx::query("UPDATE refunds SET amount_minor = -1 WHERE id = ?")
            .bind(ok.id.as_str())
            .execute(&mut conn)
            .await;
        assert!(refused.is_err());
        conn.close().await.unwrap();
        sqlite.close().await;
    }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL only: several replicas on one database, and a server that goes away
// ---------------------------------------------------------------------------------------------

mod postgres_only {
    use std::net::SocketAddr;

    use tokio::{
        net::{TcpListener, TcpStream},
        task::AbortHandle,
    };

    use super::*;

    /// A fresh database and `n` stores on it, each with its own pool, as `n` gateway
    /// replicas would have.
    async fn replicas(n: usize) -> (TestDatabase, Vec<PostgresStore>) {
        let database = TestDatabase::create().await;
        let mut stores = Vec::new();
        for _ in 0..n {
            stores.push(
                PostgresStore::connect(&postgres_config(&database.url))
                    .await
                    .expect("open postgres store"),
            );
        }
        (database, stores)
    }

    fn dyn_stores(stores: &[PostgresStore]) -> Vec<Store> {
        stores
            .iter()
            .map(|s| Arc::new(s.clone()) as Store)
            .collect()
    }

    async fn close_all(stores: &[PostgresStore]) {
        for store in stores {
            store.close().await;
        }
    }

    /// A raw connection to the test database, as an operator's psql would be.
    async fn raw(database: &TestDatabase) -> PgConnection {
        PgConnection::connect(&database.url).await.unwrap()
    }

    /// 40 requests race through two replicas (separate pools) for a payment of 100.00 with
    /// 3.00 each: exactly the 33 that fit are stored and they add up to 99.00, as both
    /// replicas see it. A guard that only serializes inside one process lets more through.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn inserts_racing_across_replicas_never_exceed_the_payment() {
        let (_database, replicas) = replicas(2).await;
        race_for_the_last_of_a_payment(&replicas).await;
        close_all(&replicas).await;
    }

    /// The same race on a database whose default isolation is REPEATABLE READ: every racer
    /// still gets an answer and the guard holds. The store asks for READ COMMITTED itself;
    /// under the server's default the racers would fail with serialization errors, and a
    /// snapshot taken before waiting for the payment's lock would not see the refund its
    /// previous holder committed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_guard_does_not_depend_on_the_servers_default_isolation() {
        let database = TestDatabase::create().await;
        let mut conn = raw(&database).await;
        sqlx::query(&format!(
            "ALTER DATABASE {} SET default_transaction_isolation = 'repeatable read'",
            database.name
        ))
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
        let mut replicas = Vec::new();
        for _ in 0..2 {
            let store = PostgresStore::connect(&postgres_config(&database.url))
                .await
                .unwrap();
            replicas.push(store);
        }
        race_for_the_last_of_a_payment(&replicas).await;
        close_all(&replicas).await;
    }

    async fn race_for_the_last_of_a_payment(replicas: &[PostgresStore]) {
        const TASKS: usize = 40;
        let stores = dyn_stores(replicas);
        let limit = mxn_amount(10_000);
        let barrier = Arc::new(Barrier::new(TASKS));
        let mut tasks = JoinSet::new();
        for i in 0..TASKS {
            let (store, barrier) = (stores[i % 2].clone(), barrier.clone());
            tasks.spawn(async move {
                let r = new_refund("acme", "compago", "pay-race", 300);
                assert_eq!(claim(&store, &key_of(&r), t0()).await, RequestClaim::Owned);
                barrier.wait().await;
                store.insert_refund(&r, &key_of(&r), limit).await.unwrap()
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
        assert_eq!(inserted, 33);
        for store in &stores {
            assert_eq!(
                store
                    .held_amount("compago", "pay-race", mxn())
                    .await
                    .unwrap(),
                mxn_amount(9_900)
            );
        }
    }

    /// 20 new keys, each claimed by 16 callers at once spread over two replicas: every key
    /// has exactly one owner, everyone else sees it in flight. Then the owners' leases run
    /// out with nothing recorded and 16 callers race to take each key over: again exactly
    /// one wins per key.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn claims_racing_across_replicas_have_one_owner() {
        let (_database, replicas) = replicas(2).await;
        let stores = dyn_stores(&replicas);
        assert_eq!(race_for_keys(&stores, t0()).await, [1; KEYS]);
        assert_eq!(race_for_keys(&stores, at(31)).await, [1; KEYS]);
        close_all(&replicas).await;
    }

    const KEYS: usize = 20;

    /// How many owners each of `KEYS` keys got when 16 callers on alternating replicas claim
    /// it at once at `now`; every other answer must be `InFlight`.
    async fn race_for_keys(stores: &[Store], now: DateTime<Utc>) -> [usize; KEYS] {
        const CALLERS: usize = 16;
        let barrier = Arc::new(Barrier::new(KEYS * CALLERS));
        let mut tasks = JoinSet::new();
        for k in 0..KEYS {
            for c in 0..CALLERS {
                let (store, barrier) = (stores[c % 2].clone(), barrier.clone());
                tasks.spawn(async move {
                    barrier.wait().await;
                    (
                        k,
                        claim(&store, &key("acme", &format!("req-{k}")), now).await,
                    )
                });
            }
        }
        let mut owners = [0; KEYS];
        while let Some(joined) = tasks.join_next().await {
            match joined.unwrap() {
                (k, RequestClaim::Owned) => owners[k] += 1,
                (_, RequestClaim::InFlight) => {}
                (_, other) => panic!("unexpected {other:?}"),
            }
        }
        owners
    }

    /// Eight workers on two replicas drain 120 due refunds five at a time: every refund is
    /// handed out exactly once. Then one replica dies holding its leases; the other takes
    /// nothing before the leases run out and everything after.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn claim_due_hands_each_refund_to_one_replica_until_its_lease_runs_out() {
        const REFUNDS: i64 = 120;
        let (_database, replicas) = replicas(2).await;
        let stores = dyn_stores(&replicas);
        let mut due = HashSet::new();
        for i in 0..REFUNDS {
            let mut r = new_refund("acme", "compago", &format!("pay-{i}"), 100);
            r.next_check_at = Some(at(-i));
            record(&stores[0], &r).await;
            due.insert(r.id);
        }

        let barrier = Arc::new(Barrier::new(8));
        let mut workers = JoinSet::new();
        for w in 0..8 {
            let (store, barrier) = (stores[w % 2].clone(), barrier.clone());
            workers.spawn(async move {
                barrier.wait().await;
                let mut mine = Vec::new();
                loop {
                    let batch = store.claim_due(at(0), 5, LEASE).await.unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch.into_iter().map(|r| r.id));
                }
            });
        }
        let mut claimed = Vec::new();
        while let Some(joined) = workers.join_next().await {
            claimed.extend(joined.unwrap());
        }
        let unique: HashSet<RefundId> = claimed.iter().cloned().collect();
        assert_eq!(unique.len(), claimed.len(), "a refund went to two workers");
        assert_eq!(unique, due);

        replicas[0].close().await;
        let survivor = &stores[1];
        assert!(
            survivor
                .claim_due(at(29), 500, LEASE)
                .await
                .unwrap()
                .is_empty()
        );
        let taken_over: HashSet<RefundId> =
            ids(&survivor.claim_due(at(30), 500, LEASE).await.unwrap())
                .into_iter()
                .collect();
        assert_eq!(taken_over, due);
        close_all(&replicas).await;
    }

    /// Sixteen writers on two replicas insert and update refunds while a reader polls
    /// `last_sequence` and `events_after` (as the event sequencer and `WatchRefunds` resumers
    /// do). Every batch the reader gets continues exactly where the previous one ended
    /// (no hole that could fill later, nothing out of order), everything up to the
    /// `last_sequence` it read just before is already readable, and at the end the sequences
    /// are exactly 1..=N with the reader having seen them all.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn events_written_on_two_replicas_become_visible_in_order_without_holes() {
        const WRITERS: usize = 16;
        const REFUNDS_EACH: usize = 10;
        let (_database, replicas) = replicas(3).await;
        let stores = dyn_stores(&replicas);
        let reader_store = stores[2].clone();
        let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));

        let reader = {
            let writing = writing.clone();
            tokio::spawn(async move {
                let mut seen = 0_u64;
                let mut polls = 0_u32;
                loop {
                    let done = !writing.load(std::sync::atomic::Ordering::Acquire);
                    let last = reader_store.last_sequence().await.unwrap();
                    loop {
                        let batch = reader_store
                            .events_after(&EventScope::All, seen, 50)
                            .await
                            .unwrap();
                        for event in &batch {
                            assert_eq!(
                                event.sequence,
                                seen + 1,
                                "after {seen} the reader got {}",
                                event.sequence
                            );
                            seen = event.sequence;
                        }
                        if batch.len() < 50 {
                            break;
                        }
                    }
                    assert!(
                        seen >= last,
                        "last_sequence said {last} but only {seen} was readable"
                    );
                    polls += 1;
                    if done {
                        return (seen, polls);
                    }
                }
            })
        };

        let barrier = Arc::new(Barrier::new(WRITERS));
        let mut writers = JoinSet::new();
        for w in 0..WRITERS {
            let (store, barrier) = (stores[w % 2].clone(), barrier.clone());
            writers.spawn(async move {
                barrier.wait().await;
                for i in 0..REFUNDS_EACH {
                    let r = new_refund("acme", "compago", &format!("pay-{w}-{i}"), 100);
                    record(&store, &r).await;
                    update(&store, &get(&store, &r.id).await, |n| {
                        n.status = RefundStatus::Processing;
                    })
                    .await;
                }
            });
        }
        while let Some(joined) = writers.join_next().await {
            joined.unwrap();
        }
        writing.store(false, std::sync::atomic::Ordering::Release);
        let (seen, polls) = reader.await.unwrap();

        let total = u64::try_from(WRITERS * REFUNDS_EACH * 2).unwrap();
        assert_eq!(seen, total);
        assert!(polls > 1, "the reader must have read while writers ran");
        let sequences: Vec<u64> = all_events(&stores[0])
            .await
            .iter()
            .map(|e| e.sequence)
            .collect();
        assert_eq!(sequences, (1..=total).collect::<Vec<_>>());
        assert_eq!(stores[1].last_sequence().await.unwrap(), total);
        close_all(&replicas).await;
    }

    /// Every committed event is announced on channel `refund_events` with its sequence as
    /// the payload, so other replicas can be woken; a refused insert announces nothing and
    /// uses up no sequence.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn committed_events_are_announced_with_their_sequence() {
        let (database, replicas) = replicas(1).await;
        let store = dyn_stores(&replicas).remove(0);
        let mut listener = PgListener::connect(&database.url).await.unwrap();
        listener.listen("refund_events").await.unwrap();

        let limit = mxn_amount(1_000);
        let first = record_with_limit(
            &store,
            &new_refund("acme", "compago", "pay-1", 1_000),
            limit,
        )
        .await;
        assert_eq!(
            next_notification(&mut listener).await,
            first.sequence.to_string()
        );
        let over = new_refund("acme", "compago", "pay-1", 1);
        assert!(matches!(
            try_insert(&store, &over, limit).await,
            InsertOutcome::ExceedsPayment { .. }
        ));
        let (_, second) = update(&store, &get(&store, &first.refund.id).await, |n| {
            n.status = RefundStatus::Processing;
        })
        .await;
        let second = second.unwrap();
        assert_eq!(second.sequence, first.sequence + 1);
        assert_eq!(
            next_notification(&mut listener).await,
            second.sequence.to_string()
        );
        close_all(&replicas).await;
    }

    /// `open_store` picks the PostgreSQL store for `postgres://` and `postgresql://` URLs,
    /// with the pool settings from `[store]`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn open_store_chooses_postgres_by_the_url_scheme() {
        let database = TestDatabase::create().await;
        let alias = database.url.replacen("postgres://", "postgresql://", 1);
        for url in [database.url.clone(), alias] {
            assert!(url.starts_with("postgres"));
            let config = Config::from_toml(&format!(
                "[store]\nurl = {url:?}\nmax_connections = 2\nstatement_timeout_ms = 3000"
            ))
            .unwrap();
            let store = refund_gateway::app::open_store(&config).await.unwrap();
            store.ping().await.unwrap();
            record(&store, &new_refund("acme", "compago", "pay-1", 100)).await;
        }
    }

    /// A server that does not answer (nothing listens on the port) makes `connect` fail with
    /// `Unavailable` within the connect timeout: no panic, no hang.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_server_is_unavailable() {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let cfg = StoreConfig {
            connect_timeout_ms: 300,
            ..postgres_config(&format!("postgres://postgres@127.0.0.1:{port}/test"))
        };
        let started = std::time::Instant::now();
        let err = PostgresStore::connect(&cfg).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    /// A TCP relay in front of the test server that can be cut (every connection dropped,
    /// nothing listening) and restored on the same port, as a database restart looks to the
    /// gateway.
    struct Relay {
        addr: SocketAddr,
        target: (String, u16),
        tasks: Arc<Mutex<Vec<AbortHandle>>>,
    }

    impl Relay {
        async fn start(target: (String, u16)) -> Relay {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let relay = Relay {
                addr: listener.local_addr().unwrap(),
                target,
                tasks: Arc::default(),
            };
            relay.serve(listener);
            relay
        }

        fn serve(&self, listener: TcpListener) {
            let (target, tasks) = (self.target.clone(), self.tasks.clone());
            let accept = tokio::spawn({
                let tasks = tasks.clone();
                async move {
                    while let Ok((mut inbound, _)) = listener.accept().await {
                        let target = target.clone();
                        let pipe = tokio::spawn(async move {
                            if let Ok(mut outbound) = TcpStream::connect(target).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound)
                                    .await;
                            }
                        });
                        tasks.lock().unwrap().push(pipe.abort_handle());
                    }
                }
            });
            tasks.lock().unwrap().push(accept.abort_handle());
        }

        /// Drops every connection and stops listening.
        async fn cut(&self) {
            for task in self.tasks.lock().unwrap().drain(..) {
                task.abort();
            }
            // Let the aborted tasks drop their sockets.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        async fn restore(&self) {
            self.serve(TcpListener::bind(self.addr).await.unwrap());
        }
    }

    /// While the database is unreachable, every call (reads, writes, `ping`) fails with
    /// `Unavailable`, promptly and without a panic; once it is back the same store recovers
    /// by itself, with everything acknowledged before still there and sequences continuing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_database_that_goes_away_is_unavailable_then_recovers() {
        let database = TestDatabase::create().await;
        let target = {
            let options = PgConnectOptions::from_str(&database.url).unwrap();
            (options.get_host().to_owned(), options.get_port())
        };
        let relay = Relay::start(target).await;
        let mut url = reqwest::Url::parse(&database.url).unwrap();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(relay.addr.port())).unwrap();
        let cfg = StoreConfig {
            connect_timeout_ms: 300,
            statement_timeout_ms: 2_000,
            ..postgres_config(url.as_str())
        };
        let postgres = PostgresStore::connect(&cfg).await.unwrap();
        let store: Store = Arc::new(postgres.clone());
        let r = new_refund("acme", "compago", "pay-1", 100);
        let first = record(&store, &r).await;

        relay.cut().await;
        let started = std::time::Instant::now();
        let unavailable = |result: Result<(), StoreError>, what: &str| match result {
            Err(StoreError::Unavailable(_)) => {}
            other => panic!("{what}: expected Unavailable, got {other:?}"),
        };
        unavailable(store.ping().await, "ping");
        unavailable(store.get_refund(&r.id).await.map(drop), "get_refund");
        unavailable(
            store
                .claim_request(&key("acme", "req-down"), "fp-1", t0(), LEASE)
                .await
                .map(drop),
            "claim_request",
        );
        unavailable(store.last_sequence().await.map(drop), "last_sequence");
        assert!(started.elapsed() < Duration::from_secs(10));

        relay.restore().await;
        store.ping().await.unwrap();
        assert_eq!(get(&store, &r.id).await, as_stored(&r));
        let second = record(&store, &new_refund("acme", "compago", "pay-2", 100)).await;
        assert_eq!(second.sequence, first.sequence + 1);
        postgres.close().await;
        relay.cut().await;
    }

    /// A write that waits on a lock longer than `busy_timeout_ms` (`lock_timeout`), or runs
    /// longer than `statement_timeout_ms`, fails with `Unavailable` and writes nothing; once
    /// the lock is gone the same write goes through. The lock held here is the event
    /// counter's, which every event-writing transaction takes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lock_and_statement_timeouts_are_unavailable_then_recover() {
        let database = TestDatabase::create().await;
        let lock_bound = PostgresStore::connect(&StoreConfig {
            busy_timeout_ms: 200,
            ..postgres_config(&database.url)
        })
        .await
        .unwrap();
        let statement_bound = PostgresStore::connect(&StoreConfig {
            statement_timeout_ms: 300,
            ..postgres_config(&database.url)
        })
        .await
        .unwrap();
        let stores = dyn_stores(&[lock_bound.clone(), statement_bound.clone()]);

        let mut holder = raw(&database).await;
        sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
        sqlx::query("SELECT last FROM event_counter FOR UPDATE")
            .execute(&mut holder)
            .await
            .unwrap();
        let mut waiting = Vec::new();
        for store in &stores {
            let r = new_refund("acme", "compago", "pay-1", 100);
            assert_eq!(claim(store, &key_of(&r), t0()).await, RequestClaim::Owned);
            let started = std::time::Instant::now();
            let err = store
                .insert_refund(&r, &key_of(&r), mxn_amount(BIG_LIMIT))
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
            assert!(started.elapsed() < Duration::from_secs(3));
            assert_eq!(store.get_refund(&r.id).await.unwrap(), None);
            waiting.push(r);
        }
        sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
        holder.close().await.unwrap();

        for (store, r) in stores.iter().zip(&waiting) {
            let outcome = store
                .insert_refund(r, &key_of(r), mxn_amount(BIG_LIMIT))
                .await
                .unwrap();
            assert!(matches!(outcome, InsertOutcome::Inserted(_)));
        }
        assert_eq!(all_events(&stores[0]).await.len(), 2);
        close_all(&[lock_bound, statement_bound]).await;
    }

    /// A row that does not decode into the domain (wrong JSON shape, unknown currency, a
    /// negative sequence) is `Corrupt`, not a panic and not a silently wrong value.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn undecodable_rows_are_corrupt() {
        let (database, replicas) = replicas(1).await;
        let store = dyn_stores(&replicas).remove(0);
        let r = new_refund("acme", "compago", "pay-1", 100);
        record(&store, &r).await;

        let mut conn = raw(&database).await;
        let corrupt = |err: StoreError, column: &str| {
            assert!(
                matches!(err, StoreError::Corrupt(ref m) if m.contains(column)),
                "{err:?}"
            );
        };
        sqlx::query("UPDATE refunds SET metadata = '{\"n\": 1}' WHERE id = $1")
            .bind(r.id.as_str())
            .execute(&mut conn)
            .await
            .unwrap();
        corrupt(store.get_refund(&r.id).await.unwrap_err(), "metadata");

        sqlx::query("UPDATE refunds SET metadata = '{}', currency = 'ZZZ' WHERE id = $1")
            .bind(r.id.as_str())
            .execute(&mut conn)
            .await
            .unwrap();
        corrupt(store.get_refund(&r.id).await.unwrap_err(), "currency");

        sqlx::query("UPDATE refund_events SET snapshot = '[]'")
            .execute(&mut conn)
            .await
            .unwrap();
        corrupt(all_events_err(&store).await, "snapshot");
        conn.close().await.unwrap();
        close_all(&replicas).await;
    }

    /// The payload of the next notification (within 5 s).
    async fn next_notification(listener: &mut PgListener) -> String {
        let wait = tokio::time::timeout(Duration::from_secs(5), listener.recv());
        let notification = wait.await.expect("a notification").unwrap();
        notification.payload().to_owned()
    }

    async fn all_events_err(store: &Store) -> StoreError {
        store
            .events_after(&EventScope::All, 0, 100)
            .await
            .unwrap_err()
    }

    /// The schema refuses at the database level what would break the guard or the event
    /// stream, whoever writes: a refund of zero or less, JSON that does not parse, a second
    /// counter row.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_schema_refuses_what_would_break_the_guard_or_the_stream() {
        let (database, replicas) = replicas(1).await;
        let store = dyn_stores(&replicas).remove(0);
        for minor in [0, -500] {
            let r = new_refund("acme", "compago", "pay-1", minor);
            assert_eq!(claim(&store, &key_of(&r), t0()).await, RequestClaim::Owned);
            assert!(
                store
                    .insert_refund(&r, &key_of(&r), mxn_amount(10_000))
                    .await
                    .is_err()
            );
        }
        let ok = new_refund("acme", "compago", "pay-1", 100);
        record(&store, &ok).await;
        let mut conn = raw(&database).await;
        for refused in [
            "UPDATE refunds SET amount_minor = -1",
            "UPDATE refunds SET metadata = '{not json'",
            "UPDATE refunds SET failure = 'nope'",
            "INSERT INTO event_counter (only_row, last) VALUES (FALSE, 0)",
            "UPDATE event_counter SET last = -1",
        ] {
            assert!(
                sqlx::query(refused).execute(&mut conn).await.is_err(),
                "{refused}"
            );
        }
        conn.close().await.unwrap();
        close_all(&replicas).await;
    }

    /// Deleting the newest events (by hand, say) never makes their sequences available again:
    /// `last_sequence` does not go back, and the next event gets the next number, also after
    /// the store is reopened.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sequences_are_never_reused_after_deletes() {
        let (database, replicas) = replicas(1).await;
        let store = dyn_stores(&replicas).remove(0);
        record(&store, &new_refund("acme", "compago", "pay-1", 100)).await;
        let second = record(&store, &new_refund("acme", "compago", "pay-2", 100)).await;

        let mut conn = raw(&database).await;
        sqlx::query("DELETE FROM refund_events WHERE sequence = $1")
            .bind(i64::try_from(second.sequence).unwrap())
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(store.last_sequence().await.unwrap(), second.sequence);
        let third = record(&store, &new_refund("acme", "compago", "pay-3", 100)).await;
        assert_eq!(third.sequence, second.sequence + 1);
        conn.close().await.unwrap();
        close_all(&replicas).await;

        let reopened = PostgresStore::connect(&postgres_config(&database.url))
            .await
            .unwrap();
        let store: Store = Arc::new(reopened.clone());
        assert_eq!(store.last_sequence().await.unwrap(), third.sequence);
        let fourth = record(&store, &new_refund("acme", "compago", "pay-4", 100)).await;
        assert_eq!(fourth.sequence, third.sequence + 1);
        reopened.close().await;
    }
}
