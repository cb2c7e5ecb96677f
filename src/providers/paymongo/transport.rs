//! PayMongo over HTTP: URLs, headers, sending, and each call the adapter makes (its `Provider`
//! implementation), from request to classified answer (the classification itself is in
//! `answers`, the bodies in `wire`).

use super::*;

impl PayMongo {
    pub(super) fn url(&self, path: &str) -> String {
        provider_http::join(&self.base_url, path)
    }

    /// `Basic base64("sk_...:")`, marked sensitive so it is never logged.
    pub(super) fn authorization(&self) -> HeaderValue {
        let credentials = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:", self.secret_key.expose_secret()));
        let mut value = HeaderValue::from_str(&format!("Basic {credentials}"))
            .expect("base64 is always a valid header value");
        value.set_sensitive(true);
        value
    }

    /// A request with the credentials; a JSON body and an idempotency key when given.
    pub(super) fn build(
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
    pub(super) async fn read<T: DeserializeOwned>(
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
    /// The filter's name is not confirmed (docs/PROVIDERS.md section 5 item 10: a Laravel client
    /// sends `payment_id`, one third-party SDK `data.attributes.payment_id`). `payment_id` is
    /// sent, and the answer is filtered here as well, so a filter PayMongo ignored only makes
    /// the listing longer, never wrong; past [`MAX_LIST_PAGES`] the listing is declared
    /// incomplete rather than the refund absent.
    pub(super) async fn refunds_of(
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
    pub(super) async fn find_by_metadata(
        &self,
        refund: &Refund,
    ) -> Result<RefundLookup, ProviderError> {
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
    fn profile(&self) -> &'static Profile {
        &rules::PROFILE
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
                tracing::error!(error = %e, "PayMongo refund request could not be written");
                return SubmitOutcome::NotSent("the request could not be written".to_owned());
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
