//! The provider reads that webhook deliveries cause, on a budget of their own.
//!
//! A D24 notification is unsigned (`{"refund_id": N}`): anyone who can reach the webhook port
//! can send one, and each makes the gateway read refund N from D24. Those reads go through the
//! account's client like any call, so without a bound a flood of notifications would fill the
//! account's concurrency slots and CreateRefund's submissions would be refused ("saturated",
//! withdrawn). So, per account and apart from submissions:
//!
//! - at most [`Budget::slots`] webhook reads in flight (a quarter of the account's
//!   `max_in_flight`, at least one), so submissions always keep the rest;
//! - at most [`READS_PER_SECOND`] webhook reads started per second (bursts up to the same);
//! - one read per provider refund id at a time: a notification arriving while a read of the
//!   same refund is in flight waits for that read and shares its answer.
//!
//! A delivery beyond the budget is answered "deliver again later" (503; the provider retries)
//! and causes no provider call.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Instant,
};

use futures::{
    FutureExt as _,
    future::{BoxFuture, Shared},
};
use tokio::sync::Semaphore;

use crate::{
    domain::Refund,
    providers::{ProviderAccount, ProviderError, ProviderRefundRecord, RefundLookup},
};

/// Webhook reads an account may start per second (and its burst).
pub const READS_PER_SECOND: f64 = 20.0;

/// A read the budget did not allow: nothing was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct OverBudget;

/// What a shared read answers.
#[derive(Clone, Debug)]
pub(super) enum Answer {
    Fetched(Result<RefundLookup, ProviderError>),
    Record(Result<Option<ProviderRefundRecord>, ProviderError>),
}

/// Which read: of a refund the gateway knows, or by the provider's id alone.
pub(super) enum Read<'a> {
    Fetch(&'a Refund),
    ByProviderId,
}

type InFlight = Shared<BoxFuture<'static, Answer>>;

/// One account's budget.
#[derive(Debug)]
struct Budget {
    slots: Arc<Semaphore>,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Budget {
    fn new(account: &ProviderAccount) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(Self::slots(account))),
            bucket: Mutex::new(Bucket {
                tokens: READS_PER_SECOND,
                at: Instant::now(),
            }),
        }
    }

    /// Webhook reads of `account` in flight at once.
    fn slots(account: &ProviderAccount) -> usize {
        (account.guard.limits().max_in_flight / 4).max(1)
    }

    /// Takes one token, if the rate allows.
    fn take_token(&self) -> bool {
        let mut bucket = self.bucket.lock().expect("budget lock");
        let now = Instant::now();
        let refill = now.duration_since(bucket.at).as_secs_f64() * READS_PER_SECOND;
        bucket.tokens = (bucket.tokens + refill).min(READS_PER_SECOND);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The budgets and the reads in flight, for every account.
#[derive(Debug, Default)]
pub(in crate::refunds) struct Reads {
    budgets: Mutex<HashMap<String, Arc<Budget>>>,
    in_flight: Arc<Mutex<HashMap<(String, String), InFlight>>>,
}

impl Reads {
    /// Reads provider refund `provider_refund_id` of `account` as `read` says, sharing a read
    /// of the same refund already in flight, within the account's budget.
    pub(super) async fn read(
        &self,
        account: &Arc<ProviderAccount>,
        provider_refund_id: &str,
        read: Read<'_>,
    ) -> Result<Answer, OverBudget> {
        let kind = match read {
            Read::Fetch(_) => "fetch",
            Read::ByProviderId => "by_id",
        };
        let key = (account.name.clone(), format!("{kind}:{provider_refund_id}"));
        let shared = {
            let mut in_flight = self.in_flight.lock().expect("reads lock");
            match in_flight.get(&key) {
                Some(shared) => shared.clone(),
                None => {
                    let budget = self.budget(account);
                    let Ok(permit) = budget.slots.clone().try_acquire_owned() else {
                        return Err(OverBudget);
                    };
                    if !budget.take_token() {
                        return Err(OverBudget);
                    }
                    let account = account.clone();
                    let id = provider_refund_id.to_owned();
                    let refund = match read {
                        Read::Fetch(refund) => Some(refund.clone()),
                        Read::ByProviderId => None,
                    };
                    let map = self.in_flight.clone();
                    let done_key = key.clone();
                    // A task of its own: the read ends, and leaves the map, even when every
                    // delivery waiting for it has gone.
                    let task = tokio::spawn(tracing::Instrument::in_current_span(async move {
                        let answer = match refund {
                            Some(refund) => Answer::Fetched(account.fetch_refund(&refund).await),
                            None => Answer::Record(account.refund_by_provider_id(&id).await),
                        };
                        drop(permit);
                        map.lock().expect("reads lock").remove(&done_key);
                        answer
                    }));
                    let shared = async move {
                        task.await.unwrap_or_else(|_| {
                            Answer::Fetched(Err(ProviderError::Unreachable(
                                "the read was cut off".to_owned(),
                            )))
                        })
                    }
                    .boxed()
                    .shared();
                    in_flight.insert(key, shared.clone());
                    shared
                }
            }
        };
        Ok(shared.await)
    }

    fn budget(&self, account: &ProviderAccount) -> Arc<Budget> {
        self.budgets
            .lock()
            .expect("budgets lock")
            .entry(account.name.clone())
            .or_insert_with(|| Arc::new(Budget::new(account)))
            .clone()
    }
}
