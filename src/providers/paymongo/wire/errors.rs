//! PayMongo's error bodies and what each error code means for a read and a create.

use super::*;

/// `{"errors": [...]}` (PM-ERR).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ErrorBody {
    pub errors: Vec<ErrorItem>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ErrorItem {
    pub code: String,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub source: Option<ErrorSource>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ErrorSource {
    #[serde(default)]
    pub pointer: Option<String>,
    #[serde(default)]
    pub attribute: Option<String>,
}

impl ErrorItem {
    /// The attribute the error is about (`amount`, `notes`, ...), from `source.attribute` or
    /// the last part of `source.pointer`.
    pub fn attribute(&self) -> Option<&str> {
        let source = self.source.as_ref()?;
        source
            .attribute
            .as_deref()
            .filter(|a| !a.is_empty())
            .or_else(|| source.pointer.as_deref()?.rsplit('/').next())
            .filter(|a| !a.is_empty())
    }

    /// `code: detail`, for messages.
    pub fn describe(&self) -> String {
        match &self.detail {
            Some(detail) if !detail.is_empty() => format!("{}: {detail}", self.code),
            _ => self.code.clone(),
        }
    }
}

/// The errors of an error body; `None` when the body is not the documented shape or lists
/// no error.
pub fn parse_errors(body: &str) -> Option<Vec<ErrorItem>> {
    serde_json::from_str::<ErrorBody>(body)
        .ok()
        .map(|b| b.errors)
        .filter(|e| !e.is_empty())
}

/// What one error code answered to a refund create says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorMeaning {
    /// PayMongo refused the request and created nothing.
    Refused {
        code: ErrorCode,
        reason: &'static str,
        message: String,
    },
    /// The answer does not prove that nothing was created (a processing error, an
    /// idempotency conflict, or a code the gateway does not know).
    Uncertain,
}

/// The meaning of one error answered to a refund create of `payment_id` (PM-RERR, PM-ERR).
pub fn meaning(item: &ErrorItem, payment_id: &str) -> ErrorMeaning {
    use ErrorCode::{FailedPrecondition, InvalidArgument, NotFound};
    let detail = item.detail.as_deref().unwrap_or("");
    let attribute = item.attribute().unwrap_or("");
    let refused = |code, reason, message: String| ErrorMeaning::Refused {
        code,
        reason,
        message,
    };
    let not_refundable = |why: &str| {
        refused(
            FailedPrecondition,
            reason::PAYMENT_NOT_REFUNDABLE,
            format!("PayMongo will not refund payment {payment_id}: {why}"),
        )
    };
    match item.code.as_str() {
        "parameter_below_minimum" if attribute == "amount" || attribute.is_empty() => refused(
            InvalidArgument,
            reason::AMOUNT_BELOW_MINIMUM,
            format!("the amount is below PayMongo's minimum for this payment ({detail})"),
        ),
        "parameter_above_maximum" if attribute == "amount" || attribute.is_empty() => {
            if detail.to_ascii_lowercase().contains("full amount") {
                refused(
                    InvalidArgument,
                    reason::PARTIAL_REFUND_NOT_SUPPORTED,
                    format!("PayMongo refunds only the whole of payment {payment_id} ({detail})"),
                )
            } else {
                refused(
                    FailedPrecondition,
                    reason::AMOUNT_EXCEEDS_REFUNDABLE,
                    format!(
                        "the amount is more than PayMongo has left to refund of payment \
                         {payment_id} ({detail})"
                    ),
                )
            }
        }
        "parameter_invalid" if attribute == "payment_id" || detail.contains("not allowed") => {
            not_refundable(&format!("refunds are not allowed for it ({detail})"))
        }
        "parameter_below_minimum"
        | "parameter_above_maximum"
        | "parameter_invalid"
        | "parameter_required"
        | "parameter_data_type_invalid"
        | "parameter_format_invalid" => refused(
            InvalidArgument,
            reason::PROVIDER_DECLINED,
            format!("PayMongo refused the refund request: {}", item.describe()),
        ),
        "resource_not_found" => refused(
            NotFound,
            reason::PAYMENT_NOT_FOUND,
            format!("PayMongo has no payment {payment_id}"),
        ),
        "resource_failed_state" => not_refundable("only paid payments can be refunded"),
        "resource_pending_state" => not_refundable("it is still pending"),
        "resource_disputed_state" => not_refundable("it is disputed"),
        "refund_not_allowed" | "payment_method_not_allowed" => {
            not_refundable(&format!("its payment method cannot be refunded ({detail})"))
        }
        "allowed_date_exceeded" => not_refundable("its refund window has passed"),
        "resource_processing_state" => not_refundable(
            "another refund of it is being processed; try again once that one completes",
        ),
        "available_balance_insufficient" => refused(
            FailedPrecondition,
            reason::PROVIDER_DECLINED,
            "the PayMongo account's balance is too low to fund this refund; try again after \
             the next payments settle"
                .to_owned(),
        ),
        "livemode_mismatched" => refused(
            FailedPrecondition,
            reason::PROVIDER_DECLINED,
            format!(
                "payment {payment_id} and the account's secret key are not in the same mode \
                 (test vs live)"
            ),
        ),
        // "provider_processing_error", "resource_processing_error", idempotency conflicts
        // and codes not documented: a refund may exist, so the outcome is reconciled.
        _ => ErrorMeaning::Uncertain,
    }
}

/// What the errors answered to a refund create mean together: a rejection (from the first
/// error; every error's text kept as the provider's message), or `None` when any of them
/// leaves the outcome uncertain.
pub fn create_rejection(errors: &[ErrorItem], payment_id: &str) -> Option<Rejection> {
    let mut first = None;
    for item in errors {
        match meaning(item, payment_id) {
            ErrorMeaning::Uncertain => return None,
            ErrorMeaning::Refused {
                code,
                reason,
                message,
            } => {
                first.get_or_insert((item, code, reason, message));
            }
        }
    }
    let (item, code, reason, message) = first?;
    let all = errors
        .iter()
        .map(ErrorItem::describe)
        .collect::<Vec<_>>()
        .join("; ");
    Some(Rejection::new(code, reason, message).with_provider(item.code.clone(), all))
}
