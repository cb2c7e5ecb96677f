//! A request message above `max_request_message_bytes` is refused by tonic's decoder with
//! OUT_OF_RANGE and a bare message; callers and the gRPC status code table expect
//! RESOURCE_EXHAUSTED, and every error of this API carries `ErrorInfo`. This layer, right
//! around the service, rewrites that one answer (a trailers-only response: the status is in
//! the headers) into RESOURCE_EXHAUSTED, reason `MESSAGE_TOO_LARGE`.

use std::task::{Context, Poll};

use tower::{Layer, Service};

use crate::domain::{ApiError, ErrorCode};

/// What tonic's decoder says when a message is above the limit.
const TONIC_TOO_LARGE: &str = "Error, decoded message length too large: ";

#[derive(Clone, Copy, Debug, Default)]
pub struct TooLargeLayer;

impl<S> Layer<S> for TooLargeLayer {
    type Service = TooLarge<S>;

    fn layer(&self, inner: S) -> TooLarge<S> {
        TooLarge { inner }
    }
}

#[derive(Clone, Debug)]
pub struct TooLarge<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for TooLarge<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    // No allocation per call: the answer is looked at as it passes.
    type Future = futures::future::MapOk<S::Future, fn(S::Response) -> S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        use futures::TryFutureExt as _;
        self.inner.call(req).map_ok(rewrite::<ResBody>)
    }
}

/// tonic's OUT_OF_RANGE for a request message above the limit, as RESOURCE_EXHAUSTED with
/// ErrorInfo; every other answer unchanged.
fn rewrite<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers_mut();
    // Only an error answer has grpc-status in its headers; no other is decoded.
    let too_large = headers
        .get("grpc-status")
        .is_some_and(|s| s == "11")
        .then(|| tonic::Status::from_header_map(headers))
        .flatten()
        .and_then(|s| s.message().strip_prefix(TONIC_TOO_LARGE).map(str::to_owned));
    if let Some(sizes) = too_large {
        let status = tonic::Status::from(ApiError::new(
            ErrorCode::ResourceExhausted,
            "MESSAGE_TOO_LARGE",
            format!("the request message is too large: {sizes}"),
        ));
        for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
            headers.remove(name);
        }
        // Only fails for a message that cannot be a header value; this one can.
        let _ = status.add_header(headers);
    }
    response
}
