//! PostgreSQL only: several replicas on one database.

use crate::fixtures::*;

/// A fresh database and `n` stores on it, each with its own pool, as `n` gateway
/// replicas would have.
pub(crate) async fn replicas(n: usize) -> (TestDatabase, Vec<PostgresStore>) {
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

pub(crate) fn dyn_stores(stores: &[PostgresStore]) -> Vec<Store> {
    stores
        .iter()
        .map(|s| Arc::new(s.clone()) as Store)
        .collect()
}

pub(crate) async fn close_all(stores: &[PostgresStore]) {
    for store in stores {
        store.close().await;
    }
}

/// A raw connection to the test database, as an operator's psql would be.
pub(crate) async fn raw(database: &TestDatabase) -> PgConnection {
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
            store
                .insert_refund(&r, &key_of(&r), limit, &[], &cause())
                .await
                .unwrap()
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
    let taken_over: HashSet<RefundId> = ids(&survivor.claim_due(at(30), 500, LEASE).await.unwrap())
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

/// The payload of the next notification (within 5 s).
async fn next_notification(listener: &mut PgListener) -> String {
    let wait = tokio::time::timeout(Duration::from_secs(5), listener.recv());
    let notification = wait.await.expect("a notification").unwrap();
    notification.payload().to_owned()
}
