//! Responses: domain -> protobuf, for the messages the service answers with and the events it
//! streams.

use chrono::{DateTime, Utc};

use crate::{
    domain::{
        BankAccountType, Money, Payment, PaymentRef, PaymentStatus, Refund, RefundEvent,
        RefundFailure, RefundReason, RefundStatus,
    },
    pb,
    providers::ProviderAccount,
    refunds::{EventPage, Page},
};

// === the messages the service answers with ===

pub fn create_response(r: &Refund) -> pb::CreateRefundResponse {
    pb::CreateRefundResponse {
        refund: Some(refund(r)),
    }
}

pub fn get_response(r: &Refund) -> pb::GetRefundResponse {
    pb::GetRefundResponse {
        refund: Some(refund(r)),
    }
}

pub fn sync_response(r: &Refund) -> pb::SyncRefundResponse {
    pb::SyncRefundResponse {
        refund: Some(refund(r)),
    }
}

pub fn list_response(page: Page) -> pb::ListRefundsResponse {
    pb::ListRefundsResponse {
        refunds: page.refunds.into_iter().map(refund_owned).collect(),
        next_page_token: page.next_page_token,
    }
}

pub fn events_response(page: EventPage) -> pb::ListRefundEventsResponse {
    pb::ListRefundEventsResponse {
        events: page.events.iter().map(event).collect(),
        next_page_token: page.next_page_token,
    }
}

pub fn payment_response(p: &Payment) -> pb::GetPaymentResponse {
    pb::GetPaymentResponse {
        payment: Some(payment(p)),
    }
}

pub fn providers_response<A: AsRef<ProviderAccount>>(accounts: &[A]) -> pb::ListProvidersResponse {
    pb::ListProvidersResponse {
        providers: accounts.iter().map(|a| provider_info(a.as_ref())).collect(),
    }
}

// === the parts ===

pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

pub fn money_to_pb(m: Money) -> pb::Money {
    pb::Money {
        currency_code: m.currency.code().to_owned(),
        minor_units: m.minor,
    }
}

fn payment_ref_to_pb(p: &PaymentRef) -> pb::PaymentReference {
    pb::PaymentReference {
        payment_id: p.payment_id.clone(),
        payment_method_id: p.payment_method_id.clone(),
        invoice_id: p.invoice_id.clone(),
    }
}

pub fn status_to_pb(s: RefundStatus) -> pb::RefundStatus {
    match s {
        RefundStatus::Pending => pb::RefundStatus::Pending,
        RefundStatus::Processing => pb::RefundStatus::Processing,
        RefundStatus::Succeeded => pb::RefundStatus::Succeeded,
        RefundStatus::Failed => pb::RefundStatus::Failed,
        RefundStatus::Canceled => pb::RefundStatus::Canceled,
        RefundStatus::RequiresReview => pb::RefundStatus::RequiresReview,
        RefundStatus::RequiresApproval => pb::RefundStatus::RequiresApproval,
    }
}

fn reason_to_pb(r: RefundReason) -> pb::RefundReason {
    match r {
        RefundReason::Duplicate => pb::RefundReason::Duplicate,
        RefundReason::Fraudulent => pb::RefundReason::Fraudulent,
        RefundReason::RequestedByCustomer => pb::RefundReason::RequestedByCustomer,
        RefundReason::Other => pb::RefundReason::Other,
    }
}

fn failure_to_pb(f: &RefundFailure) -> pb::RefundFailure {
    pb::RefundFailure {
        code: f.code.clone(),
        message: f.message.clone(),
        provider_code: f.provider_code.clone(),
        provider_message: f.provider_message.clone(),
    }
}

/// A refund as callers see it. The bank account number is always masked here, whatever the
/// caller passes in.
pub fn refund(r: &Refund) -> pb::Refund {
    refund_owned(r.clone())
}

/// [`refund`] of a refund that is not needed any more: its strings move into the message.
pub fn refund_owned(r: Refund) -> pb::Refund {
    pb::Refund {
        id: r.id.to_string(),
        request_id: r.request_id,
        provider: r.provider,
        payment: Some(pb::PaymentReference {
            payment_id: r.payment.payment_id,
            payment_method_id: r.payment.payment_method_id,
            invoice_id: r.payment.invoice_id,
        }),
        amount: Some(money_to_pb(r.amount)),
        status: status_to_pb(r.status).into(),
        provider_refund_id: r.provider_refund_id.unwrap_or_default(),
        provider_status: r.provider_status.unwrap_or_default(),
        reason: reason_to_pb(r.reason).into(),
        description: r.description,
        metadata: r.metadata.into_iter().collect(),
        bank_account: r.bank_account.map(|b| {
            let b = b.masked();
            pb::BankAccount {
                beneficiary: b.beneficiary,
                bank_code: b.bank_code,
                branch: b.branch,
                account_number: b.account_number,
                account_type: match b.account_type {
                    BankAccountType::Saving => pb::BankAccountType::Saving,
                    BankAccountType::Checking => pb::BankAccountType::Checking,
                }
                .into(),
            }
        }),
        failure: r.failure.as_ref().map(failure_to_pb),
        create_time: Some(timestamp(r.created_at)),
        update_time: Some(timestamp(r.updated_at)),
    }
}

pub fn event(e: &RefundEvent) -> pb::RefundEvent {
    pb::RefundEvent {
        sequence: e.sequence,
        refund: Some(refund(&e.refund)),
        previous_status: e
            .previous_status
            .map_or(pb::RefundStatus::Unspecified, status_to_pb)
            .into(),
        event_time: Some(timestamp(e.event_time)),
        actor: e.cause.actor.as_str().to_owned(),
        note: e.cause.note.clone(),
    }
}

pub fn payment(p: &Payment) -> pb::Payment {
    pb::Payment {
        provider: p.provider.clone(),
        payment: Some(payment_ref_to_pb(&p.payment)),
        status: match p.status {
            PaymentStatus::Pending => pb::PaymentStatus::Pending,
            PaymentStatus::Captured => pb::PaymentStatus::Captured,
            PaymentStatus::Failed => pb::PaymentStatus::Failed,
            PaymentStatus::Canceled => pb::PaymentStatus::Canceled,
            PaymentStatus::Refunded => pb::PaymentStatus::Refunded,
            PaymentStatus::PartiallyRefunded => pb::PaymentStatus::PartiallyRefunded,
        }
        .into(),
        provider_status: p.provider_status.clone(),
        amount: Some(money_to_pb(p.amount)),
        refunded_amount: Some(money_to_pb(p.refunded)),
        refundable_amount: Some(money_to_pb(p.refundable)),
    }
}

pub fn provider_info(a: &ProviderAccount) -> pb::ProviderInfo {
    let caps = a.provider.capabilities();
    pb::ProviderInfo {
        name: a.name.clone(),
        kind: a.provider.kind().as_str().to_owned(),
        currencies: caps.currencies.iter().map(|c| (*c).to_owned()).collect(),
        supports_partial_refunds: caps.partial_refunds,
        supports_webhooks: caps.webhooks,
        sandbox: a.sandbox,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{BankAccount, Currency};

    #[test]
    fn refunds_never_show_a_full_account_number() {
        let r = Refund {
            bank_account: Some(BankAccount {
                beneficiary: "b".into(),
                bank_code: "1".into(),
                branch: String::new(),
                account_number: "123456789".into(),
                account_type: BankAccountType::Checking,
            }),
            ..crate::domain::sample_refund("d24", Money::new(1, Currency::parse("CLP").unwrap()))
        };
        assert_eq!(refund(&r).bank_account.unwrap().account_number, "*****6789");
    }
}
