//! The simulator's admin API: not PayMongo's, no key, for tests and people on loopback.
//! Paths are relative to the simulator's base URL (`http://127.0.0.1:PORT/paymongo`).
//!
//! | route | what |
//! |---|---|
//! | `POST /sandbox/payments` | create a payment: `{"amount": 50000, "id"?, "status"?: "paid", "description"?, "refunds"?: [{"amount", "status"?}], "refund_error"?: "allowed_date_exceeded"}` (centavos; `refunds` are made outside the gateway); 201 with the payment |
//! | `GET /sandbox/payments`, `GET /sandbox/payments/{id}` | payments as PayMongo answers them |
//! | `POST /sandbox/payments/{id}/refunds` | record a refund made outside the gateway: `{"amount", "status"?: "succeeded"}`; 201 with the refund |
//! | `GET /sandbox/refunds`, `GET /sandbox/refunds/{id}` | refunds, with the outcome each will settle into |
//! | `POST /sandbox/refunds/{id}/settle` | settle a pending refund now: `{"outcome"?: "succeeded" \| "failed"}` (its planned one by default); sends its webhooks |
//! | `GET /sandbox/stats` | counters: `requests`, `refund_posts`, `refund_posts_by_payment`, `refunds_created`, `refunds_by_payment` (`{count, amount_minor, currency}` of refunds made through the API), `idempotent_replays`, `payment_reads`, `refund_reads`, `refund_lists`, `webhooks_sent`, `webhooks_failed`, `webhook_attempts`, `faults_applied` |
//! | `GET /sandbox/settings`, `POST /sandbox/settings` | `settle_delay_ms`, `default_outcome`, `webhooks_enabled`, `refund_updated_carries` (`refund` \| `payment`), `webhook_max_attempts`, `webhook_retry_ms`, `accept_over_refunds` (accept a refund above what is left, which PayMongo refuses: only the gateway's guard stops it); a POST changes the keys it names |
//! | `GET /sandbox/outcomes`, `POST /sandbox/outcomes`, `DELETE /sandbox/outcomes` | outcomes of the next refunds, in order: POST `{"outcomes": ["failed", "succeeded"]}` appends |
//! | `GET /sandbox/webhooks`, `POST /sandbox/webhooks`, `DELETE /sandbox/webhooks` | where webhooks go: POST `{"urls": [...]}` replaces the list; GET also shows the signing secret |
//! | `GET /sandbox/faults`, `POST /sandbox/faults`, `DELETE /sandbox/faults` | the shared fault switches ([`crate::faults`]; a POST replaces them all; unknown keys are refused) |
//! | `POST /sandbox/reset` | back to the fixtures, default settings, no faults, counters at zero (webhook URLs kept) |

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State as AxumState},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::{
    PAYMONGO_SANDBOX_WEBHOOK_SECRET, PayMongoSim, SPEC,
    api::error,
    state::{self, Outcome, Payment, PaymentStatus, RefundStatus, SettingsPatch},
};
use crate::faults;

pub(super) fn router(sim: PayMongoSim) -> Router {
    Router::new()
        .route("/sandbox/payments", get(list_payments).post(create_payment))
        .route("/sandbox/payments/{id}", get(get_payment))
        .route("/sandbox/payments/{id}/refunds", post(add_outside_refund))
        .route("/sandbox/refunds", get(list_refunds))
        .route("/sandbox/refunds/{id}", get(get_refund))
        .route("/sandbox/refunds/{id}/settle", post(settle_refund))
        .route("/sandbox/stats", get(stats))
        .route("/sandbox/settings", get(get_settings).post(set_settings))
        .route(
            "/sandbox/outcomes",
            get(get_outcomes).post(add_outcomes).delete(clear_outcomes),
        )
        .route(
            "/sandbox/webhooks",
            get(get_webhooks).post(set_webhooks).delete(clear_webhooks),
        )
        .route("/sandbox/reset", post(reset))
        .with_state(sim.clone())
        .merge(faults::admin_router(sim.faults.clone(), &SPEC))
}

fn bad(detail: impl AsRef<str>) -> Response {
    error(400, "parameter_invalid", detail.as_ref(), None)
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("Invalid body: {e}"))
}

/// A refund made outside the gateway, for `POST /sandbox/payments`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutsideRefund {
    amount: i64,
    #[serde(default)]
    status: Option<RefundStatus>,
}

/// `POST /sandbox/payments` body. Amounts are centavos; the currency is PHP.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPayment {
    #[serde(default)]
    id: Option<String>,
    amount: i64,
    #[serde(default)]
    status: Option<PaymentStatus>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    refunds: Vec<OutsideRefund>,
    #[serde(default)]
    refund_error: Option<String>,
}

async fn create_payment(AxumState(sim): AxumState<PayMongoSim>, body: Bytes) -> Response {
    let new: NewPayment = match parse(&body) {
        Ok(new) => new,
        Err(why) => return bad(why),
    };
    if new.amount <= 0 {
        return bad("amount must be above 0 (centavos)");
    }
    let id = new.id.unwrap_or_else(|| state::new_id("pay_"));
    if !id
        .strip_prefix("pay_")
        .is_some_and(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return bad("id must be pay_ and letters or digits");
    }
    if new.refunds.iter().any(|r| r.amount <= 0) {
        return bad("refund amounts must be above 0");
    }
    let mut state = sim.lock();
    if state.payments.contains_key(&id) {
        return error(
            409,
            "parameter_invalid",
            "A payment with this id exists.",
            None,
        );
    }
    let now = Utc::now().timestamp();
    state.payments.insert(
        id.clone(),
        Payment {
            id: id.clone(),
            amount: new.amount,
            currency: "PHP".to_owned(),
            status: new.status.unwrap_or(PaymentStatus::Paid),
            description: new.description.unwrap_or_default(),
            created_at: now,
            refunds: Vec::new(),
            refund_error: new.refund_error,
        },
    );
    for r in new.refunds {
        state.insert_outside_refund(
            state::new_id("ref_"),
            &id,
            r.amount,
            r.status.unwrap_or(RefundStatus::Succeeded),
            now,
        );
    }
    let view = state::payment_view(&state.payments[&id], &state);
    (StatusCode::CREATED, Json(json!({ "data": view }))).into_response()
}

async fn list_payments(AxumState(sim): AxumState<PayMongoSim>) -> Response {
    let state = sim.lock();
    let data: Vec<_> = state
        .payments
        .values()
        .map(|p| state::payment_view(p, &state))
        .collect();
    Json(json!({ "data": data })).into_response()
}

async fn get_payment(AxumState(sim): AxumState<PayMongoSim>, Path(id): Path<String>) -> Response {
    match sim.payment(&id) {
        Some(view) => Json(json!({ "data": view })).into_response(),
        None => error(404, "resource_not_found", "No such payment.", None),
    }
}

async fn add_outside_refund(
    AxumState(sim): AxumState<PayMongoSim>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let refund: OutsideRefund = match parse(&body) {
        Ok(r) => r,
        Err(why) => return bad(why),
    };
    if refund.amount <= 0 {
        return bad("amount must be above 0 (centavos)");
    }
    let status = refund.status.unwrap_or(RefundStatus::Succeeded);
    match sim.add_outside_refund(&id, refund.amount, status) {
        Some(refund_id) => match sim.refund(&refund_id) {
            Some(r) => (
                StatusCode::CREATED,
                Json(json!({ "data": admin_refund(&r) })),
            )
                .into_response(),
            None => error(404, "resource_not_found", "No such refund.", None),
        },
        None => error(404, "resource_not_found", "No such payment.", None),
    }
}

fn admin_refund(r: &state::Refund) -> serde_json::Value {
    let mut view = state::refund_view(r);
    view["sandbox"] = json!({ "outcome": r.outcome, "outside": r.outside });
    view
}

async fn list_refunds(AxumState(sim): AxumState<PayMongoSim>) -> Response {
    let state = sim.lock();
    let data: Vec<_> = state
        .refunds_newest_first(None)
        .into_iter()
        .map(admin_refund)
        .collect();
    Json(json!({ "data": data })).into_response()
}

async fn get_refund(AxumState(sim): AxumState<PayMongoSim>, Path(id): Path<String>) -> Response {
    match sim.refund(&id) {
        Some(r) => Json(json!({ "data": admin_refund(&r) })).into_response(),
        None => error(404, "resource_not_found", "No such refund.", None),
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settle {
    #[serde(default)]
    outcome: Option<Outcome>,
}

async fn settle_refund(
    AxumState(sim): AxumState<PayMongoSim>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let settle: Settle = if body.iter().all(u8::is_ascii_whitespace) {
        Settle::default()
    } else {
        match parse(&body) {
            Ok(s) => s,
            Err(why) => return bad(why),
        }
    };
    if sim.refund(&id).is_none() {
        return error(404, "resource_not_found", "No such refund.", None);
    }
    if !sim.settle_now(&id, settle.outcome) {
        return error(
            409,
            "resource_failed_state",
            "The refund has already settled.",
            None,
        );
    }
    match sim.refund(&id) {
        Some(r) => Json(json!({ "data": admin_refund(&r) })).into_response(),
        None => error(404, "resource_not_found", "No such refund.", None),
    }
}

async fn stats(AxumState(sim): AxumState<PayMongoSim>) -> Response {
    Json(sim.stats()).into_response()
}

async fn get_settings(AxumState(sim): AxumState<PayMongoSim>) -> Response {
    Json(sim.settings()).into_response()
}

async fn set_settings(AxumState(sim): AxumState<PayMongoSim>, body: Bytes) -> Response {
    let patch: SettingsPatch = match parse(&body) {
        Ok(p) => p,
        Err(why) => return bad(why),
    };
    match sim.update_settings(&patch) {
        Ok(settings) => Json(settings).into_response(),
        Err(why) => bad(why),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Outcomes {
    outcomes: Vec<Outcome>,
}

fn outcomes_view(sim: &PayMongoSim) -> Response {
    let queued: Vec<_> = sim.lock().next_outcomes.iter().copied().collect();
    Json(json!({ "outcomes": queued })).into_response()
}

async fn get_outcomes(AxumState(sim): AxumState<PayMongoSim>) -> Response {
    outcomes_view(&sim)
}

async fn add_outcomes(AxumState(sim): AxumState<PayMongoSim>, body: Bytes) -> Response {
    match parse::<Outcomes>(&body) {
        Ok(o) => {
            sim.queue_outcomes(o.outcomes);
            outcomes_view(&sim)
        }
        Err(why) => bad(why),
    }
}

async fn clear_outcomes(AxumState(sim): AxumState<PayMongoSim>) -> Response {
    sim.lock().next_outcomes.clear();
    outcomes_view(&sim)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Webhooks {
    urls: Vec<String>,
}

fn webhooks_view(sim: &PayMongoSim) -> Response {
    let enabled = sim.settings().webhooks_enabled;
    Json(json!({
        "urls": sim.webhook_urls(),
        "enabled": enabled,
        "secret": PAYMONGO_SANDBOX_WEBHOOK_SECRET,
    }))
    .into_response()
}

async fn get_webhooks(AxumState(sim): AxumState<PayMongoSim>) -> Response {
    webhooks_view(&sim)
}

async fn set_webhooks(AxumState(sim): AxumState<PayMongoSim>, body: Bytes) -> Response {
    let hooks: Webhooks = match parse(&body) {
        Ok(h) => h,
        Err(why) => return bad(why),
    };
    if let Some(bad_url) = hooks
        .urls
        .iter()
        .find(|u| reqwest::Url::parse(u).map_or(true, |u| !matches!(u.scheme(), "http" | "https")))
    {
        return bad(format!("{bad_url:?} is not an http(s) URL"));
    }
    sim.set_webhook_urls(hooks.urls);
    webhooks_view(&sim)
}

async fn clear_webhooks(AxumState(sim): AxumState<PayMongoSim>) -> Response {
    sim.set_webhook_urls(Vec::new());
    webhooks_view(&sim)
}

async fn reset(AxumState(sim): AxumState<PayMongoSim>) -> Response {
    sim.reset();
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {

    use serde_json::Value;

    use super::*;
    use crate::{faults::Faults, paymongo::fixtures};

    async fn call(sim: &PayMongoSim, method: &str, path: &str, body: &str) -> (StatusCode, Value) {
        let (status, bytes) = crate::testing::call(sim.router(), method, path, body).await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A created payment is paid by default, carries its outside refunds, and is readable.
    #[tokio::test]
    async fn create_payments_with_outside_refunds() {
        let sim = PayMongoSim::new();
        let (status, body) = call(
            &sim,
            "POST",
            "/sandbox/payments",
            r#"{"amount": 80000, "refunds": [{"amount": 5000}, {"amount": 100, "status": "failed"}]}"#,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["data"]["attributes"]["status"], "paid");
        assert_eq!(
            body["data"]["attributes"]["refunds"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let id = body["data"]["id"].as_str().unwrap();
        assert!(id.starts_with("pay_"));
        let (status, _) = call(&sim, "GET", &format!("/sandbox/payments/{id}"), "").await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = call(
            &sim,
            "POST",
            &format!("/sandbox/payments/{id}/refunds"),
            r#"{"amount": 700}"#,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["data"]["attributes"]["status"], "succeeded");
        assert_eq!(body["data"]["sandbox"]["outside"], true);
        let (status, _) = call(
            &sim,
            "POST",
            "/sandbox/payments/pay_nope/refunds",
            r#"{"amount": 700}"#,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        for bad in [
            r#"{"amount": 0}"#,
            r#"{"amount": 5, "colour": "red"}"#,
            r#"{"amount": 5, "id": "nope"}"#,
            r#"{"amount": 5, "status": "done"}"#,
            r#"{"amount": 5, "refunds": [{"amount": -1}]}"#,
        ] {
            let (status, _) = call(&sim, "POST", "/sandbox/payments", bad).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        }
        let dup = format!(r#"{{"amount": 5, "id": "{}"}}"#, fixtures::PAID_50000);
        let (status, _) = call(&sim, "POST", "/sandbox/payments", &dup).await;
        assert_eq!(status, StatusCode::CONFLICT);
    }

    /// Settings change in part and are validated; outcomes queue; webhooks are replaced;
    /// faults are validated; reset keeps the webhook URLs.
    #[tokio::test]
    async fn settings_outcomes_webhooks_faults_reset() {
        let sim = PayMongoSim::new();
        let (status, body) = call(
            &sim,
            "POST",
            "/sandbox/settings",
            r#"{"settle_delay_ms": 50}"#,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["settle_delay_ms"], 50);
        assert_eq!(body["webhooks_enabled"], true);
        for bad in [
            r#"{"webhook_max_attempts": 0}"#,
            r#"{"nope": 1}"#,
            r#"{"default_outcome": "maybe"}"#,
        ] {
            let (status, _) = call(&sim, "POST", "/sandbox/settings", bad).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        }
        let (_, body) = call(
            &sim,
            "POST",
            "/sandbox/outcomes",
            r#"{"outcomes": ["failed", "succeeded"]}"#,
        )
        .await;
        assert_eq!(body["outcomes"], json!(["failed", "succeeded"]));
        let (status, _) = call(
            &sim,
            "POST",
            "/sandbox/webhooks",
            r#"{"urls": ["ftp://x"]}"#,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (_, body) = call(
            &sim,
            "POST",
            "/sandbox/webhooks",
            r#"{"urls": ["http://127.0.0.1:1/hook"]}"#,
        )
        .await;
        assert_eq!(body["urls"], json!(["http://127.0.0.1:1/hook"]));
        assert_eq!(body["secret"], PAYMONGO_SANDBOX_WEBHOOK_SECRET);
        let (status, _) = call(
            &sim,
            "POST",
            "/sandbox/faults",
            r#"{"fail_all_status": 200}"#,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = call(
            &sim,
            "POST",
            "/sandbox/faults",
            r#"{"delay_after_apply_ms": 10}"#,
        )
        .await;
        assert_eq!(status, StatusCode::OK);

        let (status, _) = call(&sim, "POST", "/sandbox/reset", "").await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(sim.settings().settle_delay_ms, 2_000);
        assert_eq!(sim.faults(), Faults::default());
        assert!(sim.lock().next_outcomes.is_empty());
        assert_eq!(sim.webhook_urls(), ["http://127.0.0.1:1/hook"]);
    }
}
