//! gRPC-Web on the gRPC listener, called as a browser's gRPC-Web client does: HTTP/1.1
//! POSTs of `application/grpc-web+proto` frames, the answer's data frames and its trailer
//! frame decoded by hand. CORS answers only the configured origins.

use prost::Message as _;
use refund_gateway::pb;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::*;

const SERVICE: &str = "refunds.v1.RefundService";

/// What a gRPC-Web call answered: the HTTP status and headers, the messages of its data
/// frames, and the gRPC status (from the trailer frame, or from the headers of a
/// trailers-only answer).
struct WebAnswer {
    http: reqwest::StatusCode,
    headers: HeaderMap,
    messages: Vec<Vec<u8>>,
    status: tonic::Status,
}

/// One gRPC-Web call over HTTP/1.1.
async fn call(
    gw: &Gateway,
    method: &str,
    key: Option<&str>,
    message: impl prost::Message,
) -> WebAnswer {
    let http = reqwest::Client::builder().http1_only().build().unwrap();
    let payload = message.encode_to_vec();
    let mut body = vec![0u8];
    body.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
    body.extend_from_slice(&payload);
    let mut request = http
        .post(format!("{}/{SERVICE}/{method}", gw.grpc_url))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header("grpc-timeout", "10S")
        .body(body);
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    let (http, headers) = (response.status(), response.headers().clone());
    let body = response.bytes().await.unwrap();
    let (mut messages, mut trailers) = (Vec::new(), None);
    let mut rest = &body[..];
    while !rest.is_empty() {
        assert!(rest.len() >= 5, "a truncated frame: {rest:?}");
        let flags = rest[0];
        let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
        let frame = &rest[5..5 + len];
        if flags & 0x80 != 0 {
            trailers = Some(parse_trailers(frame));
        } else {
            assert_eq!(flags, 0, "uncompressed data frames only");
            messages.push(frame.to_vec());
        }
        rest = &rest[5 + len..];
    }
    let status_from = trailers.unwrap_or_else(|| headers.clone());
    let status = tonic::Status::from_header_map(&status_from)
        .unwrap_or_else(|| panic!("no grpc-status in the trailers or headers: {status_from:?}"));
    WebAnswer {
        http,
        headers,
        messages,
        status,
    }
}

/// The trailer frame's payload: HTTP/1-style `name: value` lines.
fn parse_trailers(frame: &[u8]) -> HeaderMap {
    let text = std::str::from_utf8(frame).expect("trailers are text");
    let mut map = HeaderMap::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').expect("name: value");
        map.insert(
            HeaderName::from_bytes(name.trim().to_ascii_lowercase().as_bytes()).unwrap(),
            HeaderValue::from_str(value.trim()).unwrap(),
        );
    }
    map
}

/// A unary call, a server stream and an error, each over HTTP/1.1 gRPC-Web: the same
/// answers as over gRPC, authentication included, with the error details in the trailers.
#[tokio::test]
async fn grpc_web_over_http1_serves_unary_streams_and_errors() {
    let gw = spawn().await;

    // No key: refused as over gRPC.
    let anonymous = call(&gw, "ListProviders", None, pb::ListProvidersRequest {}).await;
    assert_eq!(
        anonymous.status.code(),
        Code::Unauthenticated,
        "{:?}",
        anonymous.status
    );

    let providers = call(
        &gw,
        "ListProviders",
        Some(ACME_KEY),
        pb::ListProvidersRequest {},
    )
    .await;
    assert_eq!(providers.http, 200);
    assert_eq!(
        providers.headers["content-type"],
        "application/grpc-web+proto"
    );
    assert_eq!(providers.status.code(), Code::Ok, "{:?}", providers.status);
    assert_eq!(providers.messages.len(), 1);
    let listed = pb::ListProvidersResponse::decode(&providers.messages[0][..]).unwrap();
    let mut names: Vec<_> = listed.providers.iter().map(|p| p.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["compago", "d24", "paymongo"]);

    // A refund made over gRPC-Web, then watched over gRPC-Web until final.
    let payment = gw.compago_payment("10.00", "CONFIRMED").await;
    let created = call(
        &gw,
        "CreateRefund",
        Some(ACME_KEY),
        create(&rid(), "compago", &payment),
    )
    .await;
    assert_eq!(created.status.code(), Code::Ok, "{:?}", created.status);
    let refund = pb::CreateRefundResponse::decode(&created.messages[0][..])
        .unwrap()
        .refund
        .unwrap();
    let watched = call(
        &gw,
        "WatchRefund",
        Some(ACME_KEY),
        pb::WatchRefundRequest {
            id: refund.id.clone(),
        },
    )
    .await;
    assert_eq!(watched.status.code(), Code::Ok, "{:?}", watched.status);
    assert!(!watched.messages.is_empty());
    let last = pb::WatchRefundResponse::decode(&watched.messages.last().unwrap()[..])
        .unwrap()
        .event
        .unwrap()
        .refund
        .unwrap();
    assert_eq!(last.id, refund.id);
    assert_eq!(status_of(&last), pb::RefundStatus::Succeeded);

    // An error: the code, ErrorInfo and BadRequest arrive as over gRPC.
    let mut bad = create(&rid(), "compago", &payment);
    bad.request_id = String::new();
    let refused = call(&gw, "CreateRefund", Some(ACME_KEY), bad).await;
    assert_eq!(
        refused.status.code(),
        Code::InvalidArgument,
        "{:?}",
        refused.status
    );
    let details = refused.status.get_error_details();
    assert_eq!(
        details.error_info().expect("ErrorInfo").domain,
        "refunds.v1"
    );
    assert_eq!(violated_fields(&refused.status), ["request_id"]);
    assert!(refused.messages.is_empty());
}

/// A CORS preflight as a browser sends it before a cross-origin gRPC-Web call.
async fn preflight(gw: &Gateway, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/{SERVICE}/ListProviders", gw.grpc_url),
        )
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,x-grpc-web,authorization",
        )
        .send()
        .await
        .unwrap()
}

/// By default no other origin is allowed (no CORS headers at all); with
/// `cors_allowed_origins` the listed origin is, with the gRPC-Web headers, and others
/// still are not.
#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let closed = spawn().await;
    let answer = preflight(&closed, "https://console.example.com").await;
    assert!(
        answer
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "{:?}",
        answer.headers()
    );

    let open = spawn_with(Setup {
        server: r#"cors_allowed_origins = ["https://console.example.com"]"#.to_owned(),
        ..setup()
    })
    .await;
    let answer = preflight(&open, "https://console.example.com").await;
    assert!(answer.status().is_success(), "{}", answer.status());
    let headers = answer.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://console.example.com"
    );
    let allowed = headers["access-control-allow-headers"].to_str().unwrap();
    for needed in ["content-type", "x-grpc-web", "authorization"] {
        assert!(allowed.contains(needed), "{allowed}");
    }
    let other = preflight(&open, "https://evil.example.com").await;
    assert!(other.headers().get("access-control-allow-origin").is_none());

    // The call itself carries the origin header back and exposes the status headers.
    let response = reqwest::Client::builder()
        .http1_only()
        .build()
        .unwrap()
        .post(format!("{}/{SERVICE}/ListProviders", open.grpc_url))
        .header("origin", "https://console.example.com")
        .header("content-type", "application/grpc-web+proto")
        .header("authorization", format!("Bearer {ACME_KEY}"))
        .body(vec![0u8, 0, 0, 0, 0])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://console.example.com"
    );
    assert!(
        response.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("grpc-status")
    );
}

/// The tenants' limits cover gRPC-Web calls as they cover gRPC ones, and an open gateway's
/// tenant `default` has the `[limits]` values: over them, RESOURCE_EXHAUSTED with ErrorInfo
/// and RetryInfo in the trailer frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_calls_count_against_the_tenants_limit() {
    let gw = spawn_with(Setup {
        tenants: String::new(),
        limits: "requests_per_second = 1\nburst = 2".to_owned(),
        ..setup()
    })
    .await;
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(call(&gw, "ListProviders", None, pb::ListProvidersRequest {}).await);
    }
    let served = answers
        .iter()
        .filter(|a| a.status.code() == Code::Ok)
        .count();
    assert!((2..=3).contains(&served), "{served} served");
    let refused = answers
        .iter()
        .find(|a| a.status.code() != Code::Ok)
        .expect("a call over the limit");
    assert_eq!(refused.http, 200);
    let details = refused.status.get_error_details();
    let info = details.error_info().expect("ErrorInfo");
    assert_eq!(refused.status.code(), Code::ResourceExhausted);
    assert_eq!(info.reason, "RATE_LIMITED");
    assert_eq!(info.metadata["tenant"], "default");
    assert!(details.retry_info().and_then(|r| r.retry_delay).is_some());
}
