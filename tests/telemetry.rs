//! Traces of the real `refund-gateway` binary: with `[telemetry] otlp_endpoint` it exports
//! its spans over OTLP/gRPC to a collector (here one written for the test, on loopback),
//! continues a caller's W3C `traceparent`, puts the trace id on its log lines, and keeps
//! secrets off its spans; with the collector away, calls are as quick as ever.

mod support;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::{AnyValue, any_value::Value},
};
use refund_gateway::pb::{self, refund_service_client::RefundServiceClient};
use support::process::{Gateway, Proc, Sandbox};
use tonic::{Request, transport::Channel};

const TENANT_KEY: &str = "tenant-key-traces-7f3a9c";
/// The trace and span a test caller says its call belongs to.
const CALLER_TRACE: &str = "5b8efff798038103d269b633813fc60c";
const CALLER_SPAN: &str = "eee19b7ec3c1b174";
/// The trace of a provider notification.
const HOOK_TRACE: &str = "2c9a6e5f0d7b4e3a8f1c0b9a8d7e6f50";
/// The trace of a gRPC-Web caller.
const WEB_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

/// A span as the collector received it.
#[derive(Clone, Debug)]
struct Received {
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: HashMap<String, String>,
    service_name: String,
}

/// An OTLP/gRPC trace collector keeping every span it receives.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Received>>>,
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let service_name = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .map(|kv| text(kv.value.as_ref()))
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    spans.push(Received {
                        name: span.name,
                        trace_id: hex::encode(&span.trace_id),
                        span_id: hex::encode(&span.span_id),
                        parent_span_id: hex::encode(&span.parent_span_id),
                        attributes: span
                            .attributes
                            .iter()
                            .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
                            .collect(),
                        service_name: service_name.clone(),
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    async fn start() -> (Collector, SocketAddr) {
        let collector = Collector::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = TraceServiceServer::new(collector.clone());
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                .await
                .unwrap();
        });
        (collector, addr)
    }

    fn spans(&self) -> Vec<Received> {
        self.spans.lock().unwrap().clone()
    }
}

/// A gateway config in `dir` with tenant `acme` and the three provider accounts on the
/// simulators of `sandbox` (with their credentials, as if they were the real providers),
/// exporting traces to `otlp`.
fn config(dir: &std::path::Path, sandbox: &Sandbox, otlp: &str) -> std::path::PathBuf {
    let path = dir.join("gateway.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[server]
grpc_listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
[telemetry]
otlp_endpoint = "{otlp}"
[worker]
tick_ms = 100
first_check_ms = 200
[store]
url = "sqlite://{db}"
[[tenants]]
id = "acme"
api_keys = ["{TENANT_KEY}"]
{providers}
"#,
            db = dir.join("gw.db").display(),
            providers = sandbox.provider_config(5_000),
        ),
    )
    .unwrap();
    path
}

/// A CreateRefund of tenant `acme`.
fn create(
    request_id: &str,
    provider: &str,
    payment: pb::PaymentReference,
    amount: Option<(&str, i64)>,
) -> Request<pb::CreateRefundRequest> {
    let mut request = Request::new(pb::CreateRefundRequest {
        request_id: request_id.into(),
        provider: provider.into(),
        payment: Some(payment),
        amount: amount.map(|(currency, minor)| pb::Money {
            currency_code: currency.into(),
            minor_units: minor,
        }),
        ..Default::default()
    });
    authorize(&mut request);
    request
}

fn authorize<T>(request: &mut Request<T>) {
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {TENANT_KEY}").parse().unwrap(),
    );
}

/// The whole of a CONFIRMED Compago fixture payment.
fn compago_refund(request_id: &str, payment_id: &str) -> Request<pb::CreateRefundRequest> {
    create(
        request_id,
        "compago",
        pb::PaymentReference {
            payment_id: payment_id.into(),
            payment_method_id: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".into(),
            invoice_id: String::new(),
        },
        None,
    )
}

fn with_traceparent<T>(mut request: Request<T>) -> Request<T> {
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01")
            .parse()
            .unwrap(),
    );
    request
        .metadata_mut()
        .insert("tracestate", "vendor=opaque-value".parse().unwrap());
    request
}

async fn client(grpc: &str) -> RefundServiceClient<Channel> {
    let channel = Channel::from_shared(grpc.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    RefundServiceClient::new(channel)
}

/// Values no span attribute may carry: the caller's API key, the providers' credentials and
/// their URLs.
fn forbidden(sandbox: &Sandbox) -> Vec<String> {
    vec![
        TENANT_KEY.to_owned(),
        simulators::compago::COMPAGO_SANDBOX_API_KEY.to_owned(),
        simulators::D24_SANDBOX_SECRET.to_owned(),
        simulators::PAYMONGO_SANDBOX_SECRET_KEY.to_owned(),
        simulators::PAYMONGO_SANDBOX_WEBHOOK_SECRET.to_owned(),
        sandbox.compago.clone(),
    ]
}

/// The spans of a CreateRefund that came with a `traceparent` are the caller's trace: the
/// `rpc` span is the caller's span's child, the store and provider calls are under it; a
/// call without one starts a trace of its own; the log lines of the call carry the trace
/// id; no span carries a key, a secret or a provider URL; the spans still queued at
/// SIGTERM are sent before the process exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_trace_continues_through_the_gateway_to_the_collector() {
    let (collector, addr) = Collector::start().await;
    let sandbox = Sandbox::start();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &sandbox, &format!("http://{addr}"));
    let mut gateway = Gateway::start(&config, &[]);
    let mut client = client(&gateway.grpc).await;

    let traced = client
        .create_refund(with_traceparent(compago_refund(
            "traced-1",
            "33333333-3333-3333-3333-333333333333",
        )))
        .await
        .expect("the traced refund is made")
        .into_inner()
        .refund
        .unwrap();
    let untraced = client
        .create_refund(compago_refund(
            "untraced-1",
            "44444444-4444-4444-4444-444444444444",
        ))
        .await
        .expect("the untraced refund is made")
        .into_inner()
        .refund
        .unwrap();
    // A D24 card refund that is IN_PROGRESS: the worker checks it, and D24's notification
    // of its completion (about 2 s later) comes as a webhook.
    let followed = client
        .create_refund(create(
            "followed-1",
            "d24",
            pb::PaymentReference {
                payment_id: "300000001".into(),
                payment_method_id: String::new(),
                invoice_id: "inv-card-in-progress".into(),
            },
            Some(("MXN", 25_000)),
        ))
        .await
        .expect("the D24 refund is made")
        .into_inner()
        .refund
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut get = Request::new(pb::GetRefundRequest {
            id: followed.id.clone(),
        });
        authorize(&mut get);
        let refund = client.get_refund(get).await.unwrap().into_inner().refund;
        if refund.is_some_and(|r| r.status == pb::RefundStatus::Succeeded as i32) {
            break;
        }
        assert!(Instant::now() < deadline, "the D24 refund did not complete");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A provider notification that comes with a traceparent continues that trace (D24 sends
    // `{"refund_id": N}` and the gateway reads the refund back).
    let delivered = reqwest::Client::new()
        .post(format!("{}/webhooks/d24/d24", gateway.http))
        .header("traceparent", format!("00-{HOOK_TRACE}-{CALLER_SPAN}-01"))
        .json(&serde_json::json!({
            "refund_id": followed.provider_refund_id.parse::<u64>().unwrap()
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(delivered.status(), reqwest::StatusCode::OK);

    // A gRPC-Web call (HTTP/1.1, as a browser sends it) continues its caller's trace too.
    let web = {
        let mut body = vec![0u8];
        body.extend_from_slice(&0u32.to_be_bytes()); // an empty ListProvidersRequest
        reqwest::Client::builder()
            .http1_only()
            .build()
            .unwrap()
            .post(format!(
                "{}/refunds.v1.RefundService/ListProviders",
                gateway.grpc
            ))
            .header("content-type", "application/grpc-web+proto")
            .header("x-grpc-web", "1")
            .header("authorization", format!("Bearer {TENANT_KEY}"))
            .header("traceparent", format!("00-{WEB_TRACE}-{CALLER_SPAN}-01"))
            .body(body)
            .send()
            .await
            .unwrap()
    };
    assert_eq!(web.status(), reqwest::StatusCode::OK);
    assert_eq!(web.version(), reqwest::Version::HTTP_11);

    // SIGTERM: the spans still queued are flushed before the process exits.
    gateway.proc.signal("TERM");
    assert!(gateway.proc.wait_exit(Duration::from_secs(20)).success());
    let spans = collector.spans();
    let by_id: HashMap<&str, &Received> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let describe = || {
        spans
            .iter()
            .map(|s| format!("{} {} {:?}", s.name, s.trace_id, s.attributes))
            .collect::<Vec<_>>()
            .join("\n")
    };

    assert!(
        spans.iter().all(|s| s.service_name == "refund-gateway"),
        "{}",
        describe()
    );
    let rpc = spans
        .iter()
        .find(|s| s.name == "rpc" && s.attributes.get("refund_id") == Some(&traced.id))
        .unwrap_or_else(|| panic!("no rpc span of the traced call in:\n{}", describe()));
    assert_eq!(rpc.trace_id, CALLER_TRACE, "the caller's trace continues");
    assert_eq!(rpc.parent_span_id, CALLER_SPAN, "under the caller's span");
    assert_eq!(rpc.attributes["method"], "CreateRefund");
    assert_eq!(rpc.attributes["tenant"], "acme");
    assert_eq!(rpc.attributes["provider"], "compago");
    assert_eq!(rpc.attributes["rpc.grpc.status_code"], "0");

    // Every span of the call is in the caller's trace, under the rpc span.
    let under_rpc = |span: &Received| {
        let mut parent = span.parent_span_id.as_str();
        while let Some(up) = by_id.get(parent) {
            if up.span_id == rpc.span_id {
                return true;
            }
            parent = up.parent_span_id.as_str();
        }
        false
    };
    for name in [
        "provider.get_payment",
        "provider.submit_refund",
        "store.claim_request",
        "store.held_amount",
        "store.insert_refund",
        "store.update_refund_completing",
        "refund.write",
    ] {
        let span = spans
            .iter()
            .find(|s| s.name == name && s.trace_id == CALLER_TRACE)
            .unwrap_or_else(|| panic!("no {name} span in the caller's trace:\n{}", describe()));
        assert!(under_rpc(span), "{name} is not under the rpc span");
        if name.starts_with("provider.") {
            assert_eq!(span.attributes["provider"], "compago", "{name}");
        }
    }
    let submit = spans
        .iter()
        .find(|s| s.name == "provider.submit_refund" && s.trace_id == CALLER_TRACE)
        .unwrap();
    assert_eq!(submit.attributes["refund_id"], traced.id);
    let insert = spans
        .iter()
        .find(|s| s.name == "store.insert_refund" && s.trace_id == CALLER_TRACE)
        .unwrap();
    assert_eq!(insert.attributes["refund_id"], traced.id);

    let web_rpc = spans
        .iter()
        .find(|s| s.name == "rpc" && s.trace_id == WEB_TRACE)
        .unwrap_or_else(|| panic!("no rpc span of the gRPC-Web call in:\n{}", describe()));
    assert_eq!(web_rpc.parent_span_id, CALLER_SPAN);
    assert_eq!(web_rpc.attributes["method"], "ListProviders");

    let hook = spans
        .iter()
        .find(|s| s.name == "webhook" && s.trace_id == HOOK_TRACE)
        .unwrap_or_else(|| panic!("no webhook span in the notifier's trace:\n{}", describe()));
    assert_eq!(hook.parent_span_id, CALLER_SPAN);
    assert_eq!(hook.attributes["refund_id"], followed.id);

    // The call without a traceparent: a trace of its own, with no parent.
    let own = spans
        .iter()
        .find(|s| s.name == "rpc" && s.attributes.get("refund_id") == Some(&untraced.id))
        .unwrap_or_else(|| panic!("no rpc span of the untraced call in:\n{}", describe()));
    assert_ne!(own.trace_id, CALLER_TRACE);
    assert_eq!(own.trace_id.len(), 32);
    assert_ne!(own.trace_id, "0".repeat(32));
    assert!(own.parent_span_id.is_empty(), "a root span: {own:?}");
    assert!(
        spans
            .iter()
            .any(|s| s.name == "provider.submit_refund" && s.trace_id == own.trace_id),
        "its provider call is in its trace"
    );

    // The worker's checks and the webhook are linked to the refund they are about.
    for name in ["worker.check", "webhook"] {
        let span = spans
            .iter()
            .find(|s| s.name == name && s.attributes.get("refund_id") == Some(&followed.id))
            .unwrap_or_else(|| panic!("no {name} span of the D24 refund in:\n{}", describe()));
        assert_eq!(span.attributes["provider"], "d24", "{name}");
        assert!(
            spans.iter().any(|s| s.name == "provider.fetch_refund"
                && s.trace_id == span.trace_id
                && s.attributes.get("refund_id") == Some(&followed.id)),
            "{name}: the provider read is in its trace"
        );
    }

    // Nothing secret on any span.
    for secret in forbidden(&sandbox) {
        for span in &spans {
            for (key, value) in &span.attributes {
                assert!(
                    !value.contains(&secret),
                    "span {} attribute {key} carries {secret:?}",
                    span.name
                );
            }
        }
    }

    // The call's log lines carry its trace id.
    let logs = gateway.proc.all_output();
    let line = logs
        .lines()
        .find(|l| l.contains("provider accepted the refund") && l.contains(&traced.id))
        .unwrap_or_else(|| panic!("no log line of the traced refund in:\n{logs}"));
    assert!(
        line.ends_with(&format!("trace_id={CALLER_TRACE}")),
        "{line}"
    );
    let line = logs
        .lines()
        .find(|l| l.contains("provider accepted the refund") && l.contains(&untraced.id))
        .unwrap();
    assert!(
        line.ends_with(&format!("trace_id={}", own.trace_id)),
        "{line}"
    );
    assert!(!logs.contains(TENANT_KEY), "the API key reached the logs");
}

/// With the collector away (nothing listens on its port), calls are made as quickly as
/// ever and the process still stops promptly; JSON log lines carry the trace id too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_do_not_wait_for_a_collector_that_is_away() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let sandbox = Sandbox::start();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &sandbox, &format!("http://{closed}"));
    let mut command = std::process::Command::new(support::process::BIN);
    command
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("REFUND_GATEWAY_LOG_FORMAT", "json");
    let mut gateway = Proc::start(command);
    let serving: serde_json::Value =
        serde_json::from_str(&gateway.wait_for_line("refund-gateway serving")).unwrap();
    let grpc = format!("http://{}", serving["fields"]["grpc"].as_str().unwrap());
    let mut client = client(&grpc).await;

    let mut slowest = Duration::ZERO;
    for i in 0..20 {
        let started = Instant::now();
        let request = create(
            &format!("away-{i}"),
            "paymongo",
            pb::PaymentReference {
                payment_id: "pay_SandboxPaid50000".into(),
                ..Default::default()
            },
            Some(("PHP", 1_000)),
        );
        client
            .create_refund(with_traceparent(request))
            .await
            .expect("the refund is made with the collector away");
        slowest = slowest.max(started.elapsed());
    }
    eprintln!("slowest of 20 CreateRefund calls with the collector away: {slowest:?}");
    assert!(
        slowest < Duration::from_secs(1),
        "a call took {slowest:?} with the collector away"
    );

    let line = gateway.wait_for_line("provider accepted the refund");
    let json: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(json["trace_id"], CALLER_TRACE, "{line}");

    let stopping = Instant::now();
    gateway.signal("TERM");
    assert!(gateway.wait_exit(Duration::from_secs(20)).success());
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "stopping took {:?}",
        stopping.elapsed()
    );
}
