//! The operator actions in the console: a refund above the tenant's approval limit waits in
//! the approval queue; an operator (another key than the one that created it) approves it in
//! the page and the provider receives it exactly once; another is canceled in the page and
//! never reaches the provider. A refund in review is resolved in the page. The history shows
//! who did what, with the notes.

use std::{path::Path, time::Duration};

use refund_gateway::pb;
use serde_json::json;

use crate::browser::Browser;
use crate::support::{
    gateway::{Client, Gateway, Setup, poll_refund},
    messages::{money, request},
};
use crate::{ACME_KEY, key_id, refund};

const WAIT: Duration = Duration::from_secs(20);
const OPERATOR_KEY: &str = "acme-operator-key";

/// acme: a plain API key that creates refunds, an operator key that approves them, and
/// approval needed above 1,000.00 MXN.
const TENANTS: &str = r#"
[[tenants]]
id = "acme"
api_keys = ["acme-console-key"]
operator_keys = ["acme-operator-key"]
approval_above = { MXN = 100000 }
"#;

/// The refund POSTs the Compago simulator received for a payment.
fn provider_posts(gw: &Gateway, refund: &pb::Refund) -> u64 {
    let payment = refund.payment.as_ref().unwrap().payment_id.to_lowercase();
    gw.compago()
        .stats()
        .refund_posts_by_payment
        .get(&payment)
        .copied()
        .unwrap_or(0)
}

async fn open(browser: &Browser, id: &str) {
    browser
        .click(&format!("#approval tr[data-refund-id=\"{id}\"]"))
        .await;
    browser
        .wait_until(
            "the refund waiting for approval",
            WAIT,
            "const d = document.getElementById('detail'); \
             return d.dataset.refundId === arguments[0] \
               && d.dataset.status === 'REQUIRES_APPROVAL' \
               && !!document.getElementById('approve-btn')",
            vec![json!(id)],
        )
        .await;
}

/// Waits until the open refund's status is `status`, and its history has a row by `actor`
/// with `note`.
async fn wait_settled(browser: &Browser, status: &str, actor: &str, note: &str) {
    browser
        .wait_until(
            &format!("{status} by {actor} in the history"),
            WAIT,
            "const d = document.getElementById('detail'); \
             if (d.dataset.status !== arguments[0]) return false; \
             return [...document.querySelectorAll('#history li')].some(r => \
               r.querySelector('.actor').innerText === arguments[1] \
               && r.querySelector('.note').innerText === arguments[2])",
            vec![json!(status), json!(actor), json!(note)],
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_in_the_console_reaches_the_provider_once_and_a_cancel_never() {
    let gw = Gateway::start(Setup {
        tenants: TENANTS.to_owned(),
        ..Setup::default()
    })
    .await;
    let creator = gw.keyed_client(ACME_KEY).await;
    let small = refund(&gw, &creator, "small", "50.00").await;
    let held = refund(&gw, &creator, "held", "2500.00").await;
    let withdrawn = refund(&gw, &creator, "withdrawn", "3000.00").await;
    for waiting in [&held, &withdrawn] {
        assert_eq!(
            waiting.status,
            pb::RefundStatus::RequiresApproval as i32,
            "{waiting:?}"
        );
        assert_eq!(
            provider_posts(&gw, waiting),
            0,
            "held back from the provider"
        );
    }
    assert_eq!(provider_posts(&gw, &small), 1);

    let browser = Browser::start().await;
    browser.goto(&format!("{}/console/", gw.http_url)).await;
    browser.type_into("#key", OPERATOR_KEY).await;
    browser.click("#key-use").await;
    browser.click("nav.tabs button[data-tab=approval]").await;
    browser
        .wait_until(
            "the approval queue",
            WAIT,
            "return document.getElementById('count-approval').innerText === '2' \
               && !!document.querySelector(`#approval tr[data-refund-id=\"${arguments[0]}\"]`) \
               && !!document.querySelector(`#approval tr[data-refund-id=\"${arguments[1]}\"]`)",
            vec![json!(held.id), json!(withdrawn.id)],
        )
        .await;

    // Approve: the provider receives the refund, once; the history says who and why.
    open(&browser, &held.id).await;
    browser
        .type_into("#approve-note", "checked with finance")
        .await;
    browser.click("#approve-btn").await;
    let operator = format!("operator:{}", key_id(OPERATOR_KEY));
    let approved = poll_refund(&mut creator.clone(), &held.id, WAIT, |r| {
        r.status != pb::RefundStatus::RequiresApproval as i32
            && r.status != pb::RefundStatus::Pending as i32
    })
    .await;
    let status = pb::RefundStatus::try_from(approved.status)
        .unwrap()
        .as_str_name()
        .trim_start_matches("REFUND_STATUS_")
        .to_owned();
    wait_settled(&browser, &status, &operator, "checked with finance").await;
    let creator_actor = format!("caller:{}", key_id(ACME_KEY));
    let first_actor = browser
        .eval(
            "return document.querySelector('#history li .actor').innerText",
            vec![],
        )
        .await;
    assert_eq!(
        first_actor,
        json!(creator_actor),
        "the history starts with its creation"
    );
    assert_eq!(provider_posts(&gw, &held), 1, "sent to the provider once");

    // Cancel: never sent.
    browser.click("nav.tabs button[data-tab=approval]").await;
    open(&browser, &withdrawn.id).await;
    browser.type_into("#cancel-note", "duplicate request").await;
    browser.click("#cancel-btn").await;
    wait_settled(&browser, "CANCELED", &operator, "duplicate request").await;
    browser
        .wait_until(
            "an empty approval queue",
            WAIT,
            "return document.getElementById('count-approval').innerText === '0'",
            vec![],
        )
        .await;
    let errors = browser.severe_logs().await;
    assert!(errors.is_empty(), "the page logged errors: {errors:#?}");

    // Nothing more reaches the provider afterwards (the worker and the feed kept running).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(provider_posts(&gw, &held), 1, "sent to the provider once");
    assert_eq!(
        provider_posts(&gw, &withdrawn),
        0,
        "a canceled refund is never sent"
    );

    if let Ok(path) = std::env::var("CONSOLE_SCREENSHOT") {
        screenshot(&gw, &creator, &browser, &held.id, Path::new(&path)).await;
    }
    browser.close().await;
}

/// The README's picture (`CONSOLE_SCREENSHOT=docs/console.png cargo test --test console
/// operators`): a few more refunds through two providers, one left waiting for approval,
/// and the approved refund open with its history.
async fn screenshot(gw: &Gateway, creator: &Client, browser: &Browser, open: &str, path: &Path) {
    let paymongo = creator
        .clone()
        .create_refund(request(
            "order-7731",
            "paymongo",
            pb::PaymentReference {
                payment_id: simulators::paymongo::fixtures::PAID_50000.to_owned(),
                ..Default::default()
            },
            Some(money("PHP", 15_000)),
        ))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    refund(gw, creator, "order-7740", "189.90").await;
    refund(gw, creator, "order-7745", "1800.00").await;
    browser.click("nav.tabs button[data-tab=events]").await;
    browser
        .wait_until(
            "the new refunds in the feed",
            WAIT,
            "return !!document.querySelector(`#events tr[data-refund-id=\"${arguments[0]}\"]`) \
               && document.getElementById('count-approval').innerText === '1'",
            vec![json!(paymongo.id)],
        )
        .await;
    browser
        .click(&format!("#events tr[data-refund-id=\"{open}\"]"))
        .await;
    browser
        .wait_until(
            "the history of the approved refund",
            WAIT,
            "return document.querySelectorAll('#history li').length >= 3",
            vec![],
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    browser.screenshot(path).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_resolved_in_the_console_is_recorded_with_the_operator_and_the_note() {
    use simulators::paymongo::{
        fixtures::PAID_50000,
        state::{Faults, SettingsPatch},
    };
    let gw = Gateway::start(Setup {
        tenants: TENANTS.to_owned(),
        // Only the create answer decides here; the worker reads it back much later.
        first_check_ms: 60_000,
        ..Setup::default()
    })
    .await;
    // PayMongo takes the refund but reports another amount: the gateway cannot tell what was
    // paid and sends it to review.
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
    let creator = gw.keyed_client(ACME_KEY).await;
    let review = creator
        .clone()
        .create_refund(request(
            "misreported",
            "paymongo",
            pb::PaymentReference {
                payment_id: PAID_50000.to_owned(),
                ..Default::default()
            },
            Some(money("PHP", 10_000)),
        ))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(
        review.status,
        pb::RefundStatus::RequiresReview as i32,
        "{review:?}"
    );

    let browser = Browser::start().await;
    browser.goto(&format!("{}/console/", gw.http_url)).await;
    browser.type_into("#key", OPERATOR_KEY).await;
    browser.click("#key-use").await;
    browser.click("nav.tabs button[data-tab=review]").await;
    browser
        .click(&format!("#review tr[data-refund-id=\"{}\"]", review.id))
        .await;
    browser
        .wait_until(
            "the resolve form",
            WAIT,
            "return document.getElementById('detail').dataset.status === 'REQUIRES_REVIEW' \
               && !!document.getElementById('resolve-btn')",
            vec![],
        )
        .await;
    browser
        .eval(
            "const s = document.getElementById('resolve-status'); \
             s.value = [...s.options].find(o => o.text.startsWith('succeeded')).value",
            vec![],
        )
        .await;
    browser
        .type_into(
            "#resolve-note",
            "paid 100.00 PHP per the PayMongo dashboard",
        )
        .await;
    browser
        .type_into("#resolve-provider-id", "ref_checked_1")
        .await;
    browser.click("#resolve-btn").await;
    let operator = format!("operator:{}", key_id(OPERATOR_KEY));
    wait_settled(
        &browser,
        "SUCCEEDED",
        &operator,
        "paid 100.00 PHP per the PayMongo dashboard",
    )
    .await;
    let resolved = poll_refund(&mut creator.clone(), &review.id, WAIT, |r| {
        r.status == pb::RefundStatus::Succeeded as i32
    })
    .await;
    assert_eq!(resolved.provider_refund_id, "ref_checked_1");
    browser
        .wait_until(
            "an empty review queue",
            WAIT,
            "return document.getElementById('count-review').innerText === '0'",
            vec![],
        )
        .await;
    let errors = browser.severe_logs().await;
    assert!(errors.is_empty(), "the page logged errors: {errors:#?}");
    browser.close().await;
}
