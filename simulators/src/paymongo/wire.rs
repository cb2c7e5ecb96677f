//! The simulator's own words of PayMongo's refund API (docs/PROVIDERS.md section 2):
//! payment and refund statuses, the refund limits, and `{"errors": [...]}` answers. Written
//! from PayMongo's documentation, independently of the gateway's adapter.

use chrono::Duration as ChronoDuration;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How long an idempotency key's answer is replayed (PM-IDEM).
pub const IDEMPOTENCY_WINDOW: ChronoDuration = ChronoDuration::hours(24);

/// The smallest refund, in centavos (S004).
pub const MIN_REFUND: i64 = 100;

/// The longest `notes` (S004).
pub const MAX_NOTES: usize = 255;

/// The documented refund reasons (S004).
pub const REASONS: [&str; 4] = ["duplicate", "fraudulent", "requested_by_customer", "others"];

/// A payment's status. Only `paid` payments can be refunded (PM-RERR).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Paid,
    Pending,
    Failed,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paid => "paid",
            Self::Pending => "pending",
            Self::Failed => "failed",
        }
    }
}

/// A refund's status (S004).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Pending,
    Processing,
    Succeeded,
    Failed,
}

impl RefundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

/// An HTTP answer: status and JSON body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn ok(body: Value) -> Self {
        Self { status: 200, body }
    }

    /// `{"errors":[...]}` with one error.
    pub fn error(status: u16, code: &str, detail: &str, attribute: Option<&str>) -> Self {
        Self {
            status,
            body: json!({ "errors": [error_item(code, detail, attribute)] }),
        }
    }
}

/// One `{"code","detail","source"}` (PM-ERR).
pub fn error_item(code: &str, detail: &str, attribute: Option<&str>) -> Value {
    let mut item = json!({ "code": code, "detail": detail });
    if let Some(a) = attribute {
        item["source"] = json!({ "pointer": a, "attribute": a });
    }
    item
}
