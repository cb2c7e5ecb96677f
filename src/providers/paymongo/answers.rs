//! How PayMongo's error answers are read (docs/PROVIDERS.md sections 2.7 and 2.8): what an HTTP
//! status and an `{"errors":[...]}` body say about a read, and about a refund create. Pure.
//!
//! The rule for creates: only an answer that proves nothing was created is a rejection (a
//! documented refusal code, 401/403, 429, a route that does not exist); everything else
//! (5xx, 408, 409, processing errors, unknown codes, bodies that are not PayMongo's) is
//! "unknown" and reconciled, never reported as a failure.

use std::time::Duration;

use http::{HeaderMap, StatusCode};

use super::wire;
use crate::providers::http::shorten;
use crate::{
    domain::{ErrorCode, reason},
    providers::{ProviderError, Rejection, SubmitOutcome, http as provider_http},
};

/// How long PayMongo's rate-limit block lasts when it does not say ("the block lifts within a
/// minute", PM-RL).
pub(super) const DEFAULT_RATE_LIMIT_BACKOFF: Duration = Duration::from_secs(60);

/// A read answered 404 `resource_not_found`.
pub(super) struct NotFound;

/// How a failed read ended.
pub(super) enum ReadFailure {
    NotFound,
    Error(ProviderError),
}

fn auth_rejection(status: StatusCode, body: &str) -> Rejection {
    Rejection::new(
        ErrorCode::FailedPrecondition,
        reason::PROVIDER_AUTHENTICATION_FAILED,
        "PayMongo refused the secret key of this provider account; check its secret_key",
    )
    .with_provider(provider_code(status, body), shorten(body))
}

fn rate_limited(status: StatusCode, headers: &HeaderMap, body: &str) -> Rejection {
    let after = provider_http::retry_after(headers).unwrap_or(DEFAULT_RATE_LIMIT_BACKOFF);
    Rejection {
        retry_after: Some(after),
        ..Rejection::new(
            ErrorCode::Unavailable,
            reason::PROVIDER_RATE_LIMITED,
            format!(
                "PayMongo is limiting the gateway's request rate; nothing was done. Try again \
                 in {}s",
                after.as_secs()
            ),
        )
        .with_provider(provider_code(status, body), shorten(body))
    }
}

/// The first PayMongo error code of a body, or the HTTP status.
fn provider_code(status: StatusCode, body: &str) -> String {
    wire::parse_errors(body)
        .and_then(|e| e.into_iter().next())
        .map_or_else(|| status.as_u16().to_string(), |e| e.code)
}

/// Classifies an error answer to a GET.
pub(super) fn read_failure(status: StatusCode, headers: &HeaderMap, body: &str) -> ReadFailure {
    if let Some(rejection) = provider_http::read_not_now("PayMongo", status, headers, shorten(body))
    {
        return ReadFailure::Error(ProviderError::Rejected(rejection));
    }
    let errors = wire::parse_errors(body);
    let error = match status.as_u16() {
        401 | 403 => ProviderError::Rejected(auth_rejection(status, body)),
        404 if errors
            .iter()
            .flatten()
            .any(|e| e.code == "resource_not_found") =>
        {
            return ReadFailure::NotFound;
        }
        // A 404 without PayMongo's error body is a route that does not exist: the base URL
        // is wrong. Never read as "no such refund".
        404 => ProviderError::Rejected(
            Rejection::new(
                ErrorCode::FailedPrecondition,
                reason::PROVIDER_NOT_AVAILABLE,
                "PayMongo does not know the path the gateway called; check base_url",
            )
            .with_provider("404", shorten(body)),
        ),
        429 => ProviderError::Rejected(rate_limited(status, headers, body)),
        408 | 500..=599 => {
            ProviderError::Unreachable(format!("PayMongo answered {status}: {}", shorten(body)))
        }
        _ if status.is_client_error() => ProviderError::Rejected(
            Rejection::new(
                ErrorCode::InvalidArgument,
                reason::PROVIDER_DECLINED,
                format!(
                    "PayMongo refused the request (HTTP {status}): {}",
                    errors
                        .iter()
                        .flatten()
                        .map(wire::ErrorItem::describe)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            )
            .with_provider(provider_code(status, body), shorten(body)),
        ),
        _ => ProviderError::BadResponse(format!("PayMongo answered with HTTP {status}")),
    };
    ReadFailure::Error(error)
}

/// Classifies an error answer to a refund create.
pub(super) fn submit_failure(
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    payment_id: &str,
) -> SubmitOutcome {
    let unknown = || {
        SubmitOutcome::Unknown(format!(
            "PayMongo answered {status}; the refund may or may not have been created: {}",
            shorten(body)
        ))
    };
    match status.as_u16() {
        401 | 403 => SubmitOutcome::Rejected(auth_rejection(status, body)),
        // Rate limited: nothing was created; back off.
        429 => SubmitOutcome::Rejected(rate_limited(status, headers, body)),
        // A timeout, a concurrent request with the same key, a server error: no proof that
        // nothing was created.
        408 | 409 | 500..=599 => unknown(),
        _ if status.is_client_error() => match wire::parse_errors(body) {
            Some(errors) => wire::create_rejection(&errors, payment_id)
                .map_or_else(unknown, SubmitOutcome::Rejected),
            // No such route: the request reached nothing that could create a refund.
            None if status == StatusCode::NOT_FOUND => SubmitOutcome::Rejected(
                Rejection::new(
                    ErrorCode::FailedPrecondition,
                    reason::PROVIDER_NOT_AVAILABLE,
                    "PayMongo does not know the path the gateway called; check base_url",
                )
                .with_provider("404", shorten(body)),
            ),
            // Not PayMongo's error shape (a proxy?): cannot tell.
            None => unknown(),
        },
        _ => unknown(),
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    const PAY: &str = "pay_qOShdAuD3p8tKa6Ac4SRfbjs";

    /// Create error answers: 429 is back-off with Retry-After (default a minute), 401 is an
    /// account problem, documented codes are rejections, and 5xx, 408, 409, unknown codes and
    /// bodies that are not PayMongo's never prove that nothing was created.
    #[test]
    fn create_errors_classify() {
        let mut h = HeaderMap::new();
        let s = |c: u16| StatusCode::from_u16(c).unwrap();
        match submit_failure(
            s(429),
            &h,
            "Too many requests, please try again later.",
            PAY,
        ) {
            SubmitOutcome::Rejected(r) => {
                assert_eq!(
                    (r.code, r.reason),
                    (ErrorCode::Unavailable, reason::PROVIDER_RATE_LIMITED)
                );
                assert_eq!(r.retry_after, Some(DEFAULT_RATE_LIMIT_BACKOFF));
                assert_eq!(r.provider_code, "429");
            }
            other => panic!("{other:?}"),
        }
        h.insert(http::header::RETRY_AFTER, HeaderValue::from_static("7"));
        match submit_failure(s(429), &h, "", PAY) {
            SubmitOutcome::Rejected(r) => assert_eq!(r.retry_after, Some(Duration::from_secs(7))),
            other => panic!("{other:?}"),
        }
        let h = HeaderMap::new();
        match submit_failure(s(401), &h, "", PAY) {
            SubmitOutcome::Rejected(r) => {
                assert_eq!(
                    (r.code, r.reason),
                    (
                        ErrorCode::FailedPrecondition,
                        reason::PROVIDER_AUTHENTICATION_FAILED
                    )
                );
            }
            other => panic!("{other:?}"),
        }
        let above = r#"{"errors":[{"code":"parameter_above_maximum","detail":"The amount cannot be greater than the remaining refundable value.","source":{"pointer":"amount","attribute":"amount"}}]}"#;
        match submit_failure(s(400), &h, above, PAY) {
            SubmitOutcome::Rejected(r) => {
                assert_eq!(
                    (r.code, r.reason),
                    (
                        ErrorCode::FailedPrecondition,
                        reason::AMOUNT_EXCEEDS_REFUNDABLE
                    )
                );
                assert_eq!(r.provider_code, "parameter_above_maximum");
                assert!(r.provider_message.contains("remaining refundable"));
            }
            other => panic!("{other:?}"),
        }
        let not_found = r#"{"errors":[{"code":"resource_not_found","detail":"No such payment"}]}"#;
        assert!(matches!(
            submit_failure(s(404), &h, not_found, PAY),
            SubmitOutcome::Rejected(Rejection {
                code: ErrorCode::NotFound,
                ..
            })
        ));
        assert!(matches!(
            submit_failure(s(404), &h, "", PAY),
            SubmitOutcome::Rejected(Rejection {
                code: ErrorCode::FailedPrecondition,
                ..
            })
        ));
        let processing = r#"{"errors":[{"code":"provider_processing_error","detail":"x"}]}"#;
        for (status, body) in [
            (500, ""),
            (502, "<html>bad gateway</html>"),
            (503, ""),
            (408, ""),
            (409, ""),
            (400, processing),
            (400, "<html>proxy</html>"),
            (400, r#"{"errors":[{"code":"brand_new_code"}]}"#),
        ] {
            assert!(
                matches!(
                    submit_failure(s(status), &h, body, PAY),
                    SubmitOutcome::Unknown(_)
                ),
                "{status} {body}"
            );
        }
    }

    /// Read error answers: a documented 404 is "not found", a bare 404 is a wrong base URL,
    /// 429 carries its delay, 5xx is unreachable.
    #[test]
    fn read_errors_classify() {
        let h = HeaderMap::new();
        let s = |c: u16| StatusCode::from_u16(c).unwrap();
        assert!(matches!(
            read_failure(s(404), &h, r#"{"errors":[{"code":"resource_not_found"}]}"#),
            ReadFailure::NotFound
        ));
        assert!(matches!(
            read_failure(s(404), &h, ""),
            ReadFailure::Error(ProviderError::Rejected(Rejection {
                reason: reason::PROVIDER_NOT_AVAILABLE,
                ..
            }))
        ));
        match read_failure(s(429), &h, "") {
            ReadFailure::Error(ProviderError::Rejected(r)) => {
                assert_eq!(r.code, ErrorCode::Unavailable);
                assert!(r.retry_after.is_some());
            }
            _ => panic!("429"),
        }
        assert!(matches!(
            read_failure(s(503), &h, ""),
            ReadFailure::Error(ProviderError::Unreachable(_))
        ));
        assert!(matches!(
            read_failure(s(401), &h, ""),
            ReadFailure::Error(ProviderError::Rejected(Rejection {
                reason: reason::PROVIDER_AUTHENTICATION_FAILED,
                ..
            }))
        ));
    }
}
