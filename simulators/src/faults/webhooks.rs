//! The webhook switches: duplicated and reordered deliveries.

use std::collections::HashMap;

use super::Faults;

/// How a batch of webhook deliveries of one refund goes out.
#[derive(Debug, PartialEq, Eq)]
pub enum Arranged<D> {
    /// Send these now, one after the other, in this order.
    Send(Vec<D>),
    /// Held by `reorder_webhooks`: call [`WebhookHold::release`] after [`REORDER_HOLD`] and
    /// send what it returns (nothing when a later delivery already took them along).
    Held,
}

/// Deliveries held back by `reorder_webhooks`, by refund. Keep one per simulator, under its
/// lock.
#[derive(Clone, Debug)]
pub struct WebhookHold<D> {
    held: HashMap<String, Vec<D>>,
}

impl<D> Default for WebhookHold<D> {
    fn default() -> Self {
        Self {
            held: HashMap::new(),
        }
    }
}

impl<D: Clone> WebhookHold<D> {
    /// Holds `deliveries` of refund `key` (to be sent after a later batch, or on release).
    pub fn hold(&mut self, key: &str, deliveries: Vec<D>) {
        self.held
            .entry(key.to_owned())
            .or_default()
            .extend(deliveries);
    }

    /// The held deliveries of `key`, if still held.
    pub fn release(&mut self, key: &str) -> Vec<D> {
        self.held.remove(key).unwrap_or_default()
    }

    /// Forgets everything held.
    pub fn clear(&mut self) {
        self.held.clear();
    }
}

/// Applies the webhook switches to a batch of deliveries announcing a change of refund
/// `key`. `faults`: what [`FaultCell::take`] gave for [`Target::Webhook`].
pub fn arrange_webhooks<D: Clone>(
    faults: Option<&Faults>,
    hold: &mut WebhookHold<D>,
    key: &str,
    deliveries: Vec<D>,
) -> Arranged<D> {
    let Some(f) = faults else {
        return Arranged::Send(deliveries);
    };
    let ordered = if f.reorder_webhooks {
        let earlier = hold.release(key);
        if earlier.is_empty() {
            hold.hold(key, deliveries);
            return Arranged::Held;
        }
        // The later change first, then the earlier one it overtook.
        deliveries.into_iter().chain(earlier).collect()
    } else {
        deliveries
    };
    if f.duplicate_webhooks {
        Arranged::Send(ordered.into_iter().flat_map(|d| [d.clone(), d]).collect())
    } else {
        Arranged::Send(ordered)
    }
}
