//! Per-tenant limits, so that one tenant cannot starve the others: calls per second (a token
//! bucket per tenant, `governor`'s GCRA, refilled at `requests_per_second` and holding
//! `burst`), and watch streams open at once (a counter per tenant, given back when the
//! stream ends).
//!
//! The table is swapped whole by a reload. A tenant whose rate did not change keeps its
//! bucket, and every tenant keeps its count of open streams (the streams are still open), so
//! a reload neither grants a fresh burst nor forgets a stream.

use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use arc_swap::ArcSwap;
use governor::{DefaultDirectRateLimiter, Quota, clock::Clock as _};

use crate::domain::TenantId;

/// One tenant's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TenantLimits {
    pub requests_per_second: NonZeroU32,
    pub burst: NonZeroU32,
    /// 0: this tenant may not watch.
    pub watch_streams: u32,
}

/// The limits of every tenant: `default` for a tenant not listed in `tenants`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitPlan {
    pub default: TenantLimits,
    pub tenants: HashMap<TenantId, TenantLimits>,
}

/// Why a call was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Over the call rate: a call may come again after this long.
    Rate(Duration),
    /// As many watch streams open as allowed.
    Streams,
}

/// The limits in force and each tenant's state.
pub struct Limiter {
    table: ArcSwap<Table>,
}

struct Table {
    plan: LimitPlan,
    tenants: HashMap<TenantId, Arc<TenantState>>,
    /// For a tenant the plan does not know (a call authenticated just before a reload
    /// removed its tenant): the default limits, shared.
    unlisted: Arc<TenantState>,
}

struct TenantState {
    limits: TenantLimits,
    rate: Arc<DefaultDirectRateLimiter>,
    streams: Arc<Streams>,
}

/// A tenant's open watch streams and how many it may have.
#[derive(Debug)]
struct Streams {
    open: AtomicU32,
    max: AtomicU32,
}

/// One open watch stream, counted until it (and every clone of it) is dropped.
#[derive(Clone, Debug)]
pub struct StreamPermit {
    _held: Arc<Held>,
}

#[derive(Debug)]
struct Held(Arc<Streams>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl TenantState {
    /// The state for `limits`, keeping what it can of `old`: the bucket when the rate is
    /// the same, and always the count of open streams.
    fn new(limits: TenantLimits, old: Option<&TenantState>) -> Self {
        let rate = match old {
            Some(old)
                if old.limits.requests_per_second == limits.requests_per_second
                    && old.limits.burst == limits.burst =>
            {
                old.rate.clone()
            }
            _ => Arc::new(DefaultDirectRateLimiter::direct(
                Quota::per_second(limits.requests_per_second).allow_burst(limits.burst),
            )),
        };
        let streams = match old {
            Some(old) => old.streams.clone(),
            None => Arc::new(Streams {
                open: AtomicU32::new(0),
                max: AtomicU32::new(0),
            }),
        };
        streams.max.store(limits.watch_streams, Ordering::Release);
        Self {
            limits,
            rate,
            streams,
        }
    }
}

impl Table {
    fn new(plan: LimitPlan, old: Option<&Table>) -> Self {
        let tenants = plan
            .tenants
            .iter()
            .map(|(tenant, limits)| {
                let previous = old.and_then(|t| t.tenants.get(tenant)).map(Arc::as_ref);
                (
                    tenant.clone(),
                    Arc::new(TenantState::new(*limits, previous)),
                )
            })
            .collect();
        let unlisted = Arc::new(TenantState::new(
            plan.default,
            old.map(|t| t.unlisted.as_ref()),
        ));
        Self {
            plan,
            tenants,
            unlisted,
        }
    }
}

impl Limiter {
    pub fn new(plan: LimitPlan) -> Self {
        Self {
            table: ArcSwap::from_pointee(Table::new(plan, None)),
        }
    }

    /// Puts `plan` in force.
    pub fn replace(&self, plan: LimitPlan) {
        let old = self.table.load();
        self.table.store(Arc::new(Table::new(plan, Some(&old))));
    }

    /// The limits in force.
    pub fn plan(&self) -> LimitPlan {
        self.table.load().plan.clone()
    }

    fn state(&self, tenant: &TenantId) -> Arc<TenantState> {
        let table = self.table.load();
        table.tenants.get(tenant).unwrap_or(&table.unlisted).clone()
    }

    /// Takes one call from `tenant`'s bucket.
    pub fn admit_call(&self, tenant: &TenantId) -> Result<(), Refusal> {
        let state = self.state(tenant);
        state
            .rate
            .check()
            .map_err(|not_until| Refusal::Rate(not_until.wait_time_from(state.rate.clock().now())))
    }

    /// Counts one more open watch stream of `tenant`, if it may have one.
    pub fn open_stream(&self, tenant: &TenantId) -> Result<StreamPermit, Refusal> {
        let streams = self.state(tenant).streams.clone();
        let max = streams.max.load(Ordering::Acquire);
        streams
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < max).then_some(open + 1)
            })
            .map(|_| StreamPermit {
                _held: Arc::new(Held(streams)),
            })
            .map_err(|_| Refusal::Streams)
    }
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("plan", &self.table.load().plan)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rps: u32, burst: u32, streams: u32) -> TenantLimits {
        TenantLimits {
            requests_per_second: NonZeroU32::new(rps).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
            watch_streams: streams,
        }
    }

    fn plan(default: TenantLimits, tenants: &[(&str, TenantLimits)]) -> LimitPlan {
        LimitPlan {
            default,
            tenants: tenants
                .iter()
                .map(|(t, l)| (TenantId::new(*t), *l))
                .collect(),
        }
    }

    #[test]
    fn each_tenant_has_its_own_bucket() {
        let limiter = Limiter::new(plan(
            limits(1, 2, 1),
            &[("a", limits(1, 2, 1)), ("b", limits(1, 3, 1))],
        ));
        let (a, b) = (TenantId::new("a"), TenantId::new("b"));
        assert!(limiter.admit_call(&a).is_ok() && limiter.admit_call(&a).is_ok());
        let Err(Refusal::Rate(wait)) = limiter.admit_call(&a) else {
            panic!("a's burst of 2 is spent")
        };
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        for _ in 0..3 {
            assert!(limiter.admit_call(&b).is_ok(), "b has its own bucket");
        }
    }

    #[test]
    fn streams_are_counted_until_dropped_and_kept_across_a_reload() {
        let limiter = Limiter::new(plan(limits(10, 10, 1), &[("a", limits(10, 10, 2))]));
        let a = TenantId::new("a");
        let first = limiter.open_stream(&a).unwrap();
        let second = limiter.open_stream(&a).unwrap();
        assert_eq!(limiter.open_stream(&a).unwrap_err(), Refusal::Streams);
        drop(first);
        let third = limiter.open_stream(&a).unwrap();
        // Down to one: the two open ones are over it until one ends.
        limiter.replace(plan(limits(10, 10, 1), &[("a", limits(10, 10, 1))]));
        assert_eq!(limiter.open_stream(&a).unwrap_err(), Refusal::Streams);
        drop(third);
        assert_eq!(limiter.open_stream(&a).unwrap_err(), Refusal::Streams);
        drop(second);
        let _again = limiter.open_stream(&a).unwrap();
    }

    #[test]
    fn a_reload_keeps_a_spent_bucket_unless_the_rate_changes() {
        let limiter = Limiter::new(plan(limits(1, 1, 1), &[("a", limits(1, 1, 1))]));
        let a = TenantId::new("a");
        limiter.admit_call(&a).unwrap();
        limiter.replace(plan(limits(1, 1, 1), &[("a", limits(1, 1, 1))]));
        assert!(limiter.admit_call(&a).is_err(), "same rate: same bucket");
        limiter.replace(plan(limits(1, 1, 1), &[("a", limits(5, 5, 1))]));
        assert!(
            limiter.admit_call(&a).is_ok(),
            "a new rate starts a new bucket"
        );
        // Unlisted tenants get the default.
        let z = TenantId::new("z");
        limiter.admit_call(&z).unwrap();
        assert!(limiter.admit_call(&z).is_err());
    }
}
