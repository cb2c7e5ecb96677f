//! ListRefunds: filters, newest-first order, opaque page tokens.

use refund_gateway::pb;
use tonic::Code;

use crate::helpers::*;

async fn refund_n(gw: &Gateway, client: &mut Client, n: usize) -> Vec<pb::Refund> {
    let mut out = Vec::new();
    for i in 0..n {
        let payment = gw
            .compago_payment(&format!("{}.00", 10 + i), "CONFIRMED")
            .await;
        out.push(
            client
                .create_refund(create(&rid(), "compago", &payment))
                .await
                .unwrap()
                .into_inner()
                .refund
                .unwrap(),
        );
    }
    out
}

/// Pages of 3 walk through 7 refunds newest first, with no gap and no duplicate, and the
/// last page has an empty token.
#[tokio::test]
async fn pages_walk_newest_first_without_gaps() {
    let gw = spawn().await;
    let mut client = gw.acme().await;
    let created = refund_n(&gw, &mut client, 7).await;
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = client
            .list_refunds(pb::ListRefundsRequest {
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        assert!(page.refunds.len() <= 3);
        seen.extend(page.refunds.into_iter().map(|r| r.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = created.iter().rev().map(|r| r.id.clone()).collect();
    assert_eq!(seen, expected);
}

/// Filters by payment, status and provider narrow the list.
#[tokio::test]
async fn filters_narrow_the_list() {
    let gw = spawn().await;
    let mut client = gw.acme().await;
    let created = refund_n(&gw, &mut client, 3).await;
    let by_payment = client
        .list_refunds(pb::ListRefundsRequest {
            payment_id: created[1].payment.as_ref().unwrap().payment_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .refunds;
    assert_eq!(by_payment.len(), 1);
    assert_eq!(by_payment[0].id, created[1].id);

    let succeeded = client
        .list_refunds(pb::ListRefundsRequest {
            status: pb::RefundStatus::Succeeded.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .refunds;
    assert_eq!(succeeded.len(), 3);
    let failed = client
        .list_refunds(pb::ListRefundsRequest {
            status: pb::RefundStatus::Failed.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .refunds;
    assert!(failed.is_empty());
    let compago = client
        .list_refunds(pb::ListRefundsRequest {
            provider: "compago".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .refunds;
    assert_eq!(compago.len(), 3);
    let d24 = client
        .list_refunds(pb::ListRefundsRequest {
            provider: "d24".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .refunds;
    assert!(d24.is_empty());
}

/// A page token only continues the listing it came from: other filters, another tenant or
/// a tampered token are INVALID_ARGUMENT; a negative page size too.
#[tokio::test]
async fn page_tokens_are_opaque_and_bound_to_their_listing() {
    let gw = spawn().await;
    let mut client = gw.acme().await;
    refund_n(&gw, &mut client, 3).await;
    let page = client
        .list_refunds(pb::ListRefundsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let token = page.next_page_token;
    assert!(!token.is_empty());
    let err = client
        .list_refunds(pb::ListRefundsRequest {
            page_size: 1,
            page_token: token.clone(),
            provider: "compago".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_PAGE_TOKEN");
    let err = gw
        .client(GLOBEX_KEY)
        .await
        .list_refunds(pb::ListRefundsRequest {
            page_size: 1,
            page_token: token.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_PAGE_TOKEN");
    let mut tampered = token.into_bytes();
    tampered[2] = if tampered[2] == b'A' { b'B' } else { b'A' };
    let err = client
        .list_refunds(pb::ListRefundsRequest {
            page_size: 1,
            page_token: String::from_utf8(tampered).unwrap(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_PAGE_TOKEN");
    let err = client
        .list_refunds(pb::ListRefundsRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), ["page_size"]);
    // Above the maximum is coerced down, not refused.
    client
        .list_refunds(pb::ListRefundsRequest {
            page_size: 10_000,
            ..Default::default()
        })
        .await
        .unwrap();
}
