//! D24 over HTTP: URLs, headers, sending, and each call the adapter makes (its `Provider`
//! implementation), from request to classified answer (the classification itself is in
//! `answers`, the bodies in `wire`).

use super::*;

impl D24 {
    pub(super) fn url(&self, path: &str) -> String {
        provider_http::join(&self.base_url, path)
    }

    /// Builds a signed request. `body` is the exact text sent and signed (empty for GETs).
    pub(super) fn build(
        &self,
        method: Method,
        path: &str,
        body: String,
        idempotency_key: Option<&str>,
    ) -> Result<reqwest::Request, BuildError> {
        let x_date = signature::x_date(Utc::now());
        let login = self.login.expose_secret();
        let mut login_header =
            HeaderValue::from_str(login).map_err(|_| BuildError::Credential {
                provider: "D24",
                key: "login",
            })?;
        login_header.set_sensitive(true);
        let mut authorization = HeaderValue::from_str(&signature::authorization(
            self.secret_key.expose_secret().as_bytes(),
            &x_date,
            login,
            body.as_bytes(),
        ))
        .map_err(|e| BuildError::Other {
            provider: "D24",
            why: e.to_string(),
        })?;
        authorization.set_sensitive(true);
        let mut builder = self
            .client
            .request(method, self.url(path))
            // The official SDKs send the JSON content type on GETs too.
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .header("X-Date", x_date)
            .header("X-Login", login_header)
            .header(http::header::AUTHORIZATION, authorization);
        if let Some(key) = idempotency_key {
            builder = builder.header("X-Idempotency-Key", key);
        }
        if !body.is_empty() {
            builder = builder.body(body);
        }
        builder.build().map_err(|e| BuildError::Other {
            provider: "D24",
            why: e.to_string(),
        })
    }

    /// A signed GET, with any failure to get an answer turned into `Unreachable`.
    pub(super) async fn get(&self, path: &str) -> Result<Answer, ProviderError> {
        let request = self.build(Method::GET, path, String::new(), None);
        Answer::read("D24", &self.client, request).await
    }

    /// `GET /v3/refunds/{id}`: the status body, or `None` for a 404.
    pub(super) async fn read_refund(
        &self,
        provider_refund_id: &str,
    ) -> Result<Option<wire::RefundStatusResponse>, ProviderError> {
        if !wire::is_refund_id(provider_refund_id) {
            return Err(ProviderError::BadResponse(format!(
                "{provider_refund_id:?} is not a D24 refund id"
            )));
        }
        let answer = self
            .get(&format!("/v3/refunds/{provider_refund_id}"))
            .await?;
        if answer.status == StatusCode::NOT_FOUND {
            // A refund D24 does not hold (JSDK stubs this 404 with an empty body). Only a
            // refund with a known id is read, so this never starts a second submission.
            return Ok(None);
        }
        let body = success_body(answer, "refund")?;
        serde_json::from_str(&body).map(Some).map_err(|e| {
            ProviderError::BadResponse(format!(
                "D24 answered with an unreadable refund status ({e}): {}",
                shorten(&body)
            ))
        })
    }
}

#[async_trait]
impl Provider for D24 {
    fn profile(&self) -> &'static Profile {
        &rules::PROFILE
    }

    #[tracing::instrument(skip_all, fields(provider = "d24", deposit_id = %payment.payment_id))]
    async fn get_payment(&self, payment: &PaymentRef) -> Result<ProviderPayment, ProviderError> {
        let deposit_id = deposit_of(payment).map_err(ProviderError::Rejected)?;
        let answer = self.get(&format!("/v3/deposits/{deposit_id}")).await?;
        let body = success_body(answer, "deposit")?;
        let deposit: wire::Deposit = serde_json::from_str(&body).map_err(|e| {
            ProviderError::BadResponse(format!(
                "D24 answered with an unreadable deposit ({e}): {}",
                shorten(&body)
            ))
        })?;
        if let Some(answered) = deposit.deposit_id
            && answered != deposit_id
        {
            return Err(ProviderError::BadResponse(format!(
                "D24 answered with deposit {answered} when asked for {deposit_id}"
            )));
        }
        deposit
            .to_provider_payment()
            .map_err(|e| ProviderError::BadResponse(format!("deposit {deposit_id}: {e}")))
    }

    #[tracing::instrument(skip_all, fields(
        provider = "d24",
        refund_id = %refund.id,
        deposit_id = %refund.payment.payment_id,
    ))]
    async fn submit_refund(&self, refund: &Refund) -> SubmitOutcome {
        let deposit_id = match deposit_of(&refund.payment) {
            Ok(id) => id,
            Err(rejection) => return SubmitOutcome::Rejected(rejection),
        };
        let body =
            wire::RefundRequest::for_refund(refund, deposit_id, self.notification_url.as_deref());
        // Serialized once: this exact text is signed and sent.
        let body = match serde_json::to_string(&body) {
            Ok(text) => text,
            Err(e) => {
                return SubmitOutcome::NotSent(format!("the refund could not be encoded: {e}"));
            }
        };
        let request = self.build(Method::POST, "/v3/refunds", body, Some(refund.id.as_str()));
        let (outcome, status) = provider_http::submit(
            "D24",
            "created",
            &self.client,
            request,
            |created: wire::RefundResponse| created.observe(refund),
            submit_failure,
        )
        .await;
        let outcome = repeat_guard(refund, outcome);
        provider_http::log_submission("D24", status, &outcome);
        outcome
    }

    #[tracing::instrument(skip_all, fields(
        provider = "d24",
        refund_id = %refund.id,
        provider_refund_id = refund.provider_refund_id.as_deref().unwrap_or(""),
    ))]
    async fn fetch_refund(&self, refund: &Refund) -> Result<RefundLookup, ProviderError> {
        // Without D24's id there is nothing to read: either the refund never reached D24, or
        // its answer was lost. Reconciliation then re-sends it under the same idempotency
        // key (harmless), or learns the id from D24's notification.
        let Some(provider_refund_id) = refund.provider_refund_id.as_deref() else {
            return Ok(RefundLookup::Absent);
        };
        match self.read_refund(provider_refund_id).await? {
            None => Ok(RefundLookup::Absent),
            Some(body) => body
                .observe_refund(refund, provider_refund_id)
                .map(RefundLookup::Found)
                .map_err(ProviderError::BadResponse),
        }
    }

    #[tracing::instrument(skip_all, fields(provider = "d24", provider_refund_id))]
    async fn refund_by_provider_id(
        &self,
        provider_refund_id: &str,
    ) -> Result<Option<ProviderRefundRecord>, ProviderError> {
        match self.read_refund(provider_refund_id).await? {
            None => Ok(None),
            Some(body) => body
                .record(provider_refund_id)
                .map(Some)
                .map_err(ProviderError::BadResponse),
        }
    }

    fn parse_webhook(
        &self,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Vec<WebhookNotice>, WebhookError> {
        webhook::parse(body)
    }
}
