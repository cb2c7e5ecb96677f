//! The layers of an account's stack that are the gateway's own: measure (span, metrics,
//! outcome log), refuse (a call not taken is "not sent", one cut off by the deadline has
//! no answer), and the adapter at the bottom. The stack itself is put together in `isolation.rs`.

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use tower::{BoxError, Service, ServiceExt as _};
use tower_resilience_circuitbreaker::CircuitBreakerError;
use tracing::Instrument as _;

use super::{
    Refusal,
    call::{Call, Operation, Reply},
};
use crate::providers::{Provider, SubmitOutcome};

/// Outermost layer: the span, the metrics and the log line of a submission's outcome, around
/// everything below (refusals included), so every adapter is measured the same way.
#[derive(Clone)]
pub(super) struct Measure<S> {
    pub(super) account: Arc<str>,
    pub(super) inner: S,
}

impl<S> Service<Call> for Measure<S>
where
    S: Service<Call, Response = Reply, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Reply;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Reply, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: Call) -> Self::Future {
        let account = self.account.clone();
        let span = call.span(&account);
        let operation = call.operation();
        let refund_id = match &call {
            Call::Submit(refund) => Some(refund.id.to_string()),
            _ => None,
        };
        let started = Instant::now();
        let answer = self.inner.call(call).instrument(span);
        Box::pin(async move {
            let Ok(reply) = answer.await;
            crate::metrics::provider_call(&account, operation.as_str(), reply.outcome(), started);
            if let (Reply::Submit(outcome), Some(refund_id)) = (&reply, refund_id) {
                log_submission(&account, &refund_id, outcome);
            }
            Ok(reply)
        })
    }
}

fn log_submission(account: &str, refund_id: &str, outcome: &SubmitOutcome) {
    match outcome {
        SubmitOutcome::Accepted(obs) => {
            tracing::info!(refund_id, provider = %account, status = %obs.status, "provider accepted the refund");
        }
        SubmitOutcome::Rejected(r) => {
            tracing::info!(refund_id, provider = %account, reason = r.reason, provider_code = %r.provider_code, "provider refused the refund");
        }
        SubmitOutcome::NotSent(why) => {
            tracing::warn!(refund_id, provider = %account, why, "refund never reached the provider");
        }
        SubmitOutcome::Unknown(why) => {
            tracing::warn!(refund_id, provider = %account, why, "refund outcome unknown; it will be reconciled");
        }
    }
}

/// Turns a call the layers below will not take (breaker open, no free slot within the queue
/// timeout) into the answer "not sent", and counts it; and a call the deadline cut off into
/// "no answer" (unknown for a submission).
#[derive(Clone)]
pub(super) struct Refuse<S> {
    pub(super) account: Arc<str>,
    pub(super) queue_timeout: Duration,
    pub(super) inner: S,
}

impl<S> Service<Call> for Refuse<S>
where
    S: Service<Call, Response = Reply, Error = CircuitBreakerError<BoxError>>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    type Response = Reply;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Reply, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The wait for readiness is bounded in `call`, so a saturated account fails fast.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call) -> Self::Future {
        let mut inner = self.inner.clone();
        let account = self.account.clone();
        let queue_timeout = self.queue_timeout;
        Box::pin(async move {
            let operation = call.operation();
            let ready = tokio::time::timeout(queue_timeout, inner.ready()).await;
            let refusal = match ready {
                Err(_elapsed) => Refusal::Saturated,
                Ok(Err(CircuitBreakerError::OpenCircuit)) => Refusal::BreakerOpen,
                Ok(Err(CircuitBreakerError::Inner(err))) => return Ok(cut_off(operation, &err)),
                Ok(Ok(ready)) => match ready.call(call).await {
                    Ok(reply) => return Ok(reply),
                    Err(CircuitBreakerError::OpenCircuit) => Refusal::BreakerOpen,
                    Err(CircuitBreakerError::Inner(err)) => return Ok(cut_off(operation, &err)),
                },
            };
            metrics::counter!(
                "refund_gateway_provider_calls_refused_total",
                "provider" => account.to_string(),
                "reason" => refusal.as_str()
            )
            .increment(1);
            tracing::warn!(provider = %account, reason = refusal.as_str(), "provider call refused before sending");
            Ok(operation.unanswered(false, refusal.describe(&account)))
        })
    }
}

/// The answer to a call the deadline cut off (the only error below the breaker): it may have
/// reached the provider.
fn cut_off(operation: Operation, err: &BoxError) -> Reply {
    operation.unanswered(
        true,
        format!("no answer from the provider within the attempt window ({err})"),
    )
}

/// The innermost service: the adapter itself.
#[derive(Clone)]
pub(super) struct Adapter(pub(super) Arc<dyn Provider>);

impl Service<Call> for Adapter {
    type Response = Reply;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Reply, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call) -> Self::Future {
        let provider = self.0.clone();
        Box::pin(async move {
            Ok(match call {
                Call::GetPayment(payment) => Reply::Payment(provider.get_payment(&payment).await),
                Call::Submit(refund) => Reply::Submit(provider.submit_refund(&refund).await),
                Call::Fetch(refund) => Reply::Fetch(provider.fetch_refund(&refund).await),
                Call::ByProviderId(id) => Reply::Record(provider.refund_by_provider_id(&id).await),
            })
        })
    }
}
