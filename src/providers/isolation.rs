//! One client per provider account: every call to a provider goes through its account's own
//! tower stack, which applies the tracing span, the metrics, the circuit breaker, the
//! concurrency limit and the deadline once, so a slow or failing provider cannot take the
//! gateway's capacity from the others (nor from the read RPCs, which never call a provider).
//!
//! The client, outermost first (the tower part built in [`Guard::new`], the first two steps
//! run around it in [`Guard::run`]):
//!
//! ```text
//! measure              one span per call (`provider.get_payment`, `provider.submit_refund`,
//!                      `provider.fetch_refund`, `provider.refund_by_provider_id`), the
//!                      `refund_gateway_provider_requests_total` / `_duration_seconds`
//!                      metrics, and the log line of a submission's outcome
//! refuse               turns a call the layers below would not take into an answer that says
//!                      nothing was sent, and counts it (`..._calls_refused_total`)
//! circuit breaker      open after `breaker_failures` provider faults in a row: calls fail at
//!                      once (nothing is sent) for `breaker_open_ms`, then one probe call
//!                      decides: success closes it, a fault opens it again
//! concurrency limit    at most `max_in_flight` calls of this account at once; a call waits
//!                      at most `queue_timeout_ms` for a slot, then fails at once
//! deadline             the whole call ends after twice `timeout_ms` (at least a second): the
//!                      window the refunds service gives one attempt
//! the adapter          the provider's own HTTP client bounds each request by `timeout_ms`
//! ```
//!
//! What a provider fault is (what the breaker counts): the provider could not be reached or
//! answered a 5xx or timed out (`ProviderError::Unreachable`; a submission whose outcome is
//! `Unknown`, or `NotSent` because the connection was refused). A provider's business answer
//! is not a fault: a refusal (400, 404, 401 ...), a "not now" (429, or 503 with
//! `Retry-After`), an answer the gateway could not read. Those are successes for the breaker.
//!
//! What a call refused by the stack means: nothing was sent. A read fails as
//! `ProviderError::Unreachable` (UNAVAILABLE to a caller); a submission is
//! `SubmitOutcome::NotSent`, never `Unknown`, so CreateRefund withdraws the refund and
//! answers UNAVAILABLE, and reconciliation simply looks again later.
//!
//! The breaker is `tower-resilience-circuitbreaker` (consecutive-failure model), the limit
//! is tower's `GlobalConcurrencyLimitLayer` over a semaphore the account keeps, so the number
//! of calls in flight can be read for `/metrics`.

mod call;
mod layers;

use std::{fmt, sync::Arc, time::Duration};

use tokio::sync::Semaphore;
use tower::{
    BoxError, ServiceBuilder, limit::GlobalConcurrencyLimitLayer, timeout::TimeoutLayer,
    util::BoxCloneSyncService,
};
use tower_resilience_circuitbreaker::{
    CircuitBreakerError, CircuitBreakerHandle, CircuitBreakerLayer, CircuitState, FnClassifier,
};

use self::{
    call::{Call, Reply},
    layers::{Adapter, measure, refuse},
};
use super::{
    Provider, ProviderError, ProviderPayment, ProviderRefundRecord, RefundLookup, SubmitOutcome,
};
use crate::{
    domain::{PaymentRef, Refund},
    metrics::ProviderSeries,
};

/// The per-account settings (`[providers.NAME]` keys of the same names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Calls of this account in flight at once.
    pub max_in_flight: usize,
    /// How long a call waits for a free slot before it fails (nothing sent).
    pub queue_timeout: Duration,
    /// Provider faults in a row that open the breaker.
    pub breaker_failures: usize,
    /// How long the breaker stays open before it lets one probe call through.
    pub breaker_open: Duration,
    /// The adapter's per-request timeout (`timeout_ms`); the stack's deadline derives from it.
    pub timeout: Duration,
}

impl Limits {
    /// How long one whole call may take: twice the request timeout, at least a second (the
    /// attempt window the refunds service counts on).
    pub fn deadline(&self) -> Duration {
        (self.timeout * 2).max(Duration::from_secs(1))
    }
}

/// The tower part of the stack (breaker, limit, deadline, adapter) as one cloneable service.
type Stack = BoxCloneSyncService<Call, Reply, CircuitBreakerError<BoxError>>;
type Classifier = FnClassifier<fn(&Result<Reply, BoxError>) -> bool>;

/// A fault: see the module docs. A call cut off by the deadline is one.
fn classify(result: &Result<Reply, BoxError>) -> bool {
    match result {
        Ok(reply) => reply.is_fault(),
        Err(_cut_off) => true,
    }
}

/// Why the stack refused a call without sending it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The breaker is open: the provider failed repeatedly just now.
    BreakerOpen,
    /// Every slot stayed busy for the whole queue timeout.
    Saturated,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BreakerOpen => "breaker_open",
            Self::Saturated => "saturated",
        }
    }

    pub(super) fn describe(self, account: &str) -> String {
        match self {
            Self::BreakerOpen => format!(
                "provider account {account} failed repeatedly just now; its circuit breaker is \
                 open, so the gateway did not call it"
            ),
            Self::Saturated => format!(
                "provider account {account} has too many calls in flight; the gateway did not \
                 call it"
            ),
        }
    }
}

/// The state of an account's breaker, for `/metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    HalfOpen,
    Open,
}

impl BreakerState {
    pub const ALL: [BreakerState; 3] = [Self::Closed, Self::HalfOpen, Self::Open];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::HalfOpen => "half_open",
            Self::Open => "open",
        }
    }
}

/// One account's client. Cheap to share; every clone of the stack shares the breaker and the
/// semaphore.
pub struct Guard {
    account: String,
    series: ProviderSeries,
    limits: Limits,
    stack: Stack,
    breaker: CircuitBreakerHandle<Classifier>,
    slots: Arc<Semaphore>,
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("account", &self.account)
            .field("limits", &self.limits)
            .field("breaker", &self.breaker_state())
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

impl Guard {
    /// The stack for `provider`, used by account `account`.
    pub fn new(account: &str, provider: Arc<dyn Provider>, limits: Limits) -> Self {
        let slots = Arc::new(Semaphore::new(limits.max_in_flight.max(1)));
        let (breaker_layer, breaker) = breaker(account, limits);
        // Around it, in `run`: measure (outermost: the span, the metrics and the outcome log
        // see every answer), then refuse (a call the stack will not take ends as "not sent").
        let stack = ServiceBuilder::new()
            // Fail at once while the provider is failing; count its faults.
            .layer(breaker_layer)
            // Bounded calls in flight for this account (the wait is bounded by `Refuse`).
            .layer(GlobalConcurrencyLimitLayer::with_semaphore(slots.clone()))
            // No call outlives the attempt window.
            .layer(TimeoutLayer::new(limits.deadline()))
            .service(Adapter(provider));
        Self {
            account: account.to_owned(),
            series: ProviderSeries::new(account),
            limits,
            stack: BoxCloneSyncService::new(stack),
            breaker,
            slots,
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The breaker's state (an open breaker shows open until its first call after the
    /// cool-down turns it half-open).
    pub fn breaker_state(&self) -> BreakerState {
        match self.breaker.state() {
            CircuitState::Closed => BreakerState::Closed,
            CircuitState::HalfOpen => BreakerState::HalfOpen,
            CircuitState::Open => BreakerState::Open,
        }
    }

    /// Calls of this account in flight now.
    pub fn in_flight(&self) -> usize {
        self.limits
            .max_in_flight
            .max(1)
            .saturating_sub(self.slots.available_permits())
    }

    /// One call through measure, refuse and the stack. The stack is cloned once per call (its
    /// clones share the breaker and the semaphore); measure and refuse are plain steps, so a
    /// call costs one clone and no boxed future of the gateway's own.
    async fn run(&self, call: Call) -> Reply {
        let (account, queue_timeout) = (self.account.as_str(), self.limits.queue_timeout);
        measure(account, &self.series, call, |call| {
            refuse(account, queue_timeout, self.stack.clone(), call)
        })
        .await
    }

    pub async fn get_payment(
        &self,
        payment: &PaymentRef,
    ) -> Result<ProviderPayment, ProviderError> {
        match self.run(Call::GetPayment(payment.clone())).await {
            Reply::Payment(result) => result,
            other => Err(mixed_up(&other)),
        }
    }

    pub async fn submit_refund(&self, refund: &Refund) -> SubmitOutcome {
        match self.run(Call::Submit(Box::new(refund.clone()))).await {
            Reply::Submit(outcome) => outcome,
            // Cannot happen; if it did, the submission went out and its outcome is unknown.
            other => SubmitOutcome::Unknown(mixed_up(&other).to_string()),
        }
    }

    pub async fn fetch_refund(&self, refund: &Refund) -> Result<RefundLookup, ProviderError> {
        match self.run(Call::Fetch(Box::new(refund.clone()))).await {
            Reply::Fetch(result) => result,
            other => Err(mixed_up(&other)),
        }
    }

    pub async fn refund_by_provider_id(
        &self,
        provider_refund_id: &str,
    ) -> Result<Option<ProviderRefundRecord>, ProviderError> {
        match self
            .run(Call::ByProviderId(provider_refund_id.to_owned()))
            .await
        {
            Reply::Record(result) => result,
            other => Err(mixed_up(&other)),
        }
    }
}

/// The breaker layer of account `account`, and a handle to read its state.
fn breaker(
    account: &str,
    limits: Limits,
) -> (
    CircuitBreakerLayer<Classifier>,
    CircuitBreakerHandle<Classifier>,
) {
    let name = account.to_owned();
    CircuitBreakerLayer::builder()
        .name(account)
        .consecutive_failures(limits.breaker_failures.max(1))
        .wait_duration_in_open(limits.breaker_open)
        .permitted_calls_in_half_open(1)
        .failure_classifier_type(FnClassifier::new(
            classify as fn(&Result<Reply, BoxError>) -> bool,
        ))
        .on_state_transition(move |from, to| {
            let to_name = state_name(to);
            if to == CircuitState::Open {
                tracing::warn!(provider = %name, from = state_name(from), to = to_name, "provider circuit breaker opened: calls fail at once for a while");
            } else {
                tracing::info!(provider = %name, from = state_name(from), to = to_name, "provider circuit breaker changed state");
            }
            metrics::counter!(
                "refund_gateway_provider_breaker_transitions_total",
                "provider" => name.clone(),
                "to" => to_name
            )
            .increment(1);
        })
        .build_with_handle()
        .expect("the breaker settings are checked with the configuration")
}

fn state_name(state: CircuitState) -> &'static str {
    match state {
        CircuitState::Closed => BreakerState::Closed.as_str(),
        CircuitState::HalfOpen => BreakerState::HalfOpen.as_str(),
        CircuitState::Open => BreakerState::Open.as_str(),
    }
}

/// The adapter service answers each call with its own kind of reply; this is for the case
/// that cannot happen, without a panic.
fn mixed_up(reply: &Reply) -> ProviderError {
    tracing::error!(
        ?reply,
        "the provider stack answered a call with another call's reply"
    );
    ProviderError::BadResponse("internal: the provider stack mixed up its replies".to_owned())
}

#[cfg(test)]
mod tests;
