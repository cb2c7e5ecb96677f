//! CreateRefund, stage 3: look the payment up, check what is left to refund, and insert the
//! refund as PENDING with its creation event, reserving its amount against the payment
//! atomically. From here the refund exists whatever happens next: if the process dies, the
//! worker finds it (its first check is already scheduled) and reconciles it.
//!
//! A refund above the tenant's approval limit for its currency is inserted as
//! REQUIRES_APPROVAL instead: holding its amount the same way, not sent, and looked at by the
//! worker when its approval window ends.

use super::{ATTEMPT_MARGIN, Refunds, amounts, validate, validate::Request};
use crate::{
    domain::{ApiError, Cause, Refund, RefundStatus, Submission},
    store::InsertOutcome,
};

/// A refund recorded as PENDING, its amount held against the payment: the hand-off to the
/// submission.
#[derive(Debug)]
pub(super) struct Reserved(pub(super) Refund);

impl Reserved {
    /// Whether the refund waits for an operator's approval instead of being sent now.
    pub(super) fn waits(&self) -> bool {
        self.0.status == RefundStatus::RequiresApproval
    }
}

/// Reserves the refund `request` asks for.
pub(super) async fn reserve(refunds: &Refunds, request: &Request) -> Result<Reserved, ApiError> {
    let Request {
        account,
        draft,
        key,
        actor,
        approval_above,
    } = request;
    let payment = account
        .get_payment(&draft.payment)
        .await
        .map_err(|e| e.to_api_error(&account.name))?;
    validate::payment_refundable(account, draft, &payment)?;
    // A pre-check for the answer's sake (and the amount of a refund of what is left): the
    // store's guard below decides, counting the provider's report in the same atomic step.
    let (_, left) =
        amounts::refunded_and_left(refunds, &account.name, &draft.payment.payment_id, &payment)
            .await?;
    let amount = validate::amount(account, draft, &payment, left)?;
    let now = Refunds::now();
    let mut refund = Refund {
        created_by: Some(actor.clone()),
        reason: draft.reason,
        description: draft.description.clone(),
        metadata: draft.metadata.clone(),
        bank_account: draft.bank_account.clone(),
        // The safety net: if this process stops before recording the outcome, the worker
        // asks the provider once the attempt is surely over.
        next_check_at: Some(now + account.timeout + ATTEMPT_MARGIN),
        // The first submission attempt, recorded with the refund before it is sent: nobody
        // sends it again before this attempt is surely over.
        sent_at: Some(now),
        ..Refund::new_pending(
            draft.tenant.clone(),
            draft.request_id.clone(),
            account.name.clone(),
            draft.payment.clone(),
            amount,
            now,
        )
    };
    let limit = approval_above.get(amount.currency.code()).copied();
    let note = match limit {
        Some(limit) if amount.minor > limit => {
            refund.status = RefundStatus::RequiresApproval;
            refund.submission = Submission::NotSent;
            refund.sent_at = None;
            refund.next_check_at = Some(now + refunds.inner.settings.approval_expiry);
            format!(
                "created; waits for approval (above {limit} minor units of {})",
                amount.currency
            )
        }
        _ => "created".to_owned(),
    };
    let cause = Cause::new(actor.clone(), note);
    match refunds
        .inner
        .store
        .insert_refund(&refund, key, payment.amount, &payment.refunds, &cause)
        .await?
    {
        InsertOutcome::Inserted(event) => {
            tracing::info!(refund_id = %refund.id, provider = %account.name, request_id = %refund.request_id, amount = %refund.amount, "refund recorded");
            refunds.inner.views.put(&refund);
            refunds.inner.bus.publish(event);
            Ok(Reserved(refund))
        }
        InsertOutcome::ExceedsPayment { held } => {
            let left = payment
                .amount
                .saturating_sub(held)
                .unwrap_or(payment.amount);
            Err(validate::exceeds(&account.name, amount, left))
        }
    }
}
