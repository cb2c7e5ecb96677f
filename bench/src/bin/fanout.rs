//! WatchRefunds fan-out benchmark for the gateway (the counterpart of the baseline's
//! `fanout`).
//!
//! Opens K live `WatchRefunds` streams over C connections, waits until the gateway reports
//! them (`refund_gateway_watch_subscribers{rpc="WatchRefunds"}` on `/metrics`), samples the
//! server's RSS, then causes events with M CreateRefunds (load-test Compago payments; each
//! makes two events, "created" PENDING and SUCCEEDED) `interval` apart on a connection of
//! their own, and measures, per (subscriber, event), the delivery latency = client wall
//! clock at receipt - the event's `event_time` (server wall clock when the change was
//! recorded; same host, same CLOCK_REALTIME). Also: time to reach everyone (per-event max),
//! server CPU per delivery (`/proc/<pid>/stat` over the event window / deliveries) and server
//! memory per subscriber ((RSS with K streams open - RSS before) / K).
//!
//! With `--sandbox HOST:PORT` (the gateway's in-process simulators) the Compago simulator is
//! told to answer each refund after `interval / 2` (its `refund_delay_ms` fault), so the two
//! events of a create come `interval / 2` apart instead of back to back: single events at an
//! even pace, like the baseline's broadcasts, rather than pairs where the second waits for
//! the first one's fan-out. Each create then starts `interval` after the previous one.
//!
//! A monitor stream on the control connection learns which events the creates made (it
//! is not counted). With `--stalled 1` one more stream is opened on a connection of its own
//! with a 1 KiB HTTP/2 stream window and never read, so the gateway soon cannot send to it:
//! the others' latencies show whether it slows anyone.
//!
//! ```text
//! fanout --addr URL --metrics URL --server-pid PID --streams 10000 --conns 100
//!        [--events 20] [--interval-ms 250] [--stalled 0|1] [--sandbox HOST:PORT] [--label rep1]
//! ```

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use refund_gateway::pb::{self, refund_service_client::RefundServiceClient};
use refund_gateway_bench::{
    Args, Ids, Scrape, connect, cpu_micros, emit, load_test_refund, pct, rss_bytes, unix_nanos,
};
use serde_json::json;
use tonic::transport::{Channel, Endpoint};

type Error = Box<dyn std::error::Error + Send + Sync>;

const SUBSCRIBERS: &str = "refund_gateway_watch_subscribers";

fn live() -> pb::WatchRefundsRequest {
    pb::WatchRefundsRequest {
        after_sequence: None,
        provider: String::new(),
        statuses: Vec::new(),
    }
}

fn event_nanos(event: &pb::RefundEvent) -> i64 {
    event
        .event_time
        .as_ref()
        .map_or(0, |t| t.seconds * 1_000_000_000 + i64::from(t.nanos))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = Args::parse();
    let addr = args.str("addr", "http://127.0.0.1:50051");
    let metrics = args.opt("metrics").ok_or("--metrics URL is required")?;
    let pid: u32 = args
        .opt("server-pid")
        .ok_or("--server-pid PID is required")?
        .parse()?;
    let k: usize = args.get("streams", 1000);
    let conns: usize = args.get("conns", k.div_ceil(100)).max(1);
    let m: usize = args.get("events", 20);
    let interval = Duration::from_millis(args.get("interval-ms", 250));
    let stalled: usize = args.get("stalled", 0);
    let provider = args.str("provider", "compago");
    let label = args.str("label", "");
    let sandbox = args.opt("sandbox");

    let http = reqwest::Client::new();
    let subscribers = || async {
        Scrape::fetch(&http, &metrics)
            .await
            .map(|s| s.sum(SUBSCRIBERS, &[("rpc", "WatchRefunds")]) as usize)
    };
    let wait_subscribers = |want: usize, what: &'static str| {
        let subscribers = &subscribers;
        async move {
            let t = Instant::now();
            loop {
                let have = subscribers().await?;
                if have >= want {
                    return Ok::<(), Error>(());
                }
                if t.elapsed() > Duration::from_secs(120) {
                    return Err(format!("{what}: {have} subscribers, waiting for {want}").into());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };

    let s0 = subscribers().await?;
    let ctl_chan = connect(&addr, 1).await?.remove(0);
    let mut ctl = RefundServiceClient::new(ctl_chan.clone());

    // The monitor: which events the creates make, in order.
    let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
    let mut monitor = ctl.watch_refunds(live()).await?.into_inner();
    let monitor_task = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Ok(Some(msg)) = monitor.message().await {
                if let Some(ev) = msg.event {
                    seen.lock().expect("not poisoned").push(ev.sequence);
                }
            }
        })
    };
    // The stalled subscriber: a 1 KiB stream window, never read.
    let mut stalled_streams = Vec::new();
    let mut stalled_chans = Vec::new();
    for _ in 0..stalled {
        let chan = Endpoint::from_shared(addr.clone())?
            .tcp_nodelay(true)
            .initial_stream_window_size(1024)
            .connect()
            .await?;
        let mut c = RefundServiceClient::new(chan.clone());
        stalled_streams.push(c.watch_refunds(live()).await?.into_inner());
        stalled_chans.push(chan);
    }
    wait_subscribers(s0 + 1 + stalled, "monitor").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = rss_bytes(Some(pid));

    let chans: Vec<Channel> = connect(&addr, conns).await?;
    let t_open = Instant::now();
    let ready = Arc::new(AtomicUsize::new(0));
    let delivered = Arc::new(AtomicUsize::new(0));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut handles = Vec::with_capacity(k);
    for i in 0..k {
        let mut client = RefundServiceClient::new(chans[i % conns].clone());
        let (ready, delivered, mut stop) = (ready.clone(), delivered.clone(), stop_rx.clone());
        handles.push(tokio::spawn(async move {
            let mut stream = client.watch_refunds(live()).await?.into_inner();
            ready.fetch_add(1, Relaxed);
            // (sequence, event_time ns, received ns)
            let mut got: Vec<(u64, i64, i64)> = Vec::with_capacity(64);
            loop {
                tokio::select! {
                    msg = stream.message() => match msg {
                        Ok(Some(msg)) => {
                            let now = unix_nanos();
                            if let Some(ev) = msg.event {
                                got.push((ev.sequence, event_nanos(&ev), now));
                                delivered.fetch_add(1, Relaxed);
                            }
                        }
                        _ => break,
                    },
                    _ = stop.changed() => break,
                }
            }
            Ok::<_, tonic::Status>(got)
        }));
    }
    let t = Instant::now();
    while ready.load(Relaxed) < k {
        if t.elapsed() > Duration::from_secs(120) {
            return Err(format!("only {} of {k} streams opened", ready.load(Relaxed)).into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_subscribers(s0 + 1 + stalled + k, "streams").await?;
    let open_s = t_open.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_streams = rss_bytes(Some(pid));
    let cpu0 = cpu_micros(Some(pid));
    let client_cpu0 = cpu_micros(None);
    let events_t0 = Instant::now();

    let ids = Ids::new();
    if let Some(sandbox) = &sandbox {
        reqwest::Client::new()
            .post(format!("http://{sandbox}/compago/sandbox/faults"))
            .json(&serde_json::json!({ "refund_delay_ms": interval.as_millis() as u64 / 2 }))
            .send()
            .await?
            .error_for_status()?;
    }
    for j in 0..m {
        let started = Instant::now();
        let refund = ctl
            .create_refund(load_test_refund(&ids, j as u64, &provider))
            .await?
            .into_inner();
        if refund.refund.map(|r| r.status) != Some(pb::RefundStatus::Succeeded as i32) {
            return Err("a CreateRefund did not end SUCCEEDED".into());
        }
        if sandbox.is_some() {
            tokio::time::sleep_until((started + interval).into()).await;
        } else {
            tokio::time::sleep(interval).await;
        }
    }
    // Every event the creates made has reached the monitor once its count stops moving.
    let mut last = usize::MAX;
    loop {
        let n = seen.lock().expect("not poisoned").len();
        if n == last {
            break;
        }
        last = n;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let sequences: Vec<u64> = seen.lock().expect("not poisoned").clone();
    let expected = k * sequences.len();
    let t = Instant::now();
    while delivered.load(Relaxed) < expected && t.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let window_s = events_t0.elapsed().as_secs_f64();
    let cpu1 = cpu_micros(Some(pid));
    let client_cpu1 = cpu_micros(None);
    let rss_events = rss_bytes(Some(pid));
    let _ = stop_tx.send(true);

    let index: BTreeMap<u64, usize> = sequences.iter().enumerate().map(|(i, s)| (*s, i)).collect();
    let mut lat = Vec::with_capacity(expected);
    let mut first = vec![i64::MAX; sequences.len()];
    let mut latest = vec![i64::MIN; sequences.len()];
    let mut worst = vec![0u64; sequences.len()];
    let mut count = 0usize;
    for h in handles {
        for (seq, at, recv) in h.await?? {
            let Some(&i) = index.get(&seq) else { continue };
            let l = (recv - at).max(0) as u64;
            lat.push(l);
            count += 1;
            worst[i] = worst[i].max(l);
            first[i] = first[i].min(recv);
            latest[i] = latest[i].max(recv);
        }
    }
    drop(chans);
    drop(stalled_streams);
    drop(stalled_chans);
    monitor_task.abort();
    drop(ctl);
    drop(ctl_chan);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after_close = rss_bytes(Some(pid));

    lat.sort_unstable();
    let mut spread: Vec<u64> = first
        .iter()
        .zip(&latest)
        .filter(|(f, l)| **f != i64::MAX && **l != i64::MIN)
        .map(|(f, l)| (l - f).max(0) as u64)
        .collect();
    spread.sort_unstable();
    let mut worst_sorted = worst.clone();
    worst_sorted.sort_unstable();
    let ms = |ns: u64| (ns as f64 / 1e4).round() / 100.0;
    let kib = |b: u64| b as f64 / 1024.0;
    let server_cpu_us = cpu1.saturating_sub(cpu0) as f64;
    emit(&json!({
        "tool": "gw-fanout",
        "label": label,
        "streams": k,
        "conns": conns,
        "stalled": stalled,
        "creates": m,
        "events": sequences.len(),
        "interval_ms": interval.as_millis() as u64,
        "paced_pairs": sandbox.is_some(),
        "open_s": (open_s * 100.0).round() / 100.0,
        "delivered": count,
        "expected": expected,
        "p50_us": (pct(&lat, 50.0) as f64 / 1e3).round(),
        "p99_us": (pct(&lat, 99.0) as f64 / 1e3).round(),
        "max_us": (lat.last().copied().unwrap_or(0) as f64 / 1e3).round(),
        "last_delivery_p50_us": (pct(&worst_sorted, 50.0) as f64 / 1e3).round(),
        "last_delivery_max_us": (worst_sorted.last().copied().unwrap_or(0) as f64 / 1e3).round(),
        "spread_p50_ms": ms(pct(&spread, 50.0)),
        "spread_max_ms": ms(spread.last().copied().unwrap_or(0)),
        "server_rss_before_kib": kib(rss_before).round(),
        "server_rss_streams_kib": kib(rss_streams).round(),
        "server_rss_after_events_kib": kib(rss_events).round(),
        "server_rss_after_close_kib": kib(rss_after_close).round(),
        "server_kib_per_stream": ((kib(rss_streams) - kib(rss_before)) / k as f64 * 100.0).round() / 100.0,
        "client_rss_kib": kib(rss_bytes(None)).round(),
        "event_window_s": (window_s * 100.0).round() / 100.0,
        "server_cpu_ms_events": (server_cpu_us / 1e3).round(),
        "server_cpu_us_per_delivery": (server_cpu_us / count.max(1) as f64 * 100.0).round() / 100.0,
        "client_cpu_us_per_delivery": (client_cpu1.saturating_sub(client_cpu0) as f64 / count.max(1) as f64 * 100.0).round() / 100.0,
    }));
    Ok(())
}
