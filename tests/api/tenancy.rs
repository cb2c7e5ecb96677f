//! Tenancy and authentication.

use refund_gateway::pb;
use tonic::{Code, Request};

use crate::helpers::*;

/// Another tenant's refund is NOT_FOUND for every RPC that takes an id, never listed, and
/// its changes never reach another tenant's feed.
#[tokio::test]
async fn tenants_never_see_each_other() {
    let gw = spawn().await;
    let mut acme = gw.acme().await;
    let mut globex = gw.client(GLOBEX_KEY).await;
    let mut globex_feed = globex
        .watch_refunds(pb::WatchRefundsRequest {
            after_sequence: Some(0),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let payment = gw.compago_payment("10.00", "CONFIRMED").await;
    let refund = acme
        .create_refund(create(&rid(), "compago", &payment))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();

    let err = globex
        .get_refund(pb::GetRefundRequest {
            id: refund.id.clone(),
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "REFUND_NOT_FOUND");
    let err = globex
        .sync_refund(pb::SyncRefundRequest {
            id: refund.id.clone(),
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "REFUND_NOT_FOUND");
    let err = globex
        .watch_refund(pb::WatchRefundRequest {
            id: refund.id.clone(),
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "REFUND_NOT_FOUND");
    let listed = globex
        .list_refunds(pb::ListRefundsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .refunds;
    assert!(listed.is_empty());
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), globex_feed.message())
            .await
            .is_err(),
        "globex's feed stays silent"
    );
    // And acme does see it.
    acme.get_refund(pb::GetRefundRequest { id: refund.id })
        .await
        .unwrap();
}

/// A tenant limited to some provider accounts cannot use the others (PERMISSION_DENIED) and
/// only sees its own in ListProviders.
#[tokio::test]
async fn tenants_use_only_their_providers() {
    let gw = spawn().await;
    let mut limited = gw.client(LIMITED_KEY).await;
    let payment = gw.compago_payment("10.00", "CONFIRMED").await;
    let err = limited
        .create_refund(create(&rid(), "compago", &payment))
        .await
        .unwrap_err();
    assert_error(&err, Code::PermissionDenied, "PROVIDER_NOT_ALLOWED");
    let err = limited
        .get_payment(pb::GetPaymentRequest {
            provider: "compago".into(),
            payment: Some(payment.clone()),
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::PermissionDenied, "PROVIDER_NOT_ALLOWED");
    let providers = limited
        .list_providers(pb::ListProvidersRequest {})
        .await
        .unwrap()
        .into_inner()
        .providers;
    assert_eq!(
        providers
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["d24"]
    );
    assert_eq!(gw.compago_refund_posts(&payment.payment_id).await, 0);
}

/// No key, an unknown key, or a malformed authorization header are UNAUTHENTICATED with
/// ErrorInfo; `x-api-key` works as well as a bearer token.
#[tokio::test]
async fn api_keys_are_required_and_checked() {
    let gw = spawn().await;
    let mut anonymous = gw.anonymous_client().await;
    let err = anonymous
        .list_refunds(pb::ListRefundsRequest::default())
        .await
        .unwrap_err();
    assert_error(&err, Code::Unauthenticated, "UNAUTHENTICATED");

    let err = gw
        .client("not-a-key")
        .await
        .list_refunds(pb::ListRefundsRequest::default())
        .await
        .unwrap_err();
    assert_error(&err, Code::Unauthenticated, "UNAUTHENTICATED");

    let mut req = Request::new(pb::ListRefundsRequest::default());
    req.metadata_mut().insert(
        "authorization",
        format!("Basic {ACME_KEY}").parse().unwrap(),
    );
    let err = anonymous.list_refunds(req).await.unwrap_err();
    assert_error(&err, Code::Unauthenticated, "UNAUTHENTICATED");

    let mut req = Request::new(pb::ListRefundsRequest::default());
    req.metadata_mut()
        .insert("x-api-key", ACME_KEY.parse().unwrap());
    anonymous
        .list_refunds(req)
        .await
        .expect("x-api-key is accepted");
}
