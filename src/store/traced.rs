//! A span per store call (`store.insert_refund`, `store.get_refund`, ...), around whichever
//! store is configured; used when traces are exported (`[telemetry] otlp_endpoint`), so that a
//! trace shows where a call spent its time. The spans are DEBUG (logs do not show them) and
//! carry what the call is about (`refund_id`, `provider`), never what is stored.
//!
//! Every method of [`RefundStore`] is forwarded here: a method added to the trait is added
//! here too (the compiler asks for it).

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tracing::{Instrument as _, Span, debug_span};

use super::{
    EventScope, InsertOutcome, ListQuery, RefundStore, RequestClaim, RequestKey, RequestResult,
    StoreError, UpdateOutcome,
};
use crate::domain::{Cause, Money, Refund, RefundEvent, RefundId, RefundStatus, ReportedRefund};

/// `inner`, with a span per call.
#[derive(Debug)]
pub struct Traced {
    inner: Arc<dyn RefundStore>,
}

impl Traced {
    pub fn new(inner: Arc<dyn RefundStore>) -> Self {
        Self { inner }
    }
}

/// The span `make` makes, when the call is part of something traced (an RPC, a check, a
/// webhook); none for the background reads (the worker's polling, readiness, metrics), which
/// would each be a trace of one span.
fn within_call(make: impl FnOnce() -> Span) -> Span {
    if Span::current().is_none() {
        Span::none()
    } else {
        make()
    }
}

#[async_trait]
impl RefundStore for Traced {
    async fn claim_request(
        &self,
        key: &RequestKey,
        fingerprint: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<RequestClaim, StoreError> {
        self.inner
            .claim_request(key, fingerprint, now, lease)
            .instrument(within_call(|| debug_span!("store.claim_request")))
            .await
    }

    async fn complete_request(
        &self,
        key: &RequestKey,
        result: &RequestResult,
    ) -> Result<(), StoreError> {
        self.inner
            .complete_request(key, result)
            .instrument(within_call(|| debug_span!("store.complete_request")))
            .await
    }

    async fn release_request(&self, key: &RequestKey) -> Result<(), StoreError> {
        self.inner
            .release_request(key)
            .instrument(within_call(|| debug_span!("store.release_request")))
            .await
    }

    async fn insert_refund(
        &self,
        refund: &Refund,
        key: &RequestKey,
        limit: Money,
        reported: &[ReportedRefund],
        cause: &Cause,
    ) -> Result<InsertOutcome, StoreError> {
        let span = within_call(|| {
            debug_span!(
                "store.insert_refund",
                refund_id = %refund.id,
                provider = %refund.provider,
            )
        });
        self.inner
            .insert_refund(refund, key, limit, reported, cause)
            .instrument(span)
            .await
    }

    async fn get_refund(&self, id: &RefundId) -> Result<Option<Refund>, StoreError> {
        self.inner
            .get_refund(id)
            .instrument(within_call(
                || debug_span!("store.get_refund", refund_id = %id),
            ))
            .await
    }

    async fn find_by_provider_refund_id(
        &self,
        provider: &str,
        provider_refund_id: &str,
    ) -> Result<Option<Refund>, StoreError> {
        self.inner
            .find_by_provider_refund_id(provider, provider_refund_id)
            .instrument(within_call(|| {
                debug_span!("store.find_by_provider_refund_id", provider)
            }))
            .await
    }

    async fn refunds_of_payment(
        &self,
        provider: &str,
        payment_id: &str,
    ) -> Result<Vec<Refund>, StoreError> {
        self.inner
            .refunds_of_payment(provider, payment_id)
            .instrument(within_call(|| {
                debug_span!("store.refunds_of_payment", provider)
            }))
            .await
    }

    async fn list_refunds(&self, query: &ListQuery) -> Result<Vec<Refund>, StoreError> {
        self.inner
            .list_refunds(query)
            .instrument(within_call(|| debug_span!("store.list_refunds")))
            .await
    }

    async fn update_refund(
        &self,
        prev: &Refund,
        next: &Refund,
        cause: &Cause,
    ) -> Result<UpdateOutcome, StoreError> {
        let span = within_call(|| {
            debug_span!(
                "store.update_refund",
                refund_id = %prev.id,
                provider = %prev.provider,
            )
        });
        self.inner
            .update_refund(prev, next, cause)
            .instrument(span)
            .await
    }

    async fn update_refund_completing(
        &self,
        prev: &Refund,
        next: &Refund,
        key: &RequestKey,
        result: &RequestResult,
        cause: &Cause,
    ) -> Result<UpdateOutcome, StoreError> {
        let span = within_call(|| {
            debug_span!(
                "store.update_refund_completing",
                refund_id = %prev.id,
                provider = %prev.provider,
            )
        });
        self.inner
            .update_refund_completing(prev, next, key, result, cause)
            .instrument(span)
            .await
    }

    async fn latest_event(&self, id: &RefundId) -> Result<Option<RefundEvent>, StoreError> {
        self.inner
            .latest_event(id)
            .instrument(within_call(
                || debug_span!("store.latest_event", refund_id = %id),
            ))
            .await
    }

    async fn events_after(
        &self,
        scope: &EventScope,
        after: u64,
        limit: u32,
    ) -> Result<Vec<RefundEvent>, StoreError> {
        self.inner
            .events_after(scope, after, limit)
            .instrument(within_call(|| debug_span!("store.events_after")))
            .await
    }

    async fn last_sequence(&self) -> Result<u64, StoreError> {
        self.inner
            .last_sequence()
            .instrument(within_call(|| debug_span!("store.last_sequence")))
            .await
    }

    async fn held_amount(
        &self,
        provider: &str,
        payment_id: &str,
        currency: crate::domain::Currency,
    ) -> Result<Money, StoreError> {
        self.inner
            .held_amount(provider, payment_id, currency)
            .instrument(within_call(|| debug_span!("store.held_amount", provider)))
            .await
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<Refund>, StoreError> {
        self.inner
            .claim_due(now, limit, lease)
            .instrument(within_call(|| debug_span!("store.claim_due")))
            .await
    }

    async fn count_by_status(&self) -> Result<Vec<(String, RefundStatus, u64)>, StoreError> {
        self.inner
            .count_by_status()
            .instrument(within_call(|| debug_span!("store.count_by_status")))
            .await
    }

    async fn secret(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        self.inner
            .secret(name)
            .instrument(within_call(|| debug_span!("store.secret")))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner
            .ping()
            .instrument(within_call(|| debug_span!("store.ping")))
            .await
    }

    fn shared(&self) -> bool {
        self.inner.shared()
    }

    async fn commit_wakeups(
        &self,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Result<Option<tokio::sync::mpsc::Receiver<()>>, StoreError> {
        self.inner.commit_wakeups(shutdown).await
    }
}
