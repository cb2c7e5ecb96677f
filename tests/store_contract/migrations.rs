//! Upgrading a store an earlier version wrote: the migrations that add actors, notes,
//! `created_by` and REQUIRES_APPROVAL keep every refund, event and request key, give old
//! events the actor `gateway` and the note "recorded before actors were kept", and never
//! hand out a sequence twice. Run for both backends: SQLite rebuilds its tables, PostgreSQL
//! alters them.

use std::path::{Path, PathBuf};

use sqlx::{Connection as _, SqliteConnection, migrate::Migrator, sqlite::SqliteConnectOptions};

use crate::fixtures::*;

/// A directory holding the first `upto` migrations of `backend`, as an earlier version had.
fn earlier_migrations(backend: &str, upto: &[&str]) -> TempDir {
    let source: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "src",
        "store",
        backend,
        "migrations",
    ]
    .iter()
    .collect();
    let dir = tempfile::tempdir().unwrap();
    for name in upto {
        std::fs::copy(source.join(name), dir.path().join(name)).unwrap();
    }
    dir
}

/// The refund the earlier version stored.
fn old_refund() -> Refund {
    let mut r = new_refund("acme", "compago", "pay-1", 700);
    r.status = RefundStatus::Succeeded;
    r.submission = Submission::Accepted;
    r.provider_refund_id = Some("p-1".into());
    r.reason = RefundReason::Other;
    as_stored(&r)
}

fn refund_values(r: &Refund) -> Vec<String> {
    vec![
        r.id.to_string(),
        r.tenant.as_str().to_owned(),
        r.request_id.clone(),
        r.provider.clone(),
        r.payment.payment_id.clone(),
        r.amount.minor.to_string(),
        r.created_at.timestamp_micros().to_string(),
    ]
}

const OLD_REFUND: &str = "INSERT INTO refunds (id, tenant_id, request_id, provider, payment_id, \
     payment_method_id, invoice_id, currency, amount_minor, status, provider_refund_id, \
     provider_status, reason, description, metadata, bank_account, failure, created_at, \
     updated_at, version, submission, next_check_at, check_attempts) \
     VALUES ($1, $2, $3, $4, $5, '', '', 'MXN', CAST($6 AS BIGINT), 'SUCCEEDED', 'p-1', NULL, \
     'OTHER', '', '{}', NULL, NULL, CAST($7 AS BIGINT), CAST($7 AS BIGINT), 2, 'accepted', \
     NULL, 0)";

const OLD_EVENT: &str = "INSERT INTO refund_events (sequence, refund_id, tenant_id, provider, \
     status, previous_status, snapshot, event_time) \
     VALUES (CAST($1 AS BIGINT), $2, 'acme', 'compago', $3, $4, $5, CAST($6 AS BIGINT))";

const OLD_KEY: &str = "INSERT INTO idempotency_keys (tenant_id, request_id, fingerprint, \
     refund_id, error, completed, locked_until, created_at) \
     VALUES ('acme', $1, 'fp-1', $2, NULL, $3, 0, 0)";

/// What the upgraded store must show: the refund as it was, both old events with the
/// `gateway` actor, the request key done, and new events after the highest sequence ever
/// handed out (`highest`). A refund may now wait for approval.
async fn check_upgraded(store: Store, r: &Refund, highest: u64) {
    let mut expected = r.clone();
    expected.version = 2;
    expected.provider_status = None;
    assert_eq!(get(&store, &r.id).await, expected);
    let events = store
        .events_after(&EventScope::Refund(r.id.clone()), 0, 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 2);
    for e in &events {
        assert_eq!(e.cause.actor.as_str(), "gateway");
        assert_eq!(e.cause.note, "recorded before actors were kept");
    }
    assert_eq!(
        store
            .claim_request(&key_of(r), "fp-1", t0(), LEASE)
            .await
            .unwrap(),
        RequestClaim::Done(RequestResult::Refund(r.id.clone()))
    );
    let mut waiting = new_refund("acme", "compago", "pay-2", 100);
    waiting.status = RefundStatus::RequiresApproval;
    waiting.created_by = Some(Actor::operator("12345678"));
    let event = record(&store, &waiting).await;
    assert!(
        event.sequence > highest,
        "{} after {highest}",
        event.sequence
    );
    assert_eq!(event.cause, cause());
    assert_eq!(
        get(&store, &waiting.id).await.created_by,
        Some(Actor::operator("12345678"))
    );
}

fn snapshot(r: &Refund, status: RefundStatus) -> String {
    let mut r = r.clone();
    r.status = status;
    serde_json::to_string(&r).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_of_an_earlier_version_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = sqlite_config(&dir);
    let options = SqliteConnectOptions::from_str(&cfg.url)
        .unwrap()
        .create_if_missing(true)
        .foreign_keys(true);
    let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
    let old = earlier_migrations(
        "sqlite",
        &[
            "0001_initial.sql",
            "0002_worker_leases.sql",
            "0003_sent_at.sql",
        ],
    );
    Migrator::new(Path::new(old.path()))
        .await
        .unwrap()
        .run(&mut conn)
        .await
        .unwrap();
    let r = old_refund();
    write_old_rows(&mut conn, &r).await;
    conn.close().await.unwrap();

    let store: Store = Arc::new(SqliteStore::connect(&cfg).await.unwrap());
    // Sequence 3 was handed out and its row deleted: it is never handed out again.
    check_upgraded(store.clone(), &r, 3).await;
}

/// The old rows of an earlier SQLite store: the refund, its two events, a third event whose
/// row was deleted (its sequence was handed out), and its request key.
async fn write_old_rows(conn: &mut SqliteConnection, r: &Refund) {
    let v = refund_values(r);
    sqlx::query(OLD_REFUND)
        .bind(&v[0])
        .bind(&v[1])
        .bind(&v[2])
        .bind(&v[3])
        .bind(&v[4])
        .bind(r.amount.minor)
        .bind(r.created_at.timestamp_micros())
        .execute(&mut *conn)
        .await
        .unwrap();
    for (sequence, status, previous) in [
        (1_i64, RefundStatus::Pending, None),
        (2, RefundStatus::Succeeded, Some("PENDING")),
        (3, RefundStatus::Succeeded, Some("SUCCEEDED")),
    ] {
        sqlx::query(OLD_EVENT)
            .bind(sequence)
            .bind(&v[0])
            .bind(status.as_str())
            .bind(previous)
            .bind(snapshot(r, status))
            .bind(r.created_at.timestamp_micros())
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    sqlx::query("DELETE FROM refund_events WHERE sequence = 3")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query(OLD_KEY)
        .bind(&v[2])
        .bind(&v[0])
        .bind(true)
        .execute(&mut *conn)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_of_an_earlier_version_is_upgraded() {
    let database = TestDatabase::create().await;
    let mut conn = PgConnection::connect(&database.url).await.unwrap();
    let old = earlier_migrations("postgres", &["0001_initial.sql", "0002_sent_at.sql"]);
    Migrator::new(Path::new(old.path()))
        .await
        .unwrap()
        .run(&mut conn)
        .await
        .unwrap();
    let r = old_refund();
    let v = refund_values(&r);
    sqlx::query(OLD_REFUND)
        .bind(&v[0])
        .bind(&v[1])
        .bind(&v[2])
        .bind(&v[3])
        .bind(&v[4])
        .bind(r.amount.minor)
        .bind(r.created_at.timestamp_micros())
        .execute(&mut conn)
        .await
        .unwrap();
    for (sequence, status, previous) in [
        (1_i64, RefundStatus::Pending, None),
        (2, RefundStatus::Succeeded, Some("PENDING")),
    ] {
        sqlx::query(OLD_EVENT)
            .bind(sequence)
            .bind(&v[0])
            .bind(status.as_str())
            .bind(previous)
            .bind(snapshot(&r, status))
            .bind(r.created_at.timestamp_micros())
            .execute(&mut conn)
            .await
            .unwrap();
    }
    sqlx::query("UPDATE event_counter SET last = 3")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(OLD_KEY)
        .bind(&v[2])
        .bind(&v[0])
        .bind(true)
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    let store = PostgresStore::connect(&postgres_config(&database.url))
        .await
        .unwrap();
    check_upgraded(Arc::new(store.clone()), &r, 3).await;
    store.close().await;
}
