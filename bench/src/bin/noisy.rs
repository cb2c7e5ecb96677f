//! A noisy neighbour: tenant B's GetRefund latency while tenant A bursts far over its call
//! limit, against the same with A quiet. B runs `--concurrency` callers in a closed loop
//! (each sends its next GetRefund of B's own refund when the previous one is answered); with
//! `--noisy` A runs `--noisy-concurrency` callers doing the same with A's refund, as fast as
//! the answers come, most of them refused with RESOURCE_EXHAUSTED by A's limit.
//!
//! Prints one JSON line: B's req/s, latency p50/p90/p99/max and errors; A's calls, how many
//! were served and how many refused as rate-limited.
//!
//! ```text
//! noisy --addr http://127.0.0.1:50061 --key-a KEY --key-b KEY [--noisy] [--concurrency 16]
//!       [--noisy-concurrency 64] [--conns 4] [--duration 10] [--warmup 2] [--label rep1]
//! ```

use std::time::{Duration, Instant};

use refund_gateway::pb::{self, refund_service_client::RefundServiceClient};
use refund_gateway_bench::{Args, Ids, connect, emit, load_test_refund, pct, us};
use serde_json::json;
use tonic::{Code, Request, transport::Channel};

fn with_key<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {key}").parse().expect("an ASCII key"),
    );
    request
}

/// A refund of the tenant behind `key`, to read back.
async fn own_refund(
    client: &mut RefundServiceClient<Channel>,
    ids: &Ids,
    k: u64,
    key: &str,
) -> Result<String, tonic::Status> {
    let answer = client
        .create_refund(with_key(load_test_refund(ids, k, "compago"), key))
        .await?;
    Ok(answer.into_inner().refund.map(|r| r.id).unwrap_or_default())
}

#[derive(Default)]
struct Tally {
    lat: Vec<u64>,
    ok: u64,
    limited: u64,
    errors: u64,
    first_error: Option<String>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let addr = args.str("addr", "http://127.0.0.1:50051");
    let key_a = args.str("key-a", "tenant-a-key");
    let key_b = args.str("key-b", "tenant-b-key");
    let noisy = args.flag("noisy");
    let n_b: usize = args.get("concurrency", 16);
    let n_a: usize = args.get("noisy-concurrency", 64);
    let conns: usize = args.get("conns", 4usize).max(1);
    let dur: f64 = args.get("duration", 10.0);
    let warm: f64 = args.get("warmup", 2.0);
    let label = args.str("label", "");

    // Separate connections per tenant, as two client systems would have.
    let chans_b = connect(&addr, conns).await?;
    let chans_a = connect(&addr, conns).await?;
    let ids = Ids::new();
    let refund_b = own_refund(
        &mut RefundServiceClient::new(chans_b[0].clone()),
        &ids,
        1,
        &key_b,
    )
    .await?;
    let refund_a = own_refund(
        &mut RefundServiceClient::new(chans_a[0].clone()),
        &ids,
        2,
        &key_a,
    )
    .await?;
    // Let A's bucket refill from its own set-up call before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(warm);
    let end = measure_from + Duration::from_secs_f64(dur);
    let callers = |n: usize, chans: &[Channel], key: &str, id: &str| {
        (0..n)
            .map(|i| {
                let mut client = RefundServiceClient::new(chans[i % chans.len()].clone());
                let (key, id) = (key.to_owned(), id.to_owned());
                tokio::spawn(async move {
                    let mut tally = Tally::default();
                    loop {
                        let t0 = Instant::now();
                        if t0 >= end {
                            break;
                        }
                        let request = with_key(pb::GetRefundRequest { id: id.clone() }, &key);
                        let res = client.get_refund(request).await;
                        let t1 = Instant::now();
                        if t0 < measure_from {
                            continue;
                        }
                        match res {
                            Ok(_) => {
                                tally.ok += 1;
                                tally.lat.push((t1 - t0).as_nanos() as u64);
                            }
                            Err(status) if status.code() == Code::ResourceExhausted => {
                                tally.limited += 1;
                            }
                            Err(status) => {
                                tally.errors += 1;
                                tally.first_error.get_or_insert_with(|| format!("{status}"));
                            }
                        }
                    }
                    tally
                })
            })
            .collect::<Vec<_>>()
    };
    let b = callers(n_b, &chans_b, &key_b, &refund_b);
    let a = if noisy {
        callers(n_a, &chans_a, &key_a, &refund_a)
    } else {
        Vec::new()
    };
    let sum = |tallies: Vec<Tally>| {
        tallies.into_iter().fold(Tally::default(), |mut all, t| {
            all.lat.extend(t.lat);
            all.ok += t.ok;
            all.limited += t.limited;
            all.errors += t.errors;
            all.first_error = all.first_error.or(t.first_error);
            all
        })
    };
    let mut tb = Vec::new();
    for h in b {
        tb.push(h.await?);
    }
    let mut ta = Vec::new();
    for h in a {
        ta.push(h.await?);
    }
    let (mut b, a) = (sum(tb), sum(ta));
    b.lat.sort_unstable();
    let mut line = json!({
        "tool": "noisy",
        "rpc": "GetRefund",
        "label": label,
        "noisy": noisy,
        "concurrency": n_b,
        "noisy_concurrency": if noisy { n_a } else { 0 },
        "duration_s": dur,
        "ok": b.ok,
        "errors": b.errors + b.limited,
        "rps": (b.ok as f64 / dur).round(),
        "p50_us": us(pct(&b.lat, 50.0)),
        "p90_us": us(pct(&b.lat, 90.0)),
        "p99_us": us(pct(&b.lat, 99.0)),
        "max_us": us(*b.lat.last().unwrap_or(&0)),
        "a_calls_per_s": ((a.ok + a.limited + a.errors) as f64 / dur).round(),
        "a_served": a.ok,
        "a_rate_limited": a.limited,
        "a_errors": a.errors,
    });
    if let Some(e) = b.first_error.or(a.first_error) {
        line["first_error"] = json!(e);
    }
    emit(&line);
    Ok(())
}
