//! A faithful PayMongo simulator (PROVIDERS.md section 2, seed S004): PayMongo's routes under
//! `/v1/...` with Basic auth, plus the sandbox admin API under `/sandbox/...` (see [`admin`]).
//!
//! Behaviour, as documented:
//! - every `/v1` route wants `Authorization: Basic base64("sk_test_...:")` with the sandbox
//!   secret key (the form without the colon is accepted too, as PayMongo's Python SDK sends
//!   it); otherwise 401;
//! - JSON:API envelopes; success is always 200; errors are `{"errors":[{code,detail,source}]}`;
//!   an unknown route is a 404 with an empty body;
//! - `POST /v1/refunds`: the rules and the `Idempotency-Key` replay of [`state`]; a new refund
//!   is `pending`, then settles into `succeeded` or `failed` after the configured delay and
//!   announces it with signed webhooks (test mode: `te` filled, `li` empty) to every
//!   configured URL, retried (bounded) until a 2xx;
//! - `GET /v1/refunds/{id}`, `GET /v1/refunds?payment_id=&limit=&before=&after=` (newest
//!   first, `limit` 1 to 100, default 10, `has_more`), `GET /v1/payments/{id}` (with the
//!   payment's refunds inside).
//!
//! Not documented, so chosen here: the 401 body and code (`unauthorized`); the code for a key
//! reused with other parameters (`idempotency_key_in_use`); the 429 body (PM-RL's text as
//! `too_many_requests`); the list filter is `payment_id` (PROVIDERS.md section 5 item 10).

mod admin;
pub mod fixtures;
pub mod state;
mod validate;
mod views;

use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, Request, State as AxumState},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use base64::Engine as _;
use chrono::Utc;
use hmac::{Hmac, Mac as _};
use serde::Deserialize;
use sha2::Sha256;

pub use self::fixtures::fixtures_table;
use self::state::{Answer, Delivery, Faults, Outcome, Settings, Stats};
use super::faults::{self, Arranged, CreateFaults, FaultCell, Spec, Support, Target};

/// The secret key the simulator accepts (public: it guards nothing). A test-mode key.
pub const PAYMONGO_SANDBOX_SECRET_KEY: &str = "sk_test_SandboxRefundGateway00000000";

/// The secret the simulator signs webhooks with (public: it guards nothing).
pub const PAYMONGO_SANDBOX_WEBHOOK_SECRET: &str = "whsk_SandboxRefundGateway000000000";

/// How the shared fault code speaks PayMongo.
pub(crate) static SPEC: Spec = Spec {
    provider: "paymongo",
    support: Support {
        webhooks: true,
        lagging_lists: true,
    },
    is_refund_create: |method, path| method == Method::POST && path.ends_with("/v1/refunds"),
    error: |status, rate_limited| {
        if rate_limited {
            error(
                status,
                "too_many_requests",
                "Too many requests, please try again later.",
                None,
            )
        } else {
            error(
                status,
                "sandbox_fault",
                "Simulated failure (sandbox fault).",
                None,
            )
        }
    },
    amount_pointers: &["/data/attributes/amount"],
};

/// The PayMongo simulator's shared state. Clones share it.
#[derive(Clone, Debug)]
pub struct PayMongoSim {
    state: Arc<Mutex<state::State>>,
    faults: FaultCell,
    /// Sends webhooks.
    client: reqwest::Client,
}

impl Default for PayMongoSim {
    fn default() -> Self {
        Self::new()
    }
}

impl PayMongoSim {
    /// A simulator holding the [`fixtures`].
    pub fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new(state::State::with_fixtures())),
            faults: FaultCell::default(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
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

    /// PayMongo's routes and the admin API, relative to the simulator's base URL.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/v1/payments/{id}", get(get_payment))
            .route(
                "/v1/refunds",
                get(list_refunds)
                    .post(|sim, headers, body| faults::detached(create_refund(sim, headers, body))),
            )
            .route("/v1/refunds/{id}", get(get_refund))
            .route_layer(middleware::from_fn(require_secret_key))
            .layer(middleware::from_fn_with_state(
                self.clone(),
                count_and_fault,
            ))
            .with_state(self.clone());
        api.merge(admin::router(self.clone()))
    }

    /// A payment as PayMongo would answer it (JSON), by id.
    pub fn payment(&self, id: &str) -> Option<serde_json::Value> {
        let state = self.lock();
        state
            .payments
            .get(id)
            .map(|p| state::payment_view(p, &state))
    }

    /// A refund as the simulator holds it.
    pub fn refund(&self, id: &str) -> Option<state::Refund> {
        self.lock().refunds.get(id).cloned()
    }

    /// A payment's refunds, oldest first.
    pub fn refunds_of(&self, payment_id: &str) -> Vec<state::Refund> {
        let state = self.lock();
        let mut refunds: Vec<_> = state
            .refunds
            .values()
            .filter(|r| r.payment_id == payment_id)
            .cloned()
            .collect();
        refunds.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        refunds
    }

    /// Records a refund of `payment_id` made outside the gateway (from PayMongo's dashboard,
    /// say); it counts against what is left. `None` when there is no such payment.
    pub fn add_outside_refund(
        &self,
        payment_id: &str,
        amount: i64,
        status: state::RefundStatus,
    ) -> Option<String> {
        let mut state = self.lock();
        if !state.payments.contains_key(payment_id) {
            return None;
        }
        let id = state::new_id("ref_");
        state.insert_outside_refund(
            id.clone(),
            payment_id,
            amount,
            status,
            Utc::now().timestamp(),
        );
        Some(id)
    }

    /// The counters, with what the simulator holds by payment.
    pub fn stats(&self) -> Stats {
        let state = self.lock();
        let mut stats = state.stats.clone();
        stats.refunds_by_payment = state.refunds_by_payment();
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

    pub fn settings(&self) -> Settings {
        self.lock().settings.clone()
    }

    /// Changes some settings; nothing changes when one is refused.
    pub fn update_settings(&self, patch: &state::SettingsPatch) -> Result<Settings, String> {
        let mut state = self.lock();
        state.settings.apply(patch)?;
        Ok(state.settings.clone())
    }

    /// Outcomes for the next refunds created, in order (then the default outcome).
    pub fn queue_outcomes(&self, outcomes: impl IntoIterator<Item = Outcome>) {
        self.lock().next_outcomes.extend(outcomes);
    }

    /// Adds a URL webhooks are sent to (the gateway calls this in sandbox mode with
    /// `{public_url}/webhooks/paymongo/{account}`). Adding a URL twice changes nothing.
    pub fn add_webhook_url(&self, url: impl Into<String>) {
        let url = url.into();
        let mut state = self.lock();
        if !state.webhook_urls.contains(&url) {
            state.webhook_urls.push(url);
        }
    }

    /// Replaces the webhook URLs.
    pub fn set_webhook_urls(&self, urls: Vec<String>) {
        self.lock().webhook_urls = urls;
    }

    pub fn webhook_urls(&self) -> Vec<String> {
        self.lock().webhook_urls.clone()
    }

    /// Settles a pending refund now into `outcome` (its planned one when `None`) and sends its
    /// webhooks. `false` when there was no pending refund with this id.
    pub fn settle_now(&self, refund_id: &str, outcome: Option<Outcome>) -> bool {
        let deliveries = self.lock().settle(refund_id, outcome, Utc::now());
        match deliveries {
            Some(deliveries) => {
                self.deliver(refund_id, deliveries);
                true
            }
            None => false,
        }
    }

    /// Back to the fixtures, default settings, no faults, counters at zero. The webhook
    /// URLs are kept: they are wiring (the gateway set them), not test state. Refunds still
    /// waiting to settle are forgotten.
    pub fn reset(&self) {
        let mut state = self.lock();
        let urls = std::mem::take(&mut state.webhook_urls);
        let generation = state.generation + 1;
        *state = state::State::with_fixtures();
        state.webhook_urls = urls;
        state.generation = generation;
        self.faults.reset();
    }

    /// Settles refund `id` after `delay`, unless the simulator was reset meanwhile.
    fn settle_later(&self, id: String, delay: Duration, generation: u64) {
        let sim = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let deliveries = {
                let mut state = sim.lock();
                if state.generation != generation {
                    return;
                }
                state.settle(&id, None, Utc::now())
            };
            if let Some(deliveries) = deliveries {
                sim.deliver(&id, deliveries);
            }
        });
    }

    /// Sends the deliveries announcing a change of refund `refund_id`, through the webhook
    /// faults: each in a task of its own, or in the order the faults chose.
    fn deliver(&self, refund_id: &str, deliveries: Vec<Delivery>) {
        if deliveries.is_empty() {
            return;
        }
        let faults = self.faults.take(Target::Webhook);
        let arranged = faults::arrange_webhooks(
            faults.as_ref(),
            &mut self.lock().webhook_hold,
            refund_id,
            deliveries,
        );
        let sim = self.clone();
        match (faults, arranged) {
            (None, Arranged::Send(deliveries)) => {
                for delivery in deliveries {
                    let sim = self.clone();
                    tokio::spawn(async move { sim.deliver_one(delivery).await });
                }
            }
            (Some(_), Arranged::Send(deliveries)) => {
                tokio::spawn(async move {
                    for delivery in deliveries {
                        sim.deliver_one(delivery).await;
                    }
                });
            }
            (_, Arranged::Held) => {
                let key = refund_id.to_owned();
                tokio::spawn(async move {
                    tokio::time::sleep(faults::REORDER_HOLD).await;
                    let deliveries = sim.lock().webhook_hold.release(&key);
                    for delivery in deliveries {
                        sim.deliver_one(delivery).await;
                    }
                });
            }
        }
    }

    /// POSTs one event until a 2xx, at most `webhook_max_attempts` times with doubling waits,
    /// signed afresh each time.
    async fn deliver_one(&self, delivery: Delivery) {
        let settings = self.settings();
        let mut wait = Duration::from_millis(settings.webhook_retry_ms);
        for attempt in 1..=settings.webhook_max_attempts {
            self.lock().stats.webhook_attempts += 1;
            let t = Utc::now().timestamp();
            let signature = format!(
                "t={t},te={},li=",
                sign(
                    PAYMONGO_SANDBOX_WEBHOOK_SECRET.as_bytes(),
                    t,
                    &delivery.body
                )
            );
            let result = self
                .client
                .post(&delivery.url)
                .header("Paymongo-Signature", signature)
                .header(header::CONTENT_TYPE, "application/json")
                .body(delivery.body.clone())
                .send()
                .await;
            match result {
                Ok(response) if response.status().is_success() => {
                    self.lock().stats.webhooks_sent += 1;
                    return;
                }
                Ok(response) => tracing::debug!(
                    url = %delivery.url, event = %delivery.event_id, attempt,
                    status = %response.status(), "sandbox webhook refused"
                ),
                Err(e) => tracing::debug!(
                    url = %delivery.url, event = %delivery.event_id, attempt, error = %e,
                    "sandbox webhook not delivered"
                ),
            }
            if attempt < settings.webhook_max_attempts {
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(2);
            }
        }
        tracing::info!(url = %delivery.url, event = %delivery.event_id, kind = %delivery.event_type, "sandbox webhook given up");
        self.lock().stats.webhooks_failed += 1;
    }
}

/// `hex(HMAC-SHA256(secret, t + "." + body))`, as PayMongo signs (PROVIDERS.md section 2.5).
/// Written here apart from the adapter's verifier, so the two check each other.
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Renders a stored or computed answer.
fn render(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(answer.body)).into_response()
}

/// `{"errors":[...]}` with one error and a status.
fn error(status: u16, code: &str, detail: &str, attribute: Option<&str>) -> Response {
    render(Answer::error(status, code, detail, attribute))
}

/// Outermost layer of PayMongo's routes: counts requests and applies the shared faults.
async fn count_and_fault(
    AxumState(sim): AxumState<PayMongoSim>,
    request: Request,
    next: Next,
) -> Response {
    sim.lock().stats.requests += 1;
    faults::serve(&sim.faults, &SPEC, request, next).await
}

/// Whether `Authorization` is Basic with the sandbox secret key (`key:` or `key`).
fn authorized(headers: &HeaderMap) -> bool {
    let Some(encoded) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let key = decoded.strip_suffix(b":").unwrap_or(&decoded);
    key == PAYMONGO_SANDBOX_SECRET_KEY.as_bytes()
}

/// 401 unless the request carries the sandbox secret key.
async fn require_secret_key(request: Request, next: Next) -> Response {
    if authorized(request.headers()) {
        next.run(request).await
    } else {
        error(
            401,
            "unauthorized",
            "The API key is missing or invalid. Use Basic auth with your secret key.",
            None,
        )
    }
}

/// `GET /v1/payments/{id}`
async fn get_payment(AxumState(sim): AxumState<PayMongoSim>, Path(id): Path<String>) -> Response {
    let mut state = sim.lock();
    state.stats.payment_reads += 1;
    match state.payments.get(&id) {
        Some(p) => {
            Json(serde_json::json!({ "data": state::payment_view(p, &state) })).into_response()
        }
        None => error(
            404,
            "resource_not_found",
            &format!("No such payment with id {id}."),
            None,
        ),
    }
}

/// `GET /v1/refunds/{id}`
async fn get_refund(AxumState(sim): AxumState<PayMongoSim>, Path(id): Path<String>) -> Response {
    let mut state = sim.lock();
    state.stats.refund_reads += 1;
    match state.refunds.get(&id) {
        Some(r) => Json(serde_json::json!({ "data": state::refund_view(r) })).into_response(),
        None => error(
            404,
            "resource_not_found",
            &format!("No such refund with id {id}."),
            None,
        ),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    payment_id: Option<String>,
    limit: Option<String>,
    before: Option<String>,
    after: Option<String>,
}

/// `GET /v1/refunds?payment_id=&limit=&before=&after=`: newest first; `after` gives the items
/// that follow the named one, `before` those that precede it.
async fn list_refunds(
    AxumState(sim): AxumState<PayMongoSim>,
    Query(query): Query<ListQuery>,
) -> Response {
    let limit = match query.limit.as_deref().map(str::parse::<usize>) {
        None => 10,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(Ok(0)) => {
            return error(
                400,
                "parameter_below_minimum",
                "The limit cannot be less than 1.",
                Some("limit"),
            );
        }
        Some(Ok(_)) => {
            return error(
                400,
                "parameter_above_maximum",
                "The limit cannot be greater than 100.",
                Some("limit"),
            );
        }
        Some(Err(_)) => {
            return error(
                400,
                "parameter_data_type_invalid",
                "The limit must be an integer.",
                Some("limit"),
            );
        }
    };
    let hide_api_refunds = sim.faults.lists_omit_api_refunds();
    let mut state = sim.lock();
    state.stats.refund_lists += 1;
    let mut all = state.refunds_newest_first(query.payment_id.as_deref());
    if hide_api_refunds {
        all.retain(|r| r.outside);
    }
    let position = |id: &str| all.iter().position(|r| r.id == id);
    let window: Vec<_> = match (&query.after, &query.before) {
        (Some(after), _) => match position(after) {
            Some(i) => all[i + 1..].to_vec(),
            None => {
                return error(
                    400,
                    "parameter_invalid",
                    "The after cursor is not a refund of this list.",
                    Some("after"),
                );
            }
        },
        (None, Some(before)) => match position(before) {
            Some(i) => all[..i].to_vec(),
            None => {
                return error(
                    400,
                    "parameter_invalid",
                    "The before cursor is not a refund of this list.",
                    Some("before"),
                );
            }
        },
        (None, None) => all,
    };
    let has_more = window.len() > limit;
    let data: Vec<_> = window
        .into_iter()
        .take(limit)
        .map(state::refund_view)
        .collect();
    let body = serde_json::json!({ "data": data, "has_more": has_more });
    drop(state);
    Json(body).into_response()
}

/// `POST /v1/refunds`, with the refund faults.
async fn create_refund(
    AxumState(sim): AxumState<PayMongoSim>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let attributes = validate::create_attributes(&body);
    sim.lock().count_refund_post(attributes.as_ref().ok());
    let faults = CreateFaults::take(&sim.faults, &SPEC);
    if let Some(answer) = faults.before_apply().await {
        return answer;
    }
    let attributes = match attributes {
        Ok(a) => a,
        Err(answer) => return render(answer),
    };
    let key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(key)) if !key.is_empty() && key.len() <= 255 => Some(key.to_owned()),
        Some(_) => {
            return error(
                400,
                "parameter_format_invalid",
                "The Idempotency-Key must be 1 to 255 characters.",
                None,
            );
        }
    };
    let (result, generation, settle_after, pending_events) = {
        let mut state = sim.lock();
        let now = Utc::now();
        let result = state.create_refund(&attributes, key.as_deref(), now);
        // Out-of-order webhooks: the refund's `pending` state is announced too, held back,
        // and overtaken by its final events.
        let pending_events = match &result.created {
            Some(id) if sim.faults.get().reorder_webhooks => state
                .refunds
                .get(id)
                .cloned()
                .map(|refund| state.announce(&refund, now)),
            _ => None,
        };
        (
            result,
            state.generation,
            state.settings.settle_delay_ms,
            pending_events,
        )
    };
    if let Some(id) = &result.created {
        if let Some(events) = pending_events {
            sim.deliver(id, events);
        }
        sim.settle_later(id.clone(), Duration::from_millis(settle_after), generation);
    }
    faults.after_apply(render(result.answer)).await
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use serde_json::{Value, json};
    use tower::ServiceExt as _;

    use super::{fixtures::*, *};

    fn basic(key: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(key)
        )
    }

    async fn call(
        sim: &PayMongoSim,
        method: Method,
        path: &str,
        auth: Option<&str>,
        idempotency_key: Option<&str>,
        body: &str,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(auth) = auth {
            request = request.header(header::AUTHORIZATION, auth);
        }
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let request = request.body(Body::from(body.to_owned())).unwrap();
        let (status, bytes) = crate::testing::send(sim.router(), request).await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn auth() -> String {
        basic(&format!("{PAYMONGO_SANDBOX_SECRET_KEY}:"))
    }

    fn create_body(amount: i64, payment: &str) -> String {
        json!({"data": {"attributes": {"amount": amount, "payment_id": payment, "reason": "others"}}})
            .to_string()
    }

    /// Every route wants the sandbox secret key (with or without the colon); others get 401.
    #[tokio::test]
    async fn every_route_wants_the_secret_key() {
        let sim = PayMongoSim::new();
        for auth in [
            None,
            Some(basic("sk_test_wrong:")),
            Some("Bearer x".to_owned()),
        ] {
            for (method, path) in [
                (Method::GET, format!("/v1/payments/{PAID_50000}")),
                (Method::GET, "/v1/refunds".to_owned()),
                (Method::GET, "/v1/refunds/ref_x".to_owned()),
                (Method::POST, "/v1/refunds".to_owned()),
            ] {
                let (status, body) = call(
                    &sim,
                    method,
                    &path,
                    auth.as_deref(),
                    None,
                    &create_body(100, PAID_50000),
                )
                .await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
                assert_eq!(body["errors"][0]["code"], "unauthorized");
            }
        }
        assert_eq!(sim.stats().refund_posts, 0);
        let no_colon = basic(PAYMONGO_SANDBOX_SECRET_KEY);
        let (status, _) = call(
            &sim,
            Method::GET,
            &format!("/v1/payments/{PAID_50000}"),
            Some(&no_colon),
            None,
            "",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }

    /// A payment reads as a JSON:API resource with its refunds inside.
    #[tokio::test]
    async fn payment_reads_with_its_refunds() {
        let sim = PayMongoSim::new();
        let k = auth();
        let (status, body) = call(
            &sim,
            Method::GET,
            &format!("/v1/payments/{PARTLY_REFUNDED}"),
            Some(&k),
            None,
            "",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let data = &body["data"];
        assert_eq!(data["type"], "payment");
        assert_eq!(data["attributes"]["amount"], 100000);
        assert_eq!(data["attributes"]["status"], "paid");
        assert_eq!(data["attributes"]["refunds"].as_array().unwrap().len(), 2);
        let (status, body) = call(
            &sim,
            Method::GET,
            "/v1/payments/pay_nope",
            Some(&k),
            None,
            "",
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["errors"][0]["code"], "resource_not_found");
        // An unknown route is a bare 404.
        let (status, body) = call(&sim, Method::GET, "/v1/nothing", Some(&k), None, "").await;
        assert_eq!((status, body), (StatusCode::NOT_FOUND, Value::Null));
    }

    /// A create answers the pending refund; the same key replays it; listing by payment
    /// pages newest first with has_more.
    #[tokio::test]
    async fn create_replay_and_list() {
        let sim = PayMongoSim::new();
        let k = auth();
        let (status, first) = call(
            &sim,
            Method::POST,
            "/v1/refunds",
            Some(&k),
            Some("k1"),
            &create_body(1000, PAID_50000),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{first}");
        assert_eq!(first["data"]["attributes"]["status"], "pending");
        let (_, again) = call(
            &sim,
            Method::POST,
            "/v1/refunds",
            Some(&k),
            Some("k1"),
            &create_body(1000, PAID_50000),
        )
        .await;
        assert_eq!(again, first);
        let (status, other) = call(
            &sim,
            Method::POST,
            "/v1/refunds",
            Some(&k),
            Some("k1"),
            &create_body(2000, PAID_50000),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(other["errors"][0]["code"], "idempotency_key_in_use");
        for idem in ["k2", "k3"] {
            call(
                &sim,
                Method::POST,
                "/v1/refunds",
                Some(&k),
                Some(idem),
                &create_body(1000, PAID_50000),
            )
            .await;
        }
        let stats = sim.stats();
        assert_eq!(
            (
                stats.refund_posts,
                stats.refunds_created,
                stats.idempotent_replays
            ),
            (5, 3, 1)
        );
        assert_eq!(stats.refunds_by_payment[PAID_50000].count, 3);
        assert_eq!(stats.refunds_by_payment[PAID_50000].amount_minor, 3000);

        let path = format!("/v1/refunds?payment_id={PAID_50000}&limit=2");
        let (_, page) = call(&sim, Method::GET, &path, Some(&k), None, "").await;
        assert_eq!(page["data"].as_array().unwrap().len(), 2);
        assert_eq!(page["has_more"], true);
        let last = page["data"][1]["id"].as_str().unwrap();
        let (_, rest) = call(
            &sim,
            Method::GET,
            &format!("{path}&after={last}"),
            Some(&k),
            None,
            "",
        )
        .await;
        assert_eq!(rest["data"].as_array().unwrap().len(), 1);
        assert_eq!(rest["has_more"], false);
        let (status, _) = call(
            &sim,
            Method::GET,
            "/v1/refunds?limit=101",
            Some(&k),
            None,
            "",
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    /// Faults: 429 with Retry-After creates nothing; after-apply 500 creates and stores the
    /// answer, so a replay returns the refund.
    #[tokio::test]
    async fn create_faults() {
        let sim = PayMongoSim::new();
        let k = auth();
        sim.set_faults(Faults {
            fail_before_apply_status: Some(429),
            retry_after_s: Some(3),
            ..Faults::default()
        })
        .unwrap();
        let response = sim
            .router()
            .oneshot(
                Request::post("/v1/refunds")
                    .header(header::AUTHORIZATION, &k)
                    .body(Body::from(create_body(1000, PAID_50000)))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
        assert_eq!(sim.stats().refunds_created, 0);

        sim.set_faults(Faults {
            fail_after_apply_status: Some(502),
            ..Faults::default()
        })
        .unwrap();
        let (status, _) = call(
            &sim,
            Method::POST,
            "/v1/refunds",
            Some(&k),
            Some("k"),
            &create_body(1000, PAID_50000),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        sim.clear_faults();
        let (status, replay) = call(
            &sim,
            Method::POST,
            "/v1/refunds",
            Some(&k),
            Some("k"),
            &create_body(1000, PAID_50000),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(replay["data"]["attributes"]["amount"], 1000);
        assert_eq!(sim.stats().refunds_created, 1);
    }

    /// The simulator's signature matches PROVIDERS.md's vector.
    #[test]
    fn signs_like_paymongo() {
        assert_eq!(
            sign(
                b"whsk_test_secret",
                1496734173,
                br#"{"data":{"id":"evt_1","type":"event"}}"#
            ),
            "8034a98f781edb913cb333537ca0ad53ef865bac311ca7dddf43a9f824788c1b"
        );
    }
}
