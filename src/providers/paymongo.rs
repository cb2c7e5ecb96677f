//! PayMongo (Philippines): the transport side of the adapter (URLs, headers, sending).
//! Bodies and what they mean are in [`wire`]; what error answers mean in `answers`; webhook
//! signatures and events in [`webhook`].
//!
//! What shapes this adapter (docs/PROVIDERS.md section 2):
//! - HTTP Basic auth with the secret key as user name and an empty password
//!   (`base64("sk_...:")`); JSON:API envelopes; integer centavos, PHP only, at least 100.
//! - Every create carries `Idempotency-Key` = the gateway's refund id. PayMongo stores the
//!   first answer to a key and replays it to every retry with the same parameters, **for 24
//!   hours** (PM-IDEM); after that a key is new again. The metadata also carries the gateway's
//!   id, so a refund whose create answer was lost is found by listing the payment's refunds;
//!   reconciliation re-sends only when that listing proves the refund absent, which keeps a
//!   late re-send safe even past the 24 hours.
//! - Refunds are asynchronous: `pending`/`processing` become PROCESSING, then webhooks
//!   (`payment.refund.updated`, `payment.refunded`) or polling bring the final status.
//! - 429 is back-off, never a failure: nothing was created, and the caller gets UNAVAILABLE
//!   with the delay PayMongo asks for.

mod answers;
mod config;
mod rules;
mod transport;
pub mod webhook;
pub mod wire;

pub use self::config::PayMongoConfig;

use std::{fmt, time::Duration};

use async_trait::async_trait;
use base64::Engine as _;
use http::{HeaderMap, HeaderValue, Method};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use self::answers::{NotFound, ReadFailure, read_failure, submit_failure};
use super::http::{Answer, BuildError, shorten};

use super::{
    Capabilities, Profile, Provider, ProviderError, ProviderKind, ProviderPayment, RefundDraft,
    RefundLookup, Rejection, SubmitOutcome, WebhookError, WebhookNotice, http as provider_http,
};
use crate::domain::{
    ApiError, ErrorCode, FieldViolation, Money, Observation, PaymentRef, Refund, RefundFailure,
    RefundStatus, reason,
};

/// The header that makes a create idempotent.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// Refunds per page when listing a payment's refunds (PayMongo's largest `limit`).
const LIST_PAGE_SIZE: u32 = 100;

/// Pages read before giving up on finding a refund by its metadata. A payment with more
/// refunds than this cannot be reconciled by listing; the refund then stays in doubt and
/// goes to review instead of being declared absent.
const MAX_LIST_PAGES: usize = 20;

/// A PayMongo account.
pub struct PayMongo {
    base_url: String,
    secret_key: SecretString,
    webhook_secret: SecretString,
    /// The mode of the secret key: `Some(true)` for `sk_live_`, `Some(false)` for `sk_test_`.
    livemode: Option<bool>,
    client: reqwest::Client,
}

impl fmt::Debug for PayMongo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PayMongo")
            .field("base_url", &self.base_url)
            .field("livemode", &self.livemode)
            .finish_non_exhaustive()
    }
}

/// `pay_` or `ref_` and letters and digits: PayMongo's id shape, and safe in a URL path.
fn is_id(value: &str, prefix: &str) -> bool {
    value
        .strip_prefix(prefix)
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn check_payment_id(payment_id: &str) -> Result<(), FieldViolation> {
    if payment_id.is_empty() {
        Err(FieldViolation::new(
            "payment.payment_id",
            "required for PayMongo",
        ))
    } else if !is_id(payment_id, "pay_") {
        Err(FieldViolation::new(
            "payment.payment_id",
            "must be a PayMongo payment id such as pay_qOShdAuD3p8tKa6Ac4SRfbjs",
        ))
    } else {
        Ok(())
    }
}

impl PayMongo {
    /// `base_url` is the scheme and host (`https://api.paymongo.com`) or the simulator's URL
    /// with its path prefix; the adapter adds `/v1/...`. `timeout` bounds each whole request.
    pub fn new(
        base_url: String,
        secret_key: SecretString,
        webhook_secret: SecretString,
        timeout: Duration,
    ) -> PayMongo {
        let key = secret_key.expose_secret();
        let livemode = if key.starts_with("sk_live_") {
            Some(true)
        } else if key.starts_with("sk_test_") {
            Some(false)
        } else {
            None
        };
        PayMongo {
            base_url,
            secret_key,
            webhook_secret,
            livemode,
            client: provider_http::client(timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{BankAccount, BankAccountType, Currency};
    use crate::providers::samples::{self, fields};

    const PAY: &str = "pay_qOShdAuD3p8tKa6Ac4SRfbjs";

    fn paymongo(key: &str) -> PayMongo {
        PayMongo::new(
            "http://127.0.0.1:9/paymongo/".into(),
            SecretString::from(key),
            SecretString::from("whsk_x"),
            Duration::from_secs(1),
        )
    }

    fn php(minor: i64) -> Money {
        Money::new(minor, Currency::parse("PHP").unwrap())
    }

    fn draft() -> RefundDraft {
        RefundDraft {
            amount: Some(php(10000)),
            ..samples::draft("paymongo", PAY, "", "")
        }
    }

    /// Basic auth is `base64("sk_...:")`, sensitive; the idempotency key and JSON content
    /// type go on creates; `Debug` never shows either secret.
    #[test]
    fn requests_carry_basic_auth_and_idempotency_key() {
        let p = paymongo("sk_test_abc");
        let req = p
            .build(
                Method::POST,
                p.url("/v1/refunds"),
                &[],
                Some("{}".into()),
                Some("rf_1"),
            )
            .unwrap();
        assert_eq!(req.url().as_str(), "http://127.0.0.1:9/paymongo/v1/refunds");
        let auth = req.headers().get(http::header::AUTHORIZATION).unwrap();
        assert_eq!(auth, "Basic c2tfdGVzdF9hYmM6"); // base64("sk_test_abc:")
        assert!(auth.is_sensitive());
        assert_eq!(req.headers().get(IDEMPOTENCY_KEY_HEADER).unwrap(), "rf_1");
        assert_eq!(
            req.headers().get(http::header::CONTENT_TYPE).unwrap(),
            "application/json"
        );
        let debug = format!("{p:?}");
        assert!(
            !debug.contains("sk_test_abc") && !debug.contains("whsk_x"),
            "{debug}"
        );
        assert_eq!(p.livemode, Some(false));
        assert_eq!(paymongo("sk_live_x").livemode, Some(true));
        assert_eq!(paymongo("other").livemode, None);
        let broken = PayMongo::new(
            "not a url".into(),
            SecretString::from("sk_test_x"),
            SecretString::from("whsk_x"),
            Duration::from_secs(1),
        );
        let err = broken
            .build(Method::GET, broken.url("/v1/refunds"), &[], None, None)
            .unwrap_err();
        assert_eq!(err.rejection().reason, reason::PROVIDER_MISCONFIGURED);
    }

    /// A good draft passes; every PayMongo rule is reported at once.
    #[test]
    fn validate_reports_every_bad_field() {
        let p = paymongo("sk_test_x");
        assert_eq!(p.validate(&draft()), vec![]);
        let mut d = draft();
        d.payment.payment_id = "pay_../x".into();
        d.payment.payment_method_id = "pm".into();
        d.payment.invoice_id = "inv".into();
        d.bank_account = Some(BankAccount {
            account_type: BankAccountType::Saving,
            ..samples::bank_account()
        });
        d.amount = Some(Money::new(100, Currency::parse("USD").unwrap()));
        d.description = "é".repeat(256);
        d.metadata
            .insert(wire::GATEWAY_ID_KEY.into(), "rf_mine".into());
        assert_eq!(
            fields(&p.validate(&d)),
            [
                "payment.payment_id",
                "payment.payment_method_id",
                "payment.invoice_id",
                "bank_account",
                "amount.currency_code",
                "description",
                "metadata[\"refund_gateway_id\"]"
            ]
        );
        for bad in ["", "pay_", "ref_abc", "abc", "pay_a b"] {
            let mut d = draft();
            d.payment.payment_id = bad.into();
            assert_eq!(fields(&p.validate(&d)), ["payment.payment_id"], "{bad:?}");
        }
        // 255 characters (not bytes) are fine.
        let mut d = draft();
        d.description = "é".repeat(255);
        assert_eq!(p.validate(&d), vec![]);
    }

    /// Below 100 centavos is refused up front; 100 is fine.
    #[test]
    fn check_refund_enforces_the_minimum() {
        let p = paymongo("sk_test_x");
        let payment = ProviderPayment {
            refunded: Some(php(0)),
            ..samples::captured("paid", php(50000))
        };
        assert_eq!(p.check_refund(&draft(), &payment, php(100)), Ok(()));
        let err = p.check_refund(&draft(), &payment, php(99)).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument);
        assert_eq!(err.reason, reason::AMOUNT_BELOW_MINIMUM);
        assert_eq!(fields(&err.violations), ["amount"]);
    }
}
