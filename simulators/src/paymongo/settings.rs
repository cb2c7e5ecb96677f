//! How the PayMongo simulator behaves beyond PayMongo's rules (settlement, webhooks; changed
//! with `POST /sandbox/settings`), and the counters tests assert on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::wire::RefundStatus;
use crate::faults::{Faults, Held};

/// What a pending refund becomes when it settles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    #[default]
    Succeeded,
    Failed,
}

impl Outcome {
    pub fn status(self) -> RefundStatus {
        match self {
            Self::Succeeded => RefundStatus::Succeeded,
            Self::Failed => RefundStatus::Failed,
        }
    }
}

/// What `payment.refund.updated` carries: PayMongo's current example has the Refund, its older
/// event table says a Payment (docs/PROVIDERS.md section 2.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundUpdatedCarries {
    #[default]
    Refund,
    Payment,
}

/// How the simulator behaves beyond PayMongo's rules. Changed in part with
/// `POST /sandbox/settings`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// How long a new refund stays `pending` before it settles.
    pub settle_delay_ms: u64,
    /// What refunds settle into when no outcome is queued.
    pub default_outcome: Outcome,
    /// Whether settling sends webhooks (to every URL in `webhook_urls`).
    pub webhooks_enabled: bool,
    pub refund_updated_carries: RefundUpdatedCarries,
    /// Deliveries of one event before giving up on a URL that does not answer 2xx.
    pub webhook_max_attempts: u32,
    /// First wait between two deliveries of one event; doubles each time.
    pub webhook_retry_ms: u64,
    /// Accept a refund above what is left to refund of its payment. The real PayMongo
    /// refuses it (`parameter_above_maximum`); this switch lets a test show that the
    /// gateway's own guard alone stops an over-refund.
    pub accept_over_refunds: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            settle_delay_ms: 2_000,
            default_outcome: Outcome::Succeeded,
            webhooks_enabled: true,
            refund_updated_carries: RefundUpdatedCarries::Refund,
            webhook_max_attempts: 4,
            webhook_retry_ms: 200,
            accept_over_refunds: false,
        }
    }
}

/// A partial settings change (`POST /sandbox/settings`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    pub settle_delay_ms: Option<u64>,
    pub default_outcome: Option<Outcome>,
    pub webhooks_enabled: Option<bool>,
    pub refund_updated_carries: Option<RefundUpdatedCarries>,
    pub webhook_max_attempts: Option<u32>,
    pub webhook_retry_ms: Option<u64>,
    pub accept_over_refunds: Option<bool>,
}

impl Settings {
    pub fn apply(&mut self, patch: &SettingsPatch) -> Result<(), String> {
        let mut next = self.clone();
        if let Some(v) = patch.settle_delay_ms {
            next.settle_delay_ms = v;
        }
        if let Some(v) = patch.default_outcome {
            next.default_outcome = v;
        }
        if let Some(v) = patch.webhooks_enabled {
            next.webhooks_enabled = v;
        }
        if let Some(v) = patch.refund_updated_carries {
            next.refund_updated_carries = v;
        }
        if let Some(v) = patch.webhook_max_attempts {
            next.webhook_max_attempts = v;
        }
        if let Some(v) = patch.webhook_retry_ms {
            next.webhook_retry_ms = v;
        }
        if let Some(v) = patch.accept_over_refunds {
            next.accept_over_refunds = v;
        }
        if next.settle_delay_ms > Faults::MAX_DELAY_MS
            || next.webhook_retry_ms > Faults::MAX_DELAY_MS
        {
            return Err(format!("delays must be at most {}ms", Faults::MAX_DELAY_MS));
        }
        if !(1..=20).contains(&next.webhook_max_attempts) {
            return Err("webhook_max_attempts must be 1 to 20".to_owned());
        }
        *self = next;
        Ok(())
    }
}

/// Counters tests can assert on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Every request to PayMongo's API (not the admin API), whatever its answer.
    pub requests: u64,
    /// `POST /v1/refunds` that passed the key check, whatever happened next.
    pub refund_posts: u64,
    /// `refund_posts` by the `payment_id` in the body (when there is one).
    pub refund_posts_by_payment: BTreeMap<String, u64>,
    /// Refunds created through `POST /v1/refunds`.
    pub refunds_created: u64,
    /// What the simulator holds by payment (filled when read): refunds created through
    /// `POST /v1/refunds`, and what those that did not fail hold.
    pub refunds_by_payment: BTreeMap<String, Held>,
    /// Creates answered from an idempotency key's stored answer.
    pub idempotent_replays: u64,
    pub payment_reads: u64,
    pub refund_reads: u64,
    pub refund_lists: u64,
    /// Webhook deliveries answered 2xx.
    pub webhooks_sent: u64,
    /// Events given up on after `webhook_max_attempts`.
    pub webhooks_failed: u64,
    /// Every delivery attempt.
    pub webhook_attempts: u64,
    /// Requests and webhook events a fault switch acted on (filled when read).
    pub faults_applied: u64,
}
