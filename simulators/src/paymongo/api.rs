//! PayMongo's `/v1` routes as the simulator answers them: Basic authentication, payments,
//! refund create (with the refund faults), read and list, in PayMongo's JSON:API envelopes.

use std::time::Duration;

use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, Request, State as AxumState},
    http::{HeaderMap, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use chrono::Utc;
use serde::Deserialize;

use super::{PAYMONGO_SANDBOX_SECRET_KEY, PayMongoSim, SPEC, state, state::Answer, validate};
use crate::faults::{self, CreateFaults};

/// Renders a stored or computed answer.
fn render(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(answer.body)).into_response()
}

/// `{"errors":[...]}` with one error and a status.
pub(super) fn error(status: u16, code: &str, detail: &str, attribute: Option<&str>) -> Response {
    render(Answer::error(status, code, detail, attribute))
}

/// Outermost layer of PayMongo's routes: counts requests and applies the shared faults.
pub(super) async fn count_and_fault(
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
pub(super) async fn require_secret_key(request: Request, next: Next) -> Response {
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
pub(super) async fn get_payment(
    AxumState(sim): AxumState<PayMongoSim>,
    Path(id): Path<String>,
) -> Response {
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
pub(super) async fn get_refund(
    AxumState(sim): AxumState<PayMongoSim>,
    Path(id): Path<String>,
) -> Response {
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
pub(super) struct ListQuery {
    payment_id: Option<String>,
    limit: Option<String>,
    before: Option<String>,
    after: Option<String>,
}

/// `GET /v1/refunds?payment_id=&limit=&before=&after=`: newest first; `after` gives the items
/// that follow the named one, `before` those that precede it.
pub(super) async fn list_refunds(
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
pub(super) async fn create_refund(
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
