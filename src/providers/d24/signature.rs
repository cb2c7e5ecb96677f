//! D24's request signature (docs/PROVIDERS.md section 1.3), shared by the adapter (which
//! signs) and the simulator (which verifies). No I/O.
//!
//! ```text
//! message   = X-Date + X-Login + body        (plain concatenation; body empty for GETs)
//! signature = HMAC-SHA256(key = secret, message)
//! header    = "Authorization: D24 " + lowercase hex(signature)
//! ```
//!
//! The body signed must be byte for byte the body sent: callers serialize once to a string,
//! sign that string and send that string.

use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The scheme in front of the hex signature, with its one space.
pub const SCHEME: &str = "D24 ";

/// `X-Date`'s format: ISO 8601 UTC to the second, `2020-06-21T12:33:20Z`.
const X_DATE_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], x_date: &str, x_login: &str, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(x_date.as_bytes());
    mac.update(x_login.as_bytes());
    mac.update(body);
    mac
}

/// The `Authorization` value for a request: `D24 ` and 64 lowercase hex digits.
pub fn authorization(secret: &[u8], x_date: &str, x_login: &str, body: &[u8]) -> String {
    let digest = mac(secret, x_date, x_login, body).finalize().into_bytes();
    format!("{SCHEME}{}", hex::encode(digest))
}

/// Whether `header` is the right `Authorization` value, compared in constant time. Anything
/// but `D24 ` and 64 hex digits is wrong (the value is case sensitive).
pub fn verify(secret: &[u8], x_date: &str, x_login: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_part) = header.strip_prefix(SCHEME) else {
        return false;
    };
    if !is_well_formed_hex(hex_part) {
        return false;
    }
    let Ok(given) = hex::decode(hex_part) else {
        return false;
    };
    mac(secret, x_date, x_login, body)
        .verify_slice(&given)
        .is_ok()
}

/// Whether `header` has the shape of a D24 authorization value (`D24 ` + 64 lowercase hex
/// digits), right or wrong.
pub fn is_well_formed(header: &str) -> bool {
    header.strip_prefix(SCHEME).is_some_and(is_well_formed_hex)
}

fn is_well_formed_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `X-Date` for a moment: seconds, UTC, `Z`.
pub fn x_date(at: DateTime<Utc>) -> String {
    at.format(X_DATE_FORMAT).to_string()
}

/// Reads an `X-Date` written as D24 documents it (seconds, `Z`). Anything else is `None`.
pub fn parse_x_date(text: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text, X_DATE_FORMAT)
        .ok()
        .map(|naive| naive.and_utc())
        .filter(|_| text.len() == "2020-06-21T12:33:20Z".len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"mySecretSignature";
    const DATE: &str = "2020-06-21T12:33:20Z";
    const LOGIN: &str = "myDepositApiKey";
    const BODY: &str = r#"{"deposit_id":300533647,"invoice_id":"newIUnit45328732"}"#;

    /// docs/PROVIDERS.md section 1.3, first vector: a POST body.
    #[test]
    fn vector_with_body() {
        assert_eq!(
            authorization(SECRET, DATE, LOGIN, BODY.as_bytes()),
            "D24 5eb7a229130ab200fc14a7c7c3b0c35b38943367a2bcb0da5746a779f2863cd8"
        );
    }

    /// docs/PROVIDERS.md section 1.3, second vector: a GET signs the empty string.
    #[test]
    fn vector_without_body() {
        assert_eq!(
            authorization(SECRET, DATE, LOGIN, b""),
            "D24 a0136f339a1e475e3f3a2fa0649366dc9402bb7b6e2fca552648bed4c781bebf"
        );
    }

    /// The right value verifies; any other date, login, body, secret, case or scheme does
    /// not.
    #[test]
    fn verify_accepts_only_the_exact_value() {
        let good = authorization(SECRET, DATE, LOGIN, BODY.as_bytes());
        assert!(verify(SECRET, DATE, LOGIN, BODY.as_bytes(), &good));
        assert!(is_well_formed(&good));
        let body_with_space = BODY.replace(':', ": ");
        for (secret, date, login, body) in [
            (b"other".as_slice(), DATE, LOGIN, BODY),
            (SECRET, "2020-06-21T12:33:21Z", LOGIN, BODY),
            (SECRET, DATE, "otherLogin", BODY),
            (SECRET, DATE, LOGIN, body_with_space.as_str()),
            (SECRET, DATE, LOGIN, ""),
        ] {
            assert!(!verify(secret, date, login, body.as_bytes(), &good));
        }
        for bad in [
            good.to_uppercase(),
            good.replacen("D24 ", "D24  ", 1),
            good.replacen("D24 ", "d24 ", 1),
            good.replacen("D24 ", "", 1),
            format!("{good}0"),
            good[..good.len() - 1].to_owned(),
            String::new(),
        ] {
            assert!(!verify(SECRET, DATE, LOGIN, BODY.as_bytes(), &bad), "{bad}");
        }
        assert!(!is_well_formed(&good.to_uppercase()));
    }

    /// X-Date is seconds in UTC with `Z`, and reads back; other forms are refused.
    #[test]
    fn x_date_round_trips_in_seconds() {
        let at = parse_x_date(DATE).unwrap();
        assert_eq!(x_date(at), DATE);
        let with_millis = DateTime::parse_from_rfc3339("2020-06-21T12:33:20.962Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(x_date(with_millis), DATE);
        for bad in [
            "2020-06-21T12:33:20.962Z",
            "2020-06-21T12:33:20+00:00",
            "2020-06-21 12:33:20Z",
            "2020-06-21T12:33:20",
            "Sun, 21 Jun 2020 12:33:20 GMT",
            "",
        ] {
            assert_eq!(parse_x_date(bad), None, "{bad}");
        }
    }
}
