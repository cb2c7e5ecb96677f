//! Which payment a refund is of, and the bank account a refund may be paid to.

use std::fmt;

use serde::{Deserialize, Serialize};

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
