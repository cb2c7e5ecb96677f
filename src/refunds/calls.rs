//! Provider calls wrapped with metrics and spans, so every adapter is measured the same way,
//! and sent through the account's isolation stack (`providers::isolation`: concurrency limit
//! and circuit breaker), so a slow or failing provider cannot starve the others.

use std::time::Instant;

use tracing::Instrument as _;

use super::Refunds;
use crate::{
    domain::{PaymentRef, Refund},
    metrics,
    providers::{
        ProviderAccount, ProviderError, ProviderPayment, ProviderRefundRecord, RefundLookup,
        SubmitOutcome,
    },
};

fn read_outcome<T>(result: &Result<T, ProviderError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(ProviderError::Rejected(_)) => "rejected",
        Err(ProviderError::Unreachable(_)) => "unreachable",
        Err(ProviderError::BadResponse(_)) => "bad_response",
    }
}

impl Refunds {
    pub(super) async fn call_get_payment(
        &self,
        account: &ProviderAccount,
        payment: &PaymentRef,
    ) -> Result<ProviderPayment, ProviderError> {
        let span = tracing::info_span!("provider.get_payment", provider = %account.name, payment_id = %payment.payment_id);
        let started = Instant::now();
        let result = account.guard.get_payment(payment).instrument(span).await;
        metrics::provider_call(&account.name, "get_payment", read_outcome(&result), started);
        result
    }

    pub(super) async fn call_submit(
        &self,
        account: &ProviderAccount,
        refund: &Refund,
    ) -> SubmitOutcome {
        let span = tracing::info_span!(
            "provider.submit_refund",
            provider = %account.name,
            refund_id = %refund.id,
            request_id = %refund.request_id,
        );
        let started = Instant::now();
        let outcome = account.guard.submit_refund(refund).instrument(span).await;
        let label = match &outcome {
            SubmitOutcome::Accepted(_) => "accepted",
            SubmitOutcome::Rejected(_) => "rejected",
            SubmitOutcome::NotSent(_) => "not_sent",
            SubmitOutcome::Unknown(_) => "unknown",
        };
        metrics::provider_call(&account.name, "submit_refund", label, started);
        match &outcome {
            SubmitOutcome::Accepted(obs) => {
                tracing::info!(refund_id = %refund.id, provider = %account.name, status = %obs.status, "provider accepted the refund");
            }
            SubmitOutcome::Rejected(r) => {
                tracing::info!(refund_id = %refund.id, provider = %account.name, reason = r.reason, provider_code = %r.provider_code, "provider refused the refund");
            }
            SubmitOutcome::NotSent(why) => {
                tracing::warn!(refund_id = %refund.id, provider = %account.name, why, "refund never reached the provider");
            }
            SubmitOutcome::Unknown(why) => {
                tracing::warn!(refund_id = %refund.id, provider = %account.name, why, "refund outcome unknown; it will be reconciled");
            }
        }
        outcome
    }

    pub(super) async fn call_fetch(
        &self,
        account: &ProviderAccount,
        refund: &Refund,
    ) -> Result<RefundLookup, ProviderError> {
        let span = tracing::info_span!("provider.fetch_refund", provider = %account.name, refund_id = %refund.id);
        let started = Instant::now();
        let result = account.guard.fetch_refund(refund).instrument(span).await;
        metrics::provider_call(
            &account.name,
            "fetch_refund",
            read_outcome(&result),
            started,
        );
        result
    }

    pub(super) async fn call_refund_by_provider_id(
        &self,
        account: &ProviderAccount,
        provider_refund_id: &str,
    ) -> Result<Option<ProviderRefundRecord>, ProviderError> {
        let span = tracing::info_span!("provider.refund_by_provider_id", provider = %account.name, provider_refund_id);
        let started = Instant::now();
        let result = account
            .guard
            .refund_by_provider_id(provider_refund_id)
            .instrument(span)
            .await;
        metrics::provider_call(
            &account.name,
            "refund_by_provider_id",
            read_outcome(&result),
            started,
        );
        result
    }
}
