//! Tests of the D24 simulator's admin API.

use super::*;
use crate::{d24::fixtures, faults::Faults};

async fn call(sim: &D24Sim, method: &str, path: &str, body: &str) -> (StatusCode, String) {
    let (status, bytes) = crate::testing::call(sim.router(), method, path, body).await;
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

/// A created deposit gets defaults and the next free id, keeps its exact amount, and is
/// listed; bad ones are refused.
#[tokio::test]
async fn create_and_list_deposits() {
    let sim = D24Sim::new();
    let (status, body) = call(&sim, "POST", "/sandbox/deposits", r#"{"amount": "777.70"}"#).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let created: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(created["id"], FIRST_ADMIN_DEPOSIT);
    assert_eq!(
        created["invoice_id"],
        format!("sandbox-{FIRST_ADMIN_DEPOSIT}")
    );
    assert_eq!(created["status"], "COMPLETED");
    assert_eq!(created["payment_type"], "CREDIT_CARD");
    assert!(body.contains(r#""amount":777.70,"#), "{body}");
    let (_, body) = call(
        &sim,
        "POST",
        "/sandbox/deposits",
        r#"{"amount": 5, "payment_type": "CASH", "currency": "CLP"}"#,
    )
    .await;
    let second: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(second["id"], FIRST_ADMIN_DEPOSIT + 1);
    assert_eq!(second["payment_method"], "BT");
    let (_, body) = call(&sim, "GET", "/sandbox/deposits", "").await;
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        fixtures::DEPOSITS.len() + 2
    );
    for bad in [
        r#"{"amount": 0}"#,
        r#"{"amount": 5, "currency": "mxn"}"#,
        r#"{"amount": 5, "status": "DONE"}"#,
        r#"{"amount": 5, "card_result": "MAYBE"}"#,
        r#"{"amount": 5, "colour": "red"}"#,
    ] {
        let (status, _) = call(&sim, "POST", "/sandbox/deposits", bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (status, _) = call(
        &sim,
        "POST",
        "/sandbox/deposits",
        &format!(r#"{{"amount": 5, "id": {}}}"#, fixtures::CARD_MXN),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

/// Timing and faults are set whole, validated, read back and reset.
#[tokio::test]
async fn timing_and_faults() {
    let sim = D24Sim::new();
    let (status, body) = call(
        &sim,
        "POST",
        "/sandbox/timing",
        r#"{"notifications": false, "delivered_after_ms": null}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let timing = sim.timing();
    assert!(!timing.notifications);
    assert_eq!(timing.delivered_after_ms, None);
    assert_eq!(
        timing.completed_after_ms,
        Timing::default().completed_after_ms
    );
    let (status, _) = call(&sim, "POST", "/sandbox/timing", r#"{"notify": true}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(&sim, "DELETE", "/sandbox/timing", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sim.timing(), Timing::default());

    let (status, _) = call(
        &sim,
        "POST",
        "/sandbox/faults",
        r#"{"refund_delay_ms": 50}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sim.faults().refund_delay_ms, 50);
    let (status, _) = call(
        &sim,
        "POST",
        "/sandbox/faults",
        r#"{"fail_reads_status": 200}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(&sim, "DELETE", "/sandbox/faults", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sim.faults(), Faults::default());
}

/// Forcing a status changes it and records the history; unknown refunds are 404.
#[tokio::test]
async fn force_status_and_reset() {
    let sim = D24Sim::new();
    let refund = sim
        .lock()
        .create_refund(
            super::super::state::NewRefund {
                deposit_id: fixtures::CARD_MXN,
                invoice_id: fixtures::CARD_MXN_INVOICE.into(),
                amount: None,
                bank_account: None,
                comments: None,
                notification_url: None,
            },
            None,
            Utc::now(),
        )
        .unwrap();
    let (status, body) = call(
        &sim,
        "POST",
        &format!("/sandbox/refunds/{}/status", refund.id),
        r#"{"status": "REJECTED"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let forced: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(forced["status"], "REJECTED");
    assert_eq!(forced["history"].as_array().unwrap().len(), 2);
    let (status, _) = call(
        &sim,
        "POST",
        "/sandbox/refunds/1/status",
        r#"{"status": "REJECTED"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        &sim,
        "POST",
        &format!("/sandbox/refunds/{}/notify", refund.id),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no notification_url");
    let (_, body) = call(
        &sim,
        "GET",
        &format!("/sandbox/refunds?deposit_id={}", fixtures::CARD_MXN),
        "",
    )
    .await;
    assert!(body.contains(r#""status":"REJECTED""#), "{body}");
    let (status, _) = call(&sim, "POST", "/sandbox/reset", "").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(sim.refund(refund.id).is_none());
    assert_eq!(sim.stats().refunds_created, 0);
}
