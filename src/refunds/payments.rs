//! GetPayment: a payment as its provider reports it, with what has been and can still be
//! refunded.

use super::{Refunds, amounts};
use crate::{
    auth::Caller,
    domain::{ApiError, Payment, PaymentRef, PaymentStatus},
};

/// Looks a payment up at its provider, with what has been and can still be refunded.
pub(super) async fn get_payment(
    refunds: &Refunds,
    caller: &Caller,
    provider: &str,
    payment: PaymentRef,
) -> Result<Payment, ApiError> {
    let account = refunds.account(caller, provider, "provider")?;
    let found = account
        .get_payment(&payment)
        .await
        .map_err(|e| e.to_api_error(&account.name))?;
    let (refunded, refundable) =
        amounts::refunded_and_left(refunds, &account.name, &payment.payment_id, &found).await?;
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
