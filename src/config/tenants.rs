//! `[[tenants]]`: each tenant's keys, operator keys, provider accounts, approval limits and
//! own limits (checked with the rest of the file in `check.rs`).

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::Deserialize;

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
    /// This tenant's own `[limits]` values; absent: the defaults.
    #[serde(default)]
    pub requests_per_second: Option<u32>,
    #[serde(default)]
    pub burst: Option<u32>,
    #[serde(default)]
    pub watch_streams: Option<u32>,
}
