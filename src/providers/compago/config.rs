//! Compago's own keys of `[providers.NAME]`, checked, and where its sandbox account points.

use std::{sync::Arc, time::Duration};

use secrecy::SecretString;
use serde::Deserialize;

use super::Compago;
use crate::providers::{Profile, Provider, registry::ProviderConfig};
use simulators::{COMPAGO_SANDBOX_API_KEY, RunningSandbox, Simulator};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompagoConfig {
    /// Scheme and host (the adapter adds `/api/...`). Not needed with `sandbox = true`.
    pub base_url: Option<String>,
    pub api_key: Option<SecretString>,
}

impl CompagoConfig {
    /// The base URL and the API key; `Err` names the first one missing.
    fn keys(&self) -> Result<(String, SecretString), &'static str> {
        Ok((
            self.base_url.clone().ok_or("base_url")?,
            self.api_key.clone().ok_or("api_key")?,
        ))
    }
}

impl ProviderConfig for CompagoConfig {
    const PROFILE: &'static Profile = &super::rules::PROFILE;

    fn missing(&self) -> Option<&'static str> {
        self.keys().err()
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
        let (base_url, api_key) = self.keys()?;
        Ok(Arc::new(Compago::new(base_url, api_key, timeout)))
    }
}
