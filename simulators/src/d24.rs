//! A faithful D24 simulator (Deposits API v3, docs/PROVIDERS.md section 1):
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
mod api;
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
    http::{Method, StatusCode, header},
    middleware,
    response::IntoResponse,
    routing::{get, post},
};
use chrono::Utc;

pub use self::fixtures::fixtures_table;
use self::state::{Faults, NotificationRecord, Stats, Timing};
pub use self::wire::{CardResult, DepositState, RefundState};
use super::faults::{self, Arranged, FaultCell, Spec, Support, Target};

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
                post(|sim, headers, body| faults::detached(api::create_refund(sim, headers, body))),
            )
            .route("/v3/refunds/{id}", get(api::get_refund))
            .route("/v3/deposits/{id}", get(api::get_deposit))
            .route_layer(middleware::from_fn_with_state(
                self.clone(),
                api::check_headers,
            ))
            .layer(middleware::from_fn_with_state(
                self.clone(),
                api::count_and_fault,
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

#[cfg(test)]
mod tests;
