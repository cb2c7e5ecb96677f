//! The one place where a domain `ApiError` becomes a `tonic::Status`: canonical code, and
//! always a `google.rpc.ErrorInfo` (AIP-193), plus `BadRequest` and `RetryInfo` when they apply.

use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::domain::{ApiError, ERROR_DOMAIN, ErrorCode};

fn code(c: ErrorCode) -> Code {
    match c {
        ErrorCode::InvalidArgument => Code::InvalidArgument,
        ErrorCode::Unauthenticated => Code::Unauthenticated,
        ErrorCode::PermissionDenied => Code::PermissionDenied,
        ErrorCode::NotFound => Code::NotFound,
        ErrorCode::AlreadyExists => Code::AlreadyExists,
        ErrorCode::FailedPrecondition => Code::FailedPrecondition,
        ErrorCode::ResourceExhausted => Code::ResourceExhausted,
        ErrorCode::Aborted => Code::Aborted,
        ErrorCode::OutOfRange => Code::OutOfRange,
        ErrorCode::Unavailable => Code::Unavailable,
        ErrorCode::DeadlineExceeded => Code::DeadlineExceeded,
        ErrorCode::Unimplemented => Code::Unimplemented,
        ErrorCode::Internal => Code::Internal,
    }
}

pub fn to_status(err: &ApiError) -> Status {
    let mut details = ErrorDetails::with_error_info(
        err.reason.clone(),
        ERROR_DOMAIN,
        err.metadata
            .clone()
            .into_iter()
            .collect::<std::collections::HashMap<_, _>>(),
    );
    for v in &err.violations {
        details.add_bad_request_violation(v.field.clone(), v.description.clone());
    }
    if let Some(ms) = err.retry_after_ms {
        details.set_retry_info(Some(Duration::from_millis(ms)));
    }
    Status::with_error_details(code(err.code), err.message.clone(), details)
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Self {
        to_status(&err)
    }
}
