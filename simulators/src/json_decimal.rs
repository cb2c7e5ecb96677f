//! Exact decimal amounts in JSON bodies: written as a JSON number made of the decimal's own
//! digits, read from a JSON number or from a string holding one (D24's cash example sends
//! `"amount":"100"`, Compago's one-time-payment example `"100.00"`), never through `f64`.
//!
//! Works with serde_json's own (de)serializer only: the number's text is read through
//! [`RawValue`].

use std::str::FromStr as _;

use rust_decimal::Decimal;
use serde::{Deserialize as _, Deserializer, Serialize as _, Serializer, de, ser};
use serde_json::value::RawValue;

/// Writes `value` as a JSON number with exactly its digits (`505.95`, `100.00`, `15000`).
pub fn serialize<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
    RawValue::from_string(value.to_string())
        .map_err(ser::Error::custom)?
        .serialize(serializer)
}

/// Reads a JSON number, or a string holding a JSON number, exactly.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    let raw = Box::<RawValue>::deserialize(deserializer)?;
    read(raw.get()).map_err(de::Error::custom)
}

/// The same for optional fields (`null` or absent is `None`; use with `#[serde(default)]`).
pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(
        value: &Option<Decimal>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => super::serialize(value, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Decimal>, D::Error> {
        let raw = Option::<Box<RawValue>>::deserialize(deserializer)?;
        match raw {
            None => Ok(None),
            Some(raw) if raw.get() == "null" => Ok(None),
            Some(raw) => read(raw.get()).map(Some).map_err(de::Error::custom),
        }
    }
}

/// The decimal of a JSON value's text: a number, or a string holding one.
fn read(json: &str) -> Result<Decimal, String> {
    let text = if json.starts_with('"') {
        serde_json::from_str::<String>(json).map_err(|e| e.to_string())?
    } else {
        json.to_owned()
    };
    number(&text).ok_or_else(|| format!("expected a number, got {json}"))
}

/// Parses the text of a JSON number (`-0.5`, `505.95`, `5e2`) exactly; `None` for anything
/// else (`+1`, `01`, ` 5`, `1,000`, `NaN`) or a number a decimal cannot hold exactly.
pub fn number(text: &str) -> Option<Decimal> {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let digits = mantissa.strip_prefix('-').unwrap_or(mantissa);
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (digits, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole)
        || (whole.len() > 1 && whole.starts_with('0'))
        || fraction.is_some_and(|f| !all_digits(f))
    {
        return None;
    }
    let base = Decimal::from_str_exact(mantissa).ok()?;
    let Some(exponent) = exponent else {
        return Some(base);
    };
    let unsigned = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    if !all_digits(unsigned) || unsigned.len() > 3 {
        return None;
    }
    let shift = i64::from_str(exponent).ok()?;
    let mut value = base;
    for _ in 0..shift.unsigned_abs() {
        value = if shift > 0 {
            value.checked_mul(Decimal::TEN)?
        } else {
            let scaled = value.checked_div(Decimal::TEN)?;
            // Division that had to round is not exact.
            if scaled * Decimal::TEN != value {
                return None;
            }
            scaled
        };
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Body {
        #[serde(with = "super")]
        amount: Decimal,
        #[serde(
            default,
            with = "super::option",
            skip_serializing_if = "Option::is_none"
        )]
        fee: Option<Decimal>,
    }

    /// Numbers and numeric strings are read exactly and written with their own digits.
    #[test]
    fn reads_and_writes_exactly() {
        let b: Body = serde_json::from_str(r#"{"amount": 505.95, "fee": "1.50"}"#).unwrap();
        assert_eq!(b.amount.to_string(), "505.95");
        assert_eq!(
            serde_json::to_string(&b).unwrap(),
            r#"{"amount":505.95,"fee":1.50}"#
        );
        let b: Body = serde_json::from_str(r#"{"amount": "100", "fee": null}"#).unwrap();
        assert_eq!((b.amount.to_string(), b.fee), ("100".to_owned(), None));
        assert_eq!(number("5.05E+2"), Some(Decimal::new(505, 0)));
        assert_eq!(number("-0.01"), Some(Decimal::new(-1, 2)));
    }

    /// Anything that is not a JSON number is refused.
    #[test]
    fn refuses_what_is_not_a_number() {
        for text in [
            "", "+1", "01", " 5", "1,000", "NaN", "1.", ".5", "1e", "true",
        ] {
            assert_eq!(number(text), None, "{text}");
        }
        assert!(serde_json::from_str::<Body>(r#"{"amount": true}"#).is_err());
        assert!(serde_json::from_str::<Body>(r#"{"amount": "1 000"}"#).is_err());
    }
}
