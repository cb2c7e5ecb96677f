//! D24's own keys of `[providers.NAME]`, checked, and where its sandbox account points.

use std::{sync::Arc, time::Duration};

use secrecy::SecretString;
use serde::Deserialize;

use super::D24;
use crate::providers::{
    Provider, ProviderKind,
    registry::{ProviderConfig, first_of},
};
use simulators::{D24_SANDBOX_LOGIN, D24_SANDBOX_SECRET, RunningSandbox, Simulator};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct D24Config {
    pub base_url: Option<String>,
    /// `X-Login`, the deposit API key.
    pub login: Option<SecretString>,
    /// The API signature secret.
    pub secret_key: Option<SecretString>,
    pub read_only_key: Option<SecretString>,
}

impl ProviderConfig for D24Config {
    const KIND: ProviderKind = ProviderKind::D24;
    /// D24 POSTs every status change of a refund to the account's webhook URL.
    const WEBHOOKS: bool = true;

    fn missing(&self) -> Option<&'static str> {
        first_of(&[
            ("base_url", self.base_url.is_none()),
            ("login", self.login.is_none()),
            ("secret_key", self.secret_key.is_none()),
        ])
    }

    fn sandboxed(sandbox: &RunningSandbox, _webhook_url: &str) -> Self {
        Self {
            base_url: Some(sandbox.base_url(Simulator::D24)),
            login: Some(SecretString::from(D24_SANDBOX_LOGIN)),
            secret_key: Some(SecretString::from(D24_SANDBOX_SECRET)),
            read_only_key: None,
        }
    }

    fn build(
        &self,
        webhook_url: &str,
        timeout: Duration,
    ) -> Result<Arc<dyn Provider>, &'static str> {
        Ok(Arc::new(D24::from_config(self, webhook_url, timeout)?))
    }
}
