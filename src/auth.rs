//! Tenants and their API keys (CONTRACT.md "Tenancy" and "Authentication").
//!
//! Keys are kept only as SHA-256 digests, so the process holds no plain key after start-up
//! and a lookup does not compare secrets byte by byte.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
};

use secrecy::ExposeSecret as _;
use sha2::{Digest as _, Sha256};

use crate::{config::TenantConfig, domain::TenantId};

/// Who is calling: a tenant and the provider accounts it may use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub tenant: TenantId,
    /// `None`: every configured account.
    pub providers: Option<Arc<BTreeSet<String>>>,
}

impl Caller {
    pub fn may_use(&self, provider: &str) -> bool {
        self.providers
            .as_ref()
            .is_none_or(|allowed| allowed.contains(provider))
    }
}

/// The key table. With no tenants configured every call is tenant `default` (open mode).
#[derive(Clone, Debug)]
pub struct Tenants {
    by_key: HashMap<[u8; 32], Caller>,
    open: bool,
}

/// The answer to a lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authn {
    Allowed(Caller),
    Missing,
    Unknown,
}

impl Tenants {
    pub fn from_config(tenants: &[TenantConfig]) -> Self {
        let mut by_key = HashMap::new();
        for t in tenants {
            let caller = Caller {
                tenant: TenantId::new(t.id.clone()),
                providers: t
                    .providers
                    .as_ref()
                    .map(|p| Arc::new(p.iter().cloned().collect())),
            };
            for key in &t.api_keys {
                by_key.insert(digest(key.expose_secret()), caller.clone());
            }
        }
        Self {
            by_key,
            open: tenants.is_empty(),
        }
    }

    /// Whether the gateway runs without authentication.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Looks a presented key up (`None` when the caller sent none).
    pub fn authenticate(&self, key: Option<&str>) -> Authn {
        if self.open {
            return Authn::Allowed(Caller {
                tenant: TenantId::new("default"),
                providers: None,
            });
        }
        match key {
            None | Some("") => Authn::Missing,
            Some(key) => self
                .by_key
                .get(&digest(key))
                .cloned()
                .map_or(Authn::Unknown, Authn::Allowed),
        }
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn keys_map_to_their_tenant_and_providers() {
        let cfg = Config::from_toml(
            r#"
            [[tenants]]
            id = "acme"
            api_keys = ["k1", "k2"]
            providers = ["compago"]
            [[tenants]]
            id = "globex"
            api_keys = ["k3"]
            [providers.compago]
            kind = "compago"
            sandbox = true
            [providers.d24]
            kind = "d24"
            sandbox = true
            "#,
        )
        .unwrap();
        let tenants = Tenants::from_config(&cfg.tenants);
        assert!(!tenants.is_open());
        let Authn::Allowed(acme) = tenants.authenticate(Some("k2")) else {
            panic!("k2 is acme's")
        };
        assert_eq!(acme.tenant.as_str(), "acme");
        assert!(acme.may_use("compago") && !acme.may_use("d24"));
        let Authn::Allowed(globex) = tenants.authenticate(Some("k3")) else {
            panic!("k3 is globex's")
        };
        assert!(globex.may_use("d24"));
        assert_eq!(tenants.authenticate(None), Authn::Missing);
        assert_eq!(tenants.authenticate(Some("")), Authn::Missing);
        assert_eq!(tenants.authenticate(Some("k4")), Authn::Unknown);
    }

    #[test]
    fn no_tenants_means_open_mode_as_default() {
        let tenants = Tenants::from_config(&[]);
        assert!(tenants.is_open());
        let Authn::Allowed(caller) = tenants.authenticate(None) else {
            panic!("open mode lets everyone in")
        };
        assert_eq!(caller.tenant.as_str(), "default");
    }
}
