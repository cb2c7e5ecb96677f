//! What the providers' unit tests start from (a draft, a captured payment, a bank account)
//! and the checks they share.

use std::collections::BTreeMap;

use chrono::Utc;

use super::{ProviderPayment, RefundDraft};
use crate::domain::{
    BankAccount, BankAccountType, FieldViolation, Money, Observation, PaymentRef, PaymentStatus,
    Refund, RefundFailure, RefundReason, RefundStatus, TenantId, reason,
};

/// A draft through account `provider` (tenant `t`, request `r`) of the payment with these
/// ids, with nothing else set (the whole amount left).
pub fn draft(
    provider: &str,
    payment_id: &str,
    payment_method_id: &str,
    invoice: &str,
) -> RefundDraft {
    RefundDraft {
        tenant: TenantId::new("t"),
        request_id: "r".into(),
        provider: provider.into(),
        payment: PaymentRef {
            payment_id: payment_id.into(),
            payment_method_id: payment_method_id.into(),
            invoice_id: invoice.into(),
        },
        amount: None,
        reason: RefundReason::Other,
        description: String::new(),
        metadata: BTreeMap::new(),
        bank_account: None,
    }
}

/// A captured payment of `amount`, `provider_status` in the provider's words, nothing said
/// about refunds, no bank account needed.
pub fn captured(provider_status: &str, amount: Money) -> ProviderPayment {
    ProviderPayment {
        status: PaymentStatus::Captured,
        provider_status: provider_status.into(),
        amount,
        refunded: None,
        refunds: Vec::new(),
        needs_bank_account: false,
    }
}

/// A checking account with an eight-digit number.
pub fn bank_account() -> BankAccount {
    BankAccount {
        beneficiary: "b".into(),
        bank_code: "1".into(),
        branch: "2".into(),
        account_number: "12345678".into(),
        account_type: BankAccountType::Checking,
    }
}

/// The fields `violations` name, in order.
pub fn fields(violations: &[FieldViolation]) -> Vec<&str> {
    violations.iter().map(|v| v.field.as_str()).collect()
}

/// Checks that `refund`, observing `obs` (read from the provider's `answer`), goes to review
/// as contradicted: a `PROVIDER_MISMATCH` failure naming `what_differs`, and the provider's
/// id kept. Gives the failure for further checks.
pub fn assert_contradicted(
    refund: &Refund,
    obs: &Observation,
    answer: &str,
    what_differs: &str,
    provider_refund_id: &str,
) -> RefundFailure {
    let after = refund.observe(obs, Utc::now()).unwrap();
    assert_eq!(after.status, RefundStatus::RequiresReview, "{answer}");
    let failure = after.failure.expect("a failure says what differs");
    assert_eq!(failure.code, reason::PROVIDER_MISMATCH);
    assert!(
        failure.message.contains(what_differs),
        "{:?} should mention {what_differs:?}",
        failure.message
    );
    assert_eq!(
        after.provider_refund_id.as_deref(),
        Some(provider_refund_id)
    );
    failure
}

/// A refund the provider reports succeeded, stating its id, its status word, its amount and
/// its payment.
pub fn succeeded(
    provider_refund_id: &str,
    provider_status: &str,
    amount: Money,
    payment_id: &str,
) -> Observation {
    Observation {
        status: RefundStatus::Succeeded,
        provider_refund_id: Some(provider_refund_id.into()),
        provider_status: Some(provider_status.into()),
        failure: None,
        amount: Some(amount),
        payment_id: Some(payment_id.into()),
    }
}
