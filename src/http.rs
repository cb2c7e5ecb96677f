//! The HTTP side on `http_listen`: liveness, readiness, Prometheus metrics and the provider
//! webhook routes (CONTRACT.md section 2).

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    domain::RefundStatus,
    providers::{ProviderKind, REGISTRY, WebhookError},
    refunds::{Refunds, WebhookFailure},
};

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
            ),
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
    let result = state
        .refunds
        .handle_webhook(&provider, kind, &headers, &body)
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
    match &result {
        Ok(known) => tracing::info!(provider, kind = %kind, known, "webhook accepted"),
        Err(err) => tracing::warn!(provider, kind = %kind, error = %err, "webhook not taken"),
    }
    metrics::counter!("refund_gateway_webhooks_total", "provider" => provider, "outcome" => outcome)
        .increment(1);
    (status, text).into_response()
}
