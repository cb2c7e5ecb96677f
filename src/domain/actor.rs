//! Who or what made a change of a refund, and why: every stored event carries one
//! [`Cause`]. Actors are plain strings on the wire (`RefundEvent.actor`); this file is the one
//! place that spells them.

use serde::{Deserialize, Serialize};

/// The actor of events recorded before the gateway kept actors (stores migrated from an
/// earlier version), and of changes no caller, notification or check made.
pub const GATEWAY: &str = "gateway";
/// The actor of a provider's notification.
pub const WEBHOOK: &str = "webhook";
/// The actor of the gateway's own follow-up checks.
pub const WORKER: &str = "worker";

/// Who made a change, as `RefundEvent.actor` spells it: `caller:<key id>`,
/// `operator:<key id>`, `caller:open`, `webhook`, `worker` or `gateway`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Actor(String);

impl Actor {
    /// A tenant's API key, by its key id (never the key).
    pub fn caller(key_id: &str) -> Self {
        Self(format!("caller:{key_id}"))
    }

    /// A tenant's operator key, by its key id.
    pub fn operator(key_id: &str) -> Self {
        Self(format!("operator:{key_id}"))
    }

    /// Any call in open mode (no tenants configured).
    pub fn open() -> Self {
        Self("caller:open".to_owned())
    }

    pub fn webhook() -> Self {
        Self(WEBHOOK.to_owned())
    }

    pub fn worker() -> Self {
        Self(WORKER.to_owned())
    }

    pub fn gateway() -> Self {
        Self(GATEWAY.to_owned())
    }

    /// An actor as stored (read back from a store).
    pub fn from_stored(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who made a change and why: stored with the change's event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cause {
    pub actor: Actor,
    /// An operator's note, or the gateway's own short reason ("created", "provider
    /// accepted", "approval window ended", ...).
    pub note: String,
}

impl Cause {
    pub fn new(actor: Actor, note: impl Into<String>) -> Self {
        Self {
            actor,
            note: note.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_are_spelled_as_the_api_says() {
        assert_eq!(Actor::caller("0a1b2c3d").as_str(), "caller:0a1b2c3d");
        assert_eq!(Actor::operator("0a1b2c3d").as_str(), "operator:0a1b2c3d");
        assert_eq!(Actor::open().as_str(), "caller:open");
        assert_eq!(Actor::webhook().as_str(), "webhook");
        assert_eq!(Actor::worker().as_str(), "worker");
        assert_eq!(
            serde_json::to_string(&Actor::worker()).unwrap(),
            "\"worker\""
        );
    }
}
