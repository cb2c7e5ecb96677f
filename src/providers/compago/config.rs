//! Compago's own keys of `[providers.NAME]`, checked, and where its sandbox account points.

use std::{sync::Arc, time::Duration};

use secrecy::SecretString;
use serde::Deserialize;

use super::Compago;
use crate::providers::{
    Provider, ProviderKind,
    registry::{ProviderConfig, first_of},
};
use simulators::{COMPAGO_SANDBOX_API_KEY, RunningSandbox, Simulator};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompagoConfig {
    /// Scheme and host (the adapter adds `/api/...`). Not needed with `sandbox = true`.
    pub base_url: Option<String>,
    pub api_key: Option<SecretString>,
}

impl ProviderConfig for CompagoConfig {
    const KIND: ProviderKind = ProviderKind::Compago;
    /// Compago is poll-only.
    const WEBHOOKS: bool = false;

    fn missing(&self) -> Option<&'static str> {
        first_of(&[
            ("base_url", self.base_url.is_none()),
            ("api_key", self.api_key.is_none()),
        ])
    }

    fn sandboxed(sandbox: &RunningSandbox, _webhook_url: &str) -> Self {
        Self {
            base_url: Some(sandbox.base_url(Simulator::Compago)),
            api_key: Some(SecretString::from(COMPAGO_SANDBOX_API_KEY)),
        }
    }

    fn build(
        &self,
        _webhook_url: &str,
        timeout: Duration,
    ) -> Result<Arc<dyn Provider>, &'static str> {
        Ok(Arc::new(Compago::from_config(self, timeout)?))
    }
}
