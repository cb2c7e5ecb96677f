//! What every provider adapter shares about HTTP: one rustls client per account with its
//! timeouts, and the rule that decides whether a failed request may have reached the provider.

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
/// have reached the provider.
pub fn classify(err: &reqwest::Error) -> SendFailure {
    // reqwest's Display includes the URL but never headers, so no credentials leak here.
    let text = err.to_string();
    if err.is_connect() {
        SendFailure::NotSent(text)
    } else {
        SendFailure::Unknown(text)
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
