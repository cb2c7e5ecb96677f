//! The operator console at `GET /console/` and the gRPC-Web route it calls, both on the HTTP
//! listener.
//!
//! The page, its stylesheet and its script (`console/static/`, and `console/dist/console.js`
//! bundled at development time by `scripts/console.sh`) are compiled into the binary: nothing
//! is read from disk or fetched at run time. Each answer carries a strict
//! Content-Security-Policy (scripts, styles, images and calls from this origin only; no
//! inline script or style, no framing), `nosniff`, no referrer, and `Cache-Control: no-cache`
//! with a strong `ETag`, so a browser revalidates (304, no body) and never runs a script of
//! an older binary.
//!
//! The console calls `refunds.v1.RefundService` through gRPC-Web on its own origin:
//! `POST /refunds.v1.RefundService/{method}` here goes through tonic-web's translation to
//! the very service value the gRPC listener serves (same authentication interceptor, same
//! RPC layer, same handlers), so keys, tenancy, operator checks, errors and metrics are the
//! same on both listeners, and no CORS opening is needed for the console.

use std::{convert::Infallible, sync::LazyLock};

use axum::{
    BoxError, Router,
    body::{Body, Bytes, HttpBody},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post_service},
};
use sha2::{Digest as _, Sha256};
use tonic_web::GrpcWebLayer;
use tower::{Layer as _, Service};

/// Where the console lives.
pub const PATH: &str = "/console/";

/// The gRPC-Web route: every method of the service, by its full path.
const GRPC_WEB_ROUTE: &str = "/refunds.v1.RefundService/{method}";

/// Scripts, styles, images and calls from this origin only; nothing inline, no plugins, no
/// framing, no form posts elsewhere.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
#[derive(Debug)]
struct Asset {
    content_type: &'static str,
    body: &'static [u8],
    /// A strong validator: the first 16 hex digits of the content's SHA-256, quoted.
    etag: LazyLock<HeaderValue>,
}

macro_rules! asset {
    ($path:literal, $content_type:literal) => {
        Asset {
            content_type: $content_type,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $path)),
            etag: LazyLock::new(|| {
                etag(include_bytes!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/",
                    $path
                )))
            }),
        }
    };
}

static INDEX: Asset = asset!("console/static/index.html", "text/html; charset=utf-8");
static SCRIPT: Asset = asset!("console/dist/console.js", "text/javascript; charset=utf-8");
static STYLE: Asset = asset!("console/static/console.css", "text/css; charset=utf-8");
static ICON: Asset = asset!("console/static/favicon.svg", "image/svg+xml");

fn etag(body: &[u8]) -> HeaderValue {
    let digest = hex::encode(Sha256::digest(body));
    HeaderValue::from_str(&format!("\"{}\"", &digest[..16])).expect("hex is a header value")
}

/// The console's routes, and `api` (the RefundService stack of the gRPC listener) reachable
/// through gRPC-Web on this listener.
pub fn router<S, B>(api: S) -> Router
where
    S: Service<http::Request<tonic::body::Body>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError> + std::fmt::Display,
{
    Router::new()
        .route("/console", get(|| async { Redirect::permanent(PATH) }))
        .route(PATH, get(|headers: HeaderMap| serve(&INDEX, headers)))
        .route(
            "/console/console.js",
            get(|headers: HeaderMap| serve(&SCRIPT, headers)),
        )
        .route(
            "/console/console.css",
            get(|headers: HeaderMap| serve(&STYLE, headers)),
        )
        .route(
            "/console/favicon.svg",
            get(|headers: HeaderMap| serve(&ICON, headers)),
        )
        .route(GRPC_WEB_ROUTE, post_service(GrpcWebLayer::new().layer(api)))
}

async fn serve(asset: &'static Asset, request: HeaderMap) -> Response {
    let etag = &*asset.etag;
    let fresh = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/").as_bytes() == etag.as_bytes()
        });
    let (status, body) = if fresh {
        (StatusCode::NOT_MODIFIED, Body::empty())
    } else {
        (StatusCode::OK, Body::from(asset.body))
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    if !fresh {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
    }
    headers.insert(header::ETAG, etag.clone());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_files() {
        let page = std::str::from_utf8(INDEX.body).unwrap();
        // No inline script or style (the policy would refuse it): every script names a file.
        assert!(page.contains(r#"<script type="module" src="console.js"></script>"#));
        assert_eq!(page.matches("<script").count(), 1);
        assert!(!page.contains("<style"));
        assert!(!page.contains(" style="));
        assert!(
            !page
                .split_whitespace()
                .any(|word| word.starts_with("on") && word.contains('=')),
            "no inline event handlers"
        );
        assert!(!page.contains("http://") && !page.contains("https://"));
    }

    #[test]
    fn validators_follow_the_content() {
        assert_ne!(*SCRIPT.etag, *STYLE.etag);
        assert_eq!(*INDEX.etag, etag(INDEX.body));
        assert_eq!(INDEX.etag.len(), 18);
    }
}
