//! What every provider adapter shares about HTTP: one rustls client per account with its
//! timeouts, why a request could not be built, and the rule that decides whether a failed
//! request may have reached the provider.

use std::time::Duration;

use http::HeaderMap;

/// Builds the client of one provider account: `timeout` bounds each whole request.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .pool_idle_timeout(Duration::from_secs(60))
        // A redirect would turn a POST into a GET somewhere else: never follow one.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("refund-gateway/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a rustls reqwest client always builds")
}

/// Whether a failed request may have reached the provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendFailure {
    /// The connection was never made: nothing was sent.
    NotSent(String),
    /// The request may have been sent (timeout, connection lost, body read failure).
    Unknown(String),
}

/// Classifies a reqwest error. Only a failure to connect proves the request was never sent;
/// everything else (a timeout after connecting, a reset connection, a body cut short) may
/// have reached the provider. The text is a stable description that callers may see (in a
/// refund's failure message): reqwest's own text names the URL, so it goes to the log only.
pub fn classify(err: &reqwest::Error) -> SendFailure {
    // reqwest's Display includes the URL but never headers, so no credentials leak here.
    tracing::debug!(error = %err, "provider request failed");
    if err.is_connect() {
        SendFailure::NotSent("the connection could not be made".to_owned())
    } else if err.is_timeout() {
        SendFailure::Unknown("no answer within the timeout".to_owned())
    } else {
        SendFailure::Unknown("the connection ended before an answer".to_owned())
    }
}

/// Why a request could not be built, so was never sent: the same for every provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// The credential `key` of the account is not a valid HTTP header value (its text is
    /// never repeated).
    Credential {
        provider: &'static str,
        key: &'static str,
    },
    /// Anything else, such as a base URL that is not a URL.
    Other { provider: &'static str, why: String },
}

impl BuildError {
    /// The caller-facing refusal: the account is misconfigured, nothing was sent.
    pub fn rejection(&self) -> super::Rejection {
        use crate::domain::{ErrorCode, reason};
        match self {
            Self::Credential { provider, key } => super::Rejection::new(
                ErrorCode::FailedPrecondition,
                reason::PROVIDER_AUTHENTICATION_FAILED,
                format!(
                    "the {provider} {key} of this provider account is not a valid HTTP header \
                     value"
                ),
            ),
            // `why` may name the base URL: it goes to the log only (`log`).
            Self::Other { provider, .. } => super::Rejection::new(
                ErrorCode::FailedPrecondition,
                reason::PROVIDER_MISCONFIGURED,
                format!(
                    "the {provider} provider account cannot be used: its requests cannot be \
                     built (see the gateway's log)"
                ),
            ),
        }
    }
}

impl BuildError {
    /// Logs the detail a caller never sees.
    fn log(&self) {
        if let Self::Other { provider, why } = self {
            tracing::error!(provider, why, "a provider request could not be built");
        }
    }
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.rejection().message)
    }
}

/// Parses a `Retry-After` header given in seconds.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// A read answered 503 with a `Retry-After`: the provider is up and says when to come back.
/// That is a "not now" (UNAVAILABLE with the delay), like a 429, and not a provider fault for
/// the circuit breaker; a 503 without `Retry-After` stays "unreachable". Only for reads: a
/// submission answered 5xx may still have been applied, so its outcome stays unknown.
pub fn read_not_now(
    provider: &str,
    status: http::StatusCode,
    headers: &HeaderMap,
    provider_message: String,
) -> Option<super::Rejection> {
    if status != http::StatusCode::SERVICE_UNAVAILABLE {
        return None;
    }
    let after = retry_after(headers)?;
    Some(super::Rejection {
        retry_after: Some(after),
        ..super::Rejection::new(
            crate::domain::ErrorCode::Unavailable,
            crate::domain::reason::PROVIDER_UNAVAILABLE,
            format!(
                "{provider} is temporarily unavailable and asks to be called again in {}s",
                after.as_secs()
            ),
        )
        .with_provider("503", provider_message)
    })
}

/// Joins a configured base URL ("https://api.example.com" or a sandbox
/// "http://127.0.0.1:9090/compago") and a path starting with '/'.
pub fn join(base: &str, path: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), path)
}

/// How much of an error body is kept as the provider's message.
pub const MAX_PROVIDER_MESSAGE: usize = 500;

/// At most `MAX_PROVIDER_MESSAGE` bytes of a body, cut on a character boundary.
pub fn shorten(body: &str) -> String {
    let body = body.trim();
    if body.len() <= MAX_PROVIDER_MESSAGE {
        return body.to_owned();
    }
    let mut cut = MAX_PROVIDER_MESSAGE;
    while !body.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &body[..cut])
}

/// An answer: its status, headers and body text (`Err` when the body could not be read).
#[derive(Debug)]
pub struct Answer {
    pub status: http::StatusCode,
    pub headers: HeaderMap,
    pub body: Result<String, String>,
}

impl Answer {
    async fn of(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.map_err(|e| e.to_string());
        Self {
            status,
            headers,
            body,
        }
    }

    /// Sends a read. A request that could not be built is the account's misconfiguration;
    /// any failure to get an answer is `Unreachable`.
    pub async fn read(
        provider: &'static str,
        client: &reqwest::Client,
        request: Result<reqwest::Request, BuildError>,
    ) -> Result<Self, super::ProviderError> {
        let request = request.map_err(|e| {
            e.log();
            super::ProviderError::Rejected(e.rejection())
        })?;
        let response = client.execute(request).await.map_err(|e| {
            tracing::debug!(error = %e, provider, "provider read failed");
            super::ProviderError::Unreachable(format!("{provider} could not be reached: {e}"))
        })?;
        Ok(Self::of(response).await)
    }

    /// The body of a 2xx answer; any other answer as `failure` classifies it (the status
    /// decides; the body, if it could be read, only adds the provider's words).
    pub fn success_body(
        self,
        provider: &'static str,
        failure: impl FnOnce(http::StatusCode, &HeaderMap, &str) -> super::ProviderError,
    ) -> Result<String, super::ProviderError> {
        if !self.status.is_success() {
            return Err(failure(
                self.status,
                &self.headers,
                self.body.as_deref().unwrap_or(""),
            ));
        }
        self.body.map_err(|e| {
            super::ProviderError::Unreachable(format!(
                "{provider} answered {} but the body could not be read: {e}",
                self.status
            ))
        })
    }
}

/// Sends a refund submission and sorts what happened (see the `providers` module docs): a
/// request that could not be built, or a connection never made, is `NotSent`; no answer is
/// `Unknown`; a 2xx is read as `T` and turned into an observation by `accepted` (unreadable,
/// it is `Unknown`: the provider may have acted); any other answer is for `refused` to
/// classify. `effect` is what the provider may have done ("created", "applied"). Also gives
/// the HTTP status, when there was an answer.
pub async fn submit<T: serde::de::DeserializeOwned>(
    provider: &'static str,
    effect: &str,
    client: &reqwest::Client,
    request: Result<reqwest::Request, BuildError>,
    accepted: impl FnOnce(T) -> crate::domain::Observation,
    refused: impl FnOnce(http::StatusCode, &HeaderMap, &str) -> super::SubmitOutcome,
) -> (super::SubmitOutcome, Option<http::StatusCode>) {
    use super::SubmitOutcome;
    let request = match request {
        Ok(request) => request,
        Err(why) => {
            why.log();
            return (SubmitOutcome::NotSent(why.to_string()), None);
        }
    };
    let response = match client.execute(request).await {
        Ok(response) => response,
        Err(e) => {
            let outcome = match classify(&e) {
                SendFailure::NotSent(why) => {
                    SubmitOutcome::NotSent(format!("{provider} could not be reached: {why}"))
                }
                SendFailure::Unknown(why) => SubmitOutcome::Unknown(format!(
                    "no answer from {provider}; the refund may or may not have been {effect}: \
                     {why}"
                )),
            };
            return (outcome, None);
        }
    };
    let answer = Answer::of(response).await;
    let status = answer.status;
    let outcome = if status.is_success() {
        // The provider may have acted: from here on, anything unreadable is unknown.
        match answer.body {
            Err(e) => {
                tracing::warn!(provider, %status, error = e, "provider answer body could not be read");
                SubmitOutcome::Unknown(format!(
                    "{provider} answered {status} but the body could not be read"
                ))
            }
            Ok(body) => match serde_json::from_str::<T>(&body) {
                Ok(taken) => SubmitOutcome::Accepted(accepted(taken)),
                Err(e) => {
                    tracing::warn!(provider, %status, error = %e, body = shorten(&body), "provider answer unreadable");
                    SubmitOutcome::Unknown(format!(
                        "{provider} answered {status} with a body the gateway could not read"
                    ))
                }
            },
        }
    } else {
        refused(
            status,
            &answer.headers,
            answer.body.as_deref().unwrap_or(""),
        )
    };
    (outcome, Some(status))
}

/// Logs how a submission ended, as the adapter saw it (`status`: the HTTP status of the
/// answer, when there was one).
pub fn log_submission(
    provider: &'static str,
    status: Option<http::StatusCode>,
    outcome: &super::SubmitOutcome,
) {
    use super::SubmitOutcome;
    use crate::domain::RefundStatus;
    match outcome {
        SubmitOutcome::Accepted(obs)
            if obs.failure.is_some() && obs.status == RefundStatus::RequiresReview =>
        {
            tracing::error!(provider, status = %obs.status, failure = ?obs.failure, "provider answer contradicts the refund");
        }
        SubmitOutcome::Accepted(obs) if obs.failure.is_some() => {
            tracing::warn!(provider, status = %obs.status, failure = ?obs.failure, "provider took the refund but it did not succeed");
        }
        SubmitOutcome::Accepted(obs) => {
            tracing::info!(provider, status = %obs.status, provider_refund_id = ?obs.provider_refund_id, "provider took the refund");
        }
        SubmitOutcome::Rejected(r) => {
            tracing::info!(provider, http_status = ?status, provider_code = %r.provider_code, reason = r.reason, "provider refused the refund");
        }
        SubmitOutcome::Unknown(why) => tracing::warn!(provider, why, "refund outcome unknown"),
        SubmitOutcome::NotSent(why) => tracing::info!(provider, why, "refund not sent"),
    }
}
