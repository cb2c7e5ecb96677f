//! Bad input of every field: a clean INVALID_ARGUMENT (or the right code) with ErrorInfo and
//! field violations, nothing stored, and the gateway stays healthy.

use std::time::Duration;

use refund_gateway::pb;
use tonic::Code;

use crate::helpers::*;

fn long(n: usize) -> String {
    "x".repeat(n)
}

/// Every bad CreateRefund field is refused with INVALID_ARGUMENT naming that field; after
/// all of them nothing is stored, no refund reached the provider, and a good request works.
#[tokio::test]
async fn every_bad_create_field_is_refused_cleanly() {
    let gw = spawn().await;
    let mut client = gw.acme().await;
    let payment = gw.compago_payment("10.00", "CONFIRMED").await;
    let good = create(&rid(), "compago", &payment);
    type Edit = Box<dyn Fn(&mut pb::CreateRefundRequest)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("request_id", Box::new(|r| r.request_id = String::new())),
        ("request_id", Box::new(|r| r.request_id = long(256))),
        ("request_id", Box::new(|r| r.request_id = "a\u{0}b".into())),
        ("provider", Box::new(|r| r.provider = String::new())),
        ("provider", Box::new(|r| r.provider = "stripe".into())),
        ("payment", Box::new(|r| r.payment = None)),
        (
            "payment.payment_id",
            Box::new(|r| r.payment.as_mut().unwrap().payment_id = String::new()),
        ),
        (
            "payment.payment_id",
            Box::new(|r| r.payment.as_mut().unwrap().payment_id = "not-a-uuid".into()),
        ),
        (
            "payment.payment_id",
            Box::new(|r| r.payment.as_mut().unwrap().payment_id = long(300)),
        ),
        (
            "payment.payment_method_id",
            Box::new(|r| r.payment.as_mut().unwrap().payment_method_id = String::new()),
        ),
        (
            "payment.payment_method_id",
            Box::new(|r| r.payment.as_mut().unwrap().payment_method_id = "../../etc".into()),
        ),
        (
            "payment.invoice_id",
            Box::new(|r| r.payment.as_mut().unwrap().invoice_id = "inv-1".into()),
        ),
        (
            "amount.currency_code",
            Box::new(|r| {
                r.amount = Some(pb::Money {
                    currency_code: "mxn".into(),
                    minor_units: 1000,
                })
            }),
        ),
        (
            "amount.currency_code",
            Box::new(|r| {
                r.amount = Some(pb::Money {
                    currency_code: "ABC".into(),
                    minor_units: 1000,
                })
            }),
        ),
        (
            "amount.currency_code",
            Box::new(|r| {
                r.amount = Some(pb::Money {
                    currency_code: "XAU".into(),
                    minor_units: 1000,
                })
            }),
        ),
        (
            "amount.currency_code",
            Box::new(|r| {
                r.amount = Some(pb::Money {
                    currency_code: String::new(),
                    minor_units: 1000,
                })
            }),
        ),
        ("amount.minor_units", Box::new(|r| r.amount = Some(mxn(0)))),
        (
            "amount.minor_units",
            Box::new(|r| r.amount = Some(mxn(-100))),
        ),
        ("reason", Box::new(|r| r.reason = 99)),
        ("description", Box::new(|r| r.description = long(1001))),
        (
            "description",
            Box::new(|r| r.description = "nul \u{0} inside".into()),
        ),
        (
            "payment.payment_id",
            Box::new(|r| r.payment.as_mut().unwrap().payment_id = "\u{0}".into()),
        ),
        (
            "metadata",
            Box::new(|r| r.metadata = (0..51).map(|i| (format!("k{i}"), "v".into())).collect()),
        ),
        (
            "metadata[\"\"]",
            Box::new(|r| {
                r.metadata.insert(String::new(), "v".into());
            }),
        ),
        (
            "bank_account",
            Box::new(|r| {
                r.bank_account = Some(pb::BankAccount {
                    beneficiary: "Ana".into(),
                    bank_code: "01".into(),
                    branch: "1".into(),
                    account_number: "12345678".into(),
                    account_type: pb::BankAccountType::Saving.into(),
                })
            }),
        ),
        (
            "bank_account.account_number",
            Box::new(|r| {
                r.bank_account = Some(pb::BankAccount {
                    beneficiary: "Ana".into(),
                    bank_code: "01".into(),
                    branch: "1".into(),
                    account_number: "12 34".into(),
                    account_type: pb::BankAccountType::Saving.into(),
                })
            }),
        ),
    ];
    for (field, edit) in &cases {
        let mut req = good.clone();
        req.request_id = rid();
        edit(&mut req);
        let err = client.create_refund(req).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        let fields = violated_fields(&err);
        assert!(
            fields.iter().any(|f| f.starts_with(field)),
            "{field} not among the violations {fields:?}"
        );
        let details = tonic_types::StatusExt::get_error_details(&err);
        assert_eq!(
            details.error_info().expect("ErrorInfo").domain,
            "refunds.v1"
        );
    }
    // A metadata value too long and a key too long.
    let mut req = good.clone();
    req.request_id = rid();
    req.metadata.insert(long(41), "v".into());
    req.metadata.insert("k".into(), long(501));
    let err = client.create_refund(req).await.unwrap_err();
    assert_eq!(violated_fields(&err).len(), 2, "{err:?}");

    let listed = client
        .list_refunds(pb::ListRefundsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .refunds;
    assert!(listed.is_empty(), "nothing stored: {listed:?}");
    assert_eq!(gw.compago_stats().await["refund_posts"], 0);

    let ok = client
        .create_refund(good)
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(status_of(&ok), pb::RefundStatus::Succeeded);
}

/// Bad ids and filters on the other RPCs get clean errors too.
#[tokio::test]
async fn bad_ids_and_filters_are_refused_cleanly() {
    let gw = spawn().await;
    let mut client = gw.acme().await;
    let err = client
        .get_refund(pb::GetRefundRequest { id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), ["id"]);
    for id in ["rf_nope", "x", "rf_0123456789abcdef0123456789abcdef"] {
        let err = client
            .get_refund(pb::GetRefundRequest { id: id.into() })
            .await
            .unwrap_err();
        assert_error(&err, Code::NotFound, "REFUND_NOT_FOUND");
    }
    let err = client
        .sync_refund(pb::SyncRefundRequest { id: long(100) })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = client
        .list_refunds(pb::ListRefundsRequest {
            status: 99,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["status"]);
    let err = client
        .watch_refunds(pb::WatchRefundsRequest {
            statuses: vec![99],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["statuses[0]"]);
    let err = client
        .watch_refunds(pb::WatchRefundsRequest {
            provider: "stripe".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&err, Code::InvalidArgument, "PROVIDER_NOT_CONFIGURED");
    let err = client
        .get_payment(pb::GetPaymentRequest {
            provider: "compago".into(),
            payment: None,
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["payment"]);
    let err = client
        .get_payment(pb::GetPaymentRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // Still healthy.
    client
        .list_providers(pb::ListProvidersRequest {})
        .await
        .unwrap();
}

/// A provider account that cannot be reached makes CreateRefund UNAVAILABLE before anything
/// is recorded, and the same request works once it can (the failure is not remembered).
#[tokio::test]
async fn unreachable_provider_before_recording_is_unavailable_and_not_remembered() {
    let gw = spawn_with(Setup {
        extra: r#"
[providers.compago_down]
kind = "compago"
base_url = "http://127.0.0.1:9"
api_key = "unused-key"
timeout_ms = 500
"#
        .into(),
        ..setup()
    })
    .await;
    let mut client = gw.acme().await;
    let payment = gw.compago_payment("10.00", "CONFIRMED").await;
    let req = create(&rid(), "compago_down", &payment);
    let err = client.create_refund(req.clone()).await.unwrap_err();
    assert_error(&err, Code::Unavailable, "PROVIDER_UNAVAILABLE");
    let listed = client
        .list_refunds(pb::ListRefundsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .refunds;
    assert!(listed.is_empty());
    // The same request id is free to be tried again (still unreachable here).
    let err = client.create_refund(req).await.unwrap_err();
    assert_error(&err, Code::Unavailable, "PROVIDER_UNAVAILABLE");
}

/// What must never reach a caller: addresses, ports, library error texts, paths.
fn leaks(text: &str, port: u16) -> Vec<&'static str> {
    let port = port.to_string();
    let mut found: Vec<&'static str> = [
        "127.0.0.1",
        "http://",
        "localhost",
        "error sending request",
        "reqwest",
        "hyper",
        "sqlx",
        "rusqlite",
        "os error",
        "/tmp",
        "/compago/",
    ]
    .into_iter()
    .filter(|needle| text.contains(needle))
    .collect();
    if text.contains(&port) {
        found.push("the port");
    }
    found
}

/// Asserts that nothing internal is in an error's message and ErrorInfo metadata.
#[track_caller]
fn assert_clean_status(status: &tonic::Status, port: u16) {
    let details = tonic_types::StatusExt::get_error_details(status);
    let info = details.error_info().expect("ErrorInfo");
    let mut texts = vec![status.message().to_owned()];
    texts.extend(info.metadata.values().cloned());
    for text in texts {
        assert!(
            leaks(&text, port).is_empty(),
            "{:?} in {text:?}",
            leaks(&text, port)
        );
    }
}

/// A loopback stand-in for Compago that forwards exactly one request to `upstream` (the
/// simulator), answers it with `Connection: close`, and then stops listening: the next
/// request of the gateway finds the port closed. Returns its base URL and port.
async fn one_request_then_gone(upstream: String) -> (String, u16) {
    use axum::{body::Bytes, extract::Request, http::HeaderValue, response::IntoResponse};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (done, gone) = tokio::sync::oneshot::channel::<()>();
    let done = std::sync::Arc::new(std::sync::Mutex::new(Some(done)));
    let app = axum::Router::new().fallback(move |request: Request| {
        let upstream = upstream.clone();
        let done = done.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body: Bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
            let mut forwarded = reqwest::Client::new()
                .request(parts.method.clone(), format!("{upstream}{}", parts.uri));
            for (name, value) in &parts.headers {
                if name != "host" {
                    forwarded = forwarded.header(name, value);
                }
            }
            let answer = forwarded.body(body).send().await.unwrap();
            let status = answer.status();
            let headers = answer.headers().clone();
            let body = answer.bytes().await.unwrap();
            if let Some(done) = done.lock().unwrap().take() {
                let _ = done.send(());
            }
            let mut response = (status, body).into_response();
            for (name, value) in &headers {
                if name != "content-length" && name != "connection" {
                    response.headers_mut().insert(name, value.clone());
                }
            }
            response
                .headers_mut()
                .insert("connection", HeaderValue::from_static("close"));
            response
        }
    });
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = gone.await;
            })
            .await
            .unwrap();
    });
    (format!("http://{addr}/compago"), addr.port())
}

/// Provider and transport failures reach callers as stable descriptions: no URL, host, port,
/// library error text or path in the Status message, its ErrorInfo metadata, or the refund's
/// failure message (the detail is in the log). Caused for real: a provider account whose
/// base URL is a closed loopback port (the payment lookup fails); a provider that answers
/// the payment lookup and is gone when the refund is sent (not sent: the refund is withdrawn
/// with a failure message); a provider answering the refund with malformed JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_failures_reach_callers_without_internal_text() {
    use crate::support::gateway::{Account, Endpoint};
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    // The simulators first, to learn where Compago's is.
    let sims = spawn_with(Setup {
        accounts: vec![
            Account {
                endpoint: Endpoint::OwnSim,
                ..Account::sandbox("compago")
            },
            Account::sandbox("d24"),
        ],
        ..setup()
    })
    .await;
    let (vanishing, vanishing_port) = one_request_then_gone(sims.sandbox_url.clone()).await;
    let gw = spawn_with(Setup {
        accounts: vec![
            Account {
                endpoint: Endpoint::OwnSim,
                ..Account::sandbox("compago")
            },
            Account::sandbox("d24"),
            Account {
                name: "compago_closed".to_owned(),
                endpoint: Endpoint::Url(format!("http://127.0.0.1:{closed}/compago")),
                credentials: Some(crate::support::sims::credentials("compago")),
                ..Account::sandbox("compago")
            },
            Account {
                name: "compago_vanishing".to_owned(),
                endpoint: Endpoint::Url(vanishing),
                credentials: Some(crate::support::sims::credentials("compago")),
                ..Account::sandbox("compago")
            },
        ],
        ..setup()
    })
    .await;
    let mut client = gw.acme().await;

    // Unreachable from the start: the payment lookup fails.
    let payment = gw.compago_payment("10.00", "CONFIRMED").await;
    let status = client
        .create_refund(create(&rid(), "compago_closed", &payment))
        .await
        .expect_err("unreachable");
    assert_error(&status, Code::Unavailable, "PROVIDER_UNAVAILABLE");
    assert_clean_status(&status, closed);

    // Reachable for the payment lookup, gone for the refund: not sent, withdrawn.
    let payment = sims.compago_payment("10.00", "CONFIRMED").await;
    let status = client
        .create_refund(create(&rid(), "compago_vanishing", &payment))
        .await
        .expect_err("the refund could not be sent");
    assert_error(&status, Code::Unavailable, "PROVIDER_UNAVAILABLE");
    assert_clean_status(&status, vanishing_port);
    let details = tonic_types::StatusExt::get_error_details(&status);
    let refund_id = details.error_info().unwrap().metadata["refundId"].clone();
    let withdrawn = wait_for(&mut client, &refund_id, |_| true, Duration::from_secs(5)).await;
    assert_eq!(status_of(&withdrawn), pb::RefundStatus::Canceled);
    let failure = withdrawn.failure.expect("a failure");
    assert!(
        leaks(&failure.message, vanishing_port).is_empty(),
        "{:?} in {:?}",
        leaks(&failure.message, vanishing_port),
        failure.message
    );

    // Malformed JSON answering the refund: its outcome is unknown, the refund is PENDING.
    gw.compago_faults(serde_json::json!({ "malformed_refund_body": true, "times": 1 }))
        .await;
    let payment = gw.compago_payment("10.00", "CONFIRMED").await;
    let refund = client
        .create_refund(create(&rid(), "compago", &payment))
        .await
        .expect("a refund the provider may hold is answered")
        .into_inner()
        .refund
        .unwrap();
    let text = format!("{:?}", refund.failure);
    assert!(leaks(&text, closed).is_empty(), "{text}");
}

/// Store failures reach callers as stable descriptions too: with the gateway's PostgreSQL
/// database dropped under it (every connection ended), CreateRefund, GetRefund and
/// ListRefunds fail without the database's name, address, port or the driver's text in the
/// Status message or ErrorInfo metadata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_failures_reach_callers_without_internal_text() {
    use crate::support::{gateway::Store, postgres::TestDatabase};
    let db = TestDatabase::create().await;
    let gw = spawn_with(Setup {
        store: Store::Postgres(db.url.clone()),
        ..setup()
    })
    .await;
    let mut client = gw.acme().await;
    let payment = gw.compago_payment("10.00", "CONFIRMED").await;
    let made = client
        .create_refund(create(&rid(), "compago", &payment))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    db.drop_now().await;
    let port = 5432;
    let mut statuses = Vec::new();
    let payment = gw.compago_payment("10.00", "CONFIRMED").await;
    statuses.push(
        client
            .create_refund(create(&rid(), "compago", &payment))
            .await
            .expect_err("no store"),
    );
    statuses.push(
        client
            .list_refunds(pb::ListRefundsRequest::default())
            .await
            .expect_err("no store"),
    );
    // GetRefund may answer from its cache of recent views; a refund it never saw cannot.
    let unseen = made.id.replace(|c: char| c.is_ascii_digit(), "7");
    statuses.push(
        client
            .get_refund(pb::GetRefundRequest { id: unseen })
            .await
            .expect_err("no store"),
    );
    for status in &statuses {
        assert_clean_status(status, port);
        for needle in [&db.name, "postgres", "database", "connection"] {
            assert!(!status.message().contains(needle), "{needle} in {status:?}");
        }
    }
}
