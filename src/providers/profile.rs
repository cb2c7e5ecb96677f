//! What a provider is and the pure rules it applies to a refund request, the same for every
//! account of it ([`Profile`]), and the request checks several providers share.

use super::{Capabilities, ProviderKind, ProviderPayment, RefundDraft};
use crate::domain::{ApiError, FieldViolation, Money};

/// A provider's kind, capabilities and rules: the parts of [`super::Provider`] that need no
/// account. Each provider's `rules.rs` holds its one profile.
#[derive(Debug)]
pub struct Profile {
    pub kind: ProviderKind,
    pub capabilities: Capabilities,
    /// See [`super::Provider::validate`].
    pub validate: fn(&RefundDraft) -> Vec<FieldViolation>,
    /// See [`super::Provider::check_refund`].
    pub check_refund: fn(&RefundDraft, &ProviderPayment, Money) -> Result<(), ApiError>,
    /// See [`super::Provider::resubmit_is_safe`].
    pub resubmit_is_safe: bool,
}

/// The parts of a request that belong to other providers, when the draft sets them: one
/// violation each, in the order of the request's fields. `payment_method_id` is Compago's,
/// `invoice_id` and `bank_account` are D24's. `name` is how messages name the provider `kind`;
/// `refunds_go_to` says where it pays refunds back, when it takes no bank account.
pub fn parts_of_others(
    draft: &RefundDraft,
    kind: ProviderKind,
    name: &str,
    refunds_go_to: &str,
) -> Vec<FieldViolation> {
    use ProviderKind::{Compago, D24};
    let payment = &draft.payment;
    let parts = [
        (
            "payment.payment_method_id",
            Compago,
            !payment.payment_method_id.is_empty(),
        ),
        ("payment.invoice_id", D24, !payment.invoice_id.is_empty()),
        ("bank_account", D24, draft.bank_account.is_some()),
    ];
    parts
        .into_iter()
        .filter(|&(_, owner, set)| set && owner != kind)
        .map(|(field, owner, _)| {
            let why = if field == "bank_account" {
                format!("not used by {name}: refunds go back to {refunds_go_to}; leave it unset")
            } else {
                let owner = if owner == Compago { "Compago" } else { "D24" };
                format!("not used by {name} ({owner} only); leave it empty")
            };
            FieldViolation::new(field, why)
        })
        .collect()
}

/// A violation when the draft asks for an amount in another currency than `currency`, the
/// only one `name` refunds in.
pub fn other_currency(draft: &RefundDraft, name: &str, currency: &str) -> Option<FieldViolation> {
    let amount = draft.amount?;
    (amount.currency.code() != currency).then(|| {
        FieldViolation::new(
            "amount.currency_code",
            format!("{name} refunds {currency} only, got {}", amount.currency),
        )
    })
}
