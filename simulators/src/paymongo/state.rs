//! What the PayMongo simulator holds in memory, and the rules that change it (PROVIDERS.md
//! section 2, seed S004). No HTTP here: handlers call these methods under one lock and render
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

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use super::views::{payment_view, refund_view};
use super::{
    super::faults::{Held, WebhookHold},
    fixtures,
    validate::{NewRefund, validate},
    views::event,
};

/// How long an idempotency key's answer is replayed (PM-IDEM).
pub const IDEMPOTENCY_WINDOW: ChronoDuration = ChronoDuration::hours(24);

/// The smallest refund, in centavos (S004).
pub const MIN_REFUND: i64 = 100;

/// The longest `notes` (S004).
pub const MAX_NOTES: usize = 255;

/// The documented refund reasons (S004).
pub const REASONS: [&str; 4] = ["duplicate", "fraudulent", "requested_by_customer", "others"];

/// A payment's status. Only `paid` payments can be refunded (PM-RERR).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Paid,
    Pending,
    Failed,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paid => "paid",
            Self::Pending => "pending",
            Self::Failed => "failed",
        }
    }
}

/// A refund's status (S004).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Pending,
    Processing,
    Succeeded,
    Failed,
}

impl RefundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

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
/// event table says a Payment (PROVIDERS.md section 2.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundUpdatedCarries {
    #[default]
    Refund,
    Payment,
}

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

/// An HTTP answer: status and JSON body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn ok(body: Value) -> Self {
        Self { status: 200, body }
    }

    /// `{"errors":[...]}` with one error.
    pub fn error(status: u16, code: &str, detail: &str, attribute: Option<&str>) -> Self {
        Self {
            status,
            body: json!({ "errors": [error_item(code, detail, attribute)] }),
        }
    }
}

/// One `{"code","detail","source"}` (PM-ERR).
pub fn error_item(code: &str, detail: &str, attribute: Option<&str>) -> Value {
    let mut item = json!({ "code": code, "detail": detail });
    if let Some(a) = attribute {
        item["source"] = json!({ "pointer": a, "attribute": a });
    }
    item
}

/// The shared fault switches (see [`crate::faults`]).
pub use crate::faults::Faults;

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
        if new.amount > remaining {
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
mod tests {
    use super::*;
    use crate::paymongo::fixtures::*;

    fn attrs(amount: i64, payment_id: &str) -> Value {
        json!({"amount": amount, "payment_id": payment_id, "reason": "others",
               "metadata": {"order_id": "rf_1"}})
    }

    fn codes(answer: &Answer) -> Vec<&str> {
        answer.body["errors"]
            .as_array()
            .map(|e| e.iter().filter_map(|i| i["code"].as_str()).collect())
            .unwrap_or_default()
    }

    /// A refund of a paid payment is created pending; what is left shrinks; more than what
    /// is left is parameter_above_maximum; refunds that failed do not count.
    #[test]
    fn refunds_respect_what_is_left() {
        let mut s = State::with_fixtures();
        let now = Utc::now();
        let p = s.payments[PARTLY_REFUNDED].clone();
        assert_eq!(s.remaining(&p), 70000);
        let r = s.create_refund(&attrs(70001, PARTLY_REFUNDED), None, now);
        assert_eq!(
            (r.answer.status, codes(&r.answer)),
            (400, vec!["parameter_above_maximum"])
        );
        let r = s.create_refund(&attrs(70000, PARTLY_REFUNDED), None, now);
        assert_eq!(r.answer.status, 200);
        assert_eq!(r.answer.body["data"]["attributes"]["status"], "pending");
        let id = r.created.unwrap();
        assert_eq!(s.remaining(&s.payments[PARTLY_REFUNDED].clone()), 0);
        s.settle(&id, Some(Outcome::Failed), now).unwrap();
        assert_eq!(s.remaining(&s.payments[PARTLY_REFUNDED].clone()), 70000);
        assert_eq!(s.stats.refunds_created, 1);
    }

    /// Only paid payments; unknown ones are resource_not_found; a payment's set refusal.
    #[test]
    fn payment_rules() {
        let mut s = State::with_fixtures();
        let now = Utc::now();
        for (id, status, code) in [
            (PENDING, 400, "resource_failed_state"),
            (FAILED, 400, "resource_failed_state"),
            ("pay_nope", 404, "resource_not_found"),
            (WINDOW_PASSED, 400, "allowed_date_exceeded"),
            (LOW_BALANCE, 400, "available_balance_insufficient"),
        ] {
            let r = s.create_refund(&attrs(1000, id), None, now);
            assert_eq!(
                (r.answer.status, codes(&r.answer)),
                (status, vec![code]),
                "{id}"
            );
        }
        assert_eq!(s.stats.refunds_created, 0);
    }

    /// Validation reports every bad attribute at once.
    #[test]
    fn validation_reports_every_error() {
        let mut s = State::with_fixtures();
        let r = s.create_refund(
            &json!({"amount": 99, "reason": "because", "notes": "x".repeat(256), "metadata": {"n": 1}}),
            Some("k"),
            Utc::now(),
        );
        assert_eq!(r.answer.status, 400);
        assert_eq!(
            codes(&r.answer),
            [
                "parameter_below_minimum",
                "parameter_required",
                "parameter_invalid",
                "parameter_above_maximum",
                "parameter_data_type_invalid"
            ]
        );
        // Validation failures are not stored against the key.
        assert!(s.keys.is_empty());
    }

    /// The same key and attributes replay the first answer (a refusal too); other attributes
    /// are refused; after 24 hours the key is new again.
    #[test]
    fn idempotency_keys_replay_for_24_hours() {
        let mut s = State::with_fixtures();
        let t0 = Utc::now();
        let first = s.create_refund(&attrs(1000, PAID_50000), Some("k1"), t0);
        assert!(first.created.is_some());
        let again = s.create_refund(
            &attrs(1000, PAID_50000),
            Some("k1"),
            t0 + ChronoDuration::hours(23),
        );
        assert!(again.replayed);
        assert_eq!(again.answer, first.answer);
        let other = s.create_refund(&attrs(2000, PAID_50000), Some("k1"), t0);
        assert_eq!(codes(&other.answer), ["idempotency_key_in_use"]);
        assert_eq!(s.stats.refunds_created, 1);

        let refused = s.create_refund(&attrs(1000, PENDING), Some("k2"), t0);
        let replayed = s.create_refund(&attrs(1000, PENDING), Some("k2"), t0);
        assert!(replayed.replayed);
        assert_eq!(replayed.answer, refused.answer);

        let later = s.create_refund(
            &attrs(1000, PAID_50000),
            Some("k1"),
            t0 + ChronoDuration::hours(25),
        );
        assert!(!later.replayed);
        assert!(later.created.is_some());
        assert_eq!(s.stats.refunds_created, 2);
    }

    /// Settling announces the refund: payment.refund.updated (Refund or Payment inside, as
    /// set), plus payment.refunded on success; nothing when webhooks are off; only once.
    #[test]
    fn settling_announces_once() {
        let mut s = State::with_fixtures();
        let now = Utc::now();
        s.webhook_urls = vec!["http://a/hook".into()];
        let id = s
            .create_refund(&attrs(1000, PAID_50000), None, now)
            .created
            .unwrap();
        let deliveries = s.settle(&id, None, now).unwrap();
        let types: Vec<_> = deliveries.iter().map(|d| d.event_type.as_str()).collect();
        assert_eq!(types, ["payment.refund.updated", "payment.refunded"]);
        let body: Value = serde_json::from_slice(&deliveries[0].body).unwrap();
        assert_eq!(body["data"]["attributes"]["data"]["type"], "refund");
        assert_eq!(body["data"]["attributes"]["livemode"], false);
        assert!(s.settle(&id, None, now).is_none());

        s.settings.refund_updated_carries = RefundUpdatedCarries::Payment;
        let id = s
            .create_refund(&attrs(1000, PAID_50000), None, now)
            .created
            .unwrap();
        let deliveries = s.settle(&id, Some(Outcome::Failed), now).unwrap();
        assert_eq!(deliveries.len(), 1);
        let body: Value = serde_json::from_slice(&deliveries[0].body).unwrap();
        assert_eq!(body["data"]["attributes"]["data"]["type"], "payment");

        s.settings.webhooks_enabled = false;
        let id = s
            .create_refund(&attrs(1000, PAID_50000), None, now)
            .created
            .unwrap();
        assert_eq!(s.settle(&id, None, now).unwrap(), vec![]);
    }

    /// Queued outcomes are used in order, then the default.
    #[test]
    fn queued_outcomes_come_first() {
        let mut s = State::with_fixtures();
        let now = Utc::now();
        s.next_outcomes = VecDeque::from([Outcome::Failed]);
        let a = s
            .create_refund(&attrs(1000, PAID_50000), None, now)
            .created
            .unwrap();
        let b = s
            .create_refund(&attrs(1000, PAID_50000), None, now)
            .created
            .unwrap();
        assert_eq!(s.refunds[&a].outcome, Outcome::Failed);
        assert_eq!(s.refunds[&b].outcome, Outcome::Succeeded);
    }
}
