//! A faithful D24 simulator (Deposits API v3, PROVIDERS.md section 1, seeds S001 and S003):
//! D24's routes under `/v3/...` with D24's header checks, refunds that move through their
//! statuses by themselves, notifications POSTed to each refund's `notification_url`, and the
//! sandbox admin API under `/sandbox/...` (see [`admin`]).
//!
//! Header checks on every `/v3` request, in this order (errors are D24's flat
//! `{"code", "description", "type"}`):
//! - `X-Login`, `X-Date` or `Authorization` missing, or `X-Date` / `Authorization` not in
//!   D24's format: 101 MISSING_REQUIRED_HEADER;
//! - `X-Idempotency-Key` sent blank: 105 EMPTY_HEADER_VALUE;
//! - `X-Login` not the sandbox login: 100 INVALID_CREDENTIALS (HTTP 401);
//! - `X-Date` more than 5 minutes away from the simulator's clock: 103 INVALID_DATE_RANGE;
//! - `Authorization` not `D24 hex(HMAC-SHA256(secret, X-Date + X-Login + body))`: 102.
//!
//! Routes:
//! - `POST /v3/refunds`: the rules of [`state`]; answers `{refund_id}` (a number) for
//!   bank/cash deposits, and `{refund_id: "…", deposit_id, merchant_invoice_id, refund_info}`
//!   for cards (SUCCESS, IN_PROGRESS or REJECTED with `reason` and `reason_code`);
//! - `GET /v3/refunds/{id}`: `{deposit_id, merchant_invoice_id, status, amount}`, without
//!   `amount` while PENDING (as D24's example); unknown id: 404 with code 208;
//! - `GET /v3/deposits/{id}`: the deposit (JSDK's fields); unknown id: 404 with the nested
//!   error shape `{"error": {"code": "208", "message": …}}` seen on this endpoint.
//!
//! Every status change (the creation included) is notified: `POST {"refund_id": N}` to the
//! refund's `notification_url`, sent again with backoff while the answer is not 200 (see
//! [`state::Timing`]).

mod admin;
pub mod fixtures;
pub mod signature;
pub mod state;
pub mod wire;

use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::{Path, Request, State as AxumState},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::Utc;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use self::fixtures::fixtures_table;
use self::state::{Faults, NewRefund, NotificationRecord, Stats, Timing};
pub use self::wire::{CardResult, DepositState, RefundState};
use super::faults::{self, Arranged, CreateFaults, FaultCell, Spec, Support, Target};
use crate::json_decimal;

/// The deposit API key (`X-Login`) the simulator accepts (public: it guards nothing).
pub const D24_SANDBOX_LOGIN: &str = "sandbox-d24-login";
/// The API signature secret the simulator verifies with (public: it guards nothing).
pub const D24_SANDBOX_SECRET: &str = "sandbox-d24-secret";

/// How far `X-Date` may be from the simulator's clock (D24 does not document its window).
pub const CLOCK_WINDOW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// The largest request body read.
const MAX_BODY: usize = 1 << 20;

/// How long one notification POST may take.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// How the shared fault code speaks D24.
pub(crate) static SPEC: Spec = Spec {
    provider: "d24",
    support: Support {
        webhooks: true,
        lagging_lists: false,
    },
    is_refund_create: |method, path| method == Method::POST && path.ends_with("/v3/refunds"),
    error: |status, rate_limited| {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let description = if rate_limited {
            "Too many requests (sandbox fault)"
        } else {
            "Simulated failure (sandbox fault)"
        };
        (
            status,
            Json(serde_json::json!({
                "code": 700,
                "description": description,
                "type": "INTERNAL_ERROR",
            })),
        )
            .into_response()
    },
    amount_pointers: &["/refund_info/amount", "/amount"],
};

/// The D24 simulator's shared state. Clones share it.
#[derive(Clone, Debug)]
pub struct D24Sim {
    state: Arc<Mutex<state::State>>,
    faults: FaultCell,
    client: reqwest::Client,
}

impl Default for D24Sim {
    fn default() -> Self {
        Self::new()
    }
}

impl D24Sim {
    /// A simulator holding the [`fixtures`].
    pub fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new(state::State::with_fixtures())),
            faults: FaultCell::default(),
            client: reqwest::Client::builder()
                .timeout(NOTIFY_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a reqwest client always builds"),
        }
    }

    fn lock(&self) -> MutexGuard<'_, state::State> {
        // Nothing panics while holding the lock; if something ever did, the data is still
        // the best there is.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// D24's routes and the admin API, relative to the simulator's base URL.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route(
                "/v3/refunds",
                post(|sim, headers, body| faults::detached(create_refund(sim, headers, body))),
            )
            .route("/v3/refunds/{id}", get(get_refund))
            .route("/v3/deposits/{id}", get(get_deposit))
            .route_layer(middleware::from_fn_with_state(self.clone(), check_headers))
            .layer(middleware::from_fn_with_state(
                self.clone(),
                count_and_fault,
            ))
            .with_state(self.clone());
        api.merge(admin::router(self.clone()))
    }

    /// A deposit as the simulator holds it.
    pub fn deposit(&self, id: u64) -> Option<state::Deposit> {
        self.lock().deposits.get(&id).cloned()
    }

    /// A refund as the simulator holds it.
    pub fn refund(&self, id: u64) -> Option<state::Refund> {
        self.lock().refunds.get(&id).cloned()
    }

    /// Every refund of a deposit, oldest first.
    pub fn refunds_of(&self, deposit_id: u64) -> Vec<state::Refund> {
        self.lock()
            .refunds
            .values()
            .filter(|r| r.deposit_id == deposit_id)
            .cloned()
            .collect()
    }

    /// The counters, with what the simulator holds by deposit.
    pub fn stats(&self) -> Stats {
        let state = self.lock();
        let mut stats = state.stats.clone();
        stats.refunds_by_payment = state.refunds_by_payment();
        stats.faults_applied = self.faults.applied();
        stats
    }

    /// The notification attempts, oldest first (the last 1000).
    pub fn notifications(&self) -> Vec<NotificationRecord> {
        self.lock().notifications.iter().cloned().collect()
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

    pub fn timing(&self) -> Timing {
        self.lock().timing.clone()
    }

    /// Replaces the timing.
    pub fn set_timing(&self, timing: Timing) -> Result<(), String> {
        timing.check()?;
        self.lock().timing = timing;
        Ok(())
    }

    /// Sets a refund's status as D24 would report it next (e.g. a bank reversing a
    /// COMPLETED refund to REJECTED), notifies it, and lets it move on by itself from there.
    pub fn force_status(&self, id: u64, status: RefundState) -> Option<state::Refund> {
        let refund = self.lock().set_status(id, status, Utc::now())?;
        self.changed(&refund);
        Some(refund)
    }

    /// Sends the refund's notification now, even with notifications switched off (D24's
    /// "resend" button in the Merchant Panel). `false` if there is no such refund or it has
    /// no notification URL.
    pub fn resend_notification(&self, id: u64) -> bool {
        let url = self
            .lock()
            .refunds
            .get(&id)
            .and_then(|r| r.notification_url.clone());
        match url {
            Some(url) => {
                self.spawn_delivery(id, url);
                true
            }
            None => false,
        }
    }

    /// Back to the fixtures, default timing, no faults, counters at zero. Steps scheduled
    /// before do nothing; notifications already on their way still go out.
    pub fn reset(&self) {
        let mut state = self.lock();
        let epoch = state.epoch + 1;
        *state = state::State::with_fixtures();
        state.epoch = epoch;
        self.faults.reset();
    }

    /// After a status change: notify it (when notifications are on) and schedule the next
    /// step.
    fn changed(&self, refund: &state::Refund) {
        let notify = self.lock().timing.notifications;
        if notify && let Some(url) = &refund.notification_url {
            self.notify(refund.id, url.clone());
        }
        self.schedule_next_step(refund.id);
    }

    /// Sends a status change's notification, through the webhook faults.
    fn notify(&self, id: u64, url: String) {
        let faults = self.faults.take(Target::Webhook);
        let key = id.to_string();
        let arranged = faults::arrange_webhooks(
            faults.as_ref(),
            &mut self.lock().webhook_hold,
            &key,
            vec![(id, url)],
        );
        let sim = self.clone();
        match arranged {
            Arranged::Send(deliveries) => {
                tokio::spawn(async move { sim.deliver_in_order(deliveries).await });
            }
            Arranged::Held => {
                tokio::spawn(async move {
                    tokio::time::sleep(faults::REORDER_HOLD).await;
                    let deliveries = sim.lock().webhook_hold.release(&key);
                    sim.deliver_in_order(deliveries).await;
                });
            }
        }
    }

    /// Delivers notifications one after the other.
    async fn deliver_in_order(&self, deliveries: Vec<(u64, String)>) {
        for (id, url) in deliveries {
            self.deliver(id, url).await;
        }
    }

    fn schedule_next_step(&self, id: u64) {
        let planned = {
            let state = self.lock();
            state.refunds.get(&id).and_then(|r| {
                state
                    .next_step(r)
                    .map(|(to, after)| (state.epoch, r.version, to, after))
            })
        };
        let Some((epoch, version, to, after)) = planned else {
            return;
        };
        let sim = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(after)).await;
            let stepped = sim.lock().step(epoch, id, version, to, Utc::now());
            if let Some(refund) = stepped {
                sim.changed(&refund);
            }
        });
    }

    /// Delivers a notification in a task of its own.
    fn spawn_delivery(&self, id: u64, url: String) {
        let sim = self.clone();
        tokio::spawn(async move { sim.deliver(id, url).await });
    }

    /// POSTs `{"refund_id": N}` to `url`, again with backoff while the answer is not 200.
    async fn deliver(&self, id: u64, url: String) {
        let sim = self;
        {
            let (retry, max_retries) = {
                let timing = &sim.lock().timing;
                (timing.notify_retry_ms, timing.notify_max_retries)
            };
            let body = format!(r#"{{"refund_id":{id}}}"#);
            let mut wait = retry;
            for attempt in 1..=max_retries + 1 {
                let started_at = Utc::now();
                let result = sim
                    .client
                    .post(&url)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                let (answered, error) = match &result {
                    Ok(response) => (Some(response.status().as_u16()), None),
                    Err(e) => (None, Some(e.to_string())),
                };
                sim.lock().log_notification(NotificationRecord {
                    refund_id: id,
                    url: url.clone(),
                    attempt,
                    started_at,
                    answered,
                    error,
                });
                if answered == Some(200) {
                    return;
                }
                if attempt <= max_retries {
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    wait = wait.saturating_mul(5);
                }
            }
        }
    }
}

/// D24's error answer for a code: its HTTP status and the flat body.
fn error(code: u32) -> Response {
    let info = wire::code_info(code);
    let status = info
        .and_then(|i| StatusCode::from_u16(i.http_status).ok())
        .unwrap_or(StatusCode::BAD_REQUEST);
    let body = serde_json::json!({
        "code": code,
        "description": info.map_or("Error", |i| i.description),
        "type": info.map_or("ERROR", |i| i.kind),
    });
    (status, Json(body)).into_response()
}

/// Outermost layer of D24's routes: counts requests and applies the shared faults.
async fn count_and_fault(
    AxumState(sim): AxumState<D24Sim>,
    request: Request,
    next: Next,
) -> Response {
    {
        let mut state = sim.lock();
        state.stats.requests += 1;
        if (SPEC.is_refund_create)(request.method(), request.uri().path()) {
            state.stats.refund_posts += 1;
        }
    }
    faults::serve(&sim.faults, &SPEC, request, next).await
}

/// The text of a header, `None` when missing or not text.
fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Which header check fails, if any (see the module documentation).
fn header_error(headers: &HeaderMap, body: &[u8]) -> Option<u32> {
    let (Some(login), Some(date), Some(authorization)) = (
        header_text(headers, "x-login"),
        header_text(headers, "x-date"),
        header_text(headers, "authorization"),
    ) else {
        return Some(101);
    };
    let Some(at) = signature::parse_x_date(date) else {
        return Some(101);
    };
    if login.is_empty() || !signature::is_well_formed(authorization) {
        return Some(101);
    }
    if let Some(key) = headers.get("x-idempotency-key")
        && key.as_bytes().iter().all(u8::is_ascii_whitespace)
    {
        return Some(105);
    }
    if login != D24_SANDBOX_LOGIN {
        return Some(100);
    }
    if (Utc::now() - at).abs() > CLOCK_WINDOW {
        return Some(103);
    }
    if !signature::verify(
        D24_SANDBOX_SECRET.as_bytes(),
        date,
        login,
        body,
        authorization,
    ) {
        return Some(102);
    }
    None
}

/// D24's header checks, on the exact bytes received.
async fn check_headers(
    AxumState(sim): AxumState<D24Sim>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return error(202);
    };
    if let Some(code) = header_error(&parts.headers, &bytes) {
        *sim.lock().stats.header_errors.entry(code).or_default() += 1;
        return error(code);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// `POST /v3/refunds` body, as D24 reads it: `amount` a number or a numeric string (S003
/// sends `"100"`).
#[derive(Deserialize)]
struct RefundBody {
    deposit_id: u64,
    invoice_id: String,
    #[serde(default, with = "json_decimal::option")]
    amount: Option<Decimal>,
    #[serde(default)]
    bank_account: Option<serde_json::Value>,
    #[serde(default)]
    comments: Option<String>,
    #[serde(default)]
    notification_url: Option<String>,
}

/// A card refund's immediate answer (S003).
#[derive(Serialize)]
struct CardAnswer {
    refund_id: String,
    deposit_id: u64,
    merchant_invoice_id: String,
    refund_info: CardInfo,
}

#[derive(Serialize)]
struct CardInfo {
    #[serde(rename = "type")]
    kind: &'static str,
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason_code: Option<String>,
    payment_method: String,
    payment_method_name: &'static str,
    #[serde(with = "json_decimal")]
    amount: Decimal,
    currency: String,
    created_at: String,
}

fn method_name(code: &str) -> &'static str {
    match code {
        "AE" => "American Express",
        "VI" => "Visa",
        "MC" => "Mastercard",
        _ => "Card",
    }
}

/// The answer to a created refund.
fn created_answer(refund: &state::Refund) -> Response {
    if !refund.card {
        return Json(serde_json::json!({ "refund_id": refund.id })).into_response();
    }
    let result = refund.card_result.unwrap_or(CardResult::Success);
    let reason = match result {
        CardResult::InProgress => Some("Check refund status or await its notification".into()),
        _ => refund.reason.clone(),
    };
    Json(CardAnswer {
        refund_id: refund.id.to_string(),
        deposit_id: refund.deposit_id,
        merchant_invoice_id: refund.merchant_invoice_id.clone(),
        refund_info: CardInfo {
            kind: "CREDIT_CARD",
            result: result.as_str(),
            reason,
            reason_code: refund.reason_code.clone(),
            payment_method: refund.payment_method.clone(),
            payment_method_name: method_name(&refund.payment_method),
            amount: refund.amount.normalize(),
            currency: refund.currency.clone(),
            created_at: refund.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        },
    })
    .into_response()
}

/// `POST /v3/refunds`, with the refund faults.
async fn create_refund(
    AxumState(sim): AxumState<D24Sim>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = serde_json::from_slice::<RefundBody>(&body);
    sim.lock()
        .count_refund_post(parsed.as_ref().ok().map(|b| b.deposit_id));
    let faults = CreateFaults::take(&sim.faults, &SPEC);
    if let Some(answer) = faults.before_apply().await {
        return answer;
    }
    let Ok(body) = parsed else {
        return error(202);
    };
    let key = header_text(&headers, "x-idempotency-key").map(str::to_owned);
    let new = NewRefund {
        deposit_id: body.deposit_id,
        invoice_id: body.invoice_id,
        amount: body.amount,
        bank_account: body.bank_account,
        comments: body.comments,
        notification_url: body.notification_url,
    };
    let result = sim.lock().create_refund(new, key.as_deref(), Utc::now());
    let answer = match result {
        Ok(refund) => {
            tracing::debug!(
                refund_id = refund.id,
                deposit_id = refund.deposit_id,
                status = refund.status.as_str(),
                "D24 simulator created a refund"
            );
            sim.changed(&refund);
            created_answer(&refund)
        }
        Err(code) => error(code),
    };
    faults.after_apply(answer).await
}

/// The status read-back body (D24-RS): no `amount` while PENDING, as D24's example.
#[derive(Serialize)]
struct StatusAnswer {
    deposit_id: u64,
    merchant_invoice_id: String,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none", with = "json_decimal::option")]
    amount: Option<Decimal>,
}

/// `GET /v3/refunds/{id}`
async fn get_refund(AxumState(sim): AxumState<D24Sim>, Path(id): Path<String>) -> Response {
    let Some(refund) = id.parse::<u64>().ok().and_then(|id| sim.refund(id)) else {
        return error(208);
    };
    Json(StatusAnswer {
        deposit_id: refund.deposit_id,
        merchant_invoice_id: refund.merchant_invoice_id,
        status: refund.status.as_str(),
        amount: (refund.status != RefundState::Pending).then(|| refund.amount.normalize()),
    })
    .into_response()
}

/// The deposit-status body (JSDK `DepositStatusResponse`).
#[derive(Serialize)]
struct DepositAnswer {
    user_id: String,
    deposit_id: u64,
    invoice_id: String,
    country: String,
    currency: String,
    #[serde(skip_serializing_if = "Option::is_none", with = "json_decimal::option")]
    usd_amount: Option<Decimal>,
    #[serde(with = "json_decimal")]
    local_amount: Decimal,
    payment_method: String,
    payment_type: String,
    status: &'static str,
}

/// `GET /v3/deposits/{id}`; unknown deposits answer the nested error shape.
async fn get_deposit(AxumState(sim): AxumState<D24Sim>, Path(id): Path<String>) -> Response {
    let Some(d) = id.parse::<u64>().ok().and_then(|id| sim.deposit(id)) else {
        return (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({
                "error": {"code": "208", "message": "Resource not found", "details": ["deposit_id"]}
            })),
        )
            .into_response();
    };
    Json(DepositAnswer {
        user_id: format!("sandbox-user-{}", d.id),
        deposit_id: d.id,
        invoice_id: d.invoice_id,
        country: d.country,
        currency: d.currency,
        usd_amount: d.usd_amount.map(|a| a.normalize()),
        local_amount: d.amount,
        payment_method: d.payment_method,
        payment_type: d.payment_type,
        status: d.status.as_str(),
    })
    .into_response()
}

#[cfg(test)]
mod tests {
    use axum::{body::Body, http::HeaderValue};

    use super::{fixtures::*, *};

    /// A signed request, as the adapter would make it, with `tweak` applied to the headers.
    fn signed(
        method: Method,
        path: &str,
        body: &str,
        tweak: impl FnOnce(&mut HeaderMap),
    ) -> Request {
        let date = signature::x_date(Utc::now());
        let auth = signature::authorization(
            D24_SANDBOX_SECRET.as_bytes(),
            &date,
            D24_SANDBOX_LOGIN,
            body.as_bytes(),
        );
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .header("x-date", date)
            .header("x-login", D24_SANDBOX_LOGIN)
            .header("authorization", auth)
            .body(Body::from(body.to_owned()))
            .unwrap();
        tweak(request.headers_mut());
        request
    }

    async fn send(sim: &D24Sim, request: Request) -> (StatusCode, serde_json::Value) {
        let (status, bytes) = crate::testing::send(sim.router(), request).await;
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    fn card_body(amount: &str) -> String {
        format!(
            r#"{{"deposit_id":{CARD_MXN},"invoice_id":"{CARD_MXN_INVOICE}","amount":{amount}}}"#
        )
    }

    type Tweak = Box<dyn FnOnce(&mut HeaderMap)>;

    /// Every header rule answers its code, and nothing is created.
    #[tokio::test]
    async fn header_checks_answer_their_codes() {
        let sim = D24Sim::new();
        let body = card_body("5");
        let old = signature::x_date(Utc::now() - chrono::TimeDelta::minutes(6));
        let cases: Vec<(Tweak, u32, StatusCode)> = vec![
            (
                Box::new(|h| {
                    h.remove("x-login");
                }),
                101,
                StatusCode::BAD_REQUEST,
            ),
            (
                Box::new(|h| {
                    h.remove("authorization");
                }),
                101,
                StatusCode::BAD_REQUEST,
            ),
            (
                Box::new(|h| {
                    h.insert(
                        "x-date",
                        HeaderValue::from_static("2020-06-21T12:33:20.123Z"),
                    );
                }),
                101,
                StatusCode::BAD_REQUEST,
            ),
            (
                Box::new(|h| {
                    h.insert("authorization", HeaderValue::from_static("Bearer x"));
                }),
                101,
                StatusCode::BAD_REQUEST,
            ),
            (
                Box::new(|h| {
                    h.insert("x-idempotency-key", HeaderValue::from_static(" "));
                }),
                105,
                StatusCode::BAD_REQUEST,
            ),
            (
                Box::new(|h| {
                    h.insert("x-login", HeaderValue::from_static("someone-else"));
                }),
                100,
                StatusCode::UNAUTHORIZED,
            ),
            (
                Box::new(move |h| {
                    h.insert("x-date", HeaderValue::from_str(&old).unwrap());
                }),
                103,
                StatusCode::BAD_REQUEST,
            ),
            (
                Box::new(|h| {
                    h.insert(
                        "authorization",
                        HeaderValue::from_static(
                            "D24 0000000000000000000000000000000000000000000000000000000000000000",
                        ),
                    );
                }),
                102,
                StatusCode::BAD_REQUEST,
            ),
        ];
        for (tweak, code, status) in cases {
            let (got, json) = send(&sim, signed(Method::POST, "/v3/refunds", &body, tweak)).await;
            assert_eq!(
                (got, json["code"].as_u64()),
                (status, Some(u64::from(code))),
                "{json}"
            );
        }
        // A body changed after signing: 102.
        let mut request = signed(Method::POST, "/v3/refunds", &body, |_| {});
        *request.body_mut() = Body::from(card_body("6"));
        let (_, json) = send(&sim, request).await;
        assert_eq!(json["code"], 102);
        let stats = sim.stats();
        assert_eq!(stats.refunds_created, 0);
        assert_eq!(stats.refund_posts, 9);
        assert!(stats.refund_posts_by_deposit.is_empty());
        assert_eq!(stats.header_errors[&101], 4);
    }

    /// A card refund answers as S003 (string id, exact amount); a cash refund answers
    /// `{refund_id}` as a number; read-backs follow D24-RS.
    #[tokio::test]
    async fn refunds_answer_as_documented() {
        let sim = D24Sim::new();
        let (status, json) = send(
            &sim,
            signed(Method::POST, "/v3/refunds", &card_body("505.95"), |_| {}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{json}");
        assert_eq!(json["refund_id"], "80000001");
        assert_eq!(json["refund_info"]["result"], "SUCCESS");
        assert_eq!(json["refund_info"]["amount"].to_string(), "505.95");
        assert_eq!(json["merchant_invoice_id"], CARD_MXN_INVOICE);

        let cash = format!(
            r#"{{"deposit_id":{CASH_MXN},"invoice_id":"{CASH_MXN_INVOICE}","amount":"100","bank_account":{{"beneficiary":"Carlos Ramirez","bank_code":1,"branch":"9283","account_number":"18293435","account_type":"SAVING"}}}}"#
        );
        let (status, json) = send(&sim, signed(Method::POST, "/v3/refunds", &cash, |_| {})).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        assert_eq!(json, serde_json::json!({"refund_id": 168284}));

        let (status, json) =
            send(&sim, signed(Method::GET, "/v3/refunds/168284", "", |_| {})).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            json,
            serde_json::json!({"deposit_id": CASH_MXN, "merchant_invoice_id": CASH_MXN_INVOICE, "status": "PENDING"})
        );
        let (_, json) = send(
            &sim,
            signed(Method::GET, "/v3/refunds/80000001", "", |_| {}),
        )
        .await;
        assert_eq!(json["status"], "COMPLETED");
        assert_eq!(json["amount"].to_string(), "505.95");
        let (status, json) = send(&sim, signed(Method::GET, "/v3/refunds/999", "", |_| {})).await;
        assert_eq!(
            (status, json["code"].as_u64()),
            (StatusCode::NOT_FOUND, Some(208))
        );
    }

    /// Deposits read with JSDK's fields; an unknown one answers the nested error shape.
    #[tokio::test]
    async fn deposits_read_back() {
        let sim = D24Sim::new();
        let (status, json) = send(
            &sim,
            signed(Method::GET, &format!("/v3/deposits/{CARD_CLP}"), "", |_| {}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json["local_amount"].to_string(), "15000");
        assert_eq!(json["currency"], "CLP");
        assert_eq!(json["payment_type"], "CREDIT_CARD");
        assert_eq!(json["status"], "COMPLETED");
        let (status, json) = send(&sim, signed(Method::GET, "/v3/deposits/1", "", |_| {})).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(json["error"]["code"], "208");
    }

    /// A refused body is D24's flat error with its documented HTTP status.
    #[tokio::test]
    async fn refusals_use_the_code_table() {
        let sim = D24Sim::new();
        for (body, code, status) in [
            (card_body("999"), 802_u32, StatusCode::BAD_REQUEST),
            (
                format!(
                    r#"{{"deposit_id":{CASH_MXN},"invoice_id":"{CASH_MXN_INVOICE}","amount":1}}"#
                ),
                804,
                StatusCode::BAD_REQUEST,
            ),
            (
                format!(
                    r#"{{"deposit_id":{PENDING_DEPOSIT},"invoice_id":"{PENDING_DEPOSIT_INVOICE}"}}"#
                ),
                801,
                StatusCode::BAD_REQUEST,
            ),
            (
                r#"{"deposit_id":1,"invoice_id":"x"}"#.to_owned(),
                208,
                StatusCode::NOT_FOUND,
            ),
            (
                r#"{"deposit_id":"x"}"#.to_owned(),
                202,
                StatusCode::BAD_REQUEST,
            ),
        ] {
            let (got, json) = send(&sim, signed(Method::POST, "/v3/refunds", &body, |_| {})).await;
            assert_eq!(
                (got, json["code"].as_u64()),
                (status, Some(u64::from(code))),
                "{body}"
            );
            assert!(json["type"].is_string() && json["description"].is_string());
        }
        assert_eq!(sim.stats().refunds_created, 0);
    }
}
