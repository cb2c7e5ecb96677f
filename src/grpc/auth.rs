//! Authentication as a tonic interceptor on RefundService (health and reflection stay open):
//! `authorization: Bearer <key>` or `x-api-key: <key>` becomes a `Caller` in the request's
//! extensions, or the call ends with UNAUTHENTICATED. During shutdown new calls are refused.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tonic::{Request, Status, service::Interceptor};

use crate::{
    auth::{Authn, Caller, Tenants},
    domain::{ApiError, reason},
};

#[derive(Clone, Debug)]
pub struct Authenticate {
    tenants: Arc<Tenants>,
    shutdown: CancellationToken,
}

impl Authenticate {
    pub fn new(tenants: Arc<Tenants>, shutdown: CancellationToken) -> Self {
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
        match self.tenants.authenticate(presented_key(&req)) {
            Authn::Allowed(caller) => {
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

/// The caller the interceptor attached.
pub fn caller<T>(req: &Request<T>) -> Result<Caller, Status> {
    req.extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| ApiError::unauthenticated("not authenticated").into())
}
