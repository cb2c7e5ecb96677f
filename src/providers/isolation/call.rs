//! What travels through an account's stack: a call to a provider, owned, and its answer,
//! with what the layers need to know of them (span, metric labels, what counts as a fault).

use super::super::{
    ProviderError, ProviderPayment, ProviderRefundRecord, RefundLookup, SubmitOutcome,
};
use crate::domain::{PaymentRef, Refund};

/// One call to a provider, owned so it can travel through the stack.
#[derive(Clone, Debug)]
pub(super) enum Call {
    GetPayment(PaymentRef),
    Submit(Box<Refund>),
    Fetch(Box<Refund>),
    ByProviderId(String),
}

/// Its answer.
#[derive(Debug)]
pub(super) enum Reply {
    Payment(Result<ProviderPayment, ProviderError>),
    Submit(SubmitOutcome),
    Fetch(Result<RefundLookup, ProviderError>),
    Record(Result<Option<ProviderRefundRecord>, ProviderError>),
}

/// Which call it is, for what does not need its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Operation {
    GetPayment,
    Submit,
    Fetch,
    ByProviderId,
}

impl Call {
    pub(super) fn operation(&self) -> Operation {
        match self {
            Self::GetPayment(_) => Operation::GetPayment,
            Self::Submit(_) => Operation::Submit,
            Self::Fetch(_) => Operation::Fetch,
            Self::ByProviderId(_) => Operation::ByProviderId,
        }
    }

    /// The call's span (names and fields are read by dashboards and tests).
    pub(super) fn span(&self, account: &str) -> tracing::Span {
        match self {
            Self::GetPayment(payment) => tracing::info_span!(
                "provider.get_payment",
                provider = %account,
                payment_id = %payment.payment_id
            ),
            Self::Submit(refund) => tracing::info_span!(
                "provider.submit_refund",
                provider = %account,
                refund_id = %refund.id,
                request_id = %refund.request_id,
            ),
            Self::Fetch(refund) => tracing::info_span!(
                "provider.fetch_refund",
                provider = %account,
                refund_id = %refund.id
            ),
            Self::ByProviderId(id) => tracing::info_span!(
                "provider.refund_by_provider_id",
                provider = %account,
                provider_refund_id = id.as_str()
            ),
        }
    }
}

impl Operation {
    /// The `operation` metric label.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::GetPayment => "get_payment",
            Self::Submit => "submit_refund",
            Self::Fetch => "fetch_refund",
            Self::ByProviderId => "refund_by_provider_id",
        }
    }

    /// The answer to a call that got none: it was never sent (refused by the stack), or it
    /// may have reached the provider (cut off by the deadline). A read is unreachable either
    /// way; a submission is `NotSent` or `Unknown`.
    pub(super) fn unanswered(self, may_have_arrived: bool, why: String) -> Reply {
        match self {
            Self::Submit if may_have_arrived => Reply::Submit(SubmitOutcome::Unknown(why)),
            Self::Submit => Reply::Submit(SubmitOutcome::NotSent(why)),
            Self::GetPayment => Reply::Payment(Err(ProviderError::Unreachable(why))),
            Self::Fetch => Reply::Fetch(Err(ProviderError::Unreachable(why))),
            Self::ByProviderId => Reply::Record(Err(ProviderError::Unreachable(why))),
        }
    }
}

impl Reply {
    /// Whether this answer counts as a provider fault for the breaker (see the module docs).
    pub(super) fn is_fault(&self) -> bool {
        pub(super) fn read<T>(result: &Result<T, ProviderError>) -> bool {
            matches!(result, Err(ProviderError::Unreachable(_)))
        }
        match self {
            Self::Payment(r) => read(r),
            Self::Fetch(r) => read(r),
            Self::Record(r) => read(r),
            Self::Submit(outcome) => matches!(
                outcome,
                SubmitOutcome::Unknown(_) | SubmitOutcome::NotSent(_)
            ),
        }
    }

    /// The `outcome` metric label.
    pub(super) fn outcome(&self) -> &'static str {
        pub(super) fn read<T>(result: &Result<T, ProviderError>) -> &'static str {
            match result {
                Ok(_) => "ok",
                Err(ProviderError::Rejected(_)) => "rejected",
                Err(ProviderError::Unreachable(_)) => "unreachable",
                Err(ProviderError::BadResponse(_)) => "bad_response",
            }
        }
        match self {
            Self::Payment(r) => read(r),
            Self::Fetch(r) => read(r),
            Self::Record(r) => read(r),
            Self::Submit(SubmitOutcome::Accepted(_)) => "accepted",
            Self::Submit(SubmitOutcome::Rejected(_)) => "rejected",
            Self::Submit(SubmitOutcome::NotSent(_)) => "not_sent",
            Self::Submit(SubmitOutcome::Unknown(_)) => "unknown",
        }
    }
}
