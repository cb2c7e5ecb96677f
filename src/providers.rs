//! The provider abstraction: one trait, one module per provider, and the registry of
//! configured provider accounts.
//!
//! The trait keeps apart the four things the gateway asks of a provider (look a payment up,
//! submit a refund, read a refund back, understand a webhook), and makes every submission end
//! in one of four outcomes that are never guessed:
//!
//! - `Rejected`: the provider said no and created nothing;
//! - `NotSent`: the request provably never reached the provider (the connection was never
//!   made), so nothing can exist there;
//! - `Accepted`: the provider took the refund (pending, processing or already final);
//! - `Unknown`: it may have reached the provider (timeout after sending, dropped connection,
//!   5xx, unreadable answer). The refund stays PENDING and is reconciled, never reported as
//!   failed.

pub mod compago;
pub mod d24;
pub mod http;
pub mod isolation;
pub mod json_decimal;
pub mod paymongo;
pub mod profile;
pub mod registry;
#[cfg(test)]
mod samples;

use std::{collections::BTreeMap, fmt, sync::Arc, time::Duration};

use async_trait::async_trait;

pub use self::profile::Profile;
pub use self::registry::{AccountPlan, Registration};

use crate::domain::{
    ApiError, BankAccount, ErrorCode, FieldViolation, Money, Observation, PaymentRef,
    PaymentStatus, Refund, RefundFailure, RefundReason, TenantId, reason,
};

/// The providers the gateway knows, one line each: configuration (`[providers.NAME]` with
/// `kind = "..."`), building the account, webhook routes and the sandbox set-up all come from
/// here and the provider's module.
pub const REGISTRY: &[Registration] = &[
    Registration::of::<compago::CompagoConfig>(),
    Registration::of::<d24::D24Config>(),
    Registration::of::<paymongo::PayMongoConfig>(),
];

/// Which provider API an account speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Compago,
    D24,
    #[serde(rename = "paymongo")]
    PayMongo,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Compago => "compago",
            Self::D24 => "d24",
            Self::PayMongo => "paymongo",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a provider supports (`ListProviders`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub currencies: &'static [&'static str],
    pub partial_refunds: bool,
    pub webhooks: bool,
}

impl Capabilities {
    /// Refunds of the whole payment only, in `currencies`; no webhooks.
    pub const fn whole_refunds_in(currencies: &'static [&'static str]) -> Self {
        Self {
            currencies,
            partial_refunds: false,
            webhooks: false,
        }
    }

    /// Refunds of any part of a payment, in `currencies`; no webhooks.
    pub const fn partial_refunds_in(currencies: &'static [&'static str]) -> Self {
        Self {
            partial_refunds: true,
            ..Self::whole_refunds_in(currencies)
        }
    }

    /// The provider also posts refund status changes to the gateway.
    pub const fn with_webhooks(self) -> Self {
        Self {
            webhooks: true,
            ..self
        }
    }
}

/// A validated CreateRefund request, before anything is recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundDraft {
    pub tenant: TenantId,
    pub request_id: String,
    pub provider: String,
    pub payment: PaymentRef,
    /// `None`: the whole amount left to refund.
    pub amount: Option<Money>,
    pub reason: RefundReason,
    pub description: String,
    pub metadata: BTreeMap<String, String>,
    pub bank_account: Option<BankAccount>,
}

/// A payment as its provider reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderPayment {
    pub status: PaymentStatus,
    /// The provider's own status word.
    pub provider_status: String,
    pub amount: Money,
    /// What the provider says has been refunded, when it says.
    pub refunded: Option<Money>,
    /// The refunds of the payment the provider reports one by one and that did not fail
    /// there, whoever made them: what the over-refund guard counts beside the gateway's own
    /// held refunds (see `domain::outside_minor`). PayMongo lists every refund on the
    /// payment (pending, processing and succeeded ones, the gateway's own included, even
    /// those whose answer the gateway has not recorded yet: they carry the gateway refund id
    /// in their metadata). D24's deposit lookup reports no refunds (D24 refuses an excess
    /// itself, 802) and Compago refunds only whole payments (a refunded one is no longer
    /// refundable): both leave this empty.
    pub refunds: Vec<crate::domain::ReportedRefund>,
    /// Whether a refund of this payment needs a destination bank account (D24 non-card).
    pub needs_bank_account: bool,
}

/// A provider's "no": nothing was created on its side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The gRPC code the caller gets.
    pub code: ErrorCode,
    /// Stable gateway reason (see `domain::reason`).
    pub reason: &'static str,
    pub message: String,
    /// The provider's own code (HTTP status when it gives nothing better).
    pub provider_code: String,
    pub provider_message: String,
    pub retry_after: Option<Duration>,
}

impl Rejection {
    pub fn new(code: ErrorCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            provider_code: String::new(),
            provider_message: String::new(),
            retry_after: None,
        }
    }

    pub fn with_provider(mut self, code: impl Into<String>, message: impl Into<String>) -> Self {
        self.provider_code = code.into();
        self.provider_message = message.into();
        self
    }

    /// The caller-facing error, with `provider` and `provider_code` in its metadata (and the
    /// same code as `providerCode`, the spelling earlier versions sent, for existing callers).
    pub fn to_api_error(&self, provider: &str) -> ApiError {
        let mut err =
            ApiError::new(self.code, self.reason, self.message.clone()).with("provider", provider);
        if !self.provider_code.is_empty() {
            err = err
                .with("provider_code", self.provider_code.clone())
                .with("providerCode", self.provider_code.clone());
        }
        if let Some(after) = self.retry_after {
            err = err.with_retry_after(after);
        }
        err
    }

    /// The failure recorded on the refund.
    pub fn to_failure(&self) -> RefundFailure {
        RefundFailure::new(self.reason, self.message.clone())
            .with_provider(self.provider_code.clone(), self.provider_message.clone())
    }
}

/// How a submission ended. See the module documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubmitOutcome {
    Accepted(Observation),
    Rejected(Rejection),
    /// Never reached the provider; the text says why (for logs and the failure message).
    NotSent(String),
    /// May have reached the provider; the text says why.
    Unknown(String),
}

/// A failed read (payment lookup, refund read-back). Reads have no side effects, so there is
/// no "unknown" here: the read simply did not work.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider answered no (not found, bad credentials, ...).
    #[error("{}", .0.message)]
    Rejected(Rejection),
    /// No answer: connection refused, timeout, 5xx.
    #[error("provider unreachable: {0}")]
    Unreachable(String),
    /// An answer that could not be understood.
    #[error("unexpected provider answer: {0}")]
    BadResponse(String),
}

impl ProviderError {
    /// The provider said "not now" (429, or 503 with `Retry-After`) and, when it said how
    /// long, for how long: the caller should wait at least that before asking again. `None`
    /// for any other error.
    pub fn not_now(&self) -> Option<Option<Duration>> {
        match self {
            Self::Rejected(r) if r.code == ErrorCode::Unavailable => Some(r.retry_after),
            _ => None,
        }
    }

    pub fn to_api_error(&self, provider: &str) -> ApiError {
        match self {
            Self::Rejected(r) => r.to_api_error(provider),
            Self::Unreachable(_) => ApiError::unavailable(
                reason::PROVIDER_UNAVAILABLE,
                format!("provider {provider} could not be reached; try again later"),
            )
            .with("provider", provider),
            Self::BadResponse(detail) => {
                tracing::warn!(provider, detail, "unexpected provider answer");
                ApiError::unavailable(
                    reason::PROVIDER_BAD_RESPONSE,
                    format!("provider {provider} gave an answer the gateway could not read"),
                )
                .with("provider", provider)
            }
        }
    }
}

/// What a read-back of a refund found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefundLookup {
    Found(Observation),
    /// The provider holds no such refund (yet).
    Absent,
}

/// A refund the provider holds, read by the provider's own id: which payment it refunds and
/// for how much. The gateway needs this when a webhook names a refund it has no id for: the
/// answer to a submission was lost, and the refund has to be recognised by what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderRefundRecord {
    /// The payment it refunds, as `PaymentRef::payment_id` names it.
    pub payment_id: String,
    /// Its amount in the payment's currency, in major units, when the provider says.
    pub amount: Option<rust_decimal::Decimal>,
    /// Its status, with the id it was read by as `provider_refund_id`.
    pub observation: Observation,
}

/// Something a webhook told the gateway.
// A delivery carries a handful of notices, handled one by one: boxing the observation would
// save nothing that matters.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookNotice {
    /// Ask the provider about this refund (the body is not trusted: D24).
    Refetch { provider_refund_id: String },
    /// A verified statement about a refund (signed: PayMongo).
    Observed {
        provider_refund_id: String,
        gateway_refund_id: Option<String>,
        observation: Observation,
    },
}

/// Why a webhook delivery was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("this provider sends no webhooks")]
    Unsupported,
    #[error("bad signature: {0}")]
    BadSignature(String),
    #[error("malformed webhook: {0}")]
    Malformed(String),
}

/// One payment provider's API.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// What the provider is and the pure rules it applies, the same for all its accounts.
    fn profile(&self) -> &'static Profile;

    fn kind(&self) -> ProviderKind {
        self.profile().kind
    }

    fn capabilities(&self) -> Capabilities {
        self.profile().capabilities.clone()
    }

    /// Provider rules a request must meet before anything is asked or recorded (required
    /// references, text lengths). Pure.
    fn validate(&self, draft: &RefundDraft) -> Vec<FieldViolation> {
        (self.profile().validate)(draft)
    }

    /// Looks the payment up.
    async fn get_payment(&self, payment: &PaymentRef) -> Result<ProviderPayment, ProviderError>;

    /// Provider rules that depend on the payment (full refunds only, bank account needed, a
    /// minimum amount). `amount` is what would be refunded. Pure.
    fn check_refund(
        &self,
        draft: &RefundDraft,
        payment: &ProviderPayment,
        amount: Money,
    ) -> Result<(), ApiError> {
        (self.profile().check_refund)(draft, payment, amount)
    }

    /// Submits the refund. The refund's id is the idempotency key where the provider has one.
    async fn submit_refund(&self, refund: &Refund) -> SubmitOutcome;

    /// Reads the refund back from the provider (status polling and reconciliation).
    async fn fetch_refund(&self, refund: &Refund) -> Result<RefundLookup, ProviderError>;

    /// Whether sending a refund again is harmless even if an earlier attempt reached the
    /// provider (Compago refuses to refund a refunded payment; other providers have
    /// idempotency keys). Reconciliation re-submits only when this holds and the read-back
    /// proves the refund is absent.
    fn resubmit_is_safe(&self) -> bool {
        self.profile().resubmit_is_safe
    }

    /// Reads a refund by the provider's own id, with the payment it refunds and its amount
    /// (see [`ProviderRefundRecord`]). `Ok(None)`: the provider holds no such refund, or
    /// cannot look refunds up this way (the default).
    async fn refund_by_provider_id(
        &self,
        _provider_refund_id: &str,
    ) -> Result<Option<ProviderRefundRecord>, ProviderError> {
        Ok(None)
    }

    /// Verifies and parses a webhook delivery. Pure.
    fn parse_webhook(
        &self,
        _headers: &::http::HeaderMap,
        _body: &[u8],
    ) -> Result<Vec<WebhookNotice>, WebhookError> {
        Err(WebhookError::Unsupported)
    }
}

/// A configured provider account: a name callers use, the adapter behind it, and the one
/// client every call to it goes through (`isolation`: span, metrics, breaker, concurrency
/// limit, deadline).
pub struct ProviderAccount {
    pub name: String,
    pub provider: Arc<dyn Provider>,
    /// Served by the built-in simulator.
    pub sandbox: bool,
    /// The per-request timeout the adapter uses; bounds how long an attempt can be in flight.
    pub timeout: Duration,
    /// The account's client stack.
    pub guard: isolation::Guard,
}

impl ProviderAccount {
    pub fn new(
        name: impl Into<String>,
        provider: Arc<dyn Provider>,
        sandbox: bool,
        limits: isolation::Limits,
    ) -> Self {
        let name = name.into();
        let guard = isolation::Guard::new(&name, provider.clone(), limits);
        Self {
            name,
            provider,
            sandbox,
            timeout: limits.timeout,
            guard,
        }
    }

    /// Looks the payment up.
    pub async fn get_payment(
        &self,
        payment: &PaymentRef,
    ) -> Result<ProviderPayment, ProviderError> {
        self.guard.get_payment(payment).await
    }

    /// Submits the refund.
    pub async fn submit_refund(&self, refund: &Refund) -> SubmitOutcome {
        self.guard.submit_refund(refund).await
    }

    /// Reads the refund back.
    pub async fn fetch_refund(&self, refund: &Refund) -> Result<RefundLookup, ProviderError> {
        self.guard.fetch_refund(refund).await
    }

    /// Reads a refund by the provider's own id.
    pub async fn refund_by_provider_id(
        &self,
        provider_refund_id: &str,
    ) -> Result<Option<ProviderRefundRecord>, ProviderError> {
        self.guard.refund_by_provider_id(provider_refund_id).await
    }
}

impl fmt::Debug for ProviderAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderAccount")
            .field("name", &self.name)
            .field("kind", &self.provider.kind())
            .field("sandbox", &self.sandbox)
            .field("timeout", &self.timeout)
            .field("guard", &self.guard)
            .finish()
    }
}

/// The configured provider accounts, by name.
#[derive(Clone, Debug, Default)]
pub struct Providers {
    accounts: BTreeMap<String, Arc<ProviderAccount>>,
}

impl Providers {
    pub fn insert(&mut self, account: ProviderAccount) {
        self.accounts
            .insert(account.name.clone(), Arc::new(account));
    }

    pub fn get(&self, name: &str) -> Option<&Arc<ProviderAccount>> {
        self.accounts.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<ProviderAccount>> {
        self.accounts.values()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.accounts.keys().map(String::as_str)
    }

    /// Sets the per-account isolation gauges (breaker state, calls in flight) from the live
    /// stacks; called at scrape time.
    pub fn record_gauges(&self) {
        use self::isolation::BreakerState;
        for account in self.iter() {
            let current = account.guard.breaker_state();
            for state in BreakerState::ALL {
                metrics::gauge!(
                    "refund_gateway_provider_breaker_state",
                    "provider" => account.name.clone(),
                    "state" => state.as_str()
                )
                .set(if state == current { 1.0 } else { 0.0 });
            }
            metrics::gauge!("refund_gateway_provider_in_flight", "provider" => account.name.clone())
                .set(account.guard.in_flight() as f64);
        }
    }
}
