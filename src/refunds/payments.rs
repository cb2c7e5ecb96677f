//! GetPayment and the amount left to refund of a payment.

use super::Refunds;
use crate::{
    auth::Caller,
    domain::{ApiError, Money, Payment, PaymentRef, PaymentStatus},
    providers::{ProviderAccount, ProviderPayment},
};

impl Refunds {
    /// Looks a payment up at its provider, with what has been and can still be refunded.
    pub async fn get_payment(
        &self,
        caller: &Caller,
        provider: &str,
        payment: PaymentRef,
    ) -> Result<Payment, ApiError> {
        let account = self.account(caller, provider, "provider")?;
        let found = account
            .get_payment(&payment)
            .await
            .map_err(|e| e.to_api_error(&account.name))?;
        let (refunded, refundable) = self.refunded_and_left(&account, &payment, &found).await?;
        let status = match found.status {
            PaymentStatus::Captured | PaymentStatus::PartiallyRefunded if refunded.minor > 0 => {
                if refundable.minor == 0 {
                    PaymentStatus::Refunded
                } else {
                    PaymentStatus::PartiallyRefunded
                }
            }
            other => other,
        };
        Ok(Payment {
            provider: account.name.clone(),
            payment,
            status,
            provider_status: found.provider_status,
            amount: found.amount,
            refunded,
            refundable,
        })
    }

    /// What has been refunded of a payment (the larger of what the provider reports and what
    /// the gateway's refunds that still hold money add up to), and what is left.
    pub(super) async fn refunded_and_left(
        &self,
        account: &ProviderAccount,
        payment_ref: &PaymentRef,
        payment: &ProviderPayment,
    ) -> Result<(Money, Money), ApiError> {
        let currency = payment.amount.currency;
        let held = self
            .inner
            .store
            .held_amount(&account.name, &payment_ref.payment_id, currency)
            .await?;
        let reported = payment
            .refunded
            .filter(|m| m.currency == currency)
            .unwrap_or(Money::zero(currency));
        let refunded = if held.minor >= reported.minor {
            held
        } else {
            reported
        };
        let refundable = match payment.status {
            PaymentStatus::Captured | PaymentStatus::PartiallyRefunded => payment
                .amount
                .saturating_sub(refunded)
                .unwrap_or(Money::zero(currency)),
            _ => Money::zero(currency),
        };
        Ok((refunded, refundable))
    }
}
