//! The account stack against a scripted provider: breaker, limit, refusals.
use std::sync::{
    Mutex,
    atomic::{AtomicUsize, Ordering},
};

use async_trait::async_trait;

use super::*;
use crate::{
    domain::{ErrorCode, Money, Observation},
    providers::{Capabilities, Profile, ProviderKind, Rejection},
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

/// A provider that accepts every request as it is.
const FAKE: Profile = Profile {
    kind: ProviderKind::PayMongo,
    capabilities: Capabilities {
        currencies: &["PHP"],
        partial_refunds: true,
        webhooks: false,
    },
    validate: |_| Vec::new(),
    check_refund: |_, _, _| Ok(()),
    resubmit_is_safe: true,
};

#[async_trait]
impl Provider for Fake {
    fn profile(&self) -> &'static Profile {
        &FAKE
    }
    async fn get_payment(&self, _p: &PaymentRef) -> Result<ProviderPayment, ProviderError> {
        self.answer().await?;
        Err(ProviderError::BadResponse("fake has no payments".into()))
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
}

fn limits(max_in_flight: usize, breaker_open: Duration) -> Limits {
    Limits {
        max_in_flight,
        queue_timeout: Duration::from_millis(50),
        breaker_failures: 3,
        breaker_open,
        timeout: Duration::from_secs(10),
    }
}

fn payment() -> PaymentRef {
    PaymentRef {
        payment_id: "pay_1".into(),
        ..PaymentRef::default()
    }
}

/// Three provider faults in a row (the breaker's limit here): each read is unreachable.
async fn three_faults(guard: &Guard, fake: &Fake) {
    fake.set(Behaviour::Unreachable);
    for _ in 0..3 {
        assert!(matches!(
            guard.get_payment(&payment()).await,
            Err(ProviderError::Unreachable(_))
        ));
    }
}

/// Three provider faults in a row open the breaker: further calls are not sent (reads
/// unreachable, submissions NotSent, never Unknown). After the cool-down one probe goes
/// through; its success closes the breaker.
#[tokio::test]
async fn repeated_faults_open_the_breaker_and_a_probe_closes_it() {
    let fake = Fake::new();
    let guard = Guard::new("fake", fake.clone(), limits(8, Duration::from_millis(200)));
    three_faults(&guard, &fake).await;
    assert_eq!(guard.breaker_state(), BreakerState::Open);
    assert_eq!(fake.calls(), 3);
    fake.set(Behaviour::Fine);
    let Err(ProviderError::Unreachable(why)) = guard.get_payment(&payment()).await else {
        panic!("an open breaker refuses reads");
    };
    assert!(why.contains("circuit breaker is open"), "{why}");
    let php = crate::domain::Currency::parse("PHP").unwrap();
    let refund_like = Refund {
        payment: payment(),
        ..crate::domain::sample_refund("fake", Money::new(100, php))
    };
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
    three_faults(&guard, &fake).await;
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
