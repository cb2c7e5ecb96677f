//! What the PayMongo simulator holds in memory, and the rules that change it (docs/PROVIDERS.md
//! section 2). No HTTP here: handlers call these methods under one lock and render
//! the answers they return.
//!
//! A refund create goes through, in order (PM-IDEM: "results are saved only after the API
//! starts executing an operation"):
//! 1. validation of the attributes (all errors at once); not stored against the key;
//! 2. the `Idempotency-Key`: a key seen in the last 24 hours with the same attributes replays
//!    the first answer; with other attributes it is refused (not stored);
//! 3. execution: payment exists, is `paid`, amount within what is left (refunds that did not
//!    fail count, whoever made them), any refusal set on the payment; the answer (refund or
//!    error) is stored against the key.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

pub use super::settings::{Outcome, RefundUpdatedCarries, Settings, SettingsPatch, Stats};
pub use super::views::{payment_view, refund_view};
pub use super::wire::{
    Answer, IDEMPOTENCY_WINDOW, MAX_NOTES, MIN_REFUND, PaymentStatus, REASONS, RefundStatus,
    error_item,
};
use super::{
    super::faults::{Held, WebhookHold},
    fixtures,
    validate::{NewRefund, validate},
    views::event,
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    pub id: String,
    /// Centavos.
    pub amount: i64,
    pub currency: String,
    pub status: PaymentStatus,
    pub description: String,
    pub created_at: i64,
    /// The ids of its refunds, oldest first.
    pub refunds: Vec<String>,
    /// A refusal every refund of this payment gets (`allowed_date_exceeded`, ...).
    pub refund_error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refund {
    pub id: String,
    pub payment_id: String,
    /// Centavos.
    pub amount: i64,
    pub currency: String,
    pub reason: String,
    pub notes: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub status: RefundStatus,
    pub created_at: i64,
    pub updated_at: i64,
    /// What it becomes when it settles.
    pub outcome: Outcome,
    /// Made through the admin API or the fixtures (not through `POST /v1/refunds`).
    pub outside: bool,
}

/// One stored answer of an idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAnswer {
    pub attributes: Value,
    pub at: DateTime<Utc>,
    pub answer: Answer,
}

/// The shared fault switches (see [`crate::faults`]).
pub use crate::faults::Faults;

/// One webhook event to deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub url: String,
    pub event_id: String,
    pub event_type: String,
    pub body: Vec<u8>,
}

/// Everything the simulator holds.
#[derive(Clone, Debug, Default)]
pub struct State {
    pub payments: BTreeMap<String, Payment>,
    pub refunds: BTreeMap<String, Refund>,
    pub keys: BTreeMap<String, StoredAnswer>,
    pub settings: Settings,
    /// Webhook deliveries held back by `reorder_webhooks`, by refund.
    pub webhook_hold: WebhookHold<Delivery>,
    /// Refund outcomes to use, in order, before `settings.default_outcome`.
    pub next_outcomes: VecDeque<Outcome>,
    /// Where webhooks go (set by the gateway in sandbox mode, or the admin API).
    pub webhook_urls: Vec<String>,
    pub stats: Stats,
    /// Bumped by reset, so refunds settling after a reset leave the new state alone.
    pub generation: u64,
}

/// A PayMongo-looking id: prefix and 24 random letters and digits.
pub fn new_id(prefix: &str) -> String {
    use rand::{Rng as _, distr::Alphanumeric};
    let tail: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("{prefix}{tail}")
}

/// What a create did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateResult {
    pub answer: Answer,
    /// The refund it created (not on a replay).
    pub created: Option<String>,
    pub replayed: bool,
}

impl State {
    /// The fixtures, no faults, default settings, counters at zero.
    pub fn with_fixtures() -> Self {
        let mut state = State::default();
        for p in fixtures::PAYMENTS {
            state.payments.insert(
                p.id.to_owned(),
                Payment {
                    id: p.id.to_owned(),
                    amount: p.amount,
                    currency: "PHP".to_owned(),
                    status: p.status,
                    description: p.note.to_owned(),
                    created_at: fixtures::CREATED_AT,
                    refunds: Vec::new(),
                    refund_error: p.refund_error.map(str::to_owned),
                },
            );
        }
        for r in fixtures::REFUNDS {
            state.insert_outside_refund(
                r.id.to_owned(),
                r.payment_id,
                r.amount,
                r.status,
                fixtures::CREATED_AT,
            );
        }
        state
    }

    /// Records a refund made outside `POST /v1/refunds` (fixtures, admin API).
    pub fn insert_outside_refund(
        &mut self,
        id: String,
        payment_id: &str,
        amount: i64,
        status: RefundStatus,
        at: i64,
    ) {
        self.refunds.insert(
            id.clone(),
            Refund {
                id: id.clone(),
                payment_id: payment_id.to_owned(),
                amount,
                currency: "PHP".to_owned(),
                reason: "others".to_owned(),
                notes: Some("made outside the gateway".to_owned()),
                metadata: None,
                status,
                created_at: at,
                updated_at: at,
                outcome: Outcome::Succeeded,
                outside: true,
            },
        );
        if let Some(p) = self.payments.get_mut(payment_id) {
            p.refunds.push(id);
        }
    }

    /// What is left to refund of a payment: its amount less its refunds that did not fail.
    pub fn remaining(&self, payment: &Payment) -> i64 {
        let taken: i64 = payment
            .refunds
            .iter()
            .filter_map(|id| self.refunds.get(id))
            .filter(|r| r.status != RefundStatus::Failed)
            .map(|r| r.amount)
            .sum();
        payment.amount - taken
    }

    /// Counts a refund create that passed the key check.
    pub fn count_refund_post(&mut self, attributes: Option<&Value>) {
        self.stats.refund_posts += 1;
        if let Some(id) = attributes
            .and_then(|a| a.get("payment_id"))
            .and_then(Value::as_str)
        {
            *self
                .stats
                .refund_posts_by_payment
                .entry(id.to_owned())
                .or_default() += 1;
        }
    }

    /// A refund create, with its idempotency key. See the module documentation.
    pub fn create_refund(
        &mut self,
        attributes: &Value,
        key: Option<&str>,
        now: DateTime<Utc>,
    ) -> CreateResult {
        let not_stored = |answer| CreateResult {
            answer,
            created: None,
            replayed: false,
        };
        let new: NewRefund = match validate(attributes) {
            Ok(new) => new,
            Err(answer) => return not_stored(answer),
        };
        if let Some(key) = key {
            self.keys
                .retain(|_, stored| now - stored.at < IDEMPOTENCY_WINDOW);
            if let Some(stored) = self.keys.get(key) {
                if &stored.attributes == attributes {
                    self.stats.idempotent_replays += 1;
                    return CreateResult {
                        answer: stored.answer.clone(),
                        created: None,
                        replayed: true,
                    };
                }
                // Not documented by PayMongo beyond "rejected": the code is the simulator's.
                return not_stored(Answer::error(
                    400,
                    "idempotency_key_in_use",
                    "The Idempotency-Key was already used with different parameters.",
                    None,
                ));
            }
        }
        let (answer, created) = self.execute(new, now);
        if let Some(key) = key {
            self.keys.insert(
                key.to_owned(),
                StoredAnswer {
                    attributes: attributes.clone(),
                    at: now,
                    answer: answer.clone(),
                },
            );
        }
        CreateResult {
            answer,
            created,
            replayed: false,
        }
    }

    /// Step 3 of a create: PayMongo's refund rules (PM-RERR).
    fn execute(&mut self, new: NewRefund, now: DateTime<Utc>) -> (Answer, Option<String>) {
        let Some(payment) = self.payments.get(&new.payment_id) else {
            return (
                Answer::error(
                    404,
                    "resource_not_found",
                    &format!("No such payment with id {}.", new.payment_id),
                    Some("payment_id"),
                ),
                None,
            );
        };
        if payment.status != PaymentStatus::Paid {
            return (
                Answer::error(
                    400,
                    "resource_failed_state",
                    "Only payment in paid state can be refunded.",
                    Some("payment_id"),
                ),
                None,
            );
        }
        let remaining = self.remaining(payment);
        if new.amount > remaining && !self.settings.accept_over_refunds {
            return (
                Answer::error(
                    400,
                    "parameter_above_maximum",
                    &format!(
                        "The amount cannot be greater than the remaining refundable value of \
                         {remaining}."
                    ),
                    Some("amount"),
                ),
                None,
            );
        }
        if let Some(code) = &payment.refund_error {
            return (Answer::error(400, code, &refusal_detail(code), None), None);
        }
        let outcome = self
            .next_outcomes
            .pop_front()
            .unwrap_or(self.settings.default_outcome);
        let at = now.timestamp();
        let refund = Refund {
            id: new_id("ref_"),
            payment_id: new.payment_id.clone(),
            amount: new.amount,
            currency: payment.currency.clone(),
            reason: new.reason,
            notes: new.notes,
            metadata: new.metadata,
            status: RefundStatus::Pending,
            created_at: at,
            updated_at: at,
            outcome,
            outside: false,
        };
        let id = refund.id.clone();
        let answer = Answer::ok(json!({ "data": refund_view(&refund) }));
        self.refunds.insert(id.clone(), refund);
        if let Some(p) = self.payments.get_mut(&new.payment_id) {
            p.refunds.push(id.clone());
        }
        self.stats.refunds_created += 1;
        (answer, Some(id))
    }

    /// A payment's refunds, newest first (then by id), as `GET /v1/refunds` lists them.
    pub fn refunds_newest_first(&self, payment_id: Option<&str>) -> Vec<&Refund> {
        let mut refunds: Vec<_> = self
            .refunds
            .values()
            .filter(|r| payment_id.is_none_or(|p| r.payment_id == p))
            .collect();
        refunds.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        refunds
    }

    /// Settles a pending refund into `outcome` (its planned one when `None`), and returns the
    /// webhook deliveries that announce it. `None` when there is nothing to settle.
    pub fn settle(
        &mut self,
        refund_id: &str,
        outcome: Option<Outcome>,
        now: DateTime<Utc>,
    ) -> Option<Vec<Delivery>> {
        let refund = self.refunds.get_mut(refund_id)?;
        if !matches!(
            refund.status,
            RefundStatus::Pending | RefundStatus::Processing
        ) {
            return None;
        }
        refund.status = outcome.unwrap_or(refund.outcome).status();
        refund.updated_at = now.timestamp();
        let refund = refund.clone();
        Some(self.announce(&refund, now))
    }

    /// What the simulator holds by payment, for the stats.
    pub fn refunds_by_payment(&self) -> BTreeMap<String, Held> {
        let mut held: BTreeMap<String, Held> = BTreeMap::new();
        for r in self.refunds.values().filter(|r| !r.outside) {
            held.entry(r.payment_id.clone()).or_default().add_minor(
                r.amount,
                &r.currency,
                r.status != RefundStatus::Failed,
            );
        }
        held
    }

    /// The events that announce a refund's new status, one delivery per webhook URL:
    /// `payment.refund.updated` always, and `payment.refunded` when it succeeded.
    pub fn announce(&self, refund: &Refund, now: DateTime<Utc>) -> Vec<Delivery> {
        if !self.settings.webhooks_enabled || self.webhook_urls.is_empty() {
            return Vec::new();
        }
        let Some(payment) = self.payments.get(&refund.payment_id) else {
            return Vec::new();
        };
        let payment_data = payment_view(payment, self);
        let updated_data = match self.settings.refund_updated_carries {
            RefundUpdatedCarries::Refund => refund_view(refund),
            RefundUpdatedCarries::Payment => payment_data.clone(),
        };
        let mut events = vec![event("payment.refund.updated", updated_data, now)];
        if refund.status == RefundStatus::Succeeded {
            events.push(event("payment.refunded", payment_data, now));
        }
        let mut deliveries = Vec::new();
        for (event_id, event_type, body) in events {
            for url in &self.webhook_urls {
                deliveries.push(Delivery {
                    url: url.clone(),
                    event_id: event_id.clone(),
                    event_type: event_type.to_owned(),
                    body: body.clone(),
                });
            }
        }
        deliveries
    }
}

/// The detail of a refusal set on a payment (PM-RERR wording where there is one).
fn refusal_detail(code: &str) -> String {
    match code {
        "allowed_date_exceeded" => {
            "The payment can no longer be refunded: its refund window has passed.".to_owned()
        }
        "available_balance_insufficient" => {
            "Your available balance is insufficient to process this refund.".to_owned()
        }
        "resource_disputed_state" => "The payment is disputed and cannot be refunded.".to_owned(),
        "refund_not_allowed" => "Refunds are not allowed for this payment.".to_owned(),
        other => format!("The refund was refused ({other})."),
    }
}

#[cfg(test)]
mod tests;
