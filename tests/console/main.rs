//! The operator console at `GET /console/`, tested as an operator uses it: the in-process
//! gateway on loopback with the provider simulators, refunds made through the generated gRPC
//! client, and the page in a real headless Chromium (see [`browser`]) that calls the gateway
//! through gRPC-Web on the HTTP listener.

#[path = "../support/mod.rs"]
mod support;

mod browser;
mod feed;
mod operators;
mod serving;

use refund_gateway::pb;
use sha2::{Digest as _, Sha256};

use support::gateway::{Client, Gateway};

pub(crate) const ACME_KEY: &str = "acme-console-key";
pub(crate) const GLOBEX_KEY: &str = "globex-console-key";

/// Two tenants with plain API keys (no operator keys): enough for the feed and the lists.
pub(crate) const TENANTS: &str = r#"
[[tenants]]
id = "acme"
api_keys = ["acme-console-key"]

[[tenants]]
id = "globex"
api_keys = ["globex-console-key"]
"#;

/// `caller:<key id>` / `operator:<key id>`: the first 8 hex digits of the key's SHA-256.
pub(crate) fn key_id(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))[..8].to_owned()
}

/// A Compago payment of `amount` (MXN, confirmed) made in the simulator.
pub(crate) async fn compago_payment(gw: &Gateway, amount: &str) -> pb::PaymentReference {
    gw.create_compago_payment(amount, "CONFIRMED").await
}

/// Refunds the whole of a new Compago payment of `amount` through `client`.
pub(crate) async fn refund(
    gw: &Gateway,
    client: &Client,
    request_id: &str,
    amount: &str,
) -> pb::Refund {
    let payment = compago_payment(gw, amount).await;
    client
        .clone()
        .create_refund(support::messages::request(
            request_id, "compago", payment, None,
        ))
        .await
        .unwrap_or_else(|status| panic!("CreateRefund {request_id}: {status:?}"))
        .into_inner()
        .refund
        .expect("a refund")
}
