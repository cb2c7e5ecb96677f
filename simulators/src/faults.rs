//! The fault switches every simulator shares: one vocabulary, one validation, one admin API
//! (`GET|POST|DELETE /<provider>/sandbox/faults`), and the code that acts on them, so a
//! fault means the same thing at Compago, D24 and PayMongo.
//!
//! Where each switch acts:
//! - **every API request** (the [`serve`] middleware): `delay_ms` (after the answer is
//!   ready), `fail_all_status`; GETs: `fail_reads_status`.
//! - **refund creates** (the create handlers call [`CreateFaults::before_apply`] and
//!   [`CreateFaults::after_apply`] around the code that creates the refund), in this order:
//!   `fail_all_status`, `rate_limit_status` (the provider's rate-limit answer, always with
//!   `Retry-After`), `fail_before_apply_status` (nothing applied), then a wait of
//!   `refund_delay_before_apply_ms`; the refund is applied; then a wait of `refund_delay_ms`,
//!   `fail_after_apply_status` (any answer replaced), and on a 2xx answer only:
//!   `misreport_refund_amount`, `malformed_refund_body`, `corrupt_refund_body`,
//!   `drop_after_apply` (the first that is set decides the answer).
//! - **webhooks / notifications** ([`arrange_webhooks`]): `duplicate_webhooks`,
//!   `reorder_webhooks`.
//! - `lists_omit_api_refunds` is read by PayMongo's list route (the only provider with one).
//!
//! A refund create keeps running when the client goes away (see [`detached`]): like a real
//! provider, the simulator does not learn that its client timed out, so a refund delayed
//! before it is applied is still applied after the client gave up.
//!
//! `times: N` makes the whole set apply to the next N requests (or webhook events) that one
//! of its switches acts on; then the switches clear themselves. So a test can fail the first
//! attempt and let the reconciliation through. (`lists_omit_api_refunds` is a standing
//! condition: it does not count down.)

use std::{
    collections::HashMap,
    str::FromStr as _,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The longest delay accepted (10 minutes).
pub const MAX_DELAY_MS: u64 = 600_000;

/// How long `reorder_webhooks` holds a delivery waiting for a later one of the same refund
/// before sending it anyway.
pub const REORDER_HOLD: Duration = Duration::from_millis(1_500);

/// The largest answer body the after-apply faults rewrite.
const MAX_BODY: usize = 1 << 20;

/// The fault switches. `POST /sandbox/faults` replaces the whole set (unknown keys are
/// refused, every value is checked); `DELETE /sandbox/faults` clears it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Every API request: wait this long after the answer is ready (and after any state
    /// change), so a client that times out meanwhile does not learn what happened.
    pub delay_ms: u64,
    /// Every API request: answer this status, doing nothing.
    pub fail_all_status: Option<u16>,
    /// GET requests: answer this status.
    pub fail_reads_status: Option<u16>,
    /// Adds `Retry-After: N` (seconds) to the fault answers (for 429 or 503).
    pub retry_after_s: Option<u64>,
    /// Refund creates: answer the provider's rate-limit answer with this status (429),
    /// without applying anything, with `Retry-After` (`retry_after_s`, default 1).
    pub rate_limit_status: Option<u16>,
    /// Refund creates: answer this status without applying anything.
    pub fail_before_apply_status: Option<u16>,
    /// Refund creates: wait this long before applying the refund. The refund is applied
    /// even when the client gave up meanwhile.
    pub refund_delay_before_apply_ms: u64,
    /// Refund creates: apply the refund, then wait this long before answering (PayMongo's
    /// former `delay_after_apply_ms`).
    #[serde(alias = "delay_after_apply_ms")]
    pub refund_delay_ms: u64,
    /// Refund creates: apply the refund as usual, then answer this status instead.
    pub fail_after_apply_status: Option<u16>,
    /// Refund creates: apply the refund, start a 200 answer, and cut the connection before
    /// its body is complete (the head may or may not have reached the client): the client
    /// gets no complete answer.
    pub drop_after_apply: bool,
    /// Refund creates: apply the refund, then answer 200 with a JSON body of the wrong shape.
    pub malformed_refund_body: bool,
    /// Refund creates: apply the refund, then answer 200 with the body cut in half
    /// (truncated JSON).
    pub corrupt_refund_body: bool,
    /// Refund creates: apply the refund, then answer with an amount one minor unit more than
    /// the refund's.
    pub misreport_refund_amount: bool,
    /// PayMongo: `GET /v1/refunds` lists no refund made through the API, as a lagging list
    /// index would: only the idempotency key can then find a refund whose answer was lost.
    pub lists_omit_api_refunds: bool,
    /// Webhooks / notifications: deliver each one twice.
    pub duplicate_webhooks: bool,
    /// Webhooks / notifications: hold a refund's delivery until the next one of the same
    /// refund is due, then send the later one first (PayMongo also announces the refund's
    /// `pending` state when it is created, so its final events overtake it).
    pub reorder_webhooks: bool,
    /// Apply the switches to the next N requests or webhook events they act on, then clear
    /// them all (`lists_omit_api_refunds`, a standing condition rather than a per-request
    /// fault, does not count down but is cleared with the rest). `None`: until cleared.
    /// Counts down as it is used.
    pub times: Option<u32>,
}

/// What a simulator supports beyond the shared switches.
#[derive(Clone, Copy, Debug)]
pub struct Support {
    /// It sends webhooks or notifications.
    pub webhooks: bool,
    /// It has a refund list that can lag (`lists_omit_api_refunds`).
    pub lagging_lists: bool,
}

/// What requests a switch acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A refund create.
    RefundCreate,
    /// Any other GET.
    Read,
    /// Any other request.
    Other,
    /// A webhook or notification event.
    Webhook,
}

fn error_status(name: &str, status: Option<u16>) -> Result<(), String> {
    match status {
        Some(s) if !(400..=599).contains(&s) => Err(format!(
            "{name} must be an HTTP error status (400-599), not {s}"
        )),
        _ => Ok(()),
    }
}

impl Faults {
    /// The longest delay accepted.
    pub const MAX_DELAY_MS: u64 = MAX_DELAY_MS;

    /// Checks the values, and that the simulator supports every switch that is on.
    pub fn check(&self, support: Support) -> Result<(), String> {
        for (name, status) in [
            ("fail_all_status", self.fail_all_status),
            ("fail_reads_status", self.fail_reads_status),
            ("rate_limit_status", self.rate_limit_status),
            ("fail_before_apply_status", self.fail_before_apply_status),
            ("fail_after_apply_status", self.fail_after_apply_status),
        ] {
            error_status(name, status)?;
        }
        for (name, delay) in [
            ("delay_ms", self.delay_ms),
            (
                "refund_delay_before_apply_ms",
                self.refund_delay_before_apply_ms,
            ),
            ("refund_delay_ms", self.refund_delay_ms),
        ] {
            if delay > MAX_DELAY_MS {
                return Err(format!("{name} must be at most {MAX_DELAY_MS} ms"));
            }
        }
        if let Some(after) = self.retry_after_s
            && after > 86_400
        {
            return Err("retry_after_s must be at most 86400".to_owned());
        }
        if self.times == Some(0) {
            return Err("times must be at least 1 (leave it out for \"until cleared\")".to_owned());
        }
        if !support.webhooks && (self.duplicate_webhooks || self.reorder_webhooks) {
            return Err(
                "this provider sends no webhooks: duplicate_webhooks and reorder_webhooks do not apply"
                    .to_owned(),
            );
        }
        if !support.lagging_lists && self.lists_omit_api_refunds {
            return Err(
                "this provider has no refund list: lists_omit_api_refunds does not apply"
                    .to_owned(),
            );
        }
        Ok(())
    }

    /// Whether a switch that acts on `target` is on.
    pub fn acts_on(&self, target: Target) -> bool {
        let every_request = self.delay_ms > 0 || self.fail_all_status.is_some();
        match target {
            Target::RefundCreate => {
                every_request
                    || self.rate_limit_status.is_some()
                    || self.fail_before_apply_status.is_some()
                    || self.refund_delay_before_apply_ms > 0
                    || self.refund_delay_ms > 0
                    || self.fail_after_apply_status.is_some()
                    || self.drop_after_apply
                    || self.malformed_refund_body
                    || self.corrupt_refund_body
                    || self.misreport_refund_amount
            }
            Target::Read => every_request || self.fail_reads_status.is_some(),
            Target::Other => every_request,
            Target::Webhook => self.duplicate_webhooks || self.reorder_webhooks,
        }
    }
}

/// A simulator's fault switches and how often they acted, shared by its clones (apart from
/// its provider state, so the middleware needs no provider lock).
#[derive(Clone, Debug, Default)]
pub struct FaultCell(Arc<Mutex<CellState>>);

#[derive(Debug, Default)]
struct CellState {
    faults: Faults,
    /// Requests and webhook events a switch acted on.
    applied: u64,
}

impl FaultCell {
    fn lock(&self) -> MutexGuard<'_, CellState> {
        // Nothing panics while holding the lock; if something ever did, the data is still
        // the best there is.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The switches in force.
    pub fn get(&self) -> Faults {
        self.lock().faults.clone()
    }

    /// Replaces the switches (checked first).
    pub fn set(&self, faults: Faults, support: Support) -> Result<(), String> {
        faults.check(support)?;
        self.lock().faults = faults;
        Ok(())
    }

    /// Clears the switches.
    pub fn clear(&self) {
        self.lock().faults = Faults::default();
    }

    /// Clears the switches and the count of what they did.
    pub fn reset(&self) {
        *self.lock() = CellState::default();
    }

    /// How many requests and webhook events a switch acted on.
    pub fn applied(&self) -> u64 {
        self.lock().applied
    }

    /// The switches for one request or event of `target`, when one of them acts on it; this
    /// uses one of `times`, and clears the set when it is used up.
    pub fn take(&self, target: Target) -> Option<Faults> {
        let mut cell = self.lock();
        if !cell.faults.acts_on(target) {
            return None;
        }
        let faults = cell.faults.clone();
        cell.applied += 1;
        match cell.faults.times {
            Some(1) => cell.faults = Faults::default(),
            Some(n) => cell.faults.times = Some(n - 1),
            None => {}
        }
        Some(faults)
    }

    /// Whether `lists_omit_api_refunds` is on (PayMongo's list route; not counted).
    pub fn lists_omit_api_refunds(&self) -> bool {
        self.lock().faults.lists_omit_api_refunds
    }
}

/// How a simulator writes its answers, for the shared code.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// For messages.
    pub provider: &'static str,
    pub support: Support,
    /// Whether a request (method, path below the simulator's prefix) is a refund create.
    pub is_refund_create: fn(&Method, &str) -> bool,
    /// The provider's error answer to a simulated failure with this status;
    /// `rate_limited` for its "too many requests" answer.
    pub error: fn(status: u16, rate_limited: bool) -> Response,
    /// JSON pointers to the amount in a created refund's answer (the first present is used).
    pub amount_pointers: &'static [&'static str],
}

impl Spec {
    fn fault_answer(
        &self,
        status: u16,
        rate_limited: bool,
        retry_after_s: Option<u64>,
    ) -> Response {
        let mut response = (self.error)(status, rate_limited);
        if let Some(after) = retry_after_s {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(after));
        }
        response
    }
}

/// The shared middleware of a simulator's API routes (outermost, before the provider's own
/// checks). Refund creates pass through untouched: their handler applies the switches with
/// [`CreateFaults`], after counting the request.
pub async fn serve(cell: &FaultCell, spec: &Spec, request: Request, next: Next) -> Response {
    if (spec.is_refund_create)(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    let target = if request.method() == Method::GET {
        Target::Read
    } else {
        Target::Other
    };
    let Some(faults) = cell.take(target) else {
        return next.run(request).await;
    };
    let failure = faults.fail_all_status.or(match target {
        Target::Read => faults.fail_reads_status,
        _ => None,
    });
    let response = match failure {
        Some(status) => spec.fault_answer(status, status == 429, faults.retry_after_s),
        None => next.run(request).await,
    };
    sleep_ms(faults.delay_ms).await;
    response
}

async fn sleep_ms(ms: u64) {
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// Runs a refund create's work in a task of its own, so it goes on when the client goes
/// away (a provider does not stop processing a request because its client timed out).
pub async fn detached<F>(work: F) -> Response
where
    F: Future<Output = Response> + Send + 'static,
{
    tokio::spawn(work).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "sandbox refund create panicked");
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    })
}

/// The switches one refund create is subject to (none when no switch acts on creates).
#[derive(Clone, Debug)]
pub struct CreateFaults {
    faults: Option<Faults>,
    spec: Spec,
}

impl CreateFaults {
    /// Takes the switches for one refund create (counts one of `times`).
    pub fn take(cell: &FaultCell, spec: &Spec) -> Self {
        Self {
            faults: cell.take(Target::RefundCreate),
            spec: *spec,
        }
    }

    /// Before the refund is applied: the answer to give instead of applying it, if any;
    /// otherwise waits `refund_delay_before_apply_ms` and returns `None`.
    pub async fn before_apply(&self) -> Option<Response> {
        let f = self.faults.as_ref()?;
        if let Some(status) = f.fail_all_status {
            return Some(
                self.finish(
                    self.spec
                        .fault_answer(status, status == 429, f.retry_after_s),
                )
                .await,
            );
        }
        if let Some(status) = f.rate_limit_status {
            let after = Some(f.retry_after_s.unwrap_or(1));
            return Some(
                self.finish(self.spec.fault_answer(status, true, after))
                    .await,
            );
        }
        if let Some(status) = f.fail_before_apply_status {
            return Some(
                self.finish(
                    self.spec
                        .fault_answer(status, status == 429, f.retry_after_s),
                )
                .await,
            );
        }
        sleep_ms(f.refund_delay_before_apply_ms).await;
        None
    }

    /// After the refund was applied (or refused): the answer to give instead of `answer`.
    pub async fn after_apply(&self, answer: Response) -> Response {
        let Some(f) = self.faults.as_ref() else {
            return answer;
        };
        sleep_ms(f.refund_delay_ms).await;
        if let Some(status) = f.fail_after_apply_status {
            return self
                .finish(
                    self.spec
                        .fault_answer(status, status == 429, f.retry_after_s),
                )
                .await;
        }
        let rewrites = f.misreport_refund_amount
            || f.malformed_refund_body
            || f.corrupt_refund_body
            || f.drop_after_apply;
        if !rewrites || !answer.status().is_success() {
            return self.finish(answer).await;
        }
        let (parts, body) = answer.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_BODY)
            .await
            .unwrap_or_default();
        let bytes = if f.misreport_refund_amount {
            misreport(&bytes, self.spec.amount_pointers)
        } else {
            bytes
        };
        let json = [(header::CONTENT_TYPE, "application/json")];
        let response = if f.malformed_refund_body {
            (
                StatusCode::OK,
                json,
                r#"{"sandbox_fault":"malformed_refund_body","data":null}"#,
            )
                .into_response()
        } else if f.corrupt_refund_body {
            (StatusCode::OK, json, bytes.slice(..bytes.len() / 2)).into_response()
        } else if f.drop_after_apply {
            dropped(bytes)
        } else {
            Response::from_parts(parts, Body::from(bytes))
        };
        self.finish(response).await
    }

    /// Every answer to a create waits `delay_ms` too.
    async fn finish(&self, response: Response) -> Response {
        if let Some(f) = &self.faults {
            sleep_ms(f.delay_ms).await;
        }
        response
    }
}

/// A 200 whose body stops half-way with an error: the server closes the connection without
/// finishing the answer, and the client reports a broken body.
fn dropped(bytes: Bytes) -> Response {
    let half = bytes.slice(..bytes.len() / 2);
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(half),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "sandbox fault: connection dropped after the refund was applied",
        )),
    ];
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(futures::stream::iter(chunks)),
    )
        .into_response()
}

/// The answer with its amount one minor unit higher (an integer amount gains 1; a decimal
/// one gains one unit of its last digit). Unchanged when it has no amount.
fn misreport(bytes: &Bytes, pointers: &[&str]) -> Bytes {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return bytes.clone();
    };
    let Some(pointer) = pointers.iter().find(|p| value.pointer(p).is_some()) else {
        return bytes.clone();
    };
    let Some(amount) = value.pointer_mut(pointer) else {
        return bytes.clone();
    };
    let bumped = match amount {
        serde_json::Value::Number(n) => bump(&n.to_string())
            .and_then(|t| serde_json::Number::from_str(&t).ok())
            .map(serde_json::Value::Number),
        serde_json::Value::String(s) => bump(s).map(serde_json::Value::String),
        _ => None,
    };
    if let Some(bumped) = bumped {
        *amount = bumped;
    }
    serde_json::to_vec(&value).map_or_else(|_| bytes.clone(), Bytes::from)
}

fn bump(text: &str) -> Option<String> {
    let d = Decimal::from_str(text).ok()?;
    Some((d + Decimal::new(1, d.scale())).to_string())
}

/// How a batch of webhook deliveries of one refund goes out.
#[derive(Debug, PartialEq, Eq)]
pub enum Arranged<D> {
    /// Send these now, one after the other, in this order.
    Send(Vec<D>),
    /// Held by `reorder_webhooks`: call [`WebhookHold::release`] after [`REORDER_HOLD`] and
    /// send what it returns (nothing when a later delivery already took them along).
    Held,
}

/// Deliveries held back by `reorder_webhooks`, by refund. Keep one per simulator, under its
/// lock.
#[derive(Clone, Debug)]
pub struct WebhookHold<D> {
    held: HashMap<String, Vec<D>>,
}

impl<D> Default for WebhookHold<D> {
    fn default() -> Self {
        Self {
            held: HashMap::new(),
        }
    }
}

impl<D: Clone> WebhookHold<D> {
    /// Holds `deliveries` of refund `key` (to be sent after a later batch, or on release).
    pub fn hold(&mut self, key: &str, deliveries: Vec<D>) {
        self.held
            .entry(key.to_owned())
            .or_default()
            .extend(deliveries);
    }

    /// The held deliveries of `key`, if still held.
    pub fn release(&mut self, key: &str) -> Vec<D> {
        self.held.remove(key).unwrap_or_default()
    }

    /// Forgets everything held.
    pub fn clear(&mut self) {
        self.held.clear();
    }
}

/// Applies the webhook switches to a batch of deliveries announcing a change of refund
/// `key`. `faults`: what [`FaultCell::take`] gave for [`Target::Webhook`].
pub fn arrange_webhooks<D: Clone>(
    faults: Option<&Faults>,
    hold: &mut WebhookHold<D>,
    key: &str,
    deliveries: Vec<D>,
) -> Arranged<D> {
    let Some(f) = faults else {
        return Arranged::Send(deliveries);
    };
    let ordered = if f.reorder_webhooks {
        let earlier = hold.release(key);
        if earlier.is_empty() {
            hold.hold(key, deliveries);
            return Arranged::Held;
        }
        // The later change first, then the earlier one it overtook.
        deliveries.into_iter().chain(earlier).collect()
    } else {
        deliveries
    };
    if f.duplicate_webhooks {
        Arranged::Send(ordered.into_iter().flat_map(|d| [d.clone(), d]).collect())
    } else {
        Arranged::Send(ordered)
    }
}

/// `GET|POST|DELETE /sandbox/faults` for a simulator.
pub fn admin_router(cell: FaultCell, spec: &'static Spec) -> Router {
    Router::new()
        .route(
            "/sandbox/faults",
            get(get_faults).post(set_faults).delete(clear_faults),
        )
        .with_state((cell, spec))
}

type AdminState = State<(FaultCell, &'static Spec)>;

fn admin_error(why: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({ "message": why })),
    )
        .into_response()
}

async fn get_faults(State((cell, _)): AdminState) -> Response {
    Json(cell.get()).into_response()
}

async fn set_faults(State((cell, spec)): AdminState, body: Bytes) -> Response {
    let faults: Faults = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return admin_error(&format!("Invalid faults: {e}")),
    };
    match cell.set(faults, spec.support) {
        Ok(()) => Json(cell.get()).into_response(),
        Err(why) => admin_error(&format!("{}: {why}", spec.provider)),
    }
}

async fn clear_faults(State((cell, _)): AdminState) -> Response {
    cell.clear();
    Json(cell.get()).into_response()
}

/// The switches, for `Sandbox::describe`.
pub fn describe() -> &'static str {
    "Fault switches (POST /<provider>/sandbox/faults replaces the set, DELETE clears it; unknown keys refused):
  every request   delay_ms, fail_all_status, retry_after_s; GETs: fail_reads_status
  refund creates  rate_limit_status (429 + Retry-After, nothing applied), fail_before_apply_status,
                  refund_delay_before_apply_ms, refund_delay_ms (after applying; alias delay_after_apply_ms),
                  fail_after_apply_status, drop_after_apply, malformed_refund_body, corrupt_refund_body
                  (truncated JSON), misreport_refund_amount
  webhooks        duplicate_webhooks, reorder_webhooks (D24 notifications, PayMongo webhooks)
  PayMongo lists  lists_omit_api_refunds
  all             times: N (apply to the next N matching requests or events, then clear)
"
}

/// What a simulator holds for one payment, in the uniform stats shape
/// (`refunds_by_payment`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Held {
    /// Refunds created for the payment through the provider's API, whatever their status.
    pub count: u64,
    /// What those that did not fail (rejected, cancelled) hold, in minor units.
    pub amount_minor: i64,
    pub currency: String,
}

impl Held {
    /// Counts one refund of `amount` (decimal major units of `currency`); `holds_money`:
    /// it did not fail.
    pub fn add(&mut self, amount: Decimal, currency: &str, holds_money: bool) {
        self.count += 1;
        currency.clone_into(&mut self.currency);
        if holds_money {
            self.amount_minor += minor_units(amount, currency);
        }
    }

    /// Counts one refund already in minor units.
    pub fn add_minor(&mut self, amount_minor: i64, currency: &str, holds_money: bool) {
        self.count += 1;
        currency.clone_into(&mut self.currency);
        if holds_money {
            self.amount_minor += amount_minor;
        }
    }
}

/// Decimal major units to minor units (ISO 4217 exponent; 2 for an unknown currency).
fn minor_units(amount: Decimal, currency: &str) -> i64 {
    use rust_decimal::prelude::ToPrimitive as _;
    let exponent = crate::currency::exponent(currency).unwrap_or(2);
    (amount * Decimal::from(10_i64.pow(exponent)))
        .trunc()
        .to_i64()
        .unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Support = Support {
        webhooks: true,
        lagging_lists: true,
    };
    const NONE: Support = Support {
        webhooks: false,
        lagging_lists: false,
    };

    /// Statuses must be error statuses, delays bounded, times at least 1, and switches a
    /// provider does not have are refused.
    #[test]
    fn switches_are_checked() {
        assert!(Faults::default().check(NONE).is_ok());
        for bad in [
            Faults {
                fail_before_apply_status: Some(200),
                ..Faults::default()
            },
            Faults {
                rate_limit_status: Some(600),
                ..Faults::default()
            },
            Faults {
                refund_delay_before_apply_ms: MAX_DELAY_MS + 1,
                ..Faults::default()
            },
            Faults {
                times: Some(0),
                ..Faults::default()
            },
        ] {
            assert!(bad.check(ALL).is_err(), "{bad:?}");
        }
        let hooks = Faults {
            duplicate_webhooks: true,
            ..Faults::default()
        };
        assert!(hooks.check(ALL).is_ok());
        assert!(hooks.check(NONE).is_err());
        let lists = Faults {
            lists_omit_api_refunds: true,
            ..Faults::default()
        };
        assert!(lists.check(NONE).is_err());
    }

    /// The old PayMongo name is still accepted, unknown keys are not.
    #[test]
    fn names_parse() {
        let f: Faults = serde_json::from_str(r#"{"delay_after_apply_ms": 5, "times": 2}"#).unwrap();
        assert_eq!((f.refund_delay_ms, f.times), (5, Some(2)));
        assert!(serde_json::from_str::<Faults>(r#"{"delay": 5}"#).is_err());
    }

    /// `times` counts only what a switch acts on, and clears the set when used up.
    #[test]
    fn times_counts_down_then_clears() {
        let cell = FaultCell::default();
        cell.set(
            Faults {
                fail_after_apply_status: Some(500),
                times: Some(2),
                ..Faults::default()
            },
            NONE,
        )
        .unwrap();
        assert!(cell.take(Target::Read).is_none(), "reads are not affected");
        assert!(cell.take(Target::RefundCreate).is_some());
        assert_eq!(cell.get().times, Some(1));
        assert!(cell.take(Target::RefundCreate).is_some());
        assert!(cell.take(Target::RefundCreate).is_none());
        assert_eq!(cell.get(), Faults::default());
        assert_eq!(cell.applied(), 2);
    }

    /// Reordering holds the first batch and sends it after the next; duplicates double each.
    #[test]
    fn webhooks_are_reordered_and_duplicated() {
        let mut hold = WebhookHold::default();
        let both = Faults {
            reorder_webhooks: true,
            duplicate_webhooks: true,
            ..Faults::default()
        };
        assert_eq!(
            arrange_webhooks(Some(&both), &mut hold, "r1", vec!["pending"]),
            Arranged::Held
        );
        assert_eq!(
            arrange_webhooks(Some(&both), &mut hold, "r1", vec!["done"]),
            Arranged::Send(vec!["done", "done", "pending", "pending"])
        );
        assert!(hold.release("r1").is_empty());
        assert_eq!(
            arrange_webhooks(None, &mut hold, "r2", vec!["x"]),
            Arranged::Send(vec!["x"])
        );
    }

    /// The misreported amount is one minor unit more, in the answer's own notation.
    #[test]
    fn misreport_bumps_the_last_digit() {
        let pointers = ["/data/attributes/amount", "/amount"];
        let out = misreport(&Bytes::from_static(br#"{"amount":505.95}"#), &pointers);
        assert_eq!(&out[..], br#"{"amount":505.96}"#);
        let out = misreport(
            &Bytes::from_static(br#"{"data":{"attributes":{"amount":1000}}}"#),
            &pointers,
        );
        assert_eq!(&out[..], br#"{"data":{"attributes":{"amount":1001}}}"#);
    }

    /// Over real HTTP: a dropped connection leaves the client without a complete answer
    /// although the refund was applied; a refund delayed before it is applied is applied even though the
    /// client gave up; a rate limit answers 429 with Retry-After and applies nothing.
    #[tokio::test]
    async fn faults_over_real_http() {
        use crate::{COMPAGO_SANDBOX_API_KEY, Simulator, compago::fixtures::*};
        let running = crate::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let sim = running.sandbox.compago.clone();
        let base = running.base_url(Simulator::Compago);
        let client = reqwest::Client::new();
        let refund = |payment: &str| {
            client
                .post(format!(
                    "{base}/api/payment-method/{ACTIVE_METHOD}/payment/{payment}/refund"
                ))
                .header("x-api-key", COMPAGO_SANDBOX_API_KEY)
        };
        let refunded = |payment: &str| sim.stats().refunds_by_payment.contains_key(payment);

        sim.set_faults(Faults {
            drop_after_apply: true,
            ..Faults::default()
        })
        .unwrap();
        // The connection breaks before the head or in the body: either way no complete
        // answer, and never a failure to connect (which would prove nothing was sent).
        match refund(CONFIRMED_500).send().await {
            Ok(response) => assert!(response.text().await.is_err(), "the body must break"),
            Err(e) => assert!(!e.is_connect(), "{e}"),
        }
        assert!(refunded(CONFIRMED_500));

        sim.set_faults(Faults {
            refund_delay_before_apply_ms: 300,
            ..Faults::default()
        })
        .unwrap();
        let gave_up = refund(CONFIRMED_250)
            .timeout(Duration::from_millis(100))
            .send()
            .await;
        assert!(gave_up.is_err_and(|e| e.is_timeout()));
        assert!(!refunded(CONFIRMED_250), "not applied yet");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(refunded(CONFIRMED_250), "applied after the client left");

        sim.set_faults(Faults {
            rate_limit_status: Some(429),
            times: Some(1),
            ..Faults::default()
        })
        .unwrap();
        let limited = refund(CONFIRMED_1234_56).send().await.unwrap();
        assert_eq!(limited.status(), 429);
        assert_eq!(limited.headers()[header::RETRY_AFTER], "1");
        assert!(!refunded(CONFIRMED_1234_56));
        assert_eq!(sim.faults(), Faults::default(), "used up");
        let ok = refund(CONFIRMED_1234_56).send().await.unwrap();
        assert_eq!(ok.status(), 200);
        assert!(refunded(CONFIRMED_1234_56));
        assert_eq!(sim.stats().faults_applied, 3);
        running.stop().await.unwrap();
    }
}
