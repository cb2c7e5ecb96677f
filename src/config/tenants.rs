//! `[[tenants]]`: each tenant's keys, operator keys, provider accounts and approval limits,
//! and their checks.

use std::collections::{BTreeMap, HashSet};

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use super::{ConfigError, ProviderTable};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    pub id: String,
    pub api_keys: Vec<SecretString>,
    /// Keys that may call every RPC, ResolveRefund and ApproveRefund included.
    #[serde(default)]
    pub operator_keys: Vec<SecretString>,
    /// Provider accounts this tenant may use; absent: all.
    #[serde(default)]
    pub providers: Option<Vec<String>>,
    /// Per currency code (ISO 4217, upper case): a refund of more minor units than this is
    /// recorded as REQUIRES_APPROVAL and waits for an operator. Currencies not listed need no
    /// approval.
    #[serde(default)]
    pub approval_above: BTreeMap<String, i64>,
}

/// Ids present and unique, keys present and used once across every tenant and role,
/// providers configured, approval limits well formed.
pub(super) fn check(
    tenants: &[TenantConfig],
    providers: &BTreeMap<String, ProviderTable>,
) -> Result<(), ConfigError> {
    let mut seen_keys = HashSet::new();
    let mut seen_ids = HashSet::new();
    for tenant in tenants {
        let id = &tenant.id;
        if id.is_empty() {
            return Err(ConfigError("tenants: every tenant needs an id".to_owned()));
        }
        if !seen_ids.insert(id.as_str()) {
            return Err(ConfigError(format!("tenants: id {id:?} appears twice")));
        }
        if tenant.api_keys.is_empty() {
            return Err(ConfigError(format!("tenants.{id}: api_keys is empty")));
        }
        let keys = tenant.api_keys.iter().map(|k| (k, "an api key"));
        let operators = tenant.operator_keys.iter().map(|k| (k, "an operator key"));
        for (key, what) in keys.chain(operators) {
            if key.expose_secret().is_empty() {
                return Err(ConfigError(format!("tenants.{id}: {what} is empty")));
            }
            if !seen_keys.insert(key.expose_secret().to_owned()) {
                return Err(ConfigError(format!(
                    "tenants.{id}: {what} is used twice, or by more than one tenant"
                )));
            }
        }
        for p in tenant.providers.iter().flatten() {
            if !providers.contains_key(p) {
                return Err(ConfigError(format!(
                    "tenants.{id}: provider {p:?} is not configured"
                )));
            }
        }
        for (currency, limit) in &tenant.approval_above {
            if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(ConfigError(format!(
                    "tenants.{id}.approval_above: {currency:?} is not an ISO 4217 currency code in upper case"
                )));
            }
            if *limit < 0 {
                return Err(ConfigError(format!(
                    "tenants.{id}.approval_above.{currency} must be 0 or more (minor units)"
                )));
            }
        }
    }
    Ok(())
}
