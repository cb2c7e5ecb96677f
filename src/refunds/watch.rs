//! WatchRefund and WatchRefunds.
//!
//! Each stream is a task that subscribes to the bus *before* it reads the store, so nothing
//! falls between the stored past and the live present; it remembers the last sequence it
//! handled and drops anything at or below it, so nothing arrives twice. It sends into a
//! bounded channel: a slow reader fills its own channel, falls behind on the bus, gets
//! `Lagged`, and then catches up from the store. Writers and other readers never wait for it.

use std::sync::Arc;

use tokio::sync::{broadcast::error::RecvError, mpsc};

use super::Refunds;
use crate::{
    auth::Caller,
    domain::{ApiError, RefundEvent, RefundId, RefundStatus},
    metrics::SubscriberGauge,
    store::EventScope,
};

/// What each stream message carries; an error ends the stream.
pub type WatchItem = Result<Arc<RefundEvent>, ApiError>;

/// How many messages wait for a slow reader before its task stops reading the bus.
const STREAM_BUFFER: usize = 32;

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

impl Refunds {
    /// WatchRefund: the refund's current state, then each change; ends after a final status.
    pub async fn watch_refund(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<mpsc::Receiver<WatchItem>, ApiError> {
        let refund = self.load_own(caller, id).await?;
        let bus = self.inner.bus.subscribe();
        let snapshot = self
            .inner
            .store
            .latest_event(&refund.id)
            .await?
            .ok_or_else(|| ApiError::internal(format!("refund {} has no events", refund.id)))?;
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let this = self.clone();
        tokio::spawn(async move { this.run_refund_watch(refund.id, snapshot, bus, tx).await });
        Ok(rx)
    }

    async fn run_refund_watch(
        self,
        id: RefundId,
        snapshot: RefundEvent,
        mut bus: tokio::sync::broadcast::Receiver<Arc<RefundEvent>>,
        tx: mpsc::Sender<WatchItem>,
    ) {
        let _gauge = SubscriberGauge::new("WatchRefund");
        let mut last = snapshot.sequence;
        let finished = snapshot.refund.status.is_final();
        if !self.send(&tx, Ok(Arc::new(snapshot))).await || finished {
            return;
        }
        loop {
            let received = tokio::select! {
                () = self.inner.shutdown.cancelled() => return,
                () = tx.closed() => return,
                received = bus.recv() => received,
            };
            match received {
                Ok(event) => {
                    if event.refund.id != id || event.sequence <= last {
                        continue;
                    }
                    last = event.sequence;
                    let finished = event.refund.status.is_final();
                    if !self.send(&tx, Ok(event)).await || finished {
                        return;
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    let scope = EventScope::Refund(id.clone());
                    match self.catch_up(&scope, &mut last, &tx, |_| true, true).await {
                        CatchUp::Continue => {}
                        CatchUp::Stop => return,
                    }
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// WatchRefunds: the caller's whole feed, optionally replayed from a sequence.
    pub async fn watch_refunds(
        &self,
        caller: &Caller,
        filter: FeedFilter,
    ) -> Result<mpsc::Receiver<WatchItem>, ApiError> {
        if let Some(provider) = &filter.provider {
            self.account(caller, provider, "provider")?;
        }
        let bus = self.inner.bus.subscribe();
        let start = filter
            .after_sequence
            .unwrap_or_else(|| self.inner.bus.head());
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let this = self.clone();
        let caller = caller.clone();
        tokio::spawn(async move { this.run_feed(caller, filter, start, bus, tx).await });
        Ok(rx)
    }

    async fn run_feed(
        self,
        caller: Caller,
        filter: FeedFilter,
        start: u64,
        mut bus: tokio::sync::broadcast::Receiver<Arc<RefundEvent>>,
        tx: mpsc::Sender<WatchItem>,
    ) {
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
        if filter.after_sequence.is_some() {
            match self.catch_up(&scope, &mut last, &tx, wanted, false).await {
                CatchUp::Continue => {}
                CatchUp::Stop => return,
            }
        }
        loop {
            let received = tokio::select! {
                () = self.inner.shutdown.cancelled() => return,
                () = tx.closed() => return,
                received = bus.recv() => received,
            };
            match received {
                Ok(event) => {
                    if event.sequence <= last {
                        continue;
                    }
                    last = event.sequence;
                    if wanted(&event) && !self.send(&tx, Ok(event)).await {
                        return;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(
                        missed,
                        "feed subscriber fell behind; catching up from the store"
                    );
                    match self.catch_up(&scope, &mut last, &tx, wanted, false).await {
                        CatchUp::Continue => {}
                        CatchUp::Stop => return,
                    }
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// Sends every stored event in `scope` after `last` that `wanted` keeps, advancing `last`.
    /// With `end_on_final`, stops after sending a final status.
    async fn catch_up(
        &self,
        scope: &EventScope,
        last: &mut u64,
        tx: &mpsc::Sender<WatchItem>,
        wanted: impl Fn(&RefundEvent) -> bool,
        end_on_final: bool,
    ) -> CatchUp {
        loop {
            let batch = match self
                .inner
                .store
                .events_after(scope, *last, CATCH_UP_BATCH)
                .await
            {
                Ok(batch) => batch,
                Err(err) => {
                    let _ = self.send(tx, Err(err.into())).await;
                    return CatchUp::Stop;
                }
            };
            let more = batch.len() == CATCH_UP_BATCH as usize;
            for event in batch {
                *last = event.sequence;
                if !wanted(&event) {
                    continue;
                }
                let finished = end_on_final && event.refund.status.is_final();
                if !self.send(tx, Ok(Arc::new(event))).await || finished {
                    return CatchUp::Stop;
                }
            }
            if !more {
                return CatchUp::Continue;
            }
        }
    }

    /// Sends one message; `false` when the reader is gone or the gateway is shutting down.
    async fn send(&self, tx: &mpsc::Sender<WatchItem>, item: WatchItem) -> bool {
        tokio::select! {
            sent = tx.send(item) => sent.is_ok(),
            () = self.inner.shutdown.cancelled() => false,
        }
    }
}

enum CatchUp {
    Continue,
    Stop,
}
