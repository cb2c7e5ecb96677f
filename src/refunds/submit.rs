//! CreateRefund, stage 4: send the reserved refund to its provider (no transaction is open),
//! through the writer, where every submission starts.

use super::{reserve::Reserved, validate::Request, writer};
use crate::{domain::Refund, providers::SubmitOutcome};

/// A refund sent, and how the sending ended: the hand-off to the recording.
#[derive(Debug)]
pub(super) struct Submitted {
    pub(super) refund: Refund,
    pub(super) outcome: SubmitOutcome,
}

/// Submits the refund reserved for `request`.
pub(super) async fn submit(request: &Request, reserved: Reserved) -> Submitted {
    let Reserved(refund) = reserved;
    let outcome = writer::submit(&request.account, &refund).await;
    Submitted { refund, outcome }
}
