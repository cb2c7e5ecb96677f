//! A faithful PayMongo simulator (docs/PROVIDERS.md section 2): PayMongo's routes under
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
//! `too_many_requests`); the list filter is `payment_id` (docs/PROVIDERS.md section 5 item 10).

mod admin;
mod api;
pub mod fixtures;
mod settings;
pub mod signature;
pub mod state;
mod validate;
mod views;
pub mod wire;

use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use axum::{
    Router,
    http::{Method, header},
    middleware,
    routing::get,
};
use chrono::Utc;

use self::state::{Delivery, Faults, Outcome, Settings, Stats};
pub use self::{fixtures::fixtures_table, signature::sign};
use super::faults::{self, Arranged, FaultCell, Spec, Support, Target};

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
            api::error(
                status,
                "too_many_requests",
                "Too many requests, please try again later.",
                None,
            )
        } else {
            api::error(
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
            .route("/v1/payments/{id}", get(api::get_payment))
            .route(
                "/v1/refunds",
                get(api::list_refunds).post(|sim, headers, body| {
                    faults::detached(api::create_refund(sim, headers, body))
                }),
            )
            .route("/v1/refunds/{id}", get(api::get_refund))
            .route_layer(middleware::from_fn(api::require_secret_key))
            .layer(middleware::from_fn_with_state(
                self.clone(),
                api::count_and_fault,
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
            let signature = signature::header(
                PAYMONGO_SANDBOX_WEBHOOK_SECRET.as_bytes(),
                t,
                &delivery.body,
                false,
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

#[cfg(test)]
mod tests;
