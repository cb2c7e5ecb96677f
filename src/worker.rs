//! The worker: follows every refund that is not final (or whose submission outcome is not
//! known) to the provider's truth, on the durable schedule kept in the store
//! (`next_check_at`), so it survives restarts and does not depend on webhooks arriving.
//!
//! Each pass claims the refunds that are due with a lease (so no other worker takes them
//! meanwhile) and checks them a few at a time; `Refunds::check` decides what each answer
//! means and when to look next (exponential backoff with jitter, capped).

use std::time::Duration;

use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;

use crate::{config::WorkerConfig, refunds::Refunds};

/// How many refunds are checked at the same time.
const PARALLEL_CHECKS: usize = 8;

/// Runs until `shutdown`; the checks in progress are finished first.
pub async fn run(refunds: Refunds, cfg: WorkerConfig, shutdown: CancellationToken) {
    let wake = refunds.worker_wakeup();
    let tick = Duration::from_millis(cfg.tick_ms);
    let lease = Duration::from_millis(cfg.lease_ms);
    loop {
        run_once(&refunds, cfg.batch, lease, &shutdown).await;
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(tick) => {}
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
        futures::stream::iter(due)
            .for_each_concurrent(PARALLEL_CHECKS, |refund| async move {
                let id = refund.id.clone();
                let outcome = refunds.check(refund).await;
                tracing::debug!(refund_id = %id, ?outcome, "checked refund");
            })
            .await;
    }
}
