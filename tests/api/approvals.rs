//! Approvals: a refund above the tenant's `approval_above` waits in REQUIRES_APPROVAL, holding
//! its amount and unsent, until an operator key other than its creator approves it (sent
//! once), someone allowed cancels it, or its approval window ends.

use std::time::Duration;

use refund_gateway::pb;
use serde_json::json;
use tonic::Code;

use crate::helpers::*;
use crate::operators::{OPERATOR_KEY, OPERATOR_KEY_2, history, key_id, operators_setup};

fn approve(id: &str, note: &str) -> pb::ApproveRefundRequest {
    pb::ApproveRefundRequest {
        id: id.to_owned(),
        note: note.to_owned(),
    }
}

fn cancel(id: &str, note: &str) -> pb::CancelRefundRequest {
    pb::CancelRefundRequest {
        id: id.to_owned(),
        note: note.to_owned(),
    }
}

async fn created(client: &mut Client, request: pb::CreateRefundRequest) -> pb::Refund {
    client
        .create_refund(request)
        .await
        .expect("refund created")
        .into_inner()
        .refund
        .unwrap()
}

/// 2,000.00 MXN is above acme's 1,000.00 limit: recorded as REQUIRES_APPROVAL, returned, not
/// sent, its amount held (nothing more can be refunded), and a repeat of the request returns
/// it. An operator's approval sends it (Compago sees exactly one refund) and returns it
/// SUCCEEDED; the history shows the creation by the caller, the approval and the provider's
/// answer by the operator. Approving again returns it as it is and sends nothing.
#[tokio::test]
async fn a_refund_above_the_limit_waits_and_is_sent_once_when_approved() {
    let gw = spawn_with(operators_setup()).await;
    let mut client = gw.acme().await;
    let payment = gw.compago_payment("2000.00", "CONFIRMED").await;
    let request = create(&rid(), "compago", &payment);
    let waiting = created(&mut client, request.clone()).await;
    assert_eq!(status_of(&waiting), pb::RefundStatus::RequiresApproval);
    assert_eq!(waiting.amount, Some(mxn(200_000)));
    assert_eq!(gw.compago_refund_posts(&payment.payment_id).await, 0);
    assert_eq!(created(&mut client, request).await, waiting);
    let err = client
        .create_refund(pb::CreateRefundRequest {
            amount: Some(mxn(100)),
            ..create(&rid(), "compago", &payment)
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::FailedPrecondition, "NOTHING_LEFT_TO_REFUND");
    // The worker leaves it alone (nothing to ask a provider).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = client
        .get_refund(pb::GetRefundRequest {
            id: waiting.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(got, waiting);
    assert_eq!(gw.compago_refund_posts(&payment.payment_id).await, 0);

    let mut operator = gw.client(OPERATOR_KEY).await;
    let approved = operator
        .approve_refund(approve(&waiting.id, "customer verified by phone"))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(status_of(&approved), pb::RefundStatus::Succeeded);
    assert_eq!(approved.provider_refund_id, payment.payment_id);
    assert_eq!(gw.compago_refund_posts(&payment.payment_id).await, 1);

    let operator_actor = format!("operator:{}", key_id(OPERATOR_KEY));
    let events = history(&mut client, &waiting.id, 0).await;
    let summary: Vec<_> = events
        .iter()
        .map(|e| {
            (
                status_of(e.refund.as_ref().unwrap()),
                e.actor.as_str(),
                e.note.as_str(),
            )
        })
        .collect();
    assert_eq!(summary.len(), 3, "{summary:?}");
    assert_eq!(summary[0].0, pb::RefundStatus::RequiresApproval);
    assert_eq!(summary[0].1, format!("caller:{}", key_id(ACME_KEY)));
    assert!(summary[0].2.starts_with("created; waits for approval"));
    assert_eq!(
        summary[1],
        (
            pb::RefundStatus::Pending,
            operator_actor.as_str(),
            "customer verified by phone"
        )
    );
    assert_eq!(
        summary[2],
        (
            pb::RefundStatus::Succeeded,
            operator_actor.as_str(),
            "provider accepted"
        )
    );

    let again = gw
        .client(OPERATOR_KEY_2)
        .await
        .approve_refund(approve(&waiting.id, ""))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(again, approved);
    assert_eq!(gw.compago_refund_posts(&payment.payment_id).await, 1);
}

/// Below or at the limit, or in a currency the tenant set no limit for, a refund goes
/// straight to the provider.
#[tokio::test]
async fn refunds_up_to_the_limit_need_no_approval() {
    let gw = spawn_with(operators_setup()).await;
    let mut client = gw.acme().await;
    let payment = gw.compago_payment("1000.00", "CONFIRMED").await;
    let at_limit = created(&mut client, create(&rid(), "compago", &payment)).await;
    assert_eq!(status_of(&at_limit), pb::RefundStatus::Succeeded);
    let mut globex = gw.client(GLOBEX_KEY).await;
    let payment = gw.compago_payment("5000.00", "CONFIRMED").await;
    let no_limit = created(&mut globex, create(&rid(), "compago", &payment)).await;
    assert_eq!(status_of(&no_limit), pb::RefundStatus::Succeeded);
}

/// Two approvals at once (two operators, Compago answering slowly): both get the refund, and
/// Compago receives exactly one refund request.
#[tokio::test]
async fn two_approvals_at_once_send_once() {
    let gw = spawn_with(operators_setup()).await;
    let mut client = gw.acme().await;
    let payment = gw.compago_payment("3000.00", "CONFIRMED").await;
    let waiting = created(&mut client, create(&rid(), "compago", &payment)).await;
    gw.compago_faults(json!({ "refund_delay_ms": 300 })).await;
    let mut first = gw.client(OPERATOR_KEY).await;
    let mut second = gw.client(OPERATOR_KEY_2).await;
    let (a, b) = tokio::join!(
        first.approve_refund(approve(&waiting.id, "first")),
        second.approve_refund(approve(&waiting.id, "second")),
    );
    let (a, b) = (
        a.unwrap().into_inner().refund.unwrap(),
        b.unwrap().into_inner().refund.unwrap(),
    );
    assert_eq!(a.id, waiting.id);
    assert_eq!(b.id, waiting.id);
    gw.compago_faults(json!({})).await;
    wait_for(
        &mut client,
        &waiting.id,
        |r| status_of(r) == pb::RefundStatus::Succeeded,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(gw.compago_refund_posts(&payment.payment_id).await, 1);
    let approvals = history(&mut client, &waiting.id, 0)
        .await
        .into_iter()
        .filter(|e| status_of(e.refund.as_ref().unwrap()) == pb::RefundStatus::Pending)
        .count();
    assert_eq!(approvals, 1);
}

/// The key that created a refund may not approve it, even an operator key
/// (PERMISSION_DENIED, SELF_APPROVAL); another operator key may.
#[tokio::test]
async fn the_creating_key_may_not_approve_its_refund() {
    let gw = spawn_with(operators_setup()).await;
    let mut operator = gw.client(OPERATOR_KEY).await;
    let payment = gw.compago_payment("2500.00", "CONFIRMED").await;
    let waiting = created(&mut operator, create(&rid(), "compago", &payment)).await;
    assert_eq!(status_of(&waiting), pb::RefundStatus::RequiresApproval);
    let err = operator
        .approve_refund(approve(&waiting.id, "mine"))
        .await
        .unwrap_err();
    assert_error(&err, Code::PermissionDenied, "SELF_APPROVAL");
    assert_eq!(gw.compago_refund_posts(&payment.payment_id).await, 0);
    let approved = gw
        .client(OPERATOR_KEY_2)
        .await
        .approve_refund(approve(&waiting.id, ""))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(status_of(&approved), pb::RefundStatus::Succeeded);
    assert_eq!(gw.compago_refund_posts(&payment.payment_id).await, 1);
}

/// CancelRefund: another API key of the tenant may not (NOT_CREATOR); the creating key may:
/// CANCELED, never sent, its amount released (a refund of the whole payment is accepted
/// again); a repeat returns it unchanged; approving it then is FAILED_PRECONDITION; and a
/// refund that is not waiting cannot be canceled (FAILED_PRECONDITION).
#[tokio::test]
async fn cancel_withdraws_a_waiting_refund_and_releases_its_amount() {
    let gw = spawn_with(operators_setup()).await;
    let mut client = gw.acme().await;
    let payment = gw.compago_payment("1500.00", "CONFIRMED").await;
    let waiting = created(&mut client, create(&rid(), "compago", &payment)).await;

    let err = gw
        .client(ACME_KEY_2)
        .await
        .cancel_refund(cancel(&waiting.id, ""))
        .await
        .unwrap_err();
    assert_error(&err, Code::PermissionDenied, "NOT_CREATOR");
    let err = gw
        .client(GLOBEX_KEY)
        .await
        .cancel_refund(cancel(&waiting.id, ""))
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "REFUND_NOT_FOUND");

    let canceled = client
        .cancel_refund(cancel(&waiting.id, "customer changed their mind"))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(status_of(&canceled), pb::RefundStatus::Canceled);
    assert_eq!(
        canceled.failure.as_ref().unwrap().code,
        "CANCELED_BEFORE_SENDING"
    );
    let again = client
        .cancel_refund(cancel(&waiting.id, "again"))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(again, canceled);
    let last = history(&mut client, &waiting.id, 0).await.pop().unwrap();
    assert_eq!(last.actor, format!("caller:{}", key_id(ACME_KEY)));
    assert_eq!(last.note, "customer changed their mind");

    let err = gw
        .client(OPERATOR_KEY)
        .await
        .approve_refund(approve(&waiting.id, ""))
        .await
        .unwrap_err();
    assert_error(&err, Code::FailedPrecondition, "NOT_AWAITING_APPROVAL");

    // The amount is free again: a refund of the whole payment is accepted (and waits).
    let whole = created(&mut client, create(&rid(), "compago", &payment)).await;
    assert_eq!(status_of(&whole), pb::RefundStatus::RequiresApproval);
    assert_eq!(whole.amount, Some(mxn(150_000)));
    // An operator may cancel any of the tenant's waiting refunds.
    let by_operator = gw
        .client(OPERATOR_KEY)
        .await
        .cancel_refund(cancel(&whole.id, ""))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(status_of(&by_operator), pb::RefundStatus::Canceled);
    assert_eq!(gw.compago_refund_posts(&payment.payment_id).await, 0);

    let small = gw.compago_payment("10.00", "CONFIRMED").await;
    let sent = created(&mut client, create(&rid(), "compago", &small)).await;
    let err = client
        .cancel_refund(cancel(&sent.id, ""))
        .await
        .unwrap_err();
    assert_error(&err, Code::FailedPrecondition, "NOT_AWAITING_APPROVAL");
}

/// An approval nobody gives expires: the worker cancels the refund once its window ends
/// (actor `worker`, note "approval window ended"), streamed to a watcher, never sent.
#[tokio::test]
async fn an_approval_nobody_gives_expires() {
    let gw = spawn_with(Setup {
        approval_expires_after_ms: Some(1_000),
        ..operators_setup()
    })
    .await;
    let mut client = gw.acme().await;
    let payment = gw.compago_payment("1200.00", "CONFIRMED").await;
    let waiting = created(&mut client, create(&rid(), "compago", &payment)).await;
    let mut watch = client
        .watch_refund(pb::WatchRefundRequest {
            id: waiting.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    while let Some(message) = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("the refund expires within its window and a tick")
        .unwrap()
    {
        seen.push(message.event.unwrap());
    }
    let last = seen.last().unwrap();
    let refund = last.refund.as_ref().unwrap();
    assert_eq!(status_of(refund), pb::RefundStatus::Canceled);
    assert_eq!(refund.failure.as_ref().unwrap().code, "APPROVAL_EXPIRED");
    assert_eq!(last.actor, "worker");
    assert_eq!(last.note, "approval window ended");
    assert_eq!(
        last.previous_status,
        i32::from(pb::RefundStatus::RequiresApproval)
    );
    assert_eq!(gw.compago_refund_posts(&payment.payment_id).await, 0);
    let err = gw
        .client(OPERATOR_KEY)
        .await
        .approve_refund(approve(&waiting.id, ""))
        .await
        .unwrap_err();
    assert_error(&err, Code::FailedPrecondition, "NOT_AWAITING_APPROVAL");
}

/// ListRefunds filters the review and approval queues by status.
#[tokio::test]
async fn list_refunds_filters_the_approval_and_review_queues() {
    let gw = spawn_with(operators_setup()).await;
    let mut client = gw.acme().await;
    let big = gw.compago_payment("4000.00", "CONFIRMED").await;
    let waiting = created(&mut client, create(&rid(), "compago", &big)).await;
    let small = gw.compago_payment("40.00", "CONFIRMED").await;
    let done = created(&mut client, create(&rid(), "compago", &small)).await;
    let review = crate::operators::refund_in_review(&gw, &mut client).await;
    let listed = |status: pb::RefundStatus| {
        let mut client = client.clone();
        async move {
            client
                .list_refunds(pb::ListRefundsRequest {
                    status: status.into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .refunds
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        listed(pb::RefundStatus::RequiresApproval).await,
        [waiting.id]
    );
    assert_eq!(listed(pb::RefundStatus::RequiresReview).await, [review.id]);
    assert_eq!(listed(pb::RefundStatus::Succeeded).await, [done.id]);
}

/// The same on PostgreSQL: a waiting refund, an approval sent once with its history, a
/// cancel, and an expiry by the worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_on_postgresql() {
    use crate::support::{gateway::Store, postgres::TestDatabase};
    let db = TestDatabase::create().await;
    let gw = spawn_with(Setup {
        store: Store::Postgres(db.url.clone()),
        approval_expires_after_ms: Some(1_500),
        ..operators_setup()
    })
    .await;
    let mut client = gw.acme().await;
    let mut operator = gw.client(OPERATOR_KEY).await;

    let payment = gw.compago_payment("2000.00", "CONFIRMED").await;
    let waiting = created(&mut client, create(&rid(), "compago", &payment)).await;
    assert_eq!(status_of(&waiting), pb::RefundStatus::RequiresApproval);
    let approved = operator
        .approve_refund(approve(&waiting.id, "ok"))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(status_of(&approved), pb::RefundStatus::Succeeded);
    assert_eq!(gw.compago_refund_posts(&payment.payment_id).await, 1);
    let actors: Vec<String> = history(&mut client, &waiting.id, 0)
        .await
        .into_iter()
        .map(|e| e.actor)
        .collect();
    let op = format!("operator:{}", key_id(OPERATOR_KEY));
    assert_eq!(
        actors,
        [format!("caller:{}", key_id(ACME_KEY)), op.clone(), op]
    );

    let payment = gw.compago_payment("1500.00", "CONFIRMED").await;
    let canceled = created(&mut client, create(&rid(), "compago", &payment)).await;
    let canceled = client
        .cancel_refund(cancel(&canceled.id, ""))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(status_of(&canceled), pb::RefundStatus::Canceled);

    let payment = gw.compago_payment("1200.00", "CONFIRMED").await;
    let expiring = created(&mut client, create(&rid(), "compago", &payment)).await;
    let expired = wait_for(
        &mut client,
        &expiring.id,
        |r| status_of(r) == pb::RefundStatus::Canceled,
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(expired.failure.unwrap().code, "APPROVAL_EXPIRED");
    let last = history(&mut client, &expiring.id, 0).await.pop().unwrap();
    assert_eq!(
        (last.actor.as_str(), last.note.as_str()),
        ("worker", "approval window ended")
    );
    assert_eq!(gw.compago_refund_posts(&payment.payment_id).await, 0);
}
