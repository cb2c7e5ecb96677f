//! Isolation between provider accounts: every call to a provider goes through its account's
//! own tower stack, so a slow or failing provider cannot take the gateway's capacity from
//! the others (nor from the read RPCs, which never call a provider).
//!
//! The stack, outermost first:
//!
//! ```text
//! circuit breaker      open after `breaker_failures` provider faults in a row: calls fail at
//!                      once (nothing is sent) for `breaker_open_ms`, then one probe call
//!                      decides: success closes it, a fault opens it again
//! concurrency limit    at most `max_in_flight` calls of this account at once; a call waits
//!                      at most `queue_timeout_ms` for a slot, then fails at once
//! the adapter          the provider's own timeouts (`timeout_ms`) bound each HTTP request
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

use std::{
    convert::Infallible,
    fmt,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use futures::future::BoxFuture;
use tokio::sync::Semaphore;
use tower::{Service, ServiceBuilder, ServiceExt as _, limit::GlobalConcurrencyLimitLayer};
use tower_resilience_circuitbreaker::{
    CircuitBreaker, CircuitBreakerError, CircuitBreakerHandle, CircuitBreakerLayer, CircuitState,
    FnClassifier,
};

use super::{
    Provider, ProviderError, ProviderPayment, ProviderRefundRecord, RefundLookup, SubmitOutcome,
};
use crate::domain::{PaymentRef, Refund};

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
}

/// One call to a provider, owned so it can travel through the stack.
#[derive(Clone, Debug)]
enum Call {
    GetPayment(PaymentRef),
    Submit(Box<Refund>),
    Fetch(Box<Refund>),
    ByProviderId(String),
}

/// Its answer.
#[derive(Debug)]
enum Reply {
    Payment(Result<ProviderPayment, ProviderError>),
    Submit(SubmitOutcome),
    Fetch(Result<RefundLookup, ProviderError>),
    Record(Result<Option<ProviderRefundRecord>, ProviderError>),
}

impl Reply {
    /// Whether this answer counts as a provider fault for the breaker (see the module docs).
    fn is_fault(&self) -> bool {
        fn read<T>(result: &Result<T, ProviderError>) -> bool {
            matches!(result, Err(ProviderError::Unreachable(_)))
        }
        match self {
            Self::Payment(r) => read(r),
            Self::Fetch(r) => read(r),
            Self::Record(r) => read(r),
            Self::Submit(outcome) => matches!(
                outcome,
                SubmitOutcome::Unknown(_) | SubmitOutcome::NotSent(_)
            ),
        }
    }
}

/// The innermost service: the adapter itself.
#[derive(Clone)]
struct Adapter(Arc<dyn Provider>);

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

type Classifier = FnClassifier<fn(&Result<Reply, Infallible>) -> bool>;

fn classify(result: &Result<Reply, Infallible>) -> bool {
    match result {
        Ok(reply) => reply.is_fault(),
        Err(never) => match *never {},
    }
}

type Stack = CircuitBreaker<tower::limit::ConcurrencyLimit<Adapter>, Classifier>;

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

    fn describe(self, account: &str) -> String {
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

/// One account's stack. Cheap to share; every clone of the inner service shares the breaker
/// and the semaphore.
pub struct Guard {
    account: String,
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
        let max = limits.max_in_flight.max(1);
        let slots = Arc::new(Semaphore::new(max));
        let name = account.to_owned();
        let (breaker_layer, breaker): (CircuitBreakerLayer<Classifier>, _) =
            CircuitBreakerLayer::builder()
                .name(account)
                .consecutive_failures(limits.breaker_failures.max(1))
                .wait_duration_in_open(limits.breaker_open)
                .permitted_calls_in_half_open(1)
                .failure_classifier_type(FnClassifier::new(
                    classify as fn(&Result<Reply, Infallible>) -> bool,
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
                .expect("the breaker settings are checked with the configuration");
        let stack = ServiceBuilder::new()
            // Outermost: fail at once while the provider is failing; count its faults.
            .layer(breaker_layer)
            // Bounded calls in flight for this account; the wait for a slot is bounded in
            // `run` (a readiness timeout), so a saturated account fails fast.
            .layer(GlobalConcurrencyLimitLayer::with_semaphore(slots.clone()))
            .service(Adapter(provider));
        Self {
            account: account.to_owned(),
            limits,
            stack,
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

    async fn run(&self, call: Call) -> Result<Reply, Refusal> {
        let mut stack = self.stack.clone();
        let ready = tokio::time::timeout(self.limits.queue_timeout, stack.ready()).await;
        let refusal = match ready {
            Err(_elapsed) => Refusal::Saturated,
            Ok(Err(CircuitBreakerError::OpenCircuit)) => Refusal::BreakerOpen,
            Ok(Err(CircuitBreakerError::Inner(never))) => match never {},
            Ok(Ok(ready)) => match ready.call(call).await {
                Ok(reply) => return Ok(reply),
                Err(CircuitBreakerError::OpenCircuit) => Refusal::BreakerOpen,
                Err(CircuitBreakerError::Inner(never)) => match never {},
            },
        };
        metrics::counter!(
            "refund_gateway_provider_calls_refused_total",
            "provider" => self.account.clone(),
            "reason" => refusal.as_str()
        )
        .increment(1);
        tracing::warn!(provider = %self.account, reason = refusal.as_str(), "provider call refused before sending");
        Err(refusal)
    }

    pub async fn get_payment(
        &self,
        payment: &PaymentRef,
    ) -> Result<ProviderPayment, ProviderError> {
        match self.run(Call::GetPayment(payment.clone())).await {
            Ok(Reply::Payment(result)) => result,
            Ok(other) => Err(mixed_up(&other)),
            Err(refusal) => Err(ProviderError::Unreachable(refusal.describe(&self.account))),
        }
    }

    pub async fn submit_refund(&self, refund: &Refund) -> SubmitOutcome {
        match self.run(Call::Submit(Box::new(refund.clone()))).await {
            Ok(Reply::Submit(outcome)) => outcome,
            // Cannot happen; if it did, the submission went out and its outcome is unknown.
            Ok(other) => SubmitOutcome::Unknown(mixed_up(&other).to_string()),
            // Refused before sending: nothing can exist at the provider.
            Err(refusal) => SubmitOutcome::NotSent(refusal.describe(&self.account)),
        }
    }

    pub async fn fetch_refund(&self, refund: &Refund) -> Result<RefundLookup, ProviderError> {
        match self.run(Call::Fetch(Box::new(refund.clone()))).await {
            Ok(Reply::Fetch(result)) => result,
            Ok(other) => Err(mixed_up(&other)),
            Err(refusal) => Err(ProviderError::Unreachable(refusal.describe(&self.account))),
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
            Ok(Reply::Record(result)) => result,
            Ok(other) => Err(mixed_up(&other)),
            Err(refusal) => Err(ProviderError::Unreachable(refusal.describe(&self.account))),
        }
    }
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
mod tests {
    use std::sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    };

    use async_trait::async_trait;

    use super::*;
    use crate::{
        domain::{ApiError, ErrorCode, FieldViolation, Money, Observation},
        providers::{Capabilities, ProviderKind, RefundDraft, Rejection},
    };

    /// What the fake provider answers next.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Behaviour {
        Fine,
        Unreachable,
        Rejects,
        RateLimited,
        Slow(Duration),
    }

    #[derive(Debug)]
    struct Fake {
        behaviour: Mutex<Behaviour>,
        calls: AtomicUsize,
    }

    impl Fake {
        fn new() -> Arc<Self> {
            Arc::new(Self {
                behaviour: Mutex::new(Behaviour::Fine),
                calls: AtomicUsize::new(0),
            })
        }

        fn set(&self, behaviour: Behaviour) {
            *self.behaviour.lock().unwrap() = behaviour;
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }

        async fn answer(&self) -> Result<(), ProviderError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let behaviour = *self.behaviour.lock().unwrap();
            match behaviour {
                Behaviour::Fine => Ok(()),
                Behaviour::Unreachable => Err(ProviderError::Unreachable("down".into())),
                Behaviour::Rejects => Err(ProviderError::Rejected(Rejection::new(
                    ErrorCode::NotFound,
                    "PAYMENT_NOT_FOUND",
                    "no such payment",
                ))),
                Behaviour::RateLimited => Err(ProviderError::Rejected(Rejection {
                    retry_after: Some(Duration::from_secs(3)),
                    ..Rejection::new(ErrorCode::Unavailable, "PROVIDER_RATE_LIMITED", "slow down")
                })),
                Behaviour::Slow(d) => {
                    tokio::time::sleep(d).await;
                    Ok(())
                }
            }
        }
    }

    #[async_trait]
    impl Provider for Fake {
        fn kind(&self) -> ProviderKind {
            ProviderKind::PayMongo
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                currencies: &["PHP"],
                partial_refunds: true,
                webhooks: false,
            }
        }
        fn validate(&self, _draft: &RefundDraft) -> Vec<FieldViolation> {
            Vec::new()
        }
        async fn get_payment(&self, _p: &PaymentRef) -> Result<ProviderPayment, ProviderError> {
            self.answer().await?;
            Err(ProviderError::BadResponse("fake has no payments".into()))
        }
        fn check_refund(
            &self,
            _d: &RefundDraft,
            _p: &ProviderPayment,
            _a: Money,
        ) -> Result<(), ApiError> {
            Ok(())
        }
        async fn submit_refund(&self, _refund: &Refund) -> SubmitOutcome {
            match self.answer().await {
                Ok(()) => SubmitOutcome::Accepted(Observation {
                    status: crate::domain::RefundStatus::Processing,
                    provider_refund_id: Some("x".into()),
                    provider_status: None,
                    failure: None,
                    amount: None,
                    payment_id: None,
                }),
                Err(ProviderError::Rejected(r)) => SubmitOutcome::Rejected(r),
                Err(e) => SubmitOutcome::Unknown(e.to_string()),
            }
        }
        async fn fetch_refund(&self, _refund: &Refund) -> Result<RefundLookup, ProviderError> {
            self.answer().await.map(|()| RefundLookup::Absent)
        }
        fn resubmit_is_safe(&self) -> bool {
            true
        }
    }

    fn limits(max_in_flight: usize, breaker_open: Duration) -> Limits {
        Limits {
            max_in_flight,
            queue_timeout: Duration::from_millis(50),
            breaker_failures: 3,
            breaker_open,
        }
    }

    fn payment() -> PaymentRef {
        PaymentRef {
            payment_id: "pay_1".into(),
            ..PaymentRef::default()
        }
    }

    /// Three provider faults in a row open the breaker: further calls are not sent (reads
    /// unreachable, submissions NotSent, never Unknown). After the cool-down one probe goes
    /// through; its success closes the breaker.
    #[tokio::test]
    async fn repeated_faults_open_the_breaker_and_a_probe_closes_it() {
        let fake = Fake::new();
        let guard = Guard::new("fake", fake.clone(), limits(8, Duration::from_millis(200)));
        fake.set(Behaviour::Unreachable);
        for _ in 0..3 {
            assert!(matches!(
                guard.get_payment(&payment()).await,
                Err(ProviderError::Unreachable(_))
            ));
        }
        assert_eq!(guard.breaker_state(), BreakerState::Open);
        assert_eq!(fake.calls(), 3);
        fake.set(Behaviour::Fine);
        let Err(ProviderError::Unreachable(why)) = guard.get_payment(&payment()).await else {
            panic!("an open breaker refuses reads");
        };
        assert!(why.contains("circuit breaker is open"), "{why}");
        let refund_like = crate::domain::Refund::new_pending(
            crate::domain::TenantId::new("t"),
            "r",
            "fake",
            payment(),
            Money::new(100, crate::domain::Currency::parse("PHP").unwrap()),
            chrono::Utc::now(),
        );
        assert!(matches!(
            guard.submit_refund(&refund_like).await,
            SubmitOutcome::NotSent(_)
        ));
        assert_eq!(fake.calls(), 3, "nothing was sent while open");

        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(matches!(
            guard.fetch_refund(&refund_like).await,
            Ok(RefundLookup::Absent)
        ));
        assert_eq!(guard.breaker_state(), BreakerState::Closed);
        assert_eq!(fake.calls(), 4);
    }

    /// A failed probe opens the breaker again at once.
    #[tokio::test]
    async fn a_failed_probe_opens_it_again() {
        let fake = Fake::new();
        let guard = Guard::new("fake", fake.clone(), limits(8, Duration::from_millis(100)));
        fake.set(Behaviour::Unreachable);
        for _ in 0..3 {
            let _ = guard.get_payment(&payment()).await;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
        let _ = guard.get_payment(&payment()).await;
        assert_eq!(fake.calls(), 4, "one probe");
        assert_eq!(guard.breaker_state(), BreakerState::Open);
        let _ = guard.get_payment(&payment()).await;
        assert_eq!(fake.calls(), 4, "open again: not sent");
    }

    /// A provider's business answers (a refusal, a "not now") are not faults: any number of
    /// them leave the breaker closed.
    #[tokio::test]
    async fn refusals_and_rate_limits_are_not_faults() {
        let fake = Fake::new();
        let guard = Guard::new("fake", fake.clone(), limits(8, Duration::from_secs(60)));
        for behaviour in [Behaviour::Rejects, Behaviour::RateLimited] {
            fake.set(behaviour);
            for _ in 0..10 {
                assert!(matches!(
                    guard.get_payment(&payment()).await,
                    Err(ProviderError::Rejected(_))
                ));
            }
            assert_eq!(guard.breaker_state(), BreakerState::Closed, "{behaviour:?}");
        }
        assert_eq!(fake.calls(), 20);
    }

    /// With every slot busy, a call waits at most the queue timeout and then fails without
    /// being sent; the calls in flight are not disturbed, and a saturated account does not
    /// count as a faulty provider.
    #[tokio::test]
    async fn a_full_account_fails_fast_without_sending() {
        let fake = Fake::new();
        let guard = Arc::new(Guard::new(
            "fake",
            fake.clone(),
            limits(2, Duration::from_secs(60)),
        ));
        fake.set(Behaviour::Slow(Duration::from_millis(400)));
        let busy: Vec<_> = (0..2)
            .map(|_| {
                let guard = guard.clone();
                tokio::spawn(async move { guard.get_payment(&payment()).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(guard.in_flight(), 2);
        let started = std::time::Instant::now();
        let Err(ProviderError::Unreachable(why)) = guard.get_payment(&payment()).await else {
            panic!("a full account refuses the call");
        };
        assert!(why.contains("too many calls in flight"), "{why}");
        assert!(started.elapsed() < Duration::from_millis(300));
        assert_eq!(fake.calls(), 2, "the refused call was not sent");
        for call in busy {
            assert!(matches!(
                call.await.unwrap(),
                Err(ProviderError::BadResponse(_))
            ));
        }
        assert_eq!(guard.in_flight(), 0);
        assert_eq!(guard.breaker_state(), BreakerState::Closed);
    }
}
