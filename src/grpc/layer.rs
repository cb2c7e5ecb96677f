//! One tower layer around `RefundService` that gives every call its `rpc` span and its RPC
//! metrics (`grpc_requests_total{method,code}`, `grpc_request_duration_seconds{method}`).
//!
//! It sits inside the authentication interceptor, so it sees the calls that reach the
//! handlers, with the caller already attached: the span carries `method` and `tenant`, and
//! the handlers fill in `request_id`, `provider` and `refund_id` (see [`SpanFields`]). The
//! code is read from the response: an error answer carries `grpc-status` in its headers
//! (trailers-only), a successful one does not.
//!
//! When traces are exported, a caller's W3C `traceparent` (and `tracestate`) continues into
//! the span, and the span gets the call's code (`rpc.grpc.status_code`).

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use tower::{Layer, Service};
use tracing::{Instrument as _, Span, field::Empty};

use crate::{auth::Caller, metrics::RpcSeries, pb};

/// The methods of `refunds.v1.RefundService`, with their metric series; the names are the
/// metric labels and span fields.
static METHODS: [RpcSeries; 12] = [
    RpcSeries::new("CreateRefund"),
    RpcSeries::new("GetRefund"),
    RpcSeries::new("ListRefunds"),
    RpcSeries::new("SyncRefund"),
    RpcSeries::new("WatchRefund"),
    RpcSeries::new("WatchRefunds"),
    RpcSeries::new("GetPayment"),
    RpcSeries::new("ListProviders"),
    RpcSeries::new("ListRefundEvents"),
    RpcSeries::new("ResolveRefund"),
    RpcSeries::new("ApproveRefund"),
    RpcSeries::new("CancelRefund"),
];

/// Wraps a service in [`Rpc`].
#[derive(Clone, Copy, Debug, Default)]
pub struct RpcLayer;

impl<S> Layer<S> for RpcLayer {
    type Service = Rpc<S>;

    fn layer(&self, inner: S) -> Rpc<S> {
        Rpc { inner }
    }
}

/// A service whose calls each run in an `rpc` span and are counted and timed.
#[derive(Clone, Debug)]
pub struct Rpc<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Rpc<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let Some(series) = method_of(req.uri().path()) else {
            // Not one of ours (an unknown method): tonic answers UNIMPLEMENTED, untracked.
            return Box::pin(self.inner.call(req));
        };
        // The tenant is known now (the interceptor ran): give it to the span as it is made,
        // so the subscriber formats the fields once instead of again on a later record.
        let tenant = req
            .extensions()
            .get::<Caller>()
            .map(|caller| caller.tenant.as_str());
        let span = tracing::info_span!(
            "rpc",
            method = series.method(),
            tenant,
            request_id = Empty,
            provider = Empty,
            refund_id = Empty,
            "rpc.grpc.status_code" = Empty,
            "otel.status_code" = Empty,
        );
        // A caller's W3C `traceparent` (gRPC metadata, or a gRPC-Web header) makes this span
        // part of the caller's trace.
        crate::telemetry::continue_trace(&span, req.headers());
        let traced = crate::telemetry::exporting().then(|| span.clone());
        let call = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        Box::pin(
            async move {
                let started = Instant::now();
                let result = call.await;
                // A call that fails before its body answers with the status in the headers;
                // read just the code (no message or details to decode).
                let code = match &result {
                    Ok(response) => response
                        .headers()
                        .get("grpc-status")
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| value.parse::<i32>().ok())
                        .map_or(tonic::Code::Ok, tonic::Code::from_i32),
                    Err(_) => tonic::Code::Internal,
                };
                series.record(code, started.elapsed());
                if let Some(span) = traced {
                    record_code(&span, code);
                }
                result
            }
            .instrument(span),
        )
    }
}

/// The call's code on its exported span; the codes that say the gateway failed (not the
/// caller's request) mark the span as an error.
fn record_code(span: &Span, code: tonic::Code) {
    span.record("rpc.grpc.status_code", code as i64);
    if matches!(
        code,
        tonic::Code::Unknown
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Unimplemented
            | tonic::Code::Internal
            | tonic::Code::Unavailable
            | tonic::Code::DataLoss
    ) {
        span.record("otel.status_code", "ERROR");
    }
}

/// The series of `CreateRefund` out of `/refunds.v1.RefundService/CreateRefund`.
fn method_of(path: &str) -> Option<&'static RpcSeries> {
    let name = path.rsplit('/').next()?;
    METHODS.iter().find(|m| m.method() == name)
}

/// The span fields a request fills in: what the call is about, recorded before it is
/// converted, so a refused request still shows them.
pub trait SpanFields {
    fn record(&self, span: &Span);
}

impl SpanFields for pb::CreateRefundRequest {
    fn record(&self, span: &Span) {
        span.record("request_id", self.request_id.as_str());
        span.record("provider", self.provider.as_str());
    }
}

/// Requests about one refund, named by their `id`: the same span field for each.
macro_rules! about_one_refund {
    ($($request:ty),*) => {
        $(impl SpanFields for $request {
            fn record(&self, span: &Span) {
                span.record("refund_id", self.id.as_str());
            }
        })*
    };
}

about_one_refund!(
    pb::GetRefundRequest,
    pb::SyncRefundRequest,
    pb::WatchRefundRequest,
    pb::ListRefundEventsRequest,
    pb::ResolveRefundRequest,
    pb::ApproveRefundRequest,
    pb::CancelRefundRequest
);

impl SpanFields for pb::GetPaymentRequest {
    fn record(&self, span: &Span) {
        span.record("provider", self.provider.as_str());
    }
}

impl SpanFields for pb::ListRefundsRequest {
    fn record(&self, _: &Span) {}
}

impl SpanFields for pb::WatchRefundsRequest {
    fn record(&self, _: &Span) {}
}

impl SpanFields for pb::ListProvidersRequest {
    fn record(&self, _: &Span) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every RPC of the service gets its span and metrics: the list names them all.
    #[test]
    fn every_method_of_the_service_is_listed() {
        use prost::Message as _;
        let set = prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).unwrap();
        let declared: Vec<String> = set
            .file
            .iter()
            .flat_map(|f| &f.service)
            .filter(|s| s.name() == "RefundService")
            .flat_map(|s| &s.method)
            .map(|m| m.name().to_owned())
            .collect();
        assert!(declared.len() >= 12, "{declared:?}");
        for name in &declared {
            assert!(
                method_of(&format!("/x/{name}")).is_some(),
                "{name} is not in METHODS"
            );
        }
    }

    #[test]
    fn methods_are_named_from_the_path() {
        let name = |path| method_of(path).map(RpcSeries::method);
        assert_eq!(
            name("/refunds.v1.RefundService/CreateRefund"),
            Some("CreateRefund")
        );
        assert_eq!(
            name("/refunds.v1.RefundService/ListProviders"),
            Some("ListProviders")
        );
        assert_eq!(name("/refunds.v1.RefundService/Nope"), None);
    }
}
