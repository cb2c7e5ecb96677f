//! Logging with `tracing`: human-readable by default, JSON with
//! `REFUND_GATEWAY_LOG_FORMAT=json`; the filter comes from `RUST_LOG` (default `info`).
//!
//! Traces (`[telemetry] otlp_endpoint`): the gateway's spans go to an OpenTelemetry collector
//! over OTLP/gRPC through the SDK's batch span processor, whose queue is bounded: a span
//! finished while the queue is full is dropped (the SDK logs it), a request never waits for
//! the exporter. Only the gateway's own spans are exported (`rpc`, `provider.*`, `store.*`,
//! `refund.write`, `worker.check`, `webhook`), with the fields they declare as attributes; log
//! events are not (a log line keeps its details in the log, and carries the `trace_id`).
//! Without an endpoint the subscriber is the plain formatter, as if traces did not exist.

use std::{
    fmt,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use opentelemetry::{
    propagation::{Extractor, TextMapPropagator as _},
    trace::{TraceContextExt as _, TracerProvider as _},
};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider},
};
use tracing::{Event, Level, Span, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::{
    EnvFilter, Layer as _,
    filter::{FilterExt as _, Targets, filter_fn},
    fmt::{self as tfmt, FmtContext, FormatEvent, FormatFields, format::Writer},
    layer::SubscriberExt as _,
    registry::LookupSpan,
    util::SubscriberInitExt as _,
};

/// The `service.name` of the exported spans.
pub const SERVICE_NAME: &str = "refund-gateway";

/// Spans waiting for export at most; a span finished beyond that is dropped.
const QUEUE: usize = 4096;

/// How long shutdown waits for the last spans to reach the collector.
const FLUSH: Duration = Duration::from_secs(5);

/// Whether spans are exported (a trace to continue, span fields worth recording).
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether this process exports traces.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// What [`init`] set up; [`Telemetry::shutdown`] sends the spans still queued.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still queued (waiting at most a few seconds for the collector).
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        // The SDK waits on its export thread: not on a runtime thread.
        let flush = tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(FLUSH));
        match tokio::time::timeout(FLUSH + Duration::from_secs(1), flush).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => {
                tracing::warn!(error = %err, "the last spans could not be exported");
            }
            Ok(Err(_)) | Err(_) => tracing::warn!("the last spans could not be exported in time"),
        }
    }
}

/// Sets up logging alone (no trace export).
pub fn init() {
    init_logs_only(json_logs());
}

fn json_logs() -> bool {
    std::env::var("REFUND_GATEWAY_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"))
}

/// Sets up logging, and trace export when `otlp_endpoint` is given (call inside the Tokio
/// runtime: the exporter's connection lives there).
///
/// # Errors
/// The exporter could not be built (the endpoint is checked with the configuration first).
pub fn start(otlp_endpoint: Option<&str>) -> anyhow::Result<Telemetry> {
    let json = json_logs();
    let Some(endpoint) = otlp_endpoint else {
        init_logs_only(json);
        return Ok(Telemetry::default());
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()?;
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(QUEUE)
                .build(),
        )
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(Resource::builder().with_service_name(SERVICE_NAME).build())
        .build();
    let spans = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(SERVICE_NAME))
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        // The gateway's own spans (the finer ones are DEBUG so that logs do not show them),
        // and no events.
        .with_filter(
            Targets::new()
                .with_target("refund_gateway", Level::DEBUG)
                .and(filter_fn(|meta| meta.is_span())),
        );
    // Colours would be lost on the way through `WithTraceId`'s buffer: none.
    let logs = tfmt::layer().with_writer(std::io::stderr).with_ansi(false);
    let logs = if json {
        logs.json()
            .map_event_format(|f| WithTraceId {
                inner: f,
                json: true,
            })
            .with_filter(log_filter())
            .boxed()
    } else {
        logs.map_event_format(|f| WithTraceId {
            inner: f,
            json: false,
        })
        .with_filter(log_filter())
        .boxed()
    };
    tracing_subscriber::registry()
        .with(spans)
        .with(logs)
        .try_init()?;
    EXPORTING.store(true, Ordering::Relaxed);
    tracing::info!(endpoint, "exporting traces over OTLP/gRPC");
    Ok(Telemetry {
        provider: Some(provider),
    })
}

fn log_filter() -> EnvFilter {
    EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,h2=warn,hyper=warn,tower=warn"))
}

/// Logs alone: the formatter, as before traces existed.
fn init_logs_only(json: bool) {
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    // A second init (tests) keeps the first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Continues the caller's trace: `span` (not entered yet) becomes a child of the span a W3C
/// `traceparent` header names (with its `tracestate`). No header, or one that does not parse:
/// the span starts a trace of its own. Nothing happens when traces are not exported.
pub fn continue_trace(span: &Span, headers: &http::HeaderMap) {
    if !exporting() || !headers.contains_key("traceparent") {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    if parent.span().span_context().is_remote() {
        let _ = span.set_parent(parent);
    }
}

/// Request headers as the propagator reads them.
struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The trace id of the span being run (32 hex digits), when it is traced.
pub fn current_trace_id() -> Option<String> {
    let cx = opentelemetry::Context::current();
    let span = cx.span();
    let context = span.span_context();
    context.is_valid().then(|| context.trace_id().to_string())
}

/// A log line formatter that adds `trace_id` to the lines written inside a traced span: a
/// `trace_id=<32 hex>` field at the end of a text line, a `"trace_id"` key in a JSON line.
struct WithTraceId<F> {
    inner: F,
    json: bool,
}

impl<S, N, F> FormatEvent<S, N> for WithTraceId<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some(trace_id) = current_trace_id() else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let body = line.trim_end_matches('\n');
        if self.json {
            match body.strip_suffix('}') {
                Some(open) => writeln!(writer, "{open},\"trace_id\":\"{trace_id}\"}}"),
                None => writeln!(writer, "{body}"),
            }
        } else {
            writeln!(writer, "{body} trace_id={trace_id}")
        }
    }
}
