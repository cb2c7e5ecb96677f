//! Tests of the Compago simulator's routes.

use axum::body::Body;
use tower::ServiceExt as _;

use super::{fixtures::*, *};

async fn call(
    sim: &CompagoSim,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: &str,
) -> (StatusCode, String) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    let request = request.body(Body::from(body.to_owned())).unwrap();
    let (status, bytes) = crate::testing::send(sim.router(), request).await;
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

async fn api(sim: &CompagoSim, method: Method, path: &str) -> (StatusCode, String) {
    call(sim, method, path, Some(COMPAGO_SANDBOX_API_KEY), "").await
}

fn payment_path(method: &str, payment: &str) -> String {
    format!("/api/payment-method/{method}/payment/{payment}")
}

/// Every Compago route refuses a missing or wrong key with 401 Unauthorized, and does
/// nothing.
#[tokio::test]
async fn every_route_wants_the_api_key() {
    let sim = CompagoSim::new();
    let routes = [
        (Method::GET, "/api/payment-method".to_owned()),
        (Method::GET, format!("/api/payment-method/{ACTIVE_METHOD}")),
        (
            Method::DELETE,
            format!("/api/payment-method/{ACTIVE_METHOD}"),
        ),
        (
            Method::GET,
            format!("/api/payment-method/{ACTIVE_METHOD}/payment"),
        ),
        (Method::GET, payment_path(ACTIVE_METHOD, CONFIRMED_500)),
        (
            Method::POST,
            format!("{}/refund", payment_path(ACTIVE_METHOD, CONFIRMED_500)),
        ),
    ];
    for (method, path) in routes {
        for key in [None, Some("wrong")] {
            let (status, body) = call(&sim, method.clone(), &path, key, "").await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
            assert_eq!(body, r#"{"message":"Unauthorized"}"#);
        }
    }
    assert_eq!(sim.stats().refunds_applied, 0);
    assert_eq!(sim.stats().refund_posts, 0);
    assert_eq!(
        sim.payment_method(ACTIVE_METHOD).unwrap().status,
        MethodStatus::Active
    );
}

/// A payment reads as documented, with the amount's exact digits.
#[tokio::test]
async fn payment_reads_as_documented() {
    let sim = CompagoSim::new();
    let (status, body) = api(
        &sim,
        Method::GET,
        &payment_path(ACTIVE_METHOD, CONFIRMED_500),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        r#"{"id":"11111111-2222-3333-4444-555555555555","status":"CONFIRMED","amount":500,"currency":"MXN"}"#
    );
    let (_, body) = api(
        &sim,
        Method::GET,
        &payment_path(ACTIVE_METHOD, CONFIRMED_505_95),
    )
    .await;
    assert!(body.contains(r#""amount":505.95,"#), "{body}");
    let (_, body) = api(
        &sim,
        Method::GET,
        &payment_path(ACTIVE_METHOD, CANCELLED_PAYMENT),
    )
    .await;
    assert!(body.contains(r#""amount":99.9,"#), "{body}");
}

/// The documented 404s: unknown method, unknown payment, a payment of another method.
#[tokio::test]
async fn not_found_answers() {
    let sim = CompagoSim::new();
    let unknown = "00000000-0000-0000-0000-000000000000";
    for (path, text) in [
        (
            payment_path(unknown, CONFIRMED_500),
            "Payment method not found",
        ),
        (
            payment_path("nope", CONFIRMED_500),
            "Payment method not found",
        ),
        (payment_path(ACTIVE_METHOD, unknown), "Payment not found"),
        (
            payment_path(REVOKED_METHOD, CONFIRMED_500),
            "Payment not found",
        ),
        (
            format!("/api/payment-method/{unknown}"),
            "Payment method not found",
        ),
        (
            format!("/api/payment-method/{unknown}/payment"),
            "Payment method not found",
        ),
    ] {
        let (status, body) = api(&sim, Method::GET, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body, format!(r#"{{"message":"{text}"}}"#), "{path}");
    }
}

/// A refund of a CONFIRMED payment answers as S000 and records the reason; a second one
/// is a 400 and changes nothing.
#[tokio::test]
async fn refund_once_then_400() {
    let sim = CompagoSim::new();
    let path = format!("{}/refund", payment_path(ACTIVE_METHOD, CONFIRMED_500));
    let key = Some(COMPAGO_SANDBOX_API_KEY);
    let (status, body) = call(
        &sim,
        Method::POST,
        &path,
        key,
        r#"{"reason":"Customer requested refund"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        r#"{"id":"11111111-2222-3333-4444-555555555555","status":"REFUNDED","amount":500,"currency":"MXN"}"#
    );
    let stored = sim.payment(CONFIRMED_500).unwrap();
    assert_eq!(stored.status, PaymentStatus::Refunded);
    assert_eq!(
        stored.refund_reason.as_deref(),
        Some("Customer requested refund")
    );

    let (status, body) = call(&sim, Method::POST, &path, key, "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, r#"{"message":"Payment not CONFIRMED"}"#);
    let stats = sim.stats();
    assert_eq!((stats.refund_posts, stats.refunds_applied), (2, 1));
    assert_eq!(stats.refund_posts_by_payment[CONFIRMED_500], 2);
}

/// Only CONFIRMED payments are refundable; a body that is not JSON is a 400.
#[tokio::test]
async fn other_statuses_and_bad_bodies_are_400() {
    let sim = CompagoSim::new();
    for id in [
        PENDING_PAYMENT,
        REFUNDED_PAYMENT,
        NOT_INITIALIZED_PAYMENT,
        CANCELLED_PAYMENT,
    ] {
        let path = format!("{}/refund", payment_path(ACTIVE_METHOD, id));
        let (status, _) = api(&sim, Method::POST, &path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{id}");
    }
    let path = format!("{}/refund", payment_path(ACTIVE_METHOD, CONFIRMED_250));
    let (status, _) = call(
        &sim,
        Method::POST,
        &path,
        Some(COMPAGO_SANDBOX_API_KEY),
        "{reason",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(sim.stats().refunds_applied, 0);
    assert_eq!(
        sim.payment(CONFIRMED_250).unwrap().status,
        PaymentStatus::Confirmed
    );
}

/// Any payment UUID under the load-test method reads CONFIRMED 100 MXN on first sight
/// and can be refunded once; a payment that is not a UUID is still not found.
#[tokio::test]
async fn load_test_method_holds_every_payment() {
    let sim = CompagoSim::new();
    let fresh = "0b0b0b0b-aaaa-4bbb-8ccc-dddddddddddd";
    let (status, body) = api(&sim, Method::GET, &payment_path(LOAD_TEST_METHOD, fresh)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        format!(r#"{{"id":"{fresh}","status":"CONFIRMED","amount":100,"currency":"MXN"}}"#)
    );
    let other = "0b0b0b0b-eeee-4bbb-8ccc-dddddddddddd";
    let path = format!("{}/refund", payment_path(LOAD_TEST_METHOD, other));
    let (status, body) = api(&sim, Method::POST, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(r#""status":"REFUNDED""#), "{body}");
    let (status, _) = api(&sim, Method::POST, &path).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api(
        &sim,
        Method::GET,
        &payment_path(LOAD_TEST_METHOD, "not-a-uuid"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(sim.stats().refunds_applied, 1);
}

/// Lists page as documented, count is the number of matches, pageSize is capped at 500.
#[tokio::test]
async fn lists_page_and_filter() {
    let sim = CompagoSim::new();
    let base = format!("/api/payment-method/{ACTIVE_METHOD}/payment");
    let (status, body) = api(&sim, Method::GET, &base).await;
    assert_eq!(status, StatusCode::OK);
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["count"], 8);
    assert_eq!(page["page"], 1);
    assert_eq!(page["pageSize"], 100);
    assert_eq!(page["items"].as_array().unwrap().len(), 8);
    assert!(page["items"][0]["createdAt"].is_string());

    let (_, body) = api(
        &sim,
        Method::GET,
        &format!("{base}?status=CONFIRMED&page=2&pageSize=3"),
    )
    .await;
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["count"], 4);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);

    for bad in [
        "pageSize=501",
        "pageSize=0",
        "page=0",
        "status=DONE",
        "page=x",
    ] {
        let (status, _) = api(&sim, Method::GET, &format!("{base}?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (_, body) = api(&sim, Method::GET, "/api/payment-method?status=REVOKED").await;
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["count"], 1);
    assert_eq!(page["items"][0]["id"], REVOKED_METHOD);
    assert_eq!(page["items"][0]["card"]["lastFourDigits"], "1234");
}

/// Revoking works once, from ACTIVE only.
#[tokio::test]
async fn revoke_from_active_only() {
    let sim = CompagoSim::new();
    let path = format!("/api/payment-method/{ACTIVE_METHOD}");
    let (status, body) = api(&sim, Method::DELETE, &path).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"{"success":true}"#)
    );
    let (status, body) = api(&sim, Method::DELETE, &path).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        r#"{"message":"Cannot revoke payment method (not ACTIVE)"}"#
    );
}

/// Refund faults: before-apply answers without refunding; after-apply refunds and then
/// fails; a corrupt body refunds and answers half a body; Retry-After is set on request.
#[tokio::test]
async fn refund_faults() {
    let sim = CompagoSim::new();
    let refund_path = |id: &str| format!("{}/refund", payment_path(ACTIVE_METHOD, id));

    sim.set_faults(Faults {
        fail_before_apply_status: Some(503),
        ..Faults::default()
    })
    .unwrap();
    let (status, _) = api(&sim, Method::POST, &refund_path(CONFIRMED_500)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        sim.payment(CONFIRMED_500).unwrap().status,
        PaymentStatus::Confirmed
    );

    sim.set_faults(Faults {
        fail_after_apply_status: Some(500),
        ..Faults::default()
    })
    .unwrap();
    let (status, _) = api(&sim, Method::POST, &refund_path(CONFIRMED_500)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        sim.payment(CONFIRMED_500).unwrap().status,
        PaymentStatus::Refunded
    );

    sim.set_faults(Faults {
        corrupt_refund_body: true,
        ..Faults::default()
    })
    .unwrap();
    let (status, body) = api(&sim, Method::POST, &refund_path(CONFIRMED_250)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        serde_json::from_str::<serde_json::Value>(&body).is_err(),
        "{body}"
    );
    assert_eq!(
        sim.payment(CONFIRMED_250).unwrap().status,
        PaymentStatus::Refunded
    );

    sim.set_faults(Faults {
        fail_reads_status: Some(429),
        retry_after_s: Some(7),
        ..Faults::default()
    })
    .unwrap();
    let response = sim
        .router()
        .oneshot(
            Request::builder()
                .uri(payment_path(ACTIVE_METHOD, CONFIRMED_1234_56))
                .header("x-api-key", COMPAGO_SANDBOX_API_KEY)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()[axum::http::header::RETRY_AFTER], "7");

    sim.clear_faults();
    let (status, _) = api(
        &sim,
        Method::GET,
        &payment_path(ACTIVE_METHOD, CONFIRMED_1234_56),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sim.stats().refunds_applied, 2);
}
