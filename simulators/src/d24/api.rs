//! D24's `/v3` routes as the simulator answers them: the header checks, `POST /v3/refunds`,
//! `GET /v3/refunds/{id}` and `GET /v3/deposits/{id}`, with D24's bodies and error codes.

use axum::{
    Json,
    body::{Body, Bytes},
    extract::{Path, Request, State as AxumState},
    http::{HeaderMap, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use chrono::Utc;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{
    CLOCK_WINDOW, D24_SANDBOX_LOGIN, D24_SANDBOX_SECRET, D24Sim, MAX_BODY, SPEC, signature, state,
    state::NewRefund,
    wire::{self, CardResult, RefundState},
};
use crate::{
    faults::{self, CreateFaults},
    json_decimal,
};

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
pub(super) async fn count_and_fault(
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
pub(super) async fn check_headers(
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
pub(super) async fn create_refund(
    AxumState(sim): AxumState<D24Sim>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = serde_json::from_slice::<RefundBody>(&body);
    sim.lock()
        .count_refund_post(parsed.as_ref().ok().map(|b| b.deposit_id));
    let key = header_text(&headers, "x-idempotency-key").map(str::to_owned);
    let _in_flight = key.as_deref().map(|key| InFlight::start(&sim, key));
    let faults = CreateFaults::take(&sim.faults, &SPEC);
    if let Some(answer) = faults.before_apply().await {
        return answer;
    }
    let Ok(body) = parsed else {
        return error(202);
    };
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

/// A refund POST in flight, by idempotency key, until dropped (the stats' high-water mark).
struct InFlight {
    sim: D24Sim,
    key: String,
}

impl InFlight {
    fn start(sim: &D24Sim, key: &str) -> Self {
        sim.lock().post_started(key);
        Self {
            sim: sim.clone(),
            key: key.to_owned(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.sim.lock().post_ended(&self.key);
    }
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
pub(super) async fn get_refund(
    AxumState(sim): AxumState<D24Sim>,
    Path(id): Path<String>,
) -> Response {
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
pub(super) async fn get_deposit(
    AxumState(sim): AxumState<D24Sim>,
    Path(id): Path<String>,
) -> Response {
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
