//! The error every caller-facing operation returns, and the stable reasons it carries.
//!
//! An `ApiError` is plain data (code, reason, message, metadata, field violations) so it can be
//! stored with an idempotency key and replayed to a caller who repeats a request. Internal
//! causes never go into it: `ApiError::internal` logs them and returns an opaque error.

use std::{collections::BTreeMap, fmt, time::Duration};

use serde::{Deserialize, Serialize};

/// The `google.rpc.ErrorInfo` domain of every error.
pub const ERROR_DOMAIN: &str = "refunds.v1";

/// Stable `ErrorInfo.reason` values, UPPER_SNAKE. Callers may branch on these.
pub mod reason {
    pub const INVALID_ARGUMENT: &str = "INVALID_ARGUMENT";
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const PROVIDER_NOT_CONFIGURED: &str = "PROVIDER_NOT_CONFIGURED";
    pub const PROVIDER_NOT_ALLOWED: &str = "PROVIDER_NOT_ALLOWED";
    pub const PROVIDER_NOT_AVAILABLE: &str = "PROVIDER_NOT_AVAILABLE";
    pub const REFUND_NOT_FOUND: &str = "REFUND_NOT_FOUND";
    pub const PAYMENT_NOT_FOUND: &str = "PAYMENT_NOT_FOUND";
    pub const PAYMENT_NOT_REFUNDABLE: &str = "PAYMENT_NOT_REFUNDABLE";
    pub const AMOUNT_EXCEEDS_REFUNDABLE: &str = "AMOUNT_EXCEEDS_REFUNDABLE";
    /// Below the smallest refund the provider accepts (PayMongo: 100 centavos).
    pub const AMOUNT_BELOW_MINIMUM: &str = "AMOUNT_BELOW_MINIMUM";
    pub const NOTHING_LEFT_TO_REFUND: &str = "NOTHING_LEFT_TO_REFUND";
    pub const PARTIAL_REFUND_NOT_SUPPORTED: &str = "PARTIAL_REFUND_NOT_SUPPORTED";
    pub const CURRENCY_MISMATCH: &str = "CURRENCY_MISMATCH";
    pub const CURRENCY_NOT_SUPPORTED: &str = "CURRENCY_NOT_SUPPORTED";
    pub const AMOUNT_NOT_REPRESENTABLE: &str = "AMOUNT_NOT_REPRESENTABLE";
    pub const REQUEST_ID_REUSED: &str = "REQUEST_ID_REUSED";
    pub const REQUEST_IN_PROGRESS: &str = "REQUEST_IN_PROGRESS";
    /// ResolveRefund and ApproveRefund need an operator key.
    pub const OPERATOR_ONLY: &str = "OPERATOR_ONLY";
    /// The key that created a refund waiting for approval may not approve it.
    pub const SELF_APPROVAL: &str = "SELF_APPROVAL";
    /// CancelRefund by an API key other than the one that created the refund.
    pub const NOT_CREATOR: &str = "NOT_CREATOR";
    /// ResolveRefund of a refund that is not in REQUIRES_REVIEW.
    pub const NOT_IN_REVIEW: &str = "NOT_IN_REVIEW";
    /// ApproveRefund or CancelRefund of a refund that is not waiting for approval.
    pub const NOT_AWAITING_APPROVAL: &str = "NOT_AWAITING_APPROVAL";
    pub const PROVIDER_DECLINED: &str = "PROVIDER_DECLINED";
    pub const PROVIDER_AUTHENTICATION_FAILED: &str = "PROVIDER_AUTHENTICATION_FAILED";
    pub const PROVIDER_UNAVAILABLE: &str = "PROVIDER_UNAVAILABLE";
    pub const PROVIDER_RATE_LIMITED: &str = "PROVIDER_RATE_LIMITED";
    pub const PROVIDER_BAD_RESPONSE: &str = "PROVIDER_BAD_RESPONSE";
    /// The provider's answer contradicts the request (another payment, amount or currency).
    pub const PROVIDER_MISMATCH: &str = "PROVIDER_MISMATCH";
    /// The provider refused the account's configuration (headers, clock, IP, refunds not
    /// enabled): an operator must fix the provider account; no refund was made.
    pub const PROVIDER_MISCONFIGURED: &str = "PROVIDER_MISCONFIGURED";
    /// The merchant's balance at the provider cannot cover the refund (D24 803).
    pub const PROVIDER_INSUFFICIENT_FUNDS: &str = "PROVIDER_INSUFFICIENT_FUNDS";
    /// A refund of this payment needs a destination bank account (D24 non-card deposits).
    pub const BANK_ACCOUNT_REQUIRED: &str = "BANK_ACCOUNT_REQUIRED";
    /// The provider cancelled a refund it had accepted (a refund failure code).
    pub const REFUND_CANCELED: &str = "REFUND_CANCELED";
    pub const INVALID_PAGE_TOKEN: &str = "INVALID_PAGE_TOKEN";
    /// WatchRefunds resumed after a sequence the store has not reached (metadata
    /// `head_sequence`: the newest stored sequence).
    pub const SEQUENCE_OUT_OF_RANGE: &str = "SEQUENCE_OUT_OF_RANGE";
    pub const STORE_UNAVAILABLE: &str = "STORE_UNAVAILABLE";
    pub const SHUTTING_DOWN: &str = "SHUTTING_DOWN";
    pub const INTERNAL: &str = "INTERNAL";
}

/// The canonical gRPC codes the gateway uses, kept apart from tonic so the domain does not
/// depend on the transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    InvalidArgument,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    ResourceExhausted,
    Aborted,
    OutOfRange,
    Unavailable,
    DeadlineExceeded,
    Unimplemented,
    Internal,
}

/// One bad field of a request (`google.rpc.BadRequest.FieldViolation`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldViolation {
    /// The field path, for example `amount.currency_code`.
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// An error a caller sees.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: ErrorCode,
    /// Stable UPPER_SNAKE reason (see [`reason`]).
    pub reason: String,
    /// Short, actionable, English.
    pub message: String,
    /// `ErrorInfo.metadata`: `provider`, `providerCode`, ids named in the message.
    pub metadata: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<FieldViolation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {}: {}", self.code, self.reason, self.message)?;
        if !self.metadata.is_empty() {
            write!(f, " {:?}", self.metadata)?;
        }
        if !self.violations.is_empty() {
            write!(f, " {:?}", self.violations)?;
        }
        Ok(())
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, reason: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.to_owned(),
            message: message.into(),
            metadata: BTreeMap::new(),
            violations: Vec::new(),
            retry_after_ms: None,
        }
    }

    /// Adds an `ErrorInfo.metadata` entry (keys are lowerCamel).
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.metadata.insert(key.to_owned(), value.into());
        self
    }

    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after_ms = Some(u64::try_from(after.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// `INVALID_ARGUMENT` with every bad field listed.
    pub fn invalid(violations: Vec<FieldViolation>) -> Self {
        let message = match violations.as_slice() {
            [one] => format!("invalid {}: {}", one.field, one.description),
            many => format!("{} invalid fields", many.len()),
        };
        Self {
            violations,
            ..Self::new(
                ErrorCode::InvalidArgument,
                reason::INVALID_ARGUMENT,
                message,
            )
        }
    }

    /// `INVALID_ARGUMENT` about one field, with a specific reason.
    pub fn invalid_field(reason: &str, field: &str, description: impl Into<String>) -> Self {
        let description = description.into();
        Self {
            violations: vec![FieldViolation::new(field, description.clone())],
            ..Self::new(
                ErrorCode::InvalidArgument,
                reason,
                format!("invalid {field}: {description}"),
            )
        }
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, reason::UNAUTHENTICATED, message)
    }

    pub fn refund_not_found(id: &str) -> Self {
        Self::new(
            ErrorCode::NotFound,
            reason::REFUND_NOT_FOUND,
            format!("refund {id} not found"),
        )
        .with("refundId", id)
    }

    pub fn failed_precondition(reason: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::FailedPrecondition, reason, message)
    }

    pub fn unavailable(reason: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, reason, message)
    }

    /// Logs the real cause and returns an opaque `INTERNAL` error: causes never reach callers.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(cause = %cause, "internal error");
        Self::new(ErrorCode::Internal, reason::INTERNAL, "internal error")
    }

    /// Whether a caller repeating the request later may get a different answer without any
    /// change on its side (so the answer must not be stored against its request_id).
    pub fn is_transient(&self) -> bool {
        matches!(
            self.code,
            ErrorCode::Unavailable
                | ErrorCode::DeadlineExceeded
                | ErrorCode::ResourceExhausted
                | ErrorCode::Aborted
                | ErrorCode::Internal
        )
    }
}
