//! PayMongo's own keys of `[providers.NAME]`, checked, and where its sandbox account points
//! (the simulator also learns where to send its signed webhooks).

use std::{sync::Arc, time::Duration};

use secrecy::SecretString;
use serde::Deserialize;

use super::PayMongo;
use crate::providers::{Profile, Provider, registry::ProviderConfig};
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

impl PayMongoConfig {
    /// The base URL, the secret key and the webhook secret; `Err` names the first one
    /// missing.
    fn keys(&self) -> Result<(String, SecretString, SecretString), &'static str> {
        Ok((
            self.base_url.clone().ok_or("base_url")?,
            self.secret_key.clone().ok_or("secret_key")?,
            self.webhook_secret.clone().ok_or("webhook_secret")?,
        ))
    }
}

impl ProviderConfig for PayMongoConfig {
    /// PayMongo sends signed refund events to the account's webhook URL.
    const PROFILE: &'static Profile = &super::rules::PROFILE;

    fn missing(&self) -> Option<&'static str> {
        self.keys().err()
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
        let (base_url, secret_key, webhook_secret) = self.keys()?;
        Ok(Arc::new(PayMongo::new(
            base_url,
            secret_key,
            webhook_secret,
            timeout,
        )))
    }
}
