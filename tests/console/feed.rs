//! The console in a browser: a refused key shown readably, the tenant's refunds listed, the
//! feed replayed and then live, and the feed resumed after the gateway restarts with every
//! change shown once; on an open gateway, all of it with no key.

use std::{collections::BTreeSet, time::Duration};

use serde_json::json;

use crate::browser::Browser;
use crate::support::gateway::{Client, Gateway, Setup, whole_feed};
use crate::{ACME_KEY, GLOBEX_KEY, TENANTS, refund};

const WAIT: Duration = Duration::from_secs(20);

/// Every sequence of the tenant's feed, from WatchRefunds after 0, read until it goes quiet.
async fn feed_sequences(client: &Client) -> BTreeSet<u64> {
    whole_feed(client, Duration::from_millis(500))
        .await
        .iter()
        .map(|event| event.sequence)
        .collect()
}

/// The sequences the feed table shows, top to bottom.
async fn shown_sequences(browser: &Browser) -> Vec<u64> {
    let value = browser
        .eval(
            "return [...document.querySelectorAll('#events tbody tr[data-sequence]')]\
             .map(r => r.dataset.sequence)",
            vec![],
        )
        .await;
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().parse().unwrap())
        .collect()
}

/// Waits until a row for each refund is in `table`.
async fn wait_rows(browser: &Browser, table: &str, ids: &[&str]) {
    browser
        .wait_until(
            &format!("rows for {ids:?} in #{table}"),
            WAIT,
            "return arguments[1].every(id => \
               document.querySelector(`#${arguments[0]} tbody tr[data-refund-id=\"${id}\"]`))",
            vec![json!(table), json!(ids)],
        )
        .await;
}

async fn wait_live(browser: &Browser) {
    browser
        .wait_until(
            "the feed live",
            WAIT,
            "return document.getElementById('conn').dataset.state === 'live'",
            vec![],
        )
        .await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_lists_refunds_and_follows_the_feed_live_across_a_restart() {
    let setup = Setup {
        tenants: TENANTS.to_owned(),
        // A fixed port: the page stays on one origin across the restart below.
        http_listen: Some(format!("127.0.0.1:{}", free_port())),
        ..Setup::default()
    };
    let gw = Gateway::start(setup).await;
    let acme = gw.keyed_client(ACME_KEY).await;
    let globex = gw.keyed_client(GLOBEX_KEY).await;
    let mut before = Vec::new();
    for (i, amount) in ["120.00", "75.50", "1999.99", "310.25"]
        .into_iter()
        .enumerate()
    {
        before.push(refund(&gw, &acme, &format!("console-before-{i}"), amount).await);
    }
    let theirs = refund(&gw, &globex, "globex-console", "10.00").await;
    let before_ids: Vec<&str> = before.iter().map(|r| r.id.as_str()).collect();

    let browser = Browser::start().await;
    browser.goto(&format!("{}/console/", gw.http_url)).await;

    // No key on a gateway with tenants: the feed stops and says why, readably.
    let refused = browser
        .wait_until(
            "the feed refused without a key",
            WAIT,
            "const conn = document.getElementById('conn'); \
             const error = document.getElementById('error'); \
             return conn.dataset.state === 'stopped' && !error.hidden && error.innerText",
            vec![],
        )
        .await;
    let refused = refused.as_str().unwrap();
    assert!(
        refused.contains("UNAUTHENTICATED") && refused.contains("missing API key"),
        "{refused}"
    );

    // The tenant's key: its refunds, not another tenant's.
    browser.type_into("#key", ACME_KEY).await;
    browser.click("#key-use").await;
    wait_live(&browser).await;
    browser.click("nav.tabs button[data-tab=refunds]").await;
    wait_rows(&browser, "refunds", &before_ids).await;
    let refunds_text = browser
        .eval(
            "return document.getElementById('refunds').innerText",
            vec![],
        )
        .await;
    let refunds_text = refunds_text.as_str().unwrap();
    assert!(refunds_text.contains("1,999.99 MXN"), "{refunds_text}");
    assert!(refunds_text.contains("75.50 MXN"), "{refunds_text}");
    assert_eq!(
        browser
            .eval(
                "return document.querySelectorAll('#refunds tbody tr[data-refund-id]').length",
                vec![]
            )
            .await,
        json!(before.len()),
        "only the tenant's own refunds"
    );
    let other = browser
        .eval(
            "return !!document.querySelector(`tr[data-refund-id=\"${arguments[0]}\"]`)",
            vec![json!(theirs.id)],
        )
        .await;
    assert_eq!(other, json!(false), "another tenant's refund is not shown");

    // The feed: the recent history replayed, then live.
    browser.click("nav.tabs button[data-tab=events]").await;
    wait_rows(&browser, "events", &before_ids).await;
    let live = refund(&gw, &acme, "console-live", "42.00").await;
    wait_rows(&browser, "events", &[&live.id]).await;
    browser.click("nav.tabs button[data-tab=refunds]").await;
    wait_rows(&browser, "refunds", &[&live.id]).await;
    browser.click("nav.tabs button[data-tab=events]").await;
    let errors = browser.severe_logs().await;
    assert!(errors.is_empty(), "the page logged errors: {errors:#?}");

    // The gateway restarts on the same address; the page resumes after the last sequence it
    // saw, and a change made after the restart arrives once.
    let gw = gw.restart().await;
    let acme = gw.keyed_client(ACME_KEY).await;
    let after = refund(&gw, &acme, "console-after-restart", "33.00").await;
    wait_rows(&browser, "events", &[&after.id]).await;
    wait_live(&browser).await;

    // Every change of the tenant, none missed: the store is small, so the console's replay
    // reached back to the first sequence.
    let expected = feed_sequences(&acme).await;
    browser
        .wait_until(
            "every change of the tenant",
            WAIT,
            "const shown = new Set([...document.querySelectorAll('#events tbody tr[data-sequence]')]\
               .map(r => r.dataset.sequence)); \
             return arguments[0].every(s => shown.has(s))",
            vec![json!(
                expected
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
            )],
        )
        .await;
    let shown = shown_sequences(&browser).await;
    let unique: BTreeSet<u64> = shown.iter().copied().collect();
    assert_eq!(unique.len(), shown.len(), "a change shown twice: {shown:?}");
    assert!(
        shown.windows(2).all(|w| w[0] > w[1]),
        "newest first: {shown:?}"
    );
    assert!(
        expected.is_subset(&unique),
        "missed changes: {expected:?} vs {unique:?}"
    );
    let now = feed_sequences(&acme).await;
    assert!(
        unique.is_subset(&now),
        "changes that are not the tenant's: {unique:?} vs {now:?}"
    );
    // While the gateway was away the page could only fail to connect; nothing else.
    let errors: Vec<String> = browser
        .severe_logs()
        .await
        .into_iter()
        .filter(|e| !e.contains("ERR_CONNECTION_REFUSED") && !e.contains("ERR_EMPTY_RESPONSE"))
        .collect();
    assert!(errors.is_empty(), "the page logged errors: {errors:#?}");

    // A refund opened from the list: its record, and Sync asks the provider.
    browser.click("nav.tabs button[data-tab=refunds]").await;
    browser
        .click(&format!("#refunds tr[data-refund-id=\"{}\"]", after.id))
        .await;
    browser
        .wait_until(
            "the refund's record",
            WAIT,
            "const d = document.getElementById('detail'); \
             return d.dataset.refundId === arguments[0] && !!d.dataset.status",
            vec![json!(after.id)],
        )
        .await;
    let detail = browser
        .eval("return document.getElementById('detail').innerText", vec![])
        .await;
    let detail = detail.as_str().unwrap();
    assert!(detail.contains("console-after-restart"), "{detail}");
    assert!(detail.contains("33.00 MXN"), "{detail}");
    browser.click("#sync-btn").await;
    let synced = browser
        .wait_until(
            "the answer to Sync",
            WAIT,
            "const r = document.getElementById('action-result'); \
             return r.dataset.outcome === 'ok' && r.innerText",
            vec![],
        )
        .await;
    assert!(
        synced
            .as_str()
            .unwrap()
            .starts_with("Sync: the refund is now"),
        "{synced}"
    );

    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_an_open_gateway_the_console_works_with_no_key() {
    let gw = Gateway::start(Setup::default()).await;
    let made = refund(&gw, &gw.client, "open-1", "64.00").await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/console/", gw.http_url)).await;
    wait_live(&browser).await;
    wait_rows(&browser, "events", &[&made.id]).await;
    browser.click("nav.tabs button[data-tab=refunds]").await;
    wait_rows(&browser, "refunds", &[&made.id]).await;
    let whoami = browser
        .eval("return document.getElementById('whoami').innerText", vec![])
        .await;
    assert_eq!(whoami, json!("without a key (open mode)"));
    let errors = browser.severe_logs().await;
    assert!(errors.is_empty(), "the page logged errors: {errors:#?}");
    browser.close().await;
}
