//! PayMongo's own keys of `[providers.NAME]`, checked, and where its sandbox account points
//! (the simulator also learns where to send its signed webhooks).

use std::{sync::Arc, time::Duration};

use secrecy::SecretString;
use serde::Deserialize;

use super::PayMongo;
use crate::providers::{
    Provider, ProviderKind,
    registry::{ProviderConfig, first_of},
};
use simulators::{
    PAYMONGO_SANDBOX_SECRET_KEY, PAYMONGO_SANDBOX_WEBHOOK_SECRET, RunningSandbox, Simulator,
};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayMongoConfig {
    pub base_url: Option<String>,
    pub secret_key: Option<SecretString>,
    pub webhook_secret: Option<SecretString>,
}

impl ProviderConfig for PayMongoConfig {
    const KIND: ProviderKind = ProviderKind::PayMongo;
    /// PayMongo sends signed refund events to the account's webhook URL.
    const WEBHOOKS: bool = true;

    fn missing(&self) -> Option<&'static str> {
        first_of(&[
            ("base_url", self.base_url.is_none()),
            ("secret_key", self.secret_key.is_none()),
            ("webhook_secret", self.webhook_secret.is_none()),
        ])
    }

    fn sandboxed(sandbox: &RunningSandbox, webhook_url: &str) -> Self {
        tracing::info!(
            url = webhook_url,
            "PayMongo simulator sends its webhooks to the gateway"
        );
        sandbox.sandbox.paymongo.add_webhook_url(webhook_url);
        Self {
            base_url: Some(sandbox.base_url(Simulator::PayMongo)),
            secret_key: Some(SecretString::from(PAYMONGO_SANDBOX_SECRET_KEY)),
            webhook_secret: Some(SecretString::from(PAYMONGO_SANDBOX_WEBHOOK_SECRET)),
        }
    }

    fn build(
        &self,
        _webhook_url: &str,
        timeout: Duration,
    ) -> Result<Arc<dyn Provider>, &'static str> {
        Ok(Arc::new(PayMongo::from_config(self, timeout)?))
    }
}
