//! The refund record and the values it is made of.

use std::{collections::BTreeMap, fmt};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{IllegalTransition, Money, RefundStatus};

/// The gateway's identifier of a refund: `rf_` and a time-ordered UUID (v7), hex without
/// dashes. Opaque to callers.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RefundId(String);

impl RefundId {
    const PREFIX: &'static str = "rf_";

    pub fn generate() -> Self {
        Self(format!("{}{}", Self::PREFIX, uuid::Uuid::now_v7().simple()))
    }

    /// Accepts only ids of the form `generate` makes.
    pub fn parse(s: &str) -> Option<Self> {
        let hex = s.strip_prefix(Self::PREFIX)?;
        (hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RefundId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RefundId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tenant: the unit of isolation. Every refund belongs to exactly one.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(String);

impl TenantId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a refund is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundReason {
    Duplicate,
    Fraudulent,
    RequestedByCustomer,
    Other,
}

/// Identifies a payment at its provider. Which parts are needed depends on the provider.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PaymentRef {
    pub payment_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub payment_method_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub invoice_id: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BankAccountType {
    Saving,
    Checking,
}

impl BankAccountType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Saving => "SAVING",
            Self::Checking => "CHECKING",
        }
    }
}

/// A destination bank account. `Debug` never prints the full account number.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BankAccount {
    pub beneficiary: String,
    pub bank_code: String,
    pub branch: String,
    pub account_number: String,
    pub account_type: BankAccountType,
}

impl BankAccount {
    /// The account with its number cut to the last four digits, as callers see it.
    pub fn masked(&self) -> Self {
        Self {
            account_number: mask_account_number(&self.account_number),
            ..self.clone()
        }
    }
}

fn mask_account_number(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    let keep = chars.len().min(4);
    let hidden = chars.len() - keep;
    let mut out = "*".repeat(hidden);
    out.extend(&chars[hidden..]);
    out
}

impl fmt::Debug for BankAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BankAccount")
            .field("bank_code", &self.bank_code)
            .field("account_number", &mask_account_number(&self.account_number))
            .field("account_type", &self.account_type)
            .finish_non_exhaustive()
    }
}

/// Why a refund failed or needs review.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RefundFailure {
    /// Stable UPPER_SNAKE code.
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider_code: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider_message: String,
}

impl RefundFailure {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            ..Self::default()
        }
    }

    pub fn with_provider(mut self, code: impl Into<String>, message: impl Into<String>) -> Self {
        self.provider_code = code.into();
        self.provider_message = message.into();
        self
    }
}

/// What the gateway knows about its submission of the refund to the provider. This decides
/// what reconciliation may do: only a submission that provably never happened may be sent
/// again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Submission {
    /// Recorded; a submission is being made or was being made when the process stopped. Its
    /// outcome is unknown until the provider is asked.
    Sending,
    /// The attempt ended without a known outcome (timeout, dropped connection, 5xx,
    /// unreadable answer).
    Unknown,
    /// The provider acknowledged the refund.
    Accepted,
    /// The provider refused the request; nothing was created there.
    Rejected,
    /// The request provably never reached the provider.
    NotSent,
}

impl Submission {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sending => "sending",
            Self::Unknown => "unknown",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::NotSent => "not_sent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Sending,
            Self::Unknown,
            Self::Accepted,
            Self::Rejected,
            Self::NotSent,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// Whether the provider may hold this refund without the gateway knowing it.
    pub fn is_uncertain(self) -> bool {
        matches!(self, Self::Sending | Self::Unknown)
    }
}

/// A refund as the gateway records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub id: RefundId,
    pub tenant: TenantId,
    pub request_id: String,
    /// The provider account name from the configuration.
    pub provider: String,
    pub payment: PaymentRef,
    pub amount: Money,
    pub status: RefundStatus,
    pub provider_refund_id: Option<String>,
    pub provider_status: Option<String>,
    pub reason: RefundReason,
    pub description: String,
    pub metadata: BTreeMap<String, String>,
    pub bank_account: Option<BankAccount>,
    pub failure: Option<RefundFailure>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped by every stored change; stores use it for compare-and-set.
    pub version: i64,
    pub submission: Submission,
    /// When the worker should next ask the provider; `None` when nothing is left to learn.
    pub next_check_at: Option<DateTime<Utc>>,
    /// How many times the worker has asked since the last change.
    pub check_attempts: i32,
    /// When the latest submission attempt was recorded, just before it was sent (the first
    /// one with the refund itself, a resend by compare-and-set). Another attempt may start
    /// only once this one is surely over at the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
}

/// What a provider reported about a refund, in the gateway's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    pub status: RefundStatus,
    pub provider_refund_id: Option<String>,
    pub provider_status: Option<String>,
    pub failure: Option<RefundFailure>,
    /// The refund's amount and currency as the provider states them, when it does.
    pub amount: Option<Money>,
    /// The payment the provider says the refund is of (in the form of
    /// `PaymentRef::payment_id`), when it says.
    pub payment_id: Option<String>,
}

impl Observation {
    /// Why this observation cannot be about `refund`: the provider states another amount,
    /// currency or payment than the refund's. Empty when nothing it states contradicts the
    /// refund (what it leaves out is not checked).
    pub fn contradictions(&self, refund: &Refund) -> Vec<String> {
        let mut found = Vec::new();
        if let Some(amount) = self.amount {
            if amount.currency != refund.amount.currency {
                found.push(format!(
                    "currency {} instead of {}",
                    amount.currency, refund.amount.currency
                ));
            } else if amount.minor != refund.amount.minor {
                found.push(format!("amount {amount} instead of {}", refund.amount));
            }
        }
        if let Some(payment_id) = &self.payment_id
            && *payment_id != refund.payment.payment_id
        {
            found.push(format!(
                "payment {payment_id:?} instead of {:?}",
                refund.payment.payment_id
            ));
        }
        found
    }

    /// This observation as one that needs a person: REQUIRES_REVIEW with a
    /// `PROVIDER_MISMATCH` failure naming what differs (`differences`, not empty) and what
    /// the provider said. The provider's id and status word are kept.
    pub fn contradicted(mut self, differences: &[String], payment_id: &str) -> Observation {
        let said = format!(
            "refund={} status={} amount={} payment={}",
            self.provider_refund_id.as_deref().unwrap_or("?"),
            self.provider_status.as_deref().unwrap_or("?"),
            self.amount
                .map_or_else(|| "?".to_owned(), |m| m.to_string()),
            self.payment_id.as_deref().unwrap_or("?"),
        );
        self.failure = Some(
            RefundFailure::new(
                super::reason::PROVIDER_MISMATCH,
                format!(
                    "the provider's answer does not match the refund: {}; check payment \
                     {payment_id} at the provider before doing anything else",
                    differences.join(", ")
                ),
            )
            .with_provider(self.provider_status.clone().unwrap_or_default(), said),
        );
        self.status = RefundStatus::RequiresReview;
        self
    }
}

impl Refund {
    /// A refund as it is first recorded: PENDING, version 1, about to be sent, nothing heard
    /// from the provider yet, no check scheduled; reason `Other`, no description, metadata
    /// or bank account (set them with struct update syntax).
    pub fn new_pending(
        tenant: TenantId,
        request_id: impl Into<String>,
        provider: impl Into<String>,
        payment: PaymentRef,
        amount: Money,
        now: DateTime<Utc>,
    ) -> Refund {
        Refund {
            id: RefundId::generate(),
            tenant,
            request_id: request_id.into(),
            provider: provider.into(),
            payment,
            amount,
            status: RefundStatus::Pending,
            provider_refund_id: None,
            provider_status: None,
            reason: RefundReason::Other,
            description: String::new(),
            metadata: BTreeMap::new(),
            bank_account: None,
            failure: None,
            created_at: now,
            updated_at: now,
            version: 1,
            submission: Submission::Sending,
            next_check_at: None,
            check_attempts: 0,
            sent_at: None,
        }
    }

    /// The refund as callers may see it: bank account number masked.
    pub fn public_view(&self) -> Refund {
        self.clone().into_public_view()
    }

    /// [`Refund::public_view`] of a refund that is not needed any more.
    pub fn into_public_view(mut self) -> Refund {
        self.bank_account = self.bank_account.as_ref().map(BankAccount::masked);
        self
    }

    /// Whether the refund is held for a person because a provider's answer contradicted the
    /// request (REQUIRES_REVIEW with `PROVIDER_MISMATCH`). Automatic updates (the worker,
    /// webhooks) leave such a refund alone; only a deliberate SyncRefund records the
    /// provider's word again.
    pub fn under_mismatch_review(&self) -> bool {
        self.status == RefundStatus::RequiresReview
            && self
                .failure
                .as_ref()
                .is_some_and(|f| f.code == super::reason::PROVIDER_MISMATCH)
    }

    /// Whether the visible parts differ (what makes an event).
    pub fn differs_visibly(&self, other: &Refund) -> bool {
        self.status != other.status
            || self.provider_refund_id != other.provider_refund_id
            || self.provider_status != other.provider_status
            || self.failure != other.failure
    }

    /// Applies what the provider reported. Returns the changed refund, or an error when the
    /// status machine refuses the change. Fields the observation leaves empty are kept.
    ///
    /// The integrity rule, for every provider and every source (submission answers,
    /// read-backs, webhooks): an observation whose amount, currency or payment differs from
    /// the refund's is not accepted as it is; the refund goes to REQUIRES_REVIEW with a
    /// `PROVIDER_MISMATCH` failure instead ([`Observation::contradicted`]).
    pub fn observe(
        &self,
        obs: &Observation,
        now: DateTime<Utc>,
    ) -> Result<Refund, IllegalTransition> {
        let differences = obs.contradictions(self);
        let reviewed;
        let obs = if differences.is_empty() {
            obs
        } else {
            reviewed = obs
                .clone()
                .contradicted(&differences, &self.payment.payment_id);
            &reviewed
        };
        self.status.check(obs.status)?;
        let mut next = self.clone();
        next.status = obs.status;
        if obs.provider_refund_id.is_some() {
            next.provider_refund_id.clone_from(&obs.provider_refund_id);
        }
        if obs.provider_status.is_some() {
            next.provider_status.clone_from(&obs.provider_status);
        }
        match obs.status {
            RefundStatus::Failed | RefundStatus::Canceled | RefundStatus::RequiresReview => {
                if obs.failure.is_some() {
                    next.failure.clone_from(&obs.failure);
                }
            }
            _ => next.failure = None,
        }
        if next.differs_visibly(self) {
            next.updated_at = now;
        }
        Ok(next)
    }
}

/// One stored change of one refund.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundEvent {
    /// Strictly increasing across the store, never reused.
    pub sequence: u64,
    /// The refund after the change, as callers may see it.
    pub refund: Refund,
    /// `None` for the event that created the refund.
    pub previous_status: Option<RefundStatus>,
    pub event_time: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Currency;

    fn refund(status: RefundStatus) -> Refund {
        Refund {
            status,
            ..Refund::new_pending(
                TenantId::new("t"),
                "r",
                "compago",
                PaymentRef::default(),
                Money::new(100, Currency::parse("MXN").unwrap()),
                Utc::now(),
            )
        }
    }

    #[test]
    fn ids_are_generated_in_a_parseable_form() {
        let id = RefundId::generate();
        assert_eq!(RefundId::parse(id.as_str()), Some(id.clone()));
        assert!(RefundId::parse("rf_xyz").is_none());
        assert!(RefundId::parse("").is_none());
        assert!(RefundId::parse(&id.as_str().to_uppercase()).is_none());
    }

    #[test]
    fn account_numbers_are_masked_everywhere_but_the_record() {
        let acct = BankAccount {
            beneficiary: "Carlos Ramirez".into(),
            bank_code: "01".into(),
            branch: "9283".into(),
            account_number: "18293435".into(),
            account_type: BankAccountType::Saving,
        };
        assert_eq!(acct.masked().account_number, "****3435");
        assert!(!format!("{acct:?}").contains("18293435"));
        let short = BankAccount {
            account_number: "12".into(),
            ..acct
        };
        assert_eq!(short.masked().account_number, "12");
    }

    #[test]
    fn observing_an_illegal_change_is_refused() {
        let failed = refund(RefundStatus::Failed);
        let obs = Observation {
            status: RefundStatus::Succeeded,
            provider_refund_id: None,
            provider_status: Some("REFUNDED".into()),
            failure: None,
            amount: None,
            payment_id: None,
        };
        assert!(failed.observe(&obs, Utc::now()).is_err());
    }

    #[test]
    fn observing_keeps_known_ids_and_clears_failure_on_success() {
        let mut r = refund(RefundStatus::RequiresReview);
        r.provider_refund_id = Some("p1".into());
        r.failure = Some(RefundFailure::new("X", "y"));
        let obs = Observation {
            status: RefundStatus::Succeeded,
            provider_refund_id: None,
            provider_status: Some("COMPLETED".into()),
            failure: None,
            amount: None,
            payment_id: None,
        };
        let next = r.observe(&obs, Utc::now()).unwrap();
        assert_eq!(next.provider_refund_id.as_deref(), Some("p1"));
        assert_eq!(next.failure, None);
        assert!(next.differs_visibly(&r));
        let again = next.observe(&obs, Utc::now()).unwrap();
        assert!(!again.differs_visibly(&next));
    }

    fn stated(amount: Option<Money>, payment_id: Option<&str>) -> Observation {
        Observation {
            status: RefundStatus::Succeeded,
            provider_refund_id: Some("p9".into()),
            provider_status: Some("DONE".into()),
            failure: None,
            amount,
            payment_id: payment_id.map(str::to_owned),
        }
    }

    /// The integrity rule: what the provider states about amount, currency and payment must
    /// be the refund's; anything it leaves out is not checked.
    #[test]
    fn observations_that_match_or_say_nothing_are_accepted() {
        let mut r = refund(RefundStatus::Pending);
        r.payment.payment_id = "pay_1".into();
        let mxn = Currency::parse("MXN").unwrap();
        for obs in [
            stated(Some(Money::new(100, mxn)), Some("pay_1")),
            stated(None, Some("pay_1")),
            stated(Some(Money::new(100, mxn)), None),
            stated(None, None),
        ] {
            assert!(obs.contradictions(&r).is_empty(), "{obs:?}");
            let next = r.observe(&obs, Utc::now()).unwrap();
            assert_eq!(next.status, RefundStatus::Succeeded);
            assert_eq!(next.failure, None);
        }
    }

    /// Another amount, currency or payment: REQUIRES_REVIEW with PROVIDER_MISMATCH naming
    /// what differs, instead of the status the provider reported; the provider's id and
    /// status word are kept, and seeing the same answer again changes nothing.
    #[test]
    fn contradicting_observations_need_review() {
        let mut r = refund(RefundStatus::Pending);
        r.payment.payment_id = "pay_1".into();
        let mxn = Currency::parse("MXN").unwrap();
        let usd = Currency::parse("USD").unwrap();
        let cases = [
            (
                stated(Some(Money::new(101, mxn)), Some("pay_1")),
                vec!["amount 1.01 MXN instead of 1.00 MXN"],
            ),
            (
                stated(Some(Money::new(100, usd)), None),
                vec!["currency USD instead of MXN"],
            ),
            (
                stated(None, Some("pay_2")),
                vec!["payment \"pay_2\" instead of \"pay_1\""],
            ),
            (
                stated(Some(Money::new(99, mxn)), Some("PAY_1")),
                vec!["amount 0.99 MXN", "payment \"PAY_1\""],
            ),
        ];
        for (obs, needles) in cases {
            assert_eq!(obs.contradictions(&r).len(), needles.len(), "{obs:?}");
            let next = r.observe(&obs, Utc::now()).unwrap();
            assert_eq!(next.status, RefundStatus::RequiresReview, "{obs:?}");
            assert_eq!(next.provider_refund_id.as_deref(), Some("p9"));
            assert_eq!(next.provider_status.as_deref(), Some("DONE"));
            let failure = next.failure.clone().unwrap();
            assert_eq!(failure.code, crate::domain::reason::PROVIDER_MISMATCH);
            for needle in needles {
                assert!(failure.message.contains(needle), "{}", failure.message);
            }
            assert!(failure.message.contains("pay_1"), "{}", failure.message);
            let again = next.observe(&obs, Utc::now()).unwrap();
            assert!(!again.differs_visibly(&next));
        }
    }

    /// A contradiction cannot undo a final status: SUCCEEDED may only become FAILED, so the
    /// change to REQUIRES_REVIEW is refused (the service logs and counts it).
    #[test]
    fn a_contradiction_does_not_reopen_a_final_refund() {
        let r = refund(RefundStatus::Succeeded);
        let obs = stated(Some(Money::new(5, Currency::parse("MXN").unwrap())), None);
        let refused = r.observe(&obs, Utc::now()).unwrap_err();
        assert_eq!(refused.to, RefundStatus::RequiresReview);
    }
}
