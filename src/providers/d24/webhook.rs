//! D24's refund notifications (docs/PROVIDERS.md section 1): `{"refund_id": N}` POSTed to the
//! account's webhook URL on every status change. Unsigned and not trusted: a notification
//! only says which refund to read again. Pure.

use super::wire;
use crate::providers::{WebhookError, WebhookNotice};

/// The refund a notification names, to be read again.
pub fn parse(body: &[u8]) -> Result<Vec<WebhookNotice>, WebhookError> {
    let notification: wire::Notification = serde_json::from_slice(body)
        .map_err(|e| WebhookError::Malformed(format!("expected {{\"refund_id\": N}}: {e}")))?;
    Ok(vec![WebhookNotice::Refetch {
        provider_refund_id: notification.refund_id.0,
    }])
}
