//! The worker: follows every refund that is not final (or whose submission outcome is not
//! known) to the provider's truth, on the durable schedule kept in the store
//! (`next_check_at`), so it survives restarts and does not depend on webhooks arriving.
//!
//! Each pass claims the refunds that are due with a lease (so no other worker takes them
//! meanwhile) and checks them a few at a time per provider account, the accounts side by
//! side (a pass still ends when its slowest check does: at most the account's timeout, and
//! far less once its circuit breaker is open). `Refunds::check` asks the provider; the
//! service's writer decides what each answer means and when to look next (exponential backoff
//! with jitter, capped).

use std::{collections::BTreeMap, time::Duration};

use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::{domain::Refund, refunds::Refunds};

/// How many refunds of one provider account are checked at the same time.
const PARALLEL_CHECKS: usize = 8;

/// When the worker looks for due refunds (`[worker]` `tick_ms`, `batch`, `lease_ms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// The longest wait between two looks (a refund that becomes due sooner wakes it).
    pub tick: Duration,
    /// How many due refunds one look leases.
    pub batch: u32,
    /// How long a lease lasts.
    pub lease: Duration,
}

/// Runs until `shutdown`; the checks in progress are finished first.
pub async fn run(refunds: Refunds, schedule: Schedule, shutdown: CancellationToken) {
    let wake = refunds.worker_wakeup();
    loop {
        run_once(&refunds, schedule.batch, schedule.lease, &shutdown).await;
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(schedule.tick) => {}
            () = wake.notified() => {}
        }
    }
}

/// Checks everything due now, batch by batch. Returns how many refunds were checked.
pub async fn run_once(
    refunds: &Refunds,
    batch: u32,
    lease: Duration,
    shutdown: &CancellationToken,
) -> usize {
    let mut checked = 0;
    loop {
        if shutdown.is_cancelled() {
            return checked;
        }
        let now = chrono::Utc::now();
        let due = match refunds.store().claim_due(now, batch, lease).await {
            Ok(due) => due,
            Err(err) => {
                tracing::warn!(error = %err, "worker could not read due refunds; retrying next tick");
                return checked;
            }
        };
        if due.is_empty() {
            return checked;
        }
        checked += due.len();
        // Each provider account's checks run side by side with the others', each with its
        // own parallelism: a slow provider's checks never hold the slots another provider's
        // checks need (its own calls are bounded by its isolation stack).
        let mut by_account: BTreeMap<String, Vec<Refund>> = BTreeMap::new();
        for refund in due {
            by_account
                .entry(refund.provider.clone())
                .or_default()
                .push(refund);
        }
        let groups = by_account
            .into_values()
            .map(|group| check_group(refunds, group));
        futures::future::join_all(groups).await;
    }
}

/// Checks one provider account's due refunds, `PARALLEL_CHECKS` at a time.
async fn check_group(refunds: &Refunds, group: Vec<Refund>) {
    futures::stream::iter(group)
        .for_each_concurrent(PARALLEL_CHECKS, |refund| async move {
            let id = refund.id.clone();
            // A trace of its own per check, named by the refund.
            let span = tracing::debug_span!(
                parent: None,
                "worker.check",
                refund_id = %id,
                provider = %refund.provider,
            );
            let outcome = refunds.check(refund).instrument(span).await;
            tracing::debug!(refund_id = %id, ?outcome, "checked refund");
        })
        .await;
}
