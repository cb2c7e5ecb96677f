//! WatchRefund and WatchRefunds: snapshot, changes, end; replay with resume; filters; many
//! subscribers; a subscriber that falls behind.

use std::time::Duration;

use futures::StreamExt as _;

use refund_gateway::{auth::Caller, domain::TenantId, pb, refunds::FeedFilter};
use serde_json::json;
use tokio::time::timeout;
use tonic::Streaming;

use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(10);

async fn next_event(stream: &mut Streaming<pb::WatchRefundsResponse>) -> pb::RefundEvent {
    timeout(WAIT, stream.message())
        .await
        .expect("an event in time")
        .expect("stream healthy")
        .expect("stream still open")
        .event
        .expect("event")
}

async fn refund_one(gw: &Gateway, client: &mut Client) -> pb::Refund {
    let payment = gw.compago_payment("10.00", "CONFIRMED").await;
    client
        .create_refund(create(&rid(), "compago", &payment))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap()
}

/// WatchRefund of a refund already final sends its current state and ends with OK.
#[tokio::test]
async fn watch_refund_of_a_final_refund_sends_the_snapshot_and_ends() {
    let gw = spawn().await;
    let mut client = gw.acme().await;
    let refund = refund_one(&gw, &mut client).await;
    let mut stream = client
        .watch_refund(pb::WatchRefundRequest {
            id: refund.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap().event.unwrap();
    assert_eq!(first.refund.as_ref().unwrap(), &refund);
    assert_eq!(first.previous_status, i32::from(pb::RefundStatus::Pending));
    assert!(first.sequence > 0);
    assert!(
        timeout(WAIT, stream.message())
            .await
            .unwrap()
            .unwrap()
            .is_none(),
        "the stream ends with OK after a final status"
    );
}

/// WatchRefund of a pending refund sends the PENDING snapshot, then each change, and ends
/// after the final status.
#[tokio::test]
async fn watch_refund_follows_a_pending_refund_to_its_end() {
    let gw = spawn_with(Setup {
        timeout_ms: 300,
        ..setup()
    })
    .await;
    let mut client = gw.acme().await;
    let payment = gw.compago_payment("31.00", "CONFIRMED").await;
    // The refund is applied but the answer comes too late: PENDING. Then reads fail for a
    // moment, so the refund is still PENDING when the watch starts.
    gw.compago_faults(json!({ "refund_delay_ms": 700 })).await;
    let refund = client
        .create_refund(create(&rid(), "compago", &payment))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    gw.compago_faults(json!({ "fail_reads_status": 503 })).await;
    let mut stream = client
        .watch_refund(pb::WatchRefundRequest {
            id: refund.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap().event.unwrap();
    assert_eq!(
        status_of(first.refund.as_ref().unwrap()),
        pb::RefundStatus::Pending
    );
    gw.compago_faults(json!({})).await;
    let mut events = vec![first];
    while let Some(msg) = timeout(WAIT, stream.message()).await.unwrap().unwrap() {
        events.push(msg.event.unwrap());
    }
    let last = events.last().unwrap();
    assert_eq!(
        status_of(last.refund.as_ref().unwrap()),
        pb::RefundStatus::Succeeded
    );
    for pair in events.windows(2) {
        assert!(pair[0].sequence < pair[1].sequence);
        assert_eq!(
            pair[1].previous_status,
            pair[0].refund.as_ref().unwrap().status
        );
    }
}

/// WatchRefunds with after_sequence replays exactly the stored events after it, in order,
/// then goes live with no gap and no duplicate; other tenants' events never appear.
#[tokio::test]
async fn watch_refunds_resumes_exactly_after_a_sequence_then_goes_live() {
    let gw = spawn().await;
    let mut acme = gw.acme().await;
    let mut globex = gw.client(GLOBEX_KEY).await;
    for _ in 0..3 {
        refund_one(&gw, &mut acme).await;
        refund_one(&gw, &mut globex).await;
    }
    // The whole history (after 0): 3 refunds x (created, succeeded).
    let mut all = acme
        .watch_refunds(pb::WatchRefundsRequest {
            after_sequence: Some(0),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut history = Vec::new();
    for _ in 0..6 {
        history.push(next_event(&mut all).await);
    }
    drop(all);
    let seqs: Vec<u64> = history.iter().map(|e| e.sequence).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(
        history
            .iter()
            .all(|e| e.refund.as_ref().unwrap().request_id.starts_with("req-"))
    );

    // Resume after the third event: exactly the last three come back, then live ones.
    let mut resumed = acme
        .watch_refunds(pb::WatchRefundsRequest {
            after_sequence: Some(seqs[2]),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    for expected in &history[3..] {
        assert_eq!(&next_event(&mut resumed).await, expected);
    }
    refund_one(&gw, &mut globex).await;
    let live = refund_one(&gw, &mut acme).await;
    let created = next_event(&mut resumed).await;
    let succeeded = next_event(&mut resumed).await;
    assert_eq!(created.refund.as_ref().unwrap().id, live.id);
    assert_eq!(
        status_of(created.refund.as_ref().unwrap()),
        pb::RefundStatus::Pending
    );
    assert_eq!(
        created.previous_status,
        i32::from(pb::RefundStatus::Unspecified)
    );
    assert_eq!(succeeded.refund.as_ref().unwrap(), &live);
    assert!(seqs[5] < created.sequence && created.sequence < succeeded.sequence);
    // Nothing else (no duplicate, no globex event) is pending on the stream.
    assert!(
        timeout(Duration::from_millis(300), resumed.message())
            .await
            .is_err()
    );
}

/// Without after_sequence the feed starts live: nothing from before is replayed.
#[tokio::test]
async fn watch_refunds_without_a_sequence_starts_live() {
    let gw = spawn().await;
    let mut client = gw.acme().await;
    refund_one(&gw, &mut client).await;
    let mut feed = client
        .watch_refunds(pb::WatchRefundsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let fresh = refund_one(&gw, &mut client).await;
    let first = next_event(&mut feed).await;
    assert_eq!(first.refund.unwrap().id, fresh.id);
}

/// Status and provider filters keep only the matching changes.
#[tokio::test]
async fn watch_refunds_filters_by_status_and_provider() {
    let gw = spawn().await;
    let mut client = gw.acme().await;
    let mut succeeded_only = client
        .watch_refunds(pb::WatchRefundsRequest {
            statuses: vec![pb::RefundStatus::Succeeded.into()],
            provider: "compago".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut d24_only = client
        .watch_refunds(pb::WatchRefundsRequest {
            provider: "d24".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let a = refund_one(&gw, &mut client).await;
    let b = refund_one(&gw, &mut client).await;
    for expected in [&a, &b] {
        let event = next_event(&mut succeeded_only).await;
        assert_eq!(event.refund.as_ref().unwrap(), expected);
    }
    assert!(
        timeout(Duration::from_millis(300), d24_only.message())
            .await
            .is_err()
    );
}

/// Thousands of concurrent subscribers all get every change.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_subscribers_all_get_every_change() {
    let gw = spawn().await;
    let mut client = gw.acme().await;
    let mut feeds = Vec::new();
    for i in 0..2000 {
        // A handful of HTTP/2 connections, many streams each.
        if i % 200 == 0 {
            client = gw.acme().await;
        }
        feeds.push(
            client
                .watch_refunds(pb::WatchRefundsRequest::default())
                .await
                .unwrap()
                .into_inner(),
        );
    }
    let refund = refund_one(&gw, &mut client).await;
    let results = futures::future::join_all(feeds.iter_mut().map(|feed| async {
        let created = next_event(feed).await;
        let done = next_event(feed).await;
        (
            created.refund.unwrap().id,
            status_of(done.refund.as_ref().unwrap()),
        )
    }))
    .await;
    assert_eq!(results.len(), 2000);
    for (id, status) in results {
        assert_eq!(id, refund.id);
        assert_eq!(status, pb::RefundStatus::Succeeded);
    }
}

/// A subscriber that stops reading falls behind the live bus (a small buffer here), and when
/// it reads again it is caught up from the store: every event, in order, none skipped.
/// Meanwhile another subscriber keeps getting events live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_falls_behind_is_caught_up_from_the_store() {
    let gw = spawn_with(Setup {
        event_buffer: Some(4),
        ..setup()
    })
    .await;
    let refunds = gw.running.refunds.clone();
    let caller = Caller {
        tenant: TenantId::new("acme"),
        ..Caller::open()
    };
    let mut stalled = refunds
        .watch_refunds(
            &caller,
            FeedFilter {
                after_sequence: Some(0),
                ..FeedFilter::default()
            },
        )
        .await
        .unwrap();
    let mut client = gw.acme().await;
    let mut live = client
        .watch_refunds(pb::WatchRefundsRequest::default())
        .await
        .unwrap()
        .into_inner();
    const REFUNDS: usize = 30;
    let mut created = Vec::new();
    for _ in 0..REFUNDS {
        created.push(refund_one(&gw, &mut client).await);
        // The live subscriber is not held back by the stalled one.
        let event = next_event(&mut live).await;
        assert_eq!(event.refund.unwrap().id, created.last().unwrap().id);
        next_event(&mut live).await;
    }
    let mut received = Vec::new();
    while received.len() < REFUNDS * 2 {
        let item = timeout(WAIT, stalled.next())
            .await
            .expect("in time")
            .expect("open");
        received.push(item.expect("no error"));
    }
    let seqs: Vec<u64> = received.iter().map(|e| e.sequence).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "in order, no duplicate: {seqs:?}"
    );
    let ids: Vec<String> = received
        .iter()
        .step_by(2)
        .map(|e| e.refund.id.to_string())
        .collect();
    let expected: Vec<String> = created.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, expected, "every refund's creation, none skipped");
}

/// WatchRefunds resumed after a sequence the store has not reached fails at once with
/// OUT_OF_RANGE and the newest stored sequence in `head_sequence`, instead of waiting
/// silently; resuming at the head itself is fine.
#[tokio::test]
async fn watch_refunds_from_the_future_is_out_of_range() {
    let gw = spawn().await;
    let mut acme = gw.acme().await;
    refund_one(&gw, &mut acme).await;
    refund_one(&gw, &mut acme).await;
    let mut all = acme
        .watch_refunds(pb::WatchRefundsRequest {
            after_sequence: Some(0),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut head = 0;
    for _ in 0..4 {
        head = next_event(&mut all).await.sequence;
    }
    drop(all);

    let status = timeout(
        WAIT,
        acme.watch_refunds(pb::WatchRefundsRequest {
            after_sequence: Some(head + 1000),
            ..Default::default()
        }),
    )
    .await
    .expect("an answer, not a silent wait")
    .expect_err("a sequence above the head is refused");
    assert_error(&status, tonic::Code::OutOfRange, "SEQUENCE_OUT_OF_RANGE");
    let details = tonic_types::StatusExt::get_error_details(&status);
    let info = details.error_info().expect("ErrorInfo");
    assert_eq!(
        info.metadata.get("head_sequence").map(String::as_str),
        Some(head.to_string().as_str()),
        "{status:?}"
    );

    // At the head: a live stream, which then carries the next change.
    let mut at_head = acme
        .watch_refunds(pb::WatchRefundsRequest {
            after_sequence: Some(head),
            ..Default::default()
        })
        .await
        .expect("resuming at the head is allowed")
        .into_inner();
    let next = refund_one(&gw, &mut acme).await;
    let event = next_event(&mut at_head).await;
    assert_eq!(event.refund.unwrap().id, next.id);
    assert!(event.sequence > head);
}
