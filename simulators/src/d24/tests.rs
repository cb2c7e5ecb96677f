//! Tests of the D24 simulator's routes: header checks, answers, refusals.

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderMap, HeaderValue, Method, StatusCode},
};
use chrono::Utc;

use super::{D24_SANDBOX_LOGIN, D24_SANDBOX_SECRET, D24Sim, fixtures::*, signature};

/// A signed request, as a D24 client makes it, with `tweak` applied to the headers.
fn signed(method: Method, path: &str, body: &str, tweak: impl FnOnce(&mut HeaderMap)) -> Request {
    let date = signature::x_date(Utc::now());
    let auth = signature::authorization(
        D24_SANDBOX_SECRET.as_bytes(),
        &date,
        D24_SANDBOX_LOGIN,
        body.as_bytes(),
    );
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .header("x-date", date)
        .header("x-login", D24_SANDBOX_LOGIN)
        .header("authorization", auth)
        .body(Body::from(body.to_owned()))
        .unwrap();
    tweak(request.headers_mut());
    request
}

async fn send(sim: &D24Sim, request: Request) -> (StatusCode, serde_json::Value) {
    let (status, bytes) = crate::testing::send(sim.router(), request).await;
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

fn card_body(amount: &str) -> String {
    format!(r#"{{"deposit_id":{CARD_MXN},"invoice_id":"{CARD_MXN_INVOICE}","amount":{amount}}}"#)
}

type Tweak = Box<dyn FnOnce(&mut HeaderMap)>;

/// Every header rule answers its code, and nothing is created.
#[tokio::test]
async fn header_checks_answer_their_codes() {
    let sim = D24Sim::new();
    let body = card_body("5");
    let old = signature::x_date(Utc::now() - chrono::TimeDelta::minutes(6));
    let cases: Vec<(Tweak, u32, StatusCode)> = vec![
        (
            Box::new(|h| {
                h.remove("x-login");
            }),
            101,
            StatusCode::BAD_REQUEST,
        ),
        (
            Box::new(|h| {
                h.remove("authorization");
            }),
            101,
            StatusCode::BAD_REQUEST,
        ),
        (
            Box::new(|h| {
                h.insert(
                    "x-date",
                    HeaderValue::from_static("2020-06-21T12:33:20.123Z"),
                );
            }),
            101,
            StatusCode::BAD_REQUEST,
        ),
        (
            Box::new(|h| {
                h.insert("authorization", HeaderValue::from_static("Bearer x"));
            }),
            101,
            StatusCode::BAD_REQUEST,
        ),
        (
            Box::new(|h| {
                h.insert("x-idempotency-key", HeaderValue::from_static(" "));
            }),
            105,
            StatusCode::BAD_REQUEST,
        ),
        (
            Box::new(|h| {
                h.insert("x-login", HeaderValue::from_static("someone-else"));
            }),
            100,
            StatusCode::UNAUTHORIZED,
        ),
        (
            Box::new(move |h| {
                h.insert("x-date", HeaderValue::from_str(&old).unwrap());
            }),
            103,
            StatusCode::BAD_REQUEST,
        ),
        (
            Box::new(|h| {
                h.insert(
                    "authorization",
                    HeaderValue::from_static(
                        "D24 0000000000000000000000000000000000000000000000000000000000000000",
                    ),
                );
            }),
            102,
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (tweak, code, status) in cases {
        let (got, json) = send(&sim, signed(Method::POST, "/v3/refunds", &body, tweak)).await;
        assert_eq!(
            (got, json["code"].as_u64()),
            (status, Some(u64::from(code))),
            "{json}"
        );
    }
    // A body changed after signing: 102.
    let mut request = signed(Method::POST, "/v3/refunds", &body, |_| {});
    *request.body_mut() = Body::from(card_body("6"));
    let (_, json) = send(&sim, request).await;
    assert_eq!(json["code"], 102);
    let stats = sim.stats();
    assert_eq!(stats.refunds_created, 0);
    assert_eq!(stats.refund_posts, 9);
    assert!(stats.refund_posts_by_deposit.is_empty());
    assert_eq!(stats.header_errors[&101], 4);
}

/// A card refund answers as S003 (string id, exact amount); a cash refund answers
/// `{refund_id}` as a number; read-backs follow D24-RS.
#[tokio::test]
async fn refunds_answer_as_documented() {
    let sim = D24Sim::new();
    let (status, json) = send(
        &sim,
        signed(Method::POST, "/v3/refunds", &card_body("505.95"), |_| {}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["refund_id"], "80000001");
    assert_eq!(json["refund_info"]["result"], "SUCCESS");
    assert_eq!(json["refund_info"]["amount"].to_string(), "505.95");
    assert_eq!(json["merchant_invoice_id"], CARD_MXN_INVOICE);

    let cash = format!(
        r#"{{"deposit_id":{CASH_MXN},"invoice_id":"{CASH_MXN_INVOICE}","amount":"100","bank_account":{{"beneficiary":"Carlos Ramirez","bank_code":1,"branch":"9283","account_number":"18293435","account_type":"SAVING"}}}}"#
    );
    let (status, json) = send(&sim, signed(Method::POST, "/v3/refunds", &cash, |_| {})).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json, serde_json::json!({"refund_id": 168284}));

    let (status, json) = send(&sim, signed(Method::GET, "/v3/refunds/168284", "", |_| {})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        json,
        serde_json::json!({"deposit_id": CASH_MXN, "merchant_invoice_id": CASH_MXN_INVOICE, "status": "PENDING"})
    );
    let (_, json) = send(
        &sim,
        signed(Method::GET, "/v3/refunds/80000001", "", |_| {}),
    )
    .await;
    assert_eq!(json["status"], "COMPLETED");
    assert_eq!(json["amount"].to_string(), "505.95");
    let (status, json) = send(&sim, signed(Method::GET, "/v3/refunds/999", "", |_| {})).await;
    assert_eq!(
        (status, json["code"].as_u64()),
        (StatusCode::NOT_FOUND, Some(208))
    );
}

/// Deposits read with JSDK's fields; an unknown one answers the nested error shape.
#[tokio::test]
async fn deposits_read_back() {
    let sim = D24Sim::new();
    let (status, json) = send(
        &sim,
        signed(Method::GET, &format!("/v3/deposits/{CARD_CLP}"), "", |_| {}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["local_amount"].to_string(), "15000");
    assert_eq!(json["currency"], "CLP");
    assert_eq!(json["payment_type"], "CREDIT_CARD");
    assert_eq!(json["status"], "COMPLETED");
    let (status, json) = send(&sim, signed(Method::GET, "/v3/deposits/1", "", |_| {})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json["error"]["code"], "208");
}

/// A refused body is D24's flat error with its documented HTTP status.
#[tokio::test]
async fn refusals_use_the_code_table() {
    let sim = D24Sim::new();
    for (body, code, status) in [
        (card_body("999"), 802_u32, StatusCode::BAD_REQUEST),
        (
            format!(r#"{{"deposit_id":{CASH_MXN},"invoice_id":"{CASH_MXN_INVOICE}","amount":1}}"#),
            804,
            StatusCode::BAD_REQUEST,
        ),
        (
            format!(
                r#"{{"deposit_id":{PENDING_DEPOSIT},"invoice_id":"{PENDING_DEPOSIT_INVOICE}"}}"#
            ),
            801,
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"deposit_id":1,"invoice_id":"x"}"#.to_owned(),
            208,
            StatusCode::NOT_FOUND,
        ),
        (
            r#"{"deposit_id":"x"}"#.to_owned(),
            202,
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (got, json) = send(&sim, signed(Method::POST, "/v3/refunds", &body, |_| {})).await;
        assert_eq!(
            (got, json["code"].as_u64()),
            (status, Some(u64::from(code))),
            "{body}"
        );
        assert!(json["type"].is_string() && json["description"].is_string());
    }
    assert_eq!(sim.stats().refunds_created, 0);
}
