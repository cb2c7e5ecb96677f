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
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use axum::{
    extract::Request,
    http::{HeaderValue, Method, header},
    middleware::Next,
    response::Response,
};
use serde::{Deserialize, Serialize};

pub use self::{
    admin::admin_router,
    create::{CreateFaults, detached},
    held::Held,
    webhooks::{Arranged, WebhookHold, arrange_webhooks},
};

mod admin;
mod create;
mod held;
mod webhooks;

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

pub(super) async fn sleep_ms(ms: u64) {
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
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

#[cfg(test)]
mod tests;
