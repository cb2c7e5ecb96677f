//! The simulator's admin API: not Compago's, no API key, for tests and people on loopback.
//! Paths are relative to the simulator's base URL (`http://127.0.0.1:PORT/compago`).
//!
//! | route | what |
//! |---|---|
//! | `POST /sandbox/payments` | create a payment: `{"amount": 500.00, "payment_method_id"?, "currency"?: "MXN", "status"?: "CONFIRMED", "id"?}`; 201 with the payment |
//! | `GET /sandbox/payments` | every payment: `{"items": [...]}` |
//! | `GET /sandbox/payments/{id}` | one payment (404 if unknown) |
//! | `GET /sandbox/stats` | counters: `requests`, `refund_posts`, `refunds_applied`, `refund_posts_by_payment`, `refunds_by_payment` (`{count, amount_minor, currency}`), `webhooks_sent` (0), `faults_applied` |
//! | `GET`, `POST`, `DELETE /sandbox/faults` | the shared fault switches ([`crate::faults`]; POST replaces them all, unknown keys refused) |
//! | `POST /sandbox/reset` | back to the fixtures, no faults, counters at zero |

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State as AxumState},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    CompagoSim, SPEC, fixtures, message,
    state::{Payment, PaymentStatus},
};
use crate::faults;
use crate::json_decimal;

pub(super) fn router(sim: CompagoSim) -> Router {
    Router::new()
        .route("/sandbox/payments", get(list_payments).post(create_payment))
        .route("/sandbox/payments/{id}", get(get_payment))
        .route("/sandbox/stats", get(stats))
        .route("/sandbox/reset", post(reset))
        .with_state(sim.clone())
        .merge(faults::admin_router(sim.faults.clone(), &SPEC))
}

/// A payment with everything the simulator knows of it.
#[derive(Serialize)]
struct AdminPayment {
    id: String,
    payment_method_id: String,
    status: PaymentStatus,
    #[serde(with = "json_decimal")]
    amount: Decimal,
    currency: String,
    created_at: DateTime<Utc>,
    refund_reason: Option<String>,
    refunded_at: Option<DateTime<Utc>>,
}

impl AdminPayment {
    fn of(p: &Payment) -> Self {
        Self {
            id: p.id.to_string(),
            payment_method_id: p.payment_method_id.to_string(),
            status: p.status,
            amount: p.amount,
            currency: p.currency.clone(),
            created_at: p.created_at,
            refund_reason: p.refund_reason.clone(),
            refunded_at: p.refunded_at,
        }
    }
}

/// `POST /sandbox/payments` body. The amount is not checked against MXN's two decimals, so
/// tests can create amounts an adapter must refuse.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPayment {
    /// A UUID; default: a new one.
    #[serde(default)]
    id: Option<String>,
    /// A UUID; default: the active fixture method.
    #[serde(default)]
    payment_method_id: Option<String>,
    /// Decimal pesos, a JSON number or a numeric string.
    #[serde(with = "json_decimal")]
    amount: Decimal,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    status: Option<PaymentStatus>,
}

async fn create_payment(AxumState(sim): AxumState<CompagoSim>, body: Bytes) -> Response {
    let new: NewPayment = match serde_json::from_slice(&body) {
        Ok(new) => new,
        Err(e) => return message(StatusCode::BAD_REQUEST, &format!("Invalid body: {e}")),
    };
    if new.amount <= Decimal::ZERO {
        return message(StatusCode::BAD_REQUEST, "amount must be above 0");
    }
    let currency = new.currency.unwrap_or_else(|| "MXN".to_owned());
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return message(
            StatusCode::BAD_REQUEST,
            "currency must be three upper-case letters",
        );
    }
    let method_id = new
        .payment_method_id
        .as_deref()
        .unwrap_or(fixtures::ACTIVE_METHOD);
    let Ok(method_id) = Uuid::try_parse(method_id) else {
        return message(StatusCode::BAD_REQUEST, "payment_method_id must be a UUID");
    };
    let id = match new.id.as_deref().map(Uuid::try_parse) {
        None => Uuid::new_v4(),
        Some(Ok(id)) => id,
        Some(Err(_)) => return message(StatusCode::BAD_REQUEST, "id must be a UUID"),
    };
    let mut state = sim.lock();
    if !state.methods.contains_key(&method_id) {
        return message(StatusCode::NOT_FOUND, "Payment method not found");
    }
    if state.payments.contains_key(&id) {
        return message(StatusCode::CONFLICT, "A payment with this id exists");
    }
    let payment = Payment {
        id,
        payment_method_id: method_id,
        status: new.status.unwrap_or(PaymentStatus::Confirmed),
        amount: new.amount,
        currency,
        created_at: Utc::now(),
        refund_reason: None,
        refunded_at: None,
    };
    let view = AdminPayment::of(&payment);
    state.payments.insert(id, payment);
    (StatusCode::CREATED, Json(view)).into_response()
}

async fn list_payments(AxumState(sim): AxumState<CompagoSim>) -> Response {
    let state = sim.lock();
    let mut items: Vec<_> = state.payments.values().collect();
    items.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    let items: Vec<_> = items.into_iter().map(AdminPayment::of).collect();
    Json(serde_json::json!({ "items": items })).into_response()
}

async fn get_payment(AxumState(sim): AxumState<CompagoSim>, Path(id): Path<String>) -> Response {
    match sim.payment(&id) {
        Some(p) => Json(AdminPayment::of(&p)).into_response(),
        None => message(StatusCode::NOT_FOUND, "Payment not found"),
    }
}

async fn stats(AxumState(sim): AxumState<CompagoSim>) -> Response {
    Json(sim.stats()).into_response()
}

async fn reset(AxumState(sim): AxumState<CompagoSim>) -> Response {
    sim.reset();
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::faults::Faults;

    async fn call(sim: &CompagoSim, method: &str, path: &str, body: &str) -> (StatusCode, String) {
        let (status, bytes) = crate::testing::call(sim.router(), method, path, body).await;
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    /// A created payment gets defaults (active method, MXN, CONFIRMED), keeps the exact
    /// amount, and is listed.
    #[tokio::test]
    async fn create_and_list_payments() {
        let sim = CompagoSim::new();
        let (status, body) =
            call(&sim, "POST", "/sandbox/payments", r#"{"amount": "777.70"}"#).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let created: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(created["payment_method_id"], fixtures::ACTIVE_METHOD);
        assert_eq!(created["status"], "CONFIRMED");
        assert_eq!(created["currency"], "MXN");
        assert!(body.contains(r#""amount":777.70,"#), "{body}");
        let id = created["id"].as_str().unwrap();
        assert_eq!(sim.payment(id).unwrap().amount.to_string(), "777.70");

        let (_, body) = call(&sim, "GET", "/sandbox/payments", "").await;
        let list: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            list["items"].as_array().unwrap().len(),
            fixtures::PAYMENTS.len() + 1
        );
        let (status, _) = call(&sim, "GET", &format!("/sandbox/payments/{id}"), "").await;
        assert_eq!(status, StatusCode::OK);
    }

    /// Bad creations are refused: unknown method, duplicate id, non-positive or non-numeric
    /// amount, unknown field.
    #[tokio::test]
    async fn bad_payments_are_refused() {
        let sim = CompagoSim::new();
        for (body, want) in [
            (
                r#"{"amount": 5, "payment_method_id": "00000000-0000-0000-0000-000000000000"}"#,
                StatusCode::NOT_FOUND,
            ),
            (
                &format!(r#"{{"amount": 5, "id": "{}"}}"#, fixtures::CONFIRMED_500) as &str,
                StatusCode::CONFLICT,
            ),
            (r#"{"amount": 0}"#, StatusCode::BAD_REQUEST),
            (r#"{"amount": "five"}"#, StatusCode::BAD_REQUEST),
            (r#"{"amount": 5, "colour": "red"}"#, StatusCode::BAD_REQUEST),
            (
                r#"{"amount": 5, "currency": "mxn"}"#,
                StatusCode::BAD_REQUEST,
            ),
            (
                r#"{"amount": 5, "status": "DONE"}"#,
                StatusCode::BAD_REQUEST,
            ),
            (r#"{"amount": 5, "id": "x"}"#, StatusCode::BAD_REQUEST),
            (
                r#"{"amount": 5, "payment_method_id": "x"}"#,
                StatusCode::BAD_REQUEST,
            ),
        ] {
            let (status, _) = call(&sim, "POST", "/sandbox/payments", body).await;
            assert_eq!(status, want, "{body}");
        }
    }

    /// Faults are set whole, validated, read back and cleared; reset restores fixtures.
    #[tokio::test]
    async fn faults_and_reset() {
        let sim = CompagoSim::new();
        let (status, body) = call(&sim, "POST", "/sandbox/faults", r#"{"delay_ms": 50}"#).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains(r#""delay_ms":50"#));
        assert_eq!(sim.faults().delay_ms, 50);
        for bad in [r#"{"delay": 5}"#, r#"{"fail_after_apply_status": 200}"#] {
            let (status, _) = call(&sim, "POST", "/sandbox/faults", bad).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        }
        assert_eq!(sim.faults().delay_ms, 50);
        let (status, _) = call(&sim, "DELETE", "/sandbox/faults", "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(sim.faults(), Faults::default());

        sim.lock().payments.clear();
        let (status, _) = call(&sim, "POST", "/sandbox/reset", "").await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert!(sim.payment(fixtures::CONFIRMED_500).is_some());
        let (_, body) = call(&sim, "GET", "/sandbox/stats", "").await;
        assert!(body.contains(r#""refunds_applied":0"#), "{body}");
    }
}
