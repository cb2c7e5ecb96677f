//! Tests of the shared fault switches.

use axum::body::Bytes;

use super::{create::misreport, *};

const ALL: Support = Support {
    webhooks: true,
    lagging_lists: true,
};
const NONE: Support = Support {
    webhooks: false,
    lagging_lists: false,
};

/// Statuses must be error statuses, delays bounded, times at least 1, and switches a
/// provider does not have are refused.
#[test]
fn switches_are_checked() {
    assert!(Faults::default().check(NONE).is_ok());
    for bad in [
        Faults {
            fail_before_apply_status: Some(200),
            ..Faults::default()
        },
        Faults {
            rate_limit_status: Some(600),
            ..Faults::default()
        },
        Faults {
            refund_delay_before_apply_ms: MAX_DELAY_MS + 1,
            ..Faults::default()
        },
        Faults {
            times: Some(0),
            ..Faults::default()
        },
    ] {
        assert!(bad.check(ALL).is_err(), "{bad:?}");
    }
    let hooks = Faults {
        duplicate_webhooks: true,
        ..Faults::default()
    };
    assert!(hooks.check(ALL).is_ok());
    assert!(hooks.check(NONE).is_err());
    let lists = Faults {
        lists_omit_api_refunds: true,
        ..Faults::default()
    };
    assert!(lists.check(NONE).is_err());
}

/// The old PayMongo name is still accepted, unknown keys are not.
#[test]
fn names_parse() {
    let f: Faults = serde_json::from_str(r#"{"delay_after_apply_ms": 5, "times": 2}"#).unwrap();
    assert_eq!((f.refund_delay_ms, f.times), (5, Some(2)));
    assert!(serde_json::from_str::<Faults>(r#"{"delay": 5}"#).is_err());
}

/// `times` counts only what a switch acts on, and clears the set when used up.
#[test]
fn times_counts_down_then_clears() {
    let cell = FaultCell::default();
    cell.set(
        Faults {
            fail_after_apply_status: Some(500),
            times: Some(2),
            ..Faults::default()
        },
        NONE,
    )
    .unwrap();
    assert!(cell.take(Target::Read).is_none(), "reads are not affected");
    assert!(cell.take(Target::RefundCreate).is_some());
    assert_eq!(cell.get().times, Some(1));
    assert!(cell.take(Target::RefundCreate).is_some());
    assert!(cell.take(Target::RefundCreate).is_none());
    assert_eq!(cell.get(), Faults::default());
    assert_eq!(cell.applied(), 2);
}

/// Reordering holds the first batch and sends it after the next; duplicates double each.
#[test]
fn webhooks_are_reordered_and_duplicated() {
    let mut hold = WebhookHold::default();
    let both = Faults {
        reorder_webhooks: true,
        duplicate_webhooks: true,
        ..Faults::default()
    };
    assert_eq!(
        arrange_webhooks(Some(&both), &mut hold, "r1", vec!["pending"]),
        Arranged::Held
    );
    assert_eq!(
        arrange_webhooks(Some(&both), &mut hold, "r1", vec!["done"]),
        Arranged::Send(vec!["done", "done", "pending", "pending"])
    );
    assert!(hold.release("r1").is_empty());
    assert_eq!(
        arrange_webhooks(None, &mut hold, "r2", vec!["x"]),
        Arranged::Send(vec!["x"])
    );
}

/// The misreported amount is one minor unit more, in the answer's own notation.
#[test]
fn misreport_bumps_the_last_digit() {
    let pointers = ["/data/attributes/amount", "/amount"];
    let out = misreport(&Bytes::from_static(br#"{"amount":505.95}"#), &pointers);
    assert_eq!(&out[..], br#"{"amount":505.96}"#);
    let out = misreport(
        &Bytes::from_static(br#"{"data":{"attributes":{"amount":1000}}}"#),
        &pointers,
    );
    assert_eq!(&out[..], br#"{"data":{"attributes":{"amount":1001}}}"#);
}

/// Over real HTTP: a dropped connection leaves the client without a complete answer
/// although the refund was applied; a refund delayed before it is applied is applied even though the
/// client gave up; a rate limit answers 429 with Retry-After and applies nothing.
#[tokio::test]
async fn faults_over_real_http() {
    use crate::{COMPAGO_SANDBOX_API_KEY, Simulator, compago::fixtures::*};
    let running = crate::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let sim = running.sandbox.compago.clone();
    let base = running.base_url(Simulator::Compago);
    let client = reqwest::Client::new();
    let refund = |payment: &str| {
        client
            .post(format!(
                "{base}/api/payment-method/{ACTIVE_METHOD}/payment/{payment}/refund"
            ))
            .header("x-api-key", COMPAGO_SANDBOX_API_KEY)
    };
    let refunded = |payment: &str| sim.stats().refunds_by_payment.contains_key(payment);

    sim.set_faults(Faults {
        drop_after_apply: true,
        ..Faults::default()
    })
    .unwrap();
    // The connection breaks before the head or in the body: either way no complete
    // answer, and never a failure to connect (which would prove nothing was sent).
    match refund(CONFIRMED_500).send().await {
        Ok(response) => assert!(response.text().await.is_err(), "the body must break"),
        Err(e) => assert!(!e.is_connect(), "{e}"),
    }
    assert!(refunded(CONFIRMED_500));

    sim.set_faults(Faults {
        refund_delay_before_apply_ms: 300,
        ..Faults::default()
    })
    .unwrap();
    let gave_up = refund(CONFIRMED_250)
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(gave_up.is_err_and(|e| e.is_timeout()));
    assert!(!refunded(CONFIRMED_250), "not applied yet");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(refunded(CONFIRMED_250), "applied after the client left");

    sim.set_faults(Faults {
        rate_limit_status: Some(429),
        times: Some(1),
        ..Faults::default()
    })
    .unwrap();
    let limited = refund(CONFIRMED_1234_56).send().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()[header::RETRY_AFTER], "1");
    assert!(!refunded(CONFIRMED_1234_56));
    assert_eq!(sim.faults(), Faults::default(), "used up");
    let ok = refund(CONFIRMED_1234_56).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(refunded(CONFIRMED_1234_56));
    assert_eq!(sim.stats().faults_applied, 3);
    running.stop().await.unwrap();
}
