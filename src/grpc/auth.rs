//! Authentication as a tonic interceptor on RefundService (health and reflection stay open):
//! `authorization: Bearer <key>` or `x-api-key: <key>` becomes a `Caller` in the request's
//! extensions, or the call ends with UNAUTHENTICATED. During shutdown new calls are refused.
//!
//! The key is looked up in the table in force (`auth::TenantTable`, swapped whole by a
//! reload). A [`Credential`] (the key's digest, not the key) goes into the extensions too, so
//! a watch stream can check its key again after each reload (`grpc::guard`).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tonic::{Request, Status, service::Interceptor};

use crate::{
    auth::{Authn, Caller, KeyDigest, TenantTable},
    domain::TenantId,
    domain::{ApiError, reason},
};

#[derive(Clone, Debug)]
pub struct Authenticate {
    tenants: Arc<TenantTable>,
    shutdown: CancellationToken,
}

impl Authenticate {
    pub fn new(tenants: Arc<TenantTable>, shutdown: CancellationToken) -> Self {
        Self { tenants, shutdown }
    }
}

fn presented_key<T>(req: &Request<T>) -> Option<&str> {
    let md = req.metadata();
    if let Some(value) = md.get("authorization").and_then(|v| v.to_str().ok()) {
        let value = value.trim();
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        return Some(if scheme.eq_ignore_ascii_case("bearer") {
            rest.trim()
        } else {
            ""
        });
    }
    md.get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

impl Interceptor for Authenticate {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if self.shutdown.is_cancelled() {
            return Err(ApiError::unavailable(
                reason::SHUTTING_DOWN,
                "the gateway is shutting down; retry on another instance",
            )
            .into());
        }
        let key = presented_key(&req)
            .filter(|k| !k.is_empty())
            .map(KeyDigest::of);
        let (generation, tenants) = self.tenants.load_with_generation();
        match tenants.authenticate_digest(key) {
            Authn::Allowed(caller) => {
                req.extensions_mut().insert(Credential {
                    key,
                    tenant: caller.tenant.clone(),
                    table: self.tenants.clone(),
                    generation,
                });
                req.extensions_mut().insert(caller);
                Ok(req)
            }
            Authn::Missing => Err(ApiError::unauthenticated(
                "missing API key: send 'authorization: Bearer <key>' or 'x-api-key: <key>'",
            )
            .into()),
            Authn::Unknown => Err(ApiError::unauthenticated("unknown API key").into()),
        }
    }
}

/// The caller the interceptor attached, taken out of a request about to be consumed (no
/// copy).
pub fn take_caller<T>(req: &mut Request<T>) -> Result<Caller, Status> {
    req.extensions_mut()
        .remove::<Caller>()
        .ok_or_else(|| ApiError::unauthenticated("not authenticated").into())
}

/// What a long call keeps to check its key again after a reload: the key's digest (`None`
/// in open mode without a key), its tenant, and the table with the generation the key was
/// checked against.
#[derive(Clone, Debug)]
pub struct Credential {
    key: Option<KeyDigest>,
    tenant: TenantId,
    table: Arc<TenantTable>,
    generation: u64,
}

impl Credential {
    /// Resolves when a reload has removed the key (or moved it to another tenant); pending
    /// for as long as the key stays valid. A reload between the call's authentication and
    /// this first poll is seen too (the generation differs).
    pub async fn revoked(self) {
        let mut generation = self.table.generation();
        let mut seen = self.generation;
        loop {
            let now = *generation.borrow_and_update();
            if now != seen {
                seen = now;
                let valid = match self.table.load().authenticate_digest(self.key) {
                    Authn::Allowed(caller) => caller.tenant == self.tenant,
                    Authn::Missing | Authn::Unknown => false,
                };
                if !valid {
                    return;
                }
            }
            if generation.changed().await.is_err() {
                // The table is gone with the gateway: nothing will revoke the key.
                return std::future::pending().await;
            }
        }
    }
}
