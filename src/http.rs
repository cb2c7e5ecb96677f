//! The HTTP side on `http_listen`: liveness, readiness, Prometheus metrics and the provider
//! webhook routes (docs/API.md "HTTP endpoints", the README's table of the same name).
//!
//! The webhook routes are open to anyone who can reach the port, so nothing a request names
//! is trusted before the account is known: a body larger than [`WEBHOOK_BODY_LIMIT`] is
//! refused with 413 before it is read, and a delivery for an account that is not configured
//! is counted under the fixed label `provider="unknown"` (a label per name sent would grow
//! the metrics without bound).

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::{
    domain::RefundStatus,
    providers::{ProviderKind, REGISTRY, WebhookError},
    refunds::{Refunds, WebhookFailure},
};

/// The largest webhook body taken, in bytes (64 KiB: a D24 notification is a few dozen bytes,
/// a PayMongo event a few kilobytes). Larger: 413, nothing read or recorded.
pub const WEBHOOK_BODY_LIMIT: usize = 64 * 1024;

/// The `provider` label of deliveries for an account that is not configured.
const UNKNOWN_ACCOUNT_LABEL: &str = "unknown";

#[derive(Clone, Debug)]
struct HttpState {
    refunds: Refunds,
    metrics: PrometheusHandle,
    shutdown: CancellationToken,
}

/// The router.
pub fn router(refunds: Refunds, metrics: PrometheusHandle, shutdown: CancellationToken) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics));
    // `/webhooks/{kind}/{account}` for every provider that sends webhooks.
    for registration in REGISTRY.iter().filter(|r| r.webhooks) {
        let kind = registration.kind;
        router = router.route(
            &format!("/webhooks/{kind}/{{provider}}"),
            post(
                move |State(state): State<HttpState>,
                      Path(provider): Path<String>,
                      headers: HeaderMap,
                      body: Bytes| webhook(state, provider, kind, headers, body),
            )
            .layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT)),
        );
    }
    router.with_state(HttpState {
        refunds,
        metrics,
        shutdown,
    })
}

/// 200 while the process serves.
async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 when the store answers and the gateway is not shutting down; 503 otherwise.
async fn readyz(State(state): State<HttpState>) -> Response {
    if state.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match state.refunds.store().ping().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check: store unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "store unreachable\n").into_response()
        }
    }
}

async fn render_metrics(State(state): State<HttpState>) -> Response {
    // Refund counts come from the store at scrape time, so they are right across restarts.
    if let Ok(counts) = state.refunds.store().count_by_status().await {
        for account in state.refunds.providers().names() {
            for status in RefundStatus::ALL {
                metrics::gauge!("refund_gateway_refunds", "provider" => account.to_owned(), "status" => status.as_str())
                    .set(0.0);
            }
        }
        for (provider, status, n) in counts {
            metrics::gauge!("refund_gateway_refunds", "provider" => provider, "status" => status.as_str())
                .set(n as f64);
        }
    }
    state.refunds.providers().record_gauges();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn webhook(
    state: HttpState,
    provider: String,
    kind: ProviderKind,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // A span per delivery (a provider that sends `traceparent` continues its trace); the
    // refunds it names are recorded on it as they are found.
    let span = tracing::debug_span!(
        "webhook",
        provider = %provider,
        kind = %kind,
        refund_id = tracing::field::Empty,
    );
    crate::telemetry::continue_trace(&span, &headers);
    let result = state
        .refunds
        .handle_webhook(&provider, kind, &headers, &body)
        .instrument(span)
        .await;
    let (status, outcome, text) = match &result {
        Ok(_) => (StatusCode::OK, "accepted", "ok\n".to_owned()),
        Err(WebhookFailure::UnknownAccount) => (
            StatusCode::NOT_FOUND,
            "unknown_account",
            format!("no {kind} provider account named {provider:?}\n"),
        ),
        Err(WebhookFailure::Refused(WebhookError::BadSignature(_))) => (
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            "bad signature\n".to_owned(),
        ),
        Err(WebhookFailure::Refused(WebhookError::Malformed(_))) => (
            StatusCode::BAD_REQUEST,
            "malformed",
            "malformed notification\n".to_owned(),
        ),
        Err(WebhookFailure::Refused(WebhookError::Unsupported)) => (
            StatusCode::NOT_FOUND,
            "unsupported",
            "this provider sends no webhooks\n".to_owned(),
        ),
        Err(WebhookFailure::Retry(_)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "retry",
            "could not process now; deliver again\n".to_owned(),
        ),
    };
    let label = match &result {
        Ok(known) => {
            tracing::info!(provider, kind = %kind, known, "webhook accepted");
            provider
        }
        Err(WebhookFailure::UnknownAccount) => {
            // Anyone can send these: no warning per request, and no label from the URL.
            tracing::debug!(kind = %kind, "webhook for an account that is not configured");
            UNKNOWN_ACCOUNT_LABEL.to_owned()
        }
        // Asked to deliver again (a budget spent, the store away: logged where it happened).
        Err(err @ WebhookFailure::Retry(_)) => {
            tracing::info!(provider, kind = %kind, error = %err, "webhook to be delivered again");
            provider
        }
        Err(err) => {
            tracing::warn!(provider, kind = %kind, error = %err, "webhook not taken");
            provider
        }
    };
    metrics::counter!("refund_gateway_webhooks_total", "provider" => label, "outcome" => outcome)
        .increment(1);
    (status, text).into_response()
}
