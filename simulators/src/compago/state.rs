//! What the Compago simulator holds in memory, and the rules that change it (docs/PROVIDERS.md
//! section 3). No HTTP here: handlers call these methods under one lock.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::fixtures;
use crate::faults::Held;

/// A payment method's status (CP-OV, S002).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MethodStatus {
    /// Checkout not completed.
    Pending,
    /// Chargeable.
    Active,
    /// Checkout link expired.
    Expired,
    /// Permanently revoked (only from ACTIVE).
    Revoked,
}

impl MethodStatus {
    pub const ALL: [MethodStatus; 4] = [Self::Pending, Self::Active, Self::Expired, Self::Revoked];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Active => "ACTIVE",
            Self::Expired => "EXPIRED",
            Self::Revoked => "REVOKED",
        }
    }

    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == word)
    }
}

/// A payment's status (S002). Only CONFIRMED can be refunded (S000).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    NotInitialized,
    Pending,
    Confirmed,
    Cancelled,
    Refunded,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 5] = [
        Self::NotInitialized,
        Self::Pending,
        Self::Confirmed,
        Self::Cancelled,
        Self::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotInitialized => "NOT_INITIALIZED",
            Self::Pending => "PENDING",
            Self::Confirmed => "CONFIRMED",
            Self::Cancelled => "CANCELLED",
            Self::Refunded => "REFUNDED",
        }
    }

    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == word)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentMethod {
    pub id: Uuid,
    pub status: MethodStatus,
    pub external_id: String,
    pub last_four_digits: String,
    pub network_type: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    pub id: Uuid,
    pub payment_method_id: Uuid,
    pub status: PaymentStatus,
    /// Decimal pesos, exactly as created.
    pub amount: Decimal,
    pub currency: String,
    pub created_at: DateTime<Utc>,
    /// The `reason` of the refund that refunded it.
    pub refund_reason: Option<String>,
    pub refunded_at: Option<DateTime<Utc>>,
}

/// The shared fault switches (see [`crate::faults`]).
pub use crate::faults::Faults;

/// Counters tests can assert on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Every request to Compago's API (not the admin API), whatever its answer.
    pub requests: u64,
    /// Refund POSTs that passed the API-key check, whatever happened next.
    pub refund_posts: u64,
    /// Refunds that turned a payment REFUNDED.
    pub refunds_applied: u64,
    /// `refund_posts` by the payment id in the path (lower case).
    pub refund_posts_by_payment: BTreeMap<String, u64>,
    /// What the simulator holds by payment (filled when read): a payment refunded through
    /// the API is one refund of its whole amount.
    pub refunds_by_payment: BTreeMap<String, Held>,
    /// Compago sends no webhooks: always 0 (here for the uniform shape).
    pub webhooks_sent: u64,
    /// Requests a fault switch acted on (filled when read).
    pub faults_applied: u64,
}

/// Why a refund was not applied: the documented errors (S000).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefundRefusal {
    MethodNotFound,
    PaymentNotFound,
    NotConfirmed,
}

impl RefundRefusal {
    pub fn message(self) -> &'static str {
        match self {
            Self::MethodNotFound => "Payment method not found",
            Self::PaymentNotFound => "Payment not found",
            Self::NotConfirmed => "Payment not CONFIRMED",
        }
    }
}

/// Why a payment method could not be revoked (S002).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevokeRefusal {
    NotFound,
    NotActive,
}

/// Everything the simulator holds.
#[derive(Clone, Debug, Default)]
pub struct State {
    pub methods: BTreeMap<Uuid, PaymentMethod>,
    pub payments: BTreeMap<Uuid, Payment>,
    pub stats: Stats,
}

fn parse_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("fixture times are RFC 3339")
        .with_timezone(&Utc)
}

impl State {
    /// The fixtures of [`fixtures`], no faults, counters at zero.
    pub fn with_fixtures() -> Self {
        let mut state = State::default();
        for m in fixtures::METHODS {
            let id = Uuid::parse_str(m.id).expect("fixture ids are UUIDs");
            state.methods.insert(
                id,
                PaymentMethod {
                    id,
                    status: m.status,
                    external_id: m.external_id.to_owned(),
                    last_four_digits: m.last_four_digits.to_owned(),
                    network_type: m.network_type.to_owned(),
                    created_at: parse_time(m.created_at),
                },
            );
        }
        for p in fixtures::PAYMENTS {
            let id = Uuid::parse_str(p.id).expect("fixture ids are UUIDs");
            state.payments.insert(
                id,
                Payment {
                    id,
                    payment_method_id: Uuid::parse_str(p.payment_method_id)
                        .expect("fixture ids are UUIDs"),
                    status: p.status,
                    amount: p.amount.parse().expect("fixture amounts are decimals"),
                    currency: "MXN".to_owned(),
                    created_at: parse_time(p.created_at),
                    refund_reason: None,
                    refunded_at: None,
                },
            );
        }
        state
    }

    /// A payment method by the id in a path; anything that is not a known UUID is unknown.
    pub fn method(&self, id: &str) -> Option<&PaymentMethod> {
        self.methods.get(&Uuid::try_parse(id).ok()?)
    }

    /// A payment of a payment method. A payment that exists under another method is "not
    /// found" too: the path names both.
    pub fn payment(&self, method_id: &str, payment_id: &str) -> Result<&Payment, RefundRefusal> {
        let method = self
            .method(method_id)
            .ok_or(RefundRefusal::MethodNotFound)?;
        Uuid::try_parse(payment_id)
            .ok()
            .and_then(|id| self.payments.get(&id))
            .filter(|p| p.payment_method_id == method.id)
            .ok_or(RefundRefusal::PaymentNotFound)
    }

    /// The load-test method's payments exist on first sight: a payment UUID under
    /// [`fixtures::LOAD_TEST_METHOD`] that the simulator has not seen becomes a CONFIRMED
    /// [`fixtures::LOAD_TEST_AMOUNT`] MXN payment of that method, so benchmarks can refund
    /// fresh payments without creating them. Anything else (another method, a payment UUID
    /// that already exists, not a UUID) is left alone. Called before every read or refund of
    /// one payment.
    pub fn see(&mut self, method_id: &str, payment_id: &str, now: DateTime<Utc>) {
        let load_test = Uuid::parse_str(fixtures::LOAD_TEST_METHOD).expect("fixture ids are UUIDs");
        if Uuid::try_parse(method_id).ok() != Some(load_test) {
            return;
        }
        let Ok(id) = Uuid::try_parse(payment_id) else {
            return;
        };
        self.payments.entry(id).or_insert_with(|| Payment {
            id,
            payment_method_id: load_test,
            status: PaymentStatus::Confirmed,
            amount: fixtures::LOAD_TEST_AMOUNT
                .parse()
                .expect("fixture amounts are decimals"),
            currency: "MXN".to_owned(),
            created_at: now,
            refund_reason: None,
            refunded_at: None,
        });
    }

    /// Counts a refund POST that passed the API-key check.
    pub fn count_refund_post(&mut self, payment_id: &str) {
        self.stats.refund_posts += 1;
        *self
            .stats
            .refund_posts_by_payment
            .entry(payment_id.to_ascii_lowercase())
            .or_default() += 1;
    }

    /// Refunds a CONFIRMED payment in full: it becomes REFUNDED. Any other status is
    /// refused, so a payment is refunded at most once.
    pub fn refund(
        &mut self,
        method_id: &str,
        payment_id: &str,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Payment, RefundRefusal> {
        self.see(method_id, payment_id, now);
        let id = self.payment(method_id, payment_id)?.id;
        let payment = self
            .payments
            .get_mut(&id)
            .ok_or(RefundRefusal::PaymentNotFound)?;
        if payment.status != PaymentStatus::Confirmed {
            return Err(RefundRefusal::NotConfirmed);
        }
        payment.status = PaymentStatus::Refunded;
        payment.refund_reason = reason;
        payment.refunded_at = Some(now);
        self.stats.refunds_applied += 1;
        Ok(payment.clone())
    }

    /// Revokes an ACTIVE payment method, for good.
    pub fn revoke(&mut self, method_id: &str) -> Result<(), RevokeRefusal> {
        let id = self.method(method_id).ok_or(RevokeRefusal::NotFound)?.id;
        let method = self.methods.get_mut(&id).ok_or(RevokeRefusal::NotFound)?;
        if method.status != MethodStatus::Active {
            return Err(RevokeRefusal::NotActive);
        }
        method.status = MethodStatus::Revoked;
        Ok(())
    }

    /// Payment methods, newest first, optionally of one status.
    pub fn methods_newest_first(&self, status: Option<MethodStatus>) -> Vec<&PaymentMethod> {
        let mut methods: Vec<_> = self
            .methods
            .values()
            .filter(|m| status.is_none_or(|s| m.status == s))
            .collect();
        methods.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        methods
    }

    /// A method's payments, newest first, optionally of one status.
    pub fn payments_newest_first(
        &self,
        method: Uuid,
        status: Option<PaymentStatus>,
    ) -> Vec<&Payment> {
        let mut payments: Vec<_> = self
            .payments
            .values()
            .filter(|p| p.payment_method_id == method && status.is_none_or(|s| p.status == s))
            .collect();
        payments.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        payments
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compago::fixtures::*;

    /// Only a CONFIRMED payment is refunded, exactly once; every other status is refused and
    /// left as it was.
    #[test]
    fn only_confirmed_payments_are_refunded_once() {
        let mut s = State::with_fixtures();
        let now = Utc::now();
        let p = s
            .refund(ACTIVE_METHOD, CONFIRMED_500, Some("why".into()), now)
            .unwrap();
        assert_eq!(p.status, PaymentStatus::Refunded);
        assert_eq!(p.refund_reason.as_deref(), Some("why"));
        assert_eq!(
            s.refund(ACTIVE_METHOD, CONFIRMED_500, None, now),
            Err(RefundRefusal::NotConfirmed)
        );
        for id in [
            PENDING_PAYMENT,
            REFUNDED_PAYMENT,
            NOT_INITIALIZED_PAYMENT,
            CANCELLED_PAYMENT,
        ] {
            let before = s.payment(ACTIVE_METHOD, id).unwrap().status;
            assert_eq!(
                s.refund(ACTIVE_METHOD, id, None, now),
                Err(RefundRefusal::NotConfirmed),
                "{id}"
            );
            assert_eq!(s.payment(ACTIVE_METHOD, id).unwrap().status, before);
        }
        assert_eq!(s.stats.refunds_applied, 1);
    }

    /// Unknown methods and payments, and payments of another method, are not found.
    #[test]
    fn not_found_cases() {
        let mut s = State::with_fixtures();
        let now = Utc::now();
        assert_eq!(
            s.refund(
                "aaaaaaaa-0000-0000-0000-000000000000",
                CONFIRMED_500,
                None,
                now
            ),
            Err(RefundRefusal::MethodNotFound)
        );
        assert_eq!(
            s.refund("not-a-uuid", CONFIRMED_500, None, now),
            Err(RefundRefusal::MethodNotFound)
        );
        assert_eq!(
            s.refund(
                ACTIVE_METHOD,
                "11111111-0000-0000-0000-000000000000",
                None,
                now
            ),
            Err(RefundRefusal::PaymentNotFound)
        );
        assert_eq!(
            s.refund(REVOKED_METHOD, CONFIRMED_500, None, now),
            Err(RefundRefusal::PaymentNotFound)
        );
        assert_eq!(
            s.payment(ACTIVE_METHOD, REVOKED_METHOD_PAYMENT)
                .unwrap_err(),
            RefundRefusal::PaymentNotFound
        );
        assert_eq!(s.stats.refunds_applied, 0);
    }

    /// Ids are matched as UUIDs, whatever their case.
    #[test]
    fn ids_match_in_any_case() {
        let s = State::with_fixtures();
        let p = s
            .payment(&ACTIVE_METHOD.to_uppercase(), &CONFIRMED_500.to_uppercase())
            .unwrap();
        assert_eq!(p.id.to_string(), CONFIRMED_500);
    }

    /// Any payment UUID under the load-test method exists on first sight as CONFIRMED 100.00
    /// MXN, is refunded once like any other, and stays as it became; other methods and
    /// payments that exist elsewhere are not touched.
    #[test]
    fn load_test_payments_exist_on_first_sight() {
        let mut s = State::with_fixtures();
        let now = Utc::now();
        let fresh = "0b0b0b0b-1111-4222-8333-444444444444";
        assert_eq!(
            s.payment(LOAD_TEST_METHOD, fresh),
            Err(RefundRefusal::PaymentNotFound)
        );
        s.see(&LOAD_TEST_METHOD.to_uppercase(), fresh, now);
        let p = s.payment(LOAD_TEST_METHOD, fresh).unwrap().clone();
        assert_eq!(p.status, PaymentStatus::Confirmed);
        assert_eq!(p.amount, "100.00".parse::<Decimal>().unwrap());
        assert_eq!(p.currency, "MXN");
        assert_eq!(p.payment_method_id.to_string(), LOAD_TEST_METHOD);

        // Refunding an unseen one creates it first, then refunds it; only once.
        let other = "0b0b0b0b-2222-4222-8333-444444444444";
        let refunded = s.refund(LOAD_TEST_METHOD, other, None, now).unwrap();
        assert_eq!(refunded.status, PaymentStatus::Refunded);
        assert_eq!(
            s.refund(LOAD_TEST_METHOD, other, None, now),
            Err(RefundRefusal::NotConfirmed)
        );
        s.see(LOAD_TEST_METHOD, other, now);
        assert_eq!(
            s.payment(LOAD_TEST_METHOD, other).unwrap().status,
            PaymentStatus::Refunded
        );

        // A fixture payment of another method stays that method's; non-UUIDs and other
        // methods create nothing.
        let before = s.payments.len();
        s.see(LOAD_TEST_METHOD, CONFIRMED_500, now);
        assert_eq!(
            s.payment(LOAD_TEST_METHOD, CONFIRMED_500),
            Err(RefundRefusal::PaymentNotFound)
        );
        s.see(LOAD_TEST_METHOD, "not-a-uuid", now);
        s.see(ACTIVE_METHOD, "0b0b0b0b-3333-4222-8333-444444444444", now);
        assert_eq!(s.payments.len(), before);
        assert_eq!(s.stats.refunds_applied, 1);
    }

    /// Only an ACTIVE method can be revoked, and only once.
    #[test]
    fn revoke_only_from_active() {
        let mut s = State::with_fixtures();
        assert_eq!(s.revoke(ACTIVE_METHOD), Ok(()));
        assert_eq!(
            s.method(ACTIVE_METHOD).unwrap().status,
            MethodStatus::Revoked
        );
        assert_eq!(s.revoke(ACTIVE_METHOD), Err(RevokeRefusal::NotActive));
        for id in [REVOKED_METHOD, PENDING_METHOD, EXPIRED_METHOD] {
            assert_eq!(s.revoke(id), Err(RevokeRefusal::NotActive), "{id}");
        }
        assert_eq!(
            s.revoke("00000000-0000-0000-0000-000000000000"),
            Err(RevokeRefusal::NotFound)
        );
    }
}
