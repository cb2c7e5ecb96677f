//! D24's own keys of `[providers.NAME]`, checked, and where its sandbox account points.

use std::{sync::Arc, time::Duration};

use secrecy::SecretString;
use serde::Deserialize;

use super::D24;
use crate::providers::{Profile, Provider, registry::ProviderConfig};
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

/// What a D24 account is built from: the base URL, `X-Login` and the signature secret.
type Keys = (String, SecretString, SecretString);

impl D24Config {
    /// The keys a D24 account needs; `Err` names the first one missing.
    fn keys(&self) -> Result<Keys, &'static str> {
        let base_url = self.base_url.clone().ok_or("base_url")?;
        Ok((
            base_url,
            self.login.clone().ok_or("login")?,
            self.secret_key.clone().ok_or("secret_key")?,
        ))
    }
}

impl ProviderConfig for D24Config {
    /// D24 POSTs every status change of a refund to the account's webhook URL.
    const PROFILE: &'static Profile = &super::rules::PROFILE;

    fn missing(&self) -> Option<&'static str> {
        self.keys().err()
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
        let (base_url, login, secret_key) = self.keys()?;
        let notify = Some(webhook_url.to_owned());
        Ok(Arc::new(D24::new(
            base_url, login, secret_key, notify, timeout,
        )))
    }
}
