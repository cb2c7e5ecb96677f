//! Compago over HTTP: URLs, headers, sending, and each call the adapter makes (its `Provider`
//! implementation), from request to classified answer (the classification itself is in
//! `answers`, the bodies in `wire`).

use super::*;

impl Compago {
    pub(super) fn payment_url(&self, ids: Ids<'_>) -> String {
        provider_http::join(
            &self.base_url,
            &format!(
                "/api/payment-method/{}/payment/{}",
                ids.payment_method_id, ids.payment_id
            ),
        )
    }

    pub(super) fn refund_url(&self, ids: Ids<'_>) -> String {
        format!("{}/refund", self.payment_url(ids))
    }

    /// Builds a request with the API key. Building fails only on a key that is not a valid
    /// header value, a base URL that is not a URL, or a body that does not serialize:
    /// nothing has been sent then.
    pub(super) fn build(
        &self,
        method: Method,
        url: String,
        body: Option<&wire::RefundRequest<'_>>,
    ) -> Result<reqwest::Request, BuildError> {
        let mut key = HeaderValue::from_str(self.api_key.expose_secret()).map_err(|_| {
            BuildError::Credential {
                provider: "Compago",
                key: "api_key",
            }
        })?;
        key.set_sensitive(true);
        let mut builder = self
            .client
            .request(method, url)
            .header(API_KEY_HEADER, key)
            .header(http::header::ACCEPT, "application/json");
        if let Some(body) = body {
            // `.json` also sets `Content-Type: application/json`.
            builder = builder.json(body);
        }
        builder.build().map_err(|e| BuildError::Other {
            provider: "Compago",
            why: e.to_string(),
        })
    }

    /// `GET .../payment/{paymentId}`, with every answer but a readable 200 turned into a
    /// `ProviderError`.
    pub(super) async fn read_payment(&self, ids: Ids<'_>) -> Result<wire::Payment, ProviderError> {
        let request = self.build(Method::GET, self.payment_url(ids), None);
        let answer = Answer::read("Compago", &self.client, request).await?;
        let status = answer.status;
        let body = answer.success_body("Compago", |status, headers, body| {
            read_failure(status, headers, body, ids)
        })?;
        let payment: wire::Payment = serde_json::from_str(&body).map_err(|e| {
            ProviderError::BadResponse(format!(
                "Compago answered {status} with an unreadable payment ({e}): {}",
                shorten(&body)
            ))
        })?;
        if !wire::same_uuid(&payment.id, ids.payment_id) {
            return Err(ProviderError::BadResponse(format!(
                "Compago answered with payment {:?} when asked for {}",
                payment.id, ids.payment_id
            )));
        }
        Ok(payment)
    }
}

#[async_trait]
impl Provider for Compago {
    fn profile(&self) -> &'static Profile {
        &rules::PROFILE
    }

    #[tracing::instrument(skip_all, fields(
        provider = "compago",
        payment_id = %payment.payment_id,
        payment_method_id = %payment.payment_method_id,
    ))]
    async fn get_payment(&self, payment: &PaymentRef) -> Result<ProviderPayment, ProviderError> {
        let ids = Ids::of(payment).map_err(|v| ProviderError::Rejected(invalid_ids(&v)))?;
        let answer = self.read_payment(ids).await?;
        answer
            .to_provider_payment()
            .map_err(ProviderError::BadResponse)
    }

    #[tracing::instrument(skip_all, fields(
        provider = "compago",
        refund_id = %refund.id,
        payment_id = %refund.payment.payment_id,
        payment_method_id = %refund.payment.payment_method_id,
    ))]
    async fn submit_refund(&self, refund: &Refund) -> SubmitOutcome {
        let ids = match Ids::of(&refund.payment) {
            Ok(ids) => ids,
            Err(v) => return SubmitOutcome::Rejected(invalid_ids(&v)),
        };
        let body = wire::RefundRequest::for_refund(refund);
        let request = self.build(Method::POST, self.refund_url(ids), Some(&body));
        let (outcome, status) = provider_http::submit(
            "Compago",
            "applied",
            &self.client,
            request,
            |answer: wire::RefundResponse| answer.observe_refund(refund),
            |status, headers, body| submit_failure(status, headers, body, ids),
        )
        .await;
        provider_http::log_submission("Compago", status, &outcome);
        outcome
    }

    #[tracing::instrument(skip_all, fields(
        provider = "compago",
        refund_id = %refund.id,
        payment_id = %refund.payment.payment_id,
        payment_method_id = %refund.payment.payment_method_id,
    ))]
    async fn fetch_refund(&self, refund: &Refund) -> Result<RefundLookup, ProviderError> {
        let ids = Ids::of(&refund.payment).map_err(|v| ProviderError::Rejected(invalid_ids(&v)))?;
        let payment = self.read_payment(ids).await?;
        Ok(match payment.status.refund_status() {
            // A refunded payment is the refund; it must still be the refund we asked for.
            Some(_) => RefundLookup::Found(payment.observe_refund(refund)),
            None => RefundLookup::Absent,
        })
    }
}
