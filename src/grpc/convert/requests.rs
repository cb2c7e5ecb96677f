//! Requests: protobuf -> domain. Each request is destructured exhaustively, so a new proto
//! field stops the build until someone decides what it means, and every bad field is
//! collected before answering, so `BadRequest` lists them all.

use std::collections::BTreeMap;

use crate::{
    domain::{
        ApiError, BankAccount, BankAccountType, Currency, FieldViolation, Money, PaymentRef,
        RefundReason, RefundStatus, TenantId,
    },
    pb,
    providers::RefundDraft,
    refunds::{FeedFilter, ListRequest, Resolution},
};

/// Longest `request_id` (docs/API.md, "Promises").
pub const MAX_REQUEST_ID: usize = 255;
/// Longest payment identifier of any kind.
pub const MAX_REFERENCE: usize = 255;
/// Longest description the gateway stores; providers accept less (D24 200, PayMongo 255).
pub const MAX_DESCRIPTION: usize = 1000;
/// Metadata limits: entries, key length, value length.
pub const MAX_METADATA_ENTRIES: usize = 50;
pub const MAX_METADATA_KEY: usize = 40;
pub const MAX_METADATA_VALUE: usize = 500;
/// Longest bank account field.
pub const MAX_BANK_FIELD: usize = 128;

// === requests ===

/// CreateRefundRequest -> RefundDraft, with every bad field reported.
pub fn create_request(
    tenant: TenantId,
    req: pb::CreateRefundRequest,
) -> Result<RefundDraft, ApiError> {
    let pb::CreateRefundRequest {
        request_id,
        provider,
        payment,
        amount,
        reason,
        description,
        metadata,
        bank_account,
    } = req;
    let mut v = Vec::new();
    text(&mut v, "request_id", &request_id, 1, MAX_REQUEST_ID);
    if request_id.chars().any(char::is_control) {
        v.push(FieldViolation::new(
            "request_id",
            "must not contain control characters",
        ));
    }
    text(&mut v, "provider", &provider, 1, MAX_REFERENCE);
    let payment = payment_ref(&mut v, "payment", payment);
    let amount = amount.and_then(|m| money(&mut v, "amount", m));
    let reason = refund_reason(&mut v, reason);
    text(&mut v, "description", &description, 0, MAX_DESCRIPTION);
    if metadata.len() > MAX_METADATA_ENTRIES {
        v.push(FieldViolation::new(
            "metadata",
            format!("at most {MAX_METADATA_ENTRIES} entries"),
        ));
    }
    for (key, value) in &metadata {
        let field = format!("metadata[{key:?}]");
        if key.contains('\0') || value.contains('\0') {
            v.push(FieldViolation::new(
                field.clone(),
                "must not contain NUL characters",
            ));
        }
        if key.is_empty() || key.chars().count() > MAX_METADATA_KEY {
            v.push(FieldViolation::new(
                field.clone(),
                format!("keys must be 1 to {MAX_METADATA_KEY} characters"),
            ));
        }
        if value.chars().count() > MAX_METADATA_VALUE {
            v.push(FieldViolation::new(
                field,
                format!("values must be at most {MAX_METADATA_VALUE} characters"),
            ));
        }
    }
    let bank_account = bank_account.and_then(|b| bank(&mut v, b));
    if !v.is_empty() {
        return Err(ApiError::invalid(v));
    }
    Ok(RefundDraft {
        tenant,
        request_id,
        provider,
        payment: payment.unwrap_or_default(),
        amount,
        reason,
        description,
        metadata: metadata.into_iter().collect::<BTreeMap<_, _>>(),
        bank_account,
    })
}

/// The `id` of Get/Sync/WatchRefund.
pub fn refund_id(id: &str) -> Result<&str, ApiError> {
    let mut v = Vec::new();
    text(&mut v, "id", id, 1, 64);
    if v.is_empty() {
        Ok(id)
    } else {
        Err(ApiError::invalid(v))
    }
}

/// ResolveRefundRequest -> Resolution (the service checks the status and the note).
pub fn resolve_request(req: pb::ResolveRefundRequest) -> Result<Resolution, ApiError> {
    let pb::ResolveRefundRequest {
        id,
        status,
        note,
        provider_refund_id,
    } = req;
    refund_id(&id)?;
    let status = match pb::RefundStatus::try_from(status) {
        Ok(pb::RefundStatus::Unspecified) | Err(_) => None,
        Ok(s) => Some(status_from_pb(s)),
    };
    Ok(Resolution {
        id,
        status,
        note,
        provider_refund_id,
    })
}

pub fn list_request(req: pb::ListRefundsRequest) -> Result<ListRequest, ApiError> {
    let pb::ListRefundsRequest {
        page_size,
        page_token,
        provider,
        status,
        payment_id,
    } = req;
    let mut v = Vec::new();
    let status = match pb::RefundStatus::try_from(status) {
        Ok(pb::RefundStatus::Unspecified) => None,
        Ok(s) => Some(status_from_pb(s)),
        Err(_) => {
            v.push(FieldViolation::new(
                "status",
                format!("unknown status {status}"),
            ));
            None
        }
    };
    text(&mut v, "provider", &provider, 0, MAX_REFERENCE);
    text(&mut v, "payment_id", &payment_id, 0, MAX_REFERENCE);
    text(&mut v, "page_token", &page_token, 0, 1024);
    if page_size < 0 {
        v.push(FieldViolation::new("page_size", "must not be negative"));
    }
    if !v.is_empty() {
        return Err(ApiError::invalid(v));
    }
    Ok(ListRequest {
        page_size,
        page_token,
        provider: non_empty(provider),
        status,
        payment_id: non_empty(payment_id),
    })
}

pub fn feed_filter(req: pb::WatchRefundsRequest) -> Result<FeedFilter, ApiError> {
    let mut v = Vec::new();
    let pb::WatchRefundsRequest {
        after_sequence,
        provider,
        statuses,
    } = req;
    text(&mut v, "provider", &provider, 0, MAX_REFERENCE);
    let mut wanted = Vec::new();
    for (i, raw) in statuses.into_iter().enumerate() {
        match pb::RefundStatus::try_from(raw) {
            Ok(pb::RefundStatus::Unspecified) | Err(_) => v.push(FieldViolation::new(
                format!("statuses[{i}]"),
                format!("unknown status {raw}"),
            )),
            Ok(s) => wanted.push(status_from_pb(s)),
        }
    }
    if !v.is_empty() {
        return Err(ApiError::invalid(v));
    }
    Ok(FeedFilter {
        after_sequence,
        provider: non_empty(provider),
        statuses: wanted,
    })
}

/// GetPaymentRequest -> (provider, payment).
pub fn payment_request(req: pb::GetPaymentRequest) -> Result<(String, PaymentRef), ApiError> {
    let pb::GetPaymentRequest { provider, payment } = req;
    let mut v = Vec::new();
    text(&mut v, "provider", &provider, 1, MAX_REFERENCE);
    let payment = payment_ref(&mut v, "payment", payment);
    if !v.is_empty() {
        return Err(ApiError::invalid(v));
    }
    Ok((provider, payment.unwrap_or_default()))
}

fn text(v: &mut Vec<FieldViolation>, field: &str, value: &str, min: usize, max: usize) {
    let len = value.chars().count();
    if value.contains('\0') {
        // Stores differ on NUL (PostgreSQL text refuses it): refuse it everywhere, up front.
        v.push(FieldViolation::new(
            field,
            "must not contain NUL characters",
        ));
    } else if len < min {
        v.push(FieldViolation::new(field, "is required"));
    } else if len > max {
        v.push(FieldViolation::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn payment_ref(
    v: &mut Vec<FieldViolation>,
    field: &str,
    p: Option<pb::PaymentReference>,
) -> Option<PaymentRef> {
    let Some(pb::PaymentReference {
        payment_id,
        payment_method_id,
        invoice_id,
    }) = p
    else {
        v.push(FieldViolation::new(field, "is required"));
        return None;
    };
    text(
        v,
        &format!("{field}.payment_id"),
        &payment_id,
        1,
        MAX_REFERENCE,
    );
    text(
        v,
        &format!("{field}.payment_method_id"),
        &payment_method_id,
        0,
        MAX_REFERENCE,
    );
    text(
        v,
        &format!("{field}.invoice_id"),
        &invoice_id,
        0,
        MAX_REFERENCE,
    );
    Some(PaymentRef {
        payment_id,
        payment_method_id,
        invoice_id,
    })
}

fn money(v: &mut Vec<FieldViolation>, field: &str, m: pb::Money) -> Option<Money> {
    let pb::Money {
        currency_code,
        minor_units,
    } = m;
    let currency = match Currency::parse(&currency_code) {
        Ok(c) => Some(c),
        Err(err) => {
            v.push(FieldViolation::new(
                format!("{field}.currency_code"),
                err.to_string(),
            ));
            None
        }
    };
    if minor_units <= 0 {
        v.push(FieldViolation::new(
            format!("{field}.minor_units"),
            "must be positive",
        ));
        return None;
    }
    currency.map(|c| Money::new(minor_units, c))
}

fn refund_reason(v: &mut Vec<FieldViolation>, raw: i32) -> RefundReason {
    match pb::RefundReason::try_from(raw) {
        Ok(pb::RefundReason::Duplicate) => RefundReason::Duplicate,
        Ok(pb::RefundReason::Fraudulent) => RefundReason::Fraudulent,
        Ok(pb::RefundReason::RequestedByCustomer) => RefundReason::RequestedByCustomer,
        Ok(pb::RefundReason::Other | pb::RefundReason::Unspecified) => RefundReason::Other,
        Err(_) => {
            v.push(FieldViolation::new(
                "reason",
                format!("unknown reason {raw}"),
            ));
            RefundReason::Other
        }
    }
}

fn bank(v: &mut Vec<FieldViolation>, b: pb::BankAccount) -> Option<BankAccount> {
    let pb::BankAccount {
        beneficiary,
        bank_code,
        branch,
        account_number,
        account_type,
    } = b;
    let before = v.len();
    text(
        v,
        "bank_account.beneficiary",
        &beneficiary,
        1,
        MAX_BANK_FIELD,
    );
    text(v, "bank_account.bank_code", &bank_code, 1, MAX_BANK_FIELD);
    text(v, "bank_account.branch", &branch, 0, MAX_BANK_FIELD);
    text(
        v,
        "bank_account.account_number",
        &account_number,
        1,
        MAX_BANK_FIELD,
    );
    if !account_number
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        v.push(FieldViolation::new(
            "bank_account.account_number",
            "may only contain letters, digits and '-'",
        ));
    }
    let account_type = match pb::BankAccountType::try_from(account_type) {
        Ok(pb::BankAccountType::Saving) => Some(BankAccountType::Saving),
        Ok(pb::BankAccountType::Checking) => Some(BankAccountType::Checking),
        _ => {
            v.push(FieldViolation::new(
                "bank_account.account_type",
                "is required",
            ));
            None
        }
    };
    (v.len() == before).then(|| BankAccount {
        beneficiary,
        bank_code,
        branch,
        account_number,
        account_type: account_type.expect("checked above"),
    })
}

fn status_from_pb(s: pb::RefundStatus) -> RefundStatus {
    match s {
        pb::RefundStatus::Pending | pb::RefundStatus::Unspecified => RefundStatus::Pending,
        pb::RefundStatus::Processing => RefundStatus::Processing,
        pb::RefundStatus::Succeeded => RefundStatus::Succeeded,
        pb::RefundStatus::Failed => RefundStatus::Failed,
        pb::RefundStatus::Canceled => RefundStatus::Canceled,
        pb::RefundStatus::RequiresReview => RefundStatus::RequiresReview,
        pb::RefundStatus::RequiresApproval => RefundStatus::RequiresApproval,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> pb::CreateRefundRequest {
        pb::CreateRefundRequest {
            request_id: "req-1".into(),
            provider: "compago".into(),
            payment: Some(pb::PaymentReference {
                payment_id: "p".into(),
                payment_method_id: "m".into(),
                invoice_id: String::new(),
            }),
            amount: Some(pb::Money {
                currency_code: "MXN".into(),
                minor_units: 100,
            }),
            reason: 0,
            description: String::new(),
            metadata: Default::default(),
            bank_account: None,
        }
    }

    #[test]
    fn a_valid_request_converts() {
        let draft = create_request(TenantId::new("t"), valid()).unwrap();
        assert_eq!(draft.reason, RefundReason::Other);
        assert_eq!(draft.amount.unwrap().minor, 100);
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let mut req = valid();
        req.request_id = String::new();
        req.provider = String::new();
        req.payment = None;
        req.amount = Some(pb::Money {
            currency_code: "mxn".into(),
            minor_units: -5,
        });
        req.reason = 42;
        req.description = "x".repeat(MAX_DESCRIPTION + 1);
        req.metadata.insert(String::new(), "v".into());
        req.bank_account = Some(pb::BankAccount::default());
        req.metadata.insert("k\0".into(), "v".into());
        let err = create_request(TenantId::new("t"), req).unwrap_err();
        let fields: Vec<&str> = err.violations.iter().map(|v| v.field.as_str()).collect();
        for expected in [
            "request_id",
            "provider",
            "payment",
            "amount.currency_code",
            "amount.minor_units",
            "reason",
            "description",
            "metadata[\"\"]",
            "metadata[\"k\\0\"]",
            "bank_account.beneficiary",
            "bank_account.bank_code",
            "bank_account.account_number",
            "bank_account.account_type",
        ] {
            assert!(
                fields.contains(&expected),
                "{expected} missing from {fields:?}"
            );
        }
    }
}
