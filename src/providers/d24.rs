//! D24 (Directa24 / OneKeyPayments, Deposits API v3): the transport side of the adapter
//! (URLs, signed headers, sending, classifying answers). The JSON bodies, the status and code
//! tables are in [`wire`]; the signature in [`signature`].
//!
//! What shapes this adapter (docs/PROVIDERS.md section 1):
//! - Every call is signed: `X-Date` (UTC, seconds), `X-Login`, and
//!   `Authorization: D24 hex(HMAC-SHA256(secret, X-Date + X-Login + body))`, the body being
//!   byte for byte the one sent (empty for GETs). Bodies are serialized once to a string,
//!   signed, and that string is sent.
//! - Every create carries `X-Idempotency-Key` = the gateway's refund id, so sending it again
//!   after an unknown outcome can never make a second refund: D24 answers `104
//!   IDEMPOTENCY_KEY_ALREADY_USED` when the first attempt landed (an *unknown* outcome, never
//!   a failure), and creates the refund when it did not.
//! - Refunds are partial or full, many per deposit; the amount is always sent explicitly.
//!   Card refunds may complete at once (`refund_info.result`); bank/cash refunds answer
//!   `{refund_id}` and complete later. D24 POSTs `{"refund_id": N}` to the
//!   `notification_url` on every status change; the gateway re-reads the refund.
//! - Reads (`GET /v3/refunds/{id}`, `GET /v3/deposits/{id}`) are signed the same way with the
//!   deposit key, as the official SDKs do.

mod answers;
mod config;
mod rules;
pub mod signature;
mod transport;
pub mod webhook;
pub mod wire;

use self::answers::{read_failure, repeat_guard, submit_failure};
pub use self::config::D24Config;

use std::{fmt, time::Duration};

use async_trait::async_trait;
use chrono::Utc;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};

use super::http::{Answer, BuildError, shorten};
use super::{
    Capabilities, Profile, Provider, ProviderError, ProviderKind, ProviderPayment,
    ProviderRefundRecord, RefundDraft, RefundLookup, Rejection, SubmitOutcome, WebhookError,
    WebhookNotice, http as provider_http,
};
use crate::domain::{ApiError, ErrorCode, FieldViolation, Money, PaymentRef, Refund, reason};

/// Currencies of D24's markets that refunds are offered in (AR, BO, BR, CA, CL, CO, EC/US,
/// GT, MX, PE, PY). Others may work; these are the ones the gateway advertises.
const CURRENCIES: &[&str] = &[
    "ARS", "BOB", "BRL", "CAD", "CLP", "COP", "GTQ", "MXN", "PEN", "PYG", "USD",
];

/// A D24 account.
pub struct D24 {
    base_url: String,
    login: SecretString,
    secret_key: SecretString,
    notification_url: Option<String>,
    client: reqwest::Client,
}

impl fmt::Debug for D24 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("D24")
            .field("base_url", &self.base_url)
            .field("notification_url", &self.notification_url)
            .finish_non_exhaustive()
    }
}

impl D24 {
    /// `base_url` is the scheme and host (`https://api-stg.directa24.com`) or the simulator's
    /// URL with its prefix (`http://127.0.0.1:9090/d24`); the adapter adds `/v3/...`.
    /// `notification_url` is where D24 should POST refund status changes. `timeout` bounds
    /// each whole request.
    pub fn new(
        base_url: String,
        login: SecretString,
        secret_key: SecretString,
        notification_url: Option<String>,
        timeout: Duration,
    ) -> D24 {
        D24 {
            base_url,
            login,
            secret_key,
            notification_url,
            client: provider_http::client(timeout),
        }
    }
}

/// The body of a 2xx answer to a read of a `what` ("refund", "deposit"); any other answer
/// as a `ProviderError`.
fn success_body(answer: Answer, what: &str) -> Result<String, ProviderError> {
    answer.success_body("D24", |status, headers, body| {
        read_failure(status, headers, body, what)
    })
}

/// The deposit id of a payment reference, or the caller-facing rejection.
fn deposit_of(payment: &PaymentRef) -> Result<u64, Rejection> {
    wire::deposit_id(&payment.payment_id).ok_or_else(|| {
        Rejection::new(
            ErrorCode::InvalidArgument,
            reason::INVALID_ARGUMENT,
            format!(
                "payment.payment_id {:?} is not a D24 deposit_id (a positive integer)",
                payment.payment_id
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Currency;
    use crate::providers::samples::{self, fields};

    fn d24(base: &str) -> D24 {
        D24::new(
            base.into(),
            SecretString::from("login-key"),
            SecretString::from("very-secret"),
            Some("https://gw.example/webhooks/d24/d24".into()),
            Duration::from_secs(1),
        )
    }

    fn draft(deposit: &str, invoice: &str) -> RefundDraft {
        samples::draft("d24", deposit, "", invoice)
    }

    /// Requests carry the signed headers: X-Date in seconds, X-Login and Authorization
    /// marked sensitive, a signature over exactly the body sent, and the idempotency key;
    /// `Debug` never shows the secrets.
    #[test]
    fn requests_are_signed_over_the_body_sent() {
        let adapter = d24("http://127.0.0.1:9/d24/");
        let body = r#"{"deposit_id":1,"invoice_id":"i","amount":5.00}"#.to_owned();
        let req = adapter
            .build(Method::POST, "/v3/refunds", body.clone(), Some("rf_1"))
            .unwrap();
        assert_eq!(req.url().as_str(), "http://127.0.0.1:9/d24/v3/refunds");
        let h = req.headers();
        let date = h["x-date"].to_str().unwrap();
        assert!(signature::parse_x_date(date).is_some(), "{date}");
        assert_eq!(h["x-login"], "login-key");
        assert!(h["x-login"].is_sensitive() && h["authorization"].is_sensitive());
        assert_eq!(h["x-idempotency-key"], "rf_1");
        assert_eq!(h["content-type"], "application/json");
        let sent = req.body().unwrap().as_bytes().unwrap();
        assert_eq!(sent, body.as_bytes());
        assert!(signature::verify(
            b"very-secret",
            date,
            "login-key",
            sent,
            h["authorization"].to_str().unwrap()
        ));
        let get = adapter
            .build(Method::GET, "/v3/refunds/7", String::new(), None)
            .unwrap();
        assert!(get.body().is_none());
        assert!(get.headers().get("x-idempotency-key").is_none());
        assert!(signature::verify(
            b"very-secret",
            get.headers()["x-date"].to_str().unwrap(),
            "login-key",
            b"",
            get.headers()["authorization"].to_str().unwrap()
        ));
        let debug = format!("{adapter:?}");
        assert!(!debug.contains("login-key") && !debug.contains("very-secret"));
    }

    /// A login that cannot be a header value is refused before anything is sent.
    #[test]
    fn unusable_login_is_not_sent() {
        let adapter = D24::new(
            "https://api.example".into(),
            SecretString::from("bad\nlogin"),
            SecretString::from("s"),
            None,
            Duration::from_secs(1),
        );
        let err = adapter
            .build(Method::GET, "/v3/refunds/1", String::new(), None)
            .unwrap_err();
        assert_eq!(
            err,
            BuildError::Credential {
                provider: "D24",
                key: "login"
            }
        );
        assert!(!err.to_string().contains("bad\nlogin"));
    }

    /// A well-formed D24 draft has no violations; every bad field is reported at once.
    #[test]
    fn validate_reports_every_bad_field() {
        let a = d24("https://api.example");
        assert_eq!(a.validate(&draft("300533647", "newIUnit45328732")), vec![]);
        let v = a.validate(&draft("", ""));
        assert_eq!(fields(&v), ["payment.payment_id", "payment.invoice_id"]);
        for bad in ["0", "-1", "abc", "1.5", "007"] {
            let v = a.validate(&draft(bad, "i"));
            assert_eq!(fields(&v), ["payment.payment_id"], "{bad}");
        }
        let mut d = draft("1", &"x".repeat(129));
        d.payment.payment_method_id = "pm".into();
        d.description = "é".repeat(201);
        d.amount = Some(Money::new(1000, Currency::parse("BHD").unwrap()));
        assert_eq!(
            fields(&a.validate(&d)),
            [
                "payment.invoice_id",
                "payment.payment_method_id",
                "description",
                "amount.currency_code"
            ]
        );
        let mut ok = draft("1", &"x".repeat(128));
        ok.description = "é".repeat(200);
        assert_eq!(a.validate(&ok), vec![]);
    }

    /// A non-card deposit needs a bank account; a card deposit does not.
    #[test]
    fn check_refund_wants_a_bank_account_for_non_card_deposits() {
        let a = d24("https://api.example");
        let mxn = Currency::parse("MXN").unwrap();
        let mut payment = ProviderPayment {
            needs_bank_account: true,
            ..samples::captured("COMPLETED", Money::new(10000, mxn))
        };
        let mut d = draft("1", "i");
        let err = a
            .check_refund(&d, &payment, Money::new(100, mxn))
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument);
        assert_eq!(err.reason, reason::BANK_ACCOUNT_REQUIRED);
        assert_eq!(fields(&err.violations), ["bank_account"]);
        d.bank_account = Some(samples::bank_account());
        assert_eq!(a.check_refund(&d, &payment, Money::new(100, mxn)), Ok(()));
        payment.needs_bank_account = false;
        assert_eq!(
            a.check_refund(&draft("1", "i"), &payment, Money::new(100, mxn)),
            Ok(())
        );
    }

    /// Notifications name one refund to read again; anything else is malformed.
    #[test]
    fn webhook_names_a_refund_to_refetch() {
        let a = d24("https://api.example");
        let h = HeaderMap::new();
        assert_eq!(
            a.parse_webhook(&h, br#"{"refund_id": 168284}"#).unwrap(),
            vec![WebhookNotice::Refetch {
                provider_refund_id: "168284".into()
            }]
        );
        assert!(matches!(
            a.parse_webhook(&h, b"{}"),
            Err(WebhookError::Malformed(_))
        ));
    }
}
