//! The application service: what each RPC, webhook and worker pass does, in domain terms and
//! independent of gRPC. `grpc` and `http` are thin adapters over it.
//!
//! This file is the facade: each method chains stages, and data flows one way through them.
//! A stage is one file with one entry function and an explicit hand-off type; stages do not
//! call each other, they hand their result back here. Every change of a stored refund, and
//! every submission to a provider, goes through the one [`writer`].
//!
//! CreateRefund: [`validate`] (the draft's rules, no I/O) -> [`claim`] (the request key:
//! idempotency) -> [`reserve`] (payment lookup, what is left, the atomic insert) -> [`submit`]
//! -> [`record`] (the outcome, through the writer, and the request key).
//!
//! Beside it:
//! - [`reconcile`]: SyncRefund and the worker's check of a refund (including the resend of a
//!   refund the provider shows no trace of).
//! - [`webhooks`]: provider notifications, and linking a refund whose submission answer was
//!   lost when a notification names it (D24).
//! - [`list`]: GetRefund and ListRefunds; [`payments`]: GetPayment; [`watch`]: WatchRefund
//!   and WatchRefunds.
//! - Shared pure helpers: [`amounts`] (what is left to refund), [`fingerprint`] (request
//!   parameters), [`page_token`] (opaque, signed page tokens), [`views`] (GetRefund's cache).

mod amounts;
mod claim;
mod fingerprint;
mod list;
mod operators;
mod page_token;
mod payments;
mod reconcile;
mod record;
mod reserve;
mod submit;
mod validate;
mod views;
mod watch;
mod webhooks;
mod writer;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use operators::{EventPage, Resolution};
pub use reconcile::CheckOutcome;
pub use watch::FeedFilter;
pub use webhooks::WebhookFailure;

use claim::Claimed;

use crate::{
    auth::Caller,
    domain::{ApiError, ErrorCode, Payment, PaymentRef, Refund, RefundId, RefundStatus, reason},
    events::EventBus,
    metrics,
    providers::{ProviderAccount, ProviderKind, Providers, RefundDraft},
    store::{RefundStore, StoreError},
};

/// Timing of follow-ups and idempotent waits.
#[derive(Clone, Debug)]
pub struct Settings {
    /// First wait before asking a provider about a refund that is not final.
    pub first_check: Duration,
    /// Longest wait between two checks.
    pub max_check_interval: Duration,
    /// Checks of an unknown outcome before REQUIRES_REVIEW.
    pub max_reconcile_attempts: i32,
    /// How long a worker's claim on a refund lasts.
    pub lease: Duration,
    /// How many refund views GetRefund keeps in memory (single-process stores only).
    pub view_cache_entries: u64,
    /// How long a refund waits in REQUIRES_APPROVAL before the worker cancels it.
    pub approval_expiry: Duration,
}

/// The service; cheap to clone.
#[derive(Clone, Debug)]
pub struct Refunds {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn RefundStore>,
    providers: Providers,
    bus: EventBus,
    settings: Settings,
    page_key: Vec<u8>,
    /// The latest view of refunds this process wrote or read (GetRefund).
    views: views::Views,
    /// Wakes the worker when a refund becomes due sooner than its next tick.
    wake_worker: Arc<Notify>,
    shutdown: CancellationToken,
    /// Provider reads caused by webhooks: their own budget per account, shared per refund.
    webhook_reads: webhooks::Reads,
    /// Notifications waiting for their refund's submission answer.
    parked: webhooks::Parked,
}

/// A ListRefunds request in domain terms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListRequest {
    pub page_size: i32,
    pub page_token: String,
    pub provider: Option<String>,
    pub status: Option<RefundStatus>,
    pub payment_id: Option<String>,
}

/// One page of refunds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub refunds: Vec<Refund>,
    pub next_page_token: String,
}

pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Extra time on top of a provider's timeout for leases and the first safety-net check.
const ATTEMPT_MARGIN: Duration = Duration::from_secs(5);
/// Refund views kept for GetRefund unless configured otherwise.
pub const DEFAULT_VIEW_CACHE_ENTRIES: u64 = 100_000;
pub const MAX_PAGE_SIZE: u32 = 500;

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(cause) => {
                tracing::warn!(cause = %cause, "store unavailable");
                ApiError::unavailable(
                    reason::STORE_UNAVAILABLE,
                    "the gateway's store is unavailable; try again shortly",
                )
            }
            other => ApiError::internal(other),
        }
    }
}

impl Refunds {
    pub async fn new(
        store: Arc<dyn RefundStore>,
        providers: Providers,
        bus: EventBus,
        settings: Settings,
        shutdown: CancellationToken,
    ) -> Result<Self, StoreError> {
        let page_key = store.secret("page_token").await?;
        let views = views::Views::new(settings.view_cache_entries, store.shared());
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                providers,
                bus,
                settings,
                page_key,
                views,
                wake_worker: Arc::new(Notify::new()),
                shutdown,
                webhook_reads: webhooks::Reads::default(),
                parked: webhooks::Parked::default(),
            }),
        })
    }

    pub fn store(&self) -> &Arc<dyn RefundStore> {
        &self.inner.store
    }

    pub fn providers(&self) -> &Providers {
        &self.inner.providers
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Notified when a refund becomes due before the worker's next tick.
    pub fn worker_wakeup(&self) -> Arc<Notify> {
        self.inner.wake_worker.clone()
    }

    /// CreateRefund: records a refund durably, then submits it.
    pub async fn create_refund(
        &self,
        caller: &Caller,
        draft: RefundDraft,
    ) -> Result<Refund, ApiError> {
        let request = validate::validate(self, caller, draft)?;
        let request = match claim::claim(self, request).await? {
            Claimed::Owned(request) => request,
            Claimed::Answered(answer) => return answer,
        };
        // This call owns the request now. Finish it in a task of its own, so a caller that
        // goes away (and drops this future) cannot leave a refund half recorded.
        let this = self.clone();
        let clock = metrics::provider_clock();
        let owned = async move {
            let sent = match reserve::reserve(&this, &request).await {
                Ok(reserved) if reserved.waits() => {
                    return record::waiting(&this, &request, reserved).await;
                }
                Ok(reserved) => Ok(submit::submit(&request, reserved).await),
                Err(err) => Err(err),
            };
            record::record(&this, &request, sent).await
        };
        // The task stays in the call's span, so its store and provider spans are in the
        // caller's trace. Boxed once here: the task's state machine is large, and tokio moves
        // what it is given several times on its way into and out of a task.
        let owned = tracing::Instrument::in_current_span(owned);
        tokio::spawn(Box::pin(metrics::with_provider_clock(clock, owned)))
            .await
            .unwrap_or_else(|join_error| Err(ApiError::internal(join_error)))
    }

    /// The caller's refund, or NOT_FOUND (also for another tenant's refund).
    pub async fn get_refund(&self, caller: &Caller, id: &str) -> Result<Refund, ApiError> {
        list::get(self, caller, id).await
    }

    /// The caller's refunds, newest first.
    pub async fn list_refunds(&self, caller: &Caller, req: ListRequest) -> Result<Page, ApiError> {
        list::list(self, caller, req).await
    }

    /// SyncRefund: ask the provider now, even for a final refund, and record the answer.
    pub async fn sync_refund(&self, caller: &Caller, id: &str) -> Result<Refund, ApiError> {
        reconcile::sync(self, caller, id).await
    }

    /// One worker check of a refund it has leased.
    pub async fn check(&self, refund: Refund) -> CheckOutcome {
        reconcile::check(self, refund).await
    }

    /// A webhook delivery for account `account_name`, arriving on the route for `kind`.
    /// Returns how many refunds it named that the gateway knows.
    pub async fn handle_webhook(
        &self,
        account_name: &str,
        kind: ProviderKind,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<usize, WebhookFailure> {
        webhooks::handle(self, account_name, kind, headers, body).await
    }

    /// Looks a payment up at its provider, with what has been and can still be refunded.
    pub async fn get_payment(
        &self,
        caller: &Caller,
        provider: &str,
        payment: PaymentRef,
    ) -> Result<Payment, ApiError> {
        payments::get_payment(self, caller, provider, payment).await
    }

    /// WatchRefund: the refund's current state, then each change; ends after a final status.
    pub async fn watch_refund(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<watch::WatchStream, ApiError> {
        watch::refund(self, caller, id).await
    }

    /// WatchRefunds: the caller's whole feed, optionally replayed from a sequence.
    pub async fn watch_refunds(
        &self,
        caller: &Caller,
        filter: FeedFilter,
    ) -> Result<watch::WatchStream, ApiError> {
        watch::feed(self, caller, filter).await
    }

    /// ListRefundEvents: the refund's history, oldest first.
    pub async fn list_refund_events(
        &self,
        caller: &Caller,
        id: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<EventPage, ApiError> {
        operators::events(self, caller, id, page_size, page_token).await
    }

    /// ApproveRefund: sends a refund waiting for approval (operators only, not its creator).
    pub async fn approve_refund(
        &self,
        caller: &Caller,
        id: &str,
        note: &str,
    ) -> Result<Refund, ApiError> {
        operators::approve(self, caller, id, note).await
    }

    /// CancelRefund: withdraws a refund waiting for approval.
    pub async fn cancel_refund(
        &self,
        caller: &Caller,
        id: &str,
        note: &str,
    ) -> Result<Refund, ApiError> {
        operators::cancel(self, caller, id, note).await
    }

    /// ResolveRefund: settles a refund in review (operators only).
    pub async fn resolve_refund(
        &self,
        caller: &Caller,
        resolution: Resolution,
    ) -> Result<Refund, ApiError> {
        operators::resolve(self, caller, resolution).await
    }

    /// The provider accounts the caller may use.
    pub fn list_providers(&self, caller: &Caller) -> Vec<Arc<ProviderAccount>> {
        self.inner
            .providers
            .iter()
            .filter(|a| caller.may_use(&a.name))
            .cloned()
            .collect()
    }

    /// The account `name` if the caller may use it: INVALID_ARGUMENT for an unknown name,
    /// PERMISSION_DENIED for one the tenant may not use.
    fn account(
        &self,
        caller: &Caller,
        name: &str,
        field: &str,
    ) -> Result<Arc<ProviderAccount>, ApiError> {
        let account = self.inner.providers.get(name).ok_or_else(|| {
            ApiError::invalid_field(
                reason::PROVIDER_NOT_CONFIGURED,
                field,
                format!("no provider account named {name:?}"),
            )
            .with("provider", name)
        })?;
        if !caller.may_use(name) {
            return Err(ApiError::new(
                ErrorCode::PermissionDenied,
                reason::PROVIDER_NOT_ALLOWED,
                format!("this API key may not use provider {name:?}"),
            )
            .with("provider", name));
        }
        Ok(account.clone())
    }

    /// A refund of the caller's tenant (not the public view).
    async fn load_own(&self, caller: &Caller, id: &str) -> Result<Refund, ApiError> {
        let parsed = RefundId::parse(id).ok_or_else(|| ApiError::refund_not_found(id))?;
        match self.inner.store.get_refund(&parsed).await? {
            Some(refund) if refund.tenant == caller.tenant => Ok(refund),
            _ => Err(ApiError::refund_not_found(id)),
        }
    }

    /// Now, at the precision the store keeps.
    fn now() -> DateTime<Utc> {
        // Micro precision, as stored.
        let now = Utc::now();
        DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
    }
}

/// When an attempt recorded at `started` is surely over at the provider as well: it may wait
/// for a slot of the account's stack (its queue timeout), then the whole call is cut off
/// after the stack's deadline (twice the timeout, at least a second: our side gave up
/// after one).
fn attempt_over_at(account: &ProviderAccount, started: DateTime<Utc>) -> DateTime<Utc> {
    let limits = account.guard.limits();
    let window = limits.queue_timeout + (account.timeout * 2).max(Duration::from_secs(1));
    started + window
}
