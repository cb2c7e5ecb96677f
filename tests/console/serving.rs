//! What the HTTP listener answers for the console, over plain HTTP: the embedded files with
//! their content types, security headers and validators, and the gRPC-Web route to the same
//! RefundService (and the same authentication) as the gRPC listener.

use prost::Message as _;
use refund_gateway::pb;
use reqwest::{StatusCode, header};

use crate::support::gateway::{Gateway, Setup};
use crate::{ACME_KEY, GLOBEX_KEY, TENANTS, refund};

fn setup() -> Setup {
    Setup {
        tenants: TENANTS.to_owned(),
        ..Setup::default()
    }
}

#[tokio::test]
async fn the_console_is_served_from_the_binary_with_a_strict_policy() {
    let gw = Gateway::start(setup()).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let bare = http
        .get(format!("{}/console", gw.http_url))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(bare.headers()[header::LOCATION], "/console/");

    let root = env!("CARGO_MANIFEST_DIR");
    for (path, file, content_type) in [
        (
            "/console/",
            "console/static/index.html",
            "text/html; charset=utf-8",
        ),
        (
            "/console/console.js",
            "console/dist/console.js",
            "text/javascript; charset=utf-8",
        ),
        (
            "/console/console.css",
            "console/static/console.css",
            "text/css; charset=utf-8",
        ),
        (
            "/console/favicon.svg",
            "console/static/favicon.svg",
            "image/svg+xml",
        ),
    ] {
        let response = http
            .get(format!("{}{path}", gw.http_url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers[header::CONTENT_TYPE], content_type, "{path}");
        let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(policy.contains(directive), "{path}: {policy}");
        }
        assert!(!policy.contains("unsafe"), "{path}: {policy}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        let body = response.bytes().await.unwrap();
        let on_disk = std::fs::read(format!("{root}/{file}")).unwrap();
        assert_eq!(
            body.as_ref(),
            on_disk.as_slice(),
            "{path} is the committed {file}"
        );

        // Revalidation: the same validator answers 304 with no body.
        let etag = headers[header::ETAG].clone();
        let again = http
            .get(format!("{}{path}", gw.http_url))
            .header(header::IF_NONE_MATCH, etag.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(again.headers()[header::ETAG], etag);
        assert!(again.bytes().await.unwrap().is_empty());
    }

    let missing = http
        .get(format!("{}/console/nothing.js", gw.http_url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

/// One unary gRPC-Web call on the HTTP listener: the messages and the `grpc-status`.
async fn web_call(
    gw: &Gateway,
    method: &str,
    key: Option<&str>,
    message: impl prost::Message,
) -> (Vec<Vec<u8>>, String, String) {
    let payload = message.encode_to_vec();
    let mut body = vec![0u8];
    body.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
    body.extend_from_slice(&payload);
    let http = reqwest::Client::builder().http1_only().build().unwrap();
    let mut request = http
        .post(format!("{}/refunds.v1.RefundService/{method}", gw.http_url))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(body);
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let body = response.bytes().await.unwrap();
    let (mut messages, mut trailers) = (Vec::new(), String::new());
    let mut rest = &body[..];
    while rest.len() >= 5 {
        let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
        let frame = &rest[5..5 + len];
        if rest[0] & 0x80 != 0 {
            trailers = String::from_utf8(frame.to_vec()).unwrap();
        } else {
            messages.push(frame.to_vec());
        }
        rest = &rest[5 + len..];
    }
    let field = |name: &str| {
        trailers
            .split("\r\n")
            .find_map(|line| line.strip_prefix(&format!("{name}:")))
            .map(|v| v.trim().to_owned())
            .or_else(|| headers.get(name).map(|v| v.to_str().unwrap().to_owned()))
            .unwrap_or_default()
    };
    (messages, field("grpc-status"), field("grpc-message"))
}

#[tokio::test]
async fn grpc_web_on_the_http_listener_is_the_same_service_with_the_same_keys() {
    let gw = Gateway::start(setup()).await;
    let acme = gw.keyed_client(ACME_KEY).await;
    let globex = gw.keyed_client(GLOBEX_KEY).await;
    let mine = refund(&gw, &acme, "web-acme", "25.00").await;
    let theirs = refund(&gw, &globex, "web-globex", "30.00").await;

    // No key, or a key no tenant has: UNAUTHENTICATED, as on the gRPC listener.
    let (messages, status, _) =
        web_call(&gw, "ListRefunds", None, pb::ListRefundsRequest::default()).await;
    assert_eq!((messages.len(), status.as_str()), (0, "16"));
    let (_, status, message) = web_call(
        &gw,
        "ListRefunds",
        Some("not-a-key"),
        pb::ListRefundsRequest::default(),
    )
    .await;
    assert_eq!(status, "16");
    assert!(message.contains("unknown"), "{message}");

    // A tenant's key: its own refunds only.
    let (messages, status, _) = web_call(
        &gw,
        "ListRefunds",
        Some(ACME_KEY),
        pb::ListRefundsRequest::default(),
    )
    .await;
    assert_eq!(status, "0");
    let list = pb::ListRefundsResponse::decode(messages[0].as_slice()).unwrap();
    let ids: Vec<_> = list.refunds.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [mine.id.as_str()]);
    assert!(!ids.contains(&theirs.id.as_str()));

    // Another tenant's refund is NOT_FOUND here too, counted with the gRPC listener's calls
    // (one RPC layer behind both listeners).
    let not_found = || async {
        crate::support::messages::metric(
            &gw.metrics().await,
            "refund_gateway_grpc_requests_total",
            &[("method", "GetRefund"), ("code", "NOT_FOUND")],
        )
    };
    let before = not_found().await;
    let (_, status, _) = web_call(
        &gw,
        "GetRefund",
        Some(ACME_KEY),
        pb::GetRefundRequest {
            id: theirs.id.clone(),
        },
    )
    .await;
    assert_eq!(status, "5");

    // Only POSTs reach the service.
    let get = reqwest::get(format!(
        "{}/refunds.v1.RefundService/ListRefunds",
        gw.http_url
    ))
    .await
    .unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);

    assert_eq!(not_found().await, before + 1.0);
}
