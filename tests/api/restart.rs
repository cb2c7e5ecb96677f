//! A restart on the same store keeps every refund and event.

use refund_gateway::pb;

use crate::helpers::*;

/// After a graceful restart on the same SQLite file, refunds read back the same, the event
/// history replays with the same sequences, and new events continue above them.
#[tokio::test]
async fn restart_keeps_refunds_and_events() {
    let gw = spawn().await;
    let mut client = gw.acme().await;
    let payment = gw.compago_payment("45.00", "CONFIRMED").await;
    let refund = client
        .create_refund(create(&rid(), "compago", &payment))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    let history = history_of(&mut client, 2).await;
    drop(client);

    let gw = gw.restart().await;
    let mut client = gw.acme().await;
    let again = client
        .get_refund(pb::GetRefundRequest {
            id: refund.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(again, refund);
    assert_eq!(history_of(&mut client, 2).await, history);

    let payment = gw.compago_payment("46.00", "CONFIRMED").await;
    client
        .create_refund(create(&rid(), "compago", &payment))
        .await
        .unwrap();
    let after = history_of(&mut client, 4).await;
    assert_eq!(&after[..2], &history[..]);
    assert!(after[2].sequence > history[1].sequence);
}

async fn history_of(client: &mut Client, n: usize) -> Vec<pb::RefundEvent> {
    let mut feed = client
        .watch_refunds(pb::WatchRefundsRequest {
            after_sequence: Some(0),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(feed.message().await.unwrap().unwrap().event.unwrap());
    }
    out
}
