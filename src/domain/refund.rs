//! The refund record and the values it is made of.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    BankAccount, IllegalTransition, Money, Observation, PaymentRef, RefundId, RefundStatus,
    TenantId,
};

/// Why a refund is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundReason {
    Duplicate,
    Fraudulent,
    RequestedByCustomer,
    Other,
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
    /// The actor whose call created the refund (`caller:<key id>`, `operator:<key id>` or
    /// `caller:open`): an approval must come from another key. `None` for refunds recorded
    /// before the gateway kept it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<super::Actor>,
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
            created_by: None,
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
    /// Who made the change and why.
    pub cause: super::Cause,
}

/// A refund of `amount` through provider account `provider` (tenant `t`, request `r`), as
/// first recorded now: what unit tests start from.
#[cfg(test)]
pub(crate) fn sample_refund(provider: &str, amount: Money) -> Refund {
    let tenant = TenantId::new("t");
    Refund::new_pending(
        tenant,
        "r",
        provider,
        PaymentRef::default(),
        amount,
        Utc::now(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{BankAccountType, Currency};

    fn refund(status: RefundStatus) -> Refund {
        Refund {
            status,
            ..sample_refund("compago", Money::new(100, Currency::parse("MXN").unwrap()))
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

    /// The provider says the refund succeeded, in its own word `provider_status`.
    fn succeeded(provider_status: &str) -> Observation {
        Observation {
            status: RefundStatus::Succeeded,
            provider_refund_id: None,
            provider_status: Some(provider_status.into()),
            failure: None,
            amount: None,
            payment_id: None,
        }
    }

    #[test]
    fn observing_an_illegal_change_is_refused() {
        let failed = refund(RefundStatus::Failed);
        let obs = succeeded("REFUNDED");
        assert!(failed.observe(&obs, Utc::now()).is_err());
    }

    #[test]
    fn observing_keeps_known_ids_and_clears_failure_on_success() {
        let mut r = refund(RefundStatus::RequiresReview);
        r.provider_refund_id = Some("p1".into());
        r.failure = Some(RefundFailure::new("X", "y"));
        let obs = succeeded("COMPLETED");
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
