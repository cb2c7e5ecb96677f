//! What a simulator holds for one payment, in the stats shape every simulator shares.

use rust_decimal::Decimal;
use serde::Serialize;

/// What a simulator holds for one payment, in the uniform stats shape
/// (`refunds_by_payment`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Held {
    /// Refunds created for the payment through the provider's API, whatever their status.
    pub count: u64,
    /// What those that did not fail (rejected, cancelled) hold, in minor units.
    pub amount_minor: i64,
    pub currency: String,
}

impl Held {
    /// Counts one refund of `amount` (decimal major units of `currency`); `holds_money`:
    /// it did not fail.
    pub fn add(&mut self, amount: Decimal, currency: &str, holds_money: bool) {
        self.count += 1;
        currency.clone_into(&mut self.currency);
        if holds_money {
            self.amount_minor += minor_units(amount, currency);
        }
    }

    /// Counts one refund already in minor units.
    pub fn add_minor(&mut self, amount_minor: i64, currency: &str, holds_money: bool) {
        self.count += 1;
        currency.clone_into(&mut self.currency);
        if holds_money {
            self.amount_minor += amount_minor;
        }
    }
}

/// Decimal major units to minor units (ISO 4217 exponent; 2 for an unknown currency).
fn minor_units(amount: Decimal, currency: &str) -> i64 {
    use rust_decimal::prelude::ToPrimitive as _;
    let exponent = crate::currency::exponent(currency).unwrap_or(2);
    (amount * Decimal::from(10_i64.pow(exponent)))
        .trunc()
        .to_i64()
        .unwrap_or(i64::MAX)
}
