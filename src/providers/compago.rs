//! Compago ("Harmony" API, Mexico): the transport side of the adapter (URLs, headers, sending
//! and classifying answers). The JSON bodies and what they mean are in [`wire`].
//!
//! What shapes this adapter (docs/PROVIDERS.md section 3):
//! - Refunds are full, synchronous and have no id of their own: `POST .../refund` turns a
//!   `CONFIRMED` payment into a `REFUNDED` one and answers with the payment. Reading a refund
//!   back means reading the payment.
//! - There is no idempotency key, but a second refund of a `REFUNDED` payment is refused with
//!   400, so sending again can never pay twice ([`Provider::resubmit_is_safe`]).
//! - Amounts are decimal pesos, read and checked exactly.
//! - Error bodies have no documented shape: answers are classified on the HTTP status, and the
//!   body text is kept (shortened) as the provider's message.
//! - No webhooks: Compago is poll-only.

mod answers;
mod config;
mod rules;
mod transport;
pub mod wire;

use self::answers::{invalid_ids, read_failure, submit_failure};
pub use self::config::CompagoConfig;

use std::{fmt, time::Duration};

use async_trait::async_trait;
use http::{HeaderValue, Method};
use secrecy::{ExposeSecret, SecretString};

use super::http::{Answer, BuildError, shorten};
use super::{
    Capabilities, Profile, Provider, ProviderError, ProviderKind, ProviderPayment, RefundDraft,
    RefundLookup, SubmitOutcome, http as provider_http,
};
use crate::domain::{ApiError, FieldViolation, Money, PaymentRef, Refund, reason};

/// The header that carries the API key.
const API_KEY_HEADER: &str = "x-api-key";

/// A Compago account.
pub struct Compago {
    base_url: String,
    api_key: SecretString,
    client: reqwest::Client,
}

impl fmt::Debug for Compago {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compago")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// The two ids every Compago call is addressed by.
#[derive(Clone, Copy, Debug)]
struct Ids<'a> {
    payment_method_id: &'a str,
    payment_id: &'a str,
}

impl<'a> Ids<'a> {
    /// Both ids, when both are UUIDs (which also makes them safe in a URL path).
    fn of(payment: &'a PaymentRef) -> Result<Self, Vec<FieldViolation>> {
        let mut violations = Vec::new();
        check_uuid(
            &mut violations,
            "payment.payment_method_id",
            &payment.payment_method_id,
        );
        check_uuid(&mut violations, "payment.payment_id", &payment.payment_id);
        if violations.is_empty() {
            Ok(Self {
                payment_method_id: &payment.payment_method_id,
                payment_id: &payment.payment_id,
            })
        } else {
            Err(violations)
        }
    }
}

fn check_uuid(violations: &mut Vec<FieldViolation>, field: &str, value: &str) {
    if value.is_empty() {
        violations.push(FieldViolation::new(field, "required for Compago"));
    } else if !is_uuid(value) {
        violations.push(FieldViolation::new(
            field,
            "must be a UUID such as aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        ));
    }
}

/// A UUID in its 36-character hyphenated form, any case.
fn is_uuid(value: &str) -> bool {
    value.len() == 36 && uuid::Uuid::try_parse(value).is_ok()
}

impl Compago {
    /// `base_url` is the scheme and host (`https://api.harmony.compago.com`), or the
    /// simulator's URL with its path prefix (`http://127.0.0.1:9090/compago`); the adapter
    /// adds `/api/...`. `timeout` bounds each whole request.
    pub fn new(base_url: String, api_key: SecretString, timeout: Duration) -> Compago {
        Compago {
            base_url,
            api_key,
            client: provider_http::client(timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, ErrorCode};
    use crate::providers::samples::{self, fields};

    const PM: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
    const PAY: &str = "11111111-2222-3333-4444-555555555555";

    /// Both ids, as UUIDs.
    const IDS: Ids<'static> = Ids {
        payment_method_id: PM,
        payment_id: PAY,
    };

    /// An account at `base_url` with API key `key`.
    fn account(base_url: &str, key: &str) -> Compago {
        let timeout = Duration::from_secs(1);
        Compago::new(base_url.into(), SecretString::from(key), timeout)
    }

    fn compago() -> Compago {
        account("http://127.0.0.1:9/compago/", "k")
    }

    fn draft(pm: &str, pay: &str) -> RefundDraft {
        samples::draft("compago", pay, pm, "")
    }

    /// URLs keep the base URL's path prefix and carry both ids.
    #[test]
    fn urls_keep_the_base_path() {
        let c = compago();
        let ids = IDS;
        assert_eq!(
            c.refund_url(ids),
            format!("http://127.0.0.1:9/compago/api/payment-method/{PM}/payment/{PAY}/refund")
        );
    }

    /// The key is sent as `x-api-key`, marked sensitive, with JSON content type on bodies;
    /// and `Debug` of the adapter never shows the key.
    #[test]
    fn requests_carry_the_key_and_content_type() {
        let c = account("https://api.example", "very-secret-key");
        let ids = IDS;
        let body = wire::RefundRequest { reason: Some("x") };
        let req = c
            .build(Method::POST, c.refund_url(ids), Some(&body))
            .unwrap();
        let key = req.headers().get(API_KEY_HEADER).unwrap();
        assert_eq!(key, "very-secret-key");
        assert!(key.is_sensitive());
        assert_eq!(
            req.headers().get(http::header::CONTENT_TYPE).unwrap(),
            "application/json"
        );
        assert!(!format!("{c:?}").contains("very-secret-key"));
    }

    /// A key that cannot be a header value is refused before anything is sent.
    #[test]
    fn unusable_key_is_not_sent() {
        let c = account("https://api.example", "bad\nkey");
        let ids = IDS;
        let err = c.build(Method::GET, c.payment_url(ids), None).unwrap_err();
        assert_eq!(
            err,
            BuildError::Credential {
                provider: "Compago",
                key: "api_key"
            }
        );
        assert!(!err.to_string().contains("bad\nkey"));
        let broken = account("not a url", "k");
        let err = broken
            .build(Method::GET, broken.payment_url(ids), None)
            .unwrap_err();
        assert!(matches!(err, BuildError::Other { .. }), "{err:?}");
    }

    /// A well-formed Compago draft has no violations.
    #[test]
    fn validate_accepts_a_compago_draft() {
        let mut d = draft(PM, PAY);
        d.amount = Some(Money::new(50000, Currency::parse("MXN").unwrap()));
        assert_eq!(compago().validate(&d), vec![]);
        let upper = draft(&PM.to_uppercase(), &PAY.to_uppercase());
        assert_eq!(compago().validate(&upper), vec![]);
    }

    /// Missing or non-UUID ids, D24-only fields and non-MXN amounts are all reported at once.
    #[test]
    fn validate_reports_every_bad_field() {
        let c = compago();
        let v = c.validate(&draft("", ""));
        assert_eq!(
            fields(&v),
            ["payment.payment_method_id", "payment.payment_id"]
        );
        for bad in [
            "not-a-uuid",
            "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeeg",
            "aaaaaaaabbbbccccddddeeeeeeeeeeee",
            "{aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee}",
            "urn:uuid:aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
            "../../x",
        ] {
            let v = c.validate(&draft(bad, PAY));
            assert_eq!(fields(&v), ["payment.payment_method_id"], "{bad}");
            let v = c.validate(&draft(PM, bad));
            assert_eq!(fields(&v), ["payment.payment_id"], "{bad}");
        }
        let mut d = draft(PM, PAY);
        d.payment.invoice_id = "inv-1".into();
        d.bank_account = Some(samples::bank_account());
        d.amount = Some(Money::new(100, Currency::parse("USD").unwrap()));
        assert_eq!(
            fields(&c.validate(&d)),
            ["payment.invoice_id", "bank_account", "amount.currency_code"]
        );
    }

    /// Only the whole payment amount may be refunded; anything else is refused locally.
    #[test]
    fn check_refund_refuses_partial_amounts() {
        let mxn = Currency::parse("MXN").unwrap();
        let payment = samples::captured("CONFIRMED", Money::new(50000, mxn));
        let c = compago();
        let d = draft(PM, PAY);
        assert_eq!(c.check_refund(&d, &payment, Money::new(50000, mxn)), Ok(()));
        for minor in [49999, 1, 50001] {
            let err = c
                .check_refund(&d, &payment, Money::new(minor, mxn))
                .unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidArgument);
            assert_eq!(err.reason, reason::PARTIAL_REFUND_NOT_SUPPORTED);
            assert_eq!(fields(&err.violations), ["amount"]);
        }
    }
}
