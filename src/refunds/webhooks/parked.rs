//! Notifications that race the submission's answer.
//!
//! D24 notifies a refund's creation at once, often before the gateway has the answer to its
//! submission, so before it knows D24's id for the refund. Such a notification names an id no
//! refund carries yet, and the refund it names is still being sent (submission `sending`,
//! within its attempt window). Guessing then would be wrong (D24 omits the amount while a
//! refund is PENDING) and dropping it loses the news. So the notification is parked: a task
//! waits until the refunds it may be for are no longer being sent (their answer recorded, or
//! their attempt window over), then handles the notification again, as if D24 had just
//! delivered it. At most [`MAX_PARKED`] notifications wait at once, one per provider refund id.
//! Every delivery parked (or not, beyond that) is answered "deliver again later" all the same:
//! a parked notification lives only in this process, so the provider's next delivery is what
//! makes it durable; when the parked one was handled first, that delivery is a harmless
//! repeat.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use tokio::{sync::broadcast::error::RecvError, time::Instant};

use super::{Outcome, WebhookFailure, refetch};
use crate::{
    domain::{Refund, RefundId, RefundStatus, Submission},
    providers::ProviderAccount,
    refunds::Refunds,
};

/// Notifications waiting at once, over all accounts.
pub const MAX_PARKED: usize = 256;

/// How often a parked notification looks at its refunds when no event wakes it.
const RECHECK: Duration = Duration::from_millis(100);

/// How many more times a parked notification is handled when the provider or the store
/// cannot be asked at first.
const REPLAY_TRIES: usize = 5;

/// Beyond the account's attempt window, how long a refund still counts as being sent.
const MARGIN: Duration = Duration::from_secs(1);

/// The provider refund ids with a notification parked.
#[derive(Debug, Default)]
pub(in crate::refunds) struct Parked {
    waiting: Mutex<HashSet<(String, String)>>,
}

/// How long a submission of `account` can be in flight.
fn window(account: &ProviderAccount) -> chrono::Duration {
    chrono::Duration::from_std(account.guard.limits().deadline() + MARGIN)
        .unwrap_or(chrono::Duration::MAX)
}

/// Whether `refund` of `account` is being sent now (its answer may still come).
pub(super) fn being_sent(refund: &Refund, account: &ProviderAccount, now: DateTime<Utc>) -> bool {
    refund.provider == account.name
        && refund.status == RefundStatus::Pending
        && refund.submission == Submission::Sending
        && refund.provider_refund_id.is_none()
        && refund.sent_at.unwrap_or(refund.updated_at) + window(account) > now
}

/// Parks the notification of `provider_refund_id`, which may be one of `candidates` (unless it
/// is parked already, or too many are). `false`: not parked.
pub(super) fn park(
    refunds: &Refunds,
    account: Arc<ProviderAccount>,
    provider_refund_id: String,
    candidates: Vec<RefundId>,
) -> bool {
    let key = (account.name.clone(), provider_refund_id.clone());
    {
        let mut waiting = refunds.inner.parked.waiting.lock().expect("parked lock");
        if waiting.contains(&key) {
            // Parked already: the task handles it once, which covers this delivery too.
            return false;
        }
        if waiting.len() >= MAX_PARKED {
            return false;
        }
        waiting.insert(key.clone());
    }
    tracing::debug!(
        provider = %account.name,
        provider_refund_id,
        "notification names a refund whose submission is still being sent; handled once its answer is recorded"
    );
    let refunds = refunds.clone();
    tokio::spawn(async move {
        wait_until_sent(&refunds, &account, &candidates).await;
        // The delivery was answered 200 already: a read over budget waits and tries again.
        let mut result = refetch(&refunds, &account, &provider_refund_id, false).await;
        for _ in 0..REPLAY_TRIES {
            if !matches!(result, Err(WebhookFailure::Retry(_))) {
                break;
            }
            tokio::time::sleep(RECHECK * 5).await;
            result = refetch(&refunds, &account, &provider_refund_id, false).await;
        }
        refunds
            .inner
            .parked
            .waiting
            .lock()
            .expect("parked lock")
            .remove(&key);
        match result {
            Ok(Outcome::Known | Outcome::Unknown | Outcome::Park(_)) => {}
            Err(err) => tracing::warn!(
                provider = %account.name,
                provider_refund_id,
                error = %err,
                "a parked notification could not be handled; the provider's next delivery or the worker's check will"
            ),
        }
    });
    true
}

/// Waits until none of `candidates` is being sent any more (or their windows are over).
async fn wait_until_sent(refunds: &Refunds, account: &ProviderAccount, candidates: &[RefundId]) {
    let give_up = Instant::now() + window(account).to_std().unwrap_or(Duration::MAX);
    let mut bus = refunds.inner.bus.subscribe();
    loop {
        let mut sending = false;
        for id in candidates {
            match refunds.inner.store.get_refund(id).await {
                Ok(Some(refund)) => sending |= being_sent(&refund, account, Utc::now()),
                Ok(None) => {}
                // The store cannot tell now: keep waiting until the window ends.
                Err(_) => sending = true,
            }
        }
        if !sending || Instant::now() >= give_up || refunds.inner.shutdown.is_cancelled() {
            return;
        }
        // Woken by a change of one of them, or looks again shortly (an outcome that changes
        // no status publishes no event).
        let _ = tokio::time::timeout(RECHECK, async {
            loop {
                match bus.recv().await {
                    Ok(event) if candidates.contains(&event.refund.id) => return,
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => return,
                    Err(RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        })
        .await;
    }
}
