//! Crash safety of the real binary: `kill -9` mid-submission and mid-reconcile, again and
//! again, a restart on the same SQLite file each time, then nothing lost and nothing doubled.
//!
//! Processes (`processes.rs`):
//! - the provider simulators, `refund-gateway sandbox --listen 127.0.0.1:0`, a process of
//!   their own, so they (and the refunds they hold) outlive every gateway;
//! - the gateway, `refund-gateway serve`, with non-sandbox Compago, D24 and PayMongo accounts
//!   on the simulators' printed base URLs and credentials, fixed gRPC and HTTP ports (D24
//!   notifications and PayMongo webhooks reach whichever gateway is alive), a 500 ms provider
//!   timeout and a fast worker; SIGKILLed and started again, over and over;
//! - this test: client workers that issue the workload (`workload.rs`) concurrently and
//!   repeat every call a kill cut off under the same `request_id`, a live `WatchRefunds`
//!   subscriber that resumes after every death from the last sequence it saw
//!   (`client.rs`), and the killer below.
//!
//! Each round the simulators get new answer delays (refund answers after applying the
//! refund: none, within the timeout, beyond it; in some rounds every answer, reads too, is
//! 200 ms late) and the gateway is killed at a moment picked by a seeded RNG: right after it
//! logs a newly recorded refund (its provider call is starting), right after a submission's
//! outcome was unknown or the worker re-sent one (it is being reconciled), while accepted
//! refunds are PROCESSING (polled, notified), or at random. Where each kill landed is read
//! from the dead gateway's store. The seed is printed; `CRASH_SEED=N` repeats the choices
//! (not the OS's timing), `CRASH_KILLS=N` changes the number of kills (default 24).
//!
//! After the last restart and settling, `checks.rs` holds the gateway's records against
//! what callers were told and against the providers' truth.

#[path = "../support/mod.rs"]
mod support;

mod checks;
mod client;
mod processes;
mod workload;

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering::SeqCst},
    },
    time::{Duration, Instant},
};

use rand::{Rng as _, SeedableRng as _, rngs::StdRng};
use refund_gateway::pb;

use checks::{Findings, Truth, is, status_name};
use client::{Answer, Answers, Client, ClientStats};
use processes::{AtDeath, Delays, Ended, Gateway, KeepOnFailure, Simulators};
use workload::Spec;

const API_KEY: &str = "crash-test-key-5f1c2a";
/// Every provider account's per-request timeout.
const TIMEOUT_MS: u64 = 500;
/// The first check of a refund just recorded: the provider timeout plus the gateway's margin
/// (`ATTEMPT_MARGIN` in `src/refunds.rs`).
const SAFETY_NET: Duration = Duration::from_millis(TIMEOUT_MS + 5_000);
/// How long the simulators hold a refund answer after applying the refund: not at all, less
/// than the timeout (a kill in that window loses an accepted refund's answer), more (the
/// outcome is unknown and reconciled).
const DELAYS_MS: [u64; 3] = [0, 300, 800];
/// Concurrent client workers.
const CLIENTS: usize = 6;
/// How long everything may take to settle after the last restart.
const SETTLE_DEADLINE: Duration = Duration::from_secs(60);

/// One kill: how it was timed, and where it landed.
#[derive(Debug)]
struct Kill {
    trigger: &'static str,
    up_for: Duration,
    calls_in_flight: usize,
    delays: Delays,
    at_death: AtDeath,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_submission_and_mid_reconcile_loses_and_doubles_nothing() {
    let began = Instant::now();
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let kills_wanted = std::env::var("CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    println!(
        "crash test: seed {seed} (CRASH_SEED={seed} repeats the choices), {kills_wanted} kills"
    );
    let mut rng = StdRng::seed_from_u64(seed);

    let dir = KeepOnFailure(Some(
        tempfile::Builder::new()
            .prefix("refund-gateway-crash-")
            .tempdir()
            .expect("a temporary directory"),
    ));
    let sims = Simulators::start(&dir.path().join("sandbox.log"));
    let http_port = processes::free_port();
    sims.configure(http_port).await;
    let (specs, paid) = workload::create(&sims, &mut rng).await;
    let mut gateway = Gateway::new(dir.path(), &sims, processes::free_port(), http_port);
    gateway.start().await;
    let client = client::connect(&gateway.grpc_url);

    // The client workers and the live subscriber.
    let answers: Answers = Arc::default();
    let stats = Arc::new(ClientStats::default());
    let queue = Arc::new(Mutex::new(specs.iter().cloned().collect::<VecDeque<_>>()));
    let workers: Vec<_> = (0..CLIENTS)
        .map(|i| {
            tokio::spawn(client::worker(
                client.clone(),
                queue.clone(),
                answers.clone(),
                stats.clone(),
                seed.wrapping_add(i as u64 + 1),
            ))
        })
        .collect();
    let live_feed = Arc::new(Mutex::new(Vec::new()));
    let stop_watching = Arc::new(AtomicBool::new(false));
    let watching = tokio::spawn(client::watch(
        client::connect(&gateway.grpc_url),
        live_feed.clone(),
        stop_watching.clone(),
    ));

    let kill_phase = Instant::now();
    let kills = kill_repeatedly(
        kills_wanted,
        &mut gateway,
        &sims,
        &client,
        &queue,
        &stats,
        &mut rng,
    )
    .await;
    let kill_phase = kill_phase.elapsed();
    sims.clear_faults().await;

    for worker in workers {
        tokio::time::timeout(client::ANSWER_DEADLINE * 2, worker)
            .await
            .expect("the client finishes")
            .expect("the client does not panic");
    }
    let client_done = began.elapsed();

    let settling = Instant::now();
    let mut refunds = client::all_refunds(&client).await;
    while refunds
        .values()
        .any(|r| is(r, pb::RefundStatus::Pending) || is(r, pb::RefundStatus::Processing))
        && settling.elapsed() < SETTLE_DEADLINE
    {
        tokio::time::sleep(Duration::from_millis(250)).await;
        refunds = client::all_refunds(&client).await;
    }
    let settled_in = settling.elapsed();

    // Every request once more, as a client that never saw its answer: the same answer again.
    let mut answers = std::mem::take(&mut *answers.lock().unwrap());
    for spec in &specs {
        let again = client::answer(&client, spec, &stats).await;
        answers
            .entry(spec.request_id.clone())
            .or_default()
            .push(again);
    }
    assert_eq!(answers.len(), specs.len(), "every request was answered");

    let truth = Truth::read(&sims).await;
    let stored_feed = client::stored_feed(&client).await;
    let end = stored_feed.last().map_or(0, |e| e.sequence);
    let caught_up = Instant::now() + Duration::from_secs(10);
    while live_feed.lock().unwrap().last().map_or(0, |e| e.sequence) < end
        && Instant::now() < caught_up
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_watching.store(true, SeqCst);
    watching.await.expect("the subscriber does not panic");
    let live_feed = std::mem::take(&mut *live_feed.lock().unwrap());

    let mut findings = Findings::default();
    // Money first: these are the violations listed first.
    checks::compago(&paid, &refunds, &truth, &mut findings);
    checks::keyed_providers(&paid, &refunds, &truth, &mut findings);
    checks::answers(&specs, &answers, &refunds, &mut findings);
    checks::feed(&stored_feed, &live_feed, &refunds, &mut findings);

    let report = Report {
        seed,
        kills: &kills,
        gateway: &gateway,
        specs: &specs,
        answers: &answers,
        refunds: &refunds,
        truth: &truth,
        compago_refunded: truth.compago_refunded(&paid),
        stats: &stats,
        feed_len: stored_feed.len(),
        durations: [
            ("kills", kill_phase),
            ("client done at", client_done),
            ("settled in", settled_in),
            ("total", began.elapsed()),
        ],
    }
    .to_string();
    println!("{report}");

    if !findings.violations.is_empty() {
        let suspects: Vec<&str> = findings
            .suspects
            .iter()
            .map(String::as_str)
            .take(8)
            .collect();
        let shown = findings.violations.len().min(40);
        panic!(
            "{} violations (seed {seed}){}:\n  {}\n\n{report}\ngateway log lines about {suspects:?}:\n{}",
            findings.violations.len(),
            if shown < findings.violations.len() {
                format!(", the first {shown}")
            } else {
                String::new()
            },
            findings.violations[..shown].join("\n  "),
            gateway.lines_about(&suspects)
        );
    }
    let mid_submission = kills.iter().filter(|k| k.at_death.sending > 0).count();
    let mid_reconcile = kills
        .iter()
        .filter(|k| k.at_death.following > 0 || k.at_death.leased > 0)
        .count();
    assert!(kills.len() >= 20, "at least 20 kills:\n{report}");
    assert!(
        mid_submission >= 5 && mid_reconcile >= 5,
        "kills landed mid-submission {mid_submission} and mid-reconcile {mid_reconcile} times:\n{report}"
    );
}

/// Kills the gateway `wanted` times, each at a moment picked by `rng`, and starts it again.
async fn kill_repeatedly(
    wanted: usize,
    gateway: &mut Gateway,
    sims: &Simulators,
    client: &Client,
    queue: &Mutex<VecDeque<Spec>>,
    stats: &ClientStats,
    rng: &mut StdRng,
) -> Vec<Kill> {
    let mut kills = Vec::new();
    while kills.len() < wanted {
        let mut delay = || DELAYS_MS[rng.random_range(0..DELAYS_MS.len())];
        let delays = Delays {
            compago: delay(),
            d24: delay(),
            paymongo: delay(),
            every: if rng.random_bool(0.3) { 200 } else { 0 },
        };
        sims.set_delays(delays).await;
        let roll = rng.random_range(0..100);
        let trigger = if roll < 40 && !queue.lock().unwrap().is_empty() {
            gateway.await_log_line(&["refund recorded"]).await;
            let window = delays.longest().max(TIMEOUT_MS) + 100;
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..window))).await;
            "after a refund was recorded"
        } else if roll < 60 {
            gateway
                .await_log_line(&["refund outcome unknown", "sending it again"])
                .await;
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..700))).await;
            "after an unknown outcome"
        } else if roll < 85 {
            let wait_until = Instant::now() + Duration::from_secs(3);
            while client::count_with_status(client, pb::RefundStatus::Processing)
                .await
                .unwrap_or(0)
                == 0
                && Instant::now() < wait_until
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..400))).await;
            "while refunds were processing"
        } else {
            tokio::time::sleep(Duration::from_millis(rng.random_range(100..1200))).await;
            "at a random moment"
        };
        let calls_in_flight = stats.in_flight.load(SeqCst);
        let ended = gateway.kill();
        let at_death = processes::at_death(&gateway.db).await;
        if let Ended::Killed(up_for) = ended {
            kills.push(Kill {
                trigger,
                up_for,
                calls_in_flight,
                delays,
                at_death,
            });
        }
        // Down for a moment: calls fail to connect, notifications and webhooks go unanswered.
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..400))).await;
        gateway.start().await;
    }
    kills
}

/// What the run did, for people: kills and where they landed, outcomes per provider, what
/// the providers saw, durations.
struct Report<'a> {
    seed: u64,
    kills: &'a [Kill],
    gateway: &'a Gateway,
    specs: &'a [Spec],
    answers: &'a BTreeMap<String, Vec<Answer>>,
    refunds: &'a BTreeMap<String, pb::Refund>,
    truth: &'a Truth,
    compago_refunded: usize,
    stats: &'a ClientStats,
    feed_len: usize,
    durations: [(&'static str, Duration); 4],
}

impl std::fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kills = self.kills;
        let count = |pick: fn(&AtDeath) -> bool| kills.iter().filter(|k| pick(&k.at_death)).count();
        write!(
            f,
            "crash test, seed {}: {} kills, {} gateway starts;",
            self.seed,
            kills.len(),
            self.gateway.starts
        )?;
        for (name, took) in self.durations {
            write!(f, " {name} {took:.1?};")?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "  kills that landed with: a submission in flight (recorded, outcome not) {}; a CreateRefund unfinished {}; refunds being followed up {}; a worker check leased {}",
            count(|d| d.sending > 0),
            count(|d| d.open_keys > 0),
            count(|d| d.following > 0 || d.leased > 0),
            count(|d| d.leased > 0),
        )?;
        for (i, k) in kills.iter().enumerate() {
            let d = k.at_death;
            writeln!(
                f,
                "  kill {:>2}: up {:>7.1?}, {:<29} delays c/d/p/all {:>3}/{:>3}/{:>3}/{:>3} ms | calls in flight {:>2}, open keys {:>2}, sending {:>2}, followed {:>2}, leased {:>2}, refunds {:>3}",
                i + 1,
                k.up_for,
                k.trigger,
                k.delays.compago,
                k.delays.d24,
                k.delays.paymongo,
                k.delays.every,
                k.calls_in_flight,
                d.open_keys,
                d.sending,
                d.following,
                d.leased,
                d.refunds
            )?;
        }
        for provider in ["compago", "d24", "paymongo"] {
            let mut statuses: BTreeMap<&str, usize> = BTreeMap::new();
            for r in self.refunds.values().filter(|r| r.provider == provider) {
                let name = status_name(r.status);
                *statuses
                    .entry(name.trim_start_matches("REFUND_STATUS_"))
                    .or_default() += 1;
            }
            let mut errors: BTreeMap<&str, usize> = BTreeMap::new();
            let asked: Vec<&Spec> = self
                .specs
                .iter()
                .filter(|s| s.provider == provider)
                .collect();
            for spec in &asked {
                if let Some(Answer::Error { reason, .. }) =
                    self.answers.get(&spec.request_id).and_then(|a| a.first())
                {
                    *errors.entry(reason).or_default() += 1;
                }
            }
            writeln!(
                f,
                "  {provider:<8}: {} requests; refunds {statuses:?}; errors {errors:?}",
                asked.len()
            )?;
        }
        let t = self.truth;
        writeln!(
            f,
            "  Compago : {} payments refunded, {} refund POSTs",
            self.compago_refunded, t.compago_stats["refund_posts"]
        )?;
        writeln!(
            f,
            "  D24     : {} refunds created, {} POSTs, {} answered 104 (key reused), notifications {} answered / {} not",
            t.d24_stats["refunds_created"],
            t.d24_stats["refund_posts"],
            t.d24_stats["idempotency_key_reuses"],
            t.d24_stats["notifications_sent"],
            t.d24_stats["notifications_failed"]
        )?;
        writeln!(
            f,
            "  PayMongo: {} refunds created, {} POSTs, {} idempotent replays, webhooks {} delivered in {} attempts",
            t.paymongo_stats["refunds_created"],
            t.paymongo_stats["refund_posts"],
            t.paymongo_stats["idempotent_replays"],
            t.paymongo_stats["webhooks_sent"],
            t.paymongo_stats["webhook_attempts"]
        )?;
        writeln!(
            f,
            "  client  : {} CreateRefund calls, {} cut off by a kill, {} repeatable errors, {} requests double-submitted; feed of {} events",
            self.stats.calls.load(SeqCst),
            self.stats.cut_off.load(SeqCst),
            self.stats.repeatable.load(SeqCst),
            self.specs.iter().filter(|s| s.doubled).count(),
            self.feed_len
        )?;
        let logged = |needle| self.gateway.count_in_logs(needle);
        write!(
            f,
            "  gateway : {} submission outcomes unknown, {} re-sent by the worker, {} recognised from a D24 notification",
            logged("refund outcome unknown; it will be reconciled"),
            logged("no trace of the refund at the provider; sending it again"),
            logged("was recognised from the provider's notification")
        )
    }
}
