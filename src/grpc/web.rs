//! gRPC-Web on the gRPC listener: the translation layer for browsers (and the operator
//! console), and the CORS policy that decides which other web origins may call.
//!
//! A gRPC-Web request (`application/grpc-web`, `application/grpc-web+proto`, or the base64
//! `-text` forms) arrives over HTTP/1.1 or HTTP/2 and is turned into a gRPC call before it
//! reaches the services, so authentication, metrics and errors are the same as for gRPC. The
//! status and error details come back in the trailer frame of the body.
//!
//! CORS (`server.cors_allowed_origins`): empty by default, which sends no CORS headers at
//! all, so a browser lets only pages served from the gateway's own origin call it. Listed
//! origins (`https://console.example.com`) may call from a browser, `"*"` lets any origin.
//! Credentials (cookies) are never allowed: callers authenticate with API keys in headers.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use tonic_web::GrpcWebLayer;

/// Request headers a gRPC-Web caller may send across origins.
const ALLOWED_HEADERS: [&str; 8] = [
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "authorization",
    "x-api-key",
    "traceparent",
    "tracestate",
];

/// Response headers a cross-origin caller may read (the status when it comes as headers).
const EXPOSED_HEADERS: [&str; 3] = ["grpc-status", "grpc-message", "grpc-status-details-bin"];

/// The CORS layer for `server.cors_allowed_origins`, or none when the list is empty.
///
/// # Errors
/// An origin that is not a valid header value (the config check reports it first).
pub fn cors_layer(origins: &[String]) -> Result<Option<CorsLayer>, String> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let values = origins
            .iter()
            .map(|o| check_origin(o).map(|()| HeaderValue::from_str(o).expect("checked")))
            .collect::<Result<Vec<_>, _>>()?;
        AllowOrigin::list(values)
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::POST, Method::OPTIONS])
            .allow_headers(ALLOWED_HEADERS.map(HeaderName::from_static))
            .expose_headers(EXPOSED_HEADERS.map(HeaderName::from_static))
            .max_age(Duration::from_secs(24 * 60 * 60)),
    ))
}

/// An origin as a browser sends it: `scheme://host[:port]`, no path, or `*`.
pub fn check_origin(origin: &str) -> Result<(), String> {
    if origin == "*" {
        return Ok(());
    }
    let valid = (origin.starts_with("https://") || origin.starts_with("http://"))
        && !origin.split_once("://").is_some_and(|(_, rest)| {
            rest.is_empty() || rest.contains('/') || rest.contains(char::is_whitespace)
        })
        && HeaderValue::from_str(origin).is_ok();
    if valid {
        Ok(())
    } else {
        Err(format!(
            "server.cors_allowed_origins: {origin:?} is not an origin \
             (scheme://host[:port], or \"*\")"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_origins_means_no_cors_layer() {
        assert!(cors_layer(&[]).unwrap().is_none());
    }

    #[test]
    fn origins_are_checked() {
        assert!(check_origin("https://console.example.com").is_ok());
        assert!(check_origin("http://127.0.0.1:3000").is_ok());
        assert!(check_origin("*").is_ok());
        for bad in [
            "console.example.com",
            "https://x.example/path",
            "https://",
            "ftp://x",
        ] {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
        assert!(
            cors_layer(&["https://a.example".to_owned()])
                .unwrap()
                .is_some()
        );
        assert!(cors_layer(&["nope".to_owned()]).is_err());
    }
}
