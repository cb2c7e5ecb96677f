//! The checks a configuration must pass beyond its types, every problem collected: an
//! operator fixing a file sees all that is wrong with it at once, one line per problem,
//! each naming its key (`tenants[1].api_keys[0]: key also used by tenant acme`).

use std::collections::{HashMap, HashSet};

use secrecy::ExposeSecret as _;

use super::{Config, ConfigError};

impl Config {
    /// Every problem of this configuration that the configuration alone can tell (the
    /// provider tables are read by their providers, in `app::check`). Empty: none.
    pub fn problems(&self) -> Vec<ConfigError> {
        let mut problems = Vec::new();
        let mut problem = |text: String| problems.push(ConfigError(text));
        if let Err(err) = super::wire::check(&self.server) {
            problem(err);
        }
        if self.server.event_buffer == 0 {
            problem("server.event_buffer: must be above 0".to_owned());
        }
        if !(self.store.url.starts_with("sqlite:")
            || self.store.url.starts_with("postgres:")
            || self.store.url.starts_with("postgresql:"))
        {
            problem(format!(
                "store.url: must start with sqlite: or postgres:, got {:?}",
                self.store.redacted_url()
            ));
        }
        for (key, value) in [
            ("statement_timeout_ms", self.store.statement_timeout_ms),
            ("connect_timeout_ms", self.store.connect_timeout_ms),
        ] {
            if value == 0 {
                problem(format!("store.{key}: must be above 0"));
            }
        }
        // Only the account names are checked here: the rest of each table is the provider's
        // (`providers::registry`, called from `app::check`).
        for name in self.providers.keys() {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                problem(format!(
                    "providers.{name}: the account name may only use letters, digits, '-' and '_'"
                ));
            }
        }
        for (key, value) in [
            ("requests_per_second", self.limits.requests_per_second),
            ("burst", self.limits.burst),
        ] {
            if value == 0 {
                problem(format!("limits.{key}: must be above 0"));
            }
        }
        if let Err(err) = self.telemetry.check() {
            problem(err.0);
        }
        self.tenant_problems(&mut problem);
        problems
    }

    fn tenant_problems(&self, problem: &mut impl FnMut(String)) {
        // Which tenant (by its index) each key and id was first seen in.
        let mut keys: HashMap<&str, usize> = HashMap::new();
        let mut ids: HashMap<&str, usize> = HashMap::new();
        for (i, tenant) in self.tenants.iter().enumerate() {
            let at = format!("tenants[{i}]");
            if tenant.id.is_empty() {
                problem(format!("{at}.id: every tenant needs an id"));
            } else if let Some(first) = ids.insert(tenant.id.as_str(), i) {
                ids.insert(tenant.id.as_str(), first);
                problem(format!(
                    "{at}.id: {:?} is already the id of tenants[{first}]",
                    tenant.id
                ));
            }
            if tenant.api_keys.is_empty() {
                problem(format!("{at}.api_keys: at least one key is required"));
            }
            // A key is one tenant's, in one role: api key or operator key.
            let mut own = HashSet::new();
            let api_keys = tenant
                .api_keys
                .iter()
                .enumerate()
                .map(|(k, key)| ("api_keys", k, key));
            let operator_keys = tenant
                .operator_keys
                .iter()
                .enumerate()
                .map(|(k, key)| ("operator_keys", k, key));
            for (list, k, key) in api_keys.chain(operator_keys) {
                let key = key.expose_secret();
                if key.is_empty() {
                    problem(format!("{at}.{list}[{k}]: the key is empty"));
                    continue;
                }
                if !own.insert(key) {
                    problem(format!("{at}.{list}[{k}]: the key is listed twice"));
                    continue;
                }
                match keys.get(key) {
                    Some(&other) => problem(format!(
                        "{at}.{list}[{k}]: key also used by tenant {}",
                        self.tenants[other].id
                    )),
                    None => {
                        keys.insert(key, i);
                    }
                }
            }
            for (currency, limit) in &tenant.approval_above {
                if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
                    problem(format!(
                        "{at}.approval_above.{currency}: not an ISO 4217 currency code in upper case"
                    ));
                } else if *limit < 0 {
                    problem(format!(
                        "{at}.approval_above.{currency}: must be 0 or more (minor units)"
                    ));
                }
            }
            for p in tenant.providers.iter().flatten() {
                if !self.providers.contains_key(p) {
                    problem(format!("{at}.providers: provider {p:?} is not configured"));
                }
            }
            for (key, value) in [
                ("requests_per_second", tenant.requests_per_second),
                ("burst", tenant.burst),
            ] {
                if value == Some(0) {
                    problem(format!("{at}.{key}: must be above 0"));
                }
            }
        }
    }
}
