//! How Compago's answers are read (docs/PROVIDERS.md section 3): what an HTTP status says about a
//! read and about a refund POST. Compago's error bodies have no documented shape, so the
//! status decides and the body text is kept (shortened) as the provider's message. Pure.

use http::{HeaderMap, StatusCode};

use super::Ids;
use crate::{
    domain::{ErrorCode, FieldViolation, reason},
    providers::{
        ProviderError, Rejection, SubmitOutcome,
        http::{self as provider_http, shorten},
    },
};

/// The caller-facing rejection for an answer with an error status that refuses the request
/// for a reason common to every Compago call; `None` for the others.
pub(super) fn common_rejection(
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    ids: Ids<'_>,
) -> Option<Rejection> {
    let code = status.as_u16().to_string();
    let provider_message = shorten(body);
    let rejection = match status.as_u16() {
        401 | 403 => Rejection::new(
            ErrorCode::FailedPrecondition,
            reason::PROVIDER_AUTHENTICATION_FAILED,
            "Compago refused the gateway's API key for this provider account; check its api_key",
        ),
        404 => {
            // The two 404s differ only in their text ("Payment method not found" /
            // "Payment not found"), and the text has no documented shape: look for it,
            // and fall back to naming both ids.
            let message = if body.to_ascii_lowercase().contains("method not found") {
                format!("Compago payment method {} not found", ids.payment_method_id)
            } else {
                format!(
                    "Compago payment {} not found under payment method {}",
                    ids.payment_id, ids.payment_method_id
                )
            };
            Rejection::new(ErrorCode::NotFound, reason::PAYMENT_NOT_FOUND, message)
        }
        429 => Rejection {
            retry_after: provider_http::retry_after(headers),
            ..Rejection::new(
                ErrorCode::Unavailable,
                reason::PROVIDER_RATE_LIMITED,
                "Compago is limiting the gateway's request rate; try again later",
            )
        },
        _ => return None,
    };
    Some(rejection.with_provider(code, provider_message))
}

/// Classifies an error answer to a read.
pub(super) fn read_failure(
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    ids: Ids<'_>,
) -> ProviderError {
    if let Some(rejection) = common_rejection(status, headers, body, ids) {
        return ProviderError::Rejected(rejection);
    }
    if let Some(rejection) = provider_http::read_not_now("Compago", status, headers, shorten(body))
    {
        return ProviderError::Rejected(rejection);
    }
    match status.as_u16() {
        408 | 500..=599 => {
            ProviderError::Unreachable(format!("Compago answered {status}: {}", shorten(body)))
        }
        _ if status.is_client_error() => ProviderError::Rejected(
            Rejection::new(
                ErrorCode::InvalidArgument,
                reason::PROVIDER_DECLINED,
                format!("Compago refused to look the payment up (HTTP {status})"),
            )
            .with_provider(status.as_u16().to_string(), shorten(body)),
        ),
        _ => ProviderError::BadResponse(format!("Compago answered with HTTP {status}")),
    }
}

/// Classifies an error answer to a refund POST.
pub(super) fn submit_failure(
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    ids: Ids<'_>,
) -> SubmitOutcome {
    if let Some(rejection) = common_rejection(status, headers, body, ids) {
        return SubmitOutcome::Rejected(rejection);
    }
    match status.as_u16() {
        // Compago's documented 400 is "Payment not CONFIRMED": nothing was refunded.
        400 => SubmitOutcome::Rejected(
            Rejection::new(
                ErrorCode::FailedPrecondition,
                reason::PAYMENT_NOT_REFUNDABLE,
                format!(
                    "Compago refused to refund payment {}: only CONFIRMED payments can be \
                     refunded (a refunded, pending or cancelled one cannot)",
                    ids.payment_id
                ),
            )
            .with_provider("400", shorten(body)),
        ),
        // A 5xx never proves that nothing happened; neither do a request timeout or a
        // conflict, which may come from a proxy after Compago took the request.
        408 | 409 | 500..=599 => SubmitOutcome::Unknown(format!(
            "Compago answered {status}; the refund may or may not have been applied: {}",
            shorten(body)
        )),
        _ if status.is_client_error() => SubmitOutcome::Rejected(
            Rejection::new(
                ErrorCode::InvalidArgument,
                reason::PROVIDER_DECLINED,
                format!(
                    "Compago refused to refund payment {} (HTTP {status})",
                    ids.payment_id
                ),
            )
            .with_provider(status.as_u16().to_string(), shorten(body)),
        ),
        // 1xx/3xx that reqwest did not handle: no telling what happened.
        _ => SubmitOutcome::Unknown(format!("Compago answered with HTTP {status}")),
    }
}

pub(super) fn invalid_ids(violations: &[FieldViolation]) -> Rejection {
    let detail = violations
        .iter()
        .map(|v| format!("{} {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ");
    Rejection::new(ErrorCode::InvalidArgument, reason::INVALID_ARGUMENT, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PM: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
    const PAY: &str = "11111111-2222-3333-4444-555555555555";

    /// Error answers to a refund: a documented 400 means not refundable; 5xx, 408 and 409
    /// never prove nothing happened; other 4xx are declines.
    #[test]
    fn refund_error_statuses_classify() {
        let ids = Ids {
            payment_method_id: PM,
            payment_id: PAY,
        };
        let h = HeaderMap::new();
        let rejected = |status: u16, body: &str| match submit_failure(
            StatusCode::from_u16(status).unwrap(),
            &h,
            body,
            ids,
        ) {
            SubmitOutcome::Rejected(r) => (r.code, r.reason, r.provider_code),
            other => panic!("{status}: {other:?}"),
        };
        assert_eq!(
            rejected(400, r#"{"message":"Payment not CONFIRMED"}"#),
            (
                ErrorCode::FailedPrecondition,
                reason::PAYMENT_NOT_REFUNDABLE,
                "400".into()
            )
        );
        assert_eq!(rejected(403, "").1, reason::PROVIDER_AUTHENTICATION_FAILED);
        assert_eq!(rejected(422, "").0, ErrorCode::InvalidArgument);
        assert_eq!(rejected(422, "").1, reason::PROVIDER_DECLINED);
        for status in [408, 409, 500, 502, 503, 504, 599, 304] {
            assert!(
                matches!(
                    submit_failure(StatusCode::from_u16(status).unwrap(), &h, "", ids),
                    SubmitOutcome::Unknown(_)
                ),
                "{status}"
            );
        }
    }

    /// The two 404 texts name the right thing; the body is kept, shortened.
    #[test]
    fn not_found_names_what_is_missing() {
        let ids = Ids {
            payment_method_id: PM,
            payment_id: PAY,
        };
        let h = HeaderMap::new();
        let r = common_rejection(
            StatusCode::NOT_FOUND,
            &h,
            r#"{"message":"Payment method not found"}"#,
            ids,
        )
        .unwrap();
        assert!(r.message.contains("payment method"), "{}", r.message);
        assert_eq!(
            r.provider_message,
            r#"{"message":"Payment method not found"}"#
        );
        let long = "é".repeat(1000);
        let r = common_rejection(StatusCode::NOT_FOUND, &h, &long, ids).unwrap();
        assert!(r.message.contains(PAY));
        assert!(r.provider_message.len() <= provider_http::MAX_PROVIDER_MESSAGE + '…'.len_utf8());
    }
}
