//! Property-based fuzzing (proptest) of everything that reads untrusted input: request
//! validation, money conversions, the configuration, and every provider's answer and webhook
//! parsers, reached through the real adapters over HTTP from a scripted server. The property
//! is always "no panic", plus the rules that matter for money: a 5xx or an unreadable answer
//! to a refund submission is never taken as a refusal or an acceptance.
//!
//! `PROPTEST_CASES` sets the number of cases (default 256 per property).

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use axum::{
    Router,
    body::Body,
    http::{HeaderMap, HeaderValue, Response, StatusCode},
};
use proptest::prelude::*;
use refund_gateway::{
    config::Config,
    domain::{Currency, Money, PaymentRef, Refund, TenantId},
    grpc::convert,
    pb,
    providers::{Provider, SubmitOutcome, compago::Compago, d24::D24, paymongo::PayMongo},
};
use rust_decimal::Decimal;
use secrecy::SecretString;

// === a scripted provider ===

/// What the scripted server answers to every request.
#[derive(Clone, Debug)]
struct Script {
    status: u16,
    content_type: Option<String>,
    body: Vec<u8>,
}

struct Scripted {
    addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    runtime: tokio::runtime::Runtime,
}

/// One scripted server and runtime for the whole file.
fn scripted() -> &'static Scripted {
    static SERVER: OnceLock<Scripted> = OnceLock::new();
    SERVER.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let script = Arc::new(Mutex::new(Script {
            status: 200,
            content_type: None,
            body: Vec::new(),
        }));
        let served = script.clone();
        let addr = runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let app = Router::new().fallback(move || {
                let s = served.lock().unwrap().clone();
                async move {
                    let mut res = Response::new(Body::from(s.body));
                    *res.status_mut() = StatusCode::from_u16(s.status).unwrap();
                    if let Some(ct) = s.content_type
                        && let Ok(v) = HeaderValue::from_str(&ct)
                    {
                        res.headers_mut().insert("content-type", v);
                    }
                    res
                }
            });
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            addr
        });
        Scripted {
            addr,
            script,
            runtime,
        }
    })
}

/// The three adapters, pointed at the scripted server, with a short timeout.
fn providers() -> Vec<(&'static str, Arc<dyn Provider>)> {
    let base = format!("http://{}", scripted().addr);
    let timeout = Duration::from_secs(2);
    vec![
        (
            "compago",
            Arc::new(Compago::new(base.clone(), SecretString::from("k"), timeout)),
        ),
        (
            "d24",
            Arc::new(D24::new(
                base.clone(),
                SecretString::from("login"),
                SecretString::from("secret"),
                Some("http://127.0.0.1:1/webhooks/d24/d24".into()),
                timeout,
            )),
        ),
        (
            "paymongo",
            Arc::new(PayMongo::new(
                base,
                SecretString::from("sk_test_x"),
                SecretString::from("whsk_x"),
                timeout,
            )),
        ),
    ]
}

/// A refund each provider would accept to send.
fn refund_for(provider: &str) -> Refund {
    let (payment, currency) = match provider {
        "compago" => (
            PaymentRef {
                payment_id: "11111111-2222-3333-4444-555555555555".into(),
                payment_method_id: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".into(),
                invoice_id: String::new(),
            },
            "MXN",
        ),
        "d24" => (
            PaymentRef {
                payment_id: "300533647".into(),
                payment_method_id: String::new(),
                invoice_id: "inv-1".into(),
            },
            "MXN",
        ),
        _ => (
            PaymentRef {
                payment_id: "pay_abc".into(),
                ..PaymentRef::default()
            },
            "PHP",
        ),
    };
    let now = chrono::Utc::now();
    Refund {
        provider_refund_id: Some("12345".into()),
        ..Refund::new_pending(
            TenantId::new("t"),
            "r",
            provider,
            payment,
            Money::new(10_000, Currency::parse(currency).unwrap()),
            now,
        )
    }
}

/// Bodies worth trying: arbitrary bytes, arbitrary JSON, and provider-shaped JSON with
/// random values in the places parsers look.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let json_leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)),
        ".{0,12}".prop_map(serde_json::Value::from),
        prop_oneof![
            Just("REFUNDED"),
            Just("CONFIRMED"),
            Just("COMPLETED"),
            Just("PENDING"),
            Just("succeeded"),
            Just("paid"),
            Just("IN_PROGRESS"),
            Just("REJECTED"),
            Just("MXN"),
            Just("PHP"),
            Just("CLP"),
            Just("refund"),
            Just("payment"),
        ]
        .prop_map(serde_json::Value::from),
    ];
    let json = json_leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("id".to_owned()),
                    Just("status".to_owned()),
                    Just("amount".to_owned()),
                    Just("currency".to_owned()),
                    Just("data".to_owned()),
                    Just("attributes".to_owned()),
                    Just("refund_id".to_owned()),
                    Just("refund_info".to_owned()),
                    Just("result".to_owned()),
                    Just("errors".to_owned()),
                    Just("code".to_owned()),
                    Just("local_amount".to_owned()),
                    Just("payment_type".to_owned()),
                    Just("deposit_id".to_owned()),
                    Just("payment_id".to_owned()),
                    Just("metadata".to_owned()),
                    Just("refunds".to_owned()),
                    Just("error".to_owned()),
                    "[a-z_]{1,8}",
                ],
                inner,
                0..6,
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        json.prop_map(|v| serde_json::to_vec(&v).unwrap()),
    ]
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        Just(200u16),
        Just(201),
        Just(400),
        Just(401),
        Just(404),
        Just(409),
        Just(429),
        Just(500),
        Just(502),
        Just(503),
        200u16..600,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever a provider answers to a payment lookup, a refund submission or a refund
    /// read-back, the adapters never panic; a 5xx or an unreadable 200 to a submission is an
    /// unknown outcome, never a refusal or an acceptance.
    #[test]
    fn provider_answers_never_panic_and_unknown_stays_unknown(status in status(), body in body(), json_type in any::<bool>()) {
        let s = scripted();
        *s.script.lock().unwrap() = Script {
            status,
            content_type: json_type.then(|| "application/json".to_owned()),
            body: body.clone(),
        };
        let is_json = serde_json::from_slice::<serde_json::Value>(&body).is_ok();
        for (name, provider) in providers() {
            let refund = refund_for(name);
            let (payment, submitted, fetched) = s.runtime.block_on(async {
                let payment = provider.get_payment(&refund.payment).await;
                let submitted = provider.submit_refund(&refund).await;
                let fetched = provider.fetch_refund(&refund).await;
                (payment, submitted, fetched)
            });
            let _ = (payment, fetched);
            if status >= 500 || (status == 200 && !is_json) {
                prop_assert!(
                    matches!(submitted, SubmitOutcome::Unknown(_)),
                    "{name}: {status} {:?} must be an unknown outcome, got {submitted:?}",
                    String::from_utf8_lossy(&body)
                );
            }
        }
    }

    /// Webhook parsers take any headers and body without panicking; PayMongo never accepts
    /// an event without a valid signature.
    #[test]
    fn webhooks_never_panic_and_unsigned_paymongo_events_are_refused(
        body in body(),
        signature in prop::option::of(".{0,80}"),
    ) {
        let mut headers = HeaderMap::new();
        if let Some(sig) = &signature
            && let Ok(v) = HeaderValue::from_str(sig)
        {
            headers.insert("paymongo-signature", v);
        }
        for (name, provider) in providers() {
            let parsed = provider.parse_webhook(&headers, &body);
            if name == "paymongo" {
                prop_assert!(parsed.is_err(), "an event with signature {signature:?} was accepted");
            }
        }
    }

    /// Request validation takes any CreateRefundRequest without panicking, and what it
    /// accepts meets the documented limits.
    #[test]
    fn request_validation_never_panics(
        request_id in ".{0,300}",
        provider in ".{0,20}",
        payment_id in ".{0,300}",
        method in ".{0,40}",
        invoice in ".{0,40}",
        currency in ".{0,5}",
        minor in any::<i64>(),
        reason in any::<i32>(),
        description in ".{0,1100}",
        metadata in prop::collection::hash_map(".{0,45}", ".{0,510}", 0..55),
        with_amount in any::<bool>(),
        account in prop::option::of((".{0,20}", ".{0,20}", ".{0,20}", ".{0,20}", any::<i32>())),
    ) {
        let req = pb::CreateRefundRequest {
            request_id: request_id.clone(),
            provider,
            payment: Some(pb::PaymentReference { payment_id, payment_method_id: method, invoice_id: invoice }),
            amount: with_amount.then_some(pb::Money { currency_code: currency, minor_units: minor }),
            reason,
            description: description.clone(),
            metadata,
            bank_account: account.map(|(b, c, br, n, t)| pb::BankAccount {
                beneficiary: b, bank_code: c, branch: br, account_number: n, account_type: t,
            }),
        };
        if let Ok(draft) = convert::create_request(TenantId::new("t"), req) {
            let len = draft.request_id.chars().count();
            prop_assert!((1..=255).contains(&len));
            prop_assert!(!draft.request_id.chars().any(char::is_control));
            prop_assert!(draft.description.chars().count() <= 1000);
            prop_assert!(!draft.description.contains('\0'));
            prop_assert!(draft.metadata.len() <= 50);
            if let Some(m) = draft.amount {
                prop_assert!(m.minor > 0);
            }
        }
    }

    /// Money: any code parses or is refused; any decimal converts exactly or is refused, and
    /// what converts comes back unchanged.
    #[test]
    fn money_conversions_are_exact_or_refused(code in ".{0,4}", mantissa in any::<i64>(), scale in 0u32..28) {
        let _ = Currency::parse(&code);
        let amount = Decimal::new(mantissa, scale);
        for code in ["MXN", "CLP", "BHD", "PHP", "JPY"] {
            let currency = Currency::parse(code).unwrap();
            if let Ok(m) = Money::from_major(amount, currency) {
                prop_assert_eq!(m.to_major(), amount.normalize());
                prop_assert_eq!(Money::from_major(m.to_major(), currency).unwrap(), m);
            }
        }
        let m = Money::new(mantissa, Currency::parse("MXN").unwrap());
        prop_assert_eq!(Money::from_major(m.to_major(), m.currency).unwrap(), m);
    }

    /// Any text as a configuration is a Config or a one-line error, never a panic.
    #[test]
    fn config_parsing_never_panics(text in "(\\[[a-z_.]{0,12}\\]\n)?([a-z_]{0,12} = (\"[^\"]{0,10}\"|[0-9]{0,6}|true)\n){0,6}") {
        if let Err(e) = Config::from_toml(&text) {
            prop_assert!(!e.to_string().contains('\n'));
        }
    }

    /// Any JSON value where an amount is expected is read exactly or refused, and what is
    /// read writes back as the same number.
    #[test]
    fn json_amounts_are_exact_or_refused(text in prop_oneof!["[-+0-9.eE]{0,30}", "\"[-+0-9.eE ]{0,20}\"", ".{0,20}"]) {
        #[derive(serde::Deserialize, serde::Serialize)]
        struct Amount(#[serde(with = "refund_gateway::providers::json_decimal")] Decimal);
        if let Ok(Amount(d)) = serde_json::from_str::<Amount>(&text) {
            let written = serde_json::to_string(&Amount(d)).unwrap();
            let Amount(again) = serde_json::from_str::<Amount>(&written).unwrap();
            prop_assert_eq!(again, d);
        }
        let _ = refund_gateway::providers::json_decimal::parse(&text);
    }
}
