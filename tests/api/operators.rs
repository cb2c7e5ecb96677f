//! The operators' API: a refund's history with who made each change (ListRefundEvents),
//! operator keys, and settling a refund in review (ResolveRefund).

use std::time::Duration;

use refund_gateway::pb;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use simulators::paymongo::{
    fixtures::PAID_50000,
    state::{Faults, SettingsPatch},
};
use tonic::Code;

use crate::helpers::*;
use crate::support::messages::{money, paymongo_payment, request};

pub const OPERATOR_KEY: &str = "acme-operator-key-1";
pub const OPERATOR_KEY_2: &str = "acme-operator-key-2";

/// acme with two API keys, two operator keys and an approval limit of 1,000.00 MXN; globex
/// with one key.
const TENANTS: &str = r#"
[[tenants]]
id = "acme"
api_keys = ["acme-test-key-1", "acme-test-key-2"]
operator_keys = ["acme-operator-key-1", "acme-operator-key-2"]
approval_above = { MXN = 100000 }

[[tenants]]
id = "globex"
api_keys = ["globex-test-key"]
"#;

pub fn operators_setup() -> Setup {
    Setup {
        tenants: TENANTS.to_owned(),
        ..setup()
    }
}

/// The key id events name a key by: the first 8 hex digits of its SHA-256.
pub fn key_id(key: &str) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..4])
}

/// Every event of a refund through ListRefundEvents, a page of `page_size` at a time.
pub async fn history(client: &mut Client, id: &str, page_size: i32) -> Vec<pb::RefundEvent> {
    let mut events = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_refund_events(pb::ListRefundEventsRequest {
                id: id.to_owned(),
                page_size,
                page_token,
            })
            .await
            .expect("ListRefundEvents")
            .into_inner();
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            return events;
        }
        page_token = page.next_page_token;
    }
}

fn summary(events: &[pb::RefundEvent]) -> Vec<(pb::RefundStatus, String, String)> {
    events
        .iter()
        .map(|e| {
            (
                status_of(e.refund.as_ref().unwrap()),
                e.actor.clone(),
                e.note.clone(),
            )
        })
        .collect()
}

/// A refund whose outcome the create call did not learn (Compago answered 500 after
/// applying it), then the worker's check found SUCCEEDED: its history, oldest first, is the
/// creation by the caller's key, then the worker's finding; the same events, with the same
/// actors and notes, as WatchRefunds streams; paging by one gives the same list.
#[tokio::test]
async fn history_lists_every_change_oldest_first_with_its_actor() {
    let gw = spawn_with(operators_setup()).await;
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

    let events = history(&mut client, &refund.id, 0).await;
    let caller = format!("caller:{}", key_id(ACME_KEY));
    assert_eq!(
        summary(&events),
        vec![
            (pb::RefundStatus::Pending, caller, "created".to_owned()),
            (
                pb::RefundStatus::Succeeded,
                "worker".to_owned(),
                "provider reported SUCCEEDED".to_owned()
            ),
        ]
    );
    assert!(events.windows(2).all(|w| w[0].sequence < w[1].sequence));
    assert_eq!(
        events[1].previous_status,
        i32::from(pb::RefundStatus::Pending)
    );
    assert_eq!(history(&mut client, &refund.id, 1).await, events);

    // The live feed carries the same actors and notes.
    let mut feed = client
        .watch_refunds(pb::WatchRefundsRequest {
            after_sequence: Some(0),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut streamed = Vec::new();
    while streamed.len() < events.len() {
        let event = tokio::time::timeout(Duration::from_secs(5), feed.message())
            .await
            .expect("the feed replays")
            .unwrap()
            .unwrap()
            .event
            .unwrap();
        if event.refund.as_ref().unwrap().id == refund.id {
            streamed.push(event);
        }
    }
    assert_eq!(summary(&streamed), summary(&events));
}

/// ListRefundEvents checks its input: a negative page size, a token that is not one of this
/// refund's, an empty id: INVALID_ARGUMENT; another tenant's refund: NOT_FOUND. Page sizes
/// above 1000 are cut to 1000.
#[tokio::test]
async fn list_refund_events_checks_its_input_and_the_tenant() {
    let gw = spawn_with(operators_setup()).await;
    let mut client = gw.acme().await;
    let payment = gw.compago_payment("10.00", "CONFIRMED").await;
    let refund = client
        .create_refund(create(&rid(), "compago", &payment))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    let ask = |page_size: i32, page_token: &str, id: &str| pb::ListRefundEventsRequest {
        id: id.to_owned(),
        page_size,
        page_token: page_token.to_owned(),
    };
    let err = client
        .list_refund_events(ask(-1, "", &refund.id))
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&err), ["page_size"]);
    let err = client
        .list_refund_events(ask(0, "not-a-token", &refund.id))
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_PAGE_TOKEN");
    assert_eq!(violated_fields(&err), ["page_token"]);
    let err = client.list_refund_events(ask(0, "", "")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // A token of one refund's history is refused for another's.
    let other_payment = gw.compago_payment("10.00", "CONFIRMED").await;
    let other = client
        .create_refund(create(&rid(), "compago", &other_payment))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    let first = client
        .list_refund_events(ask(1, "", &refund.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.events.len(), 1);
    assert!(!first.next_page_token.is_empty());
    let err = client
        .list_refund_events(ask(1, &first.next_page_token, &other.id))
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "INVALID_PAGE_TOKEN");

    let all = client
        .list_refund_events(ask(5000, "", &refund.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.events.len(), 2);
    assert!(all.next_page_token.is_empty());

    let mut globex = gw.client(GLOBEX_KEY).await;
    let err = globex
        .list_refund_events(ask(0, "", &refund.id))
        .await
        .unwrap_err();
    assert_error(&err, Code::NotFound, "REFUND_NOT_FOUND");
}

/// A tenant's API keys may not resolve or approve (PERMISSION_DENIED, OPERATOR_ONLY, before
/// anything else is looked at); its operator keys may call every RPC.
#[tokio::test]
async fn api_keys_may_not_resolve_or_approve() {
    let gw = spawn_with(operators_setup()).await;
    let mut client = gw.acme().await;
    let payment = gw.compago_payment("10.00", "CONFIRMED").await;
    let refund = client
        .create_refund(create(&rid(), "compago", &payment))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    for id in [refund.id.as_str(), "rf_unknown"] {
        let err = client
            .resolve_refund(pb::ResolveRefundRequest {
                id: id.to_owned(),
                status: pb::RefundStatus::Succeeded.into(),
                note: "checked".into(),
                provider_refund_id: None,
            })
            .await
            .unwrap_err();
        assert_error(&err, Code::PermissionDenied, "OPERATOR_ONLY");
        let err = client
            .approve_refund(pb::ApproveRefundRequest {
                id: id.to_owned(),
                note: String::new(),
            })
            .await
            .unwrap_err();
        assert_error(&err, Code::PermissionDenied, "OPERATOR_ONLY");
    }

    // An operator key reads, lists and creates like any key, as operator:<id>.
    let mut operator = gw.client(OPERATOR_KEY).await;
    let got = operator
        .get_refund(pb::GetRefundRequest {
            id: refund.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(got, refund);
    let listed = operator
        .list_refunds(pb::ListRefundsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.refunds.len(), 1);
    let payment = gw.compago_payment("20.00", "CONFIRMED").await;
    let own = operator
        .create_refund(create(&rid(), "compago", &payment))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    let events = history(&mut operator, &own.id, 0).await;
    let actor = format!("operator:{}", key_id(OPERATOR_KEY));
    assert!(events.iter().all(|e| e.actor == actor), "{events:?}");
}

/// PayMongo answers the create with another amount than asked: REQUIRES_REVIEW. What the
/// test gateway's PayMongo account needs for that.
pub async fn refund_in_review(gw: &Gateway, client: &mut Client) -> pb::Refund {
    gw.paymongo()
        .update_settings(&SettingsPatch {
            settle_delay_ms: Some(600_000),
            ..SettingsPatch::default()
        })
        .unwrap();
    gw.paymongo()
        .set_faults(Faults {
            misreport_refund_amount: true,
            ..Faults::default()
        })
        .unwrap();
    let refund = client
        .create_refund(request(
            &rid(),
            "paymongo",
            paymongo_payment(PAID_50000),
            Some(money("PHP", 10_000)),
        ))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(status_of(&refund), pb::RefundStatus::RequiresReview);
    refund
}

fn resolution(id: &str, status: pb::RefundStatus, note: &str) -> pb::ResolveRefundRequest {
    pb::ResolveRefundRequest {
        id: id.to_owned(),
        status: status.into(),
        note: note.to_owned(),
        provider_refund_id: None,
    }
}

/// An operator settles a refund in review: bad status or note are INVALID_ARGUMENT with the
/// field named; SUCCEEDED with a note and the provider's id is recorded with the operator as
/// actor and the note, streamed; the same resolution again returns it unchanged; another
/// resolution, or one of a refund not in review, is FAILED_PRECONDITION (NOT_IN_REVIEW).
#[tokio::test]
async fn an_operator_settles_a_refund_in_review() {
    let gw = spawn_with(operators_setup()).await;
    let mut client = gw.acme().await;
    let refund = refund_in_review(&gw, &mut client).await;
    let mut operator = gw.client(OPERATOR_KEY).await;

    for (status, note, field) in [
        (pb::RefundStatus::Pending, "n", "status"),
        (pb::RefundStatus::Unspecified, "n", "status"),
        (pb::RefundStatus::RequiresReview, "n", "status"),
        (pb::RefundStatus::Succeeded, "", "note"),
        (pb::RefundStatus::Succeeded, "   ", "note"),
    ] {
        let err = operator
            .resolve_refund(resolution(&refund.id, status, note))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{status:?} {note:?}");
        assert_eq!(violated_fields(&err), [field]);
    }
    let long = "x".repeat(1001);
    let err = operator
        .resolve_refund(resolution(&refund.id, pb::RefundStatus::Failed, &long))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["note"]);
    let unchanged = client
        .get_refund(pb::GetRefundRequest {
            id: refund.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(unchanged, refund);

    let mut feed = client
        .watch_refund(pb::WatchRefundRequest {
            id: refund.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let note = "PayMongo dashboard shows the refund paid out in full";
    let resolved = operator
        .resolve_refund(pb::ResolveRefundRequest {
            provider_refund_id: Some("ref_checked_by_hand".into()),
            ..resolution(&refund.id, pb::RefundStatus::Succeeded, note)
        })
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(status_of(&resolved), pb::RefundStatus::Succeeded);
    assert_eq!(resolved.provider_refund_id, "ref_checked_by_hand");
    assert!(resolved.failure.is_none());
    let events = history(&mut client, &refund.id, 0).await;
    let last = events.last().unwrap();
    assert_eq!(last.actor, format!("operator:{}", key_id(OPERATOR_KEY)));
    assert_eq!(last.note, note);
    assert_eq!(
        last.previous_status,
        i32::from(pb::RefundStatus::RequiresReview)
    );
    // Streamed: WatchRefund's first message is the state then, then the resolution.
    let mut seen = Vec::new();
    while let Some(message) = tokio::time::timeout(Duration::from_secs(5), feed.message())
        .await
        .unwrap()
        .unwrap()
    {
        seen.push(message.event.unwrap());
    }
    assert_eq!(seen.last().unwrap().actor, last.actor);
    assert_eq!(seen.last().unwrap().note, note);

    // The same resolution again: unchanged (also by another operator).
    let mut operator_2 = gw.client(OPERATOR_KEY_2).await;
    let again = operator_2
        .resolve_refund(resolution(&refund.id, pb::RefundStatus::Succeeded, "again"))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(again, resolved);
    assert_eq!(history(&mut client, &refund.id, 0).await, events);
    // Another resolution: it is not in review any more.
    let err = operator
        .resolve_refund(resolution(&refund.id, pb::RefundStatus::Failed, "changed"))
        .await
        .unwrap_err();
    assert_error(&err, Code::FailedPrecondition, "NOT_IN_REVIEW");

    // A refund that never was in review.
    let payment = gw.compago_payment("10.00", "CONFIRMED").await;
    let succeeded = client
        .create_refund(create(&rid(), "compago", &payment))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    let err = operator
        .resolve_refund(resolution(&succeeded.id, pb::RefundStatus::Succeeded, "n"))
        .await
        .unwrap_err();
    assert_error(&err, Code::FailedPrecondition, "NOT_IN_REVIEW");
}

/// Open mode allows every RPC: an unauthenticated caller may resolve (it gets the refund's
/// own answer, not PERMISSION_DENIED) and its changes are recorded as `caller:open`.
#[tokio::test]
async fn open_mode_allows_everything() {
    let gw = spawn_with(Setup::default()).await;
    let mut client = gw.client.clone();
    let refund = refund_in_review(&gw, &mut client).await;
    let resolved = client
        .resolve_refund(resolution(&refund.id, pb::RefundStatus::Succeeded, "seen"))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(status_of(&resolved), pb::RefundStatus::Succeeded);
    let events = history(&mut client, &refund.id, 0).await;
    assert!(
        events.iter().all(|e| e.actor == "caller:open"),
        "{events:?}"
    );
    let err = client
        .approve_refund(pb::ApproveRefundRequest {
            id: refund.id.clone(),
            note: String::new(),
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::FailedPrecondition, "NOT_AWAITING_APPROVAL");
}
