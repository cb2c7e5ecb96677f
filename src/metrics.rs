//! Prometheus metrics through the `metrics` facade and `metrics-exporter-prometheus`.
//!
//! Names (all prefixed `refund_gateway_`):
//! - `grpc_requests_total{method,code}`, `grpc_request_duration_seconds{method}`
//! - `create_refund_own_seconds`: each CreateRefund's time minus the time its own provider
//!   calls took (the gateway's share of the latency; finer buckets, from 50 µs)
//! - `provider_requests_total{provider,operation,outcome}`,
//!   `provider_request_duration_seconds{provider,operation}`
//! - `refunds{provider,status}` (gauge, read from the store at scrape time)
//! - `watch_subscribers{rpc}` (gauge)
//! - `refund_transitions_refused_total{provider,from,to}`
//! - `refunds_requires_review_total{provider,reason}`
//! - `webhooks_total{provider,outcome}` (`provider="unknown"` for every account that is not
//!   configured: never a label taken from the URL)
//! - `worker_checks_total{provider,outcome}`
//! - `refunds_linked_total{provider}` (refunds whose lost submission answer was recognised
//!   from a provider notification)
//! - `provider_breaker_state{provider,state}` (gauge, 1 for the account's current circuit
//!   breaker state `closed`, `half_open` or `open`, 0 for the others; read at scrape time)
//! - `provider_in_flight{provider}` (gauge: calls of the account in flight, at scrape time)
//! - `provider_breaker_transitions_total{provider,to}`
//! - `provider_calls_refused_total{provider,reason}` (not sent: `breaker_open` or
//!   `saturated`, the account's concurrency limit full for its whole queue timeout)
//! - `rate_limited_total{tenant,limit}` (calls refused by a tenant's limit: `limit` is
//!   `requests` (calls per second) or `watch_streams`)

use std::{
    future::Future,
    sync::{
        Arc, Mutex, OnceLock, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Instant,
};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Buckets of `create_refund_own_seconds`: fine enough to read a p99 near a few ms.
const OWN_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075,
    0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

const OWN_METRIC: &str = "refund_gateway_create_refund_own_seconds";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Set once this module's recorder is the process-wide one: from then on a metric's handle,
/// once looked up, stays valid for the life of the process ([`RpcSeries`]).
static RECORDING: AtomicBool = AtomicBool::new(false);

tokio::task_local! {
    /// Nanoseconds spent in provider calls by the request being served (see [`own_time`]).
    static PROVIDER_NANOS: Arc<AtomicU64>;
}

/// The current request's provider clock, to carry into a task it spawns
/// ([`with_provider_clock`]).
pub fn provider_clock() -> Option<Arc<AtomicU64>> {
    PROVIDER_NANOS.try_with(Arc::clone).ok()
}

/// Runs `call` so that its provider calls count towards `clock` (if any).
pub async fn with_provider_clock<F: Future>(clock: Option<Arc<AtomicU64>>, call: F) -> F::Output {
    match clock {
        Some(clock) => PROVIDER_NANOS.scope(clock, call).await,
        None => call.await,
    }
}

/// Runs one CreateRefund and records its own time: total minus its provider calls.
pub async fn own_time<F: Future>(call: F) -> F::Output {
    let started = Instant::now();
    let clock = Arc::new(AtomicU64::new(0));
    let out = PROVIDER_NANOS.scope(clock.clone(), call).await;
    let provider = std::time::Duration::from_nanos(clock.load(Ordering::Relaxed));
    let own = started.elapsed().saturating_sub(provider).as_secs_f64();
    static OWN: OnceLock<metrics::Histogram> = OnceLock::new();
    if RECORDING.load(Ordering::Acquire) {
        OWN.get_or_init(|| metrics::histogram!(OWN_METRIC))
            .record(own);
    } else {
        metrics::histogram!(OWN_METRIC).record(own);
    }
    out
}

/// Installs the process-wide recorder once and returns the handle that renders it.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(OWN_METRIC.to_owned()), OWN_BUCKETS)
                .expect("buckets are not empty")
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
                .expect("buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may be installed already (embedding applications, tests that
            // start several gateways): then this handle renders an empty registry, which is
            // still valid Prometheus text.
            if metrics::set_global_recorder(recorder).is_ok() {
                RECORDING.store(true, Ordering::Release);
            }
            handle
        })
        .clone()
}

/// The series of one gRPC method: `grpc_request_duration_seconds{method}` and
/// `grpc_requests_total{method,code}`. Their handles are looked up in the recorder on first
/// use and kept, so a call costs two atomic updates instead of two registry lookups (the
/// lookup hashes and compares the whole key under a lock). A series appears in `/metrics` at
/// its first call, as before.
#[derive(Debug)]
pub struct RpcSeries {
    method: &'static str,
    duration: OnceLock<metrics::Histogram>,
    /// By `tonic::Code` (0..=16).
    codes: [OnceLock<metrics::Counter>; CODES],
}

/// How many gRPC status codes there are (OK = 0 to UNAUTHENTICATED = 16).
const CODES: usize = 17;

impl RpcSeries {
    pub const fn new(method: &'static str) -> Self {
        Self {
            method,
            duration: OnceLock::new(),
            codes: [const { OnceLock::new() }; CODES],
        }
    }

    /// The method's name, as its label.
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// Records one call: its outcome code and latency (from the RPC layer, `grpc::layer`).
    pub fn record(&self, code: tonic::Code, elapsed: std::time::Duration) {
        let method = self.method;
        let histogram = || metrics::histogram!("refund_gateway_grpc_request_duration_seconds", "method" => method);
        let counter = || metrics::counter!("refund_gateway_grpc_requests_total", "method" => method, "code" => code_name(code));
        if !RECORDING.load(Ordering::Acquire) {
            // Not (yet) this module's recorder: a handle kept now could point nowhere.
            histogram().record(elapsed.as_secs_f64());
            counter().increment(1);
            return;
        }
        self.duration
            .get_or_init(histogram)
            .record(elapsed.as_secs_f64());
        // `Code` is 0..=16; anything else would be tonic's mistake, counted the slow way.
        match self.codes.get(code as usize) {
            Some(slot) => slot.get_or_init(counter).increment(1),
            None => counter().increment(1),
        }
    }
}

/// Records one call refused by a tenant's limit (`requests` or `watch_streams`).
pub fn rate_limited(tenant: &str, limit: &'static str) {
    metrics::counter!(
        "refund_gateway_rate_limited_total",
        "tenant" => tenant.to_owned(),
        "limit" => limit
    )
    .increment(1);
}

/// The series of one provider account's calls: `provider_request_duration_seconds
/// {provider,operation}` and `provider_requests_total{provider,operation,outcome}`. As with
/// [`RpcSeries`], each handle is looked up once and kept (the lookup would also copy the
/// account's name into a new label on every call).
#[derive(Debug)]
pub struct ProviderSeries {
    provider: String,
    /// The handles seen so far, by operation (and outcome): a handful per account.
    seen: Mutex<Vec<ProviderHandles>>,
}

#[derive(Debug)]
struct ProviderHandles {
    operation: &'static str,
    duration: metrics::Histogram,
    outcomes: Vec<(&'static str, metrics::Counter)>,
}

impl ProviderSeries {
    pub fn new(provider: &str) -> Self {
        Self {
            provider: provider.to_owned(),
            seen: Mutex::new(Vec::new()),
        }
    }

    /// Records one provider call that started at `started`; its time also counts towards the
    /// current request's provider clock ([`own_time`]).
    pub fn record(&self, operation: &'static str, outcome: &'static str, started: Instant) {
        let elapsed = started.elapsed();
        let _ = PROVIDER_NANOS.try_with(|n| {
            n.fetch_add(
                u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            )
        });
        let histogram = || {
            metrics::histogram!(
                "refund_gateway_provider_request_duration_seconds",
                "provider" => self.provider.clone(),
                "operation" => operation
            )
        };
        let counter = || {
            metrics::counter!(
                "refund_gateway_provider_requests_total",
                "provider" => self.provider.clone(),
                "operation" => operation,
                "outcome" => outcome
            )
        };
        if !RECORDING.load(Ordering::Acquire) {
            histogram().record(elapsed.as_secs_f64());
            counter().increment(1);
            return;
        }
        // A poisoned lock only means a panic elsewhere while it was held; the list is whole.
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let at = match seen.iter().position(|h| h.operation == operation) {
            Some(at) => at,
            None => {
                seen.push(ProviderHandles {
                    operation,
                    duration: histogram(),
                    outcomes: Vec::new(),
                });
                seen.len() - 1
            }
        };
        let handles = &mut seen[at];
        handles.duration.record(elapsed.as_secs_f64());
        match handles.outcomes.iter().find(|(o, _)| *o == outcome) {
            Some((_, calls)) => calls.increment(1),
            None => {
                let calls = counter();
                calls.increment(1);
                handles.outcomes.push((outcome, calls));
            }
        }
    }
}

fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Keeps the `watch_subscribers` gauge right for as long as a stream lives.
#[derive(Debug)]
pub struct SubscriberGauge(&'static str);

impl SubscriberGauge {
    pub fn new(rpc: &'static str) -> Self {
        metrics::gauge!("refund_gateway_watch_subscribers", "rpc" => rpc).increment(1.0);
        Self(rpc)
    }
}

impl Drop for SubscriberGauge {
    fn drop(&mut self) {
        metrics::gauge!("refund_gateway_watch_subscribers", "rpc" => self.0).decrement(1.0);
    }
}
