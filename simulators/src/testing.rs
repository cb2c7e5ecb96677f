//! For the simulators' own tests: requests sent to a simulator's router in process.

use axum::{
    Router,
    body::{Body, Bytes},
    http::{Request, StatusCode},
};
use tower::ServiceExt as _;

/// Sends `request` to a simulator's router in process: the status and the whole body.
pub async fn send(router: Router, request: Request<Body>) -> (StatusCode, Bytes) {
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, body)
}

/// `send` of a request with no headers.
pub async fn call(router: Router, method: &str, path: &str, body: &str) -> (StatusCode, Bytes) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::from(body.to_owned()))
        .unwrap();
    send(router, request).await
}
