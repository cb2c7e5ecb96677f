//! D24's wire format (docs/PROVIDERS.md section 1): the JSON bodies, the
//! refund and deposit status words and what they mean for the gateway, the error codes, and
//! the amount conversions. No I/O.
//!
//! Facts that shape these types:
//! - amounts are decimal major units (`505.95` MXN, `1500` CLP), read and written exactly;
//! - `refund_id` is an integer for bank/cash refunds and a string for card refunds, and a
//!   card rejection's `reason_code` is a string or a number: both are kept as text;
//! - the status read-back has no `refund_id` and may omit `amount` (the PENDING example);
//! - error bodies come flat (`{"code", "description", "type"}`) or nested
//!   (`{"error": {"code", "message"}}`), with the code a number or a string.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};

use crate::{
    domain::{
        self, BankAccountType, Currency, ErrorCode, Money, Observation, Refund, RefundFailure,
        RefundStatus, reason,
    },
    providers::{ProviderPayment, ProviderRefundRecord, json_decimal},
};

mod deposit;
pub use self::deposit::*;

mod errors;
pub use self::errors::*;

/// The longest `invoice_id` D24 accepts (D24-RC).
pub const MAX_INVOICE_ID: usize = 128;
/// The longest `comments` D24 accepts (D24-RC).
pub const MAX_COMMENTS: usize = 200;
/// D24 amounts have at most two decimals (D24-RCREF).
pub const MAX_DECIMALS: u32 = 2;

// === ids ===

/// An id D24 writes as a JSON number or a JSON string (`168284`, `"80000001"`), kept as text.
/// Only ASCII letters, digits, `-` and `_` (at most 64) are accepted, since the id goes into a
/// URL path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RefundIdText(pub String);

/// Whether a text can be a D24 refund id (and so a URL path segment).
pub fn is_refund_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Number(u64),
    Signed(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for RefundIdText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = match NumberOrText::deserialize(deserializer)? {
            NumberOrText::Number(n) => n.to_string(),
            NumberOrText::Signed(_) => {
                return Err(serde::de::Error::custom("a refund id cannot be negative"));
            }
            NumberOrText::Text(t) => t,
        };
        if is_refund_id(&text) {
            Ok(Self(text))
        } else {
            Err(serde::de::Error::custom(format!(
                "{text:?} is not a usable refund id"
            )))
        }
    }
}

/// A code D24 writes as a number or a string (`"1"`, `1`), kept as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeText(pub String);

impl<'de> Deserialize<'de> for CodeText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self(match NumberOrText::deserialize(deserializer)? {
            NumberOrText::Number(n) => n.to_string(),
            NumberOrText::Signed(n) => n.to_string(),
            NumberOrText::Text(t) => t,
        }))
    }
}

// === create refund ===

/// `POST /v3/refunds`. `amount` is always sent: left out, D24 refunds the whole deposit,
/// which after a partial refund is more than is left.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RefundRequest<'a> {
    pub deposit_id: u64,
    pub invoice_id: &'a str,
    /// Major units, exactly the refund's digits (`500.00`, `1500`).
    #[serde(with = "json_decimal")]
    pub amount: Decimal,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bank_account: Option<BankAccount<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comments: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_url: Option<&'a str>,
}

/// The destination of a non-card refund. `bank_code` is sent as a string, as the official
/// Java SDK models it (the docs' example shows a number).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BankAccount<'a> {
    pub beneficiary: &'a str,
    pub bank_code: &'a str,
    pub branch: &'a str,
    pub account_number: &'a str,
    pub account_type: &'static str,
}

impl<'a> BankAccount<'a> {
    pub fn of(account: &'a domain::BankAccount) -> Self {
        Self {
            beneficiary: &account.beneficiary,
            bank_code: &account.bank_code,
            branch: &account.branch,
            account_number: &account.account_number,
            account_type: match account.account_type {
                BankAccountType::Saving => "SAVING",
                BankAccountType::Checking => "CHECKING",
            },
        }
    }
}

impl<'a> RefundRequest<'a> {
    /// The request for `refund`: the deposit from `payment_id` (already checked to be a
    /// positive integer, see [`deposit_id`]), the amount in major units, the description as
    /// `comments`.
    pub fn for_refund(
        refund: &'a Refund,
        deposit_id: u64,
        notification_url: Option<&'a str>,
    ) -> Self {
        let comments = refund.description.as_str();
        Self {
            deposit_id,
            invoice_id: &refund.payment.invoice_id,
            amount: refund.amount.to_major(),
            bank_account: refund.bank_account.as_ref().map(BankAccount::of),
            comments: (!comments.is_empty()).then_some(comments),
            notification_url,
        }
    }
}

/// A `payment_id` as a D24 `deposit_id`: digits only, positive, no sign or leading zeros.
pub fn deposit_id(payment_id: &str) -> Option<u64> {
    if payment_id.is_empty()
        || !payment_id.bytes().all(|b| b.is_ascii_digit())
        || payment_id.starts_with('0')
    {
        return None;
    }
    payment_id
        .parse::<u64>()
        .ok()
        .filter(|id| *id > 0 && i64::try_from(*id).is_ok())
}

/// The answer to a refund creation: `{refund_id}` for bank/cash deposits; the id, the deposit
/// and `refund_info` for card deposits (S003).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct RefundResponse {
    pub refund_id: RefundIdText,
    #[serde(default)]
    pub deposit_id: Option<u64>,
    #[serde(default)]
    pub merchant_invoice_id: Option<String>,
    #[serde(default)]
    pub refund_info: Option<RefundInfo>,
}

/// A card refund's immediate result (S003, JSDK `RefundInfo`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct RefundInfo {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub result: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub reason_code: Option<CodeText>,
    #[serde(default)]
    pub payment_method: Option<String>,
    #[serde(default)]
    pub payment_method_name: Option<String>,
    #[serde(default, with = "json_decimal::option")]
    pub amount: Option<Decimal>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
}

/// `refund_info.result` of a card refund.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CardResult {
    /// Created; the money goes back to the card soon.
    Success,
    /// Processed asynchronously; a notification follows.
    InProgress,
    /// Rejected; `reason` and `reason_code` say why.
    Rejected,
}

impl CardResult {
    pub const ALL: [CardResult; 3] = [Self::Success, Self::InProgress, Self::Rejected];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "SUCCESS",
            Self::InProgress => "IN_PROGRESS",
            Self::Rejected => "REJECTED",
        }
    }

    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == word)
    }

    /// What the result means for the refund. A REJECTED card refund exists at D24 and
    /// failed: it is an accepted submission that ends FAILED, not an error.
    pub fn refund_status(self) -> RefundStatus {
        match self {
            Self::Success => RefundStatus::Succeeded,
            Self::InProgress => RefundStatus::Processing,
            Self::Rejected => RefundStatus::Failed,
        }
    }
}

impl RefundResponse {
    /// What the answer says about `refund`. A card answer carries its result; a bank/cash
    /// answer (`{refund_id}` only) means D24 took the refund and completes it later. An
    /// unknown or missing card result is taken as "in progress": the refund exists, and
    /// reading it back tells the rest. The deposit, amount and currency D24 states are
    /// carried for the gateway's integrity rule (`Refund::observe`).
    pub fn observe(&self, refund: &Refund) -> Observation {
        let info = self.refund_info.as_ref();
        let word = info.and_then(|i| i.result.clone());
        let result = word.as_deref().and_then(CardResult::parse);
        let status = result.map_or(RefundStatus::Processing, CardResult::refund_status);
        let mut failure = None;
        if result == Some(CardResult::Rejected) {
            let reason_text = info.and_then(|i| i.reason.clone()).unwrap_or_default();
            let code = info
                .and_then(|i| i.reason_code.clone())
                .map_or_else(|| "REJECTED".to_owned(), |c| c.0);
            failure = Some(
                RefundFailure::new(
                    reason::PROVIDER_DECLINED,
                    if reason_text.is_empty() {
                        "D24 rejected the card refund".to_owned()
                    } else {
                        format!("D24 rejected the card refund: {reason_text}")
                    },
                )
                .with_provider(code, reason_text),
            );
        }
        let mut odd = Vec::new();
        let amount = stated_amount(
            info.and_then(|i| i.amount),
            info.and_then(|i| i.currency.as_deref()),
            refund,
            &mut odd,
        );
        let obs = Observation {
            status,
            provider_refund_id: Some(self.refund_id.0.clone()),
            provider_status: word,
            failure,
            amount,
            payment_id: self.deposit_id.map(|id| id.to_string()),
        };
        if odd.is_empty() {
            obs
        } else {
            obs.contradicted(&odd, &refund.payment.payment_id)
        }
    }
}

/// The amount D24 states (major units; in `currency`, or the refund's when D24 names none)
/// as money. An amount that cannot be one (an unknown currency, more decimals than the
/// currency has) is noted in `odd`, since the integrity rule cannot compare it.
fn stated_amount(
    amount: Option<Decimal>,
    currency: Option<&str>,
    refund: &Refund,
    odd: &mut Vec<String>,
) -> Option<Money> {
    let currency = match currency {
        None => refund.amount.currency,
        Some(code) => match Currency::parse(code) {
            Ok(currency) => currency,
            Err(_) => {
                odd.push(format!(
                    "currency {code:?} instead of {}",
                    refund.amount.currency
                ));
                return None;
            }
        },
    };
    let Some(amount) = amount else {
        if currency != refund.amount.currency {
            odd.push(format!(
                "currency {currency} instead of {}",
                refund.amount.currency
            ));
        }
        return None;
    };
    match Money::from_major(amount, currency) {
        Ok(money) => Some(money),
        Err(_) => {
            odd.push(format!(
                "amount {amount} {currency} instead of {}",
                refund.amount
            ));
            None
        }
    }
}

/// Whether a D24 amount (major units) is exactly `money`.
pub fn same_amount(amount: Decimal, money: Money) -> bool {
    Money::from_major(amount, money.currency).is_ok_and(|m| m == money)
}

// === refund status ===

/// `GET /v3/refunds/{refund_id}` (D24-RS, JSDK `RefundStatusResponse`). No `refund_id`;
/// `amount` may be missing. Unknown fields are ignored (D24 may add some).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct RefundStatusResponse {
    #[serde(default)]
    pub deposit_id: Option<u64>,
    #[serde(default)]
    pub merchant_invoice_id: Option<String>,
    pub status: String,
    #[serde(default, with = "json_decimal::option")]
    pub amount: Option<Decimal>,
}

/// A refund's status at D24 (D24-RFLOW).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundState {
    /// Created, waiting to be processed; can still be cancelled.
    Pending,
    /// D24 needs corrected details; back to PENDING once fixed.
    IncorrectDetails,
    /// Sent to the bank; can no longer be cancelled.
    Delivered,
    /// Confirmed by the bank. Not irreversible: a bank may still reject it later.
    Completed,
    /// Rejected by the bank.
    Rejected,
    /// Cancelled by the merchant.
    Cancelled,
}

impl RefundState {
    pub const ALL: [RefundState; 6] = [
        Self::Pending,
        Self::IncorrectDetails,
        Self::Delivered,
        Self::Completed,
        Self::Rejected,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::IncorrectDetails => "INCORRECT_DETAILS",
            Self::Delivered => "DELIVERED",
            Self::Completed => "COMPLETED",
            Self::Rejected => "REJECTED",
            Self::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == word)
    }

    /// The refund's status in the gateway's terms (docs/PROVIDERS.md section 4).
    pub fn refund_status(self) -> RefundStatus {
        match self {
            Self::Pending | Self::IncorrectDetails | Self::Delivered => RefundStatus::Processing,
            Self::Completed => RefundStatus::Succeeded,
            Self::Rejected => RefundStatus::Failed,
            Self::Cancelled => RefundStatus::Canceled,
        }
    }

    /// The failure recorded with a refund in this status.
    pub fn failure(self) -> Option<RefundFailure> {
        match self {
            Self::Rejected => Some(
                RefundFailure::new(
                    reason::PROVIDER_DECLINED,
                    "D24 reports the refund REJECTED (by the bank); nothing was refunded",
                )
                .with_provider("REJECTED", ""),
            ),
            Self::Cancelled => Some(
                RefundFailure::new(
                    reason::REFUND_CANCELED,
                    "D24 reports the refund CANCELLED by the merchant; nothing was refunded",
                )
                .with_provider("CANCELLED", ""),
            ),
            _ => None,
        }
    }
}

impl RefundStatusResponse {
    /// The status as the gateway records it, for the refund D24 knows as
    /// `provider_refund_id`. An unknown status word is refused (it could mean anything).
    pub fn observe_status(&self, provider_refund_id: &str) -> Result<Observation, String> {
        let state = RefundState::parse(&self.status).ok_or_else(|| {
            format!(
                "refund {provider_refund_id} has an unknown status {:?}",
                self.status
            )
        })?;
        Ok(Observation {
            status: state.refund_status(),
            provider_refund_id: Some(provider_refund_id.to_owned()),
            provider_status: Some(state.as_str().to_owned()),
            failure: state.failure(),
            amount: None,
            payment_id: self.deposit_id.map(|id| id.to_string()),
        })
    }

    /// What the read-back says about `refund`: its status, with the deposit and amount D24
    /// states for the gateway's integrity rule (`Refund::observe`).
    pub fn observe_refund(
        &self,
        refund: &Refund,
        provider_refund_id: &str,
    ) -> Result<Observation, String> {
        let mut obs = self.observe_status(provider_refund_id)?;
        let mut odd = Vec::new();
        obs.amount = stated_amount(self.amount, None, refund, &mut odd);
        Ok(if odd.is_empty() {
            obs
        } else {
            obs.contradicted(&odd, &refund.payment.payment_id)
        })
    }

    /// The refund as a record the gateway can recognise a lost submission by.
    pub fn record(&self, provider_refund_id: &str) -> Result<ProviderRefundRecord, String> {
        let deposit_id = self
            .deposit_id
            .ok_or_else(|| format!("refund {provider_refund_id} has no deposit_id"))?;
        Ok(ProviderRefundRecord {
            payment_id: deposit_id.to_string(),
            amount: self.amount,
            observation: self.observe_status(provider_refund_id)?,
        })
    }
}

// === deposits ===

/// What D24 POSTs to `notification_url` on each status change of a refund: its id only,
/// unsigned (D24-RN). The gateway re-reads the refund; the body is not trusted.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Notification {
    pub refund_id: RefundIdText,
}

// === errors ===

#[cfg(test)]
mod tests;
