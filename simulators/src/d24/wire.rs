//! The simulator's own words of D24's Deposits API v3 (docs/PROVIDERS.md sections 1.5 to 1.11):
//! refund and deposit statuses, card refund results, the error code table and the field
//! limits. Written from D24's documentation, independently of the gateway's adapter.

use serde::{Deserialize, Serialize};

/// `invoice_id` is at most this long (D24-RC).
pub const MAX_INVOICE_ID: usize = 128;
/// `comments` is at most this long (D24-RC).
pub const MAX_COMMENTS: usize = 200;
/// `notification_url` is at most this long (D24-RC).
pub const MAX_NOTIFICATION_URL: usize = 2048;
/// Amounts have at most this many decimals (D24-RCREF).
pub const MAX_DECIMALS: u32 = 2;

/// A refund's status (D24-RFLOW, section 1.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundState {
    /// Created, waiting to be processed.
    Pending,
    /// D24 needs corrected details.
    IncorrectDetails,
    /// Sent to the bank or processor.
    Delivered,
    /// Confirmed by the bank (a bank may still reject it later).
    Completed,
    /// Rejected by the bank.
    Rejected,
    /// Cancelled by the merchant.
    Cancelled,
}

impl RefundState {
    /// The word D24 writes in `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::IncorrectDetails => "INCORRECT_DETAILS",
            Self::Delivered => "DELIVERED",
            Self::Completed => "COMPLETED",
            Self::Rejected => "REJECTED",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// Whether the refund still holds its amount against the deposit (REJECTED and
    /// CANCELLED refunds give it back).
    pub fn holds_amount(self) -> bool {
        !matches!(self, Self::Rejected | Self::Cancelled)
    }
}

/// A deposit's status (D24-DFLOW, section 1.9). Only COMPLETED deposits can be refunded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DepositState {
    /// Hosted flow, link not opened yet.
    Created,
    /// Waiting for the payer.
    Pending,
    /// Anti-fraud hold.
    ForReview,
    /// Released early; the payer has not paid yet.
    EarlyReleased,
    Expired,
    Cancelled,
    /// Paid.
    Completed,
}

impl DepositState {
    /// The word D24 writes in `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::Pending => "PENDING",
            Self::ForReview => "FOR_REVIEW",
            Self::EarlyReleased => "EARLY_RELEASED",
            Self::Expired => "EXPIRED",
            Self::Cancelled => "CANCELLED",
            Self::Completed => "COMPLETED",
        }
    }
}

/// `refund_info.result` of a card refund's immediate answer (section 1.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CardResult {
    /// Created; the money goes back to the card soon.
    Success,
    /// Asynchronous; a notification follows.
    InProgress,
    /// Rejected, with `reason` and `reason_code`.
    Rejected,
}

impl CardResult {
    pub const ALL: [CardResult; 3] = [Self::Success, Self::InProgress, Self::Rejected];

    /// The word D24 writes in `refund_info.result`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "SUCCESS",
            Self::InProgress => "IN_PROGRESS",
            Self::Rejected => "REJECTED",
        }
    }

    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == word)
    }

    /// The refund's status right after the answer.
    pub fn refund_state(self) -> RefundState {
        match self {
            Self::Success => RefundState::Completed,
            Self::Rejected => RefundState::Rejected,
            Self::InProgress => RefundState::Pending,
        }
    }
}

/// Whether a deposit's `payment_type` is a card: card refunds go back to the card ("Not
/// needed for credit cards"), every other method needs a `bank_account` (804). D24 names
/// `CREDIT_CARD` (and `BANK_TRANSFER`); `DEBIT_CARD` is taken as a card too (chosen here, not
/// documented).
pub fn is_card_type(payment_type: &str) -> bool {
    matches!(payment_type, "CREDIT_CARD" | "DEBIT_CARD")
}

/// One row of D24's error code table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Code {
    pub code: u32,
    pub http_status: u16,
    /// The `type` constant.
    pub kind: &'static str,
    pub description: &'static str,
}

/// The codes the simulator answers (D24-CODES, D24-RCODES; section 1.10).
pub const CODES: &[Code] = &[
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
    code(202, 400, "INVALID_REQUEST_BODY", "Invalid request body"),
    code(208, 404, "RESOURCE_NOT_FOUND", "Resource not found"),
    code(
        800,
        400,
        "REFUND_NOT_ENABLED",
        "Refunds are not enabled for this merchant",
    ),
    code(
        801,
        400,
        "DEPOSIT_NOT_COMPLETED",
        "The deposit is not completed",
    ),
    code(
        802,
        400,
        "INVALID_AMOUNT_TO_REFUND",
        "Amount to refund not valid",
    ),
    code(803, 400, "INSUFFICIENT_FUNDS", "Insufficient funds"),
    code(804, 400, "MISSING_BANK_ACCOUNT", "Bank account is required"),
    code(
        805,
        400,
        "ERROR_IN_REFUND",
        "Error, the refund was not processed.",
    ),
];

const fn code(code: u32, http_status: u16, kind: &'static str, description: &'static str) -> Code {
    Code {
        code,
        http_status,
        kind,
        description,
    }
}

/// The table row of a code.
pub fn code_info(code: u32) -> Option<&'static Code> {
    CODES.iter().find(|c| c.code == code)
}

/// Reusing an `X-Idempotency-Key`.
pub const IDEMPOTENCY_KEY_ALREADY_USED: u32 = 104;

#[cfg(test)]
mod tests {
    use super::*;

    /// Statuses read and write D24's words.
    #[test]
    fn words_are_d24s() {
        assert_eq!(
            serde_json::to_string(&RefundState::IncorrectDetails).unwrap(),
            r#""INCORRECT_DETAILS""#
        );
        assert_eq!(
            serde_json::from_str::<DepositState>(r#""FOR_REVIEW""#).unwrap(),
            DepositState::ForReview
        );
        assert_eq!(
            CardResult::parse("IN_PROGRESS"),
            Some(CardResult::InProgress)
        );
        assert_eq!(CardResult::parse("in_progress"), None);
    }

    /// Every code has its documented HTTP status.
    #[test]
    fn codes_have_their_http_status() {
        assert_eq!(code_info(100).unwrap().http_status, 401);
        assert_eq!(code_info(208).unwrap().http_status, 404);
        assert!((800..=805).all(|c| code_info(c).unwrap().http_status == 400));
        assert!(code_info(999).is_none());
    }
}
