//! Durable storage behind one trait, so callers never know which database is underneath.
//!
//! Guarantees every implementation gives (and `tests/store_contract/` checks):
//! - a refund is inserted together with its creation event and the link from its request key,
//!   in one transaction, and only if the refunds of the same payment that still hold money
//!   (not FAILED, not CANCELED) plus the new one stay within the payment's amount;
//! - every visible change is a compare-and-set on `version`, written together with its event;
//! - event sequences are strictly increasing, never reused, and become visible in order, so a
//!   reader that has seen sequence N and then reads "after N" misses nothing.
//!
//! Backends: [`sqlite`] (single process; the embedded default) and [`postgres`] (any number
//! of gateway replicas sharing one database), chosen by the scheme of `store.url`.

mod codec;
mod keys;
pub mod postgres;
mod rules;
pub mod sqlite;
pub mod traced;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{
    ApiError, Cause, Money, Refund, RefundEvent, RefundId, RefundStatus, ReportedRefund, TenantId,
};

/// How to open the store (from `[store]`; `app` builds it from the configuration).
#[derive(Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// `sqlite://path` (created if missing) or `postgres://...` / `postgresql://...`.
    pub url: String,
    /// SQLite: read connections (writes go through one). PostgreSQL: the pool size.
    pub max_connections: u32,
    /// How long a statement may wait for a lock (PostgreSQL: `lock_timeout`).
    pub busy_timeout_ms: u64,
    /// PostgreSQL: `statement_timeout` and `idle_in_transaction_session_timeout`.
    pub statement_timeout_ms: u64,
    /// PostgreSQL: how long a call may wait for a pooled connection.
    pub connect_timeout_ms: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            url: "sqlite://refund-gateway.db".to_owned(),
            max_connections: 8,
            busy_timeout_ms: 5_000,
            statement_timeout_ms: 10_000,
            connect_timeout_ms: 5_000,
        }
    }
}

impl From<&StoreOptions> for StoreOptions {
    fn from(options: &StoreOptions) -> Self {
        options.clone()
    }
}

/// The URL is left out: it may carry a password.
impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("max_connections", &self.max_connections)
            .field("busy_timeout_ms", &self.busy_timeout_ms)
            .field("statement_timeout_ms", &self.statement_timeout_ms)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .finish_non_exhaustive()
    }
}

/// A store failure. Callers turn `Unavailable` into gRPC `UNAVAILABLE`; the rest are bugs or
/// corruption and become `INTERNAL` (logged, never shown).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is busy beyond its timeout.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored row could not be read back (bad JSON, unknown enum value, ...).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Any other database error.
    #[error("store error: {0}")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Who asked: one tenant's idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestKey {
    pub tenant: TenantId,
    pub request_id: String,
}

/// How a CreateRefund request ended, as stored against its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestResult {
    /// A refund was recorded; repeats return it as it is now.
    Refund(RefundId),
    /// No refund was made; repeats return the same error.
    Error(ApiError),
}

/// The answer to [`RefundStore::claim_request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestClaim {
    /// The caller now owns the request: it is new, or its previous owner's lease ran out
    /// before anything was recorded.
    Owned,
    /// Another call with the same key and parameters is working on it.
    InFlight,
    /// The request already ended (or its owner recorded a refund and then stopped).
    Done(RequestResult),
    /// The key was used with different parameters.
    Mismatch,
}

/// The answer to [`RefundStore::insert_refund`].
// One value per store call, moved straight to the caller: boxing the big variant would only
// add noise to every match.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Stored, with its creation event.
    Inserted(RefundEvent),
    /// Refused: the refunds of this payment that hold money, and the refunds the provider
    /// reports beyond them, already add up to `held`, and `held + amount` would pass the
    /// limit. Nothing was written.
    ExceedsPayment { held: Money },
}

/// The answer to [`RefundStore::update_refund`].
#[allow(clippy::large_enum_variant)] // as for InsertOutcome
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Written. `event` is set when a visible field changed.
    Updated {
        refund: Refund,
        event: Option<RefundEvent>,
    },
    /// Someone else changed the refund first (its version moved on). Nothing was written;
    /// read it again and decide again.
    Conflict,
}

/// Filters of [`RefundStore::list_refunds`]; all optional but the tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    pub tenant: TenantId,
    /// Keyset cursor: only refunds strictly older than this `(created_at, id)`.
    pub before: Option<(DateTime<Utc>, RefundId)>,
    pub provider: Option<String>,
    pub status: Option<RefundStatus>,
    pub payment_id: Option<String>,
    /// At most this many refunds.
    pub limit: u32,
}

/// Which events [`RefundStore::events_after`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventScope {
    /// One tenant's events.
    Tenant(TenantId),
    /// One refund's events.
    Refund(RefundId),
    /// Everything (for the event sequencer).
    All,
}

/// The durable store.
#[async_trait]
pub trait RefundStore: Send + Sync + 'static {
    /// Claims an idempotency key for a CreateRefund call. New keys are owned by the caller
    /// with a lease until `now + lease`; see [`RequestClaim`].
    async fn claim_request(
        &self,
        key: &RequestKey,
        fingerprint: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<RequestClaim, StoreError>;

    /// Records how an owned request ended. An error can be recorded for a key linked to a
    /// refund only when that refund is FAILED or CANCELED (final, nothing was refunded).
    async fn complete_request(
        &self,
        key: &RequestKey,
        result: &RequestResult,
    ) -> Result<(), StoreError>;

    /// Forgets an owned request that ended before anything was recorded, with an error a
    /// repeat may not get (the provider was unreachable, ...), so a repeat tries again.
    async fn release_request(&self, key: &RequestKey) -> Result<(), StoreError>;

    /// Inserts a new refund with its creation event, and links `key` to it, in one
    /// transaction, if the money held by the other refunds of the same provider account and
    /// payment, plus what the provider `reported` as refunded beyond them
    /// ([`crate::domain::outside_minor`], computed inside that transaction from the refunds
    /// holding money then), plus this one stays within `limit`. The creation event records
    /// `cause` (who created it and why).
    async fn insert_refund(
        &self,
        refund: &Refund,
        key: &RequestKey,
        limit: Money,
        reported: &[ReportedRefund],
        cause: &Cause,
    ) -> Result<InsertOutcome, StoreError>;

    /// Any tenant's refund by id (callers check the tenant).
    async fn get_refund(&self, id: &RefundId) -> Result<Option<Refund>, StoreError>;

    /// The refund a provider knows by `provider_refund_id`, through provider account
    /// `provider`.
    async fn find_by_provider_refund_id(
        &self,
        provider: &str,
        provider_refund_id: &str,
    ) -> Result<Option<Refund>, StoreError>;

    /// Every refund of one payment through provider account `provider`, of any tenant,
    /// oldest first. Used to recognise a refund whose submission answer was lost when the
    /// provider later names it (D24 notifications).
    async fn refunds_of_payment(
        &self,
        provider: &str,
        payment_id: &str,
    ) -> Result<Vec<Refund>, StoreError>;

    /// A tenant's refunds, newest first (by `created_at`, then `id`).
    async fn list_refunds(&self, query: &ListQuery) -> Result<Vec<Refund>, StoreError>;

    /// Replaces `prev` with `next` if `prev.version` is still current (`next.version` is
    /// ignored: the store sets `prev.version + 1`). Writes an event when a visible field
    /// changed (`Refund::differs_visibly`), with `previous_status = prev.status` and `cause`
    /// (who made the change and why).
    async fn update_refund(
        &self,
        prev: &Refund,
        next: &Refund,
        cause: &Cause,
    ) -> Result<UpdateOutcome, StoreError>;

    /// `update_refund`, and in the same transaction `complete_request(key, result)` (which
    /// must succeed, or nothing is written). A refund the provider refused is recorded FAILED
    /// together with the error its request replays, so no crash can separate the two.
    async fn update_refund_completing(
        &self,
        prev: &Refund,
        next: &Refund,
        key: &RequestKey,
        result: &RequestResult,
        cause: &Cause,
    ) -> Result<UpdateOutcome, StoreError>;

    /// The refund's most recent event (its current state, with the sequence it has).
    async fn latest_event(&self, id: &RefundId) -> Result<Option<RefundEvent>, StoreError>;

    /// Events with `sequence > after` in `scope`, in order, at most `limit`.
    async fn events_after(
        &self,
        scope: &EventScope,
        after: u64,
        limit: u32,
    ) -> Result<Vec<RefundEvent>, StoreError>;

    /// The largest sequence stored (0 when there is none).
    async fn last_sequence(&self) -> Result<u64, StoreError>;

    /// What the refunds of a payment that hold money add up to, in `currency`.
    async fn held_amount(
        &self,
        provider: &str,
        payment_id: &str,
        currency: crate::domain::Currency,
    ) -> Result<Money, StoreError>;

    /// Takes up to `limit` refunds whose `next_check_at` has come, and pushes their
    /// `next_check_at` to `now + lease` (bumping `version`) so no one else takes them until
    /// then. Returns them as updated.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<Refund>, StoreError>;

    /// How many refunds there are, by provider account and status (for metrics).
    async fn count_by_status(&self) -> Result<Vec<(String, RefundStatus, u64)>, StoreError>;

    /// A random secret kept in the store, created on first use (page-token signing key).
    async fn secret(&self, name: &str) -> Result<Vec<u8>, StoreError>;

    /// Cheap round trip for readiness.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Whether other processes may write to this store (several replicas on one database).
    /// When not, this process sees every write, and may keep views of what it wrote.
    fn shared(&self) -> bool {
        false
    }

    /// Wake-ups for events committed by OTHER processes sharing this store, so their changes
    /// reach this process's subscribers promptly. Each item means "new events may be
    /// stored"; the store stays the truth (read them with `events_after`). `None` when the
    /// store is not shared (SQLite serves one process). A notification missed while
    /// reconnecting is harmless: the event sequencer also polls.
    async fn commit_wakeups(
        &self,
        _shutdown: tokio_util::sync::CancellationToken,
    ) -> Result<Option<tokio::sync::mpsc::Receiver<()>>, StoreError> {
        Ok(None)
    }
}

impl std::fmt::Debug for dyn RefundStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefundStore")
    }
}
