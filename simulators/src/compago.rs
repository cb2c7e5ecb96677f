//! A faithful Compago simulator (docs/PROVIDERS.md section 3): Compago's own
//! routes under `/api/...` with the `x-api-key` check, plus the sandbox admin API under
//! `/sandbox/...` (see [`admin`]).
//!
//! Behaviour, as documented:
//! - every `/api` route wants `x-api-key`; missing or wrong: 401 `{"message":"Unauthorized"}`;
//! - `POST .../payment/{paymentId}/refund` (optional `{"reason": "…"}`) refunds a CONFIRMED
//!   payment in full and answers `{id, status: "REFUNDED", amount, currency}`; any other
//!   status: 400 `{"message":"Payment not CONFIRMED"}`;
//! - 404 `{"message":"Payment method not found"}` / `{"message":"Payment not found"}` (a
//!   payment of another method is "Payment not found");
//! - `DELETE /api/payment-method/{id}` revokes an ACTIVE method, else 400;
//! - lists are paged with `page` (from 1) and `pageSize` (default 100, at most 500) and answer
//!   `{count, page, pageSize, items}` with `count` the number of matches;
//! - amounts are JSON numbers in pesos with exactly their digits (`500`, `505.95`).
//!
//! Sandbox only: the load-test payment method `0000000b-e9c0-4000-8000-00000000bea7`
//! ([`fixtures::LOAD_TEST_METHOD`]) holds every payment UUID: one the simulator has not seen
//! is created on first sight (a read or a refund) as CONFIRMED 100.00 MXN, so load tests can
//! refund fresh payments without creating them first (`bench/`, BENCHMARKS.md).
//!
//! Not documented, so chosen here: error bodies are `{"message": "…"}`; ids are matched as
//! UUIDs in any case; a bad `page`, `pageSize` or `status` is a 400.

mod admin;
pub mod fixtures;
pub mod state;

use std::sync::{Arc, Mutex, MutexGuard};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, Request, State as AxumState},
    http::{Method, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use self::fixtures::fixtures_table;
use self::state::{Faults, MethodStatus, Payment, PaymentMethod, PaymentStatus, Stats};
use super::faults::{self, CreateFaults, FaultCell, Spec, Support};
use crate::json_decimal;

/// The API key the simulator accepts (public: it guards nothing).
pub const COMPAGO_SANDBOX_API_KEY: &str = "sandbox-compago-key";

/// The most items one page of a list may hold (S002).
const MAX_PAGE_SIZE: u32 = 500;
const DEFAULT_PAGE_SIZE: u32 = 100;

/// How the shared fault code speaks Compago.
pub(crate) static SPEC: Spec = Spec {
    provider: "compago",
    support: Support {
        webhooks: false,
        lagging_lists: false,
    },
    is_refund_create: |method, path| method == Method::POST && path.ends_with("/refund"),
    error: |status, rate_limited| {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let text = if rate_limited {
            "Too many requests (sandbox fault)"
        } else {
            "Simulated failure (sandbox fault)"
        };
        message(status, text)
    },
    amount_pointers: &["/amount"],
};

/// The Compago simulator's shared state. Clones share it.
#[derive(Clone, Debug)]
pub struct CompagoSim {
    state: Arc<Mutex<state::State>>,
    faults: FaultCell,
}

impl Default for CompagoSim {
    fn default() -> Self {
        Self::new()
    }
}

impl CompagoSim {
    /// A simulator holding the [`fixtures`].
    pub fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new(state::State::with_fixtures())),
            faults: FaultCell::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, state::State> {
        // Nothing panics while holding the lock; if something ever did, the data is still
        // the best there is.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Compago's routes and the admin API, relative to the simulator's base URL.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/api/payment-method", get(list_methods))
            .route(
                "/api/payment-method/{id}",
                get(get_method).delete(revoke_method),
            )
            .route("/api/payment-method/{id}/payment", get(list_payments))
            .route(
                "/api/payment-method/{id}/payment/{payment_id}",
                get(get_payment),
            )
            .route(
                "/api/payment-method/{id}/payment/{payment_id}/refund",
                post(|sim, path, body| faults::detached(refund(sim, path, body))),
            )
            .route_layer(middleware::from_fn(require_api_key))
            .layer(middleware::from_fn_with_state(
                self.clone(),
                count_and_fault,
            ))
            .with_state(self.clone());
        api.merge(admin::router(self.clone()))
    }

    /// A payment as the simulator holds it, by id (any method).
    pub fn payment(&self, id: &str) -> Option<Payment> {
        let id = uuid::Uuid::try_parse(id).ok()?;
        self.lock().payments.get(&id).cloned()
    }

    /// A payment method, by id.
    pub fn payment_method(&self, id: &str) -> Option<PaymentMethod> {
        self.lock().method(id).cloned()
    }

    /// The counters, with what the simulator holds by payment.
    pub fn stats(&self) -> Stats {
        let state = self.lock();
        let mut stats = state.stats.clone();
        for p in state.payments.values().filter(|p| p.refunded_at.is_some()) {
            stats
                .refunds_by_payment
                .entry(p.id.to_string())
                .or_default()
                .add(p.amount, &p.currency, true);
        }
        stats.faults_applied = self.faults.applied();
        stats
    }

    pub fn faults(&self) -> Faults {
        self.faults.get()
    }

    /// Replaces the fault switches.
    pub fn set_faults(&self, faults: Faults) -> Result<(), String> {
        self.faults.set(faults, SPEC.support)
    }

    pub fn clear_faults(&self) {
        self.faults.clear();
    }

    /// Back to the fixtures, no faults, counters at zero.
    pub fn reset(&self) {
        *self.lock() = state::State::with_fixtures();
        self.faults.reset();
    }
}

/// `{"message": text}` with a status: the shape of every error answer.
fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(serde_json::json!({ "message": text }))).into_response()
}

/// Outermost layer of Compago's routes: counts requests and applies the shared faults.
async fn count_and_fault(
    AxumState(sim): AxumState<CompagoSim>,
    request: Request,
    next: Next,
) -> Response {
    sim.lock().stats.requests += 1;
    faults::serve(&sim.faults, &SPEC, request, next).await
}

/// 401 unless the request carries the sandbox API key.
async fn require_api_key(request: Request, next: Next) -> Response {
    let key = request.headers().get("x-api-key");
    if key.is_some_and(|k| k.as_bytes() == COMPAGO_SANDBOX_API_KEY.as_bytes()) {
        next.run(request).await
    } else {
        message(StatusCode::UNAUTHORIZED, "Unauthorized")
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MethodView {
    id: String,
    status: MethodStatus,
    external_id: String,
    card: CardView,
    created_at: DateTime<Utc>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CardView {
    last_four_digits: String,
    network_type: String,
}

impl MethodView {
    fn of(m: &PaymentMethod) -> Self {
        Self {
            id: m.id.to_string(),
            status: m.status,
            external_id: m.external_id.clone(),
            card: CardView {
                last_four_digits: m.last_four_digits.clone(),
                network_type: m.network_type.clone(),
            },
            created_at: m.created_at,
        }
    }
}

/// A payment as Compago writes it: `createdAt` only in lists (S002).
#[derive(Serialize)]
struct PaymentView {
    id: String,
    status: PaymentStatus,
    /// Pesos as a JavaScript server writes them: `500`, `99.9`.
    #[serde(with = "json_decimal")]
    amount: Decimal,
    currency: String,
    #[serde(rename = "createdAt", skip_serializing_if = "Option::is_none")]
    created_at: Option<DateTime<Utc>>,
}

impl PaymentView {
    fn of(p: &Payment, with_created_at: bool) -> Self {
        Self {
            id: p.id.to_string(),
            status: p.status,
            amount: p.amount.normalize(),
            currency: p.currency.clone(),
            created_at: with_created_at.then_some(p.created_at),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Page<T> {
    count: usize,
    page: u32,
    page_size: u32,
    items: Vec<T>,
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    page: Option<String>,
    #[serde(rename = "pageSize")]
    page_size: Option<String>,
}

impl ListQuery {
    /// `(page, page_size)`, or the 400 message.
    fn paging(&self) -> Result<(u32, u32), &'static str> {
        let page = match &self.page {
            None => 1,
            Some(p) => p
                .parse::<u32>()
                .ok()
                .filter(|p| *p >= 1)
                .ok_or("page must be a whole number from 1")?,
        };
        let size = match &self.page_size {
            None => DEFAULT_PAGE_SIZE,
            Some(s) => s
                .parse::<u32>()
                .ok()
                .filter(|s| (1..=MAX_PAGE_SIZE).contains(s))
                .ok_or("pageSize must be a whole number from 1 to 500")?,
        };
        Ok((page, size))
    }

    /// One page of `all`, or the 400 message.
    fn page_of<T, V>(&self, all: Vec<T>, view: impl Fn(T) -> V) -> Result<Page<V>, &'static str> {
        let (page, page_size) = self.paging()?;
        let count = all.len();
        let skip =
            usize::try_from(u64::from(page - 1) * u64::from(page_size)).unwrap_or(usize::MAX);
        let items = all
            .into_iter()
            .skip(skip)
            .take(page_size as usize)
            .map(view)
            .collect();
        Ok(Page {
            count,
            page,
            page_size,
            items,
        })
    }
}

/// `GET /api/payment-method`
async fn list_methods(
    AxumState(sim): AxumState<CompagoSim>,
    Query(query): Query<ListQuery>,
) -> Response {
    let status = match query.status.as_deref().map(MethodStatus::parse) {
        None => None,
        Some(Some(s)) => Some(s),
        Some(None) => return message(StatusCode::BAD_REQUEST, "Invalid status"),
    };
    let state = sim.lock();
    match query.page_of(state.methods_newest_first(status), MethodView::of) {
        Ok(page) => Json(page).into_response(),
        Err(why) => message(StatusCode::BAD_REQUEST, why),
    }
}

/// `GET /api/payment-method/{id}`
async fn get_method(AxumState(sim): AxumState<CompagoSim>, Path(id): Path<String>) -> Response {
    match sim.lock().method(&id) {
        Some(m) => Json(MethodView::of(m)).into_response(),
        None => message(StatusCode::NOT_FOUND, "Payment method not found"),
    }
}

/// `DELETE /api/payment-method/{id}`
async fn revoke_method(AxumState(sim): AxumState<CompagoSim>, Path(id): Path<String>) -> Response {
    match sim.lock().revoke(&id) {
        Ok(()) => Json(serde_json::json!({ "success": true })).into_response(),
        Err(state::RevokeRefusal::NotFound) => {
            message(StatusCode::NOT_FOUND, "Payment method not found")
        }
        Err(state::RevokeRefusal::NotActive) => message(
            StatusCode::BAD_REQUEST,
            "Cannot revoke payment method (not ACTIVE)",
        ),
    }
}

/// `GET /api/payment-method/{id}/payment`
async fn list_payments(
    AxumState(sim): AxumState<CompagoSim>,
    Path(id): Path<String>,
    Query(query): Query<ListQuery>,
) -> Response {
    let status = match query.status.as_deref().map(PaymentStatus::parse) {
        None => None,
        Some(Some(s)) => Some(s),
        Some(None) => return message(StatusCode::BAD_REQUEST, "Invalid status"),
    };
    let state = sim.lock();
    let Some(method) = state.method(&id) else {
        return message(StatusCode::NOT_FOUND, "Payment method not found");
    };
    match query.page_of(state.payments_newest_first(method.id, status), |p| {
        PaymentView::of(p, true)
    }) {
        Ok(page) => Json(page).into_response(),
        Err(why) => message(StatusCode::BAD_REQUEST, why),
    }
}

/// `GET /api/payment-method/{id}/payment/{paymentId}`
async fn get_payment(
    AxumState(sim): AxumState<CompagoSim>,
    Path((id, payment_id)): Path<(String, String)>,
) -> Response {
    let mut state = sim.lock();
    state.see(&id, &payment_id, Utc::now());
    match state.payment(&id, &payment_id) {
        Ok(p) => Json(PaymentView::of(p, false)).into_response(),
        Err(refusal) => message(StatusCode::NOT_FOUND, refusal.message()),
    }
}

#[derive(Deserialize)]
struct RefundBody {
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/payment-method/{id}/payment/{paymentId}/refund`, with the refund faults.
async fn refund(
    AxumState(sim): AxumState<CompagoSim>,
    Path((id, payment_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    sim.lock().count_refund_post(&payment_id);
    let faults = CreateFaults::take(&sim.faults, &SPEC);
    if let Some(answer) = faults.before_apply().await {
        return answer;
    }
    let reason = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match serde_json::from_slice::<RefundBody>(&body) {
            Ok(b) => b.reason,
            Err(_) => return message(StatusCode::BAD_REQUEST, "Invalid request body"),
        }
    };
    let result = sim.lock().refund(&id, &payment_id, reason, Utc::now());
    let answer = match result {
        Ok(payment) => Json(PaymentView::of(&payment, false)).into_response(),
        Err(refusal @ state::RefundRefusal::NotConfirmed) => {
            message(StatusCode::BAD_REQUEST, refusal.message())
        }
        Err(refusal) => message(StatusCode::NOT_FOUND, refusal.message()),
    };
    faults.after_apply(answer).await
}

#[cfg(test)]
mod tests;
