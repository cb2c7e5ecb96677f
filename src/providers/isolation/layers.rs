//! The steps of an account's client that are the gateway's own: measure (span, metrics,
//! outcome log) and refuse (a call not taken is "not sent", one cut off by the deadline has
//! no answer), around the tower stack; and the adapter at the bottom of that stack. The
//! client itself is put together in `isolation.rs`.

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
use crate::{
    metrics::ProviderSeries,
    providers::{Provider, SubmitOutcome},
};

/// Outermost step: the span, the metrics and the log line of a submission's outcome, around
/// everything below (refusals included), so every adapter is measured the same way.
pub(super) async fn measure<F>(
    account: &str,
    series: &ProviderSeries,
    call: Call,
    below: impl FnOnce(Call) -> F,
) -> Reply
where
    F: Future<Output = Reply>,
{
    let span = call.span(account);
    let operation = call.operation();
    let refund_id = match &call {
        Call::Submit(refund) => Some(refund.id.to_string()),
        _ => None,
    };
    let started = Instant::now();
    let reply = below(call).instrument(span).await;
    series.record(operation.as_str(), reply.outcome(), started);
    if let (Reply::Submit(outcome), Some(refund_id)) = (&reply, refund_id) {
        log_submission(account, &refund_id, outcome);
    }
    reply
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
/// "no answer" (unknown for a submission). `stack` is the account's own copy of the stack
/// below (breaker, limit, deadline, adapter), cloned for this call.
pub(super) async fn refuse<S>(
    account: &str,
    queue_timeout: Duration,
    mut stack: S,
    call: Call,
) -> Reply
where
    S: Service<Call, Response = Reply, Error = CircuitBreakerError<BoxError>>,
{
    let operation = call.operation();
    // The wait for readiness is bounded, so a saturated account fails fast.
    let ready = tokio::time::timeout(queue_timeout, stack.ready()).await;
    let refusal = match ready {
        Err(_elapsed) => Refusal::Saturated,
        Ok(Err(CircuitBreakerError::OpenCircuit)) => Refusal::BreakerOpen,
        Ok(Err(CircuitBreakerError::Inner(err))) => return cut_off(operation, &err),
        Ok(Ok(ready)) => match ready.call(call).await {
            Ok(reply) => return reply,
            Err(CircuitBreakerError::OpenCircuit) => Refusal::BreakerOpen,
            Err(CircuitBreakerError::Inner(err)) => return cut_off(operation, &err),
        },
    };
    metrics::counter!(
        "refund_gateway_provider_calls_refused_total",
        "provider" => account.to_owned(),
        "reason" => refusal.as_str()
    )
    .increment(1);
    tracing::warn!(provider = %account, reason = refusal.as_str(), "provider call refused before sending");
    operation.unanswered(false, refusal.describe(account))
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
