//! D24's request signature as the simulator checks it (docs/PROVIDERS.md section 1.3):
//! `Authorization: D24 ` + lowercase hex of HMAC-SHA256(API Signature, X-Date + X-Login +
//! body), with `X-Date` in `yyyy-MM-dd'T'HH:mm:ss'Z'`. Written from D24's documentation,
//! independently of the gateway's adapter.

use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// The scheme in front of the hex signature: `D24` and one space.
const SCHEME: &str = "D24 ";
/// `X-Date`'s format: seconds, no fraction, `Z`.
const X_DATE_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

fn mac(secret: &[u8], x_date: &str, x_login: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(x_date.as_bytes());
    mac.update(x_login.as_bytes());
    mac.update(body);
    mac
}

/// The `Authorization` value of a request (for the simulator's tests and tools).
pub fn authorization(secret: &[u8], x_date: &str, x_login: &str, body: &[u8]) -> String {
    let signature = mac(secret, x_date, x_login, body).finalize().into_bytes();
    format!("{SCHEME}{}", hex::encode(signature))
}

/// Whether `header` is `D24 ` and 64 lowercase hex digits (the value is case sensitive).
pub fn is_well_formed(header: &str) -> bool {
    header.strip_prefix(SCHEME).is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// Whether `header` signs exactly these bytes, compared in constant time.
pub fn verify(secret: &[u8], x_date: &str, x_login: &str, body: &[u8], header: &str) -> bool {
    if !is_well_formed(header) {
        return false;
    }
    let Ok(given) = hex::decode(&header[SCHEME.len()..]) else {
        return false;
    };
    mac(secret, x_date, x_login, body)
        .verify_slice(&given)
        .is_ok()
}

/// `X-Date` for an instant (seconds precision).
pub fn x_date(at: DateTime<Utc>) -> String {
    at.format(X_DATE_FORMAT).to_string()
}

/// Reads an `X-Date`; `None` unless it is exactly `yyyy-MM-ddTHH:mm:ssZ`.
pub fn parse_x_date(text: &str) -> Option<DateTime<Utc>> {
    // chrono accepts unpadded fields; D24's format has fixed widths.
    if text.len() != 20 {
        return None;
    }
    NaiveDateTime::parse_from_str(text, X_DATE_FORMAT)
        .ok()
        .map(|naive| naive.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"mySecretSignature";
    const DATE: &str = "2020-06-21T12:33:20Z";
    const LOGIN: &str = "myDepositApiKey";
    const BODY: &str = r#"{"deposit_id":300533647,"invoice_id":"newIUnit45328732"}"#;
    /// docs/PROVIDERS.md section 1.3's vectors: a POST body, and a GET's empty body.
    const POST_AUTH: &str = "D24 5eb7a229130ab200fc14a7c7c3b0c35b38943367a2bcb0da5746a779f2863cd8";
    const GET_AUTH: &str = "D24 a0136f339a1e475e3f3a2fa0649366dc9402bb7b6e2fca552648bed4c781bebf";

    #[test]
    fn signs_the_documented_vectors() {
        assert_eq!(
            authorization(SECRET, DATE, LOGIN, BODY.as_bytes()),
            POST_AUTH
        );
        assert_eq!(authorization(SECRET, DATE, LOGIN, b""), GET_AUTH);
    }

    #[test]
    fn verifies_the_documented_vectors_and_nothing_else() {
        assert!(verify(SECRET, DATE, LOGIN, BODY.as_bytes(), POST_AUTH));
        assert!(verify(SECRET, DATE, LOGIN, b"", GET_AUTH));
        // Another body, login, date or secret; upper-case hex; no scheme.
        assert!(!verify(SECRET, DATE, LOGIN, b"{}", POST_AUTH));
        assert!(!verify(SECRET, DATE, "other", BODY.as_bytes(), POST_AUTH));
        assert!(!verify(
            SECRET,
            "2020-06-21T12:33:21Z",
            LOGIN,
            BODY.as_bytes(),
            POST_AUTH
        ));
        assert!(!verify(b"other", DATE, LOGIN, BODY.as_bytes(), POST_AUTH));
        let upper = format!("D24 {}", POST_AUTH[4..].to_uppercase());
        assert!(!verify(SECRET, DATE, LOGIN, BODY.as_bytes(), &upper));
        assert!(!verify(
            SECRET,
            DATE,
            LOGIN,
            BODY.as_bytes(),
            &POST_AUTH[4..]
        ));
    }

    #[test]
    fn x_date_is_seconds_and_z() {
        let at = parse_x_date(DATE).unwrap();
        assert_eq!(x_date(at), DATE);
        for bad in [
            "2020-06-21T12:33:20.123Z",
            "2020-06-21T12:33:20",
            "2020-6-21T12:33:20Z",
            "2020-06-21 12:33:20Z",
        ] {
            assert_eq!(parse_x_date(bad), None, "{bad}");
        }
    }
}
