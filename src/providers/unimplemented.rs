//! A placeholder for a provider whose adapter is not in this version: every call answers
//! UNIMPLEMENTED, saying so clearly, and nothing is recorded.

use async_trait::async_trait;

use super::{
    Capabilities, Provider, ProviderError, ProviderKind, ProviderPayment, RefundDraft,
    RefundLookup, Rejection, SubmitOutcome,
};
use crate::domain::{ApiError, ErrorCode, FieldViolation, Money, PaymentRef, Refund, reason};

#[derive(Debug)]
pub struct Unimplemented(pub ProviderKind);

impl Unimplemented {
    fn rejection(&self) -> Rejection {
        Rejection::new(
            ErrorCode::Unimplemented,
            reason::PROVIDER_NOT_AVAILABLE,
            format!(
                "{} refunds are not supported by this version of refund-gateway yet",
                self.0
            ),
        )
    }
}

#[async_trait]
impl Provider for Unimplemented {
    fn kind(&self) -> ProviderKind {
        self.0
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            currencies: &[],
            partial_refunds: false,
            webhooks: false,
        }
    }

    fn validate(&self, _draft: &RefundDraft) -> Vec<FieldViolation> {
        Vec::new()
    }

    async fn get_payment(&self, _payment: &PaymentRef) -> Result<ProviderPayment, ProviderError> {
        Err(ProviderError::Rejected(self.rejection()))
    }

    fn check_refund(&self, _: &RefundDraft, _: &ProviderPayment, _: Money) -> Result<(), ApiError> {
        Err(self.rejection().to_api_error(self.0.as_str()))
    }

    async fn submit_refund(&self, _refund: &Refund) -> SubmitOutcome {
        SubmitOutcome::Rejected(self.rejection())
    }

    async fn fetch_refund(&self, _refund: &Refund) -> Result<RefundLookup, ProviderError> {
        Err(ProviderError::Rejected(self.rejection()))
    }

    fn resubmit_is_safe(&self) -> bool {
        false
    }
}
