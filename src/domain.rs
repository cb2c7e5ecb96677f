//! Domain types, apart from the generated protobuf ones: money, refunds, payments, the status
//! machine and the caller-facing error. Nothing here knows about gRPC, HTTP or SQL.

mod actor;
mod error;
mod ids;
mod money;
mod observation;
mod payment;
mod payment_ref;
mod refund;
mod status;

pub use actor::{Actor, Cause};
pub use error::{ApiError, ERROR_DOMAIN, ErrorCode, FieldViolation, reason};
pub use ids::{RefundId, TenantId};
pub use money::{Currency, Money, MoneyError};
pub use observation::Observation;
pub use payment::{HeldRefund, Payment, PaymentStatus, ReportedRefund, outside_minor};
pub use payment_ref::{BankAccount, BankAccountType, PaymentRef};
#[cfg(test)]
pub(crate) use refund::sample_refund;
pub use refund::{Refund, RefundEvent, RefundFailure, RefundReason, Submission};
pub use status::{IllegalTransition, RefundStatus};
