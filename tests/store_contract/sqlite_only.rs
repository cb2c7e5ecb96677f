//! SQLite only: what the file itself must look like.

use sqlx::{Connection as _, SqliteConnection, sqlite::SqliteConnectOptions};

use crate::fixtures::*;

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
                .insert_refund(&r, &key_of(&r), mxn_amount(10_000), &[], &cause())
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
