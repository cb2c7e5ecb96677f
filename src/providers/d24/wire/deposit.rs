//! D24 deposits (the payments refunds are made against): the body, its status words, its amount.

use super::*;

/// `GET /v3/deposits/{deposit_id}` (JSDK `DepositStatusResponse`); the fields the gateway
/// uses. `local_amount` is the deposit's amount in `currency`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Deposit {
    #[serde(default)]
    pub deposit_id: Option<u64>,
    #[serde(default)]
    pub invoice_id: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
    pub currency: String,
    #[serde(default, with = "json_decimal::option")]
    pub usd_amount: Option<Decimal>,
    #[serde(with = "json_decimal")]
    pub local_amount: Decimal,
    #[serde(default)]
    pub payment_method: Option<String>,
    #[serde(default)]
    pub payment_type: Option<String>,
    pub status: String,
}

/// A deposit's status at D24 (D24-DFLOW).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DepositState {
    /// Hosted flow, link not opened yet.
    Created,
    /// Waiting for the payer.
    Pending,
    /// Anti-fraud hold.
    ForReview,
    /// Released early on request; the payer has not paid yet.
    EarlyReleased,
    Expired,
    Cancelled,
    /// Paid. The only refundable status.
    Completed,
}

impl DepositState {
    pub const ALL: [DepositState; 7] = [
        Self::Created,
        Self::Pending,
        Self::ForReview,
        Self::EarlyReleased,
        Self::Expired,
        Self::Cancelled,
        Self::Completed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::Pending => "PENDING",
            Self::ForReview => "FOR_REVIEW",
            Self::EarlyReleased => "EARLY_RELEASED",
            Self::Expired => "EXPIRED",
            Self::Cancelled => "CANCELLED",
            Self::Completed => "COMPLETED",
        }
    }

    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == word)
    }

    pub fn payment_status(self) -> domain::PaymentStatus {
        match self {
            Self::Created | Self::Pending | Self::ForReview | Self::EarlyReleased => {
                domain::PaymentStatus::Pending
            }
            Self::Expired | Self::Cancelled => domain::PaymentStatus::Canceled,
            Self::Completed => domain::PaymentStatus::Captured,
        }
    }
}

/// A deposit status word in the gateway's terms. `DECLINED` (a creation that failed) is
/// FAILED; any word not documented is PENDING: not refundable until D24 says COMPLETED.
pub fn deposit_payment_status(word: &str) -> domain::PaymentStatus {
    match DepositState::parse(word) {
        Some(state) => state.payment_status(),
        None if word == "DECLINED" => domain::PaymentStatus::Failed,
        None => domain::PaymentStatus::Pending,
    }
}

/// Whether a deposit's `payment_type` is a card: card refunds go back to the card, every
/// other method needs a destination bank account.
pub fn is_card_type(payment_type: &str) -> bool {
    matches!(
        payment_type.to_ascii_uppercase().as_str(),
        "CREDIT_CARD" | "DEBIT_CARD" | "CARD" | "PREPAID_CARD"
    )
}

/// Converts a D24 amount (major units) into money, exactly: `505.95` MXN is 50595 centavos,
/// `1500` CLP is 1500 pesos. Amounts that are not positive, not a whole number of the
/// currency's minor units, in an unknown currency, or with more than two decimals are
/// refused.
pub fn money(amount: Decimal, currency: &str) -> Result<Money, String> {
    let currency = Currency::parse(currency)
        .map_err(|e| format!("currency {currency:?} is not usable: {e}"))?;
    if amount <= Decimal::ZERO {
        return Err(format!("amount {amount} {currency} is not positive"));
    }
    if amount.normalize().scale() > MAX_DECIMALS {
        return Err(format!(
            "amount {amount} {currency} has more than {MAX_DECIMALS} decimals"
        ));
    }
    Money::from_major(amount, currency).map_err(|e| format!("amount {amount} {currency}: {e}"))
}

impl Deposit {
    /// The deposit in the gateway's terms. D24 does not report refunds on the deposit, so
    /// `refunded` is unknown; the gateway's own refunds count instead.
    pub fn to_provider_payment(&self) -> Result<ProviderPayment, String> {
        Ok(ProviderPayment {
            status: deposit_payment_status(&self.status),
            provider_status: self.status.clone(),
            amount: money(self.local_amount, &self.currency)?,
            refunded: None,
            refunds: Vec::new(),
            needs_bank_account: self
                .payment_type
                .as_deref()
                .is_some_and(|t| !is_card_type(t)),
        })
    }
}

// === notifications ===
