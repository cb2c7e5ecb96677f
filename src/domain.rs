//! Domain types, apart from the generated protobuf ones: money, refunds, payments, the status
//! machine and the caller-facing error. Nothing here knows about gRPC, HTTP or SQL.

mod error;
mod money;
mod payment;
mod refund;
mod status;

pub use error::{ApiError, ERROR_DOMAIN, ErrorCode, FieldViolation, reason};
pub use money::{Currency, Money, MoneyError};
pub use payment::{HeldRefund, Payment, PaymentStatus, ReportedRefund, outside_minor};
pub use refund::{
    BankAccount, BankAccountType, Observation, PaymentRef, Refund, RefundEvent, RefundFailure,
    RefundId, RefundReason, Submission, TenantId,
};
pub use status::{IllegalTransition, RefundStatus};
