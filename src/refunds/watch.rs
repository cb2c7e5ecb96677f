//! WatchRefund and WatchRefunds.
//!
//! Each stream subscribes to the bus *before* it reads the store, so nothing falls between the
//! stored past and the live present; it remembers the last sequence it handled and drops
//! anything at or below it, so nothing arrives twice.
//!
//! A stream is a plain `Stream` polled by the connection that serves it: no task and no
//! buffer of its own per subscriber, so thousands of subscribers cost little memory and an
//! event wakes each of them once. A slow reader simply stops being polled (HTTP/2 flow
//! control): it falls behind on the bus, gets `Lagged`, and then catches up from the store.
//! Writers and other readers never wait for it.

use std::{pin::Pin, sync::Arc};

use futures::{Stream, StreamExt as _};
use tokio::sync::broadcast::{self, error::RecvError};

use super::Refunds;
use crate::{
    auth::Caller,
    domain::{ApiError, ErrorCode, RefundEvent, RefundStatus, reason},
    metrics::SubscriberGauge,
    store::EventScope,
};

/// What each stream message carries; an error ends the stream.
pub type WatchItem = Result<Arc<RefundEvent>, ApiError>;

/// A watch stream.
pub type WatchStream = Pin<Box<dyn Stream<Item = WatchItem> + Send>>;

/// How many stored events a catch-up reads at a time.
const CATCH_UP_BATCH: u32 = 500;

/// WatchRefunds filters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedFilter {
    /// Replay stored events after this sequence first; `None`: start live.
    pub after_sequence: Option<u64>,
    pub provider: Option<String>,
    /// Empty: every status.
    pub statuses: Vec<RefundStatus>,
}

/// WatchRefund: the refund's current state, then each change; ends after a final status.
pub(super) async fn refund(
    refunds: &Refunds,
    caller: &Caller,
    id: &str,
) -> Result<WatchStream, ApiError> {
    let refund = refunds.load_own(caller, id).await?;
    let mut bus = refunds.inner.bus.subscribe();
    let snapshot = refunds
        .inner
        .store
        .latest_event(&refund.id)
        .await?
        .ok_or_else(|| ApiError::internal(format!("refund {} has no events", refund.id)))?;
    let this = refunds.clone();
    let id = refund.id;
    Ok(Box::pin(async_stream::stream! {
        let _gauge = SubscriberGauge::new("WatchRefund");
        let mut last = snapshot.sequence;
        let finished = snapshot.refund.status.is_final();
        yield Ok(Arc::new(snapshot));
        if finished {
            return;
        }
        let scope = EventScope::Refund(id.clone());
        loop {
            match next_on_bus(&this, &mut bus).await {
                Next::Event(event) => {
                    if event.refund.id != id || event.sequence <= last {
                        continue;
                    }
                    last = event.sequence;
                    let finished = event.refund.status.is_final();
                    yield Ok(event);
                    if finished {
                        return;
                    }
                }
                Next::Lagged => {
                    // Read what was missed from the store, in order, up to a final status.
                    let mut missed = std::pin::pin!(stored_after(&this, scope.clone(), last));
                    while let Some(event) = missed.next().await {
                        // An error is yielded and ends the stream.
                        let event = event?;
                        last = event.sequence;
                        let finished = event.refund.status.is_final();
                        yield Ok(Arc::new(event));
                        if finished {
                            return;
                        }
                    }
                }
                Next::End => return,
            }
        }
    }))
}

/// WatchRefunds: the caller's whole feed, optionally replayed from a sequence.
pub(super) async fn feed(
    refunds: &Refunds,
    caller: &Caller,
    filter: FeedFilter,
) -> Result<WatchStream, ApiError> {
    if let Some(provider) = &filter.provider {
        refunds.account(caller, provider, "provider")?;
    }
    let mut bus = refunds.inner.bus.subscribe();
    let start = match filter.after_sequence {
        Some(after) => {
            check_not_ahead(refunds, after).await?;
            after
        }
        None => refunds.inner.bus.head(),
    };
    let this = refunds.clone();
    let caller = caller.clone();
    Ok(Box::pin(async_stream::stream! {
        let _gauge = SubscriberGauge::new("WatchRefunds");
        let scope = EventScope::Tenant(caller.tenant.clone());
        let wanted = |event: &RefundEvent| {
            event.refund.tenant == caller.tenant
                && filter
                    .provider
                    .as_ref()
                    .is_none_or(|p| *p == event.refund.provider)
                && (filter.statuses.is_empty() || filter.statuses.contains(&event.refund.status))
        };
        let mut last = start;
        // Replay first when asked, then catch up again after every lag.
        let mut catching_up = filter.after_sequence.is_some();
        loop {
            if catching_up {
                let mut missed = std::pin::pin!(stored_after(&this, scope.clone(), last));
                while let Some(event) = missed.next().await {
                    // An error is yielded and ends the stream.
                    let event = event?;
                    last = event.sequence;
                    if wanted(&event) {
                        yield Ok(Arc::new(event));
                    }
                }
                catching_up = false;
            }
            match next_on_bus(&this, &mut bus).await {
                Next::Event(event) => {
                    if event.sequence <= last {
                        continue;
                    }
                    last = event.sequence;
                    if wanted(&event) {
                        yield Ok(event);
                    }
                }
                Next::Lagged => {
                    tracing::debug!("feed subscriber fell behind; catching up from the store");
                    catching_up = true;
                }
                Next::End => return,
            }
        }
    }))
}

/// A feed resumed after a sequence the store has not reached would wait silently for events
/// that may never come (a sequence from another store, a typo): `OUT_OF_RANGE` instead, with
/// the newest stored sequence in `head_sequence`. Checked after subscribing, so an event
/// stored meanwhile is not missed.
async fn check_not_ahead(refunds: &Refunds, after: u64) -> Result<(), ApiError> {
    let head = refunds
        .inner
        .store
        .last_sequence()
        .await?
        .max(refunds.inner.bus.head());
    if after <= head {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::OutOfRange,
        reason::SEQUENCE_OUT_OF_RANGE,
        format!(
            "after_sequence {after} is above the newest stored sequence {head}; resume from a \
             sequence the gateway has sent"
        ),
    )
    .with("head_sequence", head.to_string()))
}

/// The stored events of `scope` after `after`, in order, read `CATCH_UP_BATCH` at a time.
fn stored_after(
    refunds: &Refunds,
    scope: EventScope,
    after: u64,
) -> impl Stream<Item = Result<RefundEvent, ApiError>> + Send + 'static {
    let store = refunds.inner.store.clone();
    async_stream::stream! {
        let mut last = after;
        loop {
            // An error is yielded and ends the stream.
            let batch = store.events_after(&scope, last, CATCH_UP_BATCH).await?;
            let more = batch.len() == CATCH_UP_BATCH as usize;
            for event in batch {
                last = event.sequence;
                yield Ok(event);
            }
            if !more {
                return;
            }
        }
    }
}

/// The next event on the bus, or the end (shutdown, bus gone).
async fn next_on_bus(refunds: &Refunds, bus: &mut broadcast::Receiver<Arc<RefundEvent>>) -> Next {
    tokio::select! {
        () = refunds.inner.shutdown.cancelled() => Next::End,
        received = bus.recv() => match received {
            Ok(event) => Next::Event(event),
            Err(RecvError::Lagged(_)) => Next::Lagged,
            Err(RecvError::Closed) => Next::End,
        },
    }
}

enum Next {
    Event(Arc<RefundEvent>),
    Lagged,
    End,
}
