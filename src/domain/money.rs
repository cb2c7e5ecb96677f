//! Money in minor units, with ISO 4217 exponents from the `iso_currency` tables.
//!
//! No floating point anywhere: amounts are `i64` minor units, and conversions to and from
//! providers' decimal major units go through `rust_decimal::Decimal` and are exact or refused.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// An ISO 4217 currency that has a minor-unit exponent (so not gold, SDR and the like).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(iso_currency::Currency);

/// Why an amount or a currency was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("currency code must be three upper-case letters (ISO 4217), got {0:?}")]
    MalformedCurrency(String),
    #[error("{0} is not an ISO 4217 currency")]
    UnknownCurrency(String),
    #[error("{0} has no minor unit and cannot be used for payments")]
    NoMinorUnit(String),
    #[error("{amount} {currency} has more decimals than the currency allows ({exponent})")]
    TooPrecise {
        amount: Decimal,
        currency: &'static str,
        exponent: u32,
    },
    #[error("amount out of range")]
    OutOfRange,
    #[error("amounts in different currencies ({0} and {1}) cannot be combined")]
    CurrencyMismatch(&'static str, &'static str),
}

impl Currency {
    /// Parses an upper-case ISO 4217 code such as `MXN`.
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(MoneyError::MalformedCurrency(code.to_owned()));
        }
        let iso = iso_currency::Currency::from_code(code)
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_owned()))?;
        if iso.exponent().is_none() {
            return Err(MoneyError::NoMinorUnit(code.to_owned()));
        }
        Ok(Self(iso))
    }

    /// The three-letter code.
    pub fn code(&self) -> &'static str {
        self.0.code()
    }

    /// How many decimal places the minor unit has (2 for MXN, 0 for CLP, 3 for BHD).
    pub fn exponent(&self) -> u32 {
        // `parse` refuses currencies without an exponent.
        u32::from(self.0.exponent().unwrap_or(0))
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Currency::parse(&code).map_err(serde::de::Error::custom)
    }
}

/// An amount in a currency's minor units.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// Minor units (centavos for MXN, pesos for CLP).
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Self::new(0, currency)
    }

    /// The amount in major units, exactly: 50000 MXN minor units are `500.00`.
    pub fn to_major(&self) -> Decimal {
        Decimal::new(self.minor, self.currency.exponent())
    }

    /// Converts a decimal amount in major units, refusing anything that is not a whole number
    /// of minor units (`500.005` MXN) or does not fit.
    pub fn from_major(amount: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        let exponent = currency.exponent();
        let normalized = amount.normalize();
        if normalized.scale() > exponent {
            return Err(MoneyError::TooPrecise {
                amount,
                currency: currency.code(),
                exponent,
            });
        }
        let factor = Decimal::from(10_i64.pow(exponent));
        let minor = normalized
            .checked_mul(factor)
            .ok_or(MoneyError::OutOfRange)?
            .trunc();
        let minor = i64::try_from(minor).map_err(|_| MoneyError::OutOfRange)?;
        Ok(Self::new(minor, currency))
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(&other)?;
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::OutOfRange)?;
        Ok(Money::new(minor, self.currency))
    }

    /// `self - other`, floored at zero.
    pub fn saturating_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(&other)?;
        Ok(Money::new(
            self.minor.saturating_sub(other.minor).max(0),
            self.currency,
        ))
    }

    fn same_currency(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(
                self.currency.code(),
                other.currency.code(),
            ))
        }
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_major(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn cur(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn currencies_use_iso_exponents() {
        assert_eq!(cur("MXN").exponent(), 2);
        assert_eq!(cur("CLP").exponent(), 0);
        assert_eq!(cur("BHD").exponent(), 3);
        assert_eq!(cur("PHP").exponent(), 2);
    }

    #[test]
    fn malformed_unknown_and_unitless_currencies_are_refused() {
        let error = |code: &str| Currency::parse(code).unwrap_err();
        assert!(matches!(error("mxn"), MoneyError::MalformedCurrency(_)));
        assert!(matches!(error("MX"), MoneyError::MalformedCurrency(_)));
        assert!(matches!(error("ABC"), MoneyError::UnknownCurrency(_)));
        assert!(matches!(error("XAU"), MoneyError::NoMinorUnit(_)));
    }

    #[test]
    fn minor_units_convert_to_exact_major_units() {
        assert_eq!(Money::new(50000, cur("MXN")).to_major(), dec("500.00"));
        assert_eq!(
            Money::new(50595, cur("MXN")).to_major().to_string(),
            "505.95"
        );
        assert_eq!(Money::new(1, cur("MXN")).to_major().to_string(), "0.01");
        assert_eq!(Money::new(1500, cur("CLP")).to_major().to_string(), "1500");
        assert_eq!(Money::new(1234, cur("BHD")).to_major().to_string(), "1.234");
    }

    #[test]
    fn major_units_convert_exactly_or_are_refused() {
        let mxn = cur("MXN");
        assert_eq!(Money::from_major(dec("500"), mxn).unwrap().minor, 50000);
        assert_eq!(Money::from_major(dec("505.95"), mxn).unwrap().minor, 50595);
        assert_eq!(Money::from_major(dec("505.950"), mxn).unwrap().minor, 50595);
        assert_eq!(Money::from_major(dec("0.01"), mxn).unwrap().minor, 1);
        assert!(matches!(
            Money::from_major(dec("500.005"), mxn),
            Err(MoneyError::TooPrecise { .. })
        ));
        let clp = cur("CLP");
        assert_eq!(Money::from_major(dec("1500"), clp).unwrap().minor, 1500);
        assert_eq!(Money::from_major(dec("1500.00"), clp).unwrap().minor, 1500);
        assert!(Money::from_major(dec("1500.5"), clp).is_err());
        assert!(matches!(
            Money::from_major(dec("79228162514264337593543950335"), mxn),
            Err(MoneyError::OutOfRange)
        ));
    }

    #[test]
    fn round_trips_through_major_units() {
        for minor in [0_i64, 1, 99, 100, 50595, 123_456_789_012, i64::MAX / 1000] {
            for code in ["MXN", "CLP", "BHD"] {
                let m = Money::new(minor, cur(code));
                assert_eq!(Money::from_major(m.to_major(), m.currency).unwrap(), m);
            }
        }
    }

    #[test]
    fn arithmetic_refuses_mixed_currencies() {
        let a = Money::new(100, cur("MXN"));
        let b = Money::new(100, cur("PHP"));
        assert!(a.checked_add(b).is_err());
        assert_eq!(a.checked_add(a).unwrap().minor, 200);
        assert_eq!(
            a.saturating_sub(Money::new(150, cur("MXN"))).unwrap().minor,
            0
        );
    }
}
