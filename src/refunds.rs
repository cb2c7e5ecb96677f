//! The application service: what each RPC, webhook and worker pass does, in domain terms and
//! independent of gRPC. `grpc` and `http` are thin adapters over it.
//!
//! - [`create`]: CreateRefund (idempotency, pre-checks, the atomic reservation, submission).
//! - [`follow`]: learning what happened to a refund (SyncRefund, webhooks, the worker's
//!   polling and reconciliation) and recording it.
//! - [`link`]: recognising a refund whose submission answer was lost when the provider's
//!   notification names it (D24).
//! - [`payments`]: GetPayment and the amount left to refund.
//! - [`watch`]: WatchRefund and WatchRefunds.
//! - [`page_token`]: opaque, signed ListRefunds page tokens.

mod create;
mod fingerprint;
mod follow;
mod link;
mod page_token;
mod payments;
mod views;
mod watch;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use follow::{CheckOutcome, WebhookFailure};
pub use watch::FeedFilter;

use crate::{
    auth::Caller,
    config::WorkerConfig,
    domain::{ApiError, ErrorCode, FieldViolation, Refund, RefundId, RefundStatus, reason},
    events::EventBus,
    providers::{ProviderAccount, Providers},
    store::{ListQuery, RefundStore, StoreError},
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
}

impl From<&WorkerConfig> for Settings {
    fn from(w: &WorkerConfig) -> Self {
        Self {
            first_check: Duration::from_millis(w.first_check_ms),
            max_check_interval: Duration::from_millis(w.max_check_interval_ms),
            max_reconcile_attempts: w.max_reconcile_attempts,
            lease: Duration::from_millis(w.lease_ms),
            view_cache_entries: DEFAULT_VIEW_CACHE_ENTRIES,
        }
    }
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

    /// The caller's refund, or NOT_FOUND (also for another tenant's refund).
    pub async fn get_refund(&self, caller: &Caller, id: &str) -> Result<Refund, ApiError> {
        if let Some(parsed) = RefundId::parse(id)
            && let Some(view) = self.inner.views.get(&parsed)
        {
            return if view.tenant == caller.tenant {
                Ok(Refund::clone(&view))
            } else {
                Err(ApiError::refund_not_found(id))
            };
        }
        let refund = self.load_own(caller, id).await?;
        self.inner.views.put(&refund);
        Ok(refund.public_view())
    }

    /// The caller's refunds, newest first.
    pub async fn list_refunds(&self, caller: &Caller, req: ListRequest) -> Result<Page, ApiError> {
        let limit = match req.page_size {
            n if n < 0 => {
                return Err(ApiError::invalid(vec![FieldViolation::new(
                    "page_size",
                    "must not be negative",
                )]));
            }
            0 => DEFAULT_PAGE_SIZE,
            n => (n as u32).min(MAX_PAGE_SIZE),
        };
        let filter = page_token::Filter {
            provider: req.provider.clone(),
            status: req.status,
            payment_id: req.payment_id.clone(),
        };
        let before = if req.page_token.is_empty() {
            None
        } else {
            Some(page_token::open(
                &self.inner.page_key,
                &req.page_token,
                &caller.tenant,
                &filter,
            )?)
        };
        let mut refunds = self
            .inner
            .store
            .list_refunds(&ListQuery {
                tenant: caller.tenant.clone(),
                provider: req.provider,
                status: req.status,
                payment_id: req.payment_id,
                before,
                limit: limit + 1,
            })
            .await?;
        let next_page_token = if refunds.len() > limit as usize {
            refunds.truncate(limit as usize);
            let last = refunds.last().expect("limit is at least 1");
            page_token::seal(
                &self.inner.page_key,
                &caller.tenant,
                &filter,
                last.created_at,
                &last.id,
            )
        } else {
            String::new()
        };
        Ok(Page {
            refunds: refunds.into_iter().map(Refund::into_public_view).collect(),
            next_page_token,
        })
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

    fn now() -> DateTime<Utc> {
        // Micro precision, as stored.
        let now = Utc::now();
        DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
    }
}
