//! The D24 simulator's admin API: not D24's, no signature, for tests and people on loopback.
//! Paths are relative to the simulator's base URL (`http://127.0.0.1:PORT/d24`).
//!
//! | route | what |
//! |---|---|
//! | `POST /sandbox/deposits` | create a deposit: `{"amount": 500.00, "currency"?: "MXN", "status"?: "COMPLETED", "payment_type"?: "CREDIT_CARD", "payment_method"?, "country"?, "card_result"?: "SUCCESS", "invoice_id"?, "id"?}`; 201 with it |
//! | `GET /sandbox/deposits` | every deposit: `{"items": [...]}` |
//! | `GET /sandbox/deposits/{id}` | one deposit, with what its refunds hold |
//! | `GET /sandbox/refunds[?deposit_id=N]` | refunds, oldest first, with their status history |
//! | `GET /sandbox/refunds/{id}` | one refund |
//! | `POST /sandbox/refunds/{id}/status` | force a status: `{"status": "REJECTED"}` (e.g. a bank reversing a COMPLETED refund); notified like any change |
//! | `POST /sandbox/refunds/{id}/notify` | send its notification now, even with notifications off (D24's manual resend) |
//! | `GET /sandbox/stats` | counters: `requests`, `header_errors`, `refund_posts`, `refund_posts_by_deposit` (and the same as `refund_posts_by_payment`), `refunds_created`, `refunds_by_payment` (by deposit: `{count, amount_minor, currency}`), `idempotency_key_reuses`, `notifications_sent` (and the same as `webhooks_sent`), `notifications_failed`, `faults_applied`, `max_in_flight_by_key` and `max_in_flight_per_key` (the most refund POSTs of one `X-Idempotency-Key` in flight at once) |
//! | `GET /sandbox/notifications` | the notification attempts (last 1000), with when each started and what it was answered |
//! | `GET`, `POST`, `DELETE /sandbox/faults` | the shared fault switches ([`crate::faults`]; POST replaces them all, unknown keys refused) |
//! | `GET`, `POST`, `DELETE /sandbox/timing` | status delays, the IN_PROGRESS switch, notifications on/off and their retries, the order of the amount and key checks (`amount_before_key`), a forced error code (`refund_error_code`) (`state::Timing`) |
//! | `POST /sandbox/reset` | back to the fixtures, default timing, no faults, counters at zero |

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, State as AxumState},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::wire::{self, CardResult, DepositState, RefundState};
use super::{
    D24Sim, SPEC,
    state::{Deposit, Refund, StatusChange, Timing},
};
use crate::{currency, faults, json_decimal};

/// Ids of deposits created through the admin API start here.
const FIRST_ADMIN_DEPOSIT: u64 = 310000001;

pub(super) fn router(sim: D24Sim) -> Router {
    Router::new()
        .route("/sandbox/deposits", get(list_deposits).post(create_deposit))
        .route("/sandbox/deposits/{id}", get(get_deposit))
        .route("/sandbox/refunds", get(list_refunds))
        .route("/sandbox/refunds/{id}", get(get_refund))
        .route("/sandbox/refunds/{id}/status", post(force_status))
        .route("/sandbox/refunds/{id}/notify", post(notify))
        .route("/sandbox/stats", get(stats))
        .route("/sandbox/notifications", get(notifications))
        .route(
            "/sandbox/timing",
            get(get_timing).post(set_timing).delete(reset_timing),
        )
        .route("/sandbox/reset", post(reset))
        .with_state(sim.clone())
        .merge(faults::admin_router(sim.faults.clone(), &SPEC))
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(serde_json::json!({ "message": text }))).into_response()
}

#[derive(Serialize)]
struct AdminDeposit {
    id: u64,
    invoice_id: String,
    status: &'static str,
    #[serde(with = "json_decimal")]
    amount: Decimal,
    currency: String,
    country: String,
    payment_method: String,
    payment_type: String,
    card_result: &'static str,
    /// What its refunds hold (all but REJECTED and CANCELLED).
    #[serde(with = "json_decimal")]
    refunded: Decimal,
    created_at: DateTime<Utc>,
}

impl AdminDeposit {
    fn of(d: &Deposit, refunded: Decimal) -> Self {
        Self {
            id: d.id,
            invoice_id: d.invoice_id.clone(),
            status: d.status.as_str(),
            amount: d.amount,
            currency: d.currency.clone(),
            country: d.country.clone(),
            payment_method: d.payment_method.clone(),
            payment_type: d.payment_type.clone(),
            card_result: d.card_result.as_str(),
            refunded,
            created_at: d.created_at,
        }
    }
}

#[derive(Serialize)]
struct AdminRefund {
    id: u64,
    card: bool,
    deposit_id: u64,
    merchant_invoice_id: String,
    #[serde(with = "json_decimal")]
    amount: Decimal,
    currency: String,
    status: &'static str,
    card_result: Option<&'static str>,
    reason: Option<String>,
    reason_code: Option<String>,
    bank_account: Option<serde_json::Value>,
    comments: Option<String>,
    notification_url: Option<String>,
    idempotency_key: Option<String>,
    created_at: DateTime<Utc>,
    history: Vec<StatusChange>,
}

impl AdminRefund {
    fn of(r: &Refund) -> Self {
        Self {
            id: r.id,
            card: r.card,
            deposit_id: r.deposit_id,
            merchant_invoice_id: r.merchant_invoice_id.clone(),
            amount: r.amount,
            currency: r.currency.clone(),
            status: r.status.as_str(),
            card_result: r.card_result.map(CardResult::as_str),
            reason: r.reason.clone(),
            reason_code: r.reason_code.clone(),
            bank_account: r.bank_account.clone(),
            comments: r.comments.clone(),
            notification_url: r.notification_url.clone(),
            idempotency_key: r.idempotency_key.clone(),
            created_at: r.created_at,
            history: r.history.clone(),
        }
    }
}

/// `POST /sandbox/deposits` body. The amount is not checked against the currency, so tests
/// can create amounts an adapter must refuse.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDeposit {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    invoice_id: Option<String>,
    #[serde(with = "json_decimal")]
    amount: Decimal,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    status: Option<DepositState>,
    #[serde(default)]
    payment_type: Option<String>,
    #[serde(default)]
    payment_method: Option<String>,
    #[serde(default)]
    country: Option<String>,
    #[serde(default)]
    card_result: Option<String>,
}

async fn create_deposit(AxumState(sim): AxumState<D24Sim>, body: Bytes) -> Response {
    let new: NewDeposit = match serde_json::from_slice(&body) {
        Ok(new) => new,
        Err(e) => return message(StatusCode::BAD_REQUEST, &format!("Invalid body: {e}")),
    };
    if new.amount <= Decimal::ZERO {
        return message(StatusCode::BAD_REQUEST, "amount must be above 0");
    }
    let currency = new.currency.unwrap_or_else(|| "MXN".to_owned());
    if currency::exponent(&currency).is_none() {
        return message(StatusCode::BAD_REQUEST, "currency must be an ISO 4217 code");
    }
    let card_result = match new.card_result.as_deref().map(CardResult::parse) {
        None => CardResult::Success,
        Some(Some(r)) => r,
        Some(None) => {
            return message(
                StatusCode::BAD_REQUEST,
                "card_result must be SUCCESS, IN_PROGRESS or REJECTED",
            );
        }
    };
    let mut state = sim.lock();
    let id = match new.id {
        Some(0) => return message(StatusCode::BAD_REQUEST, "id must be above 0"),
        Some(id) => id,
        None => state
            .deposits
            .keys()
            .copied()
            .filter(|id| *id >= FIRST_ADMIN_DEPOSIT)
            .max()
            .map_or(FIRST_ADMIN_DEPOSIT, |max| max + 1),
    };
    if state.deposits.contains_key(&id) {
        return message(StatusCode::CONFLICT, "A deposit with this id exists");
    }
    let payment_type = new.payment_type.unwrap_or_else(|| "CREDIT_CARD".to_owned());
    let deposit = Deposit {
        id,
        invoice_id: new.invoice_id.unwrap_or_else(|| format!("sandbox-{id}")),
        status: new.status.unwrap_or(DepositState::Completed),
        amount: new.amount,
        currency,
        usd_amount: None,
        country: new.country.unwrap_or_else(|| "MX".to_owned()),
        payment_method: new.payment_method.unwrap_or_else(|| {
            if wire::is_card_type(&payment_type) {
                "VI".to_owned()
            } else {
                "BT".to_owned()
            }
        }),
        payment_type,
        card_result,
        created_at: Utc::now(),
    };
    let view = AdminDeposit::of(&deposit, Decimal::ZERO);
    state.deposits.insert(id, deposit);
    (StatusCode::CREATED, Json(view)).into_response()
}

async fn list_deposits(AxumState(sim): AxumState<D24Sim>) -> Response {
    let state = sim.lock();
    let items: Vec<_> = state
        .deposits
        .values()
        .map(|d| AdminDeposit::of(d, state.refunded(d.id)))
        .collect();
    Json(serde_json::json!({ "items": items })).into_response()
}

async fn get_deposit(AxumState(sim): AxumState<D24Sim>, Path(id): Path<u64>) -> Response {
    let state = sim.lock();
    match state.deposits.get(&id) {
        Some(d) => Json(AdminDeposit::of(d, state.refunded(id))).into_response(),
        None => message(StatusCode::NOT_FOUND, "Deposit not found"),
    }
}

#[derive(Deserialize)]
struct RefundFilter {
    #[serde(default)]
    deposit_id: Option<u64>,
}

async fn list_refunds(
    AxumState(sim): AxumState<D24Sim>,
    Query(filter): Query<RefundFilter>,
) -> Response {
    let state = sim.lock();
    let mut items: Vec<_> = state
        .refunds
        .values()
        .filter(|r| filter.deposit_id.is_none_or(|d| r.deposit_id == d))
        .collect();
    items.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    let items: Vec<_> = items.into_iter().map(AdminRefund::of).collect();
    Json(serde_json::json!({ "items": items })).into_response()
}

async fn get_refund(AxumState(sim): AxumState<D24Sim>, Path(id): Path<u64>) -> Response {
    match sim.refund(id) {
        Some(r) => Json(AdminRefund::of(&r)).into_response(),
        None => message(StatusCode::NOT_FOUND, "Refund not found"),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForceStatus {
    status: RefundState,
}

async fn force_status(
    AxumState(sim): AxumState<D24Sim>,
    Path(id): Path<u64>,
    body: Bytes,
) -> Response {
    let force: ForceStatus = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return message(StatusCode::BAD_REQUEST, &format!("Invalid body: {e}")),
    };
    match sim.force_status(id, force.status) {
        Some(r) => Json(AdminRefund::of(&r)).into_response(),
        None => message(StatusCode::NOT_FOUND, "Refund not found"),
    }
}

async fn notify(AxumState(sim): AxumState<D24Sim>, Path(id): Path<u64>) -> Response {
    if sim.resend_notification(id) {
        StatusCode::ACCEPTED.into_response()
    } else {
        message(
            StatusCode::NOT_FOUND,
            "Refund not found, or it has no notification_url",
        )
    }
}

async fn stats(AxumState(sim): AxumState<D24Sim>) -> Response {
    Json(sim.stats()).into_response()
}

async fn notifications(AxumState(sim): AxumState<D24Sim>) -> Response {
    Json(serde_json::json!({ "items": sim.notifications() })).into_response()
}

async fn get_timing(AxumState(sim): AxumState<D24Sim>) -> Response {
    Json(sim.timing()).into_response()
}

async fn set_timing(AxumState(sim): AxumState<D24Sim>, body: Bytes) -> Response {
    let timing: Timing = match serde_json::from_slice(&body) {
        Ok(t) => t,
        Err(e) => return message(StatusCode::BAD_REQUEST, &format!("Invalid timing: {e}")),
    };
    match sim.set_timing(timing) {
        Ok(()) => Json(sim.timing()).into_response(),
        Err(why) => message(StatusCode::BAD_REQUEST, &why),
    }
}

async fn reset_timing(AxumState(sim): AxumState<D24Sim>) -> Response {
    let _ = sim.set_timing(Timing::default());
    Json(sim.timing()).into_response()
}

async fn reset(AxumState(sim): AxumState<D24Sim>) -> Response {
    sim.reset();
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests;
