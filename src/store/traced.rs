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
use crate::domain::{
    Cause, Currency, Money, Refund, RefundEvent, RefundId, RefundStatus, ReportedRefund,
};

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

/// `impl RefundStore for Traced`: the `untraced` methods as they are written, then each listed
/// method forwarding its arguments to `inner` inside the span after `=>` (made only
/// `within_call`).
macro_rules! traced_store {
    (
        untraced { $($rest:tt)* }
        $( $method:ident($($arg:ident: $ty:ty),*) -> $out:ty => $span:expr; )*
    ) => {
        #[async_trait]
        impl RefundStore for Traced {
            $($rest)*
            $(
                async fn $method(&self, $($arg: $ty),*) -> Result<$out, StoreError> {
                    self.inner.$method($($arg),*).instrument(within_call(|| $span)).await
                }
            )*
        }
    };
}

traced_store! {
    untraced {
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

    claim_request(key: &RequestKey, fingerprint: &str, now: DateTime<Utc>, lease: Duration)
        -> RequestClaim => debug_span!("store.claim_request");
    complete_request(key: &RequestKey, result: &RequestResult)
        -> () => debug_span!("store.complete_request");
    release_request(key: &RequestKey) -> () => debug_span!("store.release_request");
    insert_refund(
        refund: &Refund, key: &RequestKey, limit: Money, reported: &[ReportedRefund], cause: &Cause
    ) -> InsertOutcome
        => debug_span!("store.insert_refund", refund_id = %refund.id, provider = %refund.provider);
    get_refund(id: &RefundId)
        -> Option<Refund> => debug_span!("store.get_refund", refund_id = %id);
    find_by_provider_refund_id(provider: &str, provider_refund_id: &str)
        -> Option<Refund> => debug_span!("store.find_by_provider_refund_id", provider);
    refunds_of_payment(provider: &str, payment_id: &str)
        -> Vec<Refund> => debug_span!("store.refunds_of_payment", provider);
    list_refunds(query: &ListQuery) -> Vec<Refund> => debug_span!("store.list_refunds");
    update_refund(prev: &Refund, next: &Refund, cause: &Cause) -> UpdateOutcome
        => debug_span!("store.update_refund", refund_id = %prev.id, provider = %prev.provider);
    update_refund_completing(
        prev: &Refund, next: &Refund, key: &RequestKey, result: &RequestResult, cause: &Cause
    ) -> UpdateOutcome => debug_span!(
        "store.update_refund_completing", refund_id = %prev.id, provider = %prev.provider
    );
    latest_event(id: &RefundId)
        -> Option<RefundEvent> => debug_span!("store.latest_event", refund_id = %id);
    events_after(scope: &EventScope, after: u64, limit: u32)
        -> Vec<RefundEvent> => debug_span!("store.events_after");
    last_sequence() -> u64 => debug_span!("store.last_sequence");
    held_amount(provider: &str, payment_id: &str, currency: Currency)
        -> Money => debug_span!("store.held_amount", provider);
    claim_due(now: DateTime<Utc>, limit: u32, lease: Duration)
        -> Vec<Refund> => debug_span!("store.claim_due");
    count_by_status() -> Vec<(String, RefundStatus, u64)> => debug_span!("store.count_by_status");
    secret(name: &str) -> Vec<u8> => debug_span!("store.secret");
    ping() -> () => debug_span!("store.ping");
}
