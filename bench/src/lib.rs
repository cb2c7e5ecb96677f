//! Shared helpers of refund-gateway's benchmark tools: a tiny argument parser, percentiles,
//! `/proc` readings of the server process, unique ids for load-test refunds, and a reader of
//! the gateway's Prometheus `/metrics`. The tools themselves are in `src/bin/`; the suite
//! that runs them is `scripts/bench.sh` (see BENCHMARKS.md). The bare-tonic baseline the
//! suite measures beside the gateway is `src/bin/baseline_*.rs`, with `baseline`.

use std::{
    collections::HashMap,
    str::FromStr,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use refund_gateway::pb;
use tonic::transport::{Channel, Endpoint};

pub mod baseline;

/// The Compago simulator's load-test payment method: every payment UUID under it is a
/// CONFIRMED 100.00 MXN payment on first sight (`simulators::compago`).
pub const LOAD_TEST_METHOD: &str = simulators::compago::fixtures::LOAD_TEST_METHOD;

/// `--key value`, `--key=value` and `--flag` arguments.
#[derive(Debug)]
pub struct Args {
    map: HashMap<String, String>,
}

impl Args {
    pub fn parse() -> Self {
        Self::from(std::env::args().skip(1).collect())
    }

    pub fn from(v: Vec<String>) -> Self {
        let mut map = HashMap::new();
        let mut i = 0;
        while i < v.len() {
            let k = v[i].trim_start_matches("--").to_owned();
            if let Some((a, b)) = k.split_once('=') {
                map.insert(a.to_owned(), b.to_owned());
                i += 1;
            } else if i + 1 < v.len() && !v[i + 1].starts_with("--") {
                map.insert(k, v[i + 1].clone());
                i += 2;
            } else {
                map.insert(k, "true".to_owned());
                i += 1;
            }
        }
        Args { map }
    }

    pub fn get<T: FromStr>(&self, k: &str, default: T) -> T {
        match self.map.get(k) {
            Some(s) => s
                .parse()
                .unwrap_or_else(|_| panic!("bad value for --{k}: {s}")),
            None => default,
        }
    }

    pub fn opt(&self, k: &str) -> Option<String> {
        self.map.get(k).cloned()
    }

    pub fn str(&self, k: &str, default: &str) -> String {
        self.map
            .get(k)
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    }

    pub fn flag(&self, k: &str) -> bool {
        self.map.get(k).is_some_and(|s| s == "true" || s == "1")
    }
}

/// Wall clock (CLOCK_REALTIME) in nanoseconds since the epoch.
pub fn unix_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos() as i64
}

/// Nearest-rank percentile of an ascending-sorted slice (0 when empty).
pub fn pct(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Nanoseconds to microseconds, rounded to 0.1.
pub fn us(ns: u64) -> f64 {
    (ns as f64 / 100.0).round() / 10.0
}

/// VmRSS of a process in bytes (`None`: this process), from `/proc`.
pub fn rss_bytes(pid: Option<u32>) -> u64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let s = std::fs::read_to_string(path).unwrap_or_default();
    s.lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// utime + stime of a process in microseconds (`None`: this process), from
/// `/proc/<pid>/stat`: USER_HZ ticks (100 per second on Linux), so 10 ms resolution.
pub fn cpu_micros(pid: Option<u32>) -> u64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let Some(i) = s.rfind(')') else { return 0 };
    let f: Vec<&str> = s[i + 2..].split_whitespace().collect();
    let field = |n: usize| f.get(n).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (field(11) + field(12)) * 10_000
}

/// Unique request ids and payment UUIDs for one tool run: a nonce from the clock, then a
/// counter, so runs against the same store (or simulator) never collide.
#[derive(Clone, Debug)]
pub struct Ids {
    nonce: u32,
}

impl Default for Ids {
    fn default() -> Self {
        Self::new()
    }
}

impl Ids {
    pub fn new() -> Self {
        let n = unix_nanos() as u64;
        Self {
            nonce: ((n >> 10) ^ (n << 7) ^ u64::from(std::process::id())) as u32,
        }
    }

    pub fn request_id(&self, k: u64) -> String {
        format!("bench-{:08x}-{k}", self.nonce)
    }

    /// A version-4-shaped UUID unique to (`nonce`, `k`).
    pub fn payment_uuid(&self, k: u64) -> String {
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            self.nonce,
            (k >> 48) & 0xffff,
            (k >> 36) & 0xfff,
            (k >> 24) & 0xfff,
            k & 0xff_ffff
        )
    }
}

/// A CreateRefund of a fresh load-test Compago payment (the whole 100.00 MXN), through
/// provider account `provider` (the embedded default's `compago`).
pub fn load_test_refund(ids: &Ids, k: u64, provider: &str) -> pb::CreateRefundRequest {
    pb::CreateRefundRequest {
        request_id: ids.request_id(k),
        provider: provider.to_owned(),
        payment: Some(pb::PaymentReference {
            payment_id: ids.payment_uuid(k),
            payment_method_id: LOAD_TEST_METHOD.to_owned(),
            invoice_id: String::new(),
        }),
        amount: None,
        reason: pb::RefundReason::RequestedByCustomer as i32,
        description: "benchmark".to_owned(),
        metadata: HashMap::new(),
        bank_account: None,
    }
}

/// `conns` HTTP/2 connections to `addr` (TCP_NODELAY, like the baseline's tools).
pub async fn connect(addr: &str, conns: usize) -> Result<Vec<Channel>, tonic::transport::Error> {
    let ep = Endpoint::from_shared(addr.to_owned())?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5));
    let mut out = Vec::with_capacity(conns);
    for _ in 0..conns.max(1) {
        out.push(ep.connect().await?);
    }
    Ok(out)
}

/// A gRPC body for h2load: 1 byte compressed flag (0), u32 big-endian length, protobuf.
pub fn grpc_frame(msg: &impl prost::Message) -> Vec<u8> {
    let pb = msg.encode_to_vec();
    let mut frame = Vec::with_capacity(pb.len() + 5);
    frame.push(0);
    frame.extend_from_slice(&(pb.len() as u32).to_be_bytes());
    frame.extend_from_slice(&pb);
    frame
}

/// Prints one JSON line on stdout (the suite appends it to its results).
pub fn emit(value: &serde_json::Value) {
    println!("{value}");
}

// === /metrics ===

/// One scrape of a Prometheus text exposition.
#[derive(Clone, Debug, Default)]
pub struct Scrape {
    samples: Vec<Sample>,
}

#[derive(Clone, Debug)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// A histogram (cumulative buckets) from one scrape, or the difference of two.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hist {
    /// `(le, cumulative count)`, ascending, `+Inf` last.
    pub buckets: Vec<(f64, f64)>,
    pub sum: f64,
    pub count: f64,
}

impl Scrape {
    /// GETs and parses `url` (e.g. `http://127.0.0.1:8080/metrics`).
    pub async fn fetch(http: &reqwest::Client, url: &str) -> Result<Scrape, reqwest::Error> {
        let text = http
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok(Scrape::parse(&text))
    }

    pub fn parse(text: &str) -> Scrape {
        let mut samples = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (head, value) = match line.rsplit_once(' ') {
                Some((h, v)) => (h.trim(), v),
                None => continue,
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match head.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.trim_end_matches('}'))),
                None => (head, Vec::new()),
            };
            samples.push(Sample {
                name: name.to_owned(),
                labels,
                value,
            });
        }
        Scrape { samples }
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        filter: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name
                && filter
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
    }

    /// Whether any sample of `name` exists.
    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.name == name)
    }

    /// The sum of every sample of `name` whose labels include `filter`.
    pub fn sum(&self, name: &str, filter: &[(&str, &str)]) -> f64 {
        self.matching(name, filter).map(|s| s.value).sum()
    }

    /// The histogram `name` (without `_bucket`), summed over every series matching `filter`.
    pub fn hist(&self, name: &str, filter: &[(&str, &str)]) -> Hist {
        let bucket = format!("{name}_bucket");
        let mut by_le: Vec<(f64, f64)> = Vec::new();
        for s in self.matching(&bucket, filter) {
            let Some(le) = s.labels.iter().find(|(k, _)| k == "le").map(|(_, v)| {
                if v == "+Inf" {
                    f64::INFINITY
                } else {
                    v.parse().unwrap_or(f64::INFINITY)
                }
            }) else {
                continue;
            };
            match by_le.iter_mut().find(|(l, _)| *l == le) {
                Some(b) => b.1 += s.value,
                None => by_le.push((le, s.value)),
            }
        }
        by_le.sort_by(|a, b| a.0.total_cmp(&b.0));
        Hist {
            buckets: by_le,
            sum: self.sum(&format!("{name}_sum"), filter),
            count: self.sum(&format!("{name}_count"), filter),
        }
    }
}

fn parse_labels(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((key.trim_start_matches(',').trim().to_owned(), value));
        rest = &after[end..];
    }
    out
}

impl Hist {
    /// `self - earlier` (the observations between two scrapes).
    pub fn since(&self, earlier: &Hist) -> Hist {
        let buckets = self
            .buckets
            .iter()
            .map(|(le, c)| {
                let before = earlier
                    .buckets
                    .iter()
                    .find(|(l, _)| l == le)
                    .map_or(0.0, |b| b.1);
                (*le, c - before)
            })
            .collect();
        Hist {
            buckets,
            sum: self.sum - earlier.sum,
            count: self.count - earlier.count,
        }
    }

    /// Mean in seconds (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.count > 0.0 {
            self.sum / self.count
        } else {
            0.0
        }
    }

    /// The `q` quantile in seconds, interpolated linearly inside its bucket like Prometheus'
    /// `histogram_quantile` (the lower bound of the first bucket is 0; a quantile in the
    /// `+Inf` bucket is the largest finite bound). 0 when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        let total = self.buckets.last().map_or(0.0, |b| b.1);
        if total <= 0.0 {
            return 0.0;
        }
        let rank = q * total;
        let mut prev_le = 0.0;
        let mut prev_count = 0.0;
        for &(le, count) in &self.buckets {
            if count >= rank {
                if le.is_infinite() {
                    return prev_le;
                }
                let in_bucket = count - prev_count;
                if in_bucket <= 0.0 {
                    return le;
                }
                return prev_le + (le - prev_le) * (rank - prev_count) / in_bucket;
            }
            prev_le = le;
            prev_count = count;
        }
        prev_le
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
# TYPE refund_gateway_grpc_request_duration_seconds histogram
refund_gateway_grpc_request_duration_seconds_bucket{method="GetRefund",le="0.001"} 10
refund_gateway_grpc_request_duration_seconds_bucket{method="GetRefund",le="0.0025"} 30
refund_gateway_grpc_request_duration_seconds_bucket{method="GetRefund",le="+Inf"} 40
refund_gateway_grpc_request_duration_seconds_sum{method="GetRefund"} 0.08
refund_gateway_grpc_request_duration_seconds_count{method="GetRefund"} 40
refund_gateway_watch_subscribers{rpc="WatchRefunds"} 7
refund_gateway_refunds{provider="compago",status="SUCCEEDED"} 3
refund_gateway_refunds{provider="d24",status="SUCCEEDED"} 4
"#;

    #[test]
    fn parses_histograms_gauges_and_quantiles() {
        let s = Scrape::parse(TEXT);
        let h = s.hist(
            "refund_gateway_grpc_request_duration_seconds",
            &[("method", "GetRefund")],
        );
        assert_eq!(h.count, 40.0);
        assert_eq!(h.buckets.len(), 3);
        assert!((h.quantile(0.25) - 0.001).abs() < 1e-12);
        assert!((h.quantile(0.5) - 0.00175).abs() < 1e-12);
        assert!((h.quantile(0.99) - 0.0025).abs() < 1e-12);
        assert!((h.mean() - 0.002).abs() < 1e-12);
        let empty = h.since(&h);
        assert_eq!((empty.count, empty.quantile(0.5)), (0.0, 0.0));
        assert_eq!(
            s.sum(
                "refund_gateway_watch_subscribers",
                &[("rpc", "WatchRefunds")]
            ),
            7.0
        );
        assert_eq!(
            s.sum("refund_gateway_refunds", &[("status", "SUCCEEDED")]),
            7.0
        );
        assert!(!s.has("refund_gateway_create_refund_own_seconds_bucket"));
    }

    #[test]
    fn ids_are_unique_uuids() {
        let ids = Ids::new();
        let a = ids.payment_uuid(0);
        let b = ids.payment_uuid(1 << 40);
        assert_ne!(a, b);
        for u in [a, b] {
            assert_eq!(u.len(), 36, "{u}");
            assert_eq!(&u[14..15], "4");
            assert_eq!(&u[19..20], "8");
            assert!(u.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
        }
    }

    #[test]
    fn percentiles_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(pct(&v, 50.0), 50);
        assert_eq!(pct(&v, 99.0), 99);
        assert_eq!(pct(&v, 100.0), 100);
        assert_eq!(pct(&[], 50.0), 0);
    }
}
