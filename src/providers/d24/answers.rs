//! How D24's answers are read (docs/PROVIDERS.md section 1): what a D24 error code, or failing
//! one the HTTP status, says about a read and about a refund create. Pure; the code tables
//! themselves are in `wire`.

use http::{HeaderMap, StatusCode};

use super::wire;
use crate::{
    domain::{ErrorCode, Refund, Submission, reason},
    providers::{
        ProviderError, Rejection, SubmitOutcome,
        http::{self as provider_http, shorten},
    },
};

/// The rejection for a D24 error code, with D24's own words kept.
fn code_rejection(code: u32, error: &wire::ErrorBody) -> Option<Rejection> {
    match wire::meaning(code) {
        wire::CodeMeaning::KeyAlreadyUsed => None,
        wire::CodeMeaning::Refused {
            code: grpc_code,
            reason,
            explanation,
        } => Some(
            Rejection::new(grpc_code, reason, explanation)
                .with_provider(code.to_string(), shorten(&error.message)),
        ),
    }
}

/// The rejection for an error answer without a readable D24 code, from the HTTP status
/// alone; `None` when the status proves nothing.
fn status_rejection(status: StatusCode, headers: &HeaderMap, body: &str) -> Option<Rejection> {
    let rejection = match status.as_u16() {
        401 | 403 => Rejection::new(
            ErrorCode::FailedPrecondition,
            reason::PROVIDER_AUTHENTICATION_FAILED,
            "D24 refused the credentials of this provider account; check its login and \
             secret_key",
        ),
        429 => Rejection {
            retry_after: provider_http::retry_after(headers),
            ..Rejection::new(
                ErrorCode::Unavailable,
                reason::PROVIDER_RATE_LIMITED,
                "D24 is limiting the gateway's request rate; try again later",
            )
        },
        _ => return None,
    };
    Some(rejection.with_provider(status.as_u16().to_string(), shorten(body)))
}

/// Classifies an error answer to a read (`what`: "refund" or "deposit").
pub(super) fn read_failure(
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    what: &str,
) -> ProviderError {
    if let Some(rejection) = provider_http::read_not_now("D24", status, headers, shorten(body)) {
        return ProviderError::Rejected(rejection);
    }
    if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        return ProviderError::Unreachable(format!("D24 answered {status}: {}", shorten(body)));
    }
    let error = wire::parse_error(body).filter(|_| status != StatusCode::TOO_MANY_REQUESTS);
    if let Some(error) = &error
        && let Some(code) = error.code
        && let Some(rejection) = code_rejection(code, error)
    {
        return ProviderError::Rejected(rejection);
    }
    if let Some(rejection) = status_rejection(status, headers, body) {
        return ProviderError::Rejected(rejection);
    }
    if status == StatusCode::NOT_FOUND {
        return ProviderError::Rejected(
            Rejection::new(
                ErrorCode::NotFound,
                reason::PAYMENT_NOT_FOUND,
                format!("D24 has no such {what}"),
            )
            .with_provider("404", shorten(body)),
        );
    }
    if status.is_client_error() {
        return ProviderError::Rejected(
            Rejection::new(
                ErrorCode::InvalidArgument,
                reason::PROVIDER_DECLINED,
                format!("D24 refused to look the {what} up (HTTP {status})"),
            )
            .with_provider(status.as_u16().to_string(), shorten(body)),
        );
    }
    ProviderError::BadResponse(format!("D24 answered with HTTP {status}"))
}

/// Classifies an error answer to a refund POST.
pub(super) fn submit_failure(status: StatusCode, headers: &HeaderMap, body: &str) -> SubmitOutcome {
    // A 5xx never proves that nothing happened; nor do a request timeout or a conflict,
    // which may come from a proxy after D24 took the request.
    if status.is_server_error() || matches!(status.as_u16(), 408 | 409) {
        return SubmitOutcome::Unknown(format!(
            "D24 answered {status}; the refund may or may not have been created: {}",
            shorten(body)
        ));
    }
    // "Not now", whatever code the body carries: nothing was created.
    if status == StatusCode::TOO_MANY_REQUESTS
        && let Some(rejection) = status_rejection(status, headers, body)
    {
        return SubmitOutcome::Rejected(rejection);
    }
    if status.is_client_error() {
        if let Some(error) = wire::parse_error(body)
            && let Some(code) = error.code
        {
            // Only a documented refusal releases money: a code D24 does not document says
            // nothing about whether the refund was made.
            if wire::code_info(code).is_none() {
                return SubmitOutcome::Unknown(format!(
                    "D24 answered HTTP {status} with code {code}, which it does not document;                      the refund may or may not have been created ({})",
                    shorten(&error.message)
                ));
            }
            return match code_rejection(code, &error) {
                Some(rejection) => SubmitOutcome::Rejected(rejection),
                None => SubmitOutcome::Unknown(format!(
                    "D24 answered {code} IDEMPOTENCY_KEY_ALREADY_USED: an earlier attempt \
                     with this refund's idempotency key reached D24, so the refund exists \
                     there under an id the gateway has not learned yet ({})",
                    shorten(&error.message)
                )),
            };
        }
        if let Some(rejection) = status_rejection(status, headers, body) {
            return SubmitOutcome::Rejected(rejection);
        }
        let rejection = if status == StatusCode::NOT_FOUND {
            // No D24 error code: the route itself was not found.
            Rejection::new(
                ErrorCode::FailedPrecondition,
                reason::PROVIDER_MISCONFIGURED,
                "D24 answered 404 without an error code; check the base_url of this provider \
                 account",
            )
        } else {
            Rejection::new(
                ErrorCode::InvalidArgument,
                reason::PROVIDER_DECLINED,
                format!("D24 refused the refund (HTTP {status})"),
            )
        };
        return SubmitOutcome::Rejected(
            rejection.with_provider(status.as_u16().to_string(), shorten(body)),
        );
    }
    // 1xx/3xx that reqwest did not handle: no telling what happened.
    SubmitOutcome::Unknown(format!("D24 answered with HTTP {status}"))
}

/// A repeat of a submission whose earlier outcome is unknown cannot take 802 ("amount not
/// valid") as a refusal: should D24 judge the amount before the idempotency key, the earlier
/// attempt having landed and used up the deposit would look exactly like this. It stays
/// unknown (reconciled, or REQUIRES_REVIEW), never FAILED.
pub(super) fn repeat_guard(refund: &Refund, outcome: SubmitOutcome) -> SubmitOutcome {
    match outcome {
        SubmitOutcome::Rejected(r)
            if refund.submission == Submission::Unknown && r.provider_code == "802" =>
        {
            SubmitOutcome::Unknown(format!(
                "D24 refused a repeat of this refund with 802 ({}); the earlier attempt may                  have used the amount up, so the outcome stays unknown",
                r.provider_message
            ))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, Money, PaymentRef, TenantId};

    fn body(code: u32) -> String {
        format!(r#"{{"code":{code},"description":"d","type":"T"}}"#)
    }

    /// Refund POST error answers: D24 codes decide (104 is unknown, never a failure);
    /// without a code the HTTP status does; 5xx, 408 and 409 are unknown.
    #[test]
    fn submit_errors_classify() {
        let h = HeaderMap::new();
        let outcome = |status: u16, body: &str| {
            submit_failure(StatusCode::from_u16(status).unwrap(), &h, body)
        };
        let rejected = |status: u16, body: &str| match outcome(status, body) {
            SubmitOutcome::Rejected(r) => (r.code, r.reason, r.provider_code),
            other => panic!("{status} {body}: {other:?}"),
        };
        assert!(matches!(
            outcome(400, &body(104)),
            SubmitOutcome::Unknown(_)
        ));
        assert_eq!(
            rejected(400, &body(102)),
            (
                ErrorCode::FailedPrecondition,
                reason::PROVIDER_AUTHENTICATION_FAILED,
                "102".into()
            )
        );
        assert_eq!(
            rejected(404, &body(208)),
            (ErrorCode::NotFound, reason::PAYMENT_NOT_FOUND, "208".into())
        );
        assert_eq!(
            rejected(
                404,
                r#"{"error":{"code":"208","message":"Resource not found"}}"#
            )
            .1,
            reason::PAYMENT_NOT_FOUND
        );
        assert_eq!(
            rejected(400, &body(802)).1,
            reason::AMOUNT_EXCEEDS_REFUNDABLE
        );
        assert_eq!(rejected(401, "").1, reason::PROVIDER_AUTHENTICATION_FAILED);
        assert_eq!(rejected(404, "").1, reason::PROVIDER_MISCONFIGURED);
        assert_eq!(rejected(429, "").0, ErrorCode::Unavailable);
        // A rate limit is "not now" even when its body carries a D24 code.
        assert_eq!(rejected(429, &body(700)).1, reason::PROVIDER_RATE_LIMITED);
        assert_eq!(rejected(422, "nope").1, reason::PROVIDER_DECLINED);
        for status in [500, 502, 503, 504, 408, 409, 302] {
            assert!(
                matches!(outcome(status, &body(802)), SubmitOutcome::Unknown(_)),
                "{status}"
            );
        }
        // A code D24 does not document proves nothing: unknown, never a refusal.
        for code in [0, 106, 806, 999] {
            assert!(
                matches!(outcome(400, &body(code)), SubmitOutcome::Unknown(_)),
                "{code}"
            );
        }
    }

    /// Read error answers: codes first, 5xx unreachable, 404 without a code not found.
    #[test]
    fn read_errors_classify() {
        let h = HeaderMap::new();
        let read = |status: u16, body: &str| {
            read_failure(StatusCode::from_u16(status).unwrap(), &h, body, "deposit")
        };
        assert!(matches!(read(503, ""), ProviderError::Unreachable(_)));
        match read(
            404,
            r#"{"error":{"code":"208","message":"Resource not found"}}"#,
        ) {
            ProviderError::Rejected(r) => {
                assert_eq!(
                    (r.code, r.reason),
                    (ErrorCode::NotFound, reason::PAYMENT_NOT_FOUND)
                );
                assert_eq!(r.provider_code, "208");
                assert_eq!(r.provider_message, "Resource not found");
            }
            other => panic!("{other:?}"),
        }
        match read(400, &body(103)) {
            ProviderError::Rejected(r) => assert_eq!(r.reason, reason::PROVIDER_MISCONFIGURED),
            other => panic!("{other:?}"),
        }
        match read(404, "") {
            ProviderError::Rejected(r) => assert_eq!(r.code, ErrorCode::NotFound),
            other => panic!("{other:?}"),
        }
    }

    /// An 802 answer to a repeat of a submission whose outcome was unknown stays unknown (the
    /// earlier attempt may have used the amount up); to a first submission, and for other
    /// codes, it is a refusal.
    #[test]
    fn an_802_to_a_repeat_is_not_a_refusal() {
        let h = HeaderMap::new();
        let answer = |code| submit_failure(StatusCode::BAD_REQUEST, &h, &body(code));
        let now = chrono::Utc::now();
        let mut r = Refund::new_pending(
            TenantId::new("t"),
            "r",
            "d24",
            PaymentRef {
                payment_id: "1".into(),
                invoice_id: "i".into(),
                ..PaymentRef::default()
            },
            Money::new(100, Currency::parse("MXN").unwrap()),
            now,
        );
        assert!(matches!(
            repeat_guard(&r, answer(802)),
            SubmitOutcome::Rejected(_)
        ));
        r.submission = Submission::Unknown;
        assert!(matches!(
            repeat_guard(&r, answer(802)),
            SubmitOutcome::Unknown(_)
        ));
        assert!(matches!(
            repeat_guard(&r, answer(804)),
            SubmitOutcome::Rejected(_)
        ));
    }
}
