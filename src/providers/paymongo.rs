//! PayMongo (Philippines): the transport side of the adapter (URLs, headers, sending).
//! Bodies and what they mean are in [`wire`]; what error answers mean in `answers`; webhook
//! signatures and events in [`webhook`].
//!
//! What shapes this adapter (PROVIDERS.md section 2):
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
    Capabilities, Provider, ProviderError, ProviderKind, ProviderPayment, RefundDraft,
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

    /// The account configured by `config`; `Err` names a key it lacks.
    pub fn from_config(
        config: &PayMongoConfig,
        timeout: Duration,
    ) -> Result<PayMongo, &'static str> {
        let base_url = config.base_url.clone().ok_or("base_url")?;
        let secret_key = config.secret_key.clone().ok_or("secret_key")?;
        let webhook_secret = config.webhook_secret.clone().ok_or("webhook_secret")?;
        Ok(PayMongo::new(base_url, secret_key, webhook_secret, timeout))
    }

    fn url(&self, path: &str) -> String {
        provider_http::join(&self.base_url, path)
    }

    /// `Basic base64("sk_...:")`, marked sensitive so it is never logged.
    fn authorization(&self) -> HeaderValue {
        let credentials = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:", self.secret_key.expose_secret()));
        let mut value = HeaderValue::from_str(&format!("Basic {credentials}"))
            .expect("base64 is always a valid header value");
        value.set_sensitive(true);
        value
    }

    /// A request with the credentials; a JSON body and an idempotency key when given.
    fn build(
        &self,
        method: Method,
        url: String,
        query: &[(&str, &str)],
        body: Option<String>,
        idempotency_key: Option<&str>,
    ) -> Result<reqwest::Request, BuildError> {
        let mut builder = self
            .client
            .request(method, url)
            .header(http::header::AUTHORIZATION, self.authorization())
            .header(http::header::ACCEPT, "application/json");
        if !query.is_empty() {
            builder = builder.query(query);
        }
        if let Some(key) = idempotency_key {
            builder = builder.header(IDEMPOTENCY_KEY_HEADER, key);
        }
        if let Some(body) = body {
            builder = builder
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        builder.build().map_err(|e| BuildError::Other {
            provider: "PayMongo",
            why: e.to_string(),
        })
    }

    /// A GET whose 200 is read as `T`; `Ok(Err(NotFound))` for a documented 404.
    async fn read<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Result<T, NotFound>, ProviderError> {
        let request = self.build(Method::GET, self.url(path), query, None, None);
        let Answer {
            status,
            headers,
            body,
        } = Answer::read("PayMongo", &self.client, request).await?;
        let body = body.map_err(|e| {
            ProviderError::Unreachable(format!(
                "PayMongo answered {status} but the body could not be read: {e}"
            ))
        })?;
        if status.is_success() {
            return serde_json::from_str(&body).map(Ok).map_err(|e| {
                ProviderError::BadResponse(format!(
                    "PayMongo answered {status} to GET {path} with an unreadable body ({e}): {}",
                    shorten(&body)
                ))
            });
        }
        match read_failure(status, &headers, &body) {
            ReadFailure::NotFound => Ok(Err(NotFound)),
            ReadFailure::Error(err) => Err(err),
        }
    }

    /// Every refund of a payment, by `GET /v1/refunds?payment_id=...`, page by page.
    ///
    /// The filter's name is not confirmed (PROVIDERS.md section 5 item 10: a Laravel client
    /// sends `payment_id`, one third-party SDK `data.attributes.payment_id`). `payment_id` is
    /// sent, and the answer is filtered here as well, so a filter PayMongo ignored only makes
    /// the listing longer, never wrong; past [`MAX_LIST_PAGES`] the listing is declared
    /// incomplete rather than the refund absent.
    async fn refunds_of(
        &self,
        payment_id: &str,
    ) -> Result<Vec<wire::RefundResource>, ProviderError> {
        let limit = LIST_PAGE_SIZE.to_string();
        let mut found = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let mut query = vec![("payment_id", payment_id), ("limit", limit.as_str())];
            if let Some(after) = &after {
                query.push(("after", after.as_str()));
            }
            let page: wire::List<wire::RefundResource> =
                match self.read("/v1/refunds", &query).await? {
                    Ok(page) => page,
                    // No such payment: it has no refunds.
                    Err(NotFound) if after.is_none() => return Ok(found),
                    // A 404 midway leaves the listing incomplete: absence is not proven.
                    Err(NotFound) => {
                        return Err(ProviderError::BadResponse(format!(
                            "PayMongo stopped listing the refunds of payment {payment_id} midway"
                        )));
                    }
                };
            let last = page.data.last().map(|r| r.id.clone());
            found.extend(
                page.data
                    .into_iter()
                    .filter(|r| r.attributes.payment_id == payment_id),
            );
            match (page.has_more, last) {
                (false, _) => return Ok(found),
                (true, Some(last)) => after = Some(last),
                (true, None) => {
                    return Err(ProviderError::BadResponse(
                        "PayMongo said more refunds follow but sent an empty page".to_owned(),
                    ));
                }
            }
        }
        Err(ProviderError::BadResponse(format!(
            "payment {payment_id} has more than {} refunds at PayMongo; the gateway cannot list \
             them all to find one",
            MAX_LIST_PAGES * LIST_PAGE_SIZE as usize
        )))
    }

    /// Finds the refund by the gateway id in its metadata (its create answer was lost).
    async fn find_by_metadata(&self, refund: &Refund) -> Result<RefundLookup, ProviderError> {
        let all = self.refunds_of(&refund.payment.payment_id).await?;
        let ours: Vec<_> = all
            .iter()
            .filter(|r| r.gateway_id() == Some(refund.id.as_str()))
            .collect();
        Ok(match ours.as_slice() {
            [] => RefundLookup::Absent,
            [one] => RefundLookup::Found(one.observe_for(refund)),
            many => {
                // Never expected (one key, one refund); if it happens, a person must look.
                let ids: Vec<&str> = many.iter().map(|r| r.id.as_str()).collect();
                tracing::error!(refund_id = %refund.id, ?ids, "PayMongo holds several refunds for one gateway refund");
                RefundLookup::Found(Observation {
                    status: RefundStatus::RequiresReview,
                    provider_refund_id: Some(many[0].id.clone()),
                    provider_status: Some(many[0].attributes.status.clone()),
                    failure: Some(
                        RefundFailure::new(
                            reason::PROVIDER_MISMATCH,
                            format!(
                                "PayMongo holds {} refunds carrying this gateway refund's id: {}; \
                                 check payment {} at PayMongo",
                                many.len(),
                                ids.join(", "),
                                refund.payment.payment_id
                            ),
                        )
                        .with_provider("200", ids.join(",")),
                    ),
                    amount: None,
                    payment_id: None,
                })
            }
        })
    }
}

#[async_trait]
impl Provider for PayMongo {
    fn kind(&self) -> ProviderKind {
        ProviderKind::PayMongo
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            currencies: &[wire::CURRENCY],
            partial_refunds: true,
            webhooks: true,
        }
    }

    fn validate(&self, draft: &RefundDraft) -> Vec<FieldViolation> {
        let mut violations = Vec::new();
        if let Err(v) = check_payment_id(&draft.payment.payment_id) {
            violations.push(v);
        }
        if !draft.payment.payment_method_id.is_empty() {
            violations.push(FieldViolation::new(
                "payment.payment_method_id",
                "not used by PayMongo (Compago only); leave it empty",
            ));
        }
        if !draft.payment.invoice_id.is_empty() {
            violations.push(FieldViolation::new(
                "payment.invoice_id",
                "not used by PayMongo (D24 only); leave it empty",
            ));
        }
        if draft.bank_account.is_some() {
            violations.push(FieldViolation::new(
                "bank_account",
                "not used by PayMongo: refunds go back to the original payment method; leave it unset",
            ));
        }
        if let Some(amount) = draft.amount
            && amount.currency.code() != wire::CURRENCY
        {
            violations.push(FieldViolation::new(
                "amount.currency_code",
                format!("PayMongo refunds PHP only, got {}", amount.currency),
            ));
        }
        let chars = draft.description.chars().count();
        if chars > wire::MAX_NOTES_CHARS {
            violations.push(FieldViolation::new(
                "description",
                format!(
                    "PayMongo keeps at most {} characters of notes; this has {chars}",
                    wire::MAX_NOTES_CHARS
                ),
            ));
        }
        if draft.metadata.contains_key(wire::GATEWAY_ID_KEY) {
            violations.push(FieldViolation::new(
                format!("metadata[{:?}]", wire::GATEWAY_ID_KEY),
                "reserved: the gateway sends its own refund id under this key",
            ));
        }
        violations
    }

    #[tracing::instrument(skip_all, fields(provider = "paymongo", payment_id = %payment.payment_id))]
    async fn get_payment(&self, payment: &PaymentRef) -> Result<ProviderPayment, ProviderError> {
        if let Err(v) = check_payment_id(&payment.payment_id) {
            return Err(ProviderError::Rejected(Rejection::new(
                ErrorCode::InvalidArgument,
                reason::INVALID_ARGUMENT,
                format!("invalid {}: {}", v.field, v.description),
            )));
        }
        let path = format!("/v1/payments/{}", payment.payment_id);
        let answer: wire::Envelope<wire::PaymentResource> = match self.read(&path, &[]).await? {
            Ok(answer) => answer,
            Err(NotFound) => {
                return Err(ProviderError::Rejected(
                    Rejection::new(
                        ErrorCode::NotFound,
                        reason::PAYMENT_NOT_FOUND,
                        format!("PayMongo has no payment {}", payment.payment_id),
                    )
                    .with_provider("resource_not_found", ""),
                ));
            }
        };
        if answer.data.id != payment.payment_id {
            return Err(ProviderError::BadResponse(format!(
                "PayMongo answered with payment {:?} when asked for {}",
                answer.data.id, payment.payment_id
            )));
        }
        answer
            .data
            .to_provider_payment()
            .map_err(ProviderError::BadResponse)
    }

    fn check_refund(
        &self,
        _draft: &RefundDraft,
        payment: &ProviderPayment,
        amount: Money,
    ) -> Result<(), ApiError> {
        if payment.amount.currency.code() != wire::CURRENCY {
            return Err(ApiError::failed_precondition(
                reason::CURRENCY_NOT_SUPPORTED,
                format!(
                    "the payment is in {}; PayMongo refunds PHP only",
                    payment.amount.currency
                ),
            ));
        }
        if amount.minor < wire::MIN_REFUND_CENTAVOS {
            return Err(ApiError::invalid_field(
                reason::AMOUNT_BELOW_MINIMUM,
                "amount",
                format!("PayMongo refunds at least 1.00 PHP (100 centavos), not {amount}"),
            ));
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(
        provider = "paymongo",
        refund_id = %refund.id,
        payment_id = %refund.payment.payment_id,
    ))]
    async fn submit_refund(&self, refund: &Refund) -> SubmitOutcome {
        let payment_id = refund.payment.payment_id.as_str();
        if let Err(v) = check_payment_id(payment_id) {
            return SubmitOutcome::Rejected(Rejection::new(
                ErrorCode::InvalidArgument,
                reason::INVALID_ARGUMENT,
                format!("invalid {}: {}", v.field, v.description),
            ));
        }
        let body = match serde_json::to_string(&wire::CreateRefundRequest::for_refund(refund)) {
            Ok(body) => body,
            Err(e) => {
                return SubmitOutcome::NotSent(format!("the request could not be written: {e}"));
            }
        };
        let request = self.build(
            Method::POST,
            self.url("/v1/refunds"),
            &[],
            Some(body),
            Some(refund.id.as_str()),
        );
        let (outcome, status) = provider_http::submit(
            "PayMongo",
            "created",
            &self.client,
            request,
            |answer: wire::Envelope<wire::RefundResource>| answer.data.observe_for(refund),
            |status, headers, body| submit_failure(status, headers, body, payment_id),
        )
        .await;
        provider_http::log_submission("PayMongo", status, &outcome);
        outcome
    }

    #[tracing::instrument(skip_all, fields(
        provider = "paymongo",
        refund_id = %refund.id,
        payment_id = %refund.payment.payment_id,
    ))]
    async fn fetch_refund(&self, refund: &Refund) -> Result<RefundLookup, ProviderError> {
        let Some(provider_refund_id) = refund.provider_refund_id.as_deref() else {
            // The create answer was lost: look for the refund by the id it carries.
            return self.find_by_metadata(refund).await;
        };
        if !is_id(provider_refund_id, "ref_") {
            return Err(ProviderError::BadResponse(format!(
                "recorded PayMongo refund id {provider_refund_id:?} is not a PayMongo refund id"
            )));
        }
        let path = format!("/v1/refunds/{provider_refund_id}");
        Ok(
            match self
                .read::<wire::Envelope<wire::RefundResource>>(&path, &[])
                .await?
            {
                Ok(answer) if answer.data.id == provider_refund_id => {
                    RefundLookup::Found(answer.data.observe_for(refund))
                }
                Ok(answer) => {
                    return Err(ProviderError::BadResponse(format!(
                        "PayMongo answered with refund {:?} when asked for {provider_refund_id}",
                        answer.data.id
                    )));
                }
                Err(NotFound) => RefundLookup::Absent,
            },
        )
    }

    fn resubmit_is_safe(&self) -> bool {
        // The create carries Idempotency-Key = the refund id, so a re-send within 24 hours
        // gets the first answer back instead of a second refund (PM-IDEM). Reconciliation
        // re-sends only after `fetch_refund` listed the payment's refunds and found none with
        // this refund's id in its metadata, which also covers re-sends after the key expired.
        true
    }

    fn parse_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Vec<WebhookNotice>, WebhookError> {
        webhook::parse(
            self.webhook_secret.expose_secret().as_bytes(),
            headers,
            body,
            self.livemode,
            chrono::Utc::now().timestamp(),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::{
        BankAccount, BankAccountType, Currency, PaymentStatus, RefundReason, TenantId,
    };

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
            tenant: TenantId::new("t"),
            request_id: "r".into(),
            provider: "paymongo".into(),
            payment: PaymentRef {
                payment_id: PAY.into(),
                ..PaymentRef::default()
            },
            amount: Some(php(10000)),
            reason: RefundReason::Other,
            description: String::new(),
            metadata: BTreeMap::new(),
            bank_account: None,
        }
    }

    fn fields(v: &[FieldViolation]) -> Vec<&str> {
        v.iter().map(|v| v.field.as_str()).collect()
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
            beneficiary: "b".into(),
            bank_code: "1".into(),
            branch: "2".into(),
            account_number: "12345678".into(),
            account_type: BankAccountType::Saving,
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
            status: PaymentStatus::Captured,
            provider_status: "paid".into(),
            amount: php(50000),
            refunded: Some(php(0)),
            needs_bank_account: false,
        };
        assert_eq!(p.check_refund(&draft(), &payment, php(100)), Ok(()));
        let err = p.check_refund(&draft(), &payment, php(99)).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument);
        assert_eq!(err.reason, reason::AMOUNT_BELOW_MINIMUM);
        assert_eq!(fields(&err.violations), ["amount"]);
    }
}
