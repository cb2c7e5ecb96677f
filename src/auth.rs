//! Tenants and their API keys (docs/API.md, "Calling it": authentication and tenancy).
//!
//! Keys are kept only as SHA-256 digests, so the process holds no plain key after start-up
//! and a lookup does not compare secrets byte by byte. A key is named by its key id, the
//! first 8 hex digits of its digest (what events record as the actor), never by the key.
//! A tenant's `api_keys` are callers; its `operator_keys` may also resolve and approve.
//!
//! The table in force is a [`TenantTable`]: a reload (SIGHUP) builds a whole new [`Tenants`]
//! and swaps it in one step, so a call sees either the old table or the new one, never a
//! mix; its generation tells long calls (watch streams) to check their key again.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
};

use arc_swap::ArcSwap;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;

use crate::domain::{Actor, TenantId};

/// One tenant, its API keys and the provider accounts it may use (`None`: all).
#[derive(Clone, Debug)]
pub struct TenantKeys {
    pub tenant: TenantId,
    pub api_keys: Vec<SecretString>,
    /// Keys that may also resolve and approve refunds.
    pub operator_keys: Vec<SecretString>,
    pub providers: Option<Vec<String>>,
    /// Per currency code: refunds of more minor units than this wait for an approval.
    pub approval_above: BTreeMap<String, i64>,
}

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A tenant's API key: every RPC but ResolveRefund and ApproveRefund.
    Caller,
    /// A tenant's operator key: every RPC.
    Operator,
    /// Open mode (no tenants configured): every RPC.
    Open,
}

/// Who is calling: a tenant, the key's role and id, the provider accounts it may use, and
/// the tenant's approval limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub tenant: TenantId,
    /// `None`: every configured account.
    pub providers: Option<Arc<BTreeSet<String>>>,
    pub role: Role,
    /// The first 8 hex digits of the SHA-256 of the key (`open` in open mode).
    pub key_id: Arc<str>,
    /// Per currency code: refunds of more minor units than this wait for an approval.
    pub approval_above: Arc<BTreeMap<String, i64>>,
}

impl Caller {
    /// The caller of open mode: tenant `default`, every provider, every RPC.
    pub fn open() -> Self {
        Self {
            tenant: TenantId::new(OPEN_TENANT),
            providers: None,
            role: Role::Open,
            key_id: Arc::from("open"),
            approval_above: Arc::default(),
        }
    }

    pub fn may_use(&self, provider: &str) -> bool {
        self.providers
            .as_ref()
            .is_none_or(|allowed| allowed.contains(provider))
    }

    /// Whether the caller may resolve and approve refunds.
    pub fn is_operator(&self) -> bool {
        matches!(self.role, Role::Operator | Role::Open)
    }

    /// The caller as the actor of the changes it makes.
    pub fn actor(&self) -> Actor {
        match self.role {
            Role::Caller => Actor::caller(&self.key_id),
            Role::Operator => Actor::operator(&self.key_id),
            Role::Open => Actor::open(),
        }
    }

    /// The approval limit for `currency` (minor units), if the tenant set one.
    pub fn approval_limit(&self, currency: &str) -> Option<i64> {
        self.approval_above.get(currency).copied()
    }
}

/// The key table. With no tenants configured every call is tenant `default` (open mode).
#[derive(Clone, Debug)]
pub struct Tenants {
    by_key: HashMap<[u8; 32], Caller>,
    /// Open mode's one caller (no tenants configured), made once.
    open: Option<Caller>,
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
            let providers: Option<Arc<BTreeSet<String>>> = t
                .providers
                .as_ref()
                .map(|p| Arc::new(p.iter().cloned().collect()));
            let approval_above = Arc::new(t.approval_above.clone());
            let keys = t.api_keys.iter().map(|k| (k, Role::Caller));
            let operators = t.operator_keys.iter().map(|k| (k, Role::Operator));
            for (key, role) in keys.chain(operators) {
                let digest = digest(key.expose_secret());
                let caller = Caller {
                    tenant: t.tenant.clone(),
                    providers: providers.clone(),
                    role,
                    key_id: key_id(&digest),
                    approval_above: approval_above.clone(),
                };
                by_key.insert(digest, caller);
            }
        }
        Self {
            by_key,
            open: open.then(Caller::open),
        }
    }

    /// Whether the gateway runs without authentication.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Looks a presented key up (`None` when the caller sent none).
    pub fn authenticate(&self, key: Option<&str>) -> Authn {
        self.authenticate_digest(key.filter(|k| !k.is_empty()).map(KeyDigest::of))
    }

    /// Looks a key up by its digest (`None` when the caller sent no key).
    pub fn authenticate_digest(&self, key: Option<KeyDigest>) -> Authn {
        if let Some(caller) = &self.open {
            return Authn::Allowed(caller.clone());
        }
        match key {
            None => Authn::Missing,
            Some(key) => self
                .by_key
                .get(&key.0)
                .cloned()
                .map_or(Authn::Unknown, Authn::Allowed),
        }
    }

    /// How many tenants and keys the table holds (for the log; never the keys).
    pub fn counts(&self) -> (usize, usize) {
        let tenants: BTreeSet<&TenantId> = self.by_key.values().map(|c| &c.tenant).collect();
        (tenants.len(), self.by_key.len())
    }
}

/// The tenant of open mode.
pub const OPEN_TENANT: &str = "default";

/// The SHA-256 of an API key: what a long call keeps to check its key again after a reload.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyDigest([u8; 32]);

impl KeyDigest {
    pub fn of(key: &str) -> Self {
        Self(digest(key))
    }
}

impl std::fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyDigest(..)")
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The key id: the first 8 hex digits (4 bytes) of the key's digest.
fn key_id(digest: &[u8; 32]) -> Arc<str> {
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    Arc::from(hex)
}

/// The tenant table in force, replaced whole by a reload.
#[derive(Debug)]
pub struct TenantTable {
    current: ArcSwap<Tenants>,
    /// Bumped on every replacement.
    generation: watch::Sender<u64>,
}

impl TenantTable {
    pub fn new(tenants: Tenants) -> Arc<Self> {
        Arc::new(Self {
            current: ArcSwap::from_pointee(tenants),
            generation: watch::Sender::new(0),
        })
    }

    /// The table in force now.
    pub fn load(&self) -> Arc<Tenants> {
        self.current.load_full()
    }

    /// The table in force now, with a generation no later than the table's: a caller that
    /// later sees a different generation checks again (maybe needlessly, never too late).
    pub fn load_with_generation(&self) -> (u64, Arc<Tenants>) {
        let generation = *self.generation.borrow();
        (generation, self.current.load_full())
    }

    /// Swaps `tenants` in; calls from now on see only the new table, and subscribers of
    /// [`TenantTable::generation`] are told.
    pub fn replace(&self, tenants: Tenants) {
        self.current.store(Arc::new(tenants));
        self.generation.send_modify(|g| *g += 1);
    }

    /// Changes each time the table is replaced.
    pub fn generation(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: &str, keys: &[&str], providers: Option<&[&str]>) -> TenantKeys {
        TenantKeys {
            tenant: TenantId::new(id),
            api_keys: keys.iter().map(|k| SecretString::from(*k)).collect(),
            operator_keys: Vec::new(),
            providers: providers.map(|p| p.iter().map(|s| (*s).to_owned()).collect()),
            approval_above: BTreeMap::new(),
        }
    }

    #[test]
    fn operator_keys_are_operators_and_keys_are_named_by_their_digest() {
        let mut acme = tenant("acme", &["k1"], None);
        acme.operator_keys = vec![SecretString::from("op")];
        let tenants = Tenants::new([acme]);
        let Authn::Allowed(caller) = tenants.authenticate(Some("k1")) else {
            panic!("k1 is acme's")
        };
        let Authn::Allowed(operator) = tenants.authenticate(Some("op")) else {
            panic!("op is acme's")
        };
        assert_eq!(caller.role, Role::Caller);
        assert!(!caller.is_operator() && operator.is_operator());
        assert_eq!(operator.tenant.as_str(), "acme");
        let expected = |key: &str| -> String {
            let d: [u8; 32] = Sha256::digest(key.as_bytes()).into();
            format!("{:02x}{:02x}{:02x}{:02x}", d[0], d[1], d[2], d[3])
        };
        assert_eq!(
            caller.actor().as_str(),
            format!("caller:{}", expected("k1"))
        );
        assert_eq!(
            operator.actor().as_str(),
            format!("operator:{}", expected("op"))
        );
        assert_eq!(caller.key_id.len(), 8);
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
        assert_eq!(tenants.counts(), (2, 3));
    }

    #[test]
    fn a_replaced_table_answers_at_once_and_says_so() {
        let table = TenantTable::new(Tenants::new([tenant("acme", &["k1"], None)]));
        let generation = table.generation();
        assert!(matches!(
            table.load().authenticate(Some("k1")),
            Authn::Allowed(_)
        ));
        table.replace(Tenants::new([tenant("acme", &["k2"], None)]));
        assert!(generation.has_changed().unwrap());
        let now = table.load();
        assert_eq!(now.authenticate(Some("k1")), Authn::Unknown);
        let Authn::Allowed(caller) = now.authenticate_digest(Some(KeyDigest::of("k2"))) else {
            panic!("k2 is acme's now")
        };
        assert_eq!(caller.tenant.as_str(), "acme");
    }

    #[test]
    fn no_tenants_means_open_mode_as_default() {
        let tenants = Tenants::new([]);
        assert!(tenants.is_open());
        assert_eq!(tenants.counts(), (0, 0));
        let Authn::Allowed(caller) = tenants.authenticate(None) else {
            panic!("open mode lets everyone in")
        };
        assert_eq!(caller.tenant.as_str(), "default");
        assert!(caller.is_operator());
        assert_eq!(caller.actor().as_str(), "caller:open");
    }
}
