//! Exact JSON numbers as `rust_decimal::Decimal`, with no floating point on the way.
//!
//! serde_json without its `arbitrary_precision` feature turns every JSON number with a
//! fraction into an `f64`, so `505.95` could come back as `505.9499999…`. These helpers read
//! the number's own text through [`RawValue`] and parse that exactly, and write a decimal as a
//! JSON number made of exactly its digits.
//!
//! ```
//! use rust_decimal::Decimal;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Charge {
//!     #[serde(with = "refund_gateway::providers::json_decimal")]
//!     amount: Decimal,
//!     #[serde(default, with = "refund_gateway::providers::json_decimal::option")]
//!     fee: Option<Decimal>,
//! }
//!
//! let c: Charge = serde_json::from_str(r#"{"amount": 505.95, "fee": "1.50"}"#).unwrap();
//! assert_eq!(c.amount.to_string(), "505.95");
//! assert_eq!(serde_json::to_string(&c).unwrap(), r#"{"amount":505.95,"fee":1.50}"#);
//! ```
//!
//! Accepted on input: a JSON number in any JSON form (`500`, `-0.5`, `5e2`, `5.05E+2`), or a
//! JSON string holding such a number (`"100.00"`, as some providers send). Refused: anything
//! else (`null` unless through [`option`], booleans, objects, `"1,000"`, `" 5"`, `"NaN"`), and
//! numbers a `Decimal` cannot hold exactly (more than 28 decimal places or 96 bits).
//!
//! The helpers need serde_json's own (de)serializer: [`RawValue`] does not work through formats
//! that buffer their input, such as `#[serde(flatten)]` or untagged enums. Going through
//! `serde_json::Value` works but is only as exact as `Value` itself, which holds fractions
//! as `f64`: read and write text or bytes directly.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de, ser};
use serde_json::value::RawValue;

/// Why a text is not an exact decimal number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("expected a JSON number or a numeric string, got {0}")]
    NotANumber(String),
    #[error("the number {0} cannot be held exactly as a decimal")]
    NotExact(String),
}

/// Parses the text of a JSON number (`505.95`, `5e2`, `-0.01`) exactly. The text must follow
/// the JSON number grammar: no sign `+`, no leading zeros, no spaces, no `_` separators.
pub fn parse(text: &str) -> Result<Decimal, DecimalError> {
    let (mantissa, exponent) =
        split_json_number(text).ok_or_else(|| DecimalError::NotANumber(shorten(text)))?;
    let not_exact = || DecimalError::NotExact(shorten(text));
    let base = Decimal::from_str_exact(mantissa).map_err(|_| not_exact())?;
    let Some(exponent) = exponent else {
        return Ok(base);
    };
    // More than this is never exact in 96 bits and 28 places; it also keeps the arithmetic
    // below far from overflowing.
    let exponent: i64 = exponent.parse().map_err(|_| not_exact())?;
    if exponent.abs() > 64 {
        return Err(not_exact());
    }
    let scale = i64::from(base.scale()) - exponent;
    let (digits, scale) = if scale < 0 {
        let factor = 10_i128
            .checked_pow(u32::try_from(-scale).map_err(|_| not_exact())?)
            .ok_or_else(not_exact)?;
        (
            base.mantissa().checked_mul(factor).ok_or_else(not_exact)?,
            0,
        )
    } else {
        (
            base.mantissa(),
            u32::try_from(scale).map_err(|_| not_exact())?,
        )
    };
    Decimal::try_from_i128_with_scale(digits, scale).map_err(|_| not_exact())
}

/// Splits a JSON number into its mantissa (`-12.5`) and exponent digits (`+3`), or `None`
/// when the text is not a JSON number.
fn split_json_number(text: &str) -> Option<(&str, Option<&str>)> {
    let bytes = text.as_bytes();
    let mut i = 0;
    if bytes.first() == Some(&b'-') {
        i += 1;
    }
    let int_start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let int_len = i - int_start;
    if int_len == 0 || (int_len > 1 && bytes[int_start] == b'0') {
        return None;
    }
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        let frac_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == frac_start {
            return None;
        }
    }
    let mantissa = &text[..i];
    if i == bytes.len() {
        return Some((mantissa, None));
    }
    if !matches!(bytes[i], b'e' | b'E') {
        return None;
    }
    i += 1;
    let exp_start = i;
    if matches!(bytes.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let digits_start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    if i == digits_start || i != bytes.len() {
        return None;
    }
    Some((mantissa, Some(&text[exp_start..])))
}

/// At most 40 characters of an offending text, for error messages.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Parses a raw JSON value: a number, or a string holding one.
fn from_raw(raw: &RawValue) -> Result<Decimal, DecimalError> {
    let text = raw.get().trim();
    if text.starts_with('"') {
        let inner: String =
            serde_json::from_str(text).map_err(|_| DecimalError::NotANumber(shorten(text)))?;
        parse(&inner)
    } else {
        parse(text)
    }
}

fn to_raw(value: &Decimal) -> Result<Box<RawValue>, serde_json::Error> {
    // `Decimal`'s Display never uses exponent notation: it writes the digits and the scale
    // it holds (`500`, `500.00`, `0.01`), which is always a valid JSON number.
    RawValue::from_string(value.to_string())
}

/// Writes `value` as a JSON number with exactly its digits.
pub fn serialize<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
    to_raw(value)
        .map_err(ser::Error::custom)?
        .serialize(serializer)
}

/// Reads a JSON number, or a string holding one, exactly.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    let raw = Box::<RawValue>::deserialize(deserializer)?;
    from_raw(&raw).map_err(de::Error::custom)
}

/// The same for `Option<Decimal>`: `null` is `None`. Pair it with `#[serde(default)]` so a
/// missing field is `None` too.
pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(
        value: &Option<Decimal>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => serializer.serialize_some(&*to_raw(v).map_err(ser::Error::custom)?),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Decimal>, D::Error> {
        Option::<Box<RawValue>>::deserialize(deserializer)?
            .map(|raw| from_raw(&raw).map_err(de::Error::custom))
            .transpose()
    }
}

/// A `Decimal` that (de)serializes through this module, for places where a `with` attribute
/// does not fit (a `Vec`, a map value, a tuple).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Exact(pub Decimal);

impl fmt::Debug for Exact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Serialize for Exact {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for Exact {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize(deserializer).map(Exact)
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Amount {
        #[serde(with = "super")]
        amount: Decimal,
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct MaybeAmount {
        #[serde(default, with = "super::option")]
        amount: Option<Decimal>,
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn read(json: &str) -> Result<Decimal, serde_json::Error> {
        serde_json::from_str::<Amount>(&format!(r#"{{"amount": {json}}}"#)).map(|a| a.amount)
    }

    /// Numbers come back with exactly the digits they were written with, scale included.
    #[test]
    fn reads_json_numbers_exactly() {
        for (json, want) in [
            ("500", "500"),
            ("505.95", "505.95"),
            ("500.00", "500.00"),
            ("0.01", "0.01"),
            ("-12.5", "-12.5"),
            ("0", "0"),
            // An f64 cannot hold these; a Decimal can.
            ("0.1", "0.1"),
            ("1234567890123456.78", "1234567890123456.78"),
            (
                "79228162514264337593543950335",
                "79228162514264337593543950335",
            ),
        ] {
            let got = read(json).unwrap_or_else(|e| panic!("{json}: {e}"));
            assert_eq!(got.to_string(), want, "{json}");
        }
    }

    /// Exponent notation is the same number: `5e2` is 500, `5.05E+2` is 505, `5e-2` is 0.05.
    #[test]
    fn reads_exponent_notation() {
        for (json, want) in [
            ("5e2", "500"),
            ("5E2", "500"),
            ("5.05e+2", "505"),
            ("5.0595e2", "505.95"),
            ("5e-2", "0.05"),
            ("505.95e0", "505.95"),
            ("-1.5e1", "-15"),
            ("50595e-2", "505.95"),
        ] {
            let got = read(json).unwrap_or_else(|e| panic!("{json}: {e}"));
            assert_eq!(got, dec(want), "{json}");
            assert_eq!(got.normalize().to_string(), want, "{json}");
        }
    }

    /// Some providers send amounts as strings ("100.00"); those read the same way.
    #[test]
    fn reads_numeric_strings() {
        assert_eq!(read(r#""100.00""#).unwrap().to_string(), "100.00");
        assert_eq!(read(r#""5e2""#).unwrap(), dec("500"));
        assert_eq!(read(r#""-0.5""#).unwrap(), dec("-0.5"));
    }

    /// Anything that is not a number is refused, never read as zero or guessed at.
    #[test]
    fn refuses_non_numbers() {
        for json in [
            "null",
            "true",
            r#"{"value": 1}"#,
            "[1]",
            r#""""#,
            r#""abc""#,
            r#""1,000.00""#,
            r#""1_000""#,
            r#"" 5""#,
            r#""5 ""#,
            r#""+5""#,
            r#""05""#,
            r#""5.""#,
            r#""-""#,
            r#"".5""#,
            r#""NaN""#,
            r#""Infinity""#,
            r#""0x10""#,
            r#""5e""#,
            r#""5e+""#,
            r#""$500""#,
        ] {
            assert!(read(json).is_err(), "{json} should be refused");
        }
    }

    /// Numbers a Decimal cannot hold exactly are refused rather than rounded.
    #[test]
    fn refuses_numbers_that_would_lose_digits() {
        for json in [
            "79228162514264337593543950336",           // one above 96 bits
            "0.00000000000000000000000000001",         // 29 decimal places
            "1.0000000000000000000000000000000000001", // rounding would be needed
            "1e29",
            "1e-29",
            "1e999999999999999999999",
            "1e400",
        ] {
            assert!(read(json).is_err(), "{json} should be refused");
        }
        assert!(matches!(parse("1e-29"), Err(DecimalError::NotExact(_))));
        assert!(matches!(parse("abc"), Err(DecimalError::NotANumber(_))));
    }

    /// Writing puts out exactly the decimal's digits as a JSON number, never a string and
    /// never a float rendering.
    #[test]
    fn writes_exact_json_numbers() {
        for (text, want) in [
            ("500", "500"),
            ("505.95", "505.95"),
            ("500.00", "500.00"),
            ("0.1", "0.1"),
            ("-0.01", "-0.01"),
            ("1234567890123456.78", "1234567890123456.78"),
        ] {
            let json = serde_json::to_string(&Amount { amount: dec(text) }).unwrap();
            assert_eq!(json, format!(r#"{{"amount":{want}}}"#));
        }
        let tiny = Decimal::new(1, 28);
        let json = serde_json::to_string(&Amount { amount: tiny }).unwrap();
        assert_eq!(json, r#"{"amount":0.0000000000000000000000000001}"#);
    }

    /// What is written reads back as the same decimal, scale included.
    #[test]
    fn round_trips() {
        for text in [
            "0",
            "0.01",
            "505.95",
            "500.00",
            "-3.140",
            "99999999999999.99",
        ] {
            let a = Amount { amount: dec(text) };
            let back: Amount = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
            assert_eq!(back.amount.to_string(), text);
        }
    }

    /// The optional variant: null or missing is `None`, numbers as above, junk refused.
    #[test]
    fn option_variant() {
        let m: MaybeAmount = serde_json::from_str(r#"{"amount": null}"#).unwrap();
        assert_eq!(m.amount, None);
        let m: MaybeAmount = serde_json::from_str("{}").unwrap();
        assert_eq!(m.amount, None);
        let m: MaybeAmount = serde_json::from_str(r#"{"amount": 1.05e1}"#).unwrap();
        assert_eq!(m.amount, Some(dec("10.5")));
        let m: MaybeAmount = serde_json::from_str(r#"{"amount": "7.25"}"#).unwrap();
        assert_eq!(m.amount, Some(dec("7.25")));
        assert!(serde_json::from_str::<MaybeAmount>(r#"{"amount": false}"#).is_err());

        let json = serde_json::to_string(&MaybeAmount {
            amount: Some(dec("505.95")),
        })
        .unwrap();
        assert_eq!(json, r#"{"amount":505.95}"#);
        let json = serde_json::to_string(&MaybeAmount { amount: None }).unwrap();
        assert_eq!(json, r#"{"amount":null}"#);
    }

    /// Also works from a reader (owned input) and through `serde_json::Value`.
    #[test]
    fn works_from_readers_and_values() {
        let a: Amount = serde_json::from_reader(&br#"{"amount": 505.95}"#[..]).unwrap();
        assert_eq!(a.amount, dec("505.95"));
        let v: serde_json::Value = serde_json::from_str(r#"{"amount": 12.5}"#).unwrap();
        let a: Amount = serde_json::from_value(v).unwrap();
        assert_eq!(a.amount, dec("12.5"));
    }

    /// The `Exact` newtype works inside collections.
    #[test]
    fn exact_newtype_in_collections() {
        let v: Vec<Exact> = serde_json::from_str(r#"[1, "2.50", 3e1]"#).unwrap();
        assert_eq!(
            v,
            vec![Exact(dec("1")), Exact(dec("2.50")), Exact(dec("30"))]
        );
        assert_eq!(serde_json::to_string(&v).unwrap(), "[1,2.50,30]");
    }
}
