//! What the D24 simulator holds in memory, and the rules that change it (docs/PROVIDERS.md
//! section 1). No HTTP here: handlers call these methods under one lock.
//!
//! Rules, as documented:
//! - only COMPLETED deposits can be refunded (801); deposit and invoice must match (208);
//! - non-card deposits need a `bank_account` (804);
//! - any number of refunds per deposit while their sum stays within the deposit's amount;
//!   REJECTED and CANCELLED refunds do not count; a missing `amount` means the whole deposit
//!   (802 otherwise, also for amounts that are not positive or have too many decimals);
//! - card refunds answer SUCCESS, IN_PROGRESS or REJECTED at once; bank/cash refunds start
//!   PENDING and move to DELIVERED, then COMPLETED.
//!
//! Chosen here, as D24 does not document it: an `X-Idempotency-Key` is *used* once a refund
//! was created under it, and is then remembered for the simulator's life; any later request
//! with it answers 104 whatever its body, and before any other rule (so a repeat of a landed
//! request is never judged again). A request refused with an error does not use its key.
//! `Timing::amount_before_key` plays the other order: the amount is judged first (802), then
//! the key.

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::fixtures;
use super::wire::{self, CardResult, DepositState, RefundState};
use crate::{
    currency,
    faults::{Held, WebhookHold},
};

/// The first id of card refunds (S003's example id) and of bank/cash refunds (S001's).
const FIRST_CARD_REFUND_ID: u64 = 80000001;
const FIRST_BANK_REFUND_ID: u64 = 168284;

/// How many notification attempts the log keeps.
const NOTIFICATION_LOG: usize = 1000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deposit {
    pub id: u64,
    pub invoice_id: String,
    pub status: DepositState,
    /// `local_amount`: decimal major units, exactly as created.
    pub amount: Decimal,
    pub currency: String,
    pub usd_amount: Option<Decimal>,
    pub country: String,
    pub payment_method: String,
    pub payment_type: String,
    /// What a card refund of it answers (ignored for other methods).
    pub card_result: CardResult,
    pub created_at: DateTime<Utc>,
}

impl Deposit {
    pub fn is_card(&self) -> bool {
        wire::is_card_type(&self.payment_type)
    }
}

/// One status a refund had, and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusChange {
    pub status: RefundState,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refund {
    pub id: u64,
    /// A card refund (its id is written as a JSON string, as in S003).
    pub card: bool,
    pub deposit_id: u64,
    pub merchant_invoice_id: String,
    pub amount: Decimal,
    pub currency: String,
    pub status: RefundState,
    /// The immediate answer of a card refund.
    pub card_result: Option<CardResult>,
    pub payment_method: String,
    pub reason: Option<String>,
    pub reason_code: Option<String>,
    pub bank_account: Option<serde_json::Value>,
    pub comments: Option<String>,
    pub notification_url: Option<String>,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Bumped by every status change: a scheduled change applies only to the version it saw.
    pub version: u64,
    pub history: Vec<StatusChange>,
}

/// A refund request, as read from the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRefund {
    pub deposit_id: u64,
    pub invoice_id: String,
    pub amount: Option<Decimal>,
    pub bank_account: Option<serde_json::Value>,
    pub comments: Option<String>,
    pub notification_url: Option<String>,
}

/// The shared fault switches (see [`crate::faults`]).
pub use crate::faults::Faults;

/// How refunds move on by themselves and how notifications go out. `POST /sandbox/timing`
/// replaces it (missing keys take their defaults); `DELETE` restores the defaults. Applies
/// to each step scheduled after it is set. A `null` delay means "never by itself" (force
/// the status through the admin API).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timing {
    /// Every card refund answers IN_PROGRESS (instead of its deposit's result).
    pub card_in_progress: bool,
    /// An IN_PROGRESS card refund (PENDING) becomes COMPLETED after this long.
    pub card_completed_after_ms: Option<u64>,
    /// A bank/cash refund goes PENDING -> DELIVERED after this long...
    pub delivered_after_ms: Option<u64>,
    /// ...and DELIVERED -> COMPLETED after this long.
    pub completed_after_ms: Option<u64>,
    /// Whether status changes are notified at all (off: the gateway must poll).
    pub notifications: bool,
    /// First wait before a notification that was not answered 200 is sent again; each
    /// further wait is five times longer (D24: 5, 25, 125, 625 minutes).
    pub notify_retry_ms: u64,
    /// How many times a notification is sent again (D24: 5).
    pub notify_max_retries: u32,
    /// Refund creates judge the amount before the `X-Idempotency-Key` (D24 does not document
    /// the order): a repeat of a landed full refund then answers 802 instead of 104.
    pub amount_before_key: bool,
    /// Refund creates answer this D24 error code (HTTP 400 unless the code is documented
    /// with another status), applying nothing: e.g. a code D24 does not document.
    pub refund_error_code: Option<u32>,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            card_in_progress: false,
            card_completed_after_ms: Some(2_000),
            delivered_after_ms: Some(1_000),
            completed_after_ms: Some(2_000),
            notifications: true,
            notify_retry_ms: 100,
            notify_max_retries: 5,
            amount_before_key: false,
            refund_error_code: None,
        }
    }
}

impl Timing {
    pub fn check(&self) -> Result<(), String> {
        let delays = [
            self.card_completed_after_ms,
            self.delivered_after_ms,
            self.completed_after_ms,
            Some(self.notify_retry_ms),
        ];
        if delays
            .into_iter()
            .flatten()
            .any(|d| d > Faults::MAX_DELAY_MS)
        {
            return Err(format!(
                "delays must be at most {} ms",
                Faults::MAX_DELAY_MS
            ));
        }
        if self.notify_max_retries > 10 {
            return Err("notify_max_retries must be at most 10".to_owned());
        }
        Ok(())
    }
}

/// One notification attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NotificationRecord {
    pub refund_id: u64,
    pub url: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// When the POST started.
    pub started_at: DateTime<Utc>,
    /// The HTTP status answered, if any.
    pub answered: Option<u16>,
    pub error: Option<String>,
}

/// Counters tests can assert on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Every request to D24's API (not the admin API), whatever its answer.
    pub requests: u64,
    /// Answers with a header error (100-105), by code.
    pub header_errors: BTreeMap<u32, u64>,
    /// Every `POST /v3/refunds` received, whatever its answer.
    pub refund_posts: u64,
    /// Refund POSTs that passed the header checks, by the `deposit_id` of their body.
    pub refund_posts_by_deposit: BTreeMap<String, u64>,
    /// The same, under the name every simulator uses (the deposit is the payment).
    pub refund_posts_by_payment: BTreeMap<String, u64>,
    /// Refunds created.
    pub refunds_created: u64,
    /// What the simulator holds by deposit (filled when read): refunds created, and what
    /// those not REJECTED or CANCELLED hold.
    pub refunds_by_payment: BTreeMap<String, Held>,
    /// Answers 104 (a reused idempotency key).
    pub idempotency_key_reuses: u64,
    /// Notifications answered 200.
    pub notifications_sent: u64,
    /// The same, under the name every simulator uses.
    pub webhooks_sent: u64,
    /// Notification attempts not answered 200 (each retry counts).
    pub notifications_failed: u64,
    /// Requests and notifications a fault switch acted on (filled when read).
    pub faults_applied: u64,
    /// The most refund POSTs with one `X-Idempotency-Key` (one gateway refund) in flight at
    /// once, by key: from the request's arrival to its answer, delays included.
    pub max_in_flight_by_key: BTreeMap<String, u64>,
    /// The largest of `max_in_flight_by_key` (0 before any refund POST with a key).
    pub max_in_flight_per_key: u64,
}

/// Everything the simulator holds.
#[derive(Clone, Debug)]
pub struct State {
    pub deposits: BTreeMap<u64, Deposit>,
    pub refunds: BTreeMap<u64, Refund>,
    /// Idempotency keys that created a refund, with its id.
    pub used_keys: HashMap<String, u64>,
    /// Refund POSTs in flight now, by idempotency key.
    pub in_flight_by_key: HashMap<String, u64>,
    pub timing: Timing,
    /// Notifications held back by `reorder_webhooks`: (refund id, URL).
    pub webhook_hold: WebhookHold<(u64, String)>,
    pub stats: Stats,
    pub notifications: VecDeque<NotificationRecord>,
    /// Bumped by a reset, so steps scheduled before it do nothing after it.
    pub epoch: u64,
    next_card_refund: u64,
    next_bank_refund: u64,
}

impl Default for State {
    fn default() -> Self {
        Self {
            deposits: BTreeMap::new(),
            refunds: BTreeMap::new(),
            used_keys: HashMap::new(),
            in_flight_by_key: HashMap::new(),
            timing: Timing::default(),
            webhook_hold: WebhookHold::default(),
            stats: Stats::default(),
            notifications: VecDeque::new(),
            epoch: 0,
            next_card_refund: FIRST_CARD_REFUND_ID,
            next_bank_refund: FIRST_BANK_REFUND_ID,
        }
    }
}

fn parse_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("fixture times are RFC 3339")
        .with_timezone(&Utc)
}

/// Checks a `bank_account` object: the fields D24's example and SDKs show, with
/// `account_type` SAVING or CHECKING.
fn bank_account_is_valid(value: &serde_json::Value) -> bool {
    let Some(object) = value.as_object() else {
        return false;
    };
    let present = |key: &str| match object.get(key) {
        Some(serde_json::Value::String(s)) => !s.trim().is_empty(),
        Some(serde_json::Value::Number(_)) => true,
        _ => false,
    };
    ["beneficiary", "bank_code", "account_number"]
        .into_iter()
        .all(present)
        && matches!(
            object.get("account_type").and_then(|v| v.as_str()),
            Some("SAVING" | "CHECKING")
        )
}

impl State {
    /// The fixtures of [`fixtures`], default timing, no faults, counters at zero.
    pub fn with_fixtures() -> Self {
        let mut state = State::default();
        let created_at = parse_time("2025-02-01T12:00:00Z");
        for d in fixtures::DEPOSITS {
            state.deposits.insert(
                d.id,
                Deposit {
                    id: d.id,
                    invoice_id: d.invoice_id.to_owned(),
                    status: d.status,
                    amount: d.amount.parse().expect("fixture amounts are decimals"),
                    currency: d.currency.to_owned(),
                    usd_amount: Some(d.usd_amount.parse().expect("fixture amounts are decimals")),
                    country: d.country.to_owned(),
                    payment_method: d.payment_method.to_owned(),
                    payment_type: d.payment_type.to_owned(),
                    card_result: d.card_result,
                    created_at,
                },
            );
        }
        state
    }

    /// What the simulator holds by deposit, for the stats.
    pub fn refunds_by_payment(&self) -> BTreeMap<String, Held> {
        let mut held: BTreeMap<String, Held> = BTreeMap::new();
        for r in self.refunds.values() {
            let holds = !matches!(r.status, RefundState::Rejected | RefundState::Cancelled);
            held.entry(r.deposit_id.to_string())
                .or_default()
                .add(r.amount, &r.currency, holds);
        }
        held
    }

    /// The amount of a deposit that refunds hold (every refund but REJECTED and CANCELLED).
    pub fn refunded(&self, deposit_id: u64) -> Decimal {
        self.refunds
            .values()
            .filter(|r| r.deposit_id == deposit_id)
            .filter(|r| !matches!(r.status, RefundState::Rejected | RefundState::Cancelled))
            .map(|r| r.amount)
            .sum()
    }

    /// Counts a refund POST that passed the header checks.
    pub fn count_refund_post(&mut self, deposit_id: Option<u64>) {
        let key = deposit_id.map_or_else(|| "(none)".to_owned(), |d| d.to_string());
        *self
            .stats
            .refund_posts_by_deposit
            .entry(key.clone())
            .or_default() += 1;
        *self.stats.refund_posts_by_payment.entry(key).or_default() += 1;
    }

    /// A refund POST with `key` arrived: counts it in flight (and its high-water mark).
    pub fn post_started(&mut self, key: &str) {
        let now = self.in_flight_by_key.entry(key.to_owned()).or_default();
        *now += 1;
        let now = *now;
        let max = self
            .stats
            .max_in_flight_by_key
            .entry(key.to_owned())
            .or_default();
        *max = (*max).max(now);
        self.stats.max_in_flight_per_key = self.stats.max_in_flight_per_key.max(now);
    }

    /// A refund POST with `key` was answered.
    pub fn post_ended(&mut self, key: &str) {
        if let Some(now) = self.in_flight_by_key.get_mut(key) {
            *now = now.saturating_sub(1);
            if *now == 0 {
                self.in_flight_by_key.remove(key);
            }
        }
    }

    /// 104 if `key` already created a refund.
    fn key_unused(&mut self, idempotency_key: Option<&str>) -> Result<(), u32> {
        if let Some(key) = idempotency_key
            && self.used_keys.contains_key(key)
        {
            self.stats.idempotency_key_reuses += 1;
            return Err(wire::IDEMPOTENCY_KEY_ALREADY_USED);
        }
        Ok(())
    }

    /// Applies the refund rules; the created refund, or the D24 error code.
    pub fn create_refund(
        &mut self,
        new: NewRefund,
        idempotency_key: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Refund, u32> {
        if let Some(code) = self.timing.refund_error_code {
            return Err(code);
        }
        if !self.timing.amount_before_key {
            self.key_unused(idempotency_key)?;
        }
        if new
            .comments
            .as_ref()
            .is_some_and(|c| c.chars().count() > wire::MAX_COMMENTS)
            || new.invoice_id.chars().count() > wire::MAX_INVOICE_ID
            || new
                .notification_url
                .as_ref()
                .is_some_and(|u| u.len() > wire::MAX_NOTIFICATION_URL)
        {
            return Err(202);
        }
        let deposit = self
            .deposits
            .get(&new.deposit_id)
            .filter(|d| d.invoice_id == new.invoice_id)
            .ok_or(208_u32)?
            .clone();
        if deposit.status != DepositState::Completed {
            return Err(801);
        }
        match &new.bank_account {
            None | Some(serde_json::Value::Null) if !deposit.is_card() => return Err(804),
            Some(account) if !account.is_null() && !bank_account_is_valid(account) => {
                return Err(202);
            }
            _ => {}
        }
        let amount = new.amount.unwrap_or(deposit.amount);
        let exponent = currency::exponent(&deposit.currency)
            .unwrap_or(wire::MAX_DECIMALS)
            .min(wire::MAX_DECIMALS);
        if amount <= Decimal::ZERO
            || amount.normalize().scale() > exponent
            || self.refunded(deposit.id) + amount > deposit.amount
        {
            return Err(802);
        }
        if self.timing.amount_before_key {
            self.key_unused(idempotency_key)?;
        }
        let card = deposit.is_card();
        let card_result = card.then_some(if self.timing.card_in_progress {
            CardResult::InProgress
        } else {
            deposit.card_result
        });
        let status = match card_result {
            Some(CardResult::Success) => RefundState::Completed,
            Some(CardResult::Rejected) => RefundState::Rejected,
            Some(CardResult::InProgress) | None => RefundState::Pending,
        };
        let id = if card {
            let id = self.next_card_refund;
            self.next_card_refund += 1;
            id
        } else {
            let id = self.next_bank_refund;
            self.next_bank_refund += 1;
            id
        };
        let rejected = card_result == Some(CardResult::Rejected);
        let refund = Refund {
            id,
            card,
            deposit_id: deposit.id,
            merchant_invoice_id: deposit.invoice_id.clone(),
            amount,
            currency: deposit.currency.clone(),
            status,
            card_result,
            payment_method: deposit.payment_method.clone(),
            reason: rejected.then(|| "Card expired".to_owned()),
            reason_code: rejected.then(|| "1".to_owned()),
            bank_account: new.bank_account.filter(|v| !v.is_null()),
            comments: new.comments,
            notification_url: new.notification_url,
            idempotency_key: idempotency_key.map(str::to_owned),
            created_at: now,
            version: 1,
            history: vec![StatusChange { status, at: now }],
        };
        if let Some(key) = idempotency_key {
            self.used_keys.insert(key.to_owned(), id);
        }
        self.stats.refunds_created += 1;
        self.refunds.insert(id, refund.clone());
        Ok(refund)
    }

    /// Sets a refund's status (the admin API's force, and scheduled steps). `None` if there
    /// is no such refund.
    pub fn set_status(
        &mut self,
        id: u64,
        status: RefundState,
        now: DateTime<Utc>,
    ) -> Option<Refund> {
        let refund = self.refunds.get_mut(&id)?;
        refund.status = status;
        refund.version += 1;
        refund.history.push(StatusChange { status, at: now });
        Some(refund.clone())
    }

    /// A scheduled step: sets `status` only if the refund is still at `version` (nothing
    /// else changed it meanwhile) and the state was not reset.
    pub fn step(
        &mut self,
        epoch: u64,
        id: u64,
        version: u64,
        status: RefundState,
        now: DateTime<Utc>,
    ) -> Option<Refund> {
        if epoch != self.epoch || self.refunds.get(&id)?.version != version {
            return None;
        }
        self.set_status(id, status, now)
    }

    /// The next step a refund takes by itself, and after how long; `None` when it waits
    /// for a forced change (or is final).
    pub fn next_step(&self, refund: &Refund) -> Option<(RefundState, u64)> {
        let t = &self.timing;
        match (refund.card, refund.status) {
            (true, RefundState::Pending) => {
                Some((RefundState::Completed, t.card_completed_after_ms?))
            }
            (false, RefundState::Pending) => Some((RefundState::Delivered, t.delivered_after_ms?)),
            (false, RefundState::Delivered) => {
                Some((RefundState::Completed, t.completed_after_ms?))
            }
            _ => None,
        }
    }

    /// Logs a notification attempt and counts it.
    pub fn log_notification(&mut self, record: NotificationRecord) {
        if record.answered == Some(200) {
            self.stats.notifications_sent += 1;
            self.stats.webhooks_sent += 1;
        } else {
            self.stats.notifications_failed += 1;
        }
        if self.notifications.len() == NOTIFICATION_LOG {
            self.notifications.pop_front();
        }
        self.notifications.push_back(record);
    }
}

#[cfg(test)]
mod tests;
