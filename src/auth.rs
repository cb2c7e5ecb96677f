//! Tenants and their API keys (docs/API.md, "Calling it": authentication and tenancy).
//!
//! Keys are kept only as SHA-256 digests, so the process holds no plain key after start-up
//! and a lookup does not compare secrets byte by byte.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
};

use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};

use crate::domain::TenantId;

/// One tenant, its API keys and the provider accounts it may use (`None`: all).
#[derive(Clone, Debug)]
pub struct TenantKeys {
    pub tenant: TenantId,
    pub api_keys: Vec<SecretString>,
    pub providers: Option<Vec<String>>,
}

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
    pub fn new(tenants: impl IntoIterator<Item = TenantKeys>) -> Self {
        let mut by_key = HashMap::new();
        let mut open = true;
        for t in tenants {
            open = false;
            let caller = Caller {
                tenant: t.tenant,
                providers: t
                    .providers
                    .as_ref()
                    .map(|p| Arc::new(p.iter().cloned().collect())),
            };
            for key in &t.api_keys {
                by_key.insert(digest(key.expose_secret()), caller.clone());
            }
        }
        Self { by_key, open }
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

    fn tenant(id: &str, keys: &[&str], providers: Option<&[&str]>) -> TenantKeys {
        TenantKeys {
            tenant: TenantId::new(id),
            api_keys: keys.iter().map(|k| SecretString::from(*k)).collect(),
            providers: providers.map(|p| p.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    #[test]
    fn keys_map_to_their_tenant_and_providers() {
        let tenants = Tenants::new([
            tenant("acme", &["k1", "k2"], Some(&["compago"])),
            tenant("globex", &["k3"], None),
        ]);
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
        let tenants = Tenants::new([]);
        assert!(tenants.is_open());
        let Authn::Allowed(caller) = tenants.authenticate(None) else {
            panic!("open mode lets everyone in")
        };
        assert_eq!(caller.tenant.as_str(), "default");
    }
}
