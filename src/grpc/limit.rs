//! The tenants' limits (`crate::limits`) as a tower layer, right after authentication: every
//! RefundService call (gRPC and gRPC-Web alike) takes a token from its tenant's bucket before
//! any work is done, and a WatchRefund or WatchRefunds call also takes one of its tenant's
//! watch-stream places, which the handler keeps inside the stream ([`StreamPermit`] in the
//! request's extensions) so the place is given back when the stream ends.
//!
//! Over a limit the call ends here with RESOURCE_EXHAUSTED, `ErrorInfo` (reason
//! `RATE_LIMITED` or `TOO_MANY_STREAMS`, metadata `tenant`) and `RetryInfo`, and is counted in
//! `refund_gateway_rate_limited_total{tenant,limit}`.

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use futures::future::{Either, Ready, ready};
use tower::{Layer, Service};

pub use crate::limits::StreamPermit;
use crate::{
    auth::Caller,
    domain::{ApiError, ErrorCode, reason},
    limits::{Limiter, Refusal},
    metrics,
};

/// When a caller refused for its streams may try again: a stream may end at any moment.
const STREAMS_RETRY: Duration = Duration::from_secs(1);

/// Wraps a service in [`Limit`].
#[derive(Clone, Debug)]
pub struct LimitLayer {
    limiter: Arc<Limiter>,
}

impl LimitLayer {
    pub fn new(limiter: Arc<Limiter>) -> Self {
        Self { limiter }
    }
}

impl<S> Layer<S> for LimitLayer {
    type Service = Limit<S>;

    fn layer(&self, inner: S) -> Limit<S> {
        Limit {
            inner,
            limiter: self.limiter.clone(),
        }
    }
}

/// A service whose calls are each admitted by their tenant's limits first.
#[derive(Clone, Debug)]
pub struct Limit<S> {
    inner: S,
    limiter: Arc<Limiter>,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Limit<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<S::Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<ReqBody>) -> Self::Future {
        // Authentication ran first: a call without a caller is refused there. The tenant is
        // read where it lies (no copy per call); a stream place is attached once admitted.
        let admitted = match req.extensions().get::<Caller>() {
            None => return Either::Right(self.inner.call(req)),
            Some(caller) => {
                let tenant = &caller.tenant;
                self.limiter
                    .admit_call(tenant)
                    .and_then(|()| {
                        is_watch(req.uri().path())
                            .then(|| self.limiter.open_stream(tenant))
                            .transpose()
                    })
                    .map_err(|refusal| refused(tenant.as_str(), refusal))
            }
        };
        match admitted {
            Ok(permit) => {
                if let Some(permit) = permit {
                    req.extensions_mut().insert(permit);
                }
                Either::Right(self.inner.call(req))
            }
            Err(err) => Either::Left(ready(Ok(tonic::Status::from(err).into_http()))),
        }
    }
}

/// The answer to a refused call, counted.
fn refused(tenant: &str, refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::Rate(wait) => {
            metrics::rate_limited(tenant, "requests");
            ApiError::new(
                ErrorCode::ResourceExhausted,
                reason::RATE_LIMITED,
                format!(
                    "tenant {tenant} is over its limit of calls per second; retry after the \
                     delay in RetryInfo"
                ),
            )
            .with("tenant", tenant)
            // Never a zero delay: the bucket is empty now.
            .with_retry_after(wait.max(Duration::from_millis(1)))
        }
        Refusal::Streams => {
            metrics::rate_limited(tenant, "watch_streams");
            ApiError::new(
                ErrorCode::ResourceExhausted,
                reason::TOO_MANY_STREAMS,
                format!(
                    "tenant {tenant} has as many watch streams open as its limit allows; close \
                     one first"
                ),
            )
            .with("tenant", tenant)
            .with_retry_after(STREAMS_RETRY)
        }
    }
}

/// WatchRefund and WatchRefunds: the calls that hold a stream open.
fn is_watch(path: &str) -> bool {
    matches!(
        path.rsplit('/').next(),
        Some("WatchRefund" | "WatchRefunds")
    ) && path.starts_with("/refunds.v1.RefundService/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_watch_calls_hold_a_stream_place() {
        assert!(is_watch("/refunds.v1.RefundService/WatchRefund"));
        assert!(is_watch("/refunds.v1.RefundService/WatchRefunds"));
        assert!(!is_watch("/refunds.v1.RefundService/GetRefund"));
        assert!(!is_watch("/other.Service/WatchRefunds"));
    }
}
