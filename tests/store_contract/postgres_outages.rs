//! PostgreSQL only: a server that goes away or is slow, rows that do not decode, and what the
//! schema itself refuses.

use std::net::SocketAddr;

use tokio::{
    net::{TcpListener, TcpStream},
    task::AbortHandle,
};

use crate::{
    fixtures::*,
    postgres_only::{close_all, dyn_stores, raw, replicas},
};

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
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
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
            .insert_refund(&r, &key_of(&r), mxn_amount(BIG_LIMIT), &[], &cause())
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
            .insert_refund(r, &key_of(r), mxn_amount(BIG_LIMIT), &[], &cause())
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
                .insert_refund(&r, &key_of(&r), mxn_amount(10_000), &[], &cause())
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
