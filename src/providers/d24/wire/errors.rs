//! D24's error bodies and its table of error codes: what each code means for the gateway.

use super::*;

/// A D24 error answer, from either shape:
/// `{"code": 802, "description": "…", "type": "INVALID_AMOUNT_TO_REFUND"}` or
/// `{"error": {"code": "208", "message": "…", "details": …}}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorBody {
    /// The numeric code, when there is one.
    pub code: Option<u32>,
    /// The `type` constant, when there is one.
    pub kind: Option<String>,
    /// `description` or `message` (empty when neither).
    pub message: String,
}

/// Reads an error body in either shape; `None` when the body is neither.
pub fn parse_error(body: &str) -> Option<ErrorBody> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let object = value.as_object()?;
    let inner = match object.get("error") {
        Some(serde_json::Value::Object(nested)) => nested,
        _ => object,
    };
    let code = match inner.get("code") {
        Some(serde_json::Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    let text = |key: &str| inner.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let kind = text("type");
    let message = text("description").or_else(|| text("message"));
    if code.is_none() && kind.is_none() && message.is_none() {
        return None;
    }
    Some(ErrorBody {
        code,
        kind,
        message: message.unwrap_or_default(),
    })
}

/// One documented D24 error code (D24-CODES, D24-RCODES, S001/S003).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeInfo {
    pub code: u32,
    /// The HTTP status D24 answers it with.
    pub http_status: u16,
    /// The `type` constant.
    pub kind: &'static str,
    pub description: &'static str,
}

/// The error codes of the refund and deposit-status endpoints. 201-203 come from the KYC
/// API table, which shares the numbering; 208's HTTP status is not documented (404 assumed).
pub const CODES: &[CodeInfo] = &[
    code(100, 401, "INVALID_CREDENTIALS", "Invalid credentials"),
    code(
        101,
        400,
        "MISSING_REQUIRED_HEADER",
        "Missing or badly formatted header",
    ),
    code(102, 400, "INVALID_SIGNATURE", "Invalid signature"),
    code(
        103,
        400,
        "INVALID_DATE_RANGE",
        "X-Date header value out of valid range",
    ),
    code(
        104,
        400,
        "IDEMPOTENCY_KEY_ALREADY_USED",
        "Idempotency key has been already used",
    ),
    code(105, 400, "EMPTY_HEADER_VALUE", "Empty header value"),
    code(200, 405, "METHOD_NOT_ALLOWED", "Method not allowed"),
    code(201, 401, "INVALID_IP", "Invalid IP address"),
    code(202, 400, "INVALID_REQUEST_BODY", "Invalid request body"),
    code(203, 403, "FORBIDDEN_MERCHANT", "Forbidden merchant"),
    code(208, 404, "RESOURCE_NOT_FOUND", "Resource not found"),
    code(800, 400, "REFUND_NOT_ENABLED", "Refunds are not enabled"),
    code(801, 400, "DEPOSIT_NOT_COMPLETED", "Deposit not completed"),
    code(
        802,
        400,
        "INVALID_AMOUNT_TO_REFUND",
        "Amount to refund not valid",
    ),
    code(803, 400, "INSUFFICIENT_FUNDS", "Insufficient funds"),
    code(
        804,
        400,
        "MISSING_BANK_ACCOUNT",
        "Missing bank account information",
    ),
    code(
        805,
        400,
        "ERROR_IN_REFUND",
        "Error, the refund was not processed.",
    ),
];

const fn code(
    code: u32,
    http_status: u16,
    kind: &'static str,
    description: &'static str,
) -> CodeInfo {
    CodeInfo {
        code,
        http_status,
        kind,
        description,
    }
}

/// The documented code, if `code` is one.
pub fn code_info(code: u32) -> Option<&'static CodeInfo> {
    CODES.iter().find(|c| c.code == code)
}

/// The code D24 answers a reused `X-Idempotency-Key` with.
pub const IDEMPOTENCY_KEY_ALREADY_USED: u32 = 104;

/// What a D24 error code means for the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeMeaning {
    /// 104: this idempotency key was used before, so an earlier attempt with it reached
    /// D24. Never a failure: the outcome of that attempt is what counts.
    KeyAlreadyUsed,
    /// D24 refused the request; nothing was created.
    Refused {
        code: ErrorCode,
        reason: &'static str,
        /// What it means for the operator or the caller.
        explanation: &'static str,
    },
}

/// The meaning of every code. Configuration problems (100-103, 105, 200, 201, 203, 800) are
/// FAILED_PRECONDITION: an operator has to fix the provider account; they are never a failed
/// refund. Unknown codes read as a plain refusal here; a refund create does not take them
/// as one (`answers::submit_failure`: undocumented means unknown outcome).
pub fn meaning(code: u32) -> CodeMeaning {
    use ErrorCode::{FailedPrecondition, InvalidArgument, NotFound};
    let refused = |code, reason, explanation| CodeMeaning::Refused {
        code,
        reason,
        explanation,
    };
    match code {
        IDEMPOTENCY_KEY_ALREADY_USED => CodeMeaning::KeyAlreadyUsed,
        100 => refused(
            FailedPrecondition,
            reason::PROVIDER_AUTHENTICATION_FAILED,
            "D24 refused the login (X-Login) of this provider account as invalid or inactive; \
             check its login",
        ),
        102 => refused(
            FailedPrecondition,
            reason::PROVIDER_AUTHENTICATION_FAILED,
            "D24 refused the request signature; check the secret_key of this provider account",
        ),
        101 | 105 => refused(
            FailedPrecondition,
            reason::PROVIDER_MISCONFIGURED,
            "D24 refused the request headers as missing, malformed or empty; check the \
             provider account and any proxy in between",
        ),
        103 => refused(
            FailedPrecondition,
            reason::PROVIDER_MISCONFIGURED,
            "D24 refused X-Date as out of its window; check the gateway host's clock",
        ),
        200 => refused(
            FailedPrecondition,
            reason::PROVIDER_MISCONFIGURED,
            "D24 refused the HTTP method; check the base_url of this provider account",
        ),
        201 => refused(
            FailedPrecondition,
            reason::PROVIDER_MISCONFIGURED,
            "D24 refused the gateway's IP address; whitelist it in the D24 Merchant Panel",
        ),
        203 => refused(
            FailedPrecondition,
            reason::PROVIDER_MISCONFIGURED,
            "D24 does not allow this merchant to use the API",
        ),
        800 => refused(
            FailedPrecondition,
            reason::PROVIDER_MISCONFIGURED,
            "refunds are not enabled for this D24 merchant account",
        ),
        202 => refused(
            InvalidArgument,
            reason::PROVIDER_DECLINED,
            "D24 could not read the refund request",
        ),
        208 => refused(
            NotFound,
            reason::PAYMENT_NOT_FOUND,
            "D24 has no deposit with this deposit_id and invoice_id",
        ),
        801 => refused(
            FailedPrecondition,
            reason::PAYMENT_NOT_REFUNDABLE,
            "the deposit is not COMPLETED at D24; only completed deposits can be refunded",
        ),
        802 => refused(
            FailedPrecondition,
            reason::AMOUNT_EXCEEDS_REFUNDABLE,
            "D24 refused the amount: it is more than is left to refund of the deposit",
        ),
        803 => refused(
            FailedPrecondition,
            reason::PROVIDER_INSUFFICIENT_FUNDS,
            "the merchant's D24 balance cannot cover this refund",
        ),
        804 => refused(
            InvalidArgument,
            reason::BANK_ACCOUNT_REQUIRED,
            "D24 needs a bank_account to refund this deposit",
        ),
        805 => refused(
            FailedPrecondition,
            reason::PROVIDER_DECLINED,
            "D24 did not process the refund (check it in the D24 Merchant Panel)",
        ),
        _ => refused(
            InvalidArgument,
            reason::PROVIDER_DECLINED,
            "D24 refused the request",
        ),
    }
}
