//! Server-streaming fan-out on the baseline server (the counterpart of `fanout` against the
//! gateway). Opens K `WatchRefunds` streams over C connections, waits until the server's
//! `Stats` counts them all, lets it settle for a second and samples its RSS, then publishes M
//! events one at a time, `interval` apart, and measures per (stream, event) the delivery
//! latency = this process's wall clock at receipt - the event's `published_at_unix_nanos`
//! (same host, same CLOCK_REALTIME). Also: the time to reach every stream (per-event max),
//! server and client CPU per delivery over the event window, and server memory per stream
//! ((RSS with the streams open - RSS before) / K).
//!
//! Prints one JSON line.
//!
//! ```text
//! baseline_fanout [--addr http://127.0.0.1:50051] [--streams 1000] [--conns K/100]
//!                 [--events 20] [--interval-ms 200] [--payload 64] [--label rep1]
//! ```

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use refund_gateway_bench::{
    Args,
    baseline::{
        pb::{
            PublishRequest, StatsRequest, StatsResponse, WatchRefundsRequest,
            refund_bench_client::RefundBenchClient,
        },
        runtime,
    },
    connect, cpu_micros, emit, pct, rss_bytes, unix_nanos,
};
use serde_json::json;
use tonic::transport::Channel;

/// How long the K streams may take to open, and the deliveries to arrive after the last
/// publish.
const OPEN_TIMEOUT: Duration = Duration::from_secs(120);
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    runtime(&args)?.block_on(run(args))
}

async fn stats(control: &mut RefundBenchClient<Channel>) -> Result<StatsResponse, tonic::Status> {
    Ok(control.stats(StatsRequest {}).await?.into_inner())
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let addr = args.str("addr", "http://127.0.0.1:50051");
    let k: usize = args.get("streams", 1000);
    let conns: usize = args.get("conns", k.div_ceil(100)).max(1);
    let m: usize = args.get("events", 20);
    let interval = Duration::from_millis(args.get("interval-ms", 200));
    let payload: u32 = args.get("payload", 64);
    let label = args.str("label", "");

    // The control connection (stats, publish) is not one of the streams' connections.
    let mut control = RefundBenchClient::new(connect(&addr, 1).await?.remove(0));
    let before = stats(&mut control).await?;
    let channels = connect(&addr, conns).await?;

    let opening = Instant::now();
    let opened = Arc::new(AtomicUsize::new(0));
    let subscribers: Vec<_> = (0..k)
        .map(|i| {
            let mut client = RefundBenchClient::new(channels[i % conns].clone());
            let opened = opened.clone();
            tokio::spawn(async move {
                let mut stream = client
                    .watch_refunds(WatchRefundsRequest::default())
                    .await?
                    .into_inner();
                opened.fetch_add(1, Relaxed);
                // (seq, latency ns) of each event received
                let mut got: Vec<(u64, u64)> = Vec::with_capacity(m);
                while got.len() < m {
                    let Some(event) = stream.message().await? else {
                        break;
                    };
                    let latency = (unix_nanos() - event.published_at_unix_nanos).max(0) as u64;
                    got.push((event.seq, latency));
                }
                Ok::<_, tonic::Status>(got)
            })
        })
        .collect();
    loop {
        let now = stats(&mut control).await?;
        if opened.load(Relaxed) >= k && now.active_streams >= before.active_streams + k as u64 {
            break;
        }
        if opening.elapsed() > OPEN_TIMEOUT {
            return Err(format!("only {} of {k} streams open", opened.load(Relaxed)).into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let open_s = opening.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let with_streams = stats(&mut control).await?;
    let client_rss = rss_bytes(None);
    let client_cpu_before = cpu_micros(None);

    let mut first_seq = 0;
    for j in 0..m {
        let published = control
            .publish(PublishRequest {
                count: 1,
                payload_bytes: payload,
            })
            .await?
            .into_inner();
        if j == 0 {
            first_seq = published.first_seq;
        }
        tokio::time::sleep(interval).await;
    }

    let mut latencies = Vec::with_capacity(k * m);
    let mut last_delivery = vec![0u64; m];
    for subscriber in subscribers {
        for (seq, latency) in tokio::time::timeout(DELIVERY_TIMEOUT, subscriber).await??? {
            latencies.push(latency);
            if let Some(slot) = seq
                .checked_sub(first_seq)
                .and_then(|i| last_delivery.get_mut(i as usize))
            {
                *slot = (*slot).max(latency);
            }
        }
    }
    let delivered = latencies.len();
    let after_events = stats(&mut control).await?;
    let client_cpu_after = cpu_micros(None);
    drop(channels);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after_close = stats(&mut control).await?;

    latencies.sort_unstable();
    last_delivery.sort_unstable();
    let us = |ns: u64| (ns as f64 / 1000.0).round();
    let kib = |bytes: u64| bytes as f64 / 1024.0;
    let server_cpu_us = after_events
        .cpu_micros
        .saturating_sub(with_streams.cpu_micros) as f64;
    let per_delivery = |micros: f64| (micros / delivered.max(1) as f64 * 100.0).round() / 100.0;
    emit(&json!({
        "tool": "baseline-fanout",
        "label": label,
        "streams": k,
        "conns": conns,
        "events": m,
        "payload": payload,
        "open_s": (open_s * 100.0).round() / 100.0,
        "delivered": delivered,
        "expected": k * m,
        "lagged": after_events.events_lagged,
        "p50_us": us(pct(&latencies, 50.0)),
        "p99_us": us(pct(&latencies, 99.0)),
        "max_us": us(latencies.last().copied().unwrap_or(0)),
        "last_delivery_p50_us": us(pct(&last_delivery, 50.0)),
        "last_delivery_max_us": us(last_delivery.last().copied().unwrap_or(0)),
        "server_rss_before_kib": kib(before.rss_bytes).round(),
        "server_rss_streams_kib": kib(with_streams.rss_bytes).round(),
        "server_rss_after_events_kib": kib(after_events.rss_bytes).round(),
        "server_rss_after_close_kib": kib(after_close.rss_bytes).round(),
        "server_kib_per_stream":
            ((kib(with_streams.rss_bytes) - kib(before.rss_bytes)) / k.max(1) as f64 * 100.0).round() / 100.0,
        "client_rss_kib": kib(client_rss).round(),
        "server_cpu_ms_events": (server_cpu_us / 1000.0).round(),
        "server_cpu_us_per_delivery": per_delivery(server_cpu_us),
        "client_cpu_us_per_delivery":
            per_delivery(client_cpu_after.saturating_sub(client_cpu_before) as f64),
    }));
    Ok(())
}
