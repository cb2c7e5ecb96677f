//! Tests of the PayMongo simulator's routes, authentication, idempotency and webhooks.

use axum::{
    body::Body,
    extract::Request,
    http::{Method, StatusCode, header},
};
use base64::Engine as _;
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
