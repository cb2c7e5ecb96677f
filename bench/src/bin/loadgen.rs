//! Closed-loop CreateRefund load generator for the gateway (the counterpart of the
//! baseline's `loadgen`). N callers over C HTTP/2 connections (default `min(N, 4)`), each
//! sending its next CreateRefund when the previous one is answered, for warmup + duration
//! seconds. Every request creates a NEW refund: a unique `request_id` and a fresh payment
//! UUID under the Compago simulator's load-test method (a CONFIRMED 100.00 MXN payment on
//! first sight), so nothing is an idempotent replay and nothing is refused.
//!
//! With `--metrics URL` it scrapes the gateway's `/metrics` at the start and the end of the
//! measured window and reports the gateway's own time (total minus provider calls): from the
//! per-request histogram `refund_gateway_create_refund_own_seconds` when the gateway has
//! it, otherwise estimated from the CreateRefund and provider-call histograms (see
//! BENCHMARKS.md, "own time").
//!
//! Prints one JSON line: req/s, client latency p50/p90/p99/max, errors, own time.
//!
//! ```text
//! loadgen --addr http://127.0.0.1:50061 --concurrency 64 [--conns 4] [--duration 10]
//!         [--warmup 2] [--provider compago] [--metrics http://127.0.0.1:8091/metrics]
//!         [--label rep1]
//! ```

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use refund_gateway::pb::{self, refund_service_client::RefundServiceClient};
use refund_gateway_bench::{Args, Hist, Ids, Scrape, connect, emit, load_test_refund, pct, us};
use serde_json::json;

const OWN_HIST: &str = "refund_gateway_create_refund_own_seconds";
const GRPC_HIST: &str = "refund_gateway_grpc_request_duration_seconds";
const PROVIDER_HIST: &str = "refund_gateway_provider_request_duration_seconds";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let addr = args.str("addr", "http://127.0.0.1:50051");
    let n: usize = args.get("concurrency", 16);
    let conns: usize = args.get("conns", n.min(4)).max(1);
    let dur: f64 = args.get("duration", 10.0);
    let warm: f64 = args.get("warmup", 2.0);
    let provider = Arc::new(args.str("provider", "compago"));
    let metrics_url = args.opt("metrics");
    let label = args.str("label", "");

    let chans = connect(&addr, conns).await?;
    let ids = Ids::new();
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(warm);
    let end = measure_from + Duration::from_secs_f64(dur);

    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let mut client = RefundServiceClient::new(chans[i % conns].clone());
        let ids = ids.clone();
        let provider = provider.clone();
        handles.push(tokio::spawn(async move {
            let mut lat: Vec<u64> = Vec::with_capacity(1 << 14);
            let (mut errors, mut not_succeeded) = (0u64, 0u64);
            let mut first_error = None;
            let mut k = (i as u64) << 32;
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                let res = client
                    .create_refund(load_test_refund(&ids, k, &provider))
                    .await;
                let t1 = Instant::now();
                k += 1;
                if t0 < measure_from {
                    continue;
                }
                match res {
                    Ok(answer) => {
                        lat.push((t1 - t0).as_nanos() as u64);
                        let status = answer.into_inner().refund.map_or(0, |r| r.status);
                        if status != pb::RefundStatus::Succeeded as i32 {
                            not_succeeded += 1;
                        }
                    }
                    Err(status) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("{status}"));
                    }
                }
            }
            (lat, errors, not_succeeded, first_error)
        }));
    }

    // Scrape /metrics at both ends of the measured window.
    let scrapes = match &metrics_url {
        Some(url) => {
            let http = reqwest::Client::new();
            tokio::time::sleep_until(measure_from.into()).await;
            let before = Scrape::fetch(&http, url).await?;
            tokio::time::sleep_until(end.into()).await;
            let after = Scrape::fetch(&http, url).await?;
            Some((before, after))
        }
        None => None,
    };

    let mut all = Vec::new();
    let (mut errors, mut not_succeeded) = (0, 0);
    let mut first_error = None;
    for h in handles {
        let (l, e, ns, fe) = h.await?;
        all.extend(l);
        errors += e;
        not_succeeded += ns;
        if first_error.is_none() {
            first_error = fe;
        }
    }
    all.sort_unstable();
    let mut line = json!({
        "tool": "gw-loadgen",
        "rpc": "CreateRefund",
        "label": label,
        "concurrency": n,
        "conns": conns,
        "duration_s": dur,
        "ok": all.len(),
        "errors": errors,
        "not_succeeded": not_succeeded,
        "rps": (all.len() as f64 / dur).round(),
        "p50_us": us(pct(&all, 50.0)),
        "p90_us": us(pct(&all, 90.0)),
        "p99_us": us(pct(&all, 99.0)),
        "max_us": us(*all.last().unwrap_or(&0)),
    });
    if let Some(e) = first_error {
        line["first_error"] = json!(e);
    }
    if let Some((before, after)) = scrapes {
        own_time(&mut line, &before, &after, &provider, &all);
    }
    emit(&line);
    Ok(())
}

/// Adds the gateway's own time (total minus provider calls) to `line`.
fn own_time(
    line: &mut serde_json::Value,
    before: &Scrape,
    after: &Scrape,
    provider: &str,
    client_sorted_ns: &[u64],
) {
    let delta = |name: &str, filter: &[(&str, &str)]| -> Hist {
        after.hist(name, filter).since(&before.hist(name, filter))
    };
    let total = delta(GRPC_HIST, &[("method", "CreateRefund")]);
    let get = delta(
        PROVIDER_HIST,
        &[("provider", provider), ("operation", "get_payment")],
    );
    let submit = delta(
        PROVIDER_HIST,
        &[("provider", provider), ("operation", "submit_refund")],
    );
    let ms = |s: f64| (s * 1e6).round() / 1e3;
    // Server-side means, exact from the histograms' sums.
    let provider_mean = if total.count > 0.0 {
        (get.sum + submit.sum) / total.count
    } else {
        0.0
    };
    line["server_calls"] = json!(total.count);
    line["server_mean_ms"] = json!(ms(total.mean()));
    line["server_p99_ms_hist"] = json!(ms(total.quantile(0.99)));
    line["provider_mean_ms"] = json!(ms(provider_mean));
    line["provider_get_payment_mean_ms"] = json!(ms(get.mean()));
    line["provider_submit_mean_ms"] = json!(ms(submit.mean()));
    line["provider_submit_p99_ms_hist"] = json!(ms(submit.quantile(0.99)));
    line["own_mean_ms"] = json!(ms(total.mean() - provider_mean));
    if after.has(&format!("{OWN_HIST}_bucket")) {
        let own = delta(OWN_HIST, &[]);
        line["own_source"] = json!(OWN_HIST);
        line["own_count"] = json!(own.count);
        line["own_p50_ms"] = json!(ms(own.quantile(0.5)));
        line["own_p90_ms"] = json!(ms(own.quantile(0.9)));
        line["own_p99_ms"] = json!(ms(own.quantile(0.99)));
    } else {
        // No per-request figure: the client's percentile minus the mean provider time. Exact
        // when provider time varies little; an over-estimate of own time otherwise (the
        // client's latency also holds loopback, h2 and tonic on both sides).
        line["own_source"] = json!("estimate: client percentile - mean provider time");
        let est = |p: f64| ms((pct(client_sorted_ns, p) as f64 / 1e9 - provider_mean).max(0.0));
        line["own_p50_ms"] = json!(est(50.0));
        line["own_p90_ms"] = json!(est(90.0));
        line["own_p99_ms"] = json!(est(99.0));
    }
}
