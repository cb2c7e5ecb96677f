//! Closed-loop unary load on the baseline server: N callers over C HTTP/2 connections
//! (default `min(N, 4)`, assigned round robin), each sending its next `CreateRefund` when the
//! previous one is answered, for warmup + duration seconds; only calls started inside the
//! measured window count. The same shape as `loadgen` against the gateway.
//!
//! Prints one JSON line: req/s, latency p50/p90/p99/max, ok and errors. With `--dump-body
//! FILE` it only writes the request as a gRPC body for h2load (5-byte prefix + protobuf).
//!
//! ```text
//! baseline_loadgen [--addr http://127.0.0.1:50051] [--concurrency 16] [--conns N]
//!                  [--duration 10] [--warmup 2] [--label rep1] [--runtime multi|current]
//! baseline_loadgen --dump-body FILE
//! ```

use std::time::{Duration, Instant};

use refund_gateway_bench::{
    Args,
    baseline::{pb::refund_bench_client::RefundBenchClient, runtime, sample_request},
    connect, emit, grpc_frame, pct, us,
};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if let Some(path) = args.opt("dump-body") {
        let body = grpc_frame(&sample_request(0));
        std::fs::write(&path, &body)?;
        eprintln!("wrote the {}-byte CreateRefund body to {path}", body.len());
        return Ok(());
    }
    runtime(&args)?.block_on(run(args))
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let addr = args.str("addr", "http://127.0.0.1:50051");
    let n: usize = args.get("concurrency", 16);
    let conns: usize = args.get("conns", n.min(4)).max(1);
    let duration: f64 = args.get("duration", 10.0);
    let warmup: f64 = args.get("warmup", 2.0);
    let label = args.str("label", "");

    let channels = connect(&addr, conns).await?;
    let measure_from = Instant::now() + Duration::from_secs_f64(warmup);
    let end = measure_from + Duration::from_secs_f64(duration);

    let callers: Vec<_> = (0..n)
        .map(|i| {
            let mut client = RefundBenchClient::new(channels[i % channels.len()].clone());
            tokio::spawn(async move {
                let mut latencies: Vec<u64> = Vec::with_capacity(1 << 16);
                let mut errors = 0u64;
                // each caller its own range of idempotency keys
                let mut k = (i as u64) << 32;
                loop {
                    let started = Instant::now();
                    if started >= end {
                        break;
                    }
                    let result = client.create_refund(sample_request(k)).await;
                    let took = started.elapsed();
                    k += 1;
                    if started >= measure_from {
                        match result {
                            Ok(_) => latencies.push(took.as_nanos() as u64),
                            Err(_) => errors += 1,
                        }
                    }
                }
                (latencies, errors)
            })
        })
        .collect();

    let mut all = Vec::new();
    let mut errors = 0u64;
    for caller in callers {
        let (latencies, e) = caller.await?;
        all.extend(latencies);
        errors += e;
    }
    all.sort_unstable();
    emit(&json!({
        "tool": "baseline-loadgen",
        "label": label,
        "concurrency": n,
        "conns": conns,
        "duration_s": duration,
        "ok": all.len(),
        "errors": errors,
        "rps": (all.len() as f64 / duration).round(),
        "p50_us": us(pct(&all, 50.0)),
        "p90_us": us(pct(&all, 90.0)),
        "p99_us": us(pct(&all, 99.0)),
        "max_us": us(all.last().copied().unwrap_or(0)),
    }));
    Ok(())
}
