//! CreateRefund, GetRefund, GetPayment and ListProviders against the Compago simulator.

use std::time::Duration;

use refund_gateway::pb;
use serde_json::json;
use tonic::Code;

use crate::helpers::*;

/// A full refund of a captured Compago payment succeeds at once, is recorded with every
/// field, reaches Compago exactly once, and leaves nothing to refund.
#[tokio::test]
async fn full_refund_of_a_captured_payment_succeeds() {
    let gw = spawn().await;
    let mut client = gw.acme().await;
    let payment = gw.compago_payment("505.95", "CONFIRMED").await;

    let refund = client
        .create_refund(create(&rid(), "compago", &payment))
        .await
        .expect("refund created")
        .into_inner()
        .refund
        .expect("refund");
    assert_eq!(status_of(&refund), pb::RefundStatus::Succeeded);
    assert_eq!(refund.amount, Some(mxn(50595)));
    assert_eq!(refund.provider, "compago");
    assert_eq!(refund.provider_refund_id, payment.payment_id);
    assert_eq!(refund.provider_status, "REFUNDED");
    assert_eq!(refund.payment, Some(payment.clone()));
    assert_eq!(refund.metadata["order"], "A-1001");
    assert_eq!(refund.description, "customer returned the item");
    assert_eq!(
        refund.reason,
        i32::from(pb::RefundReason::RequestedByCustomer)
    );
    assert!(refund.id.starts_with("rf_"));
    assert!(refund.failure.is_none());
    assert!(refund.create_time.is_some() && refund.update_time.is_some());

    let got = client
        .get_refund(pb::GetRefundRequest {
            id: refund.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(got, refund);
    assert_eq!(gw.compago_refund_posts(&payment.payment_id).await, 1);

    let after = client
        .get_payment(pb::GetPaymentRequest {
            provider: "compago".into(),
            payment: Some(payment.clone()),
        })
        .await
        .unwrap()
        .into_inner()
        .payment
        .unwrap();
    assert_eq!(after.status, i32::from(pb::PaymentStatus::Refunded));
    assert_eq!(after.provider_status, "REFUNDED");
    assert_eq!(after.refunded_amount, Some(mxn(50595)));
    assert_eq!(after.refundable_amount, Some(mxn(0)));
}

/// GetPayment of an untouched payment reports it captured with everything refundable.
#[tokio::test]
async fn get_payment_reports_what_is_left_to_refund() {
    let gw = spawn().await;
    let mut client = gw.acme().await;
    let payment = gw.compago_payment("1234.56", "CONFIRMED").await;
    let p = client
        .get_payment(pb::GetPaymentRequest {
            provider: "compago".into(),
            payment: Some(payment.clone()),
        })
        .await
        .unwrap()
        .into_inner()
        .payment
        .unwrap();
    assert_eq!(p.status, i32::from(pb::PaymentStatus::Captured));
    assert_eq!(p.amount, Some(mxn(123456)));
    assert_eq!(p.refunded_amount, Some(mxn(0)));
    assert_eq!(p.refundable_amount, Some(mxn(123456)));
    assert_eq!(p.provider_status, "CONFIRMED");
}

/// An explicit amount equal to the whole payment is accepted like an absent one.
#[tokio::test]
async fn explicit_full_amount_is_accepted() {
    let gw = spawn().await;
    let mut client = gw.acme().await;
    let payment = gw.compago_payment("250.00", "CONFIRMED").await;
    let mut req = create(&rid(), "compago", &payment);
    req.amount = Some(mxn(25000));
    let refund = client
        .create_refund(req)
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(status_of(&refund), pb::RefundStatus::Succeeded);
}

/// Compago refunds whole payments only: a partial amount is refused with INVALID_ARGUMENT
/// before any refund call, and nothing is recorded.
#[tokio::test]
async fn partial_amount_is_refused_without_a_provider_call() {
    let gw = spawn().await;
    let mut client = gw.acme().await;
    let payment = gw.compago_payment("500.00", "CONFIRMED").await;
    let mut req = create(&rid(), "compago", &payment);
    req.amount = Some(mxn(10000));
    let err = client.create_refund(req).await.unwrap_err();
    assert_error(&err, Code::InvalidArgument, "PARTIAL_REFUND_NOT_SUPPORTED");
    assert_eq!(violated_fields(&err), ["amount"]);
    assert_eq!(gw.compago_refund_posts(&payment.payment_id).await, 0);
    let list = client
        .list_refunds(pb::ListRefundsRequest {
            payment_id: payment.payment_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(list.refunds.is_empty());
}

/// Payments that are not CONFIRMED cannot be refunded: FAILED_PRECONDITION with the
/// provider's status, and no refund call.
#[tokio::test]
async fn payments_not_captured_are_not_refundable() {
    let gw = spawn().await;
    let mut client = gw.acme().await;
    for status in ["PENDING", "NOT_INITIALIZED", "CANCELLED", "REFUNDED"] {
        let payment = gw.compago_payment("100.00", status).await;
        let err = client
            .create_refund(create(&rid(), "compago", &payment))
            .await
            .unwrap_err();
        assert_error(&err, Code::FailedPrecondition, "PAYMENT_NOT_REFUNDABLE");
        let details = tonic_types::StatusExt::get_error_details(&err);
        assert_eq!(
            details.error_info().unwrap().metadata["paymentStatus"],
            status
        );
        assert_eq!(
            gw.compago_refund_posts(&payment.payment_id).await,
            0,
            "{status}"
        );
    }
}

/// An unknown payment, or an unknown payment method, is NOT_FOUND.
#[tokio::test]
async fn unknown_payments_are_not_found() {
    let gw = spawn().await;
    let mut client = gw.acme().await;
    let known = gw.compago_payment("100.00", "CONFIRMED").await;
    let unknown_payment = pb::PaymentReference {
        payment_id: "0badbeef-0000-4000-8000-000000000000".into(),
        ..known.clone()
    };
    let err = client
        .create_refund(create(&rid(), "compago", &unknown_payment))
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "PAYMENT_NOT_FOUND");
    let unknown_method = pb::PaymentReference {
        payment_method_id: "0badbeef-0000-4000-8000-000000000001".into(),
        ..known.clone()
    };
    let err = client
        .create_refund(create(&rid(), "compago", &unknown_method))
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "PAYMENT_NOT_FOUND");
    let err = client
        .get_payment(pb::GetPaymentRequest {
            provider: "compago".into(),
            payment: Some(unknown_payment),
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "PAYMENT_NOT_FOUND");
}

/// A payment already refunded through the gateway cannot be refunded again, even if the
/// provider were to accept it: the second request is refused without a provider call.
#[tokio::test]
async fn second_refund_of_the_same_payment_is_refused() {
    let gw = spawn().await;
    let mut client = gw.acme().await;
    let payment = gw.compago_payment("300.00", "CONFIRMED").await;
    client
        .create_refund(create(&rid(), "compago", &payment))
        .await
        .unwrap();
    let err = client
        .create_refund(create(&rid(), "compago", &payment))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(gw.compago_refund_posts(&payment.payment_id).await, 1);
}

/// The gateway refuses to refund more than what is left even when the provider would
/// accept it: after the simulator is reset (the fixture payment is CONFIRMED again at the
/// provider), the gateway still knows it refunded it and refuses a second refund.
#[tokio::test]
async fn gateway_holds_the_line_against_a_provider_that_would_accept_the_excess() {
    let gw = spawn().await;
    let mut client = gw.acme().await;
    let payment = pb::PaymentReference {
        payment_id: "33333333-3333-3333-3333-333333333333".into(),
        payment_method_id: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".into(),
        invoice_id: String::new(),
    };
    client
        .create_refund(create(&rid(), "compago", &payment))
        .await
        .unwrap();
    // Back to the fixtures behind the gateway's back: the payment is CONFIRMED again.
    gw.http
        .post(format!("{}/compago/sandbox/reset", gw.sandbox_url))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let err = client
        .create_refund(create(&rid(), "compago", &payment))
        .await
        .unwrap_err();
    assert_error(&err, Code::FailedPrecondition, "NOTHING_LEFT_TO_REFUND");
    assert_eq!(
        gw.compago_refund_posts(&payment.payment_id).await,
        0,
        "nothing sent after the reset"
    );
}

/// A currency other than the payment's is refused as an invalid amount.
#[tokio::test]
async fn amount_in_another_currency_is_refused() {
    let gw = spawn().await;
    let mut client = gw.acme().await;
    let payment = gw.compago_payment("100.00", "CONFIRMED").await;
    let mut req = create(&rid(), "compago", &payment);
    req.amount = Some(pb::Money {
        currency_code: "USD".into(),
        minor_units: 10000,
    });
    let err = client.create_refund(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), ["amount.currency_code"]);
    assert_eq!(gw.compago_refund_posts(&payment.payment_id).await, 0);
}

/// A timeout after Compago applied the refund is not a failure: CreateRefund answers
/// PENDING, and the worker finds out by itself that the refund went through.
#[tokio::test]
async fn timeout_is_pending_then_reconciled_to_succeeded() {
    let gw = spawn_with(Setup {
        timeout_ms: 300,
        ..setup()
    })
    .await;
    let mut client = gw.acme().await;
    let payment = gw.compago_payment("777.00", "CONFIRMED").await;
    gw.compago_faults(json!({ "refund_delay_ms": 800 })).await;
    let refund = client
        .create_refund(create(&rid(), "compago", &payment))
        .await
        .expect("a timeout is not an error")
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(status_of(&refund), pb::RefundStatus::Pending);
    assert!(refund.failure.is_none());
    gw.compago_faults(json!({})).await;
    let done = wait_for(
        &mut client,
        &refund.id,
        |r| status_of(r) == pb::RefundStatus::Succeeded,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(done.provider_status, "REFUNDED");
    let stats = gw.compago_stats().await;
    assert_eq!(stats["refunds_applied"], 1, "{stats}");
}

/// A 500 after Compago applied the refund is an unknown outcome too, never a failure.
#[tokio::test]
async fn server_error_after_applying_is_reconciled_not_failed() {
    let gw = spawn().await;
    let mut client = gw.acme().await;
    let payment = gw.compago_payment("88.00", "CONFIRMED").await;
    gw.compago_faults(json!({ "fail_after_apply_status": 500 }))
        .await;
    let refund = client
        .create_refund(create(&rid(), "compago", &payment))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(status_of(&refund), pb::RefundStatus::Pending);
    gw.compago_faults(json!({})).await;
    wait_for(
        &mut client,
        &refund.id,
        |r| status_of(r) == pb::RefundStatus::Succeeded,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(gw.compago_stats().await["refunds_applied"], 1);
}

/// A 503 before applying leaves no trace at Compago: the worker sees the payment still
/// CONFIRMED once the attempt is surely over and sends the refund again, which is harmless
/// with Compago (a refunded payment refuses a second refund). Exactly one refund results.
#[tokio::test]
async fn unapplied_unknown_outcome_is_sent_again_and_completes_once() {
    let gw = spawn_with(Setup {
        timeout_ms: 200,
        ..setup()
    })
    .await;
    let mut client = gw.acme().await;
    let payment = gw.compago_payment("64.00", "CONFIRMED").await;
    gw.compago_faults(json!({ "fail_before_apply_status": 503 }))
        .await;
    let refund = client
        .create_refund(create(&rid(), "compago", &payment))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(status_of(&refund), pb::RefundStatus::Pending);
    gw.compago_faults(json!({})).await;
    wait_for(
        &mut client,
        &refund.id,
        |r| status_of(r) == pb::RefundStatus::Succeeded,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(gw.compago_stats().await["refunds_applied"], 1);
    assert!(gw.compago_refund_posts(&payment.payment_id).await >= 2);
}

/// SyncRefund asks Compago at once, also for a refund in a final status, and returns what
/// it recorded.
#[tokio::test]
async fn sync_refund_reads_the_provider_now() {
    let gw = spawn().await;
    let mut client = gw.acme().await;
    let payment = gw.compago_payment("42.00", "CONFIRMED").await;
    let refund = client
        .create_refund(create(&rid(), "compago", &payment))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    let reads_before = gw.compago_stats().await["requests"].as_u64().unwrap();
    let synced = client
        .sync_refund(pb::SyncRefundRequest {
            id: refund.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(status_of(&synced), pb::RefundStatus::Succeeded);
    let reads_after = gw.compago_stats().await["requests"].as_u64().unwrap();
    assert!(
        reads_after > reads_before,
        "SyncRefund must ask the provider"
    );
}

/// ListProviders shows every account the caller may use, with what each supports.
#[tokio::test]
async fn list_providers_describes_the_accounts() {
    let gw = spawn().await;
    let providers = gw
        .acme()
        .await
        .list_providers(pb::ListProvidersRequest {})
        .await
        .unwrap()
        .into_inner()
        .providers;
    let names: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["compago", "d24", "paymongo"]);
    let compago = &providers[0];
    assert_eq!(compago.kind, "compago");
    assert_eq!(compago.currencies, ["MXN"]);
    assert!(!compago.supports_partial_refunds);
    assert!(!compago.supports_webhooks);
    assert!(compago.sandbox);
}
