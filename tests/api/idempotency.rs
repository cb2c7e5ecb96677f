//! CreateRefund idempotency by request_id.

use refund_gateway::pb;
use tonic::Code;

use crate::helpers::*;

/// Repeating a request with the same request_id and parameters returns the same refund and
/// never reaches the provider a second time.
#[tokio::test]
async fn same_request_id_and_parameters_replays_the_refund() {
    let gw = spawn().await;
    let mut client = gw.acme().await;
    let payment = gw.compago_payment("150.00", "CONFIRMED").await;
    let req = create(&rid(), "compago", &payment);
    let first = client
        .create_refund(req.clone())
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    let second = client
        .create_refund(req.clone())
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(first.id, second.id);
    assert_eq!(first, second);
    assert_eq!(gw.compago_refund_posts(&payment.payment_id).await, 1);
    // Another API key of the same tenant shares the tenant's keys.
    let mut other_key = gw.client(ACME_KEY_2).await;
    let third = other_key
        .create_refund(req)
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(third.id, first.id);
}

/// The same request_id with different parameters is ALREADY_EXISTS, whatever differs.
#[tokio::test]
async fn same_request_id_with_other_parameters_is_already_exists() {
    let gw = spawn().await;
    let mut client = gw.acme().await;
    let payment = gw.compago_payment("150.00", "CONFIRMED").await;
    let req = create(&rid(), "compago", &payment);
    client.create_refund(req.clone()).await.unwrap();
    let mut variants = Vec::new();
    let mut v = req.clone();
    v.description = "something else".into();
    variants.push(v);
    let mut v = req.clone();
    v.amount = Some(mxn(15000));
    variants.push(v);
    let mut v = req.clone();
    v.metadata.insert("k".into(), "v".into());
    variants.push(v);
    let mut v = req.clone();
    v.reason = pb::RefundReason::Duplicate.into();
    variants.push(v);
    for v in variants {
        let err = client.create_refund(v).await.unwrap_err();
        assert_error(&err, Code::AlreadyExists, "REQUEST_ID_REUSED");
    }
    assert_eq!(gw.compago_refund_posts(&payment.payment_id).await, 1);
}

/// An error is replayed too: the same request after a NOT_FOUND answers NOT_FOUND again.
#[tokio::test]
async fn errors_are_replayed_for_the_same_request() {
    let gw = spawn().await;
    let mut client = gw.acme().await;
    let payment = gw.compago_payment("10.00", "PENDING").await;
    let req = create(&rid(), "compago", &payment);
    let first = client.create_refund(req.clone()).await.unwrap_err();
    assert_error(&first, Code::FailedPrecondition, "PAYMENT_NOT_REFUNDABLE");
    let again = client.create_refund(req).await.unwrap_err();
    assert_error(&again, Code::FailedPrecondition, "PAYMENT_NOT_REFUNDABLE");
    assert_eq!(first.message(), again.message());
}

/// Many simultaneous calls with one request_id make one refund and one provider call; every
/// caller gets that refund.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicates_make_one_refund() {
    let gw = spawn().await;
    let payment = gw.compago_payment("999.00", "CONFIRMED").await;
    let req = create(&rid(), "compago", &payment);
    let mut calls = Vec::new();
    for _ in 0..24 {
        let mut client = gw.acme().await;
        let req = req.clone();
        calls.push(tokio::spawn(async move {
            client
                .create_refund(req)
                .await
                .map(|r| r.into_inner().refund.unwrap())
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for call in calls {
        let refund = call
            .await
            .unwrap()
            .expect("every duplicate gets the refund");
        assert_eq!(status_of(&refund), pb::RefundStatus::Succeeded);
        ids.insert(refund.id);
    }
    assert_eq!(ids.len(), 1, "one refund for one request_id: {ids:?}");
    assert_eq!(gw.compago_refund_posts(&payment.payment_id).await, 1);
}

/// Request ids are per tenant: two tenants may use the same one for different refunds.
#[tokio::test]
async fn request_ids_are_scoped_to_the_tenant() {
    let gw = spawn().await;
    let a = gw.compago_payment("10.00", "CONFIRMED").await;
    let b = gw.compago_payment("20.00", "CONFIRMED").await;
    let shared = rid();
    let ra = gw
        .acme()
        .await
        .create_refund(create(&shared, "compago", &a))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    let rb = gw
        .client(GLOBEX_KEY)
        .await
        .create_refund(create(&shared, "compago", &b))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_ne!(ra.id, rb.id);
    assert_eq!(rb.amount, Some(mxn(2000)));
}
